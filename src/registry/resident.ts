/**
 * The resident record (住民票) as the registry network (住基ネット) keeps it, shared/spec/JPKI.md "Resident
 * code", "The four basic items" and "The link between the two networks".
 *
 * The registry holds the true form of the four basic items (基本4情報): characters outside JIS X 0208 stay
 * as they are here and are mapped to substitutes only when a certificate is made. Every field is checked
 * on the way in, so the rest of the system can trust a `Resident`.
 *
 * Messages name the field and the record's location, never the value: the values are personal data.
 */
import { JpkiError, type ErrorCode } from "../errors.js";
import { PREFECTURES, type Prefecture } from "../ca/prefectures.js";
import type { FourItems, Gender } from "../profile/types.js";
import { assertResidentCode } from "./resident-code.js";
import { assertMunicipalityCode, prefectureOfMunicipality } from "./municipality.js";
import { jstDay } from "../pki/jst.js";

/** State of the record: 住民 (active), 死亡 (deceased), 消除 (removed, e.g. emigration). */
export type ResidentStatus = "active" | "deceased" | "removed";

export const RESIDENT_STATUSES: readonly ResidentStatus[] = Object.freeze(["active", "deceased", "removed"]);

/** One resident as the registry knows them. */
export interface Resident {
  /** 住民票コード, 11 digits with check digit */
  readonly residentCode: string;
  /** 全国地方公共団体コード of the municipality holding the record, 6 digits */
  readonly municipalityCode: string;
  /** 基本4情報, true form */
  readonly fourItems: FourItems;
  readonly status: ResidentStatus;
}

/**
 * A resident record as it arrives in an import file (JSON Lines object or CSV row). Either `name` or
 * `familyName` + `givenName`; gender as a word or as the certificate's digit ("1" male, "2" female,
 * "3" unknown); status defaults to active.
 */
export interface ResidentInput {
  residentCode: string;
  municipalityCode: string;
  name?: string;
  familyName?: string;
  givenName?: string;
  address: string;
  birthDate: string;
  gender: string;
  status?: string;
}

/** Field names accepted in an import record; anything else is rejected so typos do not pass silently. */
export const RESIDENT_INPUT_FIELDS: readonly string[] = Object.freeze([
  "residentCode", "municipalityCode", "name", "familyName", "givenName", "address", "birthDate", "gender", "status",
]);
const KNOWN = new Set(RESIDENT_INPUT_FIELDS);
/** What a field name looks like; anything else is not echoed back (see the unknown-field check). */
/** A field name that may be quoted back in an error: shaped like a column name, not like a value. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,39}$/;

const FULLWIDTH_SPACE = "\u3000";
/** Address limit of the certificate profile (…5.5.5: ≤ 200 characters), counted in code points. */
export const ADDRESS_MAX_CHARS = 200;
/** The earliest year the birth-date era digit can express (1 = 明治). */
const EARLIEST_BIRTH_YEAR = 1868;

const GENDER_BY_INPUT: ReadonlyMap<string, Gender> = new Map<string, Gender>([
  ["male", "male"], ["female", "female"], ["unknown", "unknown"],
  ["1", "male"], ["2", "female"], ["3", "unknown"],
]);

// Controls (incl. CR/LF and tab) have no place in a name or an address and would break line-based formats.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;
// Any whitespace other than the single U+3000 separator (ASCII space, NBSP, other Unicode spaces).
const OTHER_SPACE = /\s/u;
// U+FFFD is what a broken byte becomes where no fatal decoder stands guard (a counter command's argv, which
// Node decodes lossily, or a JSON "\ufffd"): never a character of a real name or address, so never certified.
const REPLACEMENT = "\ufffd";
// Invisible formatting: the bidirectional controls (U+061C, U+200E–200F, U+202A–202E, U+2066–2069), which reorder
// whatever is printed after them (a record shown by 'registry show', a disclosure, a log line), and the zero-width
// space, joiners and word joiner (U+200B–200D, U+2060). No name or address holds one, and a certificate could only
// carry each as 〓 flagged as a character outside JIS X 0208. The variation selectors stay: an IVS names a glyph.
const FORMAT = /[\p{Bidi_Control}\u200b-\u200d\u2060]/u;

