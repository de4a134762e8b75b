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
    expect(r.code, r.stderr).toBe(13);
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
    const file = writeJsonl(join(dir, "original.jsonl"), [third, { ...third, status: "removed", name: "登録　四郎" }]);
    const r = await cli(["--workspace", ws, "registry", "import", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13);
    const out = r.json();
    expect(out).toMatchObject({ read: 2, inserted: 0, updated: 0, rejected: 2 });
    expect(out.errors.map((e: { code: string }) => e.code)).toEqual(["ERR_RESIDENT_CHANGE_NEEDS_NOTICE", "ERR_RESIDENT_CHANGE_NEEDS_NOTICE"]);
    expect(out.errors[0].message).toContain(newCode);
    expect(r.stdout + r.stderr).not.toContain("登録　");
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
    expect(r.code, r.stderr).toBe(13);
    expect(r.json().errors).toEqual([expect.objectContaining({ line: 1, code: "ERR_RESIDENT_CHANGE_NEEDS_NOTICE" })]);
    expect((await show(dead!.residentCode)).status).toBe("deceased");
    await expect(issueWithCardKey(ws, dir, "revived", dead!.residentCode)).rejects.toThrow(/exited 7/);
  });
});
