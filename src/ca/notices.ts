/**
 * Change-notice ingestion: the CA side of the link between the two networks (shared/spec/JPKI.md "The link
 * between the two networks"). The registry sends 異動等情報の通知; the CA compares the four items it
 * certified with the items after the change and revokes exactly the certificates that no longer hold.
 *
 * Ingestion is streaming and batched: each batch is read with one context query, decided in memory by the
 * rules table (registry/notice-rules.ts), and committed in one transaction. It is idempotent by notice id
 * and ordered per resident by sequence: a notice whose predecessor has not arrived is held until the gap
 * fills or an operator releases it. A killed run resumes by ingesting the same file again.
 */
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import { CRL_REASON, reasonName } from "../crl/reason.js";
import type { RecordResult } from "../registry/import.js";
import { untilStopped } from "../registry/reading-stop.js";
import { MAX_SEQUENCE_JUMP, NOTICE_ITEM_FIELDS, noticeInNormalForm, notYetEffective, parseNotice, type ChangeNotice } from "../registry/notice.js";
import type { FourItems } from "../profile/types.js";
import { decideRevocations, endsRecord, noticeSource } from "../registry/notice-rules.js";
import type { CertifiedRow, HeldNoticeKey, NoticeBody, NoticeCommit, NoticeContext, NoticeContextKeys, Store, StoredNotice } from "../store/types.js";

/** Held notices per transaction of an operator's release of all of them. */
export const RELEASE_PAGE = 1000;

export interface RejectedNotice {
  readonly line: number;
  readonly code: ErrorCode;
  readonly message: string;
  /** the record as read (for the reject file), when it parsed as an object */
  readonly record?: Record<string, unknown>;
}

export interface IngestProgress {
  readonly read: number;
  readonly applied: number;
  /** notices not taken again because the store or this run already has them with the same content: all of them */
  readonly duplicates: number;
  /**
   * Of `duplicates`, those an earlier run (or another process) had already applied: a run that resumes after a
   * killed one finds that run's committed batches here. The rest of `duplicates` are this run's own: a notice
   * repeated in the feed, or one an earlier run held and still holds ({@link IngestProgress.alreadyHeld}).
   */
  readonly alreadyApplied: number;
  /** of `duplicates`, those an earlier run (or another process) received and still holds */
  readonly alreadyHeld: number;
  readonly held: number;
  readonly rejected: number;
  readonly revocations: number;
}

export interface IngestSummary extends IngestProgress {
  /** held notices applied because their predecessor arrived (or an operator released them) */
  readonly released: number;
  readonly revocationsByReason: Readonly<Record<string, number>>;
  readonly revocationsByCa: Readonly<Record<string, number>>;
  /** true when a stop signal ended the run before the input did */
  readonly stopped: boolean;
  /**
   * Stopped: the line of the last notice taken (applied, held, a duplicate or rejected; 0: none). The lines after it
   * were not taken — read ahead into a batch not begun, or not read.
   */
  readonly lastLine?: number;
}

/** A held notice an operator release left held: it is more than MAX_SEQUENCE_JUMP after its resident's last. */
export interface RefusedRelease {
  readonly noticeId: string;
  readonly sequence: number;
  readonly last: number;
}

export interface ReleaseSummary extends IngestSummary {
  /** held notices not released because they are implausibly far ahead (ERR_NOTICE_SEQUENCE_JUMP); they stay held */
  readonly refused: readonly RefusedRelease[];
}

export interface IngestOptions {
  /** notices per transaction (default 1000) */
  readonly batchSize?: number;
  readonly onProgress?: (p: IngestProgress) => void;
  readonly onReject?: (r: RejectedNotice) => void;
  /** called after each committed batch with the CAs that revoked something in it */
  readonly onBatchCommitted?: (cas: readonly string[]) => Promise<void> | void;
  /** stop cleanly after the batch in progress */
  readonly signal?: AbortSignal;
  /**
   * What lets go of the input when the stop comes while the next batch waits for it (a pipe: releaseStream), so the
   * stop need not wait for lines or an end that may never come. Without it, the stop is acted on between batches:
   * right for a file, which never waits long.
   */
  readonly release?: () => void;
}

