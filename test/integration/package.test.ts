/** The package as a consumer sees it: the public API loads from src/index.ts without side effects. */
import { describe, expect, it } from "vitest";
import * as jpki from "../../src/index.js";

describe("public API", () => {
  it("exports the services and the error type, and nothing runs at import", () => {
    for (const name of ["JpkiError", "IssuanceService", "NoticeIngestor", "CrlPublisher", "CrlUpdater", "Workspace", "SqliteStore", "buildCrl", "checkCertificate", "describeCertificate", "encodeFourItemsSan", "parseNotice", "decideRevocations", "runCli", "PREFECTURES"]) {
      expect(jpki, name).toHaveProperty(name);
    }
    expect(jpki.PREFECTURES).toHaveLength(47);
    expect(jpki.prefecture("13").kanji).toBe("東京都");
    expect(new jpki.JpkiError("ERR_USAGE", "x").exitCode).toBe(2);
  });
});
