/**
 * The CRL schedule of `jpki serve` on a thread of its own (server/schedule-thread-main.ts), beside the thread
 * that answers verifiers.
 *
 * Why: signing a CRL of a million entries takes the schedule about half a second of CPU, and while the
 * schedule shared the serving thread every request waited that long. It also kept the serving thread's
 * JavaScript engine from settling: measured on the 304 path, a process that ran the schedule with the OCSP
 * signer renewal on the serving thread answered 304s at 12.5 µs of CPU each in some runs and at 16 µs in
 * most (node's stream internals left on slow property paths), where a process serving only stayed at 12.5.
 *
 * The thread opens the workspace itself (its own store connection) and every CA key before it says it is
 * ready, so a wrong passphrase still fails before a port is opened. What it publishes and every failure it
 * retries come back as events. Used where the compiled thread module exists (not when the TypeScript
 * sources run directly, as in unit tests: there the schedule runs in the calling thread, server/serve.ts).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { JpkiError, fromThreadError, toThreadError, type ThreadError as ThreadErrorShape } from "../errors.js";
import type { PublishedCrl } from "../crl/publisher.js";
import { STOP_ROUND_WAIT_MS, roundAbandoned } from "../crl/stop-bound.js";
import type { OcspSignerPolicy } from "../ca/ocsp-signer.js";
import type { OcspResponderRecord } from "../store/types.js";
import type { IssuanceSweepEvent } from "../registry/issuance-sweep.js";
import type { RecoveredError } from "./repeated-errors.js";

const THREAD = new URL("./schedule-thread-main.js", import.meta.url);

/** What the thread is started with (workerData.jpkiSchedule). */
export interface ScheduleThreadData {
  readonly root: string;
  readonly storeUrl?: string;
  readonly passphrase: string;
  readonly crlIntervalMs?: number;
  readonly pollMs?: number;
  readonly ocsp?: { readonly responderPassphrase: string; readonly policy?: OcspSignerPolicy };
}

/** An error as it crosses the thread boundary (errors.ts). */
export type ThreadError = ThreadErrorShape;

/** A sweep's outcome as it crosses the thread boundary: its error as a ThreadError. */
export type ThreadSweepEvent = Exclude<IssuanceSweepEvent, { kind: "failed" }> | { readonly kind: "failed"; readonly error: ThreadError; readonly nextAt: Date };

/** What the thread posts. */
export type ScheduleThreadMessage =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly error: ThreadError }
  | { readonly type: "crl"; readonly crl: PublishedCrl & { readonly why: string } }
  | { readonly type: "issued"; readonly record: OcspResponderRecord }
  | { readonly type: "error"; readonly error: ThreadError }
  | { readonly type: "recovered"; readonly recovered: RecoveredError }
  | { readonly type: "sweep"; readonly event: ThreadSweepEvent };

export const threadError = toThreadError;
const rebuild = fromThreadError;

/** A sweep's outcome ready to post. */
export function threadSweepEvent(e: IssuanceSweepEvent): ThreadSweepEvent {
  return e.kind === "failed" ? { kind: "failed", error: threadError(e.error), nextAt: e.nextAt } : e;
}

function rebuildSweepEvent(e: ThreadSweepEvent): IssuanceSweepEvent {
  return e.kind === "failed" ? { kind: "failed", error: rebuild(e.error), nextAt: e.nextAt } : e;
}

/** Whether the schedule can run on its own thread here (the compiled thread module exists). */
export function scheduleThreadAvailable(): boolean {
  return existsSync(fileURLToPath(THREAD));
}

export interface ScheduleThreadOptions extends ScheduleThreadData {
  readonly signal: AbortSignal;
  readonly onCrl?: (crl: PublishedCrl & { readonly why: string }) => void;
  /** a failed round (store unreachable, a full disk): the thread retries at its next poll */
  readonly onError?: (e: JpkiError) => void;
  /** a failure onError was told of stopped (server/repeated-errors.ts) */
  readonly onRecovered?: (r: RecoveredError) => void;
  readonly onIssued?: (r: OcspResponderRecord) => void;
  /** each daily sweep of the registry side's issuance information, done on the thread (server/serve.ts) */
  readonly onSweep?: (e: IssuanceSweepEvent) => void;
  /** how long the thread may take to stop once told, ms, before it is ended (default STOP_THREAD_WAIT_MS) */
  readonly stopWaitMs?: number;
  /**
   * The schedule in the calling thread (openCrlSchedule), opened instead when no thread can be made: the Worker
   * constructor throws ERR_WORKER_INIT_FAILED at the process's thread limit (a container's pids.max, systemd's
   * TasksMax). Without it, that error rejects.
   */
  readonly inThread?: () => Promise<() => Promise<void>>;
}

