/**
 * The idle watcher's periodic sweep of the spool directory (ca/spool.ts): a producer killed while `jpki watch`
 * runs (a `jpki counter` writing a notice file under a dot-name) leaves its temporary file in DIR; the start-up
 * sweep has already run, so only the idle loop's sweep every tempSweepMs can remove it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CrlUpdater } from "../crl/updater.js";
import { thisNamespace } from "../store/pid-namespace.js";
import { Workspace } from "../workspace/workspace.js";
import { initCas } from "./manage.js";
import { prefecture } from "./prefectures.js";
import { watchSpool } from "./spool.js";

/** A temporary file's name as tempPathFor gives it, for the process `pid` of this PID namespace. */
const tempName = (target: string, pid: number) => `.${target}.${pid}~@${thisNamespace()}.0123456789ab.tmp`;

describe("jpki watch, idle: the spool's abandoned temporary files are swept while it runs", () => {
  it("removes a killed producer's temporary file left after start-up, and never a live producer's", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-spool-sweep-"));
    const ws = Workspace.create(join(root, "ws"));
    const spool = join(root, "spool");
    mkdirSync(spool);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const updater = new CrlUpdater(ws, "pw");
    await updater.preflight();
    // a pid that has exited: its writer is provably gone
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    const abandoned = join(spool, tempName("n1.jsonl", dead));
    const live = join(spool, tempName("n2.jsonl", process.pid)); // this process writes it: work in progress
    const controller = new AbortController();
    const seen: boolean[] = [];
    let step = 0;
    try {
      await watchSpool(ws, updater, {
        dir: spool,
        pollMs: 1,
        once: false,
        batchSize: 100,
        signal: controller.signal,
        tempSweepMs: 0, // every idle wake-up is a sweep's turn
        sleep: async () => {
          // planted after the start-up sweep, as a counter killed while the watcher runs leaves it
          if (step === 0) for (const p of [abandoned, live]) writeFileSync(p, '{"partial":');
          else seen.push(existsSync(abandoned));
          if (++step >= 3) controller.abort();
        },
      });
    } finally {
      await ws.close();
    }
    expect(seen).toEqual([false, false]);
    expect(existsSync(live)).toBe(true);
  });
});
