/**
 * The store interface: everything the CA, registry and CRL services persist. It names no database:
 * SQLite (embedded default) implements it now, PostgreSQL next, and one test suite runs against both.
 * Every method is atomic on its own; multi-record methods commit all or nothing.
 */
import type { CertificateType, FourItems } from "../profile/types.js";

export type ResidentStatus = "active" | "deceased" | "removed";

export interface ResidentRecord {
  readonly residentCode: string;
  readonly municipalityCode: string;
  readonly fourItems: FourItems;
  readonly status: ResidentStatus;
}

export interface CaRecord {
  /** e.g. "13-sig", "13-auth" */
  readonly id: string;
  readonly prefectureCode: string;
  readonly purpose: CertificateType;
  readonly certificateDer: Buffer;
  /** encrypted PKCS#8 PEM */
  readonly encryptedKeyPem: string;
  readonly keyId: Buffer;
  readonly createdAt: Date;
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
}

export interface RevocationInfo {
  readonly revokedAt: Date;
  readonly reason: number;
  /** what caused it: "manual", "superseded:<serial>", later "notice:<id>" */
  readonly source: string;
}

export interface CertificateRow extends IssuanceRecord {
  readonly revocation: RevocationInfo | undefined;
}

export interface RevokeInput extends RevocationInfo {
  readonly serial: string;
}

export interface RevokedEntry {
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason: number;
}

export interface CrlRecord {
  readonly caId: string;
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  /** workspace-relative path of the published file, set once it is written */
  readonly path: string | undefined;
  readonly sha256: string | undefined;
}

export interface CertificateQuery {
  readonly caId?: string;
  readonly residentCode?: string;
  readonly type?: CertificateType;
  readonly status?: "valid" | "revoked" | "all";
  readonly limit?: number;
}

/** A certificate as certified, without its DER: what notice matching needs. */
export interface CertifiedRow {
  readonly serial: string;
  readonly caId: string;
  readonly type: CertificateType;
  readonly residentCode: string;
  readonly fourItems: FourItems;
}

export type NoticeStatus = "applied" | "held";

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

/** What ingestion reads before deciding a batch (one round trip per batch, not per notice). */
export interface NoticeContext {
  /** notice ids of the batch already in the store, with their status */
  readonly known: ReadonlyMap<string, NoticeStatus>;
  /** last applied sequence per resident (absent: none yet) */
  readonly lastSequence: ReadonlyMap<string, number>;
  /** held notices per resident, by sequence */
  readonly held: ReadonlyMap<string, readonly StoredNotice[]>;
  /** unrevoked certificates per resident */
  readonly certificates: ReadonlyMap<string, readonly CertifiedRow[]>;
  /** residents the registry knows */
  readonly residents: ReadonlySet<string>;
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
    readonly body: string;
    readonly status: NoticeStatus;
    readonly revocations: number;
  }>;
  readonly sequences: ReadonlyArray<{ readonly residentCode: string; readonly last: number }>;
  /** revocations; a certificate already revoked is left as it is */
  readonly revocations: ReadonlyArray<{ readonly serial: string; readonly reason: number; readonly source: string }>;
  /** resident-code changes (住民票コード変更): issuance records and sequences move to the new code */
  readonly relinks: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** CAs whose CRL must be regenerated; remembered until a CRL is published */
  readonly dirtyCas: readonly string[];
}

export interface Store {
  readonly kind: "sqlite" | "postgres";
  close(): Promise<void>;

  putCa(ca: CaRecord): Promise<void>;
  getCa(id: string): Promise<CaRecord | undefined>;
  listCas(): Promise<CaRecord[]>;
  /** Replaces the encrypted keys of existing CAs (a rewrap), all in one transaction; ERR_CA_UNKNOWN for an unknown id. */
  replaceCaKeys(keys: ReadonlyArray<{ id: string; encryptedKeyPem: string }>): Promise<void>;

  /** Inserts or replaces residents; returns how many were new and how many replaced. */
  upsertResidents(residents: readonly ResidentRecord[]): Promise<{ inserted: number; updated: number }>;
  getResident(residentCode: string): Promise<ResidentRecord | undefined>;
  /**
   * Registry side of a change notice: replaces residents, removes records under old codes (a resident-code
   * change) and records the notice sequence each record now reflects, in one transaction.
   */
  replaceResidents(put: ReadonlyArray<ResidentRecord & { readonly noticeSequence: number }>, removeCodes: readonly string[]): Promise<void>;
  /** The sequence of the last change notice applied to a resident record (0: none). */
  residentNoticeSequence(residentCode: string): Promise<number>;
  countResidents(): Promise<number>;

  /**
   * Commits issued certificates in order, in one transaction. For each, every other unrevoked certificate of
   * the same type for the same resident is revoked as superseded (reason 4) at its issuedAt.
   * Returns the serials superseded, per record. A record whose applicationId is already stored is refused
   * (ERR_STORE) and the whole batch rolls back: callers look the id up first.
   */
  commitIssuances(records: readonly IssuanceRecord[]): Promise<string[][]>;
  getCertificate(serial: string): Promise<CertificateRow | undefined>;
  getCertificateByApplication(applicationId: string): Promise<CertificateRow | undefined>;
  findCertificates(q: CertificateQuery): Promise<CertificateRow[]>;

  /** Revokes one certificate; throws ERR_CERT_UNKNOWN / ERR_CERT_ALREADY_REVOKED. */
  revoke(input: RevokeInput): Promise<CertificateRow>;

  /**
   * Revoked certificates of a CA still to be listed at `at` (not expired before `expiredBefore`), ordered by
   * serial, in chunks so a builder can stream a CRL of any size with bounded memory.
   */
  revokedEntries(caId: string, opts: { expiredBefore: Date; chunkSize?: number }): AsyncIterable<RevokedEntry[]>;

  /** Reserves the next CRL number for a CA (monotonic, never reused even if publishing fails). */
  reserveCrlNumber(caId: string, thisUpdate: Date, nextUpdate: Date): Promise<bigint>;
  /** Marks a reserved CRL number as published. */
  publishCrl(rec: { caId: string; number: bigint; entries: number; path: string; sha256: string }): Promise<void>;
  latestCrl(caId: string): Promise<CrlRecord | undefined>;

  loadNoticeContext(noticeIds: readonly string[], residentCodes: readonly string[]): Promise<NoticeContext>;
  /** Commits a batch; returns how many certificates it actually revoked. */
  commitNoticeBatch(batch: NoticeCommit): Promise<number>;
  listHeldNotices(limit?: number): Promise<StoredNotice[]>;
  getNotice(noticeId: string): Promise<StoredNotice | undefined>;
  /** CAs with revocations not yet on a published CRL. */
  dirtyCas(): Promise<string[]>;
  /** Clears the dirty mark set at or before `upTo` (the CRL built at upTo covers them). */
  clearDirtyCa(caId: string, upTo: Date): Promise<void>;
  /** Revocations per reason, per CA: the ground truth tests compare. */
  revocationSummary(): Promise<Array<{ serial: string; caId: string; reason: number; source: string }>>;
}
