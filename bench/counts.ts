/**
 * Counts for the issue bench, next to its CPU figures: V8's collections and allocation over a section
 * (node:v8 GCProfiler), and the main thread's minor page faults (/proc/self/task/<tid>/stat).
 *
 * Why counts: on this shared 2-core host a section's CPU swings by ±30 % with what else runs, so a change worth a
 * few µs per certificate cannot be told from a rate or a CPU figure; bytes allocated, bytes promoted, collections
 * and first touches of memory are the same from run to run for the same code, and each is CPU: on these virtual
 * machines a minor fault costs ≈ 13 µs (2026-12-06), and a scavenge costs what it copies — what is still in flight.
 */
import { readFileSync } from "node:fs";
import { GCProfiler, getHeapStatistics, type GCProfilerResult } from "node:v8";

type GcStat = GCProfilerResult["statistics"][number];

export interface GcCounts {
  /** young-generation collections */
  readonly scavenges: number;
  /** full collections (mark-sweep-compact); incremental-marking steps and weak-callback passes are not counted */
  readonly fullGcs: number;
  /** bytes allocated on V8's heap (ArrayBuffers' backing stores, a Buffer's bytes, are outside it) */
  readonly allocatedBytes: number;
  /** bytes the scavenges moved into the old generation: objects that outlived two of them */
  readonly promotedBytes: number;
}

const OLD = new Set(["old_space", "large_object_space"]);

function oldBytes(spaces: GcStat["beforeGC"]["heapSpaceStatistics"]): number {
  let n = 0;
  for (const s of spaces) if (OLD.has(s.spaceName)) n += s.spaceUsedSize;
  return n;
}

/**
 * The counts of a section from its GCProfiler statistics and the heap's used size at its start and end. What was
 * allocated is what the heap grew by plus what each collection freed (the growth alone misses every byte a
 * collection took back: most of a batch's).
 */
export function gcCounts(stats: readonly GcStat[], usedBefore: number, usedAfter: number): GcCounts {
  let scavenges = 0;
  let fullGcs = 0;
  let freed = 0;
  let promoted = 0;
  for (const s of stats) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    if (s.gcType === "Scavenge") {
      scavenges++;
      promoted += Math.max(0, oldBytes(s.afterGC.heapSpaceStatistics) - oldBytes(s.beforeGC.heapSpaceStatistics));
    } else if (s.gcType === "MarkSweepCompact") fullGcs++;
  }
  return { scavenges, fullGcs, allocatedBytes: usedAfter - usedBefore + freed, promotedBytes: promoted };
}

/** Starts counting V8's collections; the function returned stops and gives the section's counts. */
export function countGc(): () => GcCounts {
  const profiler = new GCProfiler();
  const usedBefore = getHeapStatistics().used_heap_size;
  profiler.start();
  return () => {
    const usedAfter = getHeapStatistics().used_heap_size;
    return gcCounts(profiler.stop()?.statistics ?? [], usedBefore, usedAfter);
  };
}

/** Minor page faults of one thread of this process (the main thread by default); undefined off Linux. */
export function minorFaults(tid: number = process.pid): number | undefined {
  try {
    const st = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    // after the command's ")": state ppid pgrp session tty_nr tpgid flags minflt …
    return Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[7]);
  } catch {
    return undefined;
  }
}
