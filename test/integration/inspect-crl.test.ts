/**
 * `jpki inspect` on CRLs of any size (issue 8 point 3): text, --json and --summary over a 200,000-entry CRL
 * built with our builder, the same text as before for small CRLs, malformed input as ERR_DER_MALFORMED, and
 * output that waits for a slow reader. Time and memory at 1,000,000 entries are measured in the bench.
 */
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { formatCrl } from "../../src/cli/inspect-format.js";
import type { Io } from "../../src/cli/output.js";
import { run } from "../../src/cli/program.js";
import { buildCrl, crlDer, type CrlEntryInput } from "../../src/crl/builder.js";
import { reasonName } from "../../src/crl/reason.js";
import { children, seq } from "../../src/pki/der.js";
import { toPem } from "../../src/pki/pem.js";
import { SoftwareSigner } from "../../src/pki/signer.js";
import { describeCrl } from "../../src/profile/describe.js";
import { encodeName } from "../../src/profile/names.js";
import { cli, tempDir } from "./helpers.js";

const N = 200_000;
const REASONS = [0, 1, 3, 4, 5];
let dir: string;
let built: CrlEntryInput[];
let big: string;
let small: Buffer;

function entries(n: number): CrlEntryInput[] {
  return Array.from({ length: n }, (_, i) => ({
    serial: (0x5b000000000000000000000000000000n + BigInt(i) * 0x1000193n).toString(16),
    revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)),
    reason: REASONS[i % REASONS.length]!,
  }));
}

async function crlOf(list: readonly CrlEntryInput[], signer: SoftwareSigner): Promise<Buffer> {
  const b = await buildCrl({
    issuerName: encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]),
    authorityKeyId: Buffer.alloc(20, 9),
    number: 77n,
    thisUpdate: new Date("2026-01-03T00:00:00Z"),
    nextUpdate: new Date("2026-01-05T00:00:00Z"),
    entries: [list],
    signer,
  });
  return crlDer(b);
}

beforeAll(async () => {
  dir = tempDir("jpki-inspect-crl-");
  const signer = new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
  built = entries(N);
  big = join(dir, "big.crl");
  writeFileSync(big, await crlOf(built, signer));
  small = await crlOf(entries(3000), signer);
  writeFileSync(join(dir, "small.crl"), small);
  writeFileSync(join(dir, "small.pem"), toPem(small, "X509 CRL"));
});

const entryLines = (text: string) => text.split("\n").filter((l) => /^ {8}[0-9a-f]+ {2}\d{4}-/.test(l));

