/**
 * The CRL schedule: which CA needs a new CRL now, and publishing it. Every revocation must reach a published
 * CRL without an operator, and no verifier may ever hold an expired CRL (RFC 5280 §5.1.2.5: nextUpdate is
 * when the next CRL will be issued; shared/spec/JPKI.md "Distribution": at least daily).
 *
 * A CRL (a CA's full CRL, a municipality partition or the ARL: crl/scope.ts) is due when
 * - it has no published CRL yet ("missing");
 * - it has revocations no CRL covers yet and its last CRL is at least `intervalMs` old ("dirty"): many
 *   revocations in a burst make one CRL, not one each, yet none waits longer than the interval;
 * - its latest CRL's nextUpdate is within the refresh margin ("refresh"), even when nothing changed;
 * - its latest CRL's thisUpdate is more than FUTURE_CRL_TOLERANCE_MS ahead of the clock ("refresh"): published
 *   while the clock ran fast and corrected since, no verifier takes it (openssl: "CRL is not yet valid").
 *
 * With delta CRLs (config deltaCrlIntervalMinutes, crl/delta.ts) the full CRL is a base with a cadence of its
 * own, and revocations reach verifiers through deltas:
 * - a dirty full CRL is due only when revocations should go out as a new base (`pendingGoesTo`): its base is
 *   older than crlBaseIntervalHours, near its nextUpdate, not one a delta can be built on (published before
 *   the store kept what it covers), or its latest delta already lists deltaCrlMaxEntries entries;
 *   missing and refresh are as above;
 * - a CA's delta is due when none names its current base ("missing"), or its latest is a delta interval old:
 *   "dirty" with revocations since, "refresh" without (a delta lives two intervals, so deltas come on a
 *   steady cadence and a verifier polling at that cadence always finds a current one);
 * - a CA whose full CRL is due gets no delta of its own in the list: the updater publishes a delta right after
 *   every base, so the delta URL always names the newest base.
 * The clock is injected, so tests walk a quiet month in a few steps.
 */
import type { Clock } from "../pki/clock.js";
import { DELTA_SCOPE, type CrlRecord, type CrlScope, type DeltaCrlStatus, type Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { deltaCadence, type DeltaCadence } from "./delta.js";
import type { PublishedCrl } from "./publisher.js";

export type DueReason = "missing" | "dirty" | "refresh";

export interface DueCrl {
  readonly caId: string;
  /** absent: the full CRL; else a municipality partition, "arl" or "delta" */
  readonly scope?: CrlScope;
  readonly why: DueReason;
}

/** What the schedule decides from, for one CRL scope (store crlStatus and crlScopeStatus). */
export interface ScopeState {
  readonly caId: string;
  readonly scope?: CrlScope;
  readonly latest: CrlRecord | undefined;
  readonly dirty: boolean;
}

/**
 * How far a published CRL's thisUpdate may be ahead of the clock before it is republished: the skew the toolkit's
 * own verifiers allow (provider/follow.ts), and room for hosts sharing a store whose clocks differ a little, which
 * would otherwise republish each other's CRLs every tick. Found by a helper: a CRL published by a clock 9 hours
 * fast (an RTC kept in JST read as UTC) stayed up, "not yet valid" to every verifier, until its refresh margin.
 */
export const FUTURE_CRL_TOLERANCE_MS = 5 * 60_000;

/** The refresh margin in ms: the configured one, but never more than half the lifetime. */
export function refreshMarginMs(config: Pick<WorkspaceConfig, "crlLifetimeHours" | "crlRefreshMarginHours">): number {
  return Math.min(config.crlRefreshMarginHours, config.crlLifetimeHours / 2) * 3600_000;
}

/**
 * With deltas on: whether the revocations pending on a CA's full CRL go out as a new base or in a delta on the
 * current one. A base when there is none a delta can be built on, when it is crlBaseIntervalHours old or
 * within the refresh margin of its nextUpdate (a delta may not outlive it), or when its latest delta already
 * lists deltaCrlMaxEntries entries (verifiers would fetch a list as large as a base, every few minutes).
 */
export function pendingGoesTo(s: DeltaCrlStatus | undefined, now: Date, cadence: DeltaCadence, marginMs: number): "base" | "delta" {
  const base = s?.base;
  if (!s || !base || !s.deltaReady) return "base";
  const t = now.getTime();
  if (t - base.thisUpdate.getTime() >= cadence.baseIntervalMs || t >= base.nextUpdate.getTime() - marginMs) return "base";
  if (s.delta && s.delta.baseNumber === base.number && s.delta.entries >= cadence.maxEntries) return "base";
  return "delta";
}

/**
 * Whether `intervalMs` has passed since `since` at `t`. A clock stepped back behind `since` (a CRL published
 * while it ran fast, then corrected by NTP; a host behind another on a shared PostgreSQL store) counts as
 * passed: else a revocation would wait until the clock caught up with that CRL — an hour stepped back, an
 * hour unpublished. The CRL published then carries the corrected time, so the cadence resumes from it.
 */
function intervalPassed(t: number, since: Date, intervalMs: number): boolean {
  const elapsed = t - since.getTime();
  return elapsed < 0 || elapsed >= intervalMs;
}

/** What delta CRLs the schedule weighs: the cadence and every CA's delta status (store deltaCrlStatus). */
export interface DeltaState {
  readonly cadence: DeltaCadence;
  readonly status: readonly DeltaCrlStatus[];
}

/** Pure: what is due at `now` given every CRL scope's status (and, with deltas on, every CA's delta status). */
export function dueCrls(status: readonly ScopeState[], now: Date, opts: { intervalMs: number; marginMs: number; deltas?: DeltaState }): DueCrl[] {
  const t = now.getTime();
  const due: DueCrl[] = [];
  const deltas = opts.deltas;
  const deltaOf = new Map(deltas?.status.map((d) => [d.caId, d]));
  for (const s of status) {
    const id = s.scope ? { caId: s.caId, scope: s.scope } : { caId: s.caId };
    if (!s.latest) due.push({ ...id, why: "missing" });
    else if (t >= s.latest.nextUpdate.getTime() - opts.marginMs || s.latest.thisUpdate.getTime() - t > FUTURE_CRL_TOLERANCE_MS) due.push({ ...id, why: "refresh" });
    else if (s.dirty && intervalPassed(t, s.latest.thisUpdate, opts.intervalMs)) {
      // With deltas, a full CRL's pending revocations wait for their base unless a delta cannot carry them.
      if (!deltas || s.scope || pendingGoesTo(deltaOf.get(s.caId), now, deltas.cadence, opts.marginMs) === "base") due.push({ ...id, why: "dirty" });
    }
  }
  if (!deltas) return due;
  const baseDue = new Set(due.filter((d) => !d.scope).map((d) => d.caId));
  for (const d of deltas.status) {
    const base = d.base;
    if (baseDue.has(d.caId) || !base || !d.deltaReady || base.nextUpdate.getTime() <= t) continue;
    if (!d.delta || d.delta.baseNumber !== base.number) due.push({ caId: d.caId, scope: DELTA_SCOPE, why: "missing" });
    else if (intervalPassed(t, d.delta.thisUpdate, deltas.cadence.intervalMs)) due.push({ caId: d.caId, scope: DELTA_SCOPE, why: d.pending ? "dirty" : "refresh" });
  }
  return due;
}

export interface CrlScheduleOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly config: WorkspaceConfig;
  /**
   * publishes these CRLs (a CrlUpdater's publishDue); passes each one published to `onPublished`, also when it
   * then raises
   */
  readonly publish: (due: readonly DueCrl[], onPublished: (crl: PublishedCrl) => void, signal?: AbortSignal) => Promise<readonly PublishedCrl[]>;
  /** longest a revocation waits for its CRL, ms (default 30 s) */
  readonly intervalMs?: number;
  /** CRLs kept outside the store, refreshed on each tick when due (the Bridge CA's ARL, ca/bridge.ts) */
  readonly refreshOthers?: () => Promise<ReadonlyArray<PublishedCrl & { readonly why: DueReason }>>;
  /**
   * Where a failure of `refreshOthers` goes. They run after the CAs' own CRLs, and their failure never holds
   * those back; without this, the tick throws it after publishing them.
   */
  readonly onOtherError?: (e: unknown) => void;
}

