/**
 * Start-up loads only what the command line needs (issue 8 point 9): `jpki --version` and the top-level help
 * load no ES module at all (bin/jpki.cjs answers them, the help from dist/cli-help.json: bin/help-cache.cjs);
 * building the command tree needs only commander and the CLI's own light modules; the library (pkijs,
 * @peculiar/*, better-sqlite3 …) is loaded by a command's action (src/cli/lib.ts). Proved without timing: the
 * built CLI (bin/jpki.cjs on dist/, built by the global setup as `npm run build` does) runs under a module
 * resolve hook that writes down every URL it resolves. How long start-up takes is measured by
 * `npm run bench -- startup`, never asserted here. The module graph is read on the built modules (dist/src,
 * JPKI_NO_BUNDLE=1); the launcher's start-up bundle (bin/bundle.cjs, dist/bundle) must load the same packages.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { cli, tempDir } from "./helpers.js";
import { usePostgres } from "../use-postgres.js";
import { VERSION } from "../../src/version.js";
import type { Io } from "../../src/cli/output.js";

const ROOT = resolve(import.meta.dirname, "../..");
/** The launcher's choice of entry (bin/entry.cjs). */
const entryRequire = createRequire(import.meta.url)("../../bin/entry.cjs") as { recordMark(record: { size: number; mtimeMs: number }): string };
/** The bundle step (bin/bundle.cjs): its directory swap. */
const bundleStep = createRequire(import.meta.url)("../../bin/bundle.cjs") as { swap(staging: string, outdir: string, between?: (i: number) => void): void };
const HEAVY = ["pkijs", "asn1js", "@peculiar/x509", "@peculiar/webcrypto", "@peculiar/asn1-schema", "@peculiar/asn1-x509", "better-sqlite3", "reflect-metadata"];
/**
 * What a command that works on the store loads: the signing and WebCrypto stack. The SQLite driver, better-sqlite3,
 * only once a SQLite database opens (a PostgreSQL workspace never loads it): the crl generate tests below.
 */
const STACK = ["pkijs", "@peculiar/x509", "@peculiar/webcrypto"];

let dir: string;
let register: string;

beforeAll(() => {
  dir = tempDir("jpki-startup-");
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + "\\n");
  return r;
}
`,
  );
  register = join(dir, "register.mjs");
  // The resolve hook sees ES imports; a require (createRequire's, as the SQLite store loads its driver when a
  // database opens) goes through CommonJS's resolver, which writes its files to the same list.
  writeFileSync(
    register,
    `import { register } from "node:module";
