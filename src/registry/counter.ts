/**
 * The municipal counter (市町村窓口) and the registry side of the link, shared/spec/JPKI.md "Registry event →
 * effect" and "The link between the two networks" steps 2–3.
 *
 * A counter procedure (異動等の届出) changes a resident record (住民票). In the same store transaction the
 * registry side (住基ネット) compares the record after the change with the issuance information it registered
 * for the resident (発行情報, store/types.ts RegisteredIssuance) and decides whether the CA side must hear
 * of it: a change notice (異動等情報の通知) in the existing notice format (registry/notice.ts, the contract) goes
 * out only when a registered certificate is affected — one the rules table (registry/notice-rules.ts) would
 * revoke, or, for a resident-code change (住民票コード変更), any, whose link must follow. A resident without
 * certificates, or a change that leaves every certified item as it is, produces no notice: the CA side learns
 * nothing about them.
 *
 * Numbering (ours): the record's notice sequence counts the notices sent for the resident, so the CA side sees
 * 1, 2, 3 … without gaps (what its ingestion expects); a change that sends none leaves it as it is. A notice
 * carries the items after the change (`after`) and the items as certified at issuance (`before`: the
 * signature certificate's when the resident holds one, since only it certifies the items; else the
 * authentication certificate's).
 *
 * Expiry (ours): registered issuance information is not deleted when its certificate expires; the comparison
 * ignores what expired before the change's moment (store/types.ts isRegistered), and the sweep deletes it a
 * day later (registry/issuance-sweep.ts: daily from the CRL schedule of serve and watch, or `jpki registry sweep`).
 *
 * Delivery (ours): the notices decided are written to the registry's outbox (store/types.ts OutboxNotice) in
 * the transaction that changes the records, and delivered after it commits (registry/counter-link.ts
 * deliverOutbox), so a process killed in between never drops a notice — nor the revocation it carries.
 *
 * Messages name fields and procedures, never the items' values: they are personal data.
 */
import { createHmac } from "node:crypto";
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import type { FourItems, Gender } from "../profile/types.js";
import type { OutboxNotice, RegisteredIssuance, ResidentRecord, Store } from "../store/types.js";
import { isRegistered } from "../store/types.js";
import { assertMunicipalityCode, prefectureOfMunicipality } from "./municipality.js";
import { isIsoDate, jstToday, noticeToInput, parseNotice, type ChangeNotice, type ChangeNoticeInput, type NoticeKind } from "./notice.js";
import { applyNoticeToResident } from "./notice-apply.js";
import { decideRevocations, type RevocationDecision } from "./notice-rules.js";
import { assertResidentCode } from "./resident-code.js";
import { assertRegistryFourItems, normaliseRegistryText } from "./resident.js";

// ---------------------------------------------------------------------------------------------------------
// Procedures

export type CounterKind = "move-in" | "move-out" | "relocate" | "rename" | "death" | "correct" | "remove" | "change-code";

/** Each procedure, the notice kind it is reported as, and the fields it takes. */
export const COUNTER_KINDS: Readonly<Record<CounterKind, { readonly notice: NoticeKind; readonly ja: string; readonly required: readonly string[]; readonly optional: readonly string[] }>> = Object.freeze({
  /** 転入: arriving from another municipality */
  "move-in": { notice: "move-in", ja: "転入届", required: ["municipality", "address"], optional: [] },
  /** 転出: leaving for another municipality */
  "move-out": { notice: "move-out", ja: "転出届", required: ["municipality", "address"], optional: [] },
  /** 転居: a new address within the municipality */
  relocate: { notice: "relocation", ja: "転居届", required: ["address"], optional: [] },
  /** 氏名変更, e.g. marriage */
  rename: { notice: "name-change", ja: "氏名変更", required: ["name"], optional: [] },
  /** 死亡届 */
  death: { notice: "death", ja: "死亡届", required: [], optional: [] },
  /** 職権修正: the registry corrects any of the four items */
  correct: { notice: "correction", ja: "職権修正", required: [], optional: ["name", "address", "birthDate", "gender"] },
  /** 住民票消除, e.g. emigration */
  remove: { notice: "removal", ja: "住民票消除", required: [], optional: [] },
  /** 住民票コード変更 */
  "change-code": { notice: "resident-code-change", ja: "住民票コード変更", required: ["newCode"], optional: [] },
});

