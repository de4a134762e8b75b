/**
 * The next full CRL built from the previous one's blocks (crl/reuse.ts): what the layout file may say, what the held
 * blocks hand out, and — on both stores — that a CRL built so lists exactly the store's revocations whatever was done
 * to the previous file or its layout, as openssl reads it.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import { fileMode, underUmaskZero } from "../../test/umask.js";
import { usePostgres } from "../../test/use-postgres.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import type { Clock } from "../pki/clock.js";
import { FixedClock } from "../pki/clock.js";
import type { FourItems } from "../profile/types.js";
import type { IssuanceRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";
import type { PublishedCrl } from "./publisher.js";
import { BlockLayoutRecorder, layoutPath, openHeldBlocks, readLayout } from "./reuse.js";
import { buildCrl, crlDer, streamCrl } from "./builder.js";
import { createCaRecord, CertificationAuthority } from "../ca/authority.js";
import { encodeEntry } from "../profile/crl-entry.js";
import { parseConfig } from "../workspace/config.js";

const server = usePostgres();
const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest();
const tmp = () => mkdtempSync(join(tmpdir(), "jpki-reuse-"));

function writeLayout(root: string, caId: string, layout: unknown): void {
  mkdirSync(join(root, "cache", "crl-blocks"), { recursive: true });
  writeFileSync(layoutPath(root, caId), typeof layout === "string" ? layout : JSON.stringify(layout));
}

describe("the block layout file", () => {
  it("is read only when well formed and of this CA; anything else is no layout, never an error", () => {
    const root = tmp();
    const good = { version: 1, caId: "13-sig", number: "4", size: 100, blocks: [["7", 10, 20]] };
    writeLayout(root, "13-sig", good);
    expect(readLayout(root, "13-sig")).toEqual({ caId: "13-sig", number: "4", size: 100, blocks: [["7", 10, 20]] });
    for (const bad of [
      "{not json",
      { ...good, version: 2 },
      { ...good, caId: "27-sig" },
      { ...good, size: -1.5 },
      { ...good, blocks: [["7", -1, 20]] },
      { ...good, blocks: [["7", 10, 0]] },
      { ...good, blocks: [[7, 10, 20]] },
      { ...good, blocks: "7" },
    ]) {
      writeLayout(root, "13-sig", bad);
      expect(readLayout(root, "13-sig"), JSON.stringify(bad)).toBeUndefined();
    }
    expect(readLayout(root, "01-sig")).toBeUndefined(); // none written
  });
});

describe("held blocks", () => {
  it("read through one reused window, make the same CRL in every builder mode (what the builder keeps, it copies)", async () => {
    const root = tmp();
    const file = join(root, "prev.crl");
    const rec = await createCaRecord({ prefectureCode: "13", purpose: "signature", passphrase: "pw", config: parseConfig({}), now: new Date("2026-01-01T00:00:00Z") });
    const ca = CertificationAuthority.open(rec, "pw", parseConfig({}));
    let serial = 0x5000_0000n;
    const block = (n: number) => {
      const list = Array.from({ length: n }, (_, i) => encodeEntry({ serial: (serial++).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)), reason: [0, 1, 3][i % 3]! }));
      return { der: Buffer.concat(list), count: n };
    };
    // Big blocks (≥ 64 KiB: the builder passes them on as they are) and small ones (packed), under 1 MiB in all so
    // a TBS small enough to be signed whole is kept in pieces too; the window holds two big blocks at most.
    const blocks = [block(2000), block(10), block(3), block(2100), block(2000), block(1), block(2200), block(50), block(2000)];
    const head = Buffer.alloc(100, 0x55);
    writeFileSync(file, Buffer.concat([head, ...blocks.map((b) => b.der)]));
    let at = head.length;
    writeLayout(root, "13-sig", { version: 1, caId: "13-sig", number: "1", size: at + blocks.reduce((n, b) => n + b.der.length, 0), blocks: blocks.map((b, i) => [String(i + 1), (at += b.der.length) - b.der.length, b.der.length]) });
    const total = { totalBytes: blocks.reduce((n, b) => n + b.der.length, 0), totalCount: blocks.reduce((n, b) => n + b.count, 0) };
    const params = { issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 9n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), signer: ca.signer };
    const reference = crlDer(await buildCrl({ ...params, entries: [total, ...blocks] }));
    async function* fromFile(withTotal: boolean) {
      const held = openHeldBlocks(root, "13-sig", file, 200_000);
      try {
        if (withTotal) yield total;
        for (const [i, b] of blocks.entries()) {
          const der = held.take(String(i + 1), b.der.length, sha(b.der));
          expect(der?.equals(b.der)).toBe(true);
          yield { der: der!, count: b.count };
        }
        expect(held.stats).toMatchObject({ blocks: blocks.length, mismatched: 0 });
      } finally {
        held.close();
      }
    }
    const streamed = async (withTotal: boolean) => {
      const sunk: Buffer[] = [];
      await streamCrl({ ...params, issuerKey: ca.signer.spki, entries: fromFile(withTotal), sink: (c) => sunk.push(Buffer.from(c)) });
      return Buffer.concat(sunk);
    };
    expect((await streamed(true)).equals(reference)).toBe(true);
    expect((await streamed(false)).equals(reference)).toBe(true);
    expect(crlDer(await buildCrl({ ...params, entries: fromFile(true) })).equals(reference)).toBe(true);
  });


  it("read a large previous CRL through a window of at most 1 MiB, block after block", () => {
    const root = tmp();
    const file = join(root, "prev.crl");
    // Blocks of a national-scale CA's size (≈ 460 KB), 6 MB in all.
    const blocks = Array.from({ length: 13 }, (_, i) => Buffer.alloc(460_000, i + 1));
    const body = Buffer.concat([Buffer.alloc(64), ...blocks]);
    writeFileSync(file, body);
    let at = 64;
    writeLayout(root, "13-sig", { version: 1, caId: "13-sig", number: "1", size: body.length, blocks: blocks.map((b, i) => [String(i + 1), (at += b.length) - b.length, b.length]) });
    const alloc = vi.spyOn(Buffer, "allocUnsafe");
    try {
      const held = openHeldBlocks(root, "13-sig", file);
      for (const [i, b] of blocks.entries()) expect(held.take(String(i + 1), b.length, sha(b))?.equals(b), `block ${i + 1}`).toBe(true);
      expect(held.stats).toEqual({ blocks: 13, bytes: 13 * 460_000, mismatched: 0 });
      held.close();
      // Fresh memory is a page fault each 4 KB: the window stays small (WINDOW_BYTES), and is the only one of that size.
      const sizes = alloc.mock.calls.map(([n]) => n);
      expect(Math.max(...sizes)).toBe(1 << 20);
      expect(sizes.filter((n) => n >= 460_000).length).toBe(1);
    } finally {
      alloc.mockRestore();
    }
  });

  it("hand out a block only when its bytes hash as the store says; a file of another size holds nothing", () => {
    const root = tmp();
    const file = join(root, "prev.crl");
    const a = Buffer.alloc(3000, 1);
    const b = Buffer.alloc(5 << 20, 2); // beyond one read window
    const c = Buffer.alloc(100, 3);
    const body = Buffer.concat([Buffer.alloc(50), a, b, c]);
    writeFileSync(file, body);
    writeLayout(root, "13-sig", { version: 1, caId: "13-sig", number: "1", size: body.length, blocks: [["1", 50, a.length], ["2", 50 + a.length, b.length], ["3", 50 + a.length + b.length, c.length]] });
    const held = openHeldBlocks(root, "13-sig", file);
    expect(held.has("1", a.length)).toBe(true);
    expect(held.has("1", a.length + 1)).toBe(false); // the store's block is of another size
    expect(held.has("9", 1)).toBe(false);
    expect(held.take("1", a.length, sha(a))?.equals(a)).toBe(true);
    expect(held.take("2", b.length, sha(b))?.equals(b)).toBe(true);
    expect(held.take("3", c.length, sha(Buffer.alloc(100, 4)))).toBeUndefined(); // not what the store holds
    expect(held.take("3", c.length, sha(c))?.equals(c)).toBe(true);
    expect(held.stats).toEqual({ blocks: 3, bytes: a.length + b.length + c.length, mismatched: 1 });
    held.close();
    expect(held.take("1", a.length, sha(a))).toBeUndefined(); // closed

    writeFileSync(file, body.subarray(1)); // not the file the layout describes
    const none = openHeldBlocks(root, "13-sig", file);
    expect(none.has("1", a.length)).toBe(false);
    expect(none.take("1", a.length, sha(a))).toBeUndefined();
    none.close();
  });

  it("the recorder notes whole blocks at their offsets from the first entry, and a layout with none is removed", async () => {
    const root = tmp();
    const r = new BlockLayoutRecorder();
    const chunks = [{ totalBytes: 9, totalCount: 3 }, { der: Buffer.alloc(2), count: 1, block: { id: "5", digest: Buffer.alloc(32) } }, { der: Buffer.alloc(3), count: 1 }, { der: Buffer.alloc(4), count: 1, block: { id: "8", digest: Buffer.alloc(32) } }];
    const seen = [];
    for await (const c of r.wrap((async function* () {
      yield* chunks;
    })())) seen.push(c);
    expect(seen).toEqual(chunks);
    r.save(root, "13-sig", 12n, 500, 100);
    expect(readLayout(root, "13-sig")).toEqual({ caId: "13-sig", number: "12", size: 500, blocks: [["5", 100, 2], ["8", 105, 4]] });
    new BlockLayoutRecorder().save(root, "13-sig", 13n, 400, 100);
    expect(existsSync(layoutPath(root, "13-sig"))).toBe(false);
  });
});

const FOUR: FourItems = { name: "再利用　花子", address: "東京都千代田区千代田１番１号", birthDate: "1980-01-01", gender: "female" };

const templates = new Map<string, Promise<{ root: string; database?: string }>>();
/** The workspace with CA 13-sig each setup on `kind` copies (PostgreSQL: its database as the copy's template). */
function template(kind: "sqlite" | "postgres"): Promise<{ root: string; database?: string }> {
  let t = templates.get(kind);
  if (!t) {
    t = (async () => {
      const root = join(tmp(), "template");
      const url = kind === "postgres" ? await server.createDatabase() : undefined;
      const ws = url ? await Workspace.createAsync(root, { storeUrl: url, config: { store: "postgres" } }) : Workspace.create(root);
      try {
        await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      } finally {
        await ws.close(); // a template database has no connection open
      }
      return url ? { root, database: new URL(url).pathname.slice(1) } : { root };
    })();
    templates.set(kind, t);
  }
  return t;
}

