/**
 * Rows as both backends store them, and their mapping to the Store's read models. SQLite and PostgreSQL
 * keep the same tables and column names (dates as integer milliseconds); they differ only in whether an
 * integer column arrives as a number or a bigint, so every mapping goes through Number().
 */
import { hash } from "node:crypto";
import { JpkiError } from "../errors.js";
import { subjectPublicKeyInfoOf } from "../pki/tbs.js";
import type { CertificateType, FourItems, Gender } from "../profile/types.js";
import type { CaLinkRecord, CaRecord, CertificateRow, ConsentRecord, LivenessStatus, StatusCheckRecord, StoredStatusCheck, CrlRecord, DisclosureRecord, DumpCrl, NoticeStatus, OcspResponderRecord, OcspSignerKey, ResidentRecord, ResidentStatus, SharedCertifiedKey, StoredNotice, VerifierCaRecord, VerifierFetch, VerifierKind, VerifierRecord, WrappedKeysSeen } from "./types.js";

type Int = number | bigint;

export interface CertRowDb {
  serial: string;
  ca_id: string;
  type: CertificateType;
  resident_code: string;
  municipality_code: string;
  name: string;
  address: string;
  birth_date: string;
  gender: Gender;
  not_before: Int;
  not_after: Int;
  issued_at: Int;
  der: Buffer;
  revoked_at: Int | null;
  reason: number | null;
  revocation_source: string | null;
  application_id: string | null;
  /** SQLite store version 30 / PostgreSQL 27 (null: issued before, or by a caller that gave none) */
  registry_sequence?: Int | null;
}

export interface ResidentRow {
  resident_code: string;
  municipality_code: string;
  name: string;
  address: string;
  birth_date: string;
  gender: string;
  status: string;
  /** SQLite store version 25 / PostgreSQL 19 (null: none, or closed before then) */
  successor_code?: string | null;
}

export interface NoticeRowDb {
  notice_id: string;
  resident_code: string;
  sequence: Int;
  kind: string;
  status: NoticeStatus;
  body: string;
  received_at: Int;
  applied_at: Int | null;
  revocations: number;
}

export interface CrlRowDb {
  ca_id: string;
  scope: string;
  number: bigint;
  this_update: Int;
  next_update: Int;
  entries: Int | null;
  path: string | null;
  sha256: string | null;
  state: CrlRecord["state"];
  /** a delta CRL's base number (SQLite store version 12 / PostgreSQL 6; absent before) */
  base_number?: Int | null;
}

/** The four items as the residents and certificates tables store them (same column names in both). */
/**
 * The certificate ids a store looks up for a liveness check (certificatesForStatus): a well-formed id is the
 * lower-case hex SHA-256 of the DER; anything else names no certificate, on either backend.
 */
export function wellFormedCertificateIds(ids: readonly string[]): string[] {
  return [...new Set(ids.filter((id) => /^[0-9a-f]{64}$/.test(id)))];
}

export function itemsOf(r: { name: string; address: string; birth_date: string; gender: string }): FourItems {
  return { name: r.name, address: r.address, birthDate: r.birth_date, gender: r.gender as Gender };
}

export function sameItems(a: FourItems, b: FourItems): boolean {
  return a.name === b.name && a.address === b.address && a.birthDate === b.birthDate && a.gender === b.gender;
}

/**
 * How the stores' lookup keys are made: the first 8 octets of a SHA-256 (the certificate id's, derIdKey; a certified
 * public key's, certifiedKeyOf). 8 octets, not the 32: each issuance puts an index entry at a random place, and the
 * shorter entry kept those indexes a fraction of the size (SQLite migration 23 says by how much); a lookup compares
 * the whole of each row it finds, so two rows sharing a key are told apart. PostgreSQL's index on the certificate id
 * (`substring(sha256(der) from 1 for 8)`) is the same key computed in SQL.
 */
const KEY_OCTETS = 8;

