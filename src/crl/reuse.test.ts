/**
 * The next full CRL built from the previous one's blocks (crl/reuse.ts): what the layout file may say, what the held
 * blocks hand out, and — on both stores — that a CRL built so lists exactly the store's revocations whatever was done
 * to the previous file or its layout, as openssl reads it.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { usePostgres } from "../../test/use-postgres.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import type { FourItems } from "../profile/types.js";
import type { IssuanceRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";
import { BlockLayoutRecorder, layoutPath, openHeldBlocks, readLayout } from "./reuse.js";

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

describe.each(["sqlite", "postgres"] as const)("the next full CRL from the previous one's blocks (%s)", (kind) => {
  it("lists exactly the store's revocations, taking from the previous CRL only blocks whose bytes hash as the store's", async () => {
    const root = join(tmp(), "ws");
    const url = kind === "postgres" ? await server.createDatabase() : undefined;
    const ws = url ? await Workspace.createAsync(root, { storeUrl: url, config: { store: "postgres" } }) : Workspace.create(root);
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    /** "SERIAL DATE" of every revocation, as openssl prints a CRL entry (the reason is 1, Key Compromise, for all) */
    const revoked: string[] = [];
    let next = 0x7000;
    let blockNo = 0;
    /** One block of `n` revocations (one notice batch). */
    const revokeBlock = async (n: number) => {
      const records: IssuanceRecord[] = Array.from({ length: n }, () => {
        const serial = (next++).toString(16);
        return { serial, caId: "13-sig", type: "signature", residentCode: `r${serial}`, municipalityCode: "131016", fourItems: FOUR, notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2031, 0, 1)), issuedAt: new Date(Date.UTC(2026, 0, 1)), der: Buffer.alloc(64, 0x30) };
      });
      await ws.store.upsertResidents(records.map((r) => ({ residentCode: r.residentCode, municipalityCode: "131016", fourItems: FOUR, status: "active" as const })));
      await ws.store.commitIssuances(records);
      const at = new Date(Date.UTC(2026, 5, 1 + blockNo++, 12, 0, 0));
      await ws.store.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
        commit: { at, notices: [], sequences: [], revocations: records.map((r) => ({ serial: r.serial, reason: 1, source: "test", residentCode: r.residentCode })), relinks: [], dirtyCas: ["13-sig"] },
      }));
      revoked.push(...records.map((r) => `${r.serial.toUpperCase()} ${at.toUTCString()}`));
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
      return crl!;
    };
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
