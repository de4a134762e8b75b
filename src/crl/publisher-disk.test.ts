/**
 * A CRL directory that cannot take the CRL (a full disk, a quota, a read-only filesystem): the operator is told
 * where and why (ERR_FILE_UNUSABLE), not "a bug in jpki, please report it" (ERR_INTERNAL), and nothing is left
 * half-done — the installed CRL stays, no temporary file remains, the CA stays due and the next run publishes.
 * The filesystem error is injected into the staged file's writes (a full tmpfs needs privileges a test run lacks).
 */
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Workspace as WorkspaceType } from "../workspace/workspace.js";

const fail = vi.hoisted(() => ({ code: undefined as string | undefined, link: undefined as string | undefined, open: undefined as string | undefined }));
/** Every directory sync the publisher asked for (staging.ts syncDir), in order. */
const dirSyncs = vi.hoisted(() => [] as string[]);
// The history link (<file>.<number>): a directory that cannot take one more entry fails it with ENOSPC.
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  return {
    ...real,
    linkSync: (...args: Parameters<typeof real.linkSync>) => {
      if (fail.link) throw Object.assign(new Error(`${fail.link}: simulated, link`), { code: fail.link, syscall: "link" });
      real.linkSync(...args);
    },
  };
});
vi.mock("../store/staging.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../store/staging.js")>();
  return {
    ...real,
    syncDir: (dir: string) => {
      dirSyncs.push(dir);
      real.syncDir(dir);
    },
    openStagingFile: (...args: Parameters<typeof real.openStagingFile>) => {
      if (fail.open) throw Object.assign(new Error(`${fail.open}: simulated, open`), { code: fail.open, syscall: "open", path: join(dirname(args[0]), `.${basename(args[0])}.tmp`) });
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

const { casTemplate, copyOfTemplate } = await import("../../test/ca-template.js");
const { Workspace } = await import("../workspace/workspace.js");
const { generateCrls } = await import("./generate.js");
const { CrlUpdater } = await import("./updater.js");
const { isJpkiError } = await import("../errors.js");
const { IssuanceService } = await import("../ca/issuance.js");
const { revokeCertificate } = await import("../ca/revocation.js");
const { makeResidentCode } = await import("../registry/resident-code.js");

const subjectKeys: Buffer[] = [];
const subjectKey = (i: number) => (subjectKeys[i] ??= generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }));

/**
 * A workspace holding the CAs of `prefectures` for `purposes` (passphrase "pw"), with `config`: a copy of the file's
 * template of that set (test/ca-template.ts). initCas makes an RSA-2048 key per CA, which was most of what these tests
 * spent before anything was published; what they test starts after it, and no test shares a copy.
 */
async function casWorkspace(prefectures: string[], purposes: Array<"signature" | "authentication">, config: Record<string, unknown> = {}): Promise<WorkspaceType> {
  const root = copyOfTemplate(await casTemplate(prefectures, purposes), "publish-disk");
  const file = join(root, "config.json");
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), ...config }, null, 2) + "\n");
  return Workspace.open(root);
}

