/**
 * CRL publication: the DER file always, the PEM copy only with config `crlPem`, never a stale PEM beside a
 * newer DER, and nothing half-written left behind when the key does not unlock.
 */
import Database from "better-sqlite3";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { JpkiError } from "../errors.js";
import { parsePemBlocks } from "../pki/pem.js";
import { describeCrl } from "../profile/describe.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";

const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

async function workspace(config: { crlPem?: boolean }): Promise<Workspace> {
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-")), "ws"), { config });
  open.push(ws);
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  return ws;
}

function reopenWith(ws: Workspace, settings: Record<string, unknown>): Workspace {
  const path = join(ws.paths.root, "config.json");
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), ...settings }));
  const again = Workspace.open(ws.paths.root);
  open.push(again);
  return again;
}

const files = (ws: Workspace) => readdirSync(ws.paths.crlDir).sort();

describe("CrlPublisher: DER, and PEM on request (config crlPem)", () => {
  it("publishes the DER alone by default", async () => {
    const ws = await workspace({});
    const [crl] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(crl!.pemPath).toBeUndefined();
    // the current CRL, and the same file linked as history (config crlKeep, default 3)
    expect(files(ws)).toEqual(["13-sig.crl", "13-sig.crl.1"]);
    const der = readFileSync(crl!.derPath);
    expect(der.length).toBe(crl!.byteLength);
    expect(describeCrl(der).crlNumber).toBe("1");
  });

  it("makes the store's commits durable before the CRL is installed (what it lists must outlive a power cut)", async () => {
    const ws = await workspace({});
    const events: string[] = [];
    const sync = vi.spyOn(ws.store, "syncCommitted").mockImplementation(async () => void events.push("sync"));
    const publish = ws.store.publishCrl.bind(ws.store);
    vi.spyOn(ws.store, "publishCrl").mockImplementation((rec, install) => publish(rec, () => (events.push("install"), install())));
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(events).toEqual(["sync", "install"]);
    // a store that cannot sync publishes nothing: the CA stays due
    sync.mockRejectedValueOnce(new JpkiError("ERR_STORE", "store failure while syncing the workspace database: EIO"));
    await expect(generateCrls(ws, { ca: "13-sig", passphrase: "pw" })).rejects.toMatchObject({ code: "ERR_STORE" });
    expect(events).toEqual(["sync", "install"]);
    expect(describeCrl(readFileSync(join(ws.paths.crlDir, "13-sig.crl"))).crlNumber).toBe("1");
  });

  it("with crlPem, writes the same CRL as PEM; turned off, the next publication removes the older PEM", async () => {
    const ws = await workspace({ crlPem: true });
    const [first] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(files(ws)).toEqual(["13-sig.crl", "13-sig.crl.1", "13-sig.crl.pem"]);
    const [block] = parsePemBlocks(readFileSync(first!.pemPath!, "latin1"));
    expect(block!.label).toBe("X509 CRL");
    expect(block!.der.equals(readFileSync(first!.derPath))).toBe(true);

    const off = reopenWith(ws, { crlPem: false });
    const [second] = await generateCrls(off, { ca: "13-sig", passphrase: "pw" });
    expect(second!.number).toBe(first!.number + 1n);
    expect(second!.pemPath).toBeUndefined();
    expect(files(off)).toEqual(["13-sig.crl", "13-sig.crl.1", "13-sig.crl.2"]);
  });

  it("a key that does not unlock leaves the published files as they were and no temporary file", async () => {
    const ws = await workspace({ crlPem: true });
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const before = files(ws).map((f) => readFileSync(join(ws.paths.crlDir, f)));
    await expect(generateCrls(ws, { ca: "13-sig", passphrase: "wrong" })).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    expect(files(ws)).toEqual(["13-sig.crl", "13-sig.crl.1", "13-sig.crl.pem"]);
    expect(files(ws).map((f) => readFileSync(join(ws.paths.crlDir, f)))).toEqual(before);
  });
});

