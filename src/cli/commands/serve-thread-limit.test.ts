/**
 * `jpki serve` in a process at its thread limit (a container's pids.max, systemd's TasksMax): every `new Worker`
 * throws ERR_WORKER_INIT_FAILED (the stand-in, test/thread-limit.ts). serve did not start: the access log's thread
 * threw from AccessLog's constructor. Now it starts and answers, the CRL schedule runs in its thread
 * (schedule-thread.ts inThread), and the access log says once that its lines are counted as dropped, naming the way
 * out. In this process: the run is stopped as a signal would (withStopSignal).
 */
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it, vi } from "vitest";
import { TEMPLATE_PASSPHRASE } from "../../../test/demo-template.js";
import type { Io } from "../output.js";
import { run } from "../program.js";

vi.mock("node:worker_threads", async (real) => (await import("../../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

describe("jpki serve at the process's thread limit", () => {
  it("starts and answers, its access log's lines counted as dropped and said so once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-serve-limit-"));
    const ws = join(dir, "ws");
    cpSync(inject("jpkiTokyoSqlite"), ws, { recursive: true });
    const logFile = join(dir, "access.log");
    let stderr = "";
    const io: Io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: { JPKI_PASSPHRASE: TEMPLATE_PASSPHRASE }, cwd: dir };
    const running = run(["--workspace", ws, "serve", "--listen", "127.0.0.1:0", "--access-log", logFile, "--no-ocsp"], io);
    let status: number;
    try {
      // the run ending first (a failed start) fails the wait at once, with what it said
      const ended = running.then((code) => expect.fail(`serve ended (exit ${code}): ${stderr}`));
      const url = await Promise.race([ended, vi.waitFor(() => /listening on (\S+)/.exec(stderr)![1]!, { timeout: 60_000, interval: 20 })]);
      status = (await fetch(new URL("healthz", url.endsWith("/") ? url : `${url}/`))).status;
    } finally {
      process.emit("SIGTERM"); // serve's stop signal (withStopSignal)
    }
    expect(await running, stderr).toBe(0);
    expect([200, 503]).toContain(status); // answered (503: a CRL not published yet); no line of it is written
    expect(stderr).toMatch(/the access log's thread could not be started \(ERR_WORKER_INIT_FAILED.*--access-log off/);
    expect(stderr.match(/access log's thread/g)).toHaveLength(1);
    expect(readFileSync(logFile, "utf8")).toBe("");
  });
});
