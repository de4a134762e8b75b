/**
 * What every command shares: the workspace location (--workspace or JPKI_HOME), the passphrase source,
 * and the output mode.
 */
import { isUtf8 } from "node:buffer";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Command } from "commander";
import type { Workspace } from "../index.js";
import { JpkiError, NOT_REGULAR, checkInputFile, checkWorkspaceDir, envPinValue, isJpkiError, readPinFile, readRegularFile, setPkcs11PinSource, workspaceLibrary } from "./lib.js";
import { Output, upgradeProgress, type Io } from "./output.js";

export interface GlobalOptions {
  workspace?: string;
  json?: boolean;
  passphraseFile?: string;
  pkcs11PinFile?: string;
}

export const DEFAULT_WORKSPACE = ".jpki";

export class Context {
  readonly io: Io;
  readonly out: Output;
  readonly opts: GlobalOptions;
  constructor(io: Io, opts: GlobalOptions) {
    this.io = io;
    this.opts = opts;
    this.out = new Output(io, Boolean(opts.json));
  }

  static of(io: Io, cmd: Command): Context {
    const ctx = new Context(io, cmd.optsWithGlobals<GlobalOptions>());
    ctx.#configurePkcs11Pin();
    return ctx;
  }

  /**
   * Where a CA key in a PKCS#11 token gets its user PIN: --pkcs11-pin-file, else JPKI_PKCS11_PIN, else
   * JPKI_PKCS11_PIN_FILE — never an argument's value, where `ps` would show it. Read only when a token CA is
   * opened. The file's path is also put in this process's JPKI_PKCS11_PIN_FILE, so the threads it starts (the
   * CRL schedule of jpki serve) read the same PIN.
   */
  #configurePkcs11Pin(): void {
    const file = this.opts.pkcs11PinFile ? resolve(this.io.cwd ?? process.cwd(), this.opts.pkcs11PinFile) : undefined;
    const env = this.io.env;
    if (file && env === process.env) process.env.JPKI_PKCS11_PIN_FILE = file;
    setPkcs11PinSource(() => {
      if (file) return readPinFile(checkInputFile(file, "token PIN file --pkcs11-pin-file", { cwd: this.io.cwd }));
      if (env.JPKI_PKCS11_PIN) return envPinValue(env.JPKI_PKCS11_PIN);
      if (env.JPKI_PKCS11_PIN_FILE) return readPinFile(env.JPKI_PKCS11_PIN_FILE);
      throw new JpkiError("ERR_PKCS11_PIN_MISSING", "the CA keys are in a PKCS#11 token: set JPKI_PKCS11_PIN or pass --pkcs11-pin-file FILE");
    });
  }

  /** Whether a token PIN source is given (--pkcs11-pin-file, JPKI_PKCS11_PIN or JPKI_PKCS11_PIN_FILE). */
  get pkcs11PinGiven(): boolean {
    return Boolean(this.opts.pkcs11PinFile || this.io.env.JPKI_PKCS11_PIN || this.io.env.JPKI_PKCS11_PIN_FILE);
  }

  /**
   * The workspace directory, checked: a file, or a path under /proc, /sys or /dev, is refused before any
   * command creates or opens a store there (ERR_FILE_UNUSABLE). A missing one is left to Workspace.open.
   */
  get workspaceDir(): string {
    const [path, what] =
      this.opts.workspace !== undefined ? [this.opts.workspace, "workspace --workspace"]
      : this.io.env.JPKI_HOME ? [this.io.env.JPKI_HOME, "workspace $JPKI_HOME"]
      : [DEFAULT_WORKSPACE, "workspace"];
    return checkWorkspaceDir(path, what, { cwd: this.io.cwd });
  }

  /**
   * The PostgreSQL connection string of a postgres workspace: JPKI_STORE, from the environment only (never an
   * argument, which `ps` would show, nor config.json). Undefined when unset or empty.
   */
  get storeUrl(): string | undefined {
    return this.io.env.JPKI_STORE || undefined;
  }

  /** `signal`: a stop that ends the open while a PostgreSQL store waits on its server (rejects with its reason). */
  async openWorkspace(signal?: AbortSignal): Promise<Workspace> {
    const dir = this.workspaceDir;
    const { Workspace } = await workspaceLibrary();
    const { postgres, upgrade } = this.io.testing ?? {}; // test-only (Io.testing)
    return this.checkStore(
      await Workspace.openAsync(dir, {
        storeUrl: this.storeUrl,
        upgrade: { ...upgrade, onProgress: upgradeProgress(this.out) },
        ...(postgres ? { postgres } : {}),
        ...(signal ? { signal } : {}),
      }),
    );
  }

  /**
   * JPKI_STORE set for a workspace whose config.json says SQLite: the records go to its jpki.db, not to the
   * database JPKI_STORE names. The command goes ahead (JPKI_STORE is often exported for other, PostgreSQL
   * workspaces), and says so in one line on stderr — never with the connection string, which may hold a
   * password.
   */
  checkStore(ws: Workspace): Workspace {
    for (const p of ws.loosened ?? []) {
      this.out.info(`jpki: warning: ${p} could be read or written by other users: made owner-only again; treat what it holds (the four items, the encrypted CA keys) as possibly read`);
    }
    if (ws.config.store === "sqlite" && this.storeUrl) {
      this.out.info(`jpki: warning: JPKI_STORE is set, but the workspace ${ws.paths.root} keeps its records in its SQLite file jpki.db: JPKI_STORE is ignored`);
    }
    return ws;
  }

  /**
   * The passphrase of the workspace's CA keys (passphrase()), asked for only once the workspace is known to exist:
   * without one, ERR_WORKSPACE_MISSING, not a prompt whose answer is thrown away (or ERR_PASSPHRASE_MISSING, which
   * sent a script's author after the wrong thing).
   */
  async caPassphrase(): Promise<string> {
    const dir = this.workspaceDir;
    const { Workspace } = await workspaceLibrary();
    Workspace.assertExists(dir);
    return this.passphrase();
  }

  /**
   * The CA key passphrase when one was given without asking (--passphrase-file, else JPKI_PASSPHRASE), else
   * undefined: for a command that uses it where it can (a backup authenticates its manifest with it) and must
   * not stop for a prompt where it was not given (a backup run by cron).
   */
  givenPassphrase(): string | undefined {
    if (this.opts.passphraseFile) return readPassphraseFile(this.opts.passphraseFile, "passphrase file --passphrase-file", this.io.cwd, {});
    return this.io.env.JPKI_PASSPHRASE || undefined;
  }

  /**
   * The CA key passphrase: --passphrase-file, else JPKI_PASSPHRASE, else a prompt on a terminal.
   * Never taken from a command-line argument, where other users could read it.
   */
  async passphrase(opts: { readonly forNewKeys?: boolean } = {}): Promise<string> {
    if (this.opts.passphraseFile) return readPassphraseFile(this.opts.passphraseFile, "passphrase file --passphrase-file", this.io.cwd, opts);
    const env = this.io.env.JPKI_PASSPHRASE;
    // A final line break (a variable set from a file with its newline, as a mounted secret or an env file may) or
    // U+FFFD (bytes that were no UTF-8) stays in the variable, where the passphrase file and the prompt drop or
    // refuse it: keys made so opened only from this variable, never with the same passphrase typed or in
    // --passphrase-file (ERR_PASSPHRASE_WRONG). Found by a helper. Refused for keys about to be wrapped, as
    // readPassphraseFile refuses a file that is not UTF-8; keys already wrapped that way still open with it.
    if (env && opts.forNewKeys && (/[\r\n]$/.test(env) || env.includes("\uFFFD"))) {
      throw new JpkiError(
        "ERR_USAGE",
        /[\r\n]$/.test(env)
          ? "JPKI_PASSPHRASE ends with a line break, which the passphrase typed or in --passphrase-file never has: new CA keys would open only from this variable. Set it without the line break, or pass --passphrase-file FILE"
          : "JPKI_PASSPHRASE is not UTF-8 text (a byte no character decodes from): set it as UTF-8, as the passphrase typed or in --passphrase-file is",
      );
    }
    if (env) return env;
    // A workspace whose CA keys are in a PKCS#11 token needs the PIN, not a passphrase: none is asked for (a
    // software key opened with it fails with ERR_PASSPHRASE_WRONG, which says what to set).
    if (this.pkcs11PinGiven) return "";
    const stdin = this.io.stdin;
    if (stdin?.isTTY && this.io.stderr.isTTY) {
      // A prompt waits on a person: a signal held for a daemon's start (bin/early-stop.cjs) would leave it waiting.
      earlyStop()?.release();
      return promptHidden(stdin, this.io, "CA key passphrase: ");
    }
    throw new JpkiError("ERR_PASSPHRASE_MISSING", "the CA keys need a passphrase: set JPKI_PASSPHRASE or pass --passphrase-file FILE (CA keys in a PKCS#11 token need the token's PIN instead: JPKI_PKCS11_PIN or --pkcs11-pin-file FILE)");
  }
}