describe("jpki inspect CRL", () => {
  it("text: the header, the count, the first 20 entries, how many more, the fingerprint and the profile", async () => {
    const r = await cli(["inspect", big], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`    Revoked Certificates: ${N}\n`);
    expect(r.stdout).toContain("CRL Number: 77");
    const lines = entryLines(r.stdout);
    expect(lines).toHaveLength(20);
    expect(lines[1]).toBe(`        ${built[1]!.serial}  2026-01-02T00:00:01.000Z  keyCompromise`);
    expect(r.stdout).toContain(`        … ${N - 20} more\n`);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("Profile: 0 deviations (kind: crl)");
  });

  it("text of a small CRL is what formatCrl prints, from DER and from PEM, for any --max-entries", async () => {
    for (const [args, max] of [[[], 20], [["--max-entries", "0"]], [["--max-entries", "2999"], 2999], [["--max-entries", "all"], Infinity]] as Array<[string[], number?]>) {
      const want = formatCrl(describeCrl(small, { maxEntries: max ?? 0 }));
      for (const f of ["small.crl", "small.pem"]) {
        const r = await cli(["inspect", f, ...args], { cwd: dir });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(want);
      }
    }
  });

  it("--json: one document listing every entry (streamed), the count and the profile", async () => {
    const r = await cli(["inspect", big, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const d = r.json();
    expect(d.type).toBe("crl");
    expect(d.crlNumber).toBe("77");
    expect(d.entryCount).toBe(N);
    expect(d.entriesTruncated).toBe(false);
    expect(d.entries).toHaveLength(N);
    const serials = new Set(d.entries.map((e: { serialNumber: string }) => e.serialNumber));
    expect(serials.size).toBe(N);
    expect(built.every((e) => serials.has(e.serial))).toBe(true);
    expect(d.entries[3]).toEqual({ serialNumber: built[3]!.serial, revocationDate: "2026-01-02T00:00:03.000Z", reason: "superseded" });
    expect(d.profile).toEqual({ kind: "crl", violations: [] });
    // the same document as the library's description, up to key order
    const few = await cli(["inspect", "small.crl", "--json", "--max-entries", "5"], { cwd: dir });
    expect(few.json()).toEqual(JSON.parse(JSON.stringify(describeCrl(small, { maxEntries: 5 }))));
  });

  it("--summary: the header, counts per reason, the first and last entries", async () => {
    const r = await cli(["inspect", big, "--summary"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(entryLines(r.stdout)).toEqual([]);
    for (const name of ["keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "(no reasonCode)"]) {
      expect(r.stdout).toContain(`            ${name}: ${N / 5}\n`);
    }
    expect(r.stdout).toContain(`        first: ${built[0]!.serial}  2026-01-02T00:00:00.000Z\n`);
    expect(r.stdout).toContain(`        last:  ${built[N - 1]!.serial}  ${built[N - 1]!.revokedAt.toISOString()}  cessationOfOperation\n`);
    const j = await cli(["inspect", big, "--summary", "--json"], { cwd: dir });
    const d = j.json();
    expect(d.entryCount).toBe(N);
    expect(d.entries).toBeUndefined();
    expect(d.reasonCounts).toEqual(Object.fromEntries(REASONS.map((c) => [c === 0 ? "none" : reasonName(c)!, N / 5])));
    expect(d.firstEntry.serialNumber).toBe(built[0]!.serial);
    expect(d.lastEntry.serialNumber).toBe(built[N - 1]!.serial);
    expect((await cli(["inspect", big, "--summary", "--max-entries", "3"], { cwd: dir })).stderr).toContain("ERR_USAGE");
  });

  it("a truncated or tampered CRL is ERR_DER_MALFORMED, with no stack trace", async () => {
    const der = small;
    const tampered = Buffer.from(der);
    const at = der.indexOf(Buffer.from(entries(3000)[2000]!.serial, "hex")) - 4;
    tampered[at] = 0x31;
    writeFileSync(join(dir, "truncated.crl"), der.subarray(0, der.length - 100));
    writeFileSync(join(dir, "tampered.crl"), tampered);
    for (const [f, message] of [["truncated.crl", "does not match the input"], ["tampered.crl", "entry #2001"]]) {
      for (const json of [[], ["--json"]]) {
        const r = await cli(["inspect", f!, ...json], { cwd: dir });
        expect(r.code).toBe(10);
        expect(r.stderr).toContain("ERR_DER_MALFORMED");
        expect(r.stderr).toContain(message);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    }
    expect((await cli(["inspect", big, "--max-entries", "-1"], { cwd: dir })).stderr).toContain("ERR_USAGE");
    // Number() read "" and " " as 0, "1e3" as 1000 and "0x10" as 16: a slip listed another number of entries
    for (const n of ["", " ", "1e3", "0x10", "Infinity", "5.0"]) {
      const r = await cli(["inspect", "small.crl", "--max-entries", n], { cwd: dir });
      expect(r.code, `--max-entries ${JSON.stringify(n)}: ${r.stdout.slice(0, 200)}`).toBe(2);
      expect(r.stderr).toContain("ERR_USAGE");
    }
  });

  it("an empty revokedCertificates (present, no entry: RFC 5280 §5.1.2.6 says absent) is a profile error, in text and --json; the CRL still reads", async () => {
    const signer = new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    const absent = await crlOf([], signer);
    const [tbs, alg, sig] = children(absent);
    const fields = children(tbs!);
    const empty = seq(seq(...fields.slice(0, 5), seq(), ...fields.slice(5)), alg!, sig!); // after version, signature, issuer, thisUpdate, nextUpdate
    writeFileSync(join(dir, "empty-revoked.crl"), empty);
    const json = await cli(["inspect", "empty-revoked.crl", "--json"], { cwd: dir });
    expect(json.code, json.stderr).toBe(0);
    expect(json.json()).toMatchObject({ entryCount: 0, profile: { violations: [{ rule: "crl.revokedCertificates.empty", severity: "error" }] } });
    const text = await cli(["inspect", "empty-revoked.crl"], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/\[error\] crl\.revokedCertificates\.empty/);
    writeFileSync(join(dir, "no-revoked.crl"), absent);
    expect((await cli(["inspect", "no-revoked.crl", "--json"], { cwd: dir })).json().profile.violations).toEqual([]);
  });

  it("waits for a slow reader: never more than a chunk or two buffered in the stream", async () => {
    let text = "";
    let maxBuffered = 0;
    let refusals = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      decodeStrings: false,
      write(chunk: string, _enc, cb) {
        text += chunk;
        setImmediate(cb);
      },
    });
    const stdout = {
      write(s: string): boolean {
        const ok = slow.write(s);
        if (!ok) refusals++;
        maxBuffered = Math.max(maxBuffered, slow.writableLength);
        return ok;
      },
      once: slow.once.bind(slow),
      removeListener: slow.removeListener.bind(slow),
    };
    const io: Io = { stdout, stderr: { write: () => true }, env: {}, cwd: dir };
    expect(await run(["inspect", big, "--json"], io)).toBe(0);
    expect(JSON.parse(text).entries).toHaveLength(N);
    expect(refusals).toBeGreaterThan(10);
    expect(maxBuffered).toBeLessThan(256 * 1024);
  });
});
