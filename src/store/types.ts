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

export interface Store {
  readonly kind: "sqlite" | "postgres";
  close(): Promise<void>;

  putCa(ca: CaRecord): Promise<void>;
  getCa(id: string): Promise<CaRecord | undefined>;
  listCas(): Promise<CaRecord[]>;

  /** Inserts or replaces residents; returns how many were new and how many replaced. */
  upsertResidents(residents: readonly ResidentRecord[]): Promise<{ inserted: number; updated: number }>;
  getResident(residentCode: string): Promise<ResidentRecord | undefined>;
  countResidents(): Promise<number>;

  /**
   * Commits issued certificates in order, in one transaction. For each, every other unrevoked certificate of
   * the same type for the same resident is revoked as superseded (reason 4) at its issuedAt.
   * Returns the serials superseded, per record.
   */
  commitIssuances(records: readonly IssuanceRecord[]): Promise<string[][]>;
  getCertificate(serial: string): Promise<CertificateRow | undefined>;
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
}