export const COUNTER_KIND_NAMES: readonly CounterKind[] = Object.freeze(Object.keys(COUNTER_KINDS) as CounterKind[]);

/** One procedure at the counter. */
export interface CounterProcedure {
  readonly kind: CounterKind;
  readonly residentCode: string;
  /** 異動日 YYYY-MM-DD, not after today (JST); default today */
  readonly effectiveDate?: string;
  /** move-in: the municipality arrived in; move-out: the one left for (6-digit code) */
  readonly municipality?: string;
  readonly address?: string;
  readonly name?: string;
  readonly birthDate?: string;
  readonly gender?: Gender;
  /** change-code: the new resident code */
  readonly newCode?: string;
}

const FIELDS = new Set(["kind", "residentCode", "effectiveDate", "municipality", "address", "name", "birthDate", "gender", "newCode"]);
const ITEM_FIELDS = ["name", "address", "birthDate", "gender"] as const;

function invalid(msg: string, details: Record<string, unknown> = {}): JpkiError {
  return new JpkiError("ERR_COUNTER_PROCEDURE_INVALID", msg, { details });
}

/**
 * Checks a procedure's shape (a batch line, or what a caller built): a known kind, a valid resident code, the
 * fields its kind needs and no others. The items themselves are checked against the record when applied.
 */
export function parseProcedure(obj: unknown): CounterProcedure {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw invalid(`a counter procedure is an object with "kind" and "residentCode"`);
  const rec = obj as Record<string, unknown>;
  const kind = rec["kind"];
  if (typeof kind !== "string" || !Object.hasOwn(COUNTER_KINDS, kind)) {
    throw invalid(`field "kind" must be one of ${COUNTER_KIND_NAMES.join(", ")}`, { field: "kind" });
  }
  const info = COUNTER_KINDS[kind as CounterKind];
  const allowed = new Set(["kind", "residentCode", "effectiveDate", ...info.required, ...info.optional]);
  for (const k of Object.keys(rec)) {
    if (rec[k] === undefined) continue;
    if (!FIELDS.has(k)) throw invalid(`unknown field${/^[A-Za-z]{1,40}$/.test(k) ? ` "${k}"` : ""}: accepted fields are ${[...FIELDS].join(", ")}`, { field: k });
    if (!allowed.has(k)) throw invalid(`field "${k}" does not belong in a ${kind} procedure (it takes ${[...info.required, ...info.optional].join(", ") || "no fields besides the resident"})`, { field: k });
    if (typeof rec[k] !== "string") throw invalid(`field "${k}" must be a string`, { field: k });
  }
  for (const k of info.required) if (rec[k] === undefined || rec[k] === "") throw invalid(`field "${k}" is required for a ${kind} procedure`, { field: k });
  if (kind === "correct" && !ITEM_FIELDS.some((f) => rec[f] !== undefined)) throw invalid(`a correct procedure names at least one of ${ITEM_FIELDS.join(", ")}`, { field: "name" });
  assertResidentCode(rec["residentCode"]);
  if (rec["newCode"] !== undefined) assertResidentCode(rec["newCode"], undefined, "newCode");
  if (rec["municipality"] !== undefined) assertMunicipalityCode(rec["municipality"]);
  if (rec["effectiveDate"] !== undefined && !isIsoDate(rec["effectiveDate"] as string)) throw invalid(`field "effectiveDate" is not a real date YYYY-MM-DD`, { field: "effectiveDate" });
  if (rec["gender"] !== undefined && !["male", "female", "unknown"].includes(rec["gender"] as string)) throw invalid(`field "gender" must be "male", "female" or "unknown"`, { field: "gender" });
  const out: Record<string, unknown> = {};
  for (const k of allowed) if (rec[k] !== undefined) out[k] = rec[k];
  return Object.freeze(out) as unknown as CounterProcedure;
}

