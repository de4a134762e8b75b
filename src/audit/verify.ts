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
 * - "rolled-back": the log ends before a checkpoint kept outside the store (an anchor: audit/anchor.ts, `audit verify
 *   --anchor`) — the store was put back to an earlier state, its own checkpoints with it, which nothing inside the
 *   store can show.
 * Records after the last checkpoint are "unanchored": a rewrite of those alone cannot be told (a new checkpoint
 * anchors them). The "audit.checkpoint" record that announces that checkpoint is not counted: what it says is
 * the checkpoint itself, which is checked, and a checkpoint can never sign its own announcement — counted, a log
 * checkpointed a moment ago read "1 record unanchored" for ever.
 */
import { JpkiError } from "../errors.js";
import { GENESIS_HASH, auditHash, type AuditCheckpoint, type AuditRecord } from "../store/audit-log.js";
import type { Store } from "../store/types.js";
import { checkpointProblem, compromisedCaIds } from "./checkpoint.js";

export type AuditBreak = "altered" | "removed" | "reordered" | "checkpoint-invalid" | "checkpoint-mismatch" | "rolled-back";

export interface AuditVerification {
  readonly ok: boolean;
  /** records read */
  readonly records: number;
  readonly head: { readonly seq: number; readonly hash: string } | undefined;
  readonly checkpoints: number;
  /** the seq of the last checkpoint that held, in the store or kept outside it (0: none) */
  readonly anchoredTo: number;
  /** checkpoints kept outside the store that were checked (opts.anchors) */
  readonly anchors: number;
  /** records after it, besides the record announcing it */
  readonly unanchored: number;
  /** the first problem, when not ok */
  readonly failure?: { readonly seq: number; readonly why: AuditBreak; readonly message: string };
}

/** A checkpoint kept outside the store, and where it came from (a file name, for the messages). */
export interface AuditAnchor {
  readonly checkpoint: AuditCheckpoint;
  readonly source: string;
}

/**
 * Walks the whole log of a store (see the header). Reads the log twice only when a link is broken. `anchors`:
 * checkpoints kept outside the store. They are checked whatever the store says of their signer's generation
 * (compromised or not): an anchor can only make the log fail, never pass, and the store's say may itself be what
 * was rolled back.
 */
export async function verifyAuditLog(store: Store, opts: { readonly trusted?: readonly Buffer[]; readonly anchors?: readonly AuditAnchor[] } = {}): Promise<AuditVerification> {
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
  const outside = new Map<number, AuditAnchor[]>();
  for (const a of opts.anchors ?? []) outside.set(a.checkpoint.seq, [...(outside.get(a.checkpoint.seq) ?? []), a]);
  const trustedFrom = opts.trusted ? "given" : "store";
  /** What is wrong with an anchor's signature or signer, said with its file; a store rolled back to before its CA cannot know that CA. */
  const outsideProblem = (a: AuditAnchor): string | undefined => {
    const problem = checkpointProblem(a.checkpoint, trusted, trustedFrom);
    if (!problem) return undefined;
    const hint = trustedFrom === "store" && !trusted.some((t) => t.equals(a.checkpoint.certificateDer)) ? " (a store rolled back to before that CA existed knows no such CA: give the CA certificates you keep apart with --trust)" : "";
    return `the audit checkpoint kept in ${a.source} (record ${a.checkpoint.seq}) is not valid: ${problem}${hint}`;
  };
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
    anchors: opts.anchors?.length ?? 0,
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
    for (const a of outside.get(r.seq) ?? []) {
      const problem = outsideProblem(a);
      if (problem) return result({ seq: r.seq, why: "checkpoint-invalid", message: problem });
      if (a.checkpoint.hash !== r.hash) {
        return result({
          seq: anchoredTo + 1,
          why: "checkpoint-mismatch",
          message: `audit records ${anchoredTo + 1}–${r.seq} were rewritten: record ${r.seq} is not the one CA ${a.checkpoint.caId} signed at ${a.checkpoint.at.toISOString()} (the checkpoint kept in ${a.source})`,
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
  // the latest first: it says how much is gone
  const later = [...outside.values()].flat().filter((a) => a.checkpoint.seq > prev.seq).sort((a, b) => b.checkpoint.seq - a.checkpoint.seq);
  for (const a of later) {
    const problem = outsideProblem(a);
    if (problem) return result({ seq: a.checkpoint.seq, why: "checkpoint-invalid", message: problem });
  }
  const last = later[0];
  if (last) {
    const cp = last.checkpoint;
    return result({
      seq: prev.seq + 1,
      why: "rolled-back",
      message: `the audit log was rolled back: it ends at record ${prev.seq}, but CA ${cp.caId} signed record ${cp.seq} at ${cp.at.toISOString()} (the checkpoint kept in ${last.source}); records ${prev.seq + 1}–${cp.seq} and the checkpoints over them are gone`,
    });
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