/** A key as the octets the stores keep, or as their hexadecimal digits (for statements that bind text and unhex() it). */
export type KeyEncoding = "buffer" | "hex";
type KeyIn<E extends KeyEncoding> = E extends "hex" ? string : Buffer;

/** The lookup key of `bytes` (KEY_OCTETS of their SHA-256) in `encoding`; crypto.hash: one native call (createHash/update/digest made three objects: 2.6 µs a certificate against ≈ 1). */
function keyOf<E extends KeyEncoding>(bytes: Uint8Array, encoding: E): KeyIn<E> {
  return (encoding === "hex" ? hash("sha256", bytes, "hex").slice(0, 2 * KEY_OCTETS) : hash("sha256", bytes, "buffer").subarray(0, KEY_OCTETS)) as KeyIn<E>;
}

/**
 * The key a certificate id (hex SHA-256 of the DER, what a verifier names in a liveness check) is looked up by:
 * the digest's first 8 octets (SQLite `der_sha256_prefix`, migration 23; PostgreSQL's index on the same).
 */
export function derIdKey<E extends KeyEncoding = "buffer">(der: Uint8Array, encoding: E = "buffer" as E): KeyIn<E> {
  return keyOf(der, encoding);
}

/** derIdKey of the certificate whose id (64 hexadecimal digits, well formed) is `id`, without its bytes. */
export function certificateIdKey<E extends KeyEncoding>(id: string, encoding: E): KeyIn<E> {
  const hex = id.slice(0, 2 * KEY_OCTETS);
  return (encoding === "hex" ? hex : Buffer.from(hex, "hex")) as KeyIn<E>;
}

/**
 * The key a certified public key is looked up by (SQLite version 29, PostgreSQL 26): the first 8 octets of the
 * SHA-256 of the certificate's subjectPublicKeyInfo — one key is certified to one resident, so every issuance asks
 * who holds it. A lookup compares the whole key of each row it finds (sameCertifiedKey). null for bytes with no key
 * to read (never one of ours).
 *
 * As "hex" for the SQLite issuing commit: node gives a digest asked for as a Buffer back as a Buffer made in C++ (and
 * a view of it is taken): for a 294-octet key, 16.7 K instructions a call against 13.1 K as hex (callgrind, the call
 * alone; ≈ 3.5 against ≈ 1 µs timed natively on a loaded host), on the thread that feeds the signers. SQLite binds
 * the text and unhex()es it (≈ 1 K), so the commit saves less than that.
 */
export function certifiedKeyOf<E extends KeyEncoding = "buffer">(der: Uint8Array, encoding: E = "buffer" as E): KeyIn<E> | null {
  const spki = subjectPublicKeyInfoOf(der);
  return spki ? keyOf(spki, encoding) : null;
}

/** A live certificate of a key held by more than one certificate, as Store.sharedCertifiedKeys reads it. */
export interface KeyHolderRow {
  readonly certifiedKey: Uint8Array;
  readonly serial: string;
  readonly caId: string;
  readonly type: CertificateType;
  readonly residentCode: string;
  readonly notAfter: Date;
  readonly der: Uint8Array;
}

/** Keys per page of Store.sharedCertifiedKeys: the certificates of a page's keys are read at once. */
export const SHARED_KEYS_PAGE = 1_000;

/**
 * The keys of `rows` (live certificates, in key then serial order) that certify one public key to more than one
 * resident. The 8 octets of `certified_key` are a lookup, not the key: certificates are grouped by their whole
 * subjectPublicKeyInfo (as sameCertifiedKey), so two keys that share the 8 octets are not one finding. One resident's
 * certificates of one key (a renewal that kept it) are not a finding either: issuance allows them. Pure.
 */
