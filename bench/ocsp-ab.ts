/**
 * Interleaved A/B of OCSP GETs answered from pre-produced responses (the `serve` bench's "OCSP GET" line, target
 * ≥ 0.5× a bare node:http 304), between builds of jpki, by hand: one 5 s run of the serve bench swings by ±20 % on
 * this host, so the ratio it prints moves more than most changes to the route.
 *
 *   JPKI_BENCH_BACKENDS=sqlite node bin/jpki.cjs --run-module dist/bench/ocsp-ab.js /path/to/build-a '/path/to/build-b|VAR=1'
 *
 * A build is a directory holding bin/jpki.cjs and dist/ (a checkout after `npm run build`), with environment
 * variables for its server after `|`, comma-separated. One workspace is made as the serve bench makes its own (CAs
 * 13-sig and 13-auth, a registered verifier, one signature certificate and openssl's GET request about it) on the
 * backend JPKI_BENCH_BACKENDS names (one: sqlite or postgres). Each round runs the bare 304 server once, then each
 * build's `jpki serve` in turn (the order reversed every other round): a warm-up GET load, then the measured GET
 * load and a 304 load on the same server, each with the server's CPU per answer (all its threads, /proc) split into
 * its main thread and the rest. The CPU per answer moves less with the host than the rate.
 * AB_ROUNDS (default 6), AB_SECONDS (5), AB_CONNECTIONS (50, as the serve bench); AB_PERF=DIR records each measured
 * GET and 304 load with `perf record -e cpu-clock -g` (run the build with NODE_OPTIONS=--perf-basic-prof to read JS frames).
 * Not part of `npm run bench`; numbers are for reading.
 */
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { generateCrls } from "../src/crl/generate.js";
import { registerVerifier } from "../src/verifier/registration.js";
import { openBackends } from "./backends.js";
import { fileURLToPath } from "node:url";
import { autocannonApi, BARE, freePort, head, ocspRequests, start, stop, useToken, type Load } from "./serve.js";
import { threadCpu } from "./threads.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
let auth: Record<string, string> = {};

interface Measured {
  readonly rps: number;
  /** the server's CPU per answer, µs: all threads, the main (serving) thread, the others */
  readonly us: number;
  readonly main: number;
  readonly rest: number;
  readonly load: Load;
  /** the load generator's CPU per answer, µs */
  readonly client: number;
}

/** autocannon with the serve bench's options, with the load generator's CPU per answer (serve.ts autocannonApi). */
function loadWithClientCpu(url: string, o: { seconds: number; connections: number; headers?: Record<string, string> }): Promise<Load & { clientUs: number }> {
  return autocannonApi({ url, seconds: o.seconds, connections: o.connections, headers: { ...auth, ...o.headers } });
}

/**
 * The same load from wrk (AB_CLIENT=wrk: one thread, C), whose CPU per answer is a fraction of autocannon's: the
 * server is then the one limit, and its CPU per answer is measured at its own saturation for both kinds of answer.
 */
function wrkLoad(url: string, o: { seconds: number; connections: number; headers?: Record<string, string> }): Promise<Load & { clientUs: number }> {
  return new Promise((resolve, reject) => {
    const hs = Object.entries({ ...auth, ...o.headers }).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
    const child = spawn("wrk", ["-t1", `-c${o.connections}`, `-d${o.seconds}s`, ...hs, url], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const n = /(\d+) requests in/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      if (code !== 0 || !m || !n) return reject(new Error(`wrk exited ${code}: ${out.slice(-300)}`));
      const rps = Number(m[1]);
      // wrk counts a 304 as non-2xx-or-3xx? No: 3xx pass; the statuses are not split, so a 304 load reports none.
      resolve({ rps, bytesPerSec: 0, non2xx, errors: errors ? errors.slice(1).reduce((t, x) => t + Number(x), 0) : 0, statuses: { "304": o.headers?.["if-none-match"] ? Number(n[1]) : 0 }, clientUs: NaN });
    });
  });
}

