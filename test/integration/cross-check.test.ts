/**
 * Issue 10 point 8, cross-checks (slow interop): for a matrix of our certificates, our answer equals OpenSSL's
 * and GnuTLS's. Each row is one small data entry — the certificate, the trust anchors, the untrusted
 * intermediates, the CRLs, the expected verdict — over real files: the workspace, certificates and CRLs come
 * from the CLI (`jpki issue`, `jpki revoke`, `jpki crl generate [--partitions] [--delta]`); the library with an
 * injected clock only where the CLI has no time to offer (the CA created four years ago, so that a certificate
 * issued then has expired; one issued a week ahead, not yet valid). Four answers per row, mapped to one verdict
 * (valid, revoked, expired, not-yet-valid, untrusted, revocation-unknown):
 * - ours: `validateJpki` (the library) and `jpki verify --json` (the CLI), each at the wall clock;
 * - OpenSSL: `openssl verify -crl_check` (`-crl_check_all` when the path has intermediates, as our engine checks
 *   every certificate below the anchor; `-use_deltas -extended_crl` when a delta CRL is given, see
 *   delta.test.ts for why both): exit status and the first error number;
 * - GnuTLS: `certtool --verify` with the end entity and intermediates in one file, the anchors and the CRLs
 *   (PEM) in one file each: its status line. certtool 3.7 cannot move its clock (no --attime, and faketime is
 *   not installed), which is why every answer is asked at the wall clock and the dates are real.
 * Where an implementation is known to differ the row says so with the reason, and the test asserts the
 * difference: a GnuTLS (or OpenSSL) that changes shows up here. Rows through the prefectures' Bridge CA
 * (`jpki ca bridge`) and through an ad-hoc bridge made by openssl (cross-certificate with pathLenConstraint 0,
 * its own ARL, which openssl can also revoke) show the paths through a cross-certificate agree too.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { initCas } from "../../src/ca/manage.js";
import { IssuanceService } from "../../src/ca/issuance.js";
import { prefectureList } from "../../src/ca/prefectures.js";
import { FixedClock } from "../../src/pki/clock.js";
import { pemOrDer, toPem } from "../../src/pki/pem.js";
import { describeCrl } from "../../src/profile/describe.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { validateJpki } from "../../src/validation/jpki.js";
import type { PathStatus } from "../../src/validation/types.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { cardKey, cli, sh, tempDir, writeJsonl } from "./helpers.js";

/** The engine's statuses but profile-violation (every row asks for the purpose its certificate has). */
type Verdict = Exclude<PathStatus, "profile-violation">;
type Implementation = "validateJpki" | "jpki verify" | "openssl" | "gnutls";
const IMPLEMENTATIONS: readonly Implementation[] = ["validateJpki", "jpki verify", "openssl", "gnutls"];

/** One row of the matrix: names of files in `files` (certificates PEM, CRLs DER or PEM). */
interface Row {
  readonly name: string;
  readonly cert: string;
  readonly anchors: readonly string[];
  readonly untrusted?: readonly string[];
  readonly crls: readonly string[];
  /** what every implementation answers … */
  readonly expected: Verdict;
  /** … except these, each with why (a known limitation, asserted so that a change shows up) */
  readonly differs?: Partial<Record<Implementation, { readonly verdict: Verdict; readonly why: string }>>;
}

const GNUTLS_NO_IDP = "GnuTLS 3.7 does not process issuingDistributionPoint (RFC 5280 §6.3.3 (b)(2)): every CRL of the issuer counts for every certificate, and a certificate no CRL lists is good (it has no 'revocation unknown'); see partitions.test.ts";

const GNUTLS_NO_DELTA = "GnuTLS 3.7 has no delta CRL support (RFC 5280 §5.2.4, §6.3.3 (a)(1)): it reads a delta CRL as a complete CRL of its issuer, so a delta alone, which cannot establish a status without its base, is taken as the whole list";

