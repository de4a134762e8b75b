/**
 * The package as a consumer sees it: the public API, and its import without side effects (STYLE.md §14).
 * The import is checked in a fresh node process on the built package (dist/, built by the vitest global
 * setup), since this test process has long since loaded everything.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import * as jpki from "../../src/index.js";
import { tempDir } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");

describe("public API", () => {
  it("exports the services and the error type", () => {
    for (const name of ["JpkiError", "IssuanceService", "NoticeIngestor", "CrlPublisher", "CrlUpdater", "Workspace", "SqliteStore", "buildCrl", "checkCertificate", "describeCertificate", "encodeFourItemsSan", "parseNotice", "decideRevocations", "runCli", "PREFECTURES"]) {
      expect(jpki, name).toHaveProperty(name);
    }
    expect(jpki.PREFECTURES).toHaveLength(47);
    expect(jpki.prefecture("13").kanji).toBe("東京都");
    expect(new jpki.JpkiError("ERR_USAGE", "x").exitCode).toBe(2);
  });
});

/** Every path under `dir`, recursively, relative to it. */
function tree(dir: string, at = ""): string[] {
  return readdirSync(join(dir, at), { withFileTypes: true }).flatMap((e) => {
    const rel = join(at, e.name);
    return e.isDirectory() ? [rel + "/", ...tree(dir, rel)] : [rel];
  }).sort();
}

/**
 * What an import could leave behind that a process can see: globals (and Reflect's members, which the
 * reflect-metadata polyfill adds), process listeners, environment variables, and live handles/timers.
 */
const SNAPSHOT = `
const snapshot = () => ({
  globals: Reflect.ownKeys(globalThis).map(String).sort(),
  reflect: Reflect.ownKeys(Reflect).map(String).sort(),
  symbolKeys: Object.getOwnPropertySymbols(Symbol.prototype).length,
  processEvents: process.eventNames().map(String).sort(),
  env: Object.keys(process.env).sort(),
  resources: process.getActiveResourcesInfo().sort(),
  exitCode: process.exitCode ?? null,
});`;

