/**
 * `jpki inspect CERT` prints exactly what it printed when the @peculiar/asn1-x509 reader described certificates
 * (issue 8 point 9: the description moved to our own DER reader, profile/cert-reader.ts, to take ≈ 100 ms of
 * package loading off `inspect`). The goldens under test/vectors/inspect/ were written by that reader before
 * the switch (test/vectors/inspect/README.md): text and --json, byte for byte, for every kind of certificate we
 * issue and a few PKITS certificates with extensions we do not decode; and a SHA-256 of both outputs for every
 * other PKITS certificate, so the whole corpus is held to the same output at the cost of one small file.
 *
 * JPKI_WRITE_GOLDEN=1 rewrites them from the code as it is (only ever to add a certificate: a changed golden is
 * a changed output).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { runInProcess } from "../cli-in-process.js";

const ROOT = resolve(import.meta.dirname, "../..");
const VECTORS = join(ROOT, "test", "vectors", "inspect");
const GOLDEN = join(VECTORS, "golden");
const WRITE = process.env.JPKI_WRITE_GOLDEN === "1";

/** Certificates described in full: ours (certs/), J-LIS's, and PKITS ones with unusual extensions. */
const PKITS_IN_FULL = [
  "Mapping1to2CACert.crt", // policyMappings, policyConstraints: not decoded, printed as hex
  "ValidcRLIssuerTest28EE.crt", // cRLDistributionPoints with a cRLIssuer
  "ValidonlySomeReasonsTest18EE.crt", // cRLDistributionPoints with reasons
  "ValidNegativeSerialNumberTest14EE.crt", // a negative serial
  "ValidUTF8StringEncodedNamesTest9EE.crt",
  "ValidNameUIDsTest6EE.crt", // subjectUniqueID / issuerUniqueID
  "DSACACert.crt", // a DSA key: no RSA modulus to count
  "ValidGeneralizedTimenotAfterDateTest8EE.crt",
];
const NAME_CONSTRAINTS_IN_FULL = ["nameConstraintsDN1CACert.crt", "ValidRFC822nameConstraintsTest21EE.crt", "nameConstraintsURI1CACert.crt", "ValidDNSnameConstraintsTest30EE.crt"];

function inFull(): Array<{ name: string; path: string }> {
  const ours = readdirSync(join(VECTORS, "certs")).map((f) => ({ name: f, path: join(VECTORS, "certs", f) }));
  const jlis = readdirSync(join(ROOT, "fixtures", "jlis"))
    .filter((f) => f.endsWith(".pem"))
    .map((f) => ({ name: `jlis-${f}`, path: join(ROOT, "fixtures", "jlis", f) }));
  const pkits = PKITS_IN_FULL.map((f) => ({ name: `pkits-${f}`, path: join(ROOT, "test", "vectors", "pkits", "certs", f) }));
  const nc = NAME_CONSTRAINTS_IN_FULL.map((f) => ({ name: `pkits-${f}`, path: join(ROOT, "test", "vectors", "pkits", "name-constraints", "certs", f) }));
  return [...ours, ...jlis, ...pkits, ...nc];
}

/** Every PKITS certificate and the fuzzer's certificates, by their path under test/vectors. */
function corpus(): string[] {
  const dirs = ["pkits/certs", "pkits/name-constraints/certs", "fuzz/inspect-certificate"];
  return dirs.flatMap((d) =>
    readdirSync(join(ROOT, "test", "vectors", d))
      .filter((f) => f.endsWith(".crt") || f.endsWith(".der"))
      .map((f) => `${d}/${f}`),
  );
}

/** A small seeded generator (mulberry32): the same malformed variants on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Variants of our certificates with one octet changed, in the parts a reader interprets (the TBS up to the key,
 * and the extensions): most still decode, some as something else, some not at all. Each must get the output or
 * the error it got before.
 */
