/**
 * node:worker_threads as a process at its thread limit sees it (a container's pids.max, systemd's TasksMax): the
 * Worker constructor throws ERR_WORKER_INIT_FAILED, as Node 20 does when it cannot start the thread. For vi.mock:
 *
 *   vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real()));
 *
 * `limit` makes the limit come and go: while `reached` is false the real Worker is made. Shared with the test through
 * vi.hoisted, as vi.mock's factory runs before the test file's own code:
 *
 *   const limit = vi.hoisted(() => ({ reached: true }));
 *   vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real(), limit));
 */
export function atTheThreadLimit<T extends object>(real: T, limit: { readonly reached: boolean } = { reached: true }): T {
  const Real = (real as unknown as { Worker: new (...args: unknown[]) => object }).Worker;
  // A function, not a class: `new` on it gives the real Worker it returns once the limit has passed.
  const AtTheThreadLimit = function (...args: unknown[]): object {
    if (limit.reached) throw Object.assign(new Error("Worker initialization failure: EAGAIN"), { code: "ERR_WORKER_INIT_FAILED" });
    return new Real(...args);
  };
  return { ...real, Worker: AtTheThreadLimit };
}