// ---------------------------------------------------------------------------------------------------------
// The registry side's comparison

/** What the registry side concluded from comparing a change with the registered issuance information. */
export interface RegistryComparison {
  /** the registered certificates (valid at the change) the change affects, as the CA side's rules will see them */
  readonly affected: readonly RevocationDecision[];
  /** a resident-code change with registered certificates: their link follows the resident */
  readonly relink: boolean;
  /** the items as certified, for the notice's `before`: the signature certificate's, else the authentication one's */
  readonly certified: FourItems | undefined;
}

/**
 * Compares a change (as the notice that would report it) with the resident's registered issuance information,
 * ignoring what expired before `at`. A notice is due when `affected` is not empty or `relink` is true.
 */
export function compareWithRegistered(notice: ChangeNotice, registered: readonly RegisteredIssuance[], at: Date): RegistryComparison {
  const valid = registered.filter((r) => isRegistered(r, at));
  const affected = decideRevocations(notice, valid.map((r) => ({ serial: r.serial, type: r.type, fourItems: r.fourItems })));
  const sig = valid.find((r) => r.type === "signature");
  return { affected, relink: notice.kind === "resident-code-change" && valid.length > 0, certified: (sig ?? valid[0])?.fourItems };
}

/** Whether the comparison sends the CA side a notice. */
export function noticeDue(c: RegistryComparison): boolean {
  return c.affected.length > 0 || c.relink;
}

/**
 * A notice id of the counter (ours): `ctr:v2:` and the first 128 bits, hex, of HMAC-SHA256 under the workspace's
 * key (Store.counterNoticeIdKey) over the resident code and the notice's sequence.
 *
 * Why not the code itself: the id travels where resident codes must not — the audit log (store/audit-ops.ts:
 * registry.change lists the ids it enqueued; a revocation's source, `notice:<id>`, is in cert.revoke's and
 * notice.batch's details) and the certificates' revocation records. Nor a plain hash of it: there are 10^10
 * codes, hashed through in minutes. Under a 256-bit key nobody without the store can tell whose notice it is,
 * and whoever has the store reads the notice's code beside it anyway.
 *
 * Why a keyed function and not a random id: the id stays what it was, a function of (code, sequence), unique
 * since a resident's (code, sequence) is never reused (128 bits: no collision in any number of notices a
 * workspace will see). So a notice decided again is the same notice under the same id — applyToRegistry's
 * `decide` stays pure (PostgreSQL runs it again once it has loaded more records), and a registry side put back
 * by a restore that decides the same notice again finds the CA side holding it as a duplicate, or refusing a
 * different one under its id (ERR_NOTICE_CONFLICT), as before. The key moves with the store (store copy's dump
 * header; backup copies meta), so the ids do too.
 *
 * The old ids, `ctr:<resident code>:<sequence>`, stay valid wherever they were issued: a notice id is an opaque
 * string to the CA side, which matches what it holds by equality, so an outbox row enqueued before this scheme
 * is delivered under its old id and is a duplicate the second time as before. The audit log's older entries
 * keep them: the log is hash-chained and is not rewritten.
 */
