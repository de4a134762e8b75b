/**
 * Issuance benchmark: certificates issued per second end to end (registry lookup, TBS, RSA-2048 signature,
 * profile check, commit with the issuance record) next to raw RSA-2048 signatures per second with
 * node:crypto, measured in the same run with the same parallelism. Target ratio ≥ 0.8. Run on each backend
 * (bench/backends.ts): the store differs, the baseline is the same measurement taken again in that section.
 * JPKI_BENCH_PROFILE=<dir> writes the main thread's CPU profile of each issuance round (bench/profile.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { cardPublicKeys } from "./card-keys.js";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONCURRENCY, IssuanceService } from "../src/ca/issuance.js";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord } from "../src/registry/resident.js";
import { setPkcs11PinSource } from "../src/pki/pkcs11.js";
import { type Backend } from "./backends.js";
import { profiled } from "./profile.js";
import { countGc, minorFaults, type GcCounts } from "./counts.js";
import { cpuByGroup, signingThreads, threadTicks, ticksBetween } from "./threads.js";
import { minorGc } from "./gc.js";
import { median, poolDrained, quietStep, settle, settleText, type SettleSteps } from "./settle.js";
import { SqliteStore } from "../src/store/sqlite.js";

const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
let softHsm: { token: string; dir: string } | null | undefined;

/**
 * A SoftHSM2 token for this bench process, in a temporary directory (SoftHSM reads SOFTHSM2_CONF once, when the
 * module loads: one token serves every backend's run). Null when SoftHSM2 is not installed.
 */
