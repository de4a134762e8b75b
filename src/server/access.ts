/**
 * Registered verifiers only (issue 9 point 6; shared/spec/JPKI.md "Distribution"): `jpki serve` answers the
 * routes the workspace's `openRoutes` does not list only to a registered signature verifier (署名検証者)
 * presenting a credential — `Authorization: Bearer <token>` (RFC 6750) or, over HTTPS, a client certificate
 * issued by the workspace's verifier CA (mutual TLS). Then a per-verifier rate limit, and a record of what
 * each verifier fetched for the validation API's disclosure log.
 *
 * Answers: 401 with `WWW-Authenticate: Bearer realm="jpki"` for no credential, with `error="invalid_token"`
 * for a token or certificate that names no live registration (unknown, revoked, self-signed, expired); 400
 * with `error="invalid_request"` for Authorization sent twice (RFC 6750 §3.1); 403
 * for a valid credential on a route its kind may not use (/metrics is the operator's: open it to a scraper
 * with openRoutes); 429 with Retry-After past the verifier's rate. Bodies say only that
 * (`{"error":"unauthorized","code":"unauthorized"}`): never which part failed, never the token.
 *
 * Refused requests per client address: a request refused for the credential it carries (400, 401, 403; one
 * without any credential guesses nothing and is not counted) takes one from a token bucket of its client address (an IPv6 /64 counts as one address: whoever holds one address of it holds
 * them all), and so does one node's HTTP parser refuses before any request exists (400, 408, 413, 431: app.ts
 * clientErrorHandler), from the connection's peer address — or a peer could send malformed requests without end
 * and never be told to slow down — unless that peer is a trusted proxy (`trustedProxies`). No header was read, so
 * such a refusal is no known client's, and charged to the proxy it would get every client behind the proxy 429 for
 * one client's malformed requests; a proxy re-frames what it forwards, so it is the one to refuse those. A parser
 * refusal of a request admit() let through (the 408 of a body that never ended, the 413 of its chunk extensions)
 * takes from the bucket of the client address it was admitted under, X-Forwarded-For's behind a trusted proxy.
 * Past `refusedRateLimit` the address gets 429 `too-many-refusals` with Retry-After, and a credential this process
 * has not admitted before is not checked from it meanwhile: checking it would tell a right guess from a wrong one
 * as fast as the client sends. Admitted requests never count (but for such a parser refusal of their body), and an
 * Authorization header that has named a live registration, a live client certificate and an open route without a
 * credential pass as before. The cost: a verifier whose first request here comes from an address that is guessing
 * meanwhile (behind the same NAT or proxy) waits for the address's rate too. Checked only where a credential is
 * not already known, so a verifier's poll pays nothing for it.
 *
 * Revocation: the registrations are read from the store at start and again every `refreshMs` (default 1 s),
 * so a verifier revoked by `jpki verifier revoke` in another process is refused by a running server within
 * refreshMs plus one store read. A failed read keeps the last registrations and is reported (onError), but
 * only for `maxListAgeMs` (default 60 s) from the last read that succeeded: past it, every route that needs a
 * credential answers 503 `store-unresponsive` (Retry-After) instead of admitting whoever the old list names. A
 * store that hung right after `jpki verifier revoke` committed kept the revoked verifier admitted for as long as
 * it hung (fail-open). Open routes are answered as before; the list's age is in /healthz and /metrics. A read
 * unanswered after `refreshWaitMs` (default 10 s) is left running and the next asked beside it, so the list is
 * fresh again one read after the store answers, and a late read never replaces one asked after it.
 *
 * Rate limit: a token bucket per verifier in this process's memory. With `jpki serve --workers N` each worker
 * keeps its own buckets and the kernel spreads connections, so a verifier spreading its requests over several
 * connections may get up to N times the configured rate; one keep-alive connection stays on one worker and
 * gets exactly the rate. (Exact limits across processes would need shared state on every request.)
 *
 * Fetch records: each answered request of a verifier is counted in memory against (verifier, path, status),
 * and every `flushMs` (or once `batchSize` distinct ones gather) the counts go to the store as one record each
 * — "verifier V fetched P with status S, n times, from first to last" — off the response path. A record per
 * request cost ~2 µs of a 304's ~20 µs here and grew the table by every poll (a verifier polling every
 * second is 86,400 rows a day per file); the aggregate keeps what the disclosure log needs (who fetched what,
 * when, how often) at a size bounded by what was fetched, not how often. A store that fails keeps the
 * records (up to `maxQueued`, then the oldest are dropped and counted) until it answers.
 */
