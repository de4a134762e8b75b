/**
 * Change notice (異動等情報の通知), shared/spec/JPKI.md "The link between the two networks" step 3 and
 * "Registry event → effect": what the registry side (住基ネット) tells the CA side (指定認証機関) when a
 * certificate holder's record changes. The notice format is the contract between the two sides.
 *
 * Canonical form: one JSON object per line (JSON Lines), described by `schema/change-notice.schema.json`:
 *
 *   {"noticeId":"N…-0000001","residentCode":"…","kind":"relocation","effectiveDate":"2024-04-01",
 *    "sequence":1,"municipalityCode":"131016","after":{"name":"…","address":"…","birthDate":"…","gender":"female"}}
 *
 * CSV is accepted too: the same top-level columns, the items flattened (`afterName` or `afterFamilyName` +
 * `afterGivenName`, `afterAddress`, `afterBirthDate`, `afterGender`, and `before…` alike), an empty cell
 * meaning "absent", the kind in English or Japanese (転居 …), the gender as a word, a digit (1/2/3) or
 * 男/女/不明. `parseNotice` turns either into the same `ChangeNotice`.
 *
 * Sequence numbers (ours): per resident, from 1, without gaps. A resident-code change (住民票コード変更) is the
 * last notice under the old code; the resident's next notice comes under the new code and continues the
 * sequence (code change n, then n + 1 under the new code).
 *
 * Messages name the field and the line, never a value: the values are personal data.
 */
import { JpkiError, type ErrorCode } from "../errors.js";
import { GENDER_LABEL_JA } from "../profile/four-items.js";
import type { FourItems, Gender } from "../profile/types.js";
import { assertMunicipalityCode, prefectureOfMunicipality } from "./municipality.js";
import { residentCodeCheckDigit } from "./resident-code.js";
import { assertRegistryFourItems, normaliseRegistryText } from "./resident.js";
import { jstDay } from "../pki/jst.js";

// ---------------------------------------------------------------------------------------------------------
// Kinds

export type NoticeKind =
  | "relocation" /** 転居: a new address within the same municipality (also address re-numbering) */
  | "move-out" /** 転出: leaving for another municipality */
  | "move-in" /** 転入: arriving from another municipality */
  | "death" /** 死亡 */
  | "name-change" /** 氏名変更, e.g. marriage */
  | "correction" /** 職権修正: the registry corrects any of the four items */
  | "removal" /** 住民票消除, e.g. emigration */
  | "resident-code-change"; /** 住民票コード変更 */

/** Whether a notice of a kind must, may or must not carry a field. */
export type Presence = "required" | "optional" | "forbidden";

export interface NoticeKindInfo {
  /** the registry's term */
  readonly ja: string;
  /** other Japanese spellings accepted on input */
  readonly aliases: readonly string[];
  /** the four items after the change */
  readonly after: Presence;
  /** the municipality after the change */
  readonly newMunicipalityCode: Presence;
  readonly newResidentCode: Presence;
}

/** The kinds and what each carries: the one place the parser and the schema test read this from. */
export const NOTICE_KINDS: Readonly<Record<NoticeKind, NoticeKindInfo>> = Object.freeze({
  relocation: { ja: "転居", aliases: [], after: "required", newMunicipalityCode: "optional", newResidentCode: "forbidden" },
  "move-out": { ja: "転出", aliases: [], after: "required", newMunicipalityCode: "required", newResidentCode: "forbidden" },
  "move-in": { ja: "転入", aliases: [], after: "required", newMunicipalityCode: "required", newResidentCode: "forbidden" },
  death: { ja: "死亡", aliases: [], after: "optional", newMunicipalityCode: "forbidden", newResidentCode: "forbidden" },
  "name-change": { ja: "氏名変更", aliases: ["氏名の変更"], after: "required", newMunicipalityCode: "forbidden", newResidentCode: "forbidden" },
  correction: { ja: "職権修正", aliases: ["職権記載修正"], after: "required", newMunicipalityCode: "forbidden", newResidentCode: "forbidden" },
  removal: { ja: "住民票消除", aliases: ["消除"], after: "optional", newMunicipalityCode: "forbidden", newResidentCode: "forbidden" },
  "resident-code-change": { ja: "住民票コード変更", aliases: [], after: "optional", newMunicipalityCode: "forbidden", newResidentCode: "required" },
} satisfies Record<NoticeKind, NoticeKindInfo>);

