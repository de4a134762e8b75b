/**
 * `jpki serve` benchmark (issue 9 point 8): 304 answers per second from a real `jpki serve` process next to a
 * bare node:http server answering 304 on the same cores (target ≥ 0.8×), the same with --workers, full
 * small-CRL 200s per second, OCSP GETs answered from pre-produced responses (target ≥ 0.5× the bare 304 rate)
 * and OCSP requests with a nonce (signed each time; printed against raw RSA signs/s), and a 50 MB CRL's
 * download throughput. Load comes from autocannon in its own
 * process, on loopback, for a few seconds per run; each server is a separate process as in production (the
 * access log on, to a file).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { IssuanceService } from "../src/ca/issuance.js";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { buildCrl } from "../src/crl/builder.js";
import { generateCrls, openCrlIssuer } from "../src/crl/generate.js";
import { encodeEntry } from "../src/profile/crl-entry.js";
import { generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord } from "../src/registry/resident.js";
import { stageFile } from "../src/store/staging.js";
import { registerVerifier } from "../src/verifier/registration.js";
import type { Workspace } from "../src/workspace/workspace.js";
import type { Backend } from "./backends.js";
import type { BenchResult } from "./issue.js";
import { threadCpu } from "./threads.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
const BIN = join(ROOT, "bin", "jpki.cjs");
const AUTOCANNON = join(ROOT, "node_modules", "autocannon", "autocannon.js");

/**
 * jpki serve answers registered verifiers (署名検証者) only: every request of the bench carries a verifier's
 * bearer token (so each 304 pays for the token check, the rate limit and a fetch record). The bare server
 * gets the same header and ignores it.
 */
let AUTH: Record<string, string> = {};

/** The verifier token every request of the bench's loads carries from now on (bench/ocsp-ab.ts sets its own). */
export function useToken(token: string): void {
  AUTH = { authorization: `Bearer ${token}` };
}

export const BARE = `
const http = require("node:http");
const body = require("node:fs").readFileSync(process.argv[2]);
const etag = '"bare"';
// The same headers a 304 (and a 200) from jpki serve carries, so the comparison is of the servers, not of the
// headers: a 304 has only ETag and Cache-Control (RFC 9110 §15.4.5; Date is node's), a 200 the validators too.
const notModified = { ETag: etag, "Cache-Control": "public, max-age=300" };
const validators = { ...notModified, "Last-Modified": new Date().toUTCString(), "Accept-Ranges": "bytes" };
http.createServer((req, res) => {
  if (req.headers["if-none-match"] === etag) { res.writeHead(304, notModified); res.end(); return; }
  res.writeHead(200, { ...validators, "Content-Type": "application/pkix-crl", "Content-Length": body.length }); res.end(body);
}).listen(Number(process.argv[1]), "127.0.0.1", () => console.error("listening"));
`;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a server process and resolves when it says it listens (for --workers, when every worker answers). */
export async function start(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      err += d;
      if (/listening/.test(err)) resolve();
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  return child;
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

export interface Load {
  readonly rps: number;
  readonly bytesPerSec: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly statuses: Record<string, number>;
}

export function autocannon(url: string, o: { seconds: number; connections: number; headers?: Record<string, string> }): Promise<Load> {
  const args = [AUTOCANNON, "-j", "-c", String(o.connections), "-d", String(o.seconds), ...Object.entries({ ...AUTH, ...o.headers }).flatMap(([k, v]) => ["-H", `${k}=${v}`]), url];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    // 'close', not 'exit': the JSON parsed next can still be in the pipe when the exit is seen.
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      resolve(loadOf(JSON.parse(out) as AutocannonResult));
    });
  });
}

/** The part of autocannon's result (CLI -j or API) the benches read. */
interface AutocannonResult {
  requests: { average: number; total: number };
  throughput: { average: number; total: number };
  non2xx: number;
  errors: number;
  statusCodeStats?: Record<string, { count: number }>;
}

function loadOf(r: AutocannonResult): Load {
  return {
    rps: r.requests.average,
    bytesPerSec: r.throughput.average,
    non2xx: r.non2xx,
    errors: r.errors,
    statuses: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  };
}

/**
 * autocannon through its API in a child process: for what the CLI cannot send (a binary body: its -i reads the body
 * as text) and for what it does not report (its own CPU). Returns the mean answer size too, so an error answer
 * (small, unsigned) cannot pass for a signed one, and the load generator's CPU per answer in µs: on a 2-core host it
 * shares with the server, what the client spends on an answer is taken from the server's share.
 */
