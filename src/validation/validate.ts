/**
 * Certification path validation with revocation, RFC 5280 §6.1 and §6.3: the public entry.
 *
 * `validatePath` takes a chain already ordered (end entity first), checks it against the trust anchors with
 * processPath (§6.1), then the revocation status of every certificate on it from CRLs (§6.3, crl-check.ts).
 * The CRL issuer's own path is validated to the same trust anchor (§6.3.3(f)), recursively and with the same
 * revocation mode, from the certificates given. The answer is a value; nothing here throws on bad input.
 */
import { reasonName } from "../crl/reason.js";
import { JpkiError } from "../errors.js";
import { buildChain, chainCandidates } from "./build.js";
import { KEY_USAGE, parseCertificate, type Certificate } from "./certificate.js";
import { isoTime } from "./civil-time.js";
import { checkCrls } from "./crl-check.js";
import { crlsIssuedBy, type CrlIndexCache } from "./crl-index-cache.js";
import type { CrlCache, CrlFetchOutcome } from "./revocation-sources.js";
import { parseCrl, type Crl } from "./crl.js";
import { formatName, nameEquals } from "./name.js";
import { processPath } from "./path.js";
import { ByteTable, tlvAt } from "./asn1.js";
import { certificateVerifies, parsedOncePerValidation, shareCertificate, spkiId, verifyCertificateAsync, verifySignature, withinOneValidation, workingKeyOf, type SignatureVerdict, type WorkingKey } from "./signature.js";
import { ocspCertId, type OcspClient, type OcspOutcome } from "./ocsp-source.js";
import {
  FAILURE_REASONS,
  REVOCATION_SOURCES,
  type PathValidationResult,
  type PolicyOptions,
  type Revocation,
  type RevocationCheck,
  type RevocationMode,
  type RevocationProblem,
  type RevocationSourceName,
} from "./types.js";

export interface ValidatePathParams {
  /**
   * trust anchors as DER certificates; only their subject and public key are used (§6.1.1(d)). A frozen array
   * (Object.freeze) is read once and taken as it was thereafter: a server passing its anchors with every
   * validation freezes them, and freezes a new array when they change (see configuredAll).
   */
  readonly trustAnchors: readonly Uint8Array[];
  /** the path to validate, end entity FIRST, each certificate issued by the next; the trust anchor may end it or not */
  readonly chain: readonly Uint8Array[];
  /** further certificates that may be needed to validate CRL issuers (indirect CRLs, separate CRL keys) */
  readonly certificates?: readonly Uint8Array[];
  readonly crls?: readonly Uint8Array[];
  /**
   * CRLs parsed once and reused across calls (crl-index-cache.ts): with it, a CRL seen before costs a lookup,
   * not a parse, and its signature is checked once per key rather than once per validation. Give the same
   * Buffers each time (or the same bytes: they are then recognised by digest), and do not change them. With a
   * frozen `crls` array as well, the set itself is parsed once (CrlIndexCache.parseAll) and grouped by issuer, so
   * a validation against thousands of CRLs (a partition per municipality) looks only at its issuer's.
   */
  readonly crlIndex?: CrlIndexCache;
  /** the validation time (§6.1.1(b)); injected, never read from the wall clock here */
  readonly at: Date;
  readonly policy?: PolicyOptions;
  /** default "hard-fail" */
  readonly revocation?: RevocationMode;
  /** use delta CRLs when present (default true) */
  readonly useDeltaCrls?: boolean;
  /**
   * The revocation sources to ask, in order, for each certificate (default ["crl"]): ["ocsp", "crl"] asks OCSP
   * and falls back to the CRLs when OCSP gives no answer. When given, the result lists `revocationChecks`.
   */
  readonly revocationSources?: readonly RevocationSourceName[];
  /**
   * OCSP answers fetched beforehand (OcspClient.gather, checked there against RFC 6960 §3.2): each counts for
   * the certificate of the path its CertID names — issuer name, the key the path validated for the issuer,
   * and serial — and only while current at `at`.
   */
  readonly ocspResponses?: readonly OcspOutcome[];
}

