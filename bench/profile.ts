/**
 * JPKI_BENCH_PROFILE=<dir>: a bench's timed section is CPU-profiled (the main thread, node:inspector) and the
 * profile written to <dir>/<name>.cpuprofile, for Chrome DevTools or any .cpuprofile reader. The setup
 * around it, which takes longer than the section itself at 1M residents, stays out of the profile.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export async function profiled<T>(name: string, f: () => Promise<T>): Promise<T> {
  const dir = process.env.JPKI_BENCH_PROFILE;
  if (!dir) return f();
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  try {
    return await f();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
