/**
 * Builds dist/ once before any test file runs: the spawned-CLI suites (crash, concurrency, chaos) run the
 * built CLI, and several files building it at once in parallel workers could read each other's half-written
 * output.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  const root = join(import.meta.dirname, "..");
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
}
