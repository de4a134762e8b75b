/**
 * The store interface: everything the CA, registry and CRL services persist. It names no database:
 * SQLite (embedded default) implements it now, PostgreSQL next, and one test suite runs against both.
 * Every method is atomic on its own; multi-record methods commit all or nothing.
 *
 * Concurrency contract (issue 7): several processes, later several hosts, use one store at once, and there
 * is no workspace lock. Methods that decide (commitNoticeBatch, applyToRegistry, commitIssuances,
 * publishCrl, reserveCrl) must read what they decide from and write the outcome in one transaction that no
 * other writer can interleave with: SQLite takes its single write lock first (BEGIN IMMEDIATE); PostgreSQL
 * must lock the same facts — e.g. `pg_advisory_xact_lock` per resident code for notice batches and registry
 * changes, the CA's crl_state row `FOR UPDATE` for CRL reservation and publication — or run SERIALIZABLE and
 * retry the whole call (the decide callbacks are pure for that reason).
 */
import type { EncodedEntries, EntriesTotal } from "../profile/crl-entry.js";
import type { CertificateType, FourItems } from "../profile/types.js";
import type { AuditCheckpoint, AuditEntry, AuditQuery, AuditRecord } from "./audit-log.js";
import { JpkiError, isJpkiError } from "../errors.js";

export type ResidentStatus = "active" | "deceased" | "removed";

export interface ResidentRecord {
  readonly residentCode: string;
  readonly municipalityCode: string;
  readonly fourItems: FourItems;
  readonly status: ResidentStatus;
  /**
   * On a record closed by a resident-code change (住民票コード変更; status "removed"), the code the person has
   * had since: a later notice still filed under this code is applied there (registry/apply.ts). Absent on every
   * other record, and on one closed before stores kept it (SQLite version 25, PostgreSQL 19) where the
   * migration could not tell.
   */
  readonly successorCode?: string;
}

export interface CaRecord {
  /** e.g. "13-sig", "13-auth" */
  readonly id: string;
  readonly prefectureCode: string;
  readonly purpose: CertificateType;
  readonly certificateDer: Buffer;
  /** encrypted PKCS#8 PEM; empty when the key is in a PKCS#11 token (keyRef) */
  readonly encryptedKeyPem: string;
  readonly keyId: Buffer;
  readonly createdAt: Date;
  /**
   * Where the key is when it is not in the store: an RFC 7512 URI naming the PKCS#11 module (module-path), the
   * token, and the key's label and CKA_ID (pki/pkcs11.ts). Absent for a software key.
   */
  readonly keyRef?: string;
}

/**
 * The link certificates of one CA key rollover (鍵更新; RFC 4210 §4.4 "root CA key update"; ca/rollover.ts): the
 * new key certified by the old one (OldWithNew) and the old key certified by the new one (NewWithOld), so a
 * verifier trusting either generation's self-signed certificate validates certificates of the other. Stored
 * with the new generation's CA record, in the transaction that creates it, and never changed after.
 */
export interface CaLinkRecord {
  /** the generation that was active before the rollover, e.g. "13-sig" */
  readonly oldCaId: string;
  /** the generation the rollover created, e.g. "13-sig-g2" */
  readonly newCaId: string;
  /**
   * the new public key under the old key's signature (issuer: old, AKI: old key, subject: new, SKI: new key).
   * Absent, as newWithOld is, after a rollover for a compromised key (鍵危殆化): neither generation vouches for the
   * other, the new root is distributed out of band. Both or neither (the stores refuse one alone).
   */
  readonly oldWithNew?: Buffer;
  /** the old public key under the new key's signature */
  readonly newWithOld?: Buffer;
  readonly createdAt: Date;
  /**
   * When the old generation's key was declared compromised after this (ordinary) rollover (Store.declareCaCompromised,
   * `jpki ca compromised`): from then both link certificates are on ARLs (cACompromise, revoked at this time), and
   * the old generation is trusted by nothing of jpki's (ca/compromised.ts). Absent for a link-less rollover: that
   * one was made for a compromise already, and has no link to revoke.
   */
  readonly compromisedAt?: Date;
}

/** What Store.declareCaCompromised did. */
export interface CaCompromiseRecord {
  /** the generation whose key is compromised */
  readonly caId: string;
  /** the generation its links joined it to: NewWithOld goes on this one's ARL */
  readonly successorCaId: string;
  /** when the compromise was recorded (the links' revocation time) */
  readonly at: Date;
  /** recorded before (or rolled over for a compromised key, without links): nothing changed */
  readonly already: boolean;
}

/** 発行情報: what the CA certified, kept with the certificate for matching later change notices. */
export interface IssuanceRecord {
  readonly serial: string;
  readonly caId: string;
  readonly type: CertificateType;
  readonly residentCode: string;
  readonly municipalityCode: string;
  /** the four items as certified (the registry's true form at issuance) */
  readonly fourItems: FourItems;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuedAt: Date;
  readonly der: Buffer;
  /** the municipal counter's application id, when it gave one: issuing it again returns this certificate */
  readonly applicationId?: string | undefined;
  /**
   * The registry record's notice sequence when the items were read (see ResidentForIssuance). The commit
   * re-reads the record in its own transaction and refuses the certificate if the record moved on since.
   */
  readonly registrySequence?: number | undefined;
}

/**
 * 発行情報 as the registry side (住基ネット) registered it (電子証明書発行者情報の登録), shared/spec/JPKI.md "The link
 * between the two networks" step 1: the registry network's own copy, apart from the CA's issuance records. The
 * store registers it in the transaction that commits the certificate (commitIssuances) and withdraws it in every
 * transaction that revokes the certificate, so nothing is issued without it and no revoked certificate keeps
 * it: `registeredIssuances` never returns a revoked certificate's. (Notice batches, on both stores, leave the
 * row and the reads filter it out, which costs less per revocation, and `sweepRegisteredIssuances` deletes it
 * later; the other revoking transactions delete it there and then.) Expired ones are not removed on expiry: whoever compares
 * ignores those not valid at the time of the change ({@link isRegistered}), and `sweepRegisteredIssuances`
 * deletes them (registry/issuance-sweep.ts runs it daily from the CRL schedule of `jpki serve` and `jpki watch`).
 */
