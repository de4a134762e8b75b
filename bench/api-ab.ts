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
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { freePort, start, stop } from "./serve.js";

/** The fields of a /proc stat line after the command name (state is [0], ppid [1], utime [11], stime [12]). */
function statFields(path: string): string[] | undefined {
  try {
    const s = readFileSync(path, "utf8");
    return s.slice(s.lastIndexOf(") ") + 2).split(" ");
  } catch {
    return undefined; // ended meanwhile
  }
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

/** wrk's answers per second for one run of the kept script. */
function wrk(script: string, port: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", ["-t1", "-c32", `-d${seconds}s`, "-s", script, `http://127.0.0.1:${port}/v1/validate`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (code !== 0 || !m || /Non-2xx/.test(out)) reject(new Error(`wrk exited ${code} or got answers other than 200: ${out.slice(-300)}`));
      else resolve(Number(m[1]));
    });
  });
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
  const results = new Map<string, Array<{ rps: number; us: number }>>(builds.map((b) => [b, []]));
  for (let r = 0; r < rounds; r++) {
    for (const build of builds) {
      const [dir, vars = ""] = build.split("|");
      const env = { ...process.env, JPKI_PASSPHRASE: "bench", ...Object.fromEntries(vars.split(",").filter(Boolean).map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)])) };
      const port = await freePort();
      const child = await start([join(dir!, "bin/jpki.cjs"), "--workspace", join(kept, "ws"), "serve", "--listen", `127.0.0.1:${port}`, "--workers", workers, "--access-log", join(kept, "ab-access.log")], env);
      try {
        await wrk(join(kept, "load.lua"), port, seconds); // warm-up: the JIT, the engine's CRL index
        const cpu0 = processCpu(child.pid!);
        const t0 = performance.now();
        const rps = await wrk(join(kept, "load.lua"), port, seconds);
        const us = ((processCpu(child.pid!) - cpu0) / (rps * ((performance.now() - t0) / 1000))) * 1e6;
        results.get(build)!.push({ rps, us });
        console.log(`round ${r + 1} ${build}: ${rps.toFixed(0)} answers/s, server ${us.toFixed(0)} µs of CPU per answer`);
      } finally {
        await stop(child);
      }
    }
  }
  for (const [build, rs] of results) {
    console.log(`${build}: median ${median(rs.map((x) => x.rps)).toFixed(0)}/s, best ${Math.max(...rs.map((x) => x.rps)).toFixed(0)}/s, median ${median(rs.map((x) => x.us)).toFixed(0)} µs per answer`);
  }
}

await main();
