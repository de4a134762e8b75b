/**
 * Hostile input at scale (issue 12 point 9): 100,000 APDUs — fully random byte strings and structure-aware
 * commands (the card's own CLA/INS/P1/P2 values, AIDs, FIDs, wrong PINs, DigestInfos, extended lengths) mixed
 * with resets — thrown at a card holding two RSA-2048 keys. Every answer must be a response APDU ending in a
 * status word of the card's table (never 6F 00, the fault word), and the state must hold: retry counters never go
 * up, the PIN records, keys and files never change (no PIN is ever guessed, so nothing may be written).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { CommandApdu, parseResponse } from "./apdu.js";
import { memoryCardStorage, stateStoreOf, type CardState, type CardStorage } from "./card-state.js";
import { EmulatedCard, newAdminKey } from "./card.js";
import { digestInfo, JPKI_AID } from "./jpki-app.js";
import { LIBRARY_AID } from "./library-app.js";
import { PIN_IDS } from "./pin.js";
import { isCardStatusWord, SW } from "./status-words.js";

const ADMIN = newAdminKey();
const PINS = { signature: "SIGPIN2026", authentication: "4321", library: "2468" };
let personalised: CardState;

beforeAll(async () => {
  const storage = memoryCardStorage();
  const card = EmulatedCard.create({ storage, cardId: "card-fc", adminKey: ADMIN, signaturePin: PINS.signature, authenticationPin: PINS.authentication, libraryPin: PINS.library });
  await card.generateKeyPair(ADMIN, "signature");
  await card.generateKeyPair(ADMIN, "authentication");
  card.writeApplicationFile(ADMIN, { application: "library", fid: 0x0001, data: Buffer.from("library") });
  personalised = stateStoreOf(storage).load();
});

const byte = fc.integer({ min: 0, max: 255 });
const fids = [0x0001, 0x0002, 0x0003, 0x0006, 0x0008, 0x000a, 0x000b, 0x0010, 0x0017, 0x0018, 0x001a, 0x001b, 0x3f00];
const wrongPin = fc
  .oneof(fc.stringMatching(/^[0-9]{4}$/), fc.stringMatching(/^[A-Z0-9]{6,16}$/), fc.string({ maxLength: 20 }))
  .filter((s) => !Object.values(PINS).includes(s))
  .map((s) => Buffer.from(s, "utf8"));
const data = fc.oneof(
  fc.constant(JPKI_AID),
  fc.constant(LIBRARY_AID),
  fc.constantFrom(...fids).map((f) => Uint8Array.from([f >> 8, f & 0xff])),
  wrongPin,
  fc.constantFrom("sha1", "sha256", "sha384", "sha512").chain((h) => fc.uint8Array({ minLength: 0, maxLength: 70 }).map((d) => {
    const len = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[h as "sha1"];
    const digest = d.length >= len ? d.subarray(0, len) : Uint8Array.from([...d, ...new Uint8Array(len - d.length)]);
    return digestInfo(h as "sha256", digest);
  })),
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
);
const structured = fc
  .record({
    cla: fc.oneof(fc.constantFrom(0x00, 0x80), byte),
    ins: fc.oneof(fc.constantFrom(0xa4, 0xb0, 0xd6, 0x20, 0x24, 0x2a), byte),
    p1: fc.oneof(fc.constantFrom(0x00, 0x01, 0x02, 0x04, 0x08, 0x80), byte),
    p2: fc.oneof(fc.constantFrom(0x00, 0x0c, 0x80, 0xa0), byte),
    data: fc.option(data, { nil: undefined }),
    ne: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 256 }), fc.constant(65536)),
    extended: fc.boolean(),
  })
  .map((c) => ({ kind: "apdu" as const, bytes: new CommandApdu(c).encode() }));
/** The card's own commands, well formed, so sequences reach the deep states (an EF selected, then read or written). */
const apdu = (cla: number, ins: number, p1: number, p2: number, data?: Uint8Array, ne = 0) => new CommandApdu({ cla, ins, p1, p2, ...(data ? { data } : {}), ne }).encode();
const offset = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0x7fff }));
const wellFormed = fc
  .oneof(
    fc.constantFrom(JPKI_AID, LIBRARY_AID).map((aid) => apdu(0x00, 0xa4, 0x04, 0x0c, aid)),
    fc.constantFrom(...fids).map((f) => apdu(0x00, 0xa4, 0x02, 0x0c, Uint8Array.from([f >> 8, f & 0xff]))),
    fc.tuple(offset, fc.integer({ min: 1, max: 256 })).map(([o, n]) => apdu(0x00, 0xb0, o >> 8, o & 0xff, undefined, n)),
    fc.tuple(fc.integer({ min: 0, max: 200 }), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([o, d]) => apdu(0x00, 0xd6, o >> 8, o & 0xff, d)),
    fc.option(wrongPin, { nil: undefined }).map((pin) => apdu(0x00, 0x20, 0x00, 0x80, pin)),
    wrongPin.map((pin) => apdu(0x00, 0x24, 0x01, 0x80, pin)),
    data.map((d) => apdu(0x80, 0x2a, 0x00, 0x80, d.length ? d : undefined, 256)),
  )
  .map((bytes) => ({ kind: "apdu" as const, bytes }));