interface Context {
  readonly anchors: readonly Certificate[];
  readonly pool: readonly Certificate[];
  /** frozen when it is a set the CrlIndexCache keeps (then crlsIssuedBy groups it once) */
  readonly crls: readonly Crl[];
  readonly at: Date;
  readonly policy?: PolicyOptions;
  readonly mode: RevocationMode;
  readonly useDeltas: boolean;
  readonly sources: readonly RevocationSourceName[];
  readonly ocsp: readonly OcspOutcome[];
  /** CRL issuer certificates already validated from the top level (by DER hex) */
  readonly signerCache: Map<string, boolean>;
}

/** How deep CRL-issuer paths may nest (a CRL signer whose CRL has its own signer …). */
const MAX_SIGNER_DEPTH = 4;

/** The end entity of a validation, parsed once per validation (signature.ts parsedOncePerValidation). */
export function endEntityOf(der: Uint8Array): Certificate {
  return parsedOncePerValidation(der, parseCertificate);
}

function tryParse<T>(parse: (d: Uint8Array) => T, der: Uint8Array): T | undefined {
  try {
    return parse(der);
  } catch {
    return undefined;
  }
}

/**
 * Trust anchors, intermediate CA certificates and extra certificates are configuration, passed again with every
 * validation: each is parsed once and shared. Found by its Buffer (a WeakMap, so it goes with it; the bytes are
 * compared on every use, so a Buffer changed in place is parsed again), else by its bytes (a bounded table: a
 * hash of the length and the last octets — the signature — picks the bucket, the whole DER is compared). Shared
 * certificates hold a private copy of their DER, and their signature checks are remembered per issuer key
 * (signature.ts certificateVerifies). The end entity, chain[0], is parsed and verified on every call (once).
 */
const configuredCertificates = new WeakMap<Uint8Array, Certificate>();
const sharedCertificates = new ByteTable<Certificate | null>(256, 32);

export function configured(der: Uint8Array): Certificate | undefined {
  const known = configuredCertificates.get(der);
  if (known && known.der.equals(der)) return known;
  let c: Certificate | null | undefined;
  try {
    const t = tlvAt(der);
    c = sharedCertificates.get(t, true);
    if (c === undefined) {
      c = tryParse(parseCertificate, Buffer.from(t.der)) ?? null;
      if (c) shareCertificate(c);
      sharedCertificates.set(t, true, c);
    }
  } catch {
    c = null;
  }
  if (c) configuredCertificates.set(der, c);
  return c ?? undefined;
}

/**
 * The end entity's signature verified on libuv's thread pool under the key of each CA certificate among
 * `issuers` that may have signed it (its subject is the end entity's issuer; the key identifiers, when both are
 * present, match), for validatePath/validateJpki's `signatureVerdicts`: a server validating on its one event
 * loop thread hands the RSA work to another core and the engine takes the verdict (signature.ts). A certificate
 * that does not parse gives no verdict (the engine then says what is wrong with it).
 */
export async function preverifyEndEntity(certificate: Uint8Array, issuers: readonly Uint8Array[]): Promise<SignatureVerdict[]> {
  const ee = tryParse(parseCertificate, certificate);
  if (!ee) return [];
  const pending: Array<Promise<SignatureVerdict | undefined>> = [];
  for (const der of issuers) {
    const ca = configured(der);
    if (!ca || !nameEquals(ca.subject, ee.issuer)) continue;
    if (ee.authorityKeyId && ca.subjectKeyId && !ee.authorityKeyId.equals(ca.subjectKeyId)) continue;
    pending.push(verifyCertificateAsync(ee, ca.publicKey));
    if (pending.length >= MAX_PREVERIFIED) break;
  }
  const out: SignatureVerdict[] = [];
  for (const v of await Promise.all(pending)) if (v) out.push(v);
  return out;
}