/**
 * A file holding a secret — a CA key passphrase, a registered verifier's bearer token: what it is for its refusals.
 * One rule for every such file (readSecretFile); each kind names its own code, so a script can tell which file to fix.
 */
export interface SecretFileKind {
  /** the code of the refusal of a file group or others can read or write */
  readonly unsafe: "ERR_PASSPHRASE_FILE_UNSAFE" | "ERR_TOKEN_FILE_UNSAFE";
  /** what to do about a secret others could read, after the chmod: "consider the passphrase disclosed" */
  readonly disclosed: string;
  /** the code of a file that exists but cannot be opened (permission, an I/O error) */
  readonly unreadable: "ERR_PASSPHRASE_MISSING" | "ERR_FILE_UNUSABLE";
  /** the largest file read: a secret is a line; this leaves room for any sane one */
  readonly maxBytes: number;
}

const PASSPHRASE_FILE: SecretFileKind = { unsafe: "ERR_PASSPHRASE_FILE_UNSAFE", disclosed: "consider the passphrase disclosed", unreadable: "ERR_PASSPHRASE_MISSING", maxBytes: 64 * 1024 };

/**
 * A registered verifier's bearer token (`jpki verifier add` printed it): a credential to jpki serve as much as a
 * passphrase is to the CA keys, so its file is held to the same rule.
 */
