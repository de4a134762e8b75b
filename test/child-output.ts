/**
 * What a spawned process wrote, and its end once that has all been read. Node emits a child's "exit" when it reaps
 * the process, which can come before libuv has read the last of its stdout and stderr out of their pipes: a test
 * that read the output at "exit" parsed a cut `--json` result or missed the last line (its error code, its stop's
 * line) on a loaded host. "close" comes after the process has exited and every one of its pipes has ended.
 *
 * A pipe ends when every process holding its write end has closed it: a grandchild that inherited it (a `serve
 * --workers` worker) holds "close" back until it is gone too, which is what a test that reads everything wants.
 */
import type { ChildProcess } from "node:child_process";

export interface ChildOutput {
  /** what it has written to stdout so far (all of it once `ended` has settled); "" when stdout is not piped */
  readonly stdout: () => string;
  /** likewise for stderr */
  readonly stderr: () => string;
  /** how it ended, once it has exited and its output has been read to the end ("close", not "exit") */
  readonly ended: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

/**
 * Collects the piped stdout and stderr of `child` (as UTF-8: a character split across two reads stays whole) and
 * says when it has ended. Call it right after spawn, before anything can be read; a caller may add listeners of its
 * own to the streams (they then receive strings).
 */
export function childOutput(child: ChildProcess): ChildOutput {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  return { stdout: () => stdout, stderr: () => stderr, ended };
}
