/**
 * The JPKI application through APDUs only (issue 12 points 2–5 and 9): every status word the spec names, checked
 * against one personalised card (real RSA-2048 keys generated on it once) cloned per test.
 */
import { constants, createHash, publicDecrypt, verify as nodeVerify, createPublicKey } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { certificateFor, rsaKey } from "../../test/card-fixtures.js";
import { errorCodeOf } from "../../test/error-code.js";
import { parseResponse } from "./apdu.js";
import { memoryCardStorage, stateStoreOf, type CardState } from "./card-state.js";
import { EmulatedCard, JPKI_ATR, newAdminKey, unblockPin } from "./card.js";
import { digestInfo } from "./jpki-app.js";

const ADMIN = newAdminKey();
const SIG_PIN = "SIGPIN2026";
const AUTH_PIN = "4321";
let personalised: CardState;
let certs: { signature: Buffer; signatureCa: Buffer; authentication: Buffer; authenticationCa: Buffer };
let spki: { signature: Buffer; authentication: Buffer };

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

async function tx(card: EmulatedCard, apdu: string | Uint8Array): Promise<{ data: Buffer; sw: string }> {
  const r = parseResponse(await card.transmit(typeof apdu === "string" ? hex(apdu) : apdu))!;
  return { data: Buffer.from(r.data), sw: r.sw.toString(16).toUpperCase().padStart(4, "0") };
}

const SELECT_JPKI = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01";
const selectEf = (fid: string) => `00 A4 02 0C 02 ${fid}`;
const verifyPin = (pin: string) => `00 20 00 80 ${Buffer.from(pin).length.toString(16).padStart(2, "0")} ${Buffer.from(pin).toString("hex")}`;
const signApdu = (di: Uint8Array) => `80 2A 00 80 ${di.length.toString(16).padStart(2, "0")} ${Buffer.from(di).toString("hex")} 00`;
const sha256Di = (msg: string) => digestInfo("sha256", createHash("sha256").update(msg).digest());

function fresh(): EmulatedCard {
  return EmulatedCard.open(memoryCardStorage(personalised));
}

beforeAll(async () => {
  const storage = memoryCardStorage();
  const card = EmulatedCard.create({ storage, cardId: "card-0001", adminKey: ADMIN, signaturePin: SIG_PIN, authenticationPin: AUTH_PIN, libraryPin: "7777" });
  spki = {
    signature: await card.generateKeyPair(ADMIN, "signature"),
    authentication: await card.generateKeyPair(ADMIN, "authentication"),
  };
  const ca = rsaKey();
  const caSpki = createPublicKey(ca).export({ type: "spki", format: "der" });
  const caCert = await certificateFor({ spki: caSpki, caKey: ca, subject: "Test Prefecture CA", issuer: "Test Prefecture CA", serial: 1 });
  certs = {
    signature: await certificateFor({ spki: spki.signature, caKey: ca, subject: "sig", issuer: "Test Prefecture CA", serial: 2 }),
    authentication: await certificateFor({ spki: spki.authentication, caKey: ca, subject: "auth", issuer: "Test Prefecture CA", serial: 3 }),
    signatureCa: caCert,
    authenticationCa: caCert,
  };
  for (const slot of ["signature", "signatureCa", "authentication", "authenticationCa"] as const) card.writeCertificate(ADMIN, slot, certs[slot]);
  personalised = stateStoreOf(storage).load();
});

