/**
 * The issuance flow at the municipal counter (市町村窓口, shared/spec/JPKI.md "The card"): a card is made for a
 * resident, both key pairs are generated ON the card, the prefecture CA of the resident's address certifies the
 * two public keys (which registers the issuance information with the registry side, ca/issuance.ts), and the
 * certificates with their CA certificates are written into the card's EFs. Renewal after a change notice revoked
 * the signature certificate (a move, a name change) generates a new signature key on the same card and certifies it.
 *
 * Only public keys leave the card: the flow sees SPKIs and certificates, never a private key.
 *
 * Nothing is lost on a crash: every certificate is applied for under an application id made of the card id and the
 * SHA-256 of the key's SPKI, so running the same step again after a kill -9 (between the CA's commit and the card
 * write) returns the certificate already issued instead of a second one, and keys already on the card are reused.
 */
import { createHash, randomBytes } from "node:crypto";
import { JpkiError, isJpkiError } from "../errors.js";
import type { IssuanceService, IssuedCertificate } from "../ca/issuance.js";
import type { Store } from "../store/types.js";
import type { CertificateType } from "../profile/types.js";
import { EmulatedCard } from "../card/card.js";
import { withCardProcedure, type CardStorage } from "../card/card-state.js";
import type { CertificateSlot } from "../card/jpki-app.js";

/** The card's key, certificate slot and CA-certificate slot for each certificate type. */
const SLOTS: Readonly<Record<CertificateType, { readonly key: "signature" | "authentication"; readonly cert: CertificateSlot; readonly ca: CertificateSlot }>> = Object.freeze({
  signature: { key: "signature", cert: "signature", ca: "signatureCa" },
  authentication: { key: "authentication", cert: "authentication", ca: "authenticationCa" },
});

export interface CounterCardContext {
  /** issues through the CA of the resident's prefecture (and registers the issuance information) */
  readonly issuance: IssuanceService;
  readonly store: Store;
  /** the municipality's administrative key: every write to the card needs it */
  readonly adminKey: Uint8Array;
  /** the 9-character id of the counter that checked the resident (the certificate's opaque subject CN) */
  readonly counterId?: string;
}

export interface IssueCardParams extends CounterCardContext {
  readonly storage: CardStorage;
  /**
   * The card's serial. Without one a new card gets a random one and a resumed card keeps its own: a rerun of the
   * same command after a crash must not need the id the first run chose at random and never printed.
   */
  readonly cardId?: string;
  readonly residentCode: string;
  /** 署名用電子証明書のパスワード: 6–16 of A–Z, 0–9 */
  readonly signaturePin: string;
  /** 利用者証明用電子証明書の暗証番号: 4 digits */
  readonly authenticationPin: string;
}

export interface CardIssuance {
  readonly card: EmulatedCard;
  readonly cardId: string;
  readonly signature: IssuedCertificate;
  readonly authentication: IssuedCertificate;
  /** true when the card file already existed (a run resumed after a crash): its keys were reused */
  readonly resumed: boolean;
  /** the card file already held both certificates (a command run again): nothing was issued */
  readonly alreadyComplete: boolean;
}

/** The application id of a certificate for a card's key: the same key on the same card never gets two. */
function applicationId(cardId: string, type: CertificateType, spki: Buffer): string {
  return `card:${cardId}:${type}:${createHash("sha256").update(spki).digest("hex").slice(0, 32)}`;
}

async function caCertificate(store: Store, issued: IssuedCertificate): Promise<Buffer> {
  const rec = await store.getCa(issued.caId);
  if (!rec) throw new JpkiError("ERR_CA_UNKNOWN", `CA ${issued.caId} vanished while the card was being written`);
  return rec.certificateDer;
}

/**
 * Generates (or, resuming, reuses) the card's key for `type`, has it certified and writes the certificate and its CA
 * certificate into the card. `fresh` forces a new key pair (renewal).
 */
