/**
 * A prefecture's certification authority (都道府県単位認証局): its self-signed certificate (profile in
 * shared/spec/JPKI.md "CA certificates"), its signer, and the per-CA template every issued certificate
 * and CRL reuses. One CA per prefecture and purpose: signature (署名用) and user authentication (利用者証明用).
 */
import { X509Certificate, createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import { JpkiError } from "../errors.js";
import { certificateCarries, certificateParts, children, extension, readHeader } from "../pki/der.js";
import { decryptPrivateKey, encryptPrivateKey, generateRsaKey, type KeyWrapParams } from "../pki/keys.js";
import { generatePkcs11Key, openPkcs11Signer } from "../pki/pkcs11.js";
import { randomSerial, timeOrderedSerial } from "../pki/serial.js";
import { SoftwareSigner, type Signer } from "../pki/signer.js";
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  generalNamesDirName,
  keyIdentifier,
  keyIdentifierHex,
  keyUsage,
  subjectKeyIdentifier,
} from "../profile/extensions.js";
import {
  authenticationSubject,
  caSubject,
  caSubjectJa,
  crlPartitionName,
  encodeName,
  ISSUER_ALT_NAME,
  opaqueId,
  signatureSubject,
} from "../profile/names.js";
import { assertCaCertificate } from "../profile/ca-check.js";
import { EXT_OID, POLICY_OID } from "../profile/oids.js";
import { encodeFourItems } from "../profile/four-items.js";
import type { CertificateType, FourItems } from "../profile/types.js";
import type { CaRecord } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { assembleCertificate, encodeTbs, writeCertificate, writeEndEntityTbs } from "./certificate.js";
import { freshestCrlFor } from "../crl/delta.js";
import { caId, caUrls, type CaUrls } from "./ids.js";
import { prefecture, type Prefecture } from "./prefectures.js";
import { caValidity } from "./validity.js";

export { PURPOSE_SUFFIX, caId, caUrls, parseCaId, type CaUrls } from "./ids.js";
export { assertCaCertificate } from "../profile/ca-check.js";


/** Where a CA's key is generated instead of in software: a PKCS#11 token (pki/pkcs11.ts). */
export interface CaKeyToken {
  /** the PKCS#11 module (shared library) */
  readonly modulePath: string;
  /** the token's label */
  readonly token: string;
}

/** The label a CA's key objects carry in a token: says whose key it is to anyone listing the token. */
export function tokenKeyLabel(id: string): string {
  return `jpki CA ${id}`;
}

/**
 * Creates a new CA key and self-signed certificate. A software key leaves this function only encrypted; with
 * `token`, the key pair is generated inside the token and only its reference (CaRecord.keyRef) is returned.
 */
export async function createCaRecord(opts: {
  prefectureCode: string;
  purpose: CertificateType;
  /** encrypts a software key (unused with `token`) */
  passphrase: string;
  config: WorkspaceConfig;
  now: Date;
  /** the workspace's shared PBKDF2 salt and iterations (see pki/key-wrap.ts); a fresh salt when omitted */
  keyWrap?: KeyWrapParams;
  /** generate the key in this PKCS#11 token instead */
  token?: CaKeyToken;
  /**
   * The key generation (ca/rollover.ts): 1, the default, for `jpki ca init`; a rollover's new key gets the next.
   * Every generation keeps the same subject name, so the key identifiers (SKI/AKI) tell the keys apart.
   */
  generation?: number;
}): Promise<CaRecord> {
  const pref = prefecture(opts.prefectureCode);
  const id = caId(pref.code, opts.purpose, opts.generation ?? 1);
  let signer: Signer;
  let encryptedKeyPem = "";
  let keyRef: string | undefined;
  if (opts.token) {
    const s = generatePkcs11Key({ modulePath: opts.token.modulePath, token: opts.token.token, object: tokenKeyLabel(id) });
    signer = s;
    keyRef = s.uri;
  } else {
    const key = await generateRsaKey(2048);
    encryptedKeyPem = encryptPrivateKey(key, opts.passphrase, opts.keyWrap);
    signer = new SoftwareSigner(key);
  }
  const keyId = keyIdentifier(signer.spki);
  const name = encodeName(caSubject(pref.romaji, opts.purpose));
  const { notBefore: nb, notAfter } = caValidity(opts.now, opts.config.caValidityYears);
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: name,
    notBefore: nb,
    notAfter,
    subject: name,
    spki: signer.spki,
    extensions: [
      extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
      extension(EXT_OID.subjectAltName, false, generalNamesDirName(encodeName(caSubjectJa(pref.kanji, opts.purpose)))),
      extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
      extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(name, [caUrls(opts.config.baseUrl, id).arl])),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyId)),
    ],
  });
  const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
  return { id, prefectureCode: pref.code, purpose: opts.purpose, certificateDer: der, encryptedKeyPem, keyId, createdAt: nb, ...(keyRef ? { keyRef } : {}) };
}

