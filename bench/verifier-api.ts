/**
 * Verifier API benchmark (issue 11 point 5): `POST /v1/validate` answers per second from a real `jpki serve`
 * process over loopback, next to the validation engine's in-process rate measured in the same run on the same
 * workspace (validateJpki with the same trust anchors, CRLs and a warm CRL index; target ≥ 0.5×). The
 * disclosure log is on, as it always is: every HTTP answer is recorded in the store before it is sent.
 *
 * The note adds batched liveness checks (`POST /v1/status`, batches of STATUS_BATCH, the link asked for) in
 * items per second over HTTP next to checkStatus in-process on the same batches (no target set), the service in-process (VerifierValidationService.validate: the engine, the store lookups and
 * the disclosure log, 64 in flight), what the load got (statuses: a 4xx/5xx answer is cheap and would flatter
 * the rate, so they are counted and a run with any is flagged), and the disclosure records written.
 *
 * Setup (not timed): one prefecture's signature CA, CERTS residents with a signature certificate each (one
 * shared RSA-2048 key: the bench measures the API, not key generation), a quarter of them revoked, the CRLs
 * generated, a government body registered as verifier (its bearer token on every request). The requests
 * rotate through the certificates, so the answers are both "valid" and "revoked". Load: wrk where it is installed
 * (bench/wrk-load.ts), else bench/http-load.ts, in its own process — a closed loop on keep-alive connections; on
 * these 2 cores the generator's CPU is taken from the server (autocannon cost a fifth of it per answer, http-load
 * ≈ 35–45 µs, wrk ≈ 20), so the lightest one sets the rate, and one run of each other generator is printed beside it
 * as a cross-check — 32 connections, `seconds` per run, the server with one worker (as the engine runs on one thread).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cardPublicKeys } from "./card-keys.js";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { IssuanceService } from "../src/ca/issuance.js";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { revokeCertificate } from "../src/ca/revocation.js";
import { generateCrls } from "../src/crl/generate.js";
import { toPem } from "../src/pki/pem.js";
import { generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord } from "../src/registry/resident.js";
import { CrlIndexCache } from "../src/validation/crl-index-cache.js";
import { validateJpki } from "../src/validation/jpki.js";
import { parseCertificate } from "../src/validation/certificate.js";
import { certificateId, checkStatus } from "../src/verifier/liveness.js";
import { publishedCrlPaths, VerifierValidationService } from "../src/verifier/validation-service.js";
import { ENGINE_CRL_CACHE } from "../src/verifier/engine-thread.js";
import { registerVerifier } from "../src/verifier/registration.js";
import type { Backend } from "./backends.js";
import type { BenchResult } from "./issue.js";
import type { LoadResult, LoadSpec } from "./http-load.js";
import { profiled } from "./profile.js";
import { runWrk, wrkAvailable } from "./wrk-load.js";
import { baselineCaveat, syncRate, type SyncSample } from "./baseline.js";
import { freePort, start, stop } from "./serve.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
const BIN = join(ROOT, "bin", "jpki.cjs");
const CERTS = 64;
/** Items per liveness-check batch. */
const STATUS_BATCH = 100;
const log = (s: string) => {
  if (process.env.JPKI_BENCH_QUIET !== "1") console.error(`  [verifier-api] ${s}`);
};

interface Load {
  readonly rps: number;
  /** answers in the run, and CPU seconds autocannon's process used for them */
  readonly total: number;
  readonly loadCpu: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
}

