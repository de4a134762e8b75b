/**
 * Fault injection for the crash and concurrency guarantees (issue 7 point 9). Spawns the built CLI on one
 * workspace, several commands at once — two `notices ingest` of files whose residents' sequences continue
 * from one to the other, another ingest, `issue --batch`, `crl generate`, `registry apply` and a `watch`
 * daemon — SIGKILLs some of them after a random delay, recovers as an operator would (re-run each killed
 * or locked-out command once, then `watch SPOOL --once`), and checks the invariants on what is left.
 * Every random choice comes from one seeded PRNG per round, so a failing round is replayed by its seed
 * (kill timing relative to the work done still varies with the machine).
 *
 * The harness relies only on the CLI, the files it writes, and these store columns: certificates(serial,
 * ca_id, resident_code, application_id, not_after), certified(resident_code, serial, revoked_at), crls(ca_id,
 * number, path), notices(notice_id, status, resident_code, sequence). It parses CRLs with its own DER reader (./der.ts) and cross-checks with
 * `openssl crl`.
 */
import { cardKeyVariant } from "../card-fixtures.js";
import { execFileSync, spawn } from "node:child_process";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { certificateDer, certificateSubject, normaliseSerial, pemToDer, readCrl, type CrlFacts } from "./der.js";

/** The repository: found by walking up to bin/jpki.cjs (this file runs from test/chaos/ or dist/test/chaos/). */
export const REPO_ROOT = ((): string => {
  for (let d = import.meta.dirname; ; d = dirname(d)) {
    if (existsSync(join(d, "bin/jpki.cjs")) && existsSync(join(d, "package.json"))) return d;
    if (dirname(d) === d) throw new Error(`no bin/jpki.cjs above ${import.meta.dirname}`);
  }
})();
const PASSPHRASE = "chaos passphrase";

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness

export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** uniform integer in [0, n) */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32 over a 32-bit seed: the same seed gives the same round plan on every machine. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p };
}

// ---------------------------------------------------------------------------------------------------------
// The CLI as a child process

export interface Cli {
  /** the compiled entry point (dist/src/cli/main.js, or a private build) */
  readonly main: string;
}

