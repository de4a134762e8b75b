/**
 * The sweep of the registry side's issuance information (発行情報), shared/spec/JPKI.md "The link between the
 * two networks" step 1 (ours: when it goes).
 *
 * The registry side registers a certificate's issuance information when the certificate is issued
 * (store/types.ts RegisteredIssuance) so that a counter procedure can compare a change with the four items as
 * certified (registry/counter.ts). Two kinds of row stop mattering and stay in the table:
 * - an expired certificate's: the comparison ignores what is no longer valid at the change
 *   (store/types.ts isRegistered), so nothing deletes it at expiry — one row per certificate that expires;
 * - on SQLite, a revoked certificate's revoked by a notice batch: the batch leaves the row (deleting it cost
 *   a fifth of a notice's CPU) and the store no longer returns it — one row per such revocation.
 * Store.sweepRegisteredIssuances deletes both. `jpki serve` and `jpki watch` run it about daily from their CRL
 * schedule (IssuanceSweepSchedule below), `jpki registry sweep` on demand.
 *
 * Cut-off (ours): certificates expired more than a day ago (ISSUANCE_SWEEP_GRACE_MS). Whoever compares
 * decides at its own clock's now; a day keeps a row for a procedure in another process whose clock is behind
 * this one's, and for `jpki card renew` after a resident-code change, which finds the card's certificates among
 * the issuance information registered under the new code (counter/card-issuance.ts) until the CA side applies
 * that change.
 *
 * Only the registry side's copy goes. The CA's issuance records (certificates, and the four items it
 * certified), which the 2004 cabinet order keeps for ten years after expiry, are not touched.
 */
