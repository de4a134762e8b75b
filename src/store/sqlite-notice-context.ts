/**
 * A notice batch's context (NoticeContext) as the SQLite store reads it: the statements and the read, shared by the
 * committing connection (in its write transaction) and the context thread (store/sqlite-context-thread.ts), which
 * reads the next batch's on a connection of its own while the committing thread commits this one. And the merge of
 * such a read-ahead context with what the committing thread reads again of it (store/notice-prefetch.ts says when).
 */
import type Database from "better-sqlite3";
import type { CertificateType, Gender } from "../profile/types.js";
import { toStoredNotice, type NoticeRowDb } from "./rows.js";
import type { CertifiedRow, NoticeContext, NoticeContextKeys, NoticeStatus, StoredNotice } from "./types.js";

/** An unrevoked certificate a notice batch read: what its CRL entry and log metadata need. */
export interface UnrevokedCertificate {
  readonly caId: string;
  readonly municipality: string;
  readonly notAfter: number;
}

/** A context as read, with what the read covered. */
export interface NoticeContextRead {
  readonly ctx: NoticeContext;
  /** every resident code the read looked at: the keys' and those it followed changes to (its frontiers) */
  readonly codes: ReadonlySet<string>;
  /** the codes whose registry record the read wanted whatever the CA knows of them */
  readonly registry: ReadonlySet<string>;
  /** what revoking each unrevoked certificate read needs, by serial */
  readonly unrevoked: ReadonlyMap<string, UnrevokedCertificate>;
}

/** The statements of a context read, prepared on one connection. */
export function prepareNoticeContext(db: Database.Database): Record<"batchNoticeStatus" | "batchCodeChanges" | "batchLastSeq" | "batchHeld" | "batchCertified" | "batchResidents", Database.Statement> {
  return {
    batchNoticeStatus: db.prepare("SELECT notice_id, status, body, received_at, applied_at FROM notices WHERE notice_id IN (SELECT value FROM json_each(?))").raw(),
    // The applied resident-code changes away from some codes (migration 24's partial index): rare rows.
    batchCodeChanges: db.prepare(
      "SELECT resident_code, body FROM notices WHERE kind = 'resident-code-change' AND status = 'applied' AND resident_code IN (SELECT value FROM json_each(?))",
    ).raw(),
    batchLastSeq: db.prepare("SELECT resident_code, last_sequence FROM resident_sequences WHERE resident_code IN (SELECT value FROM json_each(?))").raw(),
    batchHeld: db.prepare("SELECT * FROM notices WHERE status = 'held' AND resident_code IN (SELECT value FROM json_each(?)) ORDER BY resident_code, sequence"),
    // The four items only where a notice compares them (CertifiedRow): an unrevoked signature certificate's. Left
    // NULL in SQL, the others are never decoded from UTF-8 into strings on the committing thread.
    batchCertified: db.prepare(
      `SELECT serial, ca_id, type, resident_code,
         CASE WHEN revoked_at IS NULL AND type = 'signature' THEN name END, CASE WHEN revoked_at IS NULL AND type = 'signature' THEN address END,
         CASE WHEN revoked_at IS NULL AND type = 'signature' THEN birth_date END, CASE WHEN revoked_at IS NULL AND type = 'signature' THEN gender END,
         revoked_at, municipality_code, not_after, registry_sequence FROM certified WHERE resident_code IN (SELECT value FROM json_each(?))`,
    ).raw(),
    batchResidents: db.prepare("SELECT resident_code, notice_sequence, successor_code FROM residents WHERE resident_code IN (SELECT value FROM json_each(?))").raw(),
  };
}

export type NoticeContextStatements = ReturnType<typeof prepareNoticeContext>;