export const TOKEN_FILE: SecretFileKind = {
  unsafe: "ERR_TOKEN_FILE_UNSAFE",
  disclosed: "consider the token disclosed (the operator of jpki serve revokes the verifier and registers it again: jpki verifier revoke, jpki verifier add)",
  unreadable: "ERR_FILE_UNUSABLE",
  maxBytes: 64 * 1024,
};

/**
 * The bytes of a file holding a secret. Refused rather than read: a file larger than `kind.maxBytes`
 * (ERR_FILE_UNUSABLE), a missing file, a directory, FIFO or device (never waited on, also when swapped in after
 * the path check: the file is opened non-blocking and checked by its descriptor), and a file group or others can
 * read or write — as the token PIN file is (`kind.unsafe`, naming the file, its mode and `chmod 600`). A symlink
 * to an owner-only file is fine (mounted secrets).
 */
export function readSecretFile(file: string, what: string, cwd: string, kind: SecretFileKind): Buffer {
  const path = checkInputFile(file, what, { cwd });
  try {
    return readRegularFile(path, {
      ownerOnly: (mode) => new JpkiError(kind.unsafe, `the ${what} ${file} can be read or written by other users (mode ${mode.toString(8)}): chmod 600 it, and ${kind.disclosed}`),
      accept: (st) => {
        // a wrong path (a disk image, a log) is not read whole into memory, nor past 2 GiB fails as node's RangeError
        if (st.size > kind.maxBytes) throw new JpkiError("ERR_FILE_UNUSABLE", `${what} ${file}: is ${st.size} bytes, more than the ${kind.maxBytes} accepted for it`);
      },
    }).bytes;
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    if ((e as NodeJS.ErrnoException).code === NOT_REGULAR) throw new JpkiError("ERR_FILE_UNUSABLE", `${what} ${file}: is not a regular file`);
    throw new JpkiError(kind.unreadable, `cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, { cause: e });
  }
}

/**
 * The registered verifier's bearer token: from --token-file (its first line, trimmed; readSecretFile's rule, so
 * never from a file others can read), else $JPKI_VERIFIER_TOKEN; undefined when neither is given. Never an
 * option's value: command lines are visible to every user of the machine (ps) and kept in shell history.
 */
export function readVerifierToken(io: Io, file: string | undefined): string | undefined {
  let token: string | undefined;
  if (file !== undefined) token = readSecretFile(file, "verifier token file --token-file", io.cwd, TOKEN_FILE).toString("utf8").split(/\r?\n/)[0]!.trim();
  else token = io.env.JPKI_VERIFIER_TOKEN?.trim() || undefined;
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new JpkiError("ERR_USAGE", `the verifier token ${file !== undefined ? `in ${file}` : "in $JPKI_VERIFIER_TOKEN"} is empty or not the token \`jpki verifier add\` printed`);
  }
  return token;
}

/**
 * A passphrase from a file (readSecretFile's rule: owner-only, a regular file, at most 64 KiB): its content
 * without one leading UTF-8 byte order mark and one final line break (LF or CRLF).
 */