export const NOTICE_KIND_NAMES: readonly NoticeKind[] = Object.freeze(Object.keys(NOTICE_KINDS) as NoticeKind[]);

const KIND_BY_INPUT: ReadonlyMap<string, NoticeKind> = new Map<string, NoticeKind>(
  NOTICE_KIND_NAMES.flatMap((k) => [k, NOTICE_KINDS[k].ja, ...NOTICE_KINDS[k].aliases].map((s) => [s, k] as [string, NoticeKind])),
);

// ---------------------------------------------------------------------------------------------------------
// The model

/** A change notice after validation. Immutable. */
/**
 * How far past a resident's last applied sequence a notice may be and still be taken: by the registry side
 * (`registry apply`, applied across the gap) and by the CA side (ingestion holds it until the gap fills or an
 * operator releases it). A person has a handful of notices a year; a notice further ahead is a broken feed, and
 * applied it poisoned the record: every later notice (a move, a death) sat at or below its sequence and was
 * skipped as already applied. Both sides refuse it with ERR_NOTICE_SEQUENCE_JUMP.
 */
export const MAX_SEQUENCE_JUMP = 10_000;

export interface ChangeNotice {
  /** unique across the feed, 1–64 of [A-Za-z0-9._:-]; idempotency key */
  readonly noticeId: string;
  /** 住民票コード of the resident the notice is about (check digit valid) */
  readonly residentCode: string;
  readonly kind: NoticeKind;
  /** 異動日, ISO YYYY-MM-DD, a real date */
  readonly effectiveDate: string;
  /** per-resident sequence number, integer ≥ 1; continues across a resident-code change */
  readonly sequence: number;
  /** the issuing municipality (6-digit local government code) */
  readonly municipalityCode: string;
  /**
   * the four items after the change (true form, in the registry's normal form: trimmed, NFC but the compatibility
   * ideographs); required for relocation, move-out, move-in, name-change, correction
   */
  readonly after?: FourItems;
  /** the four items before the change, or as certified, when the registry sends them (in the same normal form) */
  readonly before?: FourItems;
  /** municipality after the change: required for move-out and move-in; relocation defaults to municipalityCode */
  readonly newMunicipalityCode?: string;
  /** required for resident-code-change */
  readonly newResidentCode?: string;
}

/** The canonical JSON Lines record (schema/change-notice.schema.json), as written by generators. */
export interface ChangeNoticeInput {
  noticeId: string;
  residentCode: string;
  kind: NoticeKind;
  effectiveDate: string;
  sequence: number;
  municipalityCode: string;
  newMunicipalityCode?: string;
  newResidentCode?: string;
  after?: FourItems;
  before?: FourItems;
}

/** Top-level fields of the canonical record, in the order they are written. */
export const NOTICE_FIELDS = Object.freeze([
  "noticeId", "residentCode", "kind", "effectiveDate", "sequence", "municipalityCode",
  "newMunicipalityCode", "newResidentCode", "after", "before",
] as const);

/** Fields every notice carries. */
export const NOTICE_REQUIRED_FIELDS = Object.freeze([
  "noticeId", "residentCode", "kind", "effectiveDate", "sequence", "municipalityCode",
] as const);

/** Fields of the nested `after` / `before` objects. */
export const NOTICE_ITEM_FIELDS = Object.freeze(["name", "address", "birthDate", "gender"] as const);