/** A lone surrogate (a library caller's string; no reader lets one through) or U+FFFD: not the resident's text. */
function checkText(value: string, field: string, w: Where): void {
  // What an earlier version certified stays what it certified: refusing it in a notice's `before` would leave
  // that resident's certificates unrevocable by any notice.
  if (w.certified) return;
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    fail("ERR_RESIDENT_INVALID", field, "lone-surrogate", "is not well-formed Unicode (a lone surrogate)", w);
  }
  const f = FORMAT.exec(value);
  if (f) {
    const cp = `U+${f[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
    fail("ERR_RESIDENT_INVALID", field, "format-character", `contains ${cp}, an invisible formatting character (a bidirectional control or a zero-width one): never part of a name or an address`, w);
  }
  if (value.includes(REPLACEMENT)) {
    fail("ERR_RESIDENT_INVALID", field, "replacement-character", "contains U+FFFD, the mark of a byte that was not UTF-8 (check the input's encoding)", w);
  }
}

interface Where {
  readonly where?: string | undefined;
  /** items as a certificate already certified them (a notice's `before`): a fact to compare with, not new text */
  readonly certified?: boolean;
}

function fail(code: ErrorCode, field: string, problem: string, msg: string, w: Where): never {
  const at = w.where ? `${w.where}: ` : "";
  throw new JpkiError(code, `${at}field "${field}" ${msg}`, {
    details: { field, problem, ...(w.where ? { where: w.where } : {}) },
  });
}

// The CJK compatibility ideographs (U+F900–FAFF, U+2F800–2FA1F): NFC maps each to its unified form (U+FA10 →
// 塚 U+585A), a different character the registry must not silently substitute (four-items.ts SUBSTITUTES).
const COMPATIBILITY_IDEOGRAPHS = /([\uF900-\uFAFF\u{2F800}-\u{2FA1F}]+)/u;

/**
 * The registry's normal form of a text field as a file gives it (Unicode NFC, no whitespace at either end), which
 * `parseResidentRecord` applies and `jpki registry import` compares and stores. The same resident exported by
 * another system is the same text: a name in NFD (が as か + U+3099, as macOS and some exporters write it) is
 * composed, since JIS X 0208 holds が and not the combining mark, which a certificate could only print as 〓; and
 * padding around a field (fixed-width exports, a spreadsheet cell's trailing space, a U+3000 after the name) is not
 * part of a name or an address. The compatibility ideographs stay as they are: the registry keeps the true form.
 */
export function normaliseRegistryText(s: string): string {
  const t = s.trim();
  const n = t.normalize("NFC");
  if (n === t || !COMPATIBILITY_IDEOGRAPHS.test(t)) return n;
  // split with a capturing group: odd pieces are runs of compatibility ideographs, kept; the rest composed
  return t.split(COMPATIBILITY_IDEOGRAPHS).map((piece, k) => (k % 2 ? piece : piece.normalize("NFC"))).join("");
}

/** Values that count as "not given": CSV has no way to say absent other than an empty cell. */
function isAbsent(v: unknown): v is undefined | null | "" {
  return v === undefined || v === null || v === "";
}

function requireString(obj: Record<string, unknown>, field: string, w: Where, code: ErrorCode = "ERR_RESIDENT_INVALID"): string {
  const v = obj[field];
  if (isAbsent(v)) fail(code, field, "missing", "is missing", w);
  if (typeof v !== "string") fail(code, field, "type", `must be a string, not ${Array.isArray(v) ? "an array" : typeof v}`, w);
  return v;
}

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function checkNamePart(part: string, field: string, w: Where): void {
  if (CONTROL.test(part)) fail("ERR_RESIDENT_INVALID", field, "control-character", "contains a control character", w);
  checkText(part, field, w);
  if (OTHER_SPACE.test(part)) {
    fail("ERR_RESIDENT_INVALID", field, "whitespace", "contains a space: family and given name are separated by exactly one full-width space (U+3000) and contain no other", w);
  }
}

/** 氏名: family name, one U+3000, given name; both parts non-empty, no other spaces or controls. */
function checkName(name: string, field: string, w: Where): void {
  const parts = name.split(FULLWIDTH_SPACE);
  if (parts.length !== 2) {
    fail("ERR_RESIDENT_INVALID", field, "separator", `must contain exactly one full-width space (U+3000) between family and given name; found ${parts.length - 1}`, w);
  }
  if (parts[0] === "" || parts[1] === "") {
    fail("ERR_RESIDENT_INVALID", field, "empty-part", "has an empty family or given name around the full-width space", w);
  }
  checkNamePart(parts[0]!, field, w);
  checkNamePart(parts[1]!, field, w);
}

/** Prefectures by kanji name, and the lengths those names have (3 or 4 UTF-16 units: 東京都, 神奈川県). */
const PREFECTURE_BY_KANJI: ReadonlyMap<string, Prefecture> = new Map(PREFECTURES.map((p) => [p.kanji, p]));
const PREFECTURE_NAME_LENGTHS = [...new Set(PREFECTURES.map((p) => p.kanji.length))];

/**
 * The prefecture an address starts with, if any (prefecture names are prefix-free, so at most one). Looked up
 * by the address's first few characters rather than by trying 47 names: every notice checks one or two addresses.
 */
function prefectureOfAddress(address: string): Prefecture | undefined {
  for (const n of PREFECTURE_NAME_LENGTHS) {
    const p = PREFECTURE_BY_KANJI.get(address.slice(0, n));
    if (p) return p;
  }
  return undefined;
}

/** 住所: non-empty, ≤ 200 characters, no controls, from the prefecture onward. Returns that prefecture. */
function checkAddress(address: string, w: Where): Prefecture {
  if (address.trim() === "") fail("ERR_RESIDENT_INVALID", "address", "missing", "is empty", w);
  if (CONTROL.test(address)) fail("ERR_RESIDENT_INVALID", "address", "control-character", "contains a control character (a line break?)", w);
  checkText(address, "address", w);
  const len = codePointLength(address);
  if (len > ADDRESS_MAX_CHARS) {
    fail("ERR_RESIDENT_INVALID", "address", "too-long", `has ${len} characters; the certificate allows at most ${ADDRESS_MAX_CHARS}`, w);
  }
  const pref = prefectureOfAddress(address);
  if (!pref) {
    fail("ERR_RESIDENT_INVALID", "address", "no-prefecture", "must start with the prefecture's name in kanji (e.g. 東京都, 北海道, 大阪府)", w);
  }
  return pref;
}

/**
 * The last birth date found a real date from 1868 on: a notice's `before` and `after` nearly always give the same one,
 * and the check cost ≈ 0.4 µs each. Starts at a date that passes, so no other input can skip the check.
 */
let lastRealBirthDate = "2000-01-01";

/** 生年月日: a real Gregorian date YYYY-MM-DD, from 1868 on, not after today in Japan. */
function checkBirthDate(s: string, now: Date, w: Where): void {
  if (s !== lastRealBirthDate) checkBirthCalendar(s, w);
  if (Number.isNaN(now.getTime())) throw new JpkiError("ERR_INTERNAL", "parseResidentRecord: opts.now is an invalid Date");
  // "Today" for a birth date is the Japanese calendar day.
  const todayJst = jstDay(now);
  // ISO dates of equal width compare correctly as strings.
  if (s > todayJst) fail("ERR_RESIDENT_INVALID", "birthDate", "future", "is in the future", w);
}

function checkBirthCalendar(s: string, w: Where): void {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) fail("ERR_RESIDENT_INVALID", "birthDate", "format", "is not an ISO date YYYY-MM-DD", w);
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
  const t = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 2023-02-30 over to March: a round trip that changes the fields means no such day.
  if (mo < 1 || mo > 12 || t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) {
    fail("ERR_RESIDENT_INVALID", "birthDate", "not-a-date", "is not a real calendar date", w);
  }
  if (y < EARLIEST_BIRTH_YEAR) {
    fail("ERR_RESIDENT_INVALID", "birthDate", "too-early", `is before ${EARLIEST_BIRTH_YEAR}, which the certificate's era digit cannot express`, w);
  }
  lastRealBirthDate = s;
}

