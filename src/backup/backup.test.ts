/**
 * The sweep of backups' partial directories (`.DEST.partial-<pid>~@<namespace>-<random>` beside DEST, each a whole
 * copy of the store) that killed backups leave: by staging.ts's rule (store/staging-dir.ts), never by a bare pid.
 * A kill -9 mid-backup, end to end, is in test/integration/backup.test.ts. Also: the destination is checked
 * before anything is opened or made.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { thisNamespace } from "../store/pid-namespace.js";
import { holdStagingDir } from "../store/staging-dir.js";
import { TEMP_STALE_MS } from "../store/staging.js";
import { sweepStalePartials, takeBackup } from "./backup.js";

const OTHER_NS = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
/** A pid that ran here and has ended. */
const dead = () => spawnSync("true").pid!;

/** A partial directory named `name` in `parent`, with a store file in it, everything last written `ageMs` ago. */
function partial(parent: string, name: string, ageMs: number): string {
  const d = join(parent, name);
  mkdirSync(join(d, "store"), { recursive: true });
  const f = join(d, "store", "jpki.db");
  writeFileSync(f, "x");
  const at = new Date(Date.now() - ageMs);
  for (const p of [f, join(d, "store"), d]) utimesSync(p, at, at);
  return name;
}

function parent(): string {
  return mkdtempSync(join(tmpdir(), "jpki-backup-partial-"));
}

describe("the sweep of backups' partial directories", () => {
  it("removes this namespace's whose backup is gone, and keeps a live one's however old", () => {
    const p = parent();
    const gone = partial(p, `.monday.partial-${dead()}~@${thisNamespace()}-0badf00d`, 0);
    const live = partial(p, `.tuesday.partial-${process.ppid}~@${thisNamespace()}-0badf00d`, 10 * TEMP_STALE_MS);
    expect(sweepStalePartials(p)).toEqual([gone]);
    expect(readdirSync(p)).toEqual([live]);
  });

  it("keeps another namespace's while it was written within TEMP_STALE_MS, whatever its pid, and removes it after", () => {
    const p = parent();
    const fresh = partial(p, `.monday.partial-${dead()}~@${OTHER_NS}-0badf00d`, 0);
    const stale = partial(p, `.tuesday.partial-${process.ppid}~@${OTHER_NS}-0badf00d`, TEMP_STALE_MS + 60_000);
    expect(sweepStalePartials(p)).toEqual([stale]);
    expect(readdirSync(p)).toEqual([fresh]);
  });

  it("keeps this process's own running backup's, and removes an earlier process's with the same pid", () => {
    const p = parent();
    const mine = partial(p, `.monday.partial-${process.pid}~@${thisNamespace()}-0badf00d`, 0);
    const earlier = partial(p, `.tuesday.partial-${process.pid}~@${thisNamespace()}-0badf00d`, 0);
    const release = holdStagingDir(join(p, mine));
    try {
      expect(sweepStalePartials(p)).toEqual([earlier]);
      expect(readdirSync(p)).toEqual([mine]);
    } finally {
      release();
    }
  });

  // An earlier version's name, `.DEST.partial-<pid>-<random>`: whose namespace, nobody can tell. Its pid alone
  // would remove a live backup of another container sharing the directory; its age alone a live one here that is
  // quiet (pg_dump writing a large table). Removed when neither can be: dead here and quiet for TEMP_STALE_MS.
  it("removes an earlier version's pid-only one only when its pid runs nowhere here and nothing in it was written for TEMP_STALE_MS", () => {
    const p = parent();
    const deadFresh = partial(p, `.monday.partial-${dead()}-0badf00d`, 0);
    const liveOld = partial(p, `.tuesday.partial-${process.ppid}-0badf00d`, 10 * TEMP_STALE_MS);
    const deadOld = partial(p, `.wednesday.partial-${dead()}-0badf00e`, TEMP_STALE_MS + 60_000);
    expect(sweepStalePartials(p)).toEqual([deadOld]);
    expect(readdirSync(p).sort()).toEqual([deadFresh, liveOld].sort());
  });

  it("leaves every other name alone, and a file that only looks like one", () => {
    const p = parent();
    const others = [
      partial(p, "monday", 10 * TEMP_STALE_MS),
      partial(p, `.monday.partial-${dead()}~@xyz-0badf00d`, 10 * TEMP_STALE_MS),
      partial(p, `.restore-${dead()}~@${thisNamespace()}-0badf00d`, 10 * TEMP_STALE_MS),
    ];
    const file = `.tuesday.partial-${dead()}~@${thisNamespace()}-0badf00d`;
    writeFileSync(join(p, file), "not a backup");
    expect(sweepStalePartials(p)).toEqual([]);
    expect(readdirSync(p).sort()).toEqual([...others, file].sort());
  });
});

describe("takeBackup's destination", () => {
  it("under /proc, /sys or /dev is ERR_FILE_UNUSABLE before the workspace is even opened (was: a mkdir loop for ever, EPERM, a backup in /dev)", async () => {
    const missing = join(parent(), "no-workspace");
    for (const dest of ["/proc/jpki-test-backup", "/sys/jpki-test-backup", "/dev/jpki-test-backup"]) {
      await expect(takeBackup({ workspaceDir: missing, dest }), dest).rejects.toMatchObject({ code: "ERR_FILE_UNUSABLE", message: `backup directory ${dest}: is under /${dest.split("/")[1]}: jpki reads and writes regular files only` });
    }
  });
});