import Module from "node:module";
import { appendFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { out: process.env.JPKI_TEST_LOADED } });
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const r = resolveFilename.apply(this, args);
  if (isAbsolute(r)) appendFileSync(process.env.JPKI_TEST_LOADED, pathToFileURL(r).href + "\\n");
  return r;
};
`,
  );
});

/** The package a resolved URL belongs to (the innermost node_modules/ entry), or undefined for our own files and node: built-ins. */
function packageOf(url: string): string | undefined {
  const parts = url.split("/node_modules/");
  if (parts.length < 2) return undefined;
  const [scope, name] = parts.at(-1)!.split("/");
  return scope!.startsWith("@") ? `${scope}/${name}` : scope;
}

interface Loaded {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The packages (node_modules names) it loaded. */
  packages: Set<string>;
  /** Whether it loaded any file of dist/ (the program), or only the CommonJS launcher. */
  program: boolean;
  /** The command modules (dist/src/cli/commands/*.js) it loaded. */
  commands: string[];
  /** Which build of the program it ran: the start-up bundle (dist/bundle/) or the modules (dist/src/). */
  ran: { bundle: boolean; modules: boolean };
  /** Whether it loaded node-postgres from the bundle's one file (bin/bundle.cjs PG_BUNDLE) rather than node_modules. */
  bundledPg: boolean;
}

/**
 * Runs the built CLI (of the package at root); returns its exit code, output and what it loaded. The built modules
 * unless `bundle` (then whatever the launcher picks).
 */
function loadedBy(args: string[], name: string, root = ROOT, { bundle = false, env = {} as NodeJS.ProcessEnv } = {}): Loaded {
  const out = join(dir, `${name}.loaded`);
  writeFileSync(out, "");
  const r = spawnSync(process.execPath, ["--import", pathToFileURL(register).href, join(root, "bin", "jpki.cjs"), ...args], {
    cwd: dir,
    env: { ...process.env, JPKI_TEST_LOADED: out, JPKI_PASSPHRASE: "x", JPKI_NO_BUNDLE: bundle ? undefined : "1", ...env },
    encoding: "utf8",
  });
  const urls = readFileSync(out, "utf8").split("\n");
  const packages = new Set(urls.map(packageOf).filter((p): p is string => p !== undefined));
  const commands = [...new Set(urls.filter((u) => u.includes("/dist/src/cli/commands/")).map((u) => u.split("/").at(-1)!))].sort();
  const ran = { bundle: urls.some((u) => u.includes("/dist/bundle/")), modules: urls.some((u) => u.includes("/dist/src/")) };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, packages, program: urls.some((u) => u.includes("/dist/")), commands, ran, bundledPg: urls.some((u) => u.endsWith("/dist/bundle/pg.cjs")) };
}

/** The same arguments through the program itself (--run-module skips the launcher's answers). */
const byProgram = (args: string[], name: string, root = ROOT) => loadedBy(["--run-module", join(root, "dist", "src", "cli", "main.js"), ...args], name, root);

describe("start-up loads the library only when a command needs it", () => {
  it("the recorder sees packages: a command on a workspace loads the whole stack", () => {
    const r = loadedBy(["--workspace", join(dir, "no-workspace"), "ca", "list"], "ca-list");
    expect(r.stderr).toContain("ERR_"); // no workspace there: the library was loaded to say so
    for (const p of STACK) expect(r.packages, p).toContain(p);
  });

  it("--run-module runs jpki's own modules only, unless JPKI_RUN_ANY_MODULE=1 (a jpki run as another account runs no file of the caller's)", () => {
    const outside = join(dir, "outside.mjs");
    writeFileSync(outside, 'process.stdout.write("ran outside\\n");\n');
    const refused = spawnSync(process.execPath, [join(ROOT, "bin", "jpki.cjs"), "--run-module", outside], { cwd: dir, encoding: "utf8", env: { ...process.env, JPKI_RUN_ANY_MODULE: undefined } });
    expect(refused.status).toBe(2);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain("--run-module runs only jpki's own modules");
    // a link inside the package to a file outside it is the file outside
    const link = join(ROOT, "dist", `run-module-link-${process.pid}.mjs`);
    symlinkSync(outside, link);
    try {
      expect(spawnSync(process.execPath, [join(ROOT, "bin", "jpki.cjs"), "--run-module", link], { cwd: dir, encoding: "utf8", env: { ...process.env, JPKI_RUN_ANY_MODULE: undefined } }).status).toBe(2);
    } finally {
      rmSync(link);
    }
    const allowed = spawnSync(process.execPath, [join(ROOT, "bin", "jpki.cjs"), "--run-module", outside], { cwd: dir, encoding: "utf8", env: { ...process.env, JPKI_RUN_ANY_MODULE: "1" } });
    expect(allowed.stdout).toBe("ran outside\n");
    // a module that throws says what it threw (exit 70), not that the build is missing; a missing one says that
    const throwing = join(dir, "throws.mjs");
    writeFileSync(throwing, 'throw new Error("the bench broke");\n');
    const threw = spawnSync(process.execPath, [join(ROOT, "bin", "jpki.cjs"), "--run-module", throwing], { cwd: dir, encoding: "utf8", env: { ...process.env, JPKI_RUN_ANY_MODULE: "1" } });
    expect(threw.status).toBe(70);
    expect(threw.stderr).toContain("the bench broke");
    expect(threw.stderr).not.toContain("npm run build");
    const missing = spawnSync(process.execPath, [join(ROOT, "bin", "jpki.cjs"), "--run-module", join(dir, "no-such.mjs")], { cwd: dir, encoding: "utf8", env: { ...process.env, JPKI_RUN_ANY_MODULE: "1" } });
    expect(missing.status).toBe(70);
    expect(missing.stderr).toContain("run 'npm run build' first");
    // the package's own program runs as before
    expect(byProgram(["--version"], "run-module-own").stdout).toBe(`${VERSION}\n`);
  });

  it("jpki --version (and -V) prints package.json's version, the library's VERSION, without loading the program", () => {
    expect(VERSION).toBe((JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version);
    for (const flag of ["--version", "-V"]) {
      const r = loadedBy([flag], "version");
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
      expect(r.program, flag).toBe(false);
      expect([...r.packages]).toEqual([]);
      // the program prints the same
      expect(byProgram([flag], "version-program").stdout).toBe(r.stdout);
    }
  });

  it("jpki --help, -h, help and bare jpki print the cached help without loading the program, byte for byte the program's", () => {
    const byLauncher = new Map<string, Loaded>();
    for (const args of [["--help"], ["-h"], ["help"], []]) {
      const r = loadedBy(args, "help");
      byLauncher.set(args.join(" "), r);
      const p = byProgram(args, "help-program");
      expect(r.program, args.join(" ")).toBe(false);
      expect(p.program).toBe(true);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }, args.join(" ")).toEqual({ status: p.status, stdout: p.stdout, stderr: p.stderr });
    }
    // what `jpki --help` printed above (it was run a second time for this)
    const r = byLauncher.get("--help")!;
    expect(r.stdout).toContain("Exit codes:");
    expect(r.stdout).toContain("ERR_USAGE");
    expect(r.stdout).toContain("inspect [options] <file>");
  });

  it("on a terminal the cached help is laid out by commander at the terminal's width, as the program lays it out", async () => {
    const { render } = createRequire(import.meta.url)(join(ROOT, "bin", "help-cache.cjs")) as { render(cache: unknown, o: { error: boolean; width: number }): string };
    const cache = JSON.parse(readFileSync(join(ROOT, "dist", "cli-help.json"), "utf8")) as unknown;
    const { makeProgram } = (await import(pathToFileURL(join(ROOT, "dist", "src", "cli", "program.js")).href)) as typeof import("../../src/cli/program.js");
    for (const width of [40, 72, 100, 200]) {
      for (const error of [false, true]) {
        let text = "";
        const sink = { write: (s: string) => (text += s) };
        const program = await makeProgram({ stdout: sink, stderr: sink, env: {}, cwd: dir } satisfies Io);
        program.configureOutput({ getOutHelpWidth: () => width, getErrHelpWidth: () => width });
        program.outputHelp({ error });
        expect(render(cache, { error, width }), `width ${width}`).toBe(text);
      }
    }
  });

  it("a stale cache is not used: an edited program file or another version makes the program render the help", () => {
    // A copy of the built package (its .js files), so editing it disturbs no other test.
    const root = join(dir, "pkg");
    cpSync(join(ROOT, "bin"), join(root, "bin"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(root, "package.json"));
    cpSync(join(ROOT, "dist", "src"), join(root, "dist", "src"), { recursive: true, filter: (f) => statSync(f).isDirectory() || f.endsWith(".js") });
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    expect(spawnSync(process.execPath, [join(root, "bin", "help-cache.cjs")]).status).toBe(0);
    expect(loadedBy(["--help"], "copy-help", root).program).toBe(false);

    const inspect = join(root, "dist", "src", "cli", "commands", "inspect.js");
    writeFileSync(inspect, readFileSync(inspect, "utf8").replace("decode a certificate or CRL", "DECODE a certificate or CRL"));
    const edited = loadedBy(["--help"], "copy-edited", root);
    expect(edited.program).toBe(true);
    expect(edited.stdout).toContain("DECODE a certificate or CRL");

    expect(spawnSync(process.execPath, [join(root, "bin", "help-cache.cjs")]).status).toBe(0);
    expect(loadedBy(["--help"], "copy-rebuilt", root)).toMatchObject({ program: false, stdout: expect.stringContaining("DECODE") as unknown });
    const pkg = join(root, "package.json");
    writeFileSync(pkg, readFileSync(pkg, "utf8").replace(`"version": "${VERSION}"`, `"version": "${VERSION}-next"`));
    expect(loadedBy(["--help"], "copy-version", root).program).toBe(true);
  });

  it("a subcommand's help loads nothing heavy either", () => {
    const r = loadedBy(["revoke", "--help"], "revoke-help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("keyCompromise");
    expect([...r.packages]).toEqual(["commander"]);
  });

  it("jpki inspect CERT decodes without the signing, WebCrypto and storage stack, and loads no other command", () => {
    const r = loadedBy(["inspect", join(ROOT, "fixtures", "jlis", "sign-ca-2023.pem")], "inspect");
    expect(r.status).toBe(0);
    for (const p of [...STACK, "better-sqlite3"]) expect(r.packages, p).not.toContain(p);
    expect(r.commands).toEqual(["inspect.js"]);
    // nor the ASN.1 object model (≈ 100 ms of the 300 ms budget): a certificate is read by our own DER reader
    // (profile/cert-reader.ts), as are ours, J-LIS's and the delegated OCSP certificates, text and JSON alike
    const certs = join(ROOT, "test", "vectors", "inspect", "certs");
    for (const args of [["inspect", join(ROOT, "fixtures", "jlis", "auth-ca-2015.pem")], ["--json", "inspect", join(certs, "signature-13.pem")], ["inspect", join(certs, "ocsp-responder-13-sig.der")]]) {
      const light = loadedBy(args, "inspect-asn1");
      expect(light.status, light.stderr).toBe(0);
      expect([...light.packages].filter((p) => p.startsWith("@peculiar/") || p === "asn1js" || p === "pvtsutils"), args.join(" ")).toEqual([]);
    }
    expect([...r.packages].filter((p) => p.startsWith("@peculiar/"))).toEqual([]);
    // a root option before the command still picks it out; help for it too
    expect(loadedBy(["--workspace", dir, "--json", "inspect", "--help"], "inspect-help").commands).toEqual(["inspect.js"]);
    // help, an unknown command and --help before the command get the whole program, for their help and errors
    for (const args of [["help", "inspect"], ["inspct", "x"], ["--help", "inspect"]]) expect(loadedBy(args, "inspect-all").commands.length, args.join(" ")).toBeGreaterThan(20);
  });

  it("each name in the command table is the name of the command its module builds, in the program's order", async () => {
    const { COMMAND_NAMES, makeProgram } = await import("../../src/cli/program.js");
    const io: Io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: dir };
    expect((await makeProgram(io)).commands.map((c) => c.name())).toEqual(COMMAND_NAMES);
    for (const name of COMMAND_NAMES) expect((await makeProgram(io, name)).commands.map((c) => c.name())).toEqual([name]);
  });

  it("jpki crl generate signs a CRL with the store alone: no certificate-profile or WebCrypto stack", async () => {
    const ws = join(dir, "crl-ws");
    // made in-process (what ca init loads is not this test's; a spawn cost a Node start-up), with the spawns' passphrase
    const init = await cli(["--workspace", ws, "ca", "init", "--prefecture", "13"], { cwd: dir, env: { JPKI_PASSPHRASE: "x" } });
    expect(init.code, init.stderr).toBe(0);
    const r = loadedBy(["--workspace", ws, "crl", "generate", "--ca", "13-sig"], "crl-generate");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("CRL 13-sig #1");
    // better-sqlite3 and the two small packages that find its native module, commander: nothing else
    expect(r.packages).toContain("better-sqlite3");
    for (const p of r.packages) expect(["better-sqlite3", "bindings", "file-uri-to-path", "commander"], p).toContain(p);
    for (const p of HEAVY.filter((h) => h !== "better-sqlite3")) expect(r.packages, p).not.toContain(p);

    // the launcher's start-up bundle: the same CRL, the same packages, nothing of dist/src
    const b = loadedBy(["--workspace", ws, "crl", "generate", "--ca", "13-sig"], "crl-generate-bundle", ROOT, { bundle: true });
    expect(b.status, b.stderr).toBe(0);
    expect(b.ran).toEqual({ bundle: true, modules: false });
    expect(b.stdout).toContain("CRL 13-sig #2");
    expect([...b.packages].sort()).toEqual([...r.packages].sort());
  });
});

describe("a PostgreSQL workspace", () => {
  const server = usePostgres();
  it("jpki crl generate loads no SQLite driver: pg and commander only (the bundle: its own pg file and commander)", async () => {
    const env = { JPKI_STORE: await server.createDatabase() };
    const ws = join(dir, "crl-pg-ws");
    const init = await cli(["--workspace", ws, "ca", "init", "--prefecture", "13", "--store", "postgres"], { cwd: dir, env: { JPKI_PASSPHRASE: "x", ...env } });
    expect(init.code, init.stderr).toBe(0);
    for (const bundle of [false, true]) {
      const r = loadedBy(["--workspace", ws, "crl", "generate", "--ca", "13-sig"], `crl-generate-pg-${bundle}`, ROOT, { bundle, env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`CRL 13-sig #${bundle ? 2 : 1}`);
      expect(r.bundledPg).toBe(bundle);
      if (bundle) {
        // node-postgres and its dependencies in the bundle's one file (bin/bundle.cjs PG_BUNDLE): of node_modules, commander alone
        expect([...r.packages]).toEqual(["commander"]);
        continue;
      }
      expect(r.packages).toContain("pg");
      // node-postgres and its own small dependencies (pg-*, postgres-* type parsers, split2 for pgpass), commander
      for (const p of r.packages) expect(p, p).toMatch(/^(pg|pg-.+|pgpass|postgres-.+|split2|xtend|commander)$/);
      for (const p of HEAVY) expect(r.packages, p).not.toContain(p);
    }
  });
});