/**
 * The signer of a stored CA: its token key (keyRef), or its software key decrypted with the passphrase. The
 * token key's public half is checked against the CA certificate's, and its module must be one of
 * `pkcs11Modules` (the workspace's config: the store does not choose what this host loads).
 */
export function openCaSigner(record: CaRecord, passphrase: string, pkcs11Modules: readonly string[]): Signer {
  if (record.keyRef) return openPkcs11Signer(record.keyRef, Buffer.from(certificateParts(record.certificateDer).spki), pkcs11Modules, `the key of CA ${record.id}`);
  return new SoftwareSigner(decryptPrivateKey(record.encryptedKeyPem, passphrase, `the key of CA ${record.id}`));
}

/** What a CA certifies for one application, after the registry check. */
export interface CertifyInput {
  readonly type: CertificateType;
  readonly municipalityCode: string;
  readonly municipalityRomaji: string;
  readonly fourItems: FourItems;
  readonly spki: Buffer;
  readonly requestedAt: Date;
  readonly counterId: string;
  readonly notAfter: Date;
}

export interface Certified {
  readonly serial: Buffer;
  readonly der: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** What every certificate a CA issues in one municipality shares (CertificationAuthority#municipalityParts). */
interface MunicipalityParts {
  readonly subjectHead: Buffer;
  readonly extensionsAfter: Buffer;
}

let sequenceCounter = Math.floor(Math.random() * 100000);

export class CertificationAuthority {
  readonly record: CaRecord;
  readonly prefecture: Prefecture;
  readonly certificate: X509Certificate;
  readonly subjectName: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly signer: Signer;
  readonly urls: CaUrls;
  readonly #config: WorkspaceConfig;
  readonly #publicKey: KeyObject;
  readonly #municipalities = new Map<string, MunicipalityParts>();
  // Extensions that are the same in every certificate this CA issues, encoded once; `before`: those that come
  // before subjectAltName, concatenated.
  readonly #fixed: { before: Buffer; issuerAltName: Buffer; aia: Buffer; aki: Buffer; freshest: Buffer | undefined };

  private constructor(record: CaRecord, signer: Signer, config: WorkspaceConfig) {
    this.record = record;
    this.prefecture = prefecture(record.prefectureCode);
    this.certificate = new X509Certificate(record.certificateDer);
    this.subjectName = Buffer.from(certificateParts(record.certificateDer).subject);
    this.notAfter = new Date(this.certificate.validTo);
    this.notBefore = new Date(this.certificate.validFrom);
    this.signer = signer;
    this.#config = config;
    this.#publicKey = createPublicKey({ key: signer.spki, format: "der", type: "spki" });
    this.urls = caUrls(config.baseUrl, record.id);
    const policy =
      record.purpose === "authentication" ? POLICY_OID.authentication : config.policy === "test" ? POLICY_OID.signatureTest : POLICY_OID.signature;
    this.#fixed = {
      before: Buffer.concat([
        extension(EXT_OID.keyUsage, true, keyUsage(record.purpose === "signature" ? ["digitalSignature", "nonRepudiation"] : ["digitalSignature"])),
        extension(EXT_OID.certificatePolicies, false, certificatePolicies(policy, config.cpsUri)),
      ]),
      issuerAltName: extension(EXT_OID.issuerAltName, false, generalNamesDirName(encodeName(ISSUER_ALT_NAME))),
      aia: extension(EXT_OID.authorityInfoAccess, false, authorityInfoAccess({ ocsp: this.urls.ocsp, caIssuers: this.urls.caCertificate })),
      aki: extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(record.keyId)),
      // While the workspace publishes delta CRLs, certificates say where (RFC 5280 §4.2.1.15): a verifier such as
      // OpenSSL (-use_deltas) looks for a delta only when the certificate or its base CRL carries freshestCRL.
      freshest: freshestCrlFor(config, record.id),
    };
  }

  /**
   * Opens a stored CA with its passphrase — or, for a CA whose key is in a PKCS#11 token (record.keyRef), by
   * logging in to the token with the configured PIN (pki/pkcs11.ts; the passphrase is not used). The
   * certificate is checked against the CA profile first, so a damaged or foreign CA fails here, not at the
   * first issuance.
   */
  static open(record: CaRecord, passphrase: string, config: WorkspaceConfig): CertificationAuthority {
    assertCaCertificate(record);
    return CertificationAuthority.withSigner(record, openCaSigner(record, passphrase, config.pkcs11Modules), config);
  }