/**
 * How long a stop waits for the schedule's thread to finish its round (crl/stop-bound.ts says why): past it the
 * thread is ended, as a crash would end it. The same bound as a round in the calling thread, which is abandoned.
 */
export const STOP_THREAD_WAIT_MS = STOP_ROUND_WAIT_MS;

/**
 * Starts the schedule's thread and resolves once it has opened the workspace and every CA key (rejects with
 * its error: a wrong passphrase, an unreachable store). Returns the loop: it resolves when `signal` has
 * aborted and the thread has finished its round and closed its workspace.
 */
export async function openCrlScheduleThread(o: ScheduleThreadOptions): Promise<() => Promise<void>> {
  const { signal, onCrl, onError, onRecovered, onIssued, onSweep, stopWaitMs, inThread, ...data } = o;
  let worker: Worker;
  try {
    worker = newThread(THREAD, { workerData: { jpkiSchedule: data satisfies ScheduleThreadData } });
  } catch (e) {
    // Not a reason to serve without CRLs: the schedule only shares this thread with the server then.
    if (inThread) return inThread();
    throw e;
  }
  return superviseScheduleThread(worker, {
    signal,
    ...(stopWaitMs !== undefined ? { stopWaitMs } : {}),
    ...(onCrl ? { onCrl } : {}),
    ...(onError ? { onError } : {}),
    ...(onRecovered ? { onRecovered } : {}),
    ...(onIssued ? { onIssued } : {}),
    ...(onSweep ? { onSweep } : {}),
  });
}

/** What superviseScheduleThread needs of a Worker. */
export type ScheduleWorker = Pick<Worker, "on" | "once" | "postMessage" | "terminate">;

/**
 * openCrlScheduleThread's watch over its thread: ready or failed, events passed on, stopped on `signal`.
 * The thread ending by any way but being told to stop — an error, a "failed" message, a plain exit — makes
 * the loop reject (ERR_INTERNAL unless the error had a code of ours): a schedule that silently stopped
 * would let every CRL go stale while the server kept answering.
 */
export async function superviseScheduleThread(
  worker: ScheduleWorker,
  o: Pick<ScheduleThreadOptions, "signal" | "onCrl" | "onError" | "onRecovered" | "onIssued" | "onSweep" | "stopWaitMs">,
): Promise<() => Promise<void>> {
  const { signal, onCrl, onError, onRecovered, onIssued, onSweep } = o;
  const stopWaitMs = o.stopWaitMs ?? STOP_THREAD_WAIT_MS;
  let stopTimer: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  let stopping = false;
  let told = false;
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      clearTimeout(stopTimer);
      // Ending unasked, even without an error, leaves the CRLs to go stale: the caller must hear of it.
      if (!stopping) failure ??= new JpkiError("ERR_INTERNAL", `the CRL schedule's thread ended unexpectedly (exit code ${code})`);
      resolve();
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    worker.on("message", (m: ScheduleThreadMessage) => {
      if (m.type === "ready") resolve();
      else if (m.type === "failed") reject((failure = rebuild(m.error)));
      else if (m.type === "crl") onCrl?.(m.crl);
      else if (m.type === "issued") onIssued?.(m.record);
      else if (m.type === "error") onError?.(rebuild(m.error));
      else if (m.type === "recovered") onRecovered?.(m.recovered);
      else if (m.type === "sweep") onSweep?.(rebuildSweepEvent(m.event));
    });
    worker.on("error", (e) => {
      // an exception nothing in the thread caught: its code when it has one, else ERR_INTERNAL
      failure ??= rebuild(threadError(e));
      reject(failure);
    });
    // Told to stop before it was ready, a thread may end without saying so: that is a clean stop.
    void exited.then(() => (failure ? reject(failure) : resolve()));
  });
  const stop = () => {
    stopping = true;
    if (told) return;
    told = true;
    worker.postMessage("stop");
    stopTimer = setTimeout(() => {
      onError?.(roundAbandoned("the CRL schedule's thread", stopWaitMs, "ended"));
      void worker.terminate();
    }, stopWaitMs);
  };
  // Told from the start, not once the loop runs: the thread's start-up round (every CA's OCSP signing certificate
  // and CRLs on a first start) stops between CAs on it (openCrlSchedule), and said "ready" only after its end.
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  try {
    await ready;
  } catch (e) {
    signal.removeEventListener("abort", stop);
    stopping = true;
    await worker.terminate();
    throw e;
  }
  return async () => {
    await exited;
    signal.removeEventListener("abort", stop);
    if (failure) throw failure;
  };
}