import { IncomingMessage, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks"; // not the global: app.ts says why
import type { TLSSocket } from "node:tls";
import type { Store, VerifierFetch, VerifierKind, VerifierRecord } from "../store/types.js";
import { monotonicWallMs } from "../pki/clock.js";
import { SERVER_ROUTES, type ServerRoute, type VerifierRateLimit } from "../workspace/config.js";
import { bearerToken, certificateSha256, tokenSha256 } from "../verifier/credentials.js";
import type { ClientAddress } from "./client-address.js";
import { isLate, type StoreWatchdog, type WatchedCall } from "../store/watchdog.js";
import { isJpkiError, JpkiError } from "../errors.js";
import { STORE_RETRY_AFTER_SECONDS } from "../store/watchdog.js";
import { JSON_TYPE } from "./api-errors.js";
import { RepeatedErrors, type RecoveredError } from "./repeated-errors.js";
import { mayHaveBeenWritten } from "../store/write-outcome.js";

/**
 * The longest path a fetch record keeps, characters; a longer one is cut there and marked "…". Every path a route
 * serves is far shorter (an OCSP GET about one certificate ~120–320 with its prefix), but a verifier's target
 * may be up to node's 16 KB of headers: an OCSP GET padded to 8 KB (a valid request, answered 200) wrote a ~10 KB
 * row per distinct request into the store, ~1 GB an hour at the default rate.
 */
export const MAX_RECORDED_PATH = 512;

/** A scope: what a route serves, as the access log and fetch records name it. */
export type RouteScope = (typeof SERVER_ROUTES)[ServerRoute] | "validate" | "status" | "overview" | "page" | "other";

/**
 * Scopes answered to anyone, whatever openRoutes says: the status page's own files (page.ts) — static HTML, CSS
 * and script, the same for everyone, holding no data and no secret. A browser cannot put a bearer token on the
 * request that loads a page, so the page must load without one; everything it shows comes from routes that
 * need the verifier's credential, which the page's script asks for and sends (page.ts says how).
 */
export const ALWAYS_OPEN: ReadonlySet<RouteScope> = new Set<RouteScope>(["page"]);

/** Which verifier kinds may use each scope: anything not open needs a credential, /metrics none of theirs. */
export const SCOPE_ACCESS: Readonly<Record<RouteScope, readonly VerifierKind[]>> = Object.freeze({
  healthz: ["government", "private"],
  metrics: [],
  "crl-index": ["government", "private"],
  crl: ["government", "private"],
  arl: ["government", "private"],
  "ca-certificate": ["government", "private"],
  ocsp: ["government", "private"],
  openapi: ["government", "private"],
  // The validation API (POST /v1/validate): registered verifiers only, never opened by openRoutes (it is not in
  // SERVER_ROUTES, so no configuration can name it).
  validate: ["government", "private"],
  // Liveness checks and their history (POST /v1/status, GET /v1/status/history): as the validation API.
  status: ["government", "private"],
  // The CA overview (GET /v1/overview: CRLs and revocations per day): revocation information, so registered
  // verifiers only (shared/spec/JPKI.md "Distribution"), and like validate never opened by openRoutes.
  overview: ["government", "private"],
  // The status page's files: open to anyone (ALWAYS_OPEN); listed for a caller who sends a credential anyway.
  page: ["government", "private"],
  other: ["government", "private"],
});

/** The scope of a request path (below the server's prefix). */
export function scopeOf(path: string): RouteScope {
  if (path === "/healthz") return "healthz";
  if (path === "/metrics") return "metrics";
  if (path === "/crl/index.json") return "crl-index";
  if (path.startsWith("/crl/")) return "crl";
  if (path.startsWith("/arl/")) return "arl";
  if (path.startsWith("/ca/")) return "ca-certificate";
  if (path === "/ocsp" || path.startsWith("/ocsp/")) return "ocsp";
  if (path === "/v1/status" || path === "/v1/status/history") return "status";
  // A signed file is a validation too (its signer's certificate, in the caller's view, in the disclosure log).
  if (path === "/v1/validate" || path === "/v1/verify-signature") return "validate";
  if (path === "/openapi.json") return "openapi";
  if (path === "/v1/overview") return "overview";
  if (path === "/" || path === "" || path.startsWith("/ui/")) return "page";
  return "other";
}

/** scheme and authority of an absolute-form request target */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

/**
 * A request target in origin form (RFC 9112 §3.2.1), path and query as they came, not decoded: the target
 * itself when it starts with "/", an absolute-form target ("http://host/crl/13-sig.crl", RFC 9112 §3.2.2:
 * a server MUST accept it) without its scheme and authority, and undefined for anything else. The routes on
 * bare node:http match their paths on this: they matched the raw target, so an absolute-form GET of a CRL, a
 * CA certificate or an OCSP request, admitted under its route's scope, went on to fastify and got 404.
 */
export function originForm(target: string): string | undefined {
  if (target.charCodeAt(0) === 0x2f) return target;
  const authority = ABSOLUTE_FORM.exec(target);
  if (!authority) return undefined;
  const url = target.slice(authority[0].length);
  if (url === "" || url.charCodeAt(0) === 0x3f) return "/" + url;
  return url.charCodeAt(0) === 0x2f ? url : undefined;
}

/**
 * The path of a request target as fastify's router (find-my-way) matches it: up to the first "?" or "#", and
 * percent-decoded as decodeURI does. The scope must be decided on that path, not on the raw target: a verifier
 * of any kind was admitted to "/metrics#x" and "/%6detrics" as an unknown path ("other"), which the router then
 * answered as /metrics. The absolute form (RFC 9112 §3.2.2: "http://host/metrics", which node passes on as
 * it came) is routed by its path too, so it is read the same way. Undefined for any other target that does not
 * start with "/", and for one that does not decode (the router answers them 400 or 404; the scope is "other").
 */
export function routedPath(target: string): string | undefined {
  const url = originForm(target);
  if (url === undefined) return undefined;
  let end = url.length;
  const q = url.indexOf("?");
  if (q >= 0) end = q;
  const h = url.indexOf("#");
  if (h >= 0 && h < end) end = h;
  const path = end === url.length ? url : url.slice(0, end);
  if (!path.includes("%")) return path;
  try {
    return decodeURI(path);
  } catch {
    return undefined;
  }
}

export interface AccessOptions {
  /** the path of the workspace's baseUrl ("" for none): routes live under it */
  readonly prefix: string;
  readonly openRoutes: readonly ServerRoute[];
  readonly rateLimit: VerifierRateLimit;
  /** requests refused for their credential or by node's parser, per client address (none: no limit) */
  readonly refusedRateLimit?: VerifierRateLimit;
  /** the address a refusal is counted against (default the TCP peer's; behind proxies, client-address.ts) */
  readonly clientAddress?: ClientAddress;
  /** the trusted proxies' addresses (client-address.ts trustedProxyOf): a parser refusal from one is not counted */
  readonly trustedProxy?: (address: string) => boolean;
  /** how often registrations are re-read, ms (default 1000): the bound on noticing a revocation */
  readonly refreshMs?: number;
  /**
   * the oldest the registrations may be, ms since the last read that succeeded (default DEFAULT_MAX_LIST_AGE_MS):
   * past it, credentials are not checked against them and routes that need one answer 503 store-unresponsive
   */
  readonly maxListAgeMs?: number;
  /**
   * how long the refresh waits for a read of the registrations before it asks again beside it, ms (default
   * REFRESH_WAIT_MS): a read hung on a connection the store's host dropped is not waited for until TCP keepalive ends it
   */
  readonly refreshWaitMs?: number;
  /** fetch records: the interval counted into one record and the longest it waits in memory, ms (default 1000) */
  readonly flushMs?: number;
  readonly batchSize?: number;
  readonly maxQueued?: number;
  /** a monotonic clock in ms for the rate limit (default performance.now) */
  readonly now?: () => number;
  /** wall-clock time of fetch records */
  readonly wallClock?: () => Date;
  /**
   * A failure, for the operator's log. The re-reads' and the writes' failures, each a second while the store fails,
   * are said once, then at most every five minutes with how often they came (server/repeated-errors.ts): a hard
   * outage said "re-reading the registered verifiers" and "recording verifier fetches" every second.
   */
  readonly onError?: (e: unknown, what: string) => void;
  /** such a failure stopped (a re-read or a write passed without it), with its count and start */
  readonly onRecovered?: (r: RecoveredError, what: string) => void;
  /**
   * bounds the re-reads of the registrations (jpki serve's one watchdog, store/watchdog.ts): each read is a call it
   * watches, so one hung on a PostgreSQL connection whose host vanished fails at the bound and its connection is cut
   * once the pool needs it; its refusals while the store is stalled are not reported per refresh (the watchdog
   * reports the stall once)
   */
  readonly watchdog?: StoreWatchdog;
  /** a request refused (401, 403, 429): for the metrics and the access log */
  readonly onRefused?: (req: IncomingMessage, status: number, startedAt: number) => void;
  /** called once with the verifier CA certificate (DER) when it is first seen: the server trusts it for mTLS */
  readonly onVerifierCa?: (der: Buffer) => void;
}

/** Who a request is: a verifier, or anonymous on an open route. */
export type Caller = VerifierRecord | undefined;

const HEADER_CACHE = 10_000;
/** The default of AccessOptions.maxListAgeMs (`jpki serve --verifier-list-max-age`). */
export const DEFAULT_MAX_LIST_AGE_MS = 60_000;

/** How long a refresh waits for its read of the registrations before the next is asked beside it (AccessOptions.refreshWaitMs). */
export const REFRESH_WAIT_MS = 10_000;
/** Reads of the registrations at most in flight at once: hung ones are not piled up without bound. */
const MAX_REFRESHES_IN_FLIGHT = 3;
/**
 * The answer to a request that needs a credential while the registrations are older than maxListAgeMs: the store
 * has not answered (api-errors.ts STORE_UNRESPONSIVE: the same code the API's routes give for a hung store).
 */
const LIST_STALE = JSON.stringify({ error: "unavailable", code: "store-unresponsive", message: "the list of registered verifiers could not be read from the store lately, so no credential is checked: try again after Retry-After" });
/**
 * The refusals of access control, by typed `code` (the code every error answer of the server carries, as the
 * verifier API's do: api-errors.ts) with the word of its `error`. The OpenAPI document lists the codes.
 */
export const ACCESS_REFUSALS = Object.freeze({ unauthorized: "unauthorized", forbidden: "forbidden", "rate-limited": "rate limited", "bad-request": "bad request", "too-many-refusals": "too many refusals" } as const);
const refusal = (code: keyof typeof ACCESS_REFUSALS) => JSON.stringify({ error: ACCESS_REFUSALS[code], code });
const UNAUTHORIZED = refusal("unauthorized");
const FORBIDDEN = refusal("forbidden");
const RATE_LIMITED = refusal("rate-limited");
const BAD_REQUEST = refusal("bad-request");
export const TOO_MANY_REFUSALS = refusal("too-many-refusals");
/** The most client addresses whose refusals are counted at once: past it the longest-counted is forgotten. */
const REFUSED_CLIENTS = 10_000;
const MISSING = 'Bearer realm="jpki"';
const BAD_REQUEST_CHALLENGE = 'Bearer realm="jpki", error="invalid_request"';

/** repeatedFields' bits: Host (app.ts refuses it before access control), Authorization (admit() refuses it). */
export const REPEATED_HOST = 1;
export const REPEATED_AUTHORIZATION = 2;

/**
 * Which of Host and Authorization a request carries more than once (REPEATED_* bits), in one walk of the raw header
 * names: node keeps only the first of each (req.headers), but a proxy in front may act on another, so which one
 * names the server or the caller must not depend on who reads the request. RFC 9112 §3.2 answers two Host lines
 * 400; RFC 9110 §11.6.2 allows one Authorization, and RFC 6750 §3.1 answers a repeated credential invalid_request
 * (400). Names are compared by length first, then as sent (every client writes "Host" and "Authorization"), and
 * lower-cased only when spelled otherwise: If-None-Match has 13 characters too, and its first one rules it out.
 */
export function repeatedFields(raw: readonly string[]): number {
  let seen = 0;
  let repeated = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    let field = 0;
    if (name.length === 4) {
      if (name === "Host" || name.toLowerCase() === "host") field = REPEATED_HOST;
    } else if (name.length === 13 && (name.charCodeAt(0) | 0x20) === 0x61) {
      if (name === "Authorization" || name.toLowerCase() === "authorization") field = REPEATED_AUTHORIZATION;
    }
    if (seen & field) repeated |= field;
    seen |= field;
  }
  return repeated;
}
const INVALID = 'Bearer realm="jpki", error="invalid_token"';

