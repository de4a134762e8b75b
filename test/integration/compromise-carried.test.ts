/**
 * A compromise declared on a retired generation (`jpki ca compromised`, ca_links.compromised_at) travels with the
 * store: after `jpki backup` + `jpki restore`, and after `jpki store copy --to sqlite:PATH`, the generation is still
 * listed compromised (ca show, compromisedCaIds) and the CRLs the new store publishes still list the revoked links:
 * NewWithOld on the successor's ARL and full CRL, OldWithNew and its own certificate on the old generation's ARL. Lost there, the link
 * would vouch for the stolen key again from the next CRL on. Backup and restore on PostgreSQL too (pg_dump).
 */
import { X509Certificate } from "node:crypto";
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compromisedCaIds } from "../../src/ca/compromised.js";
import { describeCrl } from "../../src/profile/describe.js";
import { cli, onPostgres, openWorkspace, tempDir } from "./helpers.js";

let dir: string;
let ws: string;
let at: string;
let newWithOld: string;
let oldWithNew: string;

async function ok(args: string[]) {
  const r = await cli(args, { cwd: dir });
  expect(r.code, `jpki ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r;
}

const serials = (file: string) => describeCrl(readFileSync(file)).entries.map((e) => e.serialNumber.toLowerCase());

/** What must hold of a workspace holding the compromise: the store says so, and the CRLs it publishes list the links. */
async function carriesCompromise(w: string): Promise<void> {
  const show = await ok(["-w", w, "ca", "show", "13-sig", "--json"]);
  expect(show.json().compromisedAt).toBe(at);
  const opened = await openWorkspace(w);
  try {
    expect([...(await compromisedCaIds(opened.store))]).toEqual(["13-sig"]);
  } finally {
    await opened.close();
  }
  // CRLs published from this store, not the files it came with
  const published = await ok(["-w", w, "crl", "generate", "--prefecture", "13", "--partitions", "all", "--json"]);
  expect(published.stdout.length).toBeGreaterThan(0);
  expect(serials(join(w, "arl", "13-sig-g2.crl"))).toEqual([newWithOld]);
  expect(serials(join(w, "crl", "13-sig-g2.crl"))).toContain(newWithOld);
  // and the generation's own certificate, last, on its ARL as on its full CRL (crl/arl.ts arlEntries)
  const own = new X509Certificate(readFileSync(join(w, "ca", "13-sig.crt"))).serialNumber.toLowerCase();
  expect(serials(join(w, "arl", "13-sig.crl"))).toEqual([oldWithNew, own]);
  expect(serials(join(w, "crl", "13-sig.crl"))).toEqual(expect.arrayContaining([newWithOld, oldWithNew, own]));
  for (const f of ["arl/13-sig-g2.crl", "crl/13-sig-g2.crl", "arl/13-sig.crl", "crl/13-sig.crl"]) {
    const s = serials(join(w, f));
    expect(new Set(s).size, f).toBe(s.length); // no serial twice (a restore carries entries over)
  }
}

beforeAll(async () => {
  dir = tempDir("jpki-compromise-carried-");
  ws = join(dir, "ws");
  await ok(["--workspace", ws, "ca", "init", "--prefecture", "13", "--purpose", "signature"]);
  await ok(["--workspace", ws, "ca", "rollover", "-p", "13", "--purpose", "sig"]);
  const declared = await ok(["--workspace", ws, "ca", "compromised", "13-sig", "--json"]);
  at = declared.json().at;
  await ok(["--workspace", ws, "crl", "generate", "--prefecture", "13", "--partitions", "all"]);
  const serialOf = (f: string) => new X509Certificate(readFileSync(join(ws, "ca", f))).serialNumber.toLowerCase();
  newWithOld = serialOf("13-sig.by-13-sig-g2.pem");
  oldWithNew = serialOf("13-sig-g2.by-13-sig.pem");
}, 120_000);

describe("a declared compromise survives", () => {
  it("the source itself lists the links (the reference for the copies below)", async () => {
    await carriesCompromise(ws);
  });

  it("jpki backup + jpki restore into a new workspace", async () => {
    const dest = join(dir, "backup");
    await ok(["-w", ws, "backup", dest]);
    const restored = join(dir, "restored");
    await ok(["-w", restored, "restore", dest]);
    await carriesCompromise(restored);
  });

  // SQLite to SQLite: the copied workspace directory opens the copy as its jpki.db (on PostgreSQL its config names
  // the source's database); the copy's dump/load is the same code both ways (store/copy.ts).
  it.skipIf(onPostgres)("jpki store copy --to sqlite:PATH, the copy opened as a workspace", async () => {
    const copy = join(dir, "copied");
    cpSync(ws, copy, { recursive: true });
    for (const f of ["jpki.db", "jpki.db-wal", "jpki.db-shm"]) rmSync(join(copy, f), { force: true });
    await ok(["-w", ws, "store", "copy", "--to", `sqlite:${join(copy, "jpki.db")}`]);
    await carriesCompromise(copy);
  });
});
