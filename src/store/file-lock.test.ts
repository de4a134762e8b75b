import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { FOREIGN_LOCK_STALE_MS, withFileLock } from "./file-lock.js";
import { thisNamespace } from "./pid-namespace.js";

describe("withFileLock", () => {
  it("runs under the lock and lets go of it after", async () => {
    const lock = join(mkdtempSync(join(tmpdir(), "jpki-lock-")), ".lock");
    expect(await withFileLock(lock, "the test", async () => 1)).toBe(1);
    expect(await withFileLock(lock, "the test", async () => 2)).toBe(2);
  });

  it("takes over at once a killed holder's lock whose taker was killed too (its takeover marker names a dead process)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-lock-"));
    const lock = join(dir, ".lock");
    writeFileSync(lock, "2147483646 1", { mode: 0o600 });
    writeFileSync(`${lock}.takeover`, "2147483645 1", { mode: 0o600 });
    expect(await withFileLock(lock, "the test", async () => readdirSync(dir))).toEqual([".lock"]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("says what is wrong with a directory or a link planted at the lock's path, at once, instead of blaming another process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-lock-"));
    mkdirSync(join(dir, ".a.lock"));
    symlinkSync(join(dir, "elsewhere"), join(dir, ".b.lock"));
    for (const [name, what] of [[".a.lock", "a directory"], [".b.lock", "a symbolic link"]] as const) {
      const e = await withFileLock(join(dir, name), "the test", async () => 1).catch((x: unknown) => x);
      expect(isJpkiError(e, "ERR_WORKSPACE_LOCKED"), String(e)).toBe(true);
      expect((e as Error).message).toContain(`is not a lock file (${what})`);
    }
  });
});

describe("withFileLock across the threads of one process", () => {
  // jpki serve runs its CRL schedule (and the Bridge ARL refresh) on a worker thread: every thread has the same pid,
  // and each its own copy of this module. A lock naming our pid but not held by this thread was taken for a leftover
  // of an earlier process, taken over, and two threads held it at once.
  it("a lock held by a worker thread of this process is held: the main thread is refused, and gets it once the worker lets go", async () => {
    const { Worker } = await import("node:worker_threads");
    const { pathToFileURL } = await import("node:url");
    const lock = join(mkdtempSync(join(tmpdir(), "jpki-lock-")), ".lock");
    const module = pathToFileURL(join(import.meta.dirname, "..", "..", "dist", "src", "store", "file-lock.js")).href;
    const worker = new Worker(
      `const { parentPort, workerData } = require("node:worker_threads");
       import(workerData.module).then(({ withFileLock }) =>
         withFileLock(workerData.lock, "the worker's test", () => new Promise((done) => { parentPort.postMessage("held"); parentPort.once("message", done); })),
       ).then(() => parentPort.postMessage("released"), (e) => parentPort.postMessage("failed: " + e.message));`,
      { eval: true, workerData: { module, lock } },
    );
    const next = () => new Promise<string>((resolve) => worker.once("message", resolve));
    try {
      expect(await next()).toBe("held");
      const e = await withFileLock(lock, "the test", async () => "main thread held it too").catch((x: unknown) => x);
      expect(isJpkiError(e, "ERR_WORKSPACE_LOCKED"), String(e)).toBe(true);
      const released = next();
      worker.postMessage("let go");
      expect(await released).toBe("released");
      expect(await withFileLock(lock, "the test", async () => 1)).toBe(1);
    } finally {
      await worker.terminate();
    }
  });

  it("a lock an earlier process with our pid left (another start time) is taken over", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-lock-"));
    const lock = join(dir, ".lock");
    writeFileSync(lock, `${process.pid} 1 t0`, { mode: 0o600 });
    expect(await withFileLock(lock, "the test", async () => 1)).toBe(1);
  });
});

describe("withFileLock across PID namespaces (containers or hosts sharing the directory)", () => {
  // Another namespace's pid means nothing here: looked up as ours it was "not running", and a live holder's lock
  // was taken over. Such a lock is judged by its heartbeat (the holder refreshes its mtime) instead.
  const foreign = "0123456789abcdef";
  it("a lock of another namespace, touched lately, is held whatever its pid looks like here; the message says where", async () => {
    const lock = join(mkdtempSync(join(tmpdir(), "jpki-lock-")), ".lock");
    writeFileSync(lock, `2147483646 1 t0 @${foreign}`, { mode: 0o600 });
    const e = await withFileLock(lock, "the test", async () => 1).catch((x: unknown) => x);
    expect(isJpkiError(e, "ERR_WORKSPACE_LOCKED"), String(e)).toBe(true);
    expect((e as Error).message).toContain("in another container or host");
  });

  it("a lock of another namespace untouched past FOREIGN_LOCK_STALE_MS is taken over", async () => {
    const lock = join(mkdtempSync(join(tmpdir(), "jpki-lock-")), ".lock");
    writeFileSync(lock, `2147483646 1 t0 @${foreign}`, { mode: 0o600 });
    const old = new Date(Date.now() - FOREIGN_LOCK_STALE_MS - 60_000);
    utimesSync(lock, old, old);
    expect(await withFileLock(lock, "the test", async () => readFileSync(lock, "utf8"))).toContain(`@${thisNamespace()}`);
  });
});
