/**
 * JPKI purposes over path validation (shared/spec/JPKI.md "Signature certificate" 署名用電子証明書,
 * "User-authentication certificate" 利用者証明用電子証明書, "CA certificates"; RFC 5280 §6 underneath).
 *
 * `validateJpki` runs `validatePath` and then asks what RFC 5280 leaves to the relying party: is this a
 * production JPKI certificate of the purpose asked for, and which authority issued it. The statuses stay those
 * of the engine. The decisions:
 * - a path that validates but whose end entity is of the other purpose (a signature certificate offered for
 *   authentication, or the reverse) is `profile-violation`, reason `wrong-purpose`: the certificate is genuine
 *   and trusted, it is the wrong tool. (Against the other purpose's CA alone the path does not even chain: that is
 *   `untrusted`, reason `no-trust-anchor`, from the engine.)
 * - a certificate of the J-LIS test environment (policy …8.5.1.0.20) or one whose issuer is not a JPKI CA
 *   (a foreign CA configured as a trust anchor) is `untrusted`, reasons `test-certificate` and `not-jpki-issuer`.
 * The four items (基本4情報) are decoded from a signature certificate's subjectAltName into the result; they
 * never appear in a message.
 */
import { caId, caIdOfUrl, parseCaId } from "../ca/ids.js";
import { PREFECTURES, type Prefecture } from "../ca/prefectures.js";
import { BRIDGE_OU, JLIS_OU, PURPOSE_OU } from "../profile/names.js";
import { ATTR_OID, EXT_OID, POLICY_OID } from "../profile/oids.js";
import { decodeFourItemsSan } from "../profile/san.js";
import type { CertificateType, FourItems } from "../profile/types.js";
import { KEY_USAGE, parseCertificate, type Certificate } from "./certificate.js";
import { formatName, type Name } from "./name.js";
import { FAILURE_REASONS, type PathStatus, type PathValidationResult, type RevocationMode, type RevocationSourceName } from "./types.js";
import { buildPaths, endEntityOf, gatherRevocation, pathCandidates, validatePath, type RevocationFetches } from "./validate.js";
import { JpkiError } from "../errors.js";
import type { CrlIndexCache } from "./crl-index-cache.js";
import type { OcspClient, OcspOutcome } from "./ocsp-source.js";
import type { CrlCache } from "./revocation-sources.js";
import { withinOneValidation, withSignatureVerdicts, type SignatureVerdict } from "./signature.js";

/** What a certificate is used for: 署名用 (signing documents) or 利用者証明用 (logging in). */
export type JpkiPurpose = CertificateType;

export const JPKI_PURPOSES: readonly JpkiPurpose[] = Object.freeze(["signature", "authentication"]);

/** The JPKI layer's own failure reasons, beside the engine's FAILURE_REASONS. */
export const JPKI_FAILURE_REASONS = {
  "wrong-purpose": "the certificate is of the other JPKI purpose than the one asked for (signature 署名用 / authentication 利用者証明用)",
  "test-certificate": "the certificate carries the J-LIS test environment's policy: it is not a production certificate",
  "not-jpki-issuer": "the certificate was not issued by a JPKI certification authority (a prefecture's CA or J-LIS)",
  "not-jpki-certificate": "the certificate carries neither the JPKI signature nor the authentication policy with its key usage",
  // Set by the validation API (verifier/validation-service.ts), which knows the store's compromised generations;
  // the engine itself only sees that no anchor signed it.
  "issuer-compromised": "the certificate is signed by the key of a CA generation declared compromised (鍵危殆化): nothing that key signed is trusted, however genuine",
} as const;

export type JpkiFailureReason = keyof typeof FAILURE_REASONS | keyof typeof JPKI_FAILURE_REASONS;

/** Who runs a JPKI CA: a prefecture (都道府県, the 2004–2015 design, ours), J-LIS (2016–) or the prefectures' Bridge CA. */
export type JpkiOperator = "prefecture" | "jlis" | "bridge";

/** A JPKI CA recognised by its name: the purpose OU and the operator OU (shared/spec/JPKI.md "CA certificates"). */
export interface JpkiAuthority {
  readonly operator: JpkiOperator;
  /** the purpose of the certificates it issues; undefined for the Bridge CA */
  readonly purpose?: JpkiPurpose;
  readonly prefecture?: Prefecture;
}

