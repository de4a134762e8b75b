/**
 * A thread jpki starts (node:worker_threads), without the process's command-line options. Every `new Worker` of
 * src/ is made here (thread.test.ts checks), so a new thread cannot forget it.
 *
 * Why `execArgv: []`: by default a thread gets the process's options, so a monitoring agent preloaded with
 * `--require` or `--import` (an embedder's `node -r agent app.js`) loaded again in every thread, its hooks and
 * connections with it, and `--cpu-prof`/`--heap-prof` wrote a profile per thread. No thread of ours needs an option:
 * its code is plain JavaScript (a dist/ module, or source run with eval), and V8's options (--max-old-space-size;
 * --expose-gc, which store/young-generation.ts sets at run time) are the process's whatever a thread is given.
 * What a thread still reads is NODE_OPTIONS, from its environment (the process's, left as node gives it): an option
 * every thread should have goes there. So does a TLS option such as --tls-min-v1.3, which on node's command line
 * no longer reaches the CRL schedule thread's PostgreSQL connection.
 *
 * The constructor throws ERR_WORKER_INIT_FAILED when the process is at its thread limit (a container's pids.max,
 * systemd's TasksMax); each caller does the work another way then (README, under `jpki serve`).
 */
import { Worker, type WorkerOptions } from "node:worker_threads";

/** `new Worker(code, options)` without the process's execArgv. */
export function newThread(code: string | URL, options: Omit<WorkerOptions, "execArgv"> = {}): Worker {
  return new Worker(code, { ...options, execArgv: [] });
}
