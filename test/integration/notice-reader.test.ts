/**
 * The reader thread of notice ingestion (ca/notice-reader.ts) against the read stage in the ingesting thread:
 * the same feed — good notices, held ones, duplicates, a conflicting duplicate, lines that do not parse, a notice
 * not yet effective, unknown residents — ingested both ways into two copies of one workspace must give the same
 * summary, the same reject file byte for byte, and the same revocations. The thread runs the compiled module,
 * so this suite imports the library from dist/ (built by test/global-setup.ts).
 */
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

type Lib = typeof import("../../src/index.js");
type Ws = import("../../src/workspace/workspace.js").Workspace;
type WsClass = typeof import("../../src/workspace/workspace.js").Workspace;
type Fixtures = typeof import("../../src/registry/fixtures.js");
type Resident = typeof import("../../src/registry/resident.js");
type Authority = typeof import("../../src/ca/authority.js");
type Manage = typeof import("../../src/ca/manage.js");
type Prefectures = typeof import("../../src/ca/prefectures.js");
type Clocks = typeof import("../../src/pki/clock.js");

const DIST = join(import.meta.dirname, "../../dist/src");
const load = <T>(m: string): Promise<T> => import(pathToFileURL(join(DIST, m)).href) as Promise<T>;

const NOW = "2028-01-01T00:00:00Z";
let lib: Lib;
let Workspace: WsClass;
let clocks: Clocks;
let template: string;
let feed: string;
/** the conflicting duplicate's line: its reject carries the record as read */
let conflict: string;
/** the same, a relocation without newMunicipalityCode (its body has the defaulted field, its record not) */
let bareConflict: string;

beforeAll(async () => {
  lib = await load<Lib>("index.js");
  ({ Workspace } = await load<{ Workspace: WsClass }>("workspace/workspace.js"));
  clocks = await load<Clocks>("pki/clock.js");
  const { generateResidents, generateNotices } = await load<Fixtures>("registry/fixtures.js");
  const { parseResidentRecord } = await load<Resident>("registry/resident.js");
  const { caId } = await load<Authority>("ca/authority.js");
  const { initCas } = await load<Manage>("ca/manage.js");
  const { prefectureList } = await load<Prefectures>("ca/prefectures.js");

  const dir = tempDir("jpki-notice-reader-");
  template = join(dir, "template");
  const clock = new clocks.FixedClock(NOW);
  const ws = Workspace.create(template, { clock });
  try {
    await initCas(ws, { prefectures: prefectureList("13"), purposes: ["signature", "authentication"], passphrase: "test" });
    const residents = [...generateResidents({ count: 300, seed: "reader", prefectures: ["13"] })];
    const now = clock.now();
    const records = residents.map((r) => parseResidentRecord(r, { now }));
    await ws.store.upsertResidents(records);
    let n = 0;
    await ws.store.commitIssuances(
      records.flatMap((r) =>
        (["signature", "authentication"] as const).map((type) => ({
          serial: (0x10000 + n++).toString(16),
          caId: caId("13", type),
          type,
          residentCode: r.residentCode,
          municipalityCode: r.municipalityCode,
          fourItems: r.fourItems,
          notBefore: now,
          notAfter: new Date(now.getTime() + 365 * 86_400_000),
          issuedAt: now,
          der: Buffer.alloc(16, 0x30),
        })),
      ),
    );
    // The feed: generated notices (some for the same resident in a row), then everything the read and commit
    // stages reject or hold, spread over several batches.
    const good = [...generateNotices({ residents: residents.slice(0, 250), count: 400, seed: "reader", startDate: "2026-05-01" })].map((x) => JSON.stringify(x));
    const first = JSON.parse(good[0]!) as Record<string, unknown>;
    const relocation = JSON.parse(good.find((l) => l.includes('"kind":"relocation"') && !l.includes("newMunicipalityCode"))!) as Record<string, unknown>;
    const later = residents[260]!;
    const odd = [
      good[3]!, // a duplicate, same body
      (conflict = JSON.stringify({ ...first, effectiveDate: "2026-05-02" })), // same id, another body: a conflict
      "{not json",
      "[1,2]",
      JSON.stringify({ ...first, noticeId: "X-future", effectiveDate: "2029-01-01" }), // not yet effective
      JSON.stringify({ noticeId: "X-held", residentCode: later.residentCode, kind: "death", effectiveDate: "2026-05-01", sequence: 3, municipalityCode: later.municipalityCode }),
      JSON.stringify({ noticeId: "X-unknown", residentCode: "00000000019", kind: "death", effectiveDate: "2026-05-01", sequence: 1, municipalityCode: later.municipalityCode }),
      JSON.stringify({ ...first, noticeId: "X-extra", surprise: 1 }),
      // Nested 100,000 levels: once a RangeError writing its reject (here) or posting it (on the thread).
      `{"noticeId":"X-deep","after":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`,
      (bareConflict = JSON.stringify({ ...relocation, effectiveDate: "2026-05-02" })),
    ];
    const lines = [...good.slice(0, 150), ...odd, ...good.slice(150), ...odd.slice(0, 4)];
    feed = join(dir, "feed.jsonl");
    writeFileSync(feed, lines.join("\n") + "\n");
  } finally {
    await ws.close();
  }
}, 120_000);

