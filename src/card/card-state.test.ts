/**
 * The card's persistent state (issue 12 points 4 and 5): encrypted under the installation's chip secret, bound
 * to the card id, tamper-evident, atomic, shared by two card objects on one file as by two processes.
 */
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { errorCodeOf } from "../../test/error-code.js";
import { parseResponse } from "./apdu.js";
import { cardStorageOf, defaultChipKeyFile, ensureChipKey, fileCardStorage, memoryCardStorage, stateStoreOf } from "./card-state.js";
import { EmulatedCard, newAdminKey } from "./card.js";
import { thisNamespace } from "../store/pid-namespace.js";

const ADMIN = newAdminKey();
let dir: string;
let chipKeyFile: string;
let cardFile: string;
let spki: Buffer;

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
async function sw(card: EmulatedCard, apdu: string): Promise<string> {
  return parseResponse(await card.transmit(hex(apdu)))!.sw.toString(16).toUpperCase();
}
const SELECT_JPKI = "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01";
const SELECT_AUTH_PIN = "00 A4 02 0C 02 00 18";
const WRONG_AUTH_PIN = "00 20 00 80 04 30 30 30 30";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jpki-card-"));
  chipKeyFile = join(dir, "chip", "card-chip.key");
  cardFile = join(dir, "card-0001.card");
  const card = EmulatedCard.create({
    storage: fileCardStorage(cardFile, { chipKeyFile, createChipKey: true }),
    cardId: "card-0001",
    adminKey: ADMIN,
    signaturePin: "SIGPIN2026",
    authenticationPin: "4321",
  });
  spki = await card.generateKeyPair(ADMIN, "authentication");
});

const open = (file = cardFile, key = chipKeyFile) => EmulatedCard.open(fileCardStorage(file, { chipKeyFile: key }));

function copyOf(name: string, mutate?: (b: Buffer) => Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, mutate ? mutate(readFileSync(cardFile)) : readFileSync(cardFile), { mode: 0o600 });
  return p;
}

/** The error `f` throws; a test fails when it accepts instead. */
function failure(f: () => unknown): Error & { code?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error("accepted");
}

/** A new card in a directory of its own (its chip secret beside it), opened, the JPKI application and its authentication PIN selected. */
/**
 * The lock wait of the cards whose tests hold the lock with a holder that never lets go: they prove the card answers
 * 6F 00 once the wait is over, without a try consumed or a lock taken over, which the product's 3 s wait (LOCK_WAIT_MS)
 * proves no better than this one — it cost 3 s a test. (A holder that lets go is never waited for at all.)
 */
const SHORT_LOCK_WAIT = { lockWaitMs: 200 };

async function cardAtAuthPin(name: string, storage: { lockWaitMs?: number } = {}) {
  const own = mkdtempSync(join(tmpdir(), `jpki-card-${name}-`));
  const key = join(own, "chip.key");
  const p = join(own, "c.card");
  EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: `card-${name}`, adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key, ...storage }));
  await sw(card, SELECT_JPKI);
  await sw(card, SELECT_AUTH_PIN);
  return { own, key, p, card };
}

