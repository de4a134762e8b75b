/**
 * CRL publication (失効リストの公開), RFC 5280 §5.2.3 (CRL number): reserve the next CRL number together
 * with the CA revision it is sure to cover, stream the revoked entries from the store through the builder
 * into a staged DER file (and a PEM copy when the workspace's `crlPem` asks for one), then install them and
 * record the publication in one write transaction.
 *
 * Guarantees, also with several publishers at once (two `crl generate`, `watch` beside `notices ingest`):
 * - a CRL file is only ever replaced by one with a higher number: a publisher that finds a higher number
 *   already published discards its files (that CRL covers at least as much, since numbers and revisions are
 *   reserved together) — published as the store recorded it, or installed as the file on disk says (a run that
 *   installed and died before COMMIT, a store restored below its files: then the numbering moves past the file);
 * - a CA is marked clean only up to the revision its CRL was reserved at, so a revocation committed while
 *   the CRL was being built keeps the CA due for the next one;
 * - a crash burns a number but never publishes two different CRLs under one number; a crash between the
 *   two renames (DER and PEM) leaves the reservation open, which keeps the CA due until a new CRL replaces
 *   both files;
 * - without `crlPem`, a PEM copy an earlier publication left is removed in the same step as the DER is
 *   installed: the directory never holds a PEM older than the DER beside it;
 * - every CRL is read back from its staged file, walked and its signature verified with the CA certificate's
 *   key (crl/verify.ts) before it is installed: a CRL that does not verify is never published;
 * - the last `crlKeep` CRLs of each scope stay on disk as hard links `<file>.<number>` beside the current one
 *   (`crl/13-sig.crl.42`), linked and pruned in the same locked step as the install.
 *
 * Scopes (crl/scope.ts): the full CRL (`publish`), the municipality partitions (`publishPartitions`, several
 * in one pass over the store), the ARL (`publishArl`) and the delta of the full CRL (`publishDelta`,
 * crl/delta.ts), each numbered from the CA's one sequence.
 */
