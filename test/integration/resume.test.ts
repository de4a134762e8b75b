/**
 * Crash safety of notice ingestion (slow: spawns the built CLI). A run killed with SIGKILL mid-file and run
 * again, and a watch daemon stopped with SIGTERM and started again, end with a store identical to one clean
 * run over the same feed: nothing lost, nothing applied twice.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generateNotices, generateResidents } from "../../src/registry/fixtures.js";
import { formatIngest } from "../../src/cli/commands/notices.js";
import type { Workspace } from "../../src/workspace/workspace.js";
import { DUMP_KINDS, type DumpKind, type StoredNotice } from "../../src/store/types.js";
import { cardKeys, cardKey, cli, copyWorkspace as copyStore, expectedStore, openWorkspace, settledSpool, storeEnv, storeKindOf, tempDir, writeJsonl } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "dist/src/cli/main.js");
let dir: string;
let base: string;
let feed: string;
let total: number;
/** Every notice id in the feed, and every resident code a notice in it names (before or after a code change). */
let noticeIds: string[];
let codes: string[];
const ALL = 1_000_000;
const NOTICE_COUNT = 4_000;
/** the killed and the stopped runs' batch size: 100 batches in the feed */
const BATCH = String(NOTICE_COUNT / 100);
const NOTICES = DUMP_KINDS.indexOf("notices");

/**
 * Everything ingestion decides, in a comparable form (timestamps left out: they are when it ran), read
 * through the store API: every notice of the feed the store knows, the last sequence of every code the feed
 * names, the revoked certificates, the CAs awaiting a CRL.
 */
async function snapshot(ws: string) {
  const wsp = await openWorkspace(ws);
  try {
    const s = wsp.store;
    // the store's notices read in bulk, as a copy reads them (one query per page), not one getNotice per id: 10,000
    // round trips were ~3.5 s of each PostgreSQL snapshot, the bulk read ~0.5 s. The same records (StoredNotice)
    // either way; the dump is left at the first kind after the notices.
    const stored = new Map<string, StoredNotice>();
    for await (const b of s.dump()) {
      if (b.kind === "notices") for (const n of b.records) stored.set(n.noticeId, n);
      else if (DUMP_KINDS.indexOf(b.kind as DumpKind) > NOTICES) break;
    }
    const notices = noticeIds.flatMap((id) => {
      const n = stored.get(id);
      return n ? [{ noticeId: n.noticeId, residentCode: n.residentCode, sequence: n.sequence, kind: n.kind, status: n.status, revocations: n.revocations }] : [];
    });
    const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: codes });
    return {
      notices,
      sequences: [...ctx.lastSequence.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      revoked: (await s.findCertificates({ status: "revoked", limit: ALL }))
        .map((c) => ({ serial: c.serial, caId: c.caId, residentCode: c.residentCode, reason: c.revocation!.reason, source: c.revocation!.source }))
        .sort((a, b) => (a.serial < b.serial ? -1 : 1)),
      dirty: await s.dirtyCas(),
    };
  } finally {
    await wsp.close();
  }
}

/** How many of the feed's notices the store holds (applied or held), on an open workspace. */
async function noticeCount(wsp: Workspace): Promise<number> {
  try {
    return (await wsp.store.loadNoticeContext({ noticeIds, residentCodes: [] })).known.size;
  } catch {
    return 0; // busy at that instant: try again
  }
}

async function countNotices(ws: string): Promise<number> {
  const wsp = await openWorkspace(ws);
  try {
    return await noticeCount(wsp);
  } finally {
    await wsp.close();
  }
}

function crlSerials(ws: string, ca: string): string[] {
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", `${ca}.crl`), "-noout", "-text"], { encoding: "utf8" });
  return [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!).sort();
}

async function copyWorkspace(name: string): Promise<string> {
  const to = join(dir, name);
  await copyStore(base, to);
  return to;
}

/**
 * One clean run over the whole feed (a copy of the base, `notices ingest --json`), made once and compared
 * against by both tests: what a clean run decides depends only on the base and the feed, which the tests
 * share, so a second clean run (all the notices again, ~a quarter of this file's time) proved nothing more.
 */
let cleanRun: Promise<{ ws: string; report: { applied: number; held: number; alreadyApplied: number; alreadyHeld: number }; snapshot: Awaited<ReturnType<typeof snapshot>> }> | undefined;
function clean(): NonNullable<typeof cleanRun> {
  return (cleanRun ??= (async () => {
    const ws = await copyWorkspace("clean");
    const r = await cli(["--workspace", ws, "notices", "ingest", feed, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return { ws, report: r.json(), snapshot: await snapshot(ws) };
  })());
}

/**
 * Starts the built CLI, waits until it has committed some notices, freezes it (SIGSTOP) so that what it has
 * committed cannot move, sends `signal` and lets it go on (SIGCONT). `atKill` is the count while frozen:
 * the signal is pending from that point, so the process meets it with the rest of the file still unread.
 */
async function interrupt(args: string[], ws: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; atKill: number }> {
  const wsp = await openWorkspace(ws);
  try {
    const child = spawn(process.execPath, [MAIN, "--workspace", ws, ...args], { env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)) }, stdio: "ignore" });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on("exit", (code, sig) => res({ code, signal: sig })));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && child.exitCode === null && (await noticeCount(wsp)) === 0) await new Promise((r) => setTimeout(r, 5));
    child.kill("SIGSTOP");
    const atKill = await noticeCount(wsp);
    child.kill(signal);
    child.kill("SIGCONT");
    return { ...(await exited), atKill };
  } finally {
    await wsp.close();
  }
}

