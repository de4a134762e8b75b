/**
 * The provider follows the public CRLs (失効リスト) of the CAs its customers' public certificates come from, as the
 * seed's note to slide 3(4) says: the provider learns of a revocation (死亡, 住所移転 …) by checking the public
 * certificates' validity with the public service, and updates its own CRL.
 *
 * How, and why:
 * - Which CRL: each CA's full CRL at `<endpoint>/crl/<ca>.crl` (ca/ids.ts caUrls), per key generation after a rollover
 *   (13-sig and 13-sig-g2 each publish their own, for the certificates each issued), not the municipality partitions
 *   the certificates name. The full CRL is always published (`crl generate`, the serve schedule), covers every
 *   partition, and costs one request per CA per pass however many customers the provider has; a 304 costs nothing.
 *   (Partitions would save bytes when a CA's CRL changes and the provider's customers live in few municipalities:
 *   left for later.) The certificates' own URIs name the public workspace's baseUrl, which need not be the address
 *   the provider reaches it at; the endpoint is the provider's configuration.
 * - As a registered verifier (署名検証者): `Authorization: Bearer <token>` (`jpki verifier add --kind private`).
 * - Conditional GET (RFC 9110 §13): If-None-Match with the last ETag, If-Modified-Since with the last
 *   Last-Modified, only when the CRL they stand for is still on disk (public-crl/<ca>.crl, digest checked).
 * - Every CRL downloaded is verified before it counts: the trusted CA's name and key (signature), a complete CRL
 *   (no issuingDistributionPoint, no deltaCRLIndicator, no unknown critical extension), a CRL number. Its number must not go backwards, and the same number must not come with other contents
 *   (ERR_PUBLIC_CRL_ROLLBACK): a replayed old CRL would hide a revocation.
 * - A CRL dated after this host's clock (thisUpdate more than 5 minutes ahead) is the CA's all the same (its
 *   signature says so): this host's clock is behind, or the CA's ahead. Its revocations count — refusing them kept
 *   every customer's certificate good for as long as the clocks disagreed — and the pass says ERR_PUBLIC_CRL_CLOCK
 *   (exit 17); enrolment validates nothing against it (a CRL not yet in force at "now" proves nothing of "now").
 * - A stale CRL (past nextUpdate) still counts for revocations — a revocation is never undone — but the pass
 *   reports it with its code (ERR_PUBLIC_CRL_STALE: `follow` exits 17), and enrolment refuses to validate against
 *   it (provider/enrol.ts: hard-fail).
 * - The transport: no redirects (the bearer token stays with the endpoint); each attempt bounded in size and in
 *   time twice over: an inactivity timeout (no byte for `timeoutMs`, whether connecting, awaiting the answer or
 *   between two pieces of the body) catches a stalled connection however long the download has run, and a generous
 *   total (`totalTimeoutMs`) ends a trickle that never stops. A national CRL is tens of MB: one total short enough to
 *   catch a stall soon failed it over a slow but live link. A 429, 500/502/503/504 or a refused or reset connection
 *   is asked again with a growing wait (a 429's Retry-After, up to 30 s), a timeout not (a hanging endpoint would
 *   hold the workspace for retries × timeout), nor a failure once the answer has begun. Nothing is recorded before
 *   a CRL has come and been verified.
 *
 * - A trusted generation whose successor is trusted too is checked for a key the public side declared compromised
 *   (provider/compromise.ts: its NewWithOld link revoked on the successor's CRL): found, every live certificate
 *   resting on it is revoked in the pass's state write and the pass fails with ERR_PUBLIC_CA_COMPROMISED until the
 *   operator runs `untrust`.
 * - A stop (`--watch` on SIGTERM: `signal`) cuts a download short; the pass then ends as any pass does.
 *
 * Crash safety: a pass writes the verified public CRL file, then one state.json with the revocations, what it saw
 * and the number reserved for the provider CRL that owes them, then that CRL. Killed before the state write:
 * nothing counted, the next pass downloads again (its ETag is the old one) and finds the same revocations. Killed
 * after it: the revocations are recorded and the reserved number is above the published CRL's, so the next pass
 * publishes the CRL, even on a 304 and with no live link left. Idempotent: a link revoked once is never revoked
 * again. (test/integration/provider.test.ts kills a real `provider follow` with SIGKILL.)
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { caUrls } from "../ca/ids.js";
import { CRL_REASON, reasonName } from "../crl/reason.js";
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import { parseCertificate } from "../validation/certificate.js";
import { parseCrl, readCrlFile, type Crl, type CrlEntry } from "../validation/crl.js";
import { BodyTooLarge, DownloadTimeout, boundedBody, checkDownloadTimeouts, clockedFetch, fetchFailureReason, type DownloadTimeouts } from "../validation/download-clock.js";
import { nameEquals, type Name } from "../validation/name.js";
import { verifySignature, workingKeyOf } from "../validation/signature.js";
import { privateReasonFor } from "./reasons.js";
import { NO_HINTS, checkLinkCertificate, generationPairs, isOldWithNew, laterTrusted, linkCertificateUrl, newestTrusted, successorCandidates, successorHints, type GenerationPair, type SuccessorHints } from "./compromise.js";
import {
  openProviderCa,
  providerPaths,
  publishedCrlNumber,
  publishProviderCrl,
  readProviderConfig,
  readProviderState,
  readTrustAnchors,
  reserveCrlNumber,
  withProviderLock,
  writeProviderFile,
  writeProviderState,
  compromiseEvidence,
  trustedCaOf,
  type ProviderCrl,
  type ProviderLink,
  type ProviderPaths,
  type PublicCaCompromise,
  type PublicCrlSeen,
  type SkippedTrustFile,
  type TrustedCa,
} from "./workspace.js";

/** How the provider reaches the public endpoint. */
export interface PublicEndpointOptions {
  /** the registered verifier's token (`jpki verifier add` printed it), sent as a bearer token */
  readonly bearerToken?: string;
  /** injected for tests; default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
  /**
   * The inactivity timeout: an attempt fails after this long without a byte from the endpoint, while connecting,
   * awaiting the answer, or between two pieces of its body (default 10 s). A steady download runs on past it.
   */
  readonly timeoutMs?: number;
  /** An attempt fails after this long however steadily its bytes come: a trickle that never ends (default 10 min). */
  readonly totalTimeoutMs?: number;
  /** the largest CRL accepted, bytes (default 256 MiB: DEFAULT_MAX_CRL_BYTES) */
  readonly maxCrlBytes?: number;
  /** how many times a request is made again after a 429, a 500/502/503/504 or a failed connection (default 2) */
  readonly retries?: number;
  /** how the wait between attempts is spent (default a timer); injected for tests */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * A stop (`follow --watch` on SIGTERM or SIGINT): cuts a download or a wait between attempts in progress short.
   * What was being fetched counts for nothing (nothing of it is written); the pass records what it had before.
   */
  readonly signal?: AbortSignal;
}

/**
 * A CRL of our builder takes ~49 bytes an entry (a 16-octet serial, the date, a reason): 1,000,000 entries, the
 * national scale the bench runs, are ~49 MB. 256 MiB holds ~5.4 million, five times that. No more: the body is held
 * in memory whole to be verified (twice over while its pieces are joined), so the bound is the memory an endpoint
 * gone wrong can make the provider take.
 */
const DEFAULT_MAX_CRL_BYTES = 256 * 1024 ** 2;
/** No byte for this long: the connection is taken for stalled. */
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * However steadily it comes, an attempt ends after this long: a 49 MB CRL needs ~0.7 Mbit/s to arrive within it,
 * a full 256 MiB ~3.6 Mbit/s. The workspace is held meanwhile (an enrolment waits), so not unbounded.
 */
