/**
 * Shared helpers for the integration tests: run the CLI in-process, temp dirs, card keys via openssl, and the
 * store of a workspace.
 *
 * The store suites (STORE_SUITES in vitest.config.ts) run in two projects. In "sqlite" nothing here touches
 * JPKI_STORE. In "postgres", `inject("jpkiPostgres")` names the socket directory of the run's throwaway server,
 * and every workspace gets a database of its own there, named after the workspace's absolute path
 * ({@link workspaceStore}): `cli()` puts it in JPKI_STORE for each command (unless the test sets JPKI_STORE
 * itself), so `ca init` and `demo` make PostgreSQL workspaces and every later command finds the same database;
 * a test that spawns the CLI adds {@link storeEnv} to the child's environment. Tests look at a workspace's
 * facts through {@link openWorkspace} (the store API), never jpki.db directly, so they hold on both backends.
 */
import { cardKeyVariant } from "../card-fixtures.js";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { expect, inject } from "vitest";
import { DEFAULT_WORKSPACE } from "../../src/cli/context.js";
import { run } from "../../src/cli/program.js";
import { SPOOL_SETTLE_MS } from "../../src/ca/spool.js";
import type { Io } from "../../src/cli/output.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { workspaceDatabase, type DemoTemplate } from "../demo-template.js";
import { connectionString } from "../postgres-server.js";
import { CARD_KEY_POOL_ENV } from "../card-key-pool.js";
import { childOutput } from "../child-output.js";

/** The socket directory of the throwaway server, in the "postgres" project; undefined in "sqlite". */
const pgSocket: string | undefined = inject("jpkiPostgres");

/** True when this file runs in the "postgres" project: new workspaces are made on PostgreSQL. */
export const onPostgres = pgSocket !== undefined;

/** The database of a workspace: a name derived from its absolute path, so every process agrees on it. */
const databaseOf = workspaceDatabase;

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: connectionString(pgSocket!, "postgres") });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const created = new Set<string>();

/**
 * The JPKI_STORE of the workspace at `ws` in the "postgres" project — its own database, created (empty) on
 * first use — or undefined on SQLite.
 */
export async function workspaceStore(ws: string): Promise<string | undefined> {
  if (!pgSocket) return undefined;
  const db = databaseOf(ws);
  if (!created.has(db)) {
    try {
      await adminQuery(`CREATE DATABASE ${db}`);
    } catch (e) {
      // duplicate_database: another process made it; a unique violation on pg_database: it did so at this moment
      // (two spawned processes of one workspace asking at once)
      const code = (e as { code?: string }).code;
      if (code !== "42P04" && code !== "23505") throw e;
    }
    created.add(db);
  }
  return connectionString(pgSocket, db);
}

/** The environment a spawned CLI needs for the workspace at `ws`: `{ JPKI_STORE }` on PostgreSQL, else nothing. */
export async function storeEnv(ws: string): Promise<Record<string, string>> {
  const url = await workspaceStore(ws);
  return url ? { JPKI_STORE: url } : {};
}

/** The store kind config.json records for the workspace at `ws`: what this project must have made. */
export function storeKindOf(ws: string): string {
  return (JSON.parse(readFileSync(join(ws, "config.json"), "utf8")) as { store: string }).store;
}

/** The store kind new workspaces get in this project. */
export const expectedStore = onPostgres ? "postgres" : "sqlite";

/** Sets workspace settings in config.json (as an operator edits it), e.g. `{ crlPem: true }`. */
export function setConfig(ws: string, settings: Record<string, unknown>): void {
  const path = join(ws, "config.json");
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), ...settings }, null, 2) + "\n");
}

/** Opens the workspace at `ws` on its store, as the CLI would; close it after use. */
export async function openWorkspace(ws: string): Promise<Workspace> {
  return Workspace.openAsync(ws, { storeUrl: await workspaceStore(ws) });
}

/**
 * Copies a workspace: its directory and, on PostgreSQL, its database (CREATE DATABASE … TEMPLATE, which needs
 * no one connected to the source: close every store on it first).
 */
export async function copyWorkspace(from: string, to: string): Promise<void> {
  cpSync(from, to, { recursive: true });
  if (!pgSocket) return;
  await adminQuery(`CREATE DATABASE ${databaseOf(to)} TEMPLATE ${databaseOf(from)}`);
  created.add(databaseOf(to));
}