export function sharedKeysAmong(rows: readonly KeyHolderRow[]): SharedCertifiedKey[] {
  const byKey = new Map<string, Map<string, KeyHolderRow[]>>();
  for (const r of rows) {
    const key = Buffer.from(r.certifiedKey).toString("hex");
    const spki = subjectPublicKeyInfoOf(r.der)?.toString("hex") ?? "";
    let bySpki = byKey.get(key);
    if (!bySpki) byKey.set(key, (bySpki = new Map()));
    bySpki.get(spki)?.push(r) ?? bySpki.set(spki, [r]);
  }
  const found: SharedCertifiedKey[] = [];
  for (const [certifiedKey, bySpki] of byKey) {
    for (const holders of bySpki.values()) {
      if (new Set(holders.map((h) => h.residentCode)).size < 2) continue;
      found.push({ certifiedKey, certificates: holders.map((h) => ({ serial: h.serial, caId: h.caId, type: h.type, residentCode: h.residentCode, notAfter: h.notAfter })) });
    }
  }
  return found;
}

/**
 * Of `found` (sharedKeysAmong), the keys whose certificates are of more than one person. Codes a chain of
 * resident-code changes (住民票コード変更) joins, as the registry recorded them (`successors`: a closed record's code →
 * the code it gave the person), are one person: the registry took the change and the key was certified again under
 * the new code before the CA side ingested the change's notice (keyInUse allows it), which leaves the old code's
 * certificates filed under it until then. A change the store has not heard of yet cannot be told from two people.
 * Pure.
 */
export function peopleApart(found: readonly SharedCertifiedKey[], successors: ReadonlyMap<string, string>): SharedCertifiedKey[] {
  const parent = new Map<string, string>();
  const root = (code: string): string => {
    let r = code;
    for (let p = parent.get(r); p !== undefined && p !== r; p = parent.get(r)) r = p;
    parent.set(code, r);
    return r;
  };
  for (const [from, to] of successors) {
    const a = root(from);
    const b = root(to);
    if (a !== b) parent.set(a, b);
  }
  return found.filter((k) => new Set(k.certificates.map((c) => root(c.residentCode))).size > 1);
}

/**
 * The successor codes of `codes` and of the codes they lead to, read a round at a time (`read`: the registry's
 * successor_code of the codes asked, those that have one), each code once. At most 8 rounds, as codeChangeWalk:
 * no resident's history is longer.
 */
export async function successorsOf(codes: Iterable<string>, read: (codes: string[]) => Promise<ReadonlyMap<string, string>>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const asked = new Set<string>();
  let next = [...new Set(codes)];
  for (let round = 0; next.length && round < 8; round++) {
    for (const c of next) asked.add(c);
    const got = await read(next);
    for (const [from, to] of got) found.set(from, to);
    next = [...new Set([...got.values()].filter((c) => !asked.has(c)))];
  }
  return found;
}

/** Whether two certificates certify the same public key (the whole subjectPublicKeyInfo, octet for octet). */
export function sameCertifiedKey(a: Uint8Array, b: Uint8Array): boolean {
  const x = subjectPublicKeyInfoOf(a);
  const y = subjectPublicKeyInfoOf(b);
  return x !== undefined && y !== undefined && x.equals(y);
}

/**
 * Why a certificate may not certify the key of `held`, a certificate the store holds with the same key, for
 * `rec`'s resident and type (undefined: it may — the same resident's renewal of that certificate with its key).
 * A card holds one key pair per certificate type (shared/spec/JPKI.md "The card": EF 0017 the authentication
 * key, 001A the signature key, each behind its own PIN): the same key for two
 * residents, or for both types of one, means a copied or shared key; a key once revoked for keyCompromise (1)
 * is never certified again.
 */
export function keyInUse(
  rec: { readonly residentCode: string; readonly type: CertificateType },
  held: { readonly residentCode: string; readonly type: CertificateType; readonly reason: number | null },
  successorOf?: (residentCode: string) => string | undefined,
): "other-resident" | "other-type" | "compromised" | undefined {
  if (held.residentCode !== rec.residentCode && !codeChangedTo(held.residentCode, rec.residentCode, successorOf)) return "other-resident";
  if (held.reason === 1) return "compromised";
  if (held.type !== rec.type) return "other-type";
  return undefined;
}

