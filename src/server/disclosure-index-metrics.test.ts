/**
 * jpki serve and a store whose disclosure log's per-resident index is kept by a background indexer (PostgreSQL,
 * Store.disclosureIndex): a failing indexer is shown in /metrics and said through the serve log's onError (the 1st, 2nd, 4th …
 * failure), never silent. The store's side (counting, the listener called, retries) is postgres-disclosure-index.test.ts; here a
 * workspace's store is given a stand-in watch, as a SQLite store has none.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import type { DisclosureIndexWatch } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { buildServer } from "./app.js";

let ws: Workspace;
const watch: { -readonly [K in keyof DisclosureIndexWatch]: DisclosureIndexWatch[K] } = { failures: 0, behind: 0, onFailure: undefined };
const said: string[] = [];

beforeAll(() => {
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-serve-index-")), { clock: new FixedClock(new Date()), config: { openRoutes: ["/metrics"] } });
  Object.defineProperty(ws.store, "disclosureIndex", { value: watch });
});

afterAll(async () => {
  await ws?.close();
});

it("shows the disclosure index's failed runs and how far behind it is in /metrics, and says each failure through the serve log", async () => {
  const { app } = await buildServer(ws, { access: { onError: (e, what) => said.push(`${what}: ${(e as JpkiError).code}`) } });
  try {
    const scrape = async () => (await app.inject({ method: "GET", url: "/metrics" })).body;
    const value = (m: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(m)?.[1]);
    let m = await scrape();
    expect(m).toMatch(/^# HELP jpki_disclosure_index_failures_total .+/m);
    expect([value(m, "jpki_disclosure_index_failures_total"), value(m, "jpki_disclosure_index_behind_records")]).toEqual([0, 0]);
    watch.failures = 3;
    watch.behind = 9000;
    m = await scrape();
    expect([value(m, "jpki_disclosure_index_failures_total"), value(m, "jpki_disclosure_index_behind_records")]).toEqual([3, 9000]);
    // ten failures in a row: said at the 1st, 2nd, 4th and 8th, each naming its count
    for (let i = 0; i < 10; i++) watch.onFailure!(new JpkiError("ERR_STORE", "store failure while indexing the disclosure log: PostgreSQL error 53100"));
    expect(said).toEqual([1, 2, 4, 8].map((n) => expect.stringMatching(new RegExp(`^the disclosure log's per-resident index \\(failure ${n} of this server; .*: ERR_STORE$`))));
  } finally {
    await app.close();
  }
});
