/**
 * `npm run bench`: each benchmark prints our rate, the baseline measured in the same run, and the ratio
 * against its target (start-up prints times against their limits). Numbers are for reading, never asserted
 * in tests.
 *
 * Backends: issue, notices and crl run on SQLite and on PostgreSQL, one after the other, and a summary at the
 * end puts them side by side, each with its ratio and target (bench/backends.ts: JPKI_BENCH_BACKENDS selects,
 * JPKI_BENCH_PG names a server, else one is started for the run; without PostgreSQL the run says so and goes
 * on with SQLite). startup, inspect and validate do not touch a store and run once.
 *
 * Scale mode, JPKI_BENCH_SCALE=1: notices and crl run at two sizes, 1,000,000 and 10,000,000 (override with
 * JPKI_BENCH_SCALE_SIZES=small,large): notices over that many residents (twice as many certificates) with the
 * same JPKI_BENCH_NOTICES notices, crl with that many revoked entries in one CA — the CRL a population of that
 * size would carry if every resident had one revoked signature certificate, so both sizes grow together.
 * The summary prints µs per notice (per CRL entry) at both sizes and their ratio next to the log2 ratio of the
 * sizes (1.17 for 10M over 1M): per-notice cost may grow at most logarithmically with the population. The 10M
 * setup loads in key order in big chunks and logs its progress; it needs a larger heap, so the run starts
 * itself again with --max-old-space-size=16384. Allow roughly an hour per backend at 10M on 2 cores.
 */
import "reflect-metadata";
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import { openBackends, type Backend } from "./backends.js";
import { benchIssue, type BenchResult } from "./issue.js";
// `npm run bench` starts this through bin/jpki.cjs, which sizes libuv's thread pool as the CLI does, for
// ours and the baseline alike.
import { benchNotices } from "./notices.js";
import { benchStartup, type TimingResult } from "./startup.js";

const only = process.argv.slice(2);
const wanted = (name: string) => !only.length || only.includes(name);
const scale = process.env.JPKI_BENCH_SCALE === "1";

