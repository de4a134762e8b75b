import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import {
  decodeBirthDate,
  decodeGender,
  encodeBirthDate,
  encodeFourItems,
  eraOf,
  GETA,
  isJisX0208,
  sameCertifiedItems,
  substituteText,
  SUBSTITUTES,
  toFullWidth,
  validateFourItems,
} from "./four-items.js";
import type { FourItems } from "./types.js";

const yamada: FourItems = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" };

function expectInvalid(fn: () => unknown, field: string): void {
  try {
    fn();
  } catch (e) {
    expect(isJpkiError(e, "ERR_FOUR_ITEMS_INVALID")).toBe(true);
    expect((e as Error).message).toContain(field);
    return;
  }
  throw new Error("expected ERR_FOUR_ITEMS_INVALID");
}

describe("JIS X 0208 membership", () => {
  it("holds the standard forms and excludes the variants", () => {
    for (const ch of ["高", "吉", "崎", "徳", "浜", "辺", "邉", "あ", "ア", "ー", "　", "０", "Ａ", "〓", "－"]) expect(isJisX0208(ch), ch).toBe(true);
    for (const ch of ["髙", "𠮷", "﨑", "德", "濵", "A", "1", " ", "①", "Ⅰ", "纊", "ｱ"]) expect(isJisX0208(ch), ch).toBe(false);
  });

  it("has a substitute table from outside to inside JIS X 0208", () => {
    const keys = Object.keys(SUBSTITUTES);
    expect(keys.length).toBeGreaterThanOrEqual(20);
    for (const [k, v] of Object.entries(SUBSTITUTES)) {
      expect([...k].length, k).toBe(1);
      expect(isJisX0208(k), `key U+${k.codePointAt(0)!.toString(16)}`).toBe(false);
      expect(isJisX0208(v), `value ${v}`).toBe(true);
    }
    // The compatibility ideographs must survive as themselves (an NFC pass would have merged them).
    expect(SUBSTITUTES["\uFA10"]).toBe("塚");
    expect("\uFA10".normalize("NFC")).not.toBe("\uFA10");
  });
});

describe("substituteText", () => {
  it("replaces 髙 and 𠮷 and flags them per code point", () => {
    const r = substituteText("髙橋　𠮷男");
    expect(r.text).toBe("高橋　吉男");
    expect(r.flags).toBe("10010");
    expect(r.flags.length).toBe([...r.text].length);
  });

  it("uses 〓 for a character without a known standard form", () => {
    const r = substituteText("山①");
    expect(r.text).toBe(`山${GETA}`);
    expect(r.flags).toBe("01");
  });

  it("converts half-width forms to full width without flagging them", () => {
    expect(toFullWidth("1-2 A ｶﾞ")).toBe("１－２　Ａ　ガ");
    const r = substituteText("千代田1番1号");
    expect(r.text).toBe("千代田１番１号");
    expect(r.flags).toBe("0000000");
  });
});