export interface ProcResult {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface Running {
  readonly pid: number | undefined;
  readonly done: Promise<ProcResult>;
  /** sends a signal to this child only (by its pid); false when it had already exited */
  kill(signal: NodeJS.Signals): boolean;
  exited(): boolean;
}

/** Starts `node bin/jpki.cjs --run-module MAIN ARGS…`: the launcher sizes libuv's pool as in production. */
export function startCli(cli: Cli, args: readonly string[], cwd: string): Running {
  const started = Date.now();
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin/jpki.cjs"), "--run-module", cli.main, ...args], {
    cwd,
    env: { ...process.env, JPKI_PASSPHRASE: PASSPHRASE, JPKI_HOME: undefined, FORCE_COLOR: "0", JPKI_DEBUG: "1" /* a bug's stack trace, for the report */, JPKI_RUN_ANY_MODULE: "1" /* a private copy of dist/ */ },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  let ended = false;
  const done = new Promise<ProcResult>((res) => {
    child.on("close", (code, signal) => {
      ended = true;
      res({ args, code, signal, stdout, stderr, ms: Date.now() - started });
    });
    child.on("error", (e) => {
      ended = true;
      res({ args, code: -1, signal: null, stdout, stderr: `${stderr}\nspawn failed: ${e.message}`, ms: Date.now() - started });
    });
  });
  return {
    pid: child.pid,
    done,
    kill: (signal) => (ended || child.exitCode !== null || child.signalCode !== null ? false : child.kill(signal)),
    exited: () => ended || child.exitCode !== null || child.signalCode !== null,
  };
}

export async function runCli(cli: Cli, args: readonly string[], cwd: string): Promise<ProcResult> {
  return startCli(cli, args, cwd).done;
}

/** Commands run one after another by one process of the CLI: see {@link cliSession}. */
export interface CliSession {
  /** Runs one command (after the ones asked for before it have ended) and says how it ended. */
  run(args: readonly string[], cwd: string): Promise<ProcResult>;
  /** Ends the process; the commands asked for before have ended. */
  close(): Promise<void>;
}

/**
 * The child's source, run with `node --input-type=module -e`: imports the build's program (argv[1]) and runs each
 * command it is sent over IPC with `run(args, io)`, as the integration tests' `cli()` runs the program in-process,
 * one at a time, its output captured; exits when the parent disconnects.
 */
const SESSION = `
const { run } = await import(process.argv[1]);
let queue = Promise.resolve();
process.on("message", ({ id, args, cwd }) => {
  queue = queue.then(async () => {
    let stdout = "", stderr = "";
    const io = { stdout: { write: (s) => ((stdout += s), true) }, stderr: { write: (s) => ((stderr += s), true) }, env: process.env, cwd };
    const started = Date.now();
    let code;
    try {
      code = await run(args, io);
    } catch (e) {
      code = 70;
      stderr += "jpki session: run() threw " + ((e && e.stack) || e) + "\\n";
    }
    process.send({ id, code, stdout, stderr, ms: Date.now() - started });
  });
});
process.on("disconnect", () => queue.then(() => process.exit(0)));
process.send({ ready: true });
`;

/**
 * One process of the CLI (the build `cli` names, its program run as bin/jpki.cjs --run-module runs it) that runs the
 * commands it is given one after another: for a workspace built up step by step, where what is tested is the
 * workspace and not how each command starts. A spawned jpki spends ≈ 1 s of CPU loading the program and its
 * libraries, and a PBKDF2 of the CA keys' passphrase (≈ 0.15 s) for each command that opens a key; here once each.
 * Commands killed, run at once or stopped by a signal are {@link startCli}'s, processes of their own.
 */
export function cliSession(cli: Cli): CliSession {
  const program = pathToFileURL(join(dirname(cli.main), "program.js")).href;
  const child = spawn(process.execPath, ["--input-type=module", "-e", SESSION, program], {
    // as startCli's processes: the same variables, and libuv's pool sized as bin/jpki.cjs sizes it
    env: { ...process.env, JPKI_PASSPHRASE: PASSPHRASE, JPKI_HOME: undefined, FORCE_COLOR: "0", JPKI_DEBUG: "1", UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(availableParallelism()) },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<void>((res) => child.on("exit", () => res()));
  const waiting = new Map<number, { args: readonly string[]; resolve: (r: ProcResult) => void }>();
  let ready!: () => void;
  const started = new Promise<void>((res) => (ready = res));
  child.on("message", (m: { ready?: true; id: number; code: number; stdout: string; stderr: string; ms: number }) => {
    if (m.ready) return ready();
    const w = waiting.get(m.id)!;
    waiting.delete(m.id);
    w.resolve({ args: w.args, code: m.code, signal: null, stdout: m.stdout, stderr: m.stderr, ms: m.ms });
  });
  // a session that died (it should not: the commands' errors are their exit codes) fails what it still owed
  void exited.then(() => {
    for (const [id, w] of waiting) {
      waiting.delete(id);
      w.resolve({ args: w.args, code: -1, signal: child.signalCode, stdout: "", stderr: `the jpki session ended (exit ${child.exitCode}):\n${stderr}`, ms: 0 });
    }
  });
  let next = 0;
  return {
    run: (args, cwd) =>
      new Promise<ProcResult>((resolve) => {
        const id = ++next;
        waiting.set(id, { args, resolve });
        void started.then(() => child.connected && child.send({ id, args, cwd }));
      }),
    close: async () => {
      await started;
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}

/**
 * A private copy of dist/ (built once per run by the vitest global setup, test/global-setup.ts), so a concurrent
 * `npm run build` cannot swap files under a round. Copying takes a fraction of a second where compiling src/
 * again with tsc took ~20 s of CPU per suite, and runs the same compiled code the other spawned-CLI suites run.
 */
export function privateDistCopy(dir: string): Cli {
  const dist = join(REPO_ROOT, "dist");
  if (!existsSync(join(dist, "src/cli/main.js"))) throw new Error(`${dist} is not built: the vitest global setup (or npm run build) builds it`);
  cpSync(dist, dir, { recursive: true });
  // src/version.ts reads the version through the package's own "./package.json" export: the copy is the package.
  cpSync(join(REPO_ROOT, "package.json"), join(dir, "package.json"));
  return withModules(dir);
}

function withModules(dir: string): Cli {
  // Packages resolve by walking up from the file: give the private copy the repository's node_modules.
  if (!existsSync(join(dir, "node_modules"))) symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return { main: join(dir, "src/cli/main.js") };
}

export const distCli: Cli = { main: join(REPO_ROOT, "dist/src/cli/main.js") };

// ---------------------------------------------------------------------------------------------------------
// Environment: the inputs and a base workspace, built once with the CLI itself

/** One line of an input notice file, as the harness wrote it. */
export interface InputLine {
  readonly line: number;
  /** null for a line that is not a notice at all (malformed JSON) */
  readonly noticeId: string | null;
  /** the resident's notice chain (follows resident-code changes); null when not a notice */
  readonly chain: number | null;
  readonly sequence: number | null;
  /** why the harness expects a rejection, when it does */
  readonly bad?: string;
}

export interface Manifest {
  /** notice files by base name → their lines */
  readonly noticeFiles: Record<string, InputLine[]>;
  /** files `notices ingest` runs on directly */
  readonly ingestFiles: readonly string[];
  /** files dropped into the spool for `watch` */
  readonly spoolFiles: readonly string[];
  /** round application file: line → applicationId */
  readonly roundApplications: ReadonlyArray<{ line: number; applicationId: string }>;
  readonly initApplications: number;
  /** chains whose first notice was left out of every file: their later notices must stay held */
  readonly gapChains: readonly number[];
}

export interface Environment {
  readonly dir: string;
  readonly cli: Cli;
  readonly inputs: string;
  readonly base: string;
  readonly manifest: Manifest;
}

export interface EnvironmentOptions {
  readonly dir: string;
  readonly cli: Cli;
  readonly residents?: number;
  readonly notices?: number;
  readonly fixtureSeed?: string;
}

function must(r: ProcResult, what: string, ok: readonly number[] = [0]): ProcResult {
  if (r.code === null || !ok.includes(r.code)) throw new Error(`${what} failed (exit ${r.code}, signal ${r.signal}):\n${r.stderr}${r.stdout.slice(0, 2000)}`);
  return r;
}

function jsonl(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Builds the inputs and the base workspace: `ca init --prefecture 13,27`, `fixtures generate`,
 * `registry import`, an initial `issue --batch` for every resident of 13 and 27 (both types) and a first
 * `crl generate`, one after another in one process of the CLI (cliSession: the rounds start from copies of the
 * base; how its commands started is not theirs to test). The notice feed is split by resident into files (see
 * splitFeed).
 */
export async function prepareEnvironment(o: EnvironmentOptions): Promise<Environment> {
  const session = cliSession(o.cli);
  try {
    return await prepareIn(session, o);
  } finally {
    await session.close();
  }
}

async function prepareIn(session: CliSession, o: EnvironmentOptions): Promise<Environment> {
  const inputs = join(o.dir, "inputs");
  const base = join(o.dir, "base");
  mkdirSync(inputs, { recursive: true });
  const run = (args: string[], what: string, ok?: number[]) => session.run(args, o.dir).then((r) => must(r, what, ok));
  await run(["fixtures", "generate", "--residents", String(o.residents ?? 3000), "--notices", String(o.notices ?? 8000), "--seed", o.fixtureSeed ?? "chaos", "-o", inputs], "fixtures generate");
  await run(["--workspace", base, "ca", "init", "--prefecture", "13,27"], "ca init");
  // PEM copies too (config crlPem): two files per CRL, and the check that they always hold the same CRL.
  const configPath = join(base, "config.json");
  writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), crlPem: true }, null, 2) + "\n");
  await run(["--workspace", base, "registry", "import", join(inputs, "residents.jsonl")], "registry import");

  // A card key per application (a workspace certifies a key to one resident and one type): variants of one.
  const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }).toString();
  const local = jsonl(join(inputs, "residents.jsonl")).filter((r) => /^(13|27)/.test(String(r.municipalityCode)));
  let k = 0;
  const app = (r: Record<string, unknown>, type: string, id: string) => ({ residentCode: r.residentCode, type, publicKey: cardKeyVariant(key, ++k), applicationId: id });
  const init = local.flatMap((r) => ["signature", "authentication"].map((t) => app(r, t, `init-${String(r.residentCode)}-${t}`)));
  writeFileSync(join(inputs, "apps-init.jsonl"), init.map((a) => JSON.stringify(a)).join("\n") + "\n");
  await run(["--workspace", base, "issue", "--batch", join(inputs, "apps-init.jsonl"), "--json"], "initial issue --batch");
  await run(["--workspace", base, "crl", "generate", "--prefecture", "all"], "initial crl generate");

  // The round's batch: new certificates for every other local resident (superseding the initial ones)
  // and some initial applications again (a re-run must return the certificate already issued).
  const round = [
    ...local.filter((_, i) => i % 2 === 0).flatMap((r) => ["signature", "authentication"].map((t) => app(r, t, `round-${String(r.residentCode)}-${t}`))),
    ...init.filter((_, i) => i % 7 === 0),
  ];
  writeFileSync(join(inputs, "apps-round.jsonl"), round.map((a) => JSON.stringify(a)).join("\n") + "\n");

  const split = splitFeed(readFileSync(join(inputs, "notices.jsonl"), "utf8"), seededRng(0xc4a05));
  for (const [name, lines] of Object.entries(split.files)) writeFileSync(join(inputs, name), lines.map((l) => l.text).join("\n") + "\n");
  const manifest: Manifest = {
    noticeFiles: Object.fromEntries(Object.entries(split.files).map(([n, ls]) => [n, ls.map(({ text: _t, ...l }) => l)])),
    ingestFiles: ["a.jsonl", "b.jsonl", "c.jsonl"],
    spoolFiles: ["spool1.jsonl", "spool2.jsonl"],
    roundApplications: round.map((a, i) => ({ line: i + 1, applicationId: a.applicationId })),
    initApplications: init.length,
    gapChains: split.gapChains,
  };
  writeFileSync(join(inputs, "manifest.json"), JSON.stringify(manifest));
  return { dir: o.dir, cli: o.cli, inputs, base, manifest };
}

/**
 * Splits the feed by resident (a chain follows resident-code changes): a.jsonl holds the first half of
 * some residents' sequences and b.jsonl the rest of them (b waits on a: the concurrency case); c.jsonl
 * holds other residents whole, plus residents whose first notice is missing everywhere (held for good),
 * a malformed line, a notice of an unknown kind and a stale copy of one of a.jsonl's notices under
 * another id; spool1/spool2 split further residents the way a/b do, spool1 with one malformed line.
 */
