/**
 * Which test files under src/ may run without isolation (vitest.config.ts, project "unit", `isolate: false`): one
 * worker process runs file after file and keeps the modules it imported, so a file pays no start of its own
 * (forking a worker, importing vitest, pkijs, @peculiar/*, fastify and our modules: ≈ 0.5–1 s of CPU a file). Every
 * other file runs isolated, in a fresh worker, as before (projects "sqlite" and "postgres").
 *
 * A file shares its worker with the files before and after it, so it must leave nothing behind that another file
 * could see, and see nothing they left. Decided from the file's own text, so that a new file is placed the day it is
 * written: whatever the rules below find in it keeps it isolated. What they look for, and why:
 * - processes and threads it starts (child_process, worker_threads, a PostgreSQL server): they outlive a failed
 *   test, and a file that times them would share the CPU with another file's leftovers. Not a synchronous child
 *   (execFileSync, spawnSync, execSync): it has ended when the call returns (see startsProcesses);
 * - process-wide state it changes: the environment, umask, the working directory, signal or exit handlers,
 *   globals (an assignment to globalThis, a Symbol.for registry entry, @peculiar/x509's crypto provider);
 * - module mocks and fake timers: a vi.mock'ed module stays in the module cache the next file imports from, and
 *   nothing puts the timers back between files. Spies (vi.spyOn) may share: vitest restores every spy after each
 *   file of a worker (vi.restoreAllMocks in its run loop), isolated or not.
 * A helper the file imports is not read, except by name where one does such a thing (test/umask.ts underUmaskZero,
 * src/thread.ts newThread): the other helpers under test/ that unit files import start and change nothing.
 *
 * The integration files under test/ that pass the same rules, but read what the "sqlite" global setup provides and
 * use the integration helpers that start nothing, share a worker of their own: the "sqlite-shared" project
 * (sharedIntegrationFiles). There test/shared-worker-guard.ts also checks, as each file ends, what it left behind.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** A rule: what it finds in a test file's source (a pattern, or a test of the whole text), and why that file must then run isolated. */
