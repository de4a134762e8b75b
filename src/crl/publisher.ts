/**
 * CRL publication (失効リストの公開), RFC 5280 §5.2.3 (CRL number): reserve the next CRL number together
 * with the CA revision it is sure to cover, stream the revoked entries from the store through the builder
 * into a staged DER file (and a PEM copy when the workspace's `crlPem` asks for one), then install them and
 * record the publication in one write transaction.
 *
 * Guarantees, also with several publishers at once (two `crl generate`, `watch` beside `notices ingest`):
 * - a CRL file is only ever replaced by one with a higher number: a publisher that finds a higher number
 *   already published discards its files (that CRL covers at least as much, since numbers and revisions are
 *   reserved together);
 * - a CA is marked clean only up to the revision its CRL was reserved at, so a revocation committed while
 *   the CRL was being built keeps the CA due for the next one;
 * - a crash burns a number but never publishes two different CRLs under one number; a crash between the
 *   two renames (DER and PEM) leaves the reservation open, which keeps the CA due until a new CRL replaces
 *   both files;
 * - without `crlPem`, a PEM copy an earlier publication left is removed in the same step as the DER is
 *   installed: the directory never holds a PEM older than the DER beside it.
 */
import { rmSync } from "node:fs";
import { join, relative } from "node:path";
import type { Clock } from "../pki/clock.js";
import type { Signer } from "../pki/signer.js";
import { pemChunks } from "../pki/pem.js";
import { openStagingFile, stageFile, syncDir, type StagedFile } from "../store/staging.js";
import type { Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { buildCrl, type BuiltCrl } from "./builder.js";

export interface PublishedCrl {
  readonly caId: string;
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  /** absolute path of the DER file */
  readonly derPath: string;
  /** absolute path of the PEM copy, when the workspace publishes one (config `crlPem`) */
  readonly pemPath?: string;
  readonly sha256: string;
  readonly byteLength: number;
  /** a higher number of the same CA was published while this one was built: this one was not installed */
  readonly superseded: boolean;
}

/** What publishing needs of a CA (a CertificationAuthority is one; crl/generate.ts opens a lighter one). */
export interface CrlIssuer {
  readonly id: string;
  /** DER Name of the CA, byte for byte as in its certificate's subject */
  readonly subjectName: Buffer;
  readonly keyId: Buffer;
  /**
   * awaited only when the CRL is laid out, hashed and written up to its signature: a key may still be
   * unlocking meanwhile (then give `spki`)
   */
  readonly signer: Signer | PromiseLike<Signer>;
  /** the CA's SubjectPublicKeyInfo as in its certificate: lets the CRL be built before `signer` settles */
  readonly spki?: Buffer;
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

  /**
   * Builds and publishes the full CRL of one CA. `superseded` is set when a higher number of the same CA
   * was published while this one was built: then nothing of this one was installed.
   */
  async publish(ca: CrlIssuer): Promise<PublishedCrl> {
    const thisUpdate = new Date(Math.floor(this.#clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.#config.crlLifetimeHours * 3600_000);
    const { number } = await this.#store.reserveCrl(ca.id, thisUpdate, nextUpdate);
    const expiredBefore = new Date(thisUpdate.getTime() - this.#config.expiredGraceDays * 86_400_000);
    const derPath = join(this.#dir, `${ca.id}.crl`);
    const pemPath = join(this.#dir, `${ca.id}.crl.pem`);
    // The DER is written while it is built (all but the signature before the key is needed); the PEM copy,
    // if any, after, on this thread: measured on a 1,000,000-entry CRL, staging it on the thread pool (or on
    // a worker) while hashing here was slower and took 50-120 MB more. It costs ~0.2 s there, 60 MB of text.
    const pem = this.#config.crlPem;
    const der = openStagingFile(derPath);
    const staged: StagedFile[] = [];
    // Everything before the signature (44 MB for 1M entries) starts flushing to disk as soon as it is written,
    // on the thread pool, while the key may still unlock: measured, signer to staged file went from 26-31 ms
    // to 2-7 ms when PBKDF2 ends after the hashing, 20-26 ms when it ended before.
    let flushing: Promise<void> | undefined;
    let built: BuiltCrl;
    try {
      built = await buildCrl({
        issuerName: ca.subjectName,
        authorityKeyId: ca.keyId,
        number,
        thisUpdate,
        nextUpdate,
        entries: this.#store.crlEntries(ca.id, { expiredBefore }),
        signer: ca.signer,
        ...(ca.spki ? { issuerKey: ca.spki } : {}),
        sink: (c) => der.write(c),
        onUnsigned: () => {
          flushing = der.flush();
          flushing.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
        },
      });
      await flushing;
      staged.push(der.finish());
      if (pem) staged.push(stageFile(pemPath, pemChunks(built.chunks, "X509 CRL")));
    } catch (e) {
      await flushing?.catch(() => undefined); // the descriptor stays open until the pool is done with it
      der.discard();
      for (const f of staged) f.discard();
      throw e;
    }
    const sha256 = built.sha256;
    let installed = false;
    try {
      installed = await this.#store.publishCrl({ caId: ca.id, number, entries: built.entries, path: relative(this.#root, derPath), sha256 }, () => {
        for (const f of staged) f.install();
        if (!pem) rmSync(pemPath, { force: true });
        syncDir(this.#dir);
      });
    } finally {
      if (!installed) for (const f of staged) f.discard();
    }
    return { caId: ca.id, number, thisUpdate, nextUpdate, entries: built.entries, derPath, ...(pem ? { pemPath } : {}), sha256, byteLength: built.byteLength, superseded: !installed };
  }
}