/** A workspace whose CA 13-sig has a revoked certificate in each of `municipalities` (so a partition each), and 27-sig. */
async function withPartitions(municipalities: readonly string[], config: Record<string, unknown> = {}): Promise<WorkspaceType> {
  const ws = await casWorkspace(["13", "27"], ["signature"], config);
  open.push(ws);
  const issuance = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: "pw" });
  for (const [i, m] of municipalities.entries()) {
    const residentCode = makeResidentCode(`00000007${String(i).padStart(2, "0")}`);
    await ws.store.upsertResidents([{ residentCode, municipalityCode: m, status: "active", fourItems: { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" } }]);
    const cert = await issuance.issue({ residentCode, type: "signature", publicKey: subjectKey(i) });
    await revokeCertificate(ws.store, { serial: cert.serial, reason: "loss", at: ws.clock.now() });
  }
  return ws;
}

const elsewhere = () => mkdtempSync(join(tmpdir(), "jpki-elsewhere-"));

const open: WorkspaceType[] = [];
afterEach(async () => {
  fail.code = undefined;
  fail.link = undefined;
  fail.open = undefined;
  for (const ws of open.splice(0)) await ws.close();
});

describe("CrlPublisher: a CA's partitions", () => {
  it("are installed and recorded in one store transaction, with one sync of their directory (not one a CRL)", async () => {
    const ws = await withPartitions(["131016", "131024", "131032"]);
    const publishCrls = vi.spyOn(ws.store, "publishCrls");
    const publishCrl = vi.spyOn(ws.store, "publishCrl");
    dirSyncs.length = 0;
    const out = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    const partitions = out.filter((c) => /^\d{6}$/.test(c.scope)).map((c) => c.scope);
    expect(partitions.sort()).toEqual(["131016", "131024", "131032"]);
    expect(publishCrls).toHaveBeenCalledTimes(1);
    expect(publishCrls.mock.calls[0]![0].map((c) => c.rec.scope)).toEqual(["131016", "131024", "131032"]);
    // the full CRL and the ARL one each, as before
    expect(publishCrl.mock.calls.map((c) => c[0].scope ?? "")).toEqual(["", "arl"]);
    expect(dirSyncs.filter((d) => d === join(ws.paths.crlDir, "13-sig"))).toHaveLength(1);
    for (const m of ["131016", "131024", "131032"]) expect(existsSync(join(ws.paths.crlDir, "13-sig", `${m}.crl`))).toBe(true);
    expect(await ws.store.crlScopeStatus()).toEqual(expect.not.arrayContaining([expect.objectContaining({ caId: "13-sig", dirty: true })]));
  });
});

describe("CrlPublisher on a CRL directory that cannot be written", () => {
  it.each(["ENOSPC", "EDQUOT", "EROFS"])("%s: ERR_FILE_UNUSABLE naming crl/, the CA stays due, nothing left behind, the next run publishes", async (code) => {
    const ws = await casWorkspace(["13"], ["signature"]);
    open.push(ws);

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

  it("a history link the directory cannot take (ENOSPC): ERR_FILE_UNUSABLE, the CRL in place is still the last one recorded, nothing left behind", async () => {
    const ws = await casWorkspace(["13"], ["signature"]);
    open.push(ws);

    const [first] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const installed = () => readFileSync(join(ws.paths.crlDir, "13-sig.crl"));
    const before = installed();
    await ws.store.markCrlsDue("13-sig");
    fail.link = "ENOSPC";
    const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
    // Was ERR_INTERNAL, after the new CRL had replaced the one the store recorded as published.
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: ws.paths.crlDir } });
    expect(installed().equals(before)).toBe(true);
    expect((await ws.store.latestCrl("13-sig"))!.number).toBe(first!.number);
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.startsWith(".") || n === `13-sig.crl.${first!.number + 1n}`)).toEqual([]);
    expect(await ws.store.dirtyCas()).toContain("13-sig");
    fail.link = undefined;
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next!.number).toBe(first!.number + 2n); // the failed run's number is burnt, never reused
    expect(readdirSync(ws.paths.crlDir)).toEqual(expect.arrayContaining(["13-sig.crl", `13-sig.crl.${first!.number}`, `13-sig.crl.${next!.number}`]));
  });

  it("a directory where the stale PEM copy or a history link goes: ERR_FILE_UNUSABLE naming it before anything is installed, or no failure at all", async () => {
    // Was ERR_STORE after the new CRL had been installed: the store rolled back, the CA stayed due, and every
    // run (every tick of watch) installed one more unrecorded CRL and left one more history link unpruned.
    const ws = await casWorkspace(["13"], ["signature"], { crlPem: false });
    open.push(ws);

    const [first] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const installed = () => readFileSync(join(ws.paths.crlDir, "13-sig.crl"));
    const before = installed();
    const pem = join(ws.paths.crlDir, "13-sig.crl.pem");
    mkdirSync(pem);
    await ws.store.markCrlsDue("13-sig");
    for (let run = 0; run < 2; run++) {
      const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: pem } });
      expect((err as Error).message).toMatch(/crl\/13-sig\.crl\.pem cannot be replaced or removed .*nothing was published and the CA stays due/);
    }
    expect(installed().equals(before)).toBe(true);
    expect((await ws.store.latestCrl("13-sig"))!.number).toBe(first!.number);
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.startsWith("13-sig.crl."))).toEqual(["13-sig.crl.1", "13-sig.crl.pem"]);
    expect(await ws.store.dirtyCas()).toContain("13-sig");
    rmdirSync(pem);
    // A directory named like an old history link is passed over by the pruning, not a failure after the install.
    mkdirSync(join(ws.paths.crlDir, "13-sig.crl.0"));
    for (let run = 0; run < 4; run++) expect((await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }))[0]!.superseded).toBe(false);
    const latest = (await ws.store.latestCrl("13-sig"))!.number;
    expect(latest).toBe(first!.number + 6n); // the two refused runs' numbers are burnt, never reused
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.startsWith("13-sig.crl.")).sort()).toEqual(["13-sig.crl.0", ...[latest - 2n, latest - 1n, latest].map((n) => `13-sig.crl.${n}`)].sort());
    expect(await ws.store.dirtyCas()).toEqual([]);
  });

  it("the schedule's round: a CA whose full CRL cannot be published holds back neither the other CAs nor its own ARL", async () => {
    // Was: the round's workers stopped taking CAs at the first failure, and a lasting one (here a directory at
    // crl/01-auth.crl) came back every tick of serve or watch: the CAs queued after it never published again.
    const ws = await casWorkspace(["01", "13", "27"], ["signature", "authentication"]);
    open.push(ws);

    const ids = (await ws.store.listCas()).map((c) => c.id).sort();
    expect(ids).toHaveLength(6);
    mkdirSync(join(ws.paths.crlDir, "01-auth.crl"), { recursive: true });
    const updater = new CrlUpdater(ws, "pw");
    for (let tick = 0; tick < 2; tick++) {
      const due = [...ids.map((caId) => ({ caId, why: "missing" as const })), { caId: "01-auth", scope: "arl", why: "missing" as const }];
      const err = await updater.publishDue(due).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: join(ws.paths.crlDir, "01-auth.crl") } });
    }
    for (const id of ids) expect(await ws.store.latestCrl(id), id).toEqual(id === "01-auth" ? undefined : expect.objectContaining({ caId: id }));
    expect(await ws.store.latestCrl("01-auth", "arl")).toBeDefined();
  });

  it("crl generate --prefecture: a CA whose CRL cannot be published holds back none of the CAs after it; its failure is raised", async () => {
    // Was: the run stopped at that CA, and a timer running it published none of the CAs after it, run after run.
    const ws = await casWorkspace(["01", "13"], ["signature", "authentication"]);
    open.push(ws);

    mkdirSync(join(ws.paths.crlDir, "01-sig.crl"), { recursive: true }); // the first of 01-sig, 01-auth, 13-sig, 13-auth
    const landed: string[] = [];
    const err = await generateCrls(ws, { prefecture: "01,13", passphrase: "pw", partitions: "all", onPublished: (c) => landed.push(`${c.caId}/${c.scope}`) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: join(ws.paths.crlDir, "01-sig.crl") } });
    expect(landed).toEqual(expect.arrayContaining(["01-auth/", "13-sig/", "13-auth/", "13-sig/arl", "01-sig/arl"]));
    expect(landed).not.toContain("01-sig/");
    expect(await ws.store.dirtyCas()).toEqual(["01-sig"]);
    // a wrong passphrase is the operator's: the run stops at once
    await expect(generateCrls(ws, { prefecture: "01,13", passphrase: "wrong" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_PASSPHRASE_WRONG"));
  });
});

