/**
 * The throwaway PostgreSQL server of one test file: `const server = usePostgres();` at the file's top level starts
 * it before the file's tests (beforeAll) and stops it after them (afterAll). Each file has a server of its own
 * (a copy of the run's one initdb, test/postgres-server.ts), so the files run on every worker at once. Eleven files
 * repeated the same two hooks around a `let server`.
 *
 * Apart from test/postgres-server.ts because that one is imported outside vitest too (the benches, the global
 * setup), and this one registers vitest hooks.
 */
import { afterAll, beforeAll } from "vitest";
import { startPostgres, type PostgresTestServer, type StartOptions } from "./postgres-server.js";

export function usePostgres(opts: StartOptions = {}): PostgresTestServer {
  let started: PostgresTestServer | undefined;
  beforeAll(async () => {
    started = await startPostgres(opts);
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