const RULES: ReadonlyArray<readonly [RegExp | ((source: string) => boolean), string]> = [
  [startsProcesses, "starts processes (child_process)"],
  [/["']node:worker_threads["']|\bnew Worker\(|\bnewThread\(/, "starts threads (worker_threads, thread.ts)"],
  [/\busePostgres\(/, "starts a PostgreSQL server (use-postgres.ts)"],
  [/process\.env(?:\.\w+|\[[^\]]+\])\s*(?:=(?!=)|\?\?=|\|\|=)|delete\s+process\.env|process\.env\s*=(?!=)|Object\.assign\(process\.env|vi\.stubEnv/, "changes the environment"],
  [/process\.(?:umask|chdir)\(|\bunderUmaskZero\(/, "changes umask or the working directory"],
  [/process\.(?:on|once|off|prependListener|removeListener|removeAllListeners|emit|exit)\(|process\.exitCode\s*=/, "touches the process's handlers or exit"],
  [/(?:globalThis|\(globalThis as [^)]*\))(?:\.\w+|\[[^\]]+\])\s*(?:=(?!=)|\?\?=)|\bSymbol\.for\(|cryptoProvider\.set\(|vi\.stubGlobal/, "sets a global"],
  [/\bvi\.(?:mock|doMock|unmock|useFakeTimers|setSystemTime|resetModules)\(/, "mocks modules or fakes the clock"],
  // a browser it launches is a process, though the file imports no child_process
  [/["']playwright(?:-core)?["']/, "starts a browser (playwright)"],
];

/** The unit project's own rule: its global setup provides nothing (global-setup.ts returns at once for it). */
const UNIT_RULES: typeof RULES = [
  ...RULES,
  // vitest's inject, not fastify's app.inject
  [/(?<![.\w])inject\(/, "reads what its project's global setup provides (inject): the unit project's provides nothing"],
];

function firstRule(source: string, rules: typeof RULES): string | undefined {
  return rules.find(([rule]) => (typeof rule === "function" ? rule(source) : rule.test(source)))?.[1];
}

/** Why a test file with this source must run isolated, or undefined when it may share its worker. */
export function needsIsolation(source: string): string | undefined {
  return firstRule(source, UNIT_RULES);
}

/** The child_process functions that return only once their process has ended (and been reaped). */
const SYNCHRONOUS = new Set(["execFileSync", "execSync", "spawnSync"]);

/**
 * Whether the file may leave a process running: it imports child_process otherwise than by naming synchronous
 * functions only (spawn, exec, execFile, fork, a type; the module as a whole, by `import *`, a default import,
 * require or import()). A synchronous child (an openssl command, mkfifo, `true` for a dead pid) has ended when the call
 * returns, failed test or not, and leaves nothing another file could see; its CPU is spent inside its own test.
 */
function startsProcesses(source: string): boolean {
  const mentions = source.match(/["'](?:node:)?child_process["']/g)?.length ?? 0;
  if (mentions === 0) return false;
  const named = [...source.matchAll(/\bimport\s*\{([^}]*)\}\s*from\s*["'](?:node:)?child_process["']/g)];
  if (named.length !== mentions) return true;
  // by the name imported (`spawnSync as run` is spawnSync); a type (ChildProcess) goes with a process started elsewhere
  const names = named.flatMap(([, list]) => list!.split(",").map((n) => n.trim().split(/\s+as\s+/)[0]!).filter((n) => n !== ""));
  return names.some((n) => !SYNCHRONOUS.has(n));
}

/**
 * The helpers under test/ that a test file there may import and still share its worker: each starts nothing and
 * changes nothing process-wide (cli-in-process.ts runs the CLI in this process on the Io it is given). The others
 * start processes, servers or a PostgreSQL (integration/helpers.ts, chaos/harness.ts, pcscd.ts, softhsm.ts,
 * use-postgres.ts), or read at import what a project's global setup provides (`inject`: integration/helpers.ts,
 * tokyo-fixture.ts), of which the unit project's provides nothing.
 */
const SHARING_HELPERS = new Set(["test/cli-in-process.ts", "test/dist-fresh.ts", "test/error-code.ts", "test/isolation.ts", "test/sequencer.ts", "test/until.ts"]);

/**
 * Why a test file under test/ with this source must run isolated, or undefined when it may share its worker: the
 * rules of {@link needsIsolation}, and what it imports by a relative path must be under src/ or one of
 * SHARING_HELPERS. There the helpers are the rule, not the exception (most start the CLI as a process), so each is
 * named, not trusted; under src/ a test file imports library modules, whose tests these rules already read.
 */
export function needsIsolationUnderTest(file: string, source: string, root: string): string | undefined {
  return needsIsolation(source) ?? unknownHelper(file, source, root, SHARING_HELPERS);
}

/** The first helper under test/ that `file` imports by a relative path and `allowed` does not name (src/ is allowed). */
function unknownHelper(file: string, source: string, root: string, allowed: ReadonlySet<string>): string | undefined {
  for (const [, spec] of source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
    const target = relative(root, resolve(dirname(join(root, file)), spec!)).replace(/\.js$/, ".ts");
    if (!target.startsWith(`src${sep}`) && !allowed.has(target.split(sep).join("/"))) return `imports ${target}, a helper not known to start nothing`;
  }
  return undefined;
}

/**
 * The helpers a file of the "sqlite-shared" project may import besides SHARING_HELPERS. integration/helpers.ts reads
 * what that project's global setup provides (`inject`: the run's SQLite demo and Tokyo workspace, as it does for the
 * "sqlite" project) and runs the CLI in-process on an Io of its own (its environment is a copy, never process.env).
 * Its functions that start a process are named in PROCESS_HELPERS; the rest of it, and the others here, start
 * nothing that outlives their call: openssl and tar synchronously (execFileSync, spawnSync), a loopback port opened
 * and closed (freePort), keys made in-process (card-fixtures.ts, verifier-workspace.ts). Of postgres-server.ts a
 * file may use the paths and connection strings, not startPostgres.
 */
const INTEGRATION_HELPERS = new Set([
  ...SHARING_HELPERS,
  "test/integration/helpers.ts",
  "test/card-fixtures.ts",
  "test/card-key-pool.ts",
  "test/integration/verifier-workspace.ts",
  "test/postgres-server.ts",
]);

/**
 * The helpers' functions that start a process the file does not wait for (the built CLI, `jpki serve`, a PostgreSQL
 * server): a file that names one, even to pass it on, stays isolated.
 */
const PROCESS_HELPERS = /\b(?:jpkiProcess|stopWhileWaiting|startServe|startPostgres)\b/;

/**
 * Why a test file under test/ must run isolated rather than in the "sqlite-shared" project (a worker of its own kept
 * from file to file, like "unit", with the "sqlite" project's global setup): the rules of {@link needsIsolation} but
 * `inject` (that setup provides what the files read), no helper function of PROCESS_HELPERS, and every relative
 * import under src/ or in INTEGRATION_HELPERS. What the file leaves in the process is also checked as it runs
 * (test/shared-worker-guard.ts).
 */
export function needsIsolationInSharedIntegration(file: string, source: string, root: string): string | undefined {
  const why = firstRule(source, RULES);
  if (why) return why;
  if (PROCESS_HELPERS.test(source)) return `starts the CLI or a server as a process (${source.match(PROCESS_HELPERS)![0]})`;
  return unknownHelper(file, source, root, INTEGRATION_HELPERS);
}

/** The test files under `dir` (paths relative to `root`) and their sources. */
function testFiles(root: string, dir: string): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".test.ts")) out.push([relative(root, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name), "utf8")]);
  }
  return out;
}

/**
 * The test files under src/ and test/ (paths relative to `root`, sorted) that may share a worker: the "unit" project's.
 */
export function unitFiles(root: string): string[] {
  const src = testFiles(root, "src").filter(([, source]) => needsIsolation(source) === undefined);
  const test = testFiles(root, "test").filter(([file, source]) => needsIsolationUnderTest(file, source, root) === undefined);
  return [...src, ...test].map(([file]) => file).sort();
}

/**
 * The test files under test/ (paths relative to `root`, sorted) of the "sqlite-shared" project: not unit files, and
 * admitted by {@link needsIsolationInSharedIntegration}.
 */
export function sharedIntegrationFiles(root: string): string[] {
  const unit = new Set(unitFiles(root));
  return testFiles(root, "test")
    .filter(([file, source]) => !unit.has(file) && needsIsolationInSharedIntegration(file, source, root) === undefined)
    .map(([file]) => file)
    .sort();
}
