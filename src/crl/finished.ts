/**
 * Which published CRLs no run will replace: those of a retired key generation whose certificates have all expired
 * ("done": crl/generate.ts retiredAndDone) that it no longer publishes (crl/retired.ts) — every municipality partition
 * and delta (nothing left in them), and its full CRL and ARL once no link certificate they cover is in force, or the
 * one in place already reaches the end of the last. Their nextUpdate passing is the end of the generation, not a
 * stale CRL: `/crl/index.json` says `ended` for them and `/healthz` does not count them stale (it answered 503 for
 * good once a done generation's partitions expired).
 *
 * Only a CA with a CRL past its nextUpdate (or none published) is looked at: finding a generation done scans its
 * certificates (Store.lastCertificateExpiry, no index for it), which the probes and the index must not pay while every
 * CRL is current. Being done is for good (nothing new is issued under a retired key), so it is remembered; a retired
 * generation not done yet is looked at again after `recheckMs`.
 */
import { isRetired } from "../ca/ids.js";
import { ARL_SCOPE, FULL_SCOPE, type CaRecord, type CrlRecord, type CrlScope } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { retiredAndDone } from "./generate.js";
import { retiredCrlTerm, type RetiredCrlTerm } from "./retired.js";
import { currentCall, runAs } from "../store/watchdog.js";

/** Whether a scope's latest CRL is the last one it will have (see the module). */
export type EndedCrls = (caId: string, scope: CrlScope, latest: Pick<CrlRecord, "nextUpdate"> | undefined) => boolean;

export class FinishedCrls {
  readonly #ws: Workspace;
  readonly #recheckMs: number;
  /** done generations and their CRLs' term, found once */
  readonly #done = new Map<string, RetiredCrlTerm>();
  /** retired generations not done yet, and when that was found (ms) */
  readonly #notYet = new Map<string, number>();

  constructor(ws: Workspace, opts: { readonly recheckMs?: number } = {}) {
    this.#ws = ws;
    this.#recheckMs = opts.recheckMs ?? 5 * 60_000;
  }

  /**
   * The test of the module's rule, as of now, for the CRLs of `candidates` (the CAs with a CRL past its nextUpdate or
   * none published); false for every other CA's.
   */
  async ended(candidates: ReadonlySet<string>): Promise<EndedCrls> {
    // The watched call this begins in (jpki serve's /metrics scrape, /crl/index.json: store/watchdog.ts), read before
    // the first await: the reads after it are begun as its part too (runAs). They were no call's: on a PostgreSQL host
    // gone silent, one hung on its pooled connection, never cut, until TCP gave up (≈ 15 min).
    const call = currentCall();
    const now = this.#ws.clock.now();
    const unknown = [...candidates].filter((id) => !this.#done.has(id));
    const all = unknown.length ? await this.#ws.store.listCas() : [];
    let links: Awaited<ReturnType<Workspace["store"]["listCaLinks"]>> | undefined;
    for (const rec of all) {
      if (!unknown.includes(rec.id) || !isRetired(all, rec.id)) continue;
      const seen = this.#notYet.get(rec.id);
      if (seen !== undefined && now.getTime() - seen < this.#recheckMs && now.getTime() >= seen) continue;
      // one generation at a time, as before (each a scan of its certificates), each read begun within the call
      if (!(await runAs(call, () => retiredAndDone(this.#ws, all, rec.id)))) {
        this.#notYet.set(rec.id, now.getTime());
        continue;
      }
      this.#notYet.delete(rec.id);
      links ??= await runAs(call, () => this.#ws.store.listCaLinks());
      // the term's end does not move (link certificates only expire); `now` only says whether it is in the past
      this.#done.set(rec.id, retiredCrlTerm(rec, links, new Date(0)));
    }
    const t = now.getTime();
    const over = (until: Date | undefined, latest: Pick<CrlRecord, "nextUpdate"> | undefined) => !until || until.getTime() <= t || (latest !== undefined && latest.nextUpdate.getTime() >= until.getTime());
    return (caId, scope, latest) => {
      const term = candidates.has(caId) ? this.#done.get(caId) : undefined;
      if (!term) return false;
      if (scope === FULL_SCOPE) return over(term.full, latest);
      if (scope === ARL_SCOPE) return over(term.arl, latest);
      return true; // a partition or the delta
    };
  }
}

/**
 * Of each retired generation among `all` (every CA record), whether its CRLs are still published ("current": kept
 * current by the schedule and `crl generate`) or "ended": its full CRL is past its nextUpdate (or none was ever
 * published) and no run will replace it (see the module) — what `jpki ca list` and `ca show` say. Active CAs are not
 * in the map, nor those left out of `only`. A generation is looked at (its certificates scanned) only when its full CRL is
 * past its nextUpdate.
 */
export async function retiredCrlStates(ws: Workspace, all: readonly CaRecord[], only?: readonly string[]): Promise<ReadonlyMap<string, "current" | "ended">> {
  const retired = all.filter((c) => (!only || only.includes(c.id)) && isRetired(all, c.id)).map((c) => c.id);
  const out = new Map<string, "current" | "ended">();
  if (!retired.length) return out;
  const t = ws.clock.now().getTime();
  const latest = new Map((await ws.store.crlStatus()).map((s) => [s.caId, s.latest]));
  const expired = new Set(retired.filter((id) => (latest.get(id)?.nextUpdate.getTime() ?? -Infinity) <= t));
  const ended = expired.size ? await new FinishedCrls(ws).ended(expired) : () => false;
  for (const id of retired) out.set(id, expired.has(id) && ended(id, FULL_SCOPE, latest.get(id)) ? "ended" : "current");
  return out;
}
