/**
 * Builds dist/ once before any test file runs: the spawned-CLI suites (crash, concurrency, chaos) run the
 * built CLI, and several files building it at once in parallel workers could read each other's half-written
 * output. With both projects (vitest.config.ts) inheriting this file, the build still runs once per run.
 * Then, once per run too, the SQLite demo that runDemo copies (test/demo-template.ts), handed to every project
 * as `inject("jpkiDemoSqlite")`.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { TestProject } from "vitest/node";
import { makeDemoTemplate, type DemoTemplate } from "./demo-template.js";
import { INITDB_CACHE_ENV } from "./postgres-server.js";

const BUILT = Symbol.for("jpki.test.distBuilt");
const DEMO = Symbol.for("jpki.test.sqliteDemo");
const RUN_TMP = Symbol.for("jpki.test.runTmp");
const ROOT = join(import.meta.dirname, "..");

/** Builds dist/ unless this run already has (test/postgres-global-setup.ts needs it too, whichever runs first). */
export function buildDist(): void {
  const g = globalThis as { [BUILT]?: boolean };
  if (g[BUILT]) return;
  g[BUILT] = true;
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")], { stdio: "inherit" });
  // The rest of `npm run build`: the top-level help the launcher prints without loading the program.
  execFileSync(process.execPath, [join(ROOT, "bin", "help-cache.cjs")], { stdio: "inherit" });
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
  // At exit, after every global teardown (the PostgreSQL server's stop among them) has run.
  process.once("exit", (code) => {
    if (code === 0) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`jpki tests: the run's temporary files are kept in ${dir}\n`);
  });
}

export default function setup(project: TestProject): (() => void) | undefined {
  runTmpDir();
  buildDist();
  const g = globalThis as { [DEMO]?: DemoTemplate };
  const first = !g[DEMO];
  if (first) g[DEMO] = makeDemoTemplate(ROOT);
  project.provide("jpkiDemoSqlite", g[DEMO]!);
  return first ? () => rmSync(dirname(g[DEMO]!.workspace), { recursive: true, force: true }) : undefined;
}
