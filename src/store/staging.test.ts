/**
 * Staged files: written piece by piece to a temporary sibling, flushed, then installed by a rename or discarded;
 * the sweep of temporary files nobody writes any more, in a directory other PID namespaces may share.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { thisNamespace } from "./pid-namespace.js";
import { TEMP_STALE_MS, installNew, openStagingFile, stageFile, sweepStaleTemps, tempPathFor } from "./staging.js";

const OTHER_NS = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
const RANDOM = "0123456789ab";

/** A pid no process has here: a child's, once it has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((res) => p.on("exit", res));
  return p.pid!;
}

describe("openStagingFile", () => {
  it("writes in pieces, flushes early on request, and installs the whole file under its name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    const f = openStagingFile(target);
    f.write(Buffer.from("head-"));
    f.write(Buffer.alloc(100_000, 1));
    await f.flush();
    f.write(Buffer.from("-tail"));
    expect(existsSync(target)).toBe(false);
    const staged = f.finish();
    expect(() => f.write(Buffer.from("late"))).toThrow(/closed/);
    staged.install();
    const data = readFileSync(target);
    expect(data.length).toBe(5 + 100_000 + 5);
    expect(data.subarray(-5).toString()).toBe("-tail");
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["a.crl"]);
  });

  it("finishAsync syncs on the thread pool, closes, and installs the whole file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    const f = openStagingFile(target);
    f.write(Buffer.from("head-"));
    await f.flush();
    f.write(Buffer.from("tail"));
    const staged = await f.finishAsync();
    expect(() => f.write(Buffer.from("late"))).toThrow(/closed/);
    await expect(f.finishAsync()).rejects.toThrow(/closed/);
    expect(existsSync(target)).toBe(false);
    staged.install();
    expect(readFileSync(target, "utf8")).toBe("head-tail");
    expect(readdirSync(dir)).toEqual(["a.crl"]);
  });

  it("discard removes the temporary file, open or finished, and leaves the target alone", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    stageFile(target, "old").install();
    const open = openStagingFile(target);
    open.write(Buffer.from("new"));
    open.discard();
    const finished = openStagingFile(target);
    finished.write(Buffer.from("new"));
    finished.finish().discard();
    expect(readdirSync(dir)).toEqual(["a.crl"]);
    expect(readFileSync(target, "utf8")).toBe("old");
  });
});

describe("sweepStaleTemps", () => {
  const NOW = Date.UTC(2026, 4, 1, 9);
  /** A temporary file named as its writer named it, last touched `ageMs` before NOW. */
  function temp(dir: string, name: string, ageMs: number): string {
    const p = join(dir, name);
    writeFileSync(p, "half a CRL");
    const t = new Date(NOW - ageMs);
    utimesSync(p, t, t);
    return name;
  }

  it("names this process's temporary files with its pid and PID namespace", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    expect(basename(tempPathFor(join(dir, "13-sig.crl")))).toMatch(new RegExp(`^\\.13-sig\\.crl\\.${process.pid}~@${thisNamespace()}\\.[0-9a-f]{12}\\.tmp$`));
    const f = openStagingFile(join(dir, "13-sig.crl"));
    expect(f.tmp).toContain(`.${process.pid}~@${thisNamespace()}.`);
    f.discard();
  });

  it("removes this namespace's temporary files whose writer is gone, and keeps a live writer's however old", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const dead = await deadPid();
    const killed = temp(dir, `.13-sig.crl.${dead}~@${thisNamespace()}.${RANDOM}.tmp`, 0);
    const live = temp(dir, `.13-sig.crl.${process.pid}~@${thisNamespace()}.${RANDOM}.tmp`, 10 * TEMP_STALE_MS);
    expect(sweepStaleTemps(dir, { now: NOW })).toEqual([killed]);
    expect(readdirSync(dir)).toEqual([live]);
  });

  // A workspace directory shared by containers: another PID namespace's writer has a pid that runs nowhere here (or
  // is some other process here). Judged by pid, its half-written CRL was deleted under it, and its install failed.
  it("keeps another namespace's temporary file while it is fresh, whatever its pid, and removes it once stale", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const dead = await deadPid();
    const writing = temp(dir, `.13-sig.crl.${dead}~@${OTHER_NS}.${RANDOM}.tmp`, TEMP_STALE_MS - 60_000);
    const abandoned = temp(dir, `.13-auth.crl.${dead}~@${OTHER_NS}.${RANDOM}.tmp`, TEMP_STALE_MS + 60_000);
    expect(sweepStaleTemps(dir, { now: NOW })).toEqual([abandoned]);
    expect(readdirSync(dir)).toEqual([writing]);
  });

  it("judges an earlier version's pid-only temporary file by its age: its namespace cannot be told", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const dead = await deadPid();
    const writing = temp(dir, `.13-sig.crl.${dead}.${RANDOM}.tmp`, 60_000);
    const abandoned = temp(dir, `.13-auth.crl.${dead}.${RANDOM}.tmp`, TEMP_STALE_MS + 60_000);
    expect(sweepStaleTemps(dir, { now: NOW })).toEqual([abandoned]);
    expect(readdirSync(dir)).toEqual([writing]);
    expect(sweepStaleTemps(dir, { now: NOW + TEMP_STALE_MS })).toEqual([writing]);
  });

  it("sweeps companions (a staged SQLite file's -wal) only when asked, by the same rule; other names never", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const dead = await deadPid();
    const wal = temp(dir, `.jpki.db.${dead}~@${thisNamespace()}.${RANDOM}.tmp-wal`, 0);
    const foreignWal = temp(dir, `.jpki.db.${dead}~@${OTHER_NS}.${RANDOM}.tmp-wal`, 0);
    const others = [temp(dir, "13-sig.crl", 10 * TEMP_STALE_MS), temp(dir, ".producer-feed.jsonl", 10 * TEMP_STALE_MS), temp(dir, `.x.${dead}.short.tmp`, 10 * TEMP_STALE_MS)];
    expect(sweepStaleTemps(dir, { now: NOW })).toEqual([]);
    expect(sweepStaleTemps(dir, { now: NOW, suffixes: ["-wal"] })).toEqual([wal]);
    expect(readdirSync(dir).sort()).toEqual([foreignWal, ...others].sort());
  });
});

describe("installNew", () => {
  it("links the staged file under the first free name, never over a file there, and removes the temporary name", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    writeFileSync(join(dir, "a"), "earlier");
    const staged = stageFile(join(dir, "a"), "later");
    expect(installNew(staged.tmp, [join(dir, "a"), join(dir, "a-2")])).toBe(join(dir, "a-2"));
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("earlier");
    expect(readFileSync(join(dir, "a-2"), "utf8")).toBe("later");
    expect(readdirSync(dir).sort()).toEqual(["a", "a-2"]);
    const again = stageFile(join(dir, "a"), "third");
    expect(installNew(again.tmp, [join(dir, "a"), join(dir, "a-2")])).toBeUndefined();
    expect(existsSync(again.tmp)).toBe(true);
  });
});