export function counterNoticeId(key: Uint8Array, residentCode: string, sequence: number): string {
  const mac = createHmac("sha256", key).update(`jpki counter notice id\n${residentCode}\n${sequence}`, "utf8").digest("hex");
  return `ctr:v2:${mac.slice(0, 32)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Deciding one procedure against the record

type Stored = ResidentRecord & { readonly noticeSequence: number };

export interface ProcedureOutcome {
  readonly kind: CounterKind;
  readonly residentCode: string;
  /** the notice sent to the CA side, or undefined: the resident holds no registered certificate the change affects */
  readonly notice: ChangeNotice | undefined;
  /** what the registry side expects the CA side to revoke (the CA compares again before it does) */
  readonly affected: readonly RevocationDecision[];
}

interface Decided {
  readonly put: Stored;
  readonly retire?: Stored;
  readonly outcome: ProcedureOutcome;
}

/**
 * The four items after the procedure, what the clerk gave in the registry's normal form (normaliseRegistryText, as
 * `registry import` and a notice's items), checked as the registry checks them: a name pasted with a trailing U+3000
 * or typed in NFD is the name on record, neither refused nor taken for a change that revokes.
 */
function itemsAfter(p: CounterProcedure, r: ResidentRecord, municipality: string, now: Date): FourItems {
  const given = (v: string | undefined) => (v === undefined ? undefined : normaliseRegistryText(v));
  const items: FourItems = Object.freeze({
    name: given(p.name) ?? r.fourItems.name,
    address: given(p.address) ?? r.fourItems.address,
    birthDate: given(p.birthDate) ?? r.fourItems.birthDate,
    gender: p.gender ?? r.fourItems.gender,
  });
  const pref = checkStoredItems(() => assertRegistryFourItems(items, { now }), p, r.residentCode);
  if (pref.code !== prefectureOfMunicipality(municipality).code) {
    // Naming either prefecture would say where the resident lives: point at the fields instead.
    throw new JpkiError("ERR_RESIDENT_INVALID", `field "address" is in another prefecture than the municipality ${p.kind === "move-in" || p.kind === "move-out" ? `given (--municipality)` : "of the record"}`, {
      details: { field: "address", problem: "prefecture-mismatch" },
    });
  }
  return items;
}

/** The counter flag that gives each item (as `jpki counter correct` takes it). */
const ITEM_FLAG: Readonly<Record<keyof FourItems, string>> = { name: "--name", address: "--address", birthDate: "--birth-date", gender: "--gender" };

/**
 * The check of the items after a procedure, where an item the procedure did not give is the record's as stored: a
 * record stored before a rule it breaks (a bidi control or a zero-width character, refused since c2fcd57) failed
 * every procedure with the refusal of typed text, and nothing said the stored record was why or how to mend it.
 * Found by a helper. Said so now, naming the field and the problem (never the value), and the correction
 * (職権修正) that mends it; `details.stored` marks it.
 */
function checkStoredItems<T>(check: () => T, p: CounterProcedure, residentCode: string): T {
  try {
    return check();
  } catch (e) {
    const field = isJpkiError(e, "ERR_RESIDENT_INVALID") ? e.details?.["field"] : undefined;
    if (typeof field !== "string" || !(field in ITEM_FLAG) || p[field as keyof FourItems] !== undefined) throw e;
    const flag = ITEM_FLAG[field as keyof FourItems];
    throw new JpkiError(
      "ERR_RESIDENT_INVALID",
      `the record of resident ${residentCode} as stored holds what is no longer accepted (it was stored before the rule): ${(e as JpkiError).message}. Correct the record first — 'jpki counter correct --resident ${residentCode} ${flag} -' (職権修正) with the ${field} as it should read — then run this procedure again`,
      { details: { ...(e as JpkiError).details, stored: true } },
    );
  }
}

function decideProcedure(
  p: CounterProcedure,
  now: Date,
  idKey: Uint8Array,
  get: (code: string) => Stored | undefined,
  registered: (code: string) => readonly RegisteredIssuance[],
): Decided {
  const r = get(p.residentCode);
  if (!r) throw new JpkiError("ERR_RESIDENT_UNKNOWN", `no resident ${p.residentCode} in the registry`);
  if (r.status !== "active") {
    // A code closed by a resident-code change names the person's code now: the clerk retries with that one.
    const moved = r.successorCode ? `: the resident's code was changed to ${r.successorCode} (住民票コード変更); use that code` : ": no procedure changes it any more";
    throw new JpkiError("ERR_RESIDENT_NOT_ELIGIBLE", `the record of resident ${p.residentCode} is ${r.status}${moved}`, { details: { status: r.status, ...(r.successorCode ? { successorCode: r.successorCode } : {}) } });
  }
  const date = p.effectiveDate ?? jstToday(now);
  if (date > jstToday(now)) throw invalid(`field "effectiveDate" is after today (JST): a counter records a change once it happened`, { field: "effectiveDate" });
  const kind = COUNTER_KINDS[p.kind].notice;
  let municipalityCode = r.municipalityCode;
  let newMunicipalityCode: string | undefined;
  if (p.kind === "move-in" || p.kind === "move-out") {
    if (p.municipality === r.municipalityCode) {
      throw invalid(`a ${p.kind} names the municipality the resident lives in: a move within it is a relocation (jpki counter relocate)`, { field: "municipality" });
    }
    newMunicipalityCode = p.municipality!;
    // 転入 is recorded by the municipality arrived in, 転出 by the one left.
    if (p.kind === "move-in") municipalityCode = newMunicipalityCode;
  }
  if (p.kind === "change-code") {
    if (p.newCode === p.residentCode) throw invalid(`field "newCode" equals the resident's code: a resident-code change needs a different code`, { field: "newCode" });
    if (get(p.newCode!)) {
      throw new JpkiError("ERR_RESIDENT_CODE_IN_USE", `the new resident code is one another record holds; two people are never merged (ask the registry to check the code)`);
    }
  }
  const carriesItems = kind !== "death" && kind !== "removal" && kind !== "resident-code-change";
  const after = carriesItems ? itemsAfter(p, r, newMunicipalityCode ?? r.municipalityCode, now) : undefined;
  const sequence = r.noticeSequence + 1;
  const input: ChangeNoticeInput = {
    noticeId: counterNoticeId(idKey, p.residentCode, sequence),
    residentCode: p.residentCode,
    kind,
    effectiveDate: date,
    sequence,
    municipalityCode,
    ...(newMunicipalityCode !== undefined ? { newMunicipalityCode } : {}),
    ...(p.newCode !== undefined ? { newResidentCode: p.newCode } : {}),
    ...(after ? { after } : {}),
  };
  const draft = parseNotice(input, { now });
  const cmp = compareWithRegistered(draft, registered(p.residentCode), now);
  // A resident-code change goes to the CA side, certificates or not, once the CA side has had a notice of the
  // resident (a sequence above 0): the new code continues the old one's sequence here, and the CA side learns
  // that only from this notice. Kept back (every certificate revoked or expired), the new code's next notice
  // reached a CA side that knew no sequence for it and was held for ever waiting for the ones before, and the
  // certificate issued under the new code meanwhile was never revoked by it.
  const due = noticeDue(cmp) || (kind === "resident-code-change" && r.noticeSequence > 0);
  // The notice as sent carries the items as certified (parsed again: what goes out is what the contract accepts).
  const notice = due ? parseNotice({ ...noticeToInput(draft), ...(cmp.certified ? { before: cmp.certified } : {}) }, { now }) : undefined;
  const next = applyNoticeToResident(r, draft);
  const seq = due ? sequence : r.noticeSequence;
  const put: Stored = { ...next, noticeSequence: seq };
  // The old code of a resident-code change stays as a closed record naming the new code (as registry apply keeps it).
  const retire = next.residentCode !== r.residentCode ? { ...r, status: "removed" as const, noticeSequence: seq, successorCode: next.residentCode } : undefined;
  return { put, ...(retire ? { retire } : {}), outcome: { kind: p.kind, residentCode: p.residentCode, notice, affected: due ? cmp.affected : [] } };
}

