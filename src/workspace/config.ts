/**
 * Workspace configuration, validated eagerly (STYLE.md §6): a bad value fails when the workspace
 * opens, not when the first certificate is issued.
 */
import { isIP } from "node:net";
import { JpkiError } from "../errors.js";

export type ValidityRule = "3y" | "fifth-birthday";

/**
 * Which store holds the workspace's facts: the embedded SQLite file jpki.db, or a PostgreSQL database whose
 * connection string comes from the environment (JPKI_STORE), never from config.json.
 */
export type StoreKind = "sqlite" | "postgres";

export const STORE_KINDS: readonly StoreKind[] = Object.freeze(["sqlite", "postgres"]);

/**
 * The routes of `jpki serve`, by the pattern `openRoutes` names them with, and the scope each is logged and
 * recorded under. Only registered verifiers (署名検証者) receive revocation information, so every route needs a
 * credential unless `openRoutes` lists it; anything not listed here (a 404) needs one too.
 */
export const SERVER_ROUTES = Object.freeze({
  "/healthz": "healthz",
  "/metrics": "metrics",
  "/crl/index.json": "crl-index",
  "/crl/*": "crl",
  "/arl/*": "arl",
  "/ca/*": "ca-certificate",
  "/ocsp/*": "ocsp",
  "/openapi.json": "openapi",
} as const);
export type ServerRoute = keyof typeof SERVER_ROUTES;

/** A token bucket of `jpki serve`, per process: per registered verifier, or per client address (see server/access.ts). */
export interface VerifierRateLimit {
  /** sustained requests per second; 0 turns the limit off */
  readonly perSecond: number;
  /** requests a verifier may send at once after a quiet spell */
  readonly burst: number;
}

export interface WorkspaceConfig {
  /** base of every URL placed in certificates (CRL distribution points, AIA) */
  readonly baseUrl: string;
  /** 3y: three years from issuance (the seed's rule); fifth-birthday: until the 5th birthday after issuance */
  readonly validityRule: ValidityRule;
  /** production or J-LIS test-environment signature policy OID */
  readonly policy: "production" | "test";
  readonly cpsUri: string;
  /** nextUpdate − thisUpdate for CRLs, hours */
  readonly crlLifetimeHours: number;
  /**
   * A CRL is republished, even when nothing changed, once its nextUpdate is this close (hours; at most half
   * the lifetime is used): with 48-hour CRLs and the default 24, every CRL is reissued daily, as JPKI does,
   * and a verifier never holds an expired one after a quiet weekend.
   */
  readonly crlRefreshMarginHours: number;
  /**
   * Whether each CRL is also published as PEM (<ca>.crl.pem) beside its DER (<ca>.crl). Off by default: a
   * CRL distribution point serves DER (RFC 5280 §4.2.1.13, RFC 2585 §3 application/pkix-crl), which is what
   * verifiers fetch and what `openssl crl`/`openssl verify -CRLfile` (OpenSSL 3) read. Turn it on for tools
   * that take PEM only (OpenSSL 1.1's `verify -CRLfile`, `certtool --load-crl` beside a PEM CA). When off, a
   * PEM copy left by an earlier publication is removed as the new DER is installed, never left stale.
   */
  readonly crlPem: boolean;
  /**
   * How many CRLs of each scope (a CA's full CRL, each municipality partition, the ARL) stay on disk: the
   * current one (`<ca>.crl`) and, linked beside it, the last `crlKeep` under `<file>.<CRL number>` (e.g.
   * `crl/13-sig.crl.42`, `crl/13-sig/131016.crl.57`); older ones are removed as a new one is installed. 1
   * keeps no history.
   */
  readonly crlKeep: number;
  /**
   * How long a revoked certificate stays on its CRLs (full and partition) after its notAfter, days. RFC 5280
   * §3.3: an entry may leave only after it appeared on one regularly scheduled CRL issued beyond the
   * certificate's validity, so keep this at least the CRL lifetime (2 days with the default 48 hours).
   */
  readonly expiredGraceDays: number;
  /**
   * Delta CRLs (RFC 5280 §5.2.4, crl/delta.ts): minutes between two deltas of each CA's full CRL; 0 (the
   * default) publishes none. When set, full CRLs and new certificates carry freshestCRL naming the delta
   * (`crl/<ca>-delta.crl`), a revocation reaches a delta at once (after a notice batch) or within this interval
   * (the schedule), and the full CRL, the base, is republished on its own cadence (`crlBaseIntervalHours`).
   */
  readonly deltaCrlIntervalMinutes: number;
  /**
   * With deltas: how old the base (full CRL) may grow, hours, before revocations since it make a new one
   * instead of another delta. Without deltas the full CRL follows every revocation, as partitions always do.
   */
  readonly crlBaseIntervalHours: number;
  /** With deltas: a delta listing this many entries makes the next publication a new base instead. */
  readonly deltaCrlMaxEntries: number;
  /** CA certificate lifetime, years */
  readonly caValidityYears: number;
  /** sqlite (default): jpki.db in the workspace; postgres: the database named by JPKI_STORE */
  readonly store: StoreKind;
  /** `jpki serve` routes answered without a credential (patterns of SERVER_ROUTES); default only /healthz */
  readonly openRoutes: readonly ServerRoute[];
  /** per-verifier request rate of `jpki serve`, per process */
  readonly verifierRateLimit: VerifierRateLimit;
  /**
   * Requests `jpki serve` refuses for their credential (400, 401, 403) or that node's HTTP parser refuses (400,
   * 408, 413, 431: per peer address, none from a trusted proxy), per client address (an IPv6 /64 as one) and
   * process: past it the address gets 429, and a credential the server has not yet admitted is not checked from it
   * meanwhile, so guessing tokens is slowed to this rate (server/access.ts). Admitted verifiers' requests never count.
   */
  readonly refusedRateLimit: VerifierRateLimit;
  /**
   * The reverse proxies in front of `jpki serve`: IP addresses or CIDR ranges ("10.0.0.0/8", "fd00::/8"). A request
   * whose TCP peer is one of them is counted for `refusedRateLimit`, and logged, under the client address its
   * X-Forwarded-For names (the rightmost entry that is not itself a listed proxy); from any other peer that header
   * is ignored, as anyone can send it (server/client-address.ts). Empty (the default): the peer address always.
   */
  readonly trustedProxies: readonly string[];
  /**
   * The PKCS#11 modules (shared libraries) this host may load for CA keys in a token: absolute paths, or bare
   * library names the dynamic loader finds. A CA's key reference in the store names its module, but whoever can
   * write the store (on PostgreSQL, every host sharing the database) must not choose what a CA host loads, so a
   * reference naming any other module is refused (ERR_PKCS11_MODULE_NOT_ALLOWED) before anything is loaded.
   * `jpki ca init --pkcs11-module` adds its module here; a second host on the same database lists it itself.
   */
  readonly pkcs11Modules: readonly string[];
}

