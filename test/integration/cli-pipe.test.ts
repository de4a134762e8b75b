/**
 * `jpki … | head`: a reader that goes away early ends jpki quietly. Spawns the built CLI (bin/jpki.cjs on
 * dist/, so `npm run build` first) with the read end of its stdout (or stderr) already closed, so every
 * write hits EPIPE deterministically, with no race against the child's output and no timing in the test.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");

/** Runs the CLI with the given streams closed on our side before it writes; resolves with its exit and stderr. */
function runWithClosed(args: string[], closed: Array<"stdout" | "stderr">): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "jpki.cjs"), ...args], { cwd: tempDir("jpki-pipe-"), stdio: ["ignore", "pipe", "pipe"] });
    for (const s of closed) child[s].destroy();
    let stderr = "";
    if (!closed.includes("stderr")) child.stderr.on("data", (b: Buffer) => (stderr += b));
    child.on("error", fail);
    child.on("close", (code, signal) => done({ code, signal, stderr }));
  });
}

describe("a closed pipe ends jpki quietly", () => {
  it("dist/ is built (npm run build)", () => {
    expect(existsSync(join(ROOT, "dist", "src", "cli", "main.js")), "run npm run build before the spawned tests").toBe(true);
  });

  it("jpki --help | head: no EPIPE, no stack trace, exit 0", async () => {
    const r = await runWithClosed(["--help"], ["stdout"]);
    expect(r.stderr).not.toContain("EPIPE");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r).toEqual({ code: 0, signal: null, stderr: "" });
  });

  it("a --json result into a closed pipe: the command still completes and exits with its own code", async () => {
    const out = tempDir("jpki-pipe-out-");
    const r = await runWithClosed(["fixtures", "generate", "--residents", "3", "-o", out, "--json"], ["stdout"]);
    expect(r).toEqual({ code: 0, signal: null, stderr: "" });
    expect(existsSync(join(out, "residents.jsonl"))).toBe(true);
  });

  it("an error message into a closed stderr keeps the error's exit code (no crash)", async () => {
    const r = await runWithClosed(["no-such-command"], ["stdout", "stderr"]);
    expect(r).toMatchObject({ code: 2, signal: null });
  });
});
