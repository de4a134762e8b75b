/**
 * Builds dist/ once before any test file runs: the spawned-CLI suites (crash, concurrency, chaos) run the
 * built CLI, and several files building it at once in parallel workers could read each other's half-written
 * output. With both projects (vitest.config.ts) inheriting this file, the build still runs once per run.
 * Then, once per run too, the SQLite demo that runDemo copies and the `ca init -p 13` workspace that tokyoWorkspace
 * copies (test/demo-template.ts), handed to every project but "postgres" as `inject("jpkiDemoSqlite")` and
 * `inject("jpkiTokyoSqlite")`.
 *
 * vitest runs the projects' global setups one after the other, before any test file. The "postgres" project's
 * (whose files runDemo never gives the SQLite demo) starts the SQLite demo and goes on to its server and its own
 * demo meanwhile; the setups after it find the SQLite demo made or nearly. test/sequencer.ts puts a "postgres"
 * file first in a whole run, so its setup is the first: about one demo's time (≈ 6 s) less before the first test.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { makeDemoTemplate, makeTokyoTemplate, type DemoTemplate } from "./demo-template.js";
import { CARD_KEY_POOL_ENV } from "./card-key-pool.js";
import { bundleNeeded, distIsFresh, recordSources, sourcesStamp } from "./dist-fresh.js";
import { INITDB_CACHE_ENV, startPostgres, type PostgresTestServer } from "./postgres-server.js";

const BUILT = Symbol.for("jpki.test.distBuilt");
const DEMO = Symbol.for("jpki.test.sqliteDemo");
const TOKYO = Symbol.for("jpki.test.sqliteTokyo");
const RUN_TMP = Symbol.for("jpki.test.runTmp");
const SHARED_PG = Symbol.for("jpki.test.sharedPostgres");
const ROOT = join(import.meta.dirname, "..");

/**
 * Builds dist/ unless this run already has (test/postgres-global-setup.ts needs it too, whichever runs first).
 * Asynchronous, so the PostgreSQL server starts meanwhile.
 */
export function buildDist(): Promise<void> {
  const g = globalThis as { [BUILT]?: Promise<void> };
  return (g[BUILT] ??= (async () => {
    const run = promisify(execFile);
    try {
      // the inputs as this build reads them: a file edited while it runs differs from the stamp next time
      const stamp = sourcesStamp(ROOT);
      const rebuilt = !distIsFresh(ROOT, stamp);
      if (rebuilt) {
        const started = new Date();
        await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")]);
        // tsc leaves its record alone when nothing it emits changed (an edited test file): dated to the start of this
        // build, which saw every file older, the record says so for the next run; a file edited meanwhile is newer.
        utimesSync(join(ROOT, "dist", ".tsbuildinfo"), started, started);
      }
      // The rest of `npm run build`: the top-level help the launcher prints without loading the program (≈ 0.3 s),
      // and the start-up bundle the launcher runs (bin/bundle.cjs), so the spawned CLIs run what a user's `jpki`
      // runs — the latter only when the one in place is not that of this build (test/dist-fresh.ts).
      const steps = [run(process.execPath, [join(ROOT, "bin", "help-cache.cjs")])];
      if (bundleNeeded(ROOT, rebuilt)) steps.push(run(process.execPath, [join(ROOT, "bin", "bundle.cjs")]));
      await Promise.all(steps);
      recordSources(ROOT, stamp);
    } catch (e) {
      // tsc says what is wrong on stdout
      const { stdout = "", stderr = "" } = e as { stdout?: string; stderr?: string };
      throw new Error(`building dist/ failed:\n${stdout}${stderr}`);
    }
  })());
}

/**
 * One temporary directory for the whole run: TMPDIR for this process and, inherited, for every test worker, the
 * CLIs they spawn and the servers they start, so the thousands of directories the suites make (workspaces,
 * spools, copies) go with it. Removed when the run exits successfully; kept, and named on stderr, when it failed,
 * for reading (the chaos rounds name theirs in their failure). Traversable by others (0711): the PostgreSQL
 * server runs as the postgres user in a directory of its own inside.
 */
