/**
 * A CRL directory that cannot take the CRL (a full disk, a quota, a read-only filesystem): the operator is told
 * where and why (ERR_FILE_UNUSABLE), not "a bug in jpki, please report it" (ERR_INTERNAL), and nothing is left
 * half-done — the installed CRL stays, no temporary file remains, the CA stays due and the next run publishes.
 * The filesystem error is injected into the staged file's writes (a full tmpfs needs privileges a test run lacks).
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Workspace as WorkspaceType } from "../workspace/workspace.js";

const fail = vi.hoisted(() => ({ code: undefined as string | undefined }));
vi.mock("../store/staging.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../store/staging.js")>();
  return {
    ...real,
    openStagingFile: (...args: Parameters<typeof real.openStagingFile>) => {
      const f = real.openStagingFile(...args);
      const write = f.write.bind(f);
      return Object.assign(f, {
        write(c: Uint8Array) {
          if (fail.code) throw Object.assign(new Error(`${fail.code}: simulated, write`), { code: fail.code, syscall: "write" });
          write(c);
        },
      });
    },
  };
});

const { initCas } = await import("../ca/manage.js");
const { prefecture } = await import("../ca/prefectures.js");
const { Workspace } = await import("../workspace/workspace.js");
const { generateCrls } = await import("./generate.js");

const open: WorkspaceType[] = [];
afterEach(async () => {
  fail.code = undefined;
  for (const ws of open.splice(0)) await ws.close();
});

describe("CrlPublisher on a CRL directory that cannot be written", () => {
  it.each(["ENOSPC", "EDQUOT", "EROFS"])("%s: ERR_FILE_UNUSABLE naming crl/, the CA stays due, nothing left behind, the next run publishes", async (code) => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-disk-")), "ws"), { config: {} });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const [first] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    await ws.store.markCrlsDue("13-sig");
    fail.code = code;
    const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: ws.paths.crlDir } });
    expect((err as Error).message).toMatch(/crl\/13-sig\.crl could not be written in .* \((no space left|disk quota exceeded|read-only filesystem)\): nothing was published and the CA stays due/);
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.startsWith("."))).toEqual([]);
    expect(await ws.store.dirtyCas()).toContain("13-sig");
    fail.code = undefined;
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next!.number).toBeGreaterThan(first!.number);
    expect(next!.superseded).toBe(false);
  });
});