describe("CrlPublisher: the file on disk only moves to a higher CRL number", () => {
  it("a run that installed #n+1 and then failed to record it (killed, its connection lost before COMMIT): a run holding #n leaves #n+1 in place", async () => {
    const ws = await workspace({});
    const t = { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000) };
    // Another run reserved #1 and is still building it.
    const held = await ws.store.reserveCrl("13-sig", t.thisUpdate, t.nextUpdate);
    expect(held.number).toBe(1n);
    // This run reserves #2, installs its files, and its transaction never commits.
    const lost = new JpkiError("ERR_STORE_UNREACHABLE", "the PostgreSQL server cannot be reached (57P01) while recording a published CRL");
    const publish = vi.spyOn(ws.store, "publishCrl").mockImplementationOnce(async (_rec, install) => {
      install();
      throw lost;
    });
    await expect(generateCrls(ws, { ca: "13-sig", passphrase: "pw" })).rejects.toBe(lost);
    publish.mockRestore();
    const onDisk = () => describeCrl(readFileSync(join(ws.paths.crlDir, "13-sig.crl"))).crlNumber;
    expect(onDisk()).toBe("2");
    // The run holding #1 publishes now: the store knows of no published #2, the disk does.
    vi.spyOn(ws.store, "reserveCrl").mockResolvedValueOnce(held);
    const [late] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(late).toMatchObject({ number: 1n, superseded: true });
    expect(onDisk()).toBe("2");
    // Still due (nothing above #1 is recorded as published): the next run publishes above the file on disk.
    expect(await ws.store.dirtyCas()).toContain("13-sig");
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next).toMatchObject({ number: 3n, superseded: false });
    expect(onDisk()).toBe("3");
  });
});

describe("CrlPublisher: a store numbering below the file on disk", () => {
  it("a store that lost its latest numbers (a restore stopped before it moved them on): the run refused moves the numbering past the file, the next publishes", async () => {
    const ws = await workspace({});
    for (let i = 0; i < 3; i++) await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const onDisk = () => describeCrl(readFileSync(join(ws.paths.crlDir, "13-sig.crl"))).crlNumber;
    expect(onDisk()).toBe("3");
    // The store as a backup taken after #1 had it
    const db = new Database(ws.paths.db);
    db.prepare("DELETE FROM crls WHERE ca_id = '13-sig' AND number > 1").run();
    db.close();
    const [refused] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(refused).toMatchObject({ number: 2n, superseded: true });
    expect(onDisk()).toBe("3");
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next).toMatchObject({ number: 4n, superseded: false });
    expect(onDisk()).toBe("4");
  });
});

describe("CrlPublisher: a revoked link certificate the store holds as revoked already is listed once", () => {
  // The guard of #linkEntries: a restore carries over an entry the replaced CRLs listed (backup/restore.ts
  // carryRevocations) — a link's too, once it was on a CRL — and a serial listed twice makes RFC 5280 readers
  // refuse the whole CRL.
  it("NewWithOld carried over on 13-sig-g2 as a restore would: its full CRL and ARL list it once, the delta at most once", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-")), "ws"), { config: { deltaCrlIntervalMinutes: 10 } });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const { rolloverCas } = await import("../ca/rollover.js");
    await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
    const { at } = await ws.store.declareCaCompromised("13-sig", ws.clock.now());
    const link = (await ws.store.listCaLinks()).find((l) => l.oldCaId === "13-sig")!;
    const { X509Certificate } = await import("node:crypto");
    const x = new X509Certificate(link.newWithOld!);
    const serial = x.serialNumber.toLowerCase();
    await ws.store.carryRevocations([{ caId: "13-sig-g2", serial, revokedAt: at, reason: 2, notAfter: new Date(x.validTo) }]);
    expect((await ws.store.certificateStatus(serial))?.revocation).toBeDefined();
    const published = await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" });
    expect(published.map((c) => c.scope ?? "")).toEqual(["", "delta", "arl"]);
    for (const c of published) {
      const serials = describeCrl(readFileSync(c.derPath)).entries.map((e) => e.serialNumber.toLowerCase());
      // the delta may leave it out: its base lists it (the carried entry is in the log before the base was reserved)
      const times = serials.filter((s) => s === serial).length;
      if (c.scope === "delta") expect(times).toBeLessThanOrEqual(1);
      else expect(times, c.scope ?? "full").toBe(1);
      expect(new Set(serials).size).toBe(serials.length);
    }
  });
});
