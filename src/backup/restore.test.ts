/**
 * The sweep of restores' staging directories (`.restore-<pid>~@<namespace>-<random>` in the workspace root, each a
 * whole copy of the store) in a workspace other PID namespaces may share: by staging.ts's rule, never by a bare pid.
 * Also: a backup path that is no directory is a wrong path, not a damaged backup.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { thisNamespace } from "../store/pid-namespace.js";
import { TEMP_STALE_MS } from "../store/staging.js";
import { verifyBackup } from "./manifest.js";
import { restoreBackup, sweepStaleStages } from "./restore.js";

const OTHER_NS = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
/** A pid that ran here and has ended. */
const dead = () => spawnSync("true").pid!;

/** A staging directory named `name` in `root`, with a store file two levels down, everything last written `ageMs` ago. */
function stage(root: string, name: string, ageMs: number, fileAgeMs = ageMs): string {
  const d = join(root, name);
  mkdirSync(join(d, "ws", "crl"), { recursive: true });
  const f = join(d, "ws", "crl", "13-sig.crl");
  writeFileSync(f, "x");
  const at = (ms: number) => new Date(Date.now() - ms);
  utimesSync(f, at(fileAgeMs), at(fileAgeMs));
  for (const p of [join(d, "ws", "crl"), join(d, "ws"), d]) utimesSync(p, at(ageMs), at(ageMs));
  return name;
}

function root(): string {
  return mkdtempSync(join(tmpdir(), "jpki-restore-stage-"));
}

describe("the sweep of restores' staging directories", () => {
  it("removes this namespace's whose restore is gone, and keeps a live one's however old", () => {
    const r = root();
    const gone = stage(r, `.restore-${dead()}~@${thisNamespace()}-0badf00d`, 0);
    const live = stage(r, `.restore-${process.ppid}~@${thisNamespace()}-0badf00d`, 10 * TEMP_STALE_MS);
    expect(sweepStaleStages(r)).toEqual([gone]);
    expect(readdirSync(r)).toEqual([live]);
  });

  // A workspace volume shared by containers: another namespace's pid runs nowhere here (or is some other process
  // here). Judged by pid, a live restore's staged store was deleted under it, or a dead one's kept for ever.
  it("keeps another namespace's while anything in it was written within TEMP_STALE_MS, whatever its pid, and removes it after", () => {
    const r = root();
    const fresh = stage(r, `.restore-${dead()}~@${OTHER_NS}-0badf00d`, 0);
    // its top directory quiet for days, its store being written now: in use
    const writing = stage(r, `.restore-${dead()}~@${OTHER_NS}-0badf00e`, 10 * TEMP_STALE_MS, 1000);
    const stale = stage(r, `.restore-${process.ppid}~@${OTHER_NS}-0badf00d`, TEMP_STALE_MS + 60_000);
    expect(sweepStaleStages(r)).toEqual([stale]);
    expect(readdirSync(r).sort()).toEqual([fresh, writing].sort());
  });

  it("removes one named with this process's own pid and namespace that no restore of this process is using (an earlier process's)", () => {
    const r = root();
    const earlier = stage(r, `.restore-${process.pid}~@${thisNamespace()}-0badf00d`, 0);
    expect(sweepStaleStages(r)).toEqual([earlier]);
  });

  // An earlier version's name: whose namespace, nobody can tell. Its pid alone removed a live restore of another
  // container; its age alone would remove a live one of ours that is quiet (an earlier version does not touch its
  // directory while pg_restore runs). Removed when neither can be: dead here and quiet for TEMP_STALE_MS.
  it("removes an earlier version's pid-only one only when its pid runs nowhere here and nothing in it was written for TEMP_STALE_MS", () => {
    const r = root();
    const deadFresh = stage(r, `.restore-${dead()}-0badf00d`, 0);
    const liveOld = stage(r, `.restore-${process.ppid}-0badf00d`, 10 * TEMP_STALE_MS);
    const deadOld = stage(r, `.restore-${dead()}-0badf00e`, TEMP_STALE_MS + 60_000);
    expect(sweepStaleStages(r)).toEqual([deadOld]);
    expect(readdirSync(r).sort()).toEqual([deadFresh, liveOld].sort());
  });

  it("leaves every other name alone, however old", () => {
    const r = root();
    const others = [stage(r, "before-restore-20260105T000000Z", 10 * TEMP_STALE_MS), stage(r, `.restore-${dead()}~@xyz-0badf00d`, 10 * TEMP_STALE_MS), stage(r, ".restore-incomplete", 10 * TEMP_STALE_MS)];
    expect(sweepStaleStages(r)).toEqual([]);
    expect(readdirSync(r).sort()).toEqual(others.sort());
    expect(existsSync(join(r, others[0]!, "ws"))).toBe(true);
  });
});

describe("the backup a restore reads", () => {
  it("under /proc or /dev, a file: ERR_FILE_UNUSABLE; missing: ERR_FILE_NOT_FOUND; from verifyBackup and restoreBackup alike (was: ERR_BACKUP_CORRUPT, or not found for a file)", async () => {
    const r = root();
    const file = join(r, "a-file");
    writeFileSync(file, "x");
    const target = join(r, "ws");
    for (const [src, code] of [["/proc/self", "ERR_FILE_UNUSABLE"], ["/dev/shm", "ERR_FILE_UNUSABLE"], [file, "ERR_FILE_UNUSABLE"], [join(r, "none"), "ERR_FILE_NOT_FOUND"]] as const) {
      expect(() => verifyBackup(src), src).toThrow(expect.objectContaining({ code, message: expect.stringMatching(new RegExp(`^backup ${src}: `)) }));
      await expect(restoreBackup({ source: src, workspaceDir: target }), src).rejects.toMatchObject({ code });
    }
    expect(existsSync(target)).toBe(false);
  });
});
