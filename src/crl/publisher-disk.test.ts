/**
 * A CRL directory that cannot take the CRL (a full disk, a quota, a read-only filesystem): the operator is told
 * where and why (ERR_FILE_UNUSABLE), not "a bug in jpki, please report it" (ERR_INTERNAL), and nothing is left
 * half-done — the installed CRL stays, no temporary file remains, the CA stays due and the next run publishes.
 * The filesystem error is injected into the staged file's writes (a full tmpfs needs privileges a test run lacks).
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Workspace as WorkspaceType } from "../workspace/workspace.js";

const fail = vi.hoisted(() => ({ code: undefined as string | undefined, link: undefined as string | undefined }));
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
const { CrlUpdater } = await import("./updater.js");
const { isJpkiError } = await import("../errors.js");

const open: WorkspaceType[] = [];
afterEach(async () => {
  fail.code = undefined;
  fail.link = undefined;
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

  it("a history link the directory cannot take (ENOSPC): ERR_FILE_UNUSABLE, the CRL in place is still the last one recorded, nothing left behind", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-disk-")), "ws"), { config: {} });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
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
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-disk-")), "ws"), { config: { crlPem: false } });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
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
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-disk-")), "ws"), { config: {} });
    open.push(ws);
    await initCas(ws, { prefectures: ["01", "13", "27"].map((p) => prefecture(p)), purposes: ["signature", "authentication"], passphrase: "pw" });
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
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-publish-disk-")), "ws"), { config: {} });
    open.push(ws);
    await initCas(ws, { prefectures: ["01", "13"].map((p) => prefecture(p)), purposes: ["signature", "authentication"], passphrase: "pw" });
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
