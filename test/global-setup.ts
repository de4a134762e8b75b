/**
 * Builds dist/ once before any test file runs: the spawned-CLI suites (crash, concurrency, chaos) run the
 * built CLI, and several files building it at once in parallel workers could read each other's half-written
 * output. With both projects (vitest.config.ts) inheriting this file, the build still runs once per run.
 * Then, once per run too, the SQLite demo that runDemo copies (test/demo-template.ts), handed to every project
 * as `inject("jpkiDemoSqlite")`.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { TestProject } from "vitest/node";
import { makeDemoTemplate, type DemoTemplate } from "./demo-template.js";

const BUILT = Symbol.for("jpki.test.distBuilt");
const DEMO = Symbol.for("jpki.test.sqliteDemo");
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

export default function setup(project: TestProject): (() => void) | undefined {
  buildDist();
  const g = globalThis as { [DEMO]?: DemoTemplate };
  const first = !g[DEMO];
  if (first) g[DEMO] = makeDemoTemplate(ROOT);
  project.provide("jpkiDemoSqlite", g[DEMO]!);
  return first ? () => rmSync(dirname(g[DEMO]!.workspace), { recursive: true, force: true }) : undefined;
}