/**
 * A workspace with CA 13-sig on `kind`, revoking one notice batch (one log block) at a time, and a publish that
 * checks with openssl that the CRL verifies under the CA and lists every revocation, once.
 */
async function setup(kind: "sqlite" | "postgres", clock?: Clock) {
  const root = join(tmp(), "ws");
  let ws: Workspace;
  let url: string | undefined;
  if (clock) {
    // A CA of the clock's time, made for this test.
    url = kind === "postgres" ? await server.createDatabase() : undefined;
    ws = url ? await Workspace.createAsync(root, { storeUrl: url, config: { store: "postgres" }, clock }) : Workspace.create(root, { clock });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  } else {
    // A copy of the file's one workspace with the CA (its key made and wrapped once, not per test).
    const t = await template(kind);
    cpSync(t.root, root, { recursive: true });
    url = t.database ? await server.createDatabase(t.database) : undefined;
    ws = url ? await Workspace.openAsync(root, { storeUrl: url }) : Workspace.open(root);
    open.push(ws);
  }
  /** "SERIAL DATE" of every revocation, as openssl prints a CRL entry (the reason is 1, Key Compromise, for all) */
  const revoked: string[] = [];
  let next = 0x7000;
  let blockNo = 0;
  /** One block of `n` revocations (one notice batch) of certificates valid until `notAfter` (of the i-th); their openssl lines. */
  const revokeBlock = async (n: number, notAfterOf: (i: number) => Date = () => new Date(Date.UTC(2031, 0, 1))) => {
    const records: IssuanceRecord[] = Array.from({ length: n }, (_, i) => {
      const notAfter = notAfterOf(i);
      const serial = (next++).toString(16);
      return { serial, caId: "13-sig", type: "signature", residentCode: `r${serial}`, municipalityCode: "131016", fourItems: FOUR, notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter, issuedAt: new Date(Date.UTC(2026, 0, 1)), der: Buffer.alloc(64, 0x30) };
    });
    await ws.store.upsertResidents(records.map((r) => ({ residentCode: r.residentCode, municipalityCode: "131016", fourItems: FOUR, status: "active" as const })));
    await ws.store.commitIssuances(records);
    const when = new Date(Date.UTC(2026, 5, 1 + blockNo++, 12, 0, 0));
    await ws.store.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
      commit: { at: when, notices: [], sequences: [], revocations: records.map((r) => ({ serial: r.serial, reason: 1, source: "test", residentCode: r.residentCode })), relinks: [], dirtyCas: ["13-sig"] },
    }));
    const lines = records.map((r) => `${r.serial.toUpperCase()} ${when.toUTCString()}`);
    revoked.push(...lines);
    return lines;
  };
  const crlPath = join(ws.paths.crlDir, "13-sig.crl");
  /** Publishes, and checks with openssl that the CRL verifies under the CA and lists every revocation, once. */
  const publish = async () => {
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", crlPath, "-CAfile", join(ws.paths.caDir, "13-sig.pem"), "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    // Each entry whole: its serial, its date, its reason (a byte changed anywhere in one shows here).
    const entries = text.split("Serial Number: ").slice(1);
    for (const e of entries) expect(e).toMatch(/^[0-9A-F]+\s+Revocation Date: [^\n]+ GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise\s/);
    const listed = entries.map((e) => {
      const [, serial, date] = /^([0-9A-F]+)\s+Revocation Date: (.+ GMT)/.exec(e)!;
      return `${serial} ${new Date(date!).toUTCString()}`;
    });
    expect(listed.sort()).toEqual([...revoked].sort());
    expect(crl!.sha256).toBe(sha(readFileSync(crlPath)).toString("hex")); // as recorded in the store
    return { ...crl!, listed };
  };
  return { root, url, ws, crlPath, revoked, revokeBlock, publish };
}

