/**
 * The audit log (監査ログ; issue 13 point 2): one append-only hash chain of what was done to the store, by whom
 * and when. Each record's hash covers the previous record's hash, so altering, removing or reordering a record
 * breaks the chain at that point (audit/verify.ts finds where); a signed checkpoint of the head (audit/checkpoint.ts)
 * makes a rewrite of the whole tail detectable too.
 *
 * This module is the pure part the stores share: the record, its canonical encoding and hash. The stores append
 * a record in the transaction of the operation it describes, so no operation commits without its record and a
 * rolled-back one leaves none.
 *
 * What a record holds is chosen to be safe to show any operator: ids (CA ids, serials, notice ids, verifier ids),
 * counts, reasons and causes — never the four items (name, address, birth date, gender), PINs, passphrases,
 * tokens or key material. Callers of Store.appendAudit must keep to that too.
 */
import { hash } from "node:crypto";
import { userInfo } from "node:os";

/** What an operation appends: the store adds the sequence number, time, actor and chain hashes. */
export interface AuditEntry {
  /** dotted verb, e.g. "ca.create", "cert.issue", "cert.revoke", "notice.batch", "crl.publish", "auth.failure" */
  readonly action: string;
  /** what it acted on: a CA id, a serial, a verifier id, "" when several (the detail lists them) */
  readonly subject: string;
  /** plain JSON (strings, numbers, booleans, arrays, objects); no personal data or secrets */
  readonly detail?: Readonly<Record<string, unknown>>;
  /** overrides the store's actor (e.g. "verifier:v-…" for a verifier's query) */
  readonly actor?: string;
}

/** A record as stored. */
export interface AuditRecord {
  /** position in the log: 1, 2, 3, … (storage order; the chain itself is what the hashes link) */
  readonly seq: number;
  readonly at: Date;
  /** "os:<user>" for a CLI operation, "verifier:<id>" for a verifier's query, as the store's context says */
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  /** canonical JSON of the detail, as hashed (kept as text so the hash is recomputed from the very bytes) */
  readonly detail: string;
  /** hex SHA-256 of the previous record (GENESIS_HASH for the first) */
  readonly prevHash: string;
  /** hex SHA-256 of this record's canonical encoding (auditHash) */
  readonly hash: string;
}

/** The previous hash of the first record. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * The hash of a record: SHA-256 over the JSON array [prevHash, at (ms), actor, action, subject, detail].
 *
 * `seq` is deliberately not hashed: the prev-hash links alone order the chain, so a record moved to another
 * position still hashes correctly and the verifier can say "reordered" (its link points elsewhere) rather than
 * only "altered". A renumbering cannot hide anything: a checkpoint signs a (seq, hash) pair.
 * JSON.stringify of strings and an integer is one unambiguous encoding (no field can run into the next), and
 * it costs one small string per record: an append is a few microseconds, nothing next to a batch's writes.
 */
export function auditHash(r: { readonly prevHash: string; readonly at: Date | number; readonly actor: string; readonly action: string; readonly subject: string; readonly detail: string }): string {
  const at = typeof r.at === "number" ? r.at : r.at.getTime();
  return hash("sha256", JSON.stringify([r.prevHash, at, r.actor, r.action, r.subject, r.detail]), "hex");
}

/**
 * What follows the previous hash in auditHash's input: for a hex prevHash (every hash auditHash makes) the input
 * is `["` + prevHash + `",` + this. PostgreSQL seals its records in the database with it (jpki_audit_append,
 * postgres.ts migration 16), where the head is locked and read in the statement that appends: one round trip,
 * not two, for every appending transaction, and the validation API's disclosure groups one statement in all.
 */
export function auditHashTail(r: { readonly at: Date | number; readonly actor: string; readonly action: string; readonly subject: string; readonly detail: string }): string {
  const at = typeof r.at === "number" ? r.at : r.at.getTime();
  return JSON.stringify([at, r.actor, r.action, r.subject, r.detail]).slice(1);
}

/**
 * JSON with object keys sorted at every level: the same detail always encodes (and hashes) the same. Written
 * with string concatenation, and keys sorted only when they are not in order already: an issuance group's
 * record lists every certificate it committed, and the arrays of keys, the sorts and the joins per certificate
 * were most of the audit record's cost.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") {
    if (typeof v === "bigint") return JSON.stringify(v.toString());
    if (v === undefined) return "null";
    return JSON.stringify(v);
  }
  if (v instanceof CanonicalJsonText) return v.json;
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  if (Array.isArray(v)) {
    let s = "[";
    for (let i = 0; i < v.length; i++) s += (i ? "," : "") + canonicalJson(v[i]);
    return s + "]";
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let s = "{";
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    s += (s.length > 1 ? "," : "") + quotedKey(k) + canonicalJson(x);
  }
  return s + "}";
}

/**
 * JSON text that canonicalJson writes as it is: a detail's bulk list encoded by one native JSON.stringify, where
 * that already writes canonicalJson's bytes. Walking a notice batch's thousand revocations in JavaScript (key order
 * checked, each key looked up, each value stringified and concatenated) was most of what its audit record cost on
 * the committing thread; the hash then covers the same bytes as before.
 */
