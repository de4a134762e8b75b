/**
 * Races between processes on one card file, made deterministic by wrapping node:fs so the other process acts at
 * the worst moment:
 * - a reader racing a writer (`jpki card serve` selecting the application while the counter renews a
 *   certificate, `jpki card info` during a VERIFY). Readers take no lock, so the load must not mistake the
 *   writer's progress for a rollback; the writer's save lands after the reader has read the card file's bytes,
 *   before it reads the generation record.
 * - two counters issuing the installation's first card at once: the second must find no chip secret or a whole
 *   one, never the file the first has made but not yet written (a kill -9 there would leave it empty for good).
 * - two processes taking over the lock a killed one left: the second must not remove the lock the first has
 *   just made, or both hold it and each counts a PIN try from the same counter.
 * - two processes clearing the takeover marker a killed taker left: the second must not remove the marker the
 *   first has just made (then both would take over the lock at once).
 * - the wall clock stepped while a VERIFY waits for another process's lock.
 * - two counters creating cards under one card id in two files at once: one of them is refused, or the two
 *   files share one rollback record and the first card written to is refused as rolled back ever after.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it, vi } from "vitest";

let betweenReads: ((path: string) => void) | undefined;
/** called once, before the next writeSync (the chip secret's bytes), then disarmed */
let beforeWrite: (() => void) | undefined;
/** called when a read finds nothing (a generation record not written yet), with the path */
let onMissingRead: ((path: string) => void) | undefined;
/** called after every read of a card's lock file, with what was read */
let onLockRead: ((path: string, content: string) => void) | undefined;
/** called after every read of a card lock's takeover marker, with what was read */
let onMarkerRead: ((path: string, content: string) => void) | undefined;
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const readFileSync = ((...args: Parameters<typeof real.readFileSync>) => {
    let out: ReturnType<typeof real.readFileSync>;
    try {
      out = real.readFileSync(...args);
    } catch (e) {
      const hook = onMissingRead;
      if (hook && typeof args[0] === "string") hook(args[0]);
      throw e;
    }
    const hook = betweenReads;
    const path = typeof args[0] === "number" ? openPaths.get(args[0]) : args[0];
    if (hook && typeof path === "string" && path.endsWith(".card")) {
      betweenReads = undefined;
      hook(path);
    }
    if (onLockRead && typeof path === "string" && path.endsWith(".card.lock")) onLockRead(path, out.toString());
    if (onMarkerRead && typeof path === "string" && path.endsWith(".card.lock.takeover")) onMarkerRead(path, out.toString());
    return out;
  }) as typeof real.readFileSync;
  // the card file is read through a descriptor: remember which path each one was opened on
  const openPaths = new Map<number, string>();
  const openSync = ((...args: Parameters<typeof real.openSync>) => {
    let fd: number;
    try {
      fd = real.openSync(...args);
    } catch (e) {
      // files are read through a descriptor (pki/regular-file.ts): a missing one fails here
      const hook = onMissingRead;
      if (hook && typeof args[0] === "string") hook(args[0]);
      throw e;
    }
    if (typeof args[0] === "string") openPaths.set(fd, args[0]);
    return fd;
  }) as typeof real.openSync;
  const writeSync = ((...args: Parameters<typeof real.writeSync>) => {
    const hook = beforeWrite;
    beforeWrite = undefined;
    hook?.();
    return (real.writeSync as (...a: unknown[]) => number)(...args);
  }) as typeof real.writeSync;
  return { ...real, default: { ...real, readFileSync, writeSync, openSync }, readFileSync, writeSync, openSync };
});

const { cardStorageOf, ensureChipKey, fileCardStorage, stateStoreOf } = await import("./card-state.js");
const { EmulatedCard, newAdminKey } = await import("./card.js");

it("a load racing another process's save sees the old state or the new one, never a 'rollback'", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-race-"));
  const chipKeyFile = join(dir, "chip.key");
  const file = join(dir, "c.card");
  const admin = newAdminKey();
  EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile, createChipKey: true }), cardId: "card-race", adminKey: admin, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const reader = stateStoreOf(fileCardStorage(file, { chipKeyFile }));
  const writer = stateStoreOf(fileCardStorage(file, { chipKeyFile }));
  betweenReads = () => writer.save(writer.load());
  const st = reader.load();
  expect(betweenReads).toBeUndefined(); // the writer did run in the middle of the load
  expect(st.cardId).toBe("card-race");
  // and the card file is still the newest: a fresh open works
  expect(EmulatedCard.open(fileCardStorage(file, { chipKeyFile })).info().cardId).toBe("card-race");
});

