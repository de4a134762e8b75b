/**
 * The CRL updater: regenerates the CRLs of CAs that revoked something, once per CA per batch (never once
 * per notice) — the full CRL and the municipality partitions that changed (or were never published), never
 * the unchanged ones — and on start-up catches up on CAs whose revocations were committed but never published
 * (a crash between the two) and sweeps the temporary files a killed publisher left. Holds the opened CAs
 * so keys are decrypted once.
 */
import { CertificationAuthority } from "../ca/authority.js";
import { JpkiError } from "../errors.js";
import { ARL_SCOPE, FULL_SCOPE } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { CrlPublisher, sweepCrlTemps, type PublishedCrl } from "./publisher.js";
import { CrlSchedule, type DueCrl } from "./schedule.js";

export class CrlUpdater {
  readonly #ws: Workspace;
  readonly #passphrase: string;
  readonly #publisher: CrlPublisher;
  readonly #cas = new Map<string, CertificationAuthority>();
  readonly published: PublishedCrl[] = [];

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
   * files left by killed runs.
   */
  async preflight(): Promise<void> {
    sweepCrlTemps(this.#ws.paths.root);
    for (const rec of await this.#ws.store.listCas()) await this.#ca(rec.id);
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
    const due: DueCrl[] = [...ids].map((caId) => ({ caId, why: "dirty" as const }));
    for (const s of await this.#ws.store.crlScopeStatus()) {
      if (ids.has(s.caId) && (s.dirty || !s.latest) && (s.scope !== ARL_SCOPE || !s.latest)) due.push({ caId: s.caId, scope: s.scope, why: s.latest ? "dirty" : "missing" });
    }
    return this.publishDue(due);
  }

  /** Publishes the given CRLs (the schedule's due list): per CA, its full CRL, its partitions in one pass, its ARL. */
  /** The CRL schedule of this workspace, publishing through this updater (watch and serve both run one). */
  schedule(intervalMs?: number): CrlSchedule {
    const ws = this.#ws;
    return new CrlSchedule({ store: ws.store, clock: ws.clock, config: ws.config, publish: (due) => this.publishDue(due), ...(intervalMs !== undefined ? { intervalMs } : {}) });
  }

  async publishDue(due: readonly DueCrl[]): Promise<PublishedCrl[]> {
    const byCa = new Map<string, { full: boolean; partitions: string[]; arl: boolean }>();
    for (const d of due) {
      let e = byCa.get(d.caId);
      if (!e) byCa.set(d.caId, (e = { full: false, partitions: [], arl: false }));
      const scope = d.scope ?? FULL_SCOPE;
      if (scope === FULL_SCOPE) e.full = true;
      else if (scope === ARL_SCOPE) e.arl = true;
      else e.partitions.push(scope);
    }
    const out: PublishedCrl[] = [];
    const landed = (p: PublishedCrl) => (out.push(p), this.published.push(p));
    for (const [id, e] of [...byCa].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const ca = await this.#ca(id);
      if (e.full) landed(await this.#publisher.publish(ca));
      for (const p of await this.#publisher.publishPartitions(ca, e.partitions)) landed(p);
      if (e.arl) landed(await this.#publisher.publishArl(ca));
    }
    return out;
  }

  /** Publishes a CRL for every CA still marked as having unpublished revocations. */
  async regenerateDirty(): Promise<PublishedCrl[]> {
    return this.regenerate(await this.#ws.store.dirtyCas());
  }
}
