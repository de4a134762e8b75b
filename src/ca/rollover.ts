/**
 * CA key rollover (鍵更新; issue 13 point 5): a prefecture CA gets a new key and self-signed certificate, and the
 * two generations certify each other with link certificates, as J-LIS did between its 2015 and 2023 roots —
 * RFC 4210 §4.4 "Root CA key update":
 *   - OldWithNew: the new public key certified by the old key (issuer: the old name and AKI of the old key,
 *     subject: the new name and SKI of the new key). A verifier that trusts only the old root validates
 *     certificates of the new key through it: leaf(new) → OldWithNew → old root.
 *   - NewWithOld: the old public key certified by the new key. A verifier that trusts only the new root validates
 *     certificates the old key issued: leaf(old) → NewWithOld → new root.
 * Both generations keep the same subject name (the name is the CA, the key is its generation), so the key
 * identifiers tell them apart in path building and in CRL matching (each generation's CRLs carry its own AKI).
 *
 * The new generation is a CA record of its own, "13-sig-g2" (ca/ids.ts says why): it issues every new
 * certificate, with its own CRL, delta, partition and ARL URLs, while the old generation keeps its id, answers
 * OCSP and revocations for what it issued, and publishes CRLs until the last of its certificates expires
 * (crl/generate.ts). The link certificates are stored with the new generation in one transaction
 * (Store.putCaRollover), written beside the CA certificates (ca/<subject>.by-<issuer>.crt, .pem) and served
 * where verifiers fetch CA certificates (<baseUrl>/ca/…; server/published.ts).
 */
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { JpkiError } from "../errors.js";
import { certificateParts, extension } from "../pki/der.js";
import { toPem } from "../pki/pem.js";
import { randomSerial } from "../pki/serial.js";
import type { Signer } from "../pki/signer.js";
import { assertCaCertificate } from "../profile/ca-check.js";
import { authorityKeyIdentifier, basicConstraints, certificatePolicies, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { EXT_OID, POLICY_OID } from "../profile/oids.js";
import type { CertificateType } from "../profile/types.js";
import { certificateExtension } from "../crl/scope.js";
import { writeFileAtomic } from "../store/files.js";
import type { CaLinkRecord, CaRecord } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { Workspace } from "../workspace/workspace.js";
import { CertificationAuthority, createCaRecord } from "./authority.js";
import { assertPkcs11ModuleAllowed, parsePkcs11Uri } from "../pki/pkcs11.js";
import { assembleCertificate, encodeTbs } from "./certificate.js";
import { writeCaIndex } from "./generation-index.js";
import { freeCaIds, type PassedOverCaId } from "./free-ids.js";
import { activeGeneration, caGeneration, caId } from "./ids.js";
import { caFiles, checkCaFileTargets, exportCaCertificate, exportCaCertificateIfMissing, summariseCa, withCaKeysLock, workspaceKeyWrap, type CaSummary } from "./manage.js";
import { prefecture } from "./prefectures.js";

/** Which link certificate: RFC 4210 §4.4's names. */
export type LinkDirection = "old-with-new" | "new-with-old";

export interface LinkCertificate {
  readonly direction: LinkDirection;
  /** the generation whose key signed it */
  readonly issuerCaId: string;
  /** the generation whose key it certifies */
  readonly subjectCaId: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly der: Buffer;
  /** the PEM file in the workspace (a .crt beside it holds the DER) */
  readonly path: string;
  /** where verifiers fetch it */
  readonly url: string;
}

export interface RolledOver {
  readonly purpose: CertificateType;
  /** the generation retired by this rollover */
  readonly previous: string;
  readonly generation: number;
  readonly current: CaSummary;
  /** empty after a rollover for a compromised key */
  readonly links: readonly LinkCertificate[];
  /** the old key was suspected compromised: no link certificates, the new root goes out of band */
  readonly compromised: boolean;
  /** ids between the previous generation and this one that were not free (free-ids.ts), and why */
  readonly passedOver: readonly PassedOverCaId[];
}

export interface RolloverOptions {
  readonly prefectureCode: string;
  readonly purposes: readonly CertificateType[];
  readonly passphrase: string;
  /**
   * The old key is suspected compromised (鍵危殆化): the new generation is made WITHOUT link certificates. A
   * NewWithOld (old key under the new) would make every verifier trusting the new root accept what the stolen key
   * signs, and an OldWithNew signed by a stolen key vouches for nothing. The new root must reach verifiers out of
   * band (its SHA-256 fingerprint), the old one leave their trust stores.
   */
  readonly compromised?: boolean;
  readonly onProgress?: (message: string) => void;
}

/** The base name of a link certificate's files: the subject generation "by" the issuing one. */
export function linkFileBase(subjectCaId: string, issuerCaId: string): string {
  return `${subjectCaId}.by-${issuerCaId}`;
}

/** The link certificates of one rollover, described (none for a rollover after a key compromise). */
export function describeLinks(ws: Workspace, link: CaLinkRecord): LinkCertificate[] {
  if (!link.oldWithNew || !link.newWithOld) return [];
  const one = (direction: LinkDirection, der: Buffer, issuerCaId: string, subjectCaId: string): LinkCertificate => {
    const x = new X509Certificate(der);
    const base = linkFileBase(subjectCaId, issuerCaId);
    return {
      direction,
      issuerCaId,
      subjectCaId,
      serial: x.serialNumber.toLowerCase(),
      notBefore: new Date(x.validFrom),
      notAfter: new Date(x.validTo),
      der,
      path: join(ws.paths.caDir, `${base}.pem`),
      url: `${ws.config.baseUrl}/ca/${base}.crt`,
    };
  };
  return [one("old-with-new", link.oldWithNew, link.oldCaId, link.newCaId), one("new-with-old", link.newWithOld, link.newCaId, link.oldCaId)];
}

/** Writes a rollover's link certificates beside the CA certificates (DER .crt, served; PEM .pem). */
export function exportCaLinks(ws: Workspace, link: CaLinkRecord): void {
  for (const l of describeLinks(ws, link)) {
    const base = join(ws.paths.caDir, linkFileBase(l.subjectCaId, l.issuerCaId));
    writeFileAtomic(`${base}.crt`, l.der);
    writeFileAtomic(`${base}.pem`, toPem(l.der, "CERTIFICATE"));
  }
}

/**
 * Writes the CA certificate and link certificate files that are missing from ca/ (where `jpki serve` serves
 * them): a rollover killed after its commit and before its files were written left the new root and its links
 * unserved for good (found by a helper). Files already there are left alone. Returns the paths written.
 */
export async function exportMissingCaFiles(ws: Workspace, cas?: readonly CaRecord[]): Promise<string[]> {
  const written: string[] = [];
  for (const rec of cas ?? (await ws.store.listCas())) {
    const f = caFiles(ws, rec.id);
    if (exportCaCertificateIfMissing(ws, rec)) written.push(f.der, f.pem);
  }
  for (const link of await ws.store.listCaLinks()) {
    const ls = describeLinks(ws, link);
    if (ls.some((l) => !existsSync(l.path) || !existsSync(l.path.replace(/\.pem$/, ".crt")))) {
      exportCaLinks(ws, link);
      written.push(...ls.map((l) => l.path));
    }
  }
  return written;
}

function purposePolicy(purpose: CertificateType, config: WorkspaceConfig): string {
  if (purpose === "authentication") return POLICY_OID.authentication;
  return config.policy === "test" ? POLICY_OID.signatureTest : POLICY_OID.signature;
}

/**
 * One link certificate: `subject`'s name and key under `issuer`'s key. A CA certificate as the roots are
 * (keyCertSign + cRLSign, cA without a path length: with one name for both generations the link is self-issued,
 * RFC 5280 §6.1.4, and a chain through several rollovers stays valid), with the purpose's policy (so a path
 * through it keeps the end entity's policy), the issuer's ARL as distribution point (the ARL,
 * onlyContainsCACerts, covers it), valid from the rollover until the old generation's certificate ends (the
 * link is what joins the old generation's verifiers and certificates to the new: it is useless after).
 */
async function linkCertificate(o: {
  readonly issuer: { readonly der: Buffer; readonly signer: Signer };
  readonly subjectDer: Buffer;
  readonly now: Date;
  readonly notAfter: Date;
  readonly purpose: CertificateType;
  readonly config: WorkspaceConfig;
}): Promise<Buffer> {
  const ip = certificateParts(o.issuer.der);
  const sp = certificateParts(o.subjectDer);
  const cdp = certificateExtension(o.issuer.der, EXT_OID.cRLDistributionPoints);
  if (!cdp) throw new JpkiError("ERR_CA_INVALID", "the issuing CA certificate has no cRLDistributionPoints: the link certificate's ARL has nowhere to be found");
  const signer = o.issuer.signer;
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: Buffer.from(ip.subject),
    notBefore: new Date(Math.floor(o.now.getTime() / 1000) * 1000),
    notAfter: o.notAfter,
    subject: Buffer.from(sp.subject),
    spki: Buffer.from(sp.spki),
    extensions: [
      extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
      extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
      extension(EXT_OID.certificatePolicies, false, certificatePolicies(purposePolicy(o.purpose, o.config), o.config.cpsUri)),
      extension(EXT_OID.cRLDistributionPoints, false, cdp),
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(keyIdentifier(ip.spki))),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(sp.spki))),
    ],
  });
  const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
  // Check what you sign (STYLE.md §9): re-parsed, the key we meant, and the issuer's key verifies it.
  const x = new X509Certificate(der);
  if (!Buffer.from(certificateParts(der).spki).equals(Buffer.from(sp.spki)) || !x.verify(new X509Certificate(o.issuer.der).publicKey)) {
    throw new JpkiError("ERR_PROFILE_VIOLATION", "a link certificate did not re-parse or verify: nothing was stored; check the CA key");
  }
  return der;
}