export function runTmpDir(): void {
  const g = globalThis as { [RUN_TMP]?: string };
  if (g[RUN_TMP]) return;
  const dir = mkdtempSync(join(tmpdir(), "jpki-test-run-"));
  chmodSync(dir, 0o711);
  g[RUN_TMP] = process.env.TMPDIR = dir;
  // the cluster every PostgreSQL test server of the run is copied from, made by the first (postgres-server.ts)
  process.env[INITDB_CACHE_ENV] = join(dir, "pg-initdb");
  // the card keys openssl makes for the run's files, each made once (integration/helpers.ts cardKey)
  process.env[CARD_KEY_POOL_ENV] = join(dir, "card-keys");
  // At exit, after every global teardown (the PostgreSQL server's stop among them) has run.
  process.once("exit", (code) => {
    if (code === 0) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`jpki tests: the run's temporary files are kept in ${dir}\n`);
  });
}

/** The run's SQLite demo, started once by the first setup that asks for it; removed by the teardown of that setup. */
function sqliteDemo(): { made: Promise<DemoTemplate>; first: boolean } {
  const g = globalThis as { [DEMO]?: Promise<DemoTemplate> };
  const first = !g[DEMO];
  if (!g[DEMO]) {
    g[DEMO] = buildDist().then(() => makeDemoTemplate(ROOT));
    g[DEMO].catch(() => undefined); // a failure is reported by the setup that waits for it, not as unhandled meanwhile
  }
  return { made: g[DEMO], first };
}

/** The run's SQLite `ca init -p 13` workspace (demo-template.ts makeTokyoTemplate), started with the demo. */
function sqliteTokyo(): Promise<string> {
  const g = globalThis as { [TOKYO]?: Promise<string> };
  if (!g[TOKYO]) {
    g[TOKYO] = buildDist().then(() => makeTokyoTemplate(ROOT));
    g[TOKYO].catch(() => undefined);
  }
  return g[TOKYO];
}

/**
 * The PostgreSQL server the "sqlite" project's store files share (use-postgres.ts): each of them started one of its own
 * (≈ 1 s to start and stop, from the run's one initdb) for databases only it uses. Started beside the demo, once per
 * run whatever the number of projects that ask ("sqlite" and "sqlite-shared"), and stopped by the teardown of the
 * setup that started it (vitest runs every teardown after every file); a machine without PostgreSQL's binaries gets
 * none, and those files start their own, which says why it cannot.
 */
function sharedPostgres(): { server: Promise<PostgresTestServer | undefined>; first: boolean } {
  const g = globalThis as { [SHARED_PG]?: Promise<PostgresTestServer | undefined> };
  const first = !g[SHARED_PG];
  g[SHARED_PG] ??= startPostgres().catch(() => undefined);
  return { server: g[SHARED_PG], first };
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  runTmpDir();
  // The "unit" project (test/isolation.ts) runs no CLI process, no demo and no PostgreSQL: a server started for
  // it was a second shared one, for no file.
  if (project.name === "unit") return undefined;
  await buildDist();
  const { made, first } = sqliteDemo();
  const tokyo = sqliteTokyo();
  const shared = project.name !== "postgres" ? sharedPostgres() : undefined;
  // not waited for here: see the header
  if (project.name !== "postgres") {
    project.provide("jpkiDemoSqlite", await made);
    project.provide("jpkiTokyoSqlite", await tokyo);
    const server = await shared!.server;
    if (server) project.provide("jpkiSharedPostgres", server.socketDir);
  }
  return async () => {
    if (shared?.first) await (await shared.server)?.stop();
    if (!first) return;
    const demo = await made.catch(() => undefined);
    if (demo) rmSync(dirname(demo.workspace), { recursive: true, force: true });
    const ws = await tokyo.catch(() => undefined);
    if (ws) rmSync(dirname(ws), { recursive: true, force: true });
  };
}