/** A trust anchor as the JPKI layer sees it: who it is and which generation (the year its validity begins). */
export interface JpkiAnchorInfo extends JpkiAuthority {
  readonly subject: string;
  readonly selfSigned: boolean;
  readonly generation: number;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /**
   * A prefecture CA's id as the public side names it (ca/ids.ts), with its key generation after a rollover:
   * "13-sig", "13-sig-g2". Undefined for J-LIS and the Bridge CA.
   */
  readonly caId?: string;
}

/** One certificate of the path, as a report names it (a JPKI end entity's subject is an opaque id, never the name). */
export interface ChainCertificate {
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface ValidateJpkiParams {
  /** the end-entity certificate (DER) */
  readonly certificate: Uint8Array;
  readonly purpose: JpkiPurpose;
  /** DER certificates: our prefecture CAs, J-LIS's roots, the Bridge CA */
  readonly trustAnchors: readonly Uint8Array[];
  /** certificates to build the path from (cross-certificates, sub-CAs) and to validate CRL issuers */
  readonly intermediates?: readonly Uint8Array[];
  readonly crls?: readonly Uint8Array[];
  /** CRLs parsed once and reused across calls (see ValidatePathParams.crlIndex) */
  readonly crlIndex?: CrlIndexCache;
  /** the validation time, injected */
  readonly at: Date;
  /** default "hard-fail" */
  readonly revocation?: RevocationMode;
  /** the revocation sources to ask, in order (default ["crl"]; see ValidatePathParams.revocationSources) */
  readonly revocationSources?: readonly RevocationSourceName[];
  /** OCSP answers fetched beforehand (OcspClient.gather; see ValidatePathParams.ocspResponses) */
  readonly ocspResponses?: readonly OcspOutcome[];
  /**
   * Certificate signatures verified beforehand off the event loop (preverifyEndEntity): taken for exactly the
   * signatures they record, every other one verified here (signature.ts SignatureVerdict).
   */
  readonly signatureVerdicts?: readonly SignatureVerdict[];
}

/** The JPKI facts added to every result. */
export interface JpkiFacts {
  /** the purpose asked for */
  readonly purpose: JpkiPurpose;
  /** the purpose the certificate itself declares (policy and keyUsage), or unknown */
  readonly certificatePurpose: JpkiPurpose | "unknown";
  /** the issuing CA's operator and prefecture, when its name is a JPKI CA's */
  readonly issuer?: JpkiAuthority;
  /** the prefecture, identified from the issuer's name (absent for J-LIS and foreign issuers) */
  readonly prefecture?: Prefecture;
  /** 基本4情報, from a signature certificate's subjectAltName. Personal data: never log it. */
  readonly fourItems?: FourItems;
  /** the path validated, end entity first (the trust anchor not included): what `index` counts */
  readonly chain?: readonly ChainCertificate[];
}

/** The path's outcome (types.ts PathValidationResult, its fields documented there) with JPKI's own failure reasons. */
export type JpkiValidationResult = JpkiFacts &
  (
    | Extract<PathValidationResult, { readonly status: "valid" }>
    | (Omit<Extract<PathValidationResult, { readonly reason: unknown }>, "reason"> & { readonly reason: JpkiFailureReason })
  );

function attrs(name: Name, oid: string): string[] {
  return name.rdns.flatMap((r) => r.filter((a) => a.type === oid).map((a) => a.text));
}

/**
 * The JPKI CA a name designates: C=JP, O=JPKI, OU=<purpose>, OU=<prefecture romaji | J-LIS>, or the Bridge CA
 * (OU=Prefectural Association For JPKI). Undefined for any other name. Extra attributes (an OCSP signer's CN)
 * make it another entity, not the CA.
 */
export function jpkiAuthorityOf(name: Name): JpkiAuthority | undefined {
  const types = name.rdns.map((r) => (r.length === 1 ? r[0]!.type : "multi"));
  const c = attrs(name, ATTR_OID.countryName), o = attrs(name, ATTR_OID.organizationName), ou = attrs(name, ATTR_OID.organizationalUnitName);
  const shape = [ATTR_OID.countryName, ATTR_OID.organizationName, ATTR_OID.organizationalUnitName, ATTR_OID.organizationalUnitName];
  if (types.length !== shape.length || types.some((t, i) => t !== shape[i]) || c[0] !== "JP" || o[0] !== "JPKI") return undefined;
  if (ou[0] === BRIDGE_OU) return { operator: "bridge" };
  const purpose = JPKI_PURPOSES.find((p) => PURPOSE_OU[p] === ou[0]);
  if (!purpose) return undefined;
  if (ou[1] === JLIS_OU) return { operator: "jlis", purpose };
  const prefecture = PREFECTURES.find((p) => p.romaji === ou[1]);
  return prefecture ? { operator: "prefecture", purpose, prefecture } : undefined;
}

/**
 * Recognises a trust anchor (DER): J-LIS's roots in fixtures/jlis/ come out as operator jlis, their purpose and
 * generation (2015, 2023); our CAs as operator prefecture with their prefecture. Undefined when the certificate is
 * not a JPKI CA's; throws ERR_DER_MALFORMED when it is not a certificate.
 */
export function describeJpkiAnchor(der: Uint8Array): JpkiAnchorInfo | undefined {
  const cert = parse(der, "trust anchor");
  const auth = jpkiAuthorityOf(cert.subject);
  if (!auth || !cert.basicConstraints?.cA) return undefined;
  return Object.freeze({
    ...auth,
    subject: formatName(cert.subject),
    selfSigned: cert.selfIssued,
    generation: cert.notBefore.getUTCFullYear(),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    ...(auth.operator === "prefecture" && auth.prefecture && auth.purpose ? { caId: prefectureCaId(cert, auth.prefecture, auth.purpose) } : {}),
  });
}

/**
 * The id the public side gave a prefecture CA's certificate. Its key generations share one name, so the id with
 * the generation ("13-sig-g2") is in the certificate only as the ARL URL of its cRLDistributionPoints (ca/authority.ts
 * createCaRecord names caUrls(baseUrl, id).arl), read back by caIdOfUrl. A certificate that names no ARL of a CA of
 * its own prefecture and purpose (one made elsewhere) is taken as the first generation, the id `jpki ca init` gives.
 */
function prefectureCaId(cert: Certificate, prefecture: Prefecture, purpose: JpkiPurpose): string {
  for (const dp of cert.crlDistributionPoints ?? []) {
    for (const n of dp.fullName ?? []) {
      const id = n.kind === "uri" ? caIdOfUrl(n.value, "arl") : undefined;
      if (!id) continue;
      const p = parseCaId(id);
      if (p.prefectureCode === prefecture.code && p.purpose === purpose) return id;
    }
  }
  return caId(prefecture.code, purpose);
}

function entryOf(c: Certificate): ChainCertificate {
  return Object.freeze({ subject: formatName(c.subject), issuer: formatName(c.issuer), serial: c.serialHex, notBefore: c.notBefore, notAfter: c.notAfter });
}

/**
 * The CA certificates of a path are the caller's configuration, the same Buffers call after call: their entries
 * are kept by Buffer (and answer only while the bytes are unchanged), so a validation does not parse each CA
 * certificate once more just to describe it. The end entity's comes from the parse validateJpki already made.
 */
const CHAIN_ENTRIES = new WeakMap<Uint8Array, { readonly der: Buffer; readonly entry: ChainCertificate }>();

function chainEntry(der: Buffer): ChainCertificate {
  const known = CHAIN_ENTRIES.get(der);
  if (known && known.der.equals(der)) return known.entry;
  const entry = entryOf(parseCertificate(der));
  CHAIN_ENTRIES.set(der, { der: Buffer.from(der), entry });
  return entry;
}


function parse(der: Uint8Array, what: string, read: (der: Uint8Array) => Certificate = parseCertificate): Certificate {
  try {
    return read(der);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `the ${what} is not a decodable X.509 certificate`, { cause: e });
  }
}

