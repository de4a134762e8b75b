/**
 * The OCSP responder, RFC 6960 with RFC 5019's profile, one per server process, answering for every CA of the
 * store with that CA's delegated signing certificate (ca/ocsp-signer.ts).
 *
 * Pre-produced answers (RFC 5019 §2.2.2, RFC 6960 §2.4): a request about one certificate without a nonce is
 * answered from a cache keyed by (CA, CertID) — one signature per certificate and refresh period, not per request.
 * Staleness is bounded by polling the store: every `pollMs` the responder reads each CA's revision (a counter
 * every revoking transaction bumps, in that transaction: store.caRevisions), and an answer made while the CA
 * stood at an older revision is never served again unless it says revoked (revocation is final). An answer's
 * status is read after the revision it is tagged with was read, so it can only be newer than its tag. Hence:
 *
 *   a revocation committed (by any process: `jpki revoke`, `jpki watch`, `jpki notices ingest`) more than one
 *   poll interval plus one poll query ago is never answered "good" by this process;
 *
 * and when polls fail for longer than `staleAfterMs`, no pre-produced answer is served (each request reads the
 * store, or gets tryLater/internalError when it cannot). Caches between us and the client may keep an answer
 * for its Cache-Control max-age, which the route caps (server/ocsp.ts). Answers are re-signed when older than
 * `refreshAfterMs`, and "unknown" ones are kept only `unknownTtlMs` (a serial may be issued later). The cache
 * holds at most `maxEntries` answers (least recently used go first).
 *
 * Requests with a nonce (RFC 8954) or several CertIDs are answered fresh from the store and signed then.
 * A CertID naming another issuer, or a hash algorithm we do not support, is "unknown"; when every CertID of a
 * request is such, the answer is the unsigned "unauthorized" (RFC 5019 §2.2.3: we are not authoritative).
 *
 * A compromised CA generation (鍵危殆化: `jpki ca compromised`, `jpki ca rollover --compromised`; ca/compromised.ts):
 * every serial asked of it is answered revoked, cACompromise, at the compromise time — its genuine certificates
 * and serials it never issued alike (RFC 6960 §2.7: a responder that knows a CA's key is compromised MAY answer
 * revoked for everything of that CA), since whoever holds the key can make a certificate with any serial. A
 * certificate revoked before that keeps its own time and reason. Who signs: RFC 6960 §4.2.2.2 leaves the CA
 * itself or a responder certificate issued directly by it; the successor generation is neither (a client would
 * reject its signature), and signing anything new with the stolen key is what we refuse (ca/ocsp-signer.ts issues
 * no OCSP signing certificate for such a CA any more). So the delegated certificate issued before goes on signing
 * until it expires (days: DEFAULT_OCSP_SIGNER_VALIDITY_MS) — its own key is not the stolen one, and what it says
 * now only ever rejects — and from then on the answer is the unsigned "unauthorized", at once and every time
 * (not tryLater: no signer will come), as for a CA we do not answer for. The CRLs stay the authority. Only one
 * issued BEFORE the compromise signs: one an older serve issued from the stolen key at or after it (its issuance
 * time told from its backdated notBefore: ca/ocsp-signer.ts ocspSignerIssuedFrom) is never used; the one this
 * process held from before signs on instead, and a process without one answers unauthorized.
 */
import { createHash, X509Certificate } from "node:crypto";
import { isJpkiError } from "../errors.js";
import { certificateParts, readHeader } from "../pki/der.js";
import { clockMs, type Clock } from "../pki/clock.js";
import { unlockPrivateKey } from "../pki/keys.js";
import { compromiseTimes } from "../ca/compromised.js";
import { ocspSignerIssuedFrom } from "../ca/ocsp-signer.js";
import { CRL_REASON } from "../crl/reason.js";
import { SoftwareSigner } from "../pki/signer.js";
import type { Store } from "../store/types.js";
import type { StoreCallKind, StoreWatchdog } from "../store/watchdog.js";
import { RepeatedErrors, type RecoveredError } from "../server/repeated-errors.js";
import { CERT_ID_HASHES, parseOcspRequest, type CertId, type CertIdHash } from "./request.js";
import { errorResponse, responseEtag, signedResponse, type CertStatus, type ResponderIdentity, type ResponseStatusName } from "./response.js";

