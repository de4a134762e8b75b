"use strict";
/**
 * The top-level help of `jpki` without loading the program (issue 8 point 9). Building the commander tree
 * means loading ~45 ES modules, which on Node 20 costs more than the whole 150 ms budget of `jpki --help`.
 * So the build (package.json "build", after tsc) asks the real program for what its help is made of, item by
 * item as commander's Help computes it (usage, description, the terms and descriptions of options and
 * commands, the text added before and after), and writes that to dist/cli-help.json with the help as printed
 * when the output is not a terminal. bin/jpki.cjs prints that text into a pipe or file as it is; on a terminal
 * it hands the items back to commander's own Help (~15 ms more, for loading commander), so the layout (column
 * widths, wrapping to the terminal's width) is commander's at whatever width the terminal has.
 * test/integration/cli-startup.test.ts proves both equal the program's help, the latter at several widths.
 *
 * The cache names every built file the help came from (the static imports reachable from program.js) with its
 * size. It is used only while each is that size and no newer than the cache, and the version is the same:
 * tsc rewrites every file it emits, so a tsc run without the cache step, or a hand edit in dist/, leaves the
 * cache unused (the program renders the help itself, as before) rather than wrong. Modification times, not
 * hashes: a stat costs microseconds, hashing the ~300 kB costs ~10 ms of the budget; and npm installs every
 * file of a package with one and the same time, which keeps an installed cache valid.
 */
const { readFileSync, statSync, writeFileSync, renameSync } = require("node:fs");
const { dirname, join, relative, resolve, sep } = require("node:path");
const { pathToFileURL } = require("node:url");

const ROOT = join(__dirname, "..");
const CACHE = join(ROOT, "dist", "cli-help.json");
const PROGRAM = join(ROOT, "dist", "src", "cli", "program.js");

/**
 * Where commander prints the top-level help for these arguments, or undefined when it does not:
 * `jpki --help`, `-h` and `jpki help` print it to stdout; bare `jpki` prints it to stderr (commander's
 * help({ error: true })), and the program exits 0 for all of them.
 */
function helpTarget(args) {
  if (args.length === 0) return "stderr";
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h" || args[0] === "help")) return "stdout";
  return undefined;
}

/**
 * The built files whose content makes the top-level help: program.js, the command modules its table loads
 * (dynamic imports there), and their static imports, transitively (ours, not packages). The dynamic imports
 * inside the commands load the library when a command runs and make no help.
 */
function sources() {
  const seen = new Set();
  const todo = [PROGRAM];
  const IMPORT = /^(?:import|export)\s(?:[^;]*?\sfrom\s)?\s*"(\.{1,2}\/[^"]+)"/gm;
  const TABLE = /\bimport\("(\.{1,2}\/[^"]+)"\)/g;
  while (todo.length) {
    const file = todo.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(IMPORT)) todo.push(resolve(dirname(file), m[1]));
    if (file === PROGRAM) for (const m of text.matchAll(TABLE)) todo.push(resolve(dirname(file), m[1]));
  }
  return [...seen].sort();
}

function sizes(files) {
  const out = {};
  for (const f of files) out[relative(ROOT, f).split(sep).join("/")] = statSync(f).size;
  return out;
}

/** The cache when it is there and still describes the built program and this version; else undefined. */
function load() {
  let cache;
  try {
    const written = statSync(CACHE).mtimeMs;
    cache = JSON.parse(readFileSync(CACHE, "utf8"));
    if (cache.version !== require("../package.json").version) return undefined;
    for (const [file, size] of Object.entries(cache.sources)) {
      const s = statSync(join(ROOT, file));
      if (s.size !== size || s.mtimeMs > written) return undefined;
    }
  } catch {
    return undefined; // no cache, or a file it names is gone: the program renders the help
  }
  return cache;
}

/**
 * Prints the top-level help from the cache if these arguments ask for it and the cache is current; returns
 * whether it did (then the caller exits 0). Anything else goes to the program.
 */
