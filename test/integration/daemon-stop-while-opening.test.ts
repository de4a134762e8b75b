/**
 * SIGTERM while a daemon's start-up waits on PostgreSQL (slow: spawns the built CLI). A server that accepts the
 * connection and never answers held the open for the connect timeout (15 s), another process's upgrade for the lock
 * timeout (20 s): the stop was acted on only then, and the command exited with the open's error
 * (ERR_STORE_UNREACHABLE, ERR_WORKSPACE_LOCKED) instead of its clean stop's exit (0; notices ingest 143, its input
 * unread). Now the wait ends at the signal (src/store/pg-stop.ts) and the command stops as it does later on.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADVISORY_LOCKS } from "../../src/store/postgres.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { admin } from "../postgres-store-kit.js";
import { usePostgres } from "../use-postgres.js";
import { freePort, jpkiProcess, stopWhileWaiting, tempDir } from "./helpers.js";

const server = usePostgres();

let dir: string;
let ws: string;
let url: string;
let spool: string;
let notices: string;
let silent: Server;
let silentUrl: string;
const accepted: Socket[] = [];

beforeAll(async () => {
  dir = tempDir();
  ws = join(dir, "ws");
  url = await server.createDatabase();
  await (await Workspace.createAsync(ws, { storeUrl: url, config: { store: "postgres" } })).close();
  spool = join(dir, "spool");
  mkdirSync(spool);
  notices = join(dir, "notices.jsonl");
  writeFileSync(notices, "");
  // accepts, reads nothing, answers nothing: a hung host, a firewall holding the port open
  silent = createServer((s) => accepted.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentUrl = `postgres://jpki@127.0.0.1:${(silent.address() as { port: number }).port}/jpki?connect_timeout=15`;
});
afterAll(async () => {
  for (const s of accepted) s.destroy();
  await new Promise((r) => silent.close(r));
});

describe("SIGTERM while a daemon's start-up waits on PostgreSQL", () => {
  it("a server that never answers: watch, serve and notices ingest stop at once with their clean stop's exit (0; notices ingest 143, its input unread), not ERR_STORE_UNREACHABLE after the connect timeout", async () => {
    const port = await freePort();
    // what each says of its stop: as when stopped before it began
    const runs: Array<[string[], number, (stdout: string) => void]> = [
      [["watch", spool, "--poll", "50"], 0, (out) => expect(out).toMatch(/^processed 0 files \(0 failed\), published 0 CRLs, stopped by signal$/m)],
      [["--json", "notices", "ingest", notices], 143, (out) => expect(JSON.parse(out)).toMatchObject({ stopped: true, signal: "SIGTERM", lastLineRead: 0, read: 0, applied: 0, rejected: 0, rejectFile: null })],
      [["serve", "--no-schedule", "--no-ocsp", "--listen", `127.0.0.1:${port}`], 0, (out) => expect(out).toBe("")],
    ];
    for (const [command, exit, says] of runs) {
      const before = accepted.length;
      // the wait goes on: the signal comes in the middle of it, not as it began
      const r = await stopWhileWaiting(ws, command, { env: { JPKI_STORE: silentUrl }, waiting: () => accepted.length > before, settleMs: 300 });
      expect({ command, code: r.code }, r.stderr).toEqual({ command, code: exit });
      // the clean exit and no ERR_ say the signal ended the wait (the 15 s connect timeout ends it in
      // ERR_STORE_UNREACHABLE); how long the stop took is not asserted: a loaded CI host's process exit took seconds
      expect(r.stderr, command.join(" ")).not.toMatch(/ERR_/);
      if (exit) expect(r.stderr).toMatch(/^jpki: notices ingest stopped by SIGTERM while the store was opening: nothing was read or changed\.$/m);
      says(r.stdout);
    }
  }, 60_000);

  it("another process's upgrade (the migration lock held): jpki watch stops at once with exit 0, its server-side wait cancelled, and the next start runs", async () => {
    const holder = await admin(url);
    try {
      await holder.query("SELECT pg_advisory_lock($1, 0)", [ADVISORY_LOCKS.migration]);
      const waiters = async () => (await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n;
      const r = await stopWhileWaiting(ws, ["watch", spool, "--poll", "50"], { env: { JPKI_STORE: url }, waiting: async () => (await waiters()) > 0, settleMs: 300 });
      expect(r.code, r.stderr).toBe(0);
      // the exit 0 and no ERR_ say the signal ended the wait, not the 20 s lock timeout (ERR_WORKSPACE_LOCKED)
      expect(r.stderr).not.toMatch(/ERR_/);
      expect(r.stdout).toMatch(/stopped by signal/);
      expect(await waiters()).toBe(0); // cancelled before the process exited, not left waiting for lock_timeout
      await holder.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.migration]);
      const next = await jpkiProcess(ws, ["watch", spool, "--once"], { JPKI_PASSPHRASE: "correct horse", JPKI_STORE: url });
      expect(next.code, next.stderr).toBe(0);
    } finally {
      await holder.end();
    }
  }, 60_000);
});
