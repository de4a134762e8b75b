"use strict";
/**
 * Which file the launcher runs (bin/jpki.cjs): the start-up bundle (bin/bundle.cjs, dist/bundle/main.js) while it is
 * at least as new as tsc's build record (dist/.tsbuildinfo, touched by every tsc build that emits), else the built
 * modules themselves (dist/src/cli/main.js). So a `tsc` without the bundle step — a developer's `npx tsc -p
 * tsconfig.build.json` — runs what it just built, never an older bundle. An installed package ships no build
 * record: its bundle is used. Two stats, a few microseconds. JPKI_NO_BUNDLE=1 runs the built modules whatever the
 * bundle's state (to read a stack trace against dist/src, or to test the module graph: cli-startup.test.ts).
 */
const { statSync } = require("node:fs");
const { join } = require("node:path");

function cliEntry(root, env) {
  const modules = join(root, "dist", "src", "cli", "main.js");
  if (env.JPKI_NO_BUNDLE === "1") return modules;
  const bundle = statSync(join(root, "dist", "bundle", "main.js"), { throwIfNoEntry: false });
  if (!bundle) return modules;
  const record = statSync(join(root, "dist", ".tsbuildinfo"), { throwIfNoEntry: false });
  if (record && record.mtimeMs > bundle.mtimeMs) return modules;
  return join(root, "dist", "bundle", "main.js");
}

module.exports = { cliEntry };