function printCachedHelp(args) {
  const target = helpTarget(args);
  if (!target) return false;
  const cache = load();
  if (!cache) return false;
  const stream = process[target];
  // Not a terminal: commander lays the help out at 80 columns without colour, which is the cached text.
  stream.write(stream.isTTY ? render(cache, { error: target === "stderr", width: stream.columns }) : cache.text);
  return true;
}

/** For a terminal, hands the cached items to commander's Help: the same layout code as the program's, at the terminal's width. */
function render(cache, { error, width }) {
  const { Command } = require("commander");
  const h = cache.help;
  const options = h.options.map(([term, description, heading]) => ({ term, description, helpGroupHeading: heading }));
  const commands = h.commands.map(([term, description, group]) => ({ term, description, helpGroup: () => group }));
  const args = h.arguments.map(([term, description]) => ({ term, description }));
  const stub = new Command(h.name).configureHelp({
    commandUsage: () => h.usage,
    commandDescription: () => h.description,
    visibleArguments: () => args,
    argumentTerm: (a) => a.term,
    argumentDescription: (a) => a.description,
    visibleOptions: () => options,
    optionTerm: (o) => o.term,
    optionDescription: (o) => o.description,
    visibleGlobalOptions: () => [],
    visibleCommands: () => commands,
    subcommandTerm: (c) => c.term,
    subcommandDescription: (c) => c.description,
  });
  for (const [event, text] of Object.entries(h.texts)) if (text) stub.on(event, (context) => context.write(text));
  let out = "";
  const write = (s) => (out += s);
  stub.configureOutput({ writeOut: write, writeErr: write, getOutHelpWidth: () => width, getErrHelpWidth: () => width });
  stub.outputHelp({ error });
  return out;
}

/** What the program's top-level help is made of, asked of commander's Help exactly as formatHelp asks. */
function snapshot(program) {
  const helper = program.createHelp();
  const texts = {};
  for (const event of ["beforeAllHelp", "beforeHelp", "afterHelp", "afterAllHelp"]) {
    texts[event] = "";
    program.emit(event, { error: false, command: program, write: (s) => (texts[event] += s) });
  }
  return {
    name: program.name(),
    usage: helper.commandUsage(program),
    description: helper.commandDescription(program),
    arguments: helper.visibleArguments(program).map((a) => [helper.argumentTerm(a), helper.argumentDescription(a)]),
    options: helper.visibleOptions(program).map((o) => [helper.optionTerm(o), helper.optionDescription(o), o.helpGroupHeading]),
    commands: helper.visibleCommands(program).map((c) => [helper.subcommandTerm(c), helper.subcommandDescription(c), c.helpGroup() || "Commands:"]),
    texts,
  };
}

/** Writes dist/cli-help.json from the built program (the build step; `node bin/help-cache.cjs`). */
async function write() {
  const files = sources();
  const { makeProgram } = await import(pathToFileURL(PROGRAM).href);
  let text = "";
  const sink = { write: (s) => (text += s) };
  const program = await makeProgram({ stdout: sink, stderr: sink, env: process.env, cwd: process.cwd() });
  // As the help is laid out when stdout is not a terminal, whatever the build runs in.
  program.configureOutput({ getOutHelpWidth: () => undefined, getOutHasColors: () => false });
  program.outputHelp();
  const cache = { version: require("../package.json").version, sources: sizes(files), text, help: snapshot(program) };
  const tmp = `${CACHE}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cache, null, 1) + "\n");
  renameSync(tmp, CACHE); // a launcher starting meanwhile reads the old cache or the new one, never half of one
}

module.exports = { printCachedHelp, render, write, CACHE };

if (require.main === module) {
  write().catch((e) => {
    process.stderr.write(`jpki: cannot write the help cache (${e && e.message})\n`);
    process.exitCode = 1;
  });
}
