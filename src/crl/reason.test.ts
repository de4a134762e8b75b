import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { parseReason } from "./reason.js";

describe("parseReason", () => {
  it("reads causes, RFC 5280 names and numbers", () => {
    expect(parseReason("loss")).toMatchObject({ name: "keyCompromise", code: 1, cause: "loss" });
    expect(parseReason("cacompromise")).toMatchObject({ name: "cACompromise", code: 2 });
    expect(parseReason("5")).toMatchObject({ name: "cessationOfOperation" });
  });

  it("refuses removeFromCRL, by name or number: it un-revokes, in delta CRLs only (was accepted as a reason to revoke)", () => {
    for (const s of ["removeFromCRL", "8"]) {
      let code = "accepted";
      try {
        parseReason(s);
      } catch (e) {
        code = isJpkiError(e) ? e.code : String(e);
      }
      expect(code, s).toBe("ERR_USAGE");
    }
  });
});