// ---------------------------------------------------------------------------------------------------------
// Running procedures

export interface CounterRunResult {
  /** the procedures done, in input order */
  readonly done: readonly (ProcedureOutcome & { readonly index: number })[];
  /** the notices for the CA side, in the order decided (per resident in sequence order) */
  readonly notices: readonly ChangeNotice[];
  /** what went wrong with each procedure that failed; `details` as the error had them (field, problem: never a value) */
  readonly errors: ReadonlyArray<{ readonly index: number; readonly code: ErrorCode; readonly message: string; readonly details?: Readonly<Record<string, unknown>> }>;
}

/**
 * Runs procedures in order, `batchSize` per store transaction (Store.applyToRegistry: the path registry apply
 * uses, so two writers never decide from the same record). A procedure that fails is reported with its index
 * and changes nothing; the others go on. Later procedures of a batch see the earlier ones' records. The notices
 * are enqueued in the registry's outbox with the records; deliver them with registry/counter-link.ts
 * deliverOutbox (the result's `notices` are what this run decided, for reporting).
 */
export async function runProcedures(store: Store, procedures: Iterable<CounterProcedure> | AsyncIterable<CounterProcedure>, opts: { now: Date; batchSize?: number }): Promise<CounterRunResult> {
  const size = opts.batchSize ?? 500;
  const done: Array<ProcedureOutcome & { index: number }> = [];
  const notices: ChangeNotice[] = [];
  const errors: Array<{ index: number; code: ErrorCode; message: string; details?: Readonly<Record<string, unknown>> }> = [];
  let batch: Array<{ index: number; p: CounterProcedure }> = [];
  let idKey: Buffer | undefined;
  const flush = async () => {
    if (!batch.length) return;
    const b = batch;
    batch = [];
    const key = (idKey ??= await store.counterNoticeIdKey());
    const behind = await registryBehind(store, b.map((x) => x.p.residentCode));
    // Pure over what it reads: PostgreSQL may run it again once more records are loaded.
    const r = await store.applyToRegistry((read, registered) => {
      const local = new Map<string, Stored | undefined>();
      const localReg = new Map<string, readonly RegisteredIssuance[]>();
      const get = (code: string) => (local.has(code) ? local.get(code) : read(code));
      const reg = (code: string) => localReg.get(code) ?? registered(code);
      const put = new Map<string, Stored>();
      const relink: Array<{ from: string; to: string }> = [];
      const outcomes: Array<ProcedureOutcome & { index: number }> = [];
      const errs: Array<{ index: number; e: JpkiError }> = [];
      for (const { index, p } of b) {
        try {
          // Only a record read from the store can be behind: one this batch changed was checked before.
          if (behind.has(p.residentCode) && !local.has(p.residentCode)) throw behindError(p.residentCode, behind.get(p.residentCode)!);
          const d = decideProcedure(p, opts.now, key, get, reg);
          if (d.retire) {
            relink.push({ from: d.retire.residentCode, to: d.put.residentCode });
            localReg.set(d.put.residentCode, reg(d.retire.residentCode));
            localReg.set(d.retire.residentCode, []);
          }
          for (const rec of d.retire ? [d.retire, d.put] : [d.put]) {
            local.set(rec.residentCode, rec);
            put.set(rec.residentCode, rec);
          }
          outcomes.push({ ...d.outcome, index });
        } catch (e) {
          if (!isJpkiError(e)) throw e;
          errs.push({ index, e });
        }
      }
      // The notices decided go into the registry's outbox in this very transaction (store/types.ts
      // OutboxNotice): the record changes if and only if its notice is kept for delivery, which happens after
      // the commit (registry/counter-link.ts deliverOutbox) and may be retried by a later run.
      const enqueue = outcomes.flatMap((o) => (o.notice ? [outboxEntry(o.notice, opts.now)] : []));
      return { put: [...put.values()], remove: [], relink, enqueue, result: { outcomes, errs } };
    });
    for (const o of r.outcomes) {
      done.push(o);
      if (o.notice) notices.push(o.notice);
    }
    for (const { index, e } of r.errs) errors.push({ index, code: e.code, message: `procedure ${index + 1}: ${e.message}`, ...(e.details ? { details: e.details } : {}) });
  };
  let index = 0;
  for await (const p of procedures) {
    batch.push({ index: index++, p });
    if (batch.length >= size) await flush();
  }
  await flush();
  errors.sort((a, b) => a.index - b.index);
  return { done, notices, errors };
}