async function ingest(readerThread: boolean, opts: { source?: string; format?: "auto" | "jsonl" | "csv" } = {}) {
  const root = join(tempDir("jpki-notice-reader-run-"), "ws");
  cpSync(template, root, { recursive: true });
  const ws: Ws = Workspace.open(root, { clock: new clocks.FixedClock(NOW) });
  try {
    const rejectPath = join(root, "..", "rejects.jsonl");
    const r = await lib.runIngest(ws, { source: opts.source ?? feed, format: opts.format ?? "jsonl", rejectPath, batchSize: 64, crlIntervalMs: 0, updater: undefined, readerThread });
    const rejects = r.rejectFile ? readFileSync(r.rejectFile, "utf8") : "";
    // Every stored notice as read back: the thread sends bodies as UTF-8 bytes, stored as the same text.
    const ids = [...new Set([...readFileSync(feed, "utf8").matchAll(/"noticeId":"([^"]+)"/g)].map((m) => m[1]!))];
    const stored = (await Promise.all(ids.map((id) => ws.store.getNotice(id)))).filter((n) => n !== undefined);
    return { summary: { ...r, seconds: 0, rejectFile: null }, rejects, revoked: await ws.store.revocationSummary(), held: await ws.store.listHeldNotices(), stored };
  } finally {
    await ws.close();
  }
}

describe("notice ingestion with a reader thread", () => {
  it("gives the same summary, rejects and revocations as reading in the ingesting thread", async () => {
    const here = await ingest(false);
    const thread = await ingest(true);
    expect(here.summary.read).toBe(414);
    expect(here.summary.rejected).toBe(11);
    expect(here.rejects).toContain('"code":"ERR_IMPORT_FORMAT","reason":"line 159: field \\"after\\" nests objects and arrays more than 512 levels deep"');
    expect(here.summary.held).toBe(1);
    // Rejected when committing, after the thread passed its record on as text.
    expect(thread.rejects).toContain(`"record":${conflict}}`);
    expect(thread.rejects).toContain(`"record":${bareConflict}}`);
    expect(here.revoked.length).toBeGreaterThan(100);
    expect(thread.summary).toEqual(here.summary);
    expect(thread.rejects).toBe(here.rejects);
    expect(thread.revoked).toEqual(here.revoked);
    expect(thread.held).toEqual(here.held);
    expect(here.stored.length).toBe(401);
    expect(thread.stored.every((n) => typeof n.body === "string")).toBe(true);
    expect(thread.stored).toEqual(here.stored);
    // a relocation's body has its municipality after, given or not (parseNotice's default): one normal form
    const relocations = here.stored.filter((n) => n.kind === "relocation");
    expect(relocations.length).toBeGreaterThan(10);
    expect(relocations.every((n) => (JSON.parse(n.body as string) as Record<string, unknown>)["newMunicipalityCode"] !== undefined)).toBe(true);
  });

  it("reports a file-level problem found on the thread with its code, as in the ingesting thread", async () => {
    const dir = tempDir("jpki-notice-reader-bad-");
    const csv = join(dir, "bad.csv");
    writeFileSync(csv, "noticeId,noticeId\nA,B\n");
    const here = await ingest(false, { source: csv, format: "csv" }).catch((e: { code?: string; message: string }) => e);
    const thread = await ingest(true, { source: csv, format: "csv" }).catch((e: { code?: string; message: string }) => e);
    expect(here).toMatchObject({ code: "ERR_IMPORT_FORMAT" });
    expect(thread).toMatchObject({ code: (here as { code: string }).code, message: (here as { message: string }).message });
  });
});
