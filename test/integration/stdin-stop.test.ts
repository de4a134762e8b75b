/**
 * `jpki issue --batch -`, `jpki registry import -` and `jpki notices ingest -` stopped by a signal while stdin, still
 * open, has nothing more to give (slow: spawns the built CLI). Each checked its stop between two lines only: the stop
 * was acted on once a line or the end of the input came — with a feed that waits, never. And import and ingest exited
 * 0, stopped, where issue --batch exited 128 + n. Now each stops at once, keeps what it committed, says on stderr
 * after which line it stopped ("stopped", "signal" and "lastLineRead" in --json), and exits 128 + n.
 *
 * The signal is sent once the store holds what the run committed of the lines written (a condition, not a time);
 * stdin is ended only after the process has exited, so an exit proves the stop waited for no line and no end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateNotices, generateResidents } from "../../src/registry/fixtures.js";
import type { ResidentInput } from "../../src/registry/resident.js";
import type { Workspace } from "../../src/workspace/workspace.js";
import { MAIN, cardKey, cardKeys, cli, openWorkspace, storeEnv, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

let dir: string;
/** a workspace whose registry holds RESIDENTS (issue, ingest) */
let ws: string;
let residents: ResidentInput[];
const RESIDENTS = 2600;
const started = new Set<ChildProcess>();