/** Issuer keys tried per end entity by preverifyEndEntity (a rollover has a few generations under one name). */
const MAX_PREVERIFIED = 4;

/**
 * Those of `ders` that parse, each parsed once (a loop: flatMap costs more than the lookups it wraps). A frozen
 * array is resolved once and its certificates kept with it: each configured() compares the Buffer with the
 * bytes it parsed, ≈ 1.2 KB per certificate, and a national trust list (94 prefecture CAs, their generations,
 * J-LIS) passed with every validation cost ≈ 12 µs of compares, twice (path building, then the path). The
 * array cannot change; its Buffers must not either (the caller freezes a new array for new anchors).
 */
function configuredAll(ders: readonly Uint8Array[]): readonly Certificate[] {
  const frozen = Object.isFrozen(ders);
  if (frozen) {
    const known = configuredSets.get(ders);
    if (known) return known;
  }
  const out: Certificate[] = [];
  for (const d of ders) {
    const c = configured(d);
    if (c) out.push(c);
  }
  if (frozen) configuredSets.set(ders, Object.freeze(out));
  return out;
}

const configuredSets = new WeakMap<readonly Uint8Array[], readonly Certificate[]>();

const MODES: ReadonlySet<string> = new Set<RevocationMode>(["hard-fail", "soft-fail", "off"]);
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

/**
 * The parameters are the caller's, not the certificates': a mistake there is a programming error and fails
 * at once (STYLE.md §6) instead of passing as a verdict — an Invalid Date would otherwise compare as "within
 * every validity period".
 */
function checkParams(params: ValidatePathParams): void {
  if (!(params.at instanceof Date) || Number.isNaN(params.at.getTime())) {
    throw new JpkiError("ERR_USAGE", "validatePath needs `at`, the validation time, as a valid Date");
  }
  if (params.revocation !== undefined && !MODES.has(params.revocation)) {
    throw new JpkiError("ERR_USAGE", `validatePath: revocation must be "hard-fail", "soft-fail" or "off", not ${JSON.stringify(params.revocation)}`);
  }
  const sources = params.revocationSources;
  if (sources !== undefined && (!Array.isArray(sources) || sources.length === 0 || sources.some((x) => !REVOCATION_SOURCES.includes(x)) || new Set(sources).size !== sources.length)) {
    throw new JpkiError("ERR_USAGE", `validatePath: revocationSources must list "crl" and/or "ocsp", each once, in the order to ask them`);
  }
  const initial = params.policy?.initialPolicySet;
  if (initial !== undefined && (initial.length === 0 || initial.some((p) => !OID.test(p)))) {
    throw new JpkiError("ERR_USAGE", "validatePath: policy.initialPolicySet must hold dotted policy OIDs (2.5.29.32.0 for anyPolicy)");
  }
}

/**
 * Validates `chain` (end entity first) to one of `trustAnchors` at `params.at`. Certificates and CRLs that cannot
 * be decoded give a result (malformed-certificate) or are left out (CRLs, extra certificates); only wrong
 * parameters throw (JpkiError ERR_USAGE).
 */
export function validatePath(params: ValidatePathParams): PathValidationResult {
  return withinOneValidation(() => validatePathNow(params));
}