beforeAll(async () => {
  // dist/ is built once by test/global-setup.ts: building it again here, while this file runs in both
  // projects and other files spawn the CLI, could let one of them read a half-written file
  dir = tempDir("jpki-resume-");
  base = join(dir, "base");
  expect((await cli(["--workspace", base, "ca", "init", "-p", "13,27"], { cwd: dir })).code).toBe(0);
  expect(storeKindOf(base)).toBe(expectedStore);
  // 4,000 notices over 1,600 residents (the ratio, and so the chains of sequences and code changes, of the 10,000
  // over 4,000 this file used): each of the three runs over the feed ingests them all (clean, killed + resumed,
  // stopped + resumed), and 10,000 cost ≈ 2.5× the CPU to prove the same. BATCH keeps 100 batches in the file, so a
  // signal pending from the first commit on still meets most of it unread.
  const residents = [...generateResidents({ count: 1600, seed: "resume", prefectures: ["13", "27"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli(["--workspace", base, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const pub = cardKey(dir, "card").pub;
  const { readFileSync } = await import("node:fs");
  const pem = readFileSync(pub, "utf8");
  const key = cardKeys(pem);
  writeJsonl(join(dir, "apps.jsonl"), residents.slice(0, 300).flatMap((r) => ["signature", "authentication"].map((type) => ({ residentCode: r.residentCode, type, publicKey: key() }))));
  const issued = await cli(["--workspace", base, "issue", "--batch", join(dir, "apps.jsonl"), "--json"], { cwd: dir });
  expect(issued.code, issued.stderr).toBe(0);
  const notices = [...generateNotices({ residents, count: NOTICE_COUNT, seed: "resume" })];
  total = notices.length;
  noticeIds = notices.map((n) => n.noticeId);
  codes = [...new Set(notices.flatMap((n) => [n.residentCode, ...("newResidentCode" in n && typeof n.newResidentCode === "string" ? [n.newResidentCode] : [])]))];
  feed = writeJsonl(join(dir, "feed.jsonl"), notices);
}, 300_000);

describe("crash safety of notice ingestion (slow: spawns the CLI)", () => {
  it("SIGKILL mid-file, then the same command again: identical to one clean run", async () => {
    const { ws: cleanWs, report, snapshot: cleanSnapshot } = await clean();
    expect(report.applied + report.held).toBe(total);

    const killed = await copyWorkspace("killed");
    const k = await interrupt(["notices", "ingest", feed, "--batch-size", BATCH], killed, "SIGKILL");
    expect(k.signal).toBe("SIGKILL");
    const afterKill = await countNotices(killed);
    expect(afterKill).toBeGreaterThan(0);
    expect(afterKill).toBeLessThan(total); // it really stopped mid-file
    const again = await cli(["--workspace", killed, "notices", "ingest", feed, "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().duplicates).toBe(afterKill);
    // and it says it resumed: every one of them stored by the killed run, none taken for a repeat in the feed
    expect(again.json().alreadyApplied + again.json().alreadyHeld).toBe(afterKill);
    expect(again.json().alreadyApplied).toBeGreaterThan(0);
    expect(formatIngest(again.json())).toContain(`resumed: ${again.json().alreadyApplied} of these notices were applied`);
    expect(report).toMatchObject({ alreadyApplied: 0, alreadyHeld: 0 });

    expect(await snapshot(killed)).toEqual(cleanSnapshot);
    for (const ca of ["13-sig", "13-auth", "27-sig", "27-auth"]) expect(crlSerials(killed, ca), ca).toEqual(crlSerials(cleanWs, ca));
  }, 180_000);

  it("watch stops cleanly on SIGTERM, keeps the file in processing/, and the next start finishes it", async () => {
    const { snapshot: cleanSnapshot } = await clean();

    const ws = await copyWorkspace("watched");
    const spool = join(dir, "spool");
    cpSync(feed, join(spool, "feed.jsonl"));
    const t = await interrupt(["watch", spool, "--batch-size", BATCH, "--poll", "50"], ws, "SIGTERM");
    expect(t.code).toBe(0); // a clean exit, not a crash
    // the signal was pending from the first committed batch on, with most of the notices (100 batches) unread: the run
    // stops after the batch in progress, mid-file, and leaves the file in processing/ for the next start
    expect(t.atKill).toBeGreaterThan(0);
    const stoppedAt = await countNotices(ws);
    expect(stoppedAt).toBeGreaterThanOrEqual(t.atKill);
    expect(stoppedAt).toBeLessThan(total);
    // claimed by the stopped watcher (its pid and PID namespace), its heartbeat beside it
    expect(readdirSync(join(spool, "processing")).filter((f) => !f.startsWith("."))).toEqual([expect.stringMatching(/^\d+~@[0-9a-f]{16}~feed\.jsonl$/)]);
    expect(existsSync(join(spool, "done", "feed.jsonl"))).toBe(false);
    settledSpool(spool);
    const resumed = await cli(["--workspace", ws, "watch", spool, "--once", "--json"], { cwd: dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(existsSync(join(spool, "done", "feed.jsonl"))).toBe(true);
    expect(await snapshot(ws)).toEqual(cleanSnapshot);
  }, 180_000);
});