const random = fc.uint8Array({ minLength: 0, maxLength: 270 }).map((bytes) => ({ kind: "apdu" as const, bytes }));
const power = fc.constantFrom({ kind: "reset" as const }, { kind: "cycle" as const });
const step = fc.oneof({ weight: 5, arbitrary: wellFormed }, { weight: 3, arbitrary: structured }, { weight: 2, arbitrary: random }, { weight: 1, arbitrary: power });

const RUNS = 1000;
const STEPS = 100; // 1,000 sequences of 100 steps: 100,000 commands

function snapshot(s: CardState) {
  return { keys: JSON.stringify(s.keys), files: JSON.stringify(s.files), admin: JSON.stringify(s.admin), pinHashes: PIN_IDS.map((id) => s.pins[id]?.hash) };
}

describe("100,000 random APDUs", () => {
  it("never crash the card, always end in a known status word, and never change its state", async () => {
    const before = snapshot(personalised);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: STEPS, maxLength: STEPS }), async (steps) => {
        const storage: CardStorage = memoryCardStorage(personalised);
        const card = EmulatedCard.open(storage);
        let tries = card.info().triesLeft;
        for (const s of steps) {
          if (s.kind === "reset") {
            card.reset();
            continue;
          }
          if (s.kind === "cycle") {
            card.powerOff();
            card.powerOn();
            continue;
          }
          sent++;
          const raw = await card.transmit(s.bytes);
          const r = parseResponse(raw);
          // plain checks in the loop (expect() costs more than the card does); fast-check reports the sequence
          if (!r) throw new Error("no status word");
          if (!isCardStatusWord(r.sw) || r.sw === SW.NO_DIAGNOSIS) throw new Error(`status word ${r.sw.toString(16)}`);
          // no signature without a PIN, so no answer carries more than a chunk of a readable EF
          if (r.data.length > 256) throw new Error(`${r.data.length} bytes of data`);
          if (s.bytes[1] !== 0x20 && s.bytes[1] !== 0x24) continue; // only VERIFY and CHANGE REFERENCE DATA touch counters
          const now = card.info().triesLeft;
          for (const id of PIN_IDS) if (now[id]! > tries[id]!) throw new Error(`the ${id} counter went up`);
          tries = now;
        }
        const end = card.info().triesLeft;
        for (const id of PIN_IDS) if (end[id]! > tries[id]!) throw new Error(`the ${id} counter went up`);
        expect(snapshot(stateStoreOf(storage).load())).toEqual(before);
      }),
      { numRuns: RUNS, seed: Number(process.env.FC_SEED ?? 20261201) },
    );
    expect(sent).toBeGreaterThan(RUNS * STEPS * 0.85);
  });
});
