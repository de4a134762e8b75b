import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { assertResidentCode, isValidResidentCode, makeResidentCode, residentCodeCheckDigit } from "./resident-code.js";

// Vectors worked by hand. Weights from the right of the ten digits: 2,3,4,5,6,7,2,3,4,5.
const VECTORS: ReadonlyArray<readonly [ten: string, check: string, working: string]> = [
  ["0000000001", "9", "1×2 = 2; 2 mod 11 = 2; 11 − 2 = 9"],
  ["1234567890", "3", "0×2+9×3+8×4+7×5+6×6+5×7+4×2+3×3+2×4+1×5 = 195; 195 mod 11 = 8; 11 − 8 = 3"],
  ["0000000000", "0", "sum 0; remainder 0 → 0"],
  ["0000000031", "0", "1×2+3×3 = 11; remainder 0 → 0"],
  ["0000000054", "0", "4×2+5×3 = 23; remainder 1 → 0"],
  ["0000000019", "1", "9×2+1×3 = 21; remainder 10; 11 − 10 = 1"],
  ["9999999999", "5", "9×(2+3+4+5+6+7+2+3+4+5) = 9×41 = 369; 369 mod 11 = 6; 11 − 6 = 5"],
  ["0000100000", "4", "6th digit from the right has weight 7: 7; 11 − 7 = 4"],
  ["0001000000", "9", "7th digit from the right wraps to weight 2: 2; 11 − 2 = 9"],
  ["1000000000", "6", "10th digit from the right has weight 5: 5; 11 − 5 = 6"],
];

describe("residentCodeCheckDigit", () => {
  it.each(VECTORS)("%s → %s (%s)", (ten, check) => {
    expect(residentCodeCheckDigit(ten)).toBe(check);
    expect(makeResidentCode(ten)).toBe(ten + check);
    expect(isValidResidentCode(ten + check)).toBe(true);
  });

  it("rejects anything but ten ASCII digits", () => {
    for (const bad of ["", "123456789", "12345678901", "12345６7890", "12345 67890", "abcdefghij"]) {
      expect(() => residentCodeCheckDigit(bad)).toThrow(expect.objectContaining({ code: "ERR_RESIDENT_CODE_INVALID" }));
    }
  });
});

describe("isValidResidentCode / assertResidentCode", () => {
  it("detects every single-digit error, except where remainders 0 and 1 share check digit 0", () => {
    const good = "12345678903";
    let undetected = 0;
    for (let pos = 0; pos < 11; pos++) {
      for (let d = 0; d <= 9; d++) {
        if (String(d) === good[pos]) continue;
        const bad = good.slice(0, pos) + d + good.slice(pos + 1);
        if (isValidResidentCode(bad)) {
          // Weights 2–7 are coprime with 11, so a substitution always changes the remainder; it can only
          // go unnoticed when the check digit is 0 and the remainder moved between 0 and 1.
          expect(pos).toBeLessThan(10);
          expect(bad[10]).toBe("0");
          undetected++;
        }
      }
    }
    expect(undetected).toBe(0); // the check digit of this code is 3, so nothing may slip through
    expect(isValidResidentCode("00000000540")).toBe(true); // remainder 1 …
    expect(isValidResidentCode("00000000310")).toBe(true); // … and remainder 0 both end in 0
  });

  it("says format vs check digit, without repeating the code", () => {
    const fmt = (() => { try { assertResidentCode("1234567890", "line 4"); } catch (e) { return e; } })();
    expect(isJpkiError(fmt, "ERR_RESIDENT_CODE_INVALID")).toBe(true);
    expect((fmt as Error).message).toMatch(/^line 4: field "residentCode" is not 11 ASCII digits/);
    expect((fmt as Error).message).not.toContain("1234567890");

    const chk = (() => { try { assertResidentCode("12345678904"); } catch (e) { return e; } })();
    expect(isJpkiError(chk, "ERR_RESIDENT_CODE_INVALID")).toBe(true);
    expect((chk as Error).message).toMatch(/check digit/);
    expect((chk as Error).message).not.toContain("12345678904");
    expect((chk as { details: Record<string, unknown> }).details).toMatchObject({ field: "residentCode", problem: "check-digit" });

    expect(() => assertResidentCode(12345678903)).toThrow(/not a string/);
    expect(() => assertResidentCode("12345678903")).not.toThrow();
  });
});
