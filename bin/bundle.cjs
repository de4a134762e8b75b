"use strict";
/**
 * The CLI's start-up bundle (issue 8 point 9, and every command's fixed cost): esbuild joins the built ES modules
 * under dist/src that the CLI loads into a few files in dist/bundle/, which bin/jpki.cjs runs instead of
 * dist/src/cli/main.js while it is fresh (bin/entry.cjs). Node 20 spends ≈ 1 ms on each ES module it loads —
 * resolving it, the nearest package.json, reading it through the thread pool, compiling, linking — and a command
 * such as `crl generate` loads ≈ 70 of ours: measured on this 2-core host, a 1,000,000-entry `crl generate` went
 * from 0.600 to 0.512 s (README, the start-up bench). The code is the same: the command modules stay lazy (each dynamic import becomes a chunk of its own),
 * node_modules stay where they are (native addons, and their own resolution), and dist/src stays the library.
 *
 * Worker threads name their entry module relative to the module that starts them
 * (`new URL("./notice-reader-thread.js", import.meta.url)`); in the bundle that module is a chunk in dist/bundle/,
 * so every such entry found in dist/src becomes an entry point of the bundle under its own name beside the chunks.
 * Found by reading the built files the CLI reaches, not listed here: a thread added later is bundled without anyone remembering to.
 *
 * Written to a directory of its own and renamed into place, so a `jpki` starting meanwhile sees the old bundle, or
 * none (then dist/src), never half of one. A `jpki` that loaded the old main.js goes on importing chunks by name
 * from dist/bundle/ — the rest of its start, its command's chunk, a library module `serve` or `watch` loads hours
 * later — so the old build's chunks that this one does not make are linked into the new directory (carryOver):
 * chunk names are content hashes, so an old one never stands for other code. Only the old build's own chunks, not
 * those it carried in turn: a process outlives one build under it, and the directory stays one build plus the
 * changed chunks of the one before. `node bin/bundle.cjs [OUTDIR]` (OUTDIR for the test of this file).
 *
 * node-postgres, the one package a PostgreSQL command loads (its connection, every statement), is bundled too, into a
 * CommonJS file of its own beside the chunks (PG_BUNDLE, dist/bundle/pg.cjs) that src/store/postgres.ts loadPg
 * requires when it runs from a chunk here: its 32 files (pg, pg-protocol, pg-pool, pg-types and their small
 * dependencies) each cost Node a resolution, a read and a compile, ≈ 20 ms of every PostgreSQL command against ≈ 10
 * for the one file (measured on this 2-core host, chrt -f 10). Not imported by the chunks: a SQLite command never
 * loads it, and loadPg keeps its stand-in for the runtime probe around the require. Its optional native binding
 * (pg-native) and Cloudflare's socket stay outside, resolved from node_modules if ever asked for.
 *
 * The bundle says which tsc build it was made from: an empty file named after dist/.tsbuildinfo's size and time
 * (bin/entry.cjs recordMark), which the launcher looks for. A record that changed while esbuild read dist/src (a tsc
 * writing it meanwhile: two builds in one checkout) drops this bundle (the other build makes its own) and says so.
 */
const { copyFileSync, existsSync, linkSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require("node:fs");
const { recordMark } = require("./entry.cjs");
const { basename, dirname, join, relative, resolve } = require("node:path");

const ROOT = join(__dirname, "..");
const SRC = join(ROOT, "dist", "src");
const MAIN = join(SRC, "cli", "main.js");
const RECORD = join(ROOT, "dist", ".tsbuildinfo");
/** The file in a bundle that lists the chunks its own build made (not those carried over from the build before). */
const OWN = "chunks.json";
const CHUNK = /^chunk-[A-Z0-9]+\.js$/;
/** node-postgres in one file, beside the chunks (loadPg in src/store/postgres.ts names it the same). */
const PG_BUNDLE = "pg.cjs";
/** `new URL("./x.js", import.meta.url)`, as tsc emits it from our sources. */
const THREAD_ENTRY = /new URL\("(\.\.?\/[^"]+\.js)", import\.meta\.url\)/g;

