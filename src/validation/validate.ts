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
import { buildChain } from "./build.js";
import { KEY_USAGE, parseCertificate, type Certificate } from "./certificate.js";
import { isoTime } from "./civil-time.js";
import { checkCrls } from "./crl-check.js";
import type { CrlIndexCache } from "./crl-index-cache.js";
import type { CrlCache, CrlFetchOutcome } from "./revocation-sources.js";
import { parseCrl, type Crl } from "./crl.js";
import { formatName, nameEquals } from "./name.js";
import { processPath } from "./path.js";
import { ByteTable, tlvAt } from "./asn1.js";
import { certificateVerifies, shareCertificate, spkiId, verifySignature, workingKeyOf, type WorkingKey } from "./signature.js";
import { FAILURE_REASONS, type PathValidationResult, type PolicyOptions, type RevocationMode, type RevocationProblem } from "./types.js";

export interface ValidatePathParams {
  /** trust anchors as DER certificates; only their subject and public key are used (§6.1.1(d)) */
  readonly trustAnchors: readonly Uint8Array[];
  /** the path to validate, end entity FIRST, each certificate issued by the next; the trust anchor may end it or not */
  readonly chain: readonly Uint8Array[];
  /** further certificates that may be needed to validate CRL issuers (indirect CRLs, separate CRL keys) */
  readonly certificates?: readonly Uint8Array[];
  readonly crls?: readonly Uint8Array[];
  /**
   * CRLs parsed once and reused across calls (crl-index-cache.ts): with it, a CRL seen before costs a lookup,
   * not a parse, and its signature is checked once per key rather than once per validation. Give the same
   * Buffers each time (or the same bytes: they are then recognised by digest), and do not change them.
   */
  readonly crlIndex?: CrlIndexCache;
  /** the validation time (§6.1.1(b)); injected, never read from the wall clock here */
  readonly at: Date;
  readonly policy?: PolicyOptions;
  /** default "hard-fail" */
  readonly revocation?: RevocationMode;
  /** use delta CRLs when present (default true) */
  readonly useDeltaCrls?: boolean;
}

interface Context {
  readonly anchors: readonly Certificate[];
  readonly pool: readonly Certificate[];
  readonly crls: readonly Crl[];
  readonly at: Date;
  readonly policy?: PolicyOptions;
  readonly mode: RevocationMode;
  readonly useDeltas: boolean;
  /** CRL issuer certificates already validated from the top level (by DER hex) */
  readonly signerCache: Map<string, boolean>;
}

/** How deep CRL-issuer paths may nest (a CRL signer whose CRL has its own signer …). */
const MAX_SIGNER_DEPTH = 4;

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
 * (signature.ts certificateVerifies). The end entity, chain[0], is parsed and verified on every call.
 */
const configuredCertificates = new WeakMap<Uint8Array, Certificate>();
const sharedCertificates = new ByteTable<Certificate | null>(256, 32);

function configured(der: Uint8Array): Certificate | undefined {
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

/** Those of `ders` that parse, each parsed once (a loop: flatMap costs more than the lookups it wraps). */
function configuredAll(ders: readonly Uint8Array[]): Certificate[] {
  const out: Certificate[] = [];
  for (const d of ders) {
    const c = configured(d);
    if (c) out.push(c);
  }
  return out;
}

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
  checkParams(params);
  const chain: Certificate[] = [];
  for (let k = 0; k < params.chain.length; k++) {
    // the end entity parsed afresh every time; the CA certificates above it are shared (configured())
    const c = k === 0 ? tryParse(parseCertificate, params.chain[k]!) : configured(params.chain[k]!);
    if (!c) return { status: "untrusted", reason: "malformed-certificate", index: k, message: `certificate ${k} of the chain could not be decoded` };
    chain.push(c);
  }
  const anchors = configuredAll(params.trustAnchors);
  // A chain that ends with the trust anchor itself (as TLS servers often send it): the anchor is not part of the path.
  while (chain.length > 1 && anchors.some((a) => a.der.equals(chain[chain.length - 1]!.der))) chain.pop();
  const pool = params.certificates?.length ? [...chain, ...configuredAll(params.certificates)] : chain.slice();
  const crls: Crl[] = [];
  for (const d of params.crls ?? []) {
    const crl = params.crlIndex ? params.crlIndex.parse(d) : tryParse(parseCrl, d);
    if (crl) crls.push(crl);
  }
  const ctx: Context = {
    anchors,
    pool,
    crls,
    at: params.at,
    policy: params.policy,
    mode: params.revocation ?? "hard-fail",
    useDeltas: params.useDeltaCrls ?? true,
    signerCache: new Map(),
  };
  return validateChain(ctx, chain, 0, NONE_PENDING);
}

