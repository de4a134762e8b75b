/** A workspace is owner-only (directories 0700, files 0600) whatever the umask. */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileMode, underUmaskZero } from "../../test/umask.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { writeFileAtomic } from "../store/files.js";
import { Workspace } from "./workspace.js";

const mode = fileMode;
underUmaskZero();

describe("workspace permissions under umask 0", () => {
  it("creates the root, its directories 0700 and the store, its WAL files and config 0600", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-perm-")), "ws");
    const ws = Workspace.create(root);
    try {
      for (const d of [ws.paths.root, ws.paths.caDir, ws.paths.crlDir, ws.paths.certDir, ws.paths.rejectsDir]) expect(mode(d), d).toBe(0o700);
      expect(mode(ws.paths.db)).toBe(0o600);
      expect(mode(ws.paths.config)).toBe(0o600);
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      for (const f of [`${ws.paths.db}-wal`, `${ws.paths.db}-shm`]) if (existsSync(f)) expect(mode(f), f).toBe(0o600);
      const published = readdirSync(ws.paths.caDir);
      // the certificate (DER, PEM) and ca/index.json (ca/generation-index.ts)
      expect(published.sort()).toEqual(["13-sig.crt", "13-sig.pem", "index.json"]);
      for (const f of published) expect(mode(join(ws.paths.caDir, f)), f).toBe(0o600);
    } finally {
      await ws.close();
    }
  });

  it("writeFileAtomic: files 0600 and new directories 0700 by default, an explicit mode exactly", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-perm-"));
    writeFileAtomic(join(dir, "a", "b", "secret.txt"), "x");
    expect(mode(join(dir, "a"))).toBe(0o700);
    expect(mode(join(dir, "a", "b"))).toBe(0o700);
    expect(mode(join(dir, "a", "b", "secret.txt"))).toBe(0o600);
    writeFileAtomic(join(dir, "public.txt"), "x", 0o644);
    expect(mode(join(dir, "public.txt"))).toBe(0o644);
  });
});

describe("a workspace loosened after it was made", () => {
  it("a store, its WAL or the root made readable by others is made owner-only again when opened, and reported", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-perm-")), "ws");
    const made = Workspace.create(root);
    await initCas(made, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    await made.close();
    // an operator's chmod -R a+rX, a restore that kept the modes of another machine, a umask 022 copy
    chmodSync(root, 0o755);
    chmodSync(join(root, "jpki.db"), 0o644);
    chmodSync(join(root, "config.json"), 0o664);
    // a Bridge CA's encrypted key (only its mode matters here)
    mkdirSync(join(root, "bridge"), { mode: 0o755 });
    chmodSync(join(root, "bridge"), 0o755);
    writeFileSync(join(root, "bridge", "bridge.key"), "x", { mode: 0o644 });
    chmodSync(join(root, "bridge", "bridge.key"), 0o644);
    const ws = Workspace.open(root);
    try {
      expect(mode(root)).toBe(0o700);
      expect(mode(ws.paths.db)).toBe(0o600);
      expect(mode(ws.paths.config)).toBe(0o600);
      for (const f of [`${ws.paths.db}-wal`, `${ws.paths.db}-shm`]) if (existsSync(f)) expect(mode(f), f).toBe(0o600);
      expect(mode(join(root, "bridge", "bridge.key"))).toBe(0o600);
      expect(ws.loosened).toEqual([
        `${root} (mode 755)`,
        `${join(root, "config.json")} (mode 664)`,
        `${join(root, "bridge")} (mode 755)`,
        `${join(root, "bridge", "bridge.key")} (mode 644)`,
        `${join(root, "jpki.db")} (mode 644)`,
      ]);
    } finally {
      await ws.close();
    }
    const again = Workspace.open(root);
    try {
      expect(again.loosened).toEqual([]);
    } finally {
      await again.close();
    }
  });
});
