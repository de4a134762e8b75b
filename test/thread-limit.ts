/**
 * node:worker_threads as a process at its thread limit sees it (a container's pids.max, systemd's TasksMax): the
 * Worker constructor throws ERR_WORKER_INIT_FAILED, as Node 20 does when it cannot start the thread. For vi.mock:
 *
 *   vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real()));
 */
export function atTheThreadLimit<T extends object>(real: T): T {
  class AtTheThreadLimit {
    constructor() {
      throw Object.assign(new Error("Worker initialization failure: EAGAIN"), { code: "ERR_WORKER_INIT_FAILED" });
    }
  }
  return { ...real, Worker: AtTheThreadLimit };
}
