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
 * the --passphrase-file's or JPKI_PASSPHRASE's (a prompt's comes too late: nothing starts early). A hint that is missing, unreadable or stale (the keys were rewrapped) costs nothing but
 * the wasted derivation: the key-wrap module uses an early KEK only for the exact salt, count and passphrase it was
 * derived from, and derives its own otherwise.
 *
 * The result waits in a global under a registered symbol, where the key-wrap module takes it; the passphrase is
 * not kept there, only an HMAC of it under a random key, to match the passphrase the command ends up using.
 */
const { closeSync, constants, fstatSync, openSync, readFileSync } = require("node:fs");
const { resolve, join } = require("node:path");

const HINT_FILE = "key-wrap-params.json";
const KEY = Symbol.for("jpki.early-kek");
// The commands that open CA keys with a passphrase. Others (inspect, verify, --help …) would only lose a core.
const KEY_COMMANDS = new Set(["crl", "issue", "revoke", "notices", "watch", "serve", "counter", "provider"]);
// As src/pki/key-wrap.ts: a count outside these was never written by jpki (and would hold a pool thread for long).
const MIN_ITERATIONS = 2048;
const MAX_ITERATIONS = 10_000_000;

/** The workspace directory the command will use: --workspace / -w, else JPKI_HOME, else ./.jpki (src/cli/context.ts). */
function workspaceOf(args, env, cwd) {
  let dir;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (a === "--workspace" || a === "-w") dir = args[++i];
    else if (a.startsWith("--workspace=")) dir = a.slice("--workspace=".length);
  }
  return resolve(cwd, dir ?? (env.JPKI_HOME || ".jpki"));
}

// The global options that take a value (src/cli/program.ts): their value is not the command.
const VALUED = new Set(["-w", "--workspace", "--passphrase-file", "--pkcs11-pin-file"]);

/** The top-level command: the first argument that is neither an option nor a global option's value. */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (VALUED.has(args[i])) i++;
    else if (!args[i].startsWith("-")) return args[i];
  }
  return undefined;
}

/**
 * The passphrase as src/cli/context.ts will read it: --passphrase-file FILE (without one leading BOM and one final
 * line break), else JPKI_PASSPHRASE. The file is read only if it is a regular file no one else may read, of a
 * passphrase's size; opened non-blocking, so a FIFO put there cannot hold the launcher. Anything else is left to
 * the command, which refuses it with its own error.
 */
function passphraseOf(args, env, cwd) {
  let file;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--passphrase-file") file = args[++i];
    else if (args[i].startsWith("--passphrase-file=")) file = args[i].slice("--passphrase-file=".length);
  }
  if (file === undefined) return env.JPKI_PASSPHRASE || undefined;
  if (!file) return undefined;
  let fd;
  try {
    fd = openSync(resolve(cwd, file), constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0 || st.size > 4096) return undefined;
    const text = readFileSync(fd).toString("utf8");
    return text.replace(/^\uFEFF/, "").replace(/\r?\n$/, "") || undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The hint's salt and count, or undefined when it is missing or not exactly what the workspace writes. */
function readHint(dir) {
  let j;
  try {
    j = JSON.parse(readFileSync(join(dir, HINT_FILE), "utf8"));
  } catch {
    return undefined;
  }
  if (!j || typeof j.salt !== "string" || !Number.isSafeInteger(j.iterations)) return undefined;
  if (j.iterations < MIN_ITERATIONS || j.iterations > MAX_ITERATIONS) return undefined;
  const salt = Buffer.from(j.salt, "base64");
  if (salt.length < 8 || salt.length > 64) return undefined;
  return { salt, iterations: j.iterations };
}

/**
 * Starts the derivation when the command opens CA keys, the passphrase is in JPKI_PASSPHRASE and the workspace has
 * a hint; returns whether it did. Never throws: anything amiss leaves the work to the key-wrap module.
 */
function startEarlyKek(args, env, cwd = process.cwd()) {
  try {
    if (!KEY_COMMANDS.has(commandOf(args)) || args.includes("--help") || args.includes("-h")) return false;
    const passphrase = passphraseOf(args, env, cwd);
    if (!passphrase) return false;
    const hint = readHint(workspaceOf(args, env, cwd));
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

module.exports = { startEarlyKek, HINT_FILE, MIN_ITERATIONS, MAX_ITERATIONS };
