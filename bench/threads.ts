/**
 * CPU per thread of this process (/proc/self/task/<tid>/stat, Linux only), grouped the way the issue bench needs
 * them: the main thread (which feeds the signers and commits), the signing threads (libuv's pool, where node:crypto
 * signs) and every other thread (V8's GC helpers, the WAL checkpointer's worker, …).
 *
 * On 2 cores every thread takes its CPU from the signers, not only the main thread: measured on 2026-12-06, the
 * issuance's other threads spent ≈ 35–45 µs per certificate (GC helpers ≈ 20, checkpointer ≈ 15–25) against ≈ 2 for
 * raw signing, as much as a third of what it spends beyond the raw signature.
 * Node 20 names every thread "node", so the signing threads are found by what they do: the threads other than the main
 * one that did the bulk of a raw signing round's CPU (raw signing runs nothing else on them).
 */
import { readdirSync, readFileSync } from "node:fs";

/** CPU ticks (utime + stime, 100 a second) of each thread of this process by thread id; undefined off Linux. */
export type ThreadTicks = ReadonlyMap<number, number>;

export function threadTicks(): ThreadTicks | undefined {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return undefined;
  }
  const out = new Map<number, number>();
  for (const tid of tids) {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), Number(f[11]) + Number(f[12]));
    } catch {
      // the thread ended between the listing and the read: its CPU is no longer counted by anyone
    }
  }
  return out;
}

/** Ticks each thread spent between two snapshots (a thread born in between counts from zero). */
export function ticksBetween(before: ThreadTicks, after: ThreadTicks): Map<number, number> {
  const out = new Map<number, number>();
  for (const [tid, t] of after) out.set(tid, t - (before.get(tid) ?? 0));
  return out;
}

/**
 * The signing threads of a raw signing round: besides the main thread, those that each did at least a tenth of the
 * others' CPU. A pool of 1–4 threads shares the signing about evenly on a quiet host, a GC helper does a few per cent
 * at most; on a loaded one the pool's shares spread out, and a fifth (the bound before) left a pool thread that
 * had been off a core longer among the "other" threads (seen: 3 of 4 found; in CI signing 0.24 s, other 0.35).
 */
export function signingThreads(rawRound: ReadonlyMap<number, number>, mainTid: number): Set<number> {
  let others = 0;
  for (const [tid, t] of rawRound) if (tid !== mainTid) others += t;
  const out = new Set<number>();
  if (others <= 0) return out;
  for (const [tid, t] of rawRound) if (tid !== mainTid && t >= others / 10) out.add(tid);
  return out;
}

export interface CpuByGroup {
  /** seconds of CPU */
  readonly main: number;
  readonly signing: number;
  readonly other: number;
}

/** A section's CPU split into main thread, signing threads and the rest. */
export function cpuByGroup(section: ReadonlyMap<number, number>, mainTid: number, signing: ReadonlySet<number>): CpuByGroup {
  let main = 0;
  let sign = 0;
  let other = 0;
  for (const [tid, t] of section) {
    if (tid === mainTid) main += t;
    else if (signing.has(tid)) sign += t;
    else other += t;
  }
  return { main: main / 100, signing: sign / 100, other: other / 100 };
}

/** CPU seconds (user + system) of the whole process so far, threads that have ended included. */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * A timed section's CPU by thread for the notice bench: the main thread (which commits), the threads that were there
 * before the section and are still there (V8's GC helpers, libuv's pool, the WAL checkpointer when a setup write
 * started it), the threads born in it that are still there, and the CPU of threads that ended in it (the notice
 * reader thread, ended with its input) — the process's own count less what the living threads account for.
 */
export interface SectionThreads {
  readonly main: number;
  /** each living thread other than main, seconds, largest first, with whether it was born in the section */
  readonly others: ReadonlyArray<{ readonly tid: number; readonly seconds: number; readonly born: boolean }>;
  /** threads that ended during the section */
  readonly ended: number;
  readonly total: number;
}

export function sectionThreads(before: { ticks: ThreadTicks; cpu: number }, after: { ticks: ThreadTicks; cpu: number }): SectionThreads {
  const d = ticksBetween(before.ticks, after.ticks);
  const main = (d.get(process.pid) ?? 0) / 100;
  const others = [...d]
    .filter(([tid]) => tid !== process.pid)
    .map(([tid, t]) => ({ tid, seconds: t / 100, born: !before.ticks.has(tid) }))
    .filter((o) => o.seconds > 0)
    .sort((a, b) => b.seconds - a.seconds);
  const total = after.cpu - before.cpu;
  const living = main + others.reduce((s, o) => s + o.seconds, 0);
  // Ticks are 10 ms a thread: a few threads' rounding can put the living above the process's own count.
  return { main, others, ended: Math.max(0, total - living), total };
}

/** The fields of a /proc stat line after the command name (state is [0], ppid [1], utime [11], stime [12]). */
export function statFields(path: string): string[] | undefined {
  try {
    const s = readFileSync(path, "utf8");
    return s.slice(s.lastIndexOf(") ") + 2).split(" ");
  } catch {
    return undefined; // ended meanwhile
  }
}

/** CPU seconds so far of each thread of another process `pid`, by thread id (the A/B benches' servers). */
export function threadCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    const f = statFields(`/proc/${pid}/task/${t}/stat`);
    if (f) out.set(Number(t), (Number(f[11]) + Number(f[12])) / 100);
  }
  return out;
}
