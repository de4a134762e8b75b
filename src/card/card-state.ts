/**
 * What the card remembers between sessions, and where: its PIN records and retry counters, its private keys,
 * and its files. In memory for tests and in-process use, or in an encrypted state file.
 *
 * The state file (one per card) is AES-256-GCM under a key derived (HKDF-SHA-256, salt = the card id) from the
 * installation's chip secret (チップ固有鍵, ours), a 32-byte file kept elsewhere — `JPKI_CARD_CHIP_KEY_FILE`, by
 * default `$XDG_CONFIG_HOME/jpki/card-chip.key` — so copying a card file alone copies no usable key. The clear
 * first line names the card id and is the GCM additional data: a file renamed to another card, or any byte
 * changed (a retry counter edited back up), fails authentication and the card refuses to open
 * (ERR_CARD_STATE_CORRUPT). An earlier copy put back is refused too (a generation counter recorded beside the
 * chip secret, see fileCardStorage). Every write is atomic (temporary sibling, fsync, rename, fsync the directory), so a
 * kill -9 leaves the old state or the new one, and never goes through the old file (a hard link to it keeps the
 * old bytes; a card file, chip secret or rollback record with a second name is refused anyway, ERR_CARD_FILE_LINKED).
 *
 * This is an emulator, not a secure element: whoever holds both the card file and the chip secret holds the keys.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, realpathSync, rmSync, writeSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";
import { writeFileAtomic } from "../store/files.js";
import { sweepLockTemps, withFileLock, withFileLockSync } from "../store/file-lock.js";
import { sweepStaleTemps, sweepTempsFor, syncDir, tempPathFor, tempsFor } from "../store/staging.js";
import type { KeyId } from "./file-system.js";
import type { PinId, PinRecord } from "./pin.js";

/** The persisted state (inside the encryption). Small on purpose: a few kilobytes. */
export interface CardState {
  readonly v: 1;
  readonly cardId: string;
  /** the municipality's administrative key, as a salted HMAC like a PIN */
  readonly admin: { readonly salt: string; readonly hash: string };
  readonly pins: Readonly<Partial<Record<PinId, PinRecord>>>;
  /** PKCS#8 DER, base64: never leaves this directory's modules */
  readonly keys: Readonly<Partial<Record<KeyId, string>>>;
  /** binary EF contents by fileKey ("jpki/0001"), base64 */
  readonly files: Readonly<Record<string, string>>;
  /** the file storage's write counter (rollback detection); absent in memory */
  readonly gen?: number;
  /**
   * For whom the counter began this card (holderTag: a hash, so the state holds no resident code), set at creation:
   * a card interrupted before its first certificate is resumed only for that resident. Absent on cards made
   * before it was recorded.
   */
  readonly holder?: string;
}

/**
 * Where a card's state lives, as the library's users hold it: a name for messages and whether a card is there —
 * nothing of the state. The state holds the card's private keys, which never leave the card: only card.ts reaches
 * it (stateStoreOf), so no caller of the public API, no CLI output and no log can be handed them. Made by
 * fileCardStorage or memoryCardStorage only (a storage of the caller's own would be given the keys at every save).
 */
export interface CardStorage {
  /** for messages: the file path, or "memory" */
  readonly where: string;
  exists(): boolean;
}

/**
 * What the card itself reads and writes: the whole state, keys included. Internal to src/card (and its tests):
 * never exported from src/index.ts. `save` must be durable before it returns: the card answers only after it.
 */
export interface CardStateStore extends CardStorage {
  load(): CardState;
  save(state: CardState): void;
  /**
   * Runs a read-modify-write (load, decide, save) with no other process writing the card between the load and
   * the save. Absent where one process is the only writer (memory).
   */
  exclusive?<T>(fn: () => T): T;
  /**
   * Runs a counter procedure on the card (card issue, card renew: a key made on it, certified by the CA, the
   * certificate written back — seconds, across awaits) with no other counter procedure on this card meanwhile; a
   * second one is refused at once (ERR_WORKSPACE_LOCKED). Absent in memory. Not `exclusive`: a VERIFY of the
   * resident's (`jpki card serve`) must not wait seconds for the CA.
   */
  procedure?<T>(fn: () => Promise<T>): Promise<T>;
}

