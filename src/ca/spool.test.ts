/**
 * The idle watcher's periodic sweep of the spool directory (ca/spool.ts): a producer killed while `jpki watch`
 * runs (a `jpki counter` writing a notice file under a dot-name) leaves its temporary file in DIR; the start-up
 * sweep has already run, so only the idle loop's sweep every tempSweepMs can remove it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { casTemplate } from "../../test/ca-template.js";
import { fileMode, underUmaskZero } from "../../test/umask.js";
import { CrlUpdater } from "../crl/updater.js";
import { thisNamespace } from "../store/pid-namespace.js";
import { Workspace } from "../workspace/workspace.js";
import { initCas } from "./manage.js";
import { prefecture } from "./prefectures.js";
import { rolloverCas } from "./rollover.js";
import { SPOOL_SETTLE_MS, watchSpool } from "./spool.js";

/** A temporary file's name as tempPathFor gives it, for the process `pid` of this PID namespace. */
const tempName = (target: string, pid: number) => `.${target}.${pid}~@${thisNamespace()}.0123456789ab.tmp`;

/**
 * A workspace at `root` holding the CAs of `prefectures` for `purposes`: a copy of the file's template of that set
 * (test/ca-template.ts), where each test made its own (an RSA-2048 key per CA: six for firstStart). What these tests
 * watch starts after the CAs exist; no test shares a copy.
 */
async function casWorkspace(root: string, prefectures: string[], purposes: Array<"signature" | "authentication">): Promise<Workspace> {
  cpSync(await casTemplate(prefectures, purposes), root, { recursive: true });
  return Workspace.open(root);
}

/** A workspace with one CA, its spool directory and a CRL updater ready: what a watch runs on. */
async function watchedWorkspace(prefix: string): Promise<{ ws: Workspace; spool: string; updater: CrlUpdater }> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const ws = await casWorkspace(join(root, "ws"), ["13"], ["signature"]);
  const spool = join(root, "spool");
  mkdirSync(spool);
  const updater = new CrlUpdater(ws, "pw");
  await updater.preflight();
  return { ws, spool, updater };
}

describe("jpki watch, idle: the spool's abandoned temporary files are swept while it runs", () => {
  it("removes a killed producer's temporary file left after start-up, and never a live producer's", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-sweep-");
    // a pid that has exited: its writer is provably gone
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    const abandoned = join(spool, tempName("n1.jsonl", dead));
    const live = join(spool, tempName("n2.jsonl", process.pid)); // this process writes it: work in progress
    const controller = new AbortController();
    const seen: boolean[] = [];
    let step = 0;
    try {
      await watchSpool(ws, updater, {
        dir: spool,
        pollMs: 1,
        once: false,
        batchSize: 100,
        signal: controller.signal,
        tempSweepMs: 0, // every idle wake-up is a sweep's turn
        sleep: async () => {
          // planted after the start-up sweep, as a counter killed while the watcher runs leaves it
          if (step === 0) for (const p of [abandoned, live]) writeFileSync(p, '{"partial":');
          else seen.push(existsSync(abandoned));
          if (++step >= 3) controller.abort();
        },
      });
    } finally {
      await ws.close();
    }
    expect(seen).toEqual([false, false]);
    expect(existsSync(live)).toBe(true);
  });
});

describe("jpki watch when a CRL cannot be published", () => {
  it("reports it and goes on: the next tick publishes once the cause is gone (a one-shot run fails instead)", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-publish-");
    // the disk is full for the first two ticks
    const publish = updater.publishDue.bind(updater);
    let full = 2;
    updater.publishDue = async (due) => {
      if (full > 0) {
        full--;
        throw Object.assign(new Error("no space left on device"), { code: "ERR_FILE_UNUSABLE" });
      }
      return publish(due);
    };
    const errors: string[] = [];
    const controller = new AbortController();
    let r: Awaited<ReturnType<typeof watchSpool>> | undefined;
    try {
      await expect(watchSpool(ws, updater, { dir: spool, pollMs: 1, once: true, batchSize: 100, signal: new AbortController().signal, onScheduleError: (e) => errors.push(String(e)) })).rejects.toThrow(/no space/);
      let naps = 0;
      r = await watchSpool(ws, updater, {
        dir: spool,
        pollMs: 1,
        once: false,
        batchSize: 100,
        signal: controller.signal,
        onScheduleError: (e) => errors.push((e as Error).message),
        sleep: async () => {
          if (++naps >= 3) controller.abort();
        },
      });
    } finally {
      await ws.close();
    }
    expect(errors).toEqual(["no space left on device"]);
    expect(r?.crls).toBeGreaterThan(0); // the CA's first CRL, once the disk had room again
  });
});

