/**
 * NIST PKITS conformance (RFC 5280 §6): every case of test/vectors/pkits/manifest.json under the default
 * settings the manifest states. A case that does not give its expected result must be in KNOWN_FAILING with a
 * reason; the set of failures is asserted to be exactly that list, so a fix or a regression shows up here.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { buildPath, validatePath, type PathValidationResult } from "../../src/index.js";

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
});