/**
 * Copies a suite's starting point, made once per file, into the directory `to`: the template directory holds a
 * workspace `ws` and the files the tests read beside it; the files are copied as they are, the workspace with
 * {@link copyWorkspace}. Returns the copy's workspace.
 */
export async function copyTemplate(template: string, to: string): Promise<string> {
  for (const f of readdirSync(template)) if (f !== "ws") cpSync(join(template, f), join(to, f), { recursive: true });
  await copyWorkspace(join(template, "ws"), join(to, "ws"));
  return join(to, "ws");
}

/**
 * The workspace a command line names, resolved as the CLI does: --workspace/-w, else JPKI_HOME, else .jpki in
 * the working directory; `demo` uses --dir, else --workspace, else jpki-demo.
 */
function workspaceOfCommand(args: readonly string[], cwd: string, env: Record<string, string | undefined>): string {
  const value = (...names: string[]) => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      for (const n of names) {
        if (a === n) return args[i + 1];
        if (a.startsWith(`${n}=`)) return a.slice(n.length + 1);
      }
    }
    return undefined;
  };
  const workspace = value("--workspace", "-w");
  if (args.includes("demo")) return resolve(cwd, value("--dir", "-d") ?? workspace ?? "jpki-demo");
  return resolve(cwd, workspace ?? env.JPKI_HOME ?? DEFAULT_WORKSPACE);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

/**
 * Runs the CLI in-process. On PostgreSQL, JPKI_STORE names the database of the workspace the command line
 * names, unless `env` says JPKI_STORE itself (even as undefined).
 */
export async function cli(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; tty?: boolean }): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const env: Record<string, string | undefined> = { JPKI_PASSPHRASE: "correct horse", ...opts.env };
  if (onPostgres && !(opts.env && "JPKI_STORE" in opts.env)) env.JPKI_STORE = await workspaceStore(workspaceOfCommand(args, opts.cwd, env));
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    // tty: stderr as a terminal's, where the progress lines go (output.ts)
    stderr: { write: (s: string) => (stderr += s), ...(opts.tty ? { isTTY: true } : {}) },
    env,
    cwd: opts.cwd,
  };
  const code = await run(args, io);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

