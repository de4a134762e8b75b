/**
 * Verifying the audit log (`jpki audit verify`): walks the chain in seq order and names the first record that
 * does not hold, and why:
 * - "altered": the record's hash is not the hash of its fields (a field was edited, its hash not recomputed);
 * - "removed": its link names a record that is not there (a record was deleted: a gap in seq, or renumbered);
 *   also a checkpoint beyond the last record (the tail was deleted), or an "audit.checkpoint" record whose
 *   checkpoint is gone;
 * - "reordered": its link names a record that exists elsewhere in the log (records were moved);
 * - "checkpoint-invalid": a checkpoint's signature does not verify, or its signer is not a CA of the store;
 * - "checkpoint-mismatch": the chain verifies, but the record at a checkpoint's seq is not the one signed — the
 *   records up to it were rewritten with recomputed hashes (the first bad one is after the previous checkpoint
 *   that held).
 * Records after the last checkpoint are "unanchored": a rewrite of those alone cannot be told (a new checkpoint
 * anchors them). The "audit.checkpoint" record that announces that checkpoint is not counted: what it says is
 * the checkpoint itself, which is checked, and a checkpoint can never sign its own announcement — counted, a log
 * checkpointed a moment ago read "1 record unanchored" for ever.
 */
import { JpkiError } from "../errors.js";
import { GENESIS_HASH, auditHash, type AuditCheckpoint, type AuditRecord } from "../store/audit-log.js";
import type { Store } from "../store/types.js";
import { checkpointProblem, compromisedCaIds } from "./checkpoint.js";

export type AuditBreak = "altered" | "removed" | "reordered" | "checkpoint-invalid" | "checkpoint-mismatch";

export interface AuditVerification {
  readonly ok: boolean;
  /** records read */
  readonly records: number;
  readonly head: { readonly seq: number; readonly hash: string } | undefined;
  readonly checkpoints: number;
  /** the seq of the last checkpoint that held (0: none) */
  readonly anchoredTo: number;
  /** records after it, besides the record announcing it */
  readonly unanchored: number;
  /** the first problem, when not ok */
  readonly failure?: { readonly seq: number; readonly why: AuditBreak; readonly message: string };
}

/** Walks the whole log of a store (see the header). Reads the log twice only when a link is broken. */
export async function verifyAuditLog(store: Store, opts: { readonly trusted?: readonly Buffer[] } = {}): Promise<AuditVerification> {
  const checkpoints = await store.auditCheckpoints();
  // Whoever can rewrite the log can also add a CA row with a key of their own and sign checkpoints with it: the
  // store's CA certificates are the default, the operator's own copies (opts.trusted, `audit verify --trust`)
  // close that door.
  const trusted = opts.trusted ?? (await store.listCas()).map((c) => c.certificateDer);
  const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
  // A compromised generation's checkpoints are neither anchors nor failures: its key may sign anything now
  // (compromisedCaIds). The records they covered count as unanchored until a later checkpoint covers them.
  const compromised = await compromisedCaIds(store);
  const anchors = new Map([...bySeq].filter(([, c]) => !compromised.has(c.caId)));
  let prev: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  let records = 0;
  let anchoredTo = 0;
  /** the anchor whose announcement (its "audit.checkpoint" record) came after it */
  let announced = 0;
  const result = (failure?: AuditVerification["failure"]): AuditVerification => ({
    ok: failure === undefined,
    records,
    head: records ? prev : undefined,
    checkpoints: checkpoints.length,
    anchoredTo,
    unanchored: records ? prev.seq - anchoredTo - (anchoredTo > 0 && announced === anchoredTo ? 1 : 0) : 0,
    ...(failure ? { failure } : {}),
  });
  for await (const r of store.auditRecords()) {
    if (auditHash(r) !== r.hash) return result({ seq: r.seq, why: "altered", message: `audit record ${r.seq} was altered: its contents do not hash to its recorded hash` });
    if (r.prevHash !== prev.hash) {
      const elsewhere = await seqOfHash(store, r.prevHash);
      if (elsewhere !== undefined) {
        return result({ seq: r.seq, why: "reordered", message: `audit record ${r.seq} was reordered: it follows record ${elsewhere}, which now stands at another place` });
      }
      const missing = r.seq !== prev.seq + 1 ? prev.seq + 1 : r.seq;
      return result({
        seq: missing,
        why: "removed",
        message:
          r.seq !== prev.seq + 1
            ? `audit record ${missing}${r.seq - 1 > missing ? `–${r.seq - 1}` : ""} was removed: record ${r.seq} follows a record that is no longer there`
            : `an audit record before ${r.seq} was removed (or replaced): record ${r.seq} follows a record that is no longer there`,
      });
    }
    const cp = anchors.get(r.seq);
    if (cp) {
      const problem = checkpointProblem(cp, trusted, opts.trusted ? "given" : "store");
      if (problem) return result({ seq: cp.seq, why: "checkpoint-invalid", message: `the audit checkpoint at record ${cp.seq} is not valid: ${problem}` });
      if (cp.hash !== r.hash) {
        return result({
          seq: anchoredTo + 1,
          why: "checkpoint-mismatch",
          message: `audit records ${anchoredTo + 1}–${cp.seq} were rewritten: record ${cp.seq} is not the one CA ${cp.caId} signed at ${cp.at.toISOString()} (the chain was recomputed to hide it)`,
        });
      }
      anchoredTo = r.seq;
    }
    if (r.action === "audit.checkpoint") {
      const at = checkpointNamed(r);
      if (at !== undefined && !bySeq.has(at)) {
        return result({ seq: at, why: "removed", message: `the audit checkpoint at record ${at}, which record ${r.seq} announces, was removed` });
      }
      if (at !== undefined && at === anchoredTo && r.seq > anchoredTo) announced = at;
    }
    prev = { seq: r.seq, hash: r.hash };
    records++;
  }
  const beyond = [...anchors.values()].find((c) => c.seq > prev.seq);
  if (beyond) {
    return result({ seq: prev.seq + 1, why: "removed", message: `audit records from ${prev.seq + 1} were removed: a checkpoint signed record ${beyond.seq}, and the log ends at ${prev.seq}` });
  }
  return result();
}

/** Verifies and throws ERR_AUDIT_CHAIN_BROKEN (naming the first bad record) when the log does not hold. */
export async function assertAuditLog(store: Store): Promise<AuditVerification> {
  const v = await verifyAuditLog(store);
  if (v.failure) throw auditBroken(v);
  return v;
}

export function auditBroken(v: AuditVerification): JpkiError {
  const f = v.failure!;
  return new JpkiError("ERR_AUDIT_CHAIN_BROKEN", `${f.message}: restore the store from a backup and investigate who wrote to it`, { details: { seq: f.seq, why: f.why } });
}

/** The seq of the record whose hash is `hash` (a second pass, only once a link is found broken). */
async function seqOfHash(store: Store, hash: string): Promise<number | undefined> {
  for await (const r of store.auditRecords()) if (r.hash === hash) return r.seq;
  return undefined;
}

function checkpointNamed(r: AuditRecord): number | undefined {
  try {
    const d = JSON.parse(r.detail) as { seq?: unknown };
    return typeof d.seq === "number" ? d.seq : undefined;
  } catch {
    return undefined;
  }
}

export type { AuditCheckpoint };
