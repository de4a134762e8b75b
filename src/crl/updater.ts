/**
 * The CRL updater: regenerates the CRLs of CAs that revoked something, once per CA per batch (never once
 * per notice) — the full CRL and the municipality partitions that changed (or were never published), never
 * the unchanged ones — and on start-up catches up on CAs whose revocations were committed but never published
 * (a crash between the two) and sweeps the temporary files a killed publisher left. Holds the opened CAs
 * so keys are decrypted once.
 *
 * With delta CRLs (crl/delta.ts), a batch's revocations go out at once in a delta on the CA's current base,
 * unless crl/schedule.ts `pendingGoesTo` says a new base is due (none a delta can be built on, the base
 * crlBaseIntervalHours old or near its nextUpdate, the last delta at deltaCrlMaxEntries); then a base, and
 * right after it a delta on it, so the delta URL always names the newest base.
 */
import { compromisedCaIds, createAuditCheckpoint } from "../audit/checkpoint.js";
import { CertificationAuthority } from "../ca/authority.js";
import { bridgeArlPublished, refreshBridgeArl } from "../ca/bridge.js";
import { JpkiError } from "../errors.js";
import { ARL_SCOPE, DELTA_SCOPE, FULL_SCOPE, type CaRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { CrlPublisher, sweepCrlTemps, type PublishedCrl } from "./publisher.js";
import { deltaCadence } from "./delta.js";
import { CrlSchedule, pendingGoesTo, refreshMarginMs, type DueCrl } from "./schedule.js";
import { retiredAndDone } from "./generate.js";
import { retiredCrlTerm, retiredCrlWanted } from "./retired.js";

/** One CA's share of a publishDue round. */
interface DueOfCa {
  full: boolean;
  delta: boolean;
  partitions: string[];
  arl: boolean;
  /** the full CRL or delta is due for news (missing, dirty), not only for its refresh */
  changed: boolean;
  /** the ARL likewise */
  arlChanged: boolean;
}

/** CAs whose CRLs one publishDue round builds at once (see publishDue). */
const PUBLISH_CONCURRENCY = 4;

export class CrlUpdater {
  readonly #ws: Workspace;
  readonly #passphrase: string;
  readonly #publisher: CrlPublisher;
  readonly #cas = new Map<string, CertificationAuthority>();
  readonly published: PublishedCrl[] = [];
  /** retired key generations whose certificates have all expired (see publishDue) */
  readonly #done = new Set<string>();
  /** of those, the ones with no link certificate left in force: they publish nothing more (crl/retired.ts) */
  readonly #finished = new Set<string>();

  constructor(ws: Workspace, passphrase: string) {
    this.#ws = ws;
    this.#passphrase = passphrase;
    this.#publisher = new CrlPublisher({ store: ws.store, config: ws.config, clock: ws.clock, crlDir: ws.paths.crlDir, workspaceRoot: ws.paths.root });
  }

  async #ca(id: string): Promise<CertificationAuthority> {
    let ca = this.#cas.get(id);
    if (!ca) {
      const rec = await this.#ws.store.getCa(id);
      if (!rec) throw new JpkiError("ERR_CA_UNKNOWN", `CA ${id} holds revoked certificates but is missing from the workspace: the store is damaged`);
      ca = CertificationAuthority.open(rec, this.#passphrase, this.#ws.config);
      this.#cas.set(id, ca);
    }
    return ca;
  }

  /**
   * Opens the CAs once, so a wrong passphrase fails before any notice is applied, and sweeps temporary CRL
   * files left by killed runs. `signal` stops it between CAs (a watch stopped while it starts): the caller, on its
   * way out, then applies nothing.
   */
  async preflight(signal?: AbortSignal): Promise<void> {
    sweepCrlTemps(this.#ws.paths.root);
    for (const rec of await this.#ws.store.listCas()) {
      if (signal?.aborted) return;
      await this.#ca(rec.id);
    }
  }

  /** The publisher this updater uses (same store, clock and directory). */
  get publisher(): CrlPublisher {
    return this.#publisher;
  }

  /**
   * Publishes the full CRL of each CA, and those of its partitions with unpublished revocations or none
   * published yet (and its ARL if it has none yet).
   */
  async regenerate(caIds: readonly string[]): Promise<PublishedCrl[]> {
    const ids = new Set(caIds);
    if (!ids.size) return [];
    const cadence = deltaCadence(this.#ws.config);
    const deltas = cadence ? new Map((await this.#ws.store.deltaCrlStatus()).map((d) => [d.caId, d])) : undefined;
    const now = this.#ws.clock.now();
    const margin = refreshMarginMs(this.#ws.config);
    const due: DueCrl[] = [];
    for (const caId of ids) {
      const d = deltas?.get(caId);
      if (!cadence || pendingGoesTo(d, now, cadence, margin) === "base") due.push({ caId, why: "dirty" });
      // A CA stays dirty until its next base, so a delta that already names the current base and lists every
      // revocation is not made again: each `notices ingest` run, even one that changed nothing, published two.
      else if (d!.pending || d!.delta?.baseNumber !== d!.base!.number) due.push({ caId, scope: DELTA_SCOPE, why: "dirty" });
    }
    for (const s of await this.#ws.store.crlScopeStatus()) {
      if (ids.has(s.caId) && (s.dirty || !s.latest) && (s.scope !== ARL_SCOPE || !s.latest)) due.push({ caId: s.caId, scope: s.scope, why: s.latest ? "dirty" : "missing" });
    }
    return this.publishDue(due);
  }

  /** The CRL schedule of this workspace, publishing through this updater (watch and serve both run one). */
  schedule(intervalMs?: number, opts: { readonly onOtherError?: (e: unknown) => void } = {}): CrlSchedule {
    const ws = this.#ws;
    return new CrlSchedule({
      store: ws.store,
      clock: ws.clock,
      config: ws.config,
      publish: (due, onPublished, signal) => this.publishDue(due, onPublished, signal),
      refreshOthers: () => this.refreshBridgeArl(),
      ...(opts.onOtherError ? { onOtherError: opts.onOtherError } : {}),
      ...(intervalMs !== undefined ? { intervalMs } : {}),
    });
  }

  /**
   * The Bridge CA's ARL (ca/bridge.ts), when the workspace has a Bridge and the ARL is missing or within the
   * refresh margin of its nextUpdate. A failure (a `jpki ca bridge` holding the Bridge's lock right now, a damaged
   * Bridge) is the schedule's to report (onOtherError); the next tick tries again.
   */
  async refreshBridgeArl(): Promise<Array<PublishedCrl & { readonly why: "refresh" }>> {
    const ws = this.#ws;
    const arl = await refreshBridgeArl(ws, this.#passphrase, { marginMs: refreshMarginMs(ws.config) });
    if (!arl) return [];
    const p = bridgeArlPublished(arl);
    this.published.push(p);
    return [{ ...p, why: "refresh" }];
  }

  /**
   * Publishes the given CRLs (the schedule's due list): per CA, its full CRL, then (with deltas on) its delta —
   * after every base, asked for or not —, its partitions in one pass, its ARL. Every CA is tried; the first failure
   * is raised after the others landed. `onPublished` sees every CRL published (in CA order), also those of a round
   * that then raises. Once `signal` is aborted no further CA is begun: those begun finish (each CRL is installed
   * whole or not at all), the rest stay due for the next round — a watch's first round after a restore or a new
   * workspace, every CRL of every CA, held off its SIGTERM until all were out.
   */
  async publishDue(due: readonly DueCrl[], onPublished?: (crl: PublishedCrl) => void, signal?: AbortSignal): Promise<PublishedCrl[]> {
    const deltas = deltaCadence(this.#ws.config) !== undefined;
    const byCa = new Map<string, DueOfCa>();
    for (const d of due) {
      let e = byCa.get(d.caId);
      if (!e) byCa.set(d.caId, (e = { full: false, delta: false, partitions: [], arl: false, changed: false, arlChanged: false }));
      const scope = d.scope ?? FULL_SCOPE;
      // changed: something new for the full CRL (not its refresh; a delta "missing" is no news either)
      if (scope === FULL_SCOPE) (e.full = true), (e.delta ||= deltas), (e.changed ||= d.why !== "refresh");
      else if (scope === DELTA_SCOPE) (e.delta = deltas), (e.changed ||= d.why === "dirty");
      else if (scope === ARL_SCOPE) (e.arl = true), (e.arlChanged ||= d.why !== "refresh");
      else e.partitions.push(scope);
    }
    const all = await this.#ws.store.listCas();
    // Which full CRLs have news (store crlStatus), read at most once a round and only when a done generation asks.
    let dirty: Promise<Set<string>> | undefined;
    const fullDirty = async (id: string) => (await (dirty ??= this.#ws.store.crlStatus().then((st) => new Set(st.filter((x) => x.dirty).map((x) => x.caId))))).has(id);
    const work = [...byCa].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // Each CA's CRLs in order, several CAs at once: a CRL's file syncs (thread pool) and the store's
    // transactions of one CA overlap the building and signing of another's. One after the other, the ≈ 700
    // CRLs of 94 CAs after a notice run spent most of their time waiting for the disk. Landed in CA order,
    // also when a CA failed (what the others published is published), then the first failure is raised.
    const byIndex: PublishedCrl[][] = work.map(() => []);
    let next = 0;
    // A failing CA does not stop the round: the CAs after it in the queue are published too. It used to (the
    // workers stopped taking CAs), and a failure that lasts — one CA's crl/ entry unusable, its key damaged —
    // came back every tick, so those CAs' revocations never went out and their CRLs expired under a running watch.
    let failure: { e: unknown } | undefined;
    const worker = async () => {
      while (next < work.length && !signal?.aborted) {
        const i = next++;
        try {
          await this.#publishCa(work[i]![0], work[i]![1], all, byIndex[i]!, fullDirty);
        } catch (e) {
          failure ??= { e };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUBLISH_CONCURRENCY, work.length) }, worker));
    const out = byIndex.flat();
    this.published.push(...out);
    // Each one said also when the round then raises: serve and watch log what this goes to, and a round that
    // published most CAs and failed one used to log the failure alone.
    if (onPublished) for (const p of out) onPublished(p);
    // The audit log is anchored after a round that published, also one that then raises (as 'crl generate' does):
    // while one CA's failure lasted, every round raised and serve and watch never signed a checkpoint again.
    // The round's own failure is the one raised.
    try {
      await this.#checkpoint(out);
    } catch (e) {
      if (!failure) throw e;
    }
    if (failure) throw failure.e;
    return out;
  }

  /** One CA's CRLs of a publishDue round, in order, each put into `landed` once published. */
  async #publishCa(id: string, e: DueOfCa, all: readonly CaRecord[], landed: PublishedCrl[], fullDirty: (id: string) => Promise<boolean>): Promise<void> {
    // A retired key generation (ca/rollover.ts) whose certificates have all expired publishes no delta and no
    // partition, but keeps its full CRL and ARL current while a link certificate they cover is in force
    // (crl/retired.ts): the links are checked against them, and one left to expire failed every such verifier
    // closed — also the full CRL listing the links revoked after a compromise (crl/arl.ts). Remembered: nothing
    // new is issued under a retired key, so it stays done (the store is not scanned again), and a term, once run
    // out, never comes back (links only expire).
    if (this.#finished.has(id)) return;
    if (this.#done.has(id) || (await retiredAndDone(this.#ws, all, id))) {
      this.#done.add(id);
      // The full CRL is asked for, or a delta with news (the base it would go on is this full CRL). A done
      // generation's delta is due as "missing" for good (none is published on its full CRLs), so news of it — links
      // revoked since — is the full CRL's dirty flag, not the delta's reason.
      if (!e.full && e.delta && !e.changed) e.changed = await fullDirty(id);
      const wantsFull = e.full || (e.delta && e.changed);
      if (!wantsFull && !e.arl) return;
      const record = all.find((c) => c.id === id) ?? (await this.#ca(id)).record; // none: #ca says ERR_CA_UNKNOWN
      const term = retiredCrlTerm(record, await this.#ws.store.listCaLinks(), this.#ws.clock.now());
      if (!term.full && !term.arl) {
        this.#finished.add(id);
        return;
      }
      e.full = wantsFull && retiredCrlWanted(term.full, await this.#ws.store.latestCrl(id), e.changed);
      e.arl = e.arl && retiredCrlWanted(term.arl, await this.#ws.store.latestCrl(id, ARL_SCOPE), e.arlChanged);
      e.delta = false;
      e.partitions = [];
      if (!e.full && !e.arl) return;
    }
    const ca = await this.#ca(id);
    // The partitions (what a certificate's distribution point names) and the ARL do not depend on the full CRL:
    // one that cannot be published holds none of them back; the first failure is raised after them.
    let failure: { e: unknown } | undefined;
    try {
      // a done generation's full CRL names no delta (none follows it)
      if (e.full) landed.push(await this.#publisher.publish(ca, this.#done.has(id) ? { deltas: false } : {}));
      if (e.delta) {
        const delta = await this.#publisher.publishDelta(ca);
        if (delta) landed.push(delta);
      }
    } catch (err) {
      failure = { e: err };
    }
    try {
      // each one as it lands: what was published is reported also when a later partition fails
      await this.#publisher.publishPartitions(ca, e.partitions, (crl) => landed.push(crl));
    } catch (err) {
      failure ??= { e: err };
    }
    try {
      if (e.arl) landed.push(await this.#publisher.publishArl(ca));
    } catch (err) {
      failure ??= { e: err };
    }
    if (failure) throw failure.e;
  }

  /**
   * The audit log's periodic checkpoint (audit/checkpoint.ts): after a round that published, the head is signed
   * with the first CA's key, already open, as `jpki crl generate` does — so `serve` and `watch`, whose schedule
   * republishes every CRL at least once per crlRefreshMarginHours, anchor the log without an operator's timer.
   * Nothing is signed when the head is already a checkpoint.
   */
  async #checkpoint(published: readonly PublishedCrl[]): Promise<void> {
    const compromised = await compromisedCaIds(this.#ws.store); // never the checkpoint's signer
    const first = published.find((p) => this.#cas.has(p.caId) && !compromised.has(p.caId));
    if (!first) return;
    const ca = this.#cas.get(first.caId)!;
    await createAuditCheckpoint(this.#ws.store, { caId: ca.id, certificateDer: ca.record.certificateDer, signer: ca.signer, now: this.#ws.clock.now() });
  }

  /** Publishes a CRL for every CA still marked as having unpublished revocations. */
  async regenerateDirty(): Promise<PublishedCrl[]> {
    return this.regenerate(await this.#ws.store.dirtyCas());
  }
}
