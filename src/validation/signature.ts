/**
 * Signature checks for certificates and CRLs (RFC 5280 §6.1.3(a)(1), §6.3.3(g)), over the exact signed bytes,
 * with the working public key of §6.1 — including DSA parameters inherited from the issuer (§6.1.4(f)).
 */
import { constants, createPublicKey, verify, type KeyObject } from "node:crypto";
import { seq } from "../pki/der.js";
import { ByteTable, decodeInteger, decodeOid, items, sameTlv, type Tlv } from "./asn1.js";
import type { Certificate, SubjectPublicKey } from "./certificate.js";

const DSA_KEY = "1.2.840.10040.4.1";

/** signatureAlgorithm OID → Node digest name (null: the key fixes it, as for EdDSA) */
const SIGNATURE_DIGEST: Record<string, string | null> = {
  "1.2.840.113549.1.1.5": "sha1",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10040.4.3": "sha1",
  "2.16.840.1.101.3.4.3.1": "sha224",
  "2.16.840.1.101.3.4.3.2": "sha256",
  "1.2.840.10045.4.1": "sha1",
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.3.101.112": null,
  "1.3.101.113": null,
};

/** The working public key: the key with the parameters it inherits when its own are absent (§6.1.4(d)–(f)). */
export interface WorkingKey {
  readonly spki: SubjectPublicKey;
  /** parameters in force: the key's own, or inherited from the issuer for the same algorithm */
  readonly parameters?: Tlv;
}

export function workingKeyOf(spki: SubjectPublicKey, previous?: WorkingKey): WorkingKey {
  if (spki.parameters) return { spki, parameters: spki.parameters };
  if (previous && previous.spki.algorithm === spki.algorithm) return { spki, parameters: previous.parameters };
  return { spki };
}

/**
 * Public keys imported once (createPublicKey parses the DER on every call): the same CA keys
 * verify every validation. By SubjectPublicKeyInfo DER; a few hundred keys, the oldest dropped first.
 */
const KEY_OBJECTS = new Map<string, KeyObject>();
const MAX_KEY_OBJECTS = 256;
/**
 * In front of that map, by the parsed SubjectPublicKeyInfo object itself: a certificate parsed once (a trust
 * anchor, a configured intermediate) finds its KeyObject without encoding its 300-octet key as a map key. The
 * object is immutable and made from the DER the KeyObject was made from, so it cannot name another key.
 */
const KEY_BY_SPKI = new WeakMap<SubjectPublicKey, KeyObject>();

/** A stable string for a SubjectPublicKeyInfo (its DER in base64), made once per parsed key. */
const SPKI_IDS = new WeakMap<SubjectPublicKey, string>();

export function spkiId(spki: SubjectPublicKey): string {
  let id = SPKI_IDS.get(spki);
  if (id === undefined) SPKI_IDS.set(spki, (id = spki.der.toString("base64")));
  return id;
}

/**
 * The KeyObject of a SubjectPublicKeyInfo, imported once per key (by its DER) and reused: createPublicKey costs
 * several RSA verifications (~150 µs for RSA-2048). Throws as createPublicKey does on a key it cannot read.
 */
export function publicKeyObject(spki: SubjectPublicKey): KeyObject {
  return keyObject({ spki });
}

function keyObject(k: WorkingKey): KeyObject {
  if (k.spki.algorithm === DSA_KEY && !k.spki.parameters && k.parameters) {
    // Rebuild the SubjectPublicKeyInfo with the inherited Dss-Parms so the key is usable.
    const [, bits] = items(k.spki.der);
    const der = seq(seq(Buffer.from([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]), k.parameters.der), bits!.der);
    return createPublicKey({ key: der, format: "der", type: "spki" });
  }
  let key = KEY_BY_SPKI.get(k.spki);
  if (key) return key;
  const id = spkiId(k.spki);
  key = KEY_OBJECTS.get(id);
  if (!key) {
    key = createPublicKey({ key: k.spki.der, format: "der", type: "spki" });
    if (KEY_OBJECTS.size >= MAX_KEY_OBJECTS) KEY_OBJECTS.delete(KEY_OBJECTS.keys().next().value!);
    KEY_OBJECTS.set(id, key);
  }
  KEY_BY_SPKI.set(k.spki, key);
  return key;
}

const RSASSA_PSS = "1.2.840.113549.1.1.10";
const MGF1 = "1.2.840.113549.1.1.8";
const HASH: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

