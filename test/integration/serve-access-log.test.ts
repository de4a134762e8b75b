/**
 * `jpki serve`'s access log as an operator runs it (the built CLI, one process) on a disk that fills: the server keeps
 * answering, every request is either in the log or counted in jpki_access_log_dropped_total, and an operator who frees
 * the disk by deleting the log and sends SIGHUP gets a new log holding the lines that waited and those of
 * the requests after it. The disk is a 64 KiB tmpfs of the test's own (mount: root only).
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filledItsDisk } from "../full-disk.js";
import { until } from "../until.js";
import { cli, startServe, tempDir, tokyoWorkspace } from "./helpers.js";

let dir: string;
let ws: string;
let auth: { authorization: string };
const children: ChildProcess[] = [];
const mounted: string[] = [];

beforeAll(async () => {
  dir = tempDir("jpki-serve-log-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  // /metrics open to the operator's scraper
  const configPath = join(ws, "config.json");
  writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), openRoutes: ["/metrics"] }));
  const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "log test", "--kind", "government"], { cwd: dir });
  expect(added.code, added.stderr).toBe(0);
  auth = { authorization: `Bearer ${added.json().token}` };
}, 120_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  // lazily: a server killed above may not have let go of the log yet
  for (const m of mounted) execFileSync("umount", ["-l", m]);
});

const entries = (text: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { url: string; status: number });

describe("jpki serve's access log on a full disk", () => {
  it.skipIf(process.getuid?.() !== 0)("keeps answering, counts every line it could not write, and after the disk is freed and SIGHUP logs again in a new file", async () => {
    const logDir = join(dir, "log");
    execFileSync("mkdir", ["-p", logDir]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "none", logDir]);
    mounted.push(logDir);
    const filler = join(logDir, "filler");
    writeFileSync(filler, Buffer.alloc(32 << 10)); // what else the disk holds: half of it
    const logFile = join(logDir, "access.log");
    const s = await startServe(ws, ["--no-schedule", "--access-log", logFile]);
    children.push(s.child);
    const get = async () => (await fetch(`${s.url}/ca/13-sig.crt`, { headers: auth })).status;
    // some 50 KB of lines: more than the disk has left
    const before: number[] = [];
    for (let i = 0; i < 300; i++) before.push(await get());
    expect(before.every((c) => c === 200)).toBe(true);
    // until the disk is full: the file can take no more, what the server wrote there is final (its size unchanged for
    // 300 ms stood for it, and a server taken off the CPU that long on a loaded host was read before the disk filled)
    await until(() => filledItsDisk(logFile), "the access log to fill its disk", { timeoutMs: 60_000 });
    const old = readFileSync(logFile, "latin1");
    const oldLines = entries(old.slice(0, old.lastIndexOf("\n") + 1)).length;
    expect(oldLines).toBeLessThan(300);
    // the operator frees the disk by deleting the log, and signals: its space comes back only once the server closes it
    // (which it did not, while half a line waited for the old file)
    rmSync(logFile);
    s.child.kill("SIGHUP");
    const after: number[] = [];
    for (let i = 0; i < 20; i++) after.push(await get());
    expect(after.every((c) => c === 200)).toBe(true);
    // the lines that waited and those after the signal, in the new file (polled, no timing asserted; counted by their
    // ends, as one being written may be read in part). The thread counts the torn line lost as it switches files,
    // before any line goes to the new one: `dropped` is final from then on.
    await until(() => existsSync(logFile) && readFileSync(logFile, "latin1").split("\n").length > 20, "20 lines in the new log", { timeoutMs: 60_000 });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const dropped = Number(/^jpki_access_log_dropped_total (\d+)$/m.exec(metrics)?.[1]);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    const fresh = entries(readFileSync(logFile, "utf8")).filter((l) => l.url !== "/metrics");
    // every request in the new file is a whole line of ours
    expect(fresh.every((l) => l.url === "/ca/13-sig.crt" && l.status === 200)).toBe(true);
    expect(fresh.length).toBeGreaterThanOrEqual(20);
    // every request written (to the deleted file or the new one) or counted as dropped, none twice
    expect(oldLines + fresh.length + dropped).toBe(320);
    expect(s.stderr()).not.toMatch(/at .*\.js:\d+/); // no stack trace
  }, 120_000);
});