/** A notice read and checked, waiting for its batch: what the read stage hands to the committing stage. */
export interface ReadNotice {
  readonly line: number;
  readonly notice: ChangeNotice;
  /** its canonical JSON ({@link canonical}): UTF-8 bytes when a reader thread read it (ca/notice-reader.ts) */
  readonly body: NoticeBody;
  /**
   * the record as read, for the reject file: as JSON text when a reader thread read it; absent when the line read was
   * the canonical body itself
   */
  readonly record?: Record<string, unknown> | string;
  /**
   * with no record: the field the body has and the line had not, parseNotice's default ({@link canonicalBodyOf}):
   * the record as read is the body without it
   */
  readonly added?: string;
}

/** The notices of one transaction, with the records rejected while reading them (in input order). */
export interface ReadBatch {
  readonly notices: readonly ReadNotice[];
  readonly rejects: readonly RejectedNotice[];
  /** records read for this batch: its notices and its rejects */
  readonly read: number;
}

/** Canonical JSON of a notice: what the store keeps and what a held notice is re-read from. */
export function canonical(n: ChangeNotice): string {
  return JSON.stringify(n);
}

/**
 * The canonical body of `n` (parseNotice of `value`) found from `text`, the line `value` was parsed from, without
 * writing it: the line itself when it already is the canonical JSON, or the line with the one field parseNotice
 * defaults put in (a relocation without newMunicipalityCode, which is its municipalityCode: real feeds may leave it
 * out, a third of the bench's) — so the body is canonical(n) either way, one normal form whether the field was given
 * or defaulted. Undefined when in any doubt: the body is then written as before. A feed written as the canonical
 * record (the registry's, the generators') has most lines so, and writing each again cost the reader thread
 * ≈ 1.5 µs a notice.
 *
 * Why it suffices: without a backslash, every string of the line is its value between quotes, as JSON.stringify
 * writes it (JSON.parse takes no raw control character, and UTF-8 text holds no lone surrogate). When the value
 * has the notice's keys in its order with the same values (less the defaulted one), the line has the canonical
 * JSON's tokens of that value in its order; each token is as short as it can be but the number, which is checked to
 * be as JSON.stringify writes it; so a line of that canonical length has no whitespace either, and is the canonical
 * JSON of the value. The defaulted field then goes where canonical(n) has it: right after the field before it.
 */
export function canonicalBodyOf(text: string, value: Record<string, unknown>, n: ChangeNotice): { body: string; added?: string } | undefined {
  if (text.includes("\\")) return undefined;
  const keys = Object.keys(n) as (keyof ChangeNotice)[];
  const given = Object.keys(value);
  // Only relocation's newMunicipalityCode is ever filled in by parseNotice (NOTICE_KINDS: optional, defaulted).
  const defaulted = n.kind === "relocation" && n.newMunicipalityCode === n.municipalityCode && !("newMunicipalityCode" in value) ? "newMunicipalityCode" : undefined;
  if (given.length !== keys.length - (defaulted ? 1 : 0)) return undefined;
  let length = 1; // the opening brace; then each field with the comma before it (the last one's place: the closing brace)
  let insertAt = -1;
  for (let k = 0, g = 0; k < keys.length; k++) {
    const key = keys[k]!;
    if (key === defaulted) {
      insertAt = length - 1; // after the field before it (there is one: municipalityCode), before its comma or brace
      continue;
    }
    if (given[g++] !== key) return undefined;
    const want = n[key];
    const got = value[key];
    length += key.length + 4; // the quoted key, its colon, and the comma after the field (or the closing brace)
    if (typeof want === "string") {
      if (got !== want) return undefined;
      length += want.length + 2;
    } else if (typeof want === "number") {
      if (got !== want) return undefined;
      // Written otherwise, the number is longer (1.0, 10e-1: the length tells) or starts otherwise (1e3 for 1000).
      const digits = String(want);
      const at = text.indexOf('"sequence":');
      if (key !== "sequence" || at < 0 || !text.startsWith(digits, at + 11)) return undefined;
      length += digits.length;
    } else {
      const items = want as FourItems;
      const o = got as Record<string, unknown> | null;
      if (typeof o !== "object" || o === null) return undefined;
      const fields = Object.keys(o);
      if (fields.length !== 4) return undefined;
      length += 5; // the braces and three commas
      for (let f = 0; f < 4; f++) {
        const field = NOTICE_ITEM_FIELDS[f]!; // the order parseNotice gives them in
        if (fields[f] !== field || o[field] !== items[field]) return undefined;
        length += field.length + 3 + items[field].length + 2;
      }
    }
  }
  if (text.length !== length) return undefined;
  if (!defaulted) return { body: text };
  return { body: `${text.slice(0, insertAt)},"${defaulted}":"${n[defaulted]}"${text.slice(insertAt)}`, added: defaulted };
}