export function autocannonApi(o: { url: string; seconds: number; connections: number; headers: Record<string, string>; method?: string; body?: Buffer }): Promise<Load & { meanBytes: number; clientUs: number }> {
  const { seconds, body, ...options } = o;
  const script = `
    const autocannon = require(${JSON.stringify(join(ROOT, "node_modules", "autocannon"))});
    const o = ${JSON.stringify({ ...options, duration: seconds })};
    ${body ? `o.body = Buffer.from(${JSON.stringify(body.toString("base64"))}, "base64");` : ""}
    const c0 = process.cpuUsage();
    autocannon(o, (e, r) => { if (e) { console.error(e); process.exit(1); } const c = process.cpuUsage(c0); console.log(JSON.stringify({ r, cpu: c.user + c.system })); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const { r, cpu } = JSON.parse(out) as { cpu: number; r: AutocannonResult };
      const total = Math.max(1, r.requests.total);
      resolve({ ...loadOf(r), meanBytes: r.throughput.total / total, clientUs: cpu / total });
    });
  });
}

/** autocannon POSTing one binary body (an OCSP request) over and over. */
function autocannonPost(url: string, body: Buffer, o: { seconds: number; connections: number }): Promise<Load & { meanBytes: number }> {
  return autocannonApi({ url, method: "POST", body, headers: { "content-type": "application/ocsp-request", ...AUTH }, ...o });
}

/**
 * Whole downloads of one URL, `parallel` at a time, for `seconds`: bytes per second. autocannon parses every
 * body in JavaScript and measured its own limit (≈ 40 MB/s) rather than the server's.
 */
async function downloads(url: string, o: { seconds: number; parallel: number }): Promise<{ bytesPerSec: number; perSec: number }> {
  const until = performance.now() + o.seconds * 1000;
  let bytes = 0;
  let count = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.parallel }, async () => {
      while (performance.now() < until) {
        bytes += (await head(url)).size;
        count++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { bytesPerSec: bytes / secs, perSec: count / secs };
}

/** One full GET: status, ETag and the body's size, to check what the load hits. */
export function head(url: string): Promise<{ status: number; etag: string; size: number }> {
  return new Promise((resolve, reject) => {
    request(url, { headers: AUTH }, (res) => {
      let size = 0;
      res.on("data", (c: Buffer) => (size += c.length));
      res.on("end", () => resolve({ status: res.statusCode!, etag: String(res.headers.etag), size }));
    })
      .on("error", reject)
      .end();
  });
}

/**
 * One signature certificate issued by 13-sig, and two OCSP requests for it made by openssl: without a nonce
 * (answered from the pre-produced cache) and with one (signed fresh each time).
 */
export async function ocspRequests(ws: Workspace, dir: string): Promise<void> {
  const [resident] = [...generateResidents({ count: 1, seed: "bench-serve", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now: ws.clock.now() }));
  await ws.store.upsertResidents([resident!]);
  const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: "bench" });
  const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
  const cert = await service.issue({ residentCode: resident!.residentCode, type: "signature", publicKey: spki });
  const pem = (der: Buffer, label: string) => `-----BEGIN ${label}-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
  writeFileSync(join(dir, "ee.pem"), pem(cert.der, "CERTIFICATE"));
  writeFileSync(join(dir, "ca.pem"), pem((await ws.store.getCa("13-sig"))!.certificateDer, "CERTIFICATE"));
  const req = (extra: string[], out: string) =>
    execFileSync("openssl", ["ocsp", "-issuer", join(dir, "ca.pem"), "-cert", join(dir, "ee.pem"), ...extra, "-reqout", join(dir, out)], { stdio: ["ignore", "ignore", "pipe"] });
  req(["-no_nonce"], "req.der");
  req([], "req-nonce.der");
}

/** Raw RSA-2048 signatures per second with node:crypto on the thread pool, `concurrency` in flight. */
async function rawSignsPerSecond(seconds: number, concurrency: number): Promise<number> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const data = Buffer.alloc(600, 7); // about an OCSP ResponseData
  const one = () => new Promise<void>((res, rej) => sign("sha256", data, privateKey, (e) => (e ? rej(e) : res())));
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await one();
      n++;
    }
  }));
  return n / ((performance.now() - t0) / 1000);
}

/** A real, signed CRL of about `mb` MB for CA 13-auth, installed where `jpki serve` publishes it. */
async function bigCrl(ws: Workspace, mb: number): Promise<number> {
  const rec = (await ws.store.getCa("13-auth"))!;
  const issuer = openCrlIssuer(rec, "bench", ws.config.pkcs11Modules);
  const now = ws.clock.now();
  const perEntry = encodeEntry({ serial: "11".repeat(16), revokedAt: now, reason: 1 }).length;
  const count = Math.ceil((mb * 1_000_000) / perEntry);
  const chunks = function* () {
    for (let i = 0; i < count; i += 10_000) {
      const n = Math.min(10_000, count - i);
      yield { der: Buffer.concat(Array.from({ length: n }, () => encodeEntry({ serial: randomBytes(16).toString("hex"), revokedAt: now, reason: 1 }))), count: n };
    }
  };
  const built = await buildCrl({ issuerName: issuer.subjectName, authorityKeyId: issuer.keyId, number: 1000n, thisUpdate: now, nextUpdate: new Date(now.getTime() + 48 * 3600_000), entries: chunks(), signer: issuer.signer });
  stageFile(join(ws.paths.crlDir, "13-auth.crl"), built.chunks).install();
  return built.byteLength;
}