export function splitFeed(feed: string, rng: Rng): { files: Record<string, Array<InputLine & { text: string }>>; gapChains: number[] } {
  const notices = feed.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  const chainOf = new Map<string, number>();
  const chains: Array<Array<Record<string, unknown>>> = [];
  const chainIds = new Map<Record<string, unknown>, number>();
  for (const n of notices) {
    const code = String(n.residentCode);
    let c = chainOf.get(code);
    if (c === undefined) {
      c = chains.length;
      chains.push([]);
      chainOf.set(code, c);
    }
    chains[c]!.push(n);
    chainIds.set(n, c);
    if (n.newResidentCode) chainOf.set(String(n.newResidentCode), c);
  }
  const group = chains.map((ch) => {
    const x = rng.next();
    if (ch.length >= 2 && x < 0.12) return "gap";
    if (x < 0.45) return "ab";
    if (x < 0.7) return "c";
    return "spool";
  });
  const target = new Map<Record<string, unknown>, string | null>();
  chains.forEach((ch, c) => {
    const half = Math.ceil(ch.length / 2);
    ch.forEach((n, i) => {
      const g = group[c]!;
      target.set(n, g === "ab" ? (i < half ? "a.jsonl" : "b.jsonl") : g === "spool" ? (i < half ? "spool1.jsonl" : "spool2.jsonl") : g === "gap" ? (i === 0 ? null : "c.jsonl") : "c.jsonl");
    });
  });
  const files: Record<string, Array<InputLine & { text: string }>> = { "a.jsonl": [], "b.jsonl": [], "c.jsonl": [], "spool1.jsonl": [], "spool2.jsonl": [] };
  const add = (file: string, text: string, l: Omit<InputLine, "line">) => files[file]!.push({ ...l, line: files[file]!.length + 1, text });
  const stale = notices.find((n) => target.get(n) === "a.jsonl" && n.sequence === 1);
  notices.forEach((n, i) => {
    const f = target.get(n);
    if (f) add(f, JSON.stringify(n), { noticeId: String(n.noticeId), chain: chainIds.get(n)!, sequence: Number(n.sequence) });
    if (i === Math.floor(notices.length / 3)) {
      add("c.jsonl", '{"noticeId":"BAD-MALFORMED-1","residentCode":', { noticeId: null, chain: null, sequence: null, bad: "malformed JSON" });
      const odd = { ...notices[i]!, noticeId: "BAD-KIND-1", kind: "teleportation" };
      add("c.jsonl", JSON.stringify(odd), { noticeId: "BAD-KIND-1", chain: null, sequence: null, bad: "unknown kind" });
      add("spool1.jsonl", "not json at all", { noticeId: null, chain: null, sequence: null, bad: "malformed JSON" });
    }
    if (i === Math.floor((2 * notices.length) / 3) && stale) {
      // Same resident, same sequence, another id: whichever of the two arrives second is stale.
      add("c.jsonl", JSON.stringify({ ...stale, noticeId: "STALE-COPY-1" }), { noticeId: "STALE-COPY-1", chain: chainIds.get(stale)!, sequence: 1 });
    }
  });
  return { files, gapChains: chains.map((_, c) => c).filter((c) => group[c] === "gap") };
}

// ---------------------------------------------------------------------------------------------------------
// Violations

export type Invariant =
  | "command-exit"
  | "recovery"
  | "unique-serial"
  | "application-once"
  | "revoked-in-crl"
  | "crl-number-store-vs-disk"
  | "crl-number-monotonic"
  | "crl-number-reused"
  | "crl-der-pem"
  | "crl-readable"
  | "no-temp-files"
  | "spool-drained"
  | "notice-accounted"
  | "notice-order"
  | "reingest-idempotent";

export interface Violation {
  readonly invariant: Invariant;
  readonly detail: string;
}

// ---------------------------------------------------------------------------------------------------------
// Watching the CRLs while a round runs

/**
 * Samples crl/*.crl and crl/*.crl.pem (and, every fifth sample, the store's latest published CRL number
 * per CA) while commands run: a CA's number must never go down, a published file never vanish or be torn,
 * and one number must never name two different CRLs.
 */
export class CrlMonitor {
  readonly violations: Violation[] = [];
  readonly #crlDir: string;
  readonly #db: string;
  readonly #fileNumber = new Map<string, bigint>();
  readonly #byNumber = new Map<string, string>();
  readonly #storeNumber = new Map<string, bigint>();
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  samples = 0;

  constructor(workspace: string) {
    this.#crlDir = join(workspace, "crl");
    this.#db = join(workspace, "jpki.db");
  }

  start(intervalMs = 20): void {
    this.#timer = setInterval(() => this.sample(this.#ticks++ % 5 === 0), intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample(true);
  }

