/**
 * How long a stop waits for a CRL schedule's round, and the wait itself for a round run in the calling thread.
 * A round stops between CAs once told (a CA begun finishes its CRLs: seconds, tens of seconds for a national CRL),
 * but one held by a store that does not answer — a PostgreSQL host gone silent, which TCP keepalive ends after
 * ≈ 10 min — held the stop, and SIGTERM with it, until the service manager's SIGKILL. On its own thread
 * (server/schedule-thread.ts) the round is ended at this bound, as a crash would end it; in the calling thread
 * (`jpki serve --workers N`'s primary, a serve from the TypeScript sources, `jpki watch`) it cannot be ended,
 * so it is abandoned: the stop goes on without it, and what it was publishing is due again at the next start (a
 * CRL is installed whole or not at all; a reserved number is never reused).
 */
import { JpkiError } from "../errors.js";

/** The bound, ms: the same for a round on its own thread and one in the calling thread. */
export const STOP_ROUND_WAIT_MS = 30_000;

/** The error a stop past the bound is reported with. */
export function roundAbandoned(what: string, waitMs: number, ended: "ended" | "abandoned", after = "what it was publishing is due again at the next start"): JpkiError {
  return new JpkiError("ERR_STORE_UNRESPONSIVE", `${what} did not finish its round within ${waitMs} ms of the stop (a store that does not answer?): ${ended} it; ${after}`);
}

/**
 * `work`'s outcome, or — once `signal` has aborted and `waitMs` has passed without it settling — `onLate`'s, given
 * the error that says so (it returns what to resolve with, or throws). `work` is then left to itself: its later
 * outcome, a rejection included, goes nowhere.
 */
export function settleWithinStop<T>(
  work: Promise<T>,
  o: { readonly signal: AbortSignal; readonly waitMs: number; readonly what: string; readonly after?: string; readonly onLate: (e: JpkiError) => T },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => {
        try {
          resolve(o.onLate(roundAbandoned(o.what, o.waitMs, "abandoned", o.after)));
        } catch (e) {
          reject(e);
        }
      }, o.waitMs);
    };
    const done = () => {
      clearTimeout(timer);
      o.signal.removeEventListener("abort", arm);
    };
    if (o.signal.aborted) arm();
    else o.signal.addEventListener("abort", arm, { once: true });
    work.then(
      (v) => (done(), resolve(v)),
      (e: unknown) => (done(), reject(e)),
    );
  });
}
