/**
 * Revocation sources for the engine: CRLs fetched over HTTP (RFC 5280 §4.2.1.13 cRLDistributionPoints,
 * §5.2.6 freshestCRL) and cached, honouring nextUpdate (§5.1.2.5) and HTTP validators (RFC 9110 §13: ETag with
 * If-None-Match, Last-Modified with If-Modified-Since; RFC 9111 for the 304).
 *
 * `CrlCache` holds the last CRL seen at each URL. Asked again for a URL:
 * - within `revalidateAfterMs` (default 0) of the last answer and before the CRL's nextUpdate: the cached CRL,
 *   no request;
 * - else, before nextUpdate: a conditional GET — a warm cache costs a 304, not a download;
 * - past nextUpdate: an unconditional GET (the cached copy is of no use to the engine any more).
 * A fetch fails after `timeoutMs` without a byte (a stalled connection) or `totalTimeoutMs` in all, as the private
 * provider's (download-clock.ts): a national CRL of tens of MB comes over a slow but live link. A CRL over
 * `maxCrlBytes` is given up, as the provider's is: the longer a download may run, the more an endpoint gone wrong
 * could make this process hold.
 * A failed fetch (network error, timeout, a status other than 200/304, a body that is not a CRL) falls back
 * to the cached copy when there is one and gives none otherwise; the engine then decides per its revocation
 * mode (hard-fail: revocation-unknown; soft-fail: a warning). `jpki serve` answers registered verifiers only:
 * `bearerToken` is sent as `Authorization: Bearer …`; with it on, redirects are followed here, not by the fetch
 * (token-redirects.ts): within the origin with the token, to another origin without it, at most a few hops.
 *
 * The bytes go through a CrlIndexCache, so the synchronous engine finds each CRL parsed and its signature
 * checked already (validate.ts). `gather` collects the CRLs a path's certificates name — full, partition
 * (a distribution point per municipality) and the delta CRLs their freshestCRL names — for `validatePath`.
 */
import { JpkiError } from "../errors.js";
import { TOKEN_WITHHELD, tokenGoesTo, tokenOriginSet } from "./token-origins.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { parseCertificate, parseDistributionPoints, type DistributionPoint } from "./certificate.js";
import { CrlIndexCache } from "./crl-index-cache.js";
import { boundedBody, checkDownloadTimeouts, clockedFetch, type DownloadTimeouts } from "./download-clock.js";
import { fetchWithToken } from "./token-redirects.js";
import { EXT_OID } from "../profile/oids.js";

/** What one fetch of a URL came to. */
export type CrlFetchStatus =
  /** the cached CRL, no request (within revalidateAfterMs and before nextUpdate) */
  | "cached"
  /** a conditional GET answered 304: the cached CRL is current */
  | "not-modified"
  /** 200: a new CRL */
  | "downloaded"
  /** the fetch failed; the cached CRL is given instead */
  | "stale"
  /** the fetch failed and nothing was cached */
  | "failed";

export interface CrlFetchOutcome {
  readonly url: string;
  readonly status: CrlFetchStatus;
  /** the CRL's DER (absent when failed) */
  readonly der?: Buffer;
  /** why a fetch failed (stale, failed) */
  readonly error?: string;
}

export interface CrlCacheParams {
  /** sent as `Authorization: Bearer <token>` (jpki serve's registered verifiers, 署名検証者) */
  readonly bearerToken?: string;
  /**
   * the origins (`https://host[:port]`) the token is sent to; a CRL on any other origin (one a certificate names)
   * is fetched without it (token-origins.ts). Default: the token goes only with `get(url)`, a URL the caller named
   * itself (and redirects within its origin), never to the URLs `gather` finds in certificates (validateJpkiAsync,
   * JpkiVerifier's `crlSource`): for those, name your jpki serve's origin here. Before, the default was every origin.
   */
  readonly tokenOrigins?: readonly string[];
  /** injected for tests; default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
  readonly clock?: Clock;
  /** no request for this long after the last answer, while the CRL is current (default 0: always revalidate) */
  readonly revalidateAfterMs?: number;
  /**
   * The inactivity timeout: a request fails after this long without a byte, while connecting, awaiting the answer
   * or between two pieces of the body (default 10 s). A steady download runs on past it.
   */
  readonly timeoutMs?: number;
  /** a request fails after this long however steadily its bytes come: a trickle that never ends (default 10 min) */
  readonly totalTimeoutMs?: number;
  /** the largest CRL accepted, bytes (default 256 MiB: the provider's, ~5 million entries at ~49 bytes each) */
  readonly maxCrlBytes?: number;
  /** where parsed CRLs are kept (default: a new CrlIndexCache with its default bounds) */
  readonly index?: CrlIndexCache;
}

