/**
 * CRL publication (失効リストの公開): reserve the next CRL number, stream the revoked entries from the
 * store through the builder, write the file atomically, then record it. A crash between reserving and
 * recording burns a number but never publishes two different CRLs under one number.
 */
import { join, relative } from "node:path";
import type { CertificationAuthority } from "../ca/authority.js";
import type { Clock } from "../pki/clock.js";
import { pemChunks } from "../pki/pem.js";
import { writeFileAtomic } from "../store/files.js";
import type { Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { buildCrl } from "./builder.js";

export interface PublishedCrl {
  readonly caId: string;
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  /** absolute paths of the DER and PEM files */
  readonly derPath: string;
  readonly pemPath: string;
  readonly sha256: string;
  readonly byteLength: number;
}

export class CrlPublisher {
  readonly #store: Store;
  readonly #config: WorkspaceConfig;
  readonly #clock: Clock;
  readonly #dir: string;
  readonly #root: string;

  constructor(opts: { store: Store; config: WorkspaceConfig; clock: Clock; crlDir: string; workspaceRoot: string }) {
    this.#store = opts.store;
    this.#config = opts.config;
    this.#clock = opts.clock;
    this.#dir = opts.crlDir;
    this.#root = opts.workspaceRoot;
  }

  /** Builds and publishes the full CRL of one CA. */
  async publish(ca: CertificationAuthority): Promise<PublishedCrl> {
    const started = this.#clock.now();
    const thisUpdate = new Date(Math.floor(started.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.#config.crlLifetimeHours * 3600_000);
    const number = await this.#store.reserveCrlNumber(ca.id, thisUpdate, nextUpdate);
    const expiredBefore = new Date(thisUpdate.getTime() - this.#config.expiredGraceDays * 86_400_000);
    const built = await buildCrl({
      issuerName: ca.subjectName,
      authorityKeyId: ca.record.keyId,
      number,
      thisUpdate,
      nextUpdate,
      entries: this.#store.revokedEntries(ca.id, { expiredBefore }),
      signer: ca.signer,
    });
    const derPath = join(this.#dir, `${ca.id}.crl`);
    const pemPath = join(this.#dir, `${ca.id}.crl.pem`);
    writeFileAtomic(derPath, built.chunks);
    writeFileAtomic(pemPath, pemChunks(built.chunks, "X509 CRL"));
    await this.#store.publishCrl({ caId: ca.id, number, entries: built.entries, path: relative(this.#root, derPath), sha256: built.sha256 });
    // Revocations committed up to `started` are on this CRL (the store is read after it).
    await this.#store.clearDirtyCa(ca.id, started);
    return { caId: ca.id, number, thisUpdate, nextUpdate, entries: built.entries, derPath, pemPath, sha256: built.sha256, byteLength: built.byteLength };
  }
}
