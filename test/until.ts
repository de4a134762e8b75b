/**
 * Waiting in a test for something another thread, process or socket does: ask until it holds, and fail saying what
 * never came. The bound is for a hang, not a measure of speed: a CI host at load 20 (two cores, other vitest
 * workers, PostgreSQL) took over 2 s for what takes 20 ms on a quiet one, and a loop of "100 × 20 ms, then assert"
 * failed there though nothing was wrong. Asking stops as soon as the condition holds, so a long bound costs a passing
 * test nothing; a test whose code is wrong still fails, at the bound.
 */
export async function until(holds: () => boolean | Promise<boolean>, what: string, o: { timeoutMs?: number; everyMs?: number } = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const deadline = performance.now() + timeoutMs;
  while (!(await holds())) {
    if (performance.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 10));
  }
}
