/**
 * Whether the test run's build steps (test/global-setup.ts buildDist) have anything to do: tsc and the start-up
 * bundle each cost seconds for nothing when `npm run build` (in CI, `npm ci`'s prepare) or the previous run has just
 * made them.
 */
import { existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** The launcher's mark of the build record a bundle was made after (bin/entry.cjs), so both read freshness alike. */
const { recordMark } = createRequire(import.meta.url)("../bin/entry.cjs") as { recordMark(record: { size: number; mtimeMs: number }): string };

/**
 * dist/ as `npm run build` (or the test setup) left it with nothing edited since: its incremental build record
 * (tsconfig.build.json's tsBuildInfoFile) newer than every file under the trees the build reads, and its configs.
 * Then tsc would only read everything to find nothing to do (≈ 5 s; in CI `npm ci` has just built it). Anything
 * newer, or no record: tsc decides.
 */
export function distIsFresh(root: string): boolean {
  const record = join(root, "dist", ".tsbuildinfo");
  if (!existsSync(record)) return false;
  const built = statSync(record).mtimeMs;
  // files only: a directory's time changes when a file in it is made or removed (the tests' scratch files)
  const newer = (path: string): boolean => {
    const s = lstatSync(path);
    if (!s.isDirectory()) return s.mtimeMs > built;
    return readdirSync(path).some((name) => newer(join(path, name)));
  };
  return !["src", "bench", "test", "package.json", "tsconfig.json", "tsconfig.build.json"].some((p) => newer(join(root, p)));
}

/**
 * Whether bin/bundle.cjs must run: always after a tsc build in this run (`rebuilt`: dist/src may have changed under
 * the record), else unless dist/bundle/ holds the mark of the build record as it is now — exactly what the launcher
 * checks before it runs the bundle (bin/entry.cjs cliEntry), so a bundle skipped here is one the spawned CLIs run.
 * Rebuilding it anyway costs ≈ 2.5 s before any test starts. A bundle made from another record (a tsc without the
 * bundle step, a copy that reset times), or none (esbuild missing, a dropped bundle): made again.
 */
export function bundleNeeded(root: string, rebuilt: boolean): boolean {
  if (rebuilt) return true;
  const record = statSync(join(root, "dist", ".tsbuildinfo"), { throwIfNoEntry: false });
  return !record || !existsSync(join(root, "dist", "bundle", recordMark(record)));
}