/**
 * Whether the registry closed `from` for a resident-code change (住民票コード変更) that leads to `to`, following a few
 * changes (`successorOf`: the registry record's successor_code). Between the registry taking the change and the CA
 * side ingesting its notice, the person's certificates are still filed under the old code: the same person, not
 * "another resident" (as IssuanceService finds an application id's certificate under the old code).
 */
export function codeChangedTo(from: string, to: string, successorOf: ((residentCode: string) => string | undefined) | undefined): boolean {
  if (!successorOf) return false;
  const walk = codeChangeWalk(from, to);
  for (let step = walk.next(); ; step = walk.next(successorOf(step.value))) if (step.done) return step.value;
}

/**
 * The walk codeChangedTo makes, for a caller whose registry reads are asynchronous (IssuanceService reads them
 * through the store): it yields each code whose successor it needs and is given that successor back; it returns
 * whether `to` was reached. At most 8 changes are followed, and a cycle ends the walk: no resident's history is
 * longer, and a loop in bad data must not hang a commit.
 */
export function* codeChangeWalk(from: string, to: string): Generator<string, boolean, string | undefined> {
  const seen = new Set<string>();
  for (let code: string | undefined = from; code !== undefined && !seen.has(code) && seen.size < 8; ) {
    seen.add(code);
    code = yield code;
    if (code === to) return true;
  }
  return false;
}

export function toCertRow(r: CertRowDb): CertificateRow {
  return {
    serial: r.serial,
    caId: r.ca_id,
    type: r.type,
    residentCode: r.resident_code,
    municipalityCode: r.municipality_code,
    fourItems: itemsOf(r),
    notBefore: new Date(Number(r.not_before)),
    notAfter: new Date(Number(r.not_after)),
    issuedAt: new Date(Number(r.issued_at)),
    der: r.der,
    applicationId: r.application_id ?? undefined,
    ...(r.registry_sequence == null ? {} : { registrySequence: Number(r.registry_sequence) }),
    revocation:
      r.revoked_at === null ? undefined : { revokedAt: new Date(Number(r.revoked_at)), reason: r.reason ?? 0, source: r.revocation_source ?? "" },
  };
}

export function toResident(r: ResidentRow): ResidentRecord {
  const rec = { residentCode: r.resident_code, municipalityCode: r.municipality_code, status: r.status as ResidentStatus, fourItems: itemsOf(r) };
  // Absent, not undefined, when there is none: a dump's fingerprint and a deep comparison see the same record.
  return r.successor_code ? { ...rec, successorCode: r.successor_code } : rec;
}

/**
 * The new code a stored resident-code-change notice's body names, or undefined when it names none readable (a
 * migration filling in closed records' successors must not fail on one odd row).
 */
export function newResidentCodeOf(body: string): string | undefined {
  try {
    const to = (JSON.parse(body) as { newResidentCode?: unknown } | null)?.newResidentCode;
    return typeof to === "string" && to !== "" ? to : undefined;
  } catch {
    return undefined;
  }
}

export function toStoredNotice(r: NoticeRowDb): StoredNotice {
  return {
    noticeId: r.notice_id,
    residentCode: r.resident_code,
    sequence: Number(r.sequence),
    kind: r.kind,
    status: r.status,
    body: r.body,
    receivedAt: new Date(Number(r.received_at)),
    appliedAt: r.applied_at === null ? undefined : new Date(Number(r.applied_at)),
    revocations: r.revocations,
  };
}

export function toCrlRecord(r: CrlRowDb): CrlRecord {
  return {
    caId: r.ca_id,
    scope: r.scope ?? "",
    state: r.state,
    number: r.number,
    thisUpdate: new Date(Number(r.this_update)),
    nextUpdate: new Date(Number(r.next_update)),
    entries: Number(r.entries ?? 0),
    path: r.path ?? undefined,
    sha256: r.sha256 ?? undefined,
    ...(r.base_number !== null && r.base_number !== undefined ? { baseNumber: BigInt(r.base_number) } : {}),
  };
}