/** Runs `code` as an ES module in a fresh node with its own cwd, HOME and TMPDIR; resolves when it exits by itself. */
function runFresh(code: string, dirs: { cwd: string; home: string; tmp: string }, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      cwd: dirs.cwd,
      env: { PATH: process.env.PATH ?? "", HOME: dirs.home, TMPDIR: dirs.tmp, TMP: dirs.tmp, TEMP: dirs.tmp, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b));
    child.stderr.on("data", (b: Buffer) => (stderr += b));
    child.on("error", fail);
    // No kill, no timer: if the import left something holding the event loop open, this never resolves
    // and the test fails on vitest's own timeout.
    child.on("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** What `url`'s import changed, as seen from inside a fresh process (between two snapshots). */
async function probe(url: string, dirs: { cwd: string; home: string; tmp: string }) {
  const report = join(tempDir("jpki-import-report-"), "report.json");
  const code = `${SNAPSHOT}
const before = snapshot();
const api = await import(${JSON.stringify(url)});
await new Promise((r) => setImmediate(r)); // anything deferred to the next turn has run by now
const after = snapshot();
const { writeFileSync } = await import("node:fs");
writeFileSync(process.env.JPKI_IMPORT_REPORT, JSON.stringify({ before, after, pid: process.pid, exports: Object.keys(api).length }));
process.exit(0); // the bare run checks that the process ends by itself; this one only reports`;
  // JPKI_IMPORT_REPORT is in the environment from the start: it is not a change the import made.
  const run = await runFresh(code, dirs, { JPKI_IMPORT_REPORT: report });
  expect(run, "the probe itself ran").toMatchObject({ code: 0, signal: null });
  const r = JSON.parse(readFileSync(report, "utf8")) as { before: Record<string, unknown>; after: Record<string, unknown>; pid: number; exports: number };
  const added = (k: string) => (r.after[k] as string[]).filter((x) => !(r.before[k] as string[]).includes(x));
  const removed = (k: string) => (r.before[k] as string[]).filter((x) => !(r.after[k] as string[]).includes(x));
  return {
    run,
    pid: r.pid,
    exports: r.exports,
    changes: {
      globals: added("globals"),
      reflect: added("reflect"),
      resources: added("resources"),
      processEvents: added("processEvents"),
      env: [...added("env"), ...removed("env")],
      removed: [...removed("globals"), ...removed("reflect"), ...removed("processEvents")],
      exitCode: r.after["exitCode"] === r.before["exitCode"] ? [] : [String(r.after["exitCode"])],
    },
  };
}

/**
 * What our dependencies do when imported, which we cannot switch off; each must stay exactly this and
 * nothing of ours may add to it. Known, and the reason STYLE.md §14 names @peculiar/x509 as a
 * counter-example:
 * - reflect-metadata installs its API on `Reflect` (src/pki/webcrypto.ts imports it: @peculiar/x509 needs it);
 * - tslib's CommonJS build (required by @peculiar/webcrypto, @peculiar/asn1-schema) also sets its `__…`
 *   helpers as globals;
 * - pkijs keeps its default crypto engine at `globalThis[process.pid]`;
 * - @peculiar/webcrypto copies every property of `node:process`, which opens stdout and stderr (pipe handles
 *   here, since the probe's output is piped; they do not keep the process alive).
 */
const REFLECT_METADATA_API = [
  "Symbol(@reflect-metadata:registry)", "decorate", "defineMetadata", "deleteMetadata", "getMetadata", "getMetadataKeys",
  "getOwnMetadata", "getOwnMetadataKeys", "hasMetadata", "hasOwnMetadata", "metadata",
];
const TSLIB_HELPER = /^__[A-Za-z]+$/;

describe("import of the built package", () => {
  const entry = join(ROOT, "dist", "src", "index.js");
  const url = pathToFileURL(entry).href;

  it("the package's export map points at the built entry", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg.exports["."].import).toBe("./dist/src/index.js");
    expect(Object.keys(pkg.exports["."])[0]).toBe("types");
    expect(existsSync(entry), "dist/ is built by the vitest global setup (npm run build)").toBe(true);
  });

  it("runs nothing at import: no output, no files, no listeners, env or handles of ours, and the process ends by itself", async () => {
    const dirs = { cwd: tempDir("jpki-import-cwd-"), home: tempDir("jpki-import-home-"), tmp: tempDir("jpki-import-tmp-") };

    // 1. a bare import, as a consumer's program would do it: silent, and the process exits on its own
    const bare = await runFresh(`await import(${JSON.stringify(url)});`, dirs);
    expect(bare).toEqual({ code: 0, signal: null, stdout: "", stderr: "" });

    // 2. the same import between two snapshots of what a process can observe
    const p = await probe(url, dirs);
    expect(p.run).toEqual({ code: 0, signal: null, stdout: "", stderr: "" });
    expect(p.exports).toBeGreaterThan(50); // the probe really loaded the API
    const { globals, reflect, resources, ...ours } = p.changes;
    expect(globals.filter((g) => !TSLIB_HELPER.test(g) && g !== String(p.pid)), "globals beyond the known third-party ones").toEqual([]);
    expect(reflect.sort()).toEqual([...REFLECT_METADATA_API].sort());
    expect(resources.filter((r) => r !== "PipeWrap"), "handles beyond stdout/stderr").toEqual([]);
    expect(ours).toEqual({ processEvents: [], env: [], removed: [], exitCode: [] });

    // 3. nothing was written where a library might think of writing
    for (const d of Object.values(dirs)) expect(tree(d), d).toEqual([]);
  });

  it("the probe sees side effects when there are some (a control module that has them)", async () => {
    const dirs = { cwd: tempDir("jpki-import-cwd-"), home: tempDir("jpki-import-home-"), tmp: tempDir("jpki-import-tmp-") };
    const control = join(tempDir("jpki-import-control-"), "control.mjs");
    writeFileSync(control, [
      'import { writeFileSync } from "node:fs";',
      'import { join } from "node:path";',
      "globalThis.jpkiConfig = {};",
      'process.on("SIGTERM", () => {});',
      "setInterval(() => {}, 2 ** 30);",
      'process.env.JPKI_SEEN = "1";',
      'writeFileSync(join(process.env.HOME, ".jpkirc"), "");',
      "export const x = 1;",
    ].join("\n"));
    const p = await probe(pathToFileURL(control).href, dirs);
    expect(p.changes.globals).toContain("jpkiConfig");
    expect(p.changes.processEvents).toEqual(["SIGTERM"]);
    expect(p.changes.resources).toContain("Timeout");
    expect(p.changes.env).toEqual(["JPKI_SEEN"]);
    expect(tree(dirs.home)).toEqual([".jpkirc"]);
  });
});

describe("the status page's files in the package", () => {
  it("packs public/ (the page `jpki serve` answers at /), and the built server finds it from dist/", async () => {
    const { execFileSync } = await import("node:child_process");
    const packed = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" })) as Array<{ files: Array<{ path: string }> }>;
    const paths = packed[0]!.files.map((f) => f.path);
    for (const f of ["public/index.html", "public/app.js", "public/app.css", "public/icon.svg"]) expect(paths).toContain(f);
    const page = pathToFileURL(join(ROOT, "dist", "src", "server", "page.js")).href;
    const found = execFileSync(process.execPath, ["--input-type=module", "-e", `import(${JSON.stringify(page)}).then((m) => process.stdout.write(m.publicDir()))`], { encoding: "utf8" });
    expect(found).toBe(join(ROOT, "public"));
  });
});
