/**
 * What each store operation writes into the audit log (store/audit-log.ts), shared by both backends so SQLite
 * and PostgreSQL record the same operation the same way, and the row mapping of the two audit tables.
 *
 * The rule for every detail here: ids, counts, reasons, causes, digests — never the four items, resident
 * codes (住民票コード, whose use the law restricts), PINs, tokens or keys. A batch is one record (its lists of
 * serials, or a digest where a list would be the batch itself): the notice path commits thousands of notices a
 * second, and one record per batch keeps the log's cost a hash and an insert per transaction.
 */
import { hash } from "node:crypto";
import { CanonicalJsonText, type AuditCheckpoint, type AuditEntry, type AuditRecord } from "./audit-log.js";
import type { CaLinkRecord, CaRecord, CrlScope, DisclosureRecord, IssuanceCommitResult, IssuanceRecord, NoticeCommit, OcspResponderRecord, OcspSignerKey, RetiredCaIdRecord, RevokeInput, StatusCheckRecord, VerifierRecord } from "./types.js";

/** Who the store's records name, and the clock they are stamped with (Store.setAuditContext). */
export interface AuditContext {
  /** undefined until the first append: then the OS user (audit-log.ts osActor) */
  actor: string | undefined;
  now: () => Date;
}

/** Hex SHA-256 of bytes or of a list of strings (newline-joined): names a set without listing it. */
export function auditDigest(v: Uint8Array | readonly string[]): string {
  return hash("sha256", v instanceof Uint8Array ? v : v.join("\n"), "hex");
}

export function caCreatedAudit(ca: CaRecord): AuditEntry {
  return { action: "ca.create", subject: ca.id, detail: { purpose: ca.purpose, prefecture: ca.prefectureCode, certificateSha256: auditDigest(ca.certificateDer) } };
}

/** A CA id retired (Store.retireCaIds): never to be created again. */
export function caIdRetiredAudit(r: RetiredCaIdRecord): AuditEntry {
  return { action: "ca.retire-id", subject: r.id, detail: { reason: r.reason } };
}

/** The message of ERR_CA_RETIRED, one wording for both stores. */
export function retiredMessage(id: string, reason: string): string {
  return `the CA id ${id} is retired (${reason}): it is never created again; 'jpki ca rollover' and 'jpki ca init' pass over it to the next free generation`;
}

/** A key rollover (ca/rollover.ts): the new generation and the digests of its two link certificates. */
export function caRolloverAudit(ca: CaRecord, link: CaLinkRecord): AuditEntry {
  return {
    action: "ca.rollover",
    subject: ca.id,
    detail: { from: link.oldCaId, purpose: ca.purpose, prefecture: ca.prefectureCode, certificateSha256: auditDigest(ca.certificateDer), ...(link.oldWithNew && link.newWithOld ? { oldWithNewSha256: auditDigest(link.oldWithNew), newWithOldSha256: auditDigest(link.newWithOld) } : { compromised: true }) },
  };
}

/** A retired generation's key declared compromised (Store.declareCaCompromised): its two link certificates revoked. */
export function caCompromisedAudit(link: CaLinkRecord): AuditEntry {
  return {
    action: "ca.compromised",
    subject: link.oldCaId,
    detail: { successor: link.newCaId, ...(link.oldWithNew && link.newWithOld ? { oldWithNewSha256: auditDigest(link.oldWithNew), newWithOldSha256: auditDigest(link.newWithOld) } : {}) },
  };
}

/** The message of ERR_CA_ACTIVE, one wording for both stores. */
export function activeCompromiseMessage(caId: string): string {
  // The command to run, for the CA's own prefecture and purpose (ids are "13-sig", "13-auth-g2": ca/ids.ts).
  const m = /^(\d{2})-(sig|auth)(?:-g\d+)?$/.exec(caId);
  const command = m ? `jpki ca rollover --prefecture ${m[1]} --purpose ${m[2]} --compromised` : "jpki ca rollover --prefecture <code> --purpose <purpose> --compromised";
  return `${caId} is the active generation (no rollover retired it): replace its key with '${command}' (docs/operations.md §8)`;
}

