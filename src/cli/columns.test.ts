import { describe, expect, it } from "vitest";
import { alignColumns, displayWidth } from "./columns.js";

describe("alignColumns", () => {
  it("pads each column to its widest cell as a terminal shows it: a kanji two columns, a long id its own length", () => {
    expect(displayWidth("東京都")).toBe(6);
    expect(displayWidth("13-sig-g2")).toBe(9);
    const lines = alignColumns([
      ["13-sig", "東京都", "signature", "2036-12-05"],
      ["13-sig-g2", "東京都", "signature", "2036-12-05"],
      ["30-auth", "和歌山県", "authentication", "2036-12-05"],
    ]);
    expect(lines).toEqual([
      "13-sig     東京都    signature       2036-12-05",
      "13-sig-g2  東京都    signature       2036-12-05",
      "30-auth    和歌山県  authentication  2036-12-05",
    ]);
    // the third column starts at the same display column on every line
    expect(new Set(lines.map((l) => displayWidth(l.slice(0, l.search(/signature|authentication/))))).size).toBe(1);
  });
});