/**
 * The thread entry modules the CLI can reach, each once (absolute paths): the built files reachable from main.js
 * — esbuild's own view of the import graph, not every file under dist/src, where tsc leaves the output of sources
 * since deleted — read for thread entries, and again from those until none is new (a thread may start another).
 */
async function threadEntries(esbuild, options) {
  const found = new Set();
  for (let entries = [MAIN]; ; ) {
    const { metafile } = await esbuild.build({ ...options, entryPoints: entries, write: false, metafile: true, logLevel: "silent" });
    const before = found.size;
    for (const input of Object.keys(metafile.inputs)) {
      const path = resolve(ROOT, input);
      if (!path.startsWith(SRC)) continue;
      for (const m of readFileSync(path, "utf8").matchAll(THREAD_ENTRY)) found.add(resolve(dirname(path), m[1]));
    }
    if (found.size === before) return found;
    entries = [MAIN, ...found];
  }
}

/**
 * esbuild, or undefined when it cannot run here: not installed (an install without devDependencies), or without its
 * platform binary (an optional dependency: --omit=optional, a platform esbuild has none for). The bundle only saves
 * start-up time, so its absence must not fail `npm run build` — nor `prepare`, which a git dependency's install
 * runs: the launcher then runs dist/src.
 */
async function loadEsbuild() {
  try {
    const esbuild = require("esbuild");
    await esbuild.transform("", {}); // starts the binary: a missing one fails here, not at require
    return esbuild;
  } catch (e) {
    process.stderr.write(`bundle: no start-up bundle, esbuild cannot run here (${String((e && e.message) || e).split("\n")[0]}): jpki runs dist/src\n`);
    return undefined;
  }
}

async function bundle(outdir = join(ROOT, "dist", "bundle")) {
  const esbuild = await loadEsbuild();
  if (!esbuild) return { outdir, threads: [], marked: false, skipped: true };
  const options = {
    outdir: `${outdir}.tmp-${process.pid}`,
    // the metafile's paths (threadEntries) and the maps' are relative to this, whatever directory the build runs in
    absWorkingDir: ROOT,
    entryNames: "[name]",
    chunkNames: "chunk-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // dependencies keep their own files: native addons (better-sqlite3, pkcs11js) and createRequire lookups
    packages: "external",
    // stack traces (JPKI_DEBUG=1 under NODE_OPTIONS=--enable-source-maps) name src/*.ts lines, as from dist/src:
    // esbuild follows tsc's maps; no sources inside, as tsc's own maps
    sourcemap: "linked",
    sourcesContent: false,
    logLevel: "warning",
  };
  // the record before anything of dist/src is read, compared with the record after the last read
  const record = statSync(RECORD, { throwIfNoEntry: false });
  const threads = [...(await threadEntries(esbuild, options))];
  const names = new Map();
  for (const t of threads) {
    if (!existsSync(t)) throw new Error(`a thread entry named in dist/src does not exist: ${relative(ROOT, t)}`);
    const other = names.get(basename(t));
    if (other) throw new Error(`two thread entries share the name ${basename(t)} (${relative(ROOT, other)}, ${relative(ROOT, t)}): the bundle keeps one directory`);
    names.set(basename(t), t);
  }
  if (names.has("main.js")) throw new Error("a thread entry is named main.js, the CLI's own entry in the bundle");
  const staging = options.outdir;
  rmSync(staging, { recursive: true, force: true });
  await esbuild.build({ ...options, entryPoints: [MAIN, ...threads] });
  await esbuild.build({
    stdin: { contents: 'module.exports = require("pg");\n', resolveDir: ROOT, sourcefile: "pg-bundle-entry.cjs", loader: "js" },
    outdir: staging,
    entryNames: PG_BUNDLE.replace(/\.cjs$/, ""),
    outExtension: { ".js": ".cjs" },
    absWorkingDir: ROOT,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    external: ["pg-native", "pg-cloudflare"],
    sourcemap: "linked",
    sourcesContent: false,
    logLevel: "warning",
  });
  // every thread the bundle starts has its entry beside it: a missing one would run its work in the calling thread,
  // silently slower (the starters check that the file exists)
  for (const f of readdirSync(staging).filter((f) => f.endsWith(".js"))) {
    for (const m of readFileSync(join(staging, f), "utf8").matchAll(THREAD_ENTRY)) {
      if (!existsSync(join(staging, m[1]))) throw new Error(`${f} starts a thread from ${m[1]}, which the bundle does not hold`);
    }
  }
  const after = statSync(RECORD, { throwIfNoEntry: false });
  const marked = Boolean(record && after && record.size === after.size && record.mtimeMs === after.mtimeMs);
  if (marked) writeFileSync(join(staging, recordMark(record)), "");
  else if (record || after) {
    // made from a dist/src being rewritten: never run, so not put in place either, where it would replace the bundle
    // of the build that rewrote it when this one ends last
    rmSync(staging, { recursive: true, force: true });
    process.stderr.write("bundle: dist/.tsbuildinfo changed while the bundle was made (a tsc build meanwhile): this bundle is dropped, the one in place kept; build again\n");
    return { outdir, threads: [...names.keys()].sort(), marked: false, dropped: true };
  }
  const own = readdirSync(staging).filter((f) => CHUNK.test(f)).sort();
  writeFileSync(join(staging, OWN), JSON.stringify({ chunks: own }) + "\n");
  // npm pack and npm publish build the package's bundle (prepare): this build's chunks only, none of an older one
  if (!["pack", "publish"].includes(process.env.npm_command ?? "")) carryOver(outdir, staging, own);
  swap(staging, outdir);
  return { outdir, threads: [...names.keys()].sort(), marked };
}

