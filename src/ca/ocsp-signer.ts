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
import { JpkiError, isJpkiError } from "../errors.js";
import { certificateParts, children, extension, nul, readHeader } from "../pki/der.js";
import { encryptPrivateKey, generateRsaKey, strongKeyWrapParams, unlockPrivateKey } from "../pki/keys.js";
import { randomSerial, serialHex } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { authorityKeyIdentifier, extKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { encodeName, ocspResponderSubject } from "../profile/names.js";
import { EXT_OID, KP_OID } from "../profile/oids.js";
import { keysRewrapped, rewrappedKeys } from "../store/rows.js";
import type { CaRecord, OcspResponderRecord, OcspSignerKey, Store, WrappedKeysSeen } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { CertificationAuthority } from "./authority.js";
import { assembleCertificate, encodeTbs } from "./certificate.js";
import { compromisedCaIds } from "./compromised.js";

export interface OcspSignerPolicy {
  /** how long a signing certificate is valid; default 4 days */
  readonly validityMs?: number;
  /** renew when less than this remains; default half the validity. Must exceed the responses' lifetime. */
  readonly renewBeforeMs?: number;
}

export const DEFAULT_OCSP_SIGNER_VALIDITY_MS = 4 * 86_400_000;
/** notBefore is set this far back: a verifier whose clock runs a little behind still accepts a fresh certificate. */
const BACKDATE_MS = 5 * 60_000;

/**
 * The earliest time an OCSP signing certificate can have been issued, from its notBefore: BACKDATE_MS later, unless
 * notBefore is its CA's own (a CA younger than that: issued between the two, and notBefore is all we know). No
 * store keeps the issuance time; the responder needs it to refuse a signer issued from a compromised CA's key
 * after the compromise (ocsp/responder.ts).
 */
export function ocspSignerIssuedFrom(notBefore: Date, caNotBefore: Date): Date {
  return notBefore.getTime() > caNotBefore.getTime() ? new Date(notBefore.getTime() + BACKDATE_MS) : notBefore;
}

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
 *
 * Never for a compromised generation (ca/compromised.ts): `serve` issued one at start and at half-life signed by
 * the very key declared stolen, vouching for a responder with it. The one issued before goes on signing that CA's
 * (all revoked) answers until it expires; then the responder answers unauthorized (ocsp/responder.ts).
 *
 * Each is stored on the condition that no key in `keysSeen` was re-encrypted since (Store.putOcspResponder,
 * ERR_KEYS_REWRAPPED, nothing stored): a `jpki ca rewrap --new-passphrase-file` while this process runs moves the
 * OCSP signing keys to the new passphrase, and a key wrapped here under the old one would not open once the
 * server is restarted with the new one. `keysSeen` defaults to the CAs' records in `cas` (as they were opened)
 * and the signers as this call reads them. `ownPassphrase`: `passphrase` is the OCSP keys' own
 * (JPKI_OCSP_PASSPHRASE), which a rewrap keeps them under: then nothing is conditional.
 */
export async function renewOcspSigners(
  store: Store,
  cas: readonly CertificationAuthority[],
  o: { now: Date; passphrase: string; policy?: OcspSignerPolicy; ownPassphrase?: boolean; keysSeen?: WrappedKeysSeen; signal?: AbortSignal | undefined },
): Promise<OcspResponderRecord[]> {
  const { renewBeforeMs } = ocspSignerPolicy(o.policy);
  const compromised = await compromisedCaIds(store);
  const signers = await store.ocspResponders();
  const current = new Map(signers.map((r) => [r.caId, r]));
  const seen = o.ownPassphrase ? undefined : { cas: o.keysSeen?.cas ?? caKeysOf(cas), ocspSigners: [...(o.keysSeen?.ocspSigners ?? signers.map(signerKey))] };
  const issued: OcspResponderRecord[] = [];
  for (const ca of cas) {
    // Stopped (a watch's SIGTERM): each certificate is a key pair made and wrapped, half a second of CPU; a first
    // start has one to make for every CA. Those issued are stored, the others are issued by the next start.
    if (o.signal?.aborted) break;
    if (compromised.has(ca.id)) continue;
    const have = current.get(ca.id);
    if (have && have.notAfter.getTime() - o.now.getTime() > renewBeforeMs && have.notBefore.getTime() <= o.now.getTime() + BACKDATE_MS) continue;
    const rec = await issueOcspSigner(ca, o);
    await store.putOcspResponder(rec, seen ? { unlessRewrapped: seen } : {});
    // this process's own key from now on: a later rewrap of it is as telling as one of those read
    seen?.ocspSigners.push(signerKey(rec));
    issued.push(rec);
  }
  return issued;
}

/**
 * Refuses (ERR_USAGE) a passphrase of the OCSP signing keys' own (JPKI_OCSP_PASSPHRASE) that ends with a line break
 * or holds U+FFFD (bytes that were no UTF-8), unless the keys stored now open with it. Such a value comes from a
 * variable set from a file with its newline (a mounted secret, an env file): keys the schedule wrapped under it
 * opened only from that variable so set — not with the same passphrase exported by hand, nor when it was meant to
 * be the CA one (a value unequal to it is taken as their own, and the CA passphrase then opens none of them). As
 * JPKI_PASSPHRASE is for a new workspace (cli/context.ts), and found by a helper. Keys already wrapped that way
 * still open, and are renewed, under it. Never names the value.
 */
export async function checkOwnResponderPassphrase(store: Store, passphrase: string, name = "JPKI_OCSP_PASSPHRASE"): Promise<void> {
  const lineBreak = /[\r\n]$/.test(passphrase);
  if (!lineBreak && !passphrase.includes("\uFFFD")) return;
  // One rewrap puts every OCSP key under one passphrase, so one try tells.
  const first = (await store.ocspResponders())[0];
  if (first) {
    try {
      await unlockPrivateKey(first.encryptedKeyPem, passphrase, `the OCSP signing key of CA ${first.caId}`);
      return;
    } catch (e) {
      if (!isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
    }
  }
  throw new JpkiError(
    "ERR_USAGE",
    lineBreak
      ? `${name} ends with a line break: new OCSP signing keys would open only from a variable set just so (a file's final newline included). Set it without the line break`
      : `${name} is not UTF-8 text (a byte no character decodes from): set it as UTF-8`,
  );
}

/**
 * Refuses (ERR_USAGE) a passphrase of the OCSP signing keys' own (JPKI_OCSP_PASSPHRASE) that does not open every
 * unexpired signing key stored: they are under another passphrase — the CA one, when an earlier serve ran without
 * JPKI_OCSP_PASSPHRASE, or another value of it. Such a server started all the same and its responder answered
 * nothing (tryLater) until each certificate was renewed, days later. `jpki ca rewrap` with JPKI_OCSP_PASSPHRASE set
 * moves keys under the CA passphrase to it (manage.ts). One derivation per salt (the KEK is cached), so trying them
 * all costs about what one does. With `own: false` the passphrase is the CA one (no JPKI_OCSP_PASSPHRASE), and the
 * keys stored under a passphrase of their own are the ones refused. Never names the value.
 */
export async function checkResponderKeysOpen(store: Store, passphrase: string, o: { now: Date; name?: string; own?: boolean }): Promise<void> {
  const name = o.name ?? "JPKI_OCSP_PASSPHRASE";
  const closed: string[] = [];
  for (const r of await store.ocspResponders()) {
    if (r.notAfter.getTime() <= o.now.getTime()) continue; // answers nothing anyway, and is renewed at once
    try {
      await unlockPrivateKey(r.encryptedKeyPem, passphrase, `the OCSP signing key of CA ${r.caId}`);
    } catch (e) {
      if (!isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
      closed.push(r.caId);
    }
  }
  if (!closed.length) return;
  const which = closed.length > 3 ? `${closed.slice(0, 3).join(", ")} and ${closed.length - 3} more` : closed.join(", ");
  const keys = `OCSP signing key${closed.length === 1 ? "" : "s"} stored for CA ${which}`;
  // The responders going by the CA passphrase (no JPKI_OCSP_PASSPHRASE): keys an earlier run wrapped under one of their own.
  if (o.own === false) {
    // ...unless it opens no CA key either: then it is the wrong passphrase, said as opening the CAs says it.
    const ca = (await store.listCas()).find((c) => !c.keyRef);
    if (ca) await unlockPrivateKey(ca.encryptedKeyPem, passphrase, `the key of CA ${ca.id}`);
    throw new JpkiError(
      "ERR_USAGE",
      `the CA passphrase does not open the ${keys}: they are wrapped under a passphrase of their own (JPKI_OCSP_PASSPHRASE of an earlier 'jpki serve' or 'jpki watch'), and OCSP would answer nothing until they are renewed. Start with JPKI_OCSP_PASSPHRASE set to it`,
    );
  }
  throw new JpkiError(
    "ERR_USAGE",
    `${name} does not open the OCSP signing key${closed.length === 1 ? "" : "s"} stored for CA ${which}: they are wrapped under another passphrase (the CA passphrase, if 'jpki serve' ran without ${name} before), and OCSP would answer nothing until they are renewed. Run 'jpki ca rewrap' with ${name} set to wrap them under it, or start without ${name}`,
  );
}

/**
 * The start-up check of the passphrase the OCSP signing keys go by, for every process that opens them or wraps new
 * ones (`jpki serve`, `jpki watch`): JPKI_OCSP_PASSPHRASE fit to wrap under (checkOwnResponderPassphrase, when this
 * process issues keys) and the keys stored opening with `passphrase` (checkResponderKeysOpen). A watch under another
 * passphrase than the keys it renews wrapped each renewal under it, and the serve beside it then answered nothing
 * for that CA (tryLater) until restarted with the other one. `own`: `passphrase` is JPKI_OCSP_PASSPHRASE, not the CA one.
 */
export async function checkResponderPassphrase(store: Store, passphrase: string, o: { now: Date; own: boolean; wraps: boolean }): Promise<void> {
  if (o.wraps && o.own) await checkOwnResponderPassphrase(store, passphrase);
  await checkResponderKeysOpen(store, passphrase, { now: o.now, own: o.own });
}

/** The passphrase-wrapped CA keys as the CAs were opened (a token key's record holds none). */
function caKeysOf(cas: readonly CertificationAuthority[]): WrappedKeysSeen["cas"] {
  return cas.filter((c) => !c.record.keyRef).map((c) => ({ id: c.id, encryptedKeyPem: c.record.encryptedKeyPem }));
}

const signerKey = (r: OcspSignerKey): OcspSignerKey => ({ caId: r.caId, serial: r.serial, encryptedKeyPem: r.encryptedKeyPem });

/** How often a renewal stopped by a rewrap says so again (it does nothing else until restarted). */
const REWRAPPED_REMINDER_MS = 3600_000;

/**
 * Keeps every CA's OCSP signing certificate current: the job of the process that holds the CA keys (the one
 * running the CRL schedule). Opens the CAs once; each tick reads the current certificates (one query) and issues
 * for the CAs that need one.
 *
 * Each tick also looks for a rewrap since the CAs were opened (a CA key, or an OCSP signing key it knew, stored
 * otherwise), and the store refuses a renewal's key if one commits in between. When its responder passphrase is
 * the CA one, a re-encrypted key is tried with it: one that opens (a rewrap that kept the passphrase, a KDF upgrade)
 * becomes what it goes by; one that does not stops it: ERR_KEYS_REWRAPPED from that tick, before any renewal falls
 * due, so the operator hears of it in time, then once an hour, never storing a key, until a restart with the new
 * passphrase. Under a passphrase of its own (JPKI_OCSP_PASSPHRASE) it goes on: a rewrap leaves the OCSP keys under
 * that one, and the CA keys it signs with are the same keys, only wrapped anew.
 */
export class OcspSignerRenewal {
  readonly #ws: Workspace;
  readonly #caPassphrase: string;
  readonly #responderPassphrase: string;
  readonly #policy: Required<OcspSignerPolicy>;
  #cas: CertificationAuthority[] = [];
  /** the wrapped keys as read when the CAs were opened, as issued here since, or as last found to open */
  #seen: { cas: Map<string, string>; ocspSigners: Map<string, OcspSignerKey> } = { cas: new Map(), ocspSigners: new Map() };
  #rewrapped: JpkiError | undefined;
  #nextCheck = -Infinity;

  constructor(ws: Workspace, o: { caPassphrase: string; responderPassphrase: string; policy?: OcspSignerPolicy }) {
    this.#ws = ws;
    this.#caPassphrase = o.caPassphrase;
    this.#responderPassphrase = o.responderPassphrase;
    this.#policy = ocspSignerPolicy(o.policy);
  }

  /**
   * Whether the OCSP keys have a passphrase of their own. By value: a JPKI_OCSP_PASSPHRASE equal to the CA one
   * cannot be told from none, and is taken as none (a rewrap may have moved them).
   */
  get #ownPassphrase(): boolean {
    return this.#responderPassphrase !== this.#caPassphrase;
  }

  get #keysSeen(): WrappedKeysSeen {
    return { cas: [...this.#seen.cas].map(([id, encryptedKeyPem]) => ({ id, encryptedKeyPem })), ocspSigners: [...this.#seen.ocspSigners.values()] };
  }

  /** Opens every CA (a wrong passphrase fails here) and issues what is due (`signal`: see tick). */
  async preflight(signal?: AbortSignal): Promise<OcspResponderRecord[]> {
    // read before the CAs: a rewrap between the two shows as a CA key opened that it changed
    const signers = await this.#ws.store.ocspResponders();
    this.#cas = (await this.#ws.store.listCas()).map((rec) => CertificationAuthority.open(rec, this.#caPassphrase, this.#ws.config));
    this.#seen = { cas: new Map(caKeysOf(this.#cas).map((k) => [k.id, k.encryptedKeyPem])), ocspSigners: new Map(signers.map((r) => [r.caId, signerKey(r)])) };
    return this.tick(signal);
  }

  /**
   * A CRL of `caId` was just published (the schedule's round): a CA this renewal has not opened — a rollover's new
   * generation, a CA another process made — is issued its OCSP signing certificate at the next tick rather than at
   * the minute's look, so that `jpki serve` answers OCSP for it within moments (the responder reads signers again
   * when asked about a CA it lacks one for: ocsp/responder.ts UNKNOWN_CA_RELOAD_MS). A new CA's first CRL is due at
   * once (its CRL is missing), so this comes a poll after the CA does.
   */
  noticeCrl(caId: string): void {
    if (this.#rewrapped || this.#cas.some((c) => c.id === caId)) return;
    this.#nextCheck = -Infinity;
  }

  /**
   * Issues what is due; looks at the store at most once a minute (renewal margins are hours or days). Once `signal`
   * is aborted no further certificate is begun.
   */
  async tick(signal?: AbortSignal): Promise<OcspResponderRecord[]> {
    const now = this.#ws.clock.now().getTime();
    if (now < this.#nextCheck) return [];
    if (this.#rewrapped) {
      this.#nextCheck = now + REWRAPPED_REMINDER_MS;
      throw this.#rewrapped;
    }
    this.#nextCheck = now + 60_000;
    try {
      const recs = await this.#ws.store.listCas();
      if (!this.#ownPassphrase) await this.#followRewrap(recs);
      const known = new Set(this.#cas.map((c) => c.id));
      // a CA added since (jpki ca init by another process)
      for (const rec of recs) {
        if (known.has(rec.id)) continue;
        const ca = CertificationAuthority.open(rec, this.#caPassphrase, this.#ws.config);
        this.#cas.push(ca);
        if (!rec.keyRef) this.#seen.cas.set(rec.id, rec.encryptedKeyPem);
      }
      let issued: OcspResponderRecord[];
      try {
        issued = await renewOcspSigners(this.#ws.store, this.#cas, {
          now: this.#ws.clock.now(),
          passphrase: this.#responderPassphrase,
          policy: this.#policy,
          ownPassphrase: this.#ownPassphrase,
          keysSeen: this.#keysSeen,
          signal,
        });
      } catch (e) {
        if (!isJpkiError(e, "ERR_KEYS_REWRAPPED")) throw e;
        // A rewrap committed during this round: stopped here unless it kept the passphrase; then the next poll
        // renews what is still due.
        await this.#followRewrap(await this.#ws.store.listCas());
        this.#nextCheck = now;
        return [];
      }
      for (const r of issued) this.#seen.ocspSigners.set(r.caId, signerKey(r));
      return issued;
    } catch (e) {
      if (isJpkiError(e, "ERR_KEYS_REWRAPPED")) {
        this.#rewrapped = e;
        this.#nextCheck = now + REWRAPPED_REMINDER_MS;
      }
      throw e;
    }
  }

  /**
   * Finds what a rewrap changed since the keys were seen: if a re-encrypted key opens with this process's
   * passphrase (an OCSP signing key's first: it is their passphrase that matters), the keys as stored now are what
   * it goes by; else ERR_KEYS_REWRAPPED. One rewrap puts every OCSP key under one passphrase, so one try tells.
   */
  async #followRewrap(recs: readonly CaRecord[]): Promise<void> {
    const signers = (await this.#ws.store.ocspResponders()).map(signerKey);
    const changed = rewrappedKeys(this.#keysSeen, recs, signers);
    if (!changed.length) return;
    const probe = changed.find((k) => k.kind === "ocsp") ?? changed[0]!;
    const opens =
      probe.encryptedKeyPem !== undefined &&
      (await unlockPrivateKey(probe.encryptedKeyPem, this.#responderPassphrase, probe.what).then(
        () => true,
        (e: unknown) => {
          if (isJpkiError(e, "ERR_PASSPHRASE_WRONG")) return false;
          throw e;
        },
      ));
    if (!opens) throw keysRewrapped(probe.what, "no OCSP signing certificate was renewed");
    for (const r of recs) if (this.#seen.cas.has(r.id)) this.#seen.cas.set(r.id, r.encryptedKeyPem);
    for (const k of signers) if (this.#seen.ocspSigners.get(k.caId)?.serial === k.serial) this.#seen.ocspSigners.set(k.caId, k);
  }
}