/** Whether `text` (the line `value` was parsed from) already is the canonical JSON of `n` ({@link canonicalBodyOf}). */
export function isCanonicalText(text: string, value: Record<string, unknown>, n: ChangeNotice): boolean {
  return canonicalBodyOf(text, value, n)?.body === text;
}

/** A canonical body as text: decoded only where a notice is compared with one seen before (a duplicate). */
function bodyText(b: NoticeBody): string {
  return typeof b === "string" ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
}

/**
 * A notice read back from its canonical JSON, its items in the registry's normal form: earlier versions stored
 * them as given (NFD, padded), which compared with the certified items revoked needlessly.
 */
function stored(body: string): ChangeNotice {
  return noticeInNormalForm(JSON.parse(body) as ChangeNotice);
}

/**
 * The read stage: records → notices parsed and checked (parseNotice, not yet effective), in batches of `size`
 * notices. Pure but for the clock, so it runs on a reader thread as well (ca/notice-reader.ts) while the
 * committing stage works on the batch before.
 */
export async function* readBatches(records: AsyncIterable<RecordResult>, clock: Clock, size: number): AsyncGenerator<ReadBatch, void, undefined> {
  let notices: ReadNotice[] = [];
  let rejects: RejectedNotice[] = [];
  let read = 0;
  for await (const item of records) {
    read++;
    if ("error" in item) {
      rejects.push({ line: item.line, code: item.error.code, message: item.error.message });
    } else {
      try {
        const now = clock.now();
        const notice = parseNotice(item.value, { line: item.line, now });
        const early = notYetEffective(notice, now);
        if (early) throw early;
        // The line as read where there is one: the reader thread passes the record on as text, and serialising
        // the parsed value again cost it ≈ 5 µs a notice (a quarter of its work). A line that is the canonical body
        // (but perhaps for a defaulted field) is both: the body, and no record besides (recordOf reads it from the
        // body, less the field added).
        const text = item.text;
        const found = text !== undefined ? canonicalBodyOf(text, item.value, notice) : undefined;
        if (found?.added !== undefined) notices.push({ line: item.line, notice, body: found.body, added: found.added });
        else if (found) notices.push({ line: item.line, notice, body: found.body });
        else notices.push({ line: item.line, notice, body: canonical(notice), record: text ?? item.value });
      } catch (e) {
        if (!isJpkiError(e)) throw e;
        rejects.push({ line: item.line, code: e.code, message: e.message.startsWith("line ") ? e.message : `line ${item.line}: ${e.message}`, record: item.value });
      }
    }
    if (notices.length >= size) {
      yield { notices, rejects, read };
      notices = [];
      rejects = [];
      read = 0;
    }
  }
  if (read) yield { notices, rejects, read };
}

/** The record of a notice as read, for the reject file. */
function recordOf(n: ReadNotice): Record<string, unknown> {
  if (n.record === undefined) {
    const r = JSON.parse(bodyText(n.body)) as Record<string, unknown>;
    if (n.added !== undefined) delete r[n.added];
    return r;
  }
  return typeof n.record === "string" ? (JSON.parse(n.record) as Record<string, unknown>) : n.record;
}

class Tally {
  read = 0;
  applied = 0;
  duplicates = 0;
  alreadyApplied = 0;
  alreadyHeld = 0;
  held = 0;
  released = 0;
  rejected = 0;
  revocations = 0;
  byReason: Record<string, number> = {};
  byCa: Record<string, number> = {};
  /**
   * The `at` (ms) of every batch this run decided: the store keeps it as a notice's receivedAt, so a stored notice
   * received at another time was stored by another run. One number per batch, not one per notice: memory stays
   * bounded by the batch count however long the feed.
   */
  readonly batchTimes = new Set<number>();
  progress(): IngestProgress {
    const { read, applied, duplicates, alreadyApplied, alreadyHeld, held, rejected, revocations } = this;
    return { read, applied, duplicates, alreadyApplied, alreadyHeld, held, rejected, revocations };
  }
}

export class NoticeIngestor {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(opts: { store: Store; clock: Clock }) {
    this.#store = opts.store;
    this.#clock = opts.clock;
  }

