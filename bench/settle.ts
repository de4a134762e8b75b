/**
 * Settling between the issue bench's rounds, so that each round starts clean and pays for its own work only.
 *
 * Until 2026-12-07 the rounds ran back to back: what an issuance round left behind (the WAL checkpointer's
 * copy-back of its last groups, the collection of its garbage, V8's helper threads compiling its new closures)
 * ran in the raw signing round after it, and raw signing swung 4,397–7,319 signs/s within one run; the best of three
 * then picked whichever round had been spared. Now a round's tail (its store's copy-back, libuv's queue, this
 * process's other threads gone quiet) is waited for and counted with the round's CPU, and a young-generation
 * collection runs before the next round, counted in neither (a full one cost the next round its optimised code:
 * bench/gc.ts minorGc).
 */
import { randomFill } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** CPU nanoseconds so far of this process's threads other than the main one (schedstat); undefined off Linux. */
export function otherThreadsCpuNs(): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const tid of tids) {
    if (Number(tid) === process.pid) continue;
    try {
      ns += Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ", 1)[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns;
}

export interface QuietOptions {
  /** wall time between two looks, ms */
  readonly intervalMs: number;
  /** the other threads count as quiet when they used at most this share of one core between two looks */
  readonly share: number;
  /** looks before giving up: a thread busy for good (another bench's server) must not hold the bench for ever */
  readonly maxLooks: number;
}

/**
 * 50 ms looks, quiet below 5 % of a core (a V8 helper sweeping or compiling runs flat out; an idle thread pool uses
 * nothing), at most 2 s: a checkpoint's copy-back and a collection's concurrent sweeping take tens of ms here.
 */
export const QUIET: QuietOptions = { intervalMs: 50, share: 0.05, maxLooks: 40 };

/**
 * Waits until the CPU `cpuNs` reads grew by at most `share` of the wall time between two looks. `quiet` is false
 * when it gave up after `maxLooks`, undefined when there is nothing to read (off Linux). `wait` and `now` are the
 * timer and clock (tests pass their own).
 */
export async function untilQuiet(
  cpuNs: () => number | undefined,
  opts: QuietOptions = QUIET,
  wait: (ms: number) => Promise<unknown> = sleep,
  now: () => number = () => performance.now(),
): Promise<{ readonly looks: number; readonly quiet: boolean | undefined }> {
  let before = cpuNs();
  if (before === undefined) return { looks: 0, quiet: undefined };
  for (let looks = 1; looks <= opts.maxLooks; looks++) {
    const t0 = now();
    await wait(opts.intervalMs);
    const after = cpuNs();
    if (after === undefined) return { looks, quiet: undefined };
    if (after - before <= opts.share * (now() - t0) * 1e6) return { looks, quiet: true };
    before = after;
  }
  return { looks: opts.maxLooks, quiet: false };
}

/**
 * Resolves once libuv's pool has taken up everything queued on it before the call: `threads` jobs of nothing queued
 * behind it (the queue is first in, first out). A round awaits its own signatures; this is for what it queued and
 * did not await.
 */
export function poolDrained(threads = Number(process.env.UV_THREADPOOL_SIZE) || 4): Promise<void> {
  const one = () => new Promise<void>((resolve, reject) => randomFill(Buffer.alloc(1), (e) => (e ? reject(e) : resolve())));
  return Promise.all(Array.from({ length: threads }, one)).then(() => undefined);
}

/** Each step of a settle in order: how long it took, and what it says of itself ("3 looks", "not quiet"). */
export type SettleSteps = ReadonlyArray<{ readonly name: string; readonly ms: number; readonly note?: string }>;

/** Runs `steps` one after the other, each awaited (a step may resolve with a note on itself), and says how long each took. */
export async function settle(steps: ReadonlyArray<readonly [string, () => unknown]>, now: () => number = () => performance.now()): Promise<SettleSteps> {
  const took: Array<SettleSteps[number]> = [];
  for (const [name, step] of steps) {
    const t0 = now();
    const note = await step();
    took.push({ name, ms: now() - t0, ...(typeof note === "string" ? { note } : {}) });
  }
  return took;
}

/** untilQuiet as a settle step: resolves with its note ("2 looks", "not quiet after 40 looks"). */
export async function quietStep(cpuNs: () => number | undefined = otherThreadsCpuNs, opts: QuietOptions = QUIET): Promise<string> {
  const { looks, quiet } = await untilQuiet(cpuNs, opts);
  return quiet === undefined ? "no /proc" : quiet ? `${looks} looks` : `not quiet after ${looks} looks`;
}

/** "checkpoint 12 ms, pool 0 ms, quiet 150 ms (3 looks)" */
export function settleText(steps: SettleSteps): string {
  return steps.map((s) => `${s.name} ${s.ms.toFixed(0)} ms${s.note ? ` (${s.note})` : ""}`).join(", ");
}

/** The middle value (the mean of the two middle ones for an even count): the CPU ratio's round. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
