/**
 * Whether the test run's build steps (test/global-setup.ts buildDist) have anything to do: tsc and the start-up
 * bundle each cost seconds for nothing when `npm run build` (in CI, `npm ci`'s prepare) or the previous run has just
 * made them.
 */
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";

/** The launcher's mark of the build record a bundle was made after (bin/entry.cjs), so both read freshness alike. */
const { recordMark } = createRequire(import.meta.url)("../bin/entry.cjs") as { recordMark(record: { size: number; mtimeMs: number }): string };

/** What the build reads (and its configs): the trees and files whose change makes dist/ stale. */
const INPUTS = ["src", "bench", "test", "package.json", "tsconfig.json", "tsconfig.build.json"];

/** Where the test setup keeps the sourcesStamp of the inputs it last built dist/ from, or found it fresh for. */
const STAMP = join("dist", ".sources-stamp");

/**
 * The build's inputs as they stand: each file's path, size and modification time (files only, as in distIsFresh),
 * hashed. Equal stamps: nothing was edited, added, removed or re-dated in between.
 */
export function sourcesStamp(root: string): string {
  const h = createHash("sha256");
  const walk = (path: string): void => {
    const s = lstatSync(path, { throwIfNoEntry: false });
    if (!s) return;
    if (!s.isDirectory()) return void h.update(`${relative(root, path)}\0${s.size}\0${s.mtimeMs}\n`);
    for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  for (const p of INPUTS) walk(join(root, p));
  return h.digest("hex");
}

/** Records `stamp` (taken before the build, so a file edited during it shows next time) as what dist/ was built from. */
export function recordSources(root: string, stamp: string): void {
  writeFileSync(join(root, STAMP), stamp);
}

/**
 * dist/ as `npm run build` (or the test setup) left it with nothing edited since. Then tsc would only read
 * everything to find nothing to do (≈ 5 s; in CI `npm ci` has just built it). Anything else, or no record: tsc
 * decides.
 * - The setup's own stamp (recordSources), when no build came after it: fresh only if the inputs' stamp is the
 *   same. A file put back with its old time (`cp -p` of a copy, undoing a mutation test) is older than the build
 *   record, and passed the rule below while dist/ still held what the setup had built from the mutated file.
 * - Else (`npm run build` since, or no stamp): the incremental build record (tsconfig.build.json's
 *   tsBuildInfoFile) newer than every input file.
 */
export function distIsFresh(root: string, stamp: string = sourcesStamp(root)): boolean {
  const record = join(root, "dist", ".tsbuildinfo");
  if (!existsSync(record)) return false;
  const built = statSync(record).mtimeMs;
  const stamped = statSync(join(root, STAMP), { throwIfNoEntry: false });
  if (stamped && stamped.mtimeMs >= built) return readFileSync(join(root, STAMP), "utf8") === stamp;
  // files only: a directory's time changes when a file in it is made or removed (the tests' scratch files)
  const newer = (path: string): boolean => {
    const s = lstatSync(path);
    if (!s.isDirectory()) return s.mtimeMs > built;
    return readdirSync(path).some((name) => newer(join(path, name)));
  };
  return !INPUTS.some((p) => newer(join(root, p)));
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