function parseGender(v: unknown, w: Where): Gender {
  if (isAbsent(v)) fail("ERR_RESIDENT_INVALID", "gender", "missing", "is missing", w);
  // JSON producers sometimes write the certificate digit as a number; it is unambiguous, so accept it.
  const key = typeof v === "number" && Number.isInteger(v) ? String(v) : v;
  const g = typeof key === "string" ? GENDER_BY_INPUT.get(key) : undefined;
  if (!g) fail("ERR_RESIDENT_INVALID", "gender", "unknown-value", 'must be "male", "female" or "unknown" (or 1, 2, 3)', w);
  return g;
}

function parseStatus(v: unknown, w: Where): ResidentStatus {
  if (isAbsent(v)) return "active";
  if (typeof v !== "string" || !(RESIDENT_STATUSES as readonly string[]).includes(v)) {
    fail("ERR_RESIDENT_INVALID", "status", "unknown-value", `must be one of ${RESIDENT_STATUSES.join(", ")}`, w);
  }
  return v as ResidentStatus;
}

function parseName(obj: Record<string, unknown>, w: Where): string {
  const hasName = !isAbsent(obj["name"]);
  const hasParts = !isAbsent(obj["familyName"]) || !isAbsent(obj["givenName"]);
  if (hasName && hasParts) {
    fail("ERR_RESIDENT_INVALID", "name", "ambiguous", 'is given together with "familyName"/"givenName": give one form only', w);
  }
  if (hasName) {
    const name = requireString(obj, "name", w);
    checkName(name, "name", w);
    return name;
  }
  if (!hasParts) fail("ERR_RESIDENT_INVALID", "name", "missing", 'is missing (give "name", or "familyName" and "givenName")', w);
  const family = requireString(obj, "familyName", w);
  const given = requireString(obj, "givenName", w);
  checkNamePart(family, "familyName", w);
  checkNamePart(given, "givenName", w);
  return `${family}${FULLWIDTH_SPACE}${given}`;
}

