/**
 * The Bridge CA (bridge.ts) after a prefecture CA's key rollover (rollover.ts): a generation rolled over for a
 * compromised key (鍵危殆化) is never cross-certified by the Bridge.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { certifyBridge, revokeBridgeCross } from "./bridge.js";
import { initCas, workspaceKeyWrap } from "./manage.js";
import { prefecture } from "./prefectures.js";
import { rolloverCas } from "./rollover.js";

const clock = new FixedClock("2026-04-01T00:00:00Z");

describe("certifyBridge after 'ca rollover --compromised'", () => {
  // Found by a helper: the Bridge cross-certified 13-sig like any CA after its key was rolled over as
  // compromised, so a verifier trusting the Bridge accepted whatever the stolen key signed.
  it("leaves the compromised generation out, cross-certifies the new one, and says when an older cross-certificate still vouches for it", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-bridge-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      const keyWrap = await workspaceKeyWrap(ws, "pw");
      const first = await certifyBridge(ws, { passphrase: "pw", keyWrap });
      expect([...new Set(first.issued.map((c) => c.caId))]).toEqual(["13-sig-g2"]);
      expect(first.compromised).toEqual(["13-sig"]);
      expect(first.stillVouched).toEqual([]);
      expect((await certifyBridge(ws, { passphrase: "pw", keyWrap })).issued).toEqual([]);
    } finally {
      await ws.close();
    }
  });

  it("a Bridge that cross-certified the generation before its compromise names it until --revoke withdraws it", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-bridge-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const keyWrap = await workspaceKeyWrap(ws, "pw");
      await certifyBridge(ws, { passphrase: "pw", keyWrap });
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      const after = await certifyBridge(ws, { passphrase: "pw", keyWrap });
      expect(after.compromised).toEqual(["13-sig"]);
      expect(after.stillVouched).toEqual(["13-sig"]);
      expect(after.unchanged).toEqual([]);
      await revokeBridgeCross(ws, { passphrase: "pw", caId: "13-sig" });
      expect((await certifyBridge(ws, { passphrase: "pw", keyWrap })).stillVouched).toEqual([]);
    } finally {
      await ws.close();
    }
  });
});
