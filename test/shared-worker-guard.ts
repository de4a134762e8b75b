/**
 * A setup file of the "sqlite-shared" project (vitest.config.ts), run before each of its files: test/isolation.ts
 * admits a file there by its text, and this checks, as the file ends, what it left in the process that the next file
 * of the worker runs in. A file fails when it ends with a signal handler more or fewer than it began with (an
 * in-process `serve` or `watch` stopped otherwise than by returning keeps withStopSignal's), another environment or
 * working directory, or a server still listening. Such a file belongs in the "sqlite" project, isolated, or must undo
 * what it did.
 */
import { afterAll, expect } from "vitest";

const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "exit", "beforeExit", "uncaughtException", "unhandledRejection"] as const;

/** What a file could leave that the next one would see. vitest's own VITEST_* variables are its to set. */
function processState() {
  return {
    listeners: Object.fromEntries(SIGNALS.map((s) => [s, process.listenerCount(s)])),
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST_"))),
    cwd: process.cwd(),
    servers: process.getActiveResourcesInfo().filter((r) => r.endsWith("ServerWrap")).length,
  };
}

const atStart = processState();

afterAll(async () => {
  // A server whose close() has returned, or resolved, keeps its handle until libuv's close callbacks, later in the same
  // turn of the event loop: one timer's turn, and a little more on a loaded machine, lets it go.
  for (let i = 0; i < 50 && processState().servers > atStart.servers; i++) await new Promise((r) => setTimeout(r, 10));
  expect(processState(), "what this file left in the shared worker (test/shared-worker-guard.ts)").toEqual(atStart);
});
