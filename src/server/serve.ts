/**
 * `jpki serve` as library services: the HTTP publication point (app.ts) listening with a graceful stop, and
 * the CRL schedule (crl/schedule.ts) that keeps what it serves current — CAs with new revocations from any
 * source get a CRL within the interval, every CRL is republished before its nextUpdate — so one `jpki serve`
 * is a complete publication point. With several HTTP processes (the CLI's --workers), one process runs the
 * schedule and every process serves. The schedule also sweeps the registry side's issuance information about
 * daily (registry/issuance-sweep.ts): the one process that runs it does, beside the rounds, never holding them up.
 */
import { setTimeout as sleepFor } from "node:timers/promises";
import { OcspSignerRenewal, type OcspSignerPolicy } from "../ca/ocsp-signer.js";
import type { OcspResponderRecord } from "../store/types.js";
import { CrlUpdater } from "../crl/updater.js";
import { STOP_ROUND_WAIT_MS, settleWithinStop } from "../crl/stop-bound.js";
import { IssuanceSweepSchedule, type IssuanceSweepEvent } from "../registry/issuance-sweep.js";
import type { PublishedCrl } from "../crl/publisher.js";
import { JpkiError } from "../errors.js";
import { RepeatedErrors, type RecoveredError } from "./repeated-errors.js";
import type { Workspace } from "../workspace/workspace.js";
import { buildServer, type ServerOptions, pathPrefix } from "./app.js";

export { AccessLog } from "./access-log.js";
export { openCrlScheduleThread, scheduleThreadAvailable } from "./schedule-thread.js";
export { checkResponderPassphrase } from "../ca/ocsp-signer.js";

export interface HttpOptions extends ServerOptions {
  readonly host: string;
  /** 0 picks a free port */
  readonly port: number;
  /**
   * stops the server: new connections are refused, a request arriving on an open one is answered 503
   * "stopping" and its connection closed, answers in flight get stopGraceMs to finish (each the last on its
   * connection); then what is left is cut
   */
  readonly signal: AbortSignal;
  /** with the server's URL and the status page's (under the workspace baseUrl's path) */
  readonly onListening?: (url: string, pageUrl: string) => void;
  /** after the signal, how long responses in flight may take before their connections are cut, ms */
  readonly stopGraceMs?: number;
}

/**
 * How long a stop waits for responses in flight. server.close() alone waits for every connection with a
 * request on it: a client that stopped reading a 50 MB download (or one that connected and never sent a
 * byte) held SIGTERM off indefinitely. Below the 10 s the --workers primary gives a worker before SIGKILL.
 */
export const STOP_GRACE_MS = 5_000;

