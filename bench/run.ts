/**
 * `npm run bench`: each benchmark prints our rate, the baseline measured in the same run, and the ratio
 * against its target (start-up prints times against their limits). Numbers are for reading, never asserted
 * in tests.
 */
import "reflect-metadata";
import { cpus } from "node:os";
import { benchIssue, type BenchResult } from "./issue.js";
// `npm run bench` starts this through bin/jpki.cjs, which sizes libuv's thread pool as the CLI does, for
// ours and the baseline alike.
import { benchNotices } from "./notices.js";
import { benchStartup, type TimingResult } from "./startup.js";

const only = process.argv.slice(2);
const benches: Record<string, () => Promise<BenchResult | TimingResult>> = {
  startup: async () => benchStartup({ runs: Number(process.env.JPKI_BENCH_STARTUP_RUNS ?? 20) }),
  issue: () => benchIssue({ count: Number(process.env.JPKI_BENCH_ISSUE ?? 4000) }),
  notices: () =>
    benchNotices({ residents: Number(process.env.JPKI_BENCH_RESIDENTS ?? 1_000_000), notices: Number(process.env.JPKI_BENCH_NOTICES ?? 100_000) }),
  inspect: async () => (await import("./inspect.js")).benchInspect({ entries: Number(process.env.JPKI_BENCH_CRL_ENTRIES ?? 1_000_000) }),
  crl: async () => (await import("./crl.js")).benchCrl({ entries: Number(process.env.JPKI_BENCH_CRL_ENTRIES ?? 1_000_000), runs: Number(process.env.JPKI_BENCH_CRL_RUNS ?? 3) }),
};

console.log(`jpki bench — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}`);
let missed = 0;
for (const [name, f] of Object.entries(benches)) {
  if (only.length && !only.includes(name)) continue;
  const r = await f();
  if ("rows" in r) {
    // Times: lower is better, each against its own limit; the baseline is the floor no CLI goes under.
    console.log(`${r.name}\n  ${"baseline".padEnd(18)} ${r.baselineMs.toFixed(0).padStart(4)} ms  ${r.baselineName}`);
    for (const row of r.rows) {
      const ok = row.ms <= row.targetMs;
      if (!ok) missed++;
      console.log(`  ${row.label.padEnd(18)} ${row.ms.toFixed(0).padStart(4)} ms  (${(row.ms / r.baselineMs).toFixed(2)}× baseline, +${(row.ms - r.baselineMs).toFixed(0)} ms)  target ≤ ${row.targetMs} ms ${ok ? "met" : "MISSED"}`);
    }
    continue;
  }
  const ratio = r.ours / r.baseline;
  const ok = ratio >= r.target;
  if (!ok) missed++;
  console.log(
    `${r.name}\n  ours      ${r.ours.toFixed(1)} ${r.unit}\n  baseline  ${r.baseline.toFixed(1)} ${r.baselineName}\n  ratio     ${ratio.toFixed(2)} (target ≥ ${r.target}) ${ok ? "met" : "MISSED"}`,
  );
  if (r.note) console.log(r.note.replace(/^/gm, "  "));
}
console.log(missed ? `${missed} target(s) missed` : "all targets met");
