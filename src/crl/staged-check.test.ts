/**
 * A large CRL's staged file through the publisher (crl/publisher.ts): synced to disk while it is written, every
 * sync awaited before the CRL is installed.
 */
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StagingFile } from "../store/staging.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { encodeEntry, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import { Workspace } from "../workspace/workspace.js";
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
