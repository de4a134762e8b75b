/**
 * The four basic items (基本4情報) as the signature certificate carries them (shared/spec/JPKI.md
 * "Signature certificate", "The four basic items"): name 氏名, gender 性別, birth date 生年月日 and address 住所,
 * plus one substitute-character flag (代替文字フラグ) per character of the name and of the address.
 *
 * The registry keeps the true form; the certificate carries text restricted to JIS X 0208, with every
 * character outside it replaced by a standard form from SUBSTITUTES (ours) or by 〓 (geta, U+3013), and
 * flagged `1`. Everything here is pure; errors name the field, never its value (STYLE.md §10).
 */
import { JpkiError } from "../errors.js";
import type { FourItems, Gender } from "./types.js";

/** The six otherName values, exactly as the certificate carries them. */
export interface EncodedFourItems {
  /** 氏名, family and given name separated by U+3000, JIS X 0208 only */
  readonly name: string;
  /** one `0`/`1` per character of `name` */
  readonly nameSubstituteFlags: string;
  /** `1` male, `2` female, `3` unknown */
  readonly gender: GenderCode;
  /** `EYYYYMMDD`, E the era code, YYYY Gregorian */
  readonly birthDate: string;
  /** 住所, JIS X 0208 only, at most 200 characters */
  readonly address: string;
  /** one `0`/`1` per character of `address` */
  readonly addressSubstituteFlags: string;
}

export type FourItemsField = keyof EncodedFourItems;

/** Address length limit (characters, i.e. code points), shared/spec/JPKI.md "…5.5.5". */
export const MAX_ADDRESS_LENGTH = 200;

/** 〓 (geta mark, U+3013): the substitute when no standard form is known. */
export const GETA = "\u3013";

/** Full-width space (全角スペース) separating family and given name. */
export const IDEOGRAPHIC_SPACE = "\u3000";

/**
 * Ours: characters outside JIS X 0208 and the standard form printed in their place. Each entry is an
 * itaiji (異体字) or compatibility ideograph commonly met in names and addresses; the test suite checks
 * that every key is outside JIS X 0208 and every value inside it. Extend only with that property. (邉 and 嵜
 * look like candidates but are in JIS X 0208 level 2, so they are certified as they are.)
 */
export const SUBSTITUTES: Readonly<Record<string, string>> = Object.freeze({
  // Keys are written as escapes: many editors and tools NFC-normalise compatibility ideographs
  // (U+FA10 → U+585A), which would silently turn a key into its own standard form.
  "\u9AD9": "高", // U+9AD9 髙 hashigo-daka
  "\u{20BB7}": "吉", // U+20BB7 𠮷 tsuchi-yoshi (outside the BMP: one character, two UTF-16 units)
  "\uFA11": "崎", // U+FA11 﨑 tatsu-saki
  "\u5FB7": "徳", // U+5FB7 德
  "\u6FF5": "浜", // U+6FF5 濵
  "\uFA10": "塚", // U+FA10 compatibility ideograph of 塚
  "\uF9DC": "隆", // U+F9DC compatibility ideograph of 隆
  "\uFA19": "神", // U+FA19 compatibility ideograph of 神
  "\uFA1A": "祥", // U+FA1A compatibility ideograph of 祥
  "\uFA1B": "福", // U+FA1B compatibility ideograph of 福
  "\uFA26": "都", // U+FA26 compatibility ideograph of 都
  "\uFA1E": "羽", // U+FA1E compatibility ideograph of 羽
  "\uFA12": "晴", // U+FA12 compatibility ideograph of 晴
  "\u6801": "柳", // U+6801 栁
  "\u69D7": "橋", // U+69D7 槗
  "\u{2123D}": "土", // U+2123D 𡈽 tsuchi with a dot
  "\u663B": "昂", // U+663B 昻
  "\u9751": "青", // U+9751 靑
  "\u6DF8": "清", // U+6DF8 淸
  "\u6852": "桑", // U+6852 桒
  "\u51DE": "熙", // U+51DE 凞
});

/**
 * Code points that JIS X 0208 holds under a different Unicode mapping than WHATWG's EUC-JP decoder
 * produces (the JIS-standard mapping vs the Microsoft one): both forms count as inside JIS X 0208.
 */
const JIS_STANDARD_ALIASES = ["\u301C", "\u2016", "\u2212", "\u00A2", "\u00A3", "\u00AC", "\u2014"];

let jis0208: Set<string> | undefined;