describe("jpki watch when the CRL after a file's last batch cannot be published", () => {
  it("settles the file in done/ (every notice of it applied) and reports the CRL's failure as a round's", async () => {
    // Was: the file went to failed/ with an error sidecar, its notices applied all the same.
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-last-crl-");
    const { IssuanceService } = await import("./issuance.js");
    const { makeResidentCode } = await import("../registry/resident-code.js");
    const { generateKeyPairSync } = await import("node:crypto");
    const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
    const residentCode = makeResidentCode("0000000888");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", fourItems: items, status: "active" }]);
    const issuance = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: "pw" });
    const cert = await issuance.issue({ residentCode, type: "signature", publicKey: generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }) });
    // a move: the signature certificate is revoked, and its CA's CRL is due after the batch
    const after = { ...items, address: "東京都千代田区永田町１丁目７番１号" };
    writeFileSync(join(spool, "moves.jsonl"), `${JSON.stringify({ noticeId: "M-1", residentCode, kind: "relocation", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016", after })}\n`);
    // written a while ago, read at once (waiting for a fresh file to go quiet is the test below's)
    const past = new Date(Date.now() - 2 * SPOOL_SETTLE_MS);
    utimesSync(join(spool, "moves.jsonl"), past, past);
    updater.publishDue = async () => {
      throw Object.assign(new Error("no space left on device"), { code: "ERR_FILE_UNUSABLE" });
    };
    const errors: string[] = [];
    const controller = new AbortController();
    try {
      await watchSpool(ws, updater, {
        dir: spool,
        pollMs: 1,
        once: false,
        batchSize: 100,
        signal: controller.signal,
        onScheduleError: (e) => errors.push((e as Error).message),
        sleep: async () => controller.abort(),
      });
      expect(readdirSync(join(spool, "done"))).toContain("moves.jsonl");
      expect(readdirSync(join(spool, "failed"))).toEqual([]);
      expect(errors).toContain("no space left on device");
      // the notice is applied: the certificate is revoked in the store, and its CA stays due
      expect((await ws.store.certificateStatus(cert.serial))?.revocation).toBeDefined();
      expect(await ws.store.dirtyCas()).toContain("13-sig");
    } finally {
      await ws.close();
    }
  });
});

describe("jpki watch under umask 0: what it makes and moves is owner-only", () => {
  const mode = fileMode;
  underUmaskZero();

  it("processing/, done/ and failed/ 0700; a file settled in done/ or failed/, and its reject or error file, 0600", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-spool-modes-"));
    const ws = Workspace.create(join(root, "ws"));
    const spool = join(root, "spool");
    mkdirSync(spool);
    // as a producer under umask 0 drops them: readable by everyone
    const drop = (name: string, body: string) => {
      writeFileSync(join(spool, name), body);
      chmodSync(join(spool, name), 0o666);
    };
    drop("001.csv", "noticeId,residentCode\nX-1,12345678901\n"); // readable, every notice rejected: done/
    drop("002.csv", "noticeId,noticeId\nX-1,X-1\n"); // no record can be read: failed/
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const updater = new CrlUpdater(ws, "pw");
      await updater.preflight();
      const r = await watchSpool(ws, updater, { dir: spool, pollMs: 1, once: true, batchSize: 100, signal: new AbortController().signal });
      expect(r).toMatchObject({ files: 2, failed: 1 });
    } finally {
      await ws.close();
    }
    for (const d of ["processing", "done", "failed"]) expect(mode(join(spool, d)), d).toBe(0o700);
    const settled = { done: ["001.csv", "001.csv.rejects.jsonl"], failed: ["002.csv", "002.csv.error.json"] };
    for (const [d, names] of Object.entries(settled)) {
      expect(readdirSync(join(spool, d)).sort()).toEqual(names);
      for (const f of names) expect(mode(join(spool, d, f)), `${d}/${f}`).toBe(0o600);
    }
  });
});