  /** A stored CA whose key signs through `signer` (a software key, a token): the signer must hold the CA's key. */
  static withSigner(record: CaRecord, signer: Signer, config: WorkspaceConfig): CertificationAuthority {
    assertCaCertificate(record);
    if (!signer.spki.equals(certificateParts(record.certificateDer).spki)) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the key of CA ${record.id} does not match its certificate: the workspace is damaged`);
    }
    return new CertificationAuthority(record, signer, config);
  }

  get id(): string {
    return this.record.id;
  }

  get keyId(): Buffer {
    return this.record.keyId;
  }

  get purpose(): CertificateType {
    return this.record.purpose;
  }

  /**
   * What every certificate of one municipality shares, encoded once: the subject's RDNs before its CN, and the
   * extensions after subjectAltName — the municipality partition's distribution point among them (one per
   * municipality, shared/spec/JPKI.md) — up to subjectKeyIdentifier.
   */
  #municipalityParts(municipalityCode: string, municipalityRomaji: string): MunicipalityParts {
    let parts = this.#municipalities.get(municipalityCode);
    if (!parts) {
      const cdp = extension(
        EXT_OID.cRLDistributionPoints,
        false,
        crlDistributionPoints(encodeName(crlPartitionName(this.prefecture.romaji, municipalityRomaji, this.purpose)), [this.urls.partition(municipalityCode)]),
      );
      const rdns = this.purpose === "signature" ? signatureSubject(this.prefecture.romaji, municipalityRomaji, "") : authenticationSubject("");
      const head = encodeName(rdns.slice(0, -1)); // all but the CN, which differs per certificate
      const f = this.#fixed;
      parts = {
        subjectHead: head.subarray(readHeader(head).headerLength),
        extensionsAfter: Buffer.concat([f.issuerAltName, cdp, ...(f.freshest ? [f.freshest] : []), f.aia, f.aki]),
      };
      this.#municipalities.set(municipalityCode, parts);
    }
    return parts;
  }

  /**
   * Builds and signs one end-entity certificate. Nothing is stored here: the caller commits. Extensions in
   * profile order: keyUsage, certificatePolicies, subjectAltName (signature only), issuerAltName,
   * cRLDistributionPoints, freshestCRL (while delta CRLs are published), authorityInfoAccess,
   * authorityKeyIdentifier, subjectKeyIdentifier.
   */
  async certify(input: CertifyInput): Promise<Certified> {
    if (input.type !== this.purpose) {
      throw new JpkiError("ERR_USAGE", `CA ${this.id} issues ${this.purpose} certificates, not ${input.type}`);
    }
    const notBefore = new Date(Math.floor(input.requestedAt.getTime() / 1000) * 1000);
    sequenceCounter = (sequenceCounter + 1) % 100000;
    const parts = this.#municipalityParts(input.municipalityCode, input.municipalityRomaji);
    const serial = timeOrderedSerial(input.requestedAt);
    const tbs = writeEndEntityTbs({
      serial,
      signatureAlgorithm: this.signer.algorithmIdentifier,
      issuer: this.subjectName,
      notBefore,
      notAfter: input.notAfter,
      subjectHead: parts.subjectHead,
      commonName: opaqueId(input.requestedAt, sequenceCounter, input.counterId),
      spki: input.spki,
      extensionsBefore: this.#fixed.before,
      fourItems: input.type === "signature" ? encodeFourItems(input.fourItems) : undefined,
      extensionsAfter: parts.extensionsAfter,
      keyIdHex: keyIdentifierHex(input.spki),
    });
    const der = writeCertificate(tbs, this.signer.algorithmIdentifier, await this.signer.sign(tbs));
    return { serial, der, notBefore, notAfter: input.notAfter };
  }

  /**
   * The per-certificate part of "check what you sign": the DER re-parses, carries the serial, issuer and
   * key we meant, and its signature verifies with this CA's public key (a signer fault, e.g. a token
   * returning garbage, is caught before anything is stored). A self-verifying signer has checked the
   * signature already (Signer.selfVerifying), so it is not verified twice.
   */
  async assertIssued(c: Certified, spki: Buffer): Promise<void> {
    this.assertCarries(c, spki);
    if (this.signer.selfVerifying) return;
    let ok = false;
    try {
      ok = await this.#verifies(c.der);
    } catch {
      ok = false;
    }
    if (!ok) throw this.#notIssued();
  }

  /**
   * assertIssued's field comparisons alone, synchronous: all of assertIssued for a self-verifying signer. Issuance
   * calls it for those signers instead of awaiting assertIssued: an async call's promise and a turn of the microtask
   * queue less per certificate, on the thread that feeds the signers.
   */
  assertCarries(c: Certified, spki: Buffer): void {
    let ok = false;
    try {
      ok = certificateCarries(c.der, this.subjectName, spki, c.serial);
    } catch {
      ok = false;
    }
    if (!ok) throw this.#notIssued();
  }

  #notIssued(): JpkiError {
    return new JpkiError("ERR_PROFILE_VIOLATION", `the certificate signed by CA ${this.id} did not re-parse or verify: nothing was stored; check the CA key`);
  }

  /** Whether a certificate's signature verifies with this CA's key (split out only when the signer does not check its own). */
  #verifies(der: Buffer): Promise<boolean> {
    const [tbs, , sigBits] = children(der);
    return new Promise<boolean>((resolve, reject) =>
      nodeVerify("sha256", tbs!, this.#publicKey, sigBits!.subarray(readHeader(sigBits!).headerLength + 1), (err, v) => (err ? reject(err) : resolve(v))),
    );
  }
}
