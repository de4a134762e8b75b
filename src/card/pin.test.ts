import { describe, expect, it } from "vitest";
import { errorCodeOf } from "../../test/error-code.js";
import { attemptPin, checkPinFormat, newPinRecord, pinFormatOk, triesStatus } from "./pin.js";

const b = (s: string) => Buffer.from(s, "latin1");

describe("PIN rules (shared/spec/JPKI.md: the card)", () => {
  it("signature PIN: 6–16 of A–Z and 0–9", () => {
    for (const ok of ["ABC123", "A1B2C3D4E5F6G7H8", "123456"]) expect(pinFormatOk("signature", ok), ok).toBe(true);
    for (const bad of ["ABC12", "A1B2C3D4E5F6G7H8I", "abc123", "ABC 123", "ＡＢＣ１２３", ""]) expect(pinFormatOk("signature", bad), bad).toBe(false);
  });

  it("authentication PIN: 4 digits", () => {
    expect(pinFormatOk("authentication", "0123")).toBe(true);
    for (const bad of ["123", "12345", "12a4", "１２３４"]) expect(pinFormatOk("authentication", bad), bad).toBe(false);
  });

  it("a PIN breaking its rule is ERR_CARD_PIN_FORMAT, and the message does not quote it", () => {
    expect(errorCodeOf(() => checkPinFormat("signature", "secret"))).toBe("ERR_CARD_PIN_FORMAT");
    try {
      checkPinFormat("authentication", "98765");
    } catch (e) {
      expect(String((e as Error).message)).not.toContain("98765");
    }
  });

  it("counts down 63 C4 … 63 C0 on the signature PIN, then 69 84 for every attempt after", () => {
    let rec = newPinRecord("signature", "PASSWORD1");
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      const a = attemptPin("signature", rec, b("WRONG1"));
      rec = a.record;
      seen.push(a.sw);
    }
    expect(seen.map((s) => s.toString(16))).toEqual(["63c4", "63c3", "63c2", "63c1", "63c0", "6984", "6984"]);
    // blocked: even the right PIN is refused
    expect(attemptPin("signature", rec, b("PASSWORD1")).sw).toBe(0x6984);
    expect(triesStatus(rec)).toBe(0x63c0); // the empty VERIFY asks, it does not attempt
  });

  it("authentication PIN: 3 tries; the right PIN refills the counter", () => {
    let rec = newPinRecord("authentication", "1234");
    expect(triesStatus(rec)).toBe(0x63c3);
    rec = attemptPin("authentication", rec, b("0000")).record;
    expect(triesStatus(rec)).toBe(0x63c2);
    const ok = attemptPin("authentication", rec, b("1234"));
    expect([ok.sw, ok.verified, ok.record.tries]).toEqual([0x9000, true, 3]);
    // a candidate of the wrong shape costs a try like any wrong one
    expect(attemptPin("authentication", ok.record, b("12345678901234567890")).sw).toBe(0x63c2);
  });

  it("keeps no PIN in the record", () => {
    const rec = newPinRecord("signature", "SECRETPIN9");
    expect(JSON.stringify(rec)).not.toContain("SECRETPIN9");
    expect(JSON.stringify(rec)).not.toContain(b("SECRETPIN9").toString("base64"));
  });
});
