/**
 * The test setup's build skips (test/dist-fresh.ts): the bundle step is skipped only for a bundle the launcher would
 * run as it is, and never after a tsc build of the same run.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bundleNeeded } from "./dist-fresh.js";

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