/** A CRL row as a store dump carries it (entries, path and sha256 stay absent on a reservation). */
export function toDumpCrl(r: CrlRowDb & { revision: Int }): DumpCrl {
  return {
    caId: r.ca_id,
    scope: r.scope ?? "",
    number: BigInt(r.number),
    state: r.state,
    thisUpdate: new Date(Number(r.this_update)),
    nextUpdate: new Date(Number(r.next_update)),
    entries: r.entries === null ? undefined : Number(r.entries),
    path: r.path ?? undefined,
    sha256: r.sha256 ?? undefined,
    revision: Number(r.revision),
    ...(r.base_number !== null && r.base_number !== undefined ? { baseNumber: BigInt(r.base_number) } : {}),
  };
}

export function toCa(r: Record<string, unknown>): CaRecord {
  return {
    id: r.id as string,
    prefectureCode: r.prefecture as string,
    purpose: r.purpose as CertificateType,
    certificateDer: r.cert_der as Buffer,
    encryptedKeyPem: r.key_pem as string,
    keyId: r.key_id as Buffer,
    createdAt: new Date(Number(r.created_at)),
    ...(r.key_ref ? { keyRef: r.key_ref as string } : {}),
  };
}

export function toCaLink(r: Record<string, unknown>): CaLinkRecord {
  return {
    oldCaId: r.old_ca_id as string,
    newCaId: r.new_ca_id as string,
    ...(r.old_with_new != null ? { oldWithNew: Buffer.from(r.old_with_new as Uint8Array) } : {}),
    ...(r.new_with_old != null ? { newWithOld: Buffer.from(r.new_with_old as Uint8Array) } : {}),
    createdAt: new Date(Number(r.created_at)),
    ...(r.compromised_at != null ? { compromisedAt: new Date(Number(r.compromised_at)) } : {}),
  };
}

export function toOcspResponder(r: Record<string, unknown>): OcspResponderRecord {
  return {
    caId: r.ca_id as string,
    serial: r.serial as string,
    certificateDer: Buffer.from(r.cert_der as Uint8Array),
    encryptedKeyPem: r.key_pem as string,
    notBefore: new Date(Number(r.not_before)),
    notAfter: new Date(Number(r.not_after)),
  };
}

/** Store.replaceCaKeys: the OCSP signing certificate re-encrypted is no longer the CA's current one. */
export function ocspSignerRenewed(caId: string): JpkiError {
  return new JpkiError(
    "ERR_WORKSPACE_LOCKED",
    `the OCSP signing certificate of CA ${caId} was renewed while its key was re-encrypted (a running 'jpki serve' schedule): no key was replaced; stop the schedule and retry`,
  );
}

/** A key of a WrappedKeysSeen that a rewrap has re-encrypted: named for a message, and as stored now. */
export interface RewrappedKey {
  readonly what: string;
  readonly kind: "ca" | "ocsp";
  /** undefined: its CA is gone */
  readonly encryptedKeyPem: string | undefined;
}

/**
 * The keys of `seen` that a rewrap has re-encrypted since they were read, judged by the keys stored now
 * (Store.putOcspResponder's condition); none when none was.
 */
export function rewrappedKeys(
  seen: WrappedKeysSeen,
  cas: ReadonlyArray<{ readonly id: string; readonly encryptedKeyPem: string }>,
  signers: readonly OcspSignerKey[],
): RewrappedKey[] {
  const out: RewrappedKey[] = [];
  const caKeys = new Map(cas.map((c) => [c.id, c.encryptedKeyPem]));
  for (const k of seen.cas) {
    const now = caKeys.get(k.id);
    if (now !== k.encryptedKeyPem) out.push({ what: `the key of CA ${k.id}`, kind: "ca", encryptedKeyPem: now });
  }
  const current = new Map(signers.map((k) => [k.caId, k]));
  for (const k of seen.ocspSigners) {
    const now = current.get(k.caId);
    if (now && now.serial === k.serial && now.encryptedKeyPem !== k.encryptedKeyPem) out.push({ what: `the OCSP signing key of CA ${k.caId}`, kind: "ocsp", encryptedKeyPem: now.encryptedKeyPem });
  }
  return out;
}

