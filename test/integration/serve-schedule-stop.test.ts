/**
 * A whole `jpki serve` (the built CLI, its CRL schedule on its own thread) stopped by SIGTERM in the middle of the
 * schedule's start-up round. The pieces are tested apart — the round stops between CAs (src/server/serve-stop.test.ts),
 * the thread's open ends at the stop (src/server/schedule-thread-open-stop.test.ts) — but not the process: the
 * serving thread's stop has to reach the schedule thread, which finishes the CA it began, closes its connection and
 * ends, and only then can the process exit. A thread that did not end would hold the exit until the stop bound (30 s)
 * and then be cut off as a crash would end it, possibly between a CRL's staging and its install.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startServe, V6_PASSPHRASE, workspaceV6, type RunningServe } from "./helpers.js";

let running: RunningServe | undefined;
afterEach(() => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
});

/** Every file under `dir` (none if there is no such directory), as paths relative to `root`. */
function filesUnder(root: string, dir: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** The SHA-256 of the file at `path`, hex, or "missing". */
function digestOf(path: string): string {
  return existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : "missing";
}

describe("jpki serve stopped in the middle of its CRL schedule's start-up round", () => {
  it("the schedule thread finishes the CA it began and ends, the process exits 0 at once, every CRL on disk is the one its record names, nothing half-written", async () => {
    // 94 CAs whose CRLs are long past their refresh (made in November 2026): a start renews them all
    const { ws } = workspaceV6();
    const db = join(ws, "jpki.db");
    const started = Date.now();
    running = await startServe(ws, ["--no-ocsp"], { JPKI_PASSPHRASE: V6_PASSPHRASE });
    const s = running;
    expect(s.stderr()).toMatch(/listening on .*CRL schedule running/);
    // the CAs whose CRLs this serve has published, read beside it
    const renewed = () => {
      const c = new Database(db, { readonly: true });
      try {
        return c.prepare("SELECT count(DISTINCT ca_id) FROM crls WHERE state = 'published' AND this_update >= ?").pluck().get(Math.floor(started / 1000) * 1000) as number;
      } finally {
        c.close();
      }
    };
    for (let i = 0; renewed() < 3; i++) {
      if (i > 1_500 || s.child.exitCode !== null) throw new Error(`the round never began: ${s.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    s.child.kill("SIGTERM");
    expect(await s.exited, s.stderr()).toBe(0);
    // A thread left running would hold the exit until the 30 s stop bound and be ended there, saying so ("did not
    // finish its round"): the words, not the time to the exit, which a loaded host can stretch past any bound.
    expect(s.stderr()).not.toMatch(/ERR_|did not finish its round|schedule thread/);
    // stopped in the middle: some CAs renewed, not all 94 (those are due again at the next start)
    const done = renewed();
    expect(done).toBeGreaterThanOrEqual(3);
    expect(done).toBeLessThan(94);

    // Nothing half-written: no staged file left behind, no number reserved and not published, and the file of each
    // CRL scope's latest publication is the one its record names, byte for byte (the digest recorded with it).
    const files = [...filesUnder(ws, "crl"), ...filesUnder(ws, "arl")];
    expect(files.filter((f) => f.endsWith(".tmp") || /\.tmp-[a-z]+$/.test(f))).toEqual([]);
    const c = new Database(db, { readonly: true });
    const latest = c
      .prepare("SELECT ca_id, scope, number, path, sha256 FROM crls k WHERE state = 'published' AND number = (SELECT max(number) FROM crls WHERE ca_id = k.ca_id AND scope = k.scope AND state = 'published')")
      .all() as Array<{ ca_id: string; scope: string; number: number; path: string; sha256: string }>;
    const reserved = c.prepare("SELECT count(*) FROM crls WHERE state = 'reserved'").pluck().get();
    c.close();
    expect(reserved).toBe(0);
    // every CA's full CRL, and the partitions and ARL of those renewed (the earlier release published neither)
    expect(latest.filter((k) => k.scope === "")).toHaveLength(94);
    expect(latest.length).toBeGreaterThan(94 + done);
    for (const k of latest) {
      expect({ crl: `${k.ca_id}/${k.scope} #${k.number}`, sha256: digestOf(join(ws, k.path)) }).toEqual({ crl: `${k.ca_id}/${k.scope} #${k.number}`, sha256: k.sha256 });
    }
  }, 90_000);
});