/** The store behind each handle given out: a WeakMap, so the handle carries no reference to it anyone could follow. */
const stores = new WeakMap<CardStorage, CardStateStore>();

/** A storage handle for `store` (internal: the public constructors and tests that wrap a store). */
export function cardStorageOf(store: CardStateStore): CardStorage {
  const handle: CardStorage = Object.freeze({ where: store.where, exists: () => store.exists() });
  stores.set(handle, store);
  return handle;
}

/** The state store behind a handle from fileCardStorage or memoryCardStorage (internal: the card's own modules). */
export function stateStoreOf(storage: CardStorage): CardStateStore {
  const store = stores.get(storage);
  if (!store) throw new JpkiError("ERR_USAGE", "a card's storage is made by fileCardStorage(path) or memoryCardStorage(), not by the caller");
  return store;
}

const CARD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkCardId(cardId: string): void {
  if (!CARD_ID.test(cardId)) {
    throw new JpkiError("ERR_USAGE", "a card id is 1–64 characters: letters, digits, '.', '_' and '-', starting with a letter or digit");
  }
}

function checkState(s: unknown, where: string): CardState {
  const st = s as CardState;
  const ok =
    typeof st === "object" && st !== null && st.v === 1 && typeof st.cardId === "string" &&
    typeof st.admin?.salt === "string" && typeof st.admin?.hash === "string" &&
    typeof st.pins === "object" && typeof st.keys === "object" && typeof st.files === "object" &&
    (st.holder === undefined || typeof st.holder === "string");
  if (!ok) throw new JpkiError("ERR_CARD_STATE_CORRUPT", `the card state in ${where} is not a card's state`);
  return st;
}

/**
 * Keeps the state in this process only (as its JSON, so what is kept is exactly what a file would hold).
 * `initial`: another card's state to start from (tests clone a personalised card instead of generating keys).
 */
export function memoryCardStorage(initial?: CardState): CardStorage {
  let json: string | undefined = initial ? JSON.stringify(initial) : undefined;
  return cardStorageOf({
    where: "memory",
    exists: () => json !== undefined,
    load(): CardState {
      if (json === undefined) throw new JpkiError("ERR_CARD_MISSING", "no card in this memory storage");
      return checkState(JSON.parse(json), "memory");
    },
    save(state: CardState): void {
      json = JSON.stringify(state);
    },
  });
}

/** The chip secret's default path: $JPKI_CARD_CHIP_KEY_FILE, else $XDG_CONFIG_HOME/jpki/card-chip.key. */
export function defaultChipKeyFile(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.JPKI_CARD_CHIP_KEY_FILE) return env.JPKI_CARD_CHIP_KEY_FILE;
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "jpki", "card-chip.key");
}

const CHIP_KEY_BYTES = 32;

/**
 * How many of the chip secret's names are ensureChipKey's own temporary ones: it links its finished temporary file
 * into place, then removes it, so for an instant (and for good after a kill -9 between the two) the secret has a
 * second name beside it that is no one else's — in the chip secret's own directory (0700), where whoever could
 * plant a name could replace the secret itself. Those of creators that no longer run are removed on the way.
 */
function creatorsLinks(path: string, st: Stats): number {
  if (st.nlink <= 1) return 0;
  let n = 0;
  for (const name of tempsFor(path)) {
    const t = lstatOrUndefined(join(dirname(path), name));
    if (t && t.ino === st.ino && t.dev === st.dev) n++;
  }
  sweepTempsFor(path);
  return n;
}

