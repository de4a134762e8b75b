/**
 * Upgrading a workspace: one made by the previous release (store schema 6, checked in under
 * fixtures/workspace-v6) opens with the current code, migrates, and its next CRLs list exactly what the old ones
 * did — same serials, dates and reasons, in the same order — plus the two revocations it had not yet published.
 */
import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/store/sqlite.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { cli, V6_PASSPHRASE, workspaceV6 } from "./helpers.js";

/** The revokedCertificates of a CRL as openssl lists them (its own parser, file order), and its number. */
function opensslEntriesOf(text: string): { number: number; entries: string[] } {
  const number = Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]);
  const revoked = text.split(/Revoked Certificates:|No Revoked Certificates\./)[1] ?? "";
  const entries = revoked
    .split(/Signature Algorithm:/)[0]!
    .split(/Serial Number:/)
    .slice(1)
    .map((e) => e.replace(/\s+/g, " ").trim());
  return { number, entries };
}

/**
 * {@link opensslEntriesOf} for each of `paths`, by one shell running `openssl crl` on each in turn: a spawn from
 * the test's process per CRL (≈ 190 and then one per partition here) cost ≈ 10–15 ms of system time each,
 * forking a large worker, where the shell forks itself. A file openssl refuses fails the whole call.
 */
function opensslEntries(paths: readonly string[]): Array<{ number: number; entries: string[] }> {
  const MARK = "=== jpki-migration-test next CRL ===";
  const script = `set -e; for f in "$@"; do echo "${MARK}"; openssl crl -inform DER -in "$f" -noout -text; done`;
  const text = execFileSync("sh", ["-c", script, "sh", ...paths], { encoding: "utf8", maxBuffer: 1 << 30 });
  const parts = text.split(`${MARK}\n`).slice(1);
  expect(parts).toHaveLength(paths.length);
  return parts.map(opensslEntriesOf);
}