function benchToken(): { token: string; dir: string } | null {
  if (softHsm !== undefined) return softHsm;
  if (!existsSync(SOFTHSM_MODULE) || spawnSync("softhsm2-util", ["--version"]).status !== 0) return (softHsm = null);
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-softhsm-"));
  mkdirSync(join(dir, "tokens"), { mode: 0o700 });
  writeFileSync(join(dir, "softhsm2.conf"), `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = join(dir, "softhsm2.conf");
  const pin = randomBytes(6).toString("hex");
  execFileSync("softhsm2-util", ["--init-token", "--free", "--label", "jpki-bench", "--pin", pin, "--so-pin", randomBytes(6).toString("hex")], { stdio: "ignore" });
  setPkcs11PinSource(() => pin);
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return (softHsm = { token: "jpki-bench", dir });
}

export interface BenchResult {
  readonly name: string;
  readonly ours: number;
  readonly baseline: number;
  readonly unit: string;
  readonly baselineName: string;
  readonly target: number;
  /** extra lines printed under the ratio (absolute goals, breakdowns) */
  readonly note?: string;
  /**
   * why the ratio should not be read as the machine's (a baseline sampled on a loaded host): printed as a warning
   * beside "met" or "MISSED", and the summary marks the ratio suspect; the target is still counted as it came out
   */
  readonly caveat?: string;
  /** absolute goals beside the ratio (printed in the note), counted with the targets */
  readonly goals?: ReadonlyArray<{ readonly label: string; readonly ok: boolean }>;
  /** µs per unit of work (per notice, per CRL entry): what scale mode compares across sizes */
  readonly perUnitUs?: number;
}

/**
 * CPU seconds of this process's main thread (/proc/self/task/<pid>/stat utime+stime, 100 ticks a second), or
 * undefined off Linux: the one thread that feeds the signers, apart from the thread pool that signs.
 */
function mainThreadCpu(): number | undefined {
  try {
    const st = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Idle and all jiffies of the machine (/proc/stat's cpu line), or undefined off Linux. */
function machineJiffies(): { idle: number; all: number } | undefined {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3]! + f[4]!, all: f.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

/**
 * Wall seconds of `f`, and CPU seconds of this process (and its main thread) and of the database server (when it
 * runs here) over `f` and then `tail`: what `f` left running in the background (bench/settle.ts) is counted with
 * it, not with whatever runs next; the wall time is `f`'s alone.
 */
async function measured<T>(
  backend: Backend,
  f: () => Promise<T>,
  tail: () => Promise<SettleSteps>,
): Promise<{
  tail: SettleSteps;
  value: T;
  secs: number;
  nodeCpu: number;
  mainCpu: number | undefined;
  serverCpu: number | undefined;
  idle: number | undefined;
  threads: Map<number, number> | undefined;
  gc: GcCounts;
  mainFaults: number | undefined;
}> {
  const j0 = machineJiffies();
  const gcDone = countGc();
  const f0 = minorFaults();
  const t0s = threadTicks();
  const s0 = backend.serverCpuSeconds?.();
  const m0 = mainThreadCpu();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await f();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const j1 = machineJiffies(); // how idle the machine stood while `f` ran: the tail waits, idle by design
  const tailSteps = await tail();
  const c = process.cpuUsage(c0);
  const m1 = mainThreadCpu();
  const s1 = backend.serverCpuSeconds?.();
  const t1s = threadTicks();
  const f1 = minorFaults();
  const gc = gcDone();
  return {
    tail: tailSteps,
    gc,
    mainFaults: f0 === undefined || f1 === undefined ? undefined : f1 - f0,
    threads: t0s && t1s ? ticksBetween(t0s, t1s) : undefined,
    idle: j0 && j1 && j1.all > j0.all ? (j1.idle - j0.idle) / (j1.all - j0.all) : undefined,
    value,
    secs,
    nodeCpu: (c.user + c.system) / 1e6,
    mainCpu: m0 === undefined || m1 === undefined ? undefined : m1 - m0,
    serverCpu: s0 === undefined || s1 === undefined ? undefined : s1 - s0,
  };
}

/**
 * Raw RSA-2048 signing, the baseline: its key made and warmed up once, outside the measured rounds. Made inside
 * them until 2026-12-06, the key's generation (57–396 ms of the main thread's CPU in six tries on a loaded host, as its
 * prime search goes) was counted in the raw round's CPU: 14–99 µs per signature of 4,000 on the main thread, swinging
 * from round to round, in the baseline the issuance's CPU per certificate was read against.
 */
async function rawSigning(): Promise<(n: number, concurrency: number) => Promise<number>> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const data = Buffer.alloc(1200, 7); // about the size of a JPKI TBSCertificate
  const one = () => new Promise<void>((res, rej) => sign("sha256", data, privateKey, (e) => (e ? rej(e) : res())));
  for (let i = 0; i < 50; i++) await one();
  return async (n, concurrency) => {
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one();
    }));
    return n / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
}

/**
 * "counts" line: what the CPU figures cannot show apart on a loaded host (bench/counts.ts), per certificate against
 * per raw signature — the main thread's minor page faults, V8's allocation and promotion, and its collections.
 */
function countsLine(raw: { gc: GcCounts; mainFaults: number | undefined }, run: { gc: GcCounts; mainFaults: number | undefined }, signs: number, issued: number): string {
  const per = (n: number | undefined, of: number, digits = 2) => (n === undefined ? "?" : (n / of).toFixed(digits));
  const kb = (n: number, of: number) => (n / of / 1024).toFixed(1);
  return (
    `counts per certificate (per raw signature): main-thread minor page faults ${per(run.mainFaults, issued)} (${per(raw.mainFaults, signs)}), ` +
    `V8 heap allocated ${kb(run.gc.allocatedBytes, issued)} KB (${kb(raw.gc.allocatedBytes, signs)}), promoted ${kb(run.gc.promotedBytes, issued)} KB (${kb(raw.gc.promotedBytes, signs)}), ` +
    `scavenges ${run.gc.scavenges} (${raw.gc.scavenges}) and full collections ${run.gc.fullGcs} (${raw.gc.fullGcs}) in the round\n`
  );
}

/**
 * "by thread" line: main thread, signing threads (libuv's pool) and the other threads (GC helpers, the WAL
 * checkpointer), per certificate against per raw signature; on 2 cores each of them takes CPU from the signers.
 */
function byThread(raw: ReadonlyMap<number, number> | undefined, run: ReadonlyMap<number, number> | undefined, signs: number, issued: number): string {
  if (!raw || !run) return "";
  const signing = signingThreads(raw, process.pid);
  const r = cpuByGroup(raw, process.pid, signing);
  const o = cpuByGroup(run, process.pid, signing);
  const us = (s: number, n: number) => ((s / n) * 1e6).toFixed(0);
  return (
    `by thread, µs per certificate (per raw signature): main ${us(o.main, issued)} (${us(r.main, signs)}), ` +
    `signing pool of ${signing.size} ${us(o.signing, issued)} (${us(r.signing, signs)}), other threads — GC helpers, WAL checkpointer — ${us(o.other, issued)} (${us(r.other, signs)})\n`
  );
}

export async function benchIssue(backend: Backend, opts: { count?: number } = {}): Promise<BenchResult> {
  const count = opts.count ?? 4000;
  const concurrency = Number(process.env.JPKI_BENCH_CONCURRENCY ?? DEFAULT_CONCURRENCY); // what `jpki issue --batch` uses
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-issue-"));
  const { ws, env: storeEnv } = await backend.workspace(dir);
  try {
    const passphrase = "bench";
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase });
    const now = ws.clock.now();
    // Rounds alternate raw signing and issuance, best of each (as the serve bench does): on a 2-core VM one
    // round swings by a tenth with what else the host runs. Each round and the warm-up issue to residents of
    // their own, so no measured certificate supersedes another.
    const rounds = Math.max(1, Number(process.env.JPKI_BENCH_ISSUE_ROUNDS ?? 3));
    const warm = 500;
    const everyone = [...generateResidents({ count: rounds * count + warm, seed: "bench-issue", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now }));
    await ws.store.upsertResidents(everyone);
    // The same issuance with the CA key in a PKCS#11 token (SoftHSM2): Osaka's CA, its own residents.
    // JPKI_BENCH_ISSUE_HSM=0 skips it whole: no token, no CA, no residents, no warm-up (its set-up and warm-up ran
    // before for a round of 0 certificates).
    const hsmCount = Math.min(count, Number(process.env.JPKI_BENCH_ISSUE_HSM ?? 2000));
    const hsm = hsmCount > 0 ? benchToken() : null;
    const osakans = hsm ? [...generateResidents({ count: hsmCount + warm, seed: "bench-issue-hsm", prefectures: ["27"] })].map((r) => parseResidentRecord(r, { now })) : [];
    if (hsm) {
      await initCas(ws, { prefectures: [prefecture("27")], purposes: ["signature"], passphrase, token: { modulePath: SOFTHSM_MODULE, token: hsm.token } });
      await ws.store.upsertResidents(osakans);
    }
    // Card keys are made on cards, not by the CA: one each (a key is certified to one resident).
    const keyOf = new Map<string, Buffer>();
    const allKeys = cardPublicKeys(everyone.length + osakans.length);
    for (const [i, r] of [...everyone, ...osakans].entries()) keyOf.set(r.residentCode, allKeys[i]!);
    const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
    // Each round starts clean and counts its own background work (bench/settle.ts): before it, a young-generation
    // collection (not a full one: bench/gc.ts minorGc) and this process's other threads quiet (counted in no round); after it, its tail — the store's copy-back of what it
    // committed, libuv's queue, the other threads quiet again — counted in its CPU, not in the wall rate.
    const store = ws.store;
    const tail = () =>
      settle([
        ...(store instanceof SqliteStore ? [["checkpoint", () => store.checkpointed()] as const] : []),
        ["pool", () => poolDrained()],
        ["quiet", () => quietStep()],
      ]);
    const before = async () => settleText(await settle([["young gc", () => minorGc()], ["quiet", () => quietStep()]]));
    async function* apps(who: typeof everyone) {
      let line = 0;
      for (const r of who) yield { line: ++line, value: { residentCode: r.residentCode, type: "signature", publicKey: keyOf.get(r.residentCode)!.toString("base64") } };
    }
    // Warm-up, as a CA that has been issuing is: the CA key opened, the JIT's optimised code, the statement
    // caches, one full group commit. A single certificate left the measured run a fifth slower for its first
    // thousand (measured: 3,700 certs/s on a cold run against 4,450 on the next, same process).
    await service.issueBatch(apps(everyone.slice(rounds * count)), { concurrency });
    // And with the planner's statistics a live store has (autovacuum's ANALYZE comes within a minute of a load).
    // Without them PostgreSQL plans the commit's keyed reads of these young tables (the residents, the
    // certificates by resident) as sequential scans: measured 6 ms per group of 500 at 12,500 certificates,
    // ≈ 8 µs of server CPU per certificate and growing with the table — a plan no national-size table gets.
    await backend.analyze?.(storeEnv);
    // The warm-up's copy-back and background work, before the first round as after every other (below).
    await tail();
    type Measured<T> = Awaited<ReturnType<typeof measured<T>>>;
    let raw: Measured<number> | undefined;
    let run: Measured<Awaited<ReturnType<IssuanceService["issueBatch"]>>> | undefined;
    const perRound: string[] = [];
    const settles: string[] = [];
    // CPU per unit of each round, its tail included (the CPU ratio): on a shared host the steadier figure.
    const rawCpuPer: number[] = [];
    const runCpuPer: number[] = [];
    const rawSignsPerSecond = await rawSigning();
    for (let i = 0; i < rounds; i++) {
      const rb = await before();
      const r = await measured(backend, () => rawSignsPerSecond(count, concurrency), tail);
      const ob = await before();
      const o = await measured(backend, () => profiled(`issue-${backend.name}-${i + 1}`, () => service.issueBatch(apps(everyone.slice(i * count, (i + 1) * count)), { concurrency })), tail);
      if (o.value.failed) throw new Error(`bench issuance failed: ${JSON.stringify(o.value.errors.slice(0, 3))}`);
      perRound.push(`${(o.value.issued / o.secs).toFixed(0)}/${r.value.toFixed(0)}${o.idle === undefined || r.idle === undefined ? "" : ` (idle ${(o.idle * 100).toFixed(0)} %/${(r.idle * 100).toFixed(0)} %)`}`);
      settles.push(`${i + 1}: raw after ${rb}, its tail ${settleText(r.tail)}; issuance after ${ob}, its tail ${settleText(o.tail)}`);
      rawCpuPer.push(r.nodeCpu / count);
      runCpuPer.push((o.nodeCpu + (o.serverCpu ?? 0)) / o.value.issued);
      if (!raw || r.value > raw.value) raw = r;
      if (!run || o.value.issued / o.secs > run.value.issued / run.secs) run = o;
    }
    // Medians, not best of: the first round still compiles part of the hot path (the warm-up is 500), and the host
    // may take a core from any round; the median round is the one neither befell.
    const rawCpuMedian = median(rawCpuPer);
    const runCpuMedian = median(runCpuPer);
    const res = run!.value;
    let hsmLine = `SoftHSM2 (CA key in a PKCS#11 token): ${hsmCount > 0 ? "SoftHSM not installed" : "not measured (JPKI_BENCH_ISSUE_HSM=0)"}`;
    if (hsm) {
      await service.issueBatch(apps(osakans.slice(hsmCount)), { concurrency });
      await before();
      const h = await measured(backend, () => service.issueBatch(apps(osakans.slice(0, hsmCount)), { concurrency }), tail);
      if (h.value.failed) throw new Error(`bench issuance through SoftHSM failed: ${JSON.stringify(h.value.errors.slice(0, 3))}`);
      const rate = h.value.issued / h.secs;
      hsmLine = `SoftHSM2 (CA key in a PKCS#11 token, ${hsmCount} certificates): ${rate.toFixed(0)} certs/s = ${(rate / raw!.value).toFixed(2)}× raw RSA-2048 signs/s, ${(rate / (res.issued / run!.secs)).toFixed(2)}× software-key issuance`;
    }
    // CPU per certificate: on 2 cores every µs the store spends (in node or in the server) is a µs not signing.
    const us = (s: number | undefined, n: number) => (s === undefined ? "?" : ((s / n) * 1e6).toFixed(0));
    const note =
      `CPU per certificate: node ${us(run!.nodeCpu, res.issued)} µs, of it main thread ${us(run!.mainCpu, res.issued)} µs (raw sign ${us(raw!.nodeCpu, count)} µs, main thread ${us(raw!.mainCpu, count)} µs)` +
      (backend.serverCpuSeconds ? `, database server ${us(run!.serverCpu, res.issued)} µs` : "") +
      `; wall ${run!.secs.toFixed(2)} s\n` +
      byThread(raw!.threads, run!.threads, count, res.issued) +
      countsLine(raw!, run!, count, res.issued) +
      `rounds    certs/s issued / raw signs/s (machine idle during each): ${perRound.join(", ")} (best of each counts)\n` +
      `CPU ratio ${(rawCpuMedian / runCpuMedian).toFixed(2)}×: raw ${(rawCpuMedian * 1e6).toFixed(0)} µs of CPU a signature ÷ issuance ${(runCpuMedian * 1e6).toFixed(0)} µs a certificate, medians of the rounds ` +
      `(this process's threads${backend.serverCpuSeconds ? " and the database server" : ""}, each round with its tail; by round ${rawCpuPer.map((r, i) => `${(r * 1e6).toFixed(0)}/${(runCpuPer[i]! * 1e6).toFixed(0)}`).join(", ")} µs); the target is on the rates above\n` +
      `settle between rounds (bench/settle.ts; a tail is counted in its round's CPU, not in its rate; the rest in no round): ${settles.join("; ")}\n` +
      hsmLine;
    return {
      name: `issuance (${count} signature certificates) [${backend.name}]`,
      ours: res.issued / run!.secs,
      baseline: raw!.value,
      unit: "certs/s",
      baselineName: "raw RSA-2048 signs/s (node:crypto, same concurrency)",
      target: 0.8,
      note,
    };
  } finally {
    await ws.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
