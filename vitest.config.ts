import { defineConfig } from "vitest/config";

/**
 * The integration suites whose workspaces hold store facts: they run twice, on SQLite (the "sqlite" project,
 * with everything else) and again on PostgreSQL (the "postgres" project). There a server started once by
 * test/postgres-global-setup.ts serves every workspace, each in its own database: test/integration/helpers.ts
 * sets JPKI_STORE for every command it runs (see workspaceStore there). `--project sqlite` or
 * `--project postgres` runs one of them.
 */
export const STORE_SUITES = ["issuance", "notices", "identity", "keys", "partial-input", "concurrency", "resume", "demo", "serve", "ocsp", "partitions", "verifiers", "load", "delta", "validation-api", "liveness", "provider", "counter", "backup", "audit"].map((n) => `test/integration/${n}.test.ts`);

export default defineConfig({
  test: {
    setupFiles: ["test/setup.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "sqlite", include: ["src/**/*.test.ts", "test/**/*.test.ts"] } },
      { extends: true, test: { name: "postgres", include: STORE_SUITES, globalSetup: ["test/postgres-global-setup.ts"] } },
    ],
  },
});