const DEFAULT_TOTAL_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_RETRIES = 2;
/** The first wait before asking again; each further one doubles it. */
const RETRY_BASE_MS = 500;
/** The longest Retry-After waited out: a longer one fails the CA for this pass (the next pass asks again). */
const MAX_RETRY_AFTER_MS = 30_000;
/**
 * Answers worth asking again: the endpoint is restarting (jpki serve answers 503 while it stops), overloaded, or
 * rate-limiting this verifier (429 with Retry-After, server/access.ts). Any other status is the answer.
 */
const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/** A failure of one attempt, and whether another attempt may fare better. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly status?: number,
    readonly timeout?: DownloadTimeout["kind"],
  ) {
    super(message);
  }
}

/** The two timeouts, checked (ERR_USAGE): by followPublicCrls and enrolCustomer before anything is fetched. */
export function endpointTimeouts(o: PublicEndpointOptions): DownloadTimeouts {
  return checkDownloadTimeouts({ inactivityMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, totalMs: o.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS }, { inactivity: "timeoutMs", total: "totalTimeoutMs" });
}

/**
 * Why a fetch failed, in words that name it: undici says only "fetch failed" and keeps the reason (a redirect
 * refused, ECONNREFUSED, a reset) in `cause`. A timeout is not asked again (a hanging endpoint would hold the pass,
 * and an enrolment with it, for retries × the timeout); a refused or reset connection is (a restart).
 */
function transportFailure(e: unknown): AttemptFailed {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (e instanceof DownloadTimeout) return new AttemptFailed(e.message, false, undefined, e.kind);
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return new AttemptFailed(`the request was cut off (${err.message})`, false);
  const why = fetchFailureReason(e);
  // redirect: "error" makes a 3xx a failure: that is the endpoint's answer, not a passing fault
  if (/redirect/i.test(why)) return new AttemptFailed(`the endpoint answered with a redirect, which is not followed (the bearer token goes to the configured endpoint only): ${why}`, false);
  return new AttemptFailed(why, true);
}

/** A Retry-After in delta-seconds (RFC 9110 §10.2.3), as milliseconds; undefined when absent or a date. */
function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get("retry-after")?.trim();
  return v && /^\d+$/.test(v) ? Number(v) * 1000 : undefined;
}

/**
 * The wait between two attempts, cut short when the caller gives up: a Retry-After of 30 s must not hold a client
 * that has already moved on. An injected `sleep` that does not heed the signal is raced instead.
 */
