/**
 * test/isolation.ts: a src/ test file that starts a process or thread, or changes what the next file in its worker
 * would see, stays isolated; a file that does none of it runs in the shared "unit" worker, and an integration file
 * that does none of it but through the integration helpers that start nothing, in the shared "sqlite-shared" one.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { needsIsolation, needsIsolationInSharedIntegration, needsIsolationUnderTest, sharedIntegrationFiles, unitFiles } from "./isolation.js";

const ROOT = join(import.meta.dirname, "..");

describe("needsIsolation", () => {
  const cases: Array<[string, string]> = [
    ["import { execFile } from 'child_process';", "starts processes"],
    ['import { spawn, spawnSync } from "node:child_process";', "starts processes"],
    ['import { execFileSync,\n  fork as start } from "node:child_process";', "starts processes"],
    ['import { spawnSync } from "node:child_process";\nimport type { ChildProcess } from "node:child_process";', "starts processes"],
    ['import { type ChildProcess, execFileSync } from "node:child_process";', "starts processes"],
    ['import * as cp from "node:child_process";', "starts processes"],
    ['import cp from "node:child_process";', "starts processes"],
    ['import { execFileSync } from "node:child_process";\nconst { spawn } = await import("node:child_process");', "starts processes"],
    ['const { exec } = require("child_process");', "starts processes"],
    ['import { Worker } from "node:worker_threads";', "starts threads"],
    ["const w = newThread(MODULE, {});", "starts threads"],
    ["const server = usePostgres();", "PostgreSQL"],
    ['process.env.JPKI_STORE = "x";', "environment"],
    ['process.env["TZ"] = "UTC";', "environment"],
    ["delete process.env.JPKI_PASSPHRASE;", "environment"],
    ['vi.stubEnv("TZ", "UTC");', "environment"],
    ["const old = process.umask(0);", "umask"],
    ["underUmaskZero();", "umask"],
    ["process.chdir(dir);", "working directory"],
    ['process.on("SIGTERM", stop);', "handlers"],
    ['process.off("SIGINT", l);', "handlers"],
    ["process.exitCode = 3;", "handlers"],
    ["globalThis.fetch = fake;", "global"],
    ["(globalThis as any)[KEY] = 1;", "global"],
    ['const k = Symbol.for("jpki.early-stop");', "global"],
    ["x509.cryptoProvider.set(globalThis.crypto);", "global"],
    ['vi.mock("./postgres.js");', "mocks"],
    ['vi.doMock("./store.js", () => ({}));', "mocks"],
    ["vi.useFakeTimers();", "fakes the clock"],
    ['const demo = inject("jpkiDemoSqlite");', "global setup"],
    ['import { chromium } from "playwright-core";', "starts a browser"],
    ["const { chromium } = await import('playwright');", "starts a browser"],
  ];
  for (const [source, why] of cases) {
    it(`keeps isolated: ${source}`, () => {
      expect(needsIsolation(source)).toContain(why);
    });
  }

  it("lets share a file that only reads the environment and globals, or compares with them", () => {
    const source = [
      'import { describe, expect, it } from "vitest";',
      'const seed = Number(process.env.FC_SEED ?? 1);',
      'const regen = process.env["JPKI_REGEN_FIXTURES"] === "1";',
      "const f = (url: string) => globalThis.fetch(url);",
      "expect(process.memoryUsage().arrayBuffers).toBeLessThan(1);",
      '// a comment about postgres and workers',
      '// a spy: vitest restores it after the file',
      'const reads = vi.spyOn(ws.store, "listCas");',
      "// fastify's inject is a request, not vitest's",
      'const res = await app.inject({ method: "GET", url: "/healthz" });',
    ].join("\n");
    expect(needsIsolation(source)).toBeUndefined();
  });

  it("lets share a file whose children are synchronous: each has ended when its call returns", () => {
    for (const source of [
      'import { execFileSync } from "node:child_process";\nexecFileSync("openssl", ["version"]);',
      "import { spawnSync } from 'child_process';",
      'import {\n  execFileSync,\n  spawnSync as run,\n  execSync,\n} from "node:child_process";',
    ]) {
      expect(needsIsolation(source), source).toBeUndefined();
    }
  });
});

describe("needsIsolationUnderTest", () => {
  const file = "test/integration/x.test.ts";
  it("keeps isolated a file under test/ that imports a helper not known to start nothing, whatever the form of the import", () => {
    for (const source of [
      'import { cli, tempDir } from "./helpers.js";',
      'import { runRound } from "../chaos/harness.js";',
      'import type { DemoTemplate } from "../demo-template.js";',
      'import "../softhsm.js";',
      'const { startPcscd } = await import("./pcscd.js");',
      'import { signingThreads } from "../../bench/threads.js";',
    ]) {
      expect(needsIsolationUnderTest(file, source, ROOT), source).toMatch(/^imports /);
    }
    // and the rules of needsIsolation, too
    expect(needsIsolationUnderTest(file, 'import { spawn } from "node:child_process";', ROOT)).toContain("starts processes");
  });

  it("lets share one that imports only the library and the helpers that start nothing", () => {
    const source = [
      'import { readFileSync } from "node:fs";',
      'import { describe, expect, it } from "vitest";',
      'import { buildPath, validatePath } from "../../src/index.js";',
      'import { runInProcess } from "../cli-in-process.js";',
    ].join("\n");
    expect(needsIsolationUnderTest(file, source, ROOT)).toBeUndefined();
    expect(needsIsolationUnderTest("test/x.test.ts", 'import { LongestFirst } from "./sequencer.js";', ROOT)).toBeUndefined();
  });
});

describe("unitFiles", () => {
  it("holds pure unit files and none of those that start processes, mock or change process-wide state", () => {
    const unit = unitFiles(ROOT);
    // pure; the last two run openssl synchronously (execFileSync)
    for (const f of ["src/pki/clock.test.ts", "src/pki/der.test.ts", "src/ca/ocsp-signer.test.ts", "src/crl/publisher.test.ts", "src/pki/keys.test.ts", "src/crl/builder.test.ts"]) expect(unit).toContain(f);
    // spawns a process it does not wait for; mocks modules; starts its PostgreSQL; umask; x509's crypto provider; signal handlers
    for (const f of ["src/store/staging.test.ts", "src/crl/publisher-disk.test.ts", "src/store/copy.test.ts", "src/workspace/permissions.test.ts", "src/profile/san.test.ts", "src/cli/commands/registry-import.test.ts"]) {
      expect(unit).not.toContain(f);
    }
    // under test/: pure ones, and none that use the integration helpers (processes, inject) or the chaos harness
    for (const f of ["test/integration/pkits.test.ts", "test/integration/inspect-golden.test.ts", "test/sequencer.test.ts"]) expect(unit).toContain(f);
    for (const f of ["test/integration/issuance.test.ts", "test/integration/cli-paths.test.ts", "test/chaos/checker.test.ts", "test/bench-threads.test.ts"]) expect(unit).not.toContain(f);
    expect(unit.every((f) => /^(src|test)\//.test(f) && f.endsWith(".test.ts"))).toBe(true);
  });
});

describe("needsIsolationInSharedIntegration", () => {
  const file = "test/integration/x.test.ts";
  it("lets share a file that runs the CLI in-process through the integration helpers and reads the global setup's workspaces", () => {
    const source = [
      'import { execFileSync } from "node:child_process";',
      'import { describe, expect, it, inject } from "vitest";',
      'import { MAIN, cardKey, cli, runDemo, tempDir, tokyoWorkspace } from "./helpers.js";',
      'import { verifierWorkspace } from "./verifier-workspace.js";',
      'import { certificateFor } from "../card-fixtures.js";',
      'import { binDir } from "../postgres-server.js";',
      'import { runInProcess } from "../cli-in-process.js";',
      'const tokyo = inject("jpkiTokyoSqlite");',
    ].join("\n");
    expect(needsIsolationInSharedIntegration(file, source, ROOT)).toBeUndefined();
  });

  it("keeps isolated a file that names a helper starting a process, even without calling it", () => {
    for (const [source, name] of [
      ['import { cli, startServe } from "./helpers.js";', "startServe"],
      ["const r = await jpkiProcess(ws, ['watch']);", "jpkiProcess"],
      ["const stop = stopWhileWaiting;", "stopWhileWaiting"],
      ['import { startPostgres } from "../postgres-server.js";', "startPostgres"],
    ] as const) {
      expect(needsIsolationInSharedIntegration(file, source, ROOT), source).toBe(`starts the CLI or a server as a process (${name})`);
    }
  });

  it("keeps isolated a file that imports a helper outside the integration ones, or that a rule of needsIsolation finds", () => {
    for (const source of ['import { runRound } from "../chaos/harness.js";', 'import { startPcscd } from "./pcscd.js";', 'import { usePostgresDb } from "../use-postgres.js";', 'import "../softhsm.js";']) {
      expect(needsIsolationInSharedIntegration(file, source, ROOT), source).toMatch(/^imports /);
    }
    expect(needsIsolationInSharedIntegration(file, 'import { spawn } from "node:child_process";', ROOT)).toContain("starts processes");
    expect(needsIsolationInSharedIntegration(file, 'process.env.JPKI_STORE = "x";', ROOT)).toContain("environment");
    expect(needsIsolationInSharedIntegration(file, 'import { chromium } from "playwright-core";', ROOT)).toContain("browser");
  });
});

describe("sharedIntegrationFiles", () => {
  it("holds integration files that run the CLI in-process, and none that start a process, a server or a browser, nor a unit file", () => {
    const shared = sharedIntegrationFiles(ROOT);
    for (const f of ["test/integration/rollover.test.ts", "test/integration/migration.test.ts", "test/integration/card-counter.test.ts", "test/integration/issuance.test.ts", "test/integration/demo.test.ts"]) {
      expect(shared).toContain(f);
    }
    // spawns serve; starts serve (helpers); PostgreSQL of its own; a browser; spawned CLIs; the chaos harness; a unit file
    for (const f of ["test/integration/serve.test.ts", "test/integration/ocsp-source.test.ts", "test/integration/postgres-workspace.test.ts", "test/integration/web-page.test.ts", "test/integration/daemon-start.test.ts", "test/chaos/checker.test.ts", "test/integration/pkits.test.ts"]) {
      expect(shared).not.toContain(f);
    }
    const unit = new Set(unitFiles(ROOT));
    expect(shared.filter((f) => unit.has(f))).toEqual([]);
  });
});