describe("the encrypted card file", () => {
  it("is owner-only, and so is the chip secret and its directory", () => {
    expect(statSync(cardFile).mode & 0o777).toBe(0o600);
    expect(statSync(chipKeyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "chip")).mode & 0o777).toBe(0o700);
    expect(readFileSync(chipKeyFile).length).toBe(32);
  });

  it("holds nothing in the clear but its header", () => {
    const bytes = readFileSync(cardFile);
    const text = bytes.toString("latin1");
    expect(text.startsWith("JPKI-CARD 1 card-0001\n")).toBe(true);
    // none of the state's JSON, so none of its base64 PKCS#8 key, PIN hashes or files
    for (const leak of ['"keys"', '"pins"', '"files"', '"admin"', "JPKIAPICCTOKEN"]) expect(text.includes(leak), leak).toBe(false);
    expect(text.indexOf("card-0001")).toBe(12); // only in the header
    expect(text.lastIndexOf("card-0001")).toBe(12);
  });

  it("reopens with the same key and counters", () => {
    const again = open();
    expect(again.publicKey("authentication")!.equals(spki)).toBe(true);
    expect(again.info().triesLeft.authentication).toBe(3);
  });

  it("refuses any altered byte, a renamed card, and another installation's chip secret (ERR_CARD_STATE_CORRUPT)", () => {
    const size = readFileSync(cardFile).length;
    for (const at of [size - 1, size - 40, 40, 30]) {
      const p = copyOf(`flip-${at}.card`, (b) => {
        b[at] = b[at]! ^ 0x01;
        return b;
      });
      expect(errorCodeOf(() => open(p)), `byte ${at}`).toBe("ERR_CARD_STATE_CORRUPT");
    }
    const renamed = copyOf("renamed.card", (b) => Buffer.from(b.toString("latin1").replace("card-0001", "card-0002"), "latin1"));
    expect(errorCodeOf(() => open(renamed))).toBe("ERR_CARD_STATE_CORRUPT");
    expect(errorCodeOf(() => open(copyOf("truncated.card", (b) => b.subarray(0, 40))))).toBe("ERR_CARD_STATE_CORRUPT");
    const otherKey = join(dir, "other", "chip.key");
    ensureChipKey(otherKey);
    expect(errorCodeOf(() => open(cardFile, otherKey))).toBe("ERR_CARD_STATE_CORRUPT");
  });

  it("needs the chip secret: missing, readable by others, or the wrong size is ERR_CARD_CHIP_KEY_MISSING", () => {
    expect(errorCodeOf(() => open(cardFile, join(dir, "nowhere.key")))).toBe("ERR_CARD_CHIP_KEY_MISSING");
    const loose = join(dir, "loose.key");
    writeFileSync(loose, readFileSync(chipKeyFile));
    chmodSync(loose, 0o644);
    expect(errorCodeOf(() => open(cardFile, loose))).toBe("ERR_CARD_CHIP_KEY_MISSING");
    const short = join(dir, "short.key");
    writeFileSync(short, Buffer.alloc(16), { mode: 0o600 });
    expect(errorCodeOf(() => open(cardFile, short))).toBe("ERR_CARD_CHIP_KEY_MISSING");
    expect(errorCodeOf(() => open(join(dir, "no-such.card")))).toBe("ERR_CARD_MISSING");
  });

  it("sweeps the temporary file a kill -9 mid-write left, and keeps the card it was replacing", () => {
    const stale = join(dir, `.card-0001.card.999999999~@${thisNamespace()}.${"ab".repeat(6)}.tmp`); // a pid above any pid_max
    writeFileSync(stale, "half a card", { mode: 0o600 });
    expect(open().info().cardId).toBe("card-0001");
    expect(readdirSync(dir)).not.toContain(stale.slice(dir.length + 1));
  });

  it("takes the chip secret's path from JPKI_CARD_CHIP_KEY_FILE, else XDG_CONFIG_HOME", () => {
    expect(defaultChipKeyFile({ JPKI_CARD_CHIP_KEY_FILE: "/k" })).toBe("/k");
    expect(defaultChipKeyFile({ XDG_CONFIG_HOME: "/cfg" })).toBe("/cfg/jpki/card-chip.key");
  });

  it("shares one retry counter between two card objects on the file (as between two processes)", async () => {
    const p = copyOf("shared.card");
    const a = open(p);
    const b = open(p);
    for (const c of [a, b]) {
      await sw(c, SELECT_JPKI);
      await sw(c, SELECT_AUTH_PIN);
    }
    expect(await sw(a, WRONG_AUTH_PIN)).toBe("63C2");
    expect(await sw(b, WRONG_AUTH_PIN)).toBe("63C1");
    expect(await sw(a, "00 20 00 80")).toBe("63C1");
    expect(await sw(a, WRONG_AUTH_PIN)).toBe("63C0");
    expect(await sw(b, "00 20 00 80 04 34 33 32 31")).toBe("6984"); // the right PIN, but blocked
    expect(open(p).info().triesLeft.authentication).toBe(0);
    // no temporary files left behind by the atomic writes
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("two processes on one card file", () => {
  it("a VERIFY in one never writes back a stale copy over a key the counter renewed in the other", async () => {
    // its own card and chip secret: copies of card-0001 would be refused as rolled back
    const own = mkdtempSync(join(tmpdir(), "jpki-card-2p-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    const first = EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-2p", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const original = await first.generateKeyPair(ADMIN, "authentication");
    const open2 = () => EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    const serving = open2(); // e.g. jpki card serve
    const counter = open2(); // e.g. jpki card renew
    const renewed = await counter.generateKeyPair(ADMIN, "authentication");
    expect(renewed.equals(original)).toBe(false);
    await sw(serving, SELECT_JPKI);
    expect(serving.publicKey("authentication")!.equals(renewed)).toBe(true); // SELECT of the AP re-reads
    await sw(serving, SELECT_AUTH_PIN);
    await sw(serving, WRONG_AUTH_PIN);
    expect(open2().publicKey("authentication")!.equals(renewed)).toBe(true);
    expect(open2().info().triesLeft.authentication).toBe(2);
  });

  it("a card file removed (or moved away) while one serves it: that one goes mute instead of writing its stale copy back", async () => {
    const { own, key, p, card: serving } = await cardAtAuthPin("gone"); // e.g. jpki card serve, loaded before
    const other = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(other, SELECT_JPKI);
    await sw(other, SELECT_AUTH_PIN);
    for (const left of ["63C2", "63C1", "63C0"]) expect(await sw(other, WRONG_AUTH_PIN)).toBe(left);
    const mutes: string[] = [];
    const watched = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }), { onMute: (why) => mutes.push(why) });
    await sw(watched, SELECT_JPKI);
    await sw(watched, SELECT_AUTH_PIN);
    rmSync(p); // an operator's mv, or anyone who can write the card's directory
    // It held 3 tries from before the other blocked the PIN: it must not answer from them, nor recreate the file with them.
    expect(await sw(serving, "00 20 00 80 04 34 33 32 31")).toBe("6F00");
    expect(await sw(watched, "00 20 00 80")).toBe("6F00");
    expect(mutes).toEqual(["ERR_CARD_MISSING"]);
    expect(readdirSync(own).filter((f) => f.endsWith(".card"))).toEqual([]);
  });
});

describe("two counters issuing onto one card file at once", () => {
  it("the second is refused under the lock instead of replacing the first one's card", () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-create-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    const realStorage = fileCardStorage(p, { chipKeyFile: key, createChipKey: true });
    const real = stateStoreOf(realStorage);
    // The second counter looked before the first one wrote: its unlocked check saw no card.
    let looked = false;
    const late = cardStorageOf({ ...real, where: real.where, exists: () => (looked ? real.exists() : ((looked = true), false)), load: () => real.load(), save: (st) => real.save(st), ...(real.exclusive ? { exclusive: real.exclusive } : {}) });
    EmulatedCard.create({ storage: realStorage, cardId: "first", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    expect(errorCodeOf(() => EmulatedCard.create({ storage: late, cardId: "second", adminKey: ADMIN, signaturePin: "OTHER2026", authenticationPin: "9999" }))).toBe("ERR_CARD_EXISTS");
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().cardId).toBe("first");
  });
});

describe("a card file reached through a symlink", () => {
  it("is written where the link points: the link stays, and the card opens by either name with the same counter", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-link-"));
    const key = join(own, "chip.key");
    mkdirSync(join(own, "srv"));
    const real = join(own, "srv", "alice.card");
    const link = join(own, "alice.card");
    EmulatedCard.create({ storage: fileCardStorage(real, { chipKeyFile: key, createChipKey: true }), cardId: "card-link", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    symlinkSync(real, link);
    const viaLink = EmulatedCard.open(fileCardStorage(link, { chipKeyFile: key, ...SHORT_LOCK_WAIT }));
    await sw(viaLink, SELECT_JPKI);
    await sw(viaLink, SELECT_AUTH_PIN);
    expect(await sw(viaLink, WRONG_AUTH_PIN)).toBe("63C2");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(EmulatedCard.open(fileCardStorage(real, { chipKeyFile: key })).info().triesLeft.authentication).toBe(2);
    // and both names take one lock: a process holding the card by its real name keeps one using the link out
    const ppid = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    writeFileSync(`${real}.lock`, `${process.ppid} ${ppid.slice(ppid.lastIndexOf(")") + 2).split(" ")[19]}`, { mode: 0o600 });
    expect(await sw(viaLink, WRONG_AUTH_PIN)).toBe("6F00");
    rmSync(`${real}.lock`);
    expect(await sw(viaLink, WRONG_AUTH_PIN)).toBe("63C1");
  });
});

describe("something else where the card file should be", () => {
  it("a FIFO put there while the card is in use: the card goes mute instead of hanging in the read", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-fifo-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-fifo", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const said: string[] = [];
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }), { onMute: (why) => said.push(why) });
    rmSync(p);
    execFileSync("mkfifo", ["-m", "600", p]);
    expect(await sw(card, SELECT_JPKI)).toBe("6F00");
    expect(said).toEqual(["ERR_FILE_UNUSABLE"]);
    expect(errorCodeOf(() => EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })))).toBe("ERR_FILE_UNUSABLE");
  });

  it("a FIFO where the chip secret should be is refused, not waited on", () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-chip-fifo-"));
    const key = join(own, "chip.key");
    execFileSync("mkfifo", ["-m", "600", key]);
    expect(errorCodeOf(() => fileCardStorage(join(own, "c.card"), { chipKeyFile: key }))).toBe("ERR_CARD_CHIP_KEY_MISSING");
  });
});

