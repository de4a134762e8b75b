/**
 * Interleaved A/B of `POST /v1/validate` between builds of jpki, by hand: on this host a 5 s run swings by ±20 %
 * (slow spells of ten seconds or so), so a change of a few percent shows only over many runs taken in turns.
 *
 *   JPKI_BENCH_KEEP=1 npm run bench -- api          # prints "kept /tmp/jpki-bench-api-…" (a workspace, wrk's script)
 *   node bin/jpki.cjs --run-module dist/bench/api-ab.js /tmp/jpki-bench-api-… /path/to/build-a '/path/to/build-b|JPKI_X=1'
 *
 * A build is a directory holding bin/jpki.cjs and dist/ (a copy of a checkout after `npm run build`), with
 * environment variables for its server after `|`, comma-separated. Each round starts each build's `jpki serve`
 * on the kept workspace (AB_WORKERS: its --workers, default 1), warms it with one run, then measures one
 * (AB_SECONDS, default 5; AB_ROUNDS, default 6) and prints answers/s and the server's CPU per answer (all its threads, /proc): the CPU figure moves less with
 * the host than the rate. Needs wrk. Not part of `npm run bench`.
 *
 * The CPU is also split by thread (the main thread, the busiest other — the engine's —, the rest) and, on a
 * PostgreSQL workspace (JPKI_STORE set, as the bench printed it: run the bench with JPKI_BENCH_PG naming a server
 * that outlives it), PostgreSQL's processes on this host (that server's only) and the disclosure groups' mean size:
 * disclosure rows over audit records written in the run (a group with one verifier writes one audit record).
 * Each run also prints the host's idle share (/proc/stat, idle + iowait over all CPU time during the run): on a
 * quiet host, the cores the closed loop of 32 connections left unused; on a host shared with other jobs, ≈ 0 % and
 * meaningless (they take what is left).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { postmasterOfBackend, serverCpu } from "../test/postgres-server.js";
import { freePort, start, stop } from "./serve.js";
import { statFields, threadCpu } from "./threads.js";
import { statusesOf } from "./wrk-load.js";

/** The main thread, the busiest other (the engine's) and the rest, µs per answer, between two threadCpu samples. */
function split(pid: number, a: Map<number, number>, b: Map<number, number>, answers: number): { main: number; engine: number; rest: number } {
  const used = [...b].map(([tid, s]) => ({ tid, us: ((s - (a.get(tid) ?? 0)) / answers) * 1e6 }));
  const main = used.find((t) => t.tid === pid)?.us ?? 0;
  const others = used.filter((t) => t.tid !== pid).sort((x, y) => y.us - x.us);
  return { main, engine: others[0]?.us ?? 0, rest: others.slice(1).reduce((t, x) => t + x.us, 0) };
}

/** The PostgreSQL server JPKI_STORE names, when it runs on this host: its postmaster, and a client for the counts. */
async function postgresOf(url: string | undefined): Promise<{ pm: number | undefined; counts(): Promise<{ rows: number; groups: number }>; close(): Promise<void> } | undefined> {
  if (!url || !/^postgres(ql)?:/.test(url)) return undefined;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const pm = postmasterOfBackend((await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
  return {
    pm,
    async counts() {
      const r = await c.query<{ rows: string; groups: string }>("SELECT (SELECT count(*) FROM disclosures) AS rows, (SELECT count(*) FROM audit_log) AS groups");
      return { rows: Number(r.rows[0]!.rows), groups: Number(r.rows[0]!.groups) };
    },
    close: () => c.end(),
  };
}

/** CPU seconds so far of every thread of `pid` and of its child processes (the workers of --workers N). */
function processCpu(pid: number): number {
  const pids = [pid, ...readdirSync("/proc").filter((d) => /^\d+$/.test(d) && statFields(`/proc/${d}/stat`)?.[1] === String(pid)).map(Number)];
  let ticks = 0;
  for (const p of pids) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // a process that ended meanwhile
    }
    for (const t of tasks) {
      const f = statFields(`/proc/${p}/task/${t}/stat`);
      if (f) ticks += Number(f[11]) + Number(f[12]);
    }
  }
  return ticks / 100;
}

/** wrk's answers per second for one run of the kept script; a run with any answer not 2xx fails, naming the statuses. */
function wrk(script: string, port: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", ["-t1", "-c32", `-d${seconds}s`, "-s", script, `http://127.0.0.1:${port}/v1/validate`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      if (code !== 0 || !m) reject(new Error(`wrk exited ${code}: ${out.slice(-300)}`));
      else if (non2xx)
        statusesOf(readFileSync(script, "utf8"), "127.0.0.1", port).then(
          (what) => reject(new Error(`the server answered ${non2xx[1]} of wrk's requests with a status other than 2xx: ${what}`)),
          (e: Error) => reject(new Error(`the server answered ${non2xx[1]} of wrk's requests with a status other than 2xx (asking again failed: ${e.message})`)),
        );
      else resolve(Number(m[1]));
    });
  });
}