export const DEFAULT_CONFIG: WorkspaceConfig = Object.freeze({
  baseUrl: "http://localhost:8080",
  validityRule: "3y",
  policy: "production",
  cpsUri: "http://localhost:8080/cps",
  crlLifetimeHours: 48,
  crlRefreshMarginHours: 24,
  crlPem: false,
  crlKeep: 3,
  expiredGraceDays: 7,
  deltaCrlIntervalMinutes: 0,
  crlBaseIntervalHours: 24,
  deltaCrlMaxEntries: 10_000,
  caValidityYears: 10,
  store: "sqlite",
  openRoutes: Object.freeze(["/healthz"]) as readonly ServerRoute[],
  verifierRateLimit: Object.freeze({ perSecond: 100, burst: 1000 }),
  refusedRateLimit: Object.freeze({ perSecond: 10, burst: 100 }),
  trustedProxies: Object.freeze([]) as readonly string[],
  pkcs11Modules: Object.freeze([]) as readonly string[],
});

function fail(field: string, why: string): never {
  throw new JpkiError("ERR_CONFIG_INVALID", `configuration ${field}: ${why}`);
}

function httpUrl(field: string, v: unknown): string {
  if (typeof v !== "string") fail(field, "must be a string URL");
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    fail(field, `${JSON.stringify(v)} is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") fail(field, "must be an http or https URL");
  if (!/^[\x21-\x7e]+$/.test(v)) fail(field, "must be ASCII without spaces (it goes into an IA5String)");
  return v.replace(/\/+$/, "");
}

function intIn(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(field, `must be a whole number from ${min} to ${max}`);
  return v;
}

function openRoutes(v: unknown): readonly ServerRoute[] {
  const known = Object.keys(SERVER_ROUTES);
  if (!Array.isArray(v) || v.some((r) => typeof r !== "string" || !known.includes(r))) fail("openRoutes", `must be a list of routes from ${known.join(", ")}`);
  return Object.freeze([...new Set(v as ServerRoute[])]);
}

function rateLimit(field: "verifierRateLimit" | "refusedRateLimit", v: unknown): VerifierRateLimit {
  const d = DEFAULT_CONFIG[field];
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(field, `must be an object like {"perSecond": ${d.perSecond}, "burst": ${d.burst}}`);
  const o = { ...d, ...(v as Record<string, unknown>) } as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "perSecond" && k !== "burst") fail(`${field}.${k}`, "unknown setting");
  return Object.freeze({ perSecond: intIn(`${field}.perSecond`, o.perSecond, 0, 1_000_000), burst: intIn(`${field}.burst`, o.burst, 1, 10_000_000) });
}

/**
 * An IP address or CIDR range as `trustedProxies` lists it: "192.0.2.7", "10.0.0.0/8", "2001:db8::1", "fd00::/8".
 * A zone ("fe80::1%eth0") is refused: a zone names an interface of one host, not an address a peer has.
 */
export function ipRange(field: string, v: unknown): string {
  const why = `${JSON.stringify(v)} is not an IP address or CIDR range (e.g. "10.0.0.1", "10.0.0.0/8", "fd00::/8")`;
  if (typeof v !== "string") fail(field, why);
  const slash = v.indexOf("/");
  const address = slash < 0 ? v : v.slice(0, slash);
  const family = address.includes("%") ? 0 : isIP(address);
  if (family === 0) fail(field, why);
  if (slash >= 0) {
    const bits = v.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) fail(field, `${JSON.stringify(v)}: the prefix length must be a whole number from 0 to ${family === 4 ? 32 : 128}`);
  }
  return v;
}

function trustedProxies(v: unknown): readonly string[] {
  if (!Array.isArray(v)) fail("trustedProxies", 'must be a list of IP addresses or CIDR ranges, e.g. ["127.0.0.1", "10.0.0.0/8"]');
  return Object.freeze([...new Set(v.map((r, i) => ipRange(`trustedProxies[${i}]`, r)))]);
}

/**
 * A PKCS#11 module as config.json may name it: an absolute path, or a bare file name (the dynamic loader's search,
 * as `--pkcs11-module libsofthsm2.so` gives it). A relative path with a directory would depend on the working
 * directory of each command, so it is refused.
 */
export function pkcs11ModulePath(field: string, v: unknown): string {
  if (typeof v !== "string" || v === "" || v.includes("\0")) fail(field, "must be the path of a PKCS#11 module (a shared library)");
  if (!v.startsWith("/") && v.includes("/")) fail(field, `${JSON.stringify(v)} must be an absolute path (or a bare library name)`);
  return v;
}

function pkcs11Modules(v: unknown): readonly string[] {
  if (!Array.isArray(v)) fail("pkcs11Modules", 'must be a list of module paths, e.g. ["/usr/lib/softhsm/libsofthsm2.so"]');
  return Object.freeze([...new Set(v.map((m, i) => pkcs11ModulePath(`pkcs11Modules[${i}]`, m)))]);
}

/** Merges `input` over the defaults and validates every field; unknown fields are refused. */
export function parseConfig(input: unknown): WorkspaceConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) fail("(root)", "must be a JSON object");
  const o = { ...DEFAULT_CONFIG, ...(input as Record<string, unknown>) } as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in DEFAULT_CONFIG)) fail(k, "unknown setting");
  if (o.validityRule !== "3y" && o.validityRule !== "fifth-birthday") fail("validityRule", 'must be "3y" or "fifth-birthday"');
  if (o.policy !== "production" && o.policy !== "test") fail("policy", 'must be "production" or "test"');
  if (typeof o.crlPem !== "boolean") fail("crlPem", "must be true or false");
  if (!STORE_KINDS.includes(o.store as StoreKind)) fail("store", 'must be "sqlite" or "postgres" (the PostgreSQL connection string goes in JPKI_STORE, not here)');
  const deltaMinutes = intIn("deltaCrlIntervalMinutes", o.deltaCrlIntervalMinutes, 0, 24 * 60);
  const baseHours = intIn("crlBaseIntervalHours", o.crlBaseIntervalHours, 1, 24 * 31);
  // A delta is good until its base's nextUpdate at the latest: a base that lives no longer than a delta interval leaves deltas nothing to do.
  if (deltaMinutes > 0 && deltaMinutes >= baseHours * 60) fail("deltaCrlIntervalMinutes", `must be shorter than crlBaseIntervalHours (${baseHours} h), or 0 for no delta CRLs`);
  return Object.freeze({
    baseUrl: httpUrl("baseUrl", o.baseUrl),
    validityRule: o.validityRule,
    policy: o.policy,
    cpsUri: httpUrl("cpsUri", o.cpsUri),
    crlLifetimeHours: intIn("crlLifetimeHours", o.crlLifetimeHours, 1, 24 * 31),
    crlRefreshMarginHours: intIn("crlRefreshMarginHours", o.crlRefreshMarginHours, 1, 24 * 31),
    crlPem: o.crlPem,
    crlKeep: intIn("crlKeep", o.crlKeep, 1, 1000),
    expiredGraceDays: intIn("expiredGraceDays", o.expiredGraceDays, 0, 3650),
    deltaCrlIntervalMinutes: deltaMinutes,
    crlBaseIntervalHours: baseHours,
    deltaCrlMaxEntries: intIn("deltaCrlMaxEntries", o.deltaCrlMaxEntries, 1, 100_000_000),
    caValidityYears: intIn("caValidityYears", o.caValidityYears, 1, 30),
    store: o.store as StoreKind,
    openRoutes: openRoutes(o.openRoutes),
    verifierRateLimit: rateLimit("verifierRateLimit", o.verifierRateLimit),
    refusedRateLimit: rateLimit("refusedRateLimit", o.refusedRateLimit),
    trustedProxies: trustedProxies(o.trustedProxies),
    pkcs11Modules: pkcs11Modules(o.pkcs11Modules),
  });
}