function validatePathNow(params: ValidatePathParams): PathValidationResult {
  checkParams(params);
  const chain: Certificate[] = [];
  for (let k = 0; k < params.chain.length; k++) {
    // the end entity parsed once per validation (validateJpki and path building read it too); the CA certificates
    // above it are shared (configured())
    const c = k === 0 ? tryParse(endEntityOf, params.chain[k]!) : configured(params.chain[k]!);
    if (!c) return { status: "untrusted", reason: "malformed-certificate", index: k, message: `certificate ${k} of the chain could not be decoded` };
    chain.push(c);
  }
  const anchors = configuredAll(params.trustAnchors);
  // A chain that ends with the trust anchor itself (as TLS servers often send it): the anchor is not part of the path.
  while (chain.length > 1 && anchors.some((a) => a.der.equals(chain[chain.length - 1]!.der))) chain.pop();
  const pool = params.certificates?.length ? [...chain, ...configuredAll(params.certificates)] : chain.slice();
  let crls: readonly Crl[];
  if (params.crlIndex) crls = params.crlIndex.parseAll(params.crls ?? []);
  else {
    const parsed: Crl[] = [];
    for (const d of params.crls ?? []) {
      const crl = tryParse(parseCrl, d);
      if (crl) parsed.push(crl);
    }
    crls = parsed;
  }
  const ctx: Context = {
    anchors,
    pool,
    crls,
    at: params.at,
    policy: params.policy,
    mode: params.revocation ?? "hard-fail",
    useDeltas: params.useDeltaCrls ?? true,
    sources: params.revocationSources ?? ["crl"],
    ocsp: params.ocspResponses ?? [],
    signerCache: new Map(),
  };
  // the checks are recorded only when the caller asked for them (revocationSources given): one object a
  // certificate, made for nothing otherwise
  if (params.revocationSources === undefined) return validateChain(ctx, chain, 0, NONE_PENDING);
  const checks: RevocationCheck[] = [];
  const r = validateChain(ctx, chain, 0, NONE_PENDING, checks);
  return { ...r, revocationChecks: checks };
}

/** How far an OCSP answer's thisUpdate may lie after the validation time (as OcspClient's default skew). */
const OCSP_SKEW_MS = 5 * 60_000;

type SourceStatus =
  | { readonly status: "good" }
  | { readonly status: "revoked"; readonly time: Date; readonly reason: string; readonly invalidityDate?: Date }
  | { readonly status: "unknown"; readonly detail: string };

/**
 * The OCSP answer about `cert` issued by the holder of `issuer` (the working key the path validated), current at
 * `at`. "unknown" when there is none: no answer fetched, the responder did not know it, or the answer is stale.
 */
function ocspStatus(ctx: Context, cert: Certificate, issuer: Certificate): SourceStatus & { url?: string } {
  const ids = new Map<string, ReturnType<typeof ocspCertId>>();
  const idFor = (h: "sha1" | "sha256") => ids.get(h) ?? ids.set(h, ocspCertId(cert, issuer, h)).get(h)!;
  const problems: string[] = [];
  for (const o of ctx.ocsp) {
    const id = o.certId;
    if (!id) continue;
    const want = idFor(id.hash);
    if (id.serial !== want.serial || id.issuerNameHash !== want.issuerNameHash || id.issuerKeyHash !== want.issuerKeyHash) continue;
    if (o.status === "no-answer") {
      problems.push(`OCSP ${o.problem}: ${o.detail}`);
      continue;
    }
    if (o.status === "unknown") {
      problems.push(`OCSP: the responder ${o.url} does not know the certificate (unknown)`);
      continue;
    }
    const until = o.nextUpdate ?? new Date(o.thisUpdate.getTime() + OCSP_SKEW_MS);
    if (o.thisUpdate.getTime() > ctx.at.getTime() + OCSP_SKEW_MS || until < ctx.at) {
      problems.push("OCSP: the answer is not current at the validation time");
      continue;
    }
    if (o.status === "revoked") return { status: "revoked", time: o.revocation.time, reason: o.revocation.reason, url: o.url };
    return { status: "good", url: o.url };
  }
  return { status: "unknown", detail: problems.length ? [...new Set(problems)].join("; ") : "OCSP: no answer was fetched for the certificate" };
}

const NONE_PENDING: ReadonlySet<string> = new Set();

/**
 * `pending`: CRL issuer certificates whose own validation is under way further up (by DER hex).
 * `checks`: where the top-level path's revocation checks are recorded (CRL issuers' paths record none).
 */
