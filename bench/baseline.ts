/**
 * The in-process baseline of a ratio, sampled on a thread, and whether it can be trusted: a ratio against a
 * baseline sampled while the host was loaded is not the machine's (bench api, 2026-12-07 09:29: 0.90× "met"
 * while the baseline ran at a third of its quiet rate).
 */
import { readFileSync } from "node:fs";

/** CPU seconds this thread has used so far (Linux /proc, 10 ms ticks; undefined elsewhere). */
function ownThreadCpu(): number | undefined {
  try {
    const st = readFileSync("/proc/thread-self/stat", "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A sample of a synchronous rate: calls per second, and the share of that time the thread ran (undefined off Linux). */
export interface SyncSample {
  readonly rate: number;
  readonly share: number | undefined;
}

/** Calls `f` for `seconds`: calls per second, and how much of the time this thread had a core. */
export function syncRate(seconds: number, f: (i: number) => void): SyncSample {
  const cpu0 = ownThreadCpu();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) for (let k = 0; k < 50; k++) f(n++);
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = ownThreadCpu();
  return { rate: n / wall, share: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / wall };
}

/**
 * Below this share of a core, the in-process baseline's best sample is not the engine's rate but the host's load:
 * a loop on one thread runs ≈ 100 % of its time on a host with a core to spare. At 09:29 on 2026-12-07 (load 14–17)
 * the baseline ran 192–206 µs a validation against ≈ 66 on a quiet host, and bench api called 0.90× "met".
 */
export const BASELINE_SHARE = 0.85;

/**
 * Why the ratio should not be read as this machine's (undefined when there is no reason to doubt it): the baseline's
 * best sample had the core less than BASELINE_SHARE of its time — the host was loaded, which slows the one-thread
 * baseline and the server on two cores unlike each other — or its samples spread by more than a fifth.
 */
export function baselineCaveat(samples: readonly SyncSample[], loadAverage: number, cores: number): string | undefined {
  const best = samples.reduce((a, b) => (b.rate > a.rate ? b : a));
  const low = Math.min(...samples.map((x) => x.rate));
  const why: string[] = [];
  if (best.share !== undefined && best.share < BASELINE_SHARE) {
    why.push(`its best sample had a core ${(best.share * 100).toFixed(0)} % of the time (${best.rate.toFixed(0)}/s; ≈ ${(best.rate / best.share).toFixed(0)}/s with the core to itself)`);
  }
  if (low < 0.8 * best.rate) why.push(`its samples spread ${low.toFixed(0)}–${best.rate.toFixed(0)}/s`);
  if (!why.length) return undefined;
  return `the in-process baseline was sampled on a busy host (load average ${loadAverage.toFixed(1)} on ${cores} cores): ${why.join("; ")}. The ratio is not this machine's: run the bench again on a quiet host`;
}