function readChipKey(path: string): Buffer {
  const ownerOnly = () => new JpkiError("ERR_CARD_CHIP_KEY_MISSING", `the card chip secret ${path} must be a regular file readable by its owner only (chmod 600)`);
  let key: Buffer;
  try {
    // a FIFO is refused, not waited on
    key = readRegularFile(path, {
      ownerOnly,
      accept: (st) => refuseLinked("chipSecret", path, st.nlink - creatorsLinks(path, st)),
    }).bytes;
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    if ((e as NodeJS.ErrnoException).code === NOT_REGULAR) throw ownerOnly();
    throw new JpkiError("ERR_CARD_CHIP_KEY_MISSING", `the card chip secret ${path} cannot be read: set JPKI_CARD_CHIP_KEY_FILE to this installation's chip secret`, { cause: e });
  }
  if (key.length !== CHIP_KEY_BYTES) throw new JpkiError("ERR_CARD_CHIP_KEY_MISSING", `the card chip secret ${path} is not ${CHIP_KEY_BYTES} bytes`);
  return key;
}

/**
 * Reads the chip secret, making a fresh one (owner-only) when there is none. The secret is written whole to a
 * temporary sibling and linked into place (link fails if another process made one first: then theirs is used), so
 * the path never names a file not yet written — one a second counter would refuse as the wrong size, and one a
 * kill -9 between create and write would leave empty for good, refusing every card of the installation.
 */