export function readPassphraseFile(file: string, what: string, cwd: string, opts: { readonly forNewKeys?: boolean } = {}): string {
  const bytes = readSecretFile(file, what, cwd, PASSPHRASE_FILE);
  // A file that is not UTF-8 (Shift_JIS, as a Japanese Windows editor saves by default) decodes with U+FFFD for its
  // bytes: a passphrase other than the one typed, and one many files decode to. Refused for keys about to be
  // wrapped (a new workspace, a new passphrase); keys already wrapped that way still open with the file.
  if (opts.forNewKeys && !isUtf8(bytes)) {
    throw new JpkiError("ERR_FILE_UNUSABLE", `${what} ${file}: is not UTF-8 text (saved as Shift_JIS?): save it as UTF-8, as the passphrase typed or in JPKI_PASSPHRASE is`);
  }
  const text = bytes.toString("utf8");
  // One leading byte order mark is the editor's, not the passphrase's: Windows editors write UTF-8 files with one,
  // and kept it made a CA that the same passphrase, typed or in JPKI_PASSPHRASE, did not open. (A final CRLF is
  // a line break as LF is.)
  const p = text.replace(/^\uFEFF/, "").replace(/\r?\n$/, "");
  if (!p) throw new JpkiError("ERR_PASSPHRASE_MISSING", `the ${what} ${file} is empty`);
  return p;
}

/**
 * Reads a passphrase typed at the terminal, not echoed. readline in terminal mode needs a real stream as its
 * output (it listens for 'resize'): given a bare { write } it threw "output.on is not a function", so every
 * prompt ended in ERR_INTERNAL with a stack trace. The output is a stream that drops what readline echoes. An
 * empty answer is no passphrase (as an empty file or JPKI_PASSPHRASE="" is), and Ctrl-C — which the terminal's
 * raw mode turns into a readline event, not a signal — ends the prompt instead of leaving it waiting.
 */
function promptHidden(stdin: NodeJS.ReadableStream, io: Io, prompt: string): Promise<string> {
  return new Promise((resolveP, rejectP) => {
    io.stderr.write(prompt);
    const discard = new Writable({ write: (_chunk, _enc, done) => done() });
    const rl = createInterface({ input: stdin, terminal: true, output: discard });
    rl.on("SIGINT", () => {
      rl.close();
      io.stderr.write("\n");
      rejectP(new JpkiError("ERR_PASSPHRASE_MISSING", "no passphrase given: the prompt was interrupted"));
    });
    rl.question("", (answer) => {
      rl.close();
      io.stderr.write("\n");
      if (!answer) rejectP(new JpkiError("ERR_PASSPHRASE_MISSING", "no passphrase given: the answer to the prompt was empty"));
      else resolveP(answer);
    });
  });
}

/** Errors that are a failed proof of who is acting: each leaves an "auth.failure" audit record. */
const AUTH_FAILURES: ReadonlySet<string> = new Set(["ERR_PASSPHRASE_WRONG", "ERR_PKCS11_PIN_WRONG", "ERR_CARD_PIN_WRONG", "ERR_CARD_PIN_BLOCKED", "ERR_CARD_ADMIN_KEY_WRONG"]);

/**
 * A job under withStopSignal: its stop signal, and what the command says and returns when the stop came while the
 * store was still opening (nothing was begun) — the same as its stop before it began, where it can say that.
 */
export interface StopWhileOpening<T> {
  readonly signal: AbortSignal;
  readonly stopped: () => T;
}

/**
 * Runs a function with an open workspace and always closes it. With `stop`, a stop signal while the store opens
 * — a PostgreSQL server that does not answer (up to the connect timeout, 15 s), another process's upgrade (up to
 * the lock timeout, 20 s) — ends the open at once and the command stops as it would have a moment later, with
 * `stop.stopped()` and its clean stop's exit: before, the stop waited for the open, which then failed with its own
 * error (ERR_STORE_UNREACHABLE, ERR_WORKSPACE_LOCKED) and exit code.
 */
export async function withWorkspace<T>(ctx: Context, f: (ws: Workspace) => Promise<T>, stop?: StopWhileOpening<T>): Promise<T> {
  let ws: Workspace;
  try {
    ws = await ctx.openWorkspace(stop?.signal);
  } catch (e) {
    if (stop?.signal.aborted && e === stop.signal.reason) return stop.stopped();
    throw e;
  }
  try {
    return await f(ws);
  } catch (e) {
    // A wrong passphrase or PIN has no store transaction of its own: it gets an audit record here (the error's
    // code only: never what was typed). Best effort: the error the user sees is the original one.
    if (isJpkiError(e) && AUTH_FAILURES.has(e.code)) await ws.store.appendAudit({ action: "auth.failure", subject: "", detail: { code: e.code } }).catch(() => undefined);
    throw e;
  } finally {
    await ws.close();
  }
}

