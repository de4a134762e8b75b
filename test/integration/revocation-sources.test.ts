/**
 * Revocation sources against a real `jpki serve` (issue 10 point 5): validateJpkiAsync fetches the CRLs our
 * certificates name (full, partition and the delta of freshestCRL) as a registered verifier (bearer token),
 * validates, and the second validation costs 304s only; a revoked certificate is revoked; with the server
 * gone, a warm cache still answers (its CRLs are current) and a cold one fails hard or warns soft.
 *
 * The certificates name the workspace's default baseUrl (http://localhost:8080); the fetch given to the cache
 * maps it to the port serve listens on, and counts what comes back.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pemOrDer } from "../../src/index.js";
import { describeCrl } from "../../src/profile/describe.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { validateJpkiAsync } from "../../src/validation/jpki.js";
import { CrlCache } from "../../src/validation/revocation-sources.js";
import { cardKey, cli, setConfig, startServe, tempDir, tokyoWorkspace, type RunningServe, writeJsonl } from "./helpers.js";

const BASE = "http://localhost:8080";
let dir: string;
let ws: string;
let token: string;
let good: Buffer;
let revoked: Buffer;
let anchor: Buffer;
let serve: RunningServe;
const statuses: number[] = [];

function cacheFor(url: string, bearerToken = token): CrlCache {
  return new CrlCache({
    bearerToken,
    // the certificates name BASE: the token goes there (the default, a URL only a certificate names, gets none)
    tokenOrigins: [BASE],
    fetch: async (input, init) => {
      const r = await fetch(String(input).replace(BASE, url), init);
      statuses.push(r.status);
      return r;
    },
  });
}

beforeAll(async () => {
  dir = tempDir("jpki-revsrc-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  // delta CRLs on: certificates then name the delta (freshestCRL) beside their municipality partition
  setConfig(ws, { deltaCrlIntervalMinutes: 5 });
  const residents = [...generateResidents({ count: 2, seed: "revsrc", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const issue = async (k: number) => {
    const { pub } = cardKey(dir, `card${k}`);
    const r = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[k]!.residentCode), "--public-key", pub, "--type", "signature"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return { serial: r.json().serial as string, der: pemOrDer(Buffer.from(r.json().pem as string), ["CERTIFICATE"], "certificate") };
  };
  const a = await issue(0);
  const b = await issue(1);
  good = a.der;
  revoked = b.der;
  expect((await cli(["--workspace", ws, "revoke", "--serial", b.serial, "--reason", "keyCompromise"], { cwd: dir })).code).toBe(0);
  anchor = pemOrDer(readFileSync(join(ws, "ca", "13-sig.pem")), ["CERTIFICATE"], "the CA certificate");
  const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "revsrc test", "--kind", "government"], { cwd: dir });
  expect(added.code, added.stderr).toBe(0);
  token = added.json().token;
  // published once by the CLI (full, delta, partitions, ARL); serve without its schedule, so nothing changes
  // between two validations and the second can only be answered 304
  const g = await cli(["--workspace", ws, "crl", "generate", "--ca", "13-sig", "--partitions", "all"], { cwd: dir });
  expect(g.code, g.stderr).toBe(0);
  serve = await startServe(ws, ["--access-log", "off", "--no-schedule"]);
  expect(serve.stderr()).toMatch(/listening/);
  const auth = { authorization: `Bearer ${token}` };
  const full = await fetch(`${serve.url}/crl/13-sig.crl`, { headers: auth });
  expect(full.status).toBe(200);
  expect(describeCrl(Buffer.from(await full.arrayBuffer())).entries.some((e) => e.serialNumber === b.serial)).toBe(true);
}, 180_000);

afterAll(() => {
  if (serve?.child.exitCode === null) serve.child.kill("SIGKILL");
});

describe("validateJpkiAsync with a CrlCache over jpki serve", () => {
  let cache: CrlCache;
  const validate = (certificate: Buffer, c: CrlCache, revocation: "hard-fail" | "soft-fail" = "hard-fail") =>
    validateJpkiAsync({ certificate, purpose: "signature", trustAnchors: [anchor], crlSource: c, at: new Date(), revocation });

  it("first validation downloads the CRLs the certificate names; the second costs only 304s", async () => {
    cache = cacheFor(serve.url);
    statuses.length = 0;
    const first = await validate(good, cache);
    expect(first.status, JSON.stringify(first)).toBe("valid");
    // the municipality partition (cRLDistributionPoints) and the delta CRL (freshestCRL)
    expect(first.crlFetches.map((f) => new URL(f.url).pathname).sort()).toEqual([expect.stringMatching(/^\/crl\/13-sig\/\d{6}\.crl$/), "/crl/13-sig-delta.crl"].sort());
    expect(first.crlFetches.every((f) => f.status === "downloaded")).toBe(true);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const parsed = cache.index.parses;

    statuses.length = 0;
    const second = await validate(good, cache);
    expect(second.status).toBe("valid");
    expect(second.crlFetches.every((f) => f.status === "not-modified")).toBe(true);
    expect(statuses.length).toBe(first.crlFetches.length);
    expect(statuses.every((s) => s === 304)).toBe(true);
    expect(cache.index.parses).toBe(parsed); // nothing parsed again
    expect(cache.stats.downloads).toBe(first.crlFetches.length);
  }, 60_000);

  it("a revoked certificate is revoked, with its reason", async () => {
    const r = await validate(revoked, cache);
    expect(r).toMatchObject({ status: "revoked", revocation: { reason: "keyCompromise" } });
  }, 60_000);

  it("without a registered verifier's token: 401, no CRL, revocation-unknown", async () => {
    const r = await validate(good, cacheFor(serve.url, "not-a-registered-token"));
    expect(r.status).toBe("revocation-unknown");
    expect(r.crlFetches.every((f) => f.status === "failed" && /401/.test(f.error ?? ""))).toBe(true);
  }, 60_000);

  it("server gone: a warm cache answers from its current CRLs; a cold one fails hard or warns soft", async () => {
    serve.child.kill("SIGTERM");
    await serve.exited;
    const warm = await validate(good, cache);
    expect(warm.status).toBe("valid");
    expect(warm.crlFetches.every((f) => f.status === "stale")).toBe(true);
    const cold = cacheFor(serve.url);
    const hard = await validate(good, cold, "hard-fail");
    expect(hard).toMatchObject({ status: "revocation-unknown", reason: "revocation-unknown" });
    const soft = await validate(good, cold, "soft-fail");
    expect(soft.status).toBe("valid");
    expect(soft.status === "valid" && soft.revocationWarnings.length).toBeGreaterThan(0);
    expect(soft.crlFetches.every((f) => f.status === "failed")).toBe(true);
  }, 60_000);
});