export function ensureChipKey(path: string): Buffer {
  if (!existsSync(path)) {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    sweepStaleTemps(dir); // secrets a killed run made but never linked
    const tmp = tempPathFor(path);
    const fd = openSync(tmp, "wx", 0o600);
    try {
      try {
        writeSync(fd, randomBytes(CHIP_KEY_BYTES));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, path);
        syncDir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e; // another process made it first: use theirs
      }
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return readChipKey(path);
}

const MAGIC = "JPKI-CARD 1 ";
/** Far above any card's state (a few tens of kilobytes at most, base64 and JSON included). */
const CARD_FILE_MAX = 1024 * 1024;

function stateKey(chipKey: Buffer, cardId: string): Buffer {
  return Buffer.from(hkdfSync("sha256", chipKey, Buffer.from(cardId, "utf8"), "jpki card state v1", 32));
}

export function encryptCardState(state: CardState, chipKey: Buffer): Buffer {
  const header = Buffer.from(`${MAGIC}${state.cardId}\n`, "utf8");
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", stateKey(chipKey, state.cardId), iv);
  c.setAAD(header);
  const ct = Buffer.concat([c.update(JSON.stringify(state), "utf8"), c.final()]);
  return Buffer.concat([header, iv, c.getAuthTag(), ct]);
}

export function decryptCardState(file: Buffer, chipKey: Buffer, where: string): CardState {
  const corrupt = (why: string, cause?: unknown) =>
    new JpkiError("ERR_CARD_STATE_CORRUPT", `the card state ${where} ${why}`, cause === undefined ? undefined : { cause });
  const nl = file.indexOf(0x0a);
  const head = nl > 0 ? file.subarray(0, nl).toString("utf8") : "";
  if (!head.startsWith(MAGIC)) throw corrupt("is not a jpki card file");
  const cardId = head.slice(MAGIC.length);
  if (!CARD_ID.test(cardId) || file.length < nl + 1 + 12 + 16) throw corrupt("is truncated or not a jpki card file");
  const header = file.subarray(0, nl + 1);
  const iv = file.subarray(nl + 1, nl + 13);
  const tag = file.subarray(nl + 13, nl + 29);
  let json: string;
  try {
    const d = createDecipheriv("aes-256-gcm", stateKey(chipKey, cardId), iv);
    d.setAAD(header);
    d.setAuthTag(tag);
    json = Buffer.concat([d.update(file.subarray(nl + 29)), d.final()]).toString("utf8");
  } catch (e) {
    throw corrupt("does not authenticate: it was altered, or this installation's chip secret is not the one it was made with", e);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // No cause: a JSON syntax error quotes the text around the fault, and this text holds the card's keys.
    throw corrupt("holds no card state");
  }
  const st = checkState(parsed, where);
  if (st.cardId !== cardId) throw corrupt("names another card inside");
  return st;
}

/**
 * The highest generation of each card's state written on this installation, kept beside the chip secret
 * (owner-only): `<chip secret's directory>/card-rollback/<card id>`. GCM proves a state file is one we wrote,
 * not that it is the latest one; without this, copying yesterday's file back would restore the tries a guesser
 * used up today. A file older than the record is refused as rolled back.
 *
 * The record is authenticated: `<generation> <HMAC-SHA-256, hex>\n`, the MAC under a key derived from the chip
 * secret (HKDF, its own info label: never the state key) over the card id and the generation. A generation edited
 * down (to let an earlier copy of the card pass), another card's record copied over this one's, or another
 * installation's, does not authenticate and is refused (ERR_CARD_ROLLBACK_RECORD_DAMAGED).
 *
 * The previous release kept the bare number in `card-generations/<card id>`. That record is read only when the card
 * has no authenticated one (a card not written since the upgrade), and is removed once the authenticated one is
 * written. Its own directory is what keeps the upgrade from being a way down: an authenticated record is never
 * replaced by a bare number (a bare number written over it is not read at all), so one who can write the record
 * but not make or remove names in its directory cannot get round the MAC. One who can remove the record can
 * anyway: a card with no record at all is one never saved here (generation 0), and removing it is the documented
 * recovery for a damaged one.
 */
interface RollbackRecordFiles {
  /** this release's, authenticated */
  readonly file: string;
  /** the previous release's bare number: read only when there is no `file` */
  readonly legacy: string;
}

function rollbackRecordFiles(chipKeyFile: string, cardId: string): RollbackRecordFiles {
  return { file: join(dirname(chipKeyFile), "card-rollback", cardId), legacy: join(dirname(chipKeyFile), "card-generations", cardId) };
}

/** What a save writes to the record: the generation in decimal, a space, its MAC in hex, and a newline. */
const ROLLBACK_RECORD = /^(0|[1-9][0-9]{0,14}) ([0-9a-f]{64})\n$/;
/** The previous release's record: the generation in decimal and a newline. */
const LEGACY_GENERATION_RECORD = /^(0|[1-9][0-9]{0,14})\n$/;
/** Far above either form (16 digits, a space, 64 hex digits, a newline). */
const ROLLBACK_RECORD_MAX = 128;

/** The key the rollback records are authenticated under: the chip secret's, for this use only. */
function rollbackRecordKey(chipKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", chipKey, Buffer.alloc(0), "jpki card rollback record v1", 32));
}

function rollbackRecordMac(key: Buffer, cardId: string, gen: number): Buffer {
  return createHmac("sha256", key).update(`jpki card rollback record 1\n${cardId}\n${gen}\n`, "utf8").digest();
}

function rollbackRecord(key: Buffer, cardId: string, gen: number): string {
  return `${gen} ${rollbackRecordMac(key, cardId, gen).toString("hex")}\n`;
}

function recordDamaged(file: string, cardId: string, why: string, cause?: unknown): JpkiError {
  return new JpkiError(
    "ERR_CARD_ROLLBACK_RECORD_DAMAGED",
    `the rollback record ${file} of card ${cardId} ${why}: the card is neither opened nor written, since without the record an earlier copy of its file put back could not be told from the latest. ` +
      `If the card's file is its latest state (not a copy restored from a backup or elsewhere), remove ${file}: the card then opens, and the record is written again at its next change; otherwise put the latest card file back first`,
    cause === undefined ? undefined : { cause },
  );
}

/** The text of a record file, or undefined when there is none. */
function readRecordText(file: string, cardId: string): string | undefined {
  try {
    // a FIFO planted there is not waited on (every load of the card would hang)
    return readRegularFile(file, {
      accept: (st) => {
        refuseLinked("rollbackRecord", file, st.nlink);
        if (st.size > ROLLBACK_RECORD_MAX) throw recordDamaged(file, cardId, `is ${st.size} bytes, not a generation number`);
      },
    }).bytes.toString("latin1");
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw recordDamaged(file, cardId, code === NOT_REGULAR ? "is not a regular file" : `cannot be read (${code ?? "error"})`, e);
  }
}

/**
 * The generation recorded for `cardId`: 0 when there is no record (a card never saved on this installation). A
 * record that is there but unreadable, not a number or not authentic is an error, not 0: 0 would let any earlier
 * copy of the card pass, which is what the record is for. Recovery is the operator's (see the message): the card
 * cannot tell its latest state from a copy put back without it.
 */
function readGeneration(files: RollbackRecordFiles, cardId: string, key: Buffer): number {
  const text = readRecordText(files.file, cardId);
  if (text !== undefined) {
    const m = ROLLBACK_RECORD.exec(text);
    if (!m) throw recordDamaged(files.file, cardId, "holds no generation number (damaged)");
    const gen = Number(m[1]);
    if (!timingSafeEqual(Buffer.from(m[2]!, "hex"), rollbackRecordMac(key, cardId, gen))) {
      throw recordDamaged(files.file, cardId, "does not authenticate: it was edited, or is another card's or another installation's");
    }
    return gen;
  }
  const legacy = readRecordText(files.legacy, cardId);
  if (legacy === undefined) return 0;
  const m = LEGACY_GENERATION_RECORD.exec(legacy);
  if (!m) throw recordDamaged(files.legacy, cardId, "holds no generation number (damaged)");
  return Number(m[1]);
}

/** How long a VERIFY waits for another process's read-modify-write of the same card (a few ms each). */
const LOCK_WAIT_MS = 3000;

/**
 * Holds `<card file>.lock` around fn, synchronously: the card answers inside one call. Two processes that each
 * loaded the same retry counter and each wrote it minus one would win a try back — with the lock the second
 * loads what the first wrote. store/file-lock.ts makes the lock: a dead holder's lock (or a reused pid's) is
 * taken over by one process only (of two that find it, the second must not remove the lock the first just made);
 * one this process holds (a card re-entered from inside its own storage) or a live holder that does not let go
 * in LOCK_WAIT_MS is an error, which makes the card answer 6F 00 without having consumed or restored a try.
 */
function withCardLock<T>(cardPath: string, waitMs: number, fn: () => T): T {
  return withFileLockSync(`${cardPath}.lock`, `the card file ${cardPath}`, waitMs, fn);
}

/**
 * Holds `<card file>.counter.lock` around a counter procedure (CardStateStore.procedure). Two at once on one card
 * each made a key, each had it certified, and the issuance committed last superseded the other's certificate:
 * when that was the key the card no longer held, the card kept a certificate revoked as superseded — and the
 * command that wrote it said it was done. A procedure killed midway leaves the lock to be taken over (its holder
 * is dead) and the card to be finished by running it again.
 */
function withCardProcedureLock<T>(cardPath: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(`${cardPath}.counter.lock`, `the card file ${cardPath} (card issue or renew)`, fn);
}

/** Runs `fn`, a counter procedure on the card in `storage`, with no other one on that card at the same time. */
export function withCardProcedure<T>(storage: CardStorage, fn: () => Promise<T>): Promise<T> {
  const store = stateStoreOf(storage);
  return store.procedure ? store.procedure(fn) : fn();
}

/**
 * Where a card file really is: a symlink followed (and the directory of a card not made yet). Saves replace the
 * file by a rename, which would replace a symlink itself — leaving the file it pointed to behind, soon refused as
 * rolled back — and the lock is taken beside the file, so a process using the link and one using the real name
 * must take the same one.
 */
function cardFilePath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // not there yet (a card being created) or a dangling link: its directory, resolved
  }
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