async function waitBeforeRetry(ms: number, sleep: PublicEndpointOptions["sleep"], signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  if (!signal) return (sleep ?? ((t: number) => new Promise<void>((r) => setTimeout(r, t))))(ms);
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([sleep ? sleep(ms) : new Promise<void>((r) => (timer = setTimeout(r, ms))), aborted]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * A request to the endpoint with the retry policy above: a 429 or 500/502/503/504 and a refused or reset connection
 * asked again with a growing wait (a 429's Retry-After up to MAX_RETRY_AFTER_MS), a timeout or a redirect not. Each
 * attempt has its own clocks (validation/download-clock.ts), which run on through the body. Returns the last response, whatever its
 * status (its body unread); throws the last attempt's own error when no response came. `attempts` counts what was
 * tried. The CRL fetch and enrolment's OCSP request (provider/enrol.ts) share it, so the endpoint is treated alike
 * whichever of its services is down.
 *
 * `init.signal`, the caller's, ends the whole exchange: it reaches each attempt's fetch beside the attempt's clocks,
 * no attempt or wait starts once it has fired, and the request fails with its reason. A client that gave up (the
 * OcspClient's timeoutMs) left the retries running on here, up to `retries + 1` requests and their waits after it.
 */
async function requestWithRetries(url: string, init: RequestInit, o: PublicEndpointOptions, tried: { attempts: number }): Promise<Response> {
  const retries = o.retries ?? DEFAULT_RETRIES;
  const timeouts = endpointTimeouts(o);
  const caller = init.signal ?? undefined;
  const fetch = o.fetch ?? globalThis.fetch;
  // clockedFetch gives each attempt its clocks' signal: the caller's is joined to it on the way to the fetch
  const attemptFetch: typeof globalThis.fetch = caller ? (u, i) => fetch(u, { ...i, signal: i?.signal ? AbortSignal.any([i.signal, caller]) : caller }) : fetch;
  for (let attempt = 1; ; attempt++) {
    caller?.throwIfAborted();
    tried.attempts = attempt;
    let wait = RETRY_BASE_MS * 2 ** (attempt - 1);
    let res: Response;
    try {
      // a body given as bytes is copied for each attempt: one sent is not sent again
      const body = init.body instanceof Uint8Array ? Buffer.from(init.body) : init.body;
      res = await clockedFetch(attemptFetch, url, { ...init, ...(body !== undefined ? { body } : {}) }, timeouts);
    } catch (e) {
      // the fetch may fail with an error of its own making when the caller aborts: the caller's reason is what it asked for
      caller?.throwIfAborted();
      if (!transportFailure(e).retry || attempt > retries) throw e;
      await waitBeforeRetry(wait, o.sleep, caller);
      continue;
    }
    if (!RETRY_STATUSES.has(res.status) || attempt > retries) return res;
    const after = retryAfterMs(res);
    if (after !== undefined && after > MAX_RETRY_AFTER_MS) return res;
    await res.body?.cancel().catch(() => undefined);
    if (after !== undefined) wait = Math.max(wait, after);
    await waitBeforeRetry(wait, o.sleep, caller);
  }
}

/**
 * `fetch` with the endpoint's retry policy and clocks (requestWithRetries), for a client that makes its own
 * requests. The signal the client passes ends it, retries and waits included, with the signal's reason. (OcspClient
 * races its own timer besides, for a fetch of a test's that does not heed it.)
 */
export function endpointFetch(o: PublicEndpointOptions): typeof globalThis.fetch {
  return (input, init) => requestWithRetries(String(input instanceof Request ? input.url : input), init ?? {}, o, { attempts: 0 });
}

/**
 * One GET with its retries: a 200's body read to the bound, any other final status with its body discarded. Throws
 * AttemptFailed when no attempt gave an answer. `what` names the body in the message of one over the bound.
 */
async function getWithRetries(url: string, headers: Record<string, string>, o: PublicEndpointOptions, what = "the CRL"): Promise<{ res: Response; body?: Buffer; attempts: number }> {
  const tried = { attempts: 0 };
  const failed = (f: AttemptFailed) => Object.assign(f, { attempts: tried.attempts });
  let res: Response;
  try {
    // No redirects: the bearer token goes to the endpoint configured, nowhere else.
    res = await requestWithRetries(url, { headers, redirect: "error", ...(o.signal ? { signal: o.signal } : {}) }, o, tried);
    if (res.status === 200) return { res, body: await boundedBody(res, o.maxCrlBytes ?? DEFAULT_MAX_CRL_BYTES, what), attempts: tried.attempts };
  } catch (e) {
    if (e instanceof BodyTooLarge) throw failed(new AttemptFailed(e.message, false));
    throw failed(e instanceof AttemptFailed ? e : transportFailure(e));
  }
  await res.body?.cancel().catch(() => undefined);
  if (!RETRY_STATUSES.has(res.status)) return { res, attempts: tried.attempts };
  const after = retryAfterMs(res);
  throw failed(
    after !== undefined && after > MAX_RETRY_AFTER_MS
      ? new AttemptFailed(`HTTP ${res.status}, to be asked again after ${after / 1000} s, longer than the ${MAX_RETRY_AFTER_MS / 1000} s waited`, false, res.status)
      : new AttemptFailed(`HTTP ${res.status}`, true, res.status),
  );
}

export interface PublicCrlFetch {
  readonly caId: string;
  readonly url: string;
  /** 200: a new CRL, verified; 304: the one held is current */
  readonly status: "downloaded" | "not-modified";
  readonly crl: Crl;
  readonly seen: PublicCrlSeen;
  /** past its nextUpdate at the time of the pass */
  readonly stale: boolean;
  /** its thisUpdate is more than SKEW_MS after this host's clock */
  readonly fromFuture: boolean;
}

/** Clock skew allowed for a CRL's thisUpdate (a CRL from the future is refused beyond it). */
const SKEW_MS = 5 * 60_000;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** An entity tag without its weakness mark: If-None-Match compares weakly (RFC 9110 §13.1.2). */
const opaqueTag = (t: string) => t.trim().replace(/^W\//, "");

/** The request's headers without its validators. */
const bearerOnly = (h: Record<string, string>): Record<string, string> => (h.authorization ? { authorization: h.authorization } : {});

function publicCrlFile(paths: ProviderPaths, caId: string): string {
  return join(paths.publicCrlDir, `${caId}.crl`);
}

/** The last verified public CRL of a CA held on disk, when it is the one `seen` records. */
export function heldPublicCrl(paths: ProviderPaths, caId: string, seen: PublicCrlSeen | undefined): Buffer | undefined {
  const f = publicCrlFile(paths, caId);
  if (!seen || !existsSync(f)) return undefined;
  const der = readFileSync(f);
  return sha256(der) === seen.sha256 ? der : undefined;
}

/**
 * Verifies a public CRL as described above; ERR_PUBLIC_CRL_INVALID otherwise. Its dates are not judged here (a CRL
 * from the future or past its nextUpdate is still the CA's): `now` stays in the signature for callers.
 */
export function verifyPublicCrl(der: Buffer, ca: TrustedCa, _now?: Date): Crl {
  const bad = (m: string, cause?: unknown) => new JpkiError("ERR_PUBLIC_CRL_INVALID", `the CRL of ${ca.caId} from the endpoint ${m}: it was not used`, cause ? { cause } : undefined);
  let crl: Crl;
  try {
    crl = parseCrl(der);
  } catch (e) {
    throw bad("is not a DER CRL", e);
  }
  // Bytes after the CRL are outside its signature: kept, they made its digest another, and the genuine CRL of that
  // number was then refused as "the same number with other contents" until the CA issued the next one.
  if (crl.der.length !== der.length) throw bad(`has ${der.length - crl.der.length} bytes after the CRL`);
  const caCert = parseCertificate(ca.der);
  if (!nameEquals(crl.issuer, caCert.subject)) throw bad("is issued by another name than the trusted CA");
  if (!verifySignature(crl.tbs, crl.signatureAlgorithm, crl.signature, workingKeyOf(caCert.publicKey))) throw bad("does not verify with the trusted CA's key");
  if (crl.idp || crl.deltaBase !== undefined) throw bad("is not the CA's complete CRL (it carries an issuingDistributionPoint or deltaCRLIndicator)");
  if (crl.unknownCriticalExtension) throw bad(`carries an unknown critical extension ${crl.unknownCriticalExtension}`);
  if (crl.crlNumber === undefined) throw bad("carries no CRL number");
  // removeFromCRL un-lists a certificate from a delta's base (RFC 5280 §5.3.1: "only found in delta CRLs"). In a
  // complete CRL it means nothing valid, and a CA that sends it is confused about what it revoked: the whole CRL is
  // refused rather than read past, and no revocation recorded here is ever undone.
  const removed = crl.entries.serialWithReason(CRL_REASON.removeFromCRL);
  if (removed !== undefined) throw bad(`lists serial ${removed} with reason removeFromCRL, which RFC 5280 §5.3.1 allows in delta CRLs only (a malformed complete CRL)`);
  return crl;
}

/**
 * Fetches the full CRL of one trusted CA from the endpoint (conditional GET), verifies it, refuses one whose number
 * went backwards, and keeps it in public-crl/<ca>.crl. Returns what it saw, for the caller to record in the state.
 * ERR_PUBLIC_CRL_UNAVAILABLE, ERR_PUBLIC_CRL_INVALID, ERR_PUBLIC_CRL_ROLLBACK.
 */
export async function refreshPublicCrl(paths: ProviderPaths, endpoint: string, ca: TrustedCa, seen: PublicCrlSeen | undefined, clock: Clock, o: PublicEndpointOptions = {}): Promise<PublicCrlFetch> {
  const url = caUrls(endpoint, ca.caId).crl;
  const now = clock.now();
  const held = heldPublicCrl(paths, ca.caId, seen);
  const headers: Record<string, string> = {};
  if (o.bearerToken) headers.authorization = `Bearer ${o.bearerToken}`;
  // Validators belong to the resource that gave them (RFC 9110 §8.8): after the endpoint moved (config.json), the
  // old one's ETag or date said nothing of the new URL, and a 304 to it kept the provider on the old CRL.
  const validators = held && seen?.url === url;
  if (validators && seen?.etag) headers["if-none-match"] = seen.etag;
  if (validators && seen?.lastModified) headers["if-modified-since"] = seen.lastModified;
  // A 304 means "the one you hold is current" only in answer to a conditional request (RFC 9110 §15.4.5). Given to
  // a plain GET (the endpoint sent no ETag nor Last-Modified before), it says nothing, and taking it for "not
  // modified" left the provider on its old CRL, reporting all well, for as long as the endpoint kept answering so.
  let conditional = headers["if-none-match"] !== undefined || headers["if-modified-since"] !== undefined;
  const get = async (h: Record<string, string>) => {
    try {
      return await getWithRetries(url, h, o);
    } catch (e) {
      const f = e as AttemptFailed & { attempts?: number };
      const tries = f.attempts && f.attempts > 1 ? ` after ${f.attempts} attempts` : "";
      throw new JpkiError("ERR_PUBLIC_CRL_UNAVAILABLE", `the CRL of ${ca.caId} could not be fetched from ${url}${tries} (${f.message}): check the endpoint and the network; nothing was recorded`, {
        cause: e,
        details: { url, ...(f.status ? { status: f.status } : {}), ...(f.attempts ? { attempts: f.attempts } : {}), ...(f.timeout ? { timeout: f.timeout } : {}) },
      });
    }
  };
  let { res, body } = await get(headers);
  // A 304 names the representation the server holds (RFC 9110 §15.4.5: it carries the ETag a 200 would). One whose
  // ETag is not the one asked about contradicts itself: it cannot say the CRL held is current, and taking it so kept
  // the provider on its old CRL for as long as the endpoint (or a cache before it) kept answering it. Asked again
  // without validators, the endpoint must give the CRL itself.
  if (res.status === 304 && conditional && headers["if-none-match"] !== undefined) {
    const named = res.headers.get("etag");
    if (named && opaqueTag(named) !== opaqueTag(headers["if-none-match"])) {
      ({ res, body } = await get(bearerOnly(headers)));
      conditional = false;
    }
  }
  if (res.status === 304 && conditional && held && seen) {
    const crl = verifyPublicCrl(held, ca, now);
    return { caId: ca.caId, url, status: "not-modified", crl, seen: { ...seen, url, checkedAt: now.getTime() }, stale: (crl.nextUpdate?.getTime() ?? Infinity) < now.getTime(), fromFuture: fromFuture(crl, now) };
  }
  if (res.status !== 200 || !body) {
    const hint =
      res.status === 401 || res.status === 403
        ? ": the endpoint answers registered verifiers only; give the token 'jpki verifier add' printed (--token-file)"
        : res.status === 304
          ? " to a request that was not conditional (no ETag or Last-Modified was had before, or the CRL they stand for is gone, or it named another ETag and was asked again without): a 304 says nothing then; check the endpoint"
          : "";
    throw new JpkiError("ERR_PUBLIC_CRL_UNAVAILABLE", `the CRL of ${ca.caId} at ${url} answered HTTP ${res.status}${hint}`, { details: { url, status: res.status } });
  }
  const crl = verifyPublicCrl(body, ca, now);
  const number = crl.crlNumber!;
  const digest = sha256(body);
  if (seen) {
    const last = BigInt(seen.number);
    if (number < last || (number === last && digest !== seen.sha256)) {
      throw new JpkiError(
        "ERR_PUBLIC_CRL_ROLLBACK",
        `the CRL of ${ca.caId} from ${url} is number ${number}, but number ${last} was seen before${number === last ? " with other contents" : ""}: refused (an old CRL replayed would hide revocations); check the endpoint`,
        { details: { url, number: number.toString(), last: last.toString() } },
      );
    }
  }
  writeProviderFile(publicCrlFile(paths, ca.caId), body, "nothing was recorded; free space there, then run the command again");
  const etag = res.headers.get("etag") ?? undefined;
  const lastModified = res.headers.get("last-modified") ?? undefined;
  return {
    caId: ca.caId,
    url,
    status: "downloaded",
    crl,
    seen: {
      url,
      ...(etag ? { etag } : {}),
      ...(lastModified ? { lastModified } : {}),
      number: number.toString(),
      sha256: digest,
      thisUpdate: crl.thisUpdate.getTime(),
      ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.getTime() } : {}),
      checkedAt: now.getTime(),
    },
    stale: (crl.nextUpdate?.getTime() ?? Infinity) < now.getTime(),
    fromFuture: fromFuture(crl, now),
  };
}

/**
 * The entry of a public CRL for a certificate of `caSubject` with this serial, read as validation reads it
 * (validation/crl-check.ts findEntry, which enrolment's validateJpki uses): an entry without certificateIssuer is the
 * CRL issuer's, one with it (§5.3.3, carried over to the entries after it) is the issuer it names. Entries with any
 * certificateIssuer were passed over here, so a revocation enrolment would refuse on was never followed.
 */
function entryOf(crl: Crl, serial: string, caSubject: Name): CrlEntry | undefined {
  return crl.entries.get(serial)?.find((e) =>
    e.certificateIssuer ? e.certificateIssuer.some((n) => n.kind === "dn" && nameEquals(n.value, caSubject)) : nameEquals(crl.issuer, caSubject),
  );
}

const fromFuture = (crl: Crl, now: Date) => crl.thisUpdate.getTime() > now.getTime() + SKEW_MS;

export interface FollowOptions extends PublicEndpointOptions {
  /** the provider workspace directory */
  readonly dir: string;
  /** the provider CA's passphrase: its key is opened before anything is fetched (its CRL is signed when something changed) */
  readonly passphrase: string;
  readonly clock: Clock;
  /** how long to wait for the workspace when another provider command holds it (default PROVIDER_LOCK_WAIT_MS) */
  readonly lockWaitMs?: number;
}

export interface FollowedCrl {
  readonly caId: string;
  readonly url: string;
  /** "stopped": the pass was stopped (FollowOptions.signal) before or while this CRL was fetched; nothing of it counted */
  readonly status: "downloaded" | "not-modified" | "failed" | "stopped";
  readonly number?: string;
  readonly stale?: boolean;
  /** why it failed; or, with a CRL used (downloaded, not-modified), ERR_PUBLIC_CRL_CLOCK when it is dated after this host's clock, ERR_PUBLIC_CRL_STALE when it is past its nextUpdate */
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

export interface FollowRevocation {
  readonly serial: string;
  readonly customerId: string;
  readonly reason: string;
  readonly public: { readonly caId: string; readonly serial: string; readonly reason: string; readonly revokedAt: Date; readonly crlNumber: string };
}

/**
 * Whether a trusted public CA generation's key was declared compromised, as its trusted successor's CRL says
 * (provider/compromise.ts): "sound" (the link is not listed), "compromised" (listed now or found before, while its
 * certificate is still in trust/: error ERR_PUBLIC_CA_COMPROMISED until 'provider untrust' removes it), "failed"
 * (the link could not be had or checked, or the successor's CRL was not had this pass: not known).
 */
export interface CompromiseCheck {
  readonly caId: string;
  readonly successor: string;
  readonly status: "sound" | "compromised" | "failed";
  readonly linkSerial?: string;
  /** said by the generation's own CRL, listing its own certificate (`successor` is then the generation itself) */
  readonly own?: true;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

export interface FollowResult {
  readonly crls: readonly FollowedCrl[];
  /** each trusted generation with a trusted successor, checked for a declared key compromise */
  readonly compromise: readonly CompromiseCheck[];
  /** provider certificates revoked by this pass */
  readonly revoked: readonly FollowRevocation[];
  /** the provider CRL published by this pass, if any */
  readonly crl?: ProviderCrl;
  /**
   * why the CRL was published: new revocations, a publication a killed pass left undone, the one published dated
   * after now (the clock was ahead then), or it was due
   */
  readonly crlCause?: "revocations" | "unfinished" | "clock" | "due";
  /**
   * the pass was stopped (FollowOptions.signal): what it had before is recorded and published as by any pass, the CAs
   * it did not finish are "stopped", and the provider CRL is not renewed for being due
   */
  readonly stopped?: true;
  /** files of trust/ passed over (readTrustAnchors): only what needs their CA failed */
  readonly skippedTrust?: readonly SkippedTrustFile[];
  /** newer generations of trusted public CAs the endpoint publishes and this provider does not trust (a warning) */
  readonly newerGenerations?: readonly NewerGeneration[];
  /**
   * what was had of the endpoint's `/ca/index.json`, when the pass asked for it (two generations of a CA trusted, or
   * a newer one looked for); unavailable with two generations of a CA trusted, its `error` fails the pass
   */
  readonly generationIndex?: GenerationIndexOutcome;
}

/**
 * A key generation of a public CA newer than the newest this provider trusts of it, published by the endpoint where
 * CA certificates are (`<endpoint>/ca/<newer>.crt`, server/published.ts). Said as a warning, not an error: nothing the
 * provider relies on is wrong, and a failing exit would turn every pass red (and hide real failures) for as long as
 * the operator takes to trust it. Until then its customers' certificates are refused at enrolment, and the trusted
 * generation is not checked for a declared compromise on the newer one's CRL (its own CRL still says, ownCompromise).
 */
export interface NewerGeneration {
  /** the trusted generation it succeeds */
  readonly caId: string;
  /** its id: 13-sig-g2 */
  readonly newer: string;
  /** where the endpoint serves its certificate */
  readonly url: string;
  /** SHA-256 of that certificate (DER, hex), to compare with the public side's over another channel */
  readonly sha256: string;
  /** its key is certified by the trusted generation's (an OldWithNew link that verified): an ordinary rollover */
  readonly linked: boolean;
  readonly linkSerial?: string;
  readonly message: string;
}

function isLive(l: ProviderLink, now: Date): boolean {
  return !l.revoked && l.notAfter > now.getTime();
}

/**
 * One pass of `jpki provider follow`: fetch each public CRL the live links depend on, revoke the provider
 * certificates whose public certificate it lists (reason: provider/reasons.ts), record what was seen, publish the
 * provider CRL when anything changed (or a previous pass was killed before it, or it nears its nextUpdate). A CA
 * whose CRL cannot be had or is refused is reported in `crls` (status "failed") and the others still go on.
 */
export async function followPublicCrls(o: FollowOptions): Promise<FollowResult> {
  endpointTimeouts(o);
  const paths = providerPaths(o.dir);
  const config = readProviderConfig(paths);
  // The key is opened first: a wrong passphrase found only when a revocation had to be published failed the pass (and
  // ended a --watch) after the revocation was recorded, at the first public revocation rather than at the start.
  const providerCa = openProviderCa(paths, o.passphrase);
  return withProviderLock(paths, async () => {
    // A file of trust/ that cannot be used fails what needs its CA only (the CRL of that CA, below), not the pass.
    const anchors = readTrustAnchors(paths);
    const trusted = new Map<string, TrustedCa>(anchors.trusted.map((t) => [t.caId, t]));
    const unusable = new Map(anchors.skipped.flatMap((x) => (x.caId ? [[x.caId, x] as const] : [])));
    let state = readProviderState(paths);
    const now = o.clock.now();
    const compromisedCas: Record<string, PublicCaCompromise> = { ...state.compromisedCas };
    // Each trusted generation with a trusted successor is checked for a declared compromise on the successor's CRL,
    // which is therefore fetched even when no customer rests on it (provider/compromise.ts).
    // Which generation succeeds which: the endpoint's index says when a successor is not g+1 (provider/compromise.ts).
    // Asked once a pass, and only when it can matter: two generations of a CA trusted, or a newer one looked for.
    let hintsOf: Promise<SuccessorHintsFetch> | undefined;
    const hints = async () => (await (hintsOf ??= fetchSuccessorHints(config.endpoint, trusted.values(), o))).hints;
    const several = [...trusted.values()].some((t) => laterTrusted(trusted.values(), t));
    const pairs = generationPairs(trusted, several ? await hints() : NO_HINTS).filter((p) => !compromisedCas[p.ca.caId]);
    const wanted = [...new Set([...state.links.filter((l) => isLive(l, now)).map((l) => l.public.caId), ...pairs.map((p) => p.successor.caId)])].sort();
    const had = new Map<string, HadCrl>();
    const crls: FollowedCrl[] = [];
    const seen: Record<string, PublicCrlSeen> = { ...state.publicCrls };
    const links = [...state.links];
    const revoked: FollowRevocation[] = [];
    for (const caId of wanted) {
      const ca = trusted.get(caId);
      const url = caUrls(config.endpoint, caId).crl;
      // Stopped: the CAs not yet asked are not asked (the next pass, or the next run, asks them).
      if (o.signal?.aborted) {
        crls.push({ caId, url, status: "stopped" });
        continue;
      }
      const bad = unusable.get(caId);
      if (!ca && bad) {
        crls.push({ caId, url, status: "failed", error: { code: bad.code, message: `customers' certificates come from ${caId}, but ${bad.file} cannot be used (${bad.message}): its CRL is not followed until it is mended ('jpki provider trust' with ${caId}'s certificate replaces it)` } });
        continue;
      }
      if (!ca) {
        crls.push({ caId, url, status: "failed", error: { code: "ERR_CA_UNKNOWN", message: `customers' certificates come from ${caId}, but trust/${caId}.pem is gone: restore it ('jpki provider trust'), or, when the public side declared that key compromised, 'jpki provider untrust ${caId}' revokes what rests on it` } });
        continue;
      }
      let f: PublicCrlFetch;
      try {
        f = await refreshPublicCrl(paths, config.endpoint, ca, seen[caId], o.clock, o);
      } catch (e) {
        // cut short by the stop, not the endpoint's failure: nothing of it was written (the CRL file comes verified, whole)
        if (o.signal?.aborted) {
          crls.push({ caId, url, status: "stopped" });
          continue;
        }
        if (!isJpkiError(e)) throw e;
        crls.push({ caId, url, status: "failed", error: { code: e.code, message: e.message } });
        continue;
      }
      seen[caId] = f.seen;
      had.set(caId, { crl: f.crl, number: f.seen.number, stale: f.stale, fromFuture: f.fromFuture });
      const caSubject = parseCertificate(ca.der).subject;
      // A stale CRL still counts (a revocation is never undone), but it is the endpoint's newest: whatever the CA
      // revoked since is not in it. Said with a code, not only a flag, so a pass run by cron or watched by an operator
      // ends as a failure (exit 17) rather than "all well" while the provider falls behind the public side.
      const stale = f.fromFuture
        ? { error: { code: "ERR_PUBLIC_CRL_CLOCK" as const, message: `the CRL of ${caId} (#${f.seen.number}) is dated ${f.crl.thisUpdate.toISOString()}, after this host's clock (${now.toISOString()}): its revocations were applied; check this host's clock (NTP) or tell the public side theirs is ahead` } }
        : f.stale
          ? { error: { code: "ERR_PUBLIC_CRL_STALE" as const, message: `the newest CRL of ${caId} the endpoint gives (#${f.seen.number}) was due to be replaced at ${new Date(f.crl.nextUpdate!).toISOString()}: its revocations were applied, but later ones are not known; check the public side's CRL publication` } }
          : {};
      crls.push({ caId, url, status: f.status, number: f.seen.number, stale: f.stale, ...stale });
      for (let i = 0; i < links.length; i++) {
        const l = links[i]!;
        if (l.public.caId !== caId || !isLive(l, now)) continue;
        const entry = entryOf(f.crl, l.public.serial, caSubject);
        if (!entry) continue;
        const reason = privateReasonFor(entry.reason, l.sameKey);
        if (!reason) continue;
        links[i] = {
          ...l,
          revoked: { at: now.getTime(), reason: CRL_REASON[reason], ...(entry.reason !== undefined ? { publicReason: entry.reason } : {}), publicRevokedAt: entry.revocationDate.getTime(), publicCrlNumber: f.seen.number },
        };
        revoked.push({
          serial: l.serial,
          customerId: l.customerId,
          reason,
          public: { caId, serial: l.public.serial, reason: reasonName(entry.reason ?? 0) ?? "unspecified", revokedAt: entry.revocationDate, crlNumber: f.seen.number },
        });
      }
    }
    // A generation whose key the public side declared compromised: every live certificate resting on it is revoked,
    // as 'provider untrust' does (its identity proof is void, genuine or forged), in the same state write as the
    // rest of the pass, so a kill leaves all of it or none; found once, it is recorded for good.
    const compromise: CompromiseCheck[] = [];
    for (const pair of pairs) {
      if (o.signal?.aborted) break; // not known this pass: the stop makes it blind below
      const c = await checkGeneration(pair, had.get(pair.successor.caId), config.endpoint, now, o);
      if (c.record) compromisedCas[pair.ca.caId] = c.record;
      // a link fetch the stop cut short is no failure of the endpoint's: not known this pass, as the CRLs not had
      else if (!(c.check.status === "failed" && o.signal?.aborted)) compromise.push(c.check);
    }
    // Then each trusted generation whose CRL this pass had, on what its own CRL says of its own certificate: what
    // tells the generations no trusted successor speaks for. (Where a successor's CRL said so too, that record, made
    // by a key not in question, is the one kept.) A check the own CRL settles is not reported failed.
    for (const [id, h] of had) {
      const ca = trusted.get(id);
      const rec = ca && !compromisedCas[id] ? ownCompromise(ca, h, now) : undefined;
      if (!rec) continue;
      compromisedCas[id] = rec;
      for (let i = compromise.length - 1; i >= 0; i--) if (compromise[i]!.caId === id) compromise.splice(i, 1);
    }
    for (const [id, rec] of Object.entries(compromisedCas)) {
      // reported in every pass while its certificate is still trusted: the operator confirms with 'untrust'
      if (trusted.has(id)) compromise.push({ caId: id, successor: rec.successor, status: "compromised", linkSerial: rec.linkSerial, ...(rec.own ? { own: true as const } : {}), error: { code: "ERR_PUBLIC_CA_COMPROMISED", message: compromisedMessage(id, rec) } });
      for (let i = 0; i < links.length; i++) {
        const l = links[i]!;
        if (l.public.caId !== id || !isLive(l, now)) continue;
        const reason = privateReasonFor(CRL_REASON.cACompromise, l.sameKey) ?? "cessationOfOperation";
        links[i] = { ...l, revoked: { at: now.getTime(), reason: CRL_REASON[reason], publicReason: CRL_REASON.cACompromise, publicRevokedAt: rec.publicRevokedAt, publicCrlNumber: rec.crlNumber } };
        revoked.push({ serial: l.serial, customerId: l.customerId, reason, public: { caId: id, serial: l.public.serial, reason: "cACompromise", revokedAt: new Date(rec.publicRevokedAt), crlNumber: rec.crlNumber } });
      }
    }
    compromise.sort((a, b) => a.caId.localeCompare(b.caId));
    // Asked only of an endpoint this pass reached: one that could not give a CRL is not asked for more.
    const newer: NewerGeneration[] = [];
    const reached = !crls.some((c) => c.error?.code === "ERR_PUBLIC_CRL_UNAVAILABLE");
    const h = reached && !o.signal?.aborted ? await hints() : NO_HINTS;
    for (const ca of reached ? newestTrusted(trusted, h) : []) {
      // the index's successor first, then g+1: the first the endpoint publishes as that CA's is the news
      for (const id of successorCandidates(ca.caId, h)) {
        if (o.signal?.aborted) break;
        const n = await newerGeneration(config.endpoint, ca, id, o);
        if (n) {
          newer.push(n);
          break;
        }
      }
    }

    // An index that could not be had, said; with two generations of a CA trusted it fails the pass (fail closed: a
    // successor it would have named goes unchecked), unless the stop cut it short (not the endpoint's failure).
    const generationIndex = hintsOf && generationIndexOf(await hintsOf, several && !o.signal?.aborted ? [...trusted.values()].filter((t) => laterTrusted(trusted.values(), t)).map((t) => t.caId).sort() : []);

    // One write: the revocations, what was seen and (with revocations) the number of the CRL that owes them count
    // together, or not at all. Killed after it, the reserved number is above the published CRL's: the next pass
    // publishes ("unfinished"), even on a 304 and with no live link left.
    const unfinished = publishedCrlNumber(paths) < BigInt(state.crlNumber);
    state = { ...state, links, publicCrls: seen, ...(Object.keys(compromisedCas).length ? { compromisedCas } : {}) };
    if (revoked.length) state = reserveCrlNumber(paths, state);
    writeProviderState(paths, state);

    // none published, or one that does not parse: due
    const published = readCrlFile(paths.crl);
    const due = !published || (published.nextUpdate?.getTime() ?? 0) - now.getTime() <= (config.crlLifetimeHours * 3600_000) / 2;
    // Published while the clock was ahead: its thisUpdate is still to come, so relying parties refuse it as not yet
    // valid, and by its nextUpdate it would not be due for as long again (a review helper: 29 days after a 30-day
    // jump). Published again now, dated by this clock.
    const fromTheFuture = published !== undefined && published.thisUpdate.getTime() > now.getTime() + SKEW_MS;
    // Refreshed only while every public CRL the live links rest on was had and is current: a provider CRL renewed
    // for another lifetime while the public side could not be read (an endpoint down, a rollback refused, a CA's
    // CRL past its nextUpdate) told relying parties, for days, that nothing was revoked that the provider could not
    // know of (a review helper's repro). Not refreshed, it goes stale at its nextUpdate, as a relying party must see.
    const stopped = o.signal?.aborted === true;
    const blind = stopped || crls.some((c) => c.error !== undefined || c.status === "stopped") || compromise.some((c) => c.error !== undefined) || generationIndex?.error !== undefined;
    const crlCause = revoked.length ? "revocations" : unfinished ? "unfinished" : fromTheFuture ? "clock" : due && !blind ? "due" : undefined;
    const skipped = {
      ...(anchors.skipped.length ? { skippedTrust: anchors.skipped } : {}),
      ...(stopped ? { stopped: true as const } : {}),
      ...(newer.length ? { newerGenerations: newer } : {}),
      ...(generationIndex ? { generationIndex } : {}),
    };
    if (!crlCause) return { crls, compromise, revoked, ...skipped };
    const crl = await publishProviderCrl(paths, config, providerCa, o.clock, state, { reserved: revoked.length > 0 });
    return { crls, compromise, revoked, crl, crlCause, ...skipped };
  }, o.lockWaitMs === undefined ? {} : { waitMs: o.lockWaitMs });
}

/** A link certificate is a couple of KB: anything much larger is not one. */
const MAX_LINK_BYTES = 64 * 1024;
/** The index lists every CA generation of the public side, a couple of hundred bytes each: 1 MiB is thousands. */
const MAX_INDEX_BYTES = 1024 * 1024;

/**
 * What was had of the endpoint's `/ca/index.json` (ca/generation-index.ts): "found", its successors taken as hints;
 * "absent", a 404 (an older `jpki serve`, which has none: g+1 is assumed, as before there was an index); "unavailable",
 * anything else — no answer, a timeout, another status (a 5xx after the retries, a 401), a body that is not an index —
 * with `reason`. Unavailable is not absent: the endpoint has an index and the provider did not get it, so a successor
 * that is not g+1 goes unseen. With two generations of a CA trusted that fails the pass (`error`,
 * ERR_PUBLIC_CA_INDEX_UNAVAILABLE); otherwise (only a newer generation is looked for) it is said and changes nothing.
 * Found, it fails the pass alike when it names no successor for such a generation's trusted certificate (`error`,
 * ERR_PUBLIC_CA_INDEX_MISMATCH: indexFailure).
 */
export interface GenerationIndexOutcome {
  readonly status: "found" | "absent" | "unavailable";
  readonly url: string;
  readonly reason?: string;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

export interface SuccessorHintsFetch {
  readonly hints: SuccessorHints;
  readonly index: GenerationIndexOutcome;
}

/**
 * The successors the endpoint's `/ca/index.json` names for trusted generations (ca/generation-index.ts), checked as
 * provider/compromise.ts successorHints says, and what was had of the index (GenerationIndexOutcome). No hints when
 * the index is absent or unavailable: g+1 is then the only candidate, and the caller decides whether that is enough
 * (indexUnavailable). Every check the hints lead to verifies what it fetches, and g+1 is checked whatever they say.
 */
export async function fetchSuccessorHints(endpoint: string, trusted: Iterable<TrustedCa>, o: PublicEndpointOptions): Promise<SuccessorHintsFetch> {
  const url = `${endpoint}/ca/index.json`;
  const unavailable = (reason: string): SuccessorHintsFetch => ({ hints: NO_HINTS, index: { status: "unavailable", url, reason } });
  let got: Awaited<ReturnType<typeof getWithRetries>>;
  try {
    got = await getWithRetries(url, o.bearerToken ? { authorization: `Bearer ${o.bearerToken}` } : {}, { ...o, maxCrlBytes: MAX_INDEX_BYTES }, "the index of CA generations");
  } catch (e) {
    const f = e as AttemptFailed & { attempts?: number };
    return unavailable(`${f.message}${f.attempts && f.attempts > 1 ? `, after ${f.attempts} attempts` : ""}`);
  }
  if (got.res.status === 404) return { hints: NO_HINTS, index: { status: "absent", url } };
  if (got.res.status !== 200 || !got.body) return unavailable(`HTTP ${got.res.status}`);
  const hints = successorHints(got.body, trusted);
  return hints ? { hints, index: { status: "found", url } } : unavailable("the body is not an index of CA generations (JSON with a generations list)");
}

/**
 * What a pass reports of the index it asked for: with `needy` (see indexUnavailable), an unavailable one is an error,
 * and so is one that names no successor for a needy generation (indexFailure).
 */
function generationIndexOf(f: SuccessorHintsFetch, needy: readonly string[]): GenerationIndexOutcome {
  const e = indexFailure(f, needy);
  return e ? { ...f.index, error: { code: e.code, message: e.message } } : f.index;
}

/**
 * Why the index leaves `cas` (trusted generations with a later trusted generation of their CA) without a known
 * successor, or undefined when it does not: unavailable (indexUnavailable), or found but naming no successor for the
 * certificate trusted as one of them (indexMismatch). Absent (a 404, an older server) leaves g+1, as before.
 */
export function indexFailure(f: SuccessorHintsFetch, cas: readonly string[], after = ""): JpkiError | undefined {
  if (!cas.length) return undefined;
  if (f.index.status === "unavailable") return indexUnavailable(f.index, cas, after);
  // A later generation of its CA is trusted, so the public side rolled it over and its index records the successor
  // (ca/generation-index.ts): an index silent on it is the one unsigned answer of the endpoint's gone wrong, and
  // taken as it is, the generation was checked on g+1 alone, the pass reporting all well.
  const unnamed = f.index.status === "found" ? cas.filter((id) => !f.hints.has(id)) : [];
  return unnamed.length ? indexMismatch(f.index, unnamed, after) : undefined;
}

/**
 * ERR_PUBLIC_CA_INDEX_MISMATCH for an index that was had but names no successor for the certificate trusted as each
 * of `cas`: its entry is missing, names none, or is about another certificate (its SHA-256 is not the trusted one's).
 */
function indexMismatch(index: GenerationIndexOutcome, cas: readonly string[], after: string): JpkiError {
  return new JpkiError(
    "ERR_PUBLIC_CA_INDEX_MISMATCH",
    `the endpoint's index of CA generations ${index.url} names no successor for the certificate trusted here as ${cas.join(", ")} (its entry is missing, names none, or is about another certificate: the SHA-256 differs), though a later generation of its CA is trusted: which generation succeeds it is not known, so a key compromise declared on a successor other than its next generation would go unseen; compare the SHA-256 of trust/<ca>.pem with the public side's over another channel, and check the endpoint${after}`,
    { details: { url: index.url, cas: [...cas] } },
  );
}

/**
 * ERR_PUBLIC_CA_INDEX_UNAVAILABLE for an index that could not be had while `cas` — trusted generations with a later
 * trusted generation of their CA — need it: which generation succeeds each is not known, so each is checked on its
 * g+1's CRL only, and a compromise declared on another successor's would go unseen.
 */
export function indexUnavailable(index: GenerationIndexOutcome, cas: readonly string[], after = ""): JpkiError {
  return new JpkiError(
    "ERR_PUBLIC_CA_INDEX_UNAVAILABLE",
    `the endpoint's index of CA generations ${index.url} could not be had (${index.reason ?? "unknown"}): which generation succeeds ${cas.join(", ")} is not known: each is checked for a declared key compromise on its next generation's CRL only, and one declared on another successor's (an id a rollover passed over) would go unseen; check the endpoint${after}`,
    { details: { url: index.url, cas: [...cas] } },
  );
}

/**
 * Whether the endpoint publishes `newer`, a candidate successor of `ca` (provider/compromise.ts successorCandidates),
 * as a generation of `ca`'s CA (its certificate names `newer`'s ARL: NewerGeneration), and whether `ca`'s trusted key
 * certifies it (its OldWithNew link, `<newer>.by-<ca>.crt`). A request a pass for each candidate of each newest
 * trusted generation (a 404 while there is none). Advisory: an answer that cannot be had, or is not that CA's next generation's certificate,
 * says nothing and fails nothing.
 */
async function newerGeneration(endpoint: string, ca: TrustedCa, newer: string, o: PublicEndpointOptions): Promise<NewerGeneration | undefined> {
  const url = `${endpoint}/ca/${newer}.crt`;
  const headers: Record<string, string> = o.bearerToken ? { authorization: `Bearer ${o.bearerToken}` } : {};
  const get = async (u: string) => {
    try {
      const got = await getWithRetries(u, headers, { ...o, maxCrlBytes: MAX_LINK_BYTES }, "the certificate");
      return got.res.status === 200 ? got.body : undefined;
    } catch {
      return undefined;
    }
  };
  const body = await get(url);
  if (!body) return undefined;
  let cert: TrustedCa;
  try {
    cert = trustedCaOf(body, url);
  } catch {
    return undefined;
  }
  if (cert.caId !== newer || !cert.subject.equals(ca.subject)) return undefined;
  // OldWithNew: the newer key by the older (ca/rollover.ts linkFileBase: <subject>.by-<issuer>)
  const linkUrl = `${endpoint}/ca/${newer}.by-${ca.caId}.crt`;
  const linkDer = await get(linkUrl);
  const link = linkDer && isOldWithNew(linkDer, ca, cert.spki);
  const sha256 = createHash("sha256").update(cert.der).digest("hex");
  const message = link
    ? `the endpoint publishes ${newer} (${url}), a newer key generation of ${ca.caId} that this provider does not trust, its key certified by ${ca.caId}'s trusted key (link ${link.serial}): an ordinary key rollover. Until it is trusted, certificates it issues are refused at enrolment and ${ca.caId} is not checked on its CRL for a declared compromise: fetch it and run 'jpki provider trust ${newer}.pem' (SHA-256 ${sha256})`
    : `the endpoint publishes ${newer} (${url}), a newer key generation of ${ca.caId} that this provider does not trust, and no link certificate from ${ca.caId}'s trusted key to it (${linkUrl}): what a rollover made because ${ca.caId}'s key was compromised ('jpki ca rollover --compromised') publishes. Nothing this provider trusts vouches for ${newer}: trust it ('jpki provider trust') only once its SHA-256 ${sha256} is confirmed with the public side over another channel. ${ca.caId}'s own CRL says when its key was declared compromised (follow then fails with ERR_PUBLIC_CA_COMPROMISED and revokes what rests on it); told so by the public side first, run 'jpki provider untrust ${ca.caId}'`;
  return { caId: ca.caId, newer, url, sha256, linked: link !== undefined, ...(link ? { linkSerial: link.serial } : {}), message };
}

/**
 * Enrolment's own check of the signer's generation (a pass of `follow` may be minutes away): the successor's CRL
 * fetched as follow fetches it (its `seen` returned for the caller's state), then the link checked on it. Throws what
 * refreshPublicCrl throws.
 */
export async function checkGenerationNow(
  paths: ProviderPaths,
  endpoint: string,
  pair: GenerationPair,
  seen: PublicCrlSeen | undefined,
  clock: Clock,
  o: PublicEndpointOptions,
): Promise<{ readonly seen: PublicCrlSeen; readonly check: CompromiseCheck; readonly record?: PublicCaCompromise }> {
  const f = await refreshPublicCrl(paths, endpoint, pair.successor, seen, clock, o);
  return { seen: f.seen, ...(await checkGeneration(pair, { crl: f.crl, number: f.seen.number, stale: f.stale, fromFuture: f.fromFuture }, endpoint, clock.now(), o)) };
}

function compromisedMessage(id: string, rec: PublicCaCompromise): string {
  return `the public side declared ${id}'s key compromised: ${compromiseEvidence(id, rec)} (revoked ${new Date(rec.publicRevokedAt).toISOString()}); every provider certificate resting on ${id} was revoked and enrolment refuses it; run 'jpki provider untrust ${id}' to remove it from trust/`;
}

/**
 * A trusted generation's own CA certificate listed on its own full CRL, cACompromise or keyCompromise: the public side
 * declared that key compromised (crl/arl.ts ownCertificateEntry), and said so with the key itself. The one statement a
 * provider that trusts no successor of it can verify: the newest generation it trusts, a generation rolled over with
 * `--compromised` (no link joins it to its successor), or the only one it trusts. Sound read this way only: whoever
 * made it holds the key, the public side or the thief, and either way it is not to be trusted. Listed on any verified
 * CRL of it, stale or ahead of this clock, it counts (a revocation is never undone). `record` when listed.
 */
export function ownCompromise(ca: TrustedCa, had: { readonly crl: Crl; readonly number: string }, now: Date): PublicCaCompromise | undefined {
  const cert = parseCertificate(ca.der);
  const entry = entryOf(had.crl, cert.serialHex, cert.subject);
  if (!entry || (entry.reason !== CRL_REASON.cACompromise && entry.reason !== CRL_REASON.keyCompromise)) return undefined;
  return { successor: ca.caId, linkSerial: cert.serialHex, crlNumber: had.number, publicRevokedAt: entry.revocationDate.getTime(), detectedAt: now.getTime(), own: true };
}

/** A public CRL as a pass (or an enrolment) had it: verified, with how its dates stood against this host's clock. */
interface HadCrl {
  readonly crl: Crl;
  readonly number: string;
  readonly stale: boolean;
  readonly fromFuture: boolean;
}

/**
 * Whether `pair.ca`'s key was declared compromised (provider/compromise.ts): its NewWithOld link fetched, checked
 * against the two trusted keys, and looked up on the successor's CRL as this pass had it. `record` when listed.
 *
 * Listed on any verified CRL of the successor's, even one past its nextUpdate or dated ahead of this clock, the
 * compromise counts (a revocation is never undone). Not listed, only a current CRL says "sound": one past its
 * nextUpdate knows nothing of a compromise declared since (an enrolment would issue on a stolen key's forgery for as
 * long as the successor's CRL publication lagged), and one not yet in force says nothing of now. Then the check
 * fails, with the code the CRL itself got in follow (ERR_PUBLIC_CRL_STALE, ERR_PUBLIC_CRL_CLOCK): not known.
 */
async function checkGeneration(pair: GenerationPair, successorCrl: HadCrl | undefined, endpoint: string, now: Date, o: PublicEndpointOptions): Promise<{ check: CompromiseCheck; record?: PublicCaCompromise }> {
  const base = { caId: pair.ca.caId, successor: pair.successor.caId };
  const unknown = (code: ErrorCode, why: string) => ({ check: { ...base, status: "failed" as const, error: { code, message: `whether ${pair.ca.caId}'s key was declared compromised is not known: ${why}` } } });
  if (!successorCrl) return unknown("ERR_PUBLIC_CRL_UNAVAILABLE", `${pair.successor.caId}'s CRL, which would say so, was not had in this pass`);
  const url = linkCertificateUrl(endpoint, pair);
  let got: Awaited<ReturnType<typeof getWithRetries>>;
  try {
    got = await getWithRetries(url, o.bearerToken ? { authorization: `Bearer ${o.bearerToken}` } : {}, { ...o, maxCrlBytes: MAX_LINK_BYTES }, "the link certificate");
  } catch (e) {
    return unknown("ERR_PUBLIC_CRL_UNAVAILABLE", `the link certificate could not be fetched from ${url} (${(e as Error).message}); check the endpoint`);
  }
  if (got.res.status === 404) {
    return unknown(
      "ERR_PUBLIC_CRL_UNAVAILABLE",
      `the endpoint publishes no link certificate at ${url}, as after a rollover made because ${pair.ca.caId}'s key was compromised ('jpki ca rollover --compromised'). Ask the public side whether it was; if so, run 'jpki provider untrust ${pair.ca.caId}' (it leaves trust/, every live certificate resting on it is revoked and the provider CRL published; its customers enrol again with certificates of ${pair.successor.caId}). Until then enrolment on ${pair.ca.caId} issues nothing and the provider CRL is not renewed; once ${pair.ca.caId}'s own CRL lists its own certificate, follow revokes by itself (ERR_PUBLIC_CA_COMPROMISED). If not, check the endpoint`,
    );
  }
  if (got.res.status !== 200 || !got.body) return unknown("ERR_PUBLIC_CRL_UNAVAILABLE", `${url} answered HTTP ${got.res.status}; check the endpoint`);
  let serial: string;
  try {
    serial = checkLinkCertificate(got.body, pair, url);
  } catch (e) {
    if (!isJpkiError(e)) throw e;
    return { check: { ...base, status: "failed", error: { code: e.code, message: e.message } } };
  }
  const entry = entryOf(successorCrl.crl, serial, parseCertificate(pair.successor.der).subject);
  if (!entry && successorCrl.stale) {
    const due = successorCrl.crl.nextUpdate!.toISOString();
    return { check: { ...base, status: "failed", linkSerial: serial, error: { code: "ERR_PUBLIC_CRL_STALE", message: `whether ${pair.ca.caId}'s key was declared compromised is not known: the newest CRL of ${pair.successor.caId} the endpoint gives (#${successorCrl.number}), which would say so, was due to be replaced at ${due}, and a compromise declared since is not on it; check the public side's CRL publication` } } };
  }
  if (!entry && successorCrl.fromFuture) {
    return { check: { ...base, status: "failed", linkSerial: serial, error: { code: "ERR_PUBLIC_CRL_CLOCK", message: `whether ${pair.ca.caId}'s key was declared compromised is not known: the CRL of ${pair.successor.caId} (#${successorCrl.number}), which would say so, is dated ${successorCrl.crl.thisUpdate.toISOString()}, after this host's clock (${now.toISOString()}), and says nothing of now; check this host's clock (NTP)` } } };
  }
  if (!entry) return { check: { ...base, status: "sound", linkSerial: serial } };
  return {
    check: { ...base, status: "compromised", linkSerial: serial },
    record: { successor: pair.successor.caId, linkSerial: serial, crlNumber: successorCrl.number, publicRevokedAt: entry.revocationDate.getTime(), detectedAt: now.getTime() },
  };
}

export interface WatchOptions extends FollowOptions {
  readonly intervalMs: number;
  readonly signal: AbortSignal;
  readonly onPass: (r: FollowResult) => void;
  /** a pass skipped because another provider command (an enrolment) held the workspace at that moment */
  readonly onBusy?: (e: JpkiError) => void;
}

/**
 * `jpki provider follow --watch`: a pass every `intervalMs` until `signal` aborts. The signal reaches the pass: a
 * download in progress is cut short (its CA reported "stopped", nothing of it written), the pass records what it
 * had and publishes as any pass does, and the watch ends (it waited for the download, up to its total timeout). A public CRL that cannot be had
 * is reported in its pass and tried again at the next; so is a pass that found the workspace held by another command
 * (an enrolment: ERR_WORKSPACE_LOCKED); a pass that throws otherwise (a wrong passphrase, a damaged workspace) ends
 * the watch. The provider's CRL is refreshed when half its lifetime
 * has passed and every public CRL it rests on was had and is current, so an interval well under
 * crlLifetimeHours / 2 keeps it current while the public side is.
 */
export async function watchPublicCrls(o: WatchOptions): Promise<void> {
  if (!Number.isFinite(o.intervalMs) || o.intervalMs < 1000) throw new JpkiError("ERR_USAGE", "the follow interval must be at least 1 second");
  while (!o.signal.aborted) {
    try {
      // A pass does not wait for the workspace: an enrolment holding it now is skipped over, the next pass comes.
      o.onPass(await followPublicCrls({ ...o, lockWaitMs: 0 }));
    } catch (e) {
      if (!isJpkiError(e, "ERR_WORKSPACE_LOCKED")) throw e;
      o.onBusy?.(e);
    }
    // A stop that came during the pass has fired already: a listener added now never hears it, and the watch waited
    // out a whole interval (minutes) after SIGTERM before it ended.
    if (o.signal.aborted) break;
    await new Promise<void>((res) => {
      const t = setTimeout(res, o.intervalMs);
      o.signal.addEventListener("abort", () => (clearTimeout(t), res()), { once: true });
    });
  }
}