/**
 * The characters of JIS X 0208, built once on first use by decoding every two-byte EUC-JP code with the
 * WHATWG decoder (Node has full ICU). Only rows 1–8 (symbols, kana, Greek, Cyrillic, box drawing) and
 * 16–84 (level 1 and 2 kanji) belong to JIS X 0208: WHATWG's index also fills row 13 (NEC specials) and
 * rows 89–92 (NEC-selected IBM extensions such as 髙 and 﨑), which are exactly the characters that
 * need a substitute, so those rows are skipped.
 */
function jisX0208(): Set<string> {
  if (jis0208) return jis0208;
  const set = new Set<string>(JIS_STANDARD_ALIASES);
  const decoder = new TextDecoder("euc-jp", { fatal: true });
  for (let row = 1; row <= 84; row++) {
    if (row > 8 && row < 16) continue;
    for (let cell = 1; cell <= 94; cell++) {
      try {
        const ch = decoder.decode(new Uint8Array([0xa0 + row, 0xa0 + cell]));
        if ([...ch].length === 1) set.add(ch);
      } catch {
        // an unassigned cell: not a character of the set
      }
    }
  }
  jis0208 = set;
  return set;
}

/** True when the single character (one code point) is in JIS X 0208. */
export function isJisX0208(ch: string): boolean {
  return ch.length === 1 && jisX0208Units()[ch.charCodeAt(0)] === 1;
}

let jis0208Units: Uint8Array | undefined;

/**
 * The same set as a table indexed by UTF-16 code unit: JIS X 0208 lies wholly in the BMP, so a surrogate is
 * never in it, and a string can be checked a code unit at a time without making a string per character.
 */
function jisX0208Units(): Uint8Array {
  if (jis0208Units) return jis0208Units;
  const units = new Uint8Array(0x10000);
  for (const ch of jisX0208()) units[ch.charCodeAt(0)] = 1;
  jis0208Units = units;
  return units;
}

