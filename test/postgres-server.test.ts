/**
 * The throwaway server goes away with the process that started it, however that process ends: the watchdog
 * covers an owner killed outright, the sweep at the next start covers an owner and a watchdog both gone.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { connectionString, postmasterOfBackend, runningServer, serverCpu, serverCpuSeconds, startPostgres, sweepStaleServers } from "./postgres-server.js";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** A stand-in owner: a process that lives until killed. */
function owner(): ChildProcess {
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  children.push(c);
  return c;
}

function postmaster(root: string): number {
  return Number(readFileSync(join(root, "data", "postmaster.pid"), "utf8").split("\n")[0]);
}

function running(pid: number): boolean {
  try {
    if (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z")) return false; // finished, not yet reaped
  } catch {
    return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, f: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function answers(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.end();
}

describe("the throwaway PostgreSQL server", () => {
  it("is stopped and its directory removed by the watchdog when its owner is killed with SIGKILL", async () => {
    const o = owner();
    const server = await startPostgres({ owner: o.pid! });
    await answers(server.url("postgres"));
    const pm = postmaster(server.socketDir);
    expect(running(pm)).toBe(true);
    o.kill("SIGKILL");
    await until("the server is gone", () => !running(pm) && !existsSync(server.socketDir));
    await until("the watchdog is gone", () => !running(server.watchdogPid!));
  });

  it("is swept by the next start when its owner and its watchdog both died", async () => {
    const o = owner();
    const server = await startPostgres({ owner: o.pid! });
    const pm = postmaster(server.socketDir);
    process.kill(server.watchdogPid!, "SIGKILL");
    await until("the watchdog is gone", () => !running(server.watchdogPid!));
    o.kill("SIGKILL");
    await until("the owner is gone", () => o.exitCode !== null || o.signalCode !== null);
    expect(running(pm)).toBe(true); // nobody cleaned up yet
    expect(sweepStaleServers()).toContain(server.socketDir);
    expect(running(pm)).toBe(false);
    expect(existsSync(server.socketDir)).toBe(false);
  });

  it("stop() stops the server, removes the directory and ends the watchdog", async () => {
    const server = await startPostgres();
    const pm = postmaster(server.socketDir);
    await server.stop();
    expect(running(pm)).toBe(false);
    expect(existsSync(server.socketDir)).toBe(false);
    await until("the watchdog is gone", () => !running(server.watchdogPid!));
  });

  it("shared (the run's, test/global-setup.ts): each handle's databases are its own, two handles in one process too, and a handle's stop() leaves the server running", async () => {
    const server = await startPostgres();
    try {
      const [a, b] = [runningServer(server.socketDir), runningServer(server.socketDir)];
      const made = [await a.createDatabase(), await b.createDatabase(), await a.createDatabase()];
      expect(new Set(made).size).toBe(3);
      for (const url of made) await answers(url);
      await a.stop();
      expect(running(postmaster(server.socketDir))).toBe(true);
      await answers(await b.createDatabase());
    } finally {
      await server.stop();
    }
  });

  it("serverCpuSeconds counts one server's processes, not another's on the host, a session's work as its backends'; postmasterOfBackend finds a session's server", async () => {
    // The api bench's "PostgreSQL's processes" once summed every `postgres` process on the host, a test run's
    // servers beside the bench's included.
    const [mine, other] = await Promise.all([startPostgres(), startPostgres()]);
    const c = new pg.Client({ connectionString: connectionString(other.socketDir, "postgres") });
    try {
      await c.connect();
      const backend = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      expect(postmasterOfBackend(backend)).toBe(postmaster(other.socketDir));
      expect(postmasterOfBackend(process.pid)).toBeUndefined(); // a process whose parent is not a postmaster
      const [mine0, other0, split0] = [serverCpuSeconds(postmaster(mine.socketDir)), serverCpuSeconds(postmaster(other.socketDir)), serverCpu(postmaster(other.socketDir))];
      // ≈ 0.3–0.6 s of CPU in the other server's backend (a sum over 6,000,000 rows, no I/O).
      await c.query("SELECT sum(i) FROM generate_series(1, 6000000) AS i");
      const otherUsed = serverCpuSeconds(postmaster(other.socketDir)) - other0;
      expect(otherUsed).toBeGreaterThanOrEqual(0.1);
      expect(serverCpuSeconds(postmaster(mine.socketDir)) - mine0).toBeLessThan(otherUsed / 4);
      // The query's CPU is its session's backend's, not the walwriter's or the checkpointer's.
      const split = serverCpu(postmaster(other.socketDir));
      expect(split.backends - split0.backends).toBeGreaterThanOrEqual(otherUsed * 0.75);
      expect(split.background - split0.background).toBeLessThan(otherUsed / 4);
    } finally {
      await c.end().catch(() => undefined);
      await Promise.all([mine.stop(), other.stop()]);
    }
  });
});