export function tempDir(prefix = "jpki-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The passphrase of the CA keys in fixtures/workspace-v6. */
export const V6_PASSPHRASE = "fixture-v6";

/**
 * fixtures/workspace-v6 unpacked into a new directory `dir`: `ws`, a workspace made by an earlier release (store
 * schema 6, 94 CAs, 800 certificates, its CA keys under V6_PASSPHRASE), which the current jpki upgrades on open.
 */
export function workspaceV6(prefix?: string): { dir: string; ws: string } {
  const dir = tempDir(prefix);
  execFileSync("tar", ["xzf", join(import.meta.dirname, "../../fixtures/workspace-v6/workspace-v6.tar.gz"), "-C", dir]);
  return { dir, ws: join(dir, "v6ws") };
}

/** Runs a command, returning status and output without throwing. */
export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): { status: number; out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: "utf8" });
  return { status: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/**
 * How many RSA-2048 card keys each test file has drawn from the run's pool (CARD_KEY_POOL_ENV), by the file's path:
 * in the "sqlite-shared" project one worker runs file after file and this module stays loaded, so a count of the
 * module's own would go on from where the file before left it, and each file would draw keys past those the pool
 * holds (an openssl keygen each) instead of the pool's first ones.
 */
const drawn = new Map<string, number>();

/** The pool slot of the current test file's next key. */
function nextSlot(): number {
  const file = expect.getState().testPath ?? "";
  const n = drawn.get(file) ?? 0;
  drawn.set(file, n + 1);
  return n;
}

/**
 * A card key pair made by openssl (an independent implementation); returns the paths. The default, RSA-2048, comes
 * from the run's pool when there is one: the file's n-th such key is the pool's n-th, made by openssl the first
 * time any file asks for it and copied after. An openssl RSA keygen (two processes, ≈ 0.3 s) ran for each of the
 * hundred-odd calls of a run, though what a key must be is distinct from the other keys of its file (a workspace
 * certifies a key to one resident and one type; the files share no workspace), which the n-th-of-the-file rule
 * keeps. Other specs (another size, EC) are made each time.
 */
export function cardKey(dir: string, name: string, spec?: string[]): { key: string; pub: string } {
  const key = join(dir, `${name}.key.pem`);
  const pub = join(dir, `${name}.pub.pem`);
  const pool = process.env[CARD_KEY_POOL_ENV];
  if (spec || !pool) {
    opensslKey(key, pub, spec ?? ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    return { key, pub };
  }
  const slot = join(pool, String(nextSlot()));
  if (!existsSync(`${slot}.key.pem`)) {
    // Made beside the slot and renamed into it, the key last: a file finding the key finds the public key too.
    // Two files making the same slot at once each rename a whole pair; either pair is the slot's.
    mkdirSync(pool, { recursive: true });
    const making = `${slot}.${process.pid}`;
    opensslKey(`${making}.key.pem`, `${making}.pub.pem`, ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    renameSync(`${making}.pub.pem`, `${slot}.pub.pem`);
    renameSync(`${making}.key.pem`, `${slot}.key.pem`);
  }
  copyFileSync(`${slot}.key.pem`, key);
  copyFileSync(`${slot}.pub.pem`, pub);
  return { key, pub };
}

function opensslKey(key: string, pub: string, spec: string[]): void {
  execFileSync("openssl", ["genpkey", ...spec, "-out", key], { stdio: "ignore" });
  execFileSync("openssl", ["pkey", "-in", key, "-pubout", "-out", pub], { stdio: "ignore" });
}

/**
 * A source of card public keys for a batch: each call the next variant of `pem` (card-fixtures.ts cardKeyVariant),
 * 1, 2, 3 …, never `pem` itself, which stays free for the test's own `--public-key` issues (and whose private key
 * the test holds). A workspace certifies a key to one resident and one type (ERR_KEY_IN_USE).
 */
export function cardKeys(pem: string, from = 1): () => string {
  let n = from - 1;
  return () => cardKeyVariant(pem, ++n);
}

/** `n` card public keys (PEM), one per card and type: a workspace certifies a key to one resident and one type. */
export function cardPubs(dir: string, name: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => readFileSync(cardKey(dir, `${name}-${i}`).pub, "utf8"));
}

export function csrFor(dir: string, key: string, name: string): string {
  const csr = join(dir, `${name}.csr.pem`);
  execFileSync("openssl", ["req", "-new", "-key", key, "-subj", "/CN=card", "-sha256", "-out", csr], { stdio: "ignore" });
  return csr;
}

export function writeJsonl(path: string, rows: unknown[]): string {
  writeFileSync(path, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return path;
}

/**
 * Dates every notice file in a spool (and in its processing/) SPOOL_SETTLE_MS back: a file the registry finished
 * writing a while ago, which `watch` reads at once. Written just before, each `watch` run first waited a whole
 * SPOOL_SETTLE_MS (1 s) for it to go quiet — what src/ca/spool.test.ts tests ("is read only once it has gone
 * quiet"), not what the suites calling this do. Dot-names (files still being staged, claims' heartbeats) and
 * entries that are not regular files keep their times: what the watch makes of their age is for the tests to set.
 */
export function settledSpool(spool: string): void {
  const past = new Date(Date.now() - 2 * SPOOL_SETTLE_MS);
  for (const d of [spool, join(spool, "processing")]) {
    for (const f of listFiles(d)) if (!f.startsWith(".") && lstatSync(join(d, f)).isFile()) utimesSync(join(d, f), past, past);
  }
}

export function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The built CLI, for tests that run it as its own process (beside a server, or several at once). */
export const MAIN = join(import.meta.dirname, "..", "..", "bin", "jpki.cjs");

/** The passphrase the process-level suites give their workspaces' CA keys. */
const PROCESS_PASSPHRASE = "correct horse";

/** A port free on loopback now (the OS picks it; a server started right after takes it). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the built CLI on a workspace as its own process, with the workspace's store and the CA passphrase. */
export async function jpkiProcess(ws: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const full = { ...process.env, JPKI_PASSPHRASE: PROCESS_PASSPHRASE, ...(await storeEnv(ws)), ...env };
  const out = childOutput(spawn(process.execPath, [MAIN, "--workspace", ws, ...args], { env: full }));
  const { code } = await out.ended;
  return { code, stdout: out.stdout(), stderr: out.stderr() };
}

/**
 * Starts `jpki --workspace WS COMMAND…` (the built CLI, with the CA passphrase and `env`) and sends it SIGTERM
 * `settleMs` after `waiting(pid)` first says it waits where the test holds it (a store that never answers, a lock):
 * the signal comes in the middle of the wait, not as it began. `endedBeforeSignal`: it had exited by then.
 * `testing`: test-only settings (Io.testing, run by serve-bound.mjs).
 */
export async function stopWhileWaiting(
  ws: string,
  command: string[],
  o: { readonly env?: Record<string, string>; readonly waiting: (pid: number) => boolean | Promise<boolean>; readonly settleMs: number; readonly testing?: object },
): Promise<{ code: number | null; afterSignalMs: number; endedBeforeSignal: boolean; stdout: string; stderr: string }> {
  const launch = o.testing === undefined ? [MAIN] : [MAIN, "--run-module", SERVE_BOUND, JSON.stringify(o.testing)];
  const child = spawn(process.execPath, [...launch, "--workspace", ws, ...command], { env: { ...process.env, JPKI_PASSPHRASE: PROCESS_PASSPHRASE, ...o.env }, stdio: ["ignore", "pipe", "pipe"] });
  // its end once its output is read (child-output.ts): what it says last (its stop's line) the callers check
  const out = childOutput(child);
  const exited = out.ended.then(({ code }) => code);
  let ended = false;
  void exited.then(() => (ended = true));
  // A minute to reach the wait (it was 500 × 20 ms and the checks between: a CLI's start on a loaded host takes seconds)
  const givenUp = performance.now() + 60_000;
  while (!ended && !(await o.waiting(child.pid!))) {
    if (performance.now() > givenUp) {
      child.kill("SIGKILL");
      throw new Error(`it never waited: ${out.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, o.settleMs));
  const endedBeforeSignal = ended;
  const signalled = Date.now();
  child.kill("SIGTERM");
  const code = await exited;
  return { code, afterSignalMs: Date.now() - signalled, endedBeforeSignal, stdout: out.stdout(), stderr: out.stderr() };
}

export interface RunningServe {
  readonly child: ChildProcess;
  readonly url: string;
  /** what it has written to stderr so far: all of it once `exited` has settled */
  readonly stderr: () => string;
  /** its exit code, once it has exited and its output has been read to the end */
  readonly exited: Promise<number | null>;
}

/** The CLI with test-only settings (Io.testing), run through the launcher by --run-module. */
const SERVE_BOUND = join(import.meta.dirname, "serve-bound.mjs");

/**
 * Starts `jpki serve --listen 127.0.0.1:<free port> ARGS` on a workspace and resolves once it says it listens,
 * or has exited (then `exited` has settled and stderr says why). `testing`: test-only settings (Io.testing, run by
 * serve-bound.mjs) for tests that would wait out the server's store bound (5 s) or its store's close (2 s).
 */
export async function startServe(ws: string, args: string[], env: Record<string, string> = {}, testing?: { storeWaitMs?: number; postgres?: { closeWaitMs?: number; lockTimeoutMs?: number } }): Promise<RunningServe> {
  // A --listen of the caller's is the one: given twice, an option is a usage error.
  const given = args.indexOf("--listen");
  const listen = given >= 0 ? args[given + 1]! : `127.0.0.1:${await freePort()}`;
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  const launch = testing === undefined ? [MAIN] : [MAIN, "--run-module", SERVE_BOUND, JSON.stringify(testing)];
  const child = spawn(process.execPath, [...launch, "--workspace", ws, "serve", ...(given >= 0 ? [] : ["--listen", listen]), ...args], {
    env: { ...process.env, JPKI_PASSPHRASE: PROCESS_PASSPHRASE, ...(await storeEnv(ws)), ...env },
  });
  // settled once its stderr is read to the end (child-output.ts): callers check what it said last after `exited`
  const out = childOutput(child);
  const exited = out.ended.then(({ code }) => code);
  await Promise.race([
    new Promise<void>((resolve) => {
      const check = () => (/listening/.test(out.stderr()) ? resolve() : setTimeout(check, 50));
      check();
    }),
    exited,
  ]);
  return { child, url: `http://127.0.0.1:${port}`, stderr: out.stderr, exited };
}

/** What `jpki demo --json` reports that the validation tests read: its workspace, certificates and revocations. */
export interface DemoRun {
  readonly workspace: string;
  readonly certificates: ReadonlyArray<{ readonly serial: string; readonly ca: string; readonly type: "signature" | "authentication"; readonly path: string }>;
  readonly revoked: { readonly serial: string; readonly ca: string };
  readonly notice: { readonly revokedByMove: string; readonly ca: string };
}

/**
 * A workspace at `ws` as `jpki --workspace WS ca init -p 13` makes it (Tokyo's two CAs, the passphrase `cli`
 * gives): a copy of the one the global setup made on this project's backend (test/demo-template.ts
 * makeTokyoTemplate). For suites whose starting workspace is only that; a suite about `ca init` itself, or one that
 * needs CA keys of its own beside another workspace's (a foreign CA), runs the command.
 */
export async function tokyoWorkspace(ws: string): Promise<void> {
  await copyWorkspace(onPostgres ? inject("jpkiTokyoPostgres") : inject("jpkiTokyoSqlite"), resolve(ws));
}

/** The run's demo on this project's backend, as the global setup made it (test/demo-template.ts). */
export function demoTemplate(): DemoTemplate {
  return onPostgres ? inject("jpkiDemoPostgres") : inject("jpkiDemoSqlite");
}

/**
 * `jpki demo --json` in `cwd` (into cwd/jpki-demo) and its report: a copy of the run's demo on this project's
 * backend, made once by the global setup (test/demo-template.ts), with its report's paths moved to the copy.
 * What the demo itself does is test/integration/demo.test.ts's to test.
 */
export async function runDemo(cwd: string): Promise<DemoRun> {
  const template = demoTemplate();
  const workspace = join(resolve(cwd), "jpki-demo");
  await copyWorkspace(template.workspace, workspace);
  return JSON.parse(template.report.replaceAll(JSON.stringify(template.workspace).slice(1, -1), JSON.stringify(workspace).slice(1, -1))) as DemoRun;
}

/** The demo's certificates nobody revoked (the demo revokes one by hand and one by a relocation notice). */
export function unrevoked(demo: DemoRun): DemoRun["certificates"] {
  const gone = new Set([demo.revoked.serial, demo.notice.revokedByMove]);
  return demo.certificates.filter((c) => !gone.has(c.serial));
}

/**
 * `count` registry records in 千代田区 (131016) for a suite that issues by resident: codes from `stem` (8 digits,
 * unique per suite, so suites never share a resident), names numbered 一, 二, 三 … after `name`.
 */
export function chiyodaResidents(count: number, stem: string, o: { name: string; birthDate: string; gender: "male" | "female" }) {
  return Array.from({ length: count }, (_, i) => ({
    residentCode: makeResidentCode(`${stem}${10 + i}`),
    municipalityCode: "131016",
    name: `${o.name}${"一二三四五六七八九"[i]}`,
    address: "東京都千代田区千代田１番１号",
    birthDate: o.birthDate,
    gender: o.gender,
    status: "active",
  }));
}

/** `jpki issue` for a resident with a fresh card key, written to DIR/NAME.pem: its serial, CA and file. */
export async function issueWithCardKey(ws: string, dir: string, name: string, residentCode: string): Promise<{ serial: string; ca: string; path: string }> {
  const k = cardKey(dir, name);
  const path = join(dir, `${name}.pem`);
  const r = await cli(["--workspace", ws, "issue", "--resident", residentCode, "--public-key", k.pub, "-o", path, "--json"], { cwd: dir });
  if (r.code !== 0) throw new Error(`jpki issue for ${name} exited ${r.code}: ${r.stderr}`);
  return { serial: r.json().serial, ca: r.json().ca, path };
}

/** A workspace at `ws` holding Tokyo's signature CA, with `people` imported into its registry (residents.jsonl in `dir`). */
export async function tokyoSignatureWorkspace(dir: string, ws: string, people: unknown[]): Promise<void> {
  const init = await cli(["--workspace", ws, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  writeJsonl(join(dir, "residents.jsonl"), people);
  const imp = await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
}