export interface RegisteredIssuance {
  readonly serial: string;
  readonly caId: string;
  /** signature (署名用) or authentication (利用者証明用) */
  readonly type: CertificateType;
  /** the resident's code at the registry (follows a resident-code change) */
  readonly residentCode: string;
  /** the four items as certified */
  readonly fourItems: FourItems;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Whether registered issuance information still stands at `at`: not yet expired (notAfter is inclusive, RFC 5280 §4.1.2.5). */
export function isRegistered(r: Pick<RegisteredIssuance, "notAfter">, at: Date): boolean {
  return r.notAfter.getTime() >= at.getTime();
}

/** How Store.sweepRegisteredIssuances walks the table. */
export interface SweepOptions {
  /** rows looked at per transaction (default 4096) */
  readonly batchSize?: number;
  /** stops between two transactions */
  readonly signal?: AbortSignal;
}

/** Rows Store.sweepRegisteredIssuances looks at per transaction unless told otherwise. */
export const SWEEP_BATCH = 4096;

/** The batch size a sweep uses (a programming error, not input, when it is no whole number ≥ 1). */
export function sweepBatchSize(opts: SweepOptions | undefined): number {
  const n = opts?.batchSize ?? SWEEP_BATCH;
  if (!Number.isInteger(n) || n < 1) throw new RangeError("batchSize must be a whole number ≥ 1");
  return n;
}

/**
 * A change notice the registry side decided and has not delivered yet: a row of its transactional outbox
 * (送信待ち). Store.applyToRegistry writes it in the transaction that changes the record, so a process killed
 * after that commit leaves the notice here instead of losing it; whoever delivers it (registry/counter-link.ts)
 * acknowledges it afterwards (Store.ackOutbox). Delivery is at least once: the CA side's ingestion skips a
 * notice id it already has (ca/notices.ts), so a notice delivered twice is applied once.
 */
export interface OutboxNotice {
  readonly noticeId: string;
  /** the resident code the notice is filed under (its `residentCode`: the old one of a resident-code change) */
  readonly residentCode: string;
  readonly sequence: number;
  /** the notice as canonical JSON (registry/notice.ts noticeToInput): what is delivered, as it is */
  readonly body: string;
  /** when the registry side decided it (the deciding process's clock) */
  readonly createdAt: Date;
}

/**
 * meta's key for the workspace's counter notice id key (Store.counterNoticeIdKey): 32 random bytes, hex. Secret
 * (with it, a notice id names its resident again), and kept with the store's facts so that it moves with them:
 * a store copy carries it in the dump's header, a backup copies meta with every table.
 */
export const COUNTER_NOTICE_ID_KEY = "counter.notice_id_key";

/** What issuance reads about a resident: the registry record and how far each side of the link has got. */
/**
 * What a registry change decides ({@link Store.applyToRegistry}), given readers of the current records and of the
 * issuance information registered under a code (expired or not), both read inside the write transaction.
 */
export type RegistryDecide<T> = (
  read: (residentCode: string) => (ResidentRecord & { readonly noticeSequence: number }) | undefined,
  registered: (residentCode: string) => readonly RegisteredIssuance[],
) => {
  readonly put: ReadonlyArray<ResidentRecord & { readonly noticeSequence: number }>;
  readonly remove: readonly string[];
  readonly relink?: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  readonly enqueue?: readonly OutboxNotice[];
  /** the audit record, when not the generic "registry.change" (a bulk import is "registry.load") */
  readonly audit?: AuditEntry;
  readonly result: T;
};

export interface ResidentForIssuance {
  readonly record: ResidentRecord;
  /** the sequence of the last change notice the registry applied to this record (0: none) */
  readonly registrySequence: number;
  /** the sequence of the last change notice the CA side applied for this resident code (0: none) */
  readonly caSequence: number;
}

/** How one issuance record fared at commit. */
export type IssuanceCommitResult =
  | { readonly status: "committed"; readonly superseded: readonly string[] }
  /** the application id was committed before (by this or another process): nothing was inserted */
  | { readonly status: "duplicate-application"; readonly existing: CertificateRow }
  /**
   * Not committed: the registry record changed after the items were read ("registry-changed": sign again),
   * or the CA side has applied change notices the registry has not ("registry-behind": the items may be
   * stale until 'jpki registry apply' catches up), or the record is gone or closed ("resident-gone").
   */
  | { readonly status: "stale"; readonly why: "registry-changed" | "registry-behind" | "resident-gone" }
  /**
   * Not committed: the store holds a certificate (`serial`) of the same public key for another resident, or
   * of the other type, or revoked for keyCompromise (rows.ts keyInUse). Signing again changes nothing.
   */
  | { readonly status: "key-in-use"; readonly serial: string; readonly why: "other-resident" | "other-type" | "compromised" };

export interface RevocationInfo {
  readonly revokedAt: Date;
  readonly reason: number;
  /** what caused it: "manual", "superseded:<serial>", later "notice:<id>" */
  readonly source: string;
}

export interface CertificateRow extends IssuanceRecord {
  readonly revocation: RevocationInfo | undefined;
}

/** What the store holds of a carried-over CRL entry (Store.carriedRevocations). */
export interface CarriedStatus {
  readonly caId: string;
  readonly revokedAt: Date;
  /** CRLReason code (0: none given) */
  readonly reason: number;
}

/** A CRL entry carried over for a certificate the store holds no row of (Store.carryRevocations). */
export interface CarriedRevocation {
  readonly caId: string;
  /** hex, as CRLs list it */
  readonly serial: string;
  readonly revokedAt: Date;
  /** CRLReason code (0 writes no extension) */
  readonly reason: number;
  /** until when CRLs list it: the certificate's notAfter, or a bound on it (its CA's notAfter) */
  readonly notAfter: Date;
  /** the municipality partition that listed it (6 digits), when one did: its partition CRL lists it too */
  readonly municipality?: string;
}

export interface RevokeInput extends RevocationInfo {
  readonly serial: string;
}

/**
 * What a CRL covers (RFC 5280 §5.2.5 "scope"): "" the full CRL of a CA, a 6-digit municipality code for that
 * municipality's partition, "arl" for the authority revocation list. CRL numbers come from one sequence per CA
 * shared by all its scopes (crl/scope.ts), so each scope's numbers only increase and never repeat.
 */
export type CrlScope = string;

export const FULL_SCOPE: CrlScope = "";
export const ARL_SCOPE: CrlScope = "arl";
/**
 * The delta CRL of a CA's full CRL (RFC 5280 §5.2.4; crl/delta.ts). A row scope of its own, so it has its own
 * file, its own "latest" and only ever moves to a higher number, while it numbers from the CA's one sequence
 * as the complete CRL it is based on does. It has no crl_scopes row: it never marks anything clean.
 */
export const DELTA_SCOPE: CrlScope = "delta";

/**
 * The largest CRL number a store keeps (a signed 64-bit integer column; RFC 5280 allows 20 octets, far more): the
 * ceiling of every CA's sequence and of the Bridge's ARL numbers. Only an altered file or row comes near it.
 */
export const MAX_CRL_NUMBER = 2n ** 63n - 1n;

export interface CrlRecord {
  readonly caId: string;
  readonly scope: CrlScope;
  /** reserved: numbered, not (yet) on disk; published: the file on disk; superseded: a higher number won */
  readonly state: "reserved" | "published" | "superseded";
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  /** workspace-relative path of the published file, set once it is written */
  readonly path: string | undefined;
  readonly sha256: string | undefined;
  /** a delta CRL's base: the number of the complete CRL its deltaCRLIndicator names (absent on other CRLs) */
  readonly baseNumber?: bigint;
}

export interface CertificateQuery {
  readonly caId?: string;
  readonly residentCode?: string;
  readonly type?: CertificateType;
  readonly status?: "valid" | "revoked" | "all";
  readonly limit?: number;
}

/**
 * A certificate as certified, without its DER: what notice matching needs. The four items come with a signature
 * certificate (署名用) only, the one type whose items a notice compares (NOTICE_RULES: revoke-if-changed); an
 * authentication certificate's are never compared, so a store does not read them (decoding them cost about 9,000
 * instructions a notice and the garbage of four strings a row on the committing thread).
 */
export type CertifiedRow = CertifiedSignatureRow | CertifiedAuthenticationRow;

interface CertifiedRowBase {
  readonly serial: string;
  readonly caId: string;
  readonly residentCode: string;
  /** the registry record's notice sequence at issuance (IssuanceRecord.registrySequence), where the store kept it */
  readonly issuedAtSequence?: number | undefined;
}

export interface CertifiedSignatureRow extends CertifiedRowBase {
  readonly type: "signature";
  readonly fourItems: FourItems;
}

export interface CertifiedAuthenticationRow extends CertifiedRowBase {
  readonly type: "authentication";
  readonly fourItems?: undefined;
}

export type NoticeStatus = "applied" | "held";

/**
 * A notice's canonical JSON as ingestion hands it to the store: the text, or its UTF-8 bytes. A reader thread sends
 * the bytes (ca/notice-reader.ts), so the committing thread binds them as they are, without converting a string to
 * UTF-8 on the busiest thread. Stored, both are the same text: a store keeps those bytes as text, and reads it back as
 * a string.
 */
export type NoticeBody = string | Uint8Array;

/** A change notice as the store keeps it: the canonical JSON body plus what ingestion decided. */
export interface StoredNotice {
  readonly noticeId: string;
  readonly residentCode: string;
  readonly sequence: number;
  readonly kind: string;
  readonly status: NoticeStatus;
  /** canonical JSON of the notice */
  readonly body: string;
  readonly receivedAt: Date;
  readonly appliedAt: Date | undefined;
  readonly revocations: number;
}

/** Where a page of held notices ends: the next page starts after this resident code and sequence. */
export interface HeldNoticeKey {
  readonly residentCode: string;
  readonly sequence: number;
}

/** What ingestion reads before deciding a batch, in the transaction that commits it. */
export interface NoticeContext {
  /**
   * notice ids of the batch already in the store, with their status, canonical body, when they were received and,
   * once applied, when (the `at` of the batch that stored or applied them: a run tells its own from an earlier run's
   * by it — a notice an earlier run held and this run applied is this run's doing)
   */
  readonly known: ReadonlyMap<string, { readonly status: NoticeStatus; readonly body: string; readonly receivedAt: Date; readonly appliedAt?: Date }>;
  /** last applied sequence per resident (absent: none yet) */
  readonly lastSequence: ReadonlyMap<string, number>;
  /** held notices per resident, by sequence */
  readonly held: ReadonlyMap<string, readonly StoredNotice[]>;
  /** unrevoked certificates per resident */
  readonly certificates: ReadonlyMap<string, readonly CertifiedRow[]>;
  /**
   * residents the registry knows, with the sequence of the last notice the registry applied to each: at least
   * for the codes asked about that the CA knows nothing of (never certified, no sequence), for
   * `registryCodes`, and for both codes of every held resident-code change found (a store may return more)
   */
  readonly residents: ReadonlyMap<string, number>;
  /**
   * Of `residents`, the records the registry closed for a resident-code change, with the code it gave the person
   * (successorCode): the registry's word that the new code is the same person, whatever was issued under it since.
   * Absent in a store that does not say (then no change is taken on the registry's word).
   */
  readonly successors?: ReadonlyMap<string, string>;
  /** of the codes asked about, those under which the CA ever issued a certificate (revoked or not) */
  readonly everCertified: ReadonlySet<string>;
  /**
   * Applied resident-code changes (住民票コード変更) away from the codes asked about, old code → new code, and on
   * from the codes they lead to (whose context the other fields then hold too): a notice that still names an old
   * code is about the person now under the new one.
   */
  readonly codeChanges: ReadonlyMap<string, string>;
}

/** The keys a notice batch reads its context for. */
export interface NoticeContextKeys {
  readonly noticeIds: readonly string[];
  /** every resident code the batch names, new codes of resident-code changes included */
  readonly residentCodes: readonly string[];
  /** codes whose registry record is needed even when the CA knows them: both codes of a resident-code change */
  readonly registryCodes?: readonly string[];
}

/** One ingestion batch, committed all or nothing. */
export interface NoticeCommit {
  readonly at: Date;
  /** new notices (insert) and held ones now applied (update), in order */
  readonly notices: ReadonlyArray<{
    readonly noticeId: string;
    readonly residentCode: string;
    readonly sequence: number;
    readonly kind: string;
    readonly body: NoticeBody;
    readonly status: NoticeStatus;
    readonly revocations: number;
  }>;
  readonly sequences: ReadonlyArray<{ readonly residentCode: string; readonly last: number }>;
  /**
   * Revocations; a certificate already revoked is left as it is. `residentCode` is the code the certificate
   * was read under (the store follows this batch's relinks from it); a store may use it to find the
   * certificate without a lookup by serial.
   */
  readonly revocations: ReadonlyArray<{ readonly serial: string; readonly reason: number; readonly source: string; readonly residentCode?: string }>;
  /** resident-code changes (住民票コード変更): issuance records, sequences and the disclosure log move to the new code */
  readonly relinks: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** CAs that revoked something: their revision is bumped, so they stay due until a CRL covers it */
  readonly dirtyCas: readonly string[];
}

/** A CRL number handed out together with the CA revision it is sure to cover. */
export interface CrlReservation {
  readonly number: bigint;
  /** the CA's revision when the number was reserved: every revocation up to it is on this CRL */
  readonly revision: number;
}

/** A delta CRL's number, with the complete CRL it is built on. */
export interface DeltaCrlReservation extends CrlReservation {
  /** the base: the CA's latest published full CRL, whose number goes into deltaCRLIndicator */
  readonly baseNumber: bigint;
  /** the delta's nextUpdate as recorded: the one asked for, or the base's when that is earlier (§5.2.4) */
  readonly nextUpdate: Date;
}

/** Per CA, what the delta CRL cadence decides from (crl/schedule.ts). */
export interface DeltaCrlStatus {
  readonly caId: string;
  /** the latest published full CRL */
  readonly base: CrlRecord | undefined;
  /**
   * whether a delta can be built on `base`: the store recorded, when the base was reserved, what it had
   * revoked by then (false for a base published before the store kept that, or one loaded by a store copy)
   */
  readonly deltaReady: boolean;
  /** the latest published delta CRL (its baseNumber says on which base) */
  readonly delta: CrlRecord | undefined;
  /** revocations were committed after the latest delta was reserved (true when there is none) */
  readonly pending: boolean;
}

/** Per CA and scope (partition or ARL), what the CRL schedule decides from. */
export interface CrlScopeStatus {
  readonly caId: string;
  readonly scope: CrlScope;
  readonly latest: CrlRecord | undefined;
  /** revocations in the scope (or an unfinished publication of it) not yet covered by a published CRL */
  readonly dirty: boolean;
}

/** Per CA, what the CRL schedule decides from. */
export interface CrlStatus {
  readonly caId: string;
  readonly latest: CrlRecord | undefined;
  /** revocations (or an unfinished publication) not yet covered by a published CRL */
  readonly dirty: boolean;
}

/**
 * A CA's delegated OCSP signing certificate (RFC 6960 §4.2.2.2: id-kp-OCSPSigning, id-pkix-ocsp-nocheck,
 * short-lived) and its key, encrypted at rest as CA keys are (pki/key-wrap.ts). One current per CA; a renewal
 * replaces it (responses signed by the old one carry it and stay verifiable until they expire).
 */
export interface OcspResponderRecord {
  readonly caId: string;
  /** lower-case hex, as certificate serials */
  readonly serial: string;
  readonly certificateDer: Buffer;
  /** encrypted PKCS#8 PEM */
  readonly encryptedKeyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * The verifier CA's key in a rewrap (Store.replaceCaKeys): `before` is its encrypted key as the rewrap read it
 * (undefined: there was no verifier CA), `encryptedKeyPem` the same key re-encrypted (absent with no verifier CA).
 */
export interface VerifierCaKey {
  readonly before: string | undefined;
  readonly encryptedKeyPem?: string;
}

/** A re-encrypted key for the OCSP signing certificate `serial` of CA `caId` (Store.replaceCaKeys). */
export interface OcspSignerKey {
  readonly caId: string;
  readonly serial: string;
  readonly encryptedKeyPem: string;
}

/**
 * The passphrase-wrapped keys a process opened (or wrote itself), as it read them: the condition of
 * Store.putOcspResponder. A rewrap (Store.replaceCaKeys) gives each a new encryption, so finding one stored
 * otherwise tells the process that its passphrase may no longer be the workspace's.
 */
export interface WrappedKeysSeen {
  /** CA keys (software ones: a token key's record holds none) */
  readonly cas: ReadonlyArray<{ readonly id: string; readonly encryptedKeyPem: string }>;
  /** OCSP signing keys by CA and serial: one renewed since (another serial) is no sign of a rewrap */
  readonly ocspSigners: readonly OcspSignerKey[];
}

/** What an OCSP answer needs of a certificate: who issued it and whether (when, why) it is revoked. */
export interface CertificateStatusRow {
  readonly caId: string;
  readonly revocation: { readonly revokedAt: Date; readonly reason: number } | undefined;
}

/** The two kinds of registered signature verifier (署名検証者) the spec names: 行政機関 and 民間認証事業者. */
export type VerifierKind = "government" | "private";

/**
 * A registered signature verifier (署名検証者) and its credentials: the SHA-256 of its bearer token and/or the
 * SHA-256 fingerprint of the client certificate the verifier CA issued it. The token itself is never stored.
 */
export interface VerifierRecord {
  /** e.g. "v-3f9c0a1b2c4d" */
  readonly id: string;
  readonly name: string;
  readonly kind: VerifierKind;
  /** hex SHA-256 of the bearer token, when it has one */
  readonly tokenSha256: string | undefined;
  /** hex SHA-256 of its client certificate's DER, when it has one */
  readonly certSha256: string | undefined;
  /** the client certificate's notAfter (for listing) */
  readonly certNotAfter: Date | undefined;
  readonly createdAt: Date;
  /** set once revoked: from then on every credential of it is refused */
  readonly revokedAt: Date | undefined;
}

/**
 * The verifier CA: the workspace's own CA for verifiers' client certificates (mutual TLS). Its key is encrypted
 * like the CA keys (pki/keys.ts); it signs nothing JPKI publishes.
 */
export interface VerifierCaRecord {
  readonly certificateDer: Buffer;
  /** encrypted PKCS#8 PEM */
  readonly encryptedKeyPem: string;
  readonly createdAt: Date;
}

/** What a verifier fetched (or was refused), for the validation API's disclosure log. */
export interface VerifierFetch {
  readonly verifierId: string;
  /** the route's scope, e.g. "crl", "arl", "ca-certificate", "crl-index" */
  readonly scope: string;
  /** the path asked for, without the query */
  readonly path: string;
  readonly status: number;
  /** when the first of these fetches was answered */
  readonly at: Date;
  /**
   * How many identical fetches (same verifier, path and status) this record stands for, answered between `at`
   * and `lastAt`: jpki serve aggregates a verifier's polls per flush interval (server/access.ts) instead of a
   * row per request.
   */
  readonly count: number;
  readonly lastAt: Date;
}

/**
 * One answer of the validation API (`POST /v1/validate`), kept for the resident's right to know who checked
 * their certificates and when (the disclosure log; `jpki disclosure --resident`). It holds no four items, only
 * whether they were disclosed.
 */
export interface DisclosureRecord {
  readonly verifierId: string;
  /** the certificate's serial, lower-case hex */
  readonly serial: string;
  /** the issuing CA's id when the certificate is ours (e.g. "13-sig"), else its issuer name */
  readonly issuer: string;
  /** the resident the certificate was issued to, when it is ours */
  readonly residentCode: string | undefined;
  readonly purpose: CertificateType;
  /** the legal basis named (a code of verifier/legal-basis.ts), when one was */
  readonly legalBasis: string | undefined;
  /** when the answer was given */
  readonly at: Date;
  /** the validation time asked about */
  readonly validationTime: Date;
  /**
   * the status the verifier was told (its view: a private provider sees valid / revoked / unknown). A liveness
   * check (POST /v1/status) records `status:good`, `status:revoked` or `status:unknown`, with `+link` when the
   * answer named the certificate that replaced this one (新旧証明書の紐付け), so the resident sees that too.
   */
  readonly answer: string;
  /** whether the resident's current four items went with the answer */
  readonly itemsDisclosed: boolean;
}

/**
 * When a write of the verifier API's records must be done by (store/watchdog.ts): `deadline` on performance.now()'s
 * clock. Past it, a store that has not begun the write does not begin it and fails ERR_STORE_UNRESPONSIVE — the
 * API has answered its client 503 by then, and a record of an answer that was not given would tell the resident
 * of a check that did not happen. SQLite keeps it (its write waits for the lock in this process: it stops trying);
 * PostgreSQL keeps it until the statement is sent, through the watchdog's call the write runs in (postgres.ts #tie:
 * a connection that comes free past it sends nothing), but cannot take back a statement it has sent, which may
 * still commit after the deadline, its connection closed or not (the log then holds a request that was answered
 * 503: disclosure-log.ts says why that side is the safe one).
 */
export interface WriteDeadline {
  readonly deadline?: number;
}

/** A disclosure record to append (Store.appendDisclosures); `tbs`: resolve its owner from the store as it is written. */
export type DisclosureAppend = DisclosureRecord & { readonly tbs?: Uint8Array };

/** Whose an answered certificate is, as appendDisclosures resolved it. */
export interface DisclosureOwner {
  readonly caId: string;
  readonly residentCode: string;
}

/** The answer of one liveness check (現況確認): still good, revoked, or unknown (not ours, not found, expired). */
export type LivenessStatus = "good" | "revoked" | "unknown";

/**
 * One checked item of a liveness check (`POST /v1/status`), kept in the asking verifier's check history: which
 * certificate (as asked: by CA and serial, or by certificate id) and what the verifier was told.
 */
export interface StatusCheckRecord {
  readonly verifierId: string;
  /** when the answer was given */
  readonly at: Date;
  /** the issuing CA's id, as asked */
  readonly caId: string | undefined;
  /** the serial, lower-case hex, as asked */
  readonly serial: string | undefined;
  /** the certificate id (hex SHA-256 of the DER), as asked */
  readonly certificateId: string | undefined;
  readonly status: LivenessStatus;
  /** the CRLReason code and revocation time, when the verifier was told them (government bodies) */
  readonly reason: number | undefined;
  readonly revokedAt: Date | undefined;
  /** the certificate that replaced this one, when the verifier was told it (新旧証明書の紐付け) */
  readonly replacedBy: { readonly caId: string; readonly serial: string } | undefined;
}

/** A check of the history with its position: `id` orders a verifier's history and is the paging cursor. */
export interface StoredStatusCheck extends StatusCheckRecord {
  readonly id: number;
}

/**
 * A resident's consent, recorded by the registry side, that a verifier may learn which certificate replaced
 * one it knows (新旧証明書の紐付け). Live while `withdrawnAt` is unset; a withdrawn consent stays as history.
 */
export interface ConsentRecord {
  readonly residentCode: string;
  readonly verifierId: string;
  readonly grantedAt: Date;
  readonly withdrawnAt: Date | undefined;
}

/**
 * A CA id that is never to be created again (Store.retireCaIds): CRLs were published under it by a CA this store
 * does not hold (made after the backup a restore put back). A new CA under that id would be a second key with the
 * same CRL URLs and issuer name, numbering its CRLs from 1 again: RFC 5280 §5.2.3 forbids the repeated number.
 */
export interface RetiredCaIdRecord {
  readonly id: string;
  readonly retiredAt: Date;
  /** why, for the operator: e.g. "CRLs published up to number 7; not in the backup restored on …" */
  readonly reason: string;
}

/**
 * A public key live certificates of more than one resident certify (Store.sharedCertifiedKeys). Codes a chain of
 * resident-code changes the store holds (residents.successor_code) joins are one resident (rows.ts peopleApart).
 */
export interface SharedCertifiedKey {
  /** `certified_key` in hex: 8 octets of the SHA-256 of the subjectPublicKeyInfo (rows.ts certifiedKeyOf) */
  readonly certifiedKey: string;
  /** its live certificates, by serial: of two residents at least */
  readonly certificates: ReadonlyArray<{ readonly serial: string; readonly caId: string; readonly type: CertificateType; readonly residentCode: string; readonly notAfter: Date }>;
}

/**
 * Blocks of the revocation log a CRL publisher already holds (crl/reuse.ts: the CA's previous full CRL on this
 * host's disk). A store that can tell a block's SHA-256 without sending the block (PostgreSQL) asks for each whole
 * block it would list; what comes back must be exactly the block's DER (the holder checks it against `digest`, so
 * a previous CRL altered or replaced on disk is never reused), and the store reads only the blocks it is not given.
 * A store for which reading is as cheap as asking (SQLite: the log is on local pages) may ignore it.
 */
export interface KnownBlocks {
  /** whether block `id` of `length` bytes is held (cheap: no bytes read or hashed) */
  has(id: string, length: number): boolean;
  /** the DER of block `id` if held and its SHA-256 is `digest`, else undefined (the store reads it) */
  take(id: string, length: number, digest: Buffer): Buffer | undefined;
}

/**
 * A CRL install's own failure inside Store.publishCrls (guardedInstall), told apart from the store's. Caught inside the
 * stores, which return `error` (the install's own error) for its CRL; a proper error all the same, so that one that
 * escaped says what failed: a plain object read "undefined" as a message, and had no code, no stack. Its code and
 * message are the install's (a JpkiError's, such as ERR_FILE_UNUSABLE), ERR_INTERNAL for anything else.
 */
export class CrlInstallFailed extends JpkiError {
  constructor(readonly error: unknown) {
    super(isJpkiError(error) ? error.code : "ERR_INTERNAL", `a CRL could not be installed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      ...(isJpkiError(error) && error.details ? { details: { ...error.details } } : {}),
    });
    this.name = "CrlInstallFailed";
  }
}

/** `install` with its failure thrown as CrlInstallFailed: what the stores' publishCrls run for each CRL. */
export function guardedInstall(install: () => void): () => void {
  return () => {
    try {
      install();
    } catch (e) {
      throw new CrlInstallFailed(e);
    }
  };
}

/** What a publication records of a reserved CRL (Store.publishCrl, publishCrls). */
export interface PublishedCrlRecord {
  readonly caId: string;
  readonly number: bigint;
  readonly entries: number;
  readonly path: string;
  readonly sha256: string;
  readonly scope?: CrlScope;
}

/** Store.disclosureIndex: what a background indexer of the disclosure log has done. */
export interface DisclosureIndexWatch {
  /** Runs that failed since the store opened (each retried once another quarter batch of records is appended). */
  readonly failures: number;
  /** Records this process appended above the mark it last saw: stays under a batch (4,096) while the indexer keeps up. */
  readonly behind: number;
  /** Called with each failure (a JpkiError of the store's: its code and our words, no row). */
  onFailure: ((e: JpkiError) => void) | undefined;
}

export interface Store {
  readonly kind: "sqlite" | "postgres";
  close(): Promise<void>;
  /**
   * One statement that reads nothing of the workspace (`SELECT 1`): whether the store answers at all. jpki serve's
   * store watchdog sends it while stalled (store/watchdog.ts `probe`), so a stall ends once the store is back even
   * when no request comes to probe it.
   */
  ping(): Promise<void>;

  /** ERR_CA_EXISTS when the id is taken, ERR_CA_RETIRED when it was retired (retireCaIds). */
  putCa(ca: CaRecord): Promise<void>;
  getCa(id: string): Promise<CaRecord | undefined>;
  listCas(): Promise<CaRecord[]>;
  /**
   * A key rollover's commit: the new generation's CA record and its link certificates in one transaction.
   * ERR_ROLLOVER_CONFLICT when the new id exists already or the old generation already has a successor (two
   * rollovers of one CA at once: the first wins); ERR_CA_UNKNOWN when the old generation is not stored;
   * ERR_CA_RETIRED when the new id was retired (retireCaIds).
   */
  putCaRollover(ca: CaRecord, link: CaLinkRecord): Promise<void>;
  /**
   * Several rollovers (one per purpose of a prefecture: `jpki ca rollover` rolls both) in one transaction, each
   * checked as putCaRollover does: all are committed or none, so a run killed half-way never leaves one purpose
   * rolled over and the other not (run again, it would roll the first over a second time).
   */
  putCaRollovers(rollovers: ReadonlyArray<{ readonly ca: CaRecord; readonly link: CaLinkRecord }>): Promise<void>;
  /**
   * Records CA ids as retired (RetiredCaIdRecord), with one audit record each, in one transaction; an id already
   * retired keeps its first record. ERR_CA_EXISTS for an id this store holds a CA of (nothing recorded). From then
   * on putCa and putCaRollover(s) refuse the id (ERR_CA_RETIRED): ca/ids.ts nextFreeGeneration passes over it.
   */
  retireCaIds(records: readonly RetiredCaIdRecord[]): Promise<void>;
  /** The retired CA ids, by id. */
  listRetiredCaIds(): Promise<RetiredCaIdRecord[]>;
  /** Every key rollover's link certificates, by new CA id. */
  listCaLinks(): Promise<CaLinkRecord[]>;
  /**
   * Records that a RETIRED generation's key is compromised (鍵危殆化) after an ordinary rollover (ca/compromised.ts
   * `declareCompromised`): its rollover's row gets `compromisedAt`, the ARLs of it and of its successor become due
   * (they list the two link certificates from then on: crl/publisher.ts publishArl), and one audit record
   * (`ca.compromised`) — one transaction. A second call, or one for a generation rolled over as compromised
   * (no links), changes nothing (`already`). ERR_CA_UNKNOWN when there is no such CA; ERR_CA_ACTIVE when it has no
   * successor: the active generation's key is replaced by 'jpki ca rollover --compromised'.
   */
  declareCaCompromised(caId: string, at: Date): Promise<CaCompromiseRecord>;
  /**
   * The latest notAfter among the certificates a CA issued (undefined: none): until then a retired key generation
   * keeps publishing CRLs (crl/generate.ts).
   */
  lastCertificateExpiry(caId: string): Promise<Date | undefined>;
  /**
   * The public keys (`certified_key`, rows.ts certifiedKeyOf) of live certificates — not revoked, notAfter after
   * `now` — of more than one resident: what the key-in-use check refuses at issuance (rows.ts keyInUse
   * "other-resident"), found among rows it never saw. A jpki from before the column (SQLite 29 / PostgreSQL 26), or
   * one still running after it until the writer guard (SQLite 32 / PostgreSQL 29), inserted certificates without the
   * column; the upgrades filled it from each DER without a word, so a key such a writer certified to two residents is
   * in the store as any other (`jpki store check`). Read from the column's index: the keys held by more than one
   * certificate first (the index alone), then those certificates. Keys in key order, certificates by serial.
   */
  sharedCertifiedKeys(o: { readonly now: Date }): Promise<SharedCertifiedKey[]>;
  /**
   * Replaces the encrypted keys of existing CAs and, with `ocspSigners`, those of their current OCSP signing
   * certificates (a rewrap: both are wrapped under the workspace passphrase), all in one transaction with one
   * audit record. Nothing is replaced when any fails: ERR_CA_UNKNOWN for an unknown CA id; ERR_WORKSPACE_LOCKED
   * when a CA's OCSP signing certificate is no longer the one `serial` names (a running schedule renewed it since
   * it was read, under the old passphrase), or a CA has one `ocspSigners` does not list (issued since, likewise).
   * With `verifierCa`, the verifier CA's key too (under the same passphrase, verifier/authority.ts): ERR_WORKSPACE_LOCKED
   * when it is no longer the one the rewrap read (made or replaced since).
   */
  replaceCaKeys(keys: ReadonlyArray<{ id: string; encryptedKeyPem: string }>, o?: { readonly ocspSigners?: readonly OcspSignerKey[]; readonly verifierCa?: VerifierCaKey }): Promise<void>;
  /**
   * Runs `fn` as the one process changing the store's set of CA keys (`ca init`, `rewrap`, `rollover`, `bridge`:
   * ca/manage.ts withCaKeysLock, which holds the workspace's lock file around this). ERR_WORKSPACE_LOCKED at once,
   * nothing done, while another process holds it, as the lock file refuses. SQLite: the database is a file in one
   * workspace directory, whose lock file already keeps apart every process that uses it, so `fn` simply runs.
   * PostgreSQL: workspaces on several hosts share the database, so a session-level advisory lock is held on a
   * connection of its own for the whole of `fn` (postgres.ts ADVISORY_LOCKS.caKeys); a process killed while
   * holding it loses the connection, and PostgreSQL drops the lock with it.
   */
  withCaKeysLock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Makes this process visible as a user of the store for as long as it stays open (`jpki serve`, `jpki watch`:
   * processes that run for days and may sit idle), so `jpki restore --force` refuses to replace the store under it.
   * `what` names the command. SQLite: nothing to do, the store file held open is what restore sees. PostgreSQL: the
   * pool closes idle connections after seconds, leaving an idle process with none in pg_stat_activity, so one
   * connection of its own is kept open, named "jpki WHAT HOST pid PID" (one lost with the server is opened again,
   * every few seconds until it is back).
   */
  holdPresence(what: string): Promise<void>;

  /** Inserts or replaces residents; returns how many were new and how many replaced. */
  upsertResidents(residents: readonly ResidentRecord[]): Promise<{ inserted: number; updated: number }>;
  getResident(residentCode: string): Promise<ResidentRecord | undefined>;
  /** The record with both sides' notice sequences (undefined: no such record). */
  getResidentForIssuance(residentCode: string): Promise<ResidentForIssuance | undefined>;
  /**
   * Registry side of change notices, in one write transaction: `decide` is called with a reader of the
   * current records (read inside the transaction, so two appliers never decide from the same state) and
   * returns the records to put (with the notice sequence each now reflects) and the codes to remove, and the
   * resident-code changes (住民票コード変更) it applied: the registry's consents and registered issuance
   * information move to the new code with them. `enqueue` puts the change notices it decided into the outbox
   * ({@link OutboxNotice}) in that same transaction: the record changes if and only if its notice is kept for
   * delivery. A notice id already in the outbox fails the whole call (ERR_STORE, nothing written).
   */
  applyToRegistry<T>(decide: RegistryDecide<T>): Promise<T>;
  /**
   * The outbox's notices not acknowledged yet, at most `limit`, in the order they were enqueued: oldest first,
   * and so a resident's in sequence order (its enqueuing transactions are serialized by the resident's record).
   */
  pendingOutbox(limit: number): Promise<OutboxNotice[]>;
  /**
   * Acknowledges delivered notices: deletes them from the outbox. Returns how many were still there (fewer when
   * another deliverer acknowledged some first; unknown ids are no error).
   */
  ackOutbox(noticeIds: readonly string[]): Promise<number>;
  /**
   * The key the counter's notice ids are an HMAC under (registry/counter.ts counterNoticeId): made (32 random
   * bytes) on first use and never changed after, so the id of a resident's notice N is the same whenever it is
   * decided again; two processes asking at once get the same key. Never written to the audit log.
   */
  counterNoticeIdKey(): Promise<Buffer>;
  /** The issuance information registered with the registry side under a resident code, expired or not, by serial. */
  registeredIssuances(residentCode: string): Promise<RegisteredIssuance[]>;
  /**
   * Deletes the registered issuance information of certificates expired before `expiredBefore` (notAfter <
   * expiredBefore: notAfter itself is still valid) and the rows of revoked certificates a backend left in place
   * (SQLite's notice batches: see RegisteredIssuance). Returns how many expired ones went that
   * `registeredIssuances` still returned — the same count on every backend for the same history: a revoked
   * certificate's row is not counted, being no longer registered already (PostgreSQL has none left to delete).
   *
   * It walks the table in key order, `batchSize` rows (default 4096) per short transaction, so no writer waits
   * long for it (SQLite's one write lock; PostgreSQL's row locks), and stops between two of them once `signal`
   * aborts (returning what went so far: the next sweep takes the rest). Two sweeps at once are harmless: each
   * row is deleted once, by whichever reaches it first, and the counts add up to what one sweep would return.
   */
  sweepRegisteredIssuances(expiredBefore: Date, opts?: SweepOptions): Promise<number>;
  /** The sequence of the last change notice applied to a resident record (0: none). */
  residentNoticeSequence(residentCode: string): Promise<number>;
  countResidents(): Promise<number>;

  /**
   * Commits issued certificates in order, in one transaction that first re-reads what each was decided
   * from. For each: an application id already stored yields that certificate ("duplicate-application"); a
   * registry record that changed since `registrySequence`/the four items were read, or a CA side ahead of the
   * registry, yields "stale" and nothing is inserted; otherwise it is inserted, its issuance information registered
   * with the registry side (RegisteredIssuance) in the same transaction, and every other unrevoked
   * certificate of the same type for the same resident is revoked as superseded (reason 4) at its issuedAt,
   * and the CAs of those revocations are marked for a new CRL in the same transaction.
   */
  commitIssuances(records: readonly IssuanceRecord[]): Promise<IssuanceCommitResult[]>;
  getCertificate(serial: string): Promise<CertificateRow | undefined>;
  /**
   * The CA, resident and DER of a certificate, by serial: what a verifier service's answer needs of it (is it
   * ours, whose is it) and no more — no four items, no revocation, one table. Read once per validation answer.
   */
  getCertificateOwner(serial: string): Promise<CertificateOwner | undefined>;
  getCertificateByApplication(applicationId: string): Promise<CertificateRow | undefined>;
  findCertificates(q: CertificateQuery): Promise<CertificateRow[]>;

  /** Revokes one certificate and marks its CA for a new CRL; throws ERR_CERT_UNKNOWN / ERR_CERT_ALREADY_REVOKED. */
  revoke(input: RevokeInput): Promise<CertificateRow>;
  /**
   * Appends CRL entries for certificates this store holds no row of to their CAs' revocation logs, in one
   * transaction, and marks those CAs' full CRLs due: what a restore (backup/restore.ts) does with a revocation a
   * published CRL listed for a certificate issued after the backup, so that no later full CRL of the CA takes it
   * back (RFC 5280 §3.3: a revocation is never undone). The entry is listed until `notAfter`, as a revoked
   * certificate's is, and on the partition CRL of its `municipality` when one is given (that partition is made
   * due), and on deltas built on a full CRL reserved before it; certificateStatus (OCSP) answers it revoked. A
   * serial carried before is left as it is (the first entry stands: no CRL lists a serial twice). The certificate
   * stays unknown to every other question (getCertificate, liveness checks). ERR_CA_UNKNOWN for a CA the store does not hold;
   * ERR_INTERNAL for a serial it holds (revoke that one).
   */
  carryRevocations(entries: readonly CarriedRevocation[]): Promise<void>;

  /**
   * The CRL entries of a CA still to be listed (revoked certificates not expired before `expiredBefore`), as
   * DER revokedCertificates elements in chunks, so a builder streams a CRL of any size with bounded memory and
   * no per-entry objects. Each revocation is listed once; the order is the store's (SQLite: revocation order,
   * from its append-only log; RFC 5280 sets none). With `withTotal`, the first item says exactly how many
   * entries and bytes follow (EntriesTotal), as of one moment of the store (revocations committed after it wait
   * for the next CRL), so a builder writes the CRL out as it reads (crl/builder.ts streamCrl); a store that cannot
   * tell leaves it out and the builder holds the entries until the last.
   */
  crlEntries(caId: string, opts: { expiredBefore: Date; known?: KnownBlocks }): AsyncIterable<EncodedEntries>;
  crlEntries(caId: string, opts: { expiredBefore: Date; withTotal: true; known?: KnownBlocks }): AsyncIterable<EncodedEntries | EntriesTotal>;

  /**
   * Reserves the next CRL number for a CA (monotonic, never reused even if publishing fails) together with
   * the CA's revision at that moment, atomically: a higher number always covers at least as much.
   */
  reserveCrl(caId: string, thisUpdate: Date, nextUpdate: Date, scope?: CrlScope): Promise<CrlReservation>;
  /**
   * Publishes a reserved CRL, serialized against every other publisher: when a higher number of the same CA
   * and scope is already published, nothing is installed and false is returned (the caller discards its files);
   * otherwise `install` (which puts the files in place) runs inside the write transaction that records the
   * publication and marks the CA (full CRL) or the scope (partition, ARL) clean up to the reservation's
   * revision. A delta CRL marks nothing clean: only a complete CRL covers a revocation for good.
   */
  publishCrl(rec: { caId: string; number: bigint; entries: number; path: string; sha256: string; scope?: CrlScope }, install: () => void): Promise<boolean>;
  /**
   * Publishes several reserved CRLs in one write transaction, each as {@link publishCrl} would, in order, then runs
   * `settle` once before the transaction commits (the directory syncs their installs need: one per directory, not one
   * per CRL). An install that throws records nothing of its CRL (its reservation stays open, its scope due) and the
   * others are still published; its error comes back in its place. A store failure, or `settle` throwing, records
   * none of them. Returns for each: true (published), false (superseded), or the error its install threw.
   */
  publishCrls(crls: ReadonlyArray<{ readonly rec: PublishedCrlRecord; readonly install: () => void }>, settle: () => void): Promise<Array<boolean | { readonly error: unknown }>>;
  /**
   * Makes every commit so far survive a power cut, every writer's. Called before a CRL's file is installed: the
   * revocations it lists must not be lost while the file stays, or the next CRL would drop them. SQLite syncs its
   * WAL (it runs with synchronous=NORMAL, which syncs it only at checkpoints), on the thread pool; PostgreSQL's
   * commits are durable when they return (synchronous_commit on, its default).
   */
  syncCommitted(): Promise<void>;
  /**
   * Reserves a delta CRL number (the CA's one sequence) on the CA's latest published full CRL, the base, and the
   * CA's revision: every revocation up to it is on the base or this delta. Undefined when there is no base a
   * delta can be built on (none published, one published before the store recorded what it covers, or one
   * whose nextUpdate is not after `thisUpdate`). The recorded nextUpdate is the earlier of `nextUpdate` and
   * the base's.
   */
  reserveDeltaCrl(caId: string, thisUpdate: Date, nextUpdate: Date): Promise<DeltaCrlReservation | undefined>;
  /**
   * Moves a CA's CRL number sequence (the one all its scopes share) so that the next number reserved is at
   * least `next`: what a restore (backup/restore.ts) does so that no number handed out after the backup was
   * taken is ever handed out again. The numbers below `next` are burned by recording `next - 1` as a
   * superseded CRL row, in the transaction that holds the CA's CRL lock: no file, nothing marked clean, no
   * delta base, and a store copy carries it as any CRL row. A sequence already there is left as it is.
   * Returns the number the next reservation would have had before, and the one it gets now.
   * ERR_CA_UNKNOWN when the store has no such CA.
   */
  skipCrlNumbers(caId: string, next: bigint, at: Date): Promise<{ readonly before: bigint; readonly next: bigint }>;
  /**
   * Makes every scope of a CA due (its full CRL and so its delta, each municipality partition it has, its ARL), as
   * a revocation makes its scopes due, without revoking anything: after a restore the CRL files in place carry the
   * backup's numbers, below those verifiers have already seen, and every one must be published anew (above the
   * skipped numbers) before a verifier comparing numbers takes the restored files for a rollback.
   * ERR_CA_UNKNOWN when the store has no such CA.
   */
  markCrlsDue(caId: string): Promise<void>;
  /**
   * The entries of a delta CRL on the full CRL numbered `baseNumber`: every certificate of the CA whose
   * revocation was committed after that base was reserved (so possibly some the base lists too, never one
   * it misses), with crlEntries' expiry rule, in chunks. ERR_INTERNAL when that CRL is no base a delta can
   * be built on.
   */
  deltaCrlEntries(caId: string, baseNumber: bigint, opts: { expiredBefore: Date }): AsyncIterable<EncodedEntries>;
  /** Every CA's latest full CRL and latest delta, and whether revocations came after that delta. */
  deltaCrlStatus(): Promise<DeltaCrlStatus[]>;
  /** The latest published CRL of a CA's scope (default: the full CRL). */
  latestCrl(caId: string, scope?: CrlScope): Promise<CrlRecord | undefined>;
  /**
   * The entries of the given municipality partitions of a CA, in one pass over the revocation records that
   * hold any of them (not every record of the CA), with the same expiry rule as crlEntries. Every partition
   * asked for is in the result (an empty list when nothing is revoked there). The chunks reference the
   * store's encoded entries (no copy where a run of consecutive entries belongs to one partition).
   */
  crlPartitionEntries(caId: string, partitions: readonly string[], opts: { expiredBefore: Date }): Promise<Map<string, EncodedEntries[]>>;
  /**
   * Every partition of every CA (each municipality the CA issued a certificate in) and every CA's ARL, with
   * its latest published CRL and whether revocations in it are not yet published.
   */
  crlScopeStatus(): Promise<CrlScopeStatus[]>;
  /** Every CA's latest published CRL and whether it is due for a new one because of revocations. */
  crlStatus(): Promise<CrlStatus[]>;

  /**
   * Each CA's revision: a counter every revoking transaction bumps, in that transaction (the crl_state row).
   * OCSP responders poll it to learn, cheaply, that a pre-produced answer may be out of date.
   */
  caRevisions(): Promise<Map<string, number>>;
  /** The issuing CA and revocation of one certificate (undefined: no such serial). */
  certificateStatus(serial: string): Promise<CertificateStatusRow | undefined>;
  /**
   * Installs a CA's OCSP signing certificate and key, replacing the CA's current one. With `unlessRewrapped`,
   * in the same transaction as the write: refused with ERR_KEYS_REWRAPPED, nothing stored, when a CA key listed
   * there is stored otherwise (or its CA is gone), or an OCSP signer listed there is still the CA's current one
   * (same serial) with another key. Either means a rewrap committed since the keys were read, and the new key,
   * wrapped under the passphrase that opened them, would no longer open with the workspace's.
   */
  putOcspResponder(rec: OcspResponderRecord, o?: { readonly unlessRewrapped?: WrappedKeysSeen }): Promise<void>;
  /** Every CA's current OCSP signing certificate. */
  ocspResponders(): Promise<OcspResponderRecord[]>;

  loadNoticeContext(keys: NoticeContextKeys): Promise<NoticeContext>;
  /**
   * Reads a batch's context and commits what `decide` makes of it in one write transaction, so whatever
   * the batch decides from cannot change before it commits. `decide` is synchronous and pure.
   * Returns the commit and how many certificates it actually revoked.
   */
  commitNoticeBatch<T extends { readonly commit: NoticeCommit }>(keys: NoticeContextKeys, decide: (ctx: NoticeContext) => T): Promise<T & { readonly revoked: number }>;
  /**
   * Held notices in (resident code, sequence) order, at most `limit` (default 1000); with `after`, only those
   * past that key: the next page of a walk through all of them in bounded memory (operator release-all).
   */
  listHeldNotices(limit?: number, after?: HeldNoticeKey): Promise<StoredNotice[]>;
  getNotice(noticeId: string): Promise<StoredNotice | undefined>;
  /** CAs with revocations (or an unfinished publication) not yet on a published CRL. */
  dirtyCas(): Promise<string[]>;
  /** Revocations per reason, per CA: the ground truth tests compare. */
  revocationSummary(): Promise<Array<{ serial: string; caId: string; reason: number; source: string }>>;

  // ---- Registered signature verifiers (署名検証者) ----

  /** Registers a verifier; ERR_VERIFIER_INVALID when its id, token hash or certificate is already registered. */
  putVerifier(v: VerifierRecord): Promise<void>;
  getVerifier(id: string): Promise<VerifierRecord | undefined>;
  /** Every verifier, revoked ones included, by id. */
  listVerifiers(): Promise<VerifierRecord[]>;
  /** Revokes a verifier: ERR_VERIFIER_UNKNOWN, ERR_VERIFIER_REVOKED. */
  revokeVerifier(id: string, at: Date): Promise<VerifierRecord>;
  /** Puts the verifier CA in place unless one exists; returns the one in place (the first writer wins). */
  initVerifierCa(ca: VerifierCaRecord): Promise<VerifierCaRecord>;
  getVerifierCa(): Promise<VerifierCaRecord | undefined>;
  /**
   * Appends fetch records (one statement or transaction per call: callers batch). `deadline` (WriteDeadline): as
   * appendDisclosures — jpki serve's flush is a watched call, so a write past its bound is not begun (SQLite, the lock
   * held elsewhere; PostgreSQL, no pooled connection free), and one sent that may still commit says so (lateCall
   * "connection-closed", or connectionLost "after-sending" when its connection failed by itself: write-outcome.ts).
   */
  recordVerifierFetches(fetches: readonly VerifierFetch[], opts?: WriteDeadline): Promise<void>;
  /**
   * A verifier's fetch records (all verifiers when no id), in the order they were recorded, at most `limit`
   * (default 1000): the oldest, or with `newest` the newest (newest first).
   */
  listVerifierFetches(q?: { verifierId?: string; limit?: number; newest?: boolean }): Promise<VerifierFetch[]>;

  // ---- The disclosure log (POST /v1/validate) ----

  /**
   * Appends disclosure records, all or nothing (one transaction or statement per call: callers batch). A record
   * with `tbs` (an answer of the validation API) is resolved as it is written: when the store holds a
   * certificate under its serial whose tbsCertificate is `tbs` — the very certificate its CA signed, however
   * re-encoded around it — the record keeps that certificate's resident and its CA id as issuer, and that owner
   * is returned at the record's index; otherwise the record is kept as given and undefined returned. One write
   * instead of a read of the owners, then a write (POST /v1/validate). `deadline` (WriteDeadline): written by
   * then or not at all, where the store can promise that.
   */
  appendDisclosures(records: readonly DisclosureAppend[], opts?: WriteDeadline): Promise<ReadonlyArray<DisclosureOwner | undefined>>;
  /**
   * The newest `limit` (default 1000) disclosure records of a resident, in the order they were recorded: the newest,
   * so that no number of older records (one verifier's flood of checks) can hide a later one from the resident.
   */
  listDisclosures(q: { residentCode: string; limit?: number }): Promise<DisclosureRecord[]>;
  /**
   * The disclosure log's per-resident index as this process sees it, where it is brought up to date off the
   * answering path (PostgreSQL, #indexDisclosures; SQLite indexes inside the append's own transaction and has none):
   * a failing indexer leaves the records readable above its mark, and views slow as that tail grows, so jpki serve
   * shows it (/metrics jpki_disclosure_index_failures_total and jpki_disclosure_index_behind_records, a log line at
   * the 1st, 2nd, 4th … failure heard through `onFailure`). Counts and an error only: no resident's data.
   */
  readonly disclosureIndex?: DisclosureIndexWatch;

  // ---- Liveness checks (POST /v1/status) and the registry's consents ----

  /**
   * The certificates a liveness check names, by serial and by certificate id (hex SHA-256 of the DER), in one
   * read; those not found are simply absent.
   */
  certificatesForStatus(q: { readonly serials: readonly string[]; readonly certificateIds: readonly string[] }): Promise<CertificateRow[]>;
  /**
   * The CRL entries a restore carried over (carryRevocations) for these serials, by serial: certificates the store
   * has no row of that its CRLs list as revoked. Those not carried are absent.
   */
  carriedRevocations(serials: readonly string[]): Promise<Map<string, CarriedStatus>>;
  /**
   * Records the checked items of one liveness-check answer in the verifier's history and its disclosure
   * records, in one transaction: all or nothing, before the answer is given. `deadline` as appendDisclosures.
   */
  recordStatusChecks(checks: readonly StatusCheckRecord[], disclosures: readonly DisclosureRecord[], opts?: WriteDeadline): Promise<void>;
  /**
   * A verifier's check history, in the order it was recorded: checks answered at or after `since`, after the
   * check `after` (a previous page's last id), at most `limit` (default 100).
   */
  listStatusChecks(q: { readonly verifierId: string; readonly since?: Date; readonly after?: number; readonly limit?: number }): Promise<StoredStatusCheck[]>;
  /**
   * The id the next liveness check gets: above every id this store holds, and at least what skipStatusCheckIds
   * last set. Ids are a verifier's paging cursor (liveness.ts), so they only ever grow.
   */
  nextStatusCheckId(): Promise<number>;
  /**
   * Moves the next liveness-check id to at least `next` (never back): a restore (backup/restore.ts) moves it past
   * every id the workspace may have handed out after its backup, so a verifier's cursor never skips a new check.
   */
  skipStatusCheckIds(next: number): Promise<{ readonly before: number; readonly next: number }>;
  /** Records a resident's consent for a verifier; a consent already live is returned as it is. */
  grantConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord>;
  /** Withdraws the live consent; ERR_CONSENT_UNKNOWN when there is none. */
  withdrawConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord>;
  /** Consents, live and withdrawn, of a resident and/or a verifier, in the order they were granted. */
  listConsents(q: { readonly residentCode?: string; readonly verifierId?: string }): Promise<ConsentRecord[]>;
  /** Of `residentCodes`, those whose resident holds a live consent for the verifier. */
  liveConsents(verifierId: string, residentCodes: readonly string[]): Promise<Set<string>>;

  // ---- The audit log (監査ログ; store/audit-log.ts, audit/) ----

  /**
   * Who the operations from now on are done by, and the clock their records are stamped with. Default: the
   * OS user ("os:<name>") and the system clock; a workspace sets its clock. A verifier's queries name the
   * verifier whatever this says (they carry its id).
   */
  setAuditContext(ctx: { readonly actor?: string; readonly now?: () => Date }): void;
  /**
   * Appends one record in a transaction of its own: for what has no store transaction — a wrong passphrase or
   * PIN, a restore. Every write method of this interface appends its own record in its own transaction (a
   * rolled-back operation leaves none). The entry must hold no four items, PINs or key material.
   */
  appendAudit(entry: AuditEntry): Promise<AuditRecord>;
  /** The log in seq order, filtered, read in pages (bounded memory). */
  auditRecords(q?: AuditQuery): AsyncIterable<AuditRecord>;
  /** The last record (undefined: the log is empty). */
  auditHead(): Promise<AuditRecord | undefined>;
  /** Stores a signed checkpoint of the head and appends its "audit.checkpoint" record, in one transaction. */
  putAuditCheckpoint(cp: AuditCheckpoint): Promise<void>;
  /** Every checkpoint, by seq. */
  auditCheckpoints(): Promise<AuditCheckpoint[]>;

  // ---- Moving a store (store/copy.ts): the whole store as logical records, out and in ----

  /**
   * Every fact of the store as logical records, in chunks of at most `chunkSize` (default 1000): a
   * `header` with the count of each kind, then the kinds in DUMP_KINDS order, each in key order (byte
   * order, the same on every backend), then `end`. One consistent snapshot, and writers are kept out
   * (their transactions wait, then fail with ERR_WORKSPACE_LOCKED) until the iteration finishes or is
   * returned — a consumer may act between receiving `end` and finishing, knowing nothing changed since.
   *
   * `retire`, asked once the consumer goes on past `end` (not when it returns early): a note, and the store is
   * closed to writers in the same transaction — every later write, by a process that opened it before or
   * waits for its lock now, fails, naming the note — because its facts now live elsewhere. Reads go on.
   */
  dump(opts?: DumpOptions): AsyncIterable<DumpBatch>;
  /**
   * Loads a dump into this store, which must hold no facts at all (ERR_STORE_NOT_EMPTY otherwise), all or
   * nothing: nothing is visible until the `end` record has arrived and the counts match the `header`; a dump
   * that stops early, arrives out of order or miscounts loads nothing (ERR_STORE_COPY_MISMATCH). Returns the
   * counts loaded.
   *
   * What it loaded counts as an unverified copy until {@link confirmLoad}: a store that is visible before its
   * copy is read back (PostgreSQL's, committed by `load`) refuses to be opened for use meanwhile, and a later
   * `load` replaces it — a copy stopped between the two (killed, its connection lost) is simply run again.
   */
  load(batches: AsyncIterable<DumpBatch>): Promise<DumpCounts>;
  /** The copy `load` made was read back and found equal to its source: the store may be used from now on. */
  confirmLoad(): Promise<void>;
  /**
   * The note a dump retired this store with (DumpOptions.retire: its facts moved to another store, and every
   * write is refused), or undefined while it takes writes. A copy reads it to tell a retired store, whose facts
   * can no longer change, from one in use (copy.ts).
   */
  retirement(): Promise<string | undefined>;
}

export interface DumpOptions {
  /** records per batch (default 1000) */
  readonly chunkSize?: number;
  /** called after `end` when the iteration goes on: a note to close the store to writers with, or undefined */
  readonly retire?: () => string | undefined;
}

/** The kinds of logical record in a dump, in the order they come (and are loaded: CAs before what names them). */
export const DUMP_KINDS = ["cas", "caLinks", "retiredCaIds", "residents", "certificates", "revocationOrder", "notices", "residentSequences", "crlState", "crlScopes", "crls", "ocspResponders", "verifierCa", "verifiers", "verifierFetches", "disclosures", "consents", "statusChecks", "registryOutbox", "auditLog", "auditCheckpoints"] as const;
export type DumpKind = (typeof DUMP_KINDS)[number];
export type DumpCounts = Readonly<Record<DumpKind, number>>;

/** A registry record with the sequence of the last change notice the registry applied to it. */
export interface DumpResident extends ResidentRecord {
  readonly noticeSequence: number;
}

/** The CA side's last applied notice sequence for a resident code. */
export interface DumpResidentSequence {
  readonly residentCode: string;
  readonly lastSequence: number;
}

/**
 * One revoked certificate in the order its CA's CRLs list it (every revoked certificate once, per CA in that
 * order): SQLite's revocation log order, PostgreSQL's serial order. A SQLite target rebuilds its log in this
 * order, so it lists what the source listed, as the source listed it; a PostgreSQL target keeps no order (it
 * lists by serial) and only checks the count.
 */
export interface DumpRevocationOrder {
  readonly caId: string;
  readonly serial: string;
  /**
   * An entry the store holds no revoked certificate of: one a restore carried over (Store.carryRevocations), as
   * the log lists it, and whether the store also answers OCSP for it (`recorded`: a carried_revocations row;
   * entries carried before SQLite 27 / PostgreSQL 22 have none). Absent for a revoked certificate's entry.
   */
  readonly carried?: {
    readonly revokedAt: Date;
    readonly reason: number;
    readonly notAfter: Date;
    /** the partition that lists it (6 digits); absent for none */
    readonly municipality?: string;
    readonly recorded: boolean;
  };
}

/** A CA's CRL freshness: its revision (bumped by every revoking transaction) and the revision published CRLs cover. */
export interface DumpCrlState {
  readonly caId: string;
  readonly revision: number;
  readonly publishedRevision: number;
}

/** A partition's or ARL's CRL freshness, as DumpCrlState is the full CRL's. */
export interface DumpCrlScope {
  readonly caId: string;
  readonly scope: CrlScope;
  readonly revision: number;
  readonly publishedRevision: number;
  readonly publishedNumber: bigint | undefined;
}

/** A CRL row as stored, reservations included (entries, path and sha256 absent until published). */
export interface DumpCrl {
  readonly caId: string;
  readonly scope: CrlScope;
  readonly number: bigint;
  readonly state: CrlRecord["state"];
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number | undefined;
  readonly path: string | undefined;
  readonly sha256: string | undefined;
  /** the CA revision the number was reserved with */
  readonly revision: number;
  /**
   * a delta CRL's base number. What a full CRL's deltas are built from (SQLite's log mark, PostgreSQL's
   * snapshot) means nothing in another store and is not carried: deltas there start with the next base.
   */
  readonly baseNumber?: bigint;
}

export type DumpBatch =
  | {
      readonly kind: "header";
      readonly source: Store["kind"];
      readonly counts: DumpCounts;
      /** the source's nextStatusCheckId (it may lie above its highest check: a restore moved it on); the target continues from it */
      readonly nextStatusCheckId?: number;
      /** the source's counter notice id key (hex), when it has one: the target takes it, so its ids go on as the source's would */
      readonly counterNoticeIdKey?: string;
    }
  | { readonly kind: "cas"; readonly records: readonly CaRecord[] }
  | { readonly kind: "caLinks"; readonly records: readonly CaLinkRecord[] }
  | { readonly kind: "residents"; readonly records: readonly DumpResident[] }
  /** certificates with their application ids and revocations (source included) */
  | { readonly kind: "certificates"; readonly records: readonly CertificateRow[] }
  | { readonly kind: "revocationOrder"; readonly records: readonly DumpRevocationOrder[] }
  /** change notices, applied and held */
  | { readonly kind: "notices"; readonly records: readonly StoredNotice[] }
  | { readonly kind: "residentSequences"; readonly records: readonly DumpResidentSequence[] }
  | { readonly kind: "crlState"; readonly records: readonly DumpCrlState[] }
  | { readonly kind: "crlScopes"; readonly records: readonly DumpCrlScope[] }
  | { readonly kind: "crls"; readonly records: readonly DumpCrl[] }
  | { readonly kind: "ocspResponders"; readonly records: readonly OcspResponderRecord[] }
  | { readonly kind: "verifierCa"; readonly records: readonly VerifierCaRecord[] }
  /** CA ids never to be created again (Store.retireCaIds), by id */
  | { readonly kind: "retiredCaIds"; readonly records: readonly RetiredCaIdRecord[] }
  | { readonly kind: "verifiers"; readonly records: readonly VerifierRecord[] }
  /** in the order they were recorded */
  | { readonly kind: "verifierFetches"; readonly records: readonly VerifierFetch[] }
  /** the disclosure log, in the order it was recorded */
  | { readonly kind: "disclosures"; readonly records: readonly DisclosureRecord[] }
  /** the registry's consents (新旧証明書の紐付け), live and withdrawn, in the order granted */
  | { readonly kind: "consents"; readonly records: readonly ConsentRecord[] }
  /** every verifier's liveness-check history, in the order it was recorded, with its ids (verifiers' paging cursors) */
  | { readonly kind: "statusChecks"; readonly records: readonly StoredStatusCheck[] }
  /** the registry's outbox: notices decided and not delivered yet, in the order enqueued (a copy must not drop one) */
  | { readonly kind: "registryOutbox"; readonly records: readonly OutboxNotice[] }
  /**
   * the audit log, in seq order, each record as stored (its seq, hashes and detail text): a copy verifies as its
   * source did, and chains on from the same head
   */
  | { readonly kind: "auditLog"; readonly records: readonly AuditRecord[] }
  /** the signed checkpoints of the audit log, by seq */
  | { readonly kind: "auditCheckpoints"; readonly records: readonly AuditCheckpoint[] }
  | { readonly kind: "end" };

/** Whose a certificate is (Store.getCertificateOwner). */
export interface CertificateOwner {
  readonly caId: string;
  readonly residentCode: string;
  readonly der: Buffer;
}