/** Reads a batch's context; run it in a transaction (the committing one, or a read transaction ahead of it). */
export function readNoticeContext(st: NoticeContextStatements, keys: NoticeContextKeys): NoticeContextRead {
  // Set-based: one statement per kind of fact for the whole batch (json_each expands the keys), instead
  // of five point queries per resident; the per-statement crossing dominated at national scale.
  const ids = JSON.stringify(keys.noticeIds);
  // A held resident-code change may be applied by this batch (its gap filled): the notices held under its
  // new code must then be in the context too, or they would wait for ever. Follow such changes.
  // Every code is in exactly one frontier, so the frontiers' rows are all the held notices of the batch's codes
  // (each resident's in sequence order), without reading them again.
  const codeSet = new Set(keys.residentCodes);
  const registryCodes = new Set(keys.registryCodes);
  const held = new Map<string, StoredNotice[]>();
  // Applied changes are followed too: a notice still filed under an old code is the person's under the new one.
  const codeChanges = new Map<string, string>();
  const firstSize = codeSet.size;
  let firstList: string | undefined;
  for (let frontier = [...codeSet]; frontier.length; ) {
    const next: string[] = [];
    const list = JSON.stringify(frontier);
    firstList ??= list;
    for (const r of st.batchHeld.all(list) as NoticeRowDb[]) {
      const list = held.get(r.resident_code) ?? [];
      list.push(toStoredNotice(r));
      held.set(r.resident_code, list);
      if (r.kind !== "resident-code-change") continue;
      const to = (JSON.parse(r.body) as { newResidentCode?: string }).newResidentCode;
      registryCodes.add(r.resident_code);
      if (to) registryCodes.add(to);
      if (to && !codeSet.has(to)) (codeSet.add(to), next.push(to));
    }
    for (const [from, body] of st.batchCodeChanges.all(list) as Array<[string, string]>) {
      const to = (JSON.parse(body) as { newResidentCode?: string }).newResidentCode;
      if (!to) continue;
      codeChanges.set(from, to);
      if (!codeSet.has(to)) (codeSet.add(to), next.push(to));
    }
    frontier = next;
  }
  // Written once: the same list as the first frontier's unless following changes added codes (the set only grows).
  const codes = firstList !== undefined && codeSet.size === firstSize ? firstList : JSON.stringify([...codeSet]);
  const known = new Map<string, { status: NoticeStatus; body: string; receivedAt: Date; appliedAt?: Date }>();
  for (const [id, status, body, receivedAt, appliedAt] of st.batchNoticeStatus.all(ids) as Array<[string, NoticeStatus, string, number | bigint, number | bigint | null]>) {
    known.set(id, { status, body, receivedAt: new Date(Number(receivedAt)), ...(appliedAt === null ? {} : { appliedAt: new Date(Number(appliedAt)) }) });
  }
  const lastSequence = new Map<string, number>();
  for (const [code, last] of st.batchLastSeq.all(codes) as Array<[string, number]>) lastSequence.set(code, last);
  const certificates = new Map<string, CertifiedRow[]>();
  const unrevoked = new Map<string, UnrevokedCertificate>();
  // One read gives both: the unrevoked certificates, and which codes were ever certified.
  const everCertified = new Set<string>();
  // The items are NULL but on an unrevoked signature certificate (batchCertified).
  type Certified = [
    serial: string, caId: string, type: CertificateType, residentCode: string, name: string | null, address: string | null, birthDate: string | null, gender: string | null,
    revokedAt: number | null, municipality: string, notAfter: number, issuedAtSequence: number | null,
  ];
  for (const [serial, caId, type, residentCode, name, address, birthDate, gender, revokedAt, municipality, notAfter, issuedAtSequence] of st.batchCertified.all(codes) as Certified[]) {
    everCertified.add(residentCode);
    if (revokedAt !== null) continue;
    unrevoked.set(serial, { caId, municipality, notAfter });
    const list = certificates.get(residentCode) ?? [];
    // Built directly, one object each (through itemsOf's row object and a spread of the sequence, three more), of
    // one shape per type: issuedAtSequence is there, undefined where the store has none.
    const seq = issuedAtSequence ?? undefined;
    list.push(
      type === "signature"
        ? { serial, caId, type, residentCode, fourItems: { name: name!, address: address!, birthDate: birthDate!, gender: gender as Gender }, issuedAtSequence: seq }
        : { serial, caId, type, residentCode, issuedAtSequence: seq },
    );
    certificates.set(residentCode, list);
  }
  // The registry's record only where the decision looks at it: a code the CA knows nothing of (is it a
  // resident at all?), and the codes of a resident-code change (is the new code someone's?). Most notices
  // are for certificate holders: their registry rows are not read.
  const wanted = [...codeSet].filter((c) => registryCodes.has(c) || !(everCertified.has(c) || lastSequence.has(c)));
  const residents = new Map<string, number>();
  const successors = new Map<string, string>();
  if (wanted.length) {
    for (const [code, seq, successor] of st.batchResidents.all(JSON.stringify(wanted)) as Array<[string, number, string | null]>) {
      residents.set(code, seq);
      if (successor !== null) successors.set(code, successor);
    }
  }
  return { ctx: { known, lastSequence, held, certificates, residents, successors, everCertified, codeChanges }, codes: codeSet, registry: registryCodes, unrevoked };
}