/**
 * The host's CPU time so far from /proc/stat's first line, in ticks: idle (idle + iowait) and all. Over a run, idle
 * over all is the share of the cores nobody used: on a closed loop with CPU to spare, time the answers spent waiting.
 */
function hostTicks(): { idle: number; all: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3]! + f[4]!, all: f.slice(0, 8).reduce((t, x) => t + x, 0) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const [kept, ...builds] = process.argv.slice(2);
  if (!kept || !builds.length || !existsSync(join(kept, "ws")) || !existsSync(join(kept, "load.lua"))) {
    console.error("usage: api-ab.js KEPT_DIR BUILD[|VAR=VALUE,…] …   (KEPT_DIR from JPKI_BENCH_KEEP=1 npm run bench -- api)");
    process.exit(2);
  }
  const rounds = Number(process.env.AB_ROUNDS ?? 6);
  const seconds = Number(process.env.AB_SECONDS ?? 5);
  const workers = process.env.AB_WORKERS ?? "1";
  const results = new Map<string, Array<{ rps: number; us: number; main: number; engine: number; rest: number; db: number; group: number; idle: number }>>(builds.map((b) => [b, []]));
  const pgs = await postgresOf(process.env.JPKI_STORE);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const build of builds) {
        const [dir, vars = ""] = build.split("|");
        const env = { ...process.env, JPKI_PASSPHRASE: "bench", ...Object.fromEntries(vars.split(",").filter(Boolean).map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)])) };
        const port = await freePort();
        const child = await start([join(dir!, "bin/jpki.cjs"), "--workspace", join(kept, "ws"), "serve", "--listen", `127.0.0.1:${port}`, "--workers", workers, "--access-log", join(kept, "ab-access.log")], env);
        try {
          await wrk(join(kept, "load.lua"), port, seconds); // warm-up: the JIT, the engine's CRL index
          const counts0 = await pgs?.counts();
          const db0 = pgs?.pm ? serverCpu(pgs.pm) : undefined;
          const host0 = hostTicks();
          const threads0 = threadCpu(child.pid!);
          const cpu0 = processCpu(child.pid!);
          const t0 = performance.now();
          const rps = await wrk(join(kept, "load.lua"), port, seconds);
          const answers = rps * ((performance.now() - t0) / 1000);
          const host1 = hostTicks();
          const idle = (host1.idle - host0.idle) / Math.max(1, host1.all - host0.all);
          const us = ((processCpu(child.pid!) - cpu0) / answers) * 1e6;
          const parts = split(child.pid!, threads0, threadCpu(child.pid!), answers);
          const db1 = pgs?.pm ? serverCpu(pgs.pm) : undefined;
          const counts1 = await pgs?.counts();
          const db = db0 && db1 ? ((db1.backends + db1.background - db0.backends - db0.background) / answers) * 1e6 : NaN;
          const group = counts0 && counts1 ? (counts1.rows - counts0.rows) / Math.max(1, counts1.groups - counts0.groups) : NaN;
          results.get(build)!.push({ rps, us, ...parts, db, group, idle });
          const pgPart = Number.isNaN(db) ? "" : `; PostgreSQL ${db.toFixed(0)} µs, ${group.toFixed(1)} answers a group`;
          console.log(`round ${r + 1} ${build}: ${rps.toFixed(0)} answers/s, server ${us.toFixed(0)} µs of CPU per answer (main ${parts.main.toFixed(0)}, engine ${parts.engine.toFixed(0)}, rest ${parts.rest.toFixed(0)})${pgPart}; host idle ${(idle * 100).toFixed(0)} %`);
        } finally {
          await stop(child);
        }
      }
    }
  } finally {
    await pgs?.close(); // after a failed round too: its open client would hold the process up
  }
  for (const [build, rs] of results) {
    const m = (f: (x: (typeof rs)[number]) => number) => median(rs.map(f)).toFixed(0);
    const pgPart = pgs ? `, PostgreSQL ${m((x) => x.db)} µs, ${median(rs.map((x) => x.group)).toFixed(1)} answers a group` : "";
    console.log(`${build}: median ${m((x) => x.rps)}/s (${Math.min(...rs.map((x) => x.rps)).toFixed(0)}–${Math.max(...rs.map((x) => x.rps)).toFixed(0)}), median ${m((x) => x.us)} µs per answer (main ${m((x) => x.main)}, engine ${m((x) => x.engine)}, rest ${m((x) => x.rest)})${pgPart}, host idle ${(median(rs.map((x) => x.idle)) * 100).toFixed(0)} %`);
  }
}

// Said here, not by the launcher: its "cannot start … run 'npm run build' first" is for a module that would not load,
// and read as that, a server's 500s sent the reader to rebuild.
await main().catch((e: unknown) => {
  console.error(`api-ab: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