/**
 * withWorkspace, with what the command runs (`load`: its part of the library) loading while the store opens instead
 * of before: a PostgreSQL open waits on the server — connecting, its statements — with the main thread idle, and
 * loading the modules is main-thread work (≈ 27 ms for `crl generate`'s). Begun after the open, so the store's own
 * modules and connection go first. An open that fails first raises its own error; `load` is then left unawaited.
 */
export async function withWorkspaceLoading<L, T>(ctx: Context, load: () => Promise<L>, f: (ws: Workspace, loaded: L) => Promise<T>): Promise<T> {
  let loading: Promise<L> | undefined;
  const done = withWorkspace(ctx, async (ws) => f(ws, await loading!));
  loading = load();
  loading.catch(() => undefined);
  return done;
}

/**
 * What `registry sweep` says when a stop came while its store was still opening: nothing was read or done.
 * `{"stopped": true}` in --json, as its own document says a stop. (The batches that read an input say it as any of
 * their stops: batch-outcome.ts stoppedBatch.)
 */
export function stoppedWhileOpening(ctx: Context, again: string): void {
  ctx.out.result({ stopped: true }, `stopped by a signal while the store was opening: nothing was read or changed; ${again}`);
}

/** What the launcher keeps of a stop asked for before the command's handlers are set (bin/early-stop.cjs). */
interface EarlyStop {
  /** lets go of the launcher's handlers; the signal that came meanwhile, if any */
  take(): NodeJS.Signals | undefined;
  /** lets go of the launcher's handlers and delivers the signal held, if any, as node's default would have */
  release(): void;
}

function earlyStop(): EarlyStop | undefined {
  return (globalThis as { [k: symbol]: EarlyStop | undefined })[Symbol.for("jpki.early-stop")];
}

export interface StopOptions {
  /**
   * What a signal after the first does. Unset, nothing (a daemon: see withStopSignal). "kill": node's default, at
   * once — for a job run by a person or a script, not a service manager (`issue --batch`), where a second Ctrl-C
   * means "now": what the job committed stays committed, what the stop would have finished is cut short.
   */
  readonly repeated?: "kill";
}

/**
 * Runs a long job with a stop signal wired to SIGTERM and SIGINT: the job finishes the batch in progress and
 * returns, so a daemon or a long ingestion ends cleanly and can be resumed. Once a signal came, the process is
 * on its way out and a repeated one changes nothing: the handlers stay while the job stops and after it
 * returns (the command's own clean-up, such as flushing the access log, comes after), so the process exits as
 * it would have. Listened to once, the second SIGTERM met node's default and killed the process mid-stop (exit
 * 143, its last access-log lines and fetch records lost) — and a second one is the rule, not a slip: systemd
 * signals every process of the unit, so each `jpki serve --workers` worker got one from systemd and one from
 * its primary. A stop that hangs is ended by SIGKILL (the --workers primary sends it after its deadline).
 * `command` names the caller as bin/early-stop.cjs STOPPING_COMMANDS does (a literal: the test reads it).
 * `stoppedBy` names the first signal (or the one the launcher held): a batch stopped with input unread (`issue
 * --batch`, `registry import`, `notices ingest`) exits with it (128 + n: batch-outcome.ts stoppedBatch).
 */
export async function withStopSignal<T>(
  command: string,
  f: (signal: AbortSignal, stoppedBy: () => NodeJS.Signals | undefined) => Promise<T>,
  opts: StopOptions = {},
): Promise<T> {
  const controller = new AbortController();
  let by: NodeJS.Signals | undefined;
  const stop = (name: NodeJS.Signals) => {
    if (by && opts.repeated === "kill") {
      // Let go and meet the signal again with node's default: the process ends as it would have without handlers.
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      process.kill(process.pid, name);
      return;
    }
    by ??= name;
    controller.abort();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // A signal the launcher held since the start (bin/early-stop.cjs): the job is told at once, and stops as it would
  // have a moment later. Taken after this function's handlers are set, so none falls between the two.
  const held = earlyStop()?.take();
  if (held) {
    by = held;
    controller.abort();
  }
  try {
    return await f(controller.signal, () => by);
  } finally {
    // Unsignalled (a job that ended by itself, or a test running the CLI in-process): let go, as before.
    if (!controller.signal.aborted) {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
    }
  }
}
