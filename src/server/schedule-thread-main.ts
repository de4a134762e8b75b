/**
 * The CRL schedule's thread (server/schedule-thread.ts starts it): opens the workspace and every CA key,
 * says it is ready, and runs the schedule until it is told to stop. Started as a worker; importing it
 * elsewhere does nothing.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { OcspResponderRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { threadError, threadSweepEvent, type ScheduleThreadData, type ScheduleThreadMessage } from "./schedule-thread.js";
import { openCrlSchedule } from "./serve.js";

async function main(port: NonNullable<typeof parentPort>, o: ScheduleThreadData): Promise<void> {
  const post = (m: ScheduleThreadMessage) => port.postMessage(m);
  const stop = new AbortController();
  port.on("message", (m) => {
    if (m === "stop") stop.abort();
  });
  let ws: Workspace;
  try {
    // With the stop: a thread told to stop while its open waits (a PostgreSQL server that stopped answering after
    // the serving thread's open, another process's upgrade) ends at once, not after the connect or lock timeout
    // with that timeout's error, which failed the whole serve's clean stop.
    ws = await Workspace.openAsync(o.root, { ...(o.storeUrl ? { storeUrl: o.storeUrl } : {}), signal: stop.signal });
  } catch (e) {
    // Stopped before it was ready: ending without a word is a clean stop (superviseScheduleThread).
    if (stop.signal.aborted && e === stop.signal.reason) {
      port.close();
      return;
    }
    post({ type: "failed", error: threadError(e) });
    port.close();
    return;
  }
  try {
    const loop = await openCrlSchedule(ws, {
      passphrase: o.passphrase,
      ...(o.crlIntervalMs !== undefined ? { crlIntervalMs: o.crlIntervalMs } : {}),
      ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
      signal: stop.signal,
      onCrl: (crl) => post({ type: "crl", crl }),
      onError: (e) => post({ type: "error", error: threadError(e) }),
      onRecovered: (r) => post({ type: "recovered", recovered: r }),
      onSweep: (e) => post({ type: "sweep", event: threadSweepEvent(e) }),
      ...(o.ocsp ? { ocsp: { ...o.ocsp, onIssued: (record: OcspResponderRecord) => post({ type: "issued", record }) } } : {}),
    });
    post({ type: "ready" });
    await loop();
  } catch (e) {
    post({ type: "failed", error: threadError(e) });
  } finally {
    try {
      await ws.close();
    } catch (e) {
      post({ type: "failed", error: threadError(e) });
    }
    port.close();
  }
}

const options = (workerData as { jpkiSchedule?: ScheduleThreadData } | null)?.jpkiSchedule;
if (!isMainThread && parentPort && options) void main(parentPort, options);
