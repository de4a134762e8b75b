/**
 * Connecting to PostgreSQL never hangs: a server that accepts the TCP connection and never answers (a hung host,
 * a firewall holding the port open) is ERR_STORE_UNREACHABLE after the connect timeout, not a command that
 * waits forever. No PostgreSQL server needed: a bare socket that says nothing plays the hung server.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../test/until.js";
import { PostgresStore, connectTimeoutOf } from "./postgres.js";

let server: Server;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createServer((s) => sockets.push(s)); // accepts, reads nothing, answers nothing
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe("PostgreSQL connect timeout", () => {
  it("a server that never answers: ERR_STORE_UNREACHABLE (network), no hang, no password in the message", async () => {
    const err = await PostgresStore.open(`postgres://jpki:s3cret-pw@127.0.0.1:${port}/jpki`, { connectTimeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "network" } });
    expect(String((err as Error).message)).not.toContain("s3cret-pw");
    // it says the server did not answer, not that it closed the connection
    expect(String((err as Error).message)).toMatch(/^the PostgreSQL server cannot be reached \(no answer within the connect timeout\) while opening the store/);
    expect(sockets.length).toBeGreaterThan(0); // it did reach the silent server
  }, 20_000);

  it("a stop while it connects ends the open at once with the stop's reason (not after the connect timeout), and drops the connection", async () => {
    const before = sockets.length;
    const stop = new AbortController();
    // A connect timeout past the test's own: an open that waited for it, not the stop, fails the test (it was
    // a measured "under 2 s", which a host that slow failed though nothing was wrong).
    let made = 0;
    const opening = PostgresStore.open(`postgres://jpki@127.0.0.1:${port}/jpki`, { connectTimeoutMs: 600_000, signal: stop.signal, onConnecting: () => made++ }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await until(() => sockets.length > before, "the open's connection at the silent server"); // it waits on it
    expect(made).toBe(1); // and counted it (what says "none" below)
    const mine = sockets[sockets.length - 1]!;
    const closed = new Promise<void>((r) => (mine.destroyed ? r() : mine.once("close", () => r())));
    mine.resume(); // read (and drop) what comes, so the end of the connection is seen
    stop.abort();
    expect(await opening).toBe(stop.signal.reason);
    await closed; // the connection it was making is closed, not left to the timeout
    // Aborted before it began: no connection at all. Counted as the store makes each (onConnecting), not by
    // sockets arriving within a pause: none was made by the time the open failed, and an open that fails has
    // nothing left that could make one later (its pool is ended before it rejects).
    let attempts = 0;
    const again = sockets.length;
    await expect(PostgresStore.open(`postgres://jpki@127.0.0.1:${port}/jpki`, { connectTimeoutMs: 600_000, signal: stop.signal, onConnecting: () => attempts++ })).rejects.toBe(stop.signal.reason);
    expect(attempts).toBe(0);
    expect(sockets.length).toBe(again);
  }, 60_000);

  it("the timeout comes from connect_timeout in the string, then PGCONNECT_TIMEOUT, else 15 s; never below libpq's 2 s", () => {
    expect(connectTimeoutOf("postgres://h/db?connect_timeout=7", {})).toBe(7000);
    expect(connectTimeoutOf("postgres://h/db?connect_timeout=1", {})).toBe(2000);
    expect(connectTimeoutOf("postgres://h/db", { PGCONNECT_TIMEOUT: "30" })).toBe(30_000);
    expect(connectTimeoutOf("postgres://h/db?connect_timeout=5", { PGCONNECT_TIMEOUT: "30" })).toBe(5000);
    for (const v of ["0", "-1", "x", ""]) expect(connectTimeoutOf(`postgres://h/db?connect_timeout=${v}`, {})).toBe(15_000);
    expect(connectTimeoutOf("not a url", {})).toBe(15_000);
    expect(connectTimeoutOf("postgres://jpki@/db?host=/run/postgresql&connect_timeout=7", {})).toBe(7000); // a role, no host
  });
});