describe("the card as OpenSC meets it", () => {
  it("answers the JPKI ATR and selects the JPKI application by AID", async () => {
    const card = fresh();
    expect(Buffer.from(card.atr()).toString("hex")).toBe("3be000ff8131fe4514");
    expect(Buffer.from(JPKI_ATR).toString("hex")).toBe("3be000ff8131fe4514");
    expect((await tx(card, SELECT_JPKI)).sw).toBe("9000");
    // P2 = 00 with an Le returns the FCI with the DF name, P2 = 04 the FCP; without an Le (case 3) no data at all
    const fci = await tx(card, "00 A4 04 00 0A D3 92 F0 00 26 01 00 00 00 01 00");
    expect([fci.sw, fci.data.toString("hex")]).toEqual(["9000", "6f0c840ad392f000260100000001"]);
    const fcp = await tx(card, "00 A4 04 04 0A D3 92 F0 00 26 01 00 00 00 01 00");
    expect([fcp.sw, fcp.data.toString("hex")]).toEqual(["9000", "620c840ad392f000260100000001"]);
    for (const p2 of ["00", "04"]) {
      const none = await tx(card, `00 A4 04 ${p2} 0A D3 92 F0 00 26 01 00 00 00 01`);
      expect([none.sw, none.data.length], p2).toEqual(["9000", 0]);
    }
    expect((await tx(card, "00 A4 00 00 02 3F 00")).data.length).toBe(0); // the MF, no Le
    expect((await tx(card, "00 A4 00 00 02 3F 00 00")).data.toString("hex")).toBe("6f0483023f00");
  });

  it("answers other drivers' probes with 6A 82 and 6D 00", async () => {
    const card = fresh();
    expect((await tx(card, "00 A4 04 0C 07 A0 00 00 00 03 10 10")).sw).toBe("6A82"); // a payment AID
    expect((await tx(card, "00 A4 04 00 0A D3 92 10 00 31 00 01 01 04 08")).sw).toBe("6A82"); // 券面事項入力補助AP: not ours
    expect((await tx(card, "00 A4 08 0C 04 3F 00 50 15")).sw).toBe("6A82"); // PKCS#15 by path
    expect((await tx(card, "00 CA 01 00 00")).sw).toBe("6D00"); // GET DATA
    expect((await tx(card, "00 84 00 00 08")).sw).toBe("6D00"); // GET CHALLENGE
  });

  it("selects EFs by FID only inside the application, 6A 82 for the unknown", async () => {
    const card = fresh();
    expect((await tx(card, selectEf("000A"))).sw).toBe("6A82"); // still in the MF
    await tx(card, SELECT_JPKI);
    for (const fid of ["0001", "0002", "000A", "000B", "0006", "0008", "0017", "0018", "001A", "001B"]) {
      expect((await tx(card, selectEf(fid))).sw, fid).toBe("9000");
    }
    expect((await tx(card, selectEf("0003"))).sw).toBe("6A82");
    const fcp = await tx(card, "00 A4 02 04 02 00 0A 00");
    expect(fcp.sw).toBe("9000");
    expect(fcp.data.subarray(0, 6).toString("hex")).toBe(`62${(fcp.data.length - 2).toString(16).padStart(2, "0")}8302000a`);
    const fci = await tx(card, "00 A4 02 00 02 00 0A 00");
    expect(fci.data.subarray(0, 6).toString("hex")).toBe(`6f${(fci.data.length - 2).toString(16).padStart(2, "0")}8302000a`);
    expect((await tx(card, "00 A4 02 00 02 00 0A")).data.length).toBe(0); // no Le: selected, no data
  });

  it("reads the token info and the certificates-present EF", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0006"));
    const ti = await tx(card, "00 B0 00 00 00"); // Le 00 = 256, the EF holds 160: a short read
    expect([ti.sw, ti.data.length]).toEqual(["6282", 160]);
    expect(ti.data.subarray(0, 14).toString("latin1")).toBe("JPKIAPICCTOKEN");
    await tx(card, selectEf("0008"));
    expect((await tx(card, "00 B0 00 00 03")).data.toString("hex")).toBe("0f0000");
  });

  it("reads a certificate as clients do: 4 bytes, the DER length, then ≤ 256-byte chunks at offsets", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("000A"));
    const head = await tx(card, "00 B0 00 00 04");
    expect(head.sw).toBe("9000");
    const total = 4 + head.data.readUInt16BE(2);
    expect(total).toBe(certs.authentication.length);
    const parts = [head.data];
    for (let off = 4; off < total; off += 256) {
      const n = Math.min(256, total - off);
      const r = await tx(card, `00 B0 ${(off >> 8).toString(16).padStart(2, "0")} ${(off & 0xff).toString(16).padStart(2, "0")} ${(n & 0xff).toString(16).padStart(2, "0")}`);
      expect(r.sw).toBe("9000");
      parts.push(r.data);
    }
    expect(Buffer.concat(parts).equals(certs.authentication)).toBe(true);
  });

  it("past the end: 6B 00 at or beyond the end, the rest and 62 82 when Ne runs over", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0006")); // 160 bytes
    expect((await tx(card, "00 B0 00 A0 01")).sw).toBe("6B00");
    expect((await tx(card, "00 B0 7F FF 01")).sw).toBe("6B00");
    const tail = await tx(card, "00 B0 00 9C 10");
    expect([tail.sw, tail.data.length]).toEqual(["6282", 4]);
    expect((await tx(card, "00 B0 00 9C 04")).sw).toBe("9000");
    // an extended Le reads the whole EF in one go
    const all = await tx(card, "00 B0 00 00 00 00 00");
    expect([all.sw, all.data.length]).toEqual(["6282", 160]);
  });

  it("the signature certificate needs the signature PIN; keys and PINs are never readable", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 B0 00 00 04")).sw).toBe("6982");
    for (const fid of ["0017", "001A", "0018", "001B"]) {
      await tx(card, selectEf(fid));
      expect((await tx(card, "00 B0 00 00 00")).sw, fid).toBe("6982");
    }
    await tx(card, selectEf("0018"));
    expect((await tx(card, verifyPin(AUTH_PIN))).sw).toBe("9000");
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 B0 00 00 04")).sw).toBe("6982"); // the authentication PIN does not open it
    await tx(card, selectEf("001B"));
    expect((await tx(card, verifyPin(SIG_PIN))).sw).toBe("9000");
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 B0 00 00 04")).sw).toBe("9000");
    for (const fid of ["0017", "001A"]) {
      await tx(card, selectEf(fid));
      expect((await tx(card, "00 B0 00 00 00")).sw, `${fid} after both PINs`).toBe("6982");
    }
  });
});