import { JpkiError, isJpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import type { Store } from "../store/types.js";

const HOUR = 3600_000;

/** How long after its certificate's expiry issuance information is kept (see the header). */
export const ISSUANCE_SWEEP_GRACE_MS = 24 * HOUR;
/** How often the CRL schedule sweeps. */
export const ISSUANCE_SWEEP_INTERVAL_MS = 24 * HOUR;
/**
 * How long after start-up the CRL schedule first sweeps: its catch-up publication goes first, and a process
 * restarted over and over does not sweep on every start.
 */
export const ISSUANCE_SWEEP_FIRST_DELAY_MS = 10 * 60_000;

export interface IssuanceSweepResult {
  /** expired issuance information removed (rows of revoked certificates also go, uncounted: Store.sweepRegisteredIssuances) */
  readonly removed: number;
  /** the cut-off: issuance information of certificates whose notAfter is before it went */
  readonly expiredBefore: Date;
  /** the signal aborted while it ran (it stopped after the batch in progress): the next sweep takes what is left */
  readonly stopped: boolean;
}

export interface IssuanceSweepParams {
  /** the sweeper's now (a workspace's clock) */
  readonly now: Date;
  /** default ISSUANCE_SWEEP_GRACE_MS */
  readonly graceMs?: number;
  readonly signal?: AbortSignal;
  /** rows per transaction (Store.sweepRegisteredIssuances) */
  readonly batchSize?: number;
}

/**
 * Deletes the issuance information of certificates expired before `now` − grace, and the rows of revoked
 * certificates, from the registry side. What the registry answers for any moment after the cut-off is
 * unchanged. Safe to run while everything else runs, and twice at once.
 */
export async function sweepIssuanceInformation(store: Store, p: IssuanceSweepParams): Promise<IssuanceSweepResult> {
  const graceMs = p.graceMs ?? ISSUANCE_SWEEP_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new JpkiError("ERR_USAGE", "the grace period of an issuance-information sweep must be a number of ms ≥ 0");
  const expiredBefore = new Date(p.now.getTime() - graceMs);
  const removed = await store.sweepRegisteredIssuances(expiredBefore, {
    ...(p.signal ? { signal: p.signal } : {}),
    ...(p.batchSize !== undefined ? { batchSize: p.batchSize } : {}),
  });
  return { removed, expiredBefore, stopped: p.signal?.aborted ?? false };
}

/** What one scheduled sweep came to. */
export type IssuanceSweepEvent =
  | (IssuanceSweepResult & { readonly kind: "swept"; readonly nextAt: Date })
  | { readonly kind: "failed"; readonly error: JpkiError; readonly nextAt: Date };

export interface IssuanceSweepScheduleOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** stops a sweep in progress between two batches (the schedule's stop) */
  readonly signal?: AbortSignal;
  readonly graceMs?: number;
  /** default ISSUANCE_SWEEP_INTERVAL_MS */
  readonly intervalMs?: number;
  /** default ISSUANCE_SWEEP_FIRST_DELAY_MS */
  readonly firstDelayMs?: number;
  /** each sweep's outcome, a failure included (its message names the operation, never a resident's data) */
  readonly onSweep?: (e: IssuanceSweepEvent) => void;
  /**
   * A monotonic clock in ms (see IssuanceSweepSchedule's trusted time). Default: performance.now with the system
   * clock; with an injected clock, that clock (tests move time with it, and it does not jump unless told).
   */
  readonly elapsedMs?: () => number;
}

/**
 * How far the wall clock may run ahead of the monotonic one before the sweep stops believing it: a minute, and a
 * thousandth of the time measured (NTP slews the wall clock by up to 500 ppm; a step is larger).
 */
const CLOCK_AHEAD_TOLERANCE_MS = 60_000;
const CLOCK_AHEAD_TOLERANCE_RATE = 1e-3;

/**
 * The daily sweep as the CRL schedule of `jpki serve` and `jpki watch` runs it: poke() at every round of the
 * schedule starts a sweep when one is due by the injected clock, in the background — the schedule's round
 * never waits for it, and a failure is reported and tried again an interval later, never thrown into the
 * round. The schedule runs in one process per deployment (serve's primary or its schedule thread; a watch), so
 * normally one process sweeps; two that both do are harmless (Store.sweepRegisteredIssuances).
 */
export class IssuanceSweepSchedule {
  readonly #o: IssuanceSweepScheduleOptions;
  readonly #intervalMs: number;
  readonly #elapsed: () => number;
  /** the last wall-clock time believed, and the monotonic clock's reading then */
  #anchor: { wall: number; mono: number };
  #nextAt: number;
  #running: Promise<void> | undefined;

  constructor(o: IssuanceSweepScheduleOptions) {
    const intervalMs = o.intervalMs ?? ISSUANCE_SWEEP_INTERVAL_MS;
    const firstDelayMs = o.firstDelayMs ?? ISSUANCE_SWEEP_FIRST_DELAY_MS;
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError("intervalMs must be > 0");
    if (!Number.isFinite(firstDelayMs) || firstDelayMs < 0) throw new RangeError("firstDelayMs must be ≥ 0");
    this.#o = o;
    this.#intervalMs = intervalMs;
    this.#elapsed = o.elapsedMs ?? (o.clock === systemClock ? () => performance.now() : () => o.clock.now().getTime());
    const wall = o.clock.now().getTime();
    this.#anchor = { wall, mono: this.#elapsed() };
    this.#nextAt = wall + firstDelayMs;
  }

  /**
   * Now, as far as the sweep believes it: the wall clock, unless it has run ahead of the time the monotonic clock
   * measured since the wall clock was last believed — then that time. A sweep deletes for good: a wall clock
   * stepped two years ahead while `jpki serve` ran would have taken the issuance information of every certificate
   * expiring within those two years, and their holders' moves would then send the CA side no notice (the
   * certificates stay valid). Taken earlier, the cut-off only keeps rows a little longer. A clock set back is
   * believed at once (an earlier cut-off is safe), and later jumps are measured from it.
   */
  #trustedNow(): Date {
    const wall = this.#o.clock.now().getTime();
    const mono = this.#elapsed();
    const since = mono - this.#anchor.mono;
    const bound = this.#anchor.wall + since;
    if (wall <= bound + CLOCK_AHEAD_TOLERANCE_MS + since * CLOCK_AHEAD_TOLERANCE_RATE) {
      this.#anchor = { wall, mono };
      return new Date(wall);
    }
    return new Date(bound);
  }

  /** When the next sweep is due. */
  get nextAt(): Date {
    return new Date(this.#nextAt);
  }

  /** Starts a sweep if one is due and none is running; returns at once, never throws. Whether it started one. */
  poke(): boolean {
    const now = this.#trustedNow();
    if (this.#running || this.#o.signal?.aborted || now.getTime() < this.#nextAt) return false;
    // Due again an interval after this one started, whatever comes of it: a failure waits for the next day too.
    this.#nextAt = now.getTime() + this.#intervalMs;
    const nextAt = this.nextAt;
    this.#running = sweepIssuanceInformation(this.#o.store, { now, ...(this.#o.graceMs !== undefined ? { graceMs: this.#o.graceMs } : {}), ...(this.#o.signal ? { signal: this.#o.signal } : {}) })
      .then(
        (r) => this.#o.onSweep?.({ kind: "swept", ...r, nextAt }),
        (e: unknown) => this.#o.onSweep?.({ kind: "failed", error: isJpkiError(e) ? e : new JpkiError("ERR_INTERNAL", `sweeping issuance information failed: ${(e as Error)?.message ?? String(e)}`, { cause: e }), nextAt }),
      )
      .catch(() => undefined) // a throwing onSweep must not become an unhandled rejection
      .finally(() => (this.#running = undefined));
    return true;
  }

  /** Resolves once no sweep is running (at a stop, before the store closes). Never rejects. */
  async settled(): Promise<void> {
    await this.#running;
  }
}
