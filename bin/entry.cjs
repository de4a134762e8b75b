"use strict";
/**
 * Which file the launcher runs (bin/jpki.cjs): the start-up bundle (bin/bundle.cjs, dist/bundle/main.js) while it
 * was built from the built modules as they are, else the built modules themselves (dist/src/cli/main.js).
 *
 * "As they are" is told by tsc's build record (dist/.tsbuildinfo, rewritten by every tsc build that emits): the
 * bundle step leaves in dist/bundle/ an empty file named after the record's size and modification time when it read
 * dist/src (recordMark). The record as it is now must be that one, not merely older than the bundle: a copy that
 * resets times (`cp -r`, `rsync -r` without -t, a container layer) in whatever order, a coarse clock that gives a
 * tsc build the bundle's second, or a tsc that wrote dist/src while the bundle read it all made an older bundle
 * look fresh under the old rule. A changed record never runs a bundle built before it; the cost is the same two
 * stats. So a `tsc` without the bundle step — a developer's `npx tsc -p tsconfig.build.json` — runs what it just
 * built. An installed package ships no build record: its bundle is used. A hand edit of dist/src in place is not
 * seen (no stat of ~300 files per start): run `node bin/bundle.cjs` after it, or JPKI_NO_BUNDLE=1. JPKI_NO_BUNDLE=1
 * runs the built modules whatever the bundle's state (to read a stack trace against dist/src, or to test the module
 * graph: cli-startup.test.ts).
 */
const { statSync } = require("node:fs");
const { join } = require("node:path");

/** The name of the file that says which build record a bundle was made after (size and mtime, as stat gives them). */
function recordMark(record) {
  return `built-after-record-${record.size}-${record.mtimeMs}`;
}

function cliEntry(root, env) {
  const modules = join(root, "dist", "src", "cli", "main.js");
  if (env.JPKI_NO_BUNDLE === "1") return modules;
  const bundle = join(root, "dist", "bundle");
  const record = statSync(join(root, "dist", ".tsbuildinfo"), { throwIfNoEntry: false });
  // the mark is written into the bundle's directory before it is renamed into place: present means main.js is too
  const fresh = statSync(join(bundle, record ? recordMark(record) : "main.js"), { throwIfNoEntry: false });
  return fresh ? join(bundle, "main.js") : modules;
}

module.exports = { cliEntry, recordMark };
