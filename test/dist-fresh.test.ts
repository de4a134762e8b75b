/**
 * The test setup's build skips (test/dist-fresh.ts): tsc is skipped only while no input changed since dist/ was
 * built (a file put back with its old time included); the bundle step only for a bundle the launcher would run as
 * it is, and never after a tsc build of the same run.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleNeeded, distIsFresh, recordSources, sourcesStamp } from "./dist-fresh.js";

const entry = createRequire(import.meta.url)("../bin/entry.cjs") as {
  recordMark(record: { size: number; mtimeMs: number }): string;
  cliEntry(root: string, env: Record<string, string | undefined>): string;
};

let root: string;
let record: string;
let bundle: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dist-fresh-"));
  record = join(root, "dist", ".tsbuildinfo");
  bundle = join(root, "dist", "bundle");
  mkdirSync(bundle, { recursive: true });
  writeFileSync(record, '{"version":"5.9"}');
  writeFileSync(join(bundle, "main.js"), "");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** What bin/bundle.cjs leaves when it has read dist/src under the record as it is now. */
function markBundle(): void {
  writeFileSync(join(bundle, entry.recordMark(statSync(record))), "");
}
/** Whether the launcher would run the bundle (rather than dist/src) in this checkout. */
function launcherRunsBundle(): boolean {
  return entry.cliEntry(root, {}) === join(bundle, "main.js");
}

describe("bundleNeeded", () => {
  it("skips a bundle made after the build record as it is now: the one the launcher runs", () => {
    markBundle();
    expect(launcherRunsBundle()).toBe(true);
    expect(bundleNeeded(root, false)).toBe(false);
  });

  it("rebuilds after a tsc build of this run, whatever the mark says", () => {
    markBundle();
    expect(bundleNeeded(root, true)).toBe(true);
  });

  it("rebuilds a bundle made after another record: a tsc build since (rewritten, or only re-dated by the setup), or a copy that reset times", () => {
    markBundle();
    writeFileSync(record, '{"version":"5.9","changed":1}');
    expect(launcherRunsBundle()).toBe(false);
    expect(bundleNeeded(root, false)).toBe(true);
    // same size, another time (the setup dates the record to its tsc build's start; cp -r without times)
    writeFileSync(record, '{"version":"5.9"}');
    markBundle();
    const t = statSync(record).mtime;
    utimesSync(record, t, new Date(t.getTime() - 5000));
    expect(launcherRunsBundle()).toBe(false);
    expect(bundleNeeded(root, false)).toBe(true);
  });

  it("rebuilds when there is no bundle, or no build record to tell its freshness by", () => {
    rmSync(bundle, { recursive: true });
    expect(bundleNeeded(root, false)).toBe(true);
    mkdirSync(bundle);
    markBundle();
    rmSync(record);
    expect(bundleNeeded(root, false)).toBe(true);
  });
});

describe("distIsFresh", () => {
  const src = () => join(root, "src", "a.ts");
  /** the build's inputs, older than the record, as `npm run build` leaves them */
  beforeEach(() => {
    mkdirSync(join(root, "src"));
    mkdirSync(join(root, "bench"));
    mkdirSync(join(root, "test"));
    for (const f of ["src/a.ts", "package.json", "tsconfig.json", "tsconfig.build.json"]) writeFileSync(join(root, f), "x");
    const before = new Date(statSync(record).mtimeMs - 60_000);
    for (const f of ["src/a.ts", "package.json", "tsconfig.json", "tsconfig.build.json"]) utimesSync(join(root, f), before, before);
  });
  /** what the setup does after it built (or found fresh) dist/ */
  const setupRan = () => recordSources(root, sourcesStamp(root));

  it("is fresh with nothing edited since a build, with or without the setup's stamp; stale once a file is newer", () => {
    expect(distIsFresh(root)).toBe(true);
    setupRan();
    expect(distIsFresh(root)).toBe(true);
    writeFileSync(src(), "edited");
    expect(distIsFresh(root)).toBe(false);
  });

  it("is stale when a file built from by the setup is put back with its old time (cp -p after a mutation test), though no file is newer than the record", () => {
    const original = statSync(src()).mtime;
    // the mutation: edited, then the setup rebuilt dist/ from it, the record dated to the build's start and the stamp
    // written at its end (a second apart here: file times are coarser than Date.now)
    const now = Date.now();
    writeFileSync(src(), "mutant");
    utimesSync(src(), new Date(now - 2000), new Date(now - 2000));
    utimesSync(record, new Date(now - 1000), new Date(now - 1000));
    setupRan();
    expect(distIsFresh(root)).toBe(true);
    // put back as it was, its old time too: older than the record, and dist/ still the mutant's
    writeFileSync(src(), "x");
    utimesSync(src(), original, original);
    expect(distIsFresh(root)).toBe(false);
    // as is a file added or removed
    setupRan();
    writeFileSync(join(root, "src", "b.ts"), "x");
    utimesSync(join(root, "src", "b.ts"), original, original);
    expect(distIsFresh(root)).toBe(false);
  });

  it("goes by the record again after a build the setup did not stamp (npm run build)", () => {
    setupRan();
    writeFileSync(src(), "edited");
    // npm run build: the record rewritten after the stamp, newer than every input
    const later = new Date(Date.now() + 60_000);
    utimesSync(record, later, later);
    expect(distIsFresh(root)).toBe(true);
  });
});
