/**
 * rolloverCas (rollover.ts) as one of the commands changing a workspace's set of CA keys: it runs alone, under the
 * CA-keys lock `ca init` and `ca rewrap` take (manage.ts withCaKeysLock).
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "../crl/generate.js";
import { caIndexPath, type CaIndex } from "./generation-index.js";
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

describe("rolloverCas and CA ids that are not free (free-ids.ts)", () => {
  // An id made a second time is a second key under the same issuer name and CRL URLs, numbering its CRLs from 1
  // again (RFC 5280 §5.2.3 forbids the repeated number). Found by an audit after a restore.
  it("passes over an id the store retired to the next free generation, saying so", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      await ws.store.retireCaIds([{ id: "13-sig-g2", retiredAt: clock.now(), reason: "CRLs up to #1 were published under it" }]);
      const progress: string[] = [];
      const rolled = await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", onProgress: (m) => progress.push(m) });
      expect(rolled.map((r) => [r.previous, r.current.id, r.generation])).toEqual([["13-sig", "13-sig-g3", 3]]);
      expect(rolled[0]!.passedOver.map((p) => p.id)).toEqual(["13-sig-g2"]);
      expect(progress.some((m) => m.includes("passing over 13-sig-g2") && m.includes("13-sig-g3"))).toBe(true);
      expect((await ws.store.listCas()).map((r) => r.id)).toEqual(["13-sig", "13-sig-g3"]);
      expect((await ws.store.listCaLinks()).map((l) => [l.oldCaId, l.newCaId])).toEqual([["13-sig", "13-sig-g3"]]);
      // the next one goes on from the active generation
      expect((await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" })).map((r) => r.current.id)).toEqual(["13-sig-g4"]);
    } finally {
      await ws.close();
    }
  });

  // The fact a follower must not assume away: 13-sig's successor is 13-sig-g3 here, not g+1. ca/index.json says so
  // (ca/generation-index.ts), written atomically and owner-only with the certificates, and mended by crl generate.
  it("a successor that is not g+1 is named in ca/index.json with each generation's SHA-256 and whether links join them", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const index = () => JSON.parse(readFileSync(caIndexPath(ws), "utf8")) as CaIndex;
      expect(index().generations.map((g) => [g.id, g.successor])).toEqual([["13-sig", undefined]]);
      await ws.store.retireCaIds([{ id: "13-sig-g2", retiredAt: clock.now(), reason: "CRLs up to #1 were published under it" }]);
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
      const sha = (id: string) => createHash("sha256").update(readFileSync(caFiles(ws, id).der)).digest("hex");
      expect(index()).toEqual({
        generations: [
          { id: "13-sig", prefectureCode: "13", purpose: "signature", generation: 1, sha256: sha("13-sig"), successor: "13-sig-g3", linked: true },
          { id: "13-sig-g3", prefectureCode: "13", purpose: "signature", generation: 3, sha256: sha("13-sig-g3") },
        ],
      });
      expect(statSync(caIndexPath(ws)).mode & 0o777).toBe(0o600);
      // a rollover for a compromised key: named, not linked
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      expect(index().generations.map((g) => [g.id, g.successor, g.linked])).toEqual([["13-sig", "13-sig-g3", true], ["13-sig-g3", "13-sig-g4", false], ["13-sig-g4", undefined, undefined]]);
      // gone (a host sharing the store, a hand's slip): crl generate writes it again, and leaves a current one alone
      const body = readFileSync(caIndexPath(ws));
      rmSync(caIndexPath(ws));
      await generateCrls(ws, { passphrase: "pw", prefecture: "13" });
      expect(readFileSync(caIndexPath(ws)).equals(body)).toBe(true);
      const ino = statSync(caIndexPath(ws)).ino;
      await generateCrls(ws, { passphrase: "pw", prefecture: "13" });
      expect(statSync(caIndexPath(ws)).ino).toBe(ino);
      // one that cannot be written holds back no CRL: they are published, then the failure is raised, typed
      rmSync(caIndexPath(ws));
      mkdirSync(caIndexPath(ws));
      const crlBefore = statSync(join(ws.paths.crlDir, "13-sig-g4.crl")).ino;
      expect(await code(generateCrls(ws, { passphrase: "pw", prefecture: "13" }))).toBe("ERR_FILE_UNUSABLE");
      expect(statSync(join(ws.paths.crlDir, "13-sig-g4.crl")).ino).not.toBe(crlBefore);
    } finally {
      await ws.close();
    }
  });

  it("passes over an id whose CRL is published in crl/ with no CA behind it in the store, and retires it there", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      // a CRL of 13-sig-g2 published (no restore recorded anything: a store put back by hand)
      writeFileSync(join(ws.paths.crlDir, "13-sig-g2.crl"), Buffer.from([0x30, 0]));
      const rolled = await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature", "authentication"], passphrase: "pw" });
      expect(rolled.map((r) => r.current.id)).toEqual(["13-sig-g3", "13-auth-g2"]);
      expect(rolled[0]!.passedOver).toEqual([{ id: "13-sig-g2", reason: expect.stringContaining("crl/13-sig-g2.crl") }]);
      // recorded: the id stays retired once the file is gone
      expect((await ws.store.listRetiredCaIds()).map((r) => r.id)).toEqual(["13-sig-g2"]);
      expect(await code(ws.store.putCa({ ...(await ws.store.getCa("13-sig"))!, id: "13-sig-g2" }))).toBe("ERR_CA_RETIRED");
    } finally {
      await ws.close();
    }
  });

  it("ca init makes a prefecture's CA at the next generation when its first id is retired, and finds it existing after", async () => {
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-rollover-")), { clock });
    try {
      await ws.store.retireCaIds([{ id: "13-sig", retiredAt: clock.now(), reason: "CRLs up to #4 were published under it" }]);
      const res = await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      expect(res.created.map((c) => c.id)).toEqual(["13-auth", "13-sig-g2"]);
      expect(res.passedOver).toEqual([{ id: "13-sig", reason: expect.stringContaining("#4"), instead: "13-sig-g2" }]);
      // run again: the CA of prefecture 13 exists (at generation 2), no third key
      expect(await code(initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" }))).toBe("ERR_CA_EXISTS");
      expect((await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw", skipExisting: true })).skipped).toEqual(["13-sig-g2"]);
      expect((await ws.store.listCas()).map((r) => r.id).sort()).toEqual(["13-auth", "13-sig-g2"]);
    } finally {
      await ws.close();
    }
  });
});
