"use strict";
/**
 * Early key-encryption key (KEK): the CA keys' PBKDF2 (600,000 iterations, ≈ 0.1–0.2 s of one core) started by
 * the launcher, on libuv's thread pool, while the main thread loads the program — which takes as long again.
 * Without it `jpki crl generate` loaded its modules, opened the store, read the CA's wrapped key, and only then
 * began the derivation, with the main thread idle until it ended (a third of an empty CA's CRL run).
 *
 * What it needs is not secret and is known before any module loads: the workspace's key-wrap parameters (salt and
 * iteration count, shared by all its CA keys: src/pki/key-wrap.ts), which the workspace writes to
 * key-wrap-params.json whenever a run had to derive a KEK itself (src/workspace/workspace.ts). The passphrase is
 * the --passphrase-file's or JPKI_PASSPHRASE's (a prompt's comes too late: nothing starts early). A hint that is
 * missing, unreadable or stale (the keys were rewrapped) costs nothing but the wasted derivation — and a command
 * that fails before it needs the key waits for it to end before exiting, as a crypto job cannot be unref'd: the
 * key-wrap module uses an early KEK only for the exact salt, count and passphrase it was derived from, and derives
 * its own otherwise.
 *
 * The result waits in a global under a registered symbol, where the key-wrap module takes it; the passphrase is
 * not kept there, only an HMAC of it under a random key, to match the passphrase the command ends up using.
 */
const { closeSync, constants, fstatSync, openSync, readSync } = require("node:fs");
const { resolve, join } = require("node:path");

const HINT_FILE = "key-wrap-params.json";
const KEY = Symbol.for("jpki.early-kek");
// The commands that open CA keys with a passphrase. Others (inspect, verify, --help …) would only lose a core.
const KEY_COMMANDS = new Set(["crl", "issue", "revoke", "notices", "watch", "serve", "counter", "provider"]);
// As src/pki/key-wrap.ts: the counts jpki writes (PBKDF2_ITERATIONS) and the weakest it still opens. A hint naming
// more was not written by jpki: deriving for it would hold a pool thread, and the process, for seconds.
const MIN_ITERATIONS = 2048;
const PBKDF2_ITERATIONS = 600_000;
/** A hint is a line of JSON; a passphrase file a line of text. */
const HINT_MAX_BYTES = 512;
const PASSPHRASE_MAX_BYTES = 4096;

/**
 * What the CLI will see in `args`, as src/cli/program.ts parses them: the top-level command, the word after it (a
 * command group's subcommand: `ingest` of `notices ingest`; for a command of its own, its first argument), the
 * workspace option (-w DIR, -wDIR, --workspace DIR, --workspace=DIR), the passphrase file option, whether help is
 * asked for, and the other options given (`--watch`). Nothing after "--" is an option.
 */
function parse(args) {
  const out = { command: undefined, subcommand: undefined, options: [], workspace: undefined, passphraseFile: undefined, help: false, noSchedule: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (a === "-w" || a === "--workspace") out.workspace = args[++i];
    else if (a.startsWith("--workspace=")) out.workspace = a.slice("--workspace=".length);
    else if (a.startsWith("-w") && !a.startsWith("--")) out.workspace = a.slice(2);
    else if (a === "--passphrase-file") out.passphraseFile = args[++i];
    else if (a.startsWith("--passphrase-file=")) out.passphraseFile = a.slice("--passphrase-file=".length);
    else if (a === "--pkcs11-pin-file") i++;
    else if (a === "--help" || a === "-h" || a === "help") out.help = true;
    else if (a === "--no-schedule") out.noSchedule = true;
    else if (a.startsWith("-")) out.options.push(a);
    else if (out.command === undefined) out.command = a;
    else if (out.subcommand === undefined) out.subcommand = a;
  }
  return out;
}

/**
 * A small regular file's bytes, or undefined: opened non-blocking, so a FIFO put in its place cannot hold the
 * launcher, and never read past `max` bytes (a link to /dev/zero is no regular file; a huge one is refused).
 */
function readSmallFile(path, max, ownerOnly) {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > max || (ownerOnly && (st.mode & 0o077) !== 0)) return undefined;
    const buf = Buffer.alloc(max + 1);
    const n = readSync(fd, buf, 0, max + 1, 0);
    return n > max ? undefined : buf.subarray(0, n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The passphrase as src/cli/context.ts will read it: --passphrase-file FILE (without one leading BOM and one final
 * line break), else JPKI_PASSPHRASE (also when the option's value is empty). The file is read only if it is a
 * regular file no one else may read, of a passphrase's size; anything else is left to the command, which refuses
 * it with its own error.
 */
function passphraseOf(file, env, cwd) {
  if (!file) return env.JPKI_PASSPHRASE || undefined;
  const bytes = readSmallFile(resolve(cwd, file), PASSPHRASE_MAX_BYTES, true);
  return bytes ? bytes.toString("utf8").replace(/^\uFEFF/, "").replace(/\r?\n$/, "") || undefined : undefined;
}

/** The hint's salt and count, or undefined when it is missing or not exactly what the workspace writes. */
function readHint(dir) {
  let j;
  try {
    j = JSON.parse(readSmallFile(join(dir, HINT_FILE), HINT_MAX_BYTES, false).toString("utf8"));
  } catch {
    return undefined;
  }
  if (!j || typeof j.salt !== "string" || !Number.isSafeInteger(j.iterations)) return undefined;
  if (j.iterations < MIN_ITERATIONS || j.iterations > PBKDF2_ITERATIONS) return undefined;
  const salt = Buffer.from(j.salt, "base64");
  if (salt.length < 8 || salt.length > 64) return undefined;
  return { salt, iterations: j.iterations };
}

/**
 * Starts the derivation when the command opens CA keys, a passphrase is given (file or JPKI_PASSPHRASE) and the
 * workspace has a hint; returns whether it did. Never throws: anything amiss leaves the work to the key-wrap module.
 */
function startEarlyKek(args, env, cwd = process.cwd()) {
  try {
    const o = parse(args);
    if (!KEY_COMMANDS.has(o.command) || o.help) return false;
    // A worker of 'serve --workers N' (cluster sets NODE_UNIQUE_ID) with the responders' own passphrase opens no CA
    // key: the CA passphrase (read from --passphrase-file, which it is given too) and its KEK stay with the primary.
    // So does 'serve --no-schedule' (another process keeps the CRLs): it serves, and signs OCSP answers only.
    if (env.JPKI_OCSP_PASSPHRASE && o.command === "serve" && (env.NODE_UNIQUE_ID !== undefined || o.noSchedule)) return false;
    const passphrase = passphraseOf(o.passphraseFile, env, cwd);
    if (!passphrase) return false;
    const hint = readHint(resolve(cwd, o.workspace || env.JPKI_HOME || ".jpki"));
    if (!hint) return false;
    const { createHmac, pbkdf2, randomBytes } = require("node:crypto"); // only now: most commands never get here
    const nonce = randomBytes(32);
    const kek = new Promise((done) => {
      pbkdf2(Buffer.from(passphrase, "utf8"), hint.salt, hint.iterations, 32, "sha256", (err, key) => done(err ? undefined : key));
    });
    globalThis[KEY] = { salt: hint.salt, iterations: hint.iterations, nonce, check: createHmac("sha256", nonce).update(passphrase, "utf8").digest(), kek };
    return true;
  } catch {
    return false;
  }
}

module.exports = { startEarlyKek, parse, HINT_FILE, HINT_MAX_BYTES, MIN_ITERATIONS, PBKDF2_ITERATIONS };