/** autocannon (its API, in a child process) POSTing JSON bodies in rotation. */
function autocannonJson(url: string, bodiesFile: string, headers: Record<string, string>, o: { seconds: number; connections: number }): Promise<Load> {
  // The bodies come from a file: a command line holding them all would pass the kernel's argument limit.
  const script = `
    const autocannon = require(${JSON.stringify(join(ROOT, "node_modules", "autocannon"))});
    const bodies = JSON.parse(require("node:fs").readFileSync(${JSON.stringify(bodiesFile)}, "utf8"));
    autocannon({ url: ${JSON.stringify(url)}, connections: ${o.connections}, duration: ${o.seconds},
      requests: bodies.map((body) => ({ method: "POST", body, headers: { "content-type": "application/json", ...${JSON.stringify(headers)} } })) },
      (e, r) => { if (e) { console.error(e); process.exit(1); } const c = process.cpuUsage(); console.log(JSON.stringify({ ...r, cpu: (c.user + c.system) / 1e6 })); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as { requests: { average: number; total: number }; errors: number; cpu: number; statusCodeStats?: Record<string, { count: number }> };
      resolve({ rps: r.requests.average, total: r.requests.total, loadCpu: r.cpu, errors: r.errors, statuses: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])) });
    });
  });
}

/** bench/http-load.ts in a child process: the same closed loop as autocannon at a fifth of its CPU per request. */
function rawLoad(url: string, bodies: readonly string[], headers: Record<string, string>, o: { seconds: number; connections: number }, specFile: string): Promise<Load> {
  const u = new URL(url);
  const spec: LoadSpec = { host: u.hostname, port: Number(u.port), path: u.pathname, headers: { "content-type": "application/json", ...headers }, bodies, ...o };
  writeFileSync(specFile, JSON.stringify(spec));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("./http-load.js", import.meta.url)), specFile], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`http-load exited ${code}`));
      const r = JSON.parse(out) as LoadResult;
      resolve({ rps: r.rps, total: r.total, loadCpu: r.cpu, errors: r.errors, statuses: r.statuses });
    });
  });
}

/** wrk (bench/wrk-load.ts) with the same spec as rawLoad. */
function wrkLoad(url: string, bodies: readonly string[], headers: Record<string, string>, o: { seconds: number; connections: number }, scriptFile: string): Promise<Load> {
  const u = new URL(url);
  return runWrk({ host: u.hostname, port: Number(u.port), path: u.pathname, headers: { "content-type": "application/json", ...headers }, bodies, ...o }, scriptFile).then((r) => ({ rps: r.rps, total: r.total, loadCpu: r.cpu, errors: r.errors, statuses: r.statuses }));
}

/** Answers of a run that were not a success (a 4xx/5xx is cheap and would flatter the rate), and socket errors. */
function failures(r: Pick<Load, "errors" | "statuses">): number {
  return r.errors + Object.entries(r.statuses).filter(([k]) => k !== "200" && k !== "2xx").reduce((t, [, v]) => t + v, 0);
}

/** CPU seconds each thread of a process has used so far, by thread id (Linux /proc; undefined elsewhere). */
function cpuOf(pid: number | undefined): Map<number, { cpu: number }> | undefined {
  try {
    if (pid === undefined) return undefined;
    const out = new Map<number, { cpu: number }>();
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      out.set(Number(t), { cpu: (Number(f[11]) + Number(f[12])) / 100 });
    }
    return out;
  } catch {
    return undefined;
  }
}

/**
 * A run under load with the server's CPU over it: µs per answer on all its threads, on its main thread, on the
 * busiest other thread (the engine's) and on the rest (V8's GC and compiler helpers, libuv's pool, the
 * checkpointer: node 20 leaves its threads unnamed, so they cannot be told apart).
 */
async function measuredLoad(server: ChildProcess, run: () => Promise<Load>, dbCpu?: () => { readonly backends: number; readonly background: number }): Promise<Load & { serverMainUs?: number; serverAllUs?: number; threads?: string }> {
  const a = cpuOf(server.pid);
  const dbA = dbCpu?.();
  const r = await run();
  const b = cpuOf(server.pid);
  const dbB = dbCpu?.();
  const perAnswer = (s: number) => (s / Math.max(1, r.total)) * 1e6;
  const db = dbA && dbB ? { backends: perAnswer(dbB.backends - dbA.backends), background: perAnswer(dbB.background - dbA.background) } : undefined;
  if (!a || !b || !r.total) return r;
  const used = [...b].map(([tid, t]) => ({ tid, us: ((t.cpu - (a.get(tid)?.cpu ?? 0)) / r.total) * 1e6 }));
  const main = used.find((t) => t.tid === server.pid)?.us ?? 0;
  const others = used.filter((t) => t.tid !== server.pid).sort((x, y) => y.us - x.us);
  const rest = others.slice(1).reduce((s, t) => s + t.us, 0);
  const all = used.reduce((s, t) => s + t.us, 0);
  return { ...r, serverMainUs: main, serverAllUs: all, threads: `main ${main.toFixed(0)}, busiest other ${(others[0]?.us ?? 0).toFixed(0)}, the rest ${rest.toFixed(0)}${db ? `; PostgreSQL's processes ${(db.backends + db.background).toFixed(0)} µs (backends ${db.backends.toFixed(0)}, walwriter and the server's other own processes ${db.background.toFixed(0)})` : ""}` };
}

/** One POST, to check what the load will get. */
function postOnce(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      let s = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (s += c));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(s) as Record<string, unknown> }));
    });
    req.on("error", reject);
    req.end(body);
  });
}


/** Calls `f` for `seconds` with `inFlight` calls at once; calls per second. */
async function asyncRate(seconds: number, inFlight: number, f: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() - t0 < seconds * 1000) await f(n++);
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

export async function benchVerifierApi(backend: Backend, opts: { seconds?: number; connections?: number } = {}): Promise<BenchResult> {
  const seconds = opts.seconds ?? 5;
  const connections = opts.connections ?? 32;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-api-"));
  let child: ChildProcess | undefined;
  try {
    const { ws, env: storeEnv } = await backend.workspace(join(dir, "ws"), { verifierRateLimit: { perSecond: 1_000_000, burst: 10_000_000 } });
    const certs: Buffer[] = [];
    let statusBatches: Array<{ items: unknown[]; link: boolean }> = [];
    let statusInProcess: number;
    let token: string;
    let engineFirst: SyncSample[];
    /** One more sample of the engine's rate (the host's speed drifts: see where the runs go). */
    let engineAgain: () => SyncSample = () => ({ rate: 0, share: undefined });
    let service: number;
    let written: number;
    let crlCount = 0;
    try {
      log("setup: a CA, certificates, CRLs, a verifier");
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "bench" });
      const residents = [...generateResidents({ count: CERTS, seed: "bench-api", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now: ws.clock.now() }));
      await ws.store.upsertResidents(residents);
      const issuance = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: "bench" });
      const keys = cardPublicKeys(residents.length);
      for (const [i, r] of residents.entries()) {
        const c = await issuance.issue({ residentCode: r.residentCode, type: "signature", publicKey: keys[i]! });
        certs.push(c.der);
        if (i % 4 === 3) await revokeCertificate(ws.store, { serial: c.serial, reason: "keyCompromise", at: ws.clock.now() });
      }
      // With the municipality partitions and the ARL, as a serving workspace has them (the schedule of 'jpki serve'
      // would publish them): the server and the in-process engine below validate against the same set from the start.
      await generateCrls(ws, { prefecture: "13", passphrase: "bench", partitions: "all" });
      // Batches of STATUS_BATCH items, half named by certificate id and half by CA and serial, the link asked for.
      statusBatches = Array.from({ length: 16 }, (_, b) => ({
        link: true,
        items: Array.from({ length: STATUS_BATCH }, (_, k) => {
          const der = certs[(b * 7 + k) % CERTS]!;
          return k % 2 ? { certificateId: certificateId(der) } : { caId: "13-sig", serial: parseCertificate(der).serialHex.replace(/^00/, "") };
        }),
      }));
      const verifier = await registerVerifier(ws, { name: "bench-api", kind: "government" });
      token = verifier.token!;

      // The engine in-process: the same anchors and CRL files the server reads (the full CRL, the municipality
      // partitions, the ARL: publishedCrlPaths), frozen as the server's engine holds them, the index warm and as
      // large as the engine's. (It once read only the full CRL: a quarter of the server's set, and a default index
      // of 8 CRLs, which a set of 26 would have made parse on every call.)
      const anchors = Object.freeze((await ws.store.listCas()).map((c) => c.certificateDer));
      const crlPaths = await publishedCrlPaths(ws);
      const crls = Object.freeze(crlPaths.map((p) => readFileSync(p)));
      crlCount = crls.length;
      const crlIndex = new CrlIndexCache(ENGINE_CRL_CACHE);
      const at = ws.clock.now();
      const check = (i: number) => validateJpki({ certificate: certs[i % CERTS]!, purpose: "signature", trustAnchors: anchors, crls, crlIndex, at });
      if (check(0).status !== "valid" || check(3).status !== "revoked") throw new Error(`verifier-api bench: the engine says ${check(0).status} and ${check(3).status}, expected valid and revoked`);
      engineFirst = [syncRate(seconds / 2, check), syncRate(seconds / 2, check)];
      engineAgain = () => syncRate(seconds / 2, check);

      // The service in-process: engine, store lookups and the disclosure log (group commits).
      const svc = new VerifierValidationService(ws);
      service = await profiled("verifier-api-service", () => asyncRate(seconds / 2, 64, (i) => svc.validate(verifier.record, { certificate: certs[i % CERTS]!, purpose: "signature" })));
      await svc.close();
      written = svc.disclosureLog.written;

      // Liveness checks in-process: checkStatus on the same batches the server will get (its own records, one write each).
      const inFlight = 8;
      statusInProcess = await asyncRate(seconds / 2, inFlight, (i) => checkStatus(ws, verifier.record, statusBatches[i % statusBatches.length]!));
      statusInProcess *= STATUS_BATCH;
    } finally {
      await ws.close();
    }

    const port = await freePort();
    // JPKI_BENCH_PROFILE: the server's profile too (node writes it when the process exits on SIGTERM).
    const prof = process.env.JPKI_BENCH_PROFILE;
    child = await start([...(prof ? ["--cpu-prof", "--cpu-prof-dir", prof] : []), BIN, "--workspace", join(dir, "ws"), "serve", "--listen", `127.0.0.1:${port}`, "--workers", "1", "--access-log", join(dir, "access.log")], {
      ...process.env,
      ...storeEnv,
      JPKI_PASSPHRASE: "bench",
    });
    const url = `http://127.0.0.1:${port}/v1/validate`;
    const auth = { authorization: `Bearer ${token}` };
    const bodies = certs.map((c) => JSON.stringify({ certificate: toPem(c, "CERTIFICATE"), purpose: "signature" }));
    const bodiesFile = join(dir, "bodies.json");
    writeFileSync(bodiesFile, JSON.stringify(bodies));
    const first = await postOnce(url, bodies[0]!, auth);
    const revoked = await postOnce(url, bodies[3]!, auth);
    if (first.status !== 200 || first.json.status !== "valid" || revoked.json.status !== "revoked") {
      throw new Error(`verifier-api bench: the server answered ${first.status} ${String(first.json.status)} and ${revoked.status} ${String(revoked.json.status)}, expected 200 valid and revoked`);
    }
    // Liveness checks over HTTP: the same batches in rotation.
    const statusUrl = `http://127.0.0.1:${port}/v1/status`;
    const statusFile = join(dir, "status.json");
    writeFileSync(statusFile, JSON.stringify(statusBatches.map((b) => JSON.stringify(b))));
    const statusFirst = await postOnce(statusUrl, JSON.stringify(statusBatches[0]), auth);
    const statusItems = statusFirst.json.items as Array<{ status?: string }> | undefined;
    if (statusFirst.status !== 200 || statusItems?.length !== STATUS_BATCH || statusItems.some((i) => i.status !== "good" && i.status !== "revoked")) {
      throw new Error(`verifier-api bench: POST /v1/status answered ${statusFirst.status}, not ${STATUS_BATCH} good or revoked items`);
    }
    const runs: Array<Awaited<ReturnType<typeof measuredLoad>>> = [];
    // The database server's CPU: the bench's server only (a host-wide sum of every `postgres` process also took in
    // the servers of test runs beside the bench: 9–36 µs per answer of a measured 81–99 on 2026-12-06).
    const dbCpu = backend.serverCpu?.bind(backend);
    const specFile = join(dir, "load.json");
    // The load: wrk where it is installed (≈ 20 µs of CPU per request), else bench/http-load.ts (≈ 35–45).
    const useWrk = wrkAvailable();
    const loadName = useWrk ? "wrk, one thread" : "bench/http-load.ts";
    const primary = () => (useWrk ? wrkLoad(url, bodies, auth, { seconds, connections }, join(dir, "load.lua")) : rawLoad(url, bodies, auth, { seconds, connections }, specFile));
    // Warm-up, not counted, as long as a run: the server's JIT (its optimizing compiles run on other threads and
    // were still at work through a 2 s warm-up) and the engine thread's CRL index; the in-process baseline is warm too.
    await primary();
    // JPKI_BENCH_API_HOLD=SECONDS: the warm server stays up that long before the runs, for a profiler or a tracer
    // (`node dist/bench/http-load.js SPEC` drives it by hand).
    const hold = Number(process.env.JPKI_BENCH_API_HOLD ?? 0);
    if (hold > 0) {
      log(`hold: jpki serve pid ${child.pid}, load spec ${specFile}, for ${hold} s`);
      await new Promise((r) => setTimeout(r, hold * 1000));
    }
    // The baseline is sampled again after each run and the best kept, as the best run is: this host's speed drifts
    // by ±20 % over minutes, and a baseline measured only before the runs made the ratio swing with it. Three runs:
    // with two, one slow spell of the host (CPU per answer 190 → 250–320 µs for ten seconds at a time, seen in
    // hand runs on 2026-12-05) decided the rate, while the baseline had four samples (two before, one after each run).
    const engineSamples = [engineFirst.reduce((a, b) => (b.rate > a.rate ? b : a))];
    for (let i = 0; i < 3; i++) {
      runs.push(await measuredLoad(child, primary, dbCpu));
      engineSamples.push(engineAgain());
    }
    const engine = Math.max(...engineSamples.map((x) => x.rate));
    const caveat = baselineCaveat(engineSamples, loadavg()[0]!, cpus().length);
    // The same load from the other generators, as a cross-check of the first (and of what each costs).
    const light = useWrk ? await measuredLoad(child, () => rawLoad(url, bodies, auth, { seconds, connections }, specFile), dbCpu) : undefined;
    const cannon = await measuredLoad(child, () => autocannonJson(url, bodiesFile, auth, { seconds, connections }), dbCpu);
    const statusRun = await rawLoad(statusUrl, statusBatches.map((b) => JSON.stringify(b)), auth, { seconds, connections: 8 }, specFile);
    const statusBad = failures(statusRun);
    await stop(child);
    // The same with --workers 2 (a deployment runs a worker per core): on these 2 cores the load generator shares them.
    const port2 = await freePort();
    child = await start([BIN, "--workspace", join(dir, "ws"), "serve", "--listen", `127.0.0.1:${port2}`, "--workers", "2", "--access-log", join(dir, "access-2.log")], { ...process.env, ...storeEnv, JPKI_PASSPHRASE: "bench" });
    const url2 = `http://127.0.0.1:${port2}/v1/validate`;
    for (let i = 0; i < 100; i++) {
      try {
        if ((await postOnce(url2, bodies[0]!, auth)).status === 200) break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // The same load as the runs above (wrk where installed): from bench/http-load.ts, whose own CPU shares the cores,
    // --workers 2 measured 2,983/s against wrk's 6,500–7,100/s (2026-12-05) — the generator's cost, not the server's.
    const workers2 = await (useWrk ? wrkLoad(url2, bodies, auth, { seconds, connections }, join(dir, "load-2.lua")) : rawLoad(url2, bodies, auth, { seconds, connections }, specFile));
    const best = runs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const bad = runs.reduce((s, r) => s + failures(r), 0);
    const us = (x: number | undefined) => (x === undefined ? "?" : x.toFixed(0));
    const cannonBad = failures(cannon);
    const note = [
      `cpu       per answer (best run): server ${us(best.serverAllUs)} µs (${best.threads ?? "?"}); load generator ${us((best.loadCpu / best.total) * 1e6)} µs; engine ${(1e6 / engine).toFixed(0)} µs`,
      `runs      ${runs.map((r) => r.rps.toFixed(0)).join(", ")} answers/s over HTTP (${seconds} s each, ${connections} connections, one worker, certificates in rotation, ${CERTS / 4} of ${CERTS} revoked; load: ${loadName})${bad ? ` — ${bad} answers were not 200 or failed: the rate is suspect` : ", every answer 200"}`,
      ...(light ? [`http-load the same load from bench/http-load.ts: ${light.rps.toFixed(0)} answers/s (${(light.rps / engine).toFixed(2)}×), server ${us(light.serverAllUs)} µs and the generator ${us((light.loadCpu / light.total) * 1e6)} µs of CPU per answer${failures(light) ? `; ${failures(light)} answers not 200 or failed` : ""}`] : []),
      `autocannon the same load from autocannon: ${cannon.rps.toFixed(0)} answers/s (${(cannon.rps / engine).toFixed(2)}×), server ${us(cannon.serverAllUs)} µs and autocannon ${us((cannon.loadCpu / cannon.total) * 1e6)} µs of CPU per answer${cannonBad ? `; ${cannonBad} answers not 200 or failed` : ""}`,
      `workers   --workers 2: ${workers2.rps.toFixed(0)} answers/s = ${(workers2.rps / engine).toFixed(2)}× the engine on one thread (2 cores shared with the load generator: ${loadName})`,
      `service   in-process (engine + store lookups + disclosure log, 64 in flight): ${service.toFixed(0)} /s = ${(best.rps / service).toFixed(2)}× of it over HTTP; ${written} disclosure records written in-process`,
      `status    POST /v1/status, batches of ${STATUS_BATCH} (link asked, government view): ${statusRun.rps.toFixed(1)} batches/s = ${(statusRun.rps * STATUS_BATCH).toFixed(0)} items/s over HTTP (8 connections${statusBad ? `; ${statusBad} answers not 200 or failed` : ""}) vs checkStatus in-process ${statusInProcess.toFixed(0)} items/s (8 in flight): ${((statusRun.rps * STATUS_BATCH) / statusInProcess).toFixed(2)}× (no target)`,
      `engine    validateJpki in-process on one thread, warm CRL index, the server's ${crlCount} CRL files: ${engine.toFixed(0)} /s (best of ${engineSamples.map((e) => `${e.rate.toFixed(0)}${e.share === undefined ? "" : ` [${(e.share * 100).toFixed(0)} % of a core]`}`).join(", ")}: before the server and after each run)`,
    ].join("\n");
    return {
      name: `verifier API: POST /v1/validate over loopback, disclosure log on [${backend.name}]`,
      ours: best.rps,
      baseline: engine,
      unit: "answers/s",
      baselineName: "validations/s by the engine in-process (validateJpki, same certificates, anchors and CRLs, one thread)",
      target: 0.5,
      note,
      ...(caveat ? { caveat } : {}),
    };
  } finally {
    if (child) await stop(child).catch(() => undefined);
    // JPKI_BENCH_KEEP: the workspace (ws/), wrk's script (load.lua) and the bodies stay, for bench/api-ab.ts.
    if (process.env.JPKI_BENCH_KEEP) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
