/**
 * The CLI run in this process with captured output, for unit tests of commands that need no workspace store of
 * their own choosing (test/integration/helpers.ts `cli` adds the PostgreSQL store and the workspace's env).
 */
import { Readable } from "node:stream";
import type { Io } from "../src/cli/output.js";
import { run } from "../src/cli/program.js";

export async function runInProcess(args: string[], o: { env: Record<string, string>; cwd: string; stdin?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: o.env,
    cwd: o.cwd,
    ...(o.stdin !== undefined ? { stdin: Readable.from([Buffer.from(o.stdin)]) as NodeJS.ReadableStream } : {}),
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}
