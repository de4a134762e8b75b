/**
 * The CLI's --json outputs name a CA `caId`, as `crl generate --json` and the HTTP API do, wherever they name one;
 * `ca`, the name most commands gave it first, stays beside it with the same value (deprecated: scripts read it).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { publishedCrls } from "../../src/ca/ingestion.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { cardKey, cli, runDemo, tempDir, unrevoked, type DemoRun } from "./helpers.js";

let demo: DemoRun;
let dir: string;
let env: Record<string, string>;

/** Every object in `v` (deeply) that names a CA `ca`: each must carry `caId` too, equal (one with caId alone never had `ca`). */
function caNames(v: unknown, out: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (Array.isArray(v)) for (const x of v) caNames(x, out);
  else if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if ("ca" in o) out.push(o);
    for (const x of Object.values(o)) caNames(x, out);
  }
  return out;
}
function expectBothNames(v: unknown, least: number): void {
  const named = caNames(v);
  expect(named.length).toBeGreaterThanOrEqual(least);
  for (const o of named) {
    expect(typeof o.caId, JSON.stringify(o)).toBe("string");
    expect(o.ca, JSON.stringify(o)).toBe(o.caId);
  }
}

beforeAll(async () => {
  dir = tempDir("jpki-json-ca-id-");
  demo = await runDemo(dir);
  env = { JPKI_PASSPHRASE: readFileSync(join(demo.workspace, "passphrase.txt"), "utf8").trim() };
});

describe("--json names a CA caId (and ca, its deprecated alias) in every command", () => {
  it("demo, issue, revoke, registry show, audit checkpoint, and the CRL lists of ingestion (notices ingest, counter --ingest, watch)", async () => {
    // demo: certificates, the revoked one, its CRLs, the relocation notice
    expectBothNames(demo, 4);
    const [kept] = unrevoked(demo);
    const ws = await Workspace.openAsync(demo.workspace);
    let residentCode: string;
    try {
      residentCode = (await ws.store.findCertificates({ status: "all" })).find((c) => c.serial === kept!.serial)!.residentCode;
    } finally {
      await ws.close();
    }
    const shown = await cli(["--workspace", demo.workspace, "--json", "registry", "show", residentCode], { cwd: dir, env });
    expect(shown.code, shown.stderr).toBe(0);
    expectBothNames(shown.json().certificates, 1);
    const k = cardKey(dir, "json-ca-id");
    const issued = await cli(["--workspace", demo.workspace, "--json", "issue", "--resident", residentCode, "--type", kept!.type, "--public-key", k.pub, "-o", join(dir, "new.pem")], { cwd: dir, env });
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.json()).toMatchObject({ caId: kept!.ca, ca: kept!.ca });
    const revoked = await cli(["--workspace", demo.workspace, "--json", "revoke", "--serial", issued.json().serial, "--reason", "loss"], { cwd: dir, env });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.json()).toMatchObject({ caId: kept!.ca, ca: kept!.ca });
    const checkpoint = await cli(["--workspace", demo.workspace, "--json", "audit", "checkpoint", "--force"], { cwd: dir, env });
    expect(checkpoint.code, checkpoint.stderr).toBe(0);
    expectBothNames(checkpoint.json(), 1);
    // what notices ingest, counter --ingest and watch (its summary and its crl-published lines) list the CRLs with
    const crls = publishedCrls([{ caId: "13-sig", scope: "131016", number: 7n, entries: 2, derPath: "crl/13-sig/131016.crl" } as never]);
    expect(crls).toEqual([expect.objectContaining({ caId: "13-sig", ca: "13-sig", scope: "partition", municipality: "131016" })]);
  });
});