  async ingest(records: AsyncIterable<RecordResult>, opts: IngestOptions = {}): Promise<IngestSummary> {
    return this.ingestBatches(readBatches(records, this.#clock, opts.batchSize ?? 1000), opts);
  }

  /**
   * Commits batches from a read stage ({@link readBatches}, here or on a reader thread): each batch's read
   * rejects are reported, then its notices committed in one transaction.
   */
  async ingestBatches(batches: AsyncIterable<ReadBatch>, opts: IngestOptions = {}): Promise<IngestSummary> {
    const t = new Tally();
    const reject = (r: RejectedNotice) => {
      t.rejected++;
      opts.onReject?.(r);
    };
    let stopped = false;
    let lastLine = 0;
    // A batch that came after the stop is not begun: the run ends after the batch in progress, not the next one —
    // an input that made the run wait (a pipe, a spool's next lines) would otherwise have its lines sent after the
    // signal read, applied or rejected. Those lines are not counted read: a rerun reads them. With `release`, a wait
    // for the next batch ends at the stop too (untilStopped): a pipe with nothing to send held the stop until it had.
    const input = untilStopped(batches, opts.signal, opts.release);
    for await (const b of input) {
      t.read += b.read;
      lastLine = Math.max(lastLine, b.notices.at(-1)?.line ?? 0, b.rejects.at(-1)?.line ?? 0);
      for (const r of b.rejects) reject(r);
      if (!b.notices.length) continue;
      await this.#commit(b.notices, t, reject, opts);
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
    }
    stopped ||= input.stopped;
    return { ...t.progress(), released: t.released, revocationsByReason: t.byReason, revocationsByCa: t.byCa, stopped, ...(stopped ? { lastLine } : {}) };
  }

  /**
   * Operator release (`jpki notices pending --release`): applies held notices even though a predecessor
   * never arrived, in sequence order per resident. With no ids, every held notice (`--release-all`): walked a
   * page of `pageSize` at a time in (resident code, sequence) order, one transaction per page, so memory stays
   * bounded however many are held (a run stopped half-way leaves the rest held; running it again releases them).
   */
  async release(noticeIds?: readonly string[], opts: { readonly pageSize?: number } = {}): Promise<ReleaseSummary> {
    const t = new Tally();
    const refused = new Map<string, RefusedRelease>();
    if (noticeIds) {
      const stored = await Promise.all(noticeIds.map((id) => this.#store.getNotice(id)));
      const held = stored.filter((n): n is StoredNotice => n?.status === "held");
      if (held.length !== noticeIds.length) {
        const found = new Set(held.map((h) => h.noticeId));
        const applied = new Set(stored.filter((n) => n?.status === "applied").map((n) => n!.noticeId));
        const missing = noticeIds.filter((id) => !found.has(id) && !applied.has(id));
        const done = noticeIds.filter((id) => applied.has(id));
        // Said apart: an id already applied (by its gap filling, or an earlier release) needs nothing more.
        const parts = [...(missing.length ? [`not held: ${missing.join(", ")}`] : []), ...(done.length ? [`already applied: ${done.join(", ")}`] : [])];
        throw new JpkiError("ERR_USAGE", `${parts.join("; ")} ('jpki notices pending' lists the held notices)`);
      }
      for (const r of (await this.#releaseHeld(held, t)).refused) refused.set(r.noticeId, r);
    } else {
      const pageSize = opts.pageSize ?? RELEASE_PAGE;
      if (!Number.isInteger(pageSize) || pageSize < 1) throw new JpkiError("ERR_USAGE", "the release page size must be a whole number ≥ 1");
      // A resident-code change released on one page re-files the resident's other held notices (those of later
      // pages) under the new code, which the walk may have passed: another pass then finds them. Each pass that
      // asks for another applied a code change, so the passes end.
      for (let again = true; again; ) {
        again = false;
        let after: HeldNoticeKey | undefined;
        for (;;) {
          const page = await this.#store.listHeldNotices(pageSize, after);
          if (!page.length) break;
          const done = await this.#releaseHeld(page, t);
          for (const r of done.refused) refused.set(r.noticeId, r);
          again ||= done.refiled;
          const last = page[page.length - 1]!;
          after = { residentCode: last.residentCode, sequence: last.sequence };
          if (page.length < pageSize) break;
        }
      }
    }
    return { ...t.progress(), released: t.released, revocationsByReason: t.byReason, revocationsByCa: t.byCa, stopped: false, refused: [...refused.values()] };
  }

  /** Releases these held notices in one transaction; says which stay held as too far ahead, and whether held notices were re-filed. */
  async #releaseHeld(held: readonly StoredNotice[], t: Tally): Promise<{ refused: readonly RefusedRelease[]; refiled: boolean }> {
    const codes = held.flatMap((h) => codesOf(JSON.parse(h.body) as ChangeNotice, h.residentCode));
    const keys: NoticeContextKeys = { noticeIds: held.map((h) => h.noticeId), residentCodes: codes, registryCodes: codes };
    // Decided from the state read in the committing transaction: a notice applied meanwhile by another
    // process is no longer held there and is skipped.
    const done = await this.#store.commitNoticeBatch(keys, (ctx) => {
      const plan = new Plan(ctx, this.#clock.now());
      const wanted = new Set(keys.noticeIds);
      const heldNow = [...ctx.held.values()].flat().filter((h) => wanted.has(h.noticeId));
      heldNow.sort((a, b) => (a.residentCode < b.residentCode ? -1 : a.residentCode > b.residentCode ? 1 : a.sequence - b.sequence));
      for (const h of heldNow) plan.force({ ...stored(h.body), residentCode: h.residentCode });
      return { commit: plan.commit(), plan };
    });
    done.plan.tallyCommitted(t, done.revoked);
    return { refused: done.plan.refused, refiled: done.plan.refiled };
  }

  async #commit(batch: readonly ReadNotice[], t: Tally, reject: (r: RejectedNotice) => void, opts: IngestOptions): Promise<void> {
    const keys: NoticeContextKeys = {
      noticeIds: batch.map((p) => p.notice.noticeId),
      residentCodes: batch.flatMap((p) => codesOf(p.notice)),
      registryCodes: batch.flatMap((p) => (p.notice.kind === "resident-code-change" ? codesOf(p.notice) : [])),
    };
    // The context is read and the decision committed in one write transaction, so a concurrent ingestion
    // (or issuance) cannot change what this batch decides from. decide() is pure: a retry starts afresh.
    const done = await this.#store.commitNoticeBatch(keys, (ctx) => {
      const at = this.#clock.now();
      t.batchTimes.add(at.getTime());
      const plan = new Plan(ctx, at, t.batchTimes);
      const problems: RejectedNotice[] = [];
      for (const p of batch) {
        const problem = plan.offer(p.notice, p.body);
        if (problem) problems.push({ line: p.line, code: problem.code, message: `line ${p.line}: ${problem.message}`, record: recordOf(p) });
      }
      return { commit: plan.commit(), plan, problems };
    });
    for (const r of done.problems) reject(r);
    done.plan.tallyCommitted(t, done.revoked);
    opts.onProgress?.(t.progress());
    if (done.commit.dirtyCas.length) await opts.onBatchCommitted?.(done.commit.dirtyCas);
  }
}

/** Whether a body seen before (stored, perhaps by an earlier version) is the same notice as `body`. */
function sameNotice(seen: string, body: string): boolean {
  return seen === body || canonical(stored(seen)) === body;
}

/** The resident codes a notice touches: its own, and the new one of a resident-code change. */
function codesOf(n: ChangeNotice, filedUnder = n.residentCode): string[] {
  return [filedUnder, n.residentCode, ...(n.newResidentCode ? [n.newResidentCode] : [])];
}

/** The in-memory decision for one batch, over the state the context query returned. Pure: no I/O. */
class Plan {
  readonly #ctx: NoticeContext;
  readonly #at: Date;
  /** the batch times of this run (Tally.batchTimes): a stored notice received at none of them is another run's */
  readonly #runTimes: ReadonlySet<number>;
  readonly #seen = new Map<string, NoticeBody>();
  readonly #last: Map<string, number>;
  readonly #held = new Map<string, ChangeNotice[]>();
  /** unrevoked certificates per code: each list is replaced, never changed in place, so the context's are shared */
  readonly #certs: Map<string, readonly CertifiedRow[]>;
  readonly #notices: Array<NoticeCommit["notices"][number]> = [];
  readonly #revocations: Array<NoticeCommit["revocations"][number] & { caId: string }> = [];
  readonly #relinks: Array<{ from: string; to: string }> = [];
  /** resident-code changes applied, old code → new (the store's and this batch's) */
  readonly #movedTo = new Map<string, string>();
  #applied = 0;
  #released = 0;
  #heldCount = 0;
  #duplicates = 0;
  #alreadyApplied = 0;
  #alreadyHeld = 0;
  /** held notices force() left held: too far ahead of their resident's last applied sequence */
  readonly refused: RefusedRelease[] = [];
  /** a resident-code change applied here re-filed held notices under the new code */
  refiled = false;