/** True when every character of `s` is in JIS X 0208 (the common case: nothing to substitute). */
function allJisX0208(s: string): boolean {
  const units = jisX0208Units();
  for (let i = 0; i < s.length; i++) if (units[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Half-width characters toFullWidth changes; most registry text has none. */
const HALF_WIDTH = /[\x20-\x7E\uFF61-\uFF9F]/;

/**
 * Half-width forms to their full-width equivalents: ASCII → U+FF01–FF5E, space → U+3000, half-width
 * katakana → katakana (NFKC on those runs only, so ｶﾞ becomes ガ). The spec asks for full-width digits in
 * the address; the rest follows, because JIS X 0208 has no half-width forms. Width is not substitution:
 * these characters are not flagged.
 */
export function toFullWidth(s: string): string {
  if (!HALF_WIDTH.test(s)) return s;
  return s
    .replace(/[\uFF61-\uFF9F]+/g, (run) => run.normalize("NFKC"))
    .replace(/[\x20-\x7E]/g, (c) => (c === " " ? IDEOGRAPHIC_SPACE : String.fromCodePoint(c.codePointAt(0)! + 0xfee0)));
}

/**
 * Maps text to JIS X 0208 for the certificate: full-width conversion first, then each character outside
 * JIS X 0208 is replaced from SUBSTITUTES or by 〓. One flag per resulting character (code point):
 * `1` where a substitute was used.
 */
export function substituteText(s: string): { text: string; flags: string } {
  return substituteFullWidth(toFullWidth(s));
}

/** substituteText of text already through toFullWidth. */
function substituteFullWidth(full: string): { text: string; flags: string } {
  if (allJisX0208(full)) return { text: full, flags: noSubstitutes(full.length) };
  let text = "";
  let flags = "";
  for (const ch of full) {
    if (isJisX0208(ch)) {
      text += ch;
      flags += "0";
    } else {
      text += SUBSTITUTES[ch] ?? GETA;
      flags += "1";
    }
  }
  return { text, flags };
}

/** "0" × n, the flags of text that needed no substitute: made once per length (names and addresses are short). */
function noSubstitutes(n: number): string {
  if (n >= ZEROS.length) return "0".repeat(n);
  return (ZEROS[n] ??= "0".repeat(n));
}
const ZEROS: Array<string | undefined> = new Array(256);

// ---------------------------------------------------------------------------------------------------
// Gender 性別

export type GenderCode = "1" | "2" | "3";

export const GENDER_CODE: Readonly<Record<Gender, GenderCode>> = Object.freeze({ male: "1", female: "2", unknown: "3" });

const GENDER_BY_CODE: Readonly<Record<GenderCode, Gender>> = Object.freeze({ "1": "male", "2": "female", "3": "unknown" });

/** Japanese labels for display: 男 / 女 / 不明. */
export const GENDER_LABEL_JA: Readonly<Record<Gender, string>> = Object.freeze({ male: "男", female: "女", unknown: "不明" });

export function encodeGender(g: Gender): GenderCode {
  // hasOwn: input may come from JSON, and "constructor" must not resolve through the prototype
  const code = Object.hasOwn(GENDER_CODE, g) ? GENDER_CODE[g] : undefined;
  if (!code) throw invalid("gender", "must be male, female or unknown");
  return code;
}

export function decodeGender(code: string): Gender {
  const g = Object.hasOwn(GENDER_BY_CODE, code) ? GENDER_BY_CODE[code as GenderCode] : undefined;
  if (!g) throw invalid("gender", "the code must be 1 (male), 2 (female) or 3 (unknown)");
  return g;
}

// ---------------------------------------------------------------------------------------------------
// Birth date 生年月日 and the era (元号)

/** Era code of the birth-date item: 0 unknown or before Meiji, 1 明治 … 5 令和. */
export type EraCode = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * The eras from Meiji onward with their first day (Gregorian). Ours: Meiji starts on the day the era name
 * was proclaimed, 1868-10-23 (the era was made retroactive to the lunar new year, 1868-01-25 Gregorian;
 * earlier 1868 dates get era 0). Births that early no longer occur in the registry, so the choice only
 * matters for consistency between encoder and checker.
 */
export const ERAS: ReadonlyArray<{ readonly code: Exclude<EraCode, 0>; readonly name: string; readonly romaji: string; readonly start: string }> = Object.freeze([
  { code: 1, name: "明治", romaji: "Meiji", start: "1868-10-23" },
  { code: 2, name: "大正", romaji: "Taisho", start: "1912-07-30" },
  { code: 3, name: "昭和", romaji: "Showa", start: "1926-12-25" },
  { code: 4, name: "平成", romaji: "Heisei", start: "1989-01-08" },
  { code: 5, name: "令和", romaji: "Reiwa", start: "2019-05-01" },
]);

/** Era name for display; 0 → "不明". */
export function eraName(code: EraCode): string {
  return ERAS.find((e) => e.code === code)?.name ?? "不明";
}

/** Parses and checks an ISO calendar date YYYY-MM-DD; returns it unchanged or undefined when not a real date. */
function checkIsoDate(iso: string): { y: number; m: number; d: number } | undefined {
  return isIsoDate(iso) ? { y: digitsAt(iso, 0, 4), m: digitsAt(iso, 5, 2), d: digitsAt(iso, 8, 2) } : undefined;
}

/**
 * Whether `iso` is a real calendar date written YYYY-MM-DD (ASCII digits, year 0001 or later), read character by
 * character: encodeBirthDate runs it for every certificate issued, and the regular expression's match array, its
 * three substrings and their numbers were ≈ 0.2 KB of garbage a certificate (heap sampling, issue bench).
 */
function isIsoDate(iso: string): boolean {
  if (iso.length !== 10 || iso.charCodeAt(4) !== 0x2d || iso.charCodeAt(7) !== 0x2d) return false;
  for (let k = 0; k < DIGIT_POSITIONS.length; k++) {
    const c = iso.charCodeAt(DIGIT_POSITIONS[k]!);
    if (c < 0x30 || c > 0x39) return false;
  }
  const y = digitsAt(iso, 0, 4);
  const mo = digitsAt(iso, 5, 2);
  const d = digitsAt(iso, 8, 2);
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return d <= (mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1]!);
}

/** Where YYYY-MM-DD has its digits. */
const DIGIT_POSITIONS: readonly number[] = [0, 1, 2, 3, 5, 6, 8, 9];

/** The number the ASCII digits iso[at … at+n) write (checked to be digits by the caller). */
function digitsAt(iso: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) v = v * 10 + iso.charCodeAt(i) - 0x30;
  return v;
}

/** Days of each month in a common year (checkIsoDate runs for every certificate issued: no array per call). */
const DAYS_IN_MONTH: readonly number[] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The era a Gregorian ISO date falls in (0 before Meiji). ISO dates compare correctly as strings. An index loop, not
 * for…of: the array iterator was ≈ 0.25 KB of garbage a certificate (heap sampling, issue bench).
 */
export function eraOf(iso: string): EraCode {
  let code: EraCode = 0;
  for (let i = 0; i < ERAS.length; i++) if (iso >= ERAS[i]!.start) code = ERAS[i]!.code;
  return code;
}

/** `1980-12-31` → `319801231`. Throws ERR_FOUR_ITEMS_INVALID for anything but a real calendar date. */
export function encodeBirthDate(iso: string): string {
  if (!isIsoDate(iso)) throw invalid("birthDate", "must be a real calendar date written YYYY-MM-DD");
  return `${eraOf(iso)}${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8)}`;
}

/**
 * `319801231` → { iso: "1980-12-31", era: 3 }. The era must be the one the date falls in, or 0 (unknown).
 */
export function decodeBirthDate(s: string): { iso: string; era: EraCode } {
  const m = /^([0-5])(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (!m) throw invalid("birthDate", "must be 9 digits EYYYYMMDD with era code 0–5");
  const iso = `${m[2]}-${m[3]}-${m[4]}`;
  if (!checkIsoDate(iso)) throw invalid("birthDate", "is not a real calendar date");
  const era = Number(m[1]) as EraCode;
  if (era !== 0 && era !== eraOf(iso)) throw invalid("birthDate", "era code does not match the date");
  return { iso, era };
}

// ---------------------------------------------------------------------------------------------------
// The items together

function invalid(field: FourItemsField | keyof FourItems, what: string): JpkiError {
  return new JpkiError("ERR_FOUR_ITEMS_INVALID", `four basic items: the ${field} ${what}`, { details: { field } });
}

// Control characters never belong in a certified item; checked on the true form.
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;

function checkName(name: string): void {
  if (CONTROL.test(name)) throw invalid("name", "contains a control character");
  // Exactly one separator, with text on both sides (split into two non-empty parts, without the array).
  const sep = name.indexOf(IDEOGRAPHIC_SPACE);
  if (sep <= 0 || sep === name.length - 1 || name.indexOf(IDEOGRAPHIC_SPACE, sep + 1) !== -1) {
    throw invalid("name", "must be a family name and a given name separated by exactly one full-width space (U+3000)");
  }
}

function checkAddress(address: string): void {
  if (address.length === 0) throw invalid("address", "must not be empty");
  if (CONTROL.test(address)) throw invalid("address", "contains a control character");
  // Code points never outnumber UTF-16 code units, so only a long string needs counting.
  if (address.length > MAX_ADDRESS_LENGTH && [...address].length > MAX_ADDRESS_LENGTH) throw invalid("address", `must be at most ${MAX_ADDRESS_LENGTH} characters`);
}

/**
 * Checks the true form as the registry holds it (before substitution, after full-width conversion, which
 * is how the name's separator and the address length are judged). Throws ERR_FOUR_ITEMS_INVALID naming
 * the field.
 */
export function validateFourItems(items: FourItems): void {
  checkedFourItems(items);
}

/**
 * validateFourItems' checks, in its order, returning what they computed on the way: encodeFourItems runs for every
 * certificate issued, and redid the full-width conversions and the birth date's encoding after validating.
 */
function checkedFourItems(items: FourItems): { fullName: string; fullAddress: string; birthDate: string; gender: GenderCode } {
  if (typeof items?.name !== "string") throw invalid("name", "is missing");
  if (typeof items.address !== "string") throw invalid("address", "is missing");
  if (typeof items.birthDate !== "string") throw invalid("birthDate", "is missing");
  const fullName = toFullWidth(items.name);
  checkName(fullName);
  const fullAddress = toFullWidth(items.address);
  checkAddress(fullAddress);
  const birthDate = encodeBirthDate(items.birthDate);
  return { fullName, fullAddress, birthDate, gender: encodeGender(items.gender) };
}

/** The four items as the certificate carries them; validates first. */
export function encodeFourItems(items: FourItems): EncodedFourItems {
  const checked = checkedFourItems(items);
  const name = substituteFullWidth(checked.fullName);
  const address = substituteFullWidth(checked.fullAddress);
  return Object.freeze({
    name: name.text,
    nameSubstituteFlags: name.flags,
    gender: checked.gender,
    birthDate: checked.birthDate,
    address: address.text,
    addressSubstituteFlags: address.flags,
  });
}

/**
 * True when two sets of items certify the same text (shared/spec/JPKI.md "Registry event → effect":
 * compare exactly, after the substitute-character mapping). A correction that only swaps a character for
 * its variant (高 ↔ 髙) leaves the certified text unchanged, so it must not revoke. The flags are not
 * compared: they say how the text was produced, not what it certifies. Never throws: malformed items are
 * compared as they stand.
 */
export function sameCertifiedItems(a: FourItems, b: FourItems): boolean {
  // The mapping is a function of the text: equal text maps equally, and only differing text is mapped.
  const same = (x: string, y: string) => x === y || substituteText(x).text === substituteText(y).text;
  return a.birthDate === b.birthDate && a.gender === b.gender && same(a.name, b.name) && same(a.address, b.address);
}
