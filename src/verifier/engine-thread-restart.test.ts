/**
 * The validation service when the engine's thread, once started, ends (a crash, an out-of-memory of the thread):
 * what it was validating is answered here, the end is said once (onError: serve's log), and a new thread is started
 * engineRetryMs later (not before). Before, an ended thread sent every validation to the serving thread for the
 * process's life. The thread is the compiled one (dist/), ended with worker.terminate(): the Workers made are
 * recorded by a pass-through stand-in of node:worker_threads.
 */
import type { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tokyoWithCertificate } from "../../test/tokyo-fixture.js";
import { EngineThread, engineThreadAvailable } from "./engine-thread.js";
import { VerifierValidationService } from "./validation-service.js";

const made = vi.hoisted(() => [] as Worker[]);
vi.mock("node:worker_threads", async (real) => {
  const r = await real<typeof import("node:worker_threads")>();
  // A function, not a class: `new` on it gives the real Worker it returns.
  const Recorded = function (...args: ConstructorParameters<typeof r.Worker>): Worker {
    const w = new r.Worker(...args);
    made.push(w);
    return w;
  };
  return { ...r, Worker: Recorded };
});

const MODULE = new URL("../../dist/src/verifier/engine-thread-main.js", import.meta.url);

const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const o of open.splice(0).reverse()) await o.close();
  made.length = 0;
});

async function setup() {
  const made = await tokyoWithCertificate("engine restart", "0000000778");
  open.push(made.ws);
  return made;
}

describe("VerifierValidationService when the engine's thread ends", () => {
  it("answers what was in flight, says so once, and starts a new thread engineRetryMs later (not before)", async () => {
    expect(engineThreadAvailable(MODULE)).toBe(true);
    const { ws, verifier, certificate } = await setup();
    let t = 0;
    const told: Array<{ code: unknown; message: string; what: string }> = [];
    const service = new VerifierValidationService(ws, {
      engineThread: MODULE,
      now: () => t,
      engineRetryMs: 60_000,
      onError: (e, what) => told.push({ code: (e as { code?: unknown }).code, message: (e as Error).message, what }),
    });
    open.push(service);
    const starts = vi.spyOn(EngineThread, "start");
    const validate = EngineThread.prototype.validate;
    const onThread: EngineThread[] = [];
    let kill = false;
    const failed: unknown[] = [];
    vi.spyOn(EngineThread.prototype, "validate").mockImplementation(function (this: EngineThread, ...args) {
      onThread.push(this);
      // The thread is dying as these questions are posted to it: none is answered by it.
      if (kill) void made.at(-1)!.terminate();
      const answer = validate.apply(this, args);
      answer.catch((e: { code?: unknown }) => failed.push(e.code));
      return answer;
    });
    const ask = () => service.validate(verifier, { certificate, purpose: "signature" });

    expect(await ask()).toMatchObject({ status: "valid" });
    expect(starts).toHaveBeenCalledTimes(1);
    expect(onThread).toHaveLength(1);
    expect(told).toEqual([]);

    // Three in flight when it dies: each still gets its answer (validated here), none hangs or fails.
    kill = true;
    const inFlight = await Promise.all([ask(), ask(), ask()]);
    kill = false;
    expect(inFlight.map((r) => r.status)).toEqual(["valid", "valid", "valid"]);
    // What the dying thread was asked failed ERR_INTERNAL and was answered here instead (the first ask at least; the
    // others too unless they came after its end was noticed, when they were not sent to it).
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed)).toEqual(new Set(["ERR_INTERNAL"]));
    const first = onThread[1]!;
    expect(first.ended).toMatchObject({ code: "ERR_INTERNAL" });
    expect(told).toEqual([{ code: "ERR_INTERNAL", message: expect.stringContaining("the validation engine's thread ended (exit code"), what: expect.stringContaining("a new one is started 60 s after") }]);
    // Nothing of the certificate or the resident in what is said.
    const said = JSON.stringify(told);
    for (const secret of ["山田", "千代田", "1985", "female", certificate.toString("hex").slice(0, 40), certificate.toString("base64").slice(0, 40)]) expect(said).not.toContain(secret);

    // Within the wait: no new thread; validated here, nothing said again.
    const onThreadBefore = onThread.length;
    t += 59_000;
    expect(await ask()).toMatchObject({ status: "valid" });
    expect(starts).toHaveBeenCalledTimes(1);
    expect(onThread).toHaveLength(onThreadBefore);
    expect(told).toHaveLength(1);

    // Past it: a new thread, and validations go to it from then on.
    t += 2_000;
    expect(await ask()).toMatchObject({ status: "valid" });
    expect(await ask()).toMatchObject({ status: "valid" });
    expect(starts).toHaveBeenCalledTimes(2);
    expect(onThread.slice(onThreadBefore)).toHaveLength(2);
    const second = onThread.at(-1)!;
    expect(second).not.toBe(first);
    expect(second.ended).toBeUndefined();
    expect(made).toHaveLength(2);
    expect(told).toHaveLength(1);
  });

  it("says nothing when the thread ends because the service closed", async () => {
    const { ws, verifier, certificate } = await setup();
    const told: unknown[] = [];
    const service = new VerifierValidationService(ws, { engineThread: MODULE, onError: (e) => told.push(e) });
    expect(await service.validate(verifier, { certificate, purpose: "signature" })).toMatchObject({ status: "valid" });
    expect(made).toHaveLength(1);
    await service.close();
    expect(told).toEqual([]);
  });
});