/** ERR_KEYS_REWRAPPED: `changed` (rewrappedKey) is no longer as this process opened it, so `refused` was not done. */
export function keysRewrapped(changed: string, refused: string, details: Record<string, unknown> = {}): JpkiError {
  return new JpkiError(
    "ERR_KEYS_REWRAPPED",
    `the CA keys were re-encrypted ('jpki ca rewrap') since this process opened them (${changed} changed): ${refused}, as its key would be under the passphrase this process holds, which may no longer be the workspace's; restart 'jpki serve' with the new passphrase (until then no OCSP signing certificate is renewed)`,
    { details: { changed, ...details } },
  );
}

/** Store.replaceCaKeys: a CA got an OCSP signing certificate after the rewrap read them, whose key it would leave behind. */
export function ocspSignerAdded(caId: string): JpkiError {
  return new JpkiError(
    "ERR_WORKSPACE_LOCKED",
    `CA ${caId} got an OCSP signing certificate while the keys were re-encrypted (a running 'jpki serve' schedule): no key was replaced; stop the schedule and retry`,
  );
}

/** Store.replaceCaKeys: the verifier CA was made (or its key replaced) after the rewrap read it, under the old passphrase. */
export function verifierCaChanged(): JpkiError {
  return new JpkiError(
    "ERR_WORKSPACE_LOCKED",
    "the verifier CA was made while the keys were re-encrypted (a 'jpki verifier add' at the same time): no key was replaced; run the rewrap again",
  );
}

export interface VerifierRowDb {
  id: string;
  name: string;
  kind: string;
  token_sha256: string | null;
  cert_sha256: string | null;
  cert_not_after: Int | null;
  created_at: Int;
  revoked_at: Int | null;
}

export function toVerifier(r: VerifierRowDb): VerifierRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as VerifierKind,
    tokenSha256: r.token_sha256 ?? undefined,
    certSha256: r.cert_sha256 ?? undefined,
    certNotAfter: r.cert_not_after === null ? undefined : new Date(Number(r.cert_not_after)),
    createdAt: new Date(Number(r.created_at)),
    revokedAt: r.revoked_at === null ? undefined : new Date(Number(r.revoked_at)),
  };
}

/** A verifier's columns in insert order (id, name, kind, token_sha256, cert_sha256, cert_not_after, created_at, revoked_at). */
export function verifierValues(v: VerifierRecord): unknown[] {
  return [v.id, v.name, v.kind, v.tokenSha256 ?? null, v.certSha256 ?? null, v.certNotAfter?.getTime() ?? null, v.createdAt.getTime(), v.revokedAt?.getTime() ?? null];
}

export interface VerifierFetchRowDb {
  verifier_id: string;
  scope: string;
  path: string;
  status: number;
  at: Int;
  count: Int;
  /** null in rows written before schema 11 (SQLite) / 5 (PostgreSQL): one fetch, at `at` */
  last_at: Int | null;
}

export function toVerifierFetch(r: VerifierFetchRowDb): VerifierFetch {
  const at = Number(r.at);
  return { verifierId: r.verifier_id, scope: r.scope, path: r.path, status: Number(r.status), at: new Date(at), count: Number(r.count), lastAt: new Date(r.last_at === null ? at : Number(r.last_at)) };
}

/** A fetch record's columns in insert order (verifier_id, scope, path, status, at, count, last_at). */
export function verifierFetchValues(f: VerifierFetch): [string, string, string, number, number, number, number] {
  return [f.verifierId, f.scope, f.path, f.status, f.at.getTime(), f.count, f.lastAt.getTime()];
}

export function toVerifierCa(r: { cert_der: Buffer; key_pem: string; created_at: Int }): VerifierCaRecord {
  return { certificateDer: r.cert_der, encryptedKeyPem: r.key_pem, createdAt: new Date(Number(r.created_at)) };
}