const ROWS: readonly Row[] = [
  { name: "valid", cert: "good", anchors: ["13-sig"], crls: ["13-sig full"], expected: "valid" },
  { name: "revoked (full CRL)", cert: "revoked", anchors: ["13-sig"], crls: ["13-sig full"], expected: "revoked" },
  { name: "revoked (its own partition CRL)", cert: "revoked", anchors: ["13-sig"], crls: ["13-sig Chiyoda"], expected: "revoked" },
  { name: "expired", cert: "expired", anchors: ["13-sig"], crls: ["13-sig full"], expected: "expired" },
  { name: "not yet valid", cert: "future", anchors: ["13-sig"], crls: ["13-sig full"], expected: "not-yet-valid" },
  { name: "wrong CA (another prefecture's CA the only anchor)", cert: "good", anchors: ["27-sig"], crls: ["27-sig full"], expected: "untrusted" },
  {
    name: "wrong partition (valid certificate, another municipality's partition CRL)",
    cert: "good",
    anchors: ["13-sig"],
    crls: ["13-sig Chuo"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "valid", why: GNUTLS_NO_IDP } },
  },
  {
    name: "wrong partition (revoked certificate, another municipality's partition CRL)",
    cert: "revoked",
    anchors: ["13-sig"],
    crls: ["13-sig Chuo"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "valid", why: GNUTLS_NO_IDP } },
  },
  { name: "revoked after the base, the base CRL alone", cert: "inDelta", anchors: ["13-sig"], crls: ["13-sig full"], expected: "valid" },
  // GnuTLS agrees here without processing deltas: it takes the delta CRL for one more complete CRL of the issuer
  // (the critical deltaCRLIndicator is not looked at) and the serial is on it. The two rows after show that.
  { name: "delta-only revocation (base and delta CRL)", cert: "inDelta", anchors: ["13-sig"], crls: ["13-sig full", "13-sig delta"], expected: "revoked" },
  {
    name: "delta CRL without its base, the certificate on it",
    cert: "inDelta",
    anchors: ["13-sig"],
    crls: ["13-sig delta"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "revoked", why: GNUTLS_NO_DELTA } },
  },
  {
    name: "delta CRL without its base, a valid certificate",
    cert: "good",
    anchors: ["13-sig"],
    crls: ["13-sig delta"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "valid", why: GNUTLS_NO_DELTA } },
  },
  { name: "via an ad-hoc bridge (cross-certificate, pathLenConstraint 0)", cert: "good", anchors: ["bridge"], untrusted: ["bridge→13-sig"], crls: ["13-sig full", "bridge ARL"], expected: "valid" },
  { name: "via an ad-hoc bridge, revoked", cert: "revoked", anchors: ["bridge"], untrusted: ["bridge→13-sig"], crls: ["13-sig full", "bridge ARL"], expected: "revoked" },
  // the cross-certificate is on the path and checked too: without the bridge's ARL its status is unknown, and
  // once the bridge revokes it every certificate below is rejected
  {
    name: "via an ad-hoc bridge, without the bridge's ARL",
    cert: "good",
    anchors: ["bridge"],
    untrusted: ["bridge→13-sig"],
    crls: ["13-sig full"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "valid", why: "GnuTLS checks the CRLs it is given and has no 'revocation unknown': a certificate no CRL covers is good" } },
  },
  { name: "via an ad-hoc bridge, the cross-certificate revoked", cert: "good", anchors: ["bridge"], untrusted: ["bridge→13-sig"], crls: ["13-sig full", "bridge ARL, cross revoked"], expected: "revoked" },
  // The prefectures' Bridge CA (`jpki ca bridge`, ca/bridge.ts): a verifier trusting it alone validates Tokyo's
  // certificates through the cross-certificate; one trusting Osaka's CA alone does not, even given the
  // cross-certificates Osaka -> Bridge -> Tokyo (each has pathLenConstraint 0).
  { name: "via the Bridge CA", cert: "good", anchors: ["Bridge"], untrusted: ["Bridge→13-sig"], crls: ["13-sig full", "Bridge ARL"], expected: "valid" },
  { name: "via the Bridge CA, revoked", cert: "revoked", anchors: ["Bridge"], untrusted: ["Bridge→13-sig"], crls: ["13-sig full", "Bridge ARL"], expected: "revoked" },
  {
    name: "via the Bridge CA, without the Bridge's ARL",
    cert: "good",
    anchors: ["Bridge"],
    untrusted: ["Bridge→13-sig"],
    crls: ["13-sig full"],
    expected: "revocation-unknown",
    differs: { gnutls: { verdict: "valid", why: "GnuTLS checks the CRLs it is given and has no 'revocation unknown': a certificate no CRL covers is good" } },
  },
  { name: "Osaka's CA trusted alone, Tokyo's certificate, every cross-certificate at hand", cert: "good", anchors: ["27-sig"], untrusted: ["Bridge→13-sig", "27-sig→Bridge"], crls: ["13-sig full", "Bridge ARL", "27-sig full"], expected: "untrusted" },
];