export class CanonicalJsonText {
  private constructor(readonly json: string) {}

  /**
   * Records whose keys were written in sorted order and whose values are strings, finite numbers or booleans only:
   * for those JSON.stringify and canonicalJson write the same text (strings through the same JSON.stringify, lone
   * surrogates escaped alike). The type holds the values to that; the key order is the caller's, as the object
   * literal that makes each record writes it (audit-log.test.ts compares both encodings on such records).
   */
  static ofSortedRecords(records: ReadonlyArray<Readonly<Record<string, string | number | boolean>>>): CanonicalJsonText {
    return new CanonicalJsonText(JSON.stringify(records));
  }
}

/**
 * `"key":` for an object key: an issuance group's record lists 500 certificates with the same three keys, so
 * each quoted key is made once, not per certificate (keys are a program's field names: a small set, bounded here).
 */
const quotedKeys = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k) + ":";
    if (quotedKeys.size < 1024) quotedKeys.set(k, q);
  }
  return q;
}

/** The next record after `head` (undefined: the log is empty). */
export function sealAudit(entry: AuditEntry, head: { readonly seq: number; readonly hash: string } | undefined, at: Date, actor: string): AuditRecord {
  const prevHash = head?.hash ?? GENESIS_HASH;
  // Plain literals, no spreads (a spread after other properties takes V8's slow path): a disclosure group of the
  // validation API seals one record per verifier.
  const f = auditFields(entry, at, actor);
  const seq = (head?.seq ?? 0) + 1;
  return { seq, at: f.at, actor: f.actor, action: f.action, subject: f.subject, detail: f.detail, prevHash, hash: auditHash({ prevHash, at: f.at, actor: f.actor, action: f.action, subject: f.subject, detail: f.detail }) };
}

/**
 * What an entry records when appended at `at` by `actor` (the entry's own actor when it names one), before it is
 * chained and hashed: sealAudit's fields, and what PostgreSQL's jpki_audit_append is given.
 */
export function auditFields(entry: AuditEntry, at: Date, actor: string): { readonly at: Date; readonly actor: string; readonly action: string; readonly subject: string; readonly detail: string } {
  return { at, actor: storable(entry.actor ?? actor), action: storable(entry.action), subject: storable(entry.subject), detail: canonicalJson(entry.detail ?? {}) };
}

/**
 * A field as the stores keep it: a lone surrogate (a string from JSON.parse of "\ud800" holds one) becomes U+FFFD,
 * as UTF-8 must have it. Hashed as given, JSON.stringify would write it as the escape \ud800 while the store
 * kept U+FFFD (PostgreSQL) or bytes read back as U+FFFD (SQLite): the record's hash would not be the hash of
 * its stored fields, and `jpki audit verify` would call an honest log altered. The detail needs nothing:
 * canonicalJson escapes them, and the escape is ASCII.
 */
function storable(s: string): string {
  // String.prototype.toWellFormed (ES2024; Node 20 has it, the ES2022 lib does not declare it).
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}

/** Who acts for a process: its OS user ("os:<name>"), or "os:unknown" where the platform will not say. */
export function osActor(): string {
  try {
    // Read once per process, on the first append: userInfo reads the passwd database.
    cachedUser ??= `os:${userInfo().username}`;
    return cachedUser;
  } catch {
    return "os:unknown";
  }
}
let cachedUser: string | undefined;

/** Filters for reading the log (Store.auditRecords). */
export interface AuditQuery {
  /** records with seq above this (default 0: from the start) */
  readonly afterSeq?: number;
  /** records at or after this time */
  readonly since?: Date;
  readonly action?: string;
  readonly actor?: string;
  readonly subject?: string;
  /** at most this many */
  readonly limit?: number;
}

/**
 * A signed checkpoint of the chain head (audit/checkpoint.ts): a CA key's signature over (seq, hash, at), with
 * the signer's certificate. Whoever rewrites records up to `seq` cannot make the signature fit the new hash.
 */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly at: Date;
  /** the CA whose key signed */
  readonly caId: string;
  readonly certificateDer: Buffer;
  readonly signature: Buffer;
}