describe.each(["sqlite", "postgres"] as const)("the next full CRL from the previous one's blocks (%s)", (kind) => {
  it("lists exactly the store's revocations, taking from the previous CRL only blocks whose bytes hash as the store's", async () => {
    const { root, url, ws, crlPath, revokeBlock, publish } = await setup(kind);
    for (let i = 0; i < 3; i++) await revokeBlock(40 + i);
    expect((await publish()).reused).toMatchObject({ blocks: 0, mismatched: 0 });
    const isPg = kind === "postgres";
    // SQLite reads its own log as cheaply as a file: it tags nothing and leaves no layout.
    expect(existsSync(layoutPath(root, "13-sig"))).toBe(isPg);
    await revokeBlock(50);
    expect((await publish()).reused).toMatchObject({ blocks: isPg ? 3 : 0, mismatched: 0 });
    if (!isPg) return;

    // A byte of the second block changed on disk: that block comes from the store, the others from the file.
    const layout = readLayout(root, "13-sig")!;
    const der = readFileSync(crlPath);
    const [, at] = layout.blocks[1]!;
    der.writeUInt8(der.readUInt8(at + 10) ^ 0x01, at + 10);
    writeFileSync(crlPath, der);
    await revokeBlock(7);
    expect((await publish()).reused).toMatchObject({ blocks: 3, mismatched: 1 }); // of the 4 held, now 5 blocks

    // A layout whose offsets are off by one: nothing hashes, everything comes from the store.
    const shifted = readLayout(root, "13-sig")!;
    writeLayout(root, "13-sig", { version: 1, ...shifted, blocks: shifted.blocks.map(([id, o, l]) => [id, o + 1, l]) });
    expect((await publish()).reused).toMatchObject({ blocks: 0, mismatched: 5 });

    // A previous CRL of another size than its layout says (another host's, a restore): nothing is held.
    const last = readLayout(root, "13-sig")!;
    writeLayout(root, "13-sig", { version: 1, ...last, size: last.size + 1 });
    expect((await publish()).reused).toMatchObject({ blocks: 0, mismatched: 0 });
    // …and the layout written by that build serves the next.
    expect((await publish()).reused).toMatchObject({ blocks: 5, mismatched: 0 });

    // Blocks logged before the digest column (PostgreSQL 30) have none: the server hashes them for the heads.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect((await db.query("UPDATE revocation_log SET digest = NULL WHERE ca_id = '13-sig'")).rowCount).toBe(5);
    } finally {
      await db.end();
    }
    await revokeBlock(3);
    expect((await publish()).reused).toMatchObject({ blocks: 5, mismatched: 0 });
  });
});

