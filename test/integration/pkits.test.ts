/**
 * NIST PKITS conformance (RFC 5280 §6): every case of test/vectors/pkits/manifest.json under the default
 * settings the manifest states. A case that does not give its expected result must be in KNOWN_FAILING with a
 * reason; the set of failures is asserted to be exactly that list, so a fix or a regression shows up here.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { buildPath, validatePath, type PathValidationResult } from "../../src/index.js";
import { CrlIndexCache } from "../../src/validation/crl-index-cache.js";

const DIR = join(import.meta.dirname, "../vectors/pkits");

interface PkitsCase {
  id: string;
  name: string;
  endEntity: string;
  intermediates: string[];
  crls: string[];
  trustAnchor: string;
  pathLength: number;
  revocationRequired: boolean;
  expect: "valid" | "invalid";
}

const manifest = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as { cases: PkitsCase[] };
const cert = (f: string) => readFileSync(join(DIR, "certs", f));
const crl = (f: string) => readFileSync(join(DIR, "crls", f));

/** PKITS certificates and CRLs run from 2010 to 2030; "now" is fixed so the suite never depends on the clock. */
const AT = new Date("2026-01-01T00:00:00Z");

/** case id → why it does not give the expected result. Must match the failures exactly. */
const KNOWN_FAILING: Record<string, string> = {};

function run(c: PkitsCase): { result: PathValidationResult; built: number | undefined } {
  const anchors = [cert(c.trustAnchor)];
  const intermediates = c.intermediates.map(cert);
  const chain = buildPath({ endEntity: cert(c.endEntity), intermediates, trustAnchors: anchors });
  const result = validatePath({
    trustAnchors: anchors,
    chain: chain ?? [cert(c.endEntity)],
    certificates: intermediates,
    crls: c.crls.map(crl),
    at: AT,
    revocation: "hard-fail",
  });
  // pathLength counts the trust anchor.
  return { result, built: chain ? chain.length + 1 : undefined };
}

describe("NIST PKITS", () => {
  const outcomes = manifest.cases.map((c) => ({ c, ...run(c) }));

  test("the manifest holds the 172 cases", () => {
    expect(manifest.cases).toHaveLength(172);
  });

  test("every case gives its expected result, except exactly the known failures", () => {
    const failing = outcomes
      .filter(({ c, result }) => (result.status === "valid") !== (c.expect === "valid"))
      .map(({ c, result }) => `${c.id} ${c.name}: expected ${c.expect}, got ${result.status}${result.status === "valid" ? "" : ` (${result.reason} at ${result.index}: ${result.message})`}`);
    if (failing.length) console.log(failing.join("\n"));
    expect(failing.map((f) => f.split(" ")[0])).toEqual(Object.keys(KNOWN_FAILING));
  });

  test("the path built for each valid case has the manifest's length", () => {
    const wrong = outcomes.filter(({ c, built }) => c.expect === "valid" && built !== c.pathLength).map(({ c, built }) => `${c.id}: built ${built}, manifest ${c.pathLength}`);
    expect(wrong).toEqual([]);
  });

  // A server validates against every CRL it publishes, passed as one frozen set through one CrlIndexCache, and
  // the engine then looks only at the CRLs of each certificate's issuer (or all of them for an indirect CRL's
  // cRLIssuer): the verdicts must be exactly those of the same CRLs looked through one by one.
  test("every PKITS CRL as one frozen set through a shared CrlIndexCache: the same verdict for every case as the set looked through one by one", () => {
    const everyCrl = [...new Set(manifest.cases.flatMap((c) => c.crls))].map(crl);
    const set = Object.freeze(everyCrl);
    const cache = new CrlIndexCache({ maxCrls: 4096 });
    const verdict = (r: PathValidationResult) => (r.status === "valid" ? "valid" : `${r.status} ${r.reason} at ${r.index}: ${r.message}`);
    const differ: string[] = [];
    let revoked = 0;
    for (const c of manifest.cases) {
      const intermediates = c.intermediates.map(cert);
      const chain = buildPath({ endEntity: cert(c.endEntity), intermediates, trustAnchors: [cert(c.trustAnchor)] }) ?? [cert(c.endEntity)];
      const common = { chain, certificates: intermediates, at: AT, revocation: "hard-fail" as const };
      const loose = validatePath({ ...common, trustAnchors: [cert(c.trustAnchor)], crls: everyCrl.map((d) => Buffer.from(d)) });
      const kept = validatePath({ ...common, trustAnchors: Object.freeze([cert(c.trustAnchor)]), crls: set, crlIndex: cache });
      if (verdict(kept) !== verdict(loose)) differ.push(`${c.id}: ${verdict(kept)} vs ${verdict(loose)}`);
      if (kept.status === "revoked") revoked++;
    }
    expect(differ).toEqual([]);
    expect(revoked).toBeGreaterThan(10); // the set did reach the engine: revocations were found in it
    expect(cache.parses).toBe(new Set(everyCrl.map((d) => d.toString("base64"))).size); // each CRL parsed once for all 172 cases
  });
});