describe("signing: 80 2A 00 80 <DigestInfo> 00", () => {
  it("refuses before VERIFY, and with the other key's PIN", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, signApdu(sha256Di("x")))).sw).toBe("6982");
    await tx(card, selectEf("0018"));
    expect((await tx(card, verifyPin(AUTH_PIN))).sw).toBe("9000");
    await tx(card, selectEf("001A"));
    expect((await tx(card, signApdu(sha256Di("x")))).sw).toBe("6982"); // the signature key wants the signature PIN
    await tx(card, selectEf("0017"));
    expect((await tx(card, signApdu(sha256Di("x")))).sw).toBe("9000");
  });

  it("signs with each key after its PIN: PKCS#1 v1.5 RSA-2048 that verifies against the key's SPKI", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    await tx(card, verifyPin(SIG_PIN));
    await tx(card, selectEf("001A"));
    const r = await tx(card, signApdu(sha256Di("申請書")));
    expect([r.sw, r.data.length]).toEqual(["9000", 256]);
    const pub = createPublicKey({ key: spki.signature, format: "der", type: "spki" });
    expect(nodeVerify("sha256", Buffer.from("申請書"), pub, r.data)).toBe(true);
    expect(nodeVerify("sha256", Buffer.from("申請書"), createPublicKey({ key: spki.authentication, format: "der", type: "spki" }), r.data)).toBe(false);
    for (const h of ["sha1", "sha384", "sha512"] as const) {
      const di = digestInfo(h, createHash(h).update("doc").digest());
      const s = await tx(card, signApdu(di));
      expect(s.sw, h).toBe("9000");
      expect(nodeVerify(h, Buffer.from("doc"), pub, s.data), h).toBe(true);
    }
  });

  it("answers 6A 80 to anything but an exact DigestInfo", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    await tx(card, verifyPin(SIG_PIN));
    await tx(card, selectEf("001A"));
    const good = sha256Di("x");
    const wrongShapes = [
      createHash("sha256").update("x").digest(), // a bare digest
      good.subarray(0, good.length - 1), // one byte short
      Buffer.concat([good, Buffer.from([0])]), // one byte over
      Buffer.concat([good.subarray(0, 1), Buffer.from([0x32]), good.subarray(2)]), // wrong outer length
      Buffer.concat([Buffer.from("3031300d060960864801650304020405000420", "hex"), createHash("sha256").update("x").digest()]), // SHA-224 OID, SHA-256 length
      Buffer.concat([Buffer.from("302f300b0609608648016503040201", "hex"), Buffer.from("0420", "hex"), createHash("sha256").update("x").digest()]), // no NULL
      new Uint8Array(200).fill(0x30),
    ];
    for (const [i, di] of wrongShapes.entries()) expect((await tx(card, signApdu(di))).sw, `shape ${i}`).toBe("6A80");
    expect((await tx(card, signApdu(good))).sw).toBe("9000");
  });

  it("power-off and reset forget the verified PIN", async () => {
    const card = fresh();
    const prepare = async () => {
      await tx(card, SELECT_JPKI);
      await tx(card, selectEf("001B"));
      await tx(card, verifyPin(SIG_PIN));
      await tx(card, selectEf("001A"));
    };
    await prepare();
    expect((await tx(card, signApdu(sha256Di("a")))).sw).toBe("9000");
    card.reset();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, signApdu(sha256Di("a")))).sw).toBe("6982");
    await prepare();
    card.powerOff();
    card.powerOn();
    expect((await tx(card, signApdu(sha256Di("a")))).sw).toBe("6985"); // no key EF selected after power-on
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001A"));
    expect((await tx(card, signApdu(sha256Di("a")))).sw).toBe("6982");
  });

  it("a PIN blocked or reset since it was verified (by another process on the card file) no longer signs", async () => {
    // Two card objects on one storage, as `jpki card serve` and a second process (or the counter) on one card file.
    const storage = memoryCardStorage(personalised);
    const held = EmulatedCard.open(storage);
    await tx(held, SELECT_JPKI);
    await tx(held, selectEf("001B"));
    expect((await tx(held, verifyPin(SIG_PIN))).sw).toBe("9000");
    await tx(held, selectEf("001A"));
    expect((await tx(held, signApdu(sha256Di("a")))).sw).toBe("9000");
    // someone else guesses five times: the PIN is blocked, and a blocked PIN signs nothing
    const other = EmulatedCard.open(storage);
    await tx(other, SELECT_JPKI);
    await tx(other, selectEf("001B"));
    for (let i = 0; i < 5; i++) await tx(other, verifyPin("GUESS0"));
    expect(other.info().triesLeft.signature).toBe(0);
    expect((await tx(held, signApdu(sha256Di("b")))).sw).toBe("6982");
    // the counter sets a new PIN (the resident forgot it, or reported the card stolen): the old session is void
    const shared = memoryCardStorage(personalised);
    const session = EmulatedCard.open(shared);
    await tx(session, SELECT_JPKI);
    await tx(session, selectEf("001B"));
    expect((await tx(session, verifyPin(SIG_PIN))).sw).toBe("9000");
    EmulatedCard.open(shared).unblockPin(ADMIN, "signature", "NEWPIN77");
    await tx(session, selectEf("001A"));
    expect((await tx(session, signApdu(sha256Di("c")))).sw).toBe("6982");
  });

  it("the sign instruction without a key EF selected is 6985; with a short Le 6700", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    await tx(card, verifyPin(SIG_PIN));
    expect((await tx(card, signApdu(sha256Di("a")))).sw).toBe("6985"); // the PIN EF is current
    await tx(card, selectEf("001A"));
    const di = Buffer.from(sha256Di("a")).toString("hex");
    expect((await tx(card, `80 2A 00 80 33 ${di} 80`)).sw).toBe("6700"); // Le 128 < 256
    expect((await tx(card, `80 2A 00 80 33 ${di}`)).sw).toBe("6700"); // no Le
  });
});