/** One load on `url` with the server's CPU per answer over it. */
async function measured(pid: number, url: string, o: { seconds: number; connections: number; headers?: Record<string, string> }, perfOut?: string): Promise<Measured> {
  const a = threadCpu(pid);
  const t0 = performance.now();
  let perf: ChildProcess | undefined;
  if (perfOut) perf = spawn("perf", ["record", "-e", "cpu-clock", "-F", "1999", "-g", "-p", String(pid), "-o", perfOut, "--", "sleep", String(o.seconds)], { stdio: "ignore" });
  const load = await (process.env.AB_CLIENT === "wrk" ? wrkLoad(url, o) : loadWithClientCpu(url, o));
  const secs = (performance.now() - t0) / 1000;
  const b = threadCpu(pid);
  if (perf && perf.exitCode === null) await new Promise((r) => perf!.once("exit", r));
  const answers = load.rps * secs;
  let main = 0;
  let rest = 0;
  for (const [tid, s] of b) {
    const used = s - (a.get(tid) ?? 0);
    if (tid === pid) main += used;
    else rest += used;
  }
  const per = (s: number) => (s / answers) * 1e6;
  return { rps: load.rps, us: per(main + rest), main: per(main), rest: per(rest), load, client: load.clientUs };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

async function main(): Promise<void> {
  const builds = process.argv.slice(2).filter((a) => a !== "--run-module" && !a.endsWith("ocsp-ab.js"));
  if (!builds.length) {
    console.error("usage: ocsp-ab.js BUILD[|VAR=VALUE,…] …");
    process.exit(2);
  }
  const rounds = Number(process.env.AB_ROUNDS ?? 6);
  const seconds = Number(process.env.AB_SECONDS ?? 5);
  const connections = Number(process.env.AB_CONNECTIONS ?? 50);
  const perfDir = process.env.AB_PERF;
  const [backend, ...others] = await openBackends((l) => console.error(l));
  if (!backend || others.length) throw new Error("JPKI_BENCH_BACKENDS: name one backend (sqlite or postgres)");
  const dir = mkdtempSync(join(tmpdir(), "jpki-ocsp-ab-"));
  const children: ChildProcess[] = [];
  try {
    const { ws, env: storeEnv } = await backend.workspace(join(dir, "ws"), { verifierRateLimit: { perSecond: 1_000_000, burst: 10_000_000 } });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "bench" });
      await generateCrls(ws, { prefecture: "13", passphrase: "bench" });
      const token = (await registerVerifier(ws, { name: "bench", kind: "government" })).token!;
      useToken(token);
      auth = { authorization: `Bearer ${token}` };
      await ocspRequests(ws, dir);
    } finally {
      await ws.close();
    }
    writeFileSync(join(dir, "small.crl"), readFileSync(join(dir, "ws", "crl", "13-sig.crl")));
    const barePort = await freePort();
    const bare = await start(["-e", BARE, String(barePort), join(dir, "small.crl")]);
    children.push(bare);
    const bareUrl = `http://127.0.0.1:${barePort}/crl/13-sig.crl`;
    const bareEtag = (await head(bareUrl)).etag;
    const getPath = `/ocsp/13-sig/${encodeURIComponent(readFileSync(join(dir, "req.der")).toString("base64"))}`;

    const bares: number[] = [];
    const results = new Map<string, Array<{ get: Measured; n304: Measured; ratio: number }>>(builds.map((b) => [b, []]));
    for (let r = 0; r < rounds; r++) {
      const bare304 = await measured(bare.pid!, bareUrl, { seconds, connections, headers: { "if-none-match": bareEtag } });
      bares.push(bare304.rps);
      console.log(`round ${r + 1} bare 304: ${bare304.rps.toFixed(0)}/s, ${bare304.us.toFixed(1)} µs CPU an answer, client ${bare304.client.toFixed(1)} µs`);
      for (const build of r % 2 ? [...builds].reverse() : builds) {
        const [bdir, vars = ""] = build.split("|");
        const env = { ...process.env, ...storeEnv, JPKI_PASSPHRASE: "bench", ...Object.fromEntries(vars.split(",").filter(Boolean).map((v) => [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)])) };
        const port = await freePort();
        const child = await start([join(bdir!, "bin/jpki.cjs"), "--workspace", join(dir, "ws"), "serve", "--listen", `127.0.0.1:${port}`, "--access-log", join(dir, "access.log")], env);
        try {
          const url = `http://127.0.0.1:${port}`;
          const first = await head(`${url}${getPath}`);
          if (first.status !== 200) throw new Error(`${build}: the GET answered ${first.status}`);
          await loadWithClientCpu(`${url}${getPath}`, { seconds: 2, connections }); // warm-up: the JIT, the pre-produced answer
          const label = `${r + 1}-${builds.indexOf(build)}`;
          const get = await measured(child.pid!, `${url}${getPath}`, { seconds, connections }, perfDir ? join(perfDir, `get-${label}.data`) : undefined);
          const etag = (await head(`${url}/crl/13-sig.crl`)).etag;
          const n304 = await measured(child.pid!, `${url}/crl/13-sig.crl`, { seconds, connections, headers: { "if-none-match": etag } }, perfDir ? join(perfDir, `304-${label}.data`) : undefined);
          const bad = get.load.non2xx + get.load.errors + n304.load.errors + (n304.load.statuses["304"] === undefined ? 1 : 0);
          results.get(build)!.push({ get, n304, ratio: get.rps / bare304.rps });
          console.log(
            `round ${r + 1} ${build}: GET ${get.rps.toFixed(0)}/s = ${(get.rps / bare304.rps).toFixed(2)}× bare 304 ${bare304.rps.toFixed(0)}/s, ${get.us.toFixed(1)} µs CPU a GET (main ${get.main.toFixed(1)}, rest ${get.rest.toFixed(1)}; client ${get.client.toFixed(1)}); ` +
              `its 304 ${n304.rps.toFixed(0)}/s, ${n304.us.toFixed(1)} µs (main ${n304.main.toFixed(1)}, rest ${n304.rest.toFixed(1)}; client ${n304.client.toFixed(1)})${bad ? `; ${bad} errors or non-2xx` : ""}`,
          );
        } finally {
          await stop(child);
        }
      }
    }
    console.log(`bare 304: median ${median(bares).toFixed(0)}/s (${Math.min(...bares).toFixed(0)}–${Math.max(...bares).toFixed(0)}) [${backend.name}]`);
    for (const [build, rs] of results) {
      const m = (f: (x: (typeof rs)[number]) => number, d = 1) => median(rs.map(f)).toFixed(d);
      const span = (f: (x: (typeof rs)[number]) => number, d = 1) => `${Math.min(...rs.map(f)).toFixed(d)}–${Math.max(...rs.map(f)).toFixed(d)}`;
      console.log(
        `${build} [${backend.name}]: GET median ${m((x) => x.get.rps, 0)}/s, ${m((x) => x.ratio, 2)}× bare (${span((x) => x.ratio, 2)}), ${m((x) => x.get.us)} µs a GET (${span((x) => x.get.us)}; main ${m((x) => x.get.main)}, rest ${m((x) => x.get.rest)}; client ${m((x) => x.get.client)}); ` +
          `304 median ${m((x) => x.n304.rps, 0)}/s, ${m((x) => x.n304.us)} µs (${span((x) => x.n304.us)}; main ${m((x) => x.n304.main)}, rest ${m((x) => x.n304.rest)}; client ${m((x) => x.n304.client)})`,
      );
    }
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await backend.cleanup();
    await backend.close();
  }
}

await main();