/**
 * The files of a card that must have one name each (ERR_CARD_FILE_LINKED), as messages call them: the card file,
 * and what its rollback detection rests on — the chip secret the record is authenticated under, and the record.
 */
const ONE_NAME_FILES = {
  card: "the card file",
  chipSecret: "the card chip secret",
  rollbackRecord: "the rollback record",
} as const;
type OneNameFile = keyof typeof ONE_NAME_FILES;

/**
 * Refuses a card file (or its chip secret or rollback record: ONE_NAME_FILES) with a second name (a hard link). Whoever made that name — anyone who can write to a
 * directory on the same filesystem, where the card file's mode allowed the link — keeps the file's contents
 * under a name of their choosing, and a card whose path was made a link to someone else's file would be taken
 * as that file. Our writes never land in the linked file (each is a new file renamed over the name), but a card
 * in that state is not the one the operator thinks it is: said, not used. A link count of 0 is no link: the
 * file was replaced by another process's save after we opened it (we read the state it replaced).
 */
function refuseLinked(what: OneNameFile, path: string, nlink: number): void {
  if (nlink > 1) {
    const name = ONE_NAME_FILES[what];
    throw new JpkiError("ERR_CARD_FILE_LINKED", `${name} ${path} has ${nlink} names (a hard link to it was made): nothing was read or written; find the other names (find <its filesystem> -xdev -samefile ${path} lists them), remove them, and keep ${name} where only its owner can reach it`);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined; // not made yet
  }
}

