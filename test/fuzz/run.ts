/**
 * `npm run fuzz`: every target of the table (targets.ts, server-target.ts) with 100,000 inputs each, on worker
 * threads (two at a time by default). Prints per target how many inputs were accepted, refused with our errors,
 * and findings: errors not ours, property failures, inputs over the time budget, and hangs (no new input for
 * --hang-ms: the worker is ended and the input named). Each finding comes with its seed and path for replay and
 * its shrunk input, also written to fuzz-findings/<target>-<n>.bin for a regression vector. Exits 1 on a finding.
 *
 *   npm run fuzz -- [--runs N] [--seed N] [--budget-ms N] [--hang-ms N] [--jobs N] [--only a,b]
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newThread } from "../../src/thread.js";
import type { WorkerData, WorkerResult } from "./worker.js";

const TARGETS = ["der-reader", "der-strict", "spki", "pkcs10", "inspect-certificate", "inspect-crl", "ocsp-request", "residents-jsonl", "residents-csv", "notices-jsonl", "notices-csv", "apdu", "validate-path", "cms", "http"];

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} takes a positive whole number`);
  return v;
}

const runs = option("runs", 100_000);
const seed = option("seed", Date.now() % 2 ** 31);
const budgetMs = option("budget-ms", 2000);
const hangMs = option("hang-ms", 30_000);
const jobs = option("jobs", 2);
const onlyAt = process.argv.indexOf("--only");
const only = onlyAt >= 0 ? process.argv[onlyAt + 1]!.split(",") : TARGETS;
for (const n of only) if (!TARGETS.includes(n)) throw new Error(`no fuzz target ${n}: ${TARGETS.join(", ")}`);

type Report = { target: string; result?: WorkerResult; hang?: { input: number; seconds: number }; crash?: string };

function runOne(target: string): Promise<Report> {
  const progress = new SharedArrayBuffer(8);
  const p = new Int32Array(progress);
  const data: WorkerData = { target, runs, seed, budgetMs, progress };
  // newThread, as every thread of src/: a worker that took the process's options (`--cpu-prof` to profile the
  // runner, a `--require`d agent) wrote a profile of its own or loaded the agent again in each target's thread.
  const worker = newThread(new URL("./worker.js", import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
  const started = Date.now();
  return new Promise<Report>((resolve) => {
    let last = -1;
    let lastChange = Date.now();
    let done = false;
    const finish = (r: Report) => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      clearInterval(ticker);
      resolve(r);
    };
    // the watchdog: an input that has not finished for hangMs is a hang (the corpus is made before the first)
    const watchdog = setInterval(() => {
      const now = Atomics.load(p, 0);
      if (now !== last || Atomics.load(p, 1) === 0) {
        last = now;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange > hangMs) {
        void worker.terminate();
        finish({ target, hang: { input: now - 1, seconds: Math.round((Date.now() - lastChange) / 1000) } });
      }
    }, 500);
    const ticker = setInterval(() => process.stderr.write(`  ${target}: ${Atomics.load(p, 0)} inputs, ${Math.round((Date.now() - started) / 1000)} s\n`), 60_000);
    worker.on("message", (m: { type: "done"; result: WorkerResult } | { type: "error"; message: string }) => {
      finish(m.type === "done" ? { target, result: m.result } : { target, crash: m.message });
      void worker.terminate();
    });
    worker.on("error", (e) => finish({ target, crash: String(e.stack ?? e) }));
    worker.on("exit", (code) => finish({ target, crash: `the worker exited (${code}) without a result` }));
  });
}

async function main(): Promise<number> {
  process.stdout.write(`jpki fuzz: ${only.length} targets, ${runs} inputs each, seed ${seed}, budget ${budgetMs} ms an input, hang after ${hangMs} ms\n`);
  // the costly targets first, so that two jobs end together
  const COST = ["inspect-certificate", "inspect-crl", "residents-jsonl", "notices-jsonl", "residents-csv", "notices-csv", "apdu", "validate-path", "cms", "http"];
  const queue = [...only].sort((a, b) => (COST.indexOf(a) < 0 ? 99 : COST.indexOf(a)) - (COST.indexOf(b) < 0 ? 99 : COST.indexOf(b)));
  const reports: Report[] = [];
  await Promise.all(
    Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const r = await runOne(t);
        reports.push(r);
        process.stdout.write(line(r) + "\n");
        // a finding's details at once, not only after the last target: a long run may be stopped early
        for (const f of r.result?.findings ?? []) process.stdout.write(`  ${f.signature} (${f.count} inputs; path ${f.path}): ${f.vector.slice(0, 200)}\n`);
        for (const s of r.result?.slow ?? []) process.stdout.write(`  SLOW ${s.ms} ms (path ${s.path})\n`);
      }
    }),
  );
  reports.sort((a, b) => only.indexOf(a.target) - only.indexOf(b.target));
  const dir = join(process.cwd(), "fuzz-findings");
  let findings = 0;
  process.stdout.write(`\n${"target".padEnd(20)} ${"inputs".padStart(8)} ${"ok".padStart(8)} ${"ours".padStart(8)} ${"findings".padStart(8)} ${"slowest".padStart(9)}\n`);
  for (const r of reports) {
    const x = r.result;
    if (!x) {
      findings++;
      process.stdout.write(`${r.target.padEnd(20)} ${r.hang ? `HANG at input ${r.hang.input} (seed ${seed}, path ${r.hang.input})` : `CRASH: ${r.crash}`}\n`);
      continue;
    }
    const f = x.tally.findings + x.slow.length;
    findings += f;
    process.stdout.write(`${x.target.padEnd(20)} ${String(x.runs).padStart(8)} ${String(x.tally.ok).padStart(8)} ${String(x.tally.ours).padStart(8)} ${String(f).padStart(8)} ${`${x.slowest} ms`.padStart(9)}\n`);
  }
  for (const r of reports) {
    const x = r.result;
    if (!x) continue;
    process.stdout.write(`\n${x.target} (${x.parser}), ${x.seconds.toFixed(0)} s; our codes: ${Object.entries(x.tally.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(", ")}\n`);
    x.findings.forEach((f, k) => {
      process.stdout.write(`  FINDING ${k + 1}: ${f.signature} (${f.count} inputs)\n    replay: --seed ${f.seed}, fast-check path ${f.path}\n    shrunk input: ${f.vector.slice(0, 400)}${f.vector.length > 400 ? "…" : ""}\n    ${f.message.split("\n").slice(0, 6).join("\n    ")}\n`);
      if (f.vector) {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(join(dir, `${x.target}-${k + 1}.bin`), Buffer.from(f.vector, "hex"), { mode: 0o600 });
      }
    });
    for (const s of x.slow) process.stdout.write(`  SLOW: ${s.ms} ms (budget ${budgetMs}), path ${s.path}, input ${s.vector.slice(0, 200)}…\n`);
  }
  process.stdout.write(findings ? `\n${findings} finding(s)${reports.some((r) => r.result?.findings.some((f) => f.vector)) ? `: shrunk inputs in ${dir}` : ""}\n` : "\nno findings\n");
  return findings ? 1 : 0;
}

function line(r: Report): string {
  if (r.hang) return `${r.target}: HANG at input ${r.hang.input}`;
  if (r.crash) return `${r.target}: CRASH`;
  const x = r.result!;
  return `${x.target}: ${x.runs} inputs in ${x.seconds.toFixed(0)} s: ${x.tally.ok} ok, ${x.tally.ours} ours, ${x.tally.findings + x.slow.length} findings`;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`${String((e as Error)?.stack ?? e)}\n`);
  process.exit(2);
});
