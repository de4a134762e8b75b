import { describe, expect, it } from "vitest";
import { CommandApdu, encodeResponse, parseCommandApdu, parseResponse } from "./apdu.js";
import { SW } from "./status-words.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();

function parsed(s: string): CommandApdu {
  const r = parseCommandApdu(hex(s));
  if (!r.ok) throw new Error(`rejected with ${r.sw.toString(16)}`);
  return r.apdu;
}

describe("command APDU, ISO 7816-4 §5.1", () => {
  it("parses the four cases in short form", () => {
    const c1 = parsed("00 20 00 80");
    expect([c1.case, c1.nc, c1.ne]).toEqual([1, 0, 0]);
    const c2 = parsed("00 B0 00 00 00");
    expect([c2.case, c2.ne, c2.extended]).toEqual([2, 256, false]); // Le 00 is 256
    const c2b = parsed("00 B0 01 02 04");
    expect([c2b.p1, c2b.p2, c2b.ne]).toEqual([1, 2, 4]);
    const c3 = parsed("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01");
    expect([c3.case, c3.nc, toHex(c3.data)]).toEqual([3, 10, "D392F000260100000001"]);
    const c4 = parsed("80 2A 00 80 03 01 02 03 00");
    expect([c4.case, c4.nc, c4.ne, c4.cla]).toEqual([4, 3, 256, 0x80]);
  });

  it("parses the extended forms", () => {
    const c2 = parsed("00 B0 00 00 00 00 00");
    expect([c2.case, c2.ne, c2.extended]).toEqual([2, 65536, true]); // Le 00 00 is 65536
    const c2b = parsed("00 B0 00 00 00 01 2C");
    expect(c2b.ne).toBe(300);
    const data = "AB".repeat(300);
    const c3 = parsed(`00 D6 00 00 00 01 2C ${data}`);
    expect([c3.case, c3.nc, c3.extended]).toEqual([3, 300, true]);
    const c4 = parsed(`80 2A 00 80 00 01 2C ${data} 01 00`);
    expect([c4.case, c4.nc, c4.ne]).toEqual([4, 300, 256]);
  });

  it("answers 67 00 for length fields that fit no case, never throwing", () => {
    for (const bad of ["", "00", "00 A4 04", "00 A4 04 0C 05 01 02", "00 A4 04 0C 02 01 02 03 04", "00 B0 00 00 00 00", "00 D6 00 00 00 00 00 01", "00 D6 00 00 00 00 02 01"]) {
      const r = parseCommandApdu(hex(bad));
      expect(r, bad).toEqual({ ok: false, sw: SW.WRONG_LENGTH });
    }
  });

  it("encodes what it parses, short and extended", () => {
    for (const s of ["00204000", "00B0000004", "00B0000000", "00A4020C020001", "802A00800301020300", "00B00000000000", "00B0000000012C"]) {
      expect(toHex(parsed(s).encode())).toBe(s.toUpperCase());
    }
    const big = new CommandApdu({ cla: 0x80, ins: 0x2a, p1: 0, p2: 0x80, data: new Uint8Array(300).fill(1), ne: 256 });
    expect(big.extended).toBe(true);
    const again = parsed(toHex(big.encode()));
    expect([again.nc, again.ne]).toEqual([300, 256]);
  });

  it("is immutable: the data field is copied in and out", () => {
    const src = Uint8Array.from([1, 2, 3]);
    const a = new CommandApdu({ cla: 0, ins: 0xd6, p1: 0, p2: 0, data: src });
    src[0] = 9;
    a.data[1] = 9;
    expect([...a.data]).toEqual([1, 2, 3]);
    expect(() => new CommandApdu({ cla: 256, ins: 0, p1: 0, p2: 0 })).toThrow(RangeError);
  });
});

describe("response APDU, ISO 7816-4 §5.2", () => {
  it("puts the status word last", () => {
    expect(toHex(encodeResponse(Uint8Array.from([1, 2]), SW.OK))).toBe("01029000");
    expect(parseResponse(hex("0102 6282"))).toEqual({ data: Uint8Array.from([1, 2]), sw: 0x6282 });
    expect(parseResponse(hex("90"))).toBeUndefined();
  });
});
