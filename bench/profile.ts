/**
 * JPKI_BENCH_PROFILE=<dir>: a bench's timed section is CPU-profiled (the main thread, node:inspector) and the
 * profile written to <dir>/<name>.cpuprofile, for Chrome DevTools or any .cpuprofile reader. The setup
 * around it, which takes longer than the section itself at 1M residents, stays out of the profile.
 *
 * JPKI_BENCH_HEAP=1 as well: the section's allocations are sampled too (every 4 KiB allocated, on average) and
 * written to <dir>/<name>.heapprofile (DevTools' "Allocation sampling" view): what is allocated per unit of work
 * drives the GC helper threads' CPU, which on 2 cores is taken from the signers (issue bench) or the engine.
 * Sampled objects are kept whether collected or not (includeObjectsCollectedByMajorGC/MinorGC), so the profile
 * shows everything allocated, not what survived.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export async function profiled<T>(name: string, f: () => Promise<T>): Promise<T> {
  const dir = process.env.JPKI_BENCH_PROFILE;
  if (!dir) return f();
  const heap = process.env.JPKI_BENCH_HEAP === "1";
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  if (heap) {
    await session.post("HeapProfiler.enable");
    await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  await session.post("Profiler.start");
  try {
    return await f();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    if (heap) {
      const { profile: sampled } = await session.post("HeapProfiler.stopSampling");
      writeFileSync(join(dir, `${name}.heapprofile`), JSON.stringify(sampled));
    }
    session.disconnect();
  }
}