const ITEM_PREFIXES = ["after", "before"] as const;
type ItemPrefix = (typeof ITEM_PREFIXES)[number];
/** Flat column suffixes: `afterName`, `afterFamilyName`, … */
const FLAT_SUFFIXES = ["Name", "FamilyName", "GivenName", "Address", "BirthDate", "Gender"] as const;
/**
 * The flat column names of each prefix and the labels of its nested fields, made once: built per notice (two
 * prefixes, six names and four labels each) they were a fifth of parseNotice's time on the reader thread.
 */
const FLAT_KEYS: Readonly<Record<ItemPrefix, readonly string[]>> = {
  after: FLAT_SUFFIXES.map((s) => `after${s}`),
  before: FLAT_SUFFIXES.map((s) => `before${s}`),
};
const NESTED_LABELS: Readonly<Record<ItemPrefix, Readonly<Record<keyof FourItems, string>>>> = {
  after: { name: "after.name", address: "after.address", birthDate: "after.birthDate", gender: "after.gender" },
  before: { name: "before.name", address: "before.address", birthDate: "before.birthDate", gender: "before.gender" },
};

/** Every field name the parser accepts at the top level: the canonical ones plus the flat CSV columns. */
export const NOTICE_INPUT_FIELDS: readonly string[] = Object.freeze([
  ...NOTICE_FIELDS,
  ...ITEM_PREFIXES.flatMap((p) => FLAT_SUFFIXES.map((s) => `${p}${s}`)),
]);
const KNOWN = new Set(NOTICE_INPUT_FIELDS);
const KNOWN_NESTED = new Set<string>(NOTICE_ITEM_FIELDS);

/** CSV columns in the order `noticeCsvRow` writes them (name split in family/given, as municipal exports do). */
export const NOTICE_CSV_COLUMNS: readonly string[] = Object.freeze([
  ...NOTICE_REQUIRED_FIELDS, "newMunicipalityCode", "newResidentCode",
  ...ITEM_PREFIXES.flatMap((p) => ["FamilyName", "GivenName", "Address", "BirthDate", "Gender"].map((s) => `${p}${s}`)),
]);

// ---------------------------------------------------------------------------------------------------------
// Parsing

const NOTICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const ELEVEN_DIGITS = /^\d{11}$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** What a field name or a kind looks like when it is safe to quote back (not a misplaced value). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_.-]{0,39}$/;
const FULLWIDTH_SPACE = "\u3000";
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

const GENDER_BY_INPUT: ReadonlyMap<string, Gender> = new Map<string, Gender>([
  ["male", "male"], ["female", "female"], ["unknown", "unknown"],
  ["1", "male"], ["2", "female"], ["3", "unknown"],
  [GENDER_LABEL_JA.male, "male"], [GENDER_LABEL_JA.female, "female"], [GENDER_LABEL_JA.unknown, "unknown"],
]);

export interface ParseNoticeOptions {
  /** 1-based line of the record in its file, for messages and `details.line` */
  readonly line?: number;
  /** bounds the birth date in `after`/`before` (not after today in Japan) */
  readonly now: Date;
}

class Ctx {
  constructor(readonly line: number | undefined) {}

  get at(): string {
    return this.line !== undefined ? `line ${this.line}: ` : "";
  }

  fail(code: ErrorCode, field: string | undefined, problem: string, msg: string, cause?: unknown): never {
    const subject = field !== undefined ? `field "${field}" ` : "";
    throw new JpkiError(code, `${this.at}${subject}${msg}`, {
      ...(cause !== undefined ? { cause } : {}),
      details: { ...(field !== undefined ? { field } : {}), problem, ...(this.line !== undefined ? { line: this.line } : {}) },
    });
  }

  malformed(field: string | undefined, problem: string, msg: string, cause?: unknown): never {
    return this.fail("ERR_NOTICE_MALFORMED", field, problem, msg, cause);
  }
}

/** CSV cannot say "absent" other than with an empty cell. */
function isAbsent(v: unknown): v is undefined | null | "" {
  return v === undefined || v === null || v === "";
}

