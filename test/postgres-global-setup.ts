/**
 * The "postgres" project's server (vitest.config.ts): one throwaway PostgreSQL server for the whole run,
 * its socket directory handed to the test files as `inject("jpkiPostgres")`; test/integration/helpers.ts
 * gives every workspace its own database on it. Stopped at the end; a run that dies leaves nothing behind
 * either (see postgres-server.ts). Also the run's demo on that server, `inject("jpkiDemoPostgres")`, which
 * runDemo copies (test/demo-template.ts): its workspace's database is named as helpers.ts names them; and the
 * `ca init -p 13` workspace on it, `inject("jpkiTokyoPostgres")`, which tokyoWorkspace copies.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { makeDemoTemplate, makeTokyoTemplate, workspaceDatabase } from "./demo-template.js";
import { buildDist, runTmpDir } from "./global-setup.js";
import { connectionString, startPostgres } from "./postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** the throwaway server's socket directory, in the "postgres" project only */
    jpkiPostgres: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  runTmpDir(); // first, whichever project's setup runs first: the server's directory goes inside it too
  const [server] = await Promise.all([startPostgres(), buildDist()]);
  project.provide("jpkiPostgres", server.socketDir);
  const root = join(import.meta.dirname, "..");
  const dir = mkdtempSync(join(tmpdir(), "jpki-demo-template-"));
  const tokyoDir = mkdtempSync(join(tmpdir(), "jpki-tokyo-template-"));
  const db = workspaceDatabase(join(dir, "jpki-demo"));
  const tokyoDb = workspaceDatabase(join(tokyoDir, "ws"));
  const admin = new pg.Client({ connectionString: connectionString(server.socketDir, "postgres") });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.query(`CREATE DATABASE ${tokyoDb}`);
  } finally {
    await admin.end();
  }
  const [demo, tokyo] = await Promise.all([
    makeDemoTemplate(root, dir, connectionString(server.socketDir, db)),
    makeTokyoTemplate(root, tokyoDir, connectionString(server.socketDir, tokyoDb)),
  ]);
  project.provide("jpkiDemoPostgres", demo);
  project.provide("jpkiTokyoPostgres", tokyo);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(tokyoDir, { recursive: true, force: true });
  };
}