let dir: string;
let ws: string;
const w = () => ["--workspace", ws];
/** every file a row names: certificates (PEM) and CRLs (DER, or PEM for the ad-hoc bridge's) */
const files: Record<string, string> = {};
const file = (name: string): string => files[name] ?? expect.fail(`no file named ${JSON.stringify(name)} in the matrix`);

const CHIYODA = "131016";
const CHUO = "131024";
const DAY = 86_400_000;

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.out}`);
  return r.out;
}

/** DER or PEM bytes of a file: certificates may hold several PEM blocks (only the first is used by our callers). */
const der = (path: string, label: "CERTIFICATE" | "X509 CRL") => pemOrDer(readFileSync(path), [label], label === "CERTIFICATE" ? "certificate" : "CRL");

/** Concatenated PEM of several files (certtool reads one file of each kind, and every block in it: the delta rows show it reads the second CRL). */
function pemBundle(names: readonly string[], label: "CERTIFICATE" | "X509 CRL", out: string): string {
  writeFileSync(out, names.map((n) => toPem(der(file(n), label), label)).join(""));
  return out;
}

// ---- the three implementations, each mapped to a Verdict ----

/** An implementation's answer: the verdict, and what it said (shown when a row fails). */
interface Answer {
  readonly verdict: PathStatus | "unmapped";
  readonly said: string;
}

function ours(row: Row): Answer {
  const r = validateJpki({
    certificate: der(file(row.cert), "CERTIFICATE"),
    purpose: "signature",
    trustAnchors: row.anchors.map((a) => der(file(a), "CERTIFICATE")),
    intermediates: (row.untrusted ?? []).map((i) => der(file(i), "CERTIFICATE")),
    crls: row.crls.map((c) => der(file(c), "X509 CRL")),
    at: new Date(),
  });
  return { verdict: r.status, said: r.status === "valid" ? "valid" : `${r.status} (${r.reason} at index ${r.index})` };
}

async function oursCli(row: Row): Promise<Answer> {
  const args = ["verify", file(row.cert), ...row.anchors.flatMap((a) => ["--trust", file(a)]), ...(row.untrusted ?? []).flatMap((i) => ["--chain", file(i)]), ...row.crls.flatMap((c) => ["--crl", file(c)]), "--json"];
  const r = await cli(args, { cwd: dir });
  expect([0, 1], r.stderr).toContain(r.code);
  const status = r.json().status as Verdict;
  return { verdict: status, said: `exit ${r.code}, status ${status}` };
}

/** OpenSSL's verify error numbers (include/openssl/x509_vfy.h) and the verdict each means. */
const OPENSSL_ERRORS: Readonly<Record<number, Verdict>> = {
  2: "untrusted", // unable to get issuer certificate
  3: "revocation-unknown", // unable to get certificate CRL
  9: "not-yet-valid", // certificate is not yet valid
  10: "expired", // certificate has expired
  20: "untrusted", // unable to get local issuer certificate
  21: "untrusted", // unable to verify the first certificate
  23: "revoked", // certificate revoked
  25: "untrusted", // path length constraint exceeded: the anchor does not vouch that far
  44: "revocation-unknown", // different CRL scope: no CRL's IDP covers the certificate's distribution point
};

function openssl(row: Row): Answer {
  const deltas = row.crls.some((c) => describeCrl(der(file(c), "X509 CRL"), { maxEntries: 0 }).deltaCrlIndicator !== undefined);
  const args = [
    "verify",
    row.untrusted?.length ? "-crl_check_all" : "-crl_check",
    ...(deltas ? ["-use_deltas", "-extended_crl"] : []),
    "-CAfile", pemBundle(row.anchors, "CERTIFICATE", join(dir, "openssl-anchors.pem")),
    ...(row.untrusted?.length ? ["-untrusted", pemBundle(row.untrusted, "CERTIFICATE", join(dir, "openssl-untrusted.pem"))] : []),
    ...row.crls.flatMap((c) => ["-CRLfile", file(c)]),
    file(row.cert),
  ];
  const r = sh("openssl", args);
  const said = `exit ${r.status}: ${r.out.trim()}`;
  if (r.status === 0 && /: OK$/m.test(r.out)) return { verdict: "valid", said };
  const first = /error (\d+) at \d+ depth lookup/.exec(r.out); // the first error: openssl verify goes on after some
  return { verdict: (first && OPENSSL_ERRORS[Number(first[1])]) || "unmapped", said };
}

function gnutls(row: Row): Answer {
  const r = sh("certtool", [
    "--verify",
    "--load-ca-certificate", pemBundle(row.anchors, "CERTIFICATE", join(dir, "gnutls-anchors.pem")),
    "--load-crl", pemBundle(row.crls, "X509 CRL", join(dir, "gnutls-crls.pem")),
    "--infile", pemBundle([row.cert, ...(row.untrusted ?? [])], "CERTIFICATE", join(dir, "gnutls-chain.pem")),
  ]);
  const status = /Chain verification output: (.*)$/m.exec(r.out)?.[1] ?? "";
  const said = `exit ${r.status}: ${status || r.out.trim()}`;
  const verdict: Answer["verdict"] =
    r.status === 0 && status.startsWith("Verified") ? "valid"
    : /revoked/i.test(status) ? "revoked"
    : /expired/i.test(status) ? "expired"
    : /not yet (valid|activated)/i.test(status) ? "not-yet-valid"
    : /issuer (is )?unknown|signer not found|constraint/i.test(status) ? "untrusted"
    : "unmapped";
  return { verdict, said };
}

// ---- the files: one workspace for every row ----

beforeAll(async () => {
  dir = tempDir("jpki-xcheck-");
  ws = join(dir, "ws");
  // Tokyo's and Osaka's signature CAs, created four years ago (an injected clock: the CLI has none), with
  // five-minute delta CRLs on before any certificate is issued, as in delta.test.ts
  const fourYearsAgo = new FixedClock(Date.now() - 4 * 365 * DAY);
  const created = await Workspace.createAsync(ws, { clock: fourYearsAgo, config: { deltaCrlIntervalMinutes: 5, validityRule: "3y" } });
  try {
    await initCas(created, { prefectures: prefectureList("13,27"), purposes: ["signature"], passphrase: "correct horse" });
  } finally {
    await created.close();
  }
  for (const id of ["13-sig", "27-sig"]) files[id] = join(ws, "ca", `${id}.pem`);

  const person = (code: string, municipalityCode: string, name: string) => ({
    residentCode: makeResidentCode(code), municipalityCode, name, birthDate: "1980-12-31", gender: "male", status: "active",
    address: municipalityCode === CHIYODA ? "東京都千代田区千代田１番１号" : "東京都中央区銀座１番１号",
  });
  const people = {
    good: person("0000000960", CHIYODA, "山田　太郎"),
    revoked: person("0000000961", CHIYODA, "山田　花子"),
    inDelta: person("0000000962", CHIYODA, "山田　一郎"),
    chuo: person("0000000963", CHUO, "佐藤　一郎"),
    expired: person("0000000964", CHIYODA, "山田　次郎"),
    future: person("0000000965", CHIYODA, "山田　三郎"),
  };
  writeJsonl(join(dir, "residents.jsonl"), Object.values(people));
  const imp = await cli([...w(), "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);

  const serials: Record<string, string> = {};
  for (const name of ["good", "revoked", "inDelta", "chuo"] as const) {
    const k = cardKey(dir, name);
    files[name] = join(dir, `${name}.pem`);
    const r = await cli([...w(), "issue", "--resident", people[name].residentCode, "--public-key", k.pub, "-o", files[name]!, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    serials[name] = r.json().serial;
  }
  // issued four years ago (three-year validity: expired a year ago) and a week ahead (not yet valid)
  for (const [name, at] of [["expired", Date.now() - 4 * 365 * DAY + DAY], ["future", Date.now() + 7 * DAY]] as const) {
    const k = cardKey(dir, name);
    const then = await Workspace.openAsync(ws, { clock: new FixedClock(at) });
    try {
      const c = await new IssuanceService({ store: then.store, config: then.config, clock: then.clock, passphrase: "correct horse" }).issue({ residentCode: people[name].residentCode, type: "signature", publicKey: readFileSync(k.pub) });
      files[name] = join(dir, `${name}.pem`);
      writeFileSync(files[name]!, toPem(c.der, "CERTIFICATE"));
    } finally {
      await then.close();
    }
  }

  const revoke = async (name: string) => {
    const r = await cli([...w(), "revoke", "--serial", serials[name]!, "--reason", "loss"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
  };
  const generate = async (ca: string, extra: string[]) => {
    const g = await cli([...w(), "crl", "generate", "--ca", ca, ...extra, "--json"], { cwd: dir });
    expect(g.code, g.stderr).toBe(0);
    return g.json().crls as Array<{ scope: string; municipality?: string; derPath: string }>;
  };
  await revoke("revoked");
  // the base (full CRL), its partitions, the ARL and a delta; then one more revocation, on the next delta only
  const base = await generate("13-sig", ["--partitions"]);
  await revoke("inDelta");
  const delta = await generate("13-sig", ["--delta"]);
  const osaka = await generate("27-sig", []);
  files["13-sig full"] = base.find((c) => c.scope === "full")!.derPath;
  files["13-sig Chiyoda"] = base.find((c) => c.scope === "partition" && c.municipality === CHIYODA)!.derPath;
  files["13-sig Chuo"] = base.find((c) => c.scope === "partition" && c.municipality === CHUO)!.derPath;
  files["13-sig delta"] = delta.find((c) => c.scope === "delta")!.derPath;
  files["27-sig full"] = osaka.find((c) => c.scope === "full")!.derPath;

  // The prefectures' Bridge CA, made now (the CAs were made four years ago): its certificate, two of its
  // cross-certificates, its ARL.
  const bridged = await cli([...w(), "ca", "bridge", "--json"], { cwd: dir });
  expect(bridged.code, bridged.stderr).toBe(0);
  files.Bridge = join(ws, "bridge", "bridge.pem");
  files["Bridge→13-sig"] = join(ws, "bridge", "cross", "13-sig.by-bridge.pem");
  files["27-sig→Bridge"] = join(ws, "bridge", "cross", "bridge.by-27-sig.pem");
  files["Bridge ARL"] = join(ws, "arl", "bridge.crl");

  // An ad-hoc bridge: a self-signed CA, its cross-certificate for Tokyo's CA (Tokyo's name and key, exact
  // subject bytes through -x509toreq, its subjectKeyIdentifier kept so the end entity's AKI matches), its ARL.
  const b = join(dir, "bridge");
  mkdirSync(b);
  run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", join(b, "bridge.key")]);
  files.bridge = join(b, "bridge.pem");
  run("openssl", ["req", "-x509", "-new", "-key", join(b, "bridge.key"), "-sha256", "-days", "3650", "-subj", "/C=JP/O=JPKI/OU=Cross-check ad-hoc bridge/CN=not the Bridge CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", files.bridge]);
  const tokyo = files["13-sig"]!;
  const ski = /X509v3 Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(run("openssl", ["x509", "-in", tokyo, "-noout", "-text"]))![1]!;
  run("openssl", ["x509", "-in", tokyo, "-pubkey", "-noout", "-out", join(b, "tokyo.pub.pem")]);
  run("openssl", ["x509", "-x509toreq", "-in", tokyo, "-signkey", join(b, "bridge.key"), "-out", join(b, "cross.csr")]);
  writeFileSync(join(b, "cross.ext"), ["basicConstraints=critical,CA:TRUE,pathlen:0", "keyUsage=critical,keyCertSign,cRLSign", `subjectKeyIdentifier=${ski}`, "authorityKeyIdentifier=keyid"].join("\n") + "\n");
  files["bridge→13-sig"] = join(b, "cross.pem");
  run("openssl", ["x509", "-req", "-in", join(b, "cross.csr"), "-CA", files.bridge, "-CAkey", join(b, "bridge.key"), "-force_pubkey", join(b, "tokyo.pub.pem"), "-set_serial", "0x0c1055", "-days", "1825", "-sha256", "-extfile", join(b, "cross.ext"), "-out", files["bridge→13-sig"]]);
  writeFileSync(join(b, "index.txt"), "");
  writeFileSync(join(b, "crlnumber"), "01\n");
  writeFileSync(join(b, "ca.cnf"), ["[ca]", "default_ca = bridge", "[bridge]", `database = ${join(b, "index.txt")}`, `crlnumber = ${join(b, "crlnumber")}`, "default_md = sha256", "default_crl_days = 2", "crl_extensions = crl_ext", "[crl_ext]", "authorityKeyIdentifier = keyid"].join("\n") + "\n");
  files["bridge ARL"] = join(b, "arl.pem");
  const bridgeCa = ["-config", join(b, "ca.cnf"), "-keyfile", join(b, "bridge.key"), "-cert", files.bridge];
  run("openssl", ["ca", ...bridgeCa, "-gencrl", "-out", files["bridge ARL"]]);
  files["bridge ARL, cross revoked"] = join(b, "arl-cross-revoked.pem");
  run("openssl", ["ca", ...bridgeCa, "-revoke", files["bridge→13-sig"], "-crl_reason", "cACompromise"]);
  run("openssl", ["ca", ...bridgeCa, "-gencrl", "-out", files["bridge ARL, cross revoked"]]);
}, 120_000);

describe("cross-checks: our verdict equals OpenSSL's and GnuTLS's (slow interop)", () => {
  it.each(ROWS.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    const expected = Object.fromEntries(IMPLEMENTATIONS.map((i) => [i, row.differs?.[i]?.verdict ?? row.expected]));
    const answers: Record<Implementation, Answer> = { validateJpki: ours(row), "jpki verify": await oursCli(row), openssl: openssl(row), gnutls: gnutls(row) };
    const verdicts = Object.fromEntries(IMPLEMENTATIONS.map((i) => [i, answers[i].verdict]));
    const said = IMPLEMENTATIONS.map((i) => `${i}: ${answers[i].said}${row.differs?.[i] ? ` (expected to differ: ${row.differs[i]!.why})` : ""}`).join("\n");
    expect(verdicts, said).toEqual(expected);
    // a known difference is one: an entry that agrees with everyone else belongs out of `differs`
    for (const [i, d] of Object.entries(row.differs ?? {})) expect(d.verdict, `${row.name}: ${i}`).not.toBe(row.expected);
  });
});
