/**
 * Audit checkpoints kept outside the store (anchors): a checkpoint written to a file (`jpki audit checkpoint --out`)
 * that the operator keeps elsewhere — another host, write-once media, a ticket — and gives back to `jpki audit
 * verify --anchor`.
 *
 * Why: checkpoints in the store find a rewrite or a deleted tail only while the checkpoints after it are still
 * there. Whoever can write the database can also put the whole store back to an earlier state (an old copy of
 * the SQLite file, a PostgreSQL restore), its checkpoints with it: that log is one the CA keys really signed, and
 * it verifies. A checkpoint held outside says the log once reached record N with hash H; a log that ends before
 * N was rolled back ("rolled-back"), one whose record N is another was rewritten ("checkpoint-mismatch").
 *
 * The file is JSON: the checkpoint's signed fields (audit/checkpoint.ts checkpointMessage) with its signer's
 * certificate and the signature, base64. Nothing in it is secret (a hash of the log, a CA certificate).
 */
import { JpkiError } from "../errors.js";
import { repeatedKey } from "../registry/import.js";
import type { AuditCheckpoint } from "../store/audit-log.js";

/** The value of the file's `format` field: its version. */
export const AUDIT_ANCHOR_FORMAT = "jpki-audit-checkpoint/1";

const FIELDS = ["format", "seq", "hash", "at", "caId", "certificate", "signature"] as const;
const HASH = /^[0-9a-f]{64}$/;
const CA_ID = /^[0-9A-Za-z._-]{1,64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A CA certificate or an RSA signature is a few KB at most; a larger file is not one we wrote. */
const MAX_BYTES = 64 * 1024;

/** The file's text for a checkpoint (one JSON object and a newline). */
export function auditAnchorText(cp: AuditCheckpoint): string {
  return (
    JSON.stringify({
      format: AUDIT_ANCHOR_FORMAT,
      seq: cp.seq,
      hash: cp.hash,
      at: cp.at.toISOString(),
      caId: cp.caId,
      certificate: cp.certificateDer.toString("base64"),
      signature: cp.signature.toString("base64"),
    }) + "\n"
  );
}

/** The file name `--out DIR` gives a checkpoint: its record's number, so a directory of them sorts in log order. */
export function auditAnchorFileName(cp: Pick<AuditCheckpoint, "seq">): string {
  return `audit-checkpoint-${String(cp.seq).padStart(12, "0")}.json`;
}

/**
 * A checkpoint from an anchor file's bytes, or ERR_AUDIT_ANCHOR_FORMAT naming the file (`name`) and what is wrong.
 * Only the form is checked here; whether its signature holds is audit/verify.ts's question, with the trusted
 * certificates.
 */
export function parseAuditAnchor(bytes: Buffer, name: string): AuditCheckpoint {
  const bad = (why: string) => new JpkiError("ERR_AUDIT_ANCHOR_FORMAT", `${name} is not an audit checkpoint written by 'jpki audit checkpoint --out': ${why}`, { details: { file: name } });
  if (bytes.length > MAX_BYTES) throw bad(`it is ${bytes.length} bytes, more than a checkpoint's ${MAX_BYTES}`);
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let value: unknown;
  let source: string;
  try {
    source = text.decode(bytes);
    value = JSON.parse(source);
  } catch {
    throw bad("it is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("it is not a JSON object");
  const o = value as Record<string, unknown>;
  const twice = repeatedKey(source);
  if (twice !== undefined) throw bad("a field is given more than once");
  const unknown = Object.keys(o).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown !== undefined) throw bad(CA_ID.test(unknown) ? `it has a field "${unknown}" no checkpoint has` : "it has a field no checkpoint has");
  const missing = FIELDS.find((k) => !(k in o));
  if (missing) throw bad(`the field "${missing}" is missing`);
  if (o.format !== AUDIT_ANCHOR_FORMAT) throw bad(`its format is not ${AUDIT_ANCHOR_FORMAT}`);
  if (typeof o.seq !== "number" || !Number.isSafeInteger(o.seq) || o.seq < 1) throw bad("seq is not a record number (a whole number from 1)");
  if (typeof o.hash !== "string" || !HASH.test(o.hash)) throw bad("hash is not 64 lowercase hex digits");
  const at = typeof o.at === "string" ? new Date(o.at) : undefined;
  // toISOString again: the time signed is in milliseconds, and a time written otherwise is not what was signed
  if (!at || Number.isNaN(at.getTime()) || at.toISOString() !== o.at) throw bad("at is not a time as jpki writes it (ISO 8601 in UTC with milliseconds)");
  if (typeof o.caId !== "string" || !CA_ID.test(o.caId)) throw bad("caId is not a CA id");
  const binary = (k: "certificate" | "signature") => {
    const v = o[k];
    if (typeof v !== "string" || v.length === 0 || !BASE64.test(v)) throw bad(`${k} is not base64`);
    return Buffer.from(v, "base64");
  };
  return { seq: o.seq, hash: o.hash, at, caId: o.caId, certificateDer: binary("certificate"), signature: binary("signature") };
}