/**
 * Removes what a write killed between creating its temporary file and renaming it left beside the card file
 * (`.<card file>.<pid>.<random>.tmp`, tempPathFor's names for the card file and for its lock file; never
 * another file's): a temporary file is never read as the card's state, but would stay for ever. Every save of the
 * card is made holding its lock, so while this process holds the lock each of the card file's temporaries is a
 * leftover, whatever its pid says (a killed writer's pid reused by a live process kept it for good). The lock is
 * tried once, not waited for: when another process holds it (it may be writing right now), or it cannot be made
 * (a read-only directory: `jpki card info` still works), only those of processes that no longer run go. The
 * lock's own temporaries (and its takeover marker's) are made before it is held: those of dead processes only.
 */
function sweepCardTemps(path: string): void {
  try {
    withFileLockSync(`${path}.lock`, `the card file ${path}`, 0, () => sweepTempsFor(path, { writersExcluded: true }));
  } catch {
    sweepTempsFor(path);
  }
  sweepLockTemps(`${path}.lock`);
  sweepLockTemps(`${path}.counter.lock`);
}

/**
 * The encrypted state file of one card. The chip secret is read once, when the storage is made. Each save
 * numbers the state (a generation inside the encryption) and records the number, authenticated, beside the chip
 * secret after the file is in place; a load of a file older than the record fails (ERR_CARD_STATE_CORRUPT, rolled back). A
 * crash between the two writes leaves the file one ahead of the record, which is accepted.
 */