interface Scheme {
  readonly digest: string | null;
  /** RSASSA-PSS: the salt length; the MGF1 hash is the message hash (other combinations are not supported) */
  readonly pssSaltLength?: number;
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): hash [0] DEFAULT sha1, maskGen [1] DEFAULT mgf1SHA1, saltLength [2]
 * DEFAULT 20, trailerField [3] DEFAULT 1.
 */
function pssScheme(params: Tlv | undefined): Scheme | undefined {
  let digest = "sha1";
  let mgfDigest = "sha1";
  let saltLength = 20;
  for (const f of params && params.tag === 0x30 ? items(params) : []) {
    const [inner] = items(f);
    if (!inner) return undefined;
    if (f.tag === 0xa0) {
      const h = HASH[decodeOid(items(inner)[0]!)];
      if (!h) return undefined;
      digest = h;
    } else if (f.tag === 0xa1) {
      const [mgf, mgfParams] = items(inner);
      if (!mgf || decodeOid(mgf) !== MGF1 || !mgfParams) return undefined;
      const h = HASH[decodeOid(items(mgfParams)[0]!)];
      if (!h) return undefined;
      mgfDigest = h;
    } else if (f.tag === 0xa2) {
      // a length, 0 or more: node reads -1 as "the digest's length" and -2 as "any length", so a negative
      // saltLength taken as given verified signatures of any salt
      const n = decodeInteger(inner);
      if (n < 0n || n > 0xffffn) return undefined;
      saltLength = Number(n);
    }
    else if (f.tag === 0xa3 && decodeInteger(inner) !== 1n) return undefined;
  }
  return mgfDigest === digest ? { digest, pssSaltLength: saltLength } : undefined;
}

/** Schemes by AlgorithmIdentifier DER: a handful of algorithms, decoded once each. */
const SCHEMES = new ByteTable<Scheme | null>(64);

function schemeOf(algorithm: Tlv): Scheme | undefined {
  const known = SCHEMES.get(algorithm, true);
  if (known !== undefined) return known ?? undefined;
  const scheme = decodeScheme(algorithm);
  SCHEMES.set(algorithm, true, scheme ?? null);
  return scheme;
}

function decodeScheme(algorithm: Tlv): Scheme | undefined {
  try {
    const [id, params] = items(algorithm);
    const oid = decodeOid(id!);
    if (oid === RSASSA_PSS) return pssScheme(params);
    const digest = SIGNATURE_DIGEST[oid];
    return digest === undefined ? undefined : { digest };
  } catch {
    return undefined;
  }
}

/** The signature algorithms this engine checks: RSA PKCS#1 v1.5 and PSS, DSA, ECDSA, EdDSA. */
export function signatureAlgorithmSupported(algorithm: Tlv): boolean {
  return schemeOf(algorithm) !== undefined;
}

/** true when `signature` over `data` verifies under the working key; false for a bad or unsupported signature. */
export function verifySignature(data: Buffer, algorithm: Tlv, signature: Buffer, key: WorkingKey): boolean {
  try {
    const scheme = schemeOf(algorithm);
    if (!scheme) return false;
    const k = keyObject(key);
    if (scheme.pssSaltLength !== undefined) {
      return verify(scheme.digest, data, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.pssSaltLength }, signature);
    }
    return verify(scheme.digest, data, k, signature);
  } catch {
    return false;
  }
}

/**
 * Certificate signatures remembered for certificates parsed once and shared across validations (trust anchors,
 * intermediate and configured CA certificates: validate.ts marks them with `shareCertificate`). That these exact
 * octets verify under this issuer key is a fact that never changes, so it is checked once per (certificate, key):
 * the Certificate object stands for its DER (the parse cache finds it by comparing the DER octet for octet), the
 * key for its SubjectPublicKeyInfo DER and inherited parameters. Certificates parsed per call — the end entity
 * always — are not marked: their signature is verified on every call, once (withinOneValidation).
 */
const SHARED_SIGNATURES = new WeakMap<Certificate, Map<string, boolean>>();
/** keys remembered per certificate: more than a CA certificate is ever checked against (rollovers, cross-certificates) */
const MAX_KEYS_PER_CERTIFICATE = 16;

export function shareCertificate(cert: Certificate): void {
  if (!SHARED_SIGNATURES.has(cert)) SHARED_SIGNATURES.set(cert, new Map());
}

