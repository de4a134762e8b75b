/**
 * The check of a large staged CRL (crl/verify.ts) on a thread of its own, trailing the writer: the thread reads
 * back what the publisher has written so far, walks and hashes it, and waits for more, so that when the signature
 * is written only the last piece is left to check. Publishing a CRL of 1,000,000 entries (44 MB) on one thread
 * spent ≈ 60 ms reading back, walking and hashing after the last byte was written, and ≈ 25 ms more hashing the
 * whole file as it was built; both now happen on the other core while the entries stream from the store. The
 * digest the publisher records is this thread's, of the bytes read back from the file.
 *
 * Used for CRLs large enough to repay starting a thread (≈ 30 ms of a core), and only where the compiled thread
 * module exists (not when the TypeScript sources run directly, as in unit tests: there the check stays on the
 * publishing thread, crl/verify.ts beginStagedCrlCheck).
 *
 * Protocol: one shared 64-bit cell holds how many bytes are written (-1: the publication was abandoned); the
 * thread posts one message, the digest or the error that ended the check.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { fromThreadError, JpkiError, type ErrorCode, type ThreadError } from "../errors.js";
import { trailStagedCrl, type ExpectedCrl } from "./verify.js";

/** CRLs below this size are checked on the publishing thread: starting a thread costs more than it saves. */
export const TRAILING_CHECK_MIN_BYTES = 8 << 20;

const THREAD = new URL("./verify-trailing-thread.js", import.meta.url);

/** The writer wakes the thread after this many new bytes (and at the last byte), not after every chunk. */
const WAKE_BYTES = 1 << 20;

/** What the thread is started with (workerData.jpkiCrlCheck). */
export interface TrailingCheckData {
  readonly path: string;
  readonly exp: ExpectedCrl;
  /** one BigInt64 cell: bytes written, or -1 once abandoned */
  readonly written: SharedArrayBuffer;
}

/** What the thread posts, once. */
export type TrailingCheckMessage = { readonly sha256: string } | { readonly error: { readonly code?: ErrorCode; readonly message: string } };

/** Whether a CRL of this size is checked on a thread here (it is large enough, and the compiled module exists). */
export function trailingCheckFits(byteLength: number, minBytes = TRAILING_CHECK_MIN_BYTES): boolean {
  return byteLength >= minBytes && existsSync(fileURLToPath(THREAD));
}

export interface TrailingCrlCheck {
  /** The staged file now holds `total` bytes (written in order, never rewritten); throws the thread's refusal once known. */
  wrote(total: number): void;
  /** Once every byte is written: the check's outcome, the SHA-256 (hex) of the file as read back; ERR_CRL_UNVERIFIED. */
  finish(): Promise<string>;
  /** Abandons the check (the publication failed); harmless after finish. */
  close(): void;
}

/** Starts checking the staged CRL at `path` on a thread, as it is written; the writer reports its progress. */
export function beginTrailingCrlCheck(path: string, exp: ExpectedCrl): TrailingCrlCheck {
  const written = new SharedArrayBuffer(8);
  const cell = new BigInt64Array(written);
  let worker: Worker | undefined;
  let outcome: Promise<TrailingCheckMessage | { readonly lost: unknown }>;
  try {
    const w = (worker = new Worker(THREAD, { workerData: { jpkiCrlCheck: { path, exp, written } satisfies TrailingCheckData } }));
    outcome = new Promise((resolve) => {
      w.once("message", resolve);
      w.once("error", (e) => resolve({ lost: e }));
      w.once("exit", (code) => resolve({ lost: `the thread exited (${code}) before its answer` }));
    });
  } catch (e) {
    // A thread that cannot be made is thrown here, not reported as an 'error' event: ERR_WORKER_INIT_FAILED when
    // the process is at its thread limit (a container's pids.max, systemd's TasksMax). The publication went on
    // failing with it (a raw error, "report it") while the check could run on the publishing thread: finish does.
    outcome = Promise.resolve({ lost: e });
  }
  // The thread's verdict as soon as it is known: a refusal at byte 200 (another issuer, a changed byte) went
  // unheard while the rest of the CRL streamed from the store, was written, synced and signed (a token's
  // operation, in its audit) — seconds, for a CRL refused all along. `wrote` raises it, ending the build.
  let refused: ThreadError | undefined;
  void outcome.then((m) => {
    if ("error" in m && m.error.code) refused = m.error;
  });
  let woken = 0;
  let closed = false;
  const set = (v: bigint) => {
    Atomics.store(cell, 0, v);
    Atomics.notify(cell, 0);
  };
  return {
    wrote(total) {
      if (refused) throw fromThreadError(refused);
      if (total - woken < WAKE_BYTES && total !== exp.byteLength) return void Atomics.store(cell, 0, BigInt(total));
      woken = total;
      set(BigInt(total));
    },
    async finish() {
      if (closed) throw new JpkiError("ERR_INTERNAL", "the CRL's check was abandoned");
      const m = await outcome;
      void worker?.terminate();
      if ("sha256" in m) return m.sha256;
      // The check's verdict (ERR_CRL_UNVERIFIED) or another error of ours: as the check here would have said it.
      if ("error" in m && m.error.code) throw fromThreadError(m.error);
      // The thread could not run (it did not start, or died), or failed on its own account — a plain error, such as
      // a file it could not open or read (EMFILE), which arrived as ERR_INTERNAL with its errno lost: the check is
      // not skipped, it runs here, where such a failure is raised as itself (and mapped: ENOSPC, EACCES).
      return trailStagedCrl(path, exp, () => exp.byteLength);
    },
    close() {
      closed = true;
      set(-1n);
      void worker?.terminate();
    },
  };
}