function variants(): Array<{ name: string; der: Buffer }> {
  const next = random(20261206);
  const out: Array<{ name: string; der: Buffer }> = [];
  for (const f of ["signature-13.pem", "authentication-13.pem", "ca-13-sig.pem", "provider-customer.pem", "ocsp-responder-13-sig.der"]) {
    const text = readFileSync(join(VECTORS, "certs", f));
    const der = f.endsWith(".der") ? text : Buffer.from(text.toString("latin1").replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    // the modulus and the signature change nothing a reader interprets: skip the 256-octet runs
    const key = der.indexOf(Buffer.from("0282010100", "hex"));
    const spans = [
      [0, key],
      [key + 5 + 256, der.length - 270],
    ] as const;
    for (let k = 0; k < 120; k++) {
      const [from, to] = spans[k % 2]!;
      const at = from + Math.floor(next() * (to - from));
      const v = Buffer.from(der);
      const kind = next();
      // a random octet, a nearby value (a length or tag off by one), or a bit flipped
      v[at] = kind < 0.4 ? Math.floor(next() * 256) : kind < 0.7 ? (v[at]! + (next() < 0.5 ? 1 : 255)) & 0xff : v[at]! ^ (1 << Math.floor(next() * 8));
      out.push({ name: `${f}.${String(k).padStart(3, "0")}-at-${at}.der`, der: v });
    }
  }
  return out;
}

/** `path` relative to `cwd` (ROOT unless told), so that a message naming the file reads the same anywhere. */
async function inspect(path: string, json: boolean, cwd = ROOT): Promise<string> {
  const r = await runInProcess([...(json ? ["--json"] : []), "inspect", relative(cwd, path)], { env: {}, cwd });
  // an error is output too (a certificate the reader refuses must be refused with the same words)
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

describe("jpki inspect CERT prints what it printed before the switch to our own DER reader", () => {
  it("in full, text and --json, for every kind of certificate we issue, J-LIS's, and PKITS ones with unusual extensions", async () => {
    if (WRITE) mkdirSync(GOLDEN, { recursive: true });
    const cases = inFull();
    expect(cases.length).toBeGreaterThan(25);
    for (const c of cases) {
      for (const json of [false, true]) {
        const out = await inspect(c.path, json);
        const file = join(GOLDEN, `${c.name}.${json ? "json" : "txt"}`);
        if (WRITE) writeFileSync(file, out);
        expect(existsSync(file), file).toBe(true);
        expect(out, file).toBe(readFileSync(file, "utf8"));
      }
    }
  });

  it("as a SHA-256 of text and --json for every PKITS certificate", async () => {
    const file = join(VECTORS, "pkits-sha256.json");
    const got: Record<string, { text: string; json: string }> = {};
    for (const rel of corpus()) {
      const path = join(ROOT, "test", "vectors", rel);
      got[rel] = { text: sha256(await inspect(path, false)), json: sha256(await inspect(path, true)) };
    }
    if (WRITE) writeFileSync(file, JSON.stringify(got, null, 1) + "\n");
    const want = JSON.parse(readFileSync(file, "utf8")) as typeof got;
    expect(Object.keys(got).length).toBe(390);
    for (const rel of Object.keys(want)) expect(got[rel], rel).toEqual(want[rel]);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  });

  it("as a SHA-256 of text and --json for 600 variants of ours with one octet changed, errors included", async () => {
    const file = join(VECTORS, "variants-sha256.json");
    const dir = mkdtempSync(join(tmpdir(), "jpki-inspect-variants-"));
    const got: Record<string, { text: string; json: string }> = {};
    for (const v of variants()) {
      const path = join(dir, v.name);
      writeFileSync(path, v.der);
      got[v.name] = { text: sha256(await inspect(path, false, dir)), json: sha256(await inspect(path, true, dir)) };
    }
    if (WRITE) writeFileSync(file, JSON.stringify(got, null, 1) + "\n");
    const want = JSON.parse(readFileSync(file, "utf8")) as typeof got;
    expect(Object.keys(got).length).toBe(600);
    // every variant whose output changed, at once (the files stay in `dir` to look at)
    expect(Object.keys(want).filter((name) => JSON.stringify(got[name]) !== JSON.stringify(want[name])), dir).toEqual([]);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  });
});