/**
 * A certificate signature the caller has verified already — off the event loop, on libuv's thread pool
 * (verifyCertificateAsync): the engine takes its verdict for the same signed octets, the same signature
 * algorithm, the same signature and the same issuer key instead of verifying again. Anything else is verified
 * as always, so a verdict can only stand for the very check it records.
 */
export interface SignatureVerdict {
  readonly tbs: Buffer;
  /** the certificate's outer signatureAlgorithm, DER */
  readonly algorithm: Buffer;
  readonly signature: Buffer;
  /** the issuer's SubjectPublicKeyInfo, DER */
  readonly spki: Buffer;
  readonly ok: boolean;
}

/** The verdicts of the validation running now (the engine is synchronous: one call at a time on a thread). */
let callVerdicts: readonly SignatureVerdict[] | undefined;

/** Runs `f` (a synchronous validation) with `verdicts` taken in place of verifying those signatures again. */
export function withSignatureVerdicts<T>(verdicts: readonly SignatureVerdict[] | undefined, f: () => T): T {
  if (!verdicts?.length) return f();
  const outer = callVerdicts;
  callVerdicts = verdicts;
  try {
    return f();
  } finally {
    callVerdicts = outer;
  }
}

function verdictFor(cert: Certificate, key: WorkingKey): boolean | undefined {
  if (!callVerdicts || key.parameters) return undefined;
  return matchingVerdict(callVerdicts, cert, key);
}

/** The verdict among `verdicts` for exactly this check: the same signed octets, algorithm, signature and key. */
function matchingVerdict(verdicts: readonly SignatureVerdict[], cert: Certificate, key: WorkingKey): boolean | undefined {
  for (const v of verdicts) {
    if (v.signature.equals(cert.signature) && v.spki.equals(key.spki.der) && v.algorithm.equals(cert.signatureAlgorithm.der) && v.tbs.equals(cert.tbs)) return v.ok;
  }
  return undefined;
}

/**
 * Verifies `cert`'s signature under `issuer`'s key on libuv's thread pool, so a server's event loop goes on
 * meanwhile (RSA PKCS#1 v1.5 and ECDSA/EdDSA schemes node verifies in one call; PSS and DSA-parameter
 * inheritance are left to the engine: undefined). The verdict is for withSignatureVerdicts.
 */
export function verifyCertificateAsync(cert: Certificate, issuer: SubjectPublicKey): Promise<SignatureVerdict | undefined> {
  const scheme = schemeOf(cert.signatureAlgorithm);
  if (!scheme || scheme.pssSaltLength !== undefined || issuer.algorithm === DSA_KEY) return Promise.resolve(undefined);
  let key: KeyObject;
  try {
    key = keyObject({ spki: issuer });
  } catch {
    return Promise.resolve(undefined);
  }
  const done = (ok: boolean): SignatureVerdict => ({ tbs: cert.tbs, algorithm: cert.signatureAlgorithm.der, signature: cert.signature, spki: issuer.der, ok });
  return new Promise((resolve) => {
    try {
      verify(scheme.digest, cert.tbs, key, cert.signature, (err, ok) => resolve(done(!err && ok)));
    } catch {
      resolve(done(false)); // node refuses the signature or key outright: as verifySignature answers
    }
  });
}

/**
 * The signatures of certificates parsed per call (the end entity) checked so far in the validation running now
 * (withinOneValidation), or undefined outside one. validateJpki builds the path (build.ts, which verifies the end
 * entity to find its issuer) and then validates it (path.ts §6.1.3, which verifies it again, parsed afresh): two
 * RSA verifications of the same octets under the same key, each about a fifth of a validation. Kept for one
 * call only: a later call verifies again.
 */
let callChecks: CallCheck[] | undefined;

/**
 * A check made in the validation running now: as a SignatureVerdict, but the algorithm kept as the TLV it was
 * read as and compared where it lies (sameTlv), not as a view made for each check that is rarely asked again.
 */
interface CallCheck {
  readonly tbs: Buffer;
  readonly algorithm: Tlv;
  readonly signature: Buffer;
  readonly spki: Buffer;
  readonly ok: boolean;
}

function matchingCheck(checks: readonly CallCheck[], cert: Certificate, key: WorkingKey): boolean | undefined {
  for (const v of checks) {
    if (v.signature.equals(cert.signature) && v.spki.equals(key.spki.der) && sameTlv(v.algorithm, cert.signatureAlgorithm) && v.tbs.equals(cert.tbs)) return v.ok;
  }
  return undefined;
}

