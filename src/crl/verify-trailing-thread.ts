/**
 * The staged CRL check trailing its writer (crl/verify-trailing.ts starts it): started as a worker; importing it
 * elsewhere does nothing.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { isJpkiError, JpkiError } from "../errors.js";
import type { TrailingCheckData, TrailingCheckMessage } from "./verify-trailing.js";
import { trailStagedCrl, type ExpectedCrl } from "./verify.js";

/** How long one wait for the writer lasts before the cell is read again (a wake-up missed is only this late). */
const WAIT_MS = 200;

function run(port: NonNullable<typeof parentPort>, d: TrailingCheckData): void {
  const cell = new BigInt64Array(d.written);
  const written = (upTo: number): number => {
    for (;;) {
      const w = Atomics.load(cell, 0);
      if (w < 0n) throw new JpkiError("ERR_INTERNAL", "the CRL's publication was abandoned while it was checked");
      if (w >= BigInt(upTo)) return Number(w);
      Atomics.wait(cell, 0, w, WAIT_MS);
    }
  };
  // Buffers cross the thread boundary as Uint8Arrays: the checks compare with Buffer.equals.
  const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  const e = d.exp;
  const exp: ExpectedCrl = { ...e, issuerName: buf(e.issuerName), issuerKey: buf(e.issuerKey), algorithmIdentifier: buf(e.algorithmIdentifier), crlExtensions: buf(e.crlExtensions) };
  let m: TrailingCheckMessage;
  try {
    m = { sha256: trailStagedCrl(d.path, exp, written) };
  } catch (err) {
    m = { error: isJpkiError(err) ? { code: err.code, message: err.message } : { message: (err as Error)?.message ?? String(err) } };
  }
  port.postMessage(m);
  port.unref();
}

if (!isMainThread && parentPort && (workerData as { jpkiCrlCheck?: TrailingCheckData } | undefined)?.jpkiCrlCheck) {
  run(parentPort, (workerData as { jpkiCrlCheck: TrailingCheckData }).jpkiCrlCheck);
}