/**
 * An operator's bad day under cache/ and crl/: whatever sits where the layout, its directories or the previous CRL
 * go, the publication succeeds and lists exactly the store's revocations, in bounded time, without reading or
 * writing through a symbolic link. Each case: a first CRL (3 blocks) leaves a layout, `prepare` spoils something,
 * a second CRL is published and openssl checks it, then `check`.
 */
describe("a hostile cache or previous CRL (postgres)", () => {
  type Ctx = Awaited<ReturnType<typeof setup>> & { blocks: string; outside: string; before?: Buffer };
  const cases: Array<[string, (c: Ctx) => void, (c: Ctx, reused: { blocks: number }) => void]> = [
    [
      "cache/crl-blocks/ a symbolic link to another directory: neither read nor written through",
      (c) => {
        c.before = readFileSync(layoutPath(c.root, "13-sig"));
        renameSync(c.blocks, join(c.outside, "moved"));
        symlinkSync(join(c.outside, "moved"), c.blocks);
      },
      (c, reused) => {
        expect(readdirSync(join(c.outside, "moved"))).toEqual(["13-sig.json"]);
        expect(readFileSync(join(c.outside, "moved", "13-sig.json")).equals(c.before!)).toBe(true);
        expect(reused.blocks).toBe(0);
        expect(readLayout(c.root, "13-sig")).toBeUndefined();
        expect(lstatSync(c.blocks).isSymbolicLink()).toBe(true);
      },
    ],
    [
      "cache/ a dangling symbolic link: nothing made where it points",
      (c) => {
        rmSync(join(c.root, "cache"), { recursive: true });
        symlinkSync(join(c.outside, "nowhere"), join(c.root, "cache"));
      },
      (c) => {
        expect(existsSync(join(c.outside, "nowhere"))).toBe(false);
        expect(lstatSync(join(c.root, "cache")).isSymbolicLink()).toBe(true);
      },
    ],
    [
      "a directory where the layout goes",
      (c) => {
        rmSync(layoutPath(c.root, "13-sig"));
        mkdirSync(layoutPath(c.root, "13-sig"));
      },
      (_c, reused) => expect(reused.blocks).toBe(0),
    ],
    [
      "a FIFO as the layout: not waited on",
      (c) => {
        rmSync(layoutPath(c.root, "13-sig"));
        execFileSync("mkfifo", [layoutPath(c.root, "13-sig")]);
      },
      (c, reused) => {
        expect(reused.blocks).toBe(0);
        expect(lstatSync(layoutPath(c.root, "13-sig")).isFile()).toBe(true); // the new layout took its name
      },
    ],
    [
      "/dev/zero linked as the layout: not read",
      (c) => {
        rmSync(layoutPath(c.root, "13-sig"));
        symlinkSync("/dev/zero", layoutPath(c.root, "13-sig"));
      },
      (_c, reused) => expect(reused.blocks).toBe(0),
    ],
    [
      "a FIFO as the previous CRL: not waited on",
      (c) => {
        rmSync(c.crlPath);
        execFileSync("mkfifo", [c.crlPath]);
      },
      (_c, reused) => expect(reused.blocks).toBe(0),
    ],
    [
      "the previous CRL a symbolic link to a copy of itself: not read through",
      (c) => {
        renameSync(c.crlPath, join(c.outside, "copy.crl"));
        symlinkSync(join(c.outside, "copy.crl"), c.crlPath);
      },
      (_c, reused) => expect(reused.blocks).toBe(0),
    ],
    [
      "a layout larger than its CRL can need (100 MB of it would be read and parsed): not read",
      (c) => {
        const text = readFileSync(layoutPath(c.root, "13-sig"), "utf8");
        const size = readLayout(c.root, "13-sig")!.size;
        writeFileSync(layoutPath(c.root, "13-sig"), text + " ".repeat(2 * size + 4096 - text.length + 1));
      },
      (_c, reused) => expect(reused.blocks).toBe(0),
    ],
  ];
  it.each(cases)("%s", async (_name, prepare, check) => {
    const c = await setup("postgres");
    for (let i = 0; i < 3; i++) await c.revokeBlock(40 + i);
    await c.publish();
    const ctx: Ctx = { ...c, blocks: join(c.root, "cache", "crl-blocks"), outside: tmp() };
    expect(readLayout(c.root, "13-sig")?.blocks.length).toBe(3);
    prepare(ctx);
    await c.revokeBlock(50);
    const { reused } = await c.publish();
    check(ctx, reused!);
    // …and the layout serves the next build whenever it could be written in the workspace's own directories.
    await c.revokeBlock(5);
    const again = (await c.publish()).reused!;
    if (lstatSync(join(c.root, "cache")).isDirectory() && lstatSync(ctx.blocks).isDirectory() && lstatSync(layoutPath(c.root, "13-sig")).isFile()) expect(again.blocks).toBe(4);
  }, 30_000);

  it("the temporary layout a killed writer left is swept; a live writer's is left alone", async () => {
    const c = await setup("postgres");
    await c.revokeBlock(10);
    await c.publish();
    const blocks = join(c.root, "cache", "crl-blocks");
    // A process that ran and is gone (a kill -9 between writing and renaming), and one still running.
    const dead = await new Promise<number>((resolve) => {
      const child = execFile("true", () => resolve(child.pid!));
    });
    const staged = (pid: number) => `.13-sig.json.${pid}~@${"0".repeat(16)}.${"a".repeat(12)}.tmp`;
    const { thisNamespace } = await import("../store/pid-namespace.js");
    const ours = (pid: number) => staged(pid).replace("0".repeat(16), thisNamespace());
    writeFileSync(join(blocks, ours(dead)), "{");
    writeFileSync(join(blocks, ours(process.pid)), "{");
    await c.revokeBlock(10);
    expect((await c.publish()).reused).toMatchObject({ blocks: 1 });
    expect(readdirSync(blocks).sort()).toEqual([ours(process.pid), "13-sig.json"].sort());
  });

  describe("under umask 0", () => {
    underUmaskZero();
    it("the cache directories are made 0700 and the layout 0600", async () => {
      const c = await setup("postgres");
      await c.revokeBlock(10);
      await c.publish();
      expect([fileMode(join(c.root, "cache")), fileMode(join(c.root, "cache", "crl-blocks")), fileMode(layoutPath(c.root, "13-sig"))]).toEqual([0o700, 0o700, 0o600]);
    });
  });

  // A full disk and a read-only cache need a file system of their own: a tmpfs mounted at cache/ (root only).
  const canMount = process.getuid?.() === 0 && (() => {
    const at = tmp();
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", at], { stdio: "ignore" });
      execFileSync("umount", [at], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();
  it.runIf(canMount)("a full disk or a read-only cache/ costs the layout, never the publication", async () => {
    const c = await setup("postgres");
    for (let i = 0; i < 3; i++) await c.revokeBlock(40 + i);
    await c.publish();
    const cache = join(c.root, "cache");
    rmSync(cache, { recursive: true });
    mkdirSync(cache, { mode: 0o700 });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", cache]);
    try {
      mkdirSync(join(cache, "crl-blocks"), { mode: 0o700 });
      try {
        writeFileSync(join(cache, "filler"), Buffer.alloc(1 << 20)); // fills it
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      await c.revokeBlock(10);
      expect((await c.publish()).reused).toMatchObject({ blocks: 0 });
      expect(readdirSync(join(cache, "crl-blocks"))).toEqual([]); // no temporary file left, no layout
      execFileSync("mount", ["-o", "remount,ro", cache]);
      await c.revokeBlock(10);
      await c.publish();
    } finally {
      execFileSync("umount", [cache]);
    }
  });
});

describe("certificates expiring between two builds (postgres)", () => {
  it("the next CRL drops exactly the entries past notAfter + expiredGraceDays, as a build without a layout does", async () => {
    const clock = new FixedClock(Date.UTC(2026, 6, 1));
    const c = await setup("postgres", clock);
    const soon = new Date(Date.UTC(2026, 7, 1));
    const later = new Date(Date.UTC(2031, 0, 1));
    await c.revokeBlock(40); // stays
    const mixed = await c.revokeBlock(30, (i) => (i % 3 === 0 ? soon : later)); // a third of it expires
    const gone = await c.revokeBlock(20, () => soon); // all of it expires
    await c.revokeBlock(25); // stays
    expect((await c.publish()).reused).toMatchObject({ blocks: 0 });
    // After notAfter, within the grace: all listed still (RFC 5280 §3.3), every block from the previous file.
    clock.set(Date.UTC(2026, 7, 2));
    expect((await c.publish()).reused).toMatchObject({ blocks: 4, mismatched: 0 });
    // Past notAfter + grace: the expired entries leave; the whole blocks come from the file, the others from the store.
    clock.set(Date.UTC(2026, 7, 1 + c.ws.config.expiredGraceDays + 1));
    const expired = new Set([...mixed.filter((_, i) => i % 3 === 0), ...gone]);
    c.revoked.splice(0, c.revoked.length, ...c.revoked.filter((l) => !expired.has(l)));
    const withLayout = await c.publish();
    expect(withLayout.reused).toMatchObject({ blocks: 2, mismatched: 0 });
    expect(withLayout.entries).toBe(40 + 20 + 25);
    // The same CRL without a layout, from the store alone.
    rmSync(join(c.root, "cache"), { recursive: true });
    clock.advance(1000);
    const fromStore = await c.publish();
    expect(fromStore.reused).toMatchObject({ blocks: 0 });
    expect(fromStore.listed.sort()).toEqual(withLayout.listed.sort());
    // The layout it left holds the whole blocks only: the next build takes them.
    clock.advance(1000);
    expect((await c.publish()).reused).toMatchObject({ blocks: 2, mismatched: 0 });
  });
});

describe("publications that overlap, and a store replaced under the layout (postgres)", () => {
  it("two full CRLs of one CA published at once: whichever is installed lists exactly the store's revocations, and the next one too", async () => {
    const c = await setup("postgres");
    for (let i = 0; i < 30; i++) await c.revokeBlock(100);
    await c.publish();
    await c.revokeBlock(100);
    // A second workspace on the same root and database: another `jpki crl generate` (or serve's updater).
    const other = await Workspace.createAsync(c.root, { storeUrl: c.url! });
    open.push(other);
    const both = await Promise.all([generateCrls(c.ws, { ca: "13-sig", passphrase: "pw" }), generateCrls(other, { ca: "13-sig", passphrase: "pw" })]);
    const [a, b] = both.map((r) => r[0]!) as [PublishedCrl, PublishedCrl];
    expect(a.number).not.toBe(b.number);
    expect(a.reused!.blocks + b.reused!.blocks).toBeGreaterThan(0);
    // The file in place: openssl lists every revocation once (checked by publish), after one more.
    await c.revokeBlock(10);
    await c.publish();
    await c.revokeBlock(10);
    expect((await c.publish()).reused).toMatchObject({ blocks: 32, mismatched: 0 });
  }, 60_000);

  it.each(["postgres", "sqlite"] as const)("a store copied from %s: every block's digest is its DER's; the layout's block ids name other blocks now and the CRL lists exactly the copy's revocations", async (from) => {
    const src = await setup(from);
    for (let i = 0; i < 3; i++) await src.revokeBlock(40 + i);
    await src.publish();
    // The workspace's CRL and layout stay; its store is replaced by a copy on a new database (`jpki store copy`).
    const target = await server.createDatabase();
    const { PostgresStore } = await import("../store/postgres.js");
    const { copyStore } = await import("../store/copy.js");
    const into = await PostgresStore.open(target, { create: true, loadTarget: true });
    await copyStore(src.ws.store, into);
    await into.close();
    const db = new pg.Client({ connectionString: target });
    await db.connect();
    try {
      // Every block's digest is its DER's: none NULL, none stale.
      expect((await db.query("SELECT count(*)::int AS n FROM revocation_log WHERE digest IS DISTINCT FROM sha256(der)")).rows[0].n).toBe(0);
    } finally {
      await db.end();
    }
    if (from === "sqlite") return; // its workspace holds no layout to mislead the copy's CRL
    // The workspace, its CRL and layout as they are, on the copy (block ids restart from 1, boundaries redrawn).
    await src.ws.close();
    open.splice(open.indexOf(src.ws), 1);
    const ws = await Workspace.createAsync(src.root, { storeUrl: target });
    open.push(ws);
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws.paths.crlDir, "13-sig.crl"), "-noout", "-text"], { encoding: "utf8" });
    const listed = text.split("Serial Number: ").slice(1).map((e) => /^([0-9A-F]+)\s+Revocation Date: (.+ GMT)/.exec(e)!).map(([, s, d]) => `${s} ${new Date(d!).toUTCString()}`);
    expect(listed.sort()).toEqual([...src.revoked].sort());
    expect(crl!.entries).toBe(123);
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next!.reused).toMatchObject({ mismatched: 0 });
    expect(next!.reused!.blocks).toBeGreaterThan(0);
  }, 60_000);
});