it("of two processes taking over a killed holder's card lock, the second never removes the lock the first just made", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-takeover-"));
  const chipKeyFile = join(dir, "chip.key");
  const file = join(dir, "c.card");
  const lock = `${file}.lock`;
  EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile, createChipKey: true }), cardId: "card-takeover", adminKey: newAdminKey(), signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const dead = "2147483646 1";
  // Process B is vitest's parent (alive). It follows the lock's protocol: it may take over the dead holder's lock
  // only where the code under test would let a second process do it — when no takeover is under way.
  const ppidStat = fs.readFileSync(`/proc/${process.ppid}/stat`, "utf8");
  const bLock = `${process.ppid} ${ppidStat.slice(ppidStat.lastIndexOf(")") + 2).split(" ")[19]}`;
  let deadReads = 0;
  let bHolds = false;
  let aWroteWhileBHeld = false;
  onLockRead = (path, content) => {
    if (content === dead && ++deadReads === 2) {
      // A has read the dead holder twice (it is about to remove the lock): B, finding the same dead holder, takes over.
      try {
        writeFileSync(`${path}.takeover`, bLock, { mode: 0o600, flag: "wx" });
      } catch {
        return; // a takeover is under way (A's): B must wait
      }
      rmSync(path, { force: true });
      writeFileSync(path, bLock, { mode: 0o600 });
      rmSync(`${path}.takeover`);
      bHolds = true;
    } else if (content === bLock && bHolds) {
      // A found B's lock and waits: B finishes and lets go.
      rmSync(path, { force: true });
      bHolds = false;
    }
  };
  const real = stateStoreOf(fileCardStorage(file, { chipKeyFile }));
  const a = EmulatedCard.open(cardStorageOf({ ...real, where: real.where, exists: real.exists, load: real.load, save: (st) => ((aWroteWhileBHeld ||= bHolds), real.save(st)), ...(real.exclusive ? { exclusive: real.exclusive } : {}) }));
  const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
  await a.transmit(hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
  await a.transmit(hex("00 A4 02 0C 02 00 18"));
  writeFileSync(lock, dead, { mode: 0o600 });
  const answer = await a.transmit(hex("00 20 00 80 04 30 30 30 30"));
  onLockRead = undefined;
  expect(deadReads).toBeGreaterThanOrEqual(2); // A did find the dead holder's lock
  expect(aWroteWhileBHeld).toBe(false);
  expect(bHolds).toBe(false); // B's lock was there until B let go
  expect(Buffer.from(answer.subarray(-2)).toString("hex")).toBe("63c2");
});

it("of two processes clearing a killed taker's takeover marker, the second puts back the marker the first just made", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-marker-"));
  const chipKeyFile = join(dir, "chip.key");
  const file = join(dir, "c.card");
  const lock = `${file}.lock`;
  const marker = `${lock}.takeover`;
  EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile, createChipKey: true }), cardId: "card-marker", adminKey: newAdminKey(), signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const a = EmulatedCard.open(fileCardStorage(file, { chipKeyFile }));
  const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
  await a.transmit(hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
  await a.transmit(hex("00 A4 02 0C 02 00 18"));
  // A holder was killed, then a taker of its lock was killed in the middle: both name dead processes.
  const deadTaker = "2147483645 1";
  writeFileSync(lock, "2147483646 1", { mode: 0o600 });
  writeFileSync(marker, deadTaker, { mode: 0o600 });
  // Process B (vitest's parent, alive) clears the dead taker's marker and makes its own right after A has read
  // the dead one — before A moves it aside. A must find B's marker in what it moved and put it back.
  const ppidStat = fs.readFileSync(`/proc/${process.ppid}/stat`, "utf8");
  const bMarker = `${process.ppid} ${ppidStat.slice(ppidStat.lastIndexOf(")") + 2).split(" ")[19]}`;
  let bMade = false;
  let bMarkerSeenAgain = false;
  onMarkerRead = (path, content) => {
    if (content === deadTaker && !bMade) {
      rmSync(path);
      writeFileSync(path, bMarker, { mode: 0o600, flag: "wx" });
      bMade = true;
    } else if (content === bMarker && bMade && path === marker) {
      // A looks at the marker again and finds B's where it was: B finishes (the lock stays for A to take later).
      bMarkerSeenAgain = true;
      rmSync(path);
    }
  };
  let answer: Uint8Array;
  try {
    answer = await a.transmit(hex("00 20 00 80 04 30 30 30 30"));
  } finally {
    onMarkerRead = undefined;
  }
  expect(bMade).toBe(true);
  expect(bMarkerSeenAgain).toBe(true); // put back, not removed: A did not take over while B's marker stood
  expect(Buffer.from(answer.subarray(-2)).toString("hex")).toBe("63c2");
  expect(fs.readdirSync(dir).filter((n) => n.includes(".lock"))).toEqual([]);
});

