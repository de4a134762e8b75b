/**
 * The "postgres" project's server (vitest.config.ts): one throwaway PostgreSQL server for the whole run,
 * its socket directory handed to the test files as `inject("jpkiPostgres")`; test/integration/helpers.ts
 * gives every workspace its own database on it. Stopped at the end; a run that dies leaves nothing behind
 * either (see postgres-server.ts).
 */
import type { TestProject } from "vitest/node";
import { startPostgres } from "./postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** the throwaway server's socket directory, in the "postgres" project only */
    jpkiPostgres: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startPostgres();
  project.provide("jpkiPostgres", server.socketDir);
  return () => server.stop();
}
