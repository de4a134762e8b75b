/**
 * The validation service when the engine's thread cannot be made: the Worker constructor throws
 * ERR_WORKER_INIT_FAILED at the process's thread limit (a container's pids.max, systemd's TasksMax). The service
 * validates on its own thread, as where the thread module is missing (validation-service.ts #engine), says so once
 * (onError), and tries the thread again after engineRetryMs — before, the failed start was kept for the process's
 * life, silently. The Worker is a stand-in here (test/thread-limit.ts) whose limit the test lifts; the module named is
 * the compiled one, so the service does try the thread.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { tokyoWithCertificate } from "../../test/tokyo-fixture.js";
import { EngineThread, engineThreadAvailable } from "./engine-thread.js";
import { VerifierValidationService } from "./validation-service.js";

const limit = vi.hoisted(() => ({ reached: true }));
vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>(), limit));

const MODULE = new URL("../../dist/src/verifier/engine-thread-main.js", import.meta.url);

const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  limit.reached = true;
  vi.restoreAllMocks();
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup() {
  const made = await tokyoWithCertificate("thread limit", "0000000777");
  open.push(made.ws);
  return made;
}

describe("VerifierValidationService at the process's thread limit", () => {
  it("validates on its own thread instead of failing the request", async () => {
    expect(engineThreadAvailable(MODULE)).toBe(true);
    const { ws, verifier, certificate } = await setup();
    const service = new VerifierValidationService(ws, { engineThread: MODULE });
    open.push(service);
    for (let i = 0; i < 2; i++) expect(await service.validate(verifier, { certificate, purpose: "signature" })).toMatchObject({ view: "government", status: "valid" });
  });

  it("says so once, and tries the thread again after engineRetryMs (not before): once the limit has passed, validations go to the thread", async () => {
    const { ws, verifier, certificate } = await setup();
    let t = 0;
    const told: Array<{ code: unknown; what: string }> = [];
    const service = new VerifierValidationService(ws, { engineThread: MODULE, now: () => t, engineRetryMs: 60_000, onError: (e, what) => told.push({ code: (e as { code?: unknown }).code, what }) });
    open.push(service);
    const starts = vi.spyOn(EngineThread, "start");
    const onThread = vi.spyOn(EngineThread.prototype, "validate");
    const valid = async () => expect(await service.validate(verifier, { certificate, purpose: "signature" })).toMatchObject({ status: "valid" });

    await valid();
    expect(starts).toHaveBeenCalledTimes(1);
    expect(told).toEqual([{ code: "ERR_WORKER_INIT_FAILED", what: expect.stringContaining("the validation engine's thread could not be started") }]);
    // within the wait: no new start, nothing said again
    t += 59_000;
    await valid();
    expect(starts).toHaveBeenCalledTimes(1);
    // past it, still at the limit: tried again, not said again
    t += 2_000;
    await valid();
    expect(starts).toHaveBeenCalledTimes(2);
    expect(told).toHaveLength(1);
    expect(onThread).not.toHaveBeenCalled();
    // the limit has passed: the next try starts the thread, and validations go there from then on
    limit.reached = false;
    t += 61_000;
    await valid();
    await valid();
    expect(starts).toHaveBeenCalledTimes(3);
    expect(onThread).toHaveBeenCalledTimes(2);
    expect(told).toHaveLength(1);
  });
});
