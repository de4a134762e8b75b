/**
 * `jpki watch`, `jpki serve` and `jpki notices ingest` stopped by SIGTERM at any moment of their start-up (slow:
 * spawns the built CLI through its launcher). Their handlers were set only once the program and the library had loaded and the
 * passphrase was read: a SIGTERM in their first ≈ 1.5–2 s (a service manager's restart right after a start) met
 * node's default and ended them 143, killed. Now the launcher holds it from its first line (bin/early-stop.cjs), and each
 * stops as it does later on: the daemons exit 0, notices ingest 143 as any stop of a run with input unread (its
 * result printed, nothing begun), the workspace's lock released, so the next start runs.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { childOutput } from "../child-output.js";
import { cli, freePort, MAIN, storeEnv, tempDir, tokyoWorkspace } from "./helpers.js";

const PROBE = join(import.meta.dirname, "started-probe.cjs");

let dir: string;
let ws: string;
let spool: string;

beforeAll(async () => {
  dir = tempDir();
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  spool = join(dir, "spool");
  mkdirSync(spool);
});

/** The moments of the start-up a SIGTERM is sent at: each after jpki's own first line has run (started-probe.cjs). */
type Moment = (m: { readonly started: Promise<void>; readonly firstLine: Promise<void> }) => Promise<void>;