/**
 * The purpose a certificate declares: the JPKI policy OID (oids.ts POLICY_OID) with its key usage —
 * signature: digitalSignature + nonRepudiation (contentCommitment); authentication: digitalSignature without
 * nonRepudiation. "test" for the J-LIS test environment's signature policy.
 */
export function certificatePurposeOf(cert: Certificate): JpkiPurpose | "test" | "unknown" {
  const policies = new Set((cert.policies ?? []).map((p) => p.policy));
  const ku = cert.keyUsage;
  const nonRepudiation = ku?.has(KEY_USAGE.nonRepudiation) ?? false;
  const digitalSignature = ku?.has(KEY_USAGE.digitalSignature) ?? false;
  if (policies.has(POLICY_OID.signatureTest)) return "test";
  if (policies.has(POLICY_OID.signature) && nonRepudiation) return "signature";
  if (policies.has(POLICY_OID.authentication) && digitalSignature && !nonRepudiation) return "authentication";
  return "unknown";
}

function fourItemsOf(cert: Certificate): FourItems | undefined {
  const san = cert.extensions.get(EXT_OID.subjectAltName);
  if (!san) return undefined;
  try {
    const d = decodeFourItemsSan(san.value);
    if (!d || d.name === undefined || d.address === undefined || d.birthDate === undefined || d.gender === undefined) return undefined;
    return Object.freeze({ name: d.name, address: d.address, birthDate: d.birthDate, gender: d.gender });
  } catch {
    return undefined;
  }
}

