/**
 * The throwaway PostgreSQL server of one test file: `const server = usePostgres();` at the file's top level. Where
 * the run started one for the files to share (test/global-setup.ts, the "sqlite" project), that one: the files
 * there only make databases of their own on it, and starting and stopping a server per file (a copy of the run's
 * one initdb, test/postgres-server.ts) cost ≈ 1 s each. Otherwise, or with `own` or settings of the file's, a server
 * of its own, started before the file's tests (beforeAll) and stopped after them (afterAll). Eleven files repeated
 * the same two hooks around a `let server`.
 *
 * Apart from test/postgres-server.ts because that one is imported outside vitest too (the benches, the global
 * setup), and this one registers vitest hooks.
 */
import { afterAll, beforeAll, inject } from "vitest";
import { runningServer, startPostgres, type PostgresTestServer, type StartOptions } from "./postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** the socket directory of the server the "sqlite" project's files share (test/global-setup.ts), when it started */
    jpkiSharedPostgres: string;
  }
}

export interface UsePostgresOptions extends StartOptions {
  /**
   * A server of the file's own even where the run shares one: for a file that does more than make databases of its
   * own on it (creates roles, listens at its socket's name, sees every session on it, needs settings of its own).
   */
  readonly own?: boolean;
}

/**
 * The file's PostgreSQL server: the run's shared one (test/global-setup.ts) when there is one and the file asks for
 * nothing of its own (no `own`, no settings), each database it makes named for its process alone; else one
 * started for it.
 */
export function usePostgres(opts: UsePostgresOptions = {}): PostgresTestServer {
  const shared = !opts.own && !opts.settings && opts.owner === undefined ? inject("jpkiSharedPostgres") : undefined;
  if (shared) return runningServer(shared);
  let started: PostgresTestServer | undefined;
  beforeAll(async () => {
    started = await startPostgres({ ...(opts.owner !== undefined ? { owner: opts.owner } : {}), ...(opts.settings ? { settings: opts.settings } : {}) });
  });
  afterAll(async () => {
    await started?.stop();
  });
  const server = (): PostgresTestServer => {
    if (!started) throw new Error("the file's PostgreSQL server is not running: usePostgres() starts it in beforeAll, so use it in hooks and tests");
    return started;
  };
  // The server as its tests know it, resolved when used: each call goes to the one beforeAll started.
  return {
    get socketDir() {
      return server().socketDir;
    },
    get watchdogPid() {
      return server().watchdogPid;
    },
    createDatabase: (template) => server().createDatabase(template),
    url: (database) => server().url(database),
    cpuSeconds: () => server().cpuSeconds(),
    stop: () => server().stop(),
  };
}