/** Links into `to` the chunks the bundle at `from` made itself (its chunks.json; every chunk of an older bundle without one) that `own` lacks. */
function carryOver(from, to, own) {
  let previous;
  try {
    previous = JSON.parse(readFileSync(join(from, OWN), "utf8")).chunks;
  } catch {
    previous = existsSync(from) ? readdirSync(from).filter((f) => CHUNK.test(f)) : [];
  }
  const made = new Set(own);
  for (const c of previous) {
    if (made.has(c) || !CHUNK.test(c)) continue;
    for (const f of [c, `${c}.map`]) {
      try {
        linkSync(join(from, f), join(to, f));
      } catch (e) {
        if (e.code === "ENOENT") continue; // gone meanwhile (another build's swap), or no map
        copyFileSync(join(from, f), join(to, f)); // a file system without hard links
      }
    }
  }
}

/**
 * Puts `staging` in place of `outdir`: the old one renamed aside, the new one renamed in, the old one removed. A build
 * running at the same time (two test runs in one checkout, each running this file) can put its own in place between
 * the two renames: the rename in then finds a directory there (ENOTEMPTY), and that one is moved aside in turn, ours
 * being the later. `between` is for the test only.
 */
function swap(staging, outdir, between = () => {}) {
  const aside = [];
  for (let i = 0; ; i++) {
    const old = `${outdir}.old-${process.pid}-${i}`;
    try {
      renameSync(outdir, old);
      aside.push(old);
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
    between(i);
    try {
      renameSync(staging, outdir);
      break;
    } catch (e) {
      if (!(e.code === "ENOTEMPTY" || e.code === "EEXIST") || i >= 20) throw e;
    }
  }
  for (const old of aside) rmSync(old, { recursive: true, force: true });
}

module.exports = { bundle, threadEntries, carryOver, swap };

if (require.main === module) {
  bundle(process.argv[2] ? resolve(process.argv[2]) : undefined).catch((e) => {
    process.stderr.write(`bundle: ${e && e.message}\n`);
    process.exitCode = 1;
  });
}
