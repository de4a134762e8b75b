/**
 * A CA's delegated OCSP signing certificate, RFC 6960 §4.2.2.2: issued by the CA to a key of its own, with
 * extendedKeyUsage id-kp-OCSPSigning and id-pkix-ocsp-nocheck (§4.2.2.2.1: clients do not ask about the
 * responder's own status, so it is short-lived instead: days, not years). The CA key stays with the process
 * that runs the CRL schedule; the OCSP responders sign with this key only. Its key is stored encrypted at rest
 * exactly like the CA keys (pki/key-wrap.ts, the workspace's shared salt), under the responder passphrase.
 *
 * Profile (ours): subject = the CA's DN + CN=OCSP Responder; keyUsage critical {digitalSignature};
 * extendedKeyUsage {id-kp-OCSPSigning}; id-pkix-ocsp-nocheck (NULL); AKI; SKI; no CDP, no AIA.
 */
import { X509Certificate, verify as nodeVerify } from "node:crypto";
import { JpkiError } from "../errors.js";
import { certificateParts, children, extension, nul, readHeader } from "../pki/der.js";
import { encryptPrivateKey, generateRsaKey, strongKeyWrapParams } from "../pki/keys.js";
import { randomSerial, serialHex } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { authorityKeyIdentifier, extKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { encodeName, ocspResponderSubject } from "../profile/names.js";
import { EXT_OID, KP_OID } from "../profile/oids.js";
import type { OcspResponderRecord, Store } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { CertificationAuthority } from "./authority.js";
import { assembleCertificate, encodeTbs } from "./certificate.js";

export interface OcspSignerPolicy {
  /** how long a signing certificate is valid; default 4 days */
  readonly validityMs?: number;
  /** renew when less than this remains; default half the validity. Must exceed the responses' lifetime. */
  readonly renewBeforeMs?: number;
}

export const DEFAULT_OCSP_SIGNER_VALIDITY_MS = 4 * 86_400_000;
/** notBefore is set this far back: a verifier whose clock runs a little behind still accepts a fresh certificate. */
const BACKDATE_MS = 5 * 60_000;

export function ocspSignerPolicy(p: OcspSignerPolicy = {}): Required<OcspSignerPolicy> {
  const validityMs = p.validityMs ?? DEFAULT_OCSP_SIGNER_VALIDITY_MS;
  const renewBeforeMs = p.renewBeforeMs ?? Math.floor(validityMs / 2);
  if (!Number.isInteger(validityMs) || validityMs < 3600_000 || validityMs > 90 * 86_400_000) {
    throw new JpkiError("ERR_CONFIG_INVALID", "the OCSP signing certificate's validity must be from 1 hour to 90 days");
  }
  if (!Number.isInteger(renewBeforeMs) || renewBeforeMs <= 0 || renewBeforeMs >= validityMs) {
    throw new JpkiError("ERR_CONFIG_INVALID", "OCSP signing certificates must be renewed some time before they expire, and after they are issued");
  }
  return { validityMs, renewBeforeMs };
}

/** Issues a new OCSP signing certificate and key for `ca`; the key leaves this function only encrypted. */
export async function issueOcspSigner(ca: CertificationAuthority, o: { now: Date; passphrase: string; policy?: OcspSignerPolicy }): Promise<OcspResponderRecord> {
  const { validityMs } = ocspSignerPolicy(o.policy);
  const key = await generateRsaKey(2048);
  const signer = new SoftwareSigner(key);
  const now = Math.floor(o.now.getTime() / 1000) * 1000;
  const caNotBefore = new Date(ca.certificate.validFrom).getTime();
  const notBefore = new Date(Math.max(now - BACKDATE_MS, caNotBefore));
  const notAfter = new Date(Math.min(now + validityMs, ca.notAfter.getTime()));
  const serial = randomSerial();
  const tbs = encodeTbs({
    serial,
    signatureAlgorithm: ca.signer.algorithmIdentifier,
    issuer: ca.subjectName,
    notBefore,
    notAfter,
    subject: encodeName(ocspResponderSubject(ca.prefecture.romaji, ca.purpose)),
    spki: signer.spki,
    extensions: [
      extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"])),
      extension(EXT_OID.extKeyUsage, false, extKeyUsage([KP_OID.ocspSigning])),
      extension(EXT_OID.ocspNoCheck, false, nul()),
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(ca.keyId)),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(signer.spki))),
    ],
  });
  const der = assembleCertificate(tbs, ca.signer.algorithmIdentifier, await ca.signer.sign(tbs));
  assertOcspSigner(ca, der, signer.spki);
  const params = strongKeyWrapParams(ca.record.encryptedKeyPem);
  return {
    caId: ca.id,
    serial: serialHex(serial),
    certificateDer: der,
    encryptedKeyPem: encryptPrivateKey(key, o.passphrase, params),
    notBefore,
    notAfter,
  };
}

