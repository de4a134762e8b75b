/**
 * What the `jpki card` verbs share: the card file opened under this installation's chip secret, and the secrets
 * (PINs, the municipality's administrative key) read from the environment, a file or standard input — never from
 * the command line, where `ps` shows them to every user of the machine — and never printed.
 */
import { existsSync, linkSync, mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { checkInputFile, JpkiError, library } from "./lib.js";
import type { Io } from "./output.js";

export const CARD_ENV_HELP = `
Environment:
  JPKI_CARD_CHIP_KEY_FILE  this installation's card chip secret (default $XDG_CONFIG_HOME/jpki/card-chip.key);
                           a card file opens only with the secret it was made under`;

/** Reads standard input whole (a few short lines: a larger input is a mistake, refused) and splits it into lines. */
export async function stdinLines(io: Io, what: string): Promise<string[]> {
  const stdin = io.stdin;
  if (!stdin) return [];
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin as AsyncIterable<Buffer | string>) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
    size += b.length;
    if (size > 4096) throw new JpkiError("ERR_USAGE", `${what}: standard input is longer than a few lines of secrets`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8").split(/\r?\n/);
}

/** Opens a card file (it must exist) under the chip secret the environment names. */
export async function openCardFile(io: Io, file: string) {
  const { EmulatedCard, fileCardStorage, defaultChipKeyFile } = await library();
  const path = checkInputFile(file, "card file --card", { cwd: io.cwd });
  return EmulatedCard.open(fileCardStorage(path, { chipKeyFile: defaultChipKeyFile(io.env) }));
}

/** Decodes an administrative key: hex text (what jpki writes), else the raw bytes; at least 16 bytes. */
export function adminKeyFrom(raw: Buffer, where: string): Buffer {
  const text = raw.toString("latin1").trim();
  const key = /^(?:[0-9a-fA-F]{2}){16,}$/.test(text) ? Buffer.from(text, "hex") : raw;
  if (key.length < 16) throw new JpkiError("ERR_CARD_ADMIN_KEY_WRONG", `the administrative key in ${where} is shorter than 16 bytes`);
  return key;
}

/**
 * The municipality's administrative key (the counter's key that personalises and unblocks cards) from a file; with
 * `create`, a missing file is made: 32 random bytes, hex, mode 600 (the first card issued from a workspace).
 */
export async function readAdminKeyFile(path: string, create: boolean): Promise<Buffer> {
  if (!existsSync(path)) {
    if (!create) throw new JpkiError("ERR_FILE_NOT_FOUND", `no administrative key at ${path}: pass --admin-key-file (or set JPKI_CARD_ADMIN_KEY_FILE)`);
    const { stageFile, syncDir } = await import("../store/staging.js");
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Written whole beside it and linked into place, never renamed over a file: of two counters issuing a
    // workspace's first cards at once, the second would otherwise replace the key the first one's card was just
    // personalised under — a card no one could unblock or renew again. Linking fails when the file is there: use it.
    const staged = stageFile(path, randomBytes(32).toString("hex") + "\n", 0o600);
    try {
      linkSync(staged.tmp, path);
      syncDir(dirname(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      staged.discard();
    }
  }
  const file = checkInputFile(path, "administrative key file");
  // Like the chip secret (and ssh's keys): a key others can read opens every card of the municipality for them.
  // Judged on the descriptor read (readRegularFile), not on a stat of the path before it.
  const unsafe = () => new JpkiError("ERR_CARD_ADMIN_KEY_UNSAFE", `the administrative key ${path} must be a regular file readable by its owner only (chmod 600)`);
  const { readRegularFile, NOT_REGULAR } = await import("../pki/regular-file.js");
  try {
    return adminKeyFrom(readRegularFile(file, { ownerOnly: unsafe }).bytes, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === NOT_REGULAR) throw unsafe();
    throw e;
  }
}