export class CrlSchedule {
  readonly #o: CrlScheduleOptions;

  constructor(o: CrlScheduleOptions) {
    if (o.intervalMs !== undefined && (!Number.isFinite(o.intervalMs) || o.intervalMs < 0)) throw new RangeError("intervalMs must be ≥ 0");
    this.#o = o;
  }

  get intervalMs(): number {
    return this.#o.intervalMs ?? 30_000;
  }

  async due(): Promise<DueCrl[]> {
    const store = this.#o.store;
    const status = [...(await store.crlStatus()), ...(await store.crlScopeStatus())];
    const cadence = deltaCadence(this.#o.config);
    const deltas = cadence ? { cadence, status: await store.deltaCrlStatus() } : undefined;
    return dueCrls(status, this.#o.clock.now(), { intervalMs: this.intervalMs, marginMs: refreshMarginMs(this.#o.config), ...(deltas ? { deltas } : {}) });
  }

  /**
   * Publishes whatever is due now; returns what was published, with why. `onPublished` sees each of them too, also
   * when the tick then raises (one CA failed after others were published): what a round published is reported
   * whether or not it ended well. `signal` abandons the round between CAs (see CrlUpdater.publishDue).
   */
  async tick(onPublished?: (crl: PublishedCrl & { readonly why: DueReason }) => void, signal?: AbortSignal): Promise<Array<PublishedCrl & { readonly why: DueReason }>> {
    const due = await this.due();
    const key = (caId: string, scope: CrlScope | undefined) => `${caId}/${scope ?? ""}`;
    const why = new Map(due.map((d) => [key(d.caId, d.scope), d.why]));
    const out: Array<PublishedCrl & { readonly why: DueReason }> = [];
    const landed = (p: PublishedCrl) => {
      const w = { ...p, why: why.get(key(p.caId, p.scope)) ?? ("dirty" as const) };
      out.push(w);
      onPublished?.(w);
    };
    let failure: { e: unknown } | undefined;
    if (due.length) {
      const seen = new Set<PublishedCrl>();
      try {
        const published = await this.#o.publish(due, (p) => (seen.add(p), landed(p)), signal);
        for (const p of published) if (!seen.has(p)) landed(p); // a publisher that returns them only
      } catch (e) {
        failure = { e };
      }
    }
    // The CAs' revocations are out before anything else is tried: a damaged Bridge never holds them back. Nor does
    // a CA that failed hold back the Bridge's ARL: it used to be skipped on every tick while that failure lasted.
    try {
      for (const p of (await this.#o.refreshOthers?.()) ?? []) (out.push(p), onPublished?.(p));
    } catch (e) {
      if (!this.#o.onOtherError) failure ??= { e };
      else this.#o.onOtherError(e);
    }
    if (failure) throw failure.e;
    return out;
  }
}
