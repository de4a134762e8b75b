/**
 * The staged check of a large CRL through the publisher (crl/publisher.ts, crl/verify.ts, crl/written-mac.ts): a
 * TBS over SIGN_WHOLE_BYTES is signed by the digest the check took of it as read back from the staged file, so
 * that digest may be signed only once those bytes are proven to be the ones written. A byte changed on disk between
 * the write and the read-back is refused (ERR_CRL_UNVERIFIED, nothing installed), never signed; the CRL as written
 * is published, and OpenSSL verifies its signature with the CA certificate.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, closeSync, writeSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StagingFile } from "../store/staging.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { encodeEntry, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import { Workspace } from "../workspace/workspace.js";
import { SIGN_WHOLE_BYTES } from "./builder.js";
import { generateCrls } from "./generate.js";

// The staged files the publisher opens, as a test wants them seen (the last describe below).
const staging = vi.hoisted(() => ({ wrap: (f: StagingFile): StagingFile => f }));
vi.mock("../store/staging.js", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../store/staging.js")>();
  return { ...mod, openStagingFile: (path: string, mode?: number) => staging.wrap(mod.openStagingFile(path, mode)) };
});

const open: Workspace[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  staging.wrap = (f) => f;
  for (const ws of open.splice(0)) await ws.close();
});

async function workspace(): Promise<Workspace> {
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-staged-")), "ws"), { config: {} });
  open.push(ws);
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  return ws;
}

/** `n` blocks of 5,000 entries (8: ≈ 1.7 MB, over SIGN_WHOLE_BYTES), as a store's log streams them. */
function blocks(n = 8): EncodedEntries[] {
  const out: EncodedEntries[] = [];
  for (let b = 0; b < n; b++) {
    const der = Buffer.concat(Array.from({ length: 5000 }, (_, i) => encodeEntry({ serial: (0x4000_0000 + b * 5000 + i).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, b)), reason: i % 2 })));
    out.push({ der, count: 5000 });
  }
  return out;
}

/**
 * The CA's entries replaced by `list`; once the builder has written the last of them (it asks for the next), `after`
 * runs on the staged file, before the check reads it back.
 */
function entriesFrom(ws: Workspace, list: EncodedEntries[], after: (tmp: string) => void) {
  const total: EntriesTotal = { totalCount: list.reduce((n, b) => n + b.count, 0), totalBytes: list.reduce((n, b) => n + b.der.length, 0) };
  vi.spyOn(ws.store, "crlEntries").mockImplementation(async function* () {
    yield total;
    yield* list;
    const tmp = readdirSync(ws.paths.crlDir).filter((n) => n.startsWith(".13-sig.crl.") && n.endsWith(".tmp"));
    expect(tmp).toHaveLength(1);
    after(join(ws.paths.crlDir, tmp[0]!));
  } as typeof ws.store.crlEntries);
  return total;
}

describe("the staged check of a CRL signed by the digest of its TBS as read back", () => {
  it("publishes the CRL as written, which OpenSSL verifies with the CA certificate", async () => {
    const ws = await workspace();
    const list = blocks();
    const total = entriesFrom(ws, list, () => undefined);
    expect(total.totalBytes).toBeGreaterThan(SIGN_WHOLE_BYTES);
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(crl!.entries).toBe(40_000);
    const der = readFileSync(crl!.derPath);
    // the entries exactly as the store gave them
    expect(der.indexOf(Buffer.concat(list.map((b) => b.der)))).toBeGreaterThan(0);
    const r = spawnSync("openssl", ["crl", "-inform", "DER", "-in", crl!.derPath, "-CAfile", join(ws.paths.caDir, "13-sig.pem"), "-noout"], { encoding: "utf8" });
    expect(r.stderr).toMatch(/verify OK/);
    expect(r.status).toBe(0);
  });

  it("refuses a byte changed in the staged file after it was written (an entry's serial: the DER stays well formed): nothing signed over it, nothing installed", async () => {
    const ws = await workspace();
    let changedAt = -1;
    entriesFrom(ws, blocks(), (tmp) => {
      const fd = openSync(tmp, "r+");
      try {
        // the last octet of some entry's serial in the middle of the list: 0x30 len 0x02 len serial…
        const buf = Buffer.alloc(64);
        const at = 900_000;
        readSync(fd, buf, 0, 64, at);
        const entry = buf.indexOf(Buffer.from([0x02, 0x04, 0x40]));
        changedAt = at + entry + 5;
        writeSync(fd, Buffer.from([buf[entry + 5]! ^ 0x01]), 0, 1, changedAt);
      } finally {
        closeSync(fd);
      }
    });
    await expect(generateCrls(ws, { ca: "13-sig", passphrase: "pw" })).rejects.toMatchObject({ code: "ERR_CRL_UNVERIFIED", message: expect.stringMatching(/differ from those written/) });
    expect(changedAt).toBeGreaterThan(900_000);
    expect(existsSync(join(ws.paths.crlDir, "13-sig.crl"))).toBe(false);
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });
});

describe("the staged file is synced to disk while it is written", () => {
  it("starts fdatasync before the last entry is written, and a background sync that fails fails the publication: nothing installed", async () => {
    // The bytes written when each flush was started; the first one fails when `fail` is set.
    const flushedAt: number[] = [];
    let fail = false;
    staging.wrap = (f) => {
      let bytes = 0;
      return {
        path: f.path,
        tmp: f.tmp,
        write: (c: Uint8Array) => ((bytes += c.length), f.write(c)),
        flush: () => {
          flushedAt.push(bytes);
          if (fail && flushedAt.length === 1) return Promise.reject(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", syscall: "fdatasync" }));
          return f.flush();
        },
        finish: () => f.finish(),
        finishAsync: () => f.finishAsync(),
        discard: () => f.discard(),
      };
    };
    // 360,000 entries: ≈ 10.8 MB, more than one SYNC_EVERY_BYTES (8 MiB)
    const list = blocks(72);
    const ws = await workspace();
    const total = entriesFrom(ws, list, () => undefined);
    expect(total.totalBytes).toBeGreaterThan(8 << 20);
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(crl!.byteLength).toBeGreaterThan(total.totalBytes);
    // one started in the stream (after 8 MiB), then the one for the rest once all but the signature is written
    expect(flushedAt.length).toBeGreaterThanOrEqual(2);
    expect(flushedAt[0]).toBeGreaterThanOrEqual(8 << 20);
    expect(flushedAt[0]).toBeLessThan(total.totalBytes);

    const ws2 = await workspace();
    entriesFrom(ws2, list, () => undefined);
    flushedAt.length = 0;
    fail = true;
    await expect(generateCrls(ws2, { ca: "13-sig", passphrase: "pw" })).rejects.toThrow(/EIO/);
    expect(flushedAt[0]).toBeLessThan(total.totalBytes);
    expect(existsSync(join(ws2.paths.crlDir, "13-sig.crl"))).toBe(false);
    expect(readdirSync(ws2.paths.crlDir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });
});