const PURPOSE_WORDS: Readonly<Record<JpkiPurpose, string>> = { signature: "a signature certificate (署名用電子証明書)", authentication: "an authentication certificate (利用者証明用電子証明書)" };

/**
 * Validates a JPKI end-entity certificate for a purpose: the path to one of `trustAnchors` (built from
 * `intermediates`), its revocation from `crls`, and the JPKI checks above. A value, never an exception, except
 * for wrong parameters (ERR_USAGE) and a certificate that does not decode at all (ERR_DER_MALFORMED).
 */
export function validateJpki(params: ValidateJpkiParams): JpkiValidationResult {
  return withSignatureVerdicts(params.signatureVerdicts, () => withinOneValidation(() => validateJpkiNow(params)));
}

/** Throws ERR_USAGE unless `purpose` is one of JPKI_PURPOSES. */
export function checkJpkiPurpose(purpose: unknown): asserts purpose is JpkiPurpose {
  if (!JPKI_PURPOSES.includes(purpose as JpkiPurpose)) {
    throw new JpkiError("ERR_USAGE", `validateJpki: purpose must be "signature" or "authentication", not ${JSON.stringify(purpose)}`);
  }
}

function validateJpkiNow(params: ValidateJpkiParams): JpkiValidationResult {
  checkJpkiPurpose(params.purpose);
  // Parsed once for the whole validation: path building and path processing read this same parse (endEntityOf).
  const cert = parse(params.certificate, "certificate", endEntityOf);
  const declared = certificatePurposeOf(cert);
  const issuer = jpkiAuthorityOf(cert.issuer);
  const fourItems = declared === "signature" ? fourItemsOf(cert) : undefined;
  const facts: JpkiFacts = {
    purpose: params.purpose,
    certificatePurpose: declared === "test" ? "signature" : declared,
    ...(issuer ? { issuer } : {}),
    ...(issuer?.prefecture ? { prefecture: issuer.prefecture } : {}),
    ...(fourItems ? { fourItems } : {}),
  };
  const intermediates = params.intermediates ?? [];
  // Several paths may lead to a trust anchor (a prefecture CA directly and through the Bridge's cross-certificate,
  // an old and a new cross-certificate): the first valid one is the answer; when none is, the most promising
  // path's failure (build.ts orders them).
  const candidates = pathCandidates({ endEntity: params.certificate, intermediates, trustAnchors: params.trustAnchors });
  let chain: Buffer[] = candidates.next().value ?? [Buffer.from(params.certificate)];
  let r = validateOne(params, chain, intermediates);
  // The end entity revoked is its CA's word whatever the path; a revoked cross-certificate is that path's.
  for (const other of candidates) {
    if (r.status === "valid" || (r.status === "revoked" && r.index === 0)) break;
    const tried = validateOne(params, other, intermediates);
    if (tried.status === "valid") {
      chain = other;
      r = tried;
    }
  }
  // A path broken by a CA's own constraint (pathLenConstraint, basicConstraints, keyCertSign, name constraints) is
  // no trust delegated to this certificate: untrusted, whatever the engine calls it, e.g. Osaka's CA trusted
  // alone reaches the Bridge but not Tokyo's CA beneath it (ca/bridge.ts). The reason stays the engine's.
  if (r.status === "profile-violation" && r.index > 0 && CA_CONSTRAINTS.has(r.reason)) r = { ...r, status: "untrusted" };
  const withChain = { ...facts, chain: chain.map((der, i) => (i === 0 ? entryOf(cert) : chainEntry(der))) };
  const fail = (status: Exclude<PathStatus, "valid">, reason: JpkiFailureReason, message: string): JpkiValidationResult => ({ ...withChain, status, reason, index: 0, message });

  // The engine's verdict first: an untrusted, expired or revoked certificate is that, whatever its purpose.
  if (r.status !== "valid" && r.status !== "revocation-unknown") return { ...withChain, ...r };
  if (declared === "test") return fail("untrusted", "test-certificate", JPKI_FAILURE_REASONS["test-certificate"]);
  if (!issuer || issuer.operator === "bridge") return fail("untrusted", "not-jpki-issuer", JPKI_FAILURE_REASONS["not-jpki-issuer"]);
  if (declared === "unknown") return fail("profile-violation", "not-jpki-certificate", JPKI_FAILURE_REASONS["not-jpki-certificate"]);
  if (declared !== params.purpose) {
    return fail("profile-violation", "wrong-purpose", `${PURPOSE_WORDS[declared]} was offered where ${PURPOSE_WORDS[params.purpose]} is needed`);
  }
  if (issuer.purpose !== declared) {
    return fail("profile-violation", "wrong-purpose", `${PURPOSE_WORDS[declared]} issued by the ${issuer.purpose} CA: a CA issues certificates of its own purpose only`);
  }
  return { ...withChain, ...r };
}