describe("CrlPublisher: what is at crl/, crl/<ca>/ and arl/ is a directory of the workspace, or nothing is written there", () => {
  it("a symbolic link at crl/<ca>/: ERR_FILE_UNUSABLE naming it, nothing written through it; the CA's full CRL and ARL and the other CAs publish", async () => {
    // Was: followed — the partition's CRL, its history link and its staged file went wherever the link pointed.
    const ws = await withPartitions(["131016"]);
    const away = elsewhere();
    const partitionDir = join(ws.paths.crlDir, "13-sig");
    mkdirSync(ws.paths.crlDir, { recursive: true });
    symlinkSync(away, partitionDir);
    const landed: string[] = [];
    const err = await generateCrls(ws, { prefecture: "13,27", passphrase: "pw", partitions: "all", onPublished: (c) => landed.push(`${c.caId}/${c.scope}`) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: partitionDir } });
    expect((err as Error).message).toMatch(/crl\/13-sig is a symbolic link, not a directory of the workspace .*nothing was published and the CA stays due/);
    expect(readdirSync(away)).toEqual([]);
    expect(landed.sort()).toEqual(["13-sig/", "13-sig/arl", "27-sig/", "27-sig/arl"]);
    expect(lstatSync(partitionDir).isSymbolicLink()).toBe(true);
    expect((await ws.store.crlScopeStatus()).find((s) => s.caId === "13-sig" && s.scope === "131016")).toMatchObject({ latest: undefined });
    // The schedule's round alike: the partition stays due, the other CAs' CRLs go out, nothing lands elsewhere.
    const updater = new CrlUpdater(ws, "pw");
    await ws.store.markCrlsDue("27-sig");
    const round = await updater.publishDue([{ caId: "13-sig", scope: "131016", why: "missing" }, { caId: "27-sig", why: "dirty" }]).catch((e: unknown) => e);
    expect(round).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: partitionDir } });
    expect(updater.published.map((c) => `${c.caId}/${c.scope}`)).toEqual(["27-sig/"]);
    expect(readdirSync(away)).toEqual([]);
    // Made a directory again: the partition publishes.
    rmSync(partitionDir);
    const again = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "due" });
    expect(again.map((c) => c.scope)).toContain("131016");
    expect(lstatSync(partitionDir).isDirectory()).toBe(true);
  });

  it("a file at crl/<ca>/, a symbolic link at arl/ or at crl/ itself: refused alike, typed, naming it", async () => {
    const ws = await withPartitions(["131016"]);
    mkdirSync(ws.paths.crlDir, { recursive: true });
    const partitionDir = join(ws.paths.crlDir, "13-sig");
    writeFileSync(partitionDir, "not a directory");
    const arl = join(ws.paths.root, "arl");
    const away = elsewhere();
    symlinkSync(away, arl);
    const landed: string[] = [];
    const err = await generateCrls(ws, { prefecture: "13,27", passphrase: "pw", partitions: "all", onPublished: (c) => landed.push(`${c.caId}/${c.scope}`) }).catch((e: unknown) => e);
    // the first failure (13-sig's partition) is raised; every ARL failed at arl/
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: partitionDir } });
    expect((err as Error).message).toMatch(/crl\/13-sig is a file, not a directory/);
    expect(landed.sort()).toEqual(["13-sig/", "27-sig/"]);
    expect(readdirSync(away)).toEqual([]);
    const arlErr = await generateCrls(ws, { ca: "27-sig", passphrase: "pw", partitions: "all" }).catch((e: unknown) => e);
    expect(arlErr).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: arl } });
    expect(readdirSync(away)).toEqual([]);

    // crl/ itself a symbolic link: nothing is published through it, the store records nothing
    const ws2 = await withPartitions([]);
    const away2 = elsewhere();
    rmSync(ws2.paths.crlDir, { recursive: true, force: true });
    symlinkSync(away2, ws2.paths.crlDir);
    const err2 = await generateCrls(ws2, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: ws2.paths.crlDir } });
    expect(readdirSync(away2)).toEqual([]);
    expect(await ws2.store.latestCrl("13-sig")).toBeUndefined();
  });

  it("a directory at one partition's file: ERR_FILE_UNUSABLE naming it; the CA's other partitions and its ARL publish, reported as they land", async () => {
    // Was: the partitions after it in the CA's pass, and its ARL, were held back by it (every round of the schedule).
    const ws = await withPartitions(["131016", "131024"]);
    const inTheWay = join(ws.paths.crlDir, "13-sig", "131016.crl");
    mkdirSync(inTheWay, { recursive: true });
    const landed: string[] = [];
    const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all", onPublished: (c) => landed.push(`${c.caId}/${c.scope}`) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: inTheWay } });
    expect(landed).toEqual(["13-sig/", "13-sig/131024", "13-sig/arl"]);
    const updater = new CrlUpdater(ws, "pw");
    const round = await updater.publishDue([{ caId: "13-sig", scope: "131016", why: "missing" }, { caId: "13-sig", scope: "131024", why: "dirty" }, { caId: "13-sig", scope: "arl", why: "refresh" }]).catch((e: unknown) => e);
    expect(round).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: inTheWay } });
    expect(updater.published.map((c) => `${c.caId}/${c.scope}`)).toEqual(["13-sig/131024", "13-sig/arl"]);
  });

  it("a crl/ directory jpki may not write in (EACCES): ERR_FILE_UNUSABLE naming it, not ERR_INTERNAL; the CA stays due", async () => {
    const ws = await casWorkspace(["13"], ["signature"]);
    open.push(ws);

    fail.open = "EACCES"; // a test run as root writes anywhere: the staged file's open(2) is refused for it
    const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: ws.paths.crlDir } });
    expect((err as Error).message).toMatch(/crl\/13-sig\.crl could not be written in crl \(EACCES: no permission\): nothing was published and the CA stays due/);
    expect(await ws.store.dirtyCas()).toContain("13-sig");
  });
});