describe("PINs through VERIFY", () => {
  it("the empty VERIFY tells the tries left; the attempt that locks answers 63 C0, then 69 84 (the empty VERIFY 63 C0)", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0018"));
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C3");
    expect((await tx(card, verifyPin("0000"))).sw).toBe("63C2");
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C2");
    expect((await tx(card, verifyPin("1111"))).sw).toBe("63C1");
    expect((await tx(card, verifyPin("2222"))).sw).toBe("63C0");
    expect((await tx(card, verifyPin(AUTH_PIN))).sw).toBe("6984");
    expect((await tx(card, verifyPin("0000"))).sw).toBe("6984");
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C0"); // OpenSC's GET_INFO needs SW1 63
    await tx(card, selectEf("001B"));
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C5"); // the other PIN is untouched
    expect(card.info().triesLeft).toEqual({ signature: 5, authentication: 0, library: 3 });
  });

  it("unblocking needs the municipality's administrative key", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0018"));
    for (const p of ["0000", "0001", "0002"]) await tx(card, verifyPin(p));
    expect(errorCodeOf(() => card.unblockPin(newAdminKey(), "authentication", "5555"))).toBe("ERR_CARD_ADMIN_KEY_WRONG");
    expect(errorCodeOf(() => card.unblockPin(ADMIN, "authentication", "55555"))).toBe("ERR_CARD_PIN_FORMAT");
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C0");
    unblockPin(card, "authentication", "5555", ADMIN);
    expect((await tx(card, "00 20 00 80")).sw).toBe("63C3");
    expect((await tx(card, verifyPin(AUTH_PIN))).sw).toBe("63C2"); // the old PIN is gone
    expect((await tx(card, verifyPin("5555"))).sw).toBe("9000");
  });

  it("CHANGE REFERENCE DATA 00 24 01 80 after VERIFY; a new PIN breaking the rule is 6A 80", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    const change = (pin: string) => `00 24 01 80 ${Buffer.from(pin).length.toString(16).padStart(2, "0")} ${Buffer.from(pin).toString("hex")}`;
    expect((await tx(card, change("NEWPIN77"))).sw).toBe("6982");
    await tx(card, verifyPin(SIG_PIN));
    expect((await tx(card, change("short"))).sw).toBe("6A80");
    expect((await tx(card, change("NEWPIN77"))).sw).toBe("9000");
    card.reset();
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("001B"));
    expect((await tx(card, verifyPin(SIG_PIN))).sw).toBe("63C4");
    expect((await tx(card, verifyPin("NEWPIN77"))).sw).toBe("9000");
  });
});

