/**
 * A municipal application beside JPKI (issue 12 point 8): the library card (図書館カード) in its own DF with its
 * own AID, PIN and access conditions, unable to name, read or use anything of the JPKI application.
 */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { errorCodeOf } from "../../test/error-code.js";
import { parseResponse } from "./apdu.js";
import { memoryCardStorage, stateStoreOf, type CardState } from "./card-state.js";
import { EmulatedCard, newAdminKey } from "./card.js";
import { digestInfo } from "./jpki-app.js";
import { LIBRARY_EF } from "./library-app.js";

const ADMIN = newAdminKey();
let personalised: CardState;

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
async function tx(card: EmulatedCard, apdu: string): Promise<{ data: Buffer; sw: string }> {
  const r = parseResponse(await card.transmit(hex(apdu)))!;
  return { data: Buffer.from(r.data), sw: r.sw.toString(16).toUpperCase().padStart(4, "0") };
}
const SELECT_JPKI = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01";
const SELECT_LIBRARY = "00 A4 04 0C 08 F2 4A 50 4B 49 4C 49 42";
const selectEf = (fid: string) => `00 A4 02 0C 02 ${fid}`;
const verify = (pin: string) => `00 20 00 80 ${Buffer.from(pin).length.toString(16).padStart(2, "0")} ${Buffer.from(pin).toString("hex")}`;
const di = Buffer.from(digestInfo("sha256", createHash("sha256").update("x").digest())).toString("hex");
const SIGN = `80 2A 00 80 33 ${di} 00`;

beforeAll(async () => {
  const storage = memoryCardStorage();
  const card = EmulatedCard.create({ storage, cardId: "card-lib", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321", libraryPin: "2468" });
  await card.generateKeyPair(ADMIN, "signature");
  card.writeApplicationFile(ADMIN, { application: "library", fid: LIBRARY_EF.libraryName, data: Buffer.from("千代田区立図書館") });
  card.writeApplicationFile(ADMIN, { application: "library", fid: LIBRARY_EF.memberNumber, data: Buffer.from("L-000123") });
  personalised = stateStoreOf(storage).load();
});
const fresh = () => EmulatedCard.open(memoryCardStorage(personalised));

describe("the library application (図書館カード)", () => {
  it("has its own files and PIN", async () => {
    const card = fresh();
    expect((await tx(card, SELECT_LIBRARY)).sw).toBe("9000");
    await tx(card, selectEf("0001"));
    const name = await tx(card, "00 B0 00 00 00");
    expect(name.data.toString()).toBe("千代田区立図書館");
    await tx(card, selectEf("0002"));
    expect((await tx(card, "00 B0 00 00 00")).sw).toBe("6982");
    await tx(card, selectEf("0010"));
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C3");
    expect((await tx(card, verify("2468"))).sw).toBe("9000");
    await tx(card, selectEf("0002"));
    expect((await tx(card, "00 B0 00 00 08")).data.toString()).toBe("L-000123");
    await tx(card, selectEf("0003"));
    expect((await tx(card, "00 D6 00 00 05 68 65 6C 6C 6F")).sw).toBe("9000");
    expect((await tx(card, "00 B0 00 00 05")).data.toString()).toBe("hello");
  });

  it("cannot name a JPKI EF while it is current: 6A 82; its 0001 is its own file, not the signature certificate", async () => {
    const card = fresh();
    await tx(card, SELECT_LIBRARY);
    for (const fid of ["000A", "000B", "0006", "0008", "0017", "0018", "001A", "001B"]) {
      expect((await tx(card, selectEf(fid))).sw, fid).toBe("6A82");
    }
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 B0 00 00 02")).data.toString("hex")).not.toBe("3082");
    // and nothing of JPKI can be signed from here
    expect((await tx(card, SIGN)).sw).toBe("6985");
  });

  it("its PIN does not open JPKI keys or files, and JPKI's PINs do not open it", async () => {
    const card = fresh();
    await tx(card, SELECT_LIBRARY);
    await tx(card, selectEf("0010"));
    expect((await tx(card, verify("2468"))).sw).toBe("9000");
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, SIGN)).sw).toBe("6982");
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 B0 00 00 04")).sw).toBe("6982");
    // the JPKI authentication PIN (also 4 digits) verified, then the library: its files stay shut
    await tx(card, selectEf("0018"));
    expect((await tx(card, verify("4321"))).sw).toBe("9000");
    await tx(card, SELECT_LIBRARY);
    await tx(card, selectEf("0002"));
    expect((await tx(card, "00 B0 00 00 08")).sw).toBe("6982");
  });

  it("leaving an application forgets what was verified in it", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    expect((await tx(card, verify("SIGPIN2026"))).sw).toBe("9000");
    await tx(card, SELECT_LIBRARY);
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, SIGN)).sw).toBe("6982");
    // re-selecting the current application keeps it (OpenSC re-selects the AP on every lock)
    await tx(card, selectEf("001B"));
    await tx(card, verify("SIGPIN2026"));
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, SIGN)).sw).toBe("9000");
  });

  it("has its own retry counter", async () => {
    const card = fresh();
    await tx(card, SELECT_LIBRARY);
    await tx(card, selectEf("0010"));
    for (const want of ["63C2", "63C1", "63C0", "6984"]) expect((await tx(card, verify("0000"))).sw).toBe(want);
    expect(card.info().triesLeft).toEqual({ signature: 5, authentication: 3, library: 0 });
  });

  it("the admin API writes municipal files only, within their size", () => {
    const card = fresh();
    expect(errorCodeOf(() => card.writeApplicationFile(ADMIN, { application: "jpki" as "library", fid: 0x0001, data: Buffer.from("x") }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => card.writeApplicationFile(ADMIN, { application: "library", fid: LIBRARY_EF.pin, data: Buffer.from("x") }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => card.writeApplicationFile(ADMIN, { application: "library", fid: LIBRARY_EF.memberNumber, data: Buffer.alloc(33) }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => card.writeApplicationFile(newAdminKey(), { application: "library", fid: LIBRARY_EF.memberNumber, data: Buffer.from("x") }))).toBe("ERR_CARD_ADMIN_KEY_WRONG");
  });
});
