/**
 * The CRL updater: regenerates the CRLs of CAs that revoked something, once per CA per batch (never once
 * per notice), and on start-up catches up on CAs whose revocations were committed but never published
 * (a crash between the two) and sweeps the temporary files a killed publisher left. Holds the opened CAs
 * so keys are decrypted once.
 */
import { CertificationAuthority } from "../ca/authority.js";
import { JpkiError } from "../errors.js";
import { sweepStaleTemps } from "../store/staging.js";
import type { Workspace } from "../workspace/workspace.js";
import { CrlPublisher, type PublishedCrl } from "./publisher.js";

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
    sweepStaleTemps(this.#ws.paths.crlDir);
    for (const rec of await this.#ws.store.listCas()) await this.#ca(rec.id);
  }

  /** The publisher this updater uses (same store, clock and directory). */
  get publisher(): CrlPublisher {
    return this.#publisher;
  }

  async regenerate(caIds: readonly string[]): Promise<PublishedCrl[]> {
    const out: PublishedCrl[] = [];
    for (const id of [...new Set(caIds)].sort()) {
      const p = await this.#publisher.publish(await this.#ca(id));
      out.push(p);
      this.published.push(p);
    }
    return out;
  }

  /** Publishes a CRL for every CA still marked as having unpublished revocations. */
  async regenerateDirty(): Promise<PublishedCrl[]> {
    return this.regenerate(await this.#ws.store.dirtyCas());
  }
}