const CA_CONSTRAINTS: ReadonlySet<string> = new Set(["not-a-ca", "path-length-exceeded", "key-usage-no-key-cert-sign", "name-constraints-permitted", "name-constraints-excluded"]);

function validateOne(params: ValidateJpkiParams, chain: Buffer[], intermediates: readonly Uint8Array[]) {
  return validatePath({
    trustAnchors: params.trustAnchors,
    chain,
    certificates: intermediates,
    crls: params.crls,
    crlIndex: params.crlIndex,
    at: params.at,
    revocation: params.revocation,
    ...(params.revocationSources ? { revocationSources: params.revocationSources } : {}),
    ...(params.ocspResponses ? { ocspResponses: params.ocspResponses } : {}),
  });
}

export interface ValidateJpkiAsyncParams extends Omit<ValidateJpkiParams, "ocspResponses"> {
  /** where CRLs come from: those the path's certificates name are fetched (or revalidated) before validating */
  readonly crlSource?: CrlCache;
  /** where OCSP answers come from (with "ocsp" in revocationSources): each certificate's responder is asked first */
  readonly ocspSource?: OcspClient;
}

/**
 * `validateJpki` with revocation information fetched: the path is built, then the CRLs its certificates name
 * (full, partition and the delta CRLs of freshestCRL) are gathered through `crlSource` (cached, conditional GET)
 * and, with "ocsp" among `revocationSources`, OCSP answers through `ocspSource`; then the synchronous engine runs
 * over them and any `crls` given. `crlFetches` and `ocspResponses` say what each exchange came to (a failure is
 * not an exception: the engine's revocation mode decides).
 */
export async function validateJpkiAsync(params: ValidateJpkiAsyncParams): Promise<JpkiValidationResult & RevocationFetches> {
  const intermediates = params.intermediates ?? [];
  // The first candidate path's revocation information first; the other candidates' only when that path does not
  // validate (an expired cross-certificate beside a current one): a rejected certificate in a mesh of
  // cross-certificates costs no fetches for paths that were never in question.
  const candidates = buildPaths({ endEntity: params.certificate, intermediates, trustAnchors: params.trustAnchors });
  const paths = candidates.length ? candidates : [[Buffer.from(params.certificate)]];
  const sources = params.revocationSources ?? ["crl"];
  const gatherFor = async (group: readonly Buffer[][]) => {
    const [crl, ...ocsp] = await Promise.all([
      gatherRevocation({ ...params, chain: [...new Set(group.flat())], revocationSources: sources.filter((s) => s === "crl") }),
      ...(sources.includes("ocsp") ? group.map((chain) => gatherRevocation({ ...params, chain, revocationSources: ["ocsp"] })) : []),
    ]);
    return { crls: crl!.crls, crlFetches: crl!.crlFetches, ocspResponses: ocsp.flatMap((g) => g.ocspResponses) };
  };
  const { crlSource, ocspSource: _ocsp, ...rest } = params;
  // CRLs parsed once: the CRL source's index, else the caller's (JpkiVerifier's for its local CRLs)
  const crlIndex = crlSource?.index ?? params.crlIndex;
  const run = (g: Awaited<ReturnType<typeof gatherFor>>) => validateJpki({ ...rest, crls: [...(params.crls ?? []), ...g.crls], crlIndex, ocspResponses: g.ocspResponses });
  let gathered = await gatherFor(paths.slice(0, 1));
  let r = run(gathered);
  if (r.status !== "valid" && paths.length > 1 && !(r.status === "revoked" && r.index === 0)) {
    const more = await gatherFor(paths.slice(1));
    gathered = { crls: [...gathered.crls, ...more.crls], crlFetches: [...gathered.crlFetches, ...more.crlFetches], ocspResponses: [...gathered.ocspResponses, ...more.ocspResponses] };
    r = run(gathered);
  }
  return { ...r, crlFetches: gathered.crlFetches, ocspResponses: gathered.ocspResponses };
}