/**
 * Rolls the active generation of each purpose's CA of a prefecture over to a new key: a new CA record (the
 * next generation) with both link certificates, committed in one store transaction for all purposes, then the
 * certificate files written. ERR_ROLLOVER_NO_CA when the prefecture has no such CA, ERR_ROLLOVER_EXPIRED when
 * the active certificate has expired (its key can certify nothing), ERR_ROLLOVER_CONFLICT when another run
 * rolled the same generation over first (then no purpose is rolled over); ERR_PASSPHRASE_WRONG before any key is generated.
 * Runs under the CA-keys lock (ERR_WORKSPACE_LOCKED while another process holds it): beside a `ca rewrap` that
 * moves the keys to a new passphrase, an unlocked rollover stored its new key under the old one.
 */
export async function rolloverCas(ws: Workspace, opts: RolloverOptions): Promise<RolledOver[]> {
  return withCaKeysLock(ws, () => rolloverLocked(ws, opts));
}

async function rolloverLocked(ws: Workspace, opts: RolloverOptions): Promise<RolledOver[]> {
  const pref = prefecture(opts.prefectureCode);
  const all = await ws.store.listCas();
  const actives = opts.purposes.map((purpose) => {
    const active = activeGeneration(all, pref.code, purpose);
    if (!active) {
      throw new JpkiError("ERR_ROLLOVER_NO_CA", `no ${purpose} CA of prefecture ${pref.code} (${pref.kanji}) to roll over: run 'jpki ca init --prefecture ${pref.code}' first`);
    }
    return active;
  });
  const now = ws.clock.now();
  // Every active CA opened (profile check, passphrase) before any key is generated.
  const opened = actives.map((rec) => {
    const ca = CertificationAuthority.open(rec, opts.passphrase, ws.config);
    if (ca.notAfter.getTime() <= now.getTime()) {
      throw new JpkiError("ERR_ROLLOVER_EXPIRED", `the certificate of CA ${rec.id} expired at ${ca.notAfter.toISOString()}: its key can certify no new key; start a new CA instead`);
    }
    return ca;
  });
  const keyWrap = await workspaceKeyWrap(ws, opts.passphrase);
  // The next generation is the first free one: an id retired by a restore, or whose CRLs are published with no CA
  // behind it, is passed over (free-ids.ts), never made a second time.
  const free = await freeCaIds(ws, opened.map((old) => ({ prefectureCode: pref.code, purpose: old.purpose, from: caGeneration(old.id) + 1 })));
  for (const f of free) for (const p of f.passedOver) opts.onProgress?.(`passing over ${p.id} (${p.reason}): the new generation is ${f.id}`);
  checkCaFileTargets(ws, free.map((f) => f.id));
  // Every purpose's new generation is made first and all are committed in one transaction: a run killed
  // half-way (found by a helper) left the signature CA rolled over and the authentication one not, and the
  // same command run again rolled the signature CA over a second time.
  const made: Array<{ old: CertificationAuthority; generation: number; rec: CaRecord; link: CaLinkRecord; passedOver: readonly PassedOverCaId[] }> = [];
  for (const [i, old] of opened.entries()) {
    const { generation, passedOver } = free[i]!;
    opts.onProgress?.(`generating the key of ${caId(pref.code, old.purpose, generation)}`);
    // The new key goes where the old one is: a token CA's next key is generated in the same token (its URI names
    // module and token), a software CA's is encrypted as the others are.
    const ref = old.record.keyRef ? parsePkcs11Uri(old.record.keyRef) : undefined;
    // The module comes from the store here too: only one this host lists (opening the old CA checked it already).
    if (ref) assertPkcs11ModuleAllowed(ref.modulePath, ws.config.pkcs11Modules, `the key of CA ${old.id}`);
    const token = ref ? { modulePath: ref.modulePath, token: ref.token } : undefined;
    const rec: CaRecord = await createCaRecord({ prefectureCode: pref.code, purpose: old.purpose, passphrase: opts.passphrase, config: ws.config, now, keyWrap, generation, token });
    assertCaCertificate(rec);
    const fresh = CertificationAuthority.open(rec, opts.passphrase, ws.config);
    const linkEnd = old.notAfter;
    // After a compromise the row still records the succession (a second rollover of the old generation is refused,
    // the audit record says so), with no certificate that would join the two keys.
    const link: CaLinkRecord = opts.compromised
      ? { oldCaId: old.id, newCaId: rec.id, createdAt: rec.createdAt }
      : {
          oldCaId: old.id,
          newCaId: rec.id,
          oldWithNew: await linkCertificate({ issuer: { der: old.record.certificateDer, signer: old.signer }, subjectDer: rec.certificateDer, now, notAfter: linkEnd, purpose: old.purpose, config: ws.config }),
          newWithOld: await linkCertificate({ issuer: { der: rec.certificateDer, signer: fresh.signer }, subjectDer: old.record.certificateDer, now, notAfter: linkEnd, purpose: old.purpose, config: ws.config }),
          createdAt: rec.createdAt,
        };
    made.push({ old, generation, rec, link, passedOver });
  }
  await ws.store.putCaRollovers(made.map(({ rec, link }) => ({ ca: rec, link })));
  const out: RolledOver[] = [];
  for (const { old, generation, rec, link, passedOver } of made) {
    exportCaCertificate(ws, rec);
    exportCaLinks(ws, link);
    out.push({ purpose: old.purpose, previous: old.id, generation, current: summariseCa(ws, rec), links: describeLinks(ws, link), compromised: opts.compromised === true, passedOver });
  }
  // the successor named where followers look for it, whatever its number (ca/generation-index.ts)
  await writeCaIndex(ws);
  return out;
}