describe("jpki watch and OCSP: the signing certificates a serve --no-schedule beside it answers with", () => {
  it("issues a rolled-over CA's signing certificate at the tick after the one that publishes its first CRL, not at the minute's look", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-ocsp-rollover-");
    const controller = new AbortController();
    const issued: Array<{ caId: string; round: number }> = [];
    let round = 0;
    let newId = "";
    try {
      await watchSpool(ws, updater, {
        dir: spool,
        pollMs: 1000,
        once: false,
        batchSize: 100,
        signal: controller.signal,
        ocsp: { caPassphrase: "pw", responderPassphrase: "pw", onIssued: (r) => issued.push({ caId: r.caId, round }) },
        sleep: async () => {
          if (++round === 2) newId = (await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" }))[0]!.current.id;
          if (round === 6) controller.abort();
        },
      });
      // round 2's tick publishes the new CA's CRL; round 3's renewal issues its signer (the minute has not passed)
      expect(issued.filter((i) => i.caId === newId)).toEqual([{ caId: newId, round: 3 }]);
    } finally {
      await ws.close();
    }
  });

  it("issues each CA's OCSP signing certificate when asked (none without), and not again while it is fresh", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-ocsp-");
    try {
      const once = (ocsp?: { caPassphrase: string; responderPassphrase: string; onIssued: (r: { caId: string }) => void }) =>
        watchSpool(ws, updater, { dir: spool, pollMs: 1, once: true, batchSize: 100, signal: new AbortController().signal, ...(ocsp ? { ocsp } : {}) });
      await once();
      expect(await ws.store.ocspResponders()).toEqual([]);
      const issued: string[] = [];
      await once({ caPassphrase: "pw", responderPassphrase: "pw", onIssued: (r) => issued.push(r.caId) });
      expect(issued).toEqual(["13-sig"]);
      const [signer] = await ws.store.ocspResponders();
      expect(signer).toMatchObject({ caId: "13-sig" });
      await once({ caPassphrase: "pw", responderPassphrase: "pw", onIssued: (r) => issued.push(r.caId) });
      expect(issued).toEqual(["13-sig"]);
      expect((await ws.store.ocspResponders()).map((r) => r.serial)).toEqual([signer!.serial]);
      // a wrong responder passphrase fails the start, before any file is taken
      await expect(once({ caPassphrase: "wrong", responderPassphrase: "wrong", onIssued: () => undefined })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    } finally {
      await ws.close();
    }
  });
});

describe("jpki watch: a notice file written in place (a cp into the spool), not renamed in", () => {
  it("is read only once it has gone quiet: nothing written after the claim is lost", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-settle-");
    const file = join(spool, "feed.jsonl");
    const line = (i: number) => JSON.stringify({ noticeId: `S-${i}`, residentCode: "12345678901", kind: "death", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016" }) + "\n";
    // The producer opens the file and writes a line, a line cut in two, then the rest, a little at a time.
    const fd = openSync(file, "w");
    writeSync(fd, line(1));
    const writes = [line(2).slice(0, 20), line(2).slice(20), line(3)];
    const writer = (async () => {
      for (const w of writes) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        writeSync(fd, w);
      }
      closeSync(fd);
    })();
    const results: Array<{ read?: number }> = [];
    try {
      await watchSpool(ws, updater, { dir: spool, pollMs: 1, once: true, batchSize: 100, signal: new AbortController().signal, onFile: (_, r) => results.push(r as { read?: number }) });
      await writer;
    } finally {
      await ws.close();
    }
    // Before: claimed and read at once (one line), moved to done/, the rest never ingested.
    expect(results).toHaveLength(1);
    expect(results[0]!.read).toBe(3);
    expect(readFileSync(join(spool, "done", "feed.jsonl"), "utf8")).toBe(line(1) + line(2) + line(3));
  });
});