/** Check what you sign (STYLE.md §9): it re-parses, names the CA, holds the key, verifies, and says OCSP signing. */
function assertOcspSigner(ca: CertificationAuthority, der: Buffer, spki: Buffer): void {
  let ok = false;
  try {
    const parts = certificateParts(der);
    const [tbs, , sigBits] = children(der);
    const x = new X509Certificate(der);
    ok =
      parts.issuer.equals(ca.subjectName) &&
      parts.spki.equals(spki) &&
      x.checkIssued(ca.certificate) &&
      nodeVerify("sha256", tbs!, ca.certificate.publicKey, sigBits!.subarray(readHeader(sigBits!).headerLength + 1)) &&
      (x.keyUsage ?? []).includes(KP_OID.ocspSigning);
  } catch {
    ok = false;
  }
  if (!ok) throw new JpkiError("ERR_PROFILE_VIOLATION", `the OCSP signing certificate of CA ${ca.id} did not re-parse or verify: nothing was stored; check the CA key`);
}

/**
 * Issues a signing certificate for every CA that has none, or whose certificate expires within the renewal
 * margin, and stores it. Returns what it issued. Run by the process holding the CA keys (the CRL schedule).
 */
export async function renewOcspSigners(
  store: Store,
  cas: readonly CertificationAuthority[],
  o: { now: Date; passphrase: string; policy?: OcspSignerPolicy },
): Promise<OcspResponderRecord[]> {
  const { renewBeforeMs } = ocspSignerPolicy(o.policy);
  const current = new Map((await store.ocspResponders()).map((r) => [r.caId, r]));
  const issued: OcspResponderRecord[] = [];
  for (const ca of cas) {
    const have = current.get(ca.id);
    if (have && have.notAfter.getTime() - o.now.getTime() > renewBeforeMs && have.notBefore.getTime() <= o.now.getTime() + BACKDATE_MS) continue;
    const rec = await issueOcspSigner(ca, o);
    await store.putOcspResponder(rec);
    issued.push(rec);
  }
  return issued;
}

/**
 * Keeps every CA's OCSP signing certificate current: the job of the process that holds the CA keys (the one
 * running the CRL schedule). Opens the CAs once; each tick reads the current certificates (one query) and issues
 * for the CAs that need one.
 */
export class OcspSignerRenewal {
  readonly #ws: Workspace;
  readonly #caPassphrase: string;
  readonly #responderPassphrase: string;
  readonly #policy: Required<OcspSignerPolicy>;
  #cas: CertificationAuthority[] = [];
  #nextCheck = -Infinity;

  constructor(ws: Workspace, o: { caPassphrase: string; responderPassphrase: string; policy?: OcspSignerPolicy }) {
    this.#ws = ws;
    this.#caPassphrase = o.caPassphrase;
    this.#responderPassphrase = o.responderPassphrase;
    this.#policy = ocspSignerPolicy(o.policy);
  }

  /** Opens every CA (a wrong passphrase fails here) and issues what is due. */
  async preflight(): Promise<OcspResponderRecord[]> {
    this.#cas = (await this.#ws.store.listCas()).map((rec) => CertificationAuthority.open(rec, this.#caPassphrase, this.#ws.config));
    return this.tick();
  }

  /** Issues what is due; looks at the store at most once a minute (renewal margins are hours or days). */
  async tick(): Promise<OcspResponderRecord[]> {
    const now = this.#ws.clock.now().getTime();
    if (now < this.#nextCheck) return [];
    this.#nextCheck = now + 60_000;
    const known = new Set(this.#cas.map((c) => c.id));
    const recs = await this.#ws.store.listCas();
    // a CA added since (jpki ca init by another process)
    for (const rec of recs) if (!known.has(rec.id)) this.#cas.push(CertificationAuthority.open(rec, this.#caPassphrase, this.#ws.config));
    return renewOcspSigners(this.#ws.store, this.#cas, { now: this.#ws.clock.now(), passphrase: this.#responderPassphrase, policy: this.#policy });
  }
}
