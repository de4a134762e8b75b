/**
 * Partial input, honest result (issue 7 point 5): a bad line in an input file costs that line only. The
 * commands apply everything else, report the bad line by its number, and exit 13 (ERR_PARTIAL) — they do
 * not stop half-way with earlier batches committed and no CRL published.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateResidents } from "../../src/registry/fixtures.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { cardKey, cardKeys, cli, copyTemplate, openWorkspace, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

type Row = Record<string, string>;
let dir: string;
let ws: string;
let residents: Row[];
let pub: string;
/** each batch line's card key (one key, one resident and type) */
let key: () => string;
const w = () => ["--workspace", ws];
/** signature certificate serial by resident code */
const sig = new Map<string, string>();

/** "架空" in Shift_JIS: the classic line that is not UTF-8. */
const SJIS = Buffer.from([0x89, 0xcb, 0x8b, 0xf3]);

/** A file of JSON lines and raw byte lines, joined by LF, without a final line break. */
function writeLines(path: string, lines: Array<unknown>): string {
  const parts = lines.map((l) => (Buffer.isBuffer(l) ? l : Buffer.from(typeof l === "string" ? l : JSON.stringify(l), "utf8")));
  writeFileSync(path, Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from("\n"), p]))));
  return path;
}

function notice(id: string, r: Row, kind: string, seq: number, extra: Record<string, unknown> = {}) {
  return { noticeId: id, residentCode: r.residentCode, kind, effectiveDate: "2026-05-01", sequence: seq, municipalityCode: r.municipalityCode, ...extra };
}

/**
 * The setup both tests start from, made once per file (a CA init's RSA keys, an openssl card key, the import,
 * the issuances and the serials looked up): a directory holding the workspace (ws) and the files beside it. Each
 * test gets its own copy (copyWorkspace: the directory, and on PostgreSQL its database), as the tests change it.
 */
let template: string;

beforeAll(async () => {
  template = tempDir("jpki-partial-template-");
  const tw = ["--workspace", join(template, "ws")];
  await tokyoWorkspace(join(template, "ws"));
  residents = [...generateResidents({ count: 4, seed: "partial-input", prefectures: ["13"] })] as unknown as Row[];
  writeJsonl(join(template, "residents.jsonl"), residents);
  expect((await cli([...tw, "registry", "import", join(template, "residents.jsonl")], { cwd: template })).code).toBe(0);
  pub = readFileSync(cardKey(template, "card").pub, "utf8");
  key = cardKeys(pub);
  writeJsonl(join(template, "apps.jsonl"), residents.map((r) => ({ residentCode: r.residentCode, type: "signature", publicKey: key() })));
  const issued = await cli([...tw, "issue", "--batch", join(template, "apps.jsonl"), "--json"], { cwd: template });
  expect(issued.code, issued.stderr).toBe(0);
  for (const r of residents) {
    const rows = (await cli([...tw, "registry", "show", r.residentCode!, "--json"], { cwd: template })).json().certificates as Array<{ serial: string }>;
    sig.set(r.residentCode!, rows[0]!.serial);
  }
});

beforeEach(async () => {
  dir = tempDir("jpki-partial-");
  ws = await copyTemplate(template, dir);
});