function validateChain(ctx: Context, chain: readonly Certificate[], depth: number, pending: ReadonlySet<string>, checks?: RevocationCheck[]): PathValidationResult {
  const n = chain.length;
  if (n === 0) return { status: "untrusted", reason: "no-trust-anchor", index: 0, message: "the chain is empty" };
  const top = chain[n - 1]!;
  const named = ctx.anchors.filter((a) => nameEquals(a.subject, top.issuer));
  // Several anchors of that name (a rollover): the one whose key verifies. One: processPath checks it anyway.
  const anchor = named.length === 1 ? named[0] : (named.find((a) => certificateVerifies(top, workingKeyOf(a.publicKey))) ?? named[0]);
  if (!anchor) {
    return { status: "untrusted", reason: "no-trust-anchor", index: n - 1, message: `no trust anchor named ${formatName(top.issuer)}` };
  }
  const path = [...chain].reverse();
  let r: ReturnType<typeof processPath>;
  try {
    r = processPath({ anchor: { name: anchor.subject, key: workingKeyOf(anchor.publicKey) }, path, at: ctx.at, policy: ctx.policy });
  } catch (e) {
    // The parsers are strict up front; this is the backstop that keeps the answer a value.
    return { status: "untrusted", reason: "malformed-certificate", index: n - 1, message: `the path could not be processed: ${(e as Error).message}` };
  }
  if (!r.ok) return { status: r.status, reason: r.reason, index: n - r.i, message: r.message };
  if (ctx.mode === "off") return { status: "valid", policies: r.policies, revocationWarnings: [] };

  const warnings: RevocationProblem[] = [];
  let onChain: Set<string> | undefined;
  for (let i = 1; i <= n; i++) {
    const cert = path[i - 1]!;
    const ancestors: Array<{ cert: Certificate; key: WorkingKey }> = [{ cert: anchor, key: workingKeyOf(anchor.publicKey) }];
    for (let j = 1; j < i; j++) ancestors.push({ cert: path[j - 1]!, key: r.issuerKeys[j]! });
    const crlStatus = (): SourceStatus => {
      const s = checkCrls({
        cert,
        crls: crlsFor(ctx.crls, cert),
        at: ctx.at,
        useDeltas: ctx.useDeltas,
        crlVerified: (crl) => crlVerified(ctx, crl, ancestors, depth, pending, () => (onChain ??= new Set(chain.map(hex)))),
      });
      if (s.status !== "revoked") return s;
      const e = s.entry;
      return { status: "revoked", time: e.revocationDate, reason: reasonName(e.reason ?? 0) ?? "unspecified", invalidityDate: e.invalidityDate };
    };
    // Each source in turn until one answers good or revoked; the details of those that could not are kept.
    let status: SourceStatus = { status: "unknown", detail: "" };
    let source: RevocationSourceName | "none" = "none";
    let url: string | undefined;
    const details: string[] = [];
    for (const name of ctx.sources) {
      const s = name === "crl" ? crlStatus() : ocspStatus(ctx, cert, ancestors[ancestors.length - 1]!.cert);
      if (s.status === "unknown") {
        details.push(s.detail);
        continue;
      }
      status = s;
      source = name;
      if ("url" in s && typeof s.url === "string") url = s.url;
      break;
    }
    const detail = details.join("; ");
    checks?.push({ index: n - i, source, status: status.status, ...(url ? { url } : {}), ...(detail ? { detail } : {}) });
    if (status.status === "revoked") {
      const reason = status.reason as Revocation["reason"];
      return {
        status: "revoked",
        reason: "revoked",
        index: n - i,
        message: `certificate ${formatName(cert.subject)} was revoked at ${isoTime(status.time)} (${reason})${source === "ocsp" ? ", says OCSP" : ""}`,
        revocation: { time: status.time, reason, ...(source === "crl" ? { invalidityDate: status.invalidityDate } : {}), source: source as RevocationSourceName },
      };
    }
    if (status.status === "unknown") {
      if (ctx.mode === "hard-fail") {
        // the CRL-only wording as it always was; with OCSP asked, one that does not speak of CRLs alone
        const why = ctx.sources.length === 1 && ctx.sources[0] === "crl" ? FAILURE_REASONS["revocation-unknown"] : "no revocation source answered (CRL §6.3.3, OCSP RFC 6960)";
        return { status: "revocation-unknown", reason: "revocation-unknown", index: n - i, message: `${why}: ${formatName(cert.subject)}: ${detail}` };
      }
      warnings.push({ index: n - i, detail });
    }
  }
  return { status: "valid", policies: r.policies, revocationWarnings: warnings };
}