export interface DisclosureRowDb {
  verifier_id: string;
  serial: string;
  issuer: string;
  resident_code: string | null;
  purpose: string;
  legal_basis: string | null;
  at: Int;
  validation_time: Int;
  answer: string;
  items_disclosed: Int | boolean;
}

export function toDisclosure(r: DisclosureRowDb): DisclosureRecord {
  return {
    verifierId: r.verifier_id,
    serial: r.serial,
    issuer: r.issuer,
    residentCode: r.resident_code ?? undefined,
    purpose: r.purpose as CertificateType,
    legalBasis: r.legal_basis ?? undefined,
    at: new Date(Number(r.at)),
    validationTime: new Date(Number(r.validation_time)),
    answer: r.answer,
    itemsDisclosed: Boolean(Number(r.items_disclosed)),
  };
}

/** A disclosure record's columns in insert order (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed). */
export function disclosureValues(d: DisclosureRecord): [string, string, string, string | null, string, string | null, number, number, string, number] {
  return [d.verifierId, d.serial, d.issuer, d.residentCode ?? null, d.purpose, d.legalBasis ?? null, d.at.getTime(), d.validationTime.getTime(), d.answer, d.itemsDisclosed ? 1 : 0];
}

export interface StatusCheckRowDb {
  id: Int;
  verifier_id: string;
  at: Int;
  ca_id: string | null;
  serial: string | null;
  certificate_id: string | null;
  status: string;
  reason: Int | null;
  revoked_at: Int | null;
  replaced_by_ca_id: string | null;
  replaced_by_serial: string | null;
}

export function toStatusCheck(r: StatusCheckRowDb): StoredStatusCheck {
  return {
    id: Number(r.id),
    verifierId: r.verifier_id,
    at: new Date(Number(r.at)),
    caId: r.ca_id ?? undefined,
    serial: r.serial ?? undefined,
    certificateId: r.certificate_id ?? undefined,
    status: r.status as LivenessStatus,
    reason: r.reason === null ? undefined : Number(r.reason),
    revokedAt: r.revoked_at === null ? undefined : new Date(Number(r.revoked_at)),
    replacedBy: r.replaced_by_ca_id !== null && r.replaced_by_serial !== null ? { caId: r.replaced_by_ca_id, serial: r.replaced_by_serial } : undefined,
  };
}

/** A check's columns in insert order (verifier_id, at, ca_id, serial, certificate_id, status, reason, revoked_at, replaced_by_ca_id, replaced_by_serial). */
export function statusCheckValues(c: StatusCheckRecord): [string, number, string | null, string | null, string | null, string, number | null, number | null, string | null, string | null] {
  return [c.verifierId, c.at.getTime(), c.caId ?? null, c.serial ?? null, c.certificateId ?? null, c.status, c.reason ?? null, c.revokedAt?.getTime() ?? null, c.replacedBy?.caId ?? null, c.replacedBy?.serial ?? null];
}

export interface ConsentRowDb {
  resident_code: string;
  verifier_id: string;
  granted_at: Int;
  withdrawn_at: Int | null;
}

export function toConsent(r: ConsentRowDb): ConsentRecord {
  return { residentCode: r.resident_code, verifierId: r.verifier_id, grantedAt: new Date(Number(r.granted_at)), withdrawnAt: r.withdrawn_at === null ? undefined : new Date(Number(r.withdrawn_at)) };
}


/** A carried CRL entry's partition (Store.carryRevocations): its municipality, "" for none; ERR_INTERNAL for one that is no municipality code. */
export function carriedMunicipality(e: { readonly serial: string; readonly municipality?: string }): string {
  if (e.municipality === undefined) return "";
  if (!/^\d{6}$/.test(e.municipality)) throw new JpkiError("ERR_INTERNAL", `the CRL entry of ${e.serial} names ${JSON.stringify(e.municipality)} as its partition, which is no municipality code`);
  return e.municipality;
}