export function fileCardStorage(where: string, options: { chipKeyFile?: string; createChipKey?: boolean; lockWaitMs?: number } = {}): CardStorage {
  const chipKeyFile = options.chipKeyFile ?? defaultChipKeyFile();
  // LOCK_WAIT_MS unless told: the tests of a holder that never lets go wait a shorter while for the same 6F 00
  const lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
  const chipKey = options.createChipKey ? ensureChipKey(chipKeyFile) : readChipKey(chipKeyFile);
  const path = cardFilePath(where);
  sweepCardTemps(path);
  /** whether this storage has swept its card id's rollback record's leftovers (once, at its first save) */
  let recordTempsSwept = false;
  /** whether this storage has removed its card id's record of the previous release (once, after its first save) */
  let legacyRemoved = false;
  const recordKey = rollbackRecordKey(chipKey);
  return cardStorageOf({
    where,
    exists: () => existsSync(path),
    load(): CardState {
      const read = (): CardState => {
        let bytes: Buffer;
        try {
          // A FIFO put where the card file was is refused, not waited on (it hung `jpki card serve` until someone
          // wrote to it). A card's state is a few kilobytes (four certificates of at most 4 KiB, two keys):
          // anything far larger is not one, and is not read into memory to find that out.
          bytes = readRegularFile(path, {
            accept: (st) => {
              refuseLinked("card", path, st.nlink);
              if (st.size > CARD_FILE_MAX) throw new JpkiError("ERR_CARD_STATE_CORRUPT", `the card state ${path} is ${st.size} bytes: not a jpki card file`);
            },
          }).bytes;
        } catch (e) {
          if (e instanceof JpkiError) throw e;
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOENT") throw new JpkiError("ERR_CARD_MISSING", `no card file at ${path}`);
          throw new JpkiError("ERR_FILE_UNUSABLE", `the card file ${path} ${code === NOT_REGULAR ? "is not a regular file" : "cannot be read"}`, { cause: e });
        }
        return decryptCardState(bytes, chipKey, path);
      };
      let st = read();
      const recorded = readGeneration(rollbackRecordFiles(chipKeyFile, st.cardId), st.cardId, recordKey);
      // Loads take no lock, so another process may have saved between our read of the file and of the record. A
      // save writes the file before the record, so a file read after the record is at least as new as it — unless
      // an earlier copy really was put back.
      if ((st.gen ?? 0) < recorded) st = read();
      if ((st.gen ?? 0) < recorded) {
        throw new JpkiError("ERR_CARD_STATE_CORRUPT", `the card state ${path} is older than the last one written for card ${st.cardId}: an earlier copy was put back (rolled back)`);
      }
      return st;
    },
    save(state: CardState): void {
      const records = rollbackRecordFiles(chipKeyFile, state.cardId);
      const genFile = records.file;
      const write = (): void => {
        const recorded = readGeneration(records, state.cardId, recordKey);
        // A state never saved (a card being created) under an id this installation has written before: the two
        // files would share one rollback record, and the first card — now "older than the last one written" —
        // would never open again.
        if (state.gen === undefined && recorded > 0) {
          throw new JpkiError("ERR_CARD_EXISTS", `card id ${state.cardId} was already used for a card on this installation (its file may have moved or been deleted since): give the new card another id`);
        }
        if (!recordTempsSwept) {
          // A kill between a record's temporary file and its rename: ours to sweep only if its writer is gone — a
          // copy of this card under another path (another lock) may be writing the same record.
          sweepTempsFor(genFile);
          recordTempsSwept = true;
        }
        const gen = Math.max(state.gen ?? 0, recorded) + 1;
        const now = lstatOrUndefined(path);
        if (now) refuseLinked("card", path, now.nlink);
        writeFileAtomic(path, encryptCardState({ ...state, gen }, chipKey), 0o600);
        writeFileAtomic(genFile, rollbackRecord(recordKey, state.cardId, gen), 0o600);
        if (!legacyRemoved) {
          // the previous release's record, read until now: never read again beside this one, so one that cannot be
          // removed (a directory put there) is left, not a reason to fail a save that is already durable
          try {
            rmSync(records.legacy, { force: true });
          } catch {
            // left in place, unread
          }
          legacyRemoved = true;
        }
      };
      if (state.gen !== undefined) return write();
      // A card being created: the card file's lock does not keep out a second counter creating the same id in
      // another file, so the id's record is locked from the check to the write.
      mkdirSync(dirname(genFile), { recursive: true, mode: 0o700 });
      withFileLockSync(`${genFile}.lock`, `card id ${state.cardId}`, lockWaitMs, write);
    },
    exclusive: <T>(fn: () => T): T => withCardLock(path, lockWaitMs, fn),
    procedure: <T>(fn: () => Promise<T>): Promise<T> => withCardProcedureLock(path, fn),
  });
}