/**
 * The CRLs §6.3.3(b)(1) can take for `cert`: those its issuer issued, unless a distribution point names a
 * cRLIssuer (an indirect CRL, issued by another name): then all of them, for checkCrls to choose from.
 */
function crlsFor(crls: readonly Crl[], cert: Certificate): readonly Crl[] {
  const points = cert.crlDistributionPoints;
  if (points) for (const dp of points) if (dp.crlIssuer) return crls;
  return crlsIssuedBy(crls, cert.issuer.key);
}

function hex(c: Certificate): string {
  return c.der.toString("hex");
}

/**
 * §6.3.3(f)–(g): the CRL is signed by a certificate named as its issuer, allowed to sign CRLs (cRLSign when
 * keyUsage is present), whose path to the same trust anchor is valid. The anchor and the certificates above
 * the one being checked are already validated; any other candidate gets a path of its own.
 */
function crlVerified(
  ctx: Context,
  crl: Crl,
  ancestors: ReadonlyArray<{ cert: Certificate; key: WorkingKey }>,
  depth: number,
  pending: ReadonlySet<string>,
  /** the chain's certificates (by DER hex), computed only when a CRL issuer is sought beyond the ancestors */
  onChain: () => ReadonlySet<string>,
): boolean {
  const mayCrlSign = (c: Certificate) => !c.keyUsage || c.keyUsage.has(KEY_USAGE.cRLSign);
  const signs = (key: WorkingKey) => crlSignedBy(crl, key);
  for (const a of ancestors) {
    if (nameEquals(a.cert.subject, crl.issuer) && mayCrlSign(a.cert) && signs(workingKeyOf(a.cert.publicKey, a.key))) return true;
  }
  if (depth >= MAX_SIGNER_DEPTH) return false;
  for (const c of ctx.pool) {
    const key = hex(c);
    // A certificate of the path being validated is no CRL issuer for its own ancestors.
    if (!nameEquals(c.subject, crl.issuer) || !mayCrlSign(c) || (onChain().has(key) && !pending.has(key))) continue;
    if (!signs(workingKeyOf(c.publicKey))) continue;
    // A CRL issuer whose path is being validated further up may vouch for its own status: its certificate is
    // covered by the very CRL it signs (PKITS 4.14.30). Everything but that status is checked already.
    if (pending.has(key)) return true;
    let ok = ctx.signerCache.get(key);
    if (ok === undefined) {
      const built = buildChain(c, ctx.pool, ctx.anchors);
      ok = built !== undefined && validateChain(ctx, built.chain, depth + 1, new Set([...pending, key])).status === "valid";
      // Only a verdict reached without provisional trust in a pending issuer is worth remembering.
      if (pending.size === 0) ctx.signerCache.set(key, ok);
    }
    if (ok) return true;
  }
  return false;
}

/**
 * Signature checks of a CRL, remembered on the parsed CRL (by the key's SubjectPublicKeyInfo and inherited
 * parameters): a CRL reused through a CrlIndexCache is hashed and verified once per key, not per validation.
 * A WeakMap, so the memory goes with the CRL.
 */
const crlSignatures = new WeakMap<Crl, Map<string, boolean>>();

function crlSignedBy(crl: Crl, key: WorkingKey): boolean {
  let known = crlSignatures.get(crl);
  if (!known) crlSignatures.set(crl, (known = new Map()));
  const id = key.parameters ? `${spkiId(key.spki)}/${key.parameters.der.toString("base64")}` : spkiId(key.spki);
  let ok = known.get(id);
  if (ok === undefined) {
    ok = verifySignature(crl.tbs, crl.signatureAlgorithm, crl.signature, key);
    known.set(id, ok);
  }
  return ok;
}