/**
 * The residents whose record the CA side has moved past: it applied change notices (from another feed) the
 * registry has not. A procedure decided on such a record would be numbered at or below what the CA already holds
 * (its notice rejected as stale, the revocation it carries lost), or, sending none, be overwritten by the older
 * notice when `registry apply` takes it (its sequence is still ahead of the record's): either way the counter's
 * change is lost without a word. Read before the batch's transaction (the same check issuance makes,
 * ERR_REGISTRY_BEHIND); the registry catching up in between only makes the refusal one too many.
 */
async function registryBehind(store: Store, codes: readonly string[]): Promise<Map<string, { ca: number; registry: number }>> {
  const unique = [...new Set(codes)];
  const rows = await Promise.all(unique.map((c) => store.getResidentForIssuance(c)));
  const out = new Map<string, { ca: number; registry: number }>();
  rows.forEach((r, i) => {
    if (r && r.caSequence > r.registrySequence) out.set(unique[i]!, { ca: r.caSequence, registry: r.registrySequence });
  });
  return out;
}

function behindError(residentCode: string, s: { ca: number; registry: number }): JpkiError {
  return new JpkiError(
    "ERR_REGISTRY_BEHIND",
    `resident ${residentCode}: the CA side has applied change notices the registry record does not reflect yet (CA side at notice sequence ${s.ca}, registry at ${s.registry}); nothing was changed: apply the same notices to the registry ('jpki registry apply'), then do the procedure again`,
    { details: { caSequence: s.ca, registrySequence: s.registry } },
  );
}