describe("a restore under the layout (postgres)", () => {
  it("jpki restore --force of an older backup, then a full CRL: exactly the restored store's revocations (those revoked since carried over), the stale layout only a hint", async () => {
    const { takeBackup } = await import("../backup/backup.js");
    const { restoreBackup } = await import("../backup/restore.js");
    const c = await setup("postgres");
    for (let i = 0; i < 3; i++) await c.revokeBlock(40 + i);
    await c.publish();
    const dest = join(tmp(), "backup");
    await takeBackup({ workspaceDir: c.root, dest, storeUrl: c.url!, passphrase: "pw" });
    // After the backup: more revocations, a CRL and its layout the backup does not have.
    await c.revokeBlock(50);
    await c.publish();
    const layoutBefore = readLayout(c.root, "13-sig")!;
    await c.ws.close();
    open.splice(open.indexOf(c.ws), 1);
    await restoreBackup({ source: dest, workspaceDir: c.root, storeUrl: c.url!, force: true, passphrase: "pw" });
    expect(readLayout(c.root, "13-sig")).toEqual(layoutBefore); // cache/ is no part of a backup: it stays
    const ws = await Workspace.createAsync(c.root, { storeUrl: c.url! });
    open.push(ws);
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws.paths.crlDir, "13-sig.crl"), "-CAfile", join(ws.paths.caDir, "13-sig.pem"), "-noout", "-text"], { encoding: "utf8" });
    const listed = text.split("Serial Number: ").slice(1).map((e) => /^([0-9A-F]+)\s+Revocation Date: (.+ GMT)/.exec(e)!).map(([, s, d]) => `${s} ${new Date(d!).toUTCString()}`);
    expect(listed.sort()).toEqual([...c.revoked].sort());
    expect(crl!.reused).toMatchObject({ mismatched: 0 });
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next!.reused!.blocks).toBeGreaterThan(0);
  }, 60_000);
});