export interface ValidatePathAsyncParams extends Omit<ValidatePathParams, "crlIndex" | "ocspResponses"> {
  /** where CRLs come from: those the chain's certificates name are fetched (or revalidated) first */
  readonly crlSource?: CrlCache;
  /** where OCSP answers come from: asked about every certificate of the chain first (with "ocsp" in revocationSources) */
  readonly ocspSource?: OcspClient;
}

/** What the revocation sources were asked before the engine ran. */
export interface RevocationFetches {
  readonly crlFetches: readonly CrlFetchOutcome[];
  readonly ocspResponses: readonly OcspOutcome[];
}

/**
 * Those of `certificates` (a chain, or the certificates of several candidate paths) signed, link by link, from a
 * trust anchor: a certificate is in when its signature verifies under the key of a trust anchor, or of a
 * certificate already in, whose subject is its issuer. Only these may send us anywhere: the URLs a certificate
 * names (CRL distribution points, freshestCRL, the OCSP responder of its AIA) are asked with the verifier's bearer
 * token, and a candidate path is built on names alone when no better one exists (build.ts, to explain a failure).
 * A certificate copied from a real one with the URLs changed to the attacker's, its signature left broken, got
 * `jpki verify --crl-url auto --token-file` to send the registered verifier's token to the attacker's server,
 * before the engine found the signature bad. An anchor given in the chain itself is in.
 */
export function signedFromAnchors(certificates: readonly Uint8Array[], trustAnchors: readonly Uint8Array[]): ReadonlySet<Uint8Array> {
  const anchors = configuredAll(trustAnchors);
  const anchorDer = new Set(anchors.map((a) => a.der.toString("base64")));
  const pending = new Map<Uint8Array, Certificate>();
  for (const der of certificates) {
    const c = tryParse(parseCertificate, der);
    if (c) pending.set(der, c);
  }
  const signedBy = (c: Certificate, issuer: Certificate, key?: WorkingKey) =>
    nameEquals(issuer.subject, c.issuer) && certificateVerifies(c, key ?? workingKeyOf(issuer.publicKey));
  const done = new Set<Uint8Array>();
  const keys = new Map<Uint8Array, { cert: Certificate; key: WorkingKey }>();
  for (const [der, c] of pending) {
    const viaAnchor = anchorDer.has(c.der.toString("base64")) ? c : anchors.find((a) => signedBy(c, a));
    if (!viaAnchor) continue;
    done.add(der);
    keys.set(der, { cert: c, key: workingKeyOf(c.publicKey, viaAnchor === c ? undefined : workingKeyOf(viaAnchor.publicKey)) });
  }
  for (const der of done) pending.delete(der);
  for (let grown = true; grown && pending.size; ) {
    grown = false;
    for (const [der, c] of pending) {
      const issuer = [...keys.values()].find((k) => k.cert !== c && signedBy(c, k.cert, k.key));
      if (!issuer) continue;
      done.add(der);
      keys.set(der, { cert: c, key: workingKeyOf(c.publicKey, issuer.key) });
      pending.delete(der);
      grown = true;
    }
  }
  return done;
}

/**
 * The asynchronous half shared by validatePathAsync and validateJpkiAsync: CRLs the chain names through
 * `crlSource` (when "crl" is a source), OCSP answers through `ocspSource` (when "ocsp" is), in parallel.
 * Neither throws for a network failure: what came back is reported and the engine's mode decides. Only the
 * certificates signed from a trust anchor are asked about (signedFromAnchors): the others' URLs are not the CA's.
 */