export function revokeAudit(r: RevokeInput, caId: string): AuditEntry {
  return { action: "cert.revoke", subject: r.serial, detail: { ca: caId, reason: r.reason, source: r.source, revokedAt: r.revokedAt } };
}

export function crlAudit(rec: { caId: string; number: bigint; entries: number; sha256: string }, scope: CrlScope): AuditEntry {
  return { action: "crl.publish", subject: rec.caId, detail: { scope, number: rec.number.toString(), entries: rec.entries, sha256: rec.sha256 } };
}

export function ocspAudit(rec: OcspResponderRecord): AuditEntry {
  return { action: "ocsp-signer.publish", subject: rec.caId, detail: { serial: rec.serial, notAfter: rec.notAfter, certificateSha256: auditDigest(rec.certificateDer) } };
}

/** One record for a rewrap: the CAs whose keys, and the OCSP signing certificates whose keys, were re-encrypted. */
export function rewrapAudit(keys: ReadonlyArray<{ id: string }>, ocspSigners: readonly OcspSignerKey[], verifierCa = false): AuditEntry {
  return {
    action: "ca.rewrap",
    subject: keys.length === 1 ? keys[0]!.id : "",
    detail: { cas: keys.map((k) => k.id), ...(ocspSigners.length ? { ocspSigners: ocspSigners.map((k) => ({ ca: k.caId, serial: k.serial })) } : {}), ...(verifierCa ? { verifierCa: true } : {}) },
  };
}

export function verifierAudit(v: VerifierRecord): AuditEntry {
  // The verifier's name is an organisation's, not a resident's; its credentials appear only as the digests stored anyway.
  return { action: "verifier.register", subject: v.id, detail: { kind: v.kind, name: v.name, token: v.tokenSha256 !== undefined, certificateSha256: v.certSha256 } };
}

export function checkpointAudit(cp: AuditCheckpoint): AuditEntry {
  return { action: "audit.checkpoint", subject: cp.caId, detail: { seq: cp.seq, hash: cp.hash } };
}

/** One record per committing call: what was issued and what each issuance superseded (revoked, reason 4). */
export function issuanceAudit(records: readonly IssuanceRecord[], results: readonly IssuanceCommitResult[]): AuditEntry | undefined {
  // keys in sorted order, as canonicalJson writes them
  const issued: Array<{ ca: string; serial: string; type: string }> = [];
  const revoked: Array<{ reason: number; serial: string; source: string }> = [];
  records.forEach((r, i) => {
    const res = results[i]!;
    if (res.status !== "committed") return;
    issued.push({ ca: r.caId, serial: r.serial, type: r.type });
    for (const s of res.superseded) revoked.push({ reason: 4, serial: s, source: `superseded:${r.serial}` });
  });
  if (!issued.length) return undefined; // nothing changed: stale or duplicate applications write nothing
  // The certificates' list as one JSON.stringify (CanonicalJsonText), not walked key by key by canonicalJson: a
  // group's 500 records cost ≈ 0.6 KB of young generation and a sorted-keys check each (heap sampling, issue bench).
  // Same text, so the same record and hash (audit-log.test.ts).
  return {
    action: "cert.issue",
    subject: issued.length === 1 ? issued[0]!.serial : "",
    detail: { certificates: CanonicalJsonText.ofSortedRecords(issued), revoked: CanonicalJsonText.ofSortedRecords(revoked), refused: records.length - issued.length },
  };
}

/**
 * One record per notice batch: its notices by a digest of their ids (the ids themselves are in the notices
 * table), counts per status, and every revocation it asked for with its cause (reason code, source).
 */