const NONE_PENDING: ReadonlySet<string> = new Set();

/** `pending`: CRL issuer certificates whose own validation is under way further up (by DER hex). */
function validateChain(ctx: Context, chain: readonly Certificate[], depth: number, pending: ReadonlySet<string>): PathValidationResult {
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
    const status = checkCrls({
      cert,
      crls: ctx.crls,
      at: ctx.at,
      useDeltas: ctx.useDeltas,
      crlVerified: (crl) => crlVerified(ctx, crl, ancestors, depth, pending, () => (onChain ??= new Set(chain.map(hex)))),
    });
    if (status.status === "revoked") {
      const e = status.entry;
      const reason = reasonName(e.reason ?? 0) ?? "unspecified";
      return {
        status: "revoked",
        reason: "revoked",
        index: n - i,
        message: `certificate ${formatName(cert.subject)} was revoked at ${isoTime(e.revocationDate)} (${reason})`,
        revocation: { time: e.revocationDate, reason, invalidityDate: e.invalidityDate },
      };
    }
    if (status.status === "unknown") {
      if (ctx.mode === "hard-fail") {
        return { status: "revocation-unknown", reason: "revocation-unknown", index: n - i, message: `${FAILURE_REASONS["revocation-unknown"]}: ${formatName(cert.subject)}: ${status.detail}` };
      }
      warnings.push({ index: n - i, detail: status.detail });
    }
  }
  return { status: "valid", policies: r.policies, revocationWarnings: warnings };
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

export interface ValidatePathAsyncParams extends Omit<ValidatePathParams, "crlIndex"> {
  /** where CRLs come from: those the chain's certificates name are fetched (or revalidated) first */
  readonly crlSource: CrlCache;
}

/**
 * `validatePath` with the CRLs the chain names gathered through `crlSource` (revocation-sources.ts) — full,
 * partition and delta CRLs, cached with conditional GETs — besides any `crls` given; then the synchronous engine.
 */
export async function validatePathAsync(params: ValidatePathAsyncParams): Promise<PathValidationResult & { readonly crlFetches: readonly CrlFetchOutcome[] }> {
  checkParams(params);
  const gathered = params.revocation === "off" ? { crls: [], fetches: [] } : await params.crlSource.gather(params.chain);
  const { crlSource, ...rest } = params;
  return { ...validatePath({ ...rest, crls: [...(params.crls ?? []), ...gathered.crls], crlIndex: crlSource.index }), crlFetches: gathered.fetches };
}

/** Builds a path for `endEntity` from `intermediates` to one of `trustAnchors`: the chain, end entity first. */
export function buildPath(params: { readonly endEntity: Uint8Array; readonly intermediates: readonly Uint8Array[]; readonly trustAnchors: readonly Uint8Array[] }): Buffer[] | undefined {
  const ee = tryParse(parseCertificate, params.endEntity);
  if (!ee) return undefined;
  const pool = configuredAll(params.intermediates);
  const anchors = configuredAll(params.trustAnchors);
  return buildChain(ee, pool, anchors)?.chain.map((c) => c.der);
}