export async function gatherRevocation(p: {
  readonly chain: readonly Uint8Array[];
  readonly trustAnchors: readonly Uint8Array[];
  readonly at: Date;
  readonly revocation?: RevocationMode;
  readonly revocationSources?: readonly RevocationSourceName[];
  readonly crlSource?: CrlCache;
  readonly ocspSource?: OcspClient;
}): Promise<{ readonly crls: readonly Buffer[] } & RevocationFetches> {
  const sources = p.revocationSources ?? ["crl"];
  if (p.revocation === "off") return { crls: [], crlFetches: [], ocspResponses: [] };
  if (sources.includes("ocsp") && !p.ocspSource) throw new JpkiError("ERR_USAGE", 'revocationSources names "ocsp": give an ocspSource (OcspClient) to ask');
  // Nothing to ask (CRLs given, no source to fetch from): no signature to check for it either.
  if (!(sources.includes("crl") && p.crlSource) && !sources.includes("ocsp")) return { crls: [], crlFetches: [], ocspResponses: [] };
  const signed = signedFromAnchors(p.chain, p.trustAnchors);
  const chain = p.chain.filter((c) => signed.has(c));
  const [crl, ocsp] = await Promise.all([
    sources.includes("crl") && p.crlSource ? p.crlSource.gather(chain) : { crls: [], fetches: [] },
    sources.includes("ocsp") && chain.length ? p.ocspSource!.gather(chain, p.trustAnchors, p.at) : [],
  ]);
  return { crls: crl.crls, crlFetches: crl.fetches, ocspResponses: ocsp };
}

/**
 * `validatePath` with the CRLs the chain names gathered through `crlSource` (revocation-sources.ts) — full,
 * partition and delta CRLs, cached with conditional GETs — besides any `crls` given, and the OCSP answers about
 * its certificates through `ocspSource` (ocsp-source.ts); then the synchronous engine.
 */
export async function validatePathAsync(params: ValidatePathAsyncParams): Promise<PathValidationResult & RevocationFetches> {
  checkParams(params);
  const gathered = await gatherRevocation(params);
  const { crlSource, ocspSource: _ocsp, ...rest } = params;
  const r = validatePath({ ...rest, crls: [...(params.crls ?? []), ...gathered.crls], crlIndex: crlSource?.index, ocspResponses: gathered.ocspResponses });
  return { ...r, crlFetches: gathered.crlFetches, ocspResponses: gathered.ocspResponses };
}

/** Builds a path for `endEntity` from `intermediates` to one of `trustAnchors`: the chain, end entity first. */
export function buildPath(params: { readonly endEntity: Uint8Array; readonly intermediates: readonly Uint8Array[]; readonly trustAnchors: readonly Uint8Array[] }): Buffer[] | undefined {
  return pathCandidates({ ...params, limit: 1 }).next().value ?? undefined;
}

/**
 * Candidate paths for `endEntity` (build.ts: those keeping every constraint first, shortest first), built as
 * they are asked for, at most `limit` (default 8): validate them in order and take the first valid one
 * (RFC 4158 §2.4: a path that fails need not mean no valid path exists — an expired cross-certificate beside a
 * current one, say).
 */
export function* pathCandidates(params: { readonly endEntity: Uint8Array; readonly intermediates: readonly Uint8Array[]; readonly trustAnchors: readonly Uint8Array[]; readonly limit?: number }): Generator<Buffer[]> {
  const ee = tryParse(endEntityOf, params.endEntity);
  if (!ee) return;
  const pool = configuredAll(params.intermediates);
  const anchors = configuredAll(params.trustAnchors);
  let n = params.limit ?? 8;
  for (const p of chainCandidates(ee, pool, anchors)) {
    yield p.chain.map((c) => c.der);
    if (--n <= 0) return;
  }
}

/** The first `limit` (default 8) of pathCandidates. */
export function buildPaths(params: { readonly endEntity: Uint8Array; readonly intermediates: readonly Uint8Array[]; readonly trustAnchors: readonly Uint8Array[]; readonly limit?: number }): Buffer[][] {
  return [...pathCandidates(params)];
}
