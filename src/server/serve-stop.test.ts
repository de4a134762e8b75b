/**
 * `jpki serve`'s CRL schedule stopped during its start-up round (SIGTERM on a first start, 40+ CAs): it stops
 * between CAs, as `jpki watch` does (ca/spool.test.ts), in the process and on the schedule's thread.
 */
import { EventEmitter } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { Workspace } from "../workspace/workspace.js";
import { superviseScheduleThread, type ScheduleWorker } from "./schedule-thread.js";
import { openCrlSchedule } from "./serve.js";

/** A workspace with six CAs, none of which has a CRL or an OCSP signing certificate yet: a first start's work. */
async function firstStart(prefix: string) {
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), prefix)), "ws"));
  await initCas(ws, { prefectures: ["01", "13", "27"].map((p) => prefecture(p)), purposes: ["signature", "authentication"], passphrase: "pw" });
  const ids = (await ws.store.listCas()).map((c) => c.id);
  expect(ids).toHaveLength(6);
  const withFull = async () => (await Promise.all(ids.map(async (id) => ((await ws.store.latestCrl(id)) ? id : undefined)))).filter(Boolean);
  return { ws, ids, withFull };
}

/** A whole start: its start-up round, and one more round, then stopped (its sleep aborts). */
async function nextStart(ws: Workspace, ocsp?: { responderPassphrase: string }) {
  const c = new AbortController();
  const loop = await openCrlSchedule(ws, { passphrase: "pw", signal: c.signal, sleep: async () => c.abort(), ...(ocsp ? { ocsp } : {}) });
  await loop();
}

describe("jpki serve's schedule stopped during its start-up round", () => {
  it("stops issuing OCSP signing certificates between CAs and begins no CRL round; the next start does the rest", async () => {
    const { ws, ids, withFull } = await firstStart("jpki-serve-stop-ocsp-");
    const stop = new AbortController();
    const put = ws.store.putOcspResponder.bind(ws.store);
    // SIGTERM arrives as the first certificate is stored
    ws.store.putOcspResponder = (...a: Parameters<typeof put>) => (stop.abort(), put(...a));
    try {
      const loop = await openCrlSchedule(ws, { passphrase: "pw", signal: stop.signal, ocsp: { responderPassphrase: "pw" }, sleep: async () => undefined });
      await loop();
      expect(await ws.store.ocspResponders()).toHaveLength(1);
      expect(await withFull()).toEqual([]);
      ws.store.putOcspResponder = put;
      await nextStart(ws, { responderPassphrase: "pw" });
      expect((await ws.store.ocspResponders()).map((r) => r.caId).sort()).toEqual([...ids].sort());
      expect(await withFull()).toEqual(ids);
    } finally {
      await ws.close();
    }
  });

  it("stops the first CRL round between CAs: those begun are published whole, the rest by the next start", async () => {
    const { ws, ids, withFull } = await firstStart("jpki-serve-stop-crl-");
    const stop = new AbortController();
    const reserve = ws.store.reserveCrl.bind(ws.store);
    // SIGTERM arrives as the first CRL number is reserved: the CAs already begun finish, no other is begun
    ws.store.reserveCrl = (...a: Parameters<typeof reserve>) => (stop.abort(), reserve(...a));
    try {
      const loop = await openCrlSchedule(ws, { passphrase: "pw", signal: stop.signal, sleep: async () => undefined });
      await loop();
      const published = await withFull();
      expect(published.length).toBeGreaterThan(0);
      expect(published.length).toBeLessThan(ids.length);
      ws.store.reserveCrl = reserve;
      await nextStart(ws);
      expect(await withFull()).toEqual(ids);
    } finally {
      await ws.close();
    }
  });

  it("tells the schedule's thread to stop while it is still starting, and takes its ending then as a clean stop", async () => {
    const posted: unknown[] = [];
    const worker = Object.assign(new EventEmitter(), {
      postMessage: (m: unknown) => {
        posted.push(m);
        // a thread stopped mid start-up ends its round between CAs and exits, maybe before saying "ready"
        if (m === "stop") queueMicrotask(() => worker.emit("exit", 0));
      },
      terminate: async () => 1,
    });
    const stop = new AbortController();
    const opening = superviseScheduleThread(worker as unknown as ScheduleWorker, { signal: stop.signal });
    stop.abort(); // SIGTERM before the thread said it was ready
    const loop = await opening;
    expect(posted).toEqual(["stop"]);
    await expect(loop()).resolves.toBeUndefined();
    expect(posted).toEqual(["stop"]);
  });

  it("ends the schedule's thread when it has not stopped within its bound (a round held by a store that does not answer), and says so", async () => {
    let terminated = false;
    const worker = Object.assign(new EventEmitter(), {
      postMessage: () => undefined, // told to stop, it never gets to: its round waits for the store
      terminate: async () => {
        terminated = true;
        worker.emit("exit", 1);
        return 1;
      },
    });
    const reported: Array<{ code?: string }> = [];
    const stop = new AbortController();
    const opening = superviseScheduleThread(worker as unknown as ScheduleWorker, { signal: stop.signal, stopWaitMs: 50, onError: (e) => reported.push(e) });
    worker.emit("message", { type: "ready" });
    const loop = await opening;
    const done = loop();
    stop.abort();
    await expect(done).resolves.toBeUndefined(); // it waited for the thread for good
    expect(terminated).toBe(true);
    expect(reported).toEqual([expect.objectContaining({ code: "ERR_STORE_UNRESPONSIVE" })]);
  });
});