/**
 * A context read ahead (`ahead`) brought up to date by a read again (`again`) of the codes and notice ids the commits
 * since changed. Every fact of a context is per resident code (its sequence, held notices, certificates, applied code
 * changes, registry record) or per notice id, so those of `again`'s codes and ids replace `ahead`'s, absent ones
 * included, and the others stand. The registry records are the same in both (no other connection committed: the
 * caller's check), so they are joined; a context may hold more of them than the decision looks at (NoticeContext).
 * `again` followed the changes from its codes as they are now, so the codes both reached are all the batch's now;
 * codes only `ahead` reached by a change since moved on are left in, unasked for by any notice of the batch.
 */
export function mergeNoticeContext(ahead: NoticeContextRead, again: NoticeContextRead, ids: readonly string[]): NoticeContextRead {
  const a = ahead.ctx;
  const b = again.ctx;
  const known = new Map(a.known);
  for (const id of ids) {
    const k = b.known.get(id);
    if (k) known.set(id, k);
    else known.delete(id);
  }
  const lastSequence = new Map(a.lastSequence);
  const held = new Map(a.held);
  const certificates = new Map(a.certificates);
  const everCertified = new Set(a.everCertified);
  const codeChanges = new Map(a.codeChanges);
  const unrevoked = new Map(ahead.unrevoked);
  for (const code of again.codes) {
    for (const c of a.certificates.get(code) ?? []) unrevoked.delete(c.serial);
    replace(lastSequence, b.lastSequence, code);
    replace(held, b.held, code);
    replace(certificates, b.certificates, code);
    replace(codeChanges, b.codeChanges, code);
    if (b.everCertified.has(code)) everCertified.add(code);
    else everCertified.delete(code);
  }
  for (const [serial, u] of again.unrevoked) unrevoked.set(serial, u);
  const residents = new Map([...a.residents, ...b.residents]);
  const successors = new Map([...(a.successors ?? []), ...(b.successors ?? [])]);
  return {
    ctx: { known, lastSequence, held, certificates, residents, successors, everCertified, codeChanges },
    codes: new Set([...ahead.codes, ...again.codes]),
    registry: new Set([...ahead.registry, ...again.registry]),
    unrevoked,
  };
}

function replace<V>(into: Map<string, V>, from: ReadonlyMap<string, V>, key: string): void {
  const v = from.get(key);
  if (v === undefined) into.delete(key);
  else into.set(key, v);
}

/**
 * A context read as it crosses from the context thread: flat arrays of plain values, not maps of objects. The
 * structured clone rebuilds every object property by property on the receiving (committing) thread: measured at 1M
 * residents, ≈ 3.4 µs a notice to receive a context as maps of objects, ≈ 1.2 to receive it flat and rebuild it there.
 */
export interface EncodedContextRead {
  /** notice id, status, body, received at, applied at (or null), for each known notice */
  readonly known: ReadonlyArray<string | number | null>;
  /** code, last sequence */
  readonly lastSequence: ReadonlyArray<string | number>;
  readonly held: ReadonlyArray<readonly [string, readonly StoredNotice[]]>;
  /** serial, CA, type, code, name, address, birth date, gender (the items null but on a signature certificate), sequence issued at (or null), municipality, not after */
  readonly certificates: ReadonlyArray<string | number | null>;
  /** code, registry sequence, successor (or null) */
  readonly residents: ReadonlyArray<string | number | null>;
  readonly everCertified: readonly string[];
  /** old code, new code */
  readonly codeChanges: readonly string[];
  readonly codes: readonly string[];
  readonly registry: readonly string[];
}