export interface OcspResponderOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** decrypts the responders' keys (the passphrase they were wrapped under by the CRL schedule's process) */
  readonly passphrase: string;
  /** nextUpdate − thisUpdate of every answer; default 1 hour */
  readonly responseValidityMs?: number;
  /** re-sign a pre-produced answer older than this; default half the validity */
  readonly refreshAfterMs?: number;
  /** how often the CA revisions are read; default 1 s */
  readonly pollMs?: number;
  /** no pre-produced answer is served when the last good poll is older than this; default 5 polls */
  readonly staleAfterMs?: number;
  /** how long an "unknown" answer is kept; default 60 s */
  readonly unknownTtlMs?: number;
  /** how often the responders' certificates (and the CA list) are re-read; default 60 s */
  readonly reloadMs?: number;
  /**
   * A request about a CA this process has not loaded, or for which it holds no current signer, reads them again
   * at once — at most this often, whoever asks; default UNKNOWN_CA_RELOAD_MS
   */
  readonly unknownCaReloadMs?: number;
  /** the most answers kept; default 20,000 (about 2 KB each) */
  readonly maxEntries?: number;
  /**
   * A poll or reload that failed (the store unreachable), or a signing key that did not open: for a log. One that
   * lasts is said once, then at most every five minutes with how often it came (server/repeated-errors.ts): a poll a
   * second said a hard outage every second.
   */
  readonly onError?: (e: unknown) => void;
  /** such a failure stopped: a poll (a reload, for a key's) passed without it */
  readonly onRecovered?: (r: RecoveredError) => void;
  /**
   * Bounds the store reads a request waits for (a status read, a reload for an unknown CA): past it the answer is
   * tryLater. jpki serve's one watchdog (store/watchdog.ts); none: a request waits as long as the store.
   */
  readonly watchdog?: StoreWatchdog;
}

export type AnsweredStatus = CertStatus["kind"];

export interface OcspAnswer {
  readonly der: Buffer;
  readonly responseStatus: ResponseStatusName;
  /** the status of each certificate asked about (successful answers only) */
  readonly statuses: readonly AnsweredStatus[];
  /** answered from the pre-produced cache, no signature made */
  readonly preProduced: boolean;
  /** for RFC 5019 caching headers: set on successful answers without a nonce */
  readonly cache?: AnswerCache;
}

export interface AnswerCache {
  readonly producedAt: Date;
  readonly nextUpdate: Date;
  readonly etag: string;
  /** producedAt and nextUpdate as HTTP-dates (Last-Modified, Expires), formatted once per answer */
  readonly producedAtHttp: string;
  readonly nextUpdateHttp: string;
}

/** RFC 5019 §6.2's validators and dates of an answer. toUTCString is the IMF-fixdate HTTP wants (RFC 9110 §5.6.7). */
function answerCache(producedAt: Date, nextUpdate: Date, etag: string): AnswerCache {
  return { producedAt, nextUpdate, etag, producedAtHttp: producedAt.toUTCString(), nextUpdateHttp: nextUpdate.toUTCString() };
}

interface CaHashes {
  readonly byHash: ReadonlyMap<CertIdHash, { readonly name: Buffer; readonly key: Buffer }>;
  /** the CA certificate's notBefore: its signers' issuance time is told from theirs by it (ocspSignerIssuedFrom) */
  readonly notBefore: Date;
}

interface Responder {
  readonly serial: string;
  readonly notAfter: Date;
  /** the earliest it can have been issued (ca/ocsp-signer.ts ocspSignerIssuedFrom) */
  readonly issuedFrom: Date;
  readonly identity: ResponderIdentity;
}

interface Entry {
  readonly der: Buffer;
  readonly etag: string;
  readonly kind: AnsweredStatus;
  readonly producedAt: Date;
  readonly nextUpdate: Date;
  /** the CA revision known before the status was read */
  readonly revision: number;
  /** not served after this (ms) */
  readonly until: number;
  /** the answer as served from the cache, made once */
  readonly answer: OcspAnswer;
  /** when the entry last moved to the young end of the LRU order (ms) */
  touched: number;
}

const HASH_NAMES = Object.values(CERT_ID_HASHES);

/**
 * How often, at most, a request about a CA id the responder has not loaded (or one without a current signer)
 * makes it read the CAs and signers again. After a `jpki ca rollover` under a running `jpki serve`, the new
 * generation was answered unauthorized (6) — "not ours", which a client does not ask again about — until the
 * minute's reload (reloadMs). The bound is for everyone together: a client sending made-up CA ids gets one read of
 * the store per this period, not one per request.
 */
