/**
 * The CRL schedule: which CA needs a new CRL now, and publishing it. Every revocation must reach a published
 * CRL without an operator, and no verifier may ever hold an expired CRL (RFC 5280 §5.1.2.5: nextUpdate is
 * when the next CRL will be issued; shared/spec/JPKI.md "Distribution": at least daily).
 *
 * A CRL (a CA's full CRL, a municipality partition or the ARL: crl/scope.ts) is due when
 * - it has no published CRL yet ("missing");
 * - it has revocations no CRL covers yet and its last CRL is at least `intervalMs` old ("dirty"): many
 *   revocations in a burst make one CRL, not one each, yet none waits longer than the interval;
 * - its latest CRL's nextUpdate is within the refresh margin ("refresh"), even when nothing changed.
 * The clock is injected, so tests walk a quiet month in a few steps.
 */
import type { Clock } from "../pki/clock.js";
import type { CrlRecord, CrlScope, Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { PublishedCrl } from "./publisher.js";

export type DueReason = "missing" | "dirty" | "refresh";

export interface DueCrl {
  readonly caId: string;
  /** absent: the full CRL; else a municipality partition or "arl" */
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

/** The refresh margin in ms: the configured one, but never more than half the lifetime. */
export function refreshMarginMs(config: Pick<WorkspaceConfig, "crlLifetimeHours" | "crlRefreshMarginHours">): number {
  return Math.min(config.crlRefreshMarginHours, config.crlLifetimeHours / 2) * 3600_000;
}

/** Pure: what is due at `now` given every CRL scope's status. */
export function dueCrls(status: readonly ScopeState[], now: Date, opts: { intervalMs: number; marginMs: number }): DueCrl[] {
  const t = now.getTime();
  const due: DueCrl[] = [];
  for (const s of status) {
    const id = s.scope ? { caId: s.caId, scope: s.scope } : { caId: s.caId };
    if (!s.latest) due.push({ ...id, why: "missing" });
    else if (t >= s.latest.nextUpdate.getTime() - opts.marginMs) due.push({ ...id, why: "refresh" });
    else if (s.dirty && t - s.latest.thisUpdate.getTime() >= opts.intervalMs) due.push({ ...id, why: "dirty" });
  }
  return due;
}

export interface CrlScheduleOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly config: WorkspaceConfig;
  /** publishes these CRLs (a CrlUpdater's publishDue) */
  readonly publish: (due: readonly DueCrl[]) => Promise<readonly PublishedCrl[]>;
  /** longest a revocation waits for its CRL, ms (default 30 s) */
  readonly intervalMs?: number;
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
    return dueCrls(status, this.#o.clock.now(), { intervalMs: this.intervalMs, marginMs: refreshMarginMs(this.#o.config) });
  }

  /** Publishes whatever is due now; returns what was published, with why. */
  async tick(): Promise<Array<PublishedCrl & { readonly why: DueReason }>> {
    const due = await this.due();
    if (!due.length) return [];
    const key = (caId: string, scope: CrlScope | undefined) => `${caId}/${scope ?? ""}`;
    const why = new Map(due.map((d) => [key(d.caId, d.scope), d.why]));
    const out = await this.#o.publish(due);
    return out.map((p) => ({ ...p, why: why.get(key(p.caId, p.scope)) ?? "dirty" }));
  }
}