function describeType(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function shownName(k: string): string {
  return IDENTIFIER.test(k) ? JSON.stringify(k) : "(a name that is not an identifier)";
}

function str(rec: Record<string, unknown>, field: string, c: Ctx, required: boolean): string | undefined {
  const v = rec[field];
  if (isAbsent(v)) {
    if (required) c.malformed(field, "missing", "is missing");
    return undefined;
  }
  if (typeof v !== "string") c.malformed(field, "type", `must be a string, not ${describeType(v)}`);
  return v;
}

function residentCodeField(rec: Record<string, unknown>, field: string, c: Ctx, required: boolean): string | undefined {
  const v = rec[field];
  if (isAbsent(v)) {
    if (required) c.fail("ERR_RESIDENT_CODE_INVALID", field, "missing", "is missing: give the 11-digit resident code (住民票コード)");
    return undefined;
  }
  if (typeof v !== "string" || !ELEVEN_DIGITS.test(v)) {
    c.fail("ERR_RESIDENT_CODE_INVALID", field, "format", "is not 11 ASCII digits: give the 11-digit resident code (住民票コード) as a string");
  }
  if (residentCodeCheckDigit(v.slice(0, 10)) !== v[10]) {
    c.fail("ERR_RESIDENT_CODE_INVALID", field, "check-digit", "fails its check digit (modulus 11): look for a mistyped or swapped digit");
  }
  return v;
}

function municipalityField(rec: Record<string, unknown>, field: string, c: Ctx, required: boolean): string | undefined {
  const v = rec[field];
  if (isAbsent(v)) {
    if (required) c.fail("ERR_MUNICIPALITY_INVALID", field, "missing", "is missing: give the 6-digit local government code");
    return undefined;
  }
  try {
    assertMunicipalityCode(v);
  } catch (e) {
    const err = e as JpkiError;
    // Same checks and wording as the registry's, under this field's name.
    const tail = err.message.replace(/^field "[^"]*" /, "");
    c.fail("ERR_MUNICIPALITY_INVALID", field, String(err.details?.["problem"] ?? "format"), tail, e);
  }
  return v as string;
}

function parseKind(v: unknown, c: Ctx): NoticeKind {
  if (isAbsent(v)) c.malformed("kind", "missing", "is missing");
  const kind = typeof v === "string" ? KIND_BY_INPUT.get(v.trim()) : undefined;
  if (!kind) {
    const shown = typeof v === "string" && IDENTIFIER.test(v) ? ` ${JSON.stringify(v)}` : "";
    c.fail("ERR_NOTICE_KIND_UNKNOWN", "kind", "unknown-value",
      `names an unknown kind${shown}: use one of ${NOTICE_KIND_NAMES.join(", ")} (or ${NOTICE_KIND_NAMES.map((k) => NOTICE_KINDS[k].ja).join(", ")})`);
  }
  return kind;
}

/** A real Gregorian date YYYY-MM-DD. */
export function isIsoDate(s: string): boolean {
  const m = ISO_DATE.exec(s);
  if (!m) return false;
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
  const t = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 2023-02-30 over to March: a round trip that changes the fields means no such day.
  return y >= 1 && mo >= 1 && mo <= 12 && t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/** The last effective date found real: a feed's notices share a few dates, and the check cost ≈ 0.3 µs a notice. */
let lastRealDate = "1970-01-01"; // a real date: any start but one an absent or bad value could equal

function parseDate(v: unknown, c: Ctx): string {
  if (v === lastRealDate) return v;
  if (isAbsent(v)) c.malformed("effectiveDate", "missing", "is missing");
  if (typeof v !== "string" || !ISO_DATE.test(v)) c.malformed("effectiveDate", "format", "is not an ISO date YYYY-MM-DD");
  if (!isIsoDate(v)) c.malformed("effectiveDate", "not-a-date", "is not a real calendar date");
  return (lastRealDate = v);
}

function parseSequence(v: unknown, c: Ctx): number {
  if (isAbsent(v)) c.malformed("sequence", "missing", "is missing");
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && /^\d{1,16}$/.test(v.trim())) n = Number(v.trim()); // a CSV cell
  else return c.malformed("sequence", "type", "must be an integer ≥ 1");
  if (!Number.isSafeInteger(n)) c.malformed("sequence", "not-an-integer", "must be an integer ≥ 1");
  if (n < 1) c.malformed("sequence", "out-of-range", "must be ≥ 1: sequence numbers start at 1 for each resident");
  return n;
}

function parseGender(v: unknown, field: string, c: Ctx): Gender {
  // JSON producers sometimes write the certificate digit as a number; it is unambiguous, so accept it.
  const key = typeof v === "number" && Number.isInteger(v) ? String(v) : v;
  const g = typeof key === "string" ? GENDER_BY_INPUT.get(key) : undefined;
  if (!g) c.malformed(field, "unknown-value", 'must be "male", "female" or "unknown" (or 1, 2, 3)');
  return g;
}

/** A name part from a CSV column: non-empty, no space of any kind, no control. */
function namePart(v: unknown, field: string, c: Ctx): string {
  if (isAbsent(v)) c.malformed(field, "missing", "is missing");
  if (typeof v !== "string") c.malformed(field, "type", `must be a string, not ${describeType(v)}`);
  if (CONTROL.test(v)) c.malformed(field, "control-character", "contains a control character");
  if (/\s/u.test(v)) c.malformed(field, "whitespace", "contains a space: the family and the given name go in their own columns");
  return v;
}

interface RawItems {
  readonly items: Record<keyof FourItems, unknown>;
  /** the field label to report for each item, as the input names it */
  readonly label: Record<keyof FourItems, string>;
}

/**
 * An item's value in the registry's normal form (`normaliseRegistryText`: trimmed, NFC but the compatibility
 * ideographs), the form `jpki registry import` stores and the issuance records certify. Applied before the items
 * are checked, compared (notice-rules.ts) or stored: an `after` name in NFD (が as か + U+3099, as macOS exporters
 * write it) or with a trailing U+3000 is the certified name, not a name change that revokes the certificate.
 */
function normalForm(v: unknown): unknown {
  return typeof v === "string" ? normaliseRegistryText(v) : v;
}

/**
 * Collects `after`/`before` from the nested object or the flat columns, each value in its normal form
 * (`normalForm`); undefined when neither is there.
 */
function collectItems(rec: Record<string, unknown>, p: ItemPrefix, c: Ctx): RawItems | undefined {
  const nested = rec[p];
  let flat = false;
  for (const k of FLAT_KEYS[p]) if (!isAbsent(rec[k])) flat = true;
  if (!isAbsent(nested)) {
    if (flat) c.malformed(p, "ambiguous", `is given both as an object and as flat columns (${FLAT_KEYS[p].filter((k) => !isAbsent(rec[k])).join(", ")}): give one form only`);
    if (typeof nested !== "object" || nested === null || Array.isArray(nested)) {
      c.malformed(p, "type", `must be an object with fields ${NOTICE_ITEM_FIELDS.join(", ")}, not ${describeType(nested)}`);
    }
    const o = nested as Record<string, unknown>;
    for (const unknown of Object.keys(o)) {
      if (KNOWN_NESTED.has(unknown)) continue;
      c.malformed(IDENTIFIER.test(unknown) ? `${p}.${unknown}` : p, "unknown-field",
        `has unknown field ${shownName(unknown)}: accepted fields are ${NOTICE_ITEM_FIELDS.join(", ")}`);
    }
    return {
      items: { name: normalForm(o["name"]), address: normalForm(o["address"]), birthDate: normalForm(o["birthDate"]), gender: normalForm(o["gender"]) },
      label: NESTED_LABELS[p],
    };
  }
  if (!flat) return undefined;
  const nameKey = `${p}Name`, famKey = `${p}FamilyName`, givKey = `${p}GivenName`;
  const hasParts = !isAbsent(rec[famKey]) || !isAbsent(rec[givKey]);
  let name: unknown = normalForm(rec[nameKey]);
  let nameLabel = nameKey;
  if (hasParts) {
    if (!isAbsent(rec[nameKey])) c.malformed(nameKey, "ambiguous", `is given together with "${famKey}"/"${givKey}": give one form only`);
    // each cell on its own, as the registry's import does: a padded cell is not a space inside the name
    name = `${namePart(normalForm(rec[famKey]), famKey, c)}${FULLWIDTH_SPACE}${namePart(normalForm(rec[givKey]), givKey, c)}`;
    nameLabel = famKey;
  }
  return {
    items: { name, address: normalForm(rec[`${p}Address`]), birthDate: normalForm(rec[`${p}BirthDate`]), gender: normalForm(rec[`${p}Gender`]) },
    label: { name: nameLabel, address: `${p}Address`, birthDate: `${p}BirthDate`, gender: `${p}Gender` },
  };
}

/** Checks collected items with the registry's own four-items check; errors name the input's field. */
function checkItems(raw: RawItems, c: Ctx, now: Date, certified = false): { items: FourItems; prefecture: string } {
  const { items, label } = raw;
  for (const f of NOTICE_ITEM_FIELDS) {
    if (isAbsent(items[f])) c.malformed(label[f], "missing", "is missing");
  }
  for (const f of ["name", "address", "birthDate"] as const) {
    if (typeof items[f] !== "string") c.malformed(label[f], "type", `must be a string, not ${describeType(items[f])}`);
  }
  const fourItems: FourItems = Object.freeze({
    name: items.name as string,
    address: items.address as string,
    birthDate: items.birthDate as string,
    gender: parseGender(items.gender, label.gender, c),
  });
  try {
    const pref = assertRegistryFourItems(fourItems, { now, certified });
    return { items: fourItems, prefecture: pref.code };
  } catch (e) {
    if (!(e instanceof JpkiError)) throw e;
    const field = String(e.details?.["field"] ?? "name") as keyof FourItems;
    const tail = e.message.replace(/^field "[^"]*" /, "");
    return c.malformed(label[field] ?? `${field}`, String(e.details?.["problem"] ?? "invalid"), tail, e);
  }
}

function presence(kind: NoticeKind, field: string, want: Presence, given: boolean, c: Ctx): void {
  if (want === "required" && !given) c.malformed(field, "missing", `is required for a ${kind} notice`);
  if (want === "forbidden" && given) c.malformed(field, "unexpected", `does not belong in a ${kind} notice`);
}

/**
 * Validates one change notice, from a JSON Lines object or a CSV row, and returns an immutable
 * `ChangeNotice`. Unknown fields are refused so typos do not pass silently. The four items of `after` and
 * `before` come out in the registry's normal form (`normaliseRegistryText`), whatever form the file gave them in.
 *
 * Throws JpkiError with `details.field`, `details.problem` and `details.line` (when `opts.line` is given):
 * ERR_NOTICE_KIND_UNKNOWN (kind), ERR_RESIDENT_CODE_INVALID (residentCode, newResidentCode),
 * ERR_MUNICIPALITY_INVALID (municipalityCode, newMunicipalityCode), ERR_NOTICE_MALFORMED (anything else,
 * including impossible dates, a missing `after`, and four items the registry would refuse).
 */
export function parseNotice(obj: unknown, opts: ParseNoticeOptions): ChangeNotice {
  const c = new Ctx(opts.line);
  if (Number.isNaN(opts.now?.getTime?.())) throw new JpkiError("ERR_INTERNAL", "parseNotice: opts.now is not a valid Date");
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    c.malformed(undefined, "not-an-object", `a change notice must be an object with fields ${NOTICE_REQUIRED_FIELDS.join(", ")}, not ${describeType(obj)}`);
  }
  const rec = obj as Record<string, unknown>;

  const keys = Object.keys(rec);
  const unknown = keys.filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    // Field names are the file's structure, not personal data, unless a CSV lacks its header row. Then no name is
    // one we know, and none is quoted back: identifier-shaped values are personal data too (a name in Latin
    // letters, "female").
    if (unknown.length === keys.length) {
      c.malformed(undefined, "unknown-field", `none of the notice's field names is one we know (is the CSV header row missing?): accepted fields are ${NOTICE_FIELDS.join(", ")} (CSV: after…/before… columns)`);
    }
    const shown = unknown.slice(0, 5).map(shownName);
    const more = unknown.length > 5 ? ` and ${unknown.length - 5} more` : "";
    c.malformed(IDENTIFIER.test(unknown[0]!) ? unknown[0] : undefined, "unknown-field",
      `unknown field${unknown.length > 1 ? "s" : ""} ${shown.join(", ")}${more}: accepted fields are ${NOTICE_FIELDS.join(", ")} (CSV: after…/before… columns)`);
  }

  const noticeId = str(rec, "noticeId", c, true)!;
  if (!NOTICE_ID.test(noticeId)) c.malformed("noticeId", "format", "must be 1–64 characters of A–Z, a–z, 0–9 and . _ : -");
  const residentCode = residentCodeField(rec, "residentCode", c, true)!;
  const kind = parseKind(rec["kind"], c);
  const effectiveDate = parseDate(rec["effectiveDate"], c);
  const sequence = parseSequence(rec["sequence"], c);
  const municipalityCode = municipalityField(rec, "municipalityCode", c, true)!;

  const info = NOTICE_KINDS[kind];
  presence(kind, "newMunicipalityCode", info.newMunicipalityCode, !isAbsent(rec["newMunicipalityCode"]), c);
  presence(kind, "newResidentCode", info.newResidentCode, !isAbsent(rec["newResidentCode"]), c);
  let newMunicipalityCode = municipalityField(rec, "newMunicipalityCode", c, false);
  const newResidentCode = residentCodeField(rec, "newResidentCode", c, false);
  if (newResidentCode !== undefined && newResidentCode === residentCode) {
    c.malformed("newResidentCode", "unchanged", 'equals "residentCode": a resident-code change needs a different code');
  }
  if (kind === "move-out" && newMunicipalityCode === municipalityCode) {
    c.malformed("newMunicipalityCode", "same-municipality", 'equals "municipalityCode": a move within the municipality is a relocation (転居)');
  }
  if (kind === "relocation" && newMunicipalityCode === undefined) newMunicipalityCode = municipalityCode;

  const rawAfter = collectItems(rec, "after", c);
  const rawBefore = collectItems(rec, "before", c);
  if (info.after === "required" && !rawAfter) {
    c.malformed("after", "missing", `is required for a ${kind} notice (the four items after the change)`);
  }
  const after = rawAfter ? checkItems(rawAfter, c, opts.now) : undefined;
  const before = rawBefore ? checkItems(rawBefore, c, opts.now, true) : undefined;
  if (after) {
    // The address after the change lies in the prefecture of the municipality after the change.
    const muni = newMunicipalityCode ?? municipalityCode;
    if (after.prefecture !== prefectureOfMunicipality(muni).code) {
      // Naming either prefecture would say where the resident lives: point at the fields instead.
      c.malformed(rawAfter!.label.address, "prefecture-mismatch",
        `is in another prefecture than "${newMunicipalityCode !== undefined ? "newMunicipalityCode" : "municipalityCode"}" (its first two digits)`);
    }
  }

  // In the order of NOTICE_FIELDS, as the canonical record writes them: its JSON (ca/notices.ts canonical) is then
  // the line itself when the line already is canonical, and the reader takes the line as it is.
  return Object.freeze({
    noticeId, residentCode, kind, effectiveDate, sequence, municipalityCode,
    ...(newMunicipalityCode !== undefined ? { newMunicipalityCode } : {}),
    ...(newResidentCode !== undefined ? { newResidentCode } : {}),
    ...(after ? { after: after.items } : {}),
    ...(before ? { before: before.items } : {}),
  });
}