/**
 * The certificates parsed per call (the end entity) in the validation running now, with the bytes each was read
 * from, or undefined outside one. validateJpki reads the end entity for its JPKI facts, path building for its
 * issuer (build.ts pathCandidates), path processing once more (validate.ts validatePath): three parses of the same
 * octets, each ≈ 7–9 % of a validation on the validation API's engine thread (bench api, perf, 2026-12-06). Kept
 * for one call only, as callChecks: a later call parses again.
 */
let callParsed: Array<{ readonly from: Uint8Array; readonly length: number; readonly cert: Certificate }> | undefined;

/**
 * The copies callParsed compares with, one per certificate parsed in the validation running now (the k-th parse
 * uses COPIES[k]): kept from call to call and overwritten, not allocated per call — a Buffer of a certificate's
 * size costs about 2 % of a validation to make — and zeroed when the validation ends (an end entity's certificate
 * carries a resident's four items; they are not left lying in memory between calls).
 */
const COPIES: Buffer[] = [];

/** For tests: every copy callParsed kept is zero (no certificate's octets held between validations). */
export function perCallCopiesCleared(): boolean {
  return COPIES.every((c) => c.every((x) => x === 0));
}

/** Runs `f` (one synchronous validation) with each per-call certificate parsed and its signature verified at most once. */
export function withinOneValidation<T>(f: () => T): T {
  if (callChecks) return f(); // nested (validateJpki → validatePath): the outer call's checks
  callChecks = [];
  const parsed: NonNullable<typeof callParsed> = (callParsed = []);
  try {
    return f();
  } finally {
    callChecks = undefined;
    callParsed = undefined;
    for (let k = 0; k < parsed.length; k++) COPIES[k]!.fill(0, 0, parsed[k]!.length);
  }
}

/**
 * `der` parsed by `parse`, once per validation: within withinOneValidation the same certificate is given again for
 * the same octets — asked by the Buffer it was read from, or by its own `der` (what the path builder hands on) —
 * and the bytes are compared on every use with a copy taken at the parse (the parse's `der` is a view of the
 * caller's memory, so it changes with it), so a Buffer changed in place is parsed again. Outside one, parsed each
 * time. A parse that throws is not kept (it throws again).
 */
export function parsedOncePerValidation(der: Uint8Array, parse: (der: Uint8Array) => Certificate): Certificate {
  if (!callParsed) return parse(der);
  for (let k = 0; k < callParsed.length; k++) {
    const p = callParsed[k]!;
    if ((p.from === der || p.cert.der === der) && p.length === der.length && COPIES[k]!.compare(der, 0, p.length, 0, p.length) === 0) return p.cert;
  }
  const cert = parse(der);
  const k = callParsed.length;
  let copy = COPIES[k];
  if (!copy || copy.length < der.length) COPIES[k] = copy = Buffer.alloc(Math.max(der.length, 2048));
  copy.set(der);
  callParsed.push({ from: der, length: der.length, cert });
  return cert;
}

/** `cert`'s signature verifies under `key` (RFC 5280 §6.1.3(a)(1)); remembered for shared certificates. */
export function certificateVerifies(cert: Certificate, key: WorkingKey): boolean {
  const known = SHARED_SIGNATURES.get(cert);
  if (!known) {
    const given = verdictFor(cert, key);
    if (given !== undefined) return given;
    if (!callChecks || key.parameters) return verifySignature(cert.tbs, cert.signatureAlgorithm, cert.signature, key);
    const checked = matchingCheck(callChecks, cert, key);
    if (checked !== undefined) return checked;
    const ok = verifySignature(cert.tbs, cert.signatureAlgorithm, cert.signature, key);
    callChecks.push({ tbs: cert.tbs, algorithm: cert.signatureAlgorithm, signature: cert.signature, spki: key.spki.der, ok });
    return ok;
  }
  const id = key.parameters ? `${spkiId(key.spki)}/${key.parameters.der.toString("base64")}` : spkiId(key.spki);
  let ok = known.get(id);
  if (ok === undefined) {
    ok = verifySignature(cert.tbs, cert.signatureAlgorithm, cert.signature, key);
    if (known.size >= MAX_KEYS_PER_CERTIFICATE) known.clear();
    known.set(id, ok);
  }
  return ok;
}