beforeAll(async () => {
  dir = tempDir("jpki-stdin-stop-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  residents = [...generateResidents({ count: RESIDENTS, seed: "stdin-stop", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  const imp = await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
}, 300_000);

afterAll(() => {
  // only a run that never stopped (the defect) is still there
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

const lines = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r) + "\n").join("");

/**
 * Runs `jpki --workspace at ARGS` with `input` written to its stdin, which stays open; once `committed` (read on
 * the open workspace) holds, sends `signal` and waits for the exit. Then ends stdin.
 */
async function stopOnOpenStdin(
  at: string,
  args: string[],
  input: string,
  committed: (wsp: Workspace) => Promise<boolean>,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const wsp = await openWorkspace(at);
  try {
    const child = spawn(process.execPath, [MAIN, "--workspace", at, ...args], {
      env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(at)) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    started.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const outputs = Promise.all([new Promise((r) => child.stdout.once("close", r)), new Promise((r) => child.stderr.once("close", r))]);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once("exit", (code, sig) => res({ code, signal: sig })));
    child.stdin.on("error", () => undefined); // EPIPE, should it exit before reading everything
    child.stdin.write(input);
    while (child.exitCode === null && !(await committed(wsp).catch(() => false))) await new Promise((r) => setTimeout(r, 5));
    expect(child.exitCode, stderr).toBeNull(); // running still: its stdin is open
    child.kill(signal);
    const end = await exited;
    await outputs;
    child.stdin.end();
    return { ...end, stdout, stderr };
  } finally {
    await wsp.close();
  }
}

describe("a batch reading stdin, stopped while stdin waits", () => {
  it("registry import - stops on SIGINT at once: the lines read committed, where it stopped said, exit 130 (it waited for a line or the end, then exited 0)", async () => {
    const fresh = join(dir, "import-ws");
    await tokyoWorkspace(fresh);
    // the first batch (2,000) commits as soon as it is read; the rest (600) is read, and then stdin has nothing more
    const last = residents[1999]!.residentCode;
    const r = await stopOnOpenStdin(fresh, ["--json", "registry", "import", "-"], lines(residents), async (w) => (await w.store.getResident(last)) !== undefined, "SIGINT");
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 130, signal: null });
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ stopped: true, signal: "SIGINT", rejected: 0, updated: 0, unchanged: 0 });
    expect(report.read).toBeGreaterThanOrEqual(2000);
    expect(report.lastLineRead).toBe(report.read); // one resident a line
    expect(report.inserted).toBe(report.read); // every line read was committed
    expect(r.stderr).toContain(`jpki: registry import stopped by SIGINT after line ${report.read}: ${report.read} imported, 0 unchanged, 0 rejected; the lines after ${report.read} were not read.`);

    // the rest, from the whole file again: what was imported counts as unchanged
    const again = await cli(["--workspace", fresh, "--json", "registry", "import", join(dir, "residents.jsonl")], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ read: RESIDENTS, unchanged: report.read, inserted: RESIDENTS - report.read, rejected: 0 });
    expect(again.json().stopped).toBeUndefined();
  }, 300_000);

  it("issue --batch - stops on SIGTERM at once: the applications read issued and written, where it stopped said, exit 143 (it waited for a line or the end)", async () => {
    const out = join(dir, "certs");
    const key = cardKeys(readFileSync(cardKey(dir, "card").pub, "utf8"));
    // One application in flight (--concurrency 1): each line is signed and handed to the group commit before the next
    // is read, so the group of 500 commits (and its files appear) only once every line was read — the batch then
    // waits on stdin. With 16 in flight, the stop could come while lines were still read, and be met between two.
    const apps = residents.slice(0, 500).map((p, i) => ({ applicationId: `stdin-${i + 1}`, residentCode: p.residentCode, type: "signature", publicKey: key() }));
    const pems = () => {
      try {
        return readdirSync(out).filter((f) => f.endsWith(".pem"));
      } catch {
        return [];
      }
    };
    const r = await stopOnOpenStdin(ws, ["--json", "issue", "--batch", "-", "--out-dir", out, "--concurrency", "1"], lines(apps), async () => pems().length > 0, "SIGTERM");
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 143, signal: null });
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ stopped: true, signal: "SIGTERM", failed: 0, alreadyIssued: 0 });
    expect(report).toMatchObject({ read: 500, lastLineRead: 500, issued: 500 });
    expect(r.stderr).toContain(`jpki: issue --batch stopped by SIGTERM after line ${report.read}: ${report.issued} issued, 0 already issued, 0 failed, every certificate written to ${out}; the lines after ${report.read} were not read.`);
    // every certificate committed has its file
    const wsp = await openWorkspace(ws);
    try {
      const stored = (await wsp.store.findCertificates({ limit: 1_000_000 })).map((c) => `${c.serial}.pem`).sort();
      expect(stored.length).toBe(report.issued);
      expect(pems().sort()).toEqual(stored);
    } finally {
      await wsp.close();
    }
  }, 300_000);

  it("notices ingest - stops on SIGTERM at once: the batches begun committed, where it stopped said, exit 143 (it waited for a line or the end, then exited 0)", async () => {
    const notices = [...generateNotices({ residents, count: 250, seed: "stdin-stop" })];
    const ids = notices.map((n) => n.noticeId);
    const feed = writeJsonl(join(dir, "feed.jsonl"), notices);
    const known = async (w: Workspace) => (await w.store.loadNoticeContext({ noticeIds: ids, residentCodes: [] })).known.size;
    // batches of 100: two are taken as the lines come, the last 50 wait for a line or the end that completes them
    const r = await stopOnOpenStdin(ws, ["--json", "notices", "ingest", "-", "--batch-size", "100", "--no-crl"], lines(notices), async (w) => (await known(w)) >= 100, "SIGTERM");
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 143, signal: null });
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ stopped: true, signal: "SIGTERM", rejected: 0, duplicates: 0 });
    expect([100, 200]).toContain(report.read); // whole batches: the one the stop found unbegun is not taken
    expect(report.lastLineRead).toBe(report.read);
    expect(report.lastLine).toBeUndefined(); // the library's name, said once as lastLineRead
    expect(r.stderr).toContain(`jpki: notices ingest stopped by SIGTERM after line ${report.read}: applied ${report.applied}, held ${report.held}, duplicates 0, rejected 0; the lines after ${report.read} were not taken.`);
    const wsp = await openWorkspace(ws);
    let stored: number;
    try {
      stored = await known(wsp);
    } finally {
      await wsp.close();
    }
    expect(stored).toBe(report.applied + report.held);

    // the same feed again resumes: what was taken is skipped, the rest taken
    const again = await cli(["--workspace", ws, "--json", "notices", "ingest", feed, "--no-crl"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ read: notices.length, stopped: false, alreadyApplied: report.applied, alreadyHeld: report.held, rejected: 0 });
  }, 300_000);
});