/** Serves until `signal` aborts, then closes gracefully (in-flight responses get stopGraceMs, then are cut). */
export async function serveHttp(ws: Workspace, o: HttpOptions): Promise<void> {
  const { app } = await buildServer(ws, o);
  // Stopped while it was being built: closed unopened (its verifier refresh and OCSP polling would otherwise go
  // on reading a store the caller is about to close).
  if (o.signal.aborted) {
    await app.close();
    return;
  }
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new JpkiError("ERR_USAGE", `cannot listen on ${o.host}:${o.port} (${code}): choose another --listen address`, { cause: e });
    }
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  const url = `${o.tls ? "https" : "http"}://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;
  o.onListening?.(url, `${url}${o.prefix ?? pathPrefix(ws.config.baseUrl)}/`);
  // A signal that fired while the port opened (or in onListening) fires no "abort" event again: waiting for one
  // then served on forever, SIGTERM or not.
  if (!o.signal.aborted) await new Promise<void>((resolve) => o.signal.addEventListener("abort", () => resolve(), { once: true }));
  const cut = setTimeout(() => app.server.closeAllConnections(), o.stopGraceMs ?? STOP_GRACE_MS);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

export interface ScheduleOptions {
  /** the CA key passphrase (the schedule signs CRLs) */
  readonly passphrase: string;
  /** longest a revocation waits for its CRL, ms */
  readonly crlIntervalMs?: number;
  /** how often to look, ms (default 1000) */
  readonly pollMs?: number;
  readonly signal: AbortSignal;
  readonly onCrl?: (crl: PublishedCrl & { readonly why: string }) => void;
  /**
   * a failed round (store unreachable, a full disk): logged, retried at the next poll. The same failure again is
   * passed on at most once per five minutes, with how often it came (server/repeated-errors.ts).
   */
  readonly onError?: (e: unknown) => void;
  /** a failure onError was told of stopped: a round passed without it */
  readonly onRecovered?: (r: RecoveredError) => void;
  /**
   * Keep every CA's delegated OCSP signing certificate current (ca/ocsp-signer.ts): its key is wrapped under
   * `responderPassphrase`, which the serving processes need (and not the CA passphrase, when they differ).
   */
  readonly ocsp?: { readonly responderPassphrase: string; readonly policy?: OcspSignerPolicy; readonly onIssued?: (r: OcspResponderRecord) => void };
  /** each daily sweep of the registry side's issuance information (registry/issuance-sweep.ts), a failure included */
  readonly onSweep?: (e: IssuanceSweepEvent) => void;
  /** how the loop waits between rounds (tests inject one that moves their clock instead) */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * how long a stop waits for a round (the start-up one too), ms, before it goes on without it (default
   * STOP_ROUND_WAIT_MS, as for the schedule's thread): a round held by a store that does not answer is abandoned,
   * said through onError (ERR_STORE_UNRESPONSIVE; without onError the loop rejects with it)
   */
  readonly stopWaitMs?: number;
}

/** Runs the CRL schedule until `signal` aborts. A wrong passphrase fails before the first round. */
export async function runCrlSchedule(ws: Workspace, o: ScheduleOptions): Promise<void> {
  return (await openCrlSchedule(ws, o))();
}

/**
 * Opens every CA's key (a wrong passphrase fails here, before a server starts listening) and returns the
 * schedule's loop, which runs until `signal` aborts.
 *
 * The start-up round (a first start, or after a restore: an OCSP signing certificate for every CA, half a second
 * of CPU each, then every CA's CRLs) stops between CAs once `signal` aborts, as `jpki watch`'s does (ca/spool.ts):
 * what was issued and published stays, the rest is due at the next start. It ran to its end, ≈ 25 s for 40 CAs,
 * SIGTERM or not, and a service manager's stop timeout killed it.
 */
export async function openCrlSchedule(ws: Workspace, o: ScheduleOptions): Promise<() => Promise<void>> {
  // In this thread a round held by the store cannot be ended, as the schedule's thread is: a stop waits for it as
  // long as for the thread, then goes on without it (crl/stop-bound.ts). It waited as long as the store did.
  const bound = <T>(work: Promise<T>, late: T) =>
    settleWithinStop(work, {
      signal: o.signal,
      waitMs: o.stopWaitMs ?? STOP_ROUND_WAIT_MS,
      what: "the CRL schedule",
      onLate: (e) => {
        if (!o.onError) throw e;
        o.onError(e);
        return late;
      },
    });
  const opened = await bound(
    (async () => {
      const updater = new CrlUpdater(ws, o.passphrase);
      await updater.preflight(o.signal);
      let renewal: OcspSignerRenewal | undefined;
      if (o.ocsp && !o.signal.aborted) {
        // Before any server listens: a fresh workspace answers OCSP from the first request.
        renewal = new OcspSignerRenewal(ws, { caPassphrase: o.passphrase, responderPassphrase: o.ocsp.responderPassphrase, ...(o.ocsp.policy ? { policy: o.ocsp.policy } : {}) });
        for (const r of await renewal.preflight(o.signal)) o.ocsp.onIssued?.(r);
      }
      return { updater, renewal };
    })(),
    undefined,
  );
  if (!opened) return async () => undefined; // abandoned at the stop: there is no loop to run
  return () => bound(scheduleLoop(ws, opened.updater, o, opened.renewal), undefined);
}

async function scheduleLoop(ws: Workspace, updater: CrlUpdater, o: ScheduleOptions, renewal: OcspSignerRenewal | undefined): Promise<void> {
  const errors = o.onError ? new RepeatedErrors(o.onError, { now: () => ws.clock.now().getTime(), ...(o.onRecovered ? { onRecovered: o.onRecovered } : {}) }) : undefined;
  const onError = errors ? (e: unknown) => errors.error(e) : undefined;
  const schedule = updater.schedule(o.crlIntervalMs, onError ? { onOtherError: onError } : {});
  const sleep = o.sleep ?? ((ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal }));
  // Stopped with the loop, however it ends, so the store is not closed under a sweep in progress.
  const sweepStop = new AbortController();
  const sweep = new IssuanceSweepSchedule({ store: ws.store, clock: ws.clock, signal: sweepStop.signal, ...(o.onSweep ? { onSweep: o.onSweep } : {}) });
  try {
    while (!o.signal.aborted) {
      try {
        // Each CRL as the round reports it: also those of a round that then raises (one CA failed), logged before
        // the failure is; they used to go unlogged, the failure alone.
        await schedule.tick((p) => {
          renewal?.noticeCrl(p.caId); // a new CA's signer at this round's renewal tick, not the minute's
          if (!p.superseded) o.onCrl?.(p);
        }, o.signal);
      } catch (e) {
        if (onError) onError(e);
        else throw e;
      }
      errors?.roundEnd();
      // The renewal says its lasting failure (a rewrap) once an hour itself: passed on as it comes.
      if (renewal) {
        try {
          for (const r of await renewal.tick(o.signal)) o.ocsp?.onIssued?.(r);
        } catch (e) {
          if (o.onError) o.onError(e);
          else throw e;
        }
      }
      // When due, after this round's CRLs are out; it runs beside the next rounds, which never wait for it.
      sweep.poke();
      try {
        await sleep(o.pollMs ?? 1000, o.signal);
      } catch {
        break; // aborted while idle
      }
    }
  } finally {
    sweepStop.abort();
    await sweep.settled();
  }
}