const CERT_FIELDS = 11;

export function encodeContextRead(r: NoticeContextRead): EncodedContextRead {
  const { ctx } = r;
  const known: Array<string | number | null> = [];
  for (const [id, k] of ctx.known) known.push(id, k.status, k.body, k.receivedAt.getTime(), k.appliedAt?.getTime() ?? null);
  const certificates: Array<string | number | null> = [];
  for (const [code, list] of ctx.certificates) {
    for (const c of list) {
      const u = r.unrevoked.get(c.serial)!;
      const f = c.fourItems;
      certificates.push(c.serial, c.caId, c.type, code, f?.name ?? null, f?.address ?? null, f?.birthDate ?? null, f?.gender ?? null, c.issuedAtSequence ?? null, u.municipality, u.notAfter);
    }
  }
  const residents: Array<string | number | null> = [];
  for (const [code, seq] of ctx.residents) residents.push(code, seq, ctx.successors?.get(code) ?? null);
  return {
    known,
    lastSequence: [...ctx.lastSequence].flat(),
    held: [...ctx.held],
    certificates,
    residents,
    everCertified: [...ctx.everCertified],
    codeChanges: [...ctx.codeChanges].flat(),
    codes: [...r.codes],
    registry: [...r.registry],
  };
}

/** The read again, as readNoticeContext builds it (the same shapes: one per certificate type). */
export function decodeContextRead(m: EncodedContextRead): NoticeContextRead {
  const known = new Map<string, { status: NoticeStatus; body: string; receivedAt: Date; appliedAt?: Date }>();
  for (let i = 0, k = m.known; i < k.length; i += 5) {
    const appliedAt = k[i + 4] as number | null;
    known.set(k[i] as string, { status: k[i + 1] as NoticeStatus, body: k[i + 2] as string, receivedAt: new Date(k[i + 3] as number), ...(appliedAt === null ? {} : { appliedAt: new Date(appliedAt) }) });
  }
  const lastSequence = new Map<string, number>();
  for (let i = 0, s = m.lastSequence; i < s.length; i += 2) lastSequence.set(s[i] as string, s[i + 1] as number);
  const certificates = new Map<string, CertifiedRow[]>();
  const unrevoked = new Map<string, UnrevokedCertificate>();
  for (let i = 0, c = m.certificates; i < c.length; i += CERT_FIELDS) {
    const serial = c[i] as string;
    const caId = c[i + 1] as string;
    const type = c[i + 2] as CertificateType;
    const residentCode = c[i + 3] as string;
    const seq = (c[i + 8] as number | null) ?? undefined;
    const list = certificates.get(residentCode) ?? [];
    list.push(
      type === "signature"
        ? { serial, caId, type, residentCode, fourItems: { name: c[i + 4] as string, address: c[i + 5] as string, birthDate: c[i + 6] as string, gender: c[i + 7] as Gender }, issuedAtSequence: seq }
        : { serial, caId, type, residentCode, issuedAtSequence: seq },
    );
    certificates.set(residentCode, list);
    unrevoked.set(serial, { caId, municipality: c[i + 9] as string, notAfter: c[i + 10] as number });
  }
  const residents = new Map<string, number>();
  const successors = new Map<string, string>();
  for (let i = 0, r = m.residents; i < r.length; i += 3) {
    residents.set(r[i] as string, r[i + 1] as number);
    if (r[i + 2] !== null) successors.set(r[i] as string, r[i + 2] as string);
  }
  const codeChanges = new Map<string, string>();
  for (let i = 0, c = m.codeChanges; i < c.length; i += 2) codeChanges.set(c[i]!, c[i + 1]!);
  return {
    ctx: { known, lastSequence, held: new Map(m.held), certificates, residents, successors, everCertified: new Set(m.everCertified), codeChanges },
    codes: new Set(m.codes),
    registry: new Set(m.registry),
    unrevoked,
  };
}