/** Where admit() leaves its decision on the request, for the routes, the access log and the fetch record. */
const CALLER = Symbol("jpki.verifier");
const SCOPE = Symbol("jpki.scope");
type Tagged = IncomingMessage & { [CALLER]?: VerifierRecord; [SCOPE]?: RouteScope };

/**
 * node's request with the fields admit() fills declared from its construction (jpki serve's servers make their
 * requests of this class: app.ts). Added to each request by admit(), they gave requests of different shapes (none,
 * the scope, both), and node's own request code, and ours, then read and wrote them through megamorphic lookups on
 * every poll. Any IncomingMessage is still taken: the fields are then added as before.
 */
export class AdmittedRequest extends IncomingMessage {
  [CALLER]: VerifierRecord | undefined = undefined;
  [SCOPE]: RouteScope | undefined = undefined;
}

/** The fetches of one (verifier, path, status) in the current flush interval. */
interface Tally {
  readonly verifierId: string;
  readonly scope: string;
  readonly path: string;
  readonly status: number;
  count: number;
  readonly first: number;
  last: number;
}

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * The client a refusal is counted against: the IPv4 address (an IPv4-mapped IPv6 one as its IPv4 address), or
 * the /64 of an IPv6 address — the smallest block a host is given, all of whose 2^64 addresses its holder may use.
 */
