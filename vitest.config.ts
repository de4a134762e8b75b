import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";
import { sharedIntegrationFiles, unitFiles } from "./test/isolation.js";
import { LongestFirst } from "./test/sequencer.js";

/**
 * The integration suites whose workspaces hold store facts: they run twice, on SQLite (the "sqlite" project,
 * with everything else) and again on PostgreSQL (the "postgres" project). There a server started once by
 * test/postgres-global-setup.ts serves every workspace, each in its own database: test/integration/helpers.ts
 * sets JPKI_STORE for every command it runs (see workspaceStore there). `--project sqlite` or
 * `--project postgres` runs one of them.
 */
export const STORE_SUITES = ["issuance", "notices", "identity", "keys", "partial-input", "concurrency", "resume", "demo", "serve", "ocsp", "partitions", "verifiers", "load", "delta", "validation-api", "liveness", "provider", "counter", "backup", "audit", "registry-import", "compromise-retired", "compromise-carried", "daemon-start"].map((n) => `test/integration/${n}.test.ts`);

/**
 * The test files (under src/, and the few under test/ that import no process-starting helper) that run without
 * isolation, in the "unit" project (test/isolation.ts says which and why): one worker runs them one after the other
 * and keeps what they imported. Each isolated file forks a worker and
 * imports vitest and the library again (≈ 0.5–1 s of CPU), which was most of what the pure unit files cost.
 */
const UNIT_FILES = unitFiles(import.meta.dirname);

/**
 * The SQLite integration files that start no process the file does not wait for (test/isolation.ts
 * sharedIntegrationFiles), in the "sqlite-shared" project: one worker runs them one after the other, as "unit" does
 * its files, with the "sqlite" project's global setup (the run's SQLite demo and Tokyo workspace). An isolated
 * integration file cost ≈ 2 s of CPU before its tests did anything: the worker, vitest, the library's first load.
 * test/shared-worker-guard.ts fails a file that leaves handlers, environment or a listening server behind. The
 * store suites among them still run isolated on PostgreSQL ("postgres").
 */
const SHARED_INTEGRATION_FILES = sharedIntegrationFiles(import.meta.dirname);

export default defineConfig({
  test: {
    setupFiles: ["test/setup.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Two test files at a time even on 2 cores: vitest's default there is one (cores − 1), and most files spend
    // their time waiting on the processes and servers they start. Measured on the 2-core CI machine: 896 s one
    // file at a time, 645 s two at a time (the 15-minute budget). The slowest tests then take up to ≈ 1.5× as
    // long, hence a test timeout of 120 s (it still ends a hang).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // the longest files first, across both projects (test/sequencer.ts)
    sequence: { sequencer: LongestFirst },
    projects: [
      { extends: true, test: { name: "unit", include: UNIT_FILES, isolate: false } },
      { extends: true, test: { name: "sqlite-shared", include: SHARED_INTEGRATION_FILES, isolate: false, setupFiles: ["test/shared-worker-guard.ts"] } },
      { extends: true, test: { name: "sqlite", include: ["src/**/*.test.ts", "test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...UNIT_FILES, ...SHARED_INTEGRATION_FILES] } },
      { extends: true, test: { name: "postgres", include: STORE_SUITES, globalSetup: ["test/postgres-global-setup.ts"] } },
    ],
  },
});