describe("temporary files a killed write left", () => {
  // as this version names them (store/staging.ts tempPathFor): the pid in this PID namespace
  const tmpName = (base: string, pid: number, n: number) => `.${base}.${pid}~@${thisNamespace()}.${n.toString(16).padStart(12, "0")}.tmp`;
  const ppidLock = () => {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    return `${process.ppid} ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
  };

  it("are removed at the next open, whatever pid they name, and never taken as the card's state", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-leftover-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-lo", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const earlier = readFileSync(p);
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    // Writes killed before their rename: one by a pid that no longer runs, one whose pid now belongs to a live,
    // unrelated process (vitest's parent stands in), one naming this very process (a container's pid 1 restarted).
    // Each holds a whole, valid, earlier state of the card.
    const leftovers = [tmpName("c.card", 2147483646, 1), tmpName("c.card", process.ppid, 2), tmpName("c.card", process.pid, 3)];
    for (const n of leftovers) writeFileSync(join(own, n), earlier, { mode: 0o600 });
    // not the card's: another file's temporary (its own writer sweeps it) and a look-alike name
    const others = [tmpName("notes.txt", 2147483646, 4), ".c.card.backup"];
    for (const n of others) writeFileSync(join(own, n), "not the card's", { mode: 0o600 });
    const again = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    expect(again.info().triesLeft.authentication).toBe(2); // the card file's state, not a leftover's
    const names = readdirSync(own);
    for (const n of leftovers) expect(names, n).not.toContain(n);
    for (const n of others) expect(names, n).toContain(n);
    expect(names.filter((n) => n.endsWith(".lock"))).toEqual([]); // the lock taken for the sweep was let go
  });

  it("while another live process holds the card's lock, only those of processes that no longer run go", () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-leftover-busy-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-lob", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    writeFileSync(`${p}.lock`, ppidLock(), { mode: 0o600 });
    const dead = tmpName("c.card", 2147483646, 1);
    const live = tmpName("c.card", process.ppid, 2); // the holder may be writing it right now
    const deadLock = tmpName("c.card.lock", 2147483646, 3);
    for (const n of [dead, live, deadLock]) writeFileSync(join(own, n), "half a card", { mode: 0o600 });
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().cardId).toBe("card-lob");
    const names = readdirSync(own);
    expect(names).not.toContain(dead);
    expect(names).not.toContain(deadLock);
    expect(names).toContain(live);
    expect(readFileSync(`${p}.lock`, "utf8")).toBe(ppidLock()); // the holder's lock untouched
  });

  it("a killed write of the rollback record leaves a temporary file that the card's next save removes", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-leftover-rec-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-lor", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const recDir = join(own, "card-rollback");
    const dead = tmpName("card-lor", 2147483646, 1);
    writeFileSync(join(recDir, dead), "7\n", { mode: 0o600 });
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    expect(readdirSync(recDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect(readFileSync(join(recDir, "card-lor"), "latin1")).toMatch(/^[0-9]+ [0-9a-f]{64}\n$/);
  });
});

describe("a card file with a second name (a hard link)", () => {
  it("is neither opened nor written: ERR_CARD_FILE_LINKED names the file, and the other name's bytes stay as they were", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-hardlink-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-hl", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const said: string[] = [];
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }), { onMute: (why) => said.push(why) });
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    // someone with write access to a directory on the same filesystem gives the card file a name of theirs
    const other = join(own, "theirs");
    linkSync(p, other);
    const theirs = readFileSync(other);
    let e: unknown;
    try {
      EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    } catch (x) {
      e = x;
    }
    expect((e as { code?: string }).code).toBe("ERR_CARD_FILE_LINKED");
    expect((e as Error).message).toContain(`the card file ${p} has 2 names`);
    // the card already open: its next VERIFY re-reads the file, finds the second name, and goes mute
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(said).toEqual(["ERR_CARD_FILE_LINKED"]);
    expect(readFileSync(other).equals(theirs)).toBe(true);
    expect(readFileSync(p).equals(theirs)).toBe(true);
    // a save on its own (the card's store, as at issuance) is refused too
    const store = stateStoreOf(fileCardStorage(p, { chipKeyFile: key }));
    rmSync(other);
    const state = store.load();
    linkSync(p, other);
    expect(errorCodeOf(() => store.save(state))).toBe("ERR_CARD_FILE_LINKED");
    expect(readFileSync(p).equals(theirs)).toBe(true);
    // once the other name is gone the card works, and no try went
    rmSync(other);
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().triesLeft.authentication).toBe(3);
  });
});

describe("a chip secret or a rollback record with a second name (a hard link)", () => {
  const setUp = async (name: string) => {
    const { own, key, p, card } = await cardAtAuthPin(name);
    return { own, key, p, card, record: join(own, "card-rollback", `card-${name}`) };
  };

  it("the chip secret: no card is opened under it (ERR_CARD_FILE_LINKED, naming it, never its bytes)", async () => {
    const { own, key, p } = await setUp("chiplink");
    const other = join(own, "theirs.key");
    linkSync(key, other);
    const e = failure(() => fileCardStorage(p, { chipKeyFile: key }));
    expect(e.code).toBe("ERR_CARD_FILE_LINKED");
    expect(e.message).toContain(`the card chip secret ${key} has 2 names`);
    const secret = readFileSync(key);
    for (const enc of ["hex", "base64", "latin1"] as const) expect(e.message.includes(secret.toString(enc))).toBe(false);
    rmSync(other);
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().cardId).toBe("card-chiplink");
  });

  it("the chip secret's own creator's temporary name is no second name: a live one's is counted out, a killed one's removed", async () => {
    const { own, key, p } = await setUp("chiptmp");
    const tmpName = (pid: number) => join(own, `.chip.key.${pid}~@${thisNamespace()}.${"cd".repeat(6)}.tmp`);
    // ensureChipKey links its temporary file into place, then removes it: a reader in between sees both names
    const live = tmpName(process.pid);
    linkSync(key, live);
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().cardId).toBe("card-chiptmp");
    rmSync(live);
    const killed = tmpName(2147483646); // a creator killed between the link and the removal
    linkSync(key, killed);
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().cardId).toBe("card-chiptmp");
    expect(readdirSync(own)).not.toContain(killed.slice(own.length + 1));
  });

  it("the rollback record: the card is neither opened nor written, and the other name's bytes stay as they were", async () => {
    const { own, key, p, card, record } = await setUp("reclink");
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    const other = join(own, "their-record");
    linkSync(record, other);
    const theirs = readFileSync(other);
    const e = failure(() => EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })));
    expect(e.code).toBe("ERR_CARD_FILE_LINKED");
    expect(e.message).toContain(`the rollback record ${record} has 2 names`);
    // the card already open: its next VERIFY re-reads the record, and goes mute rather than count past it
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(readFileSync(other).equals(theirs)).toBe(true);
    expect(readFileSync(record).equals(theirs)).toBe(true);
    rmSync(other);
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().triesLeft.authentication).toBe(2);
  });
});

describe("a card id used twice on one installation", () => {
  it("the second card is refused, and the first one keeps working (its rollback record is not overtaken)", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-dupid-"));
    const key = join(own, "chip.key");
    const first = join(own, "a.card");
    EmulatedCard.create({ storage: fileCardStorage(first, { chipKeyFile: key, createChipKey: true }), cardId: "dup-01", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const a = EmulatedCard.open(fileCardStorage(first, { chipKeyFile: key }));
    await sw(a, SELECT_JPKI);
    await sw(a, SELECT_AUTH_PIN);
    expect(await sw(a, "00 20 00 80 04 34 33 32 31")).toBe("9000");
    // The clerk types the same --card-id for the next resident's card, in another file.
    expect(errorCodeOf(() => EmulatedCard.create({ storage: fileCardStorage(join(own, "b.card"), { chipKeyFile: key }), cardId: "dup-01", adminKey: ADMIN, signaturePin: "OTHER2026", authenticationPin: "9999" }))).toBe("ERR_CARD_EXISTS");
    expect(readdirSync(own)).not.toContain("b.card");
    expect(EmulatedCard.open(fileCardStorage(first, { chipKeyFile: key })).info().cardId).toBe("dup-01");
    expect(await sw(a, WRONG_AUTH_PIN)).toBe("63C2");
  });
});

describe("two VERIFYs at once on one card file", () => {
  it("never both count from the same retry counter: every wrong answer costs a try", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-race-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-race", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    // Process B's VERIFY lands between process A's read of the counter and its write: run B's right after A's load.
    const b = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(b, SELECT_JPKI);
    await sw(b, SELECT_AUTH_PIN);
    const fileA = stateStoreOf(fileCardStorage(p, { chipKeyFile: key }));
    let inB: Promise<Uint8Array> | undefined;
    let armed = false;
    const racing = cardStorageOf({
      where: fileA.where,
      exists: fileA.exists,
      save: (s) => fileA.save(s),
      load: () => {
        const st = fileA.load();
        if (armed) {
          armed = false;
          inB = b.transmit(hex(WRONG_AUTH_PIN));
        }
        return st;
      },
      ...(fileA.exclusive ? { exclusive: fileA.exclusive } : {}),
    });
    const a = EmulatedCard.open(racing);
    await sw(a, SELECT_JPKI);
    await sw(a, SELECT_AUTH_PIN);
    armed = true;
    const answerA = await sw(a, WRONG_AUTH_PIN);
    const answerB = parseResponse(await inB!)!.sw.toString(16).toUpperCase();
    const wrongAnswers = [answerA, answerB].filter((w) => /^63C/.test(w)).length;
    expect(answerA).toBe("63C2");
    // B either waited for A (not possible inside one thread) or refused (6F 00) — but never answered "wrong" for free.
    expect(3 - EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().triesLeft.authentication!).toBe(wrongAnswers);
    expect(readdirSync(own).filter((f) => f.endsWith(".lock"))).toEqual([]);
  });

  it("answers 6F 00 while a live process holds the lock, and works again once it lets go (not mute)", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-busy-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-busy", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key, ...SHORT_LOCK_WAIT }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    // the parent process (vitest's) is alive: a holder that does not let go
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    writeFileSync(`${p}.lock`, `${process.ppid} ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`, { mode: 0o600 });
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().triesLeft.authentication).toBe(3);
    rmSync(`${p}.lock`);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
  });

  it("a directory or a FIFO where the lock file goes: VERIFY answers 6F 00 after the wait instead of spinning or blocking for ever", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-lockdir-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-lockdir", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    mkdirSync(`${p}.lock`);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key })).info().triesLeft.authentication).toBe(3);
    rmSync(`${p}.lock`, { recursive: true });
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    // a FIFO there: reading the holder from it must not wait for a writer that never comes
    execFileSync("mkfifo", ["-m", "600", `${p}.lock`]);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    rmSync(`${p}.lock`);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C1");
  });

  it("takes over the lock a killed process left (a dead pid, or our own pid from an earlier run)", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-lock-"));
    const key = join(own, "chip.key");
    const p = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(p, { chipKeyFile: key, createChipKey: true }), cardId: "card-lock", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const card = EmulatedCard.open(fileCardStorage(p, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    for (const leftover of ["2147483646 1", `${process.pid} 1`]) {
      writeFileSync(`${p}.lock`, leftover, { mode: 0o600 });
      expect(await sw(card, WRONG_AUTH_PIN)).toMatch(/^63C/);
      expect(readdirSync(own).filter((f) => f.endsWith(".lock"))).toEqual([]);
    }
  });
});

describe("the card lock's takeover marker", () => {
  const setUp = async (name: string, storage: { lockWaitMs?: number } = {}) => {
    const { own, p, card } = await cardAtAuthPin(name, storage);
    // a holder killed while it held the card's lock
    writeFileSync(`${p}.lock`, "2147483646 1", { mode: 0o600 });
    return { own, p, card, marker: `${p}.lock.takeover` };
  };

  it("left by a taker killed in the middle of a takeover: cleared at once, the card answers at the next command", async () => {
    const { own, p, card, marker } = await setUp("killedtaker");
    // a dead taker, then a leftover naming this very process (an earlier run with our pid, as pid 1 in a container)
    for (const [taker, want] of [["2147483645 1", "63C2"], [`${process.pid} 1`, "63C1"]] as const) {
      writeFileSync(marker, taker, { mode: 0o600 });
      expect(await sw(card, WRONG_AUTH_PIN)).toBe(want);
      expect(readdirSync(own).filter((f) => f.includes(".lock"))).toEqual([]);
      writeFileSync(`${p}.lock`, "2147483646 1", { mode: 0o600 }); // and its holder killed again
    }
  });

  it("of a live taker is never removed, however old it is: the card waits for it, then answers 6F 00", async () => {
    const { p, card, marker } = await setUp("slowtaker", SHORT_LOCK_WAIT);
    const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    const live = `${process.ppid} ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
    writeFileSync(marker, live, { mode: 0o600 });
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(marker, hourAgo, hourAgo);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(readFileSync(marker, "utf8")).toBe(live);
    expect(readFileSync(`${p}.lock`, "utf8")).toBe("2147483646 1"); // the dead holder's lock: not taken past the taker
    rmSync(marker); // the slow taker finishes
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
  });

  it("a directory there (what an earlier jpki made) is said at once and left alone, not removed for its age", async () => {
    const { p, card, marker } = await setUp("markerdir");
    mkdirSync(marker);
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    utimesSync(marker, twoMinutesAgo, twoMinutesAgo);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(statSync(marker).isDirectory()).toBe(true);
    expect(readFileSync(`${p}.lock`, "utf8")).toBe("2147483646 1");
    rmSync(marker, { recursive: true }); // as the message says
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
  });
});