export function clientOf(address: string): string {
  if (!address.includes(":")) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith("::ffff:") && lower.includes(".")) return lower.slice(7);
  const zone = lower.indexOf("%");
  const a = zone < 0 ? lower : lower.slice(0, zone);
  const gap = a.indexOf("::");
  let groups: string[];
  if (gap < 0) groups = a.split(":");
  else {
    const head = a.slice(0, gap) ? a.slice(0, gap).split(":") : [];
    const tail = a.slice(gap + 2) ? a.slice(gap + 2).split(":") : [];
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail];
  }
  return groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":") + "::/64";
}

export class VerifierAccess {
  readonly #store: Store;
  readonly #open: ReadonlySet<RouteScope>;
  readonly #rate: VerifierRateLimit;
  readonly #refusedRate: VerifierRateLimit;
  readonly #clientAddress: ClientAddress | undefined;
  readonly #trustedProxy: (address: string) => boolean;
  readonly #refreshMs: number;
  readonly #maxListAgeMs: number;
  /** this.#now() at the last refresh that read the registrations */
  #refreshedAt = -Infinity;
  readonly #refreshWaitMs: number;
  /** reads of the registrations asked and not yet settled (a hung one is not waited for: start) */
  #refreshesInFlight = 0;
  /** this.#now() when the read last applied was asked */
  #appliedAskedAt = -Infinity;
  readonly #flushMs: number;
  readonly #batchSize: number;
  readonly #maxQueued: number;
  readonly #now: () => number;
  readonly #wallMs: () => number;
  readonly #onError: (e: unknown, what: string) => void;
  /** the re-reads' failures and the fetch-record writes', each round one re-read or one write (repeated-errors.ts) */
  readonly #refreshErrors: RepeatedErrors;
  readonly #writeErrors: RepeatedErrors;
  /** the writes' whose connection was lost after they were sent (a round: one write, as #writeErrors') */
  readonly #lostErrors: RepeatedErrors;
  readonly #watchdog: StoreWatchdog | undefined;
  readonly #onVerifierCa: ((der: Buffer) => void) | undefined;
  readonly #onRefused: ((req: IncomingMessage, status: number, startedAt: number) => void) | undefined;
  readonly #prefix: string;
  /** the target scopeOfTarget read last, and its scope */
  #lastTarget: string | undefined;
  #lastScope: RouteScope = "other";
  #caSeen = false;
  #byToken = new Map<string, VerifierRecord>();
  /**
   * Authorization headers that named a live registration, and whom: a poll then costs one map lookup instead of
   * parsing the header and hashing the token (together ~1 µs of a ~15 µs 304). Every refresh keeps only those whose
   * token still names a live registration, with its new record, so a revoked verifier is refused exactly as soon as
   * without it; only headers that named a registration enter, and at most HEADER_CACHE of them, so junk tokens
   * cannot grow it. They are also the credentials a client past its refusals may still use (refusedRateLimit).
   */
  #byHeader = new Map<string, VerifierRecord>();
  /** refused requests' buckets by client (clientOf), oldest counted first */
  readonly #refusedBuckets = new Map<string, Bucket>();
  #byCert = new Map<string, VerifierRecord>();
  readonly #buckets = new Map<string, Bucket>();
  /** the certificate fingerprint of each TLS connection, computed once per connection */
  readonly #socketCert = new WeakMap<object, string | null>();
  /** this interval's counts: verifier id → path → status → tally (nested, so a poll builds no key string) */
  #tallies = new Map<string, Map<string, Map<number, Tally>>>();
  #tallied = 0;
  /** the fetch record() counted last, while it is in this interval's counts */
  #lastTally: { readonly v: VerifierRecord; readonly url: string; readonly tally: Tally } | undefined;
  /** records made from earlier intervals and not yet written (a store that failed) */
  #queue: VerifierFetch[] = [];
  #flushing: Promise<void> | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #dropped = 0;
  #recorded = 0;
  #fetchesRecorded = 0;
  /** records in writes whose outcome is not known: past the bound, or their connection lost after sending (#write) */
  #unknown = 0;

