/**
 * rolloverCas (rollover.ts) as one of the commands changing a workspace's set of CA keys: it runs alone, under the
 * CA-keys lock `ca init` and `ca rewrap` take (manage.ts withCaKeysLock).
 */
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { caFiles, initCas, withCaKeysLock } from "./manage.js";
import { prefecture } from "./prefectures.js";
import { rolloverCas } from "./rollover.js";

const clock = new FixedClock("2026-04-01T00:00:00Z");
const code = async (p: Promise<unknown>) => p.then(() => "accepted", (e) => (e as { code?: string }).code);

describe("rolloverCas beside another command changing the CA keys", () => {
  // Unlocked, a rollover beside `ca rewrap --new-passphrase-file` made its new key under the old passphrase after
  // the rewrap had moved every other key to the new one (a workspace under two passphrases), and two rollovers
  // at once both generated keys, one of them for nothing.
  it("is refused with ERR_WORKSPACE_LOCKED while the CA keys are being changed, generating and storing nothing", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const files = readdirSync(ws.paths.caDir).sort();
      const inside = await withCaKeysLock(ws, () => code(rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" })));
      expect(inside).toBe("ERR_WORKSPACE_LOCKED");
      expect((await ws.store.listCas()).map((r) => r.id)).toEqual(["13-sig"]);
      expect(readdirSync(ws.paths.caDir).sort()).toEqual(files);
      // and once the other is done, it runs
      const rolled = await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
      expect(rolled.map((r) => r.current.id)).toEqual(["13-sig-g2"]);
    } finally {
      await ws.close();
    }
  });
});

describe("rolloverCas and the certificate files in ca/", () => {
  // as for `ca init` (manage.test.ts): the rename failed only after the new generation was committed, ERR_INTERNAL
  it("refuses a directory where the new generation's certificate file goes, before any key is generated", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      mkdirSync(caFiles(ws, "13-sig-g2").der);
      expect(await code(rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" }))).toBe("ERR_FILE_UNUSABLE");
      expect((await ws.store.listCas()).map((r) => r.id)).toEqual(["13-sig"]);
    } finally {
      await ws.close();
    }
  });
});