describe("a workspace made by the previous release (schema 6)", () => {
  it("migrates on open and publishes exactly the same revocations, in the same order, with the next numbers", async () => {
    const { dir, ws } = workspaceV6("jpki-migrate-");
    // Certificates expire (2029 at the earliest); the longest grace keeps every one listed until about 2039.
    const configPath = join(ws, "config.json");
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), expiredGraceDays: 3650 }));

    // Ground truth read with the old schema, before jpki touches the file.
    const old = new Database(join(ws, "jpki.db"), { readonly: true });
    expect(old.pragma("user_version", { simple: true })).toBe(6);
    const revokedByCa = new Map<string, string[]>();
    for (const r of old.prepare("SELECT ca_id, serial FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial").all() as Array<{ ca_id: string; serial: string }>) {
      revokedByCa.set(r.ca_id, [...(revokedByCa.get(r.ca_id) ?? []), r.serial.toUpperCase()]);
    }
    const cas = (old.prepare("SELECT id FROM cas ORDER BY id").pluck().all() as string[]);
    old.close();
    expect(cas).toHaveLength(94);
    const crlPaths = cas.map((ca) => join(ws, "crl", `${ca}.crl`));
    const before = new Map(opensslEntries(crlPaths).map((e, i) => [cas[i]!, e]));

    const env = { JPKI_PASSPHRASE: V6_PASSPHRASE };
    const opened = Workspace.open(ws);
    const due = await opened.store.dirtyCas();
    // The OCSP schema arrives empty: the first 'jpki serve' with the schedule issues the signing certificates.
    expect(await opened.store.ocspResponders()).toEqual([]);
    await opened.close();
    const migrated = new Database(join(ws, "jpki.db"), { readonly: true });
    expect(migrated.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    migrated.close();
    // The two manual revocations published by no CRL yet keep their CAs due across the upgrade.
    expect(due).toEqual(["37-auth", "37-sig"]);

    // The upgraded store registers verifiers (署名検証者): none yet; a new one's client certificate comes from a
    // verifier CA made under the workspace's passphrase (the old CA keys must open with it first).
    const reopened = Workspace.open(ws);
    expect(await reopened.store.listVerifiers()).toEqual([]);
    expect(await reopened.store.getVerifierCa()).toBeUndefined();
    await reopened.close();
    const wrongPass = await cli(["-w", ws, "verifier", "add", "--name", "after upgrade", "--kind", "government", "--client-cert", "--out", join(dir, "v")], { cwd: dir, env: { JPKI_PASSPHRASE: "not-it" } });
    expect(wrongPass.stderr).toMatch(/ERR_PASSPHRASE_WRONG/);
    const added = await cli(["-w", ws, "--json", "verifier", "add", "--name", "after upgrade", "--kind", "government", "--client-cert", "--out", join(dir, "v")], { cwd: dir, env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.json()).toMatchObject({ kind: "government", credentials: ["token", "certificate"], revokedAt: null });

    const gen = await cli(["-w", ws, "crl", "generate", "--prefecture", "all"], { cwd: dir, env });
    expect(gen.code, gen.stderr).toBe(0);
    const after = opensslEntries(crlPaths);
    for (const [i, ca] of cas.entries()) {
      const prev = before.get(ca)!;
      const next = after[i]!;
      expect(next.number, ca).toBe(prev.number + 1);
      const serialsOf = (entries: string[]) => entries.map((e) => e.split(" ")[0]!).sort();
      expect(serialsOf(next.entries), ca).toEqual(revokedByCa.get(ca) ?? []);
      if (due.includes(ca)) {
        // what the last CRL listed, then the revocation it had not published
        expect(next.entries.slice(0, prev.entries.length), ca).toEqual(prev.entries);
        expect(next.entries.length, ca).toBe(prev.entries.length + 1);
      } else {
        expect(next.entries, ca).toEqual(prev.entries);
      }
    }
  });

  it("upgrades to partitions (schema 9): every municipality issued in is a partition, each CRL lists exactly its revocations", async () => {
    const { dir, ws } = workspaceV6("jpki-migrate-parts-");
    const configPath = join(ws, "config.json");
    writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), expiredGraceDays: 3650 }));
    const old = new Database(join(ws, "jpki.db"), { readonly: true });
    const truth = new Map<string, string[]>(); // "<ca>/<municipality>" -> revoked serials
    const issuedIn = new Set<string>();
    for (const r of old.prepare("SELECT ca_id, municipality_code, serial, revoked_at FROM certificates ORDER BY serial").all() as Array<{ ca_id: string; municipality_code: string; serial: string; revoked_at: number | null }>) {
      const k = `${r.ca_id}/${r.municipality_code}`;
      issuedIn.add(k);
      if (r.revoked_at !== null) truth.set(k, [...(truth.get(k) ?? []), r.serial.toUpperCase()]);
    }
    old.close();
    const opened = Workspace.open(ws);
    const scopes = await opened.store.crlScopeStatus();
    await opened.close();
    expect(new Set(scopes.filter((s) => s.scope !== "arl").map((s) => `${s.caId}/${s.scope}`))).toEqual(issuedIn);
    expect(scopes.filter((s) => s.scope === "arl")).toHaveLength(94);
    const gen = await cli(["-w", ws, "crl", "generate", "--prefecture", "all", "--partitions", "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: V6_PASSPHRASE } });
    expect(gen.code, gen.stderr).toBe(0);
    const parts = (gen.json().crls as Array<{ scope: string; caId: string; municipality?: string }>).filter((c) => c.scope === "partition");
    expect(parts).toHaveLength(issuedIn.size);
    const keys = [...issuedIn];
    const listed = opensslEntries(keys.map((k) => join(ws, "crl", `${k}.crl`)));
    for (const [i, k] of keys.entries()) {
      const got = listed[i]!.entries.map((e) => e.split(" ")[0]!).sort();
      expect(got, k).toEqual(truth.get(k) ?? []);
    }
  });
});
