/**
 * The CRL schedule: which CA needs a new CRL now, and publishing it. Every revocation must reach a published
 * CRL without an operator, and no verifier may ever hold an expired CRL (RFC 5280 §5.1.2.5: nextUpdate is
 * when the next CRL will be issued; shared/spec/JPKI.md "Distribution": at least daily).
 *
 * A CA is due when
 * - it has no published CRL yet ("missing");
 * - it has revocations no CRL covers yet and its last CRL is at least `intervalMs` old ("dirty"): many
 *   revocations in a burst make one CRL, not one each, yet none waits longer than the interval;
 * - its latest CRL's nextUpdate is within the refresh margin ("refresh"), even when nothing changed.
 * The clock is injected, so tests walk a quiet month in a few steps.
 */
import type { Clock } from "../pki/clock.js";
import type { CrlStatus, Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { PublishedCrl } from "./publisher.js";

export type DueReason = "missing" | "dirty" | "refresh";

export interface DueCrl {
  readonly caId: string;
  readonly why: DueReason;
}

/** The refresh margin in ms: the configured one, but never more than half the lifetime. */
export function refreshMarginMs(config: Pick<WorkspaceConfig, "crlLifetimeHours" | "crlRefreshMarginHours">): number {
  return Math.min(config.crlRefreshMarginHours, config.crlLifetimeHours / 2) * 3600_000;
}

/** Pure: what is due at `now` given every CA's CRL status. */
export function dueCrls(status: readonly CrlStatus[], now: Date, opts: { intervalMs: number; marginMs: number }): DueCrl[] {
  const t = now.getTime();
  const due: DueCrl[] = [];
  for (const s of status) {
    if (!s.latest) due.push({ caId: s.caId, why: "missing" });
    else if (t >= s.latest.nextUpdate.getTime() - opts.marginMs) due.push({ caId: s.caId, why: "refresh" });
    else if (s.dirty && t - s.latest.thisUpdate.getTime() >= opts.intervalMs) due.push({ caId: s.caId, why: "dirty" });
  }
  return due;
}

export interface CrlScheduleOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly config: WorkspaceConfig;
  /** publishes the CRLs of these CAs (a CrlUpdater's regenerate) */
  readonly publish: (caIds: readonly string[]) => Promise<readonly PublishedCrl[]>;
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
    return dueCrls(await this.#o.store.crlStatus(), this.#o.clock.now(), { intervalMs: this.intervalMs, marginMs: refreshMarginMs(this.#o.config) });
  }

  /** Publishes whatever is due now; returns what was published, with why. */
  async tick(): Promise<Array<PublishedCrl & { readonly why: DueReason }>> {
    const due = await this.due();
    if (!due.length) return [];
    const why = new Map(due.map((d) => [d.caId, d.why]));
    const out = await this.#o.publish(due.map((d) => d.caId));
    return out.map((p) => ({ ...p, why: why.get(p.caId) ?? "dirty" }));
  }
}
