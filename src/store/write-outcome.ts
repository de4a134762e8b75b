/**
 * Whether a failed store write may have been carried out all the same. A write whose failure says nothing was sent,
 * or that the server refused it, did not happen and may be tried again. One sent on a connection that was then lost
 * before the server's answer came did or did not commit, and nothing the store can ask tells which: tried again, it
 * may be in the store twice (a verifier's fetches counted twice); given up for lost, it may be there all the same (a
 * disclosure record of an answer given 503 — disclosure-log.ts says why that side is the safe one).
 *
 * Two failures say so, both PostgreSQL's (SQLite writes in this process: its failures are final):
 * - `details.lateCall: "connection-closed"` (ERR_STORE_UNRESPONSIVE): jpki serve's watchdog declared the call late and
 *   the store closed its connection under the statement (postgres.ts #cutLate);
 * - `details.connectionLost: "after-sending"` (ERR_STORE_UNREACHABLE): the connection failed under the statement by
 *   itself (ECONNRESET, the server's host gone, TCP keepalive giving up). Not when the driver refused to send on a
 *   connection it knew was broken, nor when the connection could not be had at all: those sent nothing.
 */
import type { JpkiError } from "../errors.js";

/** The detail a store puts on a failure of a statement sent, whose connection was lost before its answer came. */
export const CONNECTION_LOST_AFTER_SENDING = "after-sending";

/** Whether the write that failed with `e` may have been carried out (see the header): neither retry it nor count it lost. */
export function mayHaveBeenWritten(e: unknown): boolean {
  const details = (e as JpkiError | undefined)?.details;
  return details?.lateCall === "connection-closed" || details?.connectionLost === CONNECTION_LOST_AFTER_SENDING;
}

/**
 * How many records are in writes whose outcome is not known, for a writer that keeps no queue of its own (the
 * liveness checks' writes, one per request: verifier/liveness.ts): `abandoned`, in writes past jpki serve's bound not
 * settled yet, or settled with a failure that may have been written; `lost`, in writes failed in time on a
 * connection lost after they were sent. jpki serve says them at the stop, as it says the disclosure log's, and in
 * /metrics while it runs (jpki_unknown_write_records).
 */
export class UnknownWrites {
  #abandoned = 0;
  #lost = 0;

  /** `n` records in a write abandoned at the bound, whose own outcome is `own`: counted until it settles known. */
  abandoned(n: number, own: Promise<unknown>): void {
    this.#abandoned += n;
    own.then(
      () => (this.#abandoned -= n),
      (e: unknown) => {
        if (!mayHaveBeenWritten(e)) this.#abandoned -= n;
      },
    );
  }

  /** `n` records in a write that failed in time with `e`: counted when it may have been written all the same. */
  failed(n: number, e: unknown): void {
    if (mayHaveBeenWritten(e)) this.#lost += n;
  }

  get counts(): { readonly abandoned: number; readonly lost: number } {
    return { abandoned: this.#abandoned, lost: this.#lost };
  }
}