describe("hostile input gets the right status word", () => {
  it.each([
    ["unknown CLA", "A0 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01", "6E00"],
    ["unknown CLA for a known INS", "80 B0 00 00 04", "6D00"],
    ["unknown INS", "00 FF 00 00", "6D00"],
    ["ISO PSO under CLA 00", "00 2A 9E 9A 02 01 02 00", "6D00"],
    ["too short", "00 A4", "6700"],
    ["Lc disagrees with the data", "00 A4 04 0C 0A D3 92", "6700"],
    ["SELECT EF with a 3-byte FID", "00 A4 02 0C 03 00 00 0A", "6700"],
    ["SELECT with bad P1", "00 A4 05 0C 02 00 0A", "6A86"],
    ["SELECT with bad P2", "00 A4 04 01 0A D3 92 F0 00 26 01 00 00 00 01", "6A86"],
    ["READ BINARY with data", "00 B0 00 00 02 01 02 04", "6700"],
    ["READ BINARY without Le", "00 B0 00 00", "6700"],
    ["READ BINARY by short EF id", "00 B0 81 00 04", "6A86"],
    ["READ BINARY with nothing selected", "00 B0 00 00 04", "6986"],
    ["VERIFY with bad P2", "00 20 00 81 04 31 32 33 34", "6A86"],
    ["VERIFY with no PIN EF selected", "00 20 00 80 04 31 32 33 34", "6986"],
    ["sign with bad P1", "80 2A 9E 9A 02 01 02 00", "6A86"],
    ["UPDATE BINARY on nothing", "00 D6 00 00 01 00", "6986"],
  ])("%s → %s", async (_what, apdu, want) => {
    expect((await tx(fresh(), apdu)).sw).toBe(want);
  });

  it("UPDATE BINARY cannot write a JPKI EF", async () => {
    const card = fresh();
    await tx(card, SELECT_JPKI);
    for (const fid of ["0006", "000A", "0008"]) {
      await tx(card, selectEf(fid));
      expect((await tx(card, "00 D6 00 00 01 00")).sw, fid).toBe("6982");
    }
    await tx(card, selectEf("001B"));
    await tx(card, verifyPin(SIG_PIN));
    await tx(card, selectEf("0001"));
    expect((await tx(card, "00 D6 00 00 01 00")).sw).toBe("6982");
    expect(card.info().certificates.signature).toBe(true);
  });
});