describe("CrlPublisher: a name already at the history link <file>.<number>", () => {
  it.each([
    ["a symbolic link", (p: string, target: string) => symlinkSync(target, p)],
    ["a dangling symbolic link", (p: string) => symlinkSync("/nonexistent/jpki", p)],
    ["a directory", (p: string) => mkdirSync(p)],
    ["another file", (p: string) => writeFileSync(p, "an operator's notes")],
  ] as const)("%s: ERR_FILE_UNUSABLE naming it, left as it was (never followed), nothing installed; the next run publishes", async (_what, put) => {
    // Was: EEXIST taken for "linked": the CRL was installed and recorded with a history entry that is not it (a
    // symbolic link there kept pointing wherever it pointed, as history of this CRL).
    const ws = await casWorkspace(["13"], ["signature"]);
    open.push(ws);

    const [first] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const before = readFileSync(first!.derPath);
    const target = join(elsewhere(), "precious");
    writeFileSync(target, "precious");
    const link = join(ws.paths.crlDir, `13-sig.crl.${first!.number + 1n}`);
    put(link, target);
    const what = lstatSync(link);
    await ws.store.markCrlsDue("13-sig");
    const err = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: link } });
    expect((err as Error).message).toMatch(/its history link is taken \(crl\/13-sig\.crl\.2 is .*\): nothing was published and the CA stays due/);
    expect(readFileSync(first!.derPath).equals(before)).toBe(true);
    expect((await ws.store.latestCrl("13-sig"))!.number).toBe(first!.number);
    expect(lstatSync(link).ino).toBe(what.ino);
    expect(readFileSync(target, "utf8")).toBe("precious");
    expect(readdirSync(ws.paths.crlDir).filter((n) => n.startsWith("."))).toEqual([]);
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next).toMatchObject({ number: first!.number + 2n, superseded: false });
    expect(readFileSync(`${next!.derPath}.${next!.number}`).equals(readFileSync(next!.derPath))).toBe(true);
  });

  it("a CRL of the CA numbered as high (a store restored below its files, the current file rolled back): superseded, the numbering moves past it, that CRL is kept", async () => {
    // Was: linked "already", so a second, different CRL went out under a number this disk had published.
    const ws = await casWorkspace(["13"], ["signature"]);
    open.push(ws);

    for (let i = 0; i < 3; i++) await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    const crl = join(ws.paths.crlDir, "13-sig.crl");
    const second = readFileSync(`${crl}.2`);
    // The store as a backup taken after #1 had it, and the current file put back to #1 with it
    const { default: Database } = await import("better-sqlite3");
    const db = new Database(ws.paths.db);
    db.prepare("DELETE FROM crls WHERE ca_id = '13-sig' AND number > 1").run();
    db.close();
    rmSync(crl);
    copyFileSync(`${crl}.1`, crl);
    const third = readFileSync(`${crl}.3`);
    // refused once, past both #2 and #3 (was: once per history link above the store, #2 then #3)
    expect(await generateCrls(ws, { ca: "13-sig", passphrase: "pw" })).toMatchObject([{ number: 2n, superseded: true }]);
    expect(readFileSync(`${crl}.2`).equals(second)).toBe(true);
    expect(readFileSync(`${crl}.3`).equals(third)).toBe(true);
    const [next] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(next).toMatchObject({ number: 4n, superseded: false });
    expect(existsSync(`${crl}.4`)).toBe(true);
  });
});