describe("birth date and era", () => {
  it.each([
    ["1868-10-22", "018681022"],
    ["1868-10-23", "118681023"],
    ["1912-07-29", "119120729"],
    ["1912-07-30", "219120730"],
    ["1926-12-24", "219261224"],
    ["1926-12-25", "319261225"],
    ["1980-12-31", "319801231"],
    ["1989-01-07", "319890107"],
    ["1989-01-08", "419890108"],
    ["2019-04-30", "420190430"],
    ["2019-05-01", "520190501"],
    ["2000-02-29", "420000229"],
  ])("%s → %s and back", (iso, enc) => {
    expect(encodeBirthDate(iso)).toBe(enc);
    expect(decodeBirthDate(enc)).toEqual({ iso, era: Number(enc[0]) });
  });

  it("knows the era boundaries", () => {
    expect(eraOf("1989-01-07")).toBe(3);
    expect(eraOf("1989-01-08")).toBe(4);
    expect(eraOf("2019-04-30")).toBe(4);
    expect(eraOf("2019-05-01")).toBe(5);
  });

  it.each(["2023-02-30", "2023-02-29", "1900-02-29", "2023-13-01", "2023-00-10", "2023-1-1", "19801231", ""])("rejects %j", (iso) => {
    expectInvalid(() => encodeBirthDate(iso), "birthDate");
  });

  it("encodes and refuses exactly what the regular-expression encoder did (every day of 1800–2100, and strings near a date)", () => {
    // The encoder before it read characters one by one (2026-12-07), kept here as the reference.
    const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    const STARTS = [["1868-10-23", 1], ["1912-07-30", 2], ["1926-12-25", 3], ["1989-01-08", 4], ["2019-05-01", 5]] as const;
    const reference = (iso: string): string | undefined => {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
      if (!m) return undefined;
      const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (y < 1 || mo < 1 || mo > 12 || d < 1) return undefined;
      const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
      if (d > (mo === 2 && leap ? 29 : DAYS[mo - 1]!)) return undefined;
      let era = 0;
      for (const [start, code] of STARTS) if (iso >= start) era = code;
      return `${era}${iso.replace(/-/g, "")}`;
    };
    const ours = (iso: string): string | undefined => {
      try {
        return encodeBirthDate(iso);
      } catch (e) {
        expect(isJpkiError(e) && e.code).toBe("ERR_FOUR_ITEMS_INVALID");
        return undefined;
      }
    };
    const p2 = (n: number) => String(n).padStart(2, "0");
    let dates = 0;
    for (let y = 1800; y <= 2100; y++) {
      for (let mo = 0; mo <= 13; mo++) {
        for (let d = 0; d <= 32; d++) {
          const iso = `${y}-${p2(mo)}-${p2(d)}`;
          const want = reference(iso);
          if (want !== undefined) dates++;
          if (ours(iso) !== want) expect.fail(`${iso}: ${ours(iso)} against ${want}`);
        }
      }
    }
    expect(dates).toBe(109_938); // 301 years of days: every real date was encoded, none refused
    const near = ["0000-01-01", "0001-01-01", "9999-12-31", "1980-1-01", "1980-01-1", "1980/01/01", "1980-01-01 ", " 1980-01-01", "1980-01-01\n",
      "198a-01-01", "1980-0a-01", "1980-01-0a", "1980-01-0:", "198/-01-01", "1980-0/-01", "1980--1-01", "+980-01-01", "1980-01-01x", "１９８０-01-01", "1980－01－01", "19800101", "", "1980-02-29", "2000-02-29", "2100-02-29", "1600-02-29"];
    for (const iso of near) expect(ours(iso), JSON.stringify(iso)).toBe(reference(iso));
  });

  it("accepts era 0 (unknown) for any date, and rejects an era that does not match", () => {
    expect(decodeBirthDate("019801231")).toEqual({ iso: "1980-12-31", era: 0 });
    expectInvalid(() => decodeBirthDate("419801231"), "birthDate");
    expectInvalid(() => decodeBirthDate("519890108"), "birthDate");
    expectInvalid(() => decodeBirthDate("320230230"), "birthDate");
    expectInvalid(() => decodeBirthDate("619801231"), "birthDate");
    expectInvalid(() => decodeBirthDate("31980123"), "birthDate");
  });
});

describe("gender", () => {
  it("maps the codes", () => {
    expect(encodeFourItems({ ...yamada, gender: "female" }).gender).toBe("2");
    expect(encodeFourItems({ ...yamada, gender: "unknown" }).gender).toBe("3");
    expect(decodeGender("1")).toBe("male");
    expectInvalid(() => decodeGender("0"), "gender");
    expectInvalid(() => encodeFourItems({ ...yamada, gender: "x" as never }), "gender");
    expectInvalid(() => encodeFourItems({ ...yamada, gender: "constructor" as never }), "gender");
    expectInvalid(() => decodeGender("constructor"), "gender");
  });
});