if (scale && getHeapStatistics().heap_size_limit < 12 * 2 ** 30 && !process.env.JPKI_BENCH_RESPAWNED) {
  // 10M residents and their generated records do not fit node's default heap (≈ 4 GB here).
  const r = spawnSync(process.execPath, ["--max-old-space-size=16384", ...process.execArgv, process.argv[1]!, "--run-module", fileURLToPath(import.meta.url), ...only], {
    stdio: "inherit",
    env: { ...process.env, JPKI_BENCH_RESPAWNED: "1" },
  });
  process.exit(r.status ?? 1);
}

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const fmtN = (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
const scaleSizes = (process.env.JPKI_BENCH_SCALE_SIZES ?? "1000000,10000000").split(",").map(Number);
if (scale && (scaleSizes.length !== 2 || !scaleSizes.every((n) => Number.isSafeInteger(n) && n > 0) || scaleSizes[0]! >= scaleSizes[1]!)) {
  throw new Error("JPKI_BENCH_SCALE_SIZES: two sizes, smaller first, e.g. 1000000,10000000");
}

/** One run of a store bench: name, the size label for the summary, and how to run it on a backend. */
interface StoreBench {
  readonly bench: string;
  readonly size: number | undefined;
  run(b: Backend): Promise<BenchResult>;
}

const storeBenches: StoreBench[] = [];
if (wanted("issue")) storeBenches.push({ bench: "issue", size: undefined, run: (b) => benchIssue(b, { count: env("JPKI_BENCH_ISSUE", 4000) }) });
if (wanted("notices")) {
  for (const residents of scale ? scaleSizes : [env("JPKI_BENCH_RESIDENTS", 1_000_000)]) {
    storeBenches.push({ bench: "notices", size: scale ? residents : undefined, run: (b) => benchNotices(b, { residents, notices: env("JPKI_BENCH_NOTICES", 100_000) }) });
  }
}
if (wanted("serve")) storeBenches.push({ bench: "serve", size: undefined, run: async (b) => (await import("./serve.js")).benchServe(b, { seconds: env("JPKI_BENCH_SERVE_SECONDS", 5) }) });
if (wanted("api")) storeBenches.push({ bench: "api", size: undefined, run: async (b) => (await import("./verifier-api.js")).benchVerifierApi(b, { seconds: env("JPKI_BENCH_API_SECONDS", 5), connections: env("JPKI_BENCH_API_CONNECTIONS", 32) }) });
if (wanted("crl")) {
  for (const entries of scale ? scaleSizes : [env("JPKI_BENCH_CRL_ENTRIES", 1_000_000)]) {
    storeBenches.push({
      bench: "crl",
      size: scale ? entries : undefined,
      run: async (b) => (await import("./crl.js")).benchCrl(b, { entries, runs: env("JPKI_BENCH_CRL_RUNS", 3) }),
    });
  }
}

console.log(
  `jpki bench — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}${scale ? `, scale mode (${scaleSizes.map(fmtN).join(" and ")}, heap limit ${(getHeapStatistics().heap_size_limit / 2 ** 30).toFixed(0)} GB)` : ""}`,
);
let missed = 0;

function printTimes(r: TimingResult): void {
  // Times: lower is better, each against its own limit; the baseline is the floor no CLI goes under.
  console.log(`${r.name}\n  ${"baseline".padEnd(18)} ${r.baselineMs.toFixed(0).padStart(4)} ms  ${r.baselineName}`);
  for (const row of r.rows) {
    const ok = row.ms <= row.targetMs;
    if (!ok) missed++;
    console.log(`  ${row.label.padEnd(18)} ${row.ms.toFixed(0).padStart(4)} ms  (${(row.ms / r.baselineMs).toFixed(2)}× baseline, +${(row.ms - r.baselineMs).toFixed(0)} ms)  target ≤ ${row.targetMs} ms ${ok ? "met" : "MISSED"}`);
  }
}

/** A rate with three significant digits at least (0.128 CRLs/s, 3882.6 notices/s). */
const rate = (x: number) => (x >= 100 ? x.toFixed(1) : x.toPrecision(3));

function printRate(r: BenchResult): void {
  const ratio = r.ours / r.baseline;
  const ok = ratio >= r.target;
  if (!ok) missed++;
  for (const g of r.goals ?? []) if (!g.ok) missed++;
  console.log(
    `${r.name}\n  ours      ${rate(r.ours)} ${r.unit}\n  baseline  ${rate(r.baseline)} ${r.baselineName}\n  ratio     ${ratio.toFixed(2)} (target ≥ ${r.target}) ${ok ? "met" : "MISSED"}${r.caveat ? " — SUSPECT" : ""}`,
  );
  if (r.caveat) console.log(`  WARNING   ${r.caveat}`);
  if (r.note) console.log(r.note.replace(/^/gm, "  "));
}

if (wanted("startup")) printTimes(await benchStartup({ runs: env("JPKI_BENCH_STARTUP_RUNS", 20) }));
if (wanted("inspect")) printRate(await (await import("./inspect.js")).benchInspect({ entries: env("JPKI_BENCH_CRL_ENTRIES", 1_000_000) }));
if (wanted("validate")) {
  printRate(await (await import("./validate.js")).benchValidate({ entries: env("JPKI_BENCH_CRL_ENTRIES", 1_000_000), seconds: env("JPKI_BENCH_VALIDATE_SECONDS", 2) }));
}

const results = new Map<string, BenchResult | Error>(); // `${bench}/${size}/${backend}`
const key = (s: StoreBench, b: string) => `${s.bench}/${s.size ?? ""}/${b}`;
let backends: Backend[] = [];
try {
  if (storeBenches.length) backends = await openBackends((line) => console.log(line));
  for (const s of storeBenches) {
    for (const b of backends) {
      try {
        const r = await s.run(b);
        results.set(key(s, b.name), r);
        printRate(r);
      } catch (e) {
        // One backend failing does not hide the other's figures.
        missed++;
        results.set(key(s, b.name), e as Error);
        console.log(`${s.bench}${s.size ? ` ${fmtN(s.size)}` : ""} [${b.name}] FAILED: ${(e as Error).stack ?? e}`);
      } finally {
        await b.cleanup().catch((e: unknown) => console.log(`${b.name}: cleaning up failed: ${(e as Error).message}`));
      }
    }
  }
} finally {
  for (const b of backends) await b.close().catch((e: unknown) => console.log(`${b.name}: closing failed: ${(e as Error).message}`));
}

if (storeBenches.length && backends.length) {
  // Side by side: one row per bench (and size), one column per backend.
  const cell = (r: BenchResult | Error | undefined): string => {
    if (!r) return "—";
    if (r instanceof Error) return "FAILED";
    const ratio = r.ours / r.baseline;
    const goals = (r.goals ?? []).map((g) => `, ${g.label} ${g.ok ? "met" : "MISSED"}`).join("");
    return `${r.ours >= 100 ? r.ours.toFixed(0) : r.ours.toPrecision(3)} ${r.unit}, ${ratio.toFixed(2)}× ${ratio >= r.target ? "met" : "MISSED"}${r.caveat ? " (suspect: see the WARNING)" : ""}${goals}`;
  };
  const rows = storeBenches.map((s) => {
    const any = backends.map((b) => results.get(key(s, b.name))).find((r): r is BenchResult => !!r && !(r instanceof Error));
    return [`${s.bench}${s.size ? ` ${fmtN(s.size)}` : ""}`, ...backends.map((b) => cell(results.get(key(s, b.name)))), any ? `≥ ${any.target}×` : ""];
  });
  const head = ["summary", ...backends.map((b) => b.name), "target"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => "  " + r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  console.log(line(head));
  for (const r of rows) console.log(line(r));

  if (scale) {
    const [small, large] = scaleSizes as [number, number];
    const log2 = Math.log2(large) / Math.log2(small);
    for (const bench of ["notices", "crl"]) {
      if (!wanted(bench)) continue;
      for (const b of backends) {
        const a = results.get(`${bench}/${small}/${b.name}`);
        const z = results.get(`${bench}/${large}/${b.name}`);
        if (!a || !z || a instanceof Error || z instanceof Error || a.perUnitUs === undefined || z.perUnitUs === undefined) continue;
        const growth = z.perUnitUs / a.perUnitUs;
        const ok = growth <= log2;
        if (!ok) missed++;
        const unit = bench === "notices" ? "µs/notice" : "µs/entry (above an empty CA's time)";
        console.log(
          `  scale ${bench} [${b.name}]: ${fmtN(small)} ${a.perUnitUs.toFixed(2)} ${unit}, ${fmtN(large)} ${z.perUnitUs.toFixed(2)} ${unit}: growth ${growth.toFixed(2)}× vs log2 ratio ${log2.toFixed(2)}× (at most logarithmic) ${ok ? "met" : "MISSED"}`,
        );
      }
    }
  }
}
console.log(missed ? `${missed} target(s) missed` : "all targets met");