  constructor(store: Store, o: AccessOptions) {
    this.#store = store;
    this.#open = new Set([...ALWAYS_OPEN, ...o.openRoutes.map((r) => SERVER_ROUTES[r])]);
    this.#rate = o.rateLimit;
    this.#refusedRate = o.refusedRateLimit ?? { perSecond: 0, burst: 1 };
    this.#clientAddress = o.clientAddress;
    this.#trustedProxy = o.trustedProxy ?? (() => false);
    this.#refreshMs = o.refreshMs ?? 1000;
    this.#refreshWaitMs = o.refreshWaitMs ?? REFRESH_WAIT_MS;
    this.#maxListAgeMs = o.maxListAgeMs ?? DEFAULT_MAX_LIST_AGE_MS;
    if (!(this.#maxListAgeMs > 0)) throw new JpkiError("ERR_USAGE", `maxListAgeMs must be a positive number of milliseconds, not ${this.#maxListAgeMs}`);
    this.#flushMs = o.flushMs ?? 1000;
    this.#batchSize = o.batchSize ?? 1000;
    this.#maxQueued = o.maxQueued ?? 100_000;
    this.#now = o.now ?? (() => performance.now());
    const wall = o.wallClock;
    // every fetch record reads it (and its answer's log line takes that reading): not a Date.now() each (clock.ts)
    this.#wallMs = wall ? () => wall().getTime() : monotonicWallMs();
    this.#onError = o.onError ?? (() => undefined);
    const repeated = (what: string) =>
      new RepeatedErrors((e) => this.#onError(e, what), { now: this.#wallMs, ...(o.onRecovered ? { onRecovered: (r: RecoveredError) => o.onRecovered!(r, what) } : {}) });
    this.#refreshErrors = repeated("re-reading the registered verifiers (the previous list stays in force)");
    this.#writeErrors = repeated("recording verifier fetches (kept, retried)");
    this.#lostErrors = repeated("recording verifier fetches (sent, then the connection was lost: counted as maybe written, not sent again)");
    this.#watchdog = o.watchdog;
    this.#onVerifierCa = o.onVerifierCa;
    this.#onRefused = o.onRefused;
    this.#prefix = o.prefix;
  }

  /** Reads the registrations (a failure here fails the start) and keeps them fresh until close(). */
  async start(): Promise<void> {
    await this.refresh();
    // A read that does not settle within refreshWaitMs is left running and the next is asked beside it (at most
    // MAX_REFRESHES_IN_FLIGHT at once): one hung on a connection whose server vanished (PostgreSQL, no FIN) held
    // every later refresh until the kernel's keepalive ended it, ~10 min, so the credential routes answered 503
    // that long after the store was back. refresh() applies a read only if none asked later was applied first.
    const tick = () => {
      const next = () => {
        if (this.#refreshTimer) this.#refreshTimer = setTimeout(tick, this.#refreshMs).unref();
      };
      if (this.#refreshesInFlight >= MAX_REFRESHES_IN_FLIGHT) return next();
      this.#refreshesInFlight++;
      const round = this.refresh()
        .then(
          () => this.#refreshErrors.roundEnd(),
          (e: unknown) => {
            // the watchdog's own answer (late, or refused while stalled): it reports the stall once, not each second
            if (this.#watchdog && isJpkiError(e, "ERR_STORE_UNRESPONSIVE")) return;
            this.#refreshErrors.error(e);
            this.#refreshErrors.roundEnd();
          },
        )
        .finally(() => this.#refreshesInFlight--);
      let waited: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((r) => (waited = setTimeout(r, this.#refreshWaitMs).unref()));
      void Promise.race([round, bound]).finally(() => {
        clearTimeout(waited);
        next();
      });
    };
    this.#refreshTimer = setTimeout(tick, this.#refreshMs).unref();
    this.#flushTimer = setInterval(() => void this.flush(), this.#flushMs).unref();
  }

  /** Re-reads the registrations now: a revoked verifier is refused from the next request on. */
  async refresh(): Promise<void> {
    const byToken = new Map<string, VerifierRecord>();
    const byCert = new Map<string, VerifierRecord>();
    const now = this.#wallMs();
    // the list's age counts from when it was asked for: what it says is at least that recent
    const askedAt = this.#now();
    // Both reads begin together, in the watched call (store/watchdog.ts currentCall): each connection is its.
    const wantCa = !this.#caSeen && this.#onVerifierCa !== undefined;
    const read = () => Promise.all([this.#store.listVerifiers(), wantCa ? this.#store.getVerifierCa() : undefined]);
    // Unwatched, three reads hung on a host that vanished (MAX_REFRESHES_IN_FLIGHT) took three pooled connections
    // nothing cut, and no read was asked after them: the list went stale and every route needing a credential
    // answered 503 until TCP gave up on them (≈ 15 min), however long the database had been back.
    const [verifiers, ca] = await (this.#watchdog ? this.#watchdog.run("reading the registered verifiers", read) : read());
    for (const v of verifiers) {
      if (v.revokedAt) {
        this.#buckets.delete(v.id);
        continue;
      }
      if (v.tokenSha256) byToken.set(v.tokenSha256, v);
      // A client certificate's dates are checked by TLS at the handshake only, and a keep-alive connection (its
      // fingerprint cached per socket) outlived the certificate's notAfter: an expired one names no verifier, from
      // the first refresh past it on, as a revocation does.
      if (v.certSha256 && !(v.certNotAfter && v.certNotAfter.getTime() <= now)) byCert.set(v.certSha256, v);
    }
    // The verifier CA is made by the first 'jpki verifier add' with a certificate, maybe while this runs.
    if (ca && !this.#caSeen && this.#onVerifierCa) {
      this.#caSeen = true;
      this.#onVerifierCa(ca.certificateDer);
    }
    // A read asked before one already applied (it hung, and a later one answered first) says less than that one:
    // it would bring back a verifier revoked in between.
    if (askedAt < this.#appliedAskedAt) return;
    this.#appliedAskedAt = askedAt;
    const byHeader = new Map<string, VerifierRecord>();
    for (const [header, v] of this.#byHeader) {
      const live = v.tokenSha256 ? byToken.get(v.tokenSha256) : undefined;
      if (live) byHeader.set(header, live);
    }
    this.#byToken = byToken;
    this.#byCert = byCert;
    this.#byHeader = byHeader;
    this.#refreshedAt = Math.max(this.#refreshedAt, askedAt);
    // Clients whose refusals have refilled are forgotten: the map holds those refused lately.
    const rate = this.#refusedRate;
    const nowMs = this.#now();
    for (const [client, b] of this.#refusedBuckets) if (b.tokens + ((nowMs - b.last) / 1000) * rate.perSecond >= rate.burst) this.#refusedBuckets.delete(client);
  }

  /**
   * Fetch records written (`recorded`) and the fetches they count (`fetches`), records dropped because the
   * store did not take them, records waiting (`queued`, with this interval's counts not yet made records), and
   * records whose write is not known to have failed (`unknown`: past the watchdog's bound and not answered yet, or
   * sent on a connection then closed or lost under it — they may have been written, and are never written again).
   */
  get fetchRecords(): { readonly recorded: number; readonly fetches: number; readonly dropped: number; readonly queued: number; readonly unknown: number } {
    return { recorded: this.#recorded, fetches: this.#fetchesRecorded, dropped: this.#dropped, queued: this.#queue.length + this.#tallied, unknown: this.#unknown };
  }

  /** How old the registrations are, ms since the last read of them that succeeded was asked (Infinity: none yet). */
  get listAgeMs(): number {
    return this.#now() - this.#refreshedAt;
  }

  /** The oldest the registrations may be before credentials are no longer checked against them (maxListAgeMs). */
  get maxListAgeMs(): number {
    return this.#maxListAgeMs;
  }

  /** Whether the registrations are past maxListAgeMs: routes that need a credential answer 503. */
  get listStale(): boolean {
    return this.listAgeMs > this.#maxListAgeMs;
  }

  /** The verifier a client certificate names: one verified against the verifier CA and registered, live. */
  #certificateCaller(req: IncomingMessage): VerifierRecord | undefined | null {
    const socket = req.socket as TLSSocket;
    if (!socket.encrypted) return undefined;
    let fp = this.#socketCert.get(socket);
    if (fp === undefined) {
      // authorized: the chain verified against the verifier CA (the server's `ca`), dates included.
      const peer = socket.getPeerCertificate();
      fp = peer && peer.raw ? (socket.authorized ? certificateSha256(peer.raw) : "") : null;
      this.#socketCert.set(socket, fp);
    }
    if (fp === null) return undefined; // no certificate presented
    return (fp && this.#byCert.get(fp)) || null; // presented, but not one of a live registration
  }

  /**
   * Whether a scope is answered without a credential (openRoutes, ALWAYS_OPEN). Only such answers may be kept by a
   * shared cache for anyone (Cache-Control: public): every other one was given to a registered verifier alone.
   */
  isOpen(scope: RouteScope): boolean {
    return this.#open.has(scope);
  }

  /** The scope admit() found for a request. */
  scopeOfRequest(req: IncomingMessage): RouteScope {
    return (req as Tagged)[SCOPE] ?? "other";
  }

  /** The route scope the request's target names under this server's prefix (what admit tags it with). */
  scopeOfTarget(req: IncomingMessage): RouteScope {
    const target = req.url ?? "";
    // A poll repeats its target: the last one's scope is kept. An OCSP GET's target is ~150 characters with its
    // base64 percent-encoded, and decoding it (routedPath) on every poll was ≈ 3 % of the serving thread's time.
    if (target === this.#lastTarget) return this.#lastScope;
    const path = routedPath(target);
    const scope = path !== undefined && path.startsWith(this.#prefix) ? scopeOf(path.slice(this.#prefix.length)) : "other";
    this.#lastTarget = target;
    this.#lastScope = scope;
    return scope;
  }

  /** The verifier a request's credential named (undefined: anonymous, on an open route). */
  callerOf(req: IncomingMessage): VerifierRecord | undefined {
    return (req as Tagged)[CALLER];
  }

  /**
   * Decides, before any route runs (on node:http, so published files, OCSP and the fastify routes alike),
   * who the caller is and whether to answer: true to go on; false when it has answered 401/403/429 itself
   * (then `onRefused` has counted and logged it). `repeated`: repeatedFields of its headers when the caller has
   * walked them already (app.ts, for Host), else walked here.
   */
  admit(req: IncomingMessage, res: ServerResponse, repeated?: number): boolean {
    const scope = this.scopeOfTarget(req);
    const tagged = req as Tagged;
    tagged[SCOPE] = scope;
    // One reading of the clock for the list's age and the rate limit (each reading costs a poll ≈ 50 ns here).
    const now = this.#now();
    // A list past its age may still name a verifier revoked since: fail closed where a credential is needed.
    if (!this.#open.has(scope) && now - this.#refreshedAt > this.#maxListAgeMs) {
      return this.#refuse(req, res, 503, undefined, LIST_STALE, String(STORE_RETRY_AFTER_SECONDS));
    }
    const authorization = req.headers.authorization;
    const byCert = this.#certificateCaller(req);
    let caller: VerifierRecord | undefined | null;
    if (authorization === undefined) caller = byCert;
    else if ((repeated ?? repeatedFields(req.rawHeaders)) & REPEATED_AUTHORIZATION) return this.#deny(req, res, 400, BAD_REQUEST_CHALLENGE, BAD_REQUEST);
    else {
      caller = this.#byHeader.get(authorization);
      if (!caller) {
        // A credential not admitted before, from a client past its refusals: not checked (the class comment says why).
        const wait = this.#refusedBuckets.size ? this.#refusalWait(req, false) : 0;
        if (wait > 0) return this.#refuse(req, res, 429, undefined, TOO_MANY_REFUSALS, String(wait));
        const token = bearerToken(authorization);
        caller = token ? (this.#byToken.get(tokenSha256(token)) ?? null) : null;
        if (caller && this.#byHeader.size < HEADER_CACHE) this.#byHeader.set(authorization, caller);
      }
      // Two credentials must name the same verifier.
      if (caller && byCert !== undefined && byCert !== caller) caller = null;
    }
    if (caller === null) return this.#deny(req, res, 401, INVALID, UNAUTHORIZED);
    // No credential at all guesses nothing, so it is not counted: a page of any other web site can make a browser
    // send such requests (an image's), and counted they emptied the address's refusals, so that a verifier signing
    // in from that browser, or behind the same NAT, got 429 without its token being checked.
    if (caller === undefined) return this.#open.has(scope) || this.#refuse(req, res, 401, MISSING, UNAUTHORIZED);
    tagged[CALLER] = caller;
    if (!this.#open.has(scope) && !SCOPE_ACCESS[scope].includes(caller.kind)) return this.#deny(req, res, 403, undefined, FORBIDDEN);
    const wait = this.#take(caller.id, now);
    if (wait > 0) return this.#refuse(req, res, 429, undefined, RATE_LIMITED, String(wait));
    return true;
  }

  /** Refuses a request for its credential: counted against its client, and 429 once the client is past its refusals. */
  #deny(req: IncomingMessage, res: ServerResponse, status: number, challenge: string | undefined, body: string): false {
    const wait = this.#refusalWait(req, true);
    if (wait > 0) return this.#refuse(req, res, 429, undefined, TOO_MANY_REFUSALS, String(wait));
    return this.#refuse(req, res, status, challenge, body);
  }

  /**
   * Counts a refusal of node's HTTP parser (app.ts clientErrorHandler: no request exists, so no header — no
   * X-Forwarded-For — was read) against the connection's peer address, in the bucket a credential's refusal takes
   * from: the seconds until the address may be refused again, 0 when this refusal may be answered as it is.
   * Never counted, 0, from a trusted proxy (the class comment says why).
   */
  refuseUnparsed(peer: string): number {
    return this.#refusedRate.perSecond === 0 || this.#trustedProxy(peer) ? 0 : this.#clientWait(clientOf(peer), true);
  }

  /**
   * Counts a refusal of node's HTTP parser of a request admit() let through (its body failed: app.ts
   * clientErrorHandler) against the client address it was admitted under, as refuseUnparsed counts one against
   * the peer's: its headers were read, so behind a trusted proxy that is X-Forwarded-For's client, not the proxy.
   */
  refuseAdmitted(req: IncomingMessage): number {
    return this.#refusalWait(req, true);
  }

  /**
   * The seconds until the request's client may be refused again (0: now), taking one refusal from its bucket when
   * `take` and it may. Without a limit, 0.
   */
  #refusalWait(req: IncomingMessage, take: boolean): number {
    if (this.#refusedRate.perSecond === 0) return 0;
    return this.#clientWait(clientOf(this.#clientAddress ? this.#clientAddress(req) : (req.socket.remoteAddress ?? "")), take);
  }

  /** #refusalWait for a client (clientOf) already worked out. */
  #clientWait(client: string, take: boolean): number {
    const rate = this.#refusedRate;
    const now = this.#now();
    let b = this.#refusedBuckets.get(client);
    if (!b) {
      if (!take) return 0;
      if (this.#refusedBuckets.size >= REFUSED_CLIENTS) this.#refusedBuckets.delete(this.#refusedBuckets.keys().next().value!);
      this.#refusedBuckets.set(client, (b = { tokens: rate.burst, last: now }));
    }
    b.tokens = Math.min(rate.burst, b.tokens + ((now - b.last) / 1000) * rate.perSecond);
    b.last = now;
    if (b.tokens >= 1) {
      if (take) b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate.perSecond));
  }

  #refuse(req: IncomingMessage, res: ServerResponse, status: number, challenge: string | undefined, body: string, retryAfter?: string): false {
    const startedAt = performance.now();
    const headers: Record<string, string> = { ...JSON_TYPE, "Cache-Control": "no-store", "Content-Length": String(body.length) };
    if (challenge) headers["WWW-Authenticate"] = challenge;
    if (retryAfter) headers["Retry-After"] = retryAfter;
    res.writeHead(status, headers);
    res.end(req.method === "HEAD" ? undefined : body);
    this.record(req, status);
    this.#onRefused?.(req, status, startedAt);
    return false;
  }

  /**
   * Charges the caller of an admitted request `n` more requests' worth of its rate: a batch (POST /v1/status,
   * up to 1000 certificates, each a history row, a disclosure record and maybe a link lookup) costs what its
   * items would cost asked one by one, or batching would multiply the limit by the batch size. The batch itself
   * is answered (it was admitted); the bucket may go below zero, and the verifier's next requests wait until it
   * has refilled, so its sustained rate is `perSecond` items whatever the batch size.
   */
  charge(req: IncomingMessage, n: number): void {
    const v = (req as Tagged)[CALLER];
    if (!v || n <= 0 || this.#rate.perSecond === 0) return;
    const b = this.#buckets.get(v.id);
    if (b) b.tokens -= n;
  }

  /** Takes one request from the verifier's bucket: 0 when allowed, else the seconds until one is. */
  #take(id: string, now: number): number {
    const rate = this.#rate.perSecond;
    if (rate === 0) return 0;
    let b = this.#buckets.get(id);
    if (!b) this.#buckets.set(id, (b = { tokens: this.#rate.burst, last: now }));
    b.tokens = Math.min(this.#rate.burst, b.tokens + ((now - b.last) / 1000) * rate);
    b.last = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate));
  }

  /**
   * Counts what a verifier fetched (or was refused), once its answer is sent. Returns the wall-clock time it was
   * counted at (epoch ms), for the access log's line of the same answer: one reading of the clock for both.
   * Undefined for an anonymous request (nothing counted, the clock not read).
   */
  record(req: IncomingMessage, status: number): number | undefined {
    return this.recordFor(req, (req as Tagged)[CALLER], status);
  }

  /**
   * record() with the request's caller already read (callerOf(req)): the access log needs it too, and reading the
   * request's tag once per answer, not twice, is a megamorphic lookup less on every poll.
   */
  recordFor(req: IncomingMessage, v: VerifierRecord | undefined, status: number): number | undefined {
    if (!v) return undefined;
    const tagged = req as Tagged;
    const url = req.url ?? "";
    const now = this.#wallMs();
    // A verifier polling one CRL repeats its last fetch: one comparison instead of three lookups.
    const l = this.#lastTally;
    if (l && l.v === v && l.url === url && l.tally.status === status) {
      l.tally.count++;
      l.tally.last = now;
      return now;
    }
    const q = url.indexOf("?");
    const full = q < 0 ? url : url.slice(0, q);
    const path = full.length > MAX_RECORDED_PATH ? `${full.slice(0, MAX_RECORDED_PATH)}…` : full;
    let byPath = this.#tallies.get(v.id);
    if (!byPath) this.#tallies.set(v.id, (byPath = new Map()));
    let byStatus = byPath.get(path);
    if (!byStatus) byPath.set(path, (byStatus = new Map()));
    const t = byStatus.get(status);
    if (t) {
      t.count++;
      t.last = now;
      this.#lastTally = { v, url, tally: t };
      return now;
    }
    const tally: Tally = { verifierId: v.id, scope: tagged[SCOPE] ?? "other", path, status, count: 1, first: now, last: now };
    byStatus.set(status, tally);
    this.#lastTally = { v, url, tally };
    // Distinct fetches, not requests, fill a batch: a verifier scanning many paths is written early.
    if (++this.#tallied >= this.#batchSize && !this.#flushing) void this.flush();
    return now;
  }

  /** Turns this interval's counts into records at the end of the queue (the oldest are dropped past maxQueued). */
  #close(): void {
    if (!this.#tallied) return;
    const tallies = this.#tallies;
    this.#tallies = new Map();
    this.#lastTally = undefined;
    this.#tallied = 0;
    for (const byPath of tallies.values())
      for (const byStatus of byPath.values())
        for (const t of byStatus.values()) this.#queue.push({ verifierId: t.verifierId, scope: t.scope, path: t.path, status: t.status, at: new Date(t.first), count: t.count, lastAt: new Date(t.last) });
    const over = this.#queue.length - this.#maxQueued;
    if (over > 0) {
      this.#queue.splice(0, over);
      this.#dropped += over;
    }
  }

  /**
   * Writes the counted fetches, a batch at a time, until the queue is empty or the store fails (the batch goes
   * back to the queue, for the next flush).
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#close();
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#batchSize);
      const written = this.#write(batch);
      this.#flushing = written.then(() => undefined).finally(() => (this.#flushing = undefined));
      if (!(await written)) return;
    }
  }

  /**
   * Writes one batch: true once written, false when it was not (put back in front: #requeue) or its outcome is not
   * known yet. With a watchdog (jpki serve's), the write is a call it watches, as the registrations' re-reads are.
   * Unwatched, a write hung on a PostgreSQL connection whose host vanished held every later flush behind it until
   * TCP gave up (≈ 15 min), the queue filled and its oldest records were dropped, and a pool connection was lost.
   * Watched, it is refused while the store is stalled (nothing sent: kept) and abandoned at the bound, the flush going
   * on beside it; its own outcome, when it comes, decides where its records count: written, or never sent (kept,
   * retried), or sent on a connection the store closed under it (lateCall "connection-closed": it may have committed,
   * so it is counted `unknown`, never retried — a retry could count those fetches twice). A write sent on a
   * connection that was lost under it by itself (an ECONNRESET: store/write-outcome.ts), late or not, watched or
   * not, is counted `unknown` likewise: re-queued, a write the server had committed was written twice.
   */
  #write(batch: VerifierFetch[]): Promise<boolean> {
    const dog = this.#watchdog;
    if (!dog) return this.#store.recordVerifierFetches(batch).then(() => this.#wrote(batch), (e: unknown) => this.#failed(batch, e));
    let call: WatchedCall | undefined;
    let own: Promise<void> | undefined;
    return dog
      .run("recording verifier fetches", (deadline, c) => {
        call = c;
        return (own = this.#store.recordVerifierFetches(batch, { deadline }));
      })
      .then(
        () => this.#wrote(batch),
        (e: unknown) => {
          // Refused while stalled (nothing sent), or the store's own failure within the bound.
          if (!call || !own || !isLate(call)) return this.#failed(batch, e);
          // Past the bound: not known yet. Its own outcome moves its records from `unknown` when it comes.
          this.#unknown += batch.length;
          own.then(
            () => {
              this.#unknown -= batch.length;
              this.#wrote(batch);
            },
            (f: unknown) => {
              if (mayHaveBeenWritten(f)) return; // may have committed: stays unknown
              this.#unknown -= batch.length;
              this.#notWritten(batch, f);
            },
          );
          return false;
        },
      );
  }

  /** One write's outcome for the operator's log: `e` its failure, said by `errors` (none: it was written). */
  #writeRound(errors?: RepeatedErrors, e?: unknown): void {
    errors?.error(e);
    this.#writeErrors.roundEnd();
    this.#lostErrors.roundEnd();
  }

  #wrote(batch: readonly VerifierFetch[]): true {
    this.#writeRound();
    this.#recorded += batch.length;
    this.#fetchesRecorded += batch.reduce((n, f) => n + f.count, 0);
    return true;
  }

  /**
   * A batch whose write failed in time: counted `unknown` and said when it may have been written all the same (its
   * connection lost after it was sent), else not written (#notWritten).
   */
  #failed(batch: readonly VerifierFetch[], e: unknown): false {
    if (!mayHaveBeenWritten(e)) return this.#notWritten(batch, e);
    this.#unknown += batch.length;
    this.#writeRound(this.#lostErrors, e);
    return false;
  }

  /** A batch the store did not write: put back in front, within the bound (the store briefly away loses nothing). */
  #notWritten(batch: readonly VerifierFetch[], e: unknown): false {
    const room = Math.max(0, this.#maxQueued - this.#queue.length);
    this.#dropped += Math.max(0, batch.length - room);
    this.#queue.unshift(...batch.slice(batch.length - Math.min(room, batch.length)));
    // the watchdog's own answers (refused while stalled, a write not sent past the bound): it reports the stall once
    if (this.#watchdog && isJpkiError(e, "ERR_STORE_UNRESPONSIVE")) return false;
    this.#writeRound(this.#writeErrors, e);
    return false;
  }

  /** Stops refreshing and writes what is queued. */
  async close(): Promise<void> {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.flush();
  }
}
