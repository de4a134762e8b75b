/**
 * The store's connections and the process's exit: a connection in use holds the process (a statement in flight is
 * never cut by an exit), an idle one does not, so a command that closed the store exits at once instead of waiting
 * for the server to end the backend and close the socket (≈ 14 ms of every short command on PostgreSQL).
 */
import { describe, expect, it } from "vitest";
import { admin } from "../../test/postgres-store-kit.js";
import { until } from "../../test/until.js";
import { usePostgres } from "../../test/use-postgres.js";
import { PostgresStore } from "./postgres.js";

const server = usePostgres();

/** The sockets keeping this process alive (a Unix socket to the test server is a PipeWrap). */
const heldSockets = () => process.getActiveResourcesInfo().filter((r) => r === "PipeWrap" || r === "TCPSocketWrap").length;

describe("PostgreSQL store connections and the process's exit", () => {
  it("a statement in flight holds the process; an idle connection does not, nor one closing", async () => {
    const url = await server.createDatabase();
    const locker = await admin(url); // another session, its connection held as any client's
    const before = heldSockets();
    const s = await PostgresStore.open(url, { create: true });
    try {
      expect(heldSockets()).toBe(before); // open, its connection back in the pool: idle
      await s.listCas();
      expect(heldSockets()).toBe(before);
      // a statement the server holds (the table locked by another session) until the lock goes
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE cas IN ACCESS EXCLUSIVE MODE");
      const listing = s.listCas();
      // (asked until it holds: 100 × 10 ms and then an assertion failed a host that took longer to send it)
      await until(() => heldSockets() !== before, "the statement's connection to hold the process");
      expect(heldSockets()).toBe(before + 1);
      await locker.query("COMMIT");
      expect(await listing).toEqual([]);
      expect(heldSockets()).toBe(before);
      await s.close();
      // Terminate sent; the server closes its end when its backend has exited, which nothing waits for
      expect(heldSockets()).toBe(before);
    } finally {
      await s.close();
      await locker.end();
    }
  });
});