/**
 * Checks four items as the registry holds them (true form): name with exactly one U+3000 between
 * non-empty parts, address from a prefecture and ≤ 200 characters, a real birth date not after `now`
 * (as a Japanese calendar day), gender in the enum. Throws ERR_RESIDENT_INVALID naming the field.
 * Returns the prefecture the address starts with. `certified`: the items as a certificate already certified
 * them (a notice's `before`), which an earlier version may have let U+FFFD into: let through, or no notice
 * could ever revoke that certificate.
 */
export function assertRegistryFourItems(items: FourItems, opts: { now: Date; where?: string; certified?: boolean }): Prefecture {
  const w: Where = { where: opts.where, ...(opts.certified ? { certified: true } : {}) };
  for (const f of ["name", "address", "birthDate", "gender"] as const) {
    if (typeof items[f] !== "string" || items[f] === "") fail("ERR_RESIDENT_INVALID", f, "missing", "is missing", w);
  }
  checkName(items.name, "name", w);
  const pref = checkAddress(items.address, w);
  checkBirthDate(items.birthDate, opts.now, w);
  if (items.gender !== "male" && items.gender !== "female" && items.gender !== "unknown") {
    fail("ERR_RESIDENT_INVALID", "gender", "unknown-value", 'must be "male", "female" or "unknown"', w);
  }
  return pref;
}