export function noticeBatchAudit(b: NoticeCommit, revoked: number): AuditEntry | undefined {
  if (!b.notices.length && !b.revocations.length) return undefined;
  let applied = 0;
  for (const n of b.notices) if (n.status === "applied") applied++;
  return {
    action: "notice.batch",
    subject: "",
    detail: {
      notices: b.notices.length,
      applied,
      held: b.notices.length - applied,
      noticeIdsSha256: auditDigest(b.notices.map((n) => n.noticeId)),
      revoked,
      // Keys in sorted order, as canonicalJson writes them, so one native JSON.stringify writes its bytes
      // (CanonicalJsonText). A reason is an integer CRL reason code: never NaN or infinite.
      revocations: CanonicalJsonText.ofSortedRecords(b.revocations.map((r) => ({ reason: r.reason, serial: r.serial, source: r.source }))),
      relinks: b.relinks.length,
    },
  };
}

/** Residents loaded in bulk (`jpki registry import`, Store.upsertResidents): counts only. */
export function registryLoadAudit(inserted: number, updated: number): AuditEntry {
  return { action: "registry.load", subject: "", detail: { inserted, updated } };
}

/** A registry change (counter procedure, applied notices): counts only — its records are residents'. */
export function registryAudit(d: { readonly put: readonly unknown[]; readonly remove: readonly unknown[]; readonly relink?: readonly unknown[]; readonly enqueue?: ReadonlyArray<{ noticeId: string }> }): AuditEntry {
  return { action: "registry.change", subject: "", detail: { put: d.put.length, removed: d.remove.length, relinked: d.relink?.length ?? 0, notices: (d.enqueue ?? []).map((n) => n.noticeId) } };
}

/**
 * A sweep's batch of the registry side's issuance information (発行情報; registry/issuance-sweep.ts): how many
 * rows of certificates expired before the cut-off it deleted. Counts only — the rows are residents' four items.
 */
export function registrySweepAudit(expiredBefore: Date, removed: number): AuditEntry {
  return { action: "registry.sweep", subject: "", detail: { expiredBefore, removed } };
}

/**
 * A verifier's queries (validation answers, liveness checks): one record per verifier and call, as that
 * verifier — which certificates it asked about and whether the four items went with an answer (not the items).
 */
export function queryAudits(checks: readonly StatusCheckRecord[], disclosures: readonly DisclosureRecord[]): AuditEntry[] {
  const by = new Map<string, { checks: string[]; answers: string[]; itemsDisclosed: number }>();
  const of = (id: string) => {
    let e = by.get(id);
    if (!e) by.set(id, (e = { checks: [], answers: [], itemsDisclosed: 0 }));
    return e;
  };
  for (const c of checks) of(c.verifierId).checks.push(`${c.caId ?? ""}:${c.serial ?? c.certificateId ?? ""}:${c.status}`);
  for (const d of disclosures) {
    const e = of(d.verifierId);
    e.answers.push(`${d.serial}:${d.answer}`);
    if (d.itemsDisclosed) e.itemsDisclosed++;
  }
  return [...by].map(([id, e]) => ({
    action: checks.length ? "verifier.status-query" : "verifier.validate-query",
    subject: id,
    actor: `verifier:${id}`,
    detail: { checks: e.checks, answers: e.answers, itemsDisclosed: e.itemsDisclosed },
  }));
}

// ---- rows ----

export interface AuditRowDb {
  seq: number | bigint;
  at: number | bigint;
  actor: string;
  action: string;
  subject: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

export function toAudit(r: AuditRowDb): AuditRecord {
  return { seq: Number(r.seq), at: new Date(Number(r.at)), actor: r.actor, action: r.action, subject: r.subject, detail: r.detail, prevHash: r.prev_hash, hash: r.hash };
}

export interface AuditCheckpointRowDb {
  seq: number | bigint;
  hash: string;
  at: number | bigint;
  ca_id: string;
  cert_der: Buffer;
  signature: Buffer;
}

export function toAuditCheckpoint(r: AuditCheckpointRowDb): AuditCheckpoint {
  return { seq: Number(r.seq), hash: r.hash, at: new Date(Number(r.at)), caId: r.ca_id, certificateDer: r.cert_der, signature: r.signature };
}
