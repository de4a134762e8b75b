#!/usr/bin/env node
// Launcher of the `jpki` CLI. CommonJS on purpose: it runs before any asynchronous file read, so the size of
// libuv's thread pool (where RSA signatures run) can still be chosen. The default of 4 threads
// oversubscribes a 2-core machine and starves the main thread that feeds the signers; one per core does not.
"use strict";
const { availableParallelism } = require("node:os");
const { pathToFileURL } = require("node:url");
const { join, sep } = require("node:path");
const { realpathSync } = require("node:fs");
const args = process.argv.slice(2);
// `jpki --version` and the top-level help need no ES module at all (issue 8 point 9): loading the program
// would cost more than their whole start-up budget. A reader leaving the pipe early (`jpki --help | head`)
// is no error, as in src/cli/output.ts.
const quiet = (stream) => stream.on("error", (e) => { if (e.code !== "EPIPE") throw e; });
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  quiet(process.stdout);
  process.stdout.write(`${require("../package.json").version}\n`);
  return;
}
if (args.length <= 1 && require("./help-cache.cjs").printCachedHelp(args)) {
  quiet(process.stdout);
  quiet(process.stderr);
  return;
}
// Before the program loads (≈ 1.5 s): a daemon's SIGTERM in its start-up is held for it, not met by node's default,
// which ended it 143 (bin/early-stop.cjs). After the fast paths above, which no daemon takes.
if (args[0] !== "--run-module") require("./early-stop.cjs").holdEarlyStop(args);
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(availableParallelism());
const target = process.argv[2] === "--run-module" ? moduleToRun(process.argv.splice(2, 2)[1]) : require("./entry.cjs").cliEntry(join(__dirname, ".."), process.env);
if (target === undefined) return;
// The CA keys' PBKDF2 runs on the thread pool while the program loads (bin/early-kek.cjs).
if (args[0] !== "--run-module") require("./early-kek.cjs").startEarlyKek(args, process.env);
import(pathToFileURL(target).href).catch((e) => {
  // The build hint only where a module is missing (no dist/, or a chunk of an older build): a --run-module file
  // (a bench, a harness) that throws while it runs says what it threw, or a failing bench reads as a missing build.
  const missing = !e || e.code === "ERR_MODULE_NOT_FOUND" || args[0] !== "--run-module";
  process.stderr.write(missing ? `jpki: cannot start (${e && e.message}); run 'npm run build' first\n` : `jpki: ${target} failed: ${(e && e.stack) || e}\n`);
  process.exitCode = 70;
});

/**
 * `--run-module FILE` (the benches, the test harnesses) runs a module with this launcher's start-up. Only this
 * package's own modules, unless JPKI_RUN_ANY_MODULE=1 (the test harnesses' private builds): an operator may let
 * someone run `jpki` as the account that holds the CA keys (sudo -u), and that must not run any file as it.
 * sudo drops such a variable unless told to keep it.
 */
function moduleToRun(file) {
  if (process.env.JPKI_RUN_ANY_MODULE === "1") return file;
  let real;
  try {
    real = realpathSync(file || "");
  } catch {
    return file; // the import fails and says so
  }
  const root = realpathSync(join(__dirname, ".."));
  if (real.startsWith(root + sep) && !real.slice(root.length + 1).split(sep).includes("node_modules")) return file;
  process.stderr.write(`jpki: --run-module runs only jpki's own modules (under ${root}), not ${file}\n`);
  process.exitCode = 2;
  return undefined;
}
