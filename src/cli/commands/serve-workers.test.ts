/**
 * The primary of `jpki serve --workers N` at the process limit (a container's pids.max, systemd's TasksMax), with a
 * stand-in for node:cluster. Two things happened there (seen with `ulimit -u` on a real serve): a fork that failed
 * (spawn EAGAIN) emitted 'error' and no 'exit', unheard, which ended the primary with node's stack trace; a fork that
 * succeeded but whose node aborted at once (it could not make its own threads) was replaced at once, a fork every
 * few milliseconds with a native stack trace each, for as long as the limit held. Now both wait before the next
 * fork, longer each time in a row, and say why; a worker that had listened is still replaced at once.
 */
import { execFileSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Context } from "../context.js";

class FakeWorker extends EventEmitter {
  readonly process: { pid: number; exitCode: number | null; signalCode: string | null; kill: (sig: string) => void };
  constructor(pid: number) {
    super();
    this.process = {
      pid,
      exitCode: null,
      signalCode: null,
      kill: (sig: string) => {
        this.process.signalCode = sig;
        process.nextTick(() => this.emit("exit", null, sig));
      },
    };
  }
  isDead(): boolean {
    return this.process.exitCode !== null || this.process.signalCode !== null;
  }
}

/** How each fork goes: "spawn-fails" (EAGAIN), "aborts" (ends before it listens), "listens". */
let next: () => "spawn-fails" | "aborts" | "listens" = () => "listens";
const forks: FakeWorker[] = [];

vi.mock("node:cluster", () => {
  const cluster = {
    isWorker: false,
    isPrimary: true,
    SCHED_NONE: 1,
    schedulingPolicy: 2,
    workers: {} as Record<number, FakeWorker>,
    fork: () => {
      const w = new FakeWorker(1000 + forks.length);
      forks.push(w);
      cluster.workers[forks.length] = w;
      const how = forks.length > 50 ? "listens" : next(); // a bound, so that a storm ends the test instead of hanging it
      process.nextTick(() => {
        if (how === "spawn-fails") {
          w.process.exitCode = -11;
          w.emit("error", Object.assign(new Error("spawn /usr/bin/node EAGAIN"), { errno: -11, code: "EAGAIN", syscall: "spawn /usr/bin/node" }));
        } else if (how === "aborts") {
          w.process.signalCode = "SIGABRT";
          w.emit("exit", null, "SIGABRT");
        } else w.emit("listening");
      });
      return w;
    },
  };
  return { default: cluster };
});

const { runWorkers, FORK_RETRY_MS } = await import("./serve.js");

afterEach(() => {
  vi.useRealTimers();
  forks.length = 0;
  next = () => "listens";
});

/** runWorkers with 2 workers; what it said, and a way to stop it. */
function primary() {
  const said: string[] = [];
  const ctx = { out: { info: (s: string) => said.push(s) } } as unknown as Context;
  const stop = new AbortController();
  const done = runWorkers(ctx, 2, stop.signal, "127.0.0.1:8080", {});
  return { said, stop, done };
}

const ticks = () => new Promise<void>((r) => setImmediate(r));

describe("jpki serve --workers at the process limit", () => {
  for (const how of ["spawn-fails", "aborts"] as const) {
    it(`waits longer before each fork while workers ${how === "spawn-fails" ? "cannot be forked (EAGAIN)" : "end before they listen"}, then serves once one can`, async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      next = () => how;
      const p = primary();
      await ticks();
      await vi.advanceTimersByTimeAsync(10 * FORK_RETRY_MS);
      // 2 forks, then one 1, 2, 4 and 8 s after the one before it: not one a tick
      expect(forks.length).toBeLessThanOrEqual(6);
      expect(p.said[0]).toMatch(how === "spawn-fails" ? /a worker could not be started \(EAGAIN: the process limit, a container's pids\.max or systemd's TasksMax\); starting another in 1 s/ : /worker 1000 exited \(SIGABRT\) before it listened; starting another in 1 s/);
      next = () => "listens";
      await vi.advanceTimersByTimeAsync(60 * FORK_RETRY_MS);
      await ticks();
      expect(p.said.at(-1)).toMatch(/2 workers listening on 127\.0\.0\.1:8080/);
      const before = forks.length;
      p.stop.abort();
      await p.done;
      expect(forks.length).toBe(before); // no fork after the stop
    });
  }

  it("replaces a worker that had listened at once, as before", async () => {
    const p = primary();
    await ticks();
    forks[0]!.emit("exit", 1, null);
    await ticks();
    expect(forks).toHaveLength(3);
    expect(p.said).toContain("jpki serve: worker 1000 exited (1); starting another");
    p.stop.abort();
    await p.done;
  });

  it("a fork that failed leaves node's cluster.workers by itself (no entry kept per failed fork): the real node:cluster", () => {
    // A spawn that fails as EAGAIN does (libuv's uv_spawn error, node's 'error' then no 'exit'); a cwd that does not
    // exist is one a test can make. Checked in a node of its own: this one's node:cluster is the stand-in above.
    const script = `
      const cluster = require("node:cluster");
      cluster.setupPrimary({ exec: "never-run.js", cwd: "/nonexistent-jpki-serve-workers-test" });
      const w = cluster.fork();
      const seen = [];
      w.on("error", (e) => seen.push("error " + e.syscall.split(" ")[0] + " " + (w.id in cluster.workers)));
      w.on("disconnect", () => seen.push("disconnect " + (w.id in cluster.workers)));
      w.on("exit", () => seen.push("exit"));
      setTimeout(() => process.stdout.write(JSON.stringify({ seen, left: Object.keys(cluster.workers) })), 500);
    `;
    const out = JSON.parse(execFileSync(process.execPath, ["-e", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 }));
    expect(out).toEqual({ seen: ["error spawn true", "disconnect false"], left: [] });
  });
});