describe("a bad line in the input", () => {
  it("notices ingest: applies the good notices around bad lines (one last), publishes the CRL, exits 13", async () => {
    const [a, b, c] = residents as [Row, Row, Row];
    const file = writeLines(join(dir, "feed.jsonl"), [
      notice("P-1", a, "death", 1),
      Buffer.concat([Buffer.from('{"noticeId":"P-2","name":"'), SJIS, Buffer.from('"}')]), // line 2: not UTF-8
      notice("P-3", b, "death", 1), // after the bad line: must still revoke
      '{"noticeId":"P-4","kind":"death"}\r{"noticeId":"P-5"}', // line 4: bare CR
      Buffer.concat([Buffer.from('{"noticeId":"P-6","residentCode":"'), SJIS, Buffer.from('"}')]), // line 5, last, no LF
    ]);
    // batch size 1: earlier batches are committed before the bad lines are met, as in a large file
    const res = await cli([...w(), "notices", "ingest", file, "--batch-size", "1", "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(13);
    const s = res.json();
    expect(s).toMatchObject({ read: 5, applied: 2, rejected: 3, held: 0, duplicates: 0 });
    expect(s.revocationsByReason).toEqual({ cessationOfOperation: 2 });
    expect(res.stderr).toMatch(/3 of 5 notices were rejected/);
    expect(res.stderr + res.stdout).not.toContain("架空");

    // the rejects say which lines and why, without the lines' content
    const rejects = readFileSync(s.rejectFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { line: number; code: string; reason: string; record?: unknown });
    expect(rejects.map((r) => [r.line, r.code])).toEqual([[2, "ERR_IMPORT_FORMAT"], [4, "ERR_IMPORT_FORMAT"], [5, "ERR_IMPORT_FORMAT"]]);
    expect(rejects[0]!.reason).toMatch(/^line 2: not valid UTF-8/);
    expect(rejects[1]!.reason).toMatch(/^line 4: bare CR \(CR-only line endings\?\)/);
    expect(rejects.every((r) => r.record === undefined)).toBe(true);

    // the notice after the bad line revoked b's certificate, recorded as its cause; c is untouched
    const wsp = await openWorkspace(ws);
    const revoked = new Map((await wsp.store.revocationSummary().finally(() => wsp.close())).map((x) => [x.serial, x]));
    expect(revoked.get(sig.get(a.residentCode!)!)).toMatchObject({ reason: 5, source: "notice:P-1" });
    expect(revoked.get(sig.get(b.residentCode!)!)).toMatchObject({ reason: 5, source: "notice:P-3" });
    expect(revoked.has(sig.get(c.residentCode!)!)).toBe(false);

    // and the CA's CRL on disk, as openssl reads the DER, lists both
    const crl = s.crls.find((x: { ca: string }) => x.ca === "13-sig") as { path: string };
    expect(crl.path).toBe(join(ws, "crl", "13-sig.crl"));
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", crl.path, "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const listed = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase());
    expect(listed.sort()).toEqual([sig.get(a.residentCode!)!, sig.get(b.residentCode!)!].map((x) => x.toLowerCase()).sort());
  });

  it("registry import and issue --batch: the lines around a bad last line are taken, exit 13", async () => {
    const extra = [...generateResidents({ count: 2, seed: "partial-input-more", prefectures: ["13"] })] as unknown as Row[];
    const file = writeLines(join(dir, "more.jsonl"), [extra[0], extra[1], Buffer.concat([Buffer.from('{"name":"'), SJIS, Buffer.from('"}')])]);
    const imp = await cli([...w(), "registry", "import", file, "--json"], { cwd: dir });
    expect(imp.code, imp.stderr).toBe(13);
    expect(imp.json()).toMatchObject({ read: 3, imported: 2, rejected: 1, errors: [{ line: 3, code: "ERR_IMPORT_FORMAT" }] });

    const apps = writeLines(join(dir, "apps2.jsonl"), [
      ...extra.map((r) => ({ residentCode: r.residentCode, type: "authentication", publicKey: key() })),
      Buffer.concat([Buffer.from('{"residentCode":"'), SJIS, Buffer.from('"}')]),
    ]);
    const iss = await cli([...w(), "issue", "--batch", apps, "--json"], { cwd: dir });
    expect(iss.code, iss.stderr).toBe(13);
    expect(iss.json()).toMatchObject({ read: 3, issued: 2, failed: 1 });
    expect(iss.json().errors).toEqual([expect.objectContaining({ line: 3, code: "ERR_IMPORT_FORMAT" })]);
  });
});

// Every line failing applied nothing: 13 ("partially applied") told a script the good lines were in and the bad ones
// could be re-run. Now the lines' own code; for different codes, the first failing line's.
describe("a batch in which every line fails", () => {
  it("issue --batch, registry import, registry apply, counter batch and notices ingest exit with the lines' code, not 13", async () => {
    const nobody = [makeResidentCode("9999999999"), makeResidentCode("8888888888")];
    const bad = Buffer.concat([Buffer.from('{"residentCode":"'), SJIS, Buffer.from('"}')]);
    const run = (_what: string, args: string[]) => cli([...w(), ...args], { cwd: dir });
    // issue --batch: every resident unknown (7); then a bad line first and an unknown resident after: the first's (8)
    const unknownApps = writeLines(join(dir, "nobody.jsonl"), nobody.map((c) => ({ residentCode: c, type: "signature", publicKey: key() })));
    const iss = await run("issue", ["issue", "--batch", unknownApps]);
    expect(iss.code, iss.stderr).toBe(7);
    expect(iss.stderr).toContain("[ERR_RESIDENT_UNKNOWN] none of the 2 applications was issued (every one ERR_RESIDENT_UNKNOWN)");
    expect(iss.stdout).toContain("issued 0, already issued 0, failed 2");
    const mixed = writeLines(join(dir, "mixed.jsonl"), [bad, { residentCode: nobody[0], type: "signature", publicKey: key() }]);
    const iss2 = await run("issue mixed", ["issue", "--batch", mixed]);
    expect(iss2.code, iss2.stderr).toBe(8);
    expect(iss2.stderr).toMatch(/\[ERR_IMPORT_FORMAT\] none of the 2 applications was issued \((ERR_IMPORT_FORMAT ×1, ERR_RESIDENT_UNKNOWN ×1|ERR_RESIDENT_UNKNOWN ×1, ERR_IMPORT_FORMAT ×1)/);
    // registry import: every line malformed
    const imp = await run("registry import", ["registry", "import", writeLines(join(dir, "bad-residents.jsonl"), [bad, bad])]);
    expect(imp.code, imp.stderr).toBe(8);
    expect(imp.stderr).toContain("none of the 2 records was imported");
    // registry apply: every notice malformed
    const apply = await run("registry apply", ["registry", "apply", writeLines(join(dir, "bad-notices.jsonl"), [bad, bad])]);
    expect(apply.code, apply.stderr).toBe(8);
    // counter batch: every procedure for no one
    const counter = await run("counter batch", ["counter", "batch", writeLines(join(dir, "nobody-deaths.jsonl"), nobody.map((c) => ({ kind: "death", residentCode: c })))]);
    expect(counter.code, counter.stderr).toBe(7);
    expect(counter.stderr).toContain("none of the 2 procedures was done");
    // notices ingest: every notice malformed
    const ingest = await run("notices ingest", ["notices", "ingest", writeLines(join(dir, "bad-feed.jsonl"), [bad, bad])]);
    expect(ingest.code, ingest.stderr).toBe(8);
    expect(ingest.stderr).toContain("none of the 2 notices was taken");
    // one good line among them is still "partially applied"
    const some = await run("issue some", ["issue", "--batch", writeLines(join(dir, "some.jsonl"), [{ residentCode: residents[0]!.residentCode, type: "authentication", publicKey: key() }, bad])]);
    expect(some.code, some.stderr).toBe(13);
  });
});