interface Cached {
  readonly der: Buffer;
  readonly etag?: string;
  readonly lastModified?: string;
  readonly nextUpdate?: Date;
  checkedAt: number;
}

export interface CrlCacheStats {
  /** HTTP requests sent */
  readonly requests: number;
  readonly notModified: number;
  readonly downloads: number;
  readonly failures: number;
}

const URL_SCHEMES = /^https?:\/\//i;
/** No byte for this long: the connection is taken for stalled. */
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * However steadily it comes, a download ends after this long: the provider's total (provider/follow.ts), the same
 * CRLs over the same links. A 49 MB CRL (1M entries) needs ~0.7 Mbit/s to arrive within it.
 */
const DEFAULT_TOTAL_TIMEOUT_MS = 10 * 60_000;
/** The provider's bound (provider/follow.ts); the index cache holds at most 512 MiB of DER plus index anyway. */
const DEFAULT_MAX_CRL_BYTES = 256 * 1024 ** 2;

export class CrlCache {
  readonly index: CrlIndexCache;
  readonly #fetch: typeof globalThis.fetch;
  readonly #clock: Clock;
  readonly #token?: string;
  readonly #tokenOrigins: ReadonlySet<string> | undefined;
  readonly #revalidateAfterMs: number;
  readonly #timeouts: DownloadTimeouts;
  readonly #maxCrlBytes: number;
  readonly #byUrl = new Map<string, Cached>();
  /** one request per URL (and token or none) at a time: concurrent validations share it */
  readonly #inFlight = new Map<string, Promise<CrlFetchOutcome>>();
  #stats = { requests: 0, notModified: 0, downloads: 0, failures: 0 };

  constructor(params: CrlCacheParams = {}) {
    const revalidate = params.revalidateAfterMs ?? 0;
    if (!Number.isFinite(revalidate) || revalidate < 0) throw new JpkiError("ERR_USAGE", "CrlCache: revalidateAfterMs must be a number of milliseconds ≥ 0");
    const timeouts = checkDownloadTimeouts(
      { inactivityMs: params.timeoutMs ?? DEFAULT_TIMEOUT_MS, totalMs: params.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS },
      { inactivity: "CrlCache: timeoutMs", total: "CrlCache: totalTimeoutMs" },
    );
    const maxCrlBytes = params.maxCrlBytes ?? DEFAULT_MAX_CRL_BYTES;
    if (!Number.isSafeInteger(maxCrlBytes) || maxCrlBytes < 1) throw new JpkiError("ERR_USAGE", "CrlCache: maxCrlBytes must be a positive integer");
    if (params.bearerToken !== undefined && !/^[\x21-\x7e]+$/.test(params.bearerToken)) {
      throw new JpkiError("ERR_USAGE", "CrlCache: bearerToken must be the token `jpki verifier add` printed (visible ASCII)");
    }
    this.index = params.index ?? new CrlIndexCache();
    this.#fetch = params.fetch ?? globalThis.fetch;
    this.#clock = params.clock ?? systemClock;
    this.#token = params.bearerToken;
    this.#tokenOrigins = tokenOriginSet(params.tokenOrigins, "CrlCache: tokenOrigins");
    this.#revalidateAfterMs = revalidate;
    this.#timeouts = timeouts;
    this.#maxCrlBytes = maxCrlBytes;
  }