/** Starts `jpki COMMAND…` on the workspace, sends SIGTERM at `moment`, and says how it ended. */
async function stopAt(command: string[], moment: Moment): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [MAIN, "--workspace", ws, ...command], {
    env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)), NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${JSON.stringify(PROBE)}` },
    stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  // its end once its output is read (child-output.ts): its stop's line and --json result, checked next, may come after the exit
  const out = childOutput(child);
  const started = new Promise<void>((resolve) => (child.stdio[3] as NodeJS.ReadableStream).once("data", () => resolve()));
  const firstLine = new Promise<void>((resolve) => child.stderr!.on("data", () => out.stderr().includes("\n") && resolve()));
  // a start that ended by itself (it failed) is not waited for: the assertions below say what it said
  await Promise.race([moment({ started, firstLine }), out.ended]);
  child.kill("SIGTERM");
  return { ...(await out.ended), stdout: out.stdout(), stderr: out.stderr() };
}

const after = (ms: number): Moment => async ({ started }) => {
  await started;
  await new Promise((r) => setTimeout(r, ms));
};

const MOMENTS: Array<[string, Moment]> = [
  // the launcher's first turn: the program not loaded yet
  ["as jpki's first line has run", ({ started }) => started],
  // somewhere in loading the program, reading the passphrase, loading the library, opening the workspace
  ["150 ms after", after(150)],
  ["500 ms after", after(500)],
  ["1 s after", after(1_000)],
  // its handlers set long since (watch: in the start-up round, a first start issuing OCSP signers and CRLs)
  ["after its first stderr line", ({ firstLine }) => firstLine],
];

describe("SIGTERM at any moment of a daemon's start-up", () => {
  it("jpki watch exits 0 (stopped, not killed: before, 143 until its handlers were set), with nothing begun, and the next watch starts and runs", async () => {
    for (const [when, moment] of MOMENTS) {
      const r = await stopAt(["watch", spool, "--poll", "50"], moment);
      // each start ran (the one before released the workspace's lock: ERR_WORKSPACE_LOCKED otherwise) and stopped
      expect({ when, code: r.code, signal: r.signal }, r.stderr).toEqual({ when, code: 0, signal: null });
      expect(r.stderr, when).not.toMatch(/ERR_|error/i);
      expect(r.stdout, when).toMatch(/stopped by signal/);
    }
    // the next start runs whole, and what the stopped ones did holds: the audit chain unbroken
    const once = await cli(["--workspace", ws, "watch", spool, "--once", "--json"], { cwd: dir });
    expect(once.code, once.stderr).toBe(0);
    expect(once.json()).toMatchObject({ stopped: false, failed: 0 });
    const audit = await cli(["--workspace", ws, "audit", "verify"], { cwd: dir });
    expect(audit.code, audit.stderr).toBe(0);
  }, 300_000);

  it("jpki serve exits 0 likewise, alone and with --workers 2 (whose workers hold it too), and the next serve listens", async () => {
    const serve = ["serve", "--listen", "127.0.0.1:0", "--access-log", "off"];
    const runs: Array<[string[], string, Moment]> = [
      ...MOMENTS.map(([when, moment]): [string[], string, Moment] => [serve, when, moment]),
      ...MOMENTS.filter(([when]) => when !== "150 ms after" && when !== "1 s after").map(([when, moment]): [string[], string, Moment] => [[...serve, "--workers", "2"], `--workers 2, ${when}`, moment]),
    ];
    for (const [command, when, moment] of runs) {
      const r = await stopAt(command, moment);
      expect({ when, code: r.code, signal: r.signal }, r.stderr).toEqual({ when, code: 0, signal: null });
      expect(r.stderr, when).not.toMatch(/ERR_|error/i);
    }
    // the last of them listened (its first stderr line), so each start before it released the workspace
    const audit = await cli(["--workspace", ws, "audit", "verify"], { cwd: dir });
    expect(audit.code, audit.stderr).toBe(0);
  }, 300_000);
  it("jpki notices ingest stops likewise (a job cancelled as it starts: before, killed by node's default), before it read a line: its result says so, nothing applied, nothing rejected, exit 143 as any stop with its input unread", async () => {
    // A line that, read, would be rejected: a reject file and a failing exit would say the run had begun.
    const file = join(dir, "notices.jsonl");
    writeFileSync(file, '{"not":"a notice"}\n');
    const rejects = () => {
      try {
        return readdirSync(join(ws, "rejects")).filter((f) => f.startsWith("notices.jsonl"));
      } catch {
        return [];
      }
    };
    // its start is the program, the passphrase and the library (no first stderr line: it prints none before its result).
    // Not "500 ms after": on a quick host (2026-12-07) the whole run of this one-line file had ended by then (exit 8,
    // the line rejected), so that moment was no longer its start-up. A batch that comes after the stop is not begun
    // (src/ca/notices.test.ts says so where no timing decides it).
    for (const [when, moment] of MOMENTS.filter(([w]) => w === "as jpki's first line has run" || w === "150 ms after")) {
      const r = await stopAt(["--json", "notices", "ingest", file], moment);
      // exited, not killed: a killed process has a signal and no result
      expect({ when, code: r.code, signal: r.signal }, r.stderr).toEqual({ when, code: 143, signal: null });
      expect(r.stderr, when).not.toMatch(/ERR_|error/i);
      expect(r.stderr, when).toMatch(/^jpki: notices ingest stopped by SIGTERM (while the store was opening|before it took a line): nothing was/m);
      expect(JSON.parse(r.stdout), when).toMatchObject({ stopped: true, signal: "SIGTERM", lastLineRead: 0, read: 0, applied: 0, rejected: 0 });
      expect(rejects(), when).toEqual([]);
    }
    const audit = await cli(["--workspace", ws, "audit", "verify"], { cwd: dir });
    expect(audit.code, audit.stderr).toBe(0);
  }, 300_000);
});

describe("SIGHUP in jpki serve's start-up (logrotate's postrotate, a reload right after a start)", () => {
  it("changes nothing, alone and with --workers 2: it listens, no worker dies of it, and SIGTERM then stops it with exit 0 (before, node's default ended serve 129, and a worker still loading when the primary passed it on)", async () => {
    for (const extra of [[], ["--workers", "2"]]) {
      const child = spawn(process.execPath, [MAIN, "--workspace", ws, "serve", "--listen", "127.0.0.1:0", "--access-log", "off", ...extra], {
        env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)), NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${JSON.stringify(PROBE)}` },
        stdio: ["ignore", "pipe", "pipe", "pipe"],
      });
      const out = childOutput(child);
      const exited = out.ended;
      // it listens, or a worker died (the primary would replace it, a second later, then 2, 4 …)
      const listening = new Promise<void>((resolve) => child.stderr!.on("data", () => /listening on|exited \(/.test(out.stderr()) && resolve()));
      await new Promise<void>((resolve) => (child.stdio[3] as NodeJS.ReadableStream).once("data", () => resolve()));
      // every 50 ms from jpki's first line until it says it listens: each moment of the start-up, the workers' too
      const hup = setInterval(() => child.kill("SIGHUP"), 50);
      const ended = await Promise.race([listening.then(() => undefined), exited]);
      clearInterval(hup);
      expect({ extra, ended }, out.stderr()).toEqual({ extra, ended: undefined });
      child.kill("SIGTERM");
      expect({ extra, ...(await exited) }, out.stderr()).toEqual({ extra, code: 0, signal: null });
      expect(out.stderr(), extra.join(" ")).not.toMatch(/exited \(SIGHUP\)|ERR_|error/i);
    }
  }, 300_000);

  it("changes nothing while it stops either, its access log still draining into a slow reader of stdout (before, exit 129 and the lines lost)", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, "--workspace", ws, "serve", "--listen", `127.0.0.1:${port}`, "--access-log", "-"], {
      env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)) },
      // stdout never read: once the pipe is full, the log's close waits (up to its 2 s deadline)
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve) => child.stderr!.on("data", (d) => ((stderr += d), /listening on/.test(stderr) && resolve())));
    // ≈ 1 MB of access-log lines (each logs its 1 KB path), more than the pipe and the stream's buffer hold
    for (let i = 0; i < 800; i++) await (await fetch(`http://127.0.0.1:${port}/crl/${"x".repeat(1000)}`)).text();
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGHUP");
    expect(await exited, stderr).toEqual({ code: 0, signal: null });
    child.stdout!.destroy();
  }, 300_000);
});