describe("what a round that then failed published is reported", () => {
  it("jpki crl generate: the CRLs published before a CA failed are printed (text and --json), then the failure, its exit code", async () => {
    // Was: the error alone — the operator could not tell which CRLs were out.
    const { run } = await import("../cli/program.js");
    const ws = await casWorkspace(["01", "13"], ["signature"]);

    mkdirSync(join(ws.paths.crlDir, "01-sig.crl"), { recursive: true }); // the first CA of the run
    const root = ws.paths.root;
    await ws.close();
    const jpki = async (...args: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await run(["--workspace", root, ...args], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { JPKI_PASSPHRASE: "pw" }, cwd: root });
      return { code, stdout, stderr };
    };
    const text = await jpki("crl", "generate", "--prefecture", "01,13", "--purpose", "signature", "--partitions", "all");
    expect(text.code).toBe(2);
    expect(text.stdout).toMatch(/^CRL 13-sig #\d+: 0 entries/m);
    expect(text.stdout).toMatch(/^CRL 13-sig\/arl #\d+/m);
    expect(text.stdout).toMatch(/^CRL 01-sig\/arl #\d+/m);
    expect(text.stdout).not.toMatch(/^CRL 01-sig #/m);
    expect(text.stdout).toContain("3 CRLs published before the failure below");
    expect(text.stderr).toMatch(/^jpki: error \[ERR_FILE_UNUSABLE\] .*crl\/01-sig\.crl/);
    const json = await jpki("--json", "crl", "generate", "--prefecture", "01,13", "--purpose", "signature");
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).crls).toEqual([expect.objectContaining({ caId: "13-sig", scope: "full", superseded: false })]);
    expect(JSON.parse(json.stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: join(root, "crl", "01-sig.crl") } });
  });

  it("a schedule round (serve, watch): each CRL published is reported before the failure is raised; the Bridge's ARL is still refreshed", async () => {
    // Was: the tick raised and what it had published went unlogged; and refreshOthers (the Bridge CA's ARL) was
    // skipped on every tick while one CA's failure lasted.
    const { CrlSchedule } = await import("./schedule.js");
    const ws = await casWorkspace(["01", "13"], ["signature"]);
    open.push(ws);

    mkdirSync(join(ws.paths.crlDir, "01-sig.crl"), { recursive: true });
    const updater = new CrlUpdater(ws, "pw");
    const others: string[] = [];
    const schedule = new CrlSchedule({
      store: ws.store,
      clock: ws.clock,
      config: ws.config,
      publish: (due, onPublished) => updater.publishDue(due, onPublished),
      refreshOthers: async () => (others.push("bridge"), []),
    });
    const reported: string[] = [];
    const err = await schedule.tick((p) => reported.push(`${p.caId}/${p.scope} ${p.why}`)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: join(ws.paths.crlDir, "01-sig.crl") } });
    expect(reported.sort()).toEqual(["01-sig/arl missing", "13-sig/ missing", "13-sig/arl missing"]);
    expect(others).toEqual(["bridge"]);
    // and the audit log is anchored by the round, as after one that ended well (it never was while the failure lasted)
    expect(await ws.store.auditCheckpoints()).toHaveLength(1);
  });

  it("serve's schedule loop: a round in which one CA failed logs the CRLs it published, then the failure", async () => {
    const { openCrlSchedule } = await import("../server/serve.js");
    const ws = await casWorkspace(["01", "13"], ["signature"]);
    open.push(ws);

    mkdirSync(join(ws.paths.crlDir, "01-sig.crl"), { recursive: true });
    const log: string[] = [];
    const controller = new AbortController();
    const loop = await openCrlSchedule(ws, {
      passphrase: "pw",
      signal: controller.signal,
      onCrl: (p) => log.push(`crl ${p.caId}/${p.scope}`),
      onError: (e) => log.push(`error ${(e as { code?: string }).code}`),
      sleep: async () => controller.abort(),
    });
    await loop();
    expect(log.slice(0, -1).sort()).toEqual(["crl 01-sig/arl", "crl 13-sig/", "crl 13-sig/arl"]);
    expect(log.at(-1)).toBe("error ERR_FILE_UNUSABLE");
  });

  it("jpki notices ingest: a CA whose CRL cannot be published stops no notice; the result, the CRLs published and the rejects come out, then the failure", async () => {
    // Was: the run failed before it applied a notice (the catch-up of CAs left due came first), so while one CA's
    // crl/ entry was unusable no revocation of any CA went in; and had it failed after the last batch, its rejects
    // were lost and the operator saw the error alone.
    const { run } = await import("../cli/program.js");
    const ws = await casWorkspace(["13", "27"], ["signature"]);

    const residentCode = makeResidentCode("0000000701");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" } }]);
    await new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: subjectKey(0) });
    mkdirSync(join(ws.paths.crlDir, "27-sig.crl"), { recursive: true });
    await ws.store.markCrlsDue("27-sig");
    const root = ws.paths.root;
    await ws.close();
    const feed = join(root, "..", "feed.jsonl");
    writeFileSync(feed, [JSON.stringify({ noticeId: "D-1", residentCode, kind: "death", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016" }), "{ not json"].join("\n") + "\n");
    let stdout = "";
    let stderr = "";
    const code = await run(["--workspace", root, "--json", "notices", "ingest", feed], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { JPKI_PASSPHRASE: "pw" }, cwd: root });
    expect(code).toBe(2);
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ read: 2, applied: 1, rejected: 1, revocations: 1 });
    expect(r.crls).toEqual(expect.arrayContaining([expect.objectContaining({ ca: "13-sig", scope: "full" })]));
    expect(r.crls.map((c: { ca: string; scope: string }) => `${c.ca}/${c.scope}`)).not.toContain("27-sig/full");
    expect(readFileSync(r.rejectFile, "utf8")).toContain(`"line":2,"code":"ERR_IMPORT_FORMAT"`);
    expect(JSON.parse(stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", details: { path: join(root, "crl", "27-sig.crl") } });
    // A caller that has the failure raised (watch's spool, the counter's delivery) keeps the rejects too: they
    // stayed an open temporary file, swept later.
    const { runIngest } = await import("../ca/ingestion.js");
    const again = Workspace.open(root);
    open.push(again);
    const rejectPath = join(root, "rejects", "again.rejects.jsonl");
    writeFileSync(feed, "{ not json\n");
    const err = await runIngest(again, { source: feed, format: "jsonl", rejectPath, batchSize: 10, crlIntervalMs: 0, updater: new CrlUpdater(again, "pw") }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FILE_UNUSABLE" });
    expect(readFileSync(rejectPath, "utf8")).toContain(`"line":1,"code":"ERR_IMPORT_FORMAT"`);
  });
});