  sample(store = true): void {
    this.samples++;
    let names: string[];
    try {
      names = readdirSync(this.#crlDir);
    } catch {
      names = [];
    }
    const present = new Set(names);
    for (const [file] of this.#fileNumber) {
      if (!present.has(file)) this.#add("crl-number-monotonic", `crl/${file} was published and then disappeared`);
    }
    for (const name of names) {
      if (name.startsWith(".") || !(name.endsWith(".crl") || name.endsWith(".crl.pem"))) continue;
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(this.#crlDir, name));
      } catch {
        continue; // replaced between readdir and read: the next sample sees it
      }
      let der: Buffer;
      let facts: CrlFacts;
      try {
        der = name.endsWith(".pem") ? pemToDer(bytes.toString("latin1"), "X509 CRL") : bytes;
        facts = readCrl(der);
      } catch (e) {
        this.#add("crl-readable", `crl/${name} seen torn or unreadable while commands ran: ${(e as Error).message}`);
        continue;
      }
      const n = facts.number;
      if (n === undefined) {
        this.#add("crl-readable", `crl/${name} has no CRL number`);
        continue;
      }
      const last = this.#fileNumber.get(name);
      if (last !== undefined && n < last) this.#add("crl-number-monotonic", `crl/${name}: CRL number went down on disk from ${last} to ${n}`);
      if (last === undefined || n > last) this.#fileNumber.set(name, n);
      const ca = name.replace(/\.crl(\.pem)?$/, "");
      const key = `${ca}#${n}`;
      const digest = createHash("sha256").update(der).digest("hex");
      const seen = this.#byNumber.get(key);
      if (seen === undefined) this.#byNumber.set(key, digest);
      else if (seen !== digest) this.#add("crl-number-reused", `${ca}: two different CRLs were published under number ${n} (sha256 ${seen.slice(0, 12)}… and ${digest.slice(0, 12)}…)`);
    }
    if (store) this.#sampleStore();
  }

  #sampleStore(): void {
    let rows: Array<{ ca_id: string; n: bigint | null }>;
    try {
      const db = new Database(this.#db, { readonly: true, fileMustExist: true });
      try {
        rows = db.prepare("SELECT ca_id, max(number) AS n FROM crls WHERE path IS NOT NULL AND scope = '' GROUP BY ca_id").safeIntegers().all() as typeof rows;
      } finally {
        db.close();
      }
    } catch {
      return; // busy or being created at that instant
    }
    for (const r of rows) {
      if (r.n === null) continue;
      const last = this.#storeNumber.get(r.ca_id);
      if (last !== undefined && r.n < last) this.#add("crl-number-monotonic", `${r.ca_id}: the store's latest published CRL number went down from ${last} to ${r.n}`);
      if (last === undefined || r.n > last) this.#storeNumber.set(r.ca_id, r.n);
    }
  }

  /** One report per distinct detail: a regression seen on 50 samples is one violation. */
  #add(invariant: Invariant, detail: string): void {
    if (!this.violations.some((v) => v.detail === detail)) this.violations.push({ invariant, detail });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The invariant checker

export interface CheckInput {
  readonly workspace: string;
  readonly manifest: Manifest;
  /** where the notice files live under their base names (the inputs directory) */
  readonly inputs: string;
  readonly spool?: string;
  /** --out-dir of the round's `issue --batch`, when it ran */
  readonly outDir?: string;
  /** lines the last complete `issue --batch` run reported as failed; undefined when issue did not run */
  readonly issueErrorLines?: ReadonlySet<number>;
  /** extra directories to scan for temporary files */
  readonly scanDirs?: readonly string[];
  readonly now?: Date;
  /** cross-check every CRL with `openssl crl` (default true) */
  readonly openssl?: boolean;
}

interface CertRow {
  serial: string;
  ca_id: string;
  application_id: string | null;
  revoked_at: number | null;
  not_after: number;
}

function openStore(workspace: string): Database.Database {
  return new Database(join(workspace, "jpki.db"), { readonly: true, fileMustExist: true });
}

function listRecursive(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The line numbers reported in every rejects file of one input (ingest's and watch's naming). */
function rejectedLines(workspace: string, spool: string | undefined, file: string): Set<number> {
  const lines = new Set<number>();
  const candidates = [
    ...listRecursive(join(workspace, "rejects")).filter((p) => p.split("/").pop()!.startsWith(`${file}-`)),
    ...(spool ? listRecursive(join(spool, "done")).filter((p) => { const b = p.split("/").pop()!; return b === `${file}.rejects.jsonl` || b.endsWith(`-${file}.rejects.jsonl`); }) : []),
  ].filter((p) => p.endsWith(".rejects.jsonl"));
  for (const p of candidates) {
    for (const l of readFileSync(p, "utf8").split("\n")) {
      if (!l.trim()) continue;
      try {
        const r = JSON.parse(l) as { line?: unknown };
        if (typeof r.line === "number") lines.add(r.line);
      } catch {
        // a torn rejects file is itself reported by the temp-file check if it is a temporary
      }
    }
  }
  return lines;
}

function opensslCrl(path: string): { number: bigint | undefined; serials: string[] } {
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const num = /X509v3 CRL Number:\s*\n\s*(?:0x)?([0-9A-Fa-f:]+)/.exec(text);
  return {
    number: num ? (/^[0-9]+$/.test(num[1]!) ? BigInt(num[1]!) : BigInt(`0x${num[1]!.replace(/:/g, "")}`)) : undefined,
    serials: [...text.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => normaliseSerial(m[1]!)),
  };
}

/** Every invariant that can be read off a workspace at rest; returns the violations, empty when all hold. */
export function checkWorkspace(c: CheckInput): Violation[] {
  const v: Violation[] = [];
  const add = (invariant: Invariant, detail: string) => v.push({ invariant, detail });
  const now = (c.now ?? new Date()).getTime();
  const db = openStore(c.workspace);
  let certs: CertRow[];
  let crlRows: Array<{ ca_id: string; number: bigint; path: string | null }>;
  let notices: Map<string, { status: string; resident_code: string; sequence: number }>;
  try {
    certs = db.prepare("SELECT c.serial, c.ca_id, c.application_id, k.revoked_at, c.not_after FROM certificates c LEFT JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial").all() as CertRow[];
    crlRows = db.prepare("SELECT ca_id, number, path FROM crls WHERE scope = ''").safeIntegers().all() as typeof crlRows;
    notices = new Map(
      (db.prepare("SELECT notice_id, status, resident_code, sequence FROM notices").all() as Array<{ notice_id: string; status: string; resident_code: string; sequence: number }>).map(
        (r) => [r.notice_id, r],
      ),
    );
  } finally {
    db.close();
  }

  // -- no serial twice; one certificate per application id
  const bySerial = new Map<string, CertRow>();
  for (const r of certs) {
    const s = normaliseSerial(r.serial);
    if (bySerial.has(s)) add("unique-serial", `serial ${s} appears twice in the certificates table (${bySerial.get(s)!.ca_id}, ${r.ca_id})`);
    bySerial.set(s, r);
  }
  const byApp = new Map<string, CertRow[]>();
  for (const r of certs) if (r.application_id !== null) byApp.set(r.application_id, [...(byApp.get(r.application_id) ?? []), r]);
  for (const [id, rows] of byApp) if (rows.length > 1) add("application-once", `application ${id} has ${rows.length} certificates: ${rows.map((r) => r.serial).join(", ")}`);
  if (c.outDir) {
    const fileOfApp = new Map<string, string>();
    for (const name of listRecursive(c.outDir).map((p) => p.slice(c.outDir!.length + 1))) {
      if (name.startsWith(".") || name.endsWith(".tmp")) continue; // the temp-file check reports those
      const m = /^([0-9a-fA-F]+)\.pem$/.exec(name);
      if (!m) {
        add("unique-serial", `--out-dir holds ${name}, not <serial>.pem`);
        continue;
      }
      let serial: string;
      try {
        serial = normaliseSerial(new X509Certificate(readFileSync(join(c.outDir, name))).serialNumber);
      } catch (e) {
        add("unique-serial", `--out-dir/${name} is not a readable certificate: ${(e as Error).message}`);
        continue;
      }
      if (serial !== normaliseSerial(m[1]!)) add("unique-serial", `--out-dir/${name} holds the certificate with serial ${serial}`);
      const row = bySerial.get(serial);
      if (!row) {
        add("unique-serial", `--out-dir/${name}: a certificate the store does not hold (issued, then lost or issued again under another serial)`);
        continue;
      }
      if (row.application_id !== null) {
        const other = fileOfApp.get(row.application_id);
        if (other) add("application-once", `application ${row.application_id} has two certificates in --out-dir: ${other}, ${name}`);
        fileOfApp.set(row.application_id, name);
      }
    }
    if (c.issueErrorLines) {
      for (const a of c.manifest.roundApplications) {
        const rows = byApp.get(a.applicationId) ?? [];
        if (rows.length === 0 && !c.issueErrorLines.has(a.line)) add("application-once", `application ${a.applicationId} (line ${a.line}) has no certificate and was not reported as failed`);
        // A line the run reported as failed writes nothing, even for an application issued before.
        if (c.issueErrorLines.has(a.line)) continue;
        for (const r of rows) if (!existsSync(join(c.outDir, `${r.serial}.pem`))) add("application-once", `certificate ${r.serial} of application ${a.applicationId} (line ${a.line}, not reported failed) is missing from --out-dir`);
      }
    }
  }

  // -- CRLs on disk against the store
  const crlDir = join(c.workspace, "crl");
  const cas = new Set<string>([...certs.map((r) => r.ca_id), ...crlRows.map((r) => r.ca_id)]);
  for (const f of existsSync(crlDir) ? readdirSync(crlDir) : []) if (!f.startsWith(".") && f.endsWith(".crl")) cas.add(f.slice(0, -4));
  for (const ca of [...cas].sort()) {
    const published = crlRows.filter((r) => r.ca_id === ca && r.path !== null).sort((x, y) => (x.number < y.number ? 1 : -1));
    const latest = published[0];
    const derPath = join(crlDir, `${ca}.crl`);
    const pemPath = join(crlDir, `${ca}.crl.pem`);
    const revoked = certs.filter((r) => r.ca_id === ca && r.revoked_at !== null);
    if (!existsSync(derPath)) {
      if (latest) add("crl-number-store-vs-disk", `${ca}: the store records CRL #${latest.number} as published but crl/${ca}.crl does not exist`);
      if (revoked.length) add("revoked-in-crl", `${ca}: ${revoked.length} revoked certificates and no CRL on disk`);
      continue;
    }
    const der = readFileSync(derPath);
    let facts: CrlFacts;
    try {
      facts = readCrl(der);
    } catch (e) {
      add("crl-readable", `crl/${ca}.crl does not parse: ${(e as Error).message}`);
      continue;
    }
    if (!latest) add("crl-number-store-vs-disk", `${ca}: crl/${ca}.crl (#${facts.number}) exists but the store records no published CRL`);
    else if (latest.number !== facts.number) add("crl-number-store-vs-disk", `${ca}: the store's latest published CRL is #${latest.number}, crl/${ca}.crl is #${facts.number}`);
    if (latest && latest.path !== null && resolve(c.workspace, latest.path) !== derPath) add("crl-number-store-vs-disk", `${ca}: the store records CRL #${latest.number} at ${latest.path}, not crl/${ca}.crl`);
    if (!existsSync(pemPath)) add("crl-der-pem", `${ca}: crl/${ca}.crl.pem is missing`);
    else {
      let pemDer: Buffer | undefined;
      try {
        pemDer = pemToDer(readFileSync(pemPath, "latin1"), "X509 CRL");
      } catch (e) {
        add("crl-der-pem", `${ca}: crl/${ca}.crl.pem is not a PEM CRL: ${(e as Error).message}`);
      }
      if (pemDer && !pemDer.equals(der)) {
        let other = "unreadable";
        try {
          other = `#${readCrl(pemDer).number}`;
        } catch {
          // keep "unreadable"
        }
        add("crl-der-pem", `${ca}: crl/${ca}.crl (#${facts.number}) and crl/${ca}.crl.pem (${other}) hold different CRLs`);
      }
    }
    const caCert = join(c.workspace, "ca", `${ca}.crt`);
    if (existsSync(caCert)) {
      try {
        if (!certificateSubject(certificateDer(readFileSync(caCert))).equals(facts.issuer)) add("crl-readable", `crl/${ca}.crl is not issued by CA ${ca} (issuer name differs)`);
      } catch (e) {
        add("crl-readable", `ca/${ca}.crt does not parse: ${(e as Error).message}`);
      }
    }
    const listed = new Set<string>();
    for (const s of facts.serials) {
      if (listed.has(s)) add("unique-serial", `crl/${ca}.crl lists serial ${s} twice`);
      listed.add(s);
    }
    const missing = revoked.filter((r) => r.not_after > now && !listed.has(normaliseSerial(r.serial)));
    if (missing.length) add("revoked-in-crl", `${ca}: ${missing.length} revoked serials are not on crl/${ca}.crl (#${facts.number}): ${missing.slice(0, 5).map((r) => r.serial).join(", ")}${missing.length > 5 ? ", …" : ""}`);
    const revokedSet = new Set(revoked.map((r) => normaliseSerial(r.serial)));
    const extra = [...listed].filter((s) => !revokedSet.has(s));
    if (extra.length) add("revoked-in-crl", `${ca}: crl/${ca}.crl lists ${extra.length} serials the store does not hold as revoked by ${ca}: ${extra.slice(0, 5).join(", ")}`);
    if (c.openssl !== false) {
      try {
        const o = opensslCrl(derPath);
        const same = o.number === facts.number && o.serials.length === facts.serials.length && o.serials.every((s, i) => s === facts.serials[i]);
        if (!same) add("crl-readable", `crl/${ca}.crl: openssl reads #${o.number} with ${o.serials.length} entries, our reader #${facts.number} with ${facts.serials.length}`);
      } catch (e) {
        add("crl-readable", `openssl crl refuses crl/${ca}.crl: ${String((e as { stderr?: string }).stderr ?? e).trim().split("\n")[0]}`);
      }
    }
  }

  // -- no temporary files
  const roots = [c.workspace, ...(c.spool ? [c.spool] : []), ...(c.outDir ? [c.outDir] : []), ...(c.scanDirs ?? [])];
  for (const root of roots) {
    for (const p of listRecursive(root)) if (p.endsWith(".tmp")) add("no-temp-files", `temporary file left: ${p}`);
  }
  if (c.spool) {
    for (const name of c.manifest.spoolFiles) {
      if (existsSync(join(c.spool, name))) add("spool-drained", `spool/${name} was never claimed`);
      // claimed as PID~NAME (ca/spool.ts); a bare name is an older version's claim
      const left = existsSync(join(c.spool, "processing")) ? readdirSync(join(c.spool, "processing")).filter((f) => f === name || f.endsWith(`~${name}`)) : [];
      for (const f of left) add("spool-drained", `spool/processing/${f} was left unfinished`);
    }
    for (const p of listRecursive(join(c.spool, "failed"))) add("spool-drained", `spool/failed holds ${p.slice(c.spool.length + 1)}`);
  }

  // -- every notice applied, held or rejected; held only while a predecessor is missing
  const chainSeq = new Map<number, Map<number, string[]>>(); // chain → sequence → notice ids in the inputs
  for (const lines of Object.values(c.manifest.noticeFiles)) {
    for (const l of lines) {
      if (l.chain === null || l.sequence === null || l.noticeId === null) continue;
      const m = chainSeq.get(l.chain) ?? new Map<number, string[]>();
      m.set(l.sequence, [...(m.get(l.sequence) ?? []), l.noticeId]);
      chainSeq.set(l.chain, m);
    }
  }
  for (const [file, lines] of Object.entries(c.manifest.noticeFiles)) {
    const rejected = rejectedLines(c.workspace, c.spool, file);
    for (const l of lines) {
      const row = l.noticeId !== null ? notices.get(l.noticeId) : undefined;
      if (row) {
        if (row.status !== "applied" && row.status !== "held") add("notice-accounted", `${file}:${l.line} notice ${l.noticeId} has status ${row.status}`);
        if (l.bad) add("notice-accounted", `${file}:${l.line} (${l.bad}) was taken as notice ${l.noticeId} (${row.status})`);
        continue;
      }
      if (!rejected.has(l.line)) add("notice-accounted", `${file}:${l.line}${l.noticeId ? ` notice ${l.noticeId}` : ""}${l.bad ? ` (${l.bad})` : ""} is neither applied, held nor in a rejects file: lost`);
    }
  }
  // A held notice whose predecessor is in the inputs but missing from the store is legitimate when that
  // predecessor was rejected; when it was lost, the accounting above reports it.
  for (const seqs of chainSeq.values()) {
    const applied = (s: number) => (seqs.get(s) ?? []).some((id) => notices.get(id)?.status === "applied");
    for (const [s, ids] of [...seqs].sort((x, y) => x[0] - y[0])) {
      for (const id of ids) {
        const st = notices.get(id)?.status;
        if (!st) continue;
        let waitsFor: number | undefined;
        for (let p = 1; p < s; p++) {
          if (!applied(p)) {
            waitsFor = p;
            break;
          }
        }
        if (st === "applied" && waitsFor !== undefined) add("notice-order", `notice ${id} (sequence ${s}) is applied although sequence ${waitsFor} of its resident is not`);
        if (st === "held" && waitsFor === undefined) add("notice-order", `notice ${id} (sequence ${s}) is still held although sequences 1–${s - 1} of its resident are all applied`);
      }
    }
  }
  return v;
}

/** What re-ingesting must not change: notices, revocations, certificates and published CRLs. */
export function storeSnapshot(workspace: string): Record<string, string[]> {
  const db = openStore(workspace);
  try {
    const rows = (sql: string) => (db.prepare(sql).raw().all() as unknown[][]).map((r) => r.map(String).join(" "));
    const crlDir = join(workspace, "crl");
    return {
      notices: rows("SELECT notice_id, status, resident_code, sequence FROM notices ORDER BY notice_id"),
      certificates: rows("SELECT c.serial, c.ca_id, c.application_id, k.revoked_at FROM certificates c LEFT JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial ORDER BY c.serial"),
      crls: rows("SELECT ca_id, number, path FROM crls ORDER BY ca_id, number"),
      files: listRecursive(crlDir).sort().map((p) => `${p.slice(crlDir.length + 1)} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`),
    };
  } finally {
    db.close();
  }
}

export function diffSnapshots(before: Record<string, string[]>, after: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const key of Object.keys(before)) {
    const b = new Set(before[key]);
    const a = new Set(after[key]);
    const gone = [...b].filter((x) => !a.has(x));
    const added = [...a].filter((x) => !b.has(x));
    if (gone.length || added.length) {
      out.push(`${key}: ${gone.length} rows changed or removed, ${added.length} added/changed (e.g. ${[...gone.slice(0, 2).map((x) => `- ${x}`), ...added.slice(0, 2).map((x) => `+ ${x}`)].join("; ")})`);
    }
  }
  return out;
}

/**
 * Re-ingests every input notice file (concatenated into one run: one process start instead of five) after
 * recovery; the store and the CRLs must not change. Notices it adds are listed with the code they were
 * rejected with during the round, when they were.
 */
export async function reingestCheck(env: Environment, workspace: string, cwd: string, spool?: string, session?: CliSession): Promise<Violation[]> {
  const v: Violation[] = [];
  const files = [...env.manifest.ingestFiles, ...env.manifest.spoolFiles];
  const all = join(cwd, "reingest-all.jsonl");
  writeFileSync(all, files.map((f) => readFileSync(join(env.inputs, f), "utf8")).join(""));
  const before = storeSnapshot(workspace);
  const args = ["--workspace", workspace, "notices", "ingest", all, "--reject-file", join(cwd, "reingest-all.rejects.jsonl")];
  const r = await (session ? session.run(args, cwd) : runCli(env.cli, args, cwd));
  const problem = exitProblem(r) ?? (r.code === 3 ? "locked out with nothing else running" : undefined);
  if (problem) v.push({ invariant: "reingest-idempotent", detail: `re-ingesting ${files.join(", ")}: ${problem}` });
  const after = storeSnapshot(workspace);
  const known = new Set(before.notices!.map((x) => x.split(" ")[0]));
  const added = after.notices!.map((x) => x.split(" ")[0]!).filter((id) => !known.has(id));
  // New notice rows are explained below, with why the round had not taken them; every other change here.
  const unexplained = { ...after, notices: after.notices!.filter((x) => known.has(x.split(" ")[0])) };
  for (const d of diffSnapshots(before, unexplained)) v.push({ invariant: "reingest-idempotent", detail: `re-ingesting all inputs changed the store or CRLs: ${d}` });
  if (added.length) {
    const codes = new Map<string, string>();
    for (const p of [...listRecursive(join(workspace, "rejects")), ...(spool ? listRecursive(join(spool, "done")) : [])].filter((p) => p.endsWith(".rejects.jsonl"))) {
      for (const l of readFileSync(p, "utf8").split("\n")) {
        try {
          const j = JSON.parse(l) as { code?: string; record?: { noticeId?: string } };
          if (j.record?.noticeId) codes.set(j.record.noticeId, j.code ?? "?");
        } catch {
          // blank line
        }
      }
    }
    const counts = new Map<string, number>();
    for (const id of added) {
      const why = codes.has(id) ? `rejected during the round with ${codes.get(id)}` : "in no rejects file";
      counts.set(why, (counts.get(why) ?? 0) + 1);
    }
    v.push({
      invariant: "reingest-idempotent",
      detail: `re-ingesting took ${added.length} notices the round had not: ${[...counts].map(([k, n]) => `${n} ${k}`).join(", ")} (${added.slice(0, 20).join(", ")}${added.length > 20 ? ", …" : ""})`,
    });
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// Classifying how a command ended

const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\)|\(<anonymous>\))$/m;

export type Outcome = "ok" | "partial" | "killed" | "stopped" | "locked" | "failed";

/** undefined when the exit is acceptable (0, 13 = ERR_PARTIAL, 3 with ERR_WORKSPACE_LOCKED), else why not. */
export function exitProblem(r: ProcResult): string | undefined {
  if (STACK.test(r.stderr)) return `stack trace on stderr (exit ${r.code}): ${excerpt(r.stderr)}`;
  if (r.code === 0 || r.code === 13) return undefined;
  if (r.code === 3 && r.stderr.includes("ERR_WORKSPACE_LOCKED")) return undefined;
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ""}: ${excerpt(r.stderr)}`;
}

export function classify(r: ProcResult, killedByUs: boolean): Outcome {
  if (killedByUs && r.signal === "SIGKILL") return "killed";
  if (r.code === 3 && r.stderr.includes("ERR_WORKSPACE_LOCKED")) return "locked";
  if (exitProblem(r)) return "failed";
  return r.code === 13 ? "partial" : "ok";
}

function excerpt(s: string): string {
  const t = s.trim().split("\n").slice(0, 6).join(" ⏎ ");
  return t.length > 600 ? `${t.slice(0, 600)}…` : t;
}

// ---------------------------------------------------------------------------------------------------------
// Watching for the first sign of a command's work (to aim kills into it)

/**
 * Polls every 10 ms: which input files' notices are in the store (an incremental scan by rowid; used only
 * to time kills, never to judge), how many files --out-dir holds, whether a CRL file was replaced. Calls
 * each registered callback once, at the first change of its kind after it was registered.
 */
export class ProgressProbe {
  readonly #fileOf = new Map<string, string>();
  readonly #db: string;
  readonly #out: string;
  readonly #crlDir: string;
  #conn: Database.Database | undefined;
  #lastRow = 0;
  readonly #noticeCount = new Map<string, number>();
  #outFiles = 0;
  #crlStamp = "";
  #crlChanges = 0;
  readonly #waiting: Array<{ progress: Progress; base: number; fire: () => void }> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(manifest: Manifest, workspace: string, outDir: string) {
    for (const [file, lines] of Object.entries(manifest.noticeFiles)) for (const l of lines) if (l.noticeId) this.#fileOf.set(l.noticeId, file);
    this.#db = join(workspace, "jpki.db");
    this.#out = outDir;
    this.#crlDir = join(workspace, "crl");
    this.#poll();
    this.#timer = setInterval(() => this.#poll(), 10);
  }

  #value(p: Progress): number {
    if ("notices" in p) return p.notices.reduce((n, f) => n + (this.#noticeCount.get(f) ?? 0), 0);
    if ("outDir" in p) return this.#outFiles;
    return this.#crlChanges;
  }

  onProgress(progress: Progress, fire: () => void): void {
    this.#waiting.push({ progress, base: this.#value(progress), fire });
  }

  #poll(): void {
    try {
      this.#conn ??= new Database(this.#db, { readonly: true, fileMustExist: true });
      const rows = this.#conn.prepare("SELECT rowid AS r, notice_id AS id FROM notices WHERE rowid > ? ORDER BY rowid").all(this.#lastRow) as Array<{ r: number; id: string }>;
      for (const row of rows) {
        this.#lastRow = Math.max(this.#lastRow, row.r);
        const f = this.#fileOf.get(row.id);
        if (f) this.#noticeCount.set(f, (this.#noticeCount.get(f) ?? 0) + 1);
      }
    } catch {
      // busy, or a schema without rowids: progress kills of ingests then never fire (time kills still do)
    }
    try {
      this.#outFiles = readdirSync(this.#out).length;
    } catch {
      this.#outFiles = 0;
    }
    try {
      const stamp = readdirSync(this.#crlDir).filter((f) => !f.startsWith(".")).map((f) => `${f}:${statSync(join(this.#crlDir, f)).mtimeMs}`).join(",");
      if (this.#crlStamp && stamp !== this.#crlStamp) this.#crlChanges++;
      this.#crlStamp = stamp;
    } catch {
      // a file replaced between readdir and stat: next time
    }
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i]!;
      if (this.#value(w.progress) > w.base) {
        this.#waiting.splice(i, 1);
        w.fire();
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#conn?.close();
    this.#conn = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// A round

export interface CommandPlan {
  readonly name: string;
  readonly args: string[];
  /** ms after the round starts */
  readonly startAt: number;
  /**
   * When to SIGKILL it, undefined = never. "time": this many ms after its start. "progress": this many ms
   * after its first visible work (notices of its file committed, a certificate in --out-dir, a CRL file
   * replaced): a command spends most of its life starting Node and waiting for the store, so a kill at a
   * random time mostly lands before any work; this one lands inside it.
   */
  readonly kill: { readonly mode: "time" | "progress"; readonly ms: number } | undefined;
  /** what counts as its progress, for a "progress" kill */
  readonly progress: Progress | undefined;
  /** the command an operator re-runs after a kill or a lock-out */
  readonly recovery: string[];
}

/** Observable work: notices of these input files committed, files in --out-dir, CRL files replaced. */
export type Progress = { readonly notices: readonly string[] } | { readonly outDir: true } | { readonly crls: true };

export interface CommandReport {
  readonly name: string;
  readonly outcome: Outcome;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly ms: number;
  /** "time@ms" or "progress+ms" when a kill was planned */
  readonly kill: string | undefined;
  /** ms after its start when the SIGKILL was sent */
  readonly killedAt: number | undefined;
}

export interface RoundResult {
  readonly seed: number;
  readonly dir: string;
  readonly commands: readonly CommandReport[];
  readonly recovered: readonly string[];
  readonly killed: number;
  readonly locked: number;
  readonly violations: readonly Violation[];
  readonly ms: number;
}

export interface RoundOptions {
  /** keep the round's directory even when it passes */
  readonly keep?: boolean;
  /** a command still running after this long is killed and reported (default 120 s) */
  readonly hangMs?: number;
  /** probability that each command is SIGKILLed (default 0.45) */
  readonly killProbability?: number;
  /** kills land within this many ms of a command's start (default 8000: under contention a command takes 2–10 s, ~1 s of it starting Node) */
  readonly maxKillMs?: number;
}

/** The seeded plan of one round: which commands, when they start, which are killed and when. */
export function planRound(env: Environment, seed: number, dirs: { ws: string; spool: string; out: string }, o: RoundOptions = {}): { commands: CommandPlan[]; spool2At: number } {
  const rng = seededRng(seed);
  const pKill = o.killProbability ?? 0.45;
  const maxKill = o.maxKillMs ?? 8000;
  const kill = (progress: Progress | undefined) => {
    if (!rng.chance(pKill)) return undefined;
    if (progress && rng.chance(0.7)) return { mode: "progress" as const, ms: rng.pick([0, 0, 5, 20, 50, 100, 250]) };
    return { mode: "time" as const, ms: 30 + rng.int(maxKill) };
  };
  const ws = ["--workspace", dirs.ws];
  const input = (f: string) => join(env.inputs, f);
  const ingest = (f: string) => ["notices", "ingest", input(f), "--batch-size", String(rng.pick([10, 50, 200, 1000])), "--crl-interval", String(rng.pick([0, 0, 1, 30]))];
  const both = rng.int(300);
  const aFirst = rng.chance(0.5);
  const commands: CommandPlan[] = [];
  const push = (name: string, args: string[], startAt: number, progress?: Progress, recovery = args) =>
    commands.push({ name, args: [...ws, ...args], startAt, kill: kill(progress), progress, recovery: [...ws, ...recovery] });
  // The concurrency case: a and b at (almost) the same moment; b holds the next sequences of a's residents.
  push("ingest a", ingest("a.jsonl"), both + (aFirst ? 0 : rng.int(40)), { notices: ["a.jsonl"] });
  push("ingest b", ingest("b.jsonl"), both + (aFirst ? rng.int(40) : 0), { notices: ["b.jsonl"] });
  push("ingest c", ingest("c.jsonl"), rng.int(800), { notices: ["c.jsonl"] });
  push("issue --batch", ["issue", "--batch", input("apps-round.jsonl"), "--out-dir", dirs.out, "--json", "--concurrency", String(rng.pick([4, 16, 64]))], rng.int(800), { outDir: true });
  push("crl generate", ["crl", "generate", "--prefecture", "all"], rng.int(1000), { crls: true });
  if (rng.chance(0.5)) push("crl generate (2)", ["crl", "generate", "--prefecture", "all"], 200 + rng.int(1500), { crls: true });
  push("registry apply", ["registry", "apply", input(rng.pick(["a.jsonl", "c.jsonl"]))], rng.int(800));
  const wbs = String(rng.pick([10, 100, 1000]));
  push("watch", ["watch", dirs.spool, "--poll", "50", "--batch-size", wbs], rng.int(400), { notices: ["spool1.jsonl", "spool2.jsonl"] }, ["watch", dirs.spool, "--once", "--batch-size", wbs]);
  return { commands, spool2At: rng.int(1500) };
}

/** Runs one round on a fresh copy of the base workspace; never throws for a violation, only reports it. */
export async function runRound(env: Environment, seed: number, o: RoundOptions = {}): Promise<RoundResult> {
  const t0 = Date.now();
  const dir = join(env.dir, "rounds", `seed-${seed}`);
  rmSync(dir, { recursive: true, force: true });
  const dirs = { ws: join(dir, "ws"), spool: join(dir, "spool"), out: join(dir, "out") };
  cpSync(env.base, dirs.ws, { recursive: true });
  mkdirSync(dirs.spool, { recursive: true });
  cpSync(join(env.inputs, "spool1.jsonl"), join(dirs.spool, "spool1.jsonl"));
  const plan = planRound(env, seed, dirs, o);
  const violations: Violation[] = [];
  const monitor = new CrlMonitor(dirs.ws);
  monitor.start();
  const hangMs = o.hangMs ?? 120_000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // Drop spool2 atomically (written under a dot-name, then renamed) while the daemon runs.
  const drop = sleep(plan.spool2At).then(() => {
    cpSync(join(env.inputs, "spool2.jsonl"), join(dirs.spool, ".spool2.jsonl.part"));
    renameSync(join(dirs.spool, ".spool2.jsonl.part"), join(dirs.spool, "spool2.jsonl"));
  });
  const reports: Array<{ plan: CommandPlan; result: ProcResult; killedByUs: boolean }> = [];
  // Each command's output, for reading a failed round afterwards.
  mkdirSync(join(dir, "logs"), { recursive: true });
  let logged = 0;
  const log = (name: string, r: ProcResult) => {
    const base = join(dir, "logs", `${String(++logged).padStart(2, "0")}-${name.replace(/[^a-z0-9]+/gi, "-")}`);
    writeFileSync(`${base}.txt`, `$ jpki ${r.args.join(" ")}\nexit ${r.code} signal ${r.signal} after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  };
  let watch: { running: Running } | undefined;
  const probe = new ProgressProbe(env.manifest, dirs.ws, dirs.out);
  const killedAt = new Map<CommandPlan, number>();
  const launch = async (p: CommandPlan) => {
    await sleep(p.startAt);
    const running = startCli(env.cli, p.args, dir);
    const started = Date.now();
    let killedByUs = false;
    const timers: NodeJS.Timeout[] = [];
    const kill = () => {
      if (running.kill("SIGKILL")) {
        killedByUs = true;
        killedAt.set(p, Date.now() - started);
      }
    };
    if (p.kill?.mode === "time") timers.push(setTimeout(kill, p.kill.ms));
    if (p.kill?.mode === "progress" && p.progress) {
      const ms = p.kill.ms;
      probe.onProgress(p.progress, () => (ms ? timers.push(setTimeout(kill, ms)) : kill()));
    }
    timers.push(setTimeout(() => running.kill("SIGKILL") && violations.push({ invariant: "command-exit", detail: `${p.name} still running after ${hangMs} ms: killed` }), hangMs));
    if (p.name === "watch") watch = { running };
    const result = await running.done;
    for (const t of timers) clearTimeout(t);
    reports.push({ plan: p, result, killedByUs });
    log(p.name, result);
  };
  const others = plan.commands.filter((p) => p.name !== "watch");
  const watchPlan = plan.commands.find((p) => p.name === "watch")!;
  const watchDone = launch(watchPlan);
  await Promise.all(others.map(launch));
  await drop;
  // The daemon gets a moment for spool2, then SIGTERM: it must stop cleanly (exit 0) after its batch.
  await sleep(300);
  (watch as { running: Running } | undefined)?.running.kill("SIGTERM");
  await watchDone;
  probe.stop();

  // Recovery, as an operator would: each killed or locked-out command once more, then watch --once, then the
  // re-ingest check. One after another, with nothing else running, in one process of the CLI (cliSession): a
  // process each cost ≈ 1 s of CPU starting Node and the program, 4–6 a round, and proved nothing more. What is
  // tested is that the workspace the killed processes left recovers; those processes are gone either way, so their
  // leftovers (a stale lock, a claimed spool file, a half-written CRL) meet the re-run just as a fresh process.
  const session = cliSession(env.cli);
  try {
    return await recoverAndCheck(env, session, { seed, t0, dir, dirs, plan, reports, killedAt, violations, monitor, log }, o);
  } finally {
    await session.close();
  }
}

interface RoundSoFar {
  readonly seed: number;
  readonly t0: number;
  readonly dir: string;
  readonly dirs: { ws: string; spool: string; out: string };
  readonly plan: { commands: CommandPlan[]; spool2At: number };
  readonly reports: ReadonlyArray<{ plan: CommandPlan; result: ProcResult; killedByUs: boolean }>;
  readonly killedAt: ReadonlyMap<CommandPlan, number>;
  readonly violations: Violation[];
  readonly monitor: CrlMonitor;
  readonly log: (name: string, r: ProcResult) => void;
}

async function recoverAndCheck(env: Environment, session: CliSession, { seed, t0, dir, dirs, plan, reports, killedAt, violations, monitor, log }: RoundSoFar, o: RoundOptions): Promise<RoundResult> {
  const commands: CommandReport[] = [];
  const toRecover: CommandPlan[] = [];
  for (const r of [...reports].sort((x, y) => x.plan.startAt - y.plan.startAt)) {
    const outcome = classify(r.result, r.killedByUs);
    const k = r.plan.kill;
    commands.push({ name: r.plan.name, outcome, code: r.result.code, signal: r.result.signal, ms: r.result.ms, kill: k && (k.mode === "time" ? `time@${k.ms}` : `progress+${k.ms}`), killedAt: killedAt.get(r.plan) });
    if (outcome === "failed") violations.push({ invariant: "command-exit", detail: `${r.plan.name}: ${exitProblem(r.result) ?? `killed by ${r.result.signal}`}` });
    if (outcome === "killed" || outcome === "locked") toRecover.push(r.plan);
  }

  const recovered: string[] = [];
  let lastIssue = reports.find((r) => r.plan.name === "issue --batch" && !r.killedByUs && classify(r.result, false) !== "locked")?.result;
  for (const p of toRecover) {
    const r = await session.run(p.recovery, dir);
    log(`recovery ${p.name}`, r);
    recovered.push(p.name);
    const problem = exitProblem(r) ?? (r.code === 3 ? `still locked out: ${excerpt(r.stderr)}` : undefined);
    if (problem) violations.push({ invariant: "recovery", detail: `re-running ${p.name}: ${problem}` });
    if (p.name === "issue --batch") lastIssue = r;
  }
  const final = await session.run(["--workspace", dirs.ws, "watch", dirs.spool, "--once"], dir);
  log("recovery watch --once", final);
  const finalProblem = exitProblem(final) ?? (final.code === 3 ? "locked out with nothing else running" : undefined);
  if (finalProblem) violations.push({ invariant: "recovery", detail: `watch --once: ${finalProblem}` });
  monitor.stop();
  violations.push(...monitor.violations);

  let issueErrorLines: Set<number> | undefined;
  if (lastIssue) {
    try {
      const j = JSON.parse(lastIssue.stdout) as { errors?: Array<{ line: number }> };
      issueErrorLines = new Set((j.errors ?? []).map((e) => e.line));
    } catch {
      violations.push({ invariant: "command-exit", detail: `issue --batch --json (exit ${lastIssue.code}) printed no JSON document: ${excerpt(lastIssue.stdout || lastIssue.stderr)}` });
    }
  }
  try {
    violations.push(...checkWorkspace({ workspace: dirs.ws, manifest: env.manifest, inputs: env.inputs, spool: dirs.spool, outDir: dirs.out, issueErrorLines }));
    violations.push(...(await reingestCheck(env, dirs.ws, dir, dirs.spool, session)));
  } catch (e) {
    violations.push({ invariant: "recovery", detail: `the workspace could not be checked: ${(e as Error).stack ?? e}` });
  }
  const result: RoundResult = {
    seed,
    dir,
    commands,
    recovered,
    killed: commands.filter((x) => x.outcome === "killed").length,
    locked: commands.filter((x) => x.outcome === "locked").length,
    violations,
    ms: Date.now() - t0,
  };
  writeFileSync(join(dir, "round.json"), JSON.stringify({ ...result, plan }, null, 2));
  if (!o.keep && violations.length === 0) rmSync(dir, { recursive: true, force: true });
  return result;
}

/** One line per command and one per violation, for a human. */
export function formatRound(r: RoundResult): string {
  const cmds = r.commands.map((c) => `${c.name}=${c.outcome}${c.outcome === "killed" ? `@${c.killedAt}ms(${c.kill})` : ""}`).join(" ");
  const head = `seed ${r.seed}: ${r.violations.length ? `FAILED (${r.violations.length} violations)` : "passed"} in ${(r.ms / 1000).toFixed(1)} s — ${cmds}${r.recovered.length ? `; re-ran ${r.recovered.join(", ")}` : ""}`;
  return [head, ...r.violations.map((v) => `  [${v.invariant}] ${v.detail}`), ...(r.violations.length ? [`  (kept in ${r.dir})`] : [])].join("\n");
}