describe("encodeFourItems", () => {
  it("encodes the six values", () => {
    expect(encodeFourItems(yamada)).toEqual({
      name: "山田　太郎",
      nameSubstituteFlags: "00000",
      gender: "1",
      birthDate: "319801231",
      address: "東京都千代田区千代田１番１号",
      addressSubstituteFlags: "00000000000000",
    });
  });

  it("substitutes and flags name and address", () => {
    const e = encodeFourItems({ name: "髙﨑　𠮷子", address: "福岡県德島町1-2", birthDate: "1989-01-08", gender: "female" });
    expect(e.name).toBe("高崎　吉子");
    expect(e.nameSubstituteFlags).toBe("11010");
    expect(e.address).toBe("福岡県徳島町１－２");
    expect(e.addressSubstituteFlags).toBe("000100000");
    expect(e.birthDate).toBe("419890108");
  });

  it("accepts a half-width space between family and given name", () => {
    expect(encodeFourItems({ ...yamada, name: "山田 太郎" }).name).toBe("山田　太郎");
  });

  it.each([
    ["山田太郎", "name"],
    ["山田　太郎　二世", "name"],
    ["　太郎", "name"],
    ["山田　", "name"],
    ["山田\u0000　太郎", "name"],
  ])("rejects name %j naming the field, not the value", (name, field) => {
    try {
      encodeFourItems({ ...yamada, name });
      throw new Error("expected a throw");
    } catch (e) {
      expect(isJpkiError(e, "ERR_FOUR_ITEMS_INVALID")).toBe(true);
      expect((e as Error).message).toContain(field);
      expect((e as Error).message).not.toContain("山田");
      expect((e as Error).message).not.toContain("太郎");
    }
  });

  it("limits the address to 200 characters and refuses an empty one", () => {
    expect(encodeFourItems({ ...yamada, address: "東".repeat(200) }).address.length).toBe(200);
    expectInvalid(() => encodeFourItems({ ...yamada, address: "東".repeat(201) }), "address");
    expectInvalid(() => encodeFourItems({ ...yamada, address: "" }), "address");
    // 200 characters counted by code point, not UTF-16 unit
    expect([...encodeFourItems({ ...yamada, address: "𠮷".repeat(200) }).address].length).toBe(200);
  });

  it("flags each unsubstituted text with one 0 per character, whatever lengths came before (the flags are shared per length)", () => {
    for (const n of [3, 1, 40, 3, 255, 256, 300, 2]) {
      const name = `${"山".repeat(Math.max(1, Math.floor(n / 2)))}　${"太".repeat(Math.max(1, n - 1 - Math.max(1, Math.floor(n / 2))))}`;
      const e = encodeFourItems({ ...yamada, name, address: "東".repeat(Math.min(n, 200)) });
      expect(e.nameSubstituteFlags).toBe("0".repeat(name.length));
      expect(e.addressSubstituteFlags).toBe("0".repeat(Math.min(n, 200)));
    }
    expect(substituteText("ｶﾞ1").flags).toBe("00");
  });

  it("validateFourItems checks the true form", () => {
    expect(() => validateFourItems({ ...yamada, name: "髙橋　一郎" })).not.toThrow();
    expectInvalid(() => validateFourItems({ ...yamada, birthDate: "2023-02-30" }), "birthDate");
  });
});

describe("sameCertifiedItems", () => {
  it("treats a variant and its substitute as the same certified text", () => {
    const a = { ...yamada, name: "髙橋　一郎" };
    const b = { ...yamada, name: "高橋　一郎" };
    expect(sameCertifiedItems(a, b)).toBe(true);
    expect(sameCertifiedItems(yamada, { ...yamada, address: "東京都千代田区千代田1番1号" })).toBe(true);
  });

  it("sees a real change", () => {
    expect(sameCertifiedItems(yamada, { ...yamada, name: "山田　花子" })).toBe(false);
    expect(sameCertifiedItems(yamada, { ...yamada, address: "東京都港区芝公園４丁目２番８号" })).toBe(false);
    expect(sameCertifiedItems(yamada, { ...yamada, birthDate: "1980-12-30" })).toBe(false);
    expect(sameCertifiedItems(yamada, { ...yamada, gender: "female" })).toBe(false);
    // two different characters outside JIS X 0208 both become 〓, so only the standard forms differ here
    expect(sameCertifiedItems({ ...yamada, name: "髙田　一" }, { ...yamada, name: "﨑田　一" })).toBe(false);
  });
});