/**
 * The notice with its four items in the registry's normal form, as `parseNotice` now gives them. For a notice read
 * back from the store that an earlier version kept with its items as given: a held relocation in NFD, released,
 * would revoke needlessly, and the same notice sent again would look like another one under its id.
 */
export function noticeInNormalForm(n: ChangeNotice): ChangeNotice {
  const items = (i: FourItems): FourItems => Object.freeze({
    name: normaliseRegistryText(i.name), address: normaliseRegistryText(i.address), birthDate: normaliseRegistryText(i.birthDate), gender: i.gender,
  });
  // Rebuilt in the order of NOTICE_FIELDS, as parseNotice gives them: its canonical JSON is then what parseNotice's
  // would be, also for a body an earlier version stored in another order (after and before first).
  const o = noticeToInput(n);
  return Object.freeze({ ...o, ...(o.after ? { after: items(o.after) } : {}), ...(o.before ? { before: items(o.before) } : {}) });
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/** The canonical JSON Lines record of a notice (field order of NOTICE_FIELDS, absent fields left out). */
export function noticeToInput(n: ChangeNotice): ChangeNoticeInput {
  const items = (i: FourItems): FourItems => ({ name: i.name, address: i.address, birthDate: i.birthDate, gender: i.gender });
  return {
    noticeId: n.noticeId, residentCode: n.residentCode, kind: n.kind, effectiveDate: n.effectiveDate,
    sequence: n.sequence, municipalityCode: n.municipalityCode,
    ...(n.newMunicipalityCode !== undefined ? { newMunicipalityCode: n.newMunicipalityCode } : {}),
    ...(n.newResidentCode !== undefined ? { newResidentCode: n.newResidentCode } : {}),
    ...(n.after ? { after: items(n.after) } : {}),
    ...(n.before ? { before: items(n.before) } : {}),
  };
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const GENDER_DIGIT: Readonly<Record<Gender, string>> = Object.freeze({ male: "1", female: "2", unknown: "3" });

/**
 * One CSV row (no line end) in the columns of NOTICE_CSV_COLUMNS, as a municipal system might export it:
 * name split into family and given name, gender as the digit, and the kind in Japanese when `japaneseKinds`.
 */
export function noticeCsvRow(n: ChangeNoticeInput, opts: { japaneseKinds?: boolean } = {}): string {
  const items = (i: FourItems | undefined): string[] => {
    if (!i) return ["", "", "", "", ""];
    const [family = "", given = ""] = i.name.split(FULLWIDTH_SPACE);
    return [family, given, i.address, i.birthDate, GENDER_DIGIT[i.gender]];
  };
  return [
    n.noticeId, n.residentCode, opts.japaneseKinds ? NOTICE_KINDS[n.kind].ja : n.kind, n.effectiveDate, String(n.sequence),
    n.municipalityCode, n.newMunicipalityCode ?? "", n.newResidentCode ?? "", ...items(n.after), ...items(n.before),
  ].map(csvField).join(",");
}

/** Today's date in Japan (YYYY-MM-DD): the registry dates changes by the JST calendar. */
export function jstToday(now: Date): string {
  return jstDay(now);
}

/**
 * A notice effective after today (JST) is rejected, on the CA side and in the registry alike, rather than
 * held until due: the registry network sends a change once the municipality has recorded it, so a
 * future date is a fault of the feed, and a rejected notice can simply be sent again when it takes effect
 * (its id was never stored). Holding it would revoke a certificate for a change that has not happened.
 */
export function notYetEffective(n: Pick<ChangeNotice, "noticeId" | "effectiveDate">, now: Date): JpkiError | undefined {
  const today = jstToday(now);
  if (n.effectiveDate <= today) return undefined;
  return new JpkiError("ERR_NOTICE_NOT_YET_EFFECTIVE", `notice ${n.noticeId} takes effect on ${n.effectiveDate}, after today (${today} JST): send it again when it does`);
}
