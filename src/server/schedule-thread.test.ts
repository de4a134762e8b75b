/**
 * The watch over the CRL schedule's thread: the thread itself runs only from the compiled package (serve
 * integration tests), so its ending is played here by a stand-in Worker that emits what a real one does.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { superviseScheduleThread, type ScheduleThreadMessage, type ScheduleWorker } from "./schedule-thread.js";

class FakeWorker extends EventEmitter {
  readonly posted: unknown[] = [];
  terminated = false;
  postMessage(m: unknown): void {
    this.posted.push(m);
    // a real thread told to stop finishes its round and exits 0
    if (m === "stop") queueMicrotask(() => this.emit("exit", 0));
  }
  async terminate(): Promise<number> {
    this.terminated = true;
    this.emit("exit", 1);
    return 1;
  }
  say(m: ScheduleThreadMessage): void {
    this.emit("message", m);
  }
}

async function started(w: FakeWorker, signal = new AbortController().signal) {
  const loop = superviseScheduleThread(w as unknown as ScheduleWorker, { signal });
  w.say({ type: "ready" });
  return loop;
}

describe("superviseScheduleThread", () => {
  it("resolves the loop when the thread stops because it was told to", async () => {
    const w = new FakeWorker();
    const stop = new AbortController();
    const loop = await started(w, stop.signal);
    const done = loop();
    stop.abort();
    await expect(done).resolves.toBeUndefined();
    expect(w.posted).toEqual(["stop"]);
  });

  it("rejects the loop when the thread ends unasked without an error", async () => {
    const w = new FakeWorker();
    const loop = await started(w);
    const done = loop();
    w.emit("exit", 0);
    await expect(done).rejects.toMatchObject({ code: "ERR_INTERNAL", message: expect.stringContaining("ended unexpectedly") });
  });

  it("turns an uncaught error in the thread into a JpkiError, keeping a code of ours", async () => {
    for (const [error, code] of [
      [new Error("boom"), "ERR_INTERNAL"],
      [Object.assign(new Error("disk full"), { code: "ERR_STORE" }), "ERR_STORE"],
    ] as const) {
      const w = new FakeWorker();
      const loop = await started(w);
      const done = loop();
      w.emit("error", error);
      w.emit("exit", 1);
      await expect(done).rejects.toMatchObject({ code, message: error.message, name: "JpkiError" });
    }
  });

  it("rejects the start with the thread's failure (a wrong passphrase) and stops the thread", async () => {
    const w = new FakeWorker();
    const loop = superviseScheduleThread(w as unknown as ScheduleWorker, { signal: new AbortController().signal });
    w.say({ type: "failed", error: { code: "ERR_PASSPHRASE_WRONG", message: "wrong passphrase" } });
    await expect(loop).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    expect(w.terminated).toBe(true);
  });

  it("passes the thread's issuance-information sweeps on, a failure as the JpkiError it was", async () => {
    const w = new FakeWorker();
    const seen: unknown[] = [];
    const loop = superviseScheduleThread(w as unknown as ScheduleWorker, { signal: new AbortController().signal, onSweep: (e) => seen.push(e) });
    w.say({ type: "ready" });
    await loop;
    const nextAt = new Date(86_400_000);
    w.say({ type: "sweep", event: { kind: "swept", removed: 3, expiredBefore: new Date(0), stopped: false, nextAt } });
    w.say({ type: "sweep", event: { kind: "failed", error: { code: "ERR_WORKSPACE_LOCKED", message: "locked" }, nextAt } });
    expect(seen).toEqual([{ kind: "swept", removed: 3, expiredBefore: new Date(0), stopped: false, nextAt }, { kind: "failed", error: expect.objectContaining({ name: "JpkiError", code: "ERR_WORKSPACE_LOCKED" }), nextAt }]);
  });

  it("rejects the start when the thread ends before it is ready", async () => {
    const w = new FakeWorker();
    const loop = superviseScheduleThread(w as unknown as ScheduleWorker, { signal: new AbortController().signal });
    w.emit("exit", 0);
    await expect(loop).rejects.toMatchObject({ code: "ERR_INTERNAL" });
  });
});

describe("superviseScheduleThread's events", () => {
  it("passes on that a failure stopped (the thread's RepeatedErrors), with its count and start", async () => {
    const w = new FakeWorker();
    const recovered: unknown[] = [];
    const stop = new AbortController();
    const loop = superviseScheduleThread(w as unknown as ScheduleWorker, { signal: stop.signal, onRecovered: (r) => recovered.push(r) });
    w.say({ type: "ready" });
    const done = (await loop)();
    const r = { code: "ERR_STORE", message: "disk I/O error", times: 12, since: new Date(0) };
    w.say({ type: "recovered", recovered: r });
    stop.abort();
    await done;
    expect(recovered).toEqual([r]);
  });
});