export async function benchServe(backend: Backend, opts: { seconds?: number; connections?: number } = {}): Promise<BenchResult> {
  const seconds = opts.seconds ?? 5;
  const connections = opts.connections ?? 50;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-serve-"));
  const children: ChildProcess[] = [];
  try {
    // no rate limit in the way of the measurement (its arithmetic still runs)
    const { ws, env: storeEnv } = await backend.workspace(join(dir, "ws"), { verifierRateLimit: { perSecond: 1_000_000, burst: 10_000_000 } });
    let bigBytes: number;
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "bench" });
      await generateCrls(ws, { prefecture: "13", passphrase: "bench" });
      const token = (await registerVerifier(ws, { name: "bench", kind: "government" })).token!;
      useToken(token);
      bigBytes = await bigCrl(ws, 50);
      await ocspRequests(ws, dir);
    } finally {
      await ws.close();
    }
    const small = readFileSync(join(dir, "ws", "crl", "13-sig.crl"));
    writeFileSync(join(dir, "small.crl"), small);

    const serve = async (workers: number) => {
      const port = await freePort();
      // With the schedule (it issues the OCSP signing certificates); nothing is due, so it stays idle.
      const child = await start([BIN, "--workspace", join(dir, "ws"), "serve", "--listen", `127.0.0.1:${port}`, "--workers", String(workers), "--access-log", join(dir, `access-${workers}.log`)], {
        ...process.env,
        ...storeEnv,
        JPKI_PASSPHRASE: "bench",
      });
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      // --workers: the primary says it listens before the workers do
      for (let i = 0; i < 100; i++) {
        try {
          await head(`${url}/ca/13-sig.crt`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      return { child, url };
    };
    const barePort = await freePort();
    const bare = await start(["-e", BARE, String(barePort), join(dir, "small.crl")]);
    children.push(bare);
    const bareUrl = `http://127.0.0.1:${barePort}/crl/13-sig.crl`;

    const ours1 = await serve(1);
    const crlUrl = `${ours1.url}/crl/13-sig.crl`;
    const etag = (await head(crlUrl)).etag;
    const bareEtag = (await head(bareUrl)).etag;
    const ocspGet = `${ours1.url}/ocsp/13-sig/${encodeURIComponent(readFileSync(join(dir, "req.der")).toString("base64"))}`;
    const ocspCheck = await head(ocspGet);
    // Alternate ours, the OCSP GETs and the baseline three times each, so a load change on the machine touches all
    // alike; the GETs' ratio is best against best, as the 304s' is (one GET run against the best of three bare runs
    // swung 0.21–0.82× for one build on a loaded host: h-ocsp, 2026-12-07).
    // Each 304 run's CPU per answer: the server's (all its threads; ours also its main thread's) and, on PostgreSQL,
    // the database server's over ours' run. A 304 touches nothing of the store (the fetch records go in one write a
    // second, access.ts), so a ratio that differs by backend with equal CPU per 304 is the host's, not the server's.
    const cpuOf = async (pid: number, run: () => Promise<Load>) => {
      const t0 = threadCpu(pid);
      const db0 = backend.serverCpu?.();
      const load = await run();
      const t1 = threadCpu(pid);
      const db1 = backend.serverCpu?.();
      const answers = load.rps * seconds;
      const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      const us = (s: number) => (s / answers) * 1e6;
      return {
        load,
        us: us(sum(t1) - sum(t0)),
        mainUs: us((t1.get(pid) ?? 0) - (t0.get(pid) ?? 0)),
        dbUs: db0 && db1 ? us(db1.backends + db1.background - db0.backends - db0.background) : undefined,
      };
    };
    const runs304: Array<{ ours: Load; bare: Load; get: Load; oursCpu: { us: number; mainUs: number; dbUs: number | undefined }; bareUs: number }> = [];
    for (let i = 0; i < 3; i++) {
      const b = await cpuOf(bare.pid!, () => autocannon(bareUrl, { seconds, connections, headers: { "if-none-match": bareEtag } }));
      const o = await cpuOf(ours1.child.pid!, () => autocannon(crlUrl, { seconds, connections, headers: { "if-none-match": etag } }));
      const get = await autocannon(ocspGet, { seconds, connections });
      runs304.push({ ours: o.load, bare: b.load, get, oursCpu: o, bareUs: b.us });
    }
    const ours304 = Math.max(...runs304.map((r) => r.ours.rps));
    const bare304 = Math.max(...runs304.map((r) => r.bare.rps));
    const not304 = runs304.reduce((s, r) => s + (r.ours.statuses["304"] === undefined ? 1 : 0) + r.ours.errors, 0);
    const full200 = await autocannon(crlUrl, { seconds, connections });
    const bare200 = await autocannon(bareUrl.replace(String(barePort), String(barePort)), { seconds, connections });
    const ocspPre = runs304.map((r) => r.get).reduce((a, b) => (b.rps > a.rps ? b : a));
    const ocspNonce = await autocannonPost(`${ours1.url}/ocsp/13-sig`, readFileSync(join(dir, "req-nonce.der")), { seconds, connections: 16 });
    const raw = await rawSignsPerSecond(seconds, 16);
    const big = await downloads(`${ours1.url}/crl/13-auth.crl`, { seconds: Math.max(seconds, 5), parallel: 2 });
    await stop(ours1.child);

    const ours2 = await serve(2);
    const w2 = await autocannon(`${ours2.url}/crl/13-sig.crl`, { seconds, connections, headers: { "if-none-match": etag } });
    await stop(ours2.child);

    const mbps = (b: number) => (b / 1e6).toFixed(0);
    const note = [
      `runs      304s: ours ${runs304.map((r) => r.ours.rps.toFixed(0)).join(", ")} /s, bare ${runs304.map((r) => r.bare.rps.toFixed(0)).join(", ")} /s (${seconds} s each, ${connections} connections, best of each)${not304 ? ` — ${not304} runs had errors or no 304s` : ""}`,
      `cpu       per 304, each run: ours ${runs304.map((r) => `${r.oursCpu.us.toFixed(1)} µs (main ${r.oursCpu.mainUs.toFixed(1)})`).join(", ")}; bare ${runs304.map((r) => r.bareUs.toFixed(1)).join(", ")} µs${runs304[0]!.oursCpu.dbUs === undefined ? "" : `; PostgreSQL's processes ${runs304.map((r) => r.oursCpu.dbUs!.toFixed(2)).join(", ")} µs over ours' runs`}`,
      `workers   --workers 2: ${w2.rps.toFixed(0)} 304s/s = ${(w2.rps / bare304).toFixed(2)}× the bare single-process server (2 cores shared with the load generator)`,
      `full 200  small CRL (${small.length} bytes): ours ${full200.rps.toFixed(0)} /s, bare node:http from memory ${bare200.rps.toFixed(0)} /s (${(full200.rps / bare200.rps).toFixed(2)}×)`,
      `OCSP GET  pre-produced answers (no nonce): ${ocspPre.rps.toFixed(0)} /s = ${(ocspPre.rps / bare304).toFixed(2)}× the bare 304 rate (target ≥ 0.5: ${ocspPre.rps / bare304 >= 0.5 ? "met" : "MISSED"}; best of ${runs304.map((r) => r.get.rps.toFixed(0)).join(", ")} /s; first answer ${ocspCheck.status}, ${ocspCheck.size} bytes${ocspPre.non2xx || ocspPre.errors ? `; ${ocspPre.non2xx} non-2xx, ${ocspPre.errors} errors` : ""})`,
      `OCSP POST with a nonce (signed each time): ${ocspNonce.rps.toFixed(0)} /s = ${(ocspNonce.rps / raw).toFixed(2)}× raw RSA-2048 signs/s (${raw.toFixed(0)} /s in this process, 16 in flight; answers of ${ocspNonce.meanBytes.toFixed(0)} bytes on average)${ocspNonce.non2xx || ocspNonce.errors ? `; ${ocspNonce.non2xx} non-2xx, ${ocspNonce.errors} errors` : ""}`,
      `50 MB CRL ${mbps(bigBytes)} MB file, 2 downloads at a time: ${mbps(big.bytesPerSec)} MB/s (${big.perSec.toFixed(1)} downloads/s; node:http client, which only counts the bytes)`,
      `access log ${readFileSync(join(dir, "access-1.log"), "utf8").split("\n").length - 1} lines written by the single-process run`,
    ].join("\n");
    return {
      name: `jpki serve: 304 answers (If-None-Match poll of an unchanged CRL) [${backend.name}]`,
      ours: ours304,
      baseline: bare304,
      unit: "304s/s",
      baselineName: "bare node:http answering the same 304 (same validators), same cores, same load generator",
      target: 0.8,
      note,
    };
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
