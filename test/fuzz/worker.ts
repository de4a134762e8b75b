/**
 * One target of `npm run fuzz` on a worker thread (run.ts starts it): makes the corpus, runs `runs` inputs from
 * `seed`, counts the outcomes, times each input against the budget, and shrinks one input of each distinct
 * finding (fast-check replays the run from seed and path). The index of the input in hand is kept in shared
 * memory, so the main thread can tell a hang from a slow target and name the input that hung.
 */
import { rmSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import fc from "fast-check";
import { corpus } from "./corpus.js";
import { count, newTally, outcomeOf, type FuzzTarget, type Tally } from "./harness.js";
import { serverTarget } from "./server-target.js";
import { parserTargets } from "./targets.js";

export interface WorkerData {
  readonly target: string;
  readonly runs: number;
  readonly seed: number;
  readonly budgetMs: number;
  /** Int32Array(2): [inputs started, 1 once the corpus is made] */
  readonly progress: SharedArrayBuffer;
}

export interface FindingReport {
  readonly signature: string;
  readonly count: number;
  /** replay: fast-check seed and path of the first input that showed it */
  readonly seed: number;
  readonly path: string;
  /** the shrunk input, hex */
  readonly vector: string;
  readonly message: string;
}

export interface WorkerResult {
  readonly target: string;
  readonly parser: string;
  readonly runs: number;
  readonly tally: Tally;
  readonly findings: readonly FindingReport[];
  /** inputs over the budget: how long they took and the input (not shrunk: time does not shrink reliably) */
  readonly slow: ReadonlyArray<{ readonly ms: number; readonly path: string; readonly vector: string }>;
  readonly slowest: number;
  readonly seconds: number;
}

const MAX_SHRUNK = 8;

async function main(d: WorkerData): Promise<WorkerResult> {
  const progress = new Int32Array(d.progress);
  const c = await corpus();
  const all: FuzzTarget<any>[] = d.target === "http" ? [await serverTarget(c)] : await parserTargets(c);
  const t = all.find((x) => x.name === d.target);
  if (!t) throw new Error(`no fuzz target ${d.target}`);
  Atomics.store(progress, 1, 1);
  const tally = newTally();
  const firsts = new Map<string, { count: number; index: number; message: string }>();
  const slow: Array<{ ms: number; path: string; vector: string }> = [];
  let slowest = 0;
  let i = 0;
  const started = performance.now();
  await fc.check(
    fc.asyncProperty(t.arbitrary, async (input) => {
      const index = i++;
      Atomics.store(progress, 0, i);
      const t0 = performance.now();
      const out = await outcomeOf(t, input);
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      if (ms > d.budgetMs && slow.length < 20) slow.push({ ms: Math.round(ms), path: String(index), vector: t.toVector(input).toString("hex").slice(0, 2000) });
      count(tally, out);
      if (out.kind === "finding") {
        const f = firsts.get(out.signature);
        if (f) f.count++;
        else firsts.set(out.signature, { count: 1, index, message: String((out.error as Error)?.stack ?? out.error).slice(0, 1500) });
      }
    }),
    { numRuns: d.runs, seed: d.seed },
  );
  const seconds = (performance.now() - started) / 1000;
  const findings: FindingReport[] = [];
  for (const [signature, f] of [...firsts].slice(0, MAX_SHRUNK)) {
    // replay from the first input that showed it, failing on this signature only, and let fast-check shrink
    const shrunk = await fc.check(
      fc.asyncProperty(t.arbitrary, async (input) => {
        const out = await outcomeOf(t, input);
        if (out.kind === "finding" && out.signature === signature) throw out.error;
      }),
      { seed: d.seed, path: String(f.index), numRuns: d.runs },
    );
    const input = shrunk.counterexample?.[0];
    findings.push({ signature, count: f.count, seed: d.seed, path: String(f.index), vector: input === undefined ? "" : t.toVector(input).toString("hex"), message: f.message });
  }
  for (const [signature, f] of [...firsts].slice(MAX_SHRUNK)) findings.push({ signature, count: f.count, seed: d.seed, path: String(f.index), vector: "", message: f.message });
  await c.ws.close();
  rmSync(c.ws.paths.root, { recursive: true, force: true });
  return { target: t.name, parser: t.parser, runs: i, tally, findings, slow, slowest: Math.round(slowest), seconds };
}

main(workerData as WorkerData).then(
  (r) => parentPort!.postMessage({ type: "done", result: r }),
  (e: unknown) => parentPort!.postMessage({ type: "error", message: String((e as Error)?.stack ?? e) }),
);