export const UNKNOWN_CA_RELOAD_MS = 5_000;

/**
 * The longest GET encoding remembered for preProducedFor, characters: a request about one certificate is ~112
 * (SHA-1 CertID, base64) to ~300 (SHA-512, every character percent-encoded); so at most ~10 MB at maxEntries.
 */
export const MAX_REMEMBERED_GET = 512;

function caHashes(certificateDer: Buffer): CaHashes {
  const p = certificateParts(certificateDer);
  // issuerKeyHash: the hash of the subjectPublicKey BIT STRING's value, without tag, length and unused-bits octet.
  const spkiParts = p.spki.subarray(readHeader(p.spki).headerLength);
  const alg = readHeader(spkiParts);
  const bits = spkiParts.subarray(alg.headerLength + alg.length);
  const bh = readHeader(bits);
  const key = bits.subarray(bh.headerLength + 1, bh.headerLength + bh.length);
  const byHash = new Map<CertIdHash, { name: Buffer; key: Buffer }>();
  for (const h of HASH_NAMES) byHash.set(h, { name: createHash(h).update(p.subject).digest(), key: createHash(h).update(key).digest() });
  return { byHash, notBefore: new Date(new X509Certificate(certificateDer).validFrom) };
}

export class OcspResponder {
  readonly #o: OcspResponderOptions;
  /** the clock in ms without a Date made for it (clock.ts clockMs): preProducedFor reads it on every GET */
  readonly #nowMs: () => number;
  readonly #validityMs: number;
  readonly #refreshAfterMs: number;
  readonly #pollMs: number;
  readonly #staleAfterMs: number;
  readonly #unknownTtlMs: number;
  readonly #reloadMs: number;
  readonly #maxEntries: number;
  #revisions = new Map<string, number>();
  /**
   * The compromised generations and since when (ca/compromised.ts compromiseTimes): read after the revisions
   * whenever they changed and at every reload. Both ways a key becomes compromised — `ca compromised`
   * (Store.declareCaCompromised) and `ca rollover --compromised` (Store.putCaRollovers without links) — bump the
   * old generation's revision in the same commit, so either is seen within a poll.
   */
  #compromised = new Map<string, Date>();
  #lastPoll = -Infinity;
  #lastReload = -Infinity;
  #cas = new Map<string, CaHashes>();
  #responders = new Map<string, Responder>();
  readonly #cache = new Map<string, Entry>();
  /**
   * GET requests (RFC 5019) answered from the cache before, by CA and by their URL encoding as sent: the cache
   * key they decoded to. A poll repeating a GET is then answered without decoding or parsing it (preProducedFor).
   */
  #byGet = new Map<string, Map<string, string>>();
  #byGetSize = 0;
  readonly #inflight = new Map<string, { readonly revision: number; readonly p: Promise<{ entry: Entry; signed: boolean; key: string }> }>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  /** the polls' failures (a round: one poll) and the signing keys' (a round: one reload that read the store) */
  readonly #pollErrors: RepeatedErrors;
  readonly #keyErrors: RepeatedErrors;
  readonly #unknownCaReloadMs: number;
  /** the reload running now: every reload, the periodic and those for an unknown CA, shares it */
  #reloading: Promise<void> | undefined;
  /** when a request about an unknown CA last started one (clock ms) */
  #lastUnknownReload = -Infinity;

  constructor(o: OcspResponderOptions) {
    this.#o = o;
    this.#nowMs = clockMs(o.clock);
    this.#validityMs = o.responseValidityMs ?? 3600_000;
    this.#refreshAfterMs = o.refreshAfterMs ?? Math.floor(this.#validityMs / 2);
    this.#pollMs = o.pollMs ?? 1000;
    this.#staleAfterMs = o.staleAfterMs ?? 5 * this.#pollMs;
    this.#unknownTtlMs = o.unknownTtlMs ?? 60_000;
    this.#reloadMs = o.reloadMs ?? 60_000;
    this.#maxEntries = o.maxEntries ?? 20_000;
    this.#unknownCaReloadMs = o.unknownCaReloadMs ?? UNKNOWN_CA_RELOAD_MS;
    const repeated = () => new RepeatedErrors((e) => o.onError?.(e), { now: () => o.clock.now().getTime(), ...(o.onRecovered ? { onRecovered: o.onRecovered } : {}) });
    this.#pollErrors = repeated();
    this.#keyErrors = repeated();
  }