/**
 * Validates one import record and returns an immutable `Resident`, its text in the normal form
 * (`normaliseRegistryText`: trimmed, NFC but for the compatibility ideographs).
 *
 * Throws JpkiError: ERR_RESIDENT_CODE_INVALID (residentCode), ERR_MUNICIPALITY_INVALID (municipalityCode),
 * ERR_RESIDENT_INVALID (anything else, including unknown fields and an address in another prefecture than
 * the municipality). `opts.where` (e.g. "line 12") prefixes the message; `opts.now` bounds the birth date.
 */
export function parseResidentRecord(obj: unknown, opts: { now: Date; where?: string }): Resident {
  const w: Where = { where: opts.where };
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    const at = w.where ? `${w.where}: ` : "";
    throw new JpkiError("ERR_RESIDENT_INVALID", `${at}a resident record must be an object with fields ${RESIDENT_INPUT_FIELDS.join(", ")}`, {
      details: { problem: "not-an-object", ...(w.where ? { where: w.where } : {}) },
    });
  }
  // Every string field in its normal form before it is checked, so padding or NFD is neither refused as invalid nor
  // taken for a change of the record (codes, dates and words are only trimmed: NFC leaves ASCII alone).
  const rec = Object.fromEntries(
    Object.entries(obj as Record<string, unknown>).map(([k, v]) => [k, typeof v === "string" ? normaliseRegistryText(v) : v]),
  );

  const keys = Object.keys(rec);
  const unknown = keys.filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    const at = w.where ? `${w.where}: ` : "";
    // Field names are the file's structure, not personal data, unless a CSV lacks its header row and the
    // first resident became the header. Then no name is one we know, and none is quoted back: identifier-shaped
    // values are personal data too (a name in Latin letters, "female").
    if (unknown.length === keys.length) {
      throw new JpkiError("ERR_RESIDENT_INVALID", `${at}none of the record's field names is one we know (is the CSV header row missing?): accepted fields are ${RESIDENT_INPUT_FIELDS.join(", ")}`, {
        details: { problem: "unknown-field", ...(w.where ? { where: w.where } : {}) },
      });
    }
    const shown = unknown.slice(0, 5).map((k) => (IDENTIFIER.test(k) ? JSON.stringify(k) : "(a name that is not an identifier)"));
    const more = unknown.length > 5 ? ` and ${unknown.length - 5} more` : "";
    throw new JpkiError("ERR_RESIDENT_INVALID", `${at}unknown field${unknown.length > 1 ? "s" : ""} ${shown.join(", ")}${more}: accepted fields are ${RESIDENT_INPUT_FIELDS.join(", ")}`, {
      details: { field: IDENTIFIER.test(unknown[0]!) ? unknown[0] : undefined, problem: "unknown-field", ...(w.where ? { where: w.where } : {}) },
    });
  }

  const residentCode = requireString(rec, "residentCode", w, "ERR_RESIDENT_CODE_INVALID");
  assertResidentCode(residentCode, w.where);
  const municipalityCode = requireString(rec, "municipalityCode", w, "ERR_MUNICIPALITY_INVALID");
  assertMunicipalityCode(municipalityCode, w.where);

  const name = parseName(rec, w);
  const address = requireString(rec, "address", w);
  const birthDate = requireString(rec, "birthDate", w);
  const gender = parseGender(rec["gender"], w);
  const status = parseStatus(rec["status"], w);

  const fourItems: FourItems = Object.freeze({ name, address, birthDate, gender });
  const addressPref = assertRegistryFourItems(fourItems, { now: opts.now, where: w.where });
  const muniPref = prefectureOfMunicipality(municipalityCode);
  if (addressPref.code !== muniPref.code) {
    // Naming either prefecture would say where the resident lives: point at the two fields instead.
    fail("ERR_RESIDENT_INVALID", "address", "prefecture-mismatch",
      'is in another prefecture than "municipalityCode" (its first two digits): correct the address or the municipality code', w);
  }

  return Object.freeze({ residentCode, municipalityCode, fourItems, status });
}