import { linkSync, lstatSync, mkdirSync, readdirSync, rmSync, type Stats } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { isJpkiError, JpkiError } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import { certificateParts } from "../pki/der.js";
import type { Signer } from "../pki/signer.js";
import { signatureShape } from "../pki/signer.js";
import { pemChunks } from "../pki/pem.js";
import { crlFileSource, crlFrameIdentity, CrlReader } from "../profile/crl-reader.js";
import { writeFailure } from "../store/files.js";
import { openStagingFile, stageFile, sweepStaleTemps, syncDir, type StagedFile } from "../store/staging.js";
import { ARL_SCOPE, DELTA_SCOPE, FULL_SCOPE, type CaRecord, type CrlScope, type Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { CrlEntryInput } from "../profile/crl-entry.js";
import { arlEntries, fullCrlLinkEntries, ownCertificateEntry, withLinkEntries } from "./arl.js";
import { deltaCadence, deltaNextUpdate } from "./delta.js";
import { buildCrl, crlExtensionsElement, streamCrl, type BuiltCrl, type CrlLayout, type CrlParams, type StreamedCrl } from "./builder.js";
import { BlockLayoutRecorder, openHeldBlocks, type ReuseStats } from "./reuse.js";
import { scopeExtensions, scopeKind, scopePath } from "./scope.js";
import { beginStagedCrlCheck, type ExpectedCrl, type StagedCrlCheck } from "./verify.js";
import { WrittenMac } from "./written-mac.js";

/** How much of a staged CRL is written between two background fdatasyncs (#publishReserved). */
const SYNC_EVERY_BYTES = 8 << 20;

export interface PublishedCrl {
  readonly caId: string;
  /** "" the full CRL, a municipality code for a partition, "arl" */
  readonly scope: CrlScope;
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
  /** a higher number of the same CA and scope was published while this one was built: this one was not installed */
  readonly superseded: boolean;
  /** a delta CRL's base: the number of the full CRL its deltaCRLIndicator names */
  readonly baseNumber?: bigint;
  /**
   * A full CRL built with its previous one's blocks at hand (crl/reuse.ts): what was taken from that file instead
   * of the store (all 0 for a store that reads its own log as cheaply: SQLite).
   */
  readonly reused?: ReuseStats;
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
  /** the stored CA: its certificate (ARL distribution point, the key CRLs are verified with), prefecture, purpose */
  readonly record: CaRecord;
}

/**
 * The CRL number of the CRL installed at `path`, when it is one of the CA with key identifier `keyId` (its
 * authorityKeyIdentifier); undefined when there is no file, or it is another key's, or it does not parse. Read
 * as `jpki inspect` reads one (profile/crl-reader.ts): the frame by positioned reads, the revoked entries
 * skipped, so a CRL of a million entries costs what an empty one does; its two fields by walking the DER.
 */
export function installedCrlNumber(path: string, keyId: Buffer): bigint | undefined {
  let crl: CrlReader;
  try {
    crl = CrlReader.open(crlFileSource(path, "the installed CRL"));
  } catch {
    return undefined;
  }
  try {
    const { crlNumber, keyId: installedKeyId } = crlFrameIdentity(crl.skeleton);
    return crlNumber !== undefined && installedKeyId === keyId.toString("hex") ? crlNumber : undefined;
  } catch {
    return undefined;
  } finally {
    crl.close();
  }
}

/**
 * Thrown by a publication's install step when the file in place already carries this CRL's number or a higher
 * one: the publication is then superseded, as when the store knows of a higher published number.
 */
class InstalledIsNewer extends JpkiError {
  constructor(readonly installed: bigint) {
    super("ERR_INTERNAL", `a CRL numbered ${installed} is installed already`);
  }
}

/**
 * Removes temporary CRL files killed publishers left: in crl/, each CA's partition directory, and arl/. Only in
 * directories of the workspace itself: a symbolic link at crl/ or arl/ is not followed (the publisher refuses it,
 * {@link publicationDir}), nor is one at a partition directory.
 */
export function sweepCrlTemps(root: string): void {
  const crl = join(root, "crl");
  if (isRealDir(join(root, "arl"))) sweepStaleTemps(join(root, "arl"));
  if (!isRealDir(crl)) return;
  sweepStaleTemps(crl);
  let names: string[] = [];
  try {
    names = readdirSync(crl, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    // no crl/ yet
  }
  for (const n of names) sweepStaleTemps(join(crl, n));
}

function isRealDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Makes sure the directory `dir` a CRL goes into is one of the workspace itself: each entry from `root` down to it
 * (crl/, crl/<ca>/, arl/) is made (0700) when missing, and refused with ERR_FILE_UNUSABLE naming it when it is a
 * symbolic link or not a directory. A symbolic link there was followed: a partition's CRL, its history links and
 * its temporary files went wherever the link pointed, outside the workspace, and the next run wrote there again.
 * CRLs are published into the workspace only (a volume of its own goes there as a mount, which is a directory):
 * what `jpki serve` serves, what a backup copies and what the history prunes is then what the publisher wrote.
 * `what` names the CRL for the message.
 */
export function publicationDir(root: string, dir: string, what: string): void {
  const rel = relative(root, dir);
  if (rel.startsWith("..") || rel === "") throw new JpkiError("ERR_INTERNAL", `${dir} is not inside the workspace ${root}`);
  let at = root;
  for (const part of rel.split(sep)) {
    at = join(at, part);
    let st: Stats | undefined;
    try {
      st = lstatSync(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (!st) {
      try {
        mkdirSync(at, { mode: 0o700 });
        continue;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        st = lstatSync(at); // made by another publisher meanwhile: judged as it is
      }
    }
    if (st.isDirectory()) continue;
    const is = st.isSymbolicLink() ? "a symbolic link" : st.isFile() ? "a file" : "not a directory";
    throw new JpkiError(
      "ERR_FILE_UNUSABLE",
      `the CRL ${what} cannot be published: ${relative(root, at)} is ${is}, not a directory of the workspace (CRLs are written into the workspace only, never through a link): nothing was published and the CA stays due; replace it with a directory (a separate volume: mount it there) and publish again`,
      { details: { path: at } },
    );
  }
}

/**
 * What CrlPublisher #stage builds: the CA, the scope, its reserved number, the times, the entries, a delta's base CRL
 * number, whether deltas are made (default: the workspace's cadence says so), a callback given the CRL's layout.
 */
type StageArgs = [
  ca: CrlIssuer,
  scope: CrlScope,
  number: bigint,
  t: { thisUpdate: Date; nextUpdate: Date },
  entries: CrlParams["entries"],
  baseNumber?: bigint,
  deltas?: boolean,
  onLayout?: (layout: CrlLayout) => void,
];

/** A CRL built, written, synced and checked, waiting for its install (CrlPublisher #stage, #install). */
interface StagedCrl {
  /** what the publication returns once installed */
  readonly published: PublishedCrl;
  /** the DER file and the PEM copy, if any */
  readonly staged: readonly StagedFile[];
  readonly dir: string;
  readonly pemPath: string;
  readonly pem: boolean;
  /** the publication's errors as the operator reads them (#stage says which is which) */
  readonly denied: (e: unknown) => unknown;
  readonly noSpace: (e: unknown) => unknown;
  readonly unusable: (e: unknown) => unknown;
  /** removes the staged files (harmless once installed) */
  discard(): void;
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
   * A CRL's times. `previous`: the thisUpdate of the scope's latest published CRL (of the CA's base, for a
   * delta), or of the earliest of them when one store read serves several scopes (partitions).
   */
  #times(previous: readonly (Date | undefined)[] = []): { thisUpdate: Date; nextUpdate: Date; expiredBefore: Date } {
    const thisUpdate = new Date(Math.floor(this.#clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.#config.crlLifetimeHours * 3600_000);
    // Entries leave once their certificate is past notAfter by the grace (config expiredGraceDays), on every
    // scope — but never before a CRL of the scope issued after notAfter has listed them (RFC 5280 §3.3: "An
    // entry MUST NOT be removed from the CRL until it appears on one regularly scheduled CRL issued beyond the
    // revoked certificate's validity period"). The grace alone does not give that: with a grace of 0, or a CRL
    // coming more than the grace after notAfter (long lifetimes, `crl generate` by hand), the first CRL after
    // notAfter dropped the entry. So the cutoff is also no later than the previous CRL's thisUpdate: an entry
    // dropped now expired before that CRL was issued, and that CRL (or, by the same rule, one before it, also
    // issued after notAfter) listed it. A scope never published has no previous CRL: the grace alone.
    let cutoff = thisUpdate.getTime() - this.#config.expiredGraceDays * 86_400_000;
    for (const p of previous) if (p && p.getTime() < cutoff) cutoff = p.getTime();
    return { thisUpdate, nextUpdate, expiredBefore: new Date(cutoff) };
  }

  #path(caId: string, scope: CrlScope): string {
    const kind = scopeKind(scope);
    if (kind === "full") return join(this.#dir, `${caId}.crl`);
    if (kind === "delta") return join(this.#dir, `${caId}-delta.crl`);
    return scopePath(this.#root, caId, scope);
  }

  /**
   * Builds and publishes the full CRL of one CA. `superseded` is set when a higher number of the same CA
   * was published while this one was built: then nothing of this one was installed. `deltas: false` leaves out
   * freshestCRL although the workspace publishes deltas: a retired generation whose certificates have all expired
   * (crl/generate.ts retiredAndDone) gets no delta on this CRL, and a pointer to one would send verifiers to its
   * last, expired delta on an older base.
   */
  async publish(ca: CrlIssuer, opts: { readonly deltas?: boolean } = {}): Promise<PublishedCrl> {
    const t = this.#times([(await this.#store.latestCrl(ca.id))?.thisUpdate]);
    const { number } = await this.#store.reserveCrl(ca.id, t.thisUpdate, t.nextUpdate);
    // With their total first, the entries stream from the store to the staged file as they are read (streamCrl);
    // the link certificates it revoked after a compromise (crl/arl.ts) go on it too, read after the reservation.
    const links = await this.#linkEntries(ca);
    const deltas = (opts.deltas ?? true) && deltaCadence(this.#config) !== undefined;
    // The blocks the previous full CRL on this disk holds, for a store that would otherwise send them again
    // (crl/reuse.ts); each is checked against the store's SHA-256 before it is used.
    const held = openHeldBlocks(this.#root, ca.id, this.#path(ca.id, FULL_SCOPE));
    const recorder = new BlockLayoutRecorder();
    let entriesOffset = 0;
    try {
      const entries = recorder.wrap(this.#store.crlEntries(ca.id, { expiredBefore: t.expiredBefore, withTotal: true, known: held }));
      const crl = await this.#publishReserved(ca, FULL_SCOPE, number, t, withLinkEntries(entries, links), undefined, deltas, (l) => (entriesOffset = l.entriesOffset));
      if (!crl.superseded) recorder.save(this.#root, ca.id, number, crl.byteLength, entriesOffset);
      return { ...crl, reused: { ...held.stats } };
    } finally {
      held.close();
    }
  }

  /**
   * Builds and publishes the delta CRL of the CA's full CRL (crl/delta.ts) on its latest published full CRL;
   * undefined when it has none a delta can be built on (publish one first). ERR_USAGE when the workspace
   * publishes no deltas (config deltaCrlIntervalMinutes 0): nothing would point a verifier at it.
   */
  async publishDelta(ca: CrlIssuer): Promise<PublishedCrl | undefined> {
    const cadence = deltaCadence(this.#config);
    if (!cadence) throw new JpkiError("ERR_USAGE", "this workspace publishes no delta CRLs: set deltaCrlIntervalMinutes in config.json (e.g. 5), then publish a full CRL");
    // A delta drops an expired entry as a complete CRL issued now would, by the rule of its base's scope.
    const t = this.#times([(await this.#store.latestCrl(ca.id))?.thisUpdate]);
    const r = await this.#store.reserveDeltaCrl(ca.id, t.thisUpdate, deltaNextUpdate(t.thisUpdate, cadence));
    if (!r) return undefined;
    const times = { ...t, nextUpdate: r.nextUpdate };
    // The revoked link certificates again (crl/arl.ts): a base published before the compromise lacks them.
    const links = await this.#linkEntries(ca);
    return this.#publishReserved(ca, DELTA_SCOPE, r.number, times, withLinkEntries(this.#store.deltaCrlEntries(ca.id, r.baseNumber, { expiredBefore: t.expiredBefore }), links), r.baseNumber);
  }

  /**
   * The revoked link certificates a full CRL or delta lists besides the store's revocation log (crl/arl.ts
   * withLinkEntries), but one the log holds already: a restore carries over an entry the replaced CRLs listed
   * (backup/restore.ts), and a serial listed twice makes RFC 5280 readers refuse the whole CRL. A compromised
   * generation's own certificate last (crl/arl.ts ownCertificateEntry): its key's statement that it is compromised.
   */
  async #linkEntries(ca: CrlIssuer): Promise<CrlEntryInput[]> {
    const links = await this.#store.listCaLinks();
    const own = ownCertificateEntry(links, ca.id, ca.record.certificateDer);
    const entries = [...fullCrlLinkEntries(links, ca.id), ...(own ? [own] : [])];
    // asked together: on PostgreSQL the reads of one turn share one query (store/coalesce.ts)
    const statuses = await Promise.all(entries.map((e) => this.#store.certificateStatus(e.serial)));
    return entries.filter((_, i) => !statuses[i]?.revocation);
  }

  /**
   * Builds and publishes the CA's ARL: the link certificates it signed that it revoked (crl/arl.ts; none unless a
   * retired generation's key was declared compromised). The links are read after the number is reserved, so a
   * compromise recorded meanwhile keeps the ARL due (the reservation's revision is below it).
   */
  async publishArl(ca: CrlIssuer): Promise<PublishedCrl> {
    const t = this.#times();
    const { number } = await this.#store.reserveCrl(ca.id, t.thisUpdate, t.nextUpdate, ARL_SCOPE);
    return this.#publishReserved(ca, ARL_SCOPE, number, t, [arlEntries(await this.#store.listCaLinks(), ca.id, ca.record.certificateDer)]);
  }

  /**
   * Builds and publishes the CRLs of the given municipality partitions of one CA: numbers are reserved first
   * (each with the partition's revision, so a revocation committed meanwhile keeps its partition due), the
   * entries of all of them read in one pass over the store, then each is built and verified, and all are installed
   * and recorded in one store transaction (Store.publishCrls).
   * One that cannot be published (a directory in the way of its file) holds back none of the others: they are
   * all tried, each one published goes to `onPublished` as it lands — so a caller reports it also when the call
   * then raises — and the first failure is raised after the last.
   */
  async publishPartitions(ca: CrlIssuer, municipalities: readonly string[], onPublished?: (crl: PublishedCrl) => void): Promise<PublishedCrl[]> {
    const wanted = [...new Set(municipalities)].sort();
    for (const m of wanted) if (scopeKind(m) !== "partition") throw new JpkiError("ERR_INTERNAL", `${JSON.stringify(m)} is not a municipality partition`);
    if (!wanted.length) return [];
    // One cutoff for the one read of all of them: the earliest partition's (a partition lists an expired
    // entry a little longer than it must, never less).
    const t = this.#times(await Promise.all(wanted.map(async (m) => (await this.#store.latestCrl(ca.id, m))?.thisUpdate)));
    const numbers = new Map<string, bigint>();
    for (const m of wanted) numbers.set(m, (await this.#store.reserveCrl(ca.id, t.thisUpdate, t.nextUpdate, m)).number);
    const lists = await this.#store.crlPartitionEntries(ca.id, wanted, { expiredBefore: t.expiredBefore });
    const out: PublishedCrl[] = [];
    let failure: { e: unknown } | undefined;
    // Each is built, written, synced and checked first; then all are installed in one store transaction with one sync
    // of their directory. Installed one by one, each CRL's transaction synced crl/<ca>/ on this thread (≈ 3 ms on
    // this host's disk, the round's ≈ 400–700 CRLs after a notice run waiting for it in turn).
    const staged: StagedCrl[] = [];
    try {
      for (const m of wanted) {
        try {
          staged.push(await this.#stage(ca, m, numbers.get(m)!, t, lists.get(m) ?? []));
        } catch (e) {
          // A key that does not sign fails every one alike: no use burning the others' numbers too.
          if (isJpkiError(e, "ERR_PASSPHRASE_WRONG") || isJpkiError(e, "ERR_PASSPHRASE_MISSING")) throw e;
          failure ??= { e };
        }
        lists.delete(m); // its entries may go now
      }
    } catch (e) {
      for (const s of staged) s.discard();
      throw e;
    }
    for (const r of await this.#install(ca, staged)) {
      if ("error" in r) {
        failure ??= { e: r.error };
        continue;
      }
      out.push(r);
      onPublished?.(r);
    }
    if (failure) throw failure.e;
    return out;
  }

  /** One reserved CRL staged and installed on its own (#stage's arguments). */
  async #publishReserved(...args: StageArgs): Promise<PublishedCrl> {
    const [r] = await this.#install(args[0], [await this.#stage(...args)]);
    if ("error" in r!) throw r.error;
    return r!;
  }

  /**
   * Builds a reserved CRL into a staged file (and its PEM copy), synced and checked against what was written: ready
   * to install. A failure leaves nothing staged (the reservation stays open, so the CA or scope stays due).
   */
  async #stage(...args: StageArgs): Promise<StagedCrl> {
    const [ca, scope, number, t, entries, baseNumber, deltas = deltaCadence(this.#config) !== undefined, onLayout] = args;
    const { thisUpdate, nextUpdate } = t;
    const derPath = this.#path(ca.id, scope);
    const pemPath = `${derPath}.pem`;
    const dir = dirname(derPath);
    const extraExtensions = scopeExtensions(
      { id: ca.id, prefectureCode: ca.record.prefectureCode, purpose: ca.record.purpose, certificateDer: ca.record.certificateDer },
      scope,
      this.#config.baseUrl,
      { deltas, ...(baseNumber !== undefined ? { baseNumber } : {}) },
    );
    const issuerKey = ca.spki ?? Buffer.from(certificateParts(ca.record.certificateDer).spki);
    // The DER is written while it is built (all but the signature before the key is needed); the PEM copy,
    // if any, after, on this thread: measured on a 1,000,000-entry CRL, staging it on the thread pool (or on
    // a worker) while hashing here was slower and took 50-120 MB more. It costs ~0.2 s there, 60 MB of text.
    const pem = this.#config.crlPem;
    // The reservation stays open on any failure here, so the CA (or partition) stays due and the next run publishes.
    const noSpace = (e: unknown) => writeFailure(e, `the CRL ${relative(this.#root, derPath)}`, dir, "nothing was published and the CA stays due; publish again once it can be written (space freed, quota raised, remounted read-write)");
    const unwritable = (e: unknown) => noSpace(e) ?? e;
    // A name in the way of the install (a directory where the CRL, its PEM copy or history link goes, no
    // permission): the operator is told which, not "store failure" (ERR_STORE), which sends them to the database.
    const unusable = (e: unknown) => {
      const err = e as NodeJS.ErrnoException & { dest?: unknown };
      if (e instanceof JpkiError || typeof err?.code !== "string" || !err.syscall) return e;
      const at = typeof err.dest === "string" ? err.dest : typeof err.path === "string" ? err.path : derPath;
      return new JpkiError("ERR_FILE_UNUSABLE", `the CRL ${relative(this.#root, derPath)} could not be installed: ${relative(this.#root, at)} cannot be replaced or removed (${err.code}): nothing was published and the CA stays due; move it away and publish again`, { cause: e, details: { path: at } });
    };
    // No permission to make or write the staged file (a crl/ made read-only): the operator is told where, not
    // "a bug in jpki" (ERR_INTERNAL).
    const denied = (e: unknown) => {
      const err = e as NodeJS.ErrnoException;
      if (e instanceof JpkiError || (err?.code !== "EACCES" && err?.code !== "EPERM")) return e;
      const at = typeof err.path === "string" ? dirname(err.path) === dir ? dir : err.path : dir;
      return new JpkiError("ERR_FILE_UNUSABLE", `the CRL ${relative(this.#root, derPath)} could not be written in ${relative(this.#root, at) || "."} (${err.code}: no permission): nothing was published and the CA stays due; publish again once jpki may write there`, { cause: e, details: { path: at } });
    };
    let der: ReturnType<typeof openStagingFile>;
    try {
      // A symbolic link or a file at crl/, crl/<ca>/ or arl/ is refused before anything is written through it.
      publicationDir(this.#root, dir, relative(this.#root, derPath));
      der = openStagingFile(derPath);
    } catch (e) {
      throw denied(unwritable(e));
    }
    const staged: StagedFile[] = [];
    // Everything before the signature (44 MB for 1M entries) starts flushing to disk as soon as it is written,
    // on the thread pool, while the key may still unlock: measured, signer to staged file went from 26-31 ms
    // to 2-7 ms when PBKDF2 ends after the hashing, 20-26 ms when it ended before.
    let flushing: Promise<void> | undefined;
    // And while it is written: an fdatasync every SYNC_EVERY_BYTES (one at a time, on the thread pool), so the last
    // one has only the tail left. With one flush at the end, the disk took 120-130 ms for a 1M-entry CRL and the
    // read-back check (≈ 85 ms) no longer hid it: 35-42 ms of waiting in 3 of 4 runs. Every one is awaited (a sync
    // that failed must fail the publication: after an error the kernel may report the next fdatasync clean).
    const syncs: Promise<void>[] = [];
    let syncing = false;
    let unsynced = 0;
    // Every byte written before the signature, for the check to prove it reads back those bytes (crl/written-mac.ts).
    const written = new WrittenMac();
    let unsigned = true;
    const write = (c: Buffer) => {
      if (unsigned) written.update(c);
      der.write(c);
      unsynced += c.length;
      if (unsynced < SYNC_EVERY_BYTES || syncing) return;
      unsynced = 0;
      syncing = true;
      const s = der.flush().finally(() => (syncing = false));
      s.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
      syncs.push(s);
    };
    let check: StagedCrlCheck | undefined;
    const expected = (layout: { byteLength: number; entries: number }): ExpectedCrl => ({
      issuerName: ca.subjectName,
      issuerKey,
      algorithmIdentifier: signatureShape(issuerKey).algorithmIdentifier,
      crlExtensions: crlExtensionsElement({ authorityKeyId: ca.keyId, number, extraExtensions }),
      ...layout,
    });
    let built: BuiltCrl | StreamedCrl;
    let sha256: string;
    try {
      // Without a PEM copy no chunk needs keeping: the DER goes to the staged file alone.
      built = await (pem ? buildCrl : streamCrl)({
        issuerName: ca.subjectName,
        authorityKeyId: ca.keyId,
        number,
        thisUpdate,
        nextUpdate,
        entries,
        signer: ca.signer,
        ...(ca.spki ? { issuerKey: ca.spki } : {}),
        extraExtensions,
        // The file's digest comes from the check below, which reads every byte back anyway.
        hashFile: false,
        sink: write,
        onUnsigned: (layout) => {
          unsigned = false;
          onLayout?.(layout);
          flushing = Promise.all([...syncs, der.flush()]).then(() => undefined);
          flushing.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
          // Check what you sign, as it is on disk: the TBS is read back, walked, hashed and found to be what was
          // written now, while the key may still unlock; the signature is verified with the CA certificate's key
          // once written.
          check = beginStagedCrlCheck(der.tmp, expected(layout), written);
        },
        // A large CRL is signed by the digest of its TBS as read back and checked: not hashed a second time as
        // it streams from the store (≈ 30 ms of a 1M-entry CRL's 44 MB on this thread).
        signedDigest: () => {
          if (!check) throw new JpkiError("ERR_INTERNAL", "the CRL builder asked for its digest before the staged CRL was checked");
          return check.tbsDigest();
        },
      });
      await flushing;
      // The signature, written after the flush, is synced on the thread pool too: with several CAs published
      // at once (CrlUpdater.publishDue), this thread builds and signs another CRL meanwhile.
      const file = await der.finishAsync();
      staged.push(file);
      if (!check) throw new JpkiError("ERR_INTERNAL", "the CRL builder never reported its layout: the staged CRL was not checked");
      sha256 = check.finish();
      if (pem) staged.push(stageFile(pemPath, pemChunks((built as BuiltCrl).chunks, "X509 CRL")));
    } catch (e) {
      check?.close();
      await Promise.allSettled([...syncs, flushing]); // the descriptor stays open until the pool is done with it
      der.discard();
      for (const f of staged) f.discard();
      throw denied(unwritable(e));
    }
    const published: PublishedCrl = {
      caId: ca.id,
      scope,
      number,
      thisUpdate,
      nextUpdate,
      entries: built.entries,
      derPath,
      ...(pem ? { pemPath } : {}),
      sha256,
      byteLength: built.byteLength,
      superseded: false,
      ...(baseNumber !== undefined ? { baseNumber } : {}),
    };
    return { published, staged, dir, pemPath, pem, denied, noSpace, unusable, discard: () => staged.forEach((f) => f.discard()) };
  }

  /**
   * Installs staged CRLs of one CA and records them, in one store transaction (Store.publishCrls; one CRL through
   * publishCrl): each file is renamed into place under the store's lock, and each directory they went into is synced
   * once, before the transaction commits. Returns each one as published (superseded when a higher number was there
   * first) or the error that kept it out; one failing holds back none of the others. A store failure is thrown,
   * with nothing recorded (the reservations stay open, the scopes due).
   */
  async #install(ca: CrlIssuer, list: readonly StagedCrl[]): Promise<Array<PublishedCrl | { readonly error: unknown }>> {
    if (!list.length) return [];
    const prunings: Promise<void>[] = [];
    const dirs = new Set<string>();
    let results: Array<boolean | { readonly error: unknown }> | undefined;
    try {
      // The revocations these CRLs list were committed before they were built: durable before they are installed.
      await this.#store.syncCommitted();
      const crls = list.map((s) => ({
        rec: { caId: ca.id, number: s.published.number, entries: s.published.entries, path: relative(this.#root, s.published.derPath), sha256: s.published.sha256, ...(s.published.scope === FULL_SCOPE ? {} : { scope: s.published.scope }) },
        install: () => {
          const pruning = this.#installOne(ca, s);
          dirs.add(s.dir);
          prunings.push(pruning);
        },
      }));
      const settle = () => {
        for (const d of dirs) syncDir(d);
      };
      if (crls.length === 1) {
        // One CRL (a full CRL, a delta, an ARL, a single partition): publishCrl, its install and sync in one step.
        const one = crls[0]!;
        try {
          results = [await this.#store.publishCrl(one.rec, () => (one.install(), settle()))];
        } catch (e) {
          if (!(e instanceof InstalledIsNewer)) throw e;
          results = [{ error: e }];
        }
      } else {
        results = await this.#store.publishCrls(crls, settle);
      }
    } catch (e) {
      for (const s of list) s.discard();
      await Promise.all(prunings);
      throw e;
    }
    const out: Array<PublishedCrl | { readonly error: unknown }> = [];
    for (const [i, s] of list.entries()) {
      const r = results[i]!;
      if (r !== true) s.discard();
      if (r === true || r === false) {
        out.push(r ? s.published : { ...s.published, superseded: true });
        continue;
      }
      if (!(r.error instanceof InstalledIsNewer)) {
        out.push({ error: r.error });
        continue;
      }
      // Not installed: the reservation stays open and the scope due. Its next CRL must go above the file: a store far
      // behind it (a restore stopped before it moved the numbering on) would otherwise burn one refused number
      // per run until it got there.
      // Past every number this disk shows, in one go: with several history links above the store (a restore far
      // behind the files), moving past the one in the way refused one publication per link.
      try {
        await this.#store.skipCrlNumbers(ca.id, highestHistoryNumber(s.published.derPath, ca.keyId, r.error.installed) + 1n, this.#clock.now());
        out.push({ ...s.published, superseded: true });
      } catch (e) {
        out.push({ error: e });
      }
    }
    await Promise.all(prunings);
    return out;
  }

  /**
   * Puts one staged CRL in place, under the store's lock (Store.publishCrl's install); returns its history's pruning,
   * begun. Its directory's sync is the caller's (once for all the CRLs installed in one transaction).
   */
  #installOne(ca: CrlIssuer, s: StagedCrl): Promise<void> {
    const { derPath, number } = s.published;
    const { dir, pem, pemPath, staged, denied, noSpace, unusable } = s;
    // The store compares with the numbers it recorded as published; the disk may hold a higher one it never
    // recorded: a run that installed its files and then died or lost its connection before COMMIT (its
    // reservation stays open, so the CA stays due), or a store restored below what was published. Putting
    // this CRL over that file would move verifiers back to an older CRL, which may lack revocations the
    // newer one listed. Checked here, under the CA's lock that serializes installs.
    const onDisk = installedCrlNumber(derPath, ca.keyId);
    if (onDisk !== undefined && onDisk >= number) throw new InstalledIsNewer(onDisk);
    // The history copy is linked before anything is installed: a directory that cannot take its entry (a
    // full disk) fails the publication with nothing in place, rather than after the CRL replaced the last one
    // (the store then rolled back: the CA stayed due, but the file on disk was one it never recorded).
    // Raised as the caller's error (ERR_FILE_UNUSABLE for a full disk): the store reports what it is given.
    // The stale PEM copy goes before the DER is installed, for the same reason: a name that cannot be removed
    // (a directory put there) used to fail after the install, so every run installed a CRL the store then
    // rolled back, reported as ERR_STORE, and skipped the pruning below: one more history link per run.
    let history: string | undefined;
    try {
      // Again under the lock: a link put at crl/<ca>/ since the staging is not renamed through either.
      publicationDir(this.#root, dir, relative(this.#root, derPath));
      if (!pem) rmSync(pemPath, { force: true });
      history = linkHistory(staged[0]!.tmp, derPath, number, this.#config.crlKeep, ca.keyId, this.#root);
      for (const f of staged) f.install();
    } catch (e) {
      if (history) rmSync(history, { force: true });
      if (e instanceof InstalledIsNewer) throw e;
      throw denied(noSpace(e) ?? unusable(e));
    }
    // Installed: pruning is tidying, and a name it cannot remove must not roll the store back under the CRL.
    // On the thread pool while the store commits: unlinking the last link of a 44 MB CRL frees its pages,
    // ≈ 20 ms of this thread otherwise. Awaited before this publication returns.
    return pruneHistory(derPath, this.#config.crlKeep);
  }
}

/**
 * The history of a scope's CRLs (`keep` > 1: the last `keep` are kept): the staged file `from`, about to be
 * installed at `path`, is linked as `<path>.<number>` (returned, for the caller to remove should the install fail;
 * undefined when it keeps no history). Hard links: the current file and its history entry are one inode, so keeping
 * costs no copy, and installs replace the name, never the bytes. pruneHistory then removes the links beyond the
 * `keep` highest numbers.
 *
 * A name already there is never taken for the link (it was, whatever it was): the number was just reserved, so
 * nothing of this publication can be there.
 * - a CRL of this CA's key (`keyId`) numbered `number` or higher: this disk saw that number already (a store
 *   restored below what was published): thrown as InstalledIsNewer, like such a CRL at `path` itself, so the
 *   numbering moves past it and the CRL there is kept — two different CRLs under one number would be the worse
 *   outcome, and that file may be one a verifier holds;
 * - anything else (another file, a directory, a symbolic link, dangling or not): ERR_FILE_UNUSABLE naming it,
 *   before anything is installed. It is not jpki's: neither replaced nor removed nor followed. The next run takes
 *   the next number, so it holds back one publication, and the operator is told what is in the way.
 */
export function linkHistory(from: string, path: string, number: bigint, keep: number, keyId: Buffer, root: string): string | undefined {
  if (keep <= 1) return undefined;
  const link = `${path}.${number}`;
  let st: Stats | undefined;
  for (let attempt = 0; !st; attempt++) {
    try {
      linkSync(from, link);
      return link;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
    }
    try {
      st = lstatSync(link);
    } catch {
      // gone meanwhile: linked on the next attempt
    }
  }
  if (st.isFile()) {
    const there = installedCrlNumber(link, keyId);
    if (there !== undefined && there >= number) throw new InstalledIsNewer(there);
  }
  const is = st.isSymbolicLink() ? "a symbolic link" : st.isDirectory() ? "a directory" : st.isFile() ? `a file that is not a CRL of this CA numbered ${number} or higher` : "not a regular file";
  throw new JpkiError(
    "ERR_FILE_UNUSABLE",
    `the CRL ${relative(root, path)} could not be installed: the name of its history link is taken (${relative(root, link)} is ${is}; jpki neither follows nor replaces it): nothing was published and the CA stays due, the next publication takes the next number; move it away`,
    { details: { path: link } },
  );
}

/**
 * The highest CRL number of this CA's key (`keyId`) among `path`'s history links `<path>.<n>` named above `from`,
 * or `from`: what a publication found in its way must move the numbering past.
 */
export function highestHistoryNumber(path: string, keyId: Buffer, from: bigint): bigint {
  const name = `${basename(path)}.`;
  let highest = from;
  for (const d of readdirSync(dirname(path), { withFileTypes: true })) {
    if (!d.isFile() || !d.name.startsWith(name) || !/^\d{1,30}$/.test(d.name.slice(name.length)) || BigInt(d.name.slice(name.length)) <= highest) continue;
    const n = installedCrlNumber(join(dirname(path), d.name), keyId);
    if (n !== undefined && n > highest) highest = n;
  }
  return highest;
}

/**
 * Removes the numbered copies of `path` beyond the newest `keep` (all of them when keep ≤ 1): chosen now, removed on
 * the thread pool; the promise never rejects (a name left is removed by the next publication's pruning).
 */
export function pruneHistory(path: string, keep: number): Promise<void> {
  const dir = dirname(path);
  const base = `${basename(path)}.`;
  let history: Array<{ n: string; number: bigint }>;
  try {
    // Only files: a directory named like a history entry is no CRL jpki linked, and removing it would fail.
    history = readdirSync(dir, { withFileTypes: true })
      .filter((d) => !d.isDirectory() && d.name.startsWith(base) && /^\d+$/.test(d.name.slice(base.length)))
      .map((d) => ({ n: d.name, number: BigInt(d.name.slice(base.length)) }))
      .sort((a, b) => (a.number < b.number ? 1 : a.number > b.number ? -1 : 0));
  } catch {
    return Promise.resolve(); // left for the next publication's pruning: the CRL is installed already
  }
  // A name that cannot be removed is left for the next publication's pruning, as above.
  return Promise.all(history.slice(keep > 1 ? keep : 0).map((h) => rm(join(dir, h.n), { force: true }).catch(() => undefined))).then(() => undefined);
}