  /** Reads the store once (CAs, responders, revisions), then keeps polling until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    const tick = () => {
      this.#timer = setTimeout(() => {
        void this.refresh().finally(() => this.#timer && tick());
      }, this.#pollMs);
      this.#timer.unref();
    };
    tick();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One poll: every CA's revision; the CAs and the responders' certificates when due. Never throws. */
  refresh(): Promise<void> {
    return (this.#polling ??= this.#refresh().finally(() => (this.#polling = undefined)));
  }

  async #refresh(): Promise<void> {
    const now = this.#o.clock.now().getTime();
    try {
      const reloading = now - this.#lastReload >= this.#reloadMs || this.#responders.size === 0;
      if (reloading) await this.#reloadOnce(now);
      const revisions = await this.#watched("the OCSP responder's poll of the CAs' revisions", () => this.#o.store.caRevisions());
      // Read after the revisions, as statuses are: an answer tagged with a revision saw every compromise before it.
      if (reloading || revisionsChanged(this.#revisions, revisions)) {
        this.#compromised = await this.#watched("the OCSP responder's read of compromised CAs", () => compromiseTimes(this.#o.store));
        this.#dropLateSigners();
      }
      this.#revisions = revisions;
      this.#lastPoll = now;
    } catch (e) {
      if (!this.#failed(e)) return;
    }
    this.#pollErrors.roundEnd();
  }

  /**
   * `f()` as a call the watchdog watches, when there is one (jpki serve's). The poll and the reload were not: on a
   * PostgreSQL host gone silent, the poll's read hung on its pooled connection until TCP gave up (≈ 15 min), never
   * cut, and every poll meanwhile joined it (one at a time), so for that long after the database was back no
   * pre-produced answer was served (a signature per request instead) and a pool connection was lost. Watched, it
   * fails at the bound, the next poll reads anew, and its connection is cut once the pool needs it.
   */
  #watched<T>(what: StoreCallKind, f: () => Promise<T>): Promise<T> {
    const dog = this.#o.watchdog;
    return dog ? dog.run(what, f) : f();
  }

  /**
   * A poll's or a reload's failure, for the operator. Not one the watchdog answered (late, or refused while the
   * store is stalled): it reports the stall once (its onStalled), where a poll a second would say it every second.
   */
  #failed(e: unknown): boolean {
    if (this.#o.watchdog && isJpkiError(e, "ERR_STORE_UNRESPONSIVE")) return false;
    this.#pollErrors.error(e);
    return true;
  }

  #reloadOnce(now: number): Promise<void> {
    return (this.#reloading ??= this.#reload(now).finally(() => (this.#reloading = undefined)));
  }

  /**
   * Reads the CAs and signers again for a request that found its CA, or its CA's signer, missing: joins a reload
   * in flight, else starts one unless one was started so within unknownCaReloadMs. Whether one was read (false:
   * rate-limited, nothing read; or the read failed or was late). Never throws: a failed read is reported by the reload.
   */
  async #reloadForUnknown(): Promise<boolean> {
    if (!this.#reloading) {
      const now = this.#o.clock.now().getTime();
      if (now - this.#lastUnknownReload < this.#unknownCaReloadMs) return false;
      this.#lastUnknownReload = now;
      void this.#reloadOnce(now).catch((e: unknown) => void this.#failed(e));
    }
    const reloading = this.#reloading;
    if (!reloading) return true;
    // A reload the store does not answer is waited for the watchdog's bound at most (it hung every request about
    // a CA not loaded); late, refused or failed, nothing was learnt: false, so the answer is tryLater, never
    // "not ours" for a CA only the store could have told of.
    const dog = this.#o.watchdog;
    try {
      await (dog ? dog.run("an OCSP responder's reload", () => reloading) : reloading);
      return true;
    } catch {
      return false;
    }
  }

  async #reload(now: number): Promise<void> {
    // The reads alone are watched, not the unlocking of new signing keys below (CPU, not the store). Begun together:
    // a watched call's reads are its own only as they begin within it (store/watchdog.ts currentCall).
    const [casRead, compromised, responderRecords] = await this.#watched("the OCSP responder's reload", () =>
      Promise.all([this.#o.store.listCas(), compromiseTimes(this.#o.store), this.#o.store.ocspResponders()]),
    );
    const cas = new Map<string, CaHashes>();
    for (const rec of casRead) cas.set(rec.id, this.#cas.get(rec.id) ?? caHashes(rec.certificateDer));
    this.#cas = cas;
    this.#compromised = compromised;
    const responders = new Map<string, Responder>();
    for (const rec of responderRecords) {
      const held = this.#responders.get(rec.caId);
      if (held && held.serial === rec.serial) {
        if (this.#mayUse(rec.caId, held)) responders.set(rec.caId, held);
        continue;
      }
      const issuedFrom = ocspSignerIssuedFrom(rec.notBefore, cas.get(rec.caId)?.notBefore ?? rec.notBefore);
      // Issued from a compromised CA's key after the compromise (a serve from before jpki stopped that, or one that
      // had not seen it yet): never used. The one held from before goes on signing, if there is one.
      if (!this.#mayUse(rec.caId, { issuedFrom })) {
        if (held && this.#mayUse(rec.caId, held)) responders.set(rec.caId, held);
        continue;
      }
      try {
        const key = await unlockPrivateKey(rec.encryptedKeyPem, this.#o.passphrase, `the OCSP signing key of CA ${rec.caId}`);
        const signer = new SoftwareSigner(key);
        if (!signer.spki.equals(certificateParts(rec.certificateDer).spki)) continue;
        responders.set(rec.caId, { serial: rec.serial, notAfter: rec.notAfter, issuedFrom, identity: { certificateDer: rec.certificateDer, signer } });
      } catch (e) {
        this.#keyErrors.error(e);
        if (held && this.#mayUse(rec.caId, held)) responders.set(rec.caId, held);
      }
    }
    this.#keyErrors.roundEnd();
    this.#responders = responders;
    this.#lastReload = now;
  }

  /**
   * Whether a responder certificate may sign for `caId`: any, unless the CA is compromised; then only one issued
   * before the compromise. One issued at or after it was signed by a key someone else may hold, for a responder
   * jpki would no longer vouch for (ca/ocsp-signer.ts issues none such any more).
   */
  #mayUse(caId: string, r: Pick<Responder, "issuedFrom">): boolean {
    const at = this.#compromised.get(caId);
    return !at || r.issuedFrom.getTime() < at.getTime();
  }

  /** Forgets the signers a compromise just read makes unusable (the next reload does not take them back). */
  #dropLateSigners(): void {
    for (const [caId, r] of this.#responders) if (!this.#mayUse(caId, r)) this.#responders.delete(caId);
  }

  /**
   * The pre-produced answer to a GET whose URL encoding (`encoded`, the path part after the CA) was answered
   * from the cache before, if it may still be served: no decoding, no parsing, no promise. The same checks as
   * answer()'s (the responder's certificate current, the entry neither expired nor older than a revocation
   * seen since); undefined when any fails or the request is new: then decode it and call answer().
   */
  preProducedFor(caId: string, encoded: string): OcspAnswer | undefined {
    const key = this.#byGet.get(caId)?.get(encoded);
    if (key === undefined) return undefined;
    const hit = this.#cache.get(key);
    if (!hit) return undefined;
    const now = this.#nowMs();
    const responder = this.#responders.get(caId);
    if (!responder || responder.notAfter.getTime() <= now || !this.#usable(caId, hit, now)) return undefined;
    this.#touch(key, hit, now);
    return hit.answer;
  }

  /** Moves an entry to the young end of the LRU order, at most once a second (a Map delete and set per poll showed). */
  #touch(key: string, e: Entry, now: number): void {
    if (now - e.touched < 1000) return;
    e.touched = now;
    this.#cache.delete(key);
    this.#cache.set(key, e);
  }

  /**
   * Answers a DER OCSPRequest about `caId`'s certificates. Never throws: every failure is an OCSP status.
   * `getEncoding`: the request's encoding in a GET URL, remembered for preProducedFor when the answer is a
   * pre-produced one.
   */
  async answer(caId: string, body: Uint8Array, getEncoding?: string): Promise<OcspAnswer> {
    let req;
    try {
      req = parseOcspRequest(body);
    } catch (e) {
      if (isJpkiError(e, "ERR_OCSP_MALFORMED")) return unsigned("malformedRequest");
      return unsigned("internalError");
    }
    // A CA id not loaded may be a generation made since (jpki ca rollover, ca init by another process): the store
    // is read again (rate-limited, shared) before the answer says "not ours".
    let ca = this.#cas.get(caId);
    if (!ca) {
      // Rate-limited (another request made the store be read within unknownCaReloadMs, before this CA may have
      // existed): not known to be foreign, so tryLater — "not ours" is final to a client. The test of a rollover
      // under a running serve got unauthorized whenever an earlier request had just caused a read.
      if (!(await this.#reloadForUnknown())) return unsigned("tryLater");
      ca = this.#cas.get(caId);
    }
    if (!ca) return unsigned("unauthorized");
    const ours = req.certIds.map((c) => isOurs(ca, c));
    if (!ours.some(Boolean)) return unsigned("unauthorized");
    let now = this.#o.clock.now();
    let responder = this.#responders.get(caId);
    // A compromised generation is issued no new signer: once the one it had expired, nothing will sign for it.
    if (this.#compromised.has(caId) && (!responder || responder.notAfter.getTime() <= now.getTime())) return unsigned("unauthorized");
    // Ours, but no current signer loaded: the schedule's process may have issued one since (it does within a
    // poll of a new CA's first CRL: serve.ts). Until there is one, tryLater (3): the CA is ours, ask again.
    if ((!responder || responder.notAfter.getTime() <= now.getTime()) && (await this.#reloadForUnknown())) {
      now = this.#o.clock.now();
      responder = this.#responders.get(caId);
    }
    if (!responder || responder.notAfter.getTime() <= now.getTime()) return unsigned("tryLater");
    try {
      if (req.certIds.length === 1 && !req.nonce) {
        const { entry, signed, key } = await this.#preProduced(caId, req.certIds[0]!, responder, now);
        if (getEncoding !== undefined) this.#rememberGet(caId, getEncoding, key);
        return signed ? { ...entry.answer, preProduced: false } : entry.answer;
      }
      const statuses = await Promise.all(req.certIds.map((c, i) => (ours[i] ? this.#status(caId, c) : ({ kind: "unknown" } as const))));
      const nextUpdate = this.#nextUpdate(now, responder);
      const der = await signedResponse({
        responder: responder.identity,
        producedAt: now,
        answers: req.certIds.map((c, i) => ({ certIdDer: c.der, status: statuses[i]!, thisUpdate: now, nextUpdate })),
        nonce: req.nonce,
      });
      return {
        der,
        responseStatus: "successful",
        statuses: statuses.map((s) => s.kind),
        preProduced: false,
        ...(req.nonce ? {} : { cache: answerCache(now, nextUpdate, responseEtag(der)) }),
      };
    } catch (e) {
      // The store out of reach (a restart, the network) passes: RFC 6960 §2.3's tryLater tells the client to ask
      // again, where internalError says the responder itself is broken.
      return unsigned(isJpkiError(e, "ERR_STORE_UNREACHABLE") || isJpkiError(e, "ERR_STORE_UNRESPONSIVE") ? "tryLater" : "internalError");
    }
  }

  #nextUpdate(now: Date, responder: Responder): Date {
    return new Date(Math.min(now.getTime() + this.#validityMs, responder.notAfter.getTime()));
  }

  async #status(caId: string, c: CertId): Promise<CertStatus> {
    const compromisedAt = this.#compromised.get(caId);
    // A serial it has no certificate of, answered revoked: the answer carries the extended revoke extension
    // (notIssued; RFC 6960 §2.2, ocsp/response.ts). Genuine ones are answered as before, byte for byte.
    if (c.serial === undefined) return compromisedAt ? caCompromise(compromisedAt, true) : { kind: "unknown" };
    const serial = c.serial;
    // Bounded (watchdog): a late or refused read is ERR_STORE_UNRESPONSIVE, answered tryLater as an unreachable store is.
    const dog = this.#o.watchdog;
    const row = await (dog ? dog.run("an OCSP status read", () => this.#o.store.certificateStatus(serial)) : this.#o.store.certificateStatus(serial));
    const own = row && row.caId === caId ? row : undefined;
    // Revoked before the key was stolen: that revocation stands as it was (its time and reason are the truer ones).
    if (own?.revocation && (!compromisedAt || own.revocation.revokedAt.getTime() <= compromisedAt.getTime())) {
      return { kind: "revoked", revokedAt: own.revocation.revokedAt, reason: own.revocation.reason };
    }
    if (compromisedAt) return caCompromise(compromisedAt, !own);
    return own ? { kind: "good" } : { kind: "unknown" }; // a revoked one was answered above
  }

  #usable(caId: string, e: Entry, now: number): boolean {
    if (now >= e.until) return false;
    if (e.kind === "revoked") return true;
    // made before the compromise was known here (a poll may not have seen the revision move yet)
    if (this.#compromised.has(caId)) return false;
    if (now - this.#lastPoll > this.#staleAfterMs) return false;
    return e.revision >= (this.#revisions.get(caId) ?? 0);
  }

  #rememberGet(caId: string, encoded: string, key: string): void {
    // A long encoding is not remembered (it is answered from the cache all the same, after decoding): the count
    // alone bounded the memory at maxEntries times the longest URL, and a verifier padding a valid request
    // (a requestorName, a non-critical extension: up to MAX_REQUEST_BYTES) grew a serving process by ~30 KB a
    // request, 600 MB before the reset, without a single signature.
    if (encoded.length > MAX_REMEMBERED_GET) return;
    // Bounded like the cache: a client inventing encodings (percent-encoding variants) cannot grow it.
    if (this.#byGetSize >= this.#maxEntries) {
      this.#byGet = new Map();
      this.#byGetSize = 0;
    }
    let m = this.#byGet.get(caId);
    if (!m) this.#byGet.set(caId, (m = new Map()));
    if (!m.has(encoded)) this.#byGetSize++;
    m.set(encoded, key);
  }

  async #preProduced(caId: string, c: CertId, responder: Responder, now: Date): Promise<{ entry: Entry; signed: boolean; key: string }> {
    const key = `${caId}\0${c.der.toString("latin1")}`;
    const t = now.getTime();
    const hit = this.#cache.get(key);
    if (hit && this.#usable(caId, hit, t)) {
      this.#touch(key, hit, t);
      return { entry: hit, signed: false, key };
    }
    // A request joins one being produced for the same CertID, unless a revocation was seen since it started.
    const revision = this.#revisions.get(caId) ?? 0;
    const flying = this.#inflight.get(key);
    if (flying && flying.revision >= revision) return flying.p;
    {
      const p = (async () => {
        const status = await this.#status(caId, c);
        const nextUpdate = this.#nextUpdate(now, responder);
        const der = await signedResponse({ responder: responder.identity, producedAt: now, answers: [{ certIdDer: c.der, status, thisUpdate: now, nextUpdate }] });
        const ttl = status.kind === "unknown" ? Math.min(this.#unknownTtlMs, this.#refreshAfterMs) : this.#refreshAfterMs;
        const etag = responseEtag(der);
        const answer: OcspAnswer = { der, responseStatus: "successful", statuses: [status.kind], preProduced: true, cache: answerCache(now, nextUpdate, etag) };
        const entry: Entry = { der, etag, kind: status.kind, producedAt: now, nextUpdate, revision, until: Math.min(t + ttl, nextUpdate.getTime()), answer, touched: t };
        this.#cache.delete(key);
        this.#cache.set(key, entry);
        while (this.#cache.size > this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
        return { entry, signed: true, key };
      })().finally(() => {
        if (this.#inflight.get(key)?.p === p) this.#inflight.delete(key);
      });
      this.#inflight.set(key, { revision, p });
      return p;
    }
  }
}

function isOurs(ca: CaHashes, c: CertId): boolean {
  if (!c.hash) return false;
  const h = ca.byHash.get(c.hash);
  return !!h && h.name.equals(c.issuerNameHash) && h.key.equals(c.issuerKeyHash);
}

function caCompromise(at: Date, notIssued: boolean): CertStatus {
  return { kind: "revoked", revokedAt: at, reason: CRL_REASON.cACompromise, ...(notIssued ? { notIssued: true as const } : {}) };
}

function revisionsChanged(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): boolean {
  if (before.size !== after.size) return true;
  for (const [ca, r] of after) if (before.get(ca) !== r) return true;
  return false;
}

function unsigned(status: Exclude<ResponseStatusName, "successful">): OcspAnswer {
  return { der: errorResponse(status), responseStatus: status, statuses: [], preProduced: false };
}