it("a chip secret being made is never seen empty: a second process reads the whole secret or makes it itself", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-chip-"));
  const path = join(dir, "jpki", "card-chip.key");
  let seen: Buffer | string | undefined;
  // The second counter runs between the first one's creating the chip secret and writing its bytes.
  beforeWrite = () => {
    try {
      seen = ensureChipKey(path);
    } catch (e) {
      seen = (e as { code?: string }).code ?? "threw";
    }
  };
  const made = ensureChipKey(path);
  expect(beforeWrite).toBeUndefined(); // the second did run in the middle
  expect(seen).toBeInstanceOf(Buffer);
  expect((seen as Buffer).equals(made)).toBe(true);
  expect(ensureChipKey(path).equals(made)).toBe(true);
  expect(fs.readdirSync(join(dir, "jpki"))).toEqual(["card-chip.key"]);
});

it("a clock stepped forward while another process holds the card lock does not cut the wait short", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-clock-"));
  const chipKeyFile = join(dir, "chip.key");
  const file = join(dir, "c.card");
  const lock = `${file}.lock`;
  EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile, createChipKey: true }), cardId: "card-clock", adminKey: newAdminKey(), signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const a = EmulatedCard.open(fileCardStorage(file, { chipKeyFile }));
  const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
  await a.transmit(hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
  await a.transmit(hex("00 A4 02 0C 02 00 18"));
  // Process B (vitest's parent, alive) holds the lock and lets go the second time A looks at it; between A's
  // first look and its second, NTP steps the wall clock an hour forward.
  const ppidStat = fs.readFileSync(`/proc/${process.ppid}/stat`, "utf8");
  const bLock = `${process.ppid} ${ppidStat.slice(ppidStat.lastIndexOf(")") + 2).split(" ")[19]}`;
  writeFileSync(lock, bLock, { mode: 0o600 });
  const realNow = Date.now;
  let looks = 0;
  onLockRead = (path, content) => {
    if (content !== bLock) return;
    looks++;
    if (looks === 1) Date.now = () => realNow() + 3_600_000;
    else rmSync(path, { force: true });
  };
  let answer: Uint8Array;
  try {
    answer = await a.transmit(hex("00 20 00 80 04 30 30 30 30"));
  } finally {
    Date.now = realNow;
    onLockRead = undefined;
  }
  expect(looks).toBe(2);
  expect(Buffer.from(answer.subarray(-2)).toString("hex")).toBe("63c2");
});

it("of two cards created under one id at once (two files), one is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-sameid-"));
  const chipKeyFile = join(dir, "chip.key");
  const admin = newAdminKey();
  const make = (file: string) => () =>
    EmulatedCard.create({ storage: fileCardStorage(join(dir, file), { chipKeyFile, createChipKey: true }), cardId: "same-01", adminKey: admin, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const outcomes: string[] = [];
  const attempt = (f: () => unknown) => {
    try {
      f();
      outcomes.push("made");
    } catch (e) {
      outcomes.push((e as { code?: string }).code ?? "threw");
    }
  };
  // The second counter creates its card after the first has found no record of the id, before it writes one.
  onMissingRead = (path) => {
    if (!path.endsWith(join("card-rollback", "same-01"))) return;
    onMissingRead = undefined;
    attempt(make("b.card"));
  };
  attempt(make("a.card"));
  onMissingRead = undefined;
  expect(outcomes.filter((o) => o === "made")).toHaveLength(1);
});