  constructor(ctx: NoticeContext, at: Date, runTimes: ReadonlySet<number> = new Set([at.getTime()])) {
    this.#ctx = ctx;
    this.#at = at;
    this.#runTimes = runTimes;
    this.#last = new Map(ctx.lastSequence);
    // A held notice is filed under the resident's current code (re-filed after a resident-code change),
    // which may differ from the code in its body.
    for (const [k, v] of ctx.held) this.#held.set(k, v.map((h) => ({ ...stored(h.body), residentCode: k })));
    this.#certs = new Map(ctx.certificates);
    for (const [k, v] of ctx.codeChanges) this.#movedTo.set(k, v);
  }

  /**
   * The code a person named by `code` has now: followed through the resident-code changes applied (in the store
   * or earlier in this batch). A death or a move sent under the old code after its change was applied is about
   * the person now under the new one: applied to the old code it revoked nothing, for good.
   */
  #current(code: string): string {
    if (!this.#movedTo.has(code)) return code; // nearly every notice: no Set for it
    const seen = new Set<string>();
    for (let to = this.#movedTo.get(code); to !== undefined && !seen.has(code); to = this.#movedTo.get(code)) (seen.add(code), (code = to));
    return code;
  }

  /** Takes one notice from the feed; returns a problem when it must be rejected. */
  offer(n: ChangeNotice, body: NoticeBody = canonical(n)): { code: ErrorCode; message: string } | undefined {
    // Seen in this batch first: a notice the store has and the batch repeats is counted as another run's once.
    const inStore = this.#seen.has(n.noticeId) ? undefined : this.#ctx.known.get(n.noticeId);
    const seenBody = this.#seen.get(n.noticeId) ?? inStore?.body;
    if (seenBody !== undefined) {
      // The same id must mean the same notice: a different body is another change under a reused id, and
      // counting it as a duplicate would silently drop it.
      // A body an earlier version stored with its items as given is the same notice once they are in normal form.
      if (seenBody !== body && !sameNotice(bodyText(seenBody), bodyText(body))) {
        return { code: "ERR_NOTICE_CONFLICT", message: `notice ${n.noticeId} was received before with a different content: a notice id names one notice only (ask the registry which is right)` };
      }
      this.#duplicates++;
      // Stored by another run (received at none of this run's batch times): a resumed run's skipped prefix, said
      // apart from a notice this feed repeats. The clock is the same injected one for both runs, so two runs
      // meeting in the same millisecond (or a frozen test clock) count as this run's: said as a duplicate, never
      // falsely as resumed.
      // An applied notice is another run's when that run applied it: one an earlier run held and this run applied
      // (its predecessor came in this feed) is this run's, though received before.
      const storedAt = inStore?.status === "applied" ? (inStore.appliedAt ?? inStore.receivedAt) : inStore?.receivedAt;
      if (inStore && !this.#runTimes.has(storedAt!.getTime())) {
        if (inStore.status === "applied") this.#alreadyApplied++;
        else this.#alreadyHeld++;
      }
      this.#seen.set(n.noticeId, seenBody);
      return undefined;
    }
    const rc = this.#current(n.residentCode);
    if (rc !== n.residentCode) n = { ...n, residentCode: rc }; // filed under the current code, its body as received
    // Notices merely held under a code do not make it known: the verdict must not depend on arrival order.
    const known = this.#ctx.residents.has(rc) || this.#ctx.everCertified.has(rc) || this.#certs.has(rc) || this.#last.has(rc);
    // A first notice (sequence 1) for a code nobody knows is a wrong code. A later one may follow a
    // resident-code change (住民票コード変更) to this code that has not arrived yet (another file, another
    // process): it is held, and the change, when applied, drains it.
    if (!known && n.sequence <= 1) {
      return { code: "ERR_RESIDENT_UNKNOWN", message: `notice ${n.noticeId}: the resident is unknown to the registry and holds no certificate` };
    }
    const last = this.#last.get(rc) ?? 0;
    if (n.sequence <= last) {
      // A death or removal still revokes what the resident holds: arriving after an operator released the notices
      // past its gap ('notices pending --release'), it found its sequence passed and was refused, and the dead
      // person's remaining certificates (the authentication one after a move) stayed valid. Applied for its
      // revocations alone: the resident's sequence does not go back.
      if (endsRecord(n.kind) && (this.#certs.get(rc)?.length ?? 0) > 0) {
        this.#seen.set(n.noticeId, body);
        this.#applyOne(n, false, body);
        return undefined;
      }
      return { code: "ERR_NOTICE_STALE", message: `notice ${n.noticeId}: sequence ${n.sequence} is not after ${last}, the resident's last applied sequence: a different notice id with a sequence already applied, or passed when an operator released a later notice across the gap ('notices pending --release'); not applied` };
    }
    // Held, it would wait for ever or be released by an operator, and applied it makes every later notice of the
    // resident stale (a death after it revoked nothing). The registry side refuses it at the same bound.
    if (n.sequence - last > MAX_SEQUENCE_JUMP) {
      return {
        code: "ERR_NOTICE_SEQUENCE_JUMP",
        message: `notice ${n.noticeId}: sequence ${n.sequence} is more than ${MAX_SEQUENCE_JUMP} after the resident's last applied ${last}: not taken (a feed that skips that far is broken; ask the registry)`,
      };
    }
    if ((this.#held.get(rc) ?? []).some((h) => h.sequence === n.sequence)) {
      return { code: "ERR_NOTICE_STALE", message: `notice ${n.noticeId}: another notice with sequence ${n.sequence} is already held for this resident` };
    }
    const conflict = this.#codeInUse(n);
    if (conflict) return conflict;
    this.#seen.set(n.noticeId, body);
    if (n.sequence > last + 1) {
      const list = [...(this.#held.get(rc) ?? []), n].sort((a, b) => a.sequence - b.sequence);
      this.#held.set(rc, list);
      this.#notices.push({ noticeId: n.noticeId, residentCode: rc, sequence: n.sequence, kind: n.kind, body, status: "held", revocations: 0 });
      this.#heldCount++;
      return undefined;
    }
    this.#applyOne(n, false, body);
    this.#drain(n.newResidentCode ?? rc);
    return undefined;
  }

  /**
   * A resident-code change (住民票コード変更) may only move a person to a code nobody has: one the CA never
   * issued under, never received notices for, and the registry does not hold — unless the registry's record
   * under the new code is this very change, applied there first.
   */
  #codeInUse(n: ChangeNotice): { code: ErrorCode; message: string } | undefined {
    const to = n.newResidentCode;
    if (n.kind !== "resident-code-change" || !to) return undefined;
    // The registry closed the old record for this very change: the new code is the same person's, and a certificate
    // issued under it since (the registry took the change first, then the counter renewed the card) is theirs too.
    // Refused as "in use", the change never reached the CA side: the old code's certificates stayed valid and
    // unlinked, and a death under the new code later revoked only the new one.
    if (this.#ctx.successors?.get(n.residentCode) === to) return undefined;
    // The registry may have applied this very change first: then the new code's record is at this sequence
    // or later, and the old code is gone or closed at it (registry apply keeps the old code as a closed record).
    const registrySeq = this.#ctx.residents.get(to);
    const oldSeq = this.#ctx.residents.get(n.residentCode);
    const registryHasIt = registrySeq !== undefined && !(registrySeq >= n.sequence && (oldSeq === undefined || oldSeq >= n.sequence));
    // Notices merely held under the new code do not make it someone's: they are waiting for this change.
    if (registryHasIt || this.#ctx.everCertified.has(to) || (this.#certs.get(to)?.length ?? 0) > 0 || this.#last.has(to)) {
      return {
        code: "ERR_RESIDENT_CODE_IN_USE",
        message: `notice ${n.noticeId}: the new resident code is already in use by another record; a resident-code change must not merge two people (ask the registry to check the code)`,
      };
    }
    return undefined;
  }

  /**
   * Applies a held notice regardless of the gap before it (operator release). It is looked for under its
   * resident's current code: a resident-code change released before it in this plan re-filed it there (looked
   * for under the old code it was skipped as "applied meanwhile", and a release-all left a death held).
   */
  force(n: ChangeNotice): void {
    const rc = this.#current(n.residentCode);
    if (rc !== n.residentCode) n = { ...n, residentCode: rc };
    const list = this.#held.get(rc) ?? [];
    const i = list.findIndex((h) => h.noticeId === n.noticeId);
    if (i < 0) return; // applied meanwhile by the drain of an earlier release
    if (this.#codeInUse(n)) return; // stays held: releasing it would merge two people
    // Held by a version that did not refuse it at ingestion: applied, it would make every later notice stale.
    const last = this.#last.get(n.residentCode) ?? 0;
    if (n.sequence - last > MAX_SEQUENCE_JUMP) {
      this.refused.push({ noticeId: n.noticeId, sequence: n.sequence, last });
      return;
    }
    list.splice(i, 1);
    this.#applyOne(n, true);
    this.#drain(n.newResidentCode ?? n.residentCode);
  }

  #drain(rc: string): void {
    for (;;) {
      const list = this.#held.get(rc);
      const next = list?.[0];
      if (!next || next.sequence !== (this.#last.get(rc) ?? 0) + 1) return;
      if (this.#codeInUse(next)) return; // stays held, visible in 'jpki notices pending'
      list.shift();
      this.#applyOne(next, true);
      rc = next.newResidentCode ?? rc;
    }
  }

  #applyOne(n: ChangeNotice, wasHeld: boolean, body: NoticeBody = canonical(n)): void {
    const rc = n.residentCode;
    const certs = this.#certs.get(rc) ?? [];
    const decisions: Array<{ readonly serial: string; readonly reasonCode: number; readonly source: string }> = decideRevocations(n, certs);
    if (n.kind === "resident-code-change" && n.newResidentCode) {
      // Certificates already under the new code were issued to this person after the registry took the change (only
      // then does #codeInUse let it through): each supersedes the old code's of its type, as it would have at
      // issuance had the codes been one — else the person held two valid signature certificates.
      const there = this.#certs.get(n.newResidentCode) ?? [];
      for (const c of certs) if (there.some((t) => t.type === c.type)) decisions.push({ serial: c.serial, reasonCode: CRL_REASON.superseded, source: noticeSource(n.noticeId) });
    }
    if (decisions.length) {
      const revoked = new Set<string>();
      for (const d of decisions) {
        const cert = certs.find((c) => c.serial === d.serial)!;
        revoked.add(d.serial);
        this.#revocations.push({ serial: d.serial, reason: d.reasonCode, source: d.source, residentCode: rc, caId: cert.caId });
      }
      this.#certs.set(rc, certs.filter((c) => !revoked.has(c.serial)));
    } else if (!this.#certs.has(rc)) this.#certs.set(rc, certs);
    this.#last.set(rc, Math.max(this.#last.get(rc) ?? 0, n.sequence)); // a late death (offer) leaves it where it was
    if (n.kind === "resident-code-change" && n.newResidentCode) {
      // 住民票コード変更: the issuance records follow the resident to the new code, sequence and all.
      this.#relinks.push({ from: rc, to: n.newResidentCode });
      this.#movedTo.set(rc, n.newResidentCode);
      this.#certs.set(n.newResidentCode, [...(this.#certs.get(n.newResidentCode) ?? []), ...(this.#certs.get(rc) ?? [])]);
      this.#certs.delete(rc);
      this.#last.set(n.newResidentCode, Math.max(this.#last.get(n.newResidentCode) ?? 0, n.sequence));
      const held = this.#held.get(rc);
      if (held?.length) {
        const moved = held.map((h) => ({ ...h, residentCode: n.newResidentCode! }));
        this.#held.set(n.newResidentCode, [...(this.#held.get(n.newResidentCode) ?? []), ...moved].sort((a, b) => a.sequence - b.sequence));
        this.#held.delete(rc);
        this.refiled = true;
      }
    }
    this.#notices.push({ noticeId: n.noticeId, residentCode: rc, sequence: n.sequence, kind: n.kind, body, status: "applied", revocations: decisions.length });
    this.#applied++;
    if (wasHeld) this.#released++;
  }

  commit(): NoticeCommit {
    const dirty = [...new Set(this.#revocations.map((r) => r.caId))].sort();
    return {
      at: this.#at,
      notices: this.#notices,
      sequences: [...this.#last.entries()].filter(([k, v]) => this.#ctx.lastSequence.get(k) !== v).map(([residentCode, last]) => ({ residentCode, last })),
      revocations: this.#revocations.map(({ serial, reason, source, residentCode }) => ({ serial, reason, source, residentCode })),
      relinks: this.#relinks,
      dirtyCas: dirty,
    };
  }

  /** Adds what this plan did to the run's tally, once its commit is durable. */
  tallyCommitted(t: Tally, revoked: number): void {
    t.revocations += revoked;
    t.duplicates += this.#duplicates;
    t.alreadyApplied += this.#alreadyApplied;
    t.alreadyHeld += this.#alreadyHeld;
    t.applied += this.#applied;
    t.released += this.#released;
    t.held += this.#heldCount;
    for (const r of this.#revocations) {
      const name = reasonName(r.reason) ?? String(r.reason);
      t.byReason[name] = (t.byReason[name] ?? 0) + 1;
      t.byCa[r.caId] = (t.byCa[r.caId] ?? 0) + 1;
    }
  }
}

