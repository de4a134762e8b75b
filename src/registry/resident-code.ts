/**
 * Resident code (住民票コード), shared/spec/JPKI.md "Resident code".
 *
 * Eleven digits: ten digits chosen by the registry plus one check digit by modulus 11, with weights 2–7
 * repeating from the right (the rightmost of the ten digits gets 2, the next 3, … 7, then 2 again). A
 * remainder of 0 or 1 gives check digit 0, otherwise the check digit is 11 − remainder. (The real
 * algorithm is not public; this is our decision, recorded in the spec.)
 *
 * Messages never repeat the code itself: a resident code identifies a person, so it is treated like the
 * four items.
 */
import { JpkiError } from "../errors.js";

const TEN_DIGITS = /^\d{10}$/;
const ELEVEN_DIGITS = /^\d{11}$/;

/** Weight for the i-th digit counted from the right of the ten (i = 0 for the rightmost): 2,3,4,5,6,7,2,… */
function weightFromRight(i: number): number {
  return 2 + (i % 6);
}

/** Check digit (検査数字) for the ten leading digits of a resident code. Throws ERR_RESIDENT_CODE_INVALID. */
export function residentCodeCheckDigit(ten: string): string {
  if (typeof ten !== "string" || !TEN_DIGITS.test(ten)) {
    throw new JpkiError("ERR_RESIDENT_CODE_INVALID", "a resident code check digit needs exactly 10 ASCII digits");
  }
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += Number(ten[9 - i]) * weightFromRight(i);
  const r = sum % 11;
  // Remainders 0 and 1 would give 11 and 10, which are not one digit: both collapse to 0.
  return r <= 1 ? "0" : String(11 - r);
}

/** Appends the check digit to ten digits, giving an 11-digit resident code. */
export function makeResidentCode(ten: string): string {
  return ten + residentCodeCheckDigit(ten);
}

/** True when `s` is 11 ASCII digits whose last digit is the right check digit. */
export function isValidResidentCode(s: unknown): s is string {
  return typeof s === "string" && ELEVEN_DIGITS.test(s) && residentCodeCheckDigit(s.slice(0, 10)) === s[10];
}

/**
 * Throws ERR_RESIDENT_CODE_INVALID unless `s` is a valid resident code. The message says whether the
 * format (11 digits) or the check digit is wrong; `where` (e.g. "line 12") locates the record, `field` names
 * the field that holds the code (a resident-code change has two).
 */
export function assertResidentCode(s: unknown, where?: string, field = "residentCode"): asserts s is string {
  const at = where ? `${where}: ` : "";
  if (typeof s !== "string" || !ELEVEN_DIGITS.test(s)) {
    const kind = typeof s === "string" ? "is not 11 ASCII digits" : `is a ${s === null ? "null" : typeof s}, not a string of 11 digits`;
    throw new JpkiError("ERR_RESIDENT_CODE_INVALID", `${at}field "${field}" ${kind}: give the 11-digit resident code (住民票コード)`, {
      details: { field, problem: "format", ...(where ? { where } : {}) },
    });
  }
  if (residentCodeCheckDigit(s.slice(0, 10)) !== s[10]) {
    throw new JpkiError("ERR_RESIDENT_CODE_INVALID", `${at}field "${field}" fails its check digit (modulus 11): look for a mistyped or swapped digit`, {
      details: { field, problem: "check-digit", ...(where ? { where } : {}) },
    });
  }
}