describe("rollback", () => {
  it("putting an earlier copy of the card file back is refused: used-up tries do not come back", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-rb-"));
    const key = join(own, "chip.key");
    const file = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile: key, createChipKey: true }), cardId: "card-rb", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const before = readFileSync(file);
    const card = EmulatedCard.open(fileCardStorage(file, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    writeFileSync(file, before);
    expect(errorCodeOf(() => EmulatedCard.open(fileCardStorage(file, { chipKeyFile: key })))).toBe("ERR_CARD_STATE_CORRUPT");
    // the card already open notices too, at its next VERIFY: it goes mute rather than hand the try back
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    expect(statSync(join(own, "card-rollback", "card-rb")).mode & 0o777).toBe(0o600);
  });
});

describe("an authenticated rollback record", () => {
  const setUp = async (name: string, key?: string) => {
    const own = mkdtempSync(join(tmpdir(), `jpki-card-${name}-`));
    const chip = key ?? join(own, "chip.key");
    const file = join(own, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile: chip, createChipKey: true }), cardId: `card-${name}`, adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const before = readFileSync(file);
    const card = EmulatedCard.open(fileCardStorage(file, { chipKeyFile: chip }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    const openIt = () => EmulatedCard.open(fileCardStorage(file, { chipKeyFile: chip }));
    return { own, chip, file, before, card, openIt, record: join(dirname(chip), "card-rollback", `card-${name}`), legacy: join(dirname(chip), "card-generations", `card-${name}`) };
  };

  it("an edited generation does not authenticate: an earlier copy put back stays refused, and the message holds no secret", async () => {
    const { chip, file, before, openIt, record } = await setUp("rbmac");
    const text = readFileSync(record, "latin1");
    const [gen, mac] = text.trim().split(" ");
    expect(Number(gen)).toBeGreaterThan(1);
    // the guesser puts yesterday's card back and sets the record's generation down to it, keeping the MAC
    writeFileSync(file, before);
    for (const forged of [`1 ${mac}\n`, `0 ${mac}\n`, `${gen} ${"0".repeat(64)}\n`, `${gen}\n`, "0\n"]) {
      writeFileSync(record, forged, { mode: 0o600 });
      const e = failure(openIt);
      expect(e.code, JSON.stringify(forged)).toBe("ERR_CARD_ROLLBACK_RECORD_DAMAGED");
      expect(e.message).toContain(`the rollback record ${record} of card card-rbmac`);
      const secret = readFileSync(chip);
      for (const enc of ["hex", "base64", "latin1"] as const) expect(e.message.includes(secret.toString(enc))).toBe(false);
    }
  });

  it("another card's record, or another installation's for the same card id, does not authenticate", async () => {
    const a = await setUp("rbcopy");
    // a second card of the same installation, written more often than the first
    const bFile = join(a.own, "b.card");
    EmulatedCard.create({ storage: fileCardStorage(bFile, { chipKeyFile: a.chip }), cardId: "card-rbcopy-b", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const b = EmulatedCard.open(fileCardStorage(bFile, { chipKeyFile: a.chip }));
    await sw(b, SELECT_JPKI);
    await sw(b, SELECT_AUTH_PIN);
    expect(await sw(b, WRONG_AUTH_PIN)).toBe("63C2");
    expect(await sw(b, WRONG_AUTH_PIN)).toBe("63C1");
    const latest = readFileSync(a.file);
    writeFileSync(a.record, readFileSync(join(a.own, "card-rollback", "card-rbcopy-b")), { mode: 0o600 });
    expect(errorCodeOf(a.openIt)).toBe("ERR_CARD_ROLLBACK_RECORD_DAMAGED");
    // the same card id on another installation: its record, made under another chip secret, is no record here
    const other = mkdtempSync(join(tmpdir(), "jpki-card-rbother-"));
    const otherKey = join(other, "chip.key");
    const twin = join(other, "c.card");
    EmulatedCard.create({ storage: fileCardStorage(twin, { chipKeyFile: otherKey, createChipKey: true }), cardId: "card-rbcopy", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    writeFileSync(a.record, readFileSync(join(other, "card-rollback", "card-rbcopy")), { mode: 0o600 });
    expect(errorCodeOf(a.openIt)).toBe("ERR_CARD_ROLLBACK_RECORD_DAMAGED");
    // recovery as the message says: the latest card file in place, the record removed
    writeFileSync(a.file, latest);
    rmSync(a.record);
    expect(a.openIt().info().triesLeft.authentication).toBe(2);
  });

  it("the previous release's bare record opens the card once, holds it to that generation, and is replaced at its next change; a bare one put back then counts for nothing", async () => {
    const { own, file, before, openIt, record, legacy } = await setUp("rblegacy");
    // the card as the previous release left it: `card-generations/<card id>` holding the generation, no MAC
    const [gen] = readFileSync(record, "latin1").trim().split(" ");
    rmSync(join(own, "card-rollback"), { recursive: true });
    mkdirSync(join(own, "card-generations"), { mode: 0o700 });
    writeFileSync(legacy, `${gen}\n`, { mode: 0o600 });
    const latest = readFileSync(file);
    // still a rollback record: an earlier copy is refused by it
    writeFileSync(file, before);
    expect(errorCodeOf(openIt)).toBe("ERR_CARD_STATE_CORRUPT");
    writeFileSync(file, latest);
    const card = openIt();
    expect(card.info().triesLeft.authentication).toBe(2);
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C1");
    // rewritten authenticated, one generation on; the bare record gone
    const [now] = readFileSync(record, "latin1").trim().split(" ");
    expect(readFileSync(record, "latin1")).toMatch(/^[0-9]+ [0-9a-f]{64}\n$/);
    expect(Number(now)).toBe(Number(gen) + 1);
    expect(readdirSync(join(own, "card-generations"))).toEqual([]);
    // the way down: a bare 0 put back where the previous release read it, beside the authenticated record, with an
    // earlier copy of the card. The bare record is not read any more, so the copy is still refused as rolled back.
    writeFileSync(legacy, "0\n", { mode: 0o600 });
    writeFileSync(file, latest);
    expect(errorCodeOf(openIt)).toBe("ERR_CARD_STATE_CORRUPT");
  });
});

describe("a damaged rollback record", () => {
  it("is an error, not generation 0: an earlier copy put back is still refused, and removing the record (the recovery the message gives) opens the card", async () => {
    const own = mkdtempSync(join(tmpdir(), "jpki-card-rbdamaged-"));
    const key = join(own, "chip.key");
    const file = join(own, "c.card");
    const record = join(own, "card-rollback", "card-rbd");
    EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile: key, createChipKey: true }), cardId: "card-rbd", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const before = readFileSync(file);
    const card = EmulatedCard.open(fileCardStorage(file, { chipKeyFile: key }));
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    expect(readFileSync(record, "latin1")).toMatch(/^[0-9]+ [0-9a-f]{64}\n$/);
    const latest = readFileSync(file);
    const openIt = () => EmulatedCard.open(fileCardStorage(file, { chipKeyFile: key }));
    // the guesser puts yesterday's card back and spoils the record (or a disk error did)
    writeFileSync(file, before);
    for (const junk of ["", "x\n", "-1\n", "1.5\n", "Infinity\n", "\u0000\u0000\u0000", "9".repeat(40)]) {
      writeFileSync(record, junk, { mode: 0o600 });
      let e: unknown;
      try {
        openIt();
      } catch (x) {
        e = x;
      }
      expect((e as { code?: string }).code, JSON.stringify(junk)).toBe("ERR_CARD_ROLLBACK_RECORD_DAMAGED");
      expect((e as Error).message).toContain(`the rollback record ${record} of card card-rbd`);
      expect((e as Error).message).toContain(`remove ${record}`);
    }
    // something else where the record goes: a directory
    rmSync(record);
    mkdirSync(record);
    expect(errorCodeOf(openIt)).toBe("ERR_CARD_ROLLBACK_RECORD_DAMAGED");
    rmSync(record, { recursive: true });
    // the card already open: its next VERIFY goes mute rather than count from an unchecked state
    writeFileSync(file, latest);
    writeFileSync(record, "garbage\n", { mode: 0o600 });
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    // recovery: the operator, the latest card file in place, removes the record; the card opens where it was and
    // records its generation again at its next change
    rmSync(record);
    const again = openIt();
    expect(again.info().triesLeft.authentication).toBe(2);
    await sw(again, SELECT_JPKI);
    await sw(again, SELECT_AUTH_PIN);
    expect(await sw(again, WRONG_AUTH_PIN)).toBe("63C1");
    expect(readFileSync(record, "latin1")).toMatch(/^[0-9]+ [0-9a-f]{64}\n$/);
    writeFileSync(file, latest);
    expect(errorCodeOf(openIt)).toBe("ERR_CARD_STATE_CORRUPT"); // rollback detection is back
  });
});

describe("persist before answering", () => {
  it("a VERIFY whose counter cannot be written answers 6F 00 and the card goes mute: no try is won back", async () => {
    const baseStorage = memoryCardStorage();
    const base = stateStoreOf(baseStorage);
    EmulatedCard.create({ storage: baseStorage, cardId: "c", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    let failing = false;
    const flaky = cardStorageOf({ where: "flaky", exists: base.exists, load: base.load, save: (s) => (failing ? (() => { throw new Error("disk full"); })() : base.save(s)) });
    const card = EmulatedCard.open(flaky);
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("63C2");
    failing = true;
    expect(await sw(card, WRONG_AUTH_PIN)).toBe("6F00");
    failing = false;
    // the stored counter never went up, and the mute card answers nothing until reopened
    expect(await sw(card, "00 20 00 80")).toBe("6F00");
    expect(await sw(card, "00 20 00 80 04 34 33 32 31")).toBe("6F00");
    expect(EmulatedCard.open(baseStorage).info().triesLeft.authentication).toBe(2);
  });

  it("says once that it went mute, and why (an error code: nothing that passed through it)", async () => {
    const baseStorage = memoryCardStorage();
    const base = stateStoreOf(baseStorage);
    EmulatedCard.create({ storage: baseStorage, cardId: "c", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const flaky = cardStorageOf({ where: "flaky", exists: base.exists, load: base.load, save: () => { throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" }); } });
    const said: string[] = [];
    const card = EmulatedCard.open(flaky, { onMute: (why) => said.push(why) });
    await sw(card, SELECT_JPKI);
    await sw(card, SELECT_AUTH_PIN);
    expect(await sw(card, "00 20 00 80 04 34 33 32 31")).toBe("6F00");
    expect(await sw(card, "00 20 00 80 04 34 33 32 31")).toBe("6F00");
    expect(said).toEqual(["ENOSPC"]);
  });

  it("a card that cannot record the attempt does not judge it: the right PIN answers 6F 00 as a wrong one does", async () => {
    // Otherwise a full disk is an oracle: every wrong guess 6F 00 without costing a try, the right one 90 00 —
    // and `jpki card sign` opens the card afresh (not mute) at every run.
    const baseStorage = memoryCardStorage();
    const base = stateStoreOf(baseStorage);
    EmulatedCard.create({ storage: baseStorage, cardId: "c", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
    const flaky = cardStorageOf({ where: "flaky", exists: base.exists, load: base.load, save: () => { throw new Error("ENOSPC"); } });
    const answers: string[] = [];
    for (const pin of ["00 20 00 80 04 34 33 32 31", WRONG_AUTH_PIN]) {
      const card = EmulatedCard.open(flaky);
      await sw(card, SELECT_JPKI);
      await sw(card, SELECT_AUTH_PIN);
      answers.push(await sw(card, pin));
    }
    expect(answers).toEqual(["6F00", "6F00"]);
    expect(EmulatedCard.open(baseStorage).info().triesLeft.authentication).toBe(3);
  });
});
