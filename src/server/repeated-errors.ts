/**
 * The failures of a loop that retries every round (the CRL schedule of `jpki serve`, one round a second): the
 * first of a kind is reported at once, the same one again (same code and message) at most once per `everyMs` with
 * how many times it came meanwhile, and its end once a round passes without it. A failure that lasts — a Bridge
 * ARL a rewrap left undecryptable to this process, a full disk, a store away — said every round filled the log
 * with 86,400 lines a day and buried whatever else happened.
 */
import { JpkiError, isJpkiError } from "../errors.js";

/** A failure that stopped: its code, message, how many times it came and since when. */
export interface RecoveredError {
  readonly code: string;
  readonly message: string;
  readonly times: number;
  readonly since: Date;
}

interface Open {
  readonly code: string;
  readonly message: string;
  readonly since: number;
  times: number;
  /** times since the last report */
  unreported: number;
  reportedAt: number;
}

/** How often a lasting failure is said again (default). */
export const REPEAT_REPORT_MS = 5 * 60_000;

export class RepeatedErrors {
  readonly #report: (e: unknown) => void;
  readonly #recovered: (r: RecoveredError) => void;
  readonly #now: () => number;
  readonly #everyMs: number;
  readonly #open = new Map<string, Open>();
  #seen = new Set<string>();

  constructor(report: (e: unknown) => void, o: { readonly onRecovered?: (r: RecoveredError) => void; readonly now?: () => number; readonly everyMs?: number } = {}) {
    this.#report = report;
    this.#recovered = o.onRecovered ?? (() => undefined);
    this.#now = o.now ?? Date.now;
    this.#everyMs = o.everyMs ?? REPEAT_REPORT_MS;
  }

  /** One failure of this round. */
  error(e: unknown): void {
    const code = (e as { code?: unknown })?.code;
    const c = typeof code === "string" ? code : "error";
    const message = e instanceof Error ? e.message : String(e);
    const key = `${c}\n${message}`;
    this.#seen.add(key);
    const now = this.#now();
    const o = this.#open.get(key);
    if (!o) {
      this.#open.set(key, { code: c, message, since: now, times: 1, unreported: 0, reportedAt: now });
      this.#report(e);
      return;
    }
    o.times++;
    o.unreported++;
    if (now - o.reportedAt < this.#everyMs) return;
    const said = `${message} (failing since ${new Date(o.since).toISOString()}: ${o.unreported} more time${o.unreported === 1 ? "" : "s"} since it was last said)`;
    this.#report(isJpkiError(e) ? new JpkiError(e.code, said, { cause: e, ...(e.details ? { details: e.details } : {}) }) : Object.assign(new Error(said, { cause: e }), typeof code === "string" ? { code } : {}));
    o.unreported = 0;
    o.reportedAt = now;
  }

  /** A round ended: the failures it did not see have stopped. */
  roundEnd(): void {
    for (const [key, o] of this.#open) {
      if (this.#seen.has(key)) continue;
      this.#open.delete(key);
      this.#recovered({ code: o.code, message: o.message, times: o.times, since: new Date(o.since) });
    }
    this.#seen = new Set();
  }
}