async function certifyCardKey(card: EmulatedCard, cardId: string, residentCode: string, type: CertificateType, ctx: CounterCardContext, fresh: boolean): Promise<IssuedCertificate> {
  const slot = SLOTS[type];
  let spki = fresh ? undefined : card.publicKey(slot.key);
  if (!spki) spki = await card.generateKeyPair(ctx.adminKey, slot.key);
  const apply = (key: Buffer) =>
    ctx.issuance.issue({
      residentCode,
      type,
      publicKey: key,
      applicationId: applicationId(cardId, type, key),
      ...(ctx.counterId !== undefined ? { counterId: ctx.counterId } : {}),
    });
  let issued: IssuedCertificate;
  try {
    issued = await apply(spki);
  } catch (e) {
    // The key already on the card was certified by a run cut short, and that certificate has been revoked since (the
    // card reported lost, a move): it is never written to the card, and the key it certified is not certified again.
    // A new key pair replaces it, as a renewal does.
    if (fresh || !isJpkiError(e, "ERR_APPLICATION_CERT_REVOKED")) throw e;
    issued = await apply(await card.generateKeyPair(ctx.adminKey, slot.key));
  }
  if (issued.residentCode !== residentCode) {
    throw new JpkiError("ERR_USAGE", `card ${cardId} holds a ${type} key certified for another resident: a card belongs to one resident`);
  }
  card.writeCertificate(ctx.adminKey, slot.ca, await caCertificate(ctx.store, issued));
  card.writeCertificate(ctx.adminKey, slot.cert, issued.der);
  return issued;
}

/**
 * What refuses a new card's certificates, found before the card file and its keys are made: a resident no
 * certificate can be issued to (no record, dead, removed) and a CA that cannot sign (a wrong passphrase, a CA not
 * initialised). Found after, either left a card file behind with a message that the same command would finish it —
 * for the first, a card no rerun could ever finish; for the second, a card the operator never meant to make.
 */
export async function checkCardIssuable(issuance: IssuanceService, app: { readonly residentCode: string; readonly counterId?: string | undefined }): Promise<void> {
  const base = { residentCode: app.residentCode, ...(app.counterId !== undefined ? { counterId: app.counterId } : {}) };
  for (const type of ["signature", "authentication"] as const) await issuance.checkIssuable({ ...base, type });
}

/**
 * `jpki card issue`: a new card for a resident with both certificates. Resuming an interrupted issuance of the same
 * card (same storage, same card id) finishes it without issuing anything twice.
 */
export function issueCard(p: IssueCardParams): Promise<CardIssuance> {
  // One counter procedure on a card at a time (card-state.ts withCardProcedure): two issuances of one card file at
  // once each made and certified a key, and the later commit superseded the certificate the card kept.
  return withCardProcedure(p.storage, () => issueCardNow(p));
}

async function issueCardNow(p: IssueCardParams): Promise<CardIssuance> {
  const resumed = p.storage.exists();
  if (!resumed) await checkCardIssuable(p.issuance, p);
  const card = resumed
    ? EmulatedCard.open(p.storage)
    : EmulatedCard.create({
        storage: p.storage,
        cardId: p.cardId ?? randomBytes(6).toString("hex").toUpperCase(),
        adminKey: p.adminKey,
        signaturePin: p.signaturePin,
        authenticationPin: p.authenticationPin,
        holderResidentCode: p.residentCode,
      });
  const cardId = card.info().cardId;
  if (p.cardId !== undefined && cardId !== p.cardId) {
    throw new JpkiError("ERR_USAGE", `${p.storage.where} already holds card ${cardId}, not ${p.cardId}: choose another card file`);
  }
  // A resumed card is finished only for the resident it was begun for: its keys were made under the PINs that
  // person chose, so certifying them for someone else would bind that someone's identity to another's secrets.
  // (Once a certificate is on it, certifyCardKey refuses another resident as well.) A card begun by an older jpki
  // records no one: resumed only when its id is typed, as then.
  const begun = resumed ? card.begunFor(p.residentCode) : true;
  if (begun === false || (begun === undefined && p.cardId === undefined)) {
    throw new JpkiError(
      "ERR_USAGE",
      begun === false
        ? `${p.storage.where} holds card ${cardId}, begun for another resident: finish it for that resident, or use another card file`
        : `${p.storage.where} holds card ${cardId}, begun by an earlier jpki that did not record for whom: to finish it for this resident, pass --card-id ${cardId}`,
    );
  }
  const held = card.info().certificates;
  const alreadyComplete = resumed && held.signature && held.authentication;
  try {
    const signature = await certifyCardKey(card, cardId, p.residentCode, "signature", p, false);
    const authentication = await certifyCardKey(card, cardId, p.residentCode, "authentication", p, false);
    return { card, cardId, signature, authentication, resumed, alreadyComplete };
  } catch (e) {
    // The card file stays, begun for this resident (a key may already be on it): say so, and how it is finished,
    // rather than leave a file the operator did not know was made.
    if (resumed || !isJpkiError(e)) throw e;
    // The resident died, was removed or vanished after the check before the card was made: no rerun finishes it.
    const final = e.code === "ERR_RESIDENT_NOT_ELIGIBLE" || e.code === "ERR_RESIDENT_UNKNOWN";
    const next = final ? "no certificate can be issued to this resident, so no rerun finishes it: delete the file" : "the same command run again finishes it (or delete the file)";
    throw new JpkiError(e.code, `${e.message}; ${p.storage.where} now holds card ${cardId} begun for this resident, without its certificates: ${next}`, {
      ...(e.details ? { details: { ...e.details } } : {}),
      cause: e,
    });
  }
}

