/**
 * The validation API's service (`POST /v1/validate` on `jpki serve`, issue 11 point 1): validates a certificate
 * for a registered verifier (署名検証者) against the workspace's CA certificates as trust anchors and the CRLs it
 * has published (RFC 5280 §6 through validateJpki), answers in the view the verifier's kind may see (views.ts),
 * adds the resident's current four items for a government body naming an allowed legal basis (legal-basis.ts),
 * and records every answer in the disclosure log before it is given (disclosure-log.ts).
 *
 * Trust and CRLs are read from the workspace and kept: the CA certificates from the store, the CRL files from
 * crl/ (full, delta, municipality partitions) and arl/. They are looked at again at most every `recheckMs`
 * (default 1000 ms): a file whose (inode, size, mtime) is unchanged keeps its Buffer — so the shared
 * CrlIndexCache finds its parsed index by identity, no re-read and no re-hash — and a file republished by rename
 * (store/staging.ts) is read anew. A CRL republished is therefore used within recheckMs of its rename.
 */
import { statSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { compromisedCaIds, compromisedGeneration, compromisedSignerOf, type CompromisedGeneration } from "../ca/compromised.js";
import { JpkiError } from "../errors.js";
import type { VerifierRecord } from "../store/types.js";
import { parseCertificate } from "../validation/certificate.js";
import { storedTbsIs, tbsCertificateOf } from "../pki/tbs.js";
import { formatName } from "../validation/name.js";
import { CrlIndexCache } from "../validation/crl-index-cache.js";
import { JPKI_FAILURE_REASONS, validateJpki, type JpkiPurpose } from "../validation/jpki.js";
import { preverifyEndEntity } from "../validation/validate.js";
import { verifySignedData, type SignedDataStatus } from "../validation/cms.js";
import type { PathStatus } from "../validation/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { DisclosureLog } from "./disclosure-log.js";
import type { StoreCallKind, StoreWatchdog } from "../store/watchdog.js";
import { ENGINE_CRL_CACHE, EngineThread, engineThreadAvailable, sharedBytes, type EngineTrust } from "./engine-thread.js";
import { checkLegalBasis, legalBasisAllows, type LegalBasisCode } from "./legal-basis.js";
import { governmentView, privateView, type ViewedResult, PRIVATE_STATUS_OF, type GovernmentView, type PrivateView, type PrivateStatus } from "./views.js";

export interface ValidationQuery {
  /** the end-entity certificate, DER */
  readonly certificate: Buffer;
  /** further certificates to build the path from, DER */
  readonly chain?: readonly Buffer[];
  readonly purpose: JpkiPurpose;
  /** the validation time (default now) */
  readonly at?: Date;
  readonly legalBasis?: LegalBasisCode;
}

export type ValidationAnswer = GovernmentView | PrivateView;

/** A signed file (CMS SignedData, RFC 5652) to verify: `POST /v1/verify-signature` (issue 11 point 3). */
export interface SignatureQuery {
  /** the CMS ContentInfo, DER or PEM */
  readonly signedData: Buffer;
  /** the signed document, for a detached signature */
  readonly content?: Buffer;
  /** the verification time (default now) */
  readonly at?: Date;
  readonly legalBasis?: LegalBasisCode;
}

/**
 * The statuses that speak of the file, not of the signer's certificate: every verifier may read them and why.
 * The others are path statuses (revoked, expired, …), which a private provider reads as its view allows.
 */
export const DOCUMENT_STATUSES = Object.freeze(["valid", "unsupported-algorithm", "content-missing", "digest-mismatch", "bad-signature", "signer-not-found", "wrong-purpose"] as const);
type DocumentStatus = (typeof DOCUMENT_STATUSES)[number];

export interface SignatureAnswer {
  readonly view: "government" | "private";
  /** the signature over the file: its status (a private provider's path statuses reduced as in views.ts), and why */
  readonly signature: {
    readonly status: Exclude<SignedDataStatus, "malformed"> | PrivateStatus;
    readonly reason?: string;
    readonly message?: string;
    readonly signingTime?: string;
  };
  /** the signer's certificate, validated now (or at `at`) for the signature purpose, in the caller's view; absent when no signer was found */
  readonly certificate?: ValidationAnswer;
}

/** Why a signed file could not be verified at all (the route answers 400). */
export class SignedDataRefused extends Error {
  constructor(readonly code: "signed-data-malformed" | "content-missing", message: string) {
    super(message);
  }
}

interface CrlFile {
  readonly key: string;
  readonly der: Buffer;
}

interface Trust extends EngineTrust {
  readonly crls: readonly Buffer[];
}

export interface ValidationServiceOptions {
  /** how often the CA certificates and CRL files are looked at again, ms (default 1000) */
  readonly recheckMs?: number;
  /** a monotonic clock in ms for recheckMs (default performance.now) */
  readonly now?: () => number;
  /**
   * Validate on a thread of its own (engine-thread.ts), where the compiled thread module exists: what `jpki
   * serve` does. A URL names the thread module (tests run the compiled one). Default: on the calling thread.
   */
  readonly engineThread?: boolean | URL;
  /**
   * Bounds the waits for the store (store/watchdog.ts): past it a validation fails ERR_STORE_UNRESPONSIVE (the
   * route's 503) instead of waiting with a hung store. Default: unbounded (what a library caller had).
   */
  readonly watchdog?: StoreWatchdog;
  /**
   * Told when the engine's thread could not be started (ERR_WORKER_INIT_FAILED at the process's thread limit: a
   * container's pids.max, systemd's TasksMax) — once, until a start succeeds again — and when a thread that started
   * ended (a crash, an out-of-memory of the thread: ERR_INTERNAL), once per thread; validations go on, on this thread.
   */
  readonly onError?: (e: unknown, what: string) => void;
  /**
   * how long after a failed start, or after the thread ended, a new engine thread is started, ms (default 60 000;
   * read on `now`)
   */
  readonly engineRetryMs?: number;
}

/** After a failed start of the engine's thread, or its end, the next is tried this long after (ms): see #engine. */
const ENGINE_RETRY_MS = 60_000;

const ENGINE_THREAD = new URL("./engine-thread-main.js", import.meta.url);

/** Every CRL file is looked at this often (ms), whatever its directory says: one rewritten in place keeps its directory's mtime. */
const FULL_SWEEP_MS = 10_000;
/** A directory changed less than this long ago (ms, wall clock) is listed again at the next look: see #list. */
const RACY_MS = 2_000;

/** Whether two lists hold the same bytes in the same order. */
function sameBuffers(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

export class VerifierValidationService {
  readonly #ws: Workspace;
  readonly #index = new CrlIndexCache(ENGINE_CRL_CACHE);
  readonly #log: DisclosureLog;
  readonly #recheckMs: number;
  readonly #now: () => number;
  #files = new Map<string, CrlFile>();
  /** CRL directories as last listed (#list) */
  readonly #dirs = new Map<string, { readonly id: string; readonly settled: boolean; readonly entries: ReadonlyArray<{ readonly name: string; readonly file: boolean; readonly dir: boolean }> }>();
  #sweptAt = -Infinity;
  #trust: Trust | undefined;
  /**
   * The compromised generations left out of the anchors (#readAnchors), by id: a certificate one of them signed is
   * told `issuer-compromised` rather than the engine's bare untrusted (#withCompromisedIssuer).
   */
  #compromised: readonly CompromisedGeneration[] = [];
  #checkedAt = -Infinity;
  #loading: Promise<Trust> | undefined;
  readonly #threadModule: URL | undefined;
  #thread: Promise<EngineThread | undefined> | undefined;
  readonly #engineRetryMs: number;
  /** when (#now) the engine's thread last failed to start or ended; undefined while none has, or once it is tried again */
  #engineFailedAt: number | undefined;
  /** a failed start has been told (onError) and no start has succeeded since */
  #engineFailureTold = false;
  readonly #onError: ((e: unknown, what: string) => void) | undefined;
  #closed = false;
  readonly #watchdog: StoreWatchdog | undefined;
  /** the store's reads of a reload, while one runs: reloads after a late one share it rather than queue another */
  #storeRead: Promise<Buffer[]> | undefined;

  constructor(ws: Workspace, o: ValidationServiceOptions = {}) {
    this.#ws = ws;
    this.#watchdog = o.watchdog;
    // The groups do not wait for the answers in flight (disclosure-log.ts `coming`), on either store: a group is what
    // queued while the last write ran. The wait for ¾ of them cost a third of the rate on SQLite (2026-12-07 11:00,
    // bench/api-ab.js, a quiet host, 4 ABBA rounds: 5,776/s with it against 8,913/s without, every pair faster) and
    // on PostgreSQL too (12:06, the runs under `chrt -f 10` on a host at load 15–18, 3 rounds A B C C B A: median
    // 4,855/s with it against 7,171/s without, all 6 runs with it below all 10 without; groups 30 → 10 answers,
    // PostgreSQL's CPU 42 → 51 µs an answer): the engine and the serving thread stood idle while a group waited, the
    // rest of the answers waiting on the engine. A wait for one engine message at most (groups of 16) measured no
    // different from none (medians 7,679 and 7,337/s against 7,171 and 8,209/s in two such sessions).
    this.#log = new DisclosureLog(ws.store, o.watchdog ? { watchdog: o.watchdog } : {});
    this.#recheckMs = o.recheckMs ?? 1000;
    this.#now = o.now ?? (() => performance.now());
    const module = o.engineThread instanceof URL ? o.engineThread : o.engineThread ? ENGINE_THREAD : undefined;
    this.#threadModule = module && engineThreadAvailable(module) ? module : undefined;
    this.#engineRetryMs = o.engineRetryMs ?? ENGINE_RETRY_MS;
    this.#onError = o.onError;
  }

  /** The engine's thread, started on first use; undefined when off, not available, or ended (then this thread validates). */
  async #engine(): Promise<EngineThread | undefined> {
    // Once closed, never a new thread: `jpki serve` closes this service while keep-alive connections may still
    // send requests (they get 5 s), and a thread started then was never stopped, so the process did not exit.
    if (this.#closed) throw closedError();
    if (!this.#threadModule) return undefined;
    // A start that failed (the process at its thread limit, for a moment or for good) is tried again after a while:
    // kept for the process's life, one moment at the limit cost every later validation the serving thread's time
    // (≈ 100 µs instead of ≈ 30 µs) until a restart. Not at once: a start attempt per request at the limit is waste.
    // A thread that started and later ended (#threadEnded: a crash, its heap's limit) is forgotten the same way: a
    // thread that crashes at once again costs a start a minute, not one per request.
    if (this.#engineFailedAt !== undefined) {
      if (this.#now() - this.#engineFailedAt < this.#engineRetryMs) return undefined;
      this.#engineFailedAt = undefined;
      this.#thread = undefined;
    }
    this.#thread ??= EngineThread.start(this.#threadModule, (e) => this.#threadEnded(e)).then(
      (t) => {
        this.#engineFailureTold = false;
        return t;
      },
      (e: unknown) => {
        this.#engineFailedAt = this.#now();
        // Said once (not at each retry while the limit lasts): validations still answer, more slowly.
        if (!this.#engineFailureTold) {
          this.#engineFailureTold = true;
          this.#onError?.(e, `the validation engine's thread could not be started (validations run on the serving thread meanwhile; tried again every ${Math.round(this.#engineRetryMs / 1000)} s)`);
        }
        return undefined;
      },
    );
    const t = await this.#thread;
    return t && !t.ended ? t : undefined;
  }

  /**
   * The engine's thread ended other than by close(). What it was validating was failed with ERR_INTERNAL, and
   * #validated validates those here; so do later requests until #engine starts a new thread, engineRetryMs from now.
   * Said once per thread: the message names the exit code or the error's code, never what was being validated.
   */
  #threadEnded(e: Error): void {
    if (this.#closed) return;
    this.#engineFailedAt = this.#now();
    this.#onError?.(e, `the validation engine's thread ended (validations run on the serving thread meanwhile; a new one is started ${Math.round(this.#engineRetryMs / 1000)} s after)`);
  }

  /** validateJpki on the engine's thread, or here (the end entity's signature verified on libuv's pool meanwhile). */
  async #validated(trust: Trust, q: ValidationQuery, at: Date): Promise<ViewedResult> {
    const thread = await this.#engine();
    if (thread) {
      try {
        return await thread.validate(trust, { certificate: q.certificate, ...(q.chain ? { chain: q.chain } : {}), purpose: q.purpose, at });
      } catch (e) {
        if (!thread.ended) throw e; // the engine's answer (a certificate that does not decode)
      }
    }
    // The end entity's RSA signature is verified on libuv's thread pool while this thread serves other requests:
    // about a quarter of a validation, and the engine takes the verdict instead of verifying it here.
    const signatureVerdicts = await preverifyEndEntity(q.certificate, q.chain?.length ? [...trust.anchors, ...q.chain] : trust.anchors);
    // Throws ERR_DER_MALFORMED for bytes that are no certificate (the route answers certificate-malformed).
    return validateJpki({
      signatureVerdicts,
      certificate: q.certificate,
      purpose: q.purpose,
      trustAnchors: trust.anchors,
      intermediates: q.chain ?? [],
      crls: trust.crls,
      crlIndex: this.#index,
      at,
    });
  }

  get disclosureLog(): DisclosureLog {
    return this.#log;
  }

  /** The trust anchors and CRLs as of at most recheckMs ago. */
  async #current(): Promise<Trust> {
    if (this.#trust && this.#now() - this.#checkedAt < this.#recheckMs) return this.#trust;
    this.#loading ??= this.#reload().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async #reload(): Promise<Trust> {
    const started = this.#now();
    // Not a generation rolled over for a compromised key (ca/compromised.ts): its thief signs certificates and CRLs
    // at will, and this service answered "valid" for them (found by a helper) where every verifier is told to drop
    // that root from its trust store.
    const anchors = await this.#watched("reading the CA certificates", () => (this.#storeRead ??= this.#readAnchors().finally(() => (this.#storeRead = undefined))));
    // The files, from the directories that changed since they were last listed (a publication renames a file into
    // its directory, which moves the directory's mtime); every file every FULL_SWEEP_MS (one rewritten in place
    // leaves its directory as it was). Stat-ing each file every second was ≈ 100 µs of this thread a file: a
    // national workspace publishes ≈ 3,700.
    const full = started - this.#sweptAt >= FULL_SWEEP_MS;
    const listed: Array<{ readonly path: string; readonly fresh: boolean }> = [];
    const visited = new Set<string>();
    await this.#list(this.#ws.paths.crlDir, true, full, listed, visited);
    await this.#list(join(this.#ws.paths.root, "arl"), false, full, listed, visited);
    // a directory gone since (a CA's partitions removed) is forgotten at the sweep
    if (full) for (const d of this.#dirs.keys()) if (!visited.has(d)) this.#dirs.delete(d);
    const files = new Map<string, CrlFile>();
    for (const { path: p, fresh } of listed) {
      const known = this.#files.get(p);
      if (known && !fresh) {
        files.set(p, known);
        continue;
      }
      let s;
      try {
        s = await stat(p);
      } catch {
        continue; // replaced or removed between the listing and now: the next look finds the new one
      }
      const key = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (known && known.key === key) files.set(p, known);
      else {
        try {
          // In shared memory: the engine's thread indexes these very bytes (sharedBytes), not a copy of them.
          files.set(p, { key, der: sharedBytes(await readFile(p)) });
        } catch {
          continue;
        }
      }
    }
    if (full) this.#sweptAt = started;
    this.#checkedAt = started;
    // Nothing changed: the same trust object, so the engine's thread is sent nothing and its sets stay resolved.
    const before = this.#trust;
    if (before && files.size === this.#files.size && [...files].every(([p, f]) => this.#files.get(p) === f) && sameBuffers(anchors, before.anchors)) return before;
    this.#files = files;
    const keyed = [...files].map(([path, f]) => ({ key: `${path}|${f.key}`, der: f.der }));
    // Frozen: validateJpki resolves a frozen set once (validate.ts configuredAll, CrlIndexCache.parseAll), not per answer.
    this.#trust = { anchors: Object.freeze(anchors), crlFiles: keyed, crls: Object.freeze(keyed.map((f) => f.der)) };
    this.#index.retainOnly(this.#trust.crls); // this thread's own cache (no engine thread): CRLs replaced since go
    return this.#trust;
  }

  async #readAnchors(): Promise<Buffer[]> {
    // Begun together: both are the watched call's reads only as they begin within it (store/watchdog.ts currentCall);
    // the second, begun after an await, was no call's, and on a host that vanished hung its connection uncut.
    const [compromised, cas] = await Promise.all([compromisedCaIds(this.#ws.store), this.#ws.store.listCas()]);
    const known = new Map(this.#compromised.map((c) => [c.id, c]));
    this.#compromised = cas
      .filter((c) => compromised.has(c.id))
      .map((c) => known.get(c.id) ?? compromisedGeneration(c.id, c.certificateDer));
    return cas.filter((c) => !compromised.has(c.id)).map((c) => c.certificateDer);
  }

  /**
   * An untrusted answer about a certificate a compromised generation's key signed (genuine, or forged with the
   * stolen key: nobody can tell them apart) says so: reason `issuer-compromised`. The engine saw only that no anchor
   * signed it ("no-trust-anchor", or "signature-invalid" through a chain) and a government body was told nothing
   * of why a certificate it had accepted the day before was no longer trusted. Only untrusted answers pay for this
   * (an issuer-name comparison per compromised generation, one signature check on a match).
   */
  #withCompromisedIssuer(result: ViewedResult, certificate: Buffer): ViewedResult {
    if (result.status !== "untrusted" || this.#compromised.length === 0) return result;
    const by = compromisedSignerOf(certificate, this.#compromised);
    if (!by) return result;
    return { ...result, reason: "issuer-compromised", index: 0, message: `${JPKI_FAILURE_REASONS["issuer-compromised"]} (CA ${by})` };
  }

  /** `f()` bounded by the watchdog, when there is one. */
  #watched<T>(what: StoreCallKind, f: () => Promise<T>): Promise<T> {
    return this.#watchdog ? this.#watchdog.run(what, f) : f();
  }

  /**
   * The .crl files of `dir` (and with `nested`, of its subdirectories: the municipality partitions) in
   * publishedCrlPaths's order, each marked `fresh` when its directory was listed anew (changed, unsettled, or a
   * `full` look): only those are stat-ed again. Each directory costs one synchronous stat when it has not changed,
   * which is all most are; a listing (rare: a publication, or the sweep) is asynchronous, as the files' stats are.
   */
  async #list(dir: string, nested: boolean, full: boolean, out: Array<{ readonly path: string; readonly fresh: boolean }>, visited: Set<string>): Promise<void> {
    let s;
    try {
      s = statSync(dir);
    } catch {
      this.#dirs.delete(dir);
      return;
    }
    if (!s.isDirectory()) return;
    visited.add(dir);
    // ctime too: a tool that restores a directory's mtime (rsync -a, tar, cp -a) cannot set its ctime back; dev, in
    // case another file system is mounted there.
    const id = `${s.dev}:${s.ino}:${s.mtimeMs}:${s.ctimeMs}`;
    const seen = this.#dirs.get(dir);
    const unchanged = !full && seen !== undefined && seen.settled && seen.id === id;
    let entries = seen?.entries;
    if (!unchanged || !entries) {
      try {
        entries = (await readdir(dir, { withFileTypes: true }))
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((e) => ({ name: e.name, file: e.isFile(), dir: e.isDirectory() }));
      } catch {
        this.#dirs.delete(dir);
        return;
      }
      // Settled once its last change is older than the clock's tick could hide: a change in the same tick as this
      // listing would leave the times as they are, so a directory changed that recently is listed again next time.
      this.#dirs.set(dir, { id, settled: Date.now() - Math.max(s.mtimeMs, s.ctimeMs) > RACY_MS, entries });
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.file && e.name.endsWith(".crl")) out.push({ path: p, fresh: !unchanged });
      else if (nested && e.dir) await this.#list(p, false, full, out, visited);
    }
  }

  /**
   * Validates for `verifier` and answers in its view, after recording the answer in the disclosure log.
   * Throws ERR_LEGAL_BASIS_NOT_ALLOWED for a legal basis the verifier's kind may not name (nothing validated or
   * recorded), otherwise what the store throws (the answer is then not given).
   */
  async validate(verifier: VerifierRecord, q: ValidationQuery): Promise<ValidationAnswer> {
    checkLegalBasis(q.legalBasis, verifier.kind);
    if (this.#closed) throw closedError();
    return this.#validate(verifier, q);
  }

  /** validate()'s work */
  async #validate(verifier: VerifierRecord, q: ValidationQuery): Promise<ValidationAnswer> {
    const { certificate } = q;
    const at = q.at ?? this.#ws.clock.now();
    const trust = await this.#current();
    const result = this.#withCompromisedIssuer(await this.#validated(trust, q, at), certificate);
    // The serial and the issuer's name as the engine read them (chain[0] is the certificate asked about): a
    // certificate parsed once more here cost a tenth of an answer (bench api).
    const ee = result.chain?.[0] ?? chainEntryOf(certificate);
    const serial = normalSerial(ee.serial);
    // Ours: issued by one of the workspace's CAs, the very certificate the store holds under its serial —
    // compared by what the CA signed (tbsCertificate), not by the whole encoding. The reader takes BER lengths
    // in the unsigned outer SEQUENCE, so the same certificate re-encoded (30 83 00 … for 30 82 …) validated as
    // ours, revoked with its time and reason, while a byte comparison called it not ours: the answer went into
    // the disclosure log without the resident, who could never see it.
    if (verifier.kind === "government" && q.legalBasis && legalBasisAllows(q.legalBasis, verifier.kind)) {
      // The four items go with the answer: the owner and the resident are read first, then the record says so.
      const row = await this.#watched("reading the certificate's owner", () => this.#ws.store.getCertificateOwner(serial));
      const tbs = tbsCertificateOf(certificate);
      const ours = row && tbs && storedTbsIs(row.der, tbs) ? row : undefined; // the stores' rule (appendDisclosures)
      const issuer = ours ? ours.caId : ee.issuer;
      const view = governmentView(result, { at, serial, issuer, legalBasis: q.legalBasis });
      const resident = ours ? await this.#watched("reading the resident", () => this.#ws.store.getResident(ours.residentCode)) : undefined;
      const answer: GovernmentView = resident ? { ...view, currentItems: resident.fourItems } : { ...view, itemsWithheld: ours ? "no-registry-record" : "certificate-not-ours" };
      await this.#log.record({
        verifierId: verifier.id,
        serial,
        issuer,
        residentCode: ours?.residentCode,
        purpose: q.purpose,
        legalBasis: q.legalBasis,
        at: this.#ws.clock.now(),
        validationTime: at,
        answer: answer.status,
        itemsDisclosed: answer.currentItems !== undefined,
      });
      return answer;
    }
    // Otherwise the answer does not depend on whose the certificate is but for the issuer a government body is
    // told (our CA id rather than the name): the store resolves the owner as it writes the record, one write
    // per group of answers instead of a read of the owners and then the write (bench api on PostgreSQL). The
    // government view's status is the engine's (views.ts). Plain literals, no spreads: an object spread after
    // other properties takes V8's slow path, and these two were ≈ 3 µs of the serving thread per answer.
    const privateAnswer = verifier.kind === "government" ? undefined : privateView(result, at);
    const owner = await this.#log.record({
      verifierId: verifier.id,
      serial,
      issuer: ee.issuer,
      residentCode: undefined,
      purpose: q.purpose,
      legalBasis: q.legalBasis,
      at: this.#ws.clock.now(),
      validationTime: at,
      answer: privateAnswer ? privateAnswer.status : result.status,
      itemsDisclosed: false,
      tbs: tbsCertificateOf(certificate),
    });
    return privateAnswer ?? governmentView(result, { at, serial, issuer: owner ? owner.caId : ee.issuer, legalBasis: q.legalBasis });
  }

  /**
   * Verifies a signed file (CMS SignedData: the document's digest, the signature, the signer's certificate path
   * at the signing time and now: validation/cms.ts) for `verifier`, then validates the signer's certificate as
   * validate() does — in the verifier's view, with the four items under an allowed legal basis, recorded in the
   * disclosure log. Throws ERR_LEGAL_BASIS_NOT_ALLOWED as validate() does, before anything is verified;
   * SignedDataRefused for a file that is not a CMS SignedData we can read, or a detached signature without its
   * document; otherwise what the store throws.
   */
  async verifySignature(verifier: VerifierRecord, q: SignatureQuery): Promise<SignatureAnswer> {
    checkLegalBasis(q.legalBasis, verifier.kind);
    const at = q.at ?? this.#ws.clock.now();
    const trust = await this.#current();
    const r = verifySignedData({
      signature: q.signedData,
      ...(q.content ? { content: q.content } : {}),
      trustAnchors: trust.anchors,
      crls: trust.crls,
      crlIndex: this.#index,
      at,
      purpose: "signature",
    });
    if (r.status === "malformed") throw new SignedDataRefused("signed-data-malformed", "the file is not a CMS SignedData (RFC 5652) with one signer we can read");
    if (r.status === "content-missing") throw new SignedDataRefused("content-missing", "the signature is detached: send the signed document as content");
    const certificate = r.signer ? await this.validate(verifier, { certificate: r.signer, purpose: "signature", at, ...(q.legalBasis ? { legalBasis: q.legalBasis } : {}) }) : undefined;
    const signingTime = r.signingTime ? { signingTime: r.signingTime.toISOString() } : {};
    let signature: SignatureAnswer["signature"];
    if (verifier.kind === "government" || (DOCUMENT_STATUSES as readonly string[]).includes(r.status)) {
      // The signer's certificate signed by a compromised generation's key: the signature's path is untrusted for that
      // reason too (validate() found it: #withCompromisedIssuer), not for the engine's bare no-trust-anchor.
      const compromised = r.status === "untrusted" && certificate?.view === "government" && certificate.reason === "issuer-compromised";
      signature = compromised
        ? { status: "untrusted", reason: "issuer-compromised", message: certificate.message ?? r.message, ...signingTime }
        : { status: r.status as DocumentStatus | PathStatus, ...(r.reason ? { reason: r.reason } : {}), message: r.message, ...signingTime };
    } else {
      // A path status: the private provider's three answers only, and no message (it may tell the revocation).
      signature = { status: PRIVATE_STATUS_OF[r.status as Exclude<PathStatus, "valid">], ...signingTime };
    }
    return { view: verifier.kind === "government" ? "government" : "private", signature, ...(certificate ? { certificate } : {}) };
  }

  /**
   * Waits for the disclosure records in flight (bounded by the watchdog: `abandoned`, the records of a write the
   * store did not answer, see DisclosureLog.close) and stops the engine's thread; later validations are refused (ERR_STORE).
   */
  async close(): Promise<{ readonly abandoned: number; readonly lost: number }> {
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    const [log] = await Promise.all([this.#log.close(), thread?.then((t) => t?.close())]);
    return log;
  }
}

/** A validation asked of a closed service: ERR_STORE, so the routes answer 503 "try again", as for a closed store. */
function closedError(): JpkiError {
  return new JpkiError("ERR_STORE", "the validation service is closed (jpki serve is stopping): no answer was given");
}

/** What the engine reports of a certificate, read here when a result carries no chain. */
function chainEntryOf(der: Buffer): { readonly serial: string; readonly issuer: string } {
  const c = parseCertificate(der);
  return { serial: c.serialHex, issuer: formatName(c.issuer) };
}

/** The serial's contents octets in hex carry a leading 00 when the first octet's high bit is set; the store's serials are lower-case without. */
function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, "");
}

/**
 * The CRL files the service validates against: every published CRL of the workspace — each CA's full CRL (and
 * delta), its municipality partitions, and the ARLs — in a stable order.
 */
export async function publishedCrlPaths(ws: Workspace): Promise<string[]> {
  return [...(await crlFiles(ws.paths.crlDir, true)), ...(await crlFiles(join(ws.paths.root, "arl"), false))];
}

/** The .crl files of a directory (and, for crl/, of its CA subdirectories: the municipality partitions). */
async function crlFiles(dir: string, nested: boolean): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isFile() && e.name.endsWith(".crl")) out.push(p);
    else if (nested && e.isDirectory()) out.push(...(await crlFiles(p, false)));
  }
  return out;
}
