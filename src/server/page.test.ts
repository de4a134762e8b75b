import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadPage, publicDir } from "./page.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("loadPage", () => {
  it("reads the package's public/ files, each with its type and a strong ETag", async () => {
    const assets = await loadPage(publicDir());
    const index = assets.get("index.html")!;
    expect(index.type).toMatch(/^text\/html/);
    expect(index.body.length).toBeGreaterThan(0);
    expect(index.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
  });

  it("a missing file is the installation's error, naming the file, not a bug (ERR_INTERNAL)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-page-"));
    dirs.push(dir);
    writeFileSync(join(dir, "index.html"), "<!doctype html>");
    const e = await loadPage(dir).then(() => undefined, (x: unknown) => x as { code?: string; message: string });
    expect(e?.code).toBe("ERR_INSTALLATION_INCOMPLETE");
    expect(e?.message).toContain(dir);
    expect(e?.message).toContain("ENOENT");
  });
});