export interface RenewCardParams extends CounterCardContext {
  readonly card: EmulatedCard;
  readonly residentCode: string;
  /** which certificate: "signature" after a move or name change; "authentication" after expiry */
  readonly type?: CertificateType;
}

/** The resident the certificates of the card's keys were issued to (as the CA side knows them now), if any. */
async function cardResident(card: EmulatedCard, cardId: string, store: Store): Promise<{ residentCode: string; serials: string[] } | undefined> {
  let residentCode: string | undefined;
  const serials: string[] = [];
  for (const type of ["signature", "authentication"] as const) {
    const spki = card.publicKey(SLOTS[type].key);
    if (!spki) continue;
    const row = await store.getCertificateByApplication(applicationId(cardId, type, spki));
    if (!row) continue;
    residentCode ??= row.residentCode;
    serials.push(row.serial);
  }
  return residentCode === undefined ? undefined : { residentCode, serials };
}

/**
 * A resident-code change (住民票コード変更) relinks the registry side's issuance information at once, the CA side's
 * certificates only when its notice is ingested: between the two the card's certificates are registered under
 * the new code while the CA still files them under the old one. That is the same resident.
 */
async function followsCodeChange(store: Store, serials: readonly string[], residentCode: string): Promise<boolean> {
  const registered = await store.registeredIssuances(residentCode);
  return registered.some((r) => serials.includes(r.serial));
}

/**
 * `jpki card renew`: a new key pair on the card and a new certificate for it, written over the old one. The old
 * certificate of that type, if still good, is revoked as superseded by the issuance itself (ca/issuance.ts). A rerun
 * after a crash between the new key and the card write certifies the key already made (same application id).
 */
export function renewCardCertificate(p: RenewCardParams): Promise<IssuedCertificate> {
  // One counter procedure on a card at a time: of two renewals at once, the one committed last superseded the
  // other's certificate, and the card could keep the superseded one while its command reported it done.
  return p.card.procedure(() => renewNow(p));
}

async function renewNow(p: RenewCardParams): Promise<IssuedCertificate> {
  const info = p.card.info();
  const type = p.type ?? "signature";
  // Before a new key replaces the old one: renewing for someone else would wipe the holder's key and put another
  // resident's certificate (and four items) on this card. The certificates of the card's keys say whose it is.
  const owner = await cardResident(p.card, info.cardId, p.store);
  if (owner !== undefined && owner.residentCode !== p.residentCode && !(await followsCodeChange(p.store, owner.serials, p.residentCode))) {
    throw new JpkiError("ERR_CARD_RESIDENT_MISMATCH", `card ${info.cardId} was issued to another resident than ${p.residentCode}: renew a card only for its holder`);
  }
  // A new key removes the card's certificate of that type: whatever would refuse the new one (a wrong passphrase,
  // a resident who died or whose record the CA side is ahead of) is found first. Found after, it left a card
  // without its valid certificate — a resident who could no longer log in — and an error that did not say so.
  await p.issuance.checkIssuable({ residentCode: p.residentCode, type, ...(p.counterId !== undefined ? { counterId: p.counterId } : {}) });
  // A key without its certificate is a renewal cut short after the key was made (a new key removes the old
  // certificate): certify that key, so a rerun after a crash issues nothing twice.
  return certifyCardKey(p.card, info.cardId, p.residentCode, type, p, info.certificates[SLOTS[type].cert]);
}
