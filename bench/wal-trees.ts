/**
 * WAL frames per issued certificate, by B-tree, on an existing SQLite workspace (issue 8): issues a batch of
 * applications (JSON Lines, as `jpki issue --batch`) the way the CLI does, reads the frames each group commit
 * appended (bench/wal-frames.ts) and names their pages' trees once done. A count, not a rate: the same on a
 * loaded host as on a quiet one, for the same store and batch.
 *
 *   JPKI_PASSPHRASE=… node bin/jpki.cjs --run-module dist/bench/wal-trees.js WORKSPACE APPLICATIONS.jsonl
 *
 * It issues into WORKSPACE: run it on a copy. Measured at 1M certificates (README, issue bench).
 */
import { readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { IssuanceService, type BatchInput } from "../src/ca/issuance.js";
import type { Store } from "../src/store/types.js";
import { Workspace, workspacePaths } from "../src/workspace/workspace.js";
import { WalFrames } from "./wal-frames.js";

const [root, file] = process.argv.slice(2);
const passphrase = process.env.JPKI_PASSPHRASE;
if (!root || !file || !passphrase) {
  console.error("usage: JPKI_PASSPHRASE=… jpki --run-module dist/bench/wal-trees.js WORKSPACE APPLICATIONS.jsonl");
  process.exit(2);
}
const ws = await Workspace.openAsync(root);
if (ws.config.store !== "sqlite") throw new Error(`${root}: the WAL is SQLite's; this workspace's store is ${ws.config.store}`);
const { db } = workspacePaths(root);
const wal = new WalFrames(db);
wal.skip(); // what the log held before the batch
// Each commit's frames are read before the next transaction can start the log over: the store's own
// commitIssuances, then the read (the proxy keeps every other call on the store itself).
const store = new Proxy(ws.store, {
  get(target, p) {
    const v = Reflect.get(target, p, target) as unknown;
    if (p === "commitIssuances") {
      return async (...a: Parameters<Store["commitIssuances"]>) => {
        const out = await target.commitIssuances(...a);
        wal.take();
        return out;
      };
    }
    return typeof v === "function" ? (v as (...x: unknown[]) => unknown).bind(target) : v;
  },
});
async function* lines(): BatchInput {
  let line = 0;
  for (const text of readFileSync(file!, "utf8").split("\n")) {
    line++;
    if (text.trim()) yield { line, value: JSON.parse(text) as Record<string, unknown> };
  }
}
const service = new IssuanceService({ store, config: ws.config, clock: ws.clock, passphrase });
const summary = await service.issueBatch(lines());
await ws.close();
const frames = wal.frames;
const reader = new Database(db, { readonly: true });
const by = wal.byTree(reader);
reader.close();
const per = (n: number) => (n / summary.issued).toFixed(3);
console.log(`issued ${summary.issued} (failed ${summary.failed}): ${frames} WAL frames, ${per(frames)} per certificate`);
for (const [name, n] of by) console.log(`  ${name.padEnd(34)} ${per(n)}`);
