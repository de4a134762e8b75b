/**
 * Builds dist/ once before any test file runs: the spawned-CLI suites (crash, concurrency, chaos) run the
 * built CLI, and several files building it at once in parallel workers could read each other's half-written
 * output. With both projects (vitest.config.ts) inheriting this file, the build still runs once per run.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const BUILT = Symbol.for("jpki.test.distBuilt");

export default function setup(): void {
  const g = globalThis as { [BUILT]?: boolean };
  if (g[BUILT]) return;
  g[BUILT] = true;
  const root = join(import.meta.dirname, "..");
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
}