  get stats(): CrlCacheStats {
    return { ...this.#stats };
  }

  /**
   * The CRL at `url`, from the cache or the network as the header says. Never throws for a network failure. A URL
   * given here is one the caller chose: without `tokenOrigins`, it is asked with the token.
   */
  get(url: string): Promise<CrlFetchOutcome> {
    return this.#shared(url, true);
  }

  /** One request per URL and token at a time: a request with the token and one without are not the same request. */
  #shared(url: string, named: boolean): Promise<CrlFetchOutcome> {
    const withToken = this.#token !== undefined && (this.#tokenOrigins ? tokenGoesTo(this.#tokenOrigins, url) : named);
    const key = `${withToken ? "t" : "-"} ${url}`;
    const running = this.#inFlight.get(key);
    if (running) return running;
    const p = this.#get(url, withToken).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  async #get(url: string, withToken: boolean): Promise<CrlFetchOutcome> {
    const now = this.#clock.now().getTime();
    const held = this.#byUrl.get(url);
    const current = held !== undefined && (held.nextUpdate === undefined || now <= held.nextUpdate.getTime());
    if (held && current && now - held.checkedAt < this.#revalidateAfterMs) return { url, status: "cached", der: held.der };
    const headers: Record<string, string> = {};
    const withheld = this.#token !== undefined && !withToken;
    if (this.#token && withToken) headers.authorization = `Bearer ${this.#token}`;
    if (held && current) {
      if (held.etag) headers["if-none-match"] = held.etag;
      else if (held.lastModified) headers["if-modified-since"] = held.lastModified;
    }
    const failed = (error: string): CrlFetchOutcome => {
      this.#stats.failures++;
      return held ? { url, status: "stale", der: held.der, error } : { url, status: "failed", error };
    };
    let res: Response;
    let dropped: string | undefined;
    try {
      this.#stats.requests++;
      // With the token on, the redirects are followed by fetchWithToken, whatever fetch was given (token-redirects.ts).
      if (headers.authorization) {
        const r = await fetchWithToken(this.#fetch, url, headers, this.#timeouts);
        res = r.res;
        if (r.tokenDropped) dropped = r.url;
      } else {
        res = await clockedFetch(this.#fetch, url, { headers }, this.#timeouts);
      }
    } catch (e) {
      return failed(`GET ${url}: ${(e as Error).message}`);
    }
    if (res.status === 304 && held && current) {
      this.#stats.notModified++;
      held.checkedAt = now;
      return { url, status: "not-modified", der: held.der };
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      const note = res.status !== 401 ? "" : withheld ? TOKEN_WITHHELD : dropped ? ` (answered by ${dropped}, where a redirect to another origin led: the verifier's token does not follow a redirect across origins)` : "";
      return failed(`GET ${url}: HTTP ${res.status}${note}`);
    }
    let der: Buffer;
    try {
      der = await boundedBody(res, this.#maxCrlBytes, "the CRL");
    } catch (e) {
      return failed(`GET ${url}: ${(e as Error).message}`);
    }
    const crl = this.index.parse(der);
    if (!crl) return failed(`GET ${url}: the body is not a CRL`);
    this.#stats.downloads++;
    this.#byUrl.set(url, {
      der,
      etag: res.headers.get("etag") ?? undefined,
      lastModified: res.headers.get("last-modified") ?? undefined,
      nextUpdate: crl.nextUpdate,
      checkedAt: now,
    });
    return { url, status: "downloaded", der };
  }

  /**
   * The CRLs the certificates (DER) name: the http(s) URIs of their cRLDistributionPoints and freshestCRL, then
   * the freshestCRL of each CRL fetched (its delta CRLs). Fetched in parallel; undecodable certificates are
   * skipped (the engine reports them).
   */
  async gather(certificates: readonly Uint8Array[]): Promise<{ readonly crls: readonly Buffer[]; readonly fetches: readonly CrlFetchOutcome[] }> {
    const urls = new Set<string>();
    for (const der of certificates) {
      try {
        const c = parseCertificate(der);
        for (const u of uris(c.crlDistributionPoints)) urls.add(u);
        const fresh = c.extensions.get(EXT_OID.freshestCRL);
        if (fresh) for (const u of uris(parseDistributionPoints(fresh.value))) urls.add(u);
      } catch {
        // the engine says which certificate does not decode
      }
    }
    // found in certificates, not named by the caller: with the token only on the origins given for it
    const first = await Promise.all([...urls].map((u) => this.#shared(u, false)));
    const deltas = new Set<string>();
    for (const f of first) {
      const crl = f.der ? this.index.parse(f.der) : undefined;
      for (const u of uris(crl?.freshest)) if (!urls.has(u)) deltas.add(u);
    }
    const second = await Promise.all([...deltas].map((u) => this.#shared(u, false)));
    const fetches = [...first, ...second];
    return { crls: fetches.flatMap((f) => (f.der ? [f.der] : [])), fetches };
  }
}

function uris(points: readonly DistributionPoint[] | undefined): string[] {
  return (points ?? []).flatMap((dp) => (dp.fullName ?? []).flatMap((n) => (n.kind === "uri" && URL_SCHEMES.test(n.value) ? [n.value] : [])));
}