/** A decided notice as an outbox row: its canonical JSON (noticeToInput), what delivery sends as it is. */
export function outboxEntry(n: ChangeNotice, now: Date): OutboxNotice {
  return { noticeId: n.noticeId, residentCode: n.residentCode, sequence: n.sequence, body: JSON.stringify(noticeToInput(n)), createdAt: now };
}

/** One procedure; throws its error (JpkiError) when it fails, having changed nothing. */
export async function counterProcedure(store: Store, p: CounterProcedure, opts: { now: Date }): Promise<ProcedureOutcome> {
  const proc = parseProcedure(p);
  const r = await runProcedures(store, [proc], opts);
  const err = r.errors[0];
  if (err) throw new JpkiError(err.code, err.message.replace(/^procedure 1: /, ""), err.details ? { details: { ...err.details } } : undefined);
  return r.done[0]!;
}

type Opts = { readonly now: Date; readonly effectiveDate?: string };
const dated = (o: Opts) => (o.effectiveDate !== undefined ? { effectiveDate: o.effectiveDate } : {});

/** 転居: a new address within the municipality. */
export function relocate(store: Store, residentCode: string, address: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "relocate", residentCode, address, ...dated(opts) }, opts);
}
/** 転入: arriving in `municipality` from another one. */
export function moveIn(store: Store, residentCode: string, municipality: string, address: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "move-in", residentCode, municipality, address, ...dated(opts) }, opts);
}
/** 転出: leaving for `municipality`. */
export function moveOut(store: Store, residentCode: string, municipality: string, address: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "move-out", residentCode, municipality, address, ...dated(opts) }, opts);
}
/** 氏名変更. */
export function rename(store: Store, residentCode: string, name: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "rename", residentCode, name, ...dated(opts) }, opts);
}
/** 死亡届. */
export function recordDeath(store: Store, residentCode: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "death", residentCode, ...dated(opts) }, opts);
}
/** 職権修正 of any of the four items. */
export function correct(store: Store, residentCode: string, items: Partial<FourItems>, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "correct", residentCode, ...items, ...dated(opts) }, opts);
}
/** 住民票消除. */
export function removeRecord(store: Store, residentCode: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "remove", residentCode, ...dated(opts) }, opts);
}
/** 住民票コード変更. */
export function changeResidentCode(store: Store, residentCode: string, newCode: string, opts: Opts): Promise<ProcedureOutcome> {
  return counterProcedure(store, { kind: "change-code", residentCode, newCode, ...dated(opts) }, opts);
}
