/**
 * `jpki registry import` and the link to the CA side (shared/spec/JPKI.md "The link between the two networks"):
 * a bulk import may add residents and correct records nobody relies on, but never replace the record of a
 * certificate holder — that change must reach the CA side as a change notice, or the certificate certifying the
 * old items stays valid for good. Runs on both stores (JPKI_STORE under the postgres project).
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { chiyodaResidents, cli, issueWithCardKey, tempDir, tokyoSignatureWorkspace, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
const people = chiyodaResidents(3, "71000000", { name: "登録　太郎", birthDate: "1970-01-01", gender: "male" });
const [holder, other, third] = people as [(typeof people)[0], (typeof people)[0], (typeof people)[0]];
let serial: string;

beforeAll(async () => {
  dir = tempDir("jpki-registry-import-");
  ws = join(dir, "ws");
  await tokyoSignatureWorkspace(dir, ws, people);
  serial = (await issueWithCardKey(ws, dir, "holder", holder.residentCode)).serial;
}, 120_000);

const show = async (code: string) => {
  const r = await cli(["--workspace", ws, "registry", "show", code, "--json"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return r.json();
};

describe("jpki registry import over residents already held", () => {
  it("refuses to replace a certificate holder's record (a move written straight into the registry), imports the other lines, and counts the same record as unchanged", async () => {
    const moved = { ...holder, address: "東京都千代田区丸の内１丁目１番１号" };
    const corrected = { ...other, name: "登録　次郎" };
    const file = writeJsonl(join(dir, "second.jsonl"), [moved, corrected, third]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13); // ERR_PARTIAL: good lines imported, the bad one reported
    const out = r.json();
    expect(out).toMatchObject({ read: 3, inserted: 0, updated: 1, unchanged: 1, rejected: 1 });
    expect(out.errors).toEqual([expect.objectContaining({ line: 1, code: "ERR_RESIDENT_CHANGE_NEEDS_NOTICE" })]);
    expect(out.errors[0].message).toContain("jpki registry apply");
    // never the items in the message: the code says whose record
    expect(r.stdout + r.stderr).not.toContain("丸の内");
    // The holder's record is as it was, and so the certificate still certifies what the registry holds.
    expect((await show(holder.residentCode)).fourItems.address).toBe(holder.address);
    // A record nobody relies on was corrected.
    expect((await show(other.residentCode)).fourItems.name).toBe("登録　次郎");
  });

  it("refuses a death written as status 'deceased' for a holder: it must come as a death notice, which revokes", async () => {
    const file = writeJsonl(join(dir, "dead.jsonl"), [{ ...holder, status: "deceased" }]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(7);
    expect(r.json().errors[0].code).toBe("ERR_RESIDENT_CHANGE_NEEDS_NOTICE");
    const held = await show(holder.residentCode);
    expect(held.status).toBe("active");
    expect(held.certificates).toEqual([expect.objectContaining({ serial, revoked: null })]);
  });

  it("imports the same file again as all unchanged, exit 0", async () => {
    const file = writeJsonl(join(dir, "again.jsonl"), [holder, { ...other, name: "登録　次郎" }, third]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ read: 3, inserted: 0, updated: 0, unchanged: 3, rejected: 0 });
  });

  it("never reopens or replaces a record closed by a resident-code change: the person lives under the new code", async () => {
    // A resident with no certificate changes code at the counter: no notice is due, so the closed record keeps its
    // sequence (0) and holds no issuance information, only the code the person moved to. The municipality's
    // original file, imported again, still lists the old code as active.
    const newCode = makeResidentCode("7100000099");
    const moved = await cli(["--workspace", ws, "counter", "change-code", "--resident", third.residentCode, "--new-code", newCode, "--json"], { cwd: dir });
    expect(moved.code, moved.stderr).toBe(0);
    // Two files: one lists a code once (a second line with it would be refused as a repeat, ERR_RESIDENT_DUPLICATE).
    for (const [k, line] of [third, { ...third, status: "removed", name: "登録　四郎" }].entries()) {
      const file = writeJsonl(join(dir, `original-${k}.jsonl`), [line]);
      const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(7);
      const out = r.json();
      expect(out).toMatchObject({ read: 1, inserted: 0, updated: 0, rejected: 1 });
      expect(out.errors.map((e: { code: string }) => e.code)).toEqual(["ERR_RESIDENT_CHANGE_NEEDS_NOTICE"]);
      expect(out.errors[0].message).toContain(newCode);
      expect(r.stdout + r.stderr).not.toContain("登録　");
    }
    // Still closed, still naming the new code (a notice filed under the old one follows the person there), and the
    // person is one record, under the new code.
    const closed = await show(third.residentCode);
    expect(closed).toMatchObject({ status: "removed", successorCode: newCode, fourItems: { name: third.name } });
    expect((await show(newCode)).status).toBe("active");
  });
});


describe("jpki registry import over a record that is final", () => {
  it("does not make a deceased resident (no certificate, no notice) active again, and issuance stays refused", async () => {
    const [dead] = chiyodaResidents(1, "71000100", { name: "故人　花子", birthDate: "1930-05-05", gender: "female" });
    const first = writeJsonl(join(dir, "dead-first.jsonl"), [{ ...dead, status: "deceased" }]);
    expect((await cli(["--workspace", ws, "registry", "import", first, "--json"], { cwd: dir })).code).toBe(0);
    const revived = writeJsonl(join(dir, "revived.jsonl"), [{ ...dead, status: "active" }]);
    const r = await cli(["--workspace", ws, "registry", "import", revived, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(7);
    expect(r.json().errors).toEqual([expect.objectContaining({ line: 1, code: "ERR_RESIDENT_CHANGE_NEEDS_NOTICE" })]);
    expect((await show(dead!.residentCode)).status).toBe("deceased");
    await expect(issueWithCardKey(ws, dir, "revived", dead!.residentCode)).rejects.toThrow(/exited 7/);
  });
});

describe("jpki registry import compares and stores one normal form of the text", () => {
  // が and ぶ decompose under NFD (か + U+3099): what macOS and some exporters write for the same name.
  const trio = chiyodaResidents(3, "71000200", { name: "長谷川　がくぶ", birthDate: "1981-02-03", gender: "female" });
  const [holder2, other2, third2] = trio as [(typeof trio)[0], (typeof trio)[0], (typeof trio)[0]];

  beforeAll(async () => {
    const r = await cli(["--workspace", ws, "registry", "import", writeJsonl(join(dir, "trio.jsonl"), trio), "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    await issueWithCardKey(ws, dir, "holder2", holder2.residentCode);
  }, 120_000);

  it("counts the same residents exported in NFD or with padded fields as unchanged: no holder refused, no record replaced", async () => {
    const { name: _, ...thirdNoName } = third2;
    const file = writeJsonl(join(dir, "nfd.jsonl"), [
      { ...holder2, name: holder2.name.normalize("NFD"), address: `${holder2.address} ` },
      { ...other2, name: `${other2.name.normalize("NFD")}\u3000`, address: `\u3000${other2.address}  ` },
      { ...thirdNoName, familyName: " 長谷川", givenName: `${third2.name.split("\u3000")[1]!.normalize("NFD")} `, residentCode: ` ${third2.residentCode}` },
    ]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ read: 3, inserted: 0, updated: 0, unchanged: 3, rejected: 0 });
    for (const p of trio) expect((await show(p.residentCode)).fourItems).toMatchObject({ name: p.name, address: p.address });
  });

  it("stores a new resident's text composed and trimmed, keeping compatibility ideographs (the true form) as they are", async () => {
    const [fresh] = chiyodaResidents(1, "71000300", { name: "\uFA10本　ばんり", birthDate: "1990-09-09", gender: "male" });
    // U+FA10 kept, the rest decomposed: NFC (or NFD) of the whole would merge U+FA10 into 塚 (U+585A)
    const nfd = `\uFA10${fresh!.name.slice(1).normalize("NFD")} `;
    expect(nfd.normalize("NFC")).toContain("\u585A");
    const file = writeJsonl(join(dir, "fresh-nfd.jsonl"), [{ ...fresh, name: nfd, address: ` ${fresh!.address}` }]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ inserted: 1 });
    const held = await show(fresh!.residentCode);
    expect(held.fourItems).toMatchObject({ name: "\uFA10本\u3000ばんり一", address: fresh!.address });
  });
});

describe("jpki registry import lists each resident code once", () => {
  it("refuses a code listed again (ERR_RESIDENT_DUPLICATE, naming the first line): the first line alone is decided", async () => {
    const [a, b] = chiyodaResidents(2, "71000400", { name: "重複　一郎", birthDate: "1975-07-07", gender: "male" }) as [(typeof people)[0], (typeof people)[0]];
    const seed = await cli(["--workspace", ws, "registry", "import", writeJsonl(join(dir, "dup-seed.jsonl"), [b]), "--json"], { cwd: dir });
    expect(seed.code, seed.stderr).toBe(0);
    const bMoved = { ...b, address: "東京都千代田区丸の内２丁目２番２号" };
    const file = writeJsonl(join(dir, "dup.jsonl"), [a, bMoved, { ...a, name: "重複　二郎" }, bMoved]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13); // ERR_PARTIAL, as for any refused line
    const out = r.json();
    expect(out).toMatchObject({ read: 4, imported: 2, inserted: 1, updated: 1, unchanged: 0, rejected: 2 });
    expect(out.errors).toEqual([
      expect.objectContaining({ line: 3, code: "ERR_RESIDENT_DUPLICATE", firstLine: 1 }),
      expect.objectContaining({ line: 4, code: "ERR_RESIDENT_DUPLICATE", firstLine: 2 }),
    ]);
    expect(out.errors[0].message).toContain("first at line 1");
    expect(r.stdout + r.stderr).not.toContain("重複　");
    expect((await show(a.residentCode)).fourItems.name).toBe(a.name);
    expect((await show(b.residentCode)).fourItems.address).toBe(bMoved.address);
  });

  it("refuses a well-formed line whose code a malformed earlier line named, naming that line; a malformed line whose code cannot be read names nobody", async () => {
    const [a, b] = chiyodaResidents(2, "71000500", { name: "不整　一郎", birthDate: "1976-06-06", gender: "male" }) as [(typeof people)[0], (typeof people)[0]];
    const file = writeJsonl(join(dir, "dup-malformed.jsonl"), [
      { ...a, birthDate: "1976-02-30" }, // line 1: malformed, its code readable (padded, as the parser trims it)
      { ...b, residentCode: `${b.residentCode.slice(0, 10)}${(Number(b.residentCode[10]) + 1) % 10}` }, // line 2: a wrong check digit, no one's code
      a,
      b,
    ].map((x, i) => (i === 0 ? { ...x, residentCode: ` ${x.residentCode}` } : x)));
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13);
    const out = r.json();
    expect(out).toMatchObject({ read: 4, imported: 1, inserted: 1, rejected: 3 });
    expect(out.errors).toEqual([
      expect.objectContaining({ line: 1, code: "ERR_RESIDENT_INVALID" }),
      expect.objectContaining({ line: 2, code: "ERR_RESIDENT_CODE_INVALID" }),
      expect.objectContaining({ line: 3, code: "ERR_RESIDENT_DUPLICATE", firstLine: 1 }),
    ]);
    expect(out.errors[2].message).toContain("first at line 1, refused as malformed");
    expect(r.stdout + r.stderr).not.toContain("不整　");
    expect((await cli(["--workspace", ws, "registry", "show", a.residentCode], { cwd: dir })).code).not.toBe(0);
    expect((await show(b.residentCode)).fourItems.name).toBe(b.name);
  });

  it("finds the repeat across the import's batches of 2000 lines", async () => {
    const rows = Array.from({ length: 2001 }, (_, i) => ({
      residentCode: makeResidentCode(`72${String(i).padStart(8, "0")}`),
      municipalityCode: "131016",
      name: "一括　花子",
      address: "東京都千代田区千代田１番１号",
      birthDate: "1985-05-05",
      gender: "female",
    }));
    rows.push({ ...rows[0]!, name: "一括　桃子" }); // line 2002, in the second batch
    const r = await cli(["--workspace", ws, "registry", "import", writeJsonl(join(dir, "dup-batches.jsonl"), rows), "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13);
    expect(r.json()).toMatchObject({ read: 2002, inserted: 2001, updated: 0, rejected: 1 });
    expect(r.json().errors).toEqual([expect.objectContaining({ line: 2002, code: "ERR_RESIDENT_DUPLICATE", firstLine: 1 })]);
    expect((await show(rows[0]!.residentCode)).fourItems.name).toBe("一括　花子");
  });
});
