import { describe, expect, it } from "vitest";
import { decodeEntries, encodeEntry } from "../profile/crl-entry.js";
import { META_BYTES, RevocationBlocks, blockEntries, municipalitiesOf, municipalityText } from "./revocation-log.js";

describe("revocation log blocks", () => {
  it("collects one block per CA in the order added, with 8 bytes of metadata an entry and the earliest not_after", () => {
    const b = new RevocationBlocks();
    b.add("13-sig", "0a02", 1000, 1, Date.UTC(2030, 0, 1), "131016");
    b.add("27-sig", "0a01", 2000, 3, Date.UTC(2029, 0, 1), "271004");
    b.add("13-sig", "0a01", 3000, 0, Date.UTC(2020, 0, 1, 0, 0, 0), "131024");
    expect(b.size).toBe(3);
    const [sig, other, ...rest] = b.take();
    expect(rest).toEqual([]);
    expect(b.size).toBe(0);
    expect(sig).toMatchObject({ caId: "13-sig", entries: 2, minNotAfter: Date.UTC(2020, 0, 1) });
    expect(sig!.der.equals(Buffer.concat([encodeEntry({ serial: "0a02", revokedAt: new Date(1000), reason: 1 }), encodeEntry({ serial: "0a01", revokedAt: new Date(3000), reason: 0 })]))).toBe(true);
    expect(sig!.meta.length).toBe(2 * META_BYTES);
    expect([...municipalitiesOf(sig!.meta, 2)].map(municipalityText)).toEqual(["131016", "131024"]);
    expect(other).toMatchObject({ caId: "27-sig", entries: 1 });
  });

  it("filters a block by cut-off only when it holds an expired certificate, keeping the order of the others", () => {
    const b = new RevocationBlocks();
    const notAfter = [Date.UTC(2030, 0, 1), Date.UTC(2020, 0, 1), Date.UTC(2031, 0, 1), Date.UTC(2019, 0, 1)];
    notAfter.forEach((t, i) => b.add("13-sig", `0b0${i}`, 1000, 1, t, "131016"));
    const [block] = b.take();
    const serials = (e: { der: Buffer } | undefined) => (e ? decodeEntries(e.der).map((x) => x.serial) : []);
    // nothing expired: the block as stored, its metadata not needed
    expect(blockEntries(block!.der, 4, block!.minNotAfter, null, Date.UTC(2019, 0, 1))?.der).toBe(block!.der);
    expect(serials(blockEntries(block!.der, 4, block!.minNotAfter, block!.meta, Date.UTC(2025, 0, 1)))).toEqual(["0b00", "0b02"]);
    expect(blockEntries(block!.der, 4, block!.minNotAfter, block!.meta, Date.UTC(2032, 0, 1))).toBeUndefined();
    expect(() => blockEntries(block!.der, 4, block!.minNotAfter, null, Date.UTC(2025, 0, 1))).toThrow(RangeError);
  });
});
