import { describe, expect, it } from "vitest";
import { caValidity, notAfterFor } from "./validity.js";

const caNotAfter = new Date("2036-01-01T14:59:59Z");

describe("validity (shared/spec/JPKI.md Eras)", () => {
  it("reads each instant's own JST day, whatever was asked before (the last day's answer is kept)", () => {
    const at = (iso: string) => notAfterFor({ rule: "3y", issuedAt: new Date(iso), birthDate: "1980-01-01", caNotAfter }).toISOString();
    // 14:59:59.999Z is 23:59:59.999 JST on the 1st; 15:00Z is midnight JST on the 2nd: back and forth across it
    for (let i = 0; i < 2; i++) {
      expect(at("2026-04-01T14:59:59.999Z")).toBe("2029-04-01T14:59:59.000Z");
      expect(at("2026-04-01T15:00:00.000Z")).toBe("2029-04-02T14:59:59.000Z");
      expect(at("2026-04-01T15:00:00.001Z")).toBe("2029-04-02T14:59:59.000Z");
    }
    expect(at("2025-04-02T15:00:00.000Z")).toBe("2028-04-03T14:59:59.000Z"); // a year earlier, the same time of day
    expect(() => at("invalid")).toThrow(RangeError); // an invalid instant as before: an invalid notAfter
    expect(at("2026-04-01T15:00:00.000Z")).toBe("2029-04-02T14:59:59.000Z");
  });

  it("3y: three years from the JST issuance day, ending 23:59:59 JST", () => {
    // 2026-11-25 20:00Z is already 2026-11-26 in Japan
    expect(notAfterFor({ rule: "3y", issuedAt: new Date("2026-11-25T20:00:00Z"), birthDate: "1980-01-01", caNotAfter }).toISOString()).toBe("2029-11-26T14:59:59.000Z");
    expect(notAfterFor({ rule: "3y", issuedAt: new Date("2026-11-25T10:00:00Z"), birthDate: "1980-01-01", caNotAfter }).toISOString()).toBe("2029-11-25T14:59:59.000Z");
    // issued on a leap day: the anniversary falls on Feb 28
    expect(notAfterFor({ rule: "3y", issuedAt: new Date("2028-02-29T03:00:00Z"), birthDate: "1980-01-01", caNotAfter: new Date("2040-01-01T00:00:00Z") }).toISOString()).toBe("2031-02-28T14:59:59.000Z");
  });

  it("fifth-birthday: until the fifth birthday after issuance", () => {
    // birthday still ahead this year: it is the first of the five
    expect(notAfterFor({ rule: "fifth-birthday", issuedAt: new Date("2026-03-01T00:00:00Z"), birthDate: "1990-06-15", caNotAfter }).toISOString()).toBe("2030-06-15T14:59:59.000Z");
    // birthday already passed this year
    expect(notAfterFor({ rule: "fifth-birthday", issuedAt: new Date("2026-07-01T00:00:00Z"), birthDate: "1990-06-15", caNotAfter }).toISOString()).toBe("2031-06-15T14:59:59.000Z");
    // issued on the birthday itself: that birthday is not "after" issuance
    expect(notAfterFor({ rule: "fifth-birthday", issuedAt: new Date("2026-06-15T01:00:00Z"), birthDate: "1990-06-15", caNotAfter }).toISOString()).toBe("2031-06-15T14:59:59.000Z");
  });

  it("never outlives the issuing CA", () => {
    const early = new Date("2027-01-01T14:59:59Z");
    expect(notAfterFor({ rule: "3y", issuedAt: new Date("2026-01-01T00:00:00Z"), birthDate: "1990-06-15", caNotAfter: early })).toEqual(early);
  });

  it("a CA's validity starts at the second and ends at 23:59:59 JST of its JST date, years on (Feb 29 → Feb 28)", () => {
    // 15:30Z on Feb 28 is 00:30 JST on Mar 1: the JST date counts, not the UTC one
    const v = caValidity(new Date("2026-02-28T15:30:00.750Z"), 10);
    expect(v.notBefore.toISOString()).toBe("2026-02-28T15:30:00.000Z");
    expect(v.notAfter.toISOString()).toBe("2036-03-01T14:59:59.000Z");
    expect(caValidity(new Date("2028-02-29T03:00:00Z"), 10).notAfter.toISOString()).toBe("2038-02-28T14:59:59.000Z");
  });
});