describe("personalisation", () => {
  it("gates every call with the administrative key and refuses a certificate for another key", async () => {
    const card = fresh();
    const other = newAdminKey();
    await expect(card.generateKeyPair(other, "signature")).rejects.toMatchObject({ code: "ERR_CARD_ADMIN_KEY_WRONG" });
    expect(errorCodeOf(() => card.writeCertificate(other, "signatureCa", certs.signatureCa))).toBe("ERR_CARD_ADMIN_KEY_WRONG");
    expect(errorCodeOf(() => card.writeCertificate(ADMIN, "signature", certs.authentication))).toBe("ERR_CARD_CERT_MISMATCH");
    expect(errorCodeOf(() => card.writeCertificate(ADMIN, "signatureCa", Buffer.from("not a certificate")))).toBe("ERR_CARD_CERT_MISMATCH");
    expect(errorCodeOf(() => EmulatedCard.create({ storage: memoryCardStorage(personalised), cardId: "x", adminKey: ADMIN, signaturePin: SIG_PIN, authenticationPin: AUTH_PIN }))).toBe("ERR_CARD_EXISTS");
    expect(errorCodeOf(() => EmulatedCard.create({ storage: memoryCardStorage(), cardId: "x", adminKey: ADMIN, signaturePin: "abc", authenticationPin: AUTH_PIN }))).toBe("ERR_CARD_PIN_FORMAT");
    expect(card.publicKey("signature")!.equals(spki.signature)).toBe(true);
    expect(card.info()).toMatchObject({
      cardId: "card-0001",
      tokenLabel: "JPKIAPICCTOKEN",
      certificates: { signature: true, signatureCa: true, authentication: true, authenticationCa: true },
      keys: { signature: true, authentication: true },
    });
  });

  it("a new key pair replaces the old and takes its certificate away (renewal)", async () => {
    const card = fresh();
    const newSpki = await card.generateKeyPair(ADMIN, "signature");
    expect(newSpki.equals(spki.signature)).toBe(false);
    expect(card.info().certificates).toEqual({ signature: false, signatureCa: true, authentication: true, authenticationCa: true });
    await tx(card, SELECT_JPKI);
    await tx(card, selectEf("0008"));
    expect((await tx(card, "00 B0 00 00 03")).data.toString("hex")).toBe("0e0000");
    await tx(card, selectEf("001B"));
    await tx(card, verifyPin(SIG_PIN));
    await tx(card, selectEf("001A"));
    const s = await tx(card, signApdu(sha256Di("z")));
    const recovered = publicDecrypt({ key: createPublicKey({ key: newSpki, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_PADDING }, s.data);
    expect(recovered.equals(Buffer.from(sha256Di("z")))).toBe(true);
  });
});