describe("the start-up bundle (bin/bundle.cjs)", () => {
  it("loads what the modules load: inspect and a subcommand's help stay light", () => {
    const inspect = loadedBy(["inspect", join(ROOT, "fixtures", "jlis", "sign-ca-2023.pem")], "bundle-inspect", ROOT, { bundle: true });
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.ran).toEqual({ bundle: true, modules: false });
    expect(inspect.stdout).toBe(loadedBy(["inspect", join(ROOT, "fixtures", "jlis", "sign-ca-2023.pem")], "modules-inspect").stdout);
    for (const p of [...STACK, "better-sqlite3"]) expect(inspect.packages, p).not.toContain(p);
    expect([...inspect.packages].filter((p) => p.startsWith("@peculiar/"))).toEqual([]);
    const help = loadedBy(["revoke", "--help"], "bundle-revoke-help", ROOT, { bundle: true });
    expect(help.ran.bundle).toBe(true);
    expect([...help.packages]).toEqual(["commander"]);
  });

  it("holds every worker thread's entry module: each `new URL(…, import.meta.url)` in it names a file beside it", () => {
    const bundle = join(ROOT, "dist", "bundle");
    const named = new Set<string>();
    for (const f of readdirSync(bundle)) {
      for (const m of readFileSync(join(bundle, f), "utf8").matchAll(/new URL\("(\.\.?\/[^"]+)", import\.meta\.url\)/g)) named.add(m[1]!);
    }
    // the notice reader, the serve schedule, the verifier engine and the CRL-days counter, at least
    expect(named.size).toBeGreaterThanOrEqual(4);
    for (const n of named) expect(existsSync(join(bundle, n)), n).toBe(true);
  });

  it("is run only while made after tsc's build record as it is now: a tsc build after it runs the modules, whatever the times say; an installed copy (no record) the bundle", () => {
    // the checkout's own bundle was made after its record (the global setup's build)
    const own = statSync(join(ROOT, "dist", ".tsbuildinfo"));
    expect(existsSync(join(ROOT, "dist", "bundle", entryRequire.recordMark(own))), "the build marks its bundle with the record").toBe(true);

    const root = join(dir, "pkg-bundle");
    cpSync(join(ROOT, "bin"), join(root, "bin"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(root, "package.json"));
    for (const d of ["src", "bundle"]) cpSync(join(ROOT, "dist", d), join(root, "dist", d), { recursive: true, filter: (f) => statSync(f).isDirectory() || f.endsWith(".js") });
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    const record = join(root, "dist", ".tsbuildinfo");
    const bundled = statSync(join(root, "dist", "bundle", "main.js")).mtime;
    const at = (ms: number) => utimesSync(record, new Date(bundled.getTime() + ms), new Date(bundled.getTime() + ms));
    // the bundle step made after this record (what bin/bundle.cjs writes when it reads dist/src)
    writeFileSync(record, "{}");
    at(-1000);
    writeFileSync(join(root, "dist", "bundle", entryRequire.recordMark(statSync(record))), "");
    expect(loadedBy(["revoke", "--help"], "pkg-fresh", root, { bundle: true }).ran).toEqual({ bundle: true, modules: false });
    // a tsc build after it rewrites the record: the modules
    writeFileSync(record, '{"version":"5.9"}');
    at(+1000);
    const stale = loadedBy(["revoke", "--help"], "pkg-stale", root, { bundle: true });
    expect(stale.ran).toEqual({ bundle: false, modules: true });
    expect(stale.stdout).toContain("keyCompromise");
    // the same checkout copied without its times (cp -r, rsync -r, a container layer), the record written first:
    // now older than the bundle, still not the record the bundle was made after
    at(-2000);
    expect(loadedBy(["revoke", "--help"], "pkg-copied", root, { bundle: true }).ran).toEqual({ bundle: false, modules: true });
    // a coarse clock (one-second times): the tsc build in the bundle's second
    at(0);
    expect(loadedBy(["revoke", "--help"], "pkg-same-second", root, { bundle: true }).ran).toEqual({ bundle: false, modules: true });
    rmSync(record);
    expect(loadedBy(["revoke", "--help"], "pkg-installed", root, { bundle: true }).ran).toEqual({ bundle: true, modules: false });
    // JPKI_NO_BUNDLE=1: the modules whatever the bundle's state
    expect(loadedBy(["revoke", "--help"], "pkg-no-bundle", root).ran).toEqual({ bundle: false, modules: true });
  });

  it("a jpki that started on a bundle goes on with it while a build replaces it: the old build's chunks stay beside the new build's", () => {
    // a package of its own, its bundle built there, and a build to run in the middle of a jpki's start
    const root = join(dir, "pkg-rebuilt");
    cpSync(join(ROOT, "bin"), join(root, "bin"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(root, "package.json"));
    cpSync(join(ROOT, "dist", "src"), join(root, "dist", "src"), { recursive: true, filter: (f) => statSync(f).isDirectory() || f.endsWith(".js") });
    cpSync(join(ROOT, "dist", ".tsbuildinfo"), join(root, "dist", ".tsbuildinfo"));
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    execFileSync(process.execPath, [join(root, "bin", "bundle.cjs")]);
    const bundle = join(root, "dist", "bundle");
    // built from another directory than the package's (this test's): every thread's entry is there all the same
    for (const t of ["notice-reader-thread.js", "schedule-thread-main.js", "engine-thread-main.js", "crl-days-thread.js"]) expect(existsSync(join(bundle, t)), t).toBe(true);
    const first = JSON.parse(readFileSync(join(bundle, "chunks.json"), "utf8")).chunks as string[];
    const command = join(root, "dist", "src", "cli", "commands", "crl.js");
    const rebuild = join(dir, "rebuild.cjs");
    writeFileSync(
      rebuild,
      `const { readFileSync, writeFileSync } = require("node:fs");
const f = ${JSON.stringify(command)};
writeFileSync(f, readFileSync(f, "utf8").replace("say which CRLs", "name the CRLs"));
require("node:child_process").execFileSync(process.execPath, [${JSON.stringify(join(root, "bin", "bundle.cjs"))}]);
`,
    );
    // when the jpki below is about to load its command's chunk (main.js and the program loaded), the build runs
    const hooks = join(dir, "rebuild-hooks.mjs");
    writeFileSync(
      hooks,
      `import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
let done = false;
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!done && r.url.includes("/dist/bundle/chunk-") && readFileSync(fileURLToPath(r.url), "utf8").includes("say which CRLs")) {
    done = true;
    execFileSync(process.execPath, [${JSON.stringify(rebuild)}]);
  }
  return r;
}
`,
    );
    const hooked = join(dir, "rebuild-register.mjs");
    writeFileSync(hooked, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const r = spawnSync(process.execPath, ["--import", pathToFileURL(hooked).href, join(root, "bin", "jpki.cjs"), "crl", "generate"], {
      cwd: dir,
      env: { ...process.env, JPKI_NO_BUNDLE: undefined },
      encoding: "utf8",
    });
    // the old build to the end: its own usage error, not "cannot start" (exit 70, a chunk not found)
    expect(r.stderr).toContain("say which CRLs");
    expect(r.status, r.stderr).toBe(2);
    // the build did replace it: the next jpki runs the new one
    const next = spawnSync(process.execPath, [join(root, "bin", "jpki.cjs"), "crl", "generate"], { cwd: dir, env: { ...process.env, JPKI_NO_BUNDLE: undefined }, encoding: "utf8" });
    expect(next.stderr).toContain("name the CRLs");
    const second = JSON.parse(readFileSync(join(bundle, "chunks.json"), "utf8")).chunks as string[];
    expect(second).not.toEqual(first);
    const files = readdirSync(bundle).filter((f) => f.startsWith("chunk-") && f.endsWith(".js"));
    for (const c of first) expect(files, c).toContain(c);
    // one build back only: what the directory holds is this build's chunks and the previous build's
    for (const f of files) expect([...first, ...second], f).toContain(f);
    // the bundle npm pack puts in the package (its prepare runs the build): this build's chunks only
    // (after an edit since the last build)
    writeFileSync(command, readFileSync(command, "utf8").replace("name the CRLs", "name the CRLs to make"));
    execFileSync(process.execPath, [join(root, "bin", "bundle.cjs")], { env: { ...process.env, npm_command: "pack" } });
    const packed = JSON.parse(readFileSync(join(bundle, "chunks.json"), "utf8")).chunks as string[];
    expect(packed).not.toEqual(second);
    expect(readdirSync(bundle).filter((f) => f.startsWith("chunk-") && f.endsWith(".js")).sort()).toEqual(packed);
  });

  it("maps its stack traces to our TypeScript sources under --enable-source-maps, as dist/src does", () => {
    const bundle = join(ROOT, "dist", "bundle");
    const chunk = readdirSync(bundle).find((f) => f.endsWith(".js") && readFileSync(join(bundle, f), "utf8").includes("\nfunction prefecture("));
    expect(chunk).toBeDefined();
    const code = `const m = await import(${JSON.stringify(pathToFileURL(join(bundle, chunk!)).href)});
const prefecture = Object.values(m).find((v) => typeof v === "function" && v.name === "prefecture");
try { prefecture("99"); } catch (e) { process.stdout.write(e.stack); }`;
    const r = spawnSync(process.execPath, ["--enable-source-maps", "--input-type=module", "-e", code], { encoding: "utf8" });
    expect(r.stdout).toContain("unknown prefecture");
    expect(r.stdout).toContain(join(ROOT, "src", "ca", "prefectures.ts"));
  });

  it("is skipped, not an error, where esbuild cannot run (no devDependencies, no platform binary): the build and a git dependency's prepare succeed, jpki runs dist/src", () => {
    for (const [name, esbuild] of [
      ["no-esbuild", undefined],
      // what esbuild's own main.js throws when its optional platform package is missing, at first use
      ["no-binary", `module.exports = { transform: async () => { throw new Error('The package "@esbuild/linux-x64" could not be found, and is needed by esbuild.'); }, build: async () => { throw new Error("not reached"); } };`],
    ] as const) {
      const root = join(dir, `pkg-${name}`);
      cpSync(join(ROOT, "bin"), join(root, "bin"), { recursive: true });
      cpSync(join(ROOT, "package.json"), join(root, "package.json"));
      cpSync(join(ROOT, "dist", "src"), join(root, "dist", "src"), { recursive: true, filter: (f) => statSync(f).isDirectory() || f.endsWith(".js") });
      mkdirSync(join(root, "node_modules"));
      if (esbuild) {
        mkdirSync(join(root, "node_modules", "esbuild"));
        writeFileSync(join(root, "node_modules", "esbuild", "package.json"), '{"name":"esbuild","main":"main.js"}');
        writeFileSync(join(root, "node_modules", "esbuild", "main.js"), esbuild);
      }
      const r = spawnSync(process.execPath, [join(root, "bin", "bundle.cjs")], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr, name).toContain("no start-up bundle, esbuild cannot run here");
      expect(existsSync(join(root, "dist", "bundle")), name).toBe(false);
    }
  });

  it("made while a tsc rewrote dist/src (the build record changed meanwhile), is dropped: the bundle in place stays", () => {
    const root = join(dir, "pkg-record-changed");
    cpSync(join(ROOT, "bin"), join(root, "bin"), { recursive: true });
    const record = join(root, "dist", ".tsbuildinfo");
    mkdirSync(join(root, "dist", "bundle"), { recursive: true });
    writeFileSync(record, "{}");
    writeFileSync(join(root, "dist", "bundle", "main.js"), "// the bundle in place\n");
    writeFileSync(join(root, "dist", "bundle", entryRequire.recordMark(statSync(record))), "");
    // an esbuild whose build overlaps another build's tsc: the record is rewritten while it runs
    mkdirSync(join(root, "node_modules", "esbuild"), { recursive: true });
    writeFileSync(join(root, "node_modules", "esbuild", "package.json"), '{"name":"esbuild","main":"main.js"}');
    writeFileSync(
      join(root, "node_modules", "esbuild", "main.js"),
      `const { mkdirSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");
module.exports = {
  transform: async () => ({ code: "" }),
  build: async (o) => {
    if (o.write === false) return { metafile: { inputs: {} }, outputFiles: [] };
    mkdirSync(o.outdir, { recursive: true });
    writeFileSync(join(o.outdir, "main.js"), "// made from a half-rewritten dist/src\\n");
    writeFileSync(${JSON.stringify(record)}, '{"rewritten":true}');
    return {};
  },
};
`,
    );
    const r = spawnSync(process.execPath, [join(root, "bin", "bundle.cjs")], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("dist/.tsbuildinfo changed while the bundle was made");
    expect(readFileSync(join(root, "dist", "bundle", "main.js"), "utf8")).toBe("// the bundle in place\n");
    expect(readdirSync(join(root, "dist")).sort()).toEqual([".tsbuildinfo", "bundle"]);
  });

  it("two builds at once: one that finds the other's bundle put in place between its two renames moves that aside too", () => {
    const at = join(dir, "swap");
    const outdir = join(at, "bundle");
    const staging = join(at, "bundle.tmp");
    mkdirSync(outdir, { recursive: true });
    writeFileSync(join(outdir, "main.js"), "old");
    mkdirSync(staging);
    writeFileSync(join(staging, "main.js"), "ours");
    bundleStep.swap(staging, outdir, (i) => {
      if (i > 0) return;
      // the other build's rename in, after ours moved the old one aside
      mkdirSync(outdir);
      writeFileSync(join(outdir, "main.js"), "theirs");
    });
    expect(readFileSync(join(outdir, "main.js"), "utf8")).toBe("ours");
    expect(readdirSync(at)).toEqual(["bundle"]);
  });
});