describe("jpki watch stopped during its start-up round (SIGTERM on a first start)", () => {
  /** A workspace with six CAs, none of which has a CRL or an OCSP signing certificate yet: a first start's work. */
  async function firstStart(prefix: string) {
    const root = mkdtempSync(join(tmpdir(), prefix));
    const ws = await casWorkspace(join(root, "ws"), ["01", "13", "27"], ["signature", "authentication"]);
    const spool = join(root, "spool");
    mkdirSync(spool);
    const ids = (await ws.store.listCas()).map((c) => c.id);
    expect(ids).toHaveLength(6);
    const updater = new CrlUpdater(ws, "pw");
    await updater.preflight();
    const withFull = async () => (await Promise.all(ids.map(async (id) => ((await ws.store.latestCrl(id)) ? id : undefined)))).filter(Boolean);
    return { ws, spool, updater, ids, withFull };
  }
  const options = (spool: string, signal: AbortSignal) => ({ dir: spool, pollMs: 10, once: false, batchSize: 100, signal, sleep: async () => undefined });

  it("stops the CRL round between CAs: those begun are published whole, the rest by the next start", async () => {
    const { ws, spool, updater, ids, withFull } = await firstStart("jpki-spool-stop-crl-");
    const controller = new AbortController();
    // SIGTERM arrives as the first CRL number is reserved: the CAs already begun finish, no other is begun
    const reserve = ws.store.reserveCrl.bind(ws.store);
    ws.store.reserveCrl = (...a: Parameters<typeof reserve>) => (controller.abort(), reserve(...a));
    try {
      const r = await watchSpool(ws, updater, options(spool, controller.signal));
      expect(r.files).toBe(0);
      const published = await withFull();
      expect(published.length).toBeGreaterThan(0);
      expect(published.length).toBeLessThan(ids.length);
      // the next start publishes the others
      ws.store.reserveCrl = reserve;
      await watchSpool(ws, updater, { ...options(spool, new AbortController().signal), once: true });
      expect(await withFull()).toEqual(ids);
    } finally {
      await ws.close();
    }
  });

  it("stops issuing OCSP signing certificates between CAs and begins no CRL round", async () => {
    const { ws, spool, updater, ids, withFull } = await firstStart("jpki-spool-stop-ocsp-");
    const controller = new AbortController();
    const put = ws.store.putOcspResponder.bind(ws.store);
    ws.store.putOcspResponder = (...a: Parameters<typeof put>) => (controller.abort(), put(...a));
    const ocsp = { caPassphrase: "pw", responderPassphrase: "pw" };
    try {
      await watchSpool(ws, updater, { ...options(spool, controller.signal), ocsp });
      expect(await ws.store.ocspResponders()).toHaveLength(1);
      expect(await withFull()).toEqual([]);
      ws.store.putOcspResponder = put;
      await watchSpool(ws, updater, { ...options(spool, new AbortController().signal), once: true, ocsp });
      expect((await ws.store.ocspResponders()).map((r) => r.caId).sort()).toEqual([...ids].sort());
      expect(await withFull()).toEqual(ids);
    } finally {
      await ws.close();
    }
  });
});

describe("watchSpool stopped while the store does not answer", () => {
  it("returns at jpki serve's bound, saying so (ERR_STORE_UNRESPONSIVE), instead of waiting as long as the store", async () => {
    const { ws, spool, updater } = await watchedWorkspace("jpki-spool-hung-");
    const stop = new AbortController();
    const reported: Array<{ code?: string; message?: string }> = [];
    const crlStatus = ws.store.crlStatus.bind(ws.store);
    // the first round's first store call never settles; SIGTERM comes while it waits
    ws.store.crlStatus = () => (stop.abort(), new Promise<never>(() => undefined));
    try {
      const r = await Promise.race([
        watchSpool(ws, updater, { dir: spool, pollMs: 1, once: false, batchSize: 100, signal: stop.signal, stopWaitMs: 50, onScheduleError: (e) => reported.push(e as { code?: string }) }),
        // a minute: the bound is for the hang looked for (the store's), not a measure of the stop (50 ms, and seconds on a loaded host)
        new Promise<"still waiting">((resolve) => setTimeout(() => resolve("still waiting"), 60_000).unref()),
      ]);
      expect(r).toEqual({ files: 0, failed: 0, crls: 0 });
      expect(reported).toEqual([expect.objectContaining({ code: "ERR_STORE_UNRESPONSIVE", message: expect.stringContaining("the watch did not finish its round within 50 ms") })]);
    } finally {
      ws.store.crlStatus = crlStatus;
      await ws.close();
    }
  });
});