describe("jpki serve's schedule in the calling thread, stopped while the store does not answer", () => {
  /**
   * Resolves with what `p` came to, or "still waiting" if it has not settled after a minute (the bound here is 50 ms):
   * a bound for the hang looked for, not a measure — a passing stop settles at once, and a loaded host's can take seconds.
   */
  const outcome = <T>(p: Promise<T>) =>
    Promise.race([p.then((v) => ({ resolved: v }), (e: unknown) => ({ rejected: e })), new Promise<"still waiting">((r) => setTimeout(() => r("still waiting"), 60_000).unref())]);
  const never = () => new Promise<never>(() => undefined);

  it("a round held by the store is abandoned at the thread's bound and said (ERR_STORE_UNRESPONSIVE); without onError the loop rejects with it", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-serve-stop-hung-")), "ws"));
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const crlStatus = ws.store.crlStatus.bind(ws.store);
    try {
      for (const withOnError of [true, false]) {
        const stop = new AbortController();
        const reported: Array<{ code?: string }> = [];
        const loop = await openCrlSchedule(ws, { passphrase: "pw", signal: stop.signal, stopWaitMs: 50, sleep: async () => undefined, ...(withOnError ? { onError: (e: unknown) => reported.push(e as { code?: string }) } : {}) });
        // the round's first store call never settles; SIGTERM comes while it waits
        ws.store.crlStatus = () => (stop.abort(), never());
        const r = await outcome(loop());
        ws.store.crlStatus = crlStatus;
        if (withOnError) {
          expect(r).toEqual({ resolved: undefined });
          expect(reported).toEqual([expect.objectContaining({ code: "ERR_STORE_UNRESPONSIVE", message: expect.stringContaining("abandoned it") })]);
        } else {
          expect(r).toEqual({ rejected: expect.objectContaining({ code: "ERR_STORE_UNRESPONSIVE" }) });
        }
      }
      // the start-up round too: an OCSP signing certificate whose store write never settles
      const stop = new AbortController();
      const reported: Array<{ code?: string }> = [];
      ws.store.putOcspResponder = () => (stop.abort(), never());
      const opened = await outcome(openCrlSchedule(ws, { passphrase: "pw", signal: stop.signal, stopWaitMs: 50, ocsp: { responderPassphrase: "pw" }, onError: (e) => reported.push(e as { code?: string }) }));
      expect(opened).toEqual({ resolved: expect.any(Function) });
      await expect((opened as { resolved: () => Promise<void> }).resolved()).resolves.toBeUndefined();
      expect(reported).toEqual([expect.objectContaining({ code: "ERR_STORE_UNRESPONSIVE" })]);
    } finally {
      await ws.close();
    }
  });
});
