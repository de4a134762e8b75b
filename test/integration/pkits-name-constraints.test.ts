/**
 * PKITS section 4.13, name constraints (RFC 5280 §4.2.1.10, §6.1.3(b)–(c)): not in the manifest the suite
 * runs, so the expected result is the one PKITS puts in each end entity's file name ("Valid…" / "Invalid…",
 * test/vectors/pkits/README.md). Paths are built from all the section's CA certificates; the trust anchor and
 * its CRL come from the main vectors.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { buildPath, validatePath } from "../../src/index.js";

const DIR = join(import.meta.dirname, "../vectors/pkits");
const NC = join(DIR, "name-constraints");
const AT = new Date("2026-01-01T00:00:00Z");

const certFiles = readdirSync(join(NC, "certs")).sort();
const endEntities = certFiles.filter((f) => f.endsWith("EE.crt"));
const cas = certFiles.filter((f) => !f.endsWith("EE.crt")).map((f) => readFileSync(join(NC, "certs", f)));
const crls = [...readdirSync(join(NC, "crls")).map((f) => readFileSync(join(NC, "crls", f))), readFileSync(join(DIR, "crls", "TrustAnchorRootCRL.crl"))];
const anchors = [readFileSync(join(DIR, "certs", "TrustAnchorRootCertificate.crt"))];

/** file → why it does not give the result its name says. Must match the failures exactly. */
const KNOWN_FAILING: Record<string, string> = {};

describe("NIST PKITS 4.13 name constraints", () => {
  test("the 38 end entities are all here", () => {
    expect(endEntities).toHaveLength(38);
  });

  test("each gives the result its name says, except exactly the known failures", () => {
    const failing: string[] = [];
    for (const f of endEntities) {
      const ee = readFileSync(join(NC, "certs", f));
      const chain = buildPath({ endEntity: ee, intermediates: cas, trustAnchors: anchors }) ?? [ee];
      const r = validatePath({ trustAnchors: anchors, chain, certificates: cas, crls, at: AT, revocation: "hard-fail" });
      const expectValid = f.startsWith("Valid");
      if ((r.status === "valid") !== expectValid) failing.push(`${f}: got ${r.status}${r.status === "valid" ? "" : ` (${r.reason} at ${r.index}: ${r.message})`}`);
      else if (!expectValid && r.status !== "valid") expect([r.reason, f]).toSatisfy(([reason]) => String(reason).startsWith("name-constraints"));
    }
    if (failing.length) console.log(failing.join("\n"));
    expect(failing.map((f) => f.split(":")[0])).toEqual(Object.keys(KNOWN_FAILING));
  });
});
