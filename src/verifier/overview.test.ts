/**
 * The CAs at a glance (overview.ts): the window of JST days ends today and is listed whole, zeros included; a
 * revocation counts on its JST day as the published full CRL lists it (one not yet published does not count);
 * a CRL is parsed once per number; CAs come in id order with their prefecture's name; the window is bounded.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { revokeCertificate } from "../ca/revocation.js";
import { generateCrls } from "../crl/generate.js";
import { isJpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { caOverview, CrlRevocationDays, MAX_OVERVIEW_DAYS } from "./overview.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

describe("caOverview", () => {
  // Here, and on the counting thread `jpki serve` uses (the compiled module: the global setup builds dist/).
  for (const thread of [false, new URL("../../dist/src/verifier/crl-days-thread.js", import.meta.url)] as const) it(`counts each CA's revocations per JST day as its latest full CRL lists them, over the window ending today${thread ? " (on the counting thread)" : ""}`, async () => {
    // the CAs are made before the certificates they issue (a clock before a CA's notBefore is refused)
    const clock = new FixedClock("2026-02-28T00:00:00Z");
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-overview-")), { clock });
    try {
      await initCas(ws, { prefectures: [prefecture("13"), prefecture("27")], purposes: ["signature"], passphrase: "pw" });
      clock.set("2026-03-01T00:00:00Z");
      const codes = ["0000000201", "0000000202", "0000000203", "0000000204"].map(makeResidentCode);
      await ws.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", status: "active" as const, fourItems: items })));
      const issuer = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" });
      const serials: string[] = [];
      for (const residentCode of codes) {
        const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
        serials.push((await issuer.issue({ residentCode, type: "signature", publicKey: spki })).serial);
      }
      // 08:00 JST on the 10th is 23:00 UTC on the 9th: it counts on the 10th (JST), today
      await revokeCertificate(ws.store, { serial: serials[0]!, reason: "item-changed", at: new Date("2026-03-09T23:00:00Z") });
      await revokeCertificate(ws.store, { serial: serials[1]!, reason: "death", at: new Date("2026-03-08T03:00:00Z") });
      await revokeCertificate(ws.store, { serial: serials[2]!, reason: "death", at: new Date("2026-03-02T03:00:00Z") }); // before the window
      clock.set("2026-03-10T01:00:00Z");
      await generateCrls(ws, { prefecture: "all", passphrase: "pw" });
      // revoked after the CRL: not on it, so not counted until the next one
      await revokeCertificate(ws.store, { serial: serials[3]!, reason: "death", at: new Date("2026-03-10T00:30:00Z") });
      if (thread) expect(existsSync(fileURLToPath(thread)), "the compiled counting thread").toBe(true);
      const days = new CrlRevocationDays(ws.paths.root, { thread });
      const o = await caOverview(ws.store, { clock, days: 7, revocationDays: days });
      expect(o).toMatchObject({ generatedAt: "2026-03-10T01:00:00.000Z", from: "2026-03-04", to: "2026-03-10" });
      expect(o.cas.map((c) => `${c.id} ${c.prefecture}`)).toEqual(["13-sig 東京都", "27-sig 大阪府"]);
      const tokyo = o.cas[0]!;
      expect(tokyo.revocationsPerDay.map((d) => `${d.day.slice(8)}:${d.count}`)).toEqual(["04:0", "05:0", "06:0", "07:0", "08:1", "09:0", "10:1"]);
      expect(tokyo.revocationsFrom).toBe(tokyo.crls.find((c) => c.kind === "full")!.number);
      expect(tokyo.crls.find((c) => c.kind === "full")).toMatchObject({ entries: 3, ageSeconds: 0, stale: false });
      expect(o.cas[1]!.revocationsPerDay.every((d) => d.count === 0)).toBe(true);
      // the counts of a CRL number are kept: the same map again, no second read
      const full = (await ws.store.crlStatus()).find((s) => s.caId === "13-sig")!.latest!;
      expect(await days.of("13-sig", full)).toBe(await days.of("13-sig", full));
      expect(o.cas.every((c) => c.fullCrlProblem === undefined)).toBe(true);
      // a full CRL whose file is gone, another CRL at its path, a directory there: each said, none counted
      const path = async (id: string) => join(ws.paths.root, (await ws.store.crlStatus()).find((s) => s.caId === id)!.latest!.path!);
      const tokyoFile = await path("13-sig");
      const osakaFile = await path("27-sig");
      const tokyoDer = readFileSync(tokyoFile);
      const osakaDer = readFileSync(osakaFile);
      rmSync(osakaFile);
      writeFileSync(tokyoFile, osakaDer); // Osaka's CRL where Tokyo's goes
      const broken = await caOverview(ws.store, { clock, days: 7, revocationDays: days });
      expect(broken.cas.map((c) => [c.id, c.fullCrlProblem, c.revocationsPerDay.length])).toEqual([["13-sig", "not-this-crl", 0], ["27-sig", "missing", 0]]);
      mkdirSync(osakaFile);
      writeFileSync(tokyoFile, tokyoDer.subarray(0, 100)); // cut short
      const again = await caOverview(ws.store, { clock, days: 7, revocationDays: days });
      expect(again.cas.map((c) => c.fullCrlProblem)).toEqual(["not-this-crl", "unreadable"]);
      // put right: counted again
      writeFileSync(tokyoFile, tokyoDer);
      const right = (await caOverview(ws.store, { clock, days: 7, revocationDays: days })).cas[0]!;
      expect([right.fullCrlProblem, right.revocationsFrom]).toEqual([undefined, tokyo.revocationsFrom]);
      // a counting thread that ends at its first job: that count and every later one are made here instead
      const dying = join(mkdtempSync(join(tmpdir(), "jpki-overview-thread-")), "dying.mjs");
      writeFileSync(dying, 'import { parentPort } from "node:worker_threads";\nparentPort.on("message", () => process.exit(3));\n');
      const orphan = new CrlRevocationDays(ws.paths.root, { thread: pathToFileURL(dying) });
      for (let i = 0; i < 2; i++) {
        const o2 = await caOverview(ws.store, { clock, days: 7, revocationDays: orphan });
        expect(o2.cas[0]!.revocationsPerDay).toEqual(tokyo.revocationsPerDay);
        await new Promise((r) => setTimeout(r, 50)); // the thread's exit is seen
      }
      for (const n of [0, MAX_OVERVIEW_DAYS + 1, 1.5]) await expect(caOverview(ws.store, { clock, days: n, revocationDays: days })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_USAGE"));
    } finally {
      await ws.close();
    }
  });
});

describe("CrlRevocationDays' counting thread", () => {
  it("never keeps a process alive: once it had counted, `jpki serve` did not exit after SIGTERM (the compiled module: dist/)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-overview-exit-"));
    writeFileSync(join(dir, "13-sig.crl"), "not a CRL: counted on the thread all the same");
    const overview = new URL("../../dist/src/verifier/overview.js", import.meta.url).href;
    // The interval stands for the server, which holds the process while a count is under way (an unref'd thread
    // alone does not); it ends after the count, as the server does at SIGTERM.
    const script = `import { CrlRevocationDays } from ${JSON.stringify(overview)};
const server = setInterval(() => {}, 1000);
const days = new CrlRevocationDays(${JSON.stringify(dir)}, { thread: true });
const r = await days.of("13-sig", { path: "13-sig.crl", number: 1n });
console.log(JSON.stringify(r));
clearInterval(server);`;
    // a file, not --eval: an --eval'd module's process ended here even with the thread held
    const file = join(dir, "count.mjs");
    writeFileSync(file, script);
    const ended = await new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) => {
      const child = execFile(process.execPath, [file], { timeout: 20_000, killSignal: "SIGKILL" }, (e, out) =>
        resolve({ code: child.exitCode, signal: (e as { signal?: string } | null)?.signal ?? null, out }),
      );
    });
    expect(ended.out).toMatch(/problem/); // it did count, on the thread
    expect(ended.signal, "the process had to be killed").toBeNull();
    expect(ended.code).toBe(0);
  });
});
