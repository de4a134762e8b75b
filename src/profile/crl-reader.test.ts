import { spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { buildCrl, crlDer, type CrlEntryInput } from "../crl/builder.js";
import { reasonName } from "../crl/reason.js";
import { isJpkiError } from "../errors.js";
import { children, extension, integer, seq } from "../pki/der.js";
import { SoftwareSigner } from "../pki/signer.js";
import { encodeName } from "./names.js";
import { checkCrl } from "./check.js";
import { crlBytesSource, crlFileSource, crlFrameIdentity, CrlReader } from "./crl-reader.js";
import { installedCrlNumber } from "../crl/publisher.js";
import { EXT_OID } from "./oids.js";
import { describeCrl, openCrl } from "./describe.js";

const signer = new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
const issuerName = encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]);
const REASONS = [0, 1, 3, 4, 5];

/** `n` entries with ascending 16-octet serials (as the store lists them), or in a scrambled order. */
function entries(n: number, order: "ascending" | "scrambled" = "ascending"): CrlEntryInput[] {
  return Array.from({ length: n }, (_, i) => {
    const k = order === "ascending" ? i : (i * 7919) % n;
    return {
      serial: (0x4a000000000000000000000000000000n + BigInt(k) * 0x1000193n).toString(16),
      revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, k % 60)),
      reason: REASONS[k % REASONS.length]!,
    };
  });
}

async function crlOf(list: readonly CrlEntryInput[]): Promise<Buffer> {
  const built = await buildCrl({
    issuerName,
    authorityKeyId: Buffer.alloc(20, 7),
    number: 12n,
    thisUpdate: new Date("2026-01-03T00:00:00Z"),
    nextUpdate: new Date("2026-01-05T00:00:00Z"),
    entries: [list.slice(0, 1000), list.slice(1000)],
    signer,
  });
  return crlDer(built);
}

function malformedMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isJpkiError(e, "ERR_DER_MALFORMED"), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("expected ERR_DER_MALFORMED");
}

const readAll = (der: Buffer) => {
  const crl = openCrl(crlBytesSource(der));
  const list = [...crl.entries()];
  return { list, totals: crl.totals() };
};

describe("openCrl: a CRL read in one pass", () => {
  const N = 200_000;
  let built: CrlEntryInput[];
  let der: Buffer;
  let path: string;

  beforeAll(async () => {
    built = entries(N);
    der = await crlOf(built);
    path = join(mkdtempSync(join(tmpdir(), "jpki-crl-reader-")), "big.crl");
    writeFileSync(path, der);
  });

  it("reads 200,000 entries from a file in blocks: every serial, reason and date, the count, the fingerprint", () => {
    const crl = openCrl(crlFileSource(path, "test CRL"));
    try {
      expect(crl.header.crlNumber).toBe("12");
      expect(crl.header.issuer.text).toBe("C=JP, O=JPKI, OU=JPKI for digital signature, OU=Tokyo-to");
      expect(crl.countEntries()).toBe(N);
      let i = 0;
      for (const e of crl.entries()) {
        const want = built[i++]!;
        expect(e.serialNumber).toBe(want.serial);
        if (i % 997 === 0) {
          expect(e.revocationDate).toBe(want.revokedAt.toISOString());
          expect(e.reason).toBe(want.reason === 0 ? undefined : reasonName(want.reason));
        }
      }
      expect(i).toBe(N);
      const t = crl.totals();
      expect(t.entryCount).toBe(N);
      expect(t.reasonCounts).toEqual({ none: N / 5, keyCompromise: N / 5, affiliationChanged: N / 5, superseded: N / 5, cessationOfOperation: N / 5 });
      expect(t.fingerprints.sha256).toBe(createHash("sha256").update(der).digest("hex"));
      expect(t.profile).toEqual({ kind: "crl", violations: [] });
    } finally {
      crl.close();
    }
  });

  it("describes a CRL exactly as the whole-CRL checker sees it (profile, entries)", async () => {
    const small = await crlOf(entries(3000, "scrambled"));
    const d = describeCrl(small, { maxEntries: 5 });
    expect(d.entryCount).toBe(3000);
    expect(d.entries).toHaveLength(5);
    expect(d.profile).toEqual(checkCrl(small));
  });

  it("finds duplicates whether the serials ascend (neighbours) or not (the order breaks first)", async () => {
    const list = entries(2000);
    const ascendingDup = [...list.slice(0, 1000), list[999]!, ...list.slice(1000)];
    const scrambledDup = [...entries(2000, "scrambled"), list[3]!];
    for (const l of [ascendingDup, scrambledDup]) {
      const { totals } = readAll(await crlOf(l));
      expect(totals.profile.violations.map((v) => v.rule)).toEqual(["crl.entry.duplicate"]);
      expect(totals.profile.violations[0]!.message).toMatch(/^1 entry: serial number listed more than once \(first: entry #(1001|2001)\)$/);
    }
    expect(readAll(await crlOf(entries(2000, "scrambled"))).totals.profile.violations).toEqual([]);
  });

  it("refuses a truncated CRL before reading any entry", () => {
    for (const cut of [1, 2, 100, 1000, der.length / 2, der.length - 300, der.length - 1]) {
      const crl = () => openCrl(crlBytesSource(der.subarray(0, Math.floor(cut))));
      expect(malformedMessage(crl)).toMatch(/^CRL: /);
    }
  });

  it("names the entry a tampered byte breaks, and its offset", async () => {
    const small = await crlOf(entries(3000));
    const start = small.indexOf(Buffer.from(entries(3000)[1234]!.serial, "hex")) - 4; // the entry's SEQUENCE header
    expect(small[start]).toBe(0x30);
    const cases: Array<[number, number, RegExp]> = [
      [start, 0x31, /entry #1235 .*not a SEQUENCE/],
      [start + 2, 0x03, /entry #1235 .*serial number/],
      [start + 4 + 16 + 2, 0x41, /entry #1235 .*revocationDate has a non-digit/],
      [start + 4 + 16 + 2 + 2, 0x32, /entry #1235 .*not a valid date/], // month 21
      [start + 1, 0x81, /entry #1235 .*long-form length/],
    ];
    for (const [at, byte, message] of cases) {
      const bad = Buffer.from(small);
      bad[at] = byte;
      expect(malformedMessage(() => readAll(bad))).toMatch(message);
    }
  });

  it("refuses trailing bytes and BER lengths in the frame", async () => {
    const small = await crlOf(entries(10));
    expect(malformedMessage(() => openCrl(crlBytesSource(Buffer.concat([small, Buffer.from([0])]))))).toMatch(/does not match the input/);
    const ber = Buffer.from(small);
    ber[1] = 0x80; // indefinite length
    expect(malformedMessage(() => openCrl(crlBytesSource(ber)))).toMatch(/indefinite/);
  });
});

describe("an empty revokedCertificates (RFC 5280 §5.1.2.6: absent when no certificate is revoked)", () => {
  /** `der` (a CRL without entries) with `30 00` put where revokedCertificates goes: after nextUpdate. */
  function withEmptyRevoked(der: Buffer): Buffer {
    const [tbs, alg, sig] = children(der);
    const fields = children(tbs!);
    const at = fields.findIndex((f) => f[0] === 0x17 || f[0] === 0x18) + 2; // thisUpdate, nextUpdate
    return seq(seq(...fields.slice(0, at), seq(), ...fields.slice(at)), alg!, sig!);
  }

  it("is reported as a profile error by the stream reader (inspect) and by checkCrl (verify --crl), and still parses", async () => {
    const absent = await crlOf([]);
    const empty = withEmptyRevoked(absent);
    expect(empty.length).toBe(absent.length + 2);
    const { list, totals } = readAll(empty);
    expect(list).toEqual([]);
    expect(totals.entryCount).toBe(0);
    expect(totals.profile.violations).toEqual([{ rule: "crl.revokedCertificates.empty", severity: "error", message: expect.stringMatching(/present but empty.*must be absent/) }]);
    expect(checkCrl(empty).violations).toEqual(totals.profile.violations);
    expect(describeCrl(empty).profile).toEqual(totals.profile);
    // our builder leaves it out: no finding
    expect(readAll(absent).totals.profile.violations).toEqual([]);
    expect(checkCrl(absent).violations).toEqual([]);
  });
});

describe("crlFileSource on something that is not a regular file", () => {
  it("a FIFO (swapped in after inspect's check by path, or planted as an installed CRL) is ERR_FILE_UNUSABLE at once, not an open waiting for a writer", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-crl-fifo-"));
    const fifo = join(dir, "13-sig.crl");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    // In a child with a deadline: the blocking open would stop this worker, and its own timeout with it.
    const script = `import("${pathToFileURL(join(import.meta.dirname, "..", "..", "dist", "src", "profile", "crl-reader.js")).href}").then((m) => { try { m.crlFileSource(process.argv[1], "input file x.crl"); console.log("opened"); } catch (e) { console.log(e.code + " " + e.message); } })`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, fifo], { encoding: "utf8", timeout: 30_000 });
    expect(r.signal, "still waiting on the FIFO").toBeNull();
    expect(r.stdout.trim()).toBe("ERR_FILE_UNUSABLE input file x.crl: is not a regular file");
    // a directory too
    expect(malformedOrUnusable(() => crlFileSource(dir, "input file d"))).toBe("ERR_FILE_UNUSABLE");
  });
});

function malformedOrUnusable(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return "accepted";
}

describe("an entry's empty crlEntryExtensions (SIZE (1..MAX), RFC 5280 §5.1: absent when the entry has none)", () => {
  it("is read (as before) and reported, by the stream reader and checkCrl alike, counting the entries", async () => {
    const der = await crlOf(entries(3).map((e) => ({ ...e, reason: 0 }))); // reason 0: no extension at all
    const [tbs, alg, sig] = children(der);
    const fields = children(tbs!);
    const list = children(fields[5]!).map((e, k) => (k === 1 ? e : seq(...children(e), seq())));
    const bad = seq(seq(...fields.slice(0, 5), seq(...list), ...fields.slice(6)), alg!, sig!);
    const { list: read, totals } = readAll(bad);
    expect(read).toHaveLength(3);
    expect(totals.profile.violations).toEqual([{ rule: "crl.entry.extensions.empty", severity: "warning", message: expect.stringMatching(/^2 entries: .*present but empty/) }]);
    expect(checkCrl(bad).violations).toEqual(totals.profile.violations);
    expect(readAll(der).totals.profile.violations).toEqual([]);
  });
});

describe("crlFrameIdentity: the cRLNumber and authority key id of a CRL frame, by walking the DER (the publisher's installed-CRL check)", () => {
  const identityOf = (der: Buffer) => {
    const r = CrlReader.open(crlBytesSource(der));
    try {
      return crlFrameIdentity(r.skeleton);
    } finally {
      r.close();
    }
  };
  const build = async (o: { number: bigint; keyId: Buffer; entries?: number; extensions?: Buffer[] }) =>
    crlDer(
      await buildCrl({
        issuerName,
        authorityKeyId: o.keyId,
        number: o.number,
        thisUpdate: new Date("2026-01-03T00:00:00Z"),
        nextUpdate: new Date("2026-01-05T00:00:00Z"),
        entries: [entries(o.entries ?? 0)],
        signer,
        ...(o.extensions ? { extraExtensions: o.extensions } : {}),
      }),
    );

  it("reads what the asn1-schema reader (describeCrl) reads: empty and full CRLs, a 20-octet number, a delta CRL", async () => {
    const cases = [
      await build({ number: 0n, keyId: Buffer.alloc(20, 1) }),
      await build({ number: 12n, keyId: Buffer.alloc(20, 7), entries: 50 }),
      await build({ number: (1n << 159n) - 3n, keyId: Buffer.from("00ff10", "hex"), entries: 3 }),
      await build({ number: 9n, keyId: Buffer.alloc(20, 9), extensions: [extension(EXT_OID.deltaCRLIndicator, true, integer(8))] }),
    ];
    for (const der of cases) {
      const d = describeCrl(der, { maxEntries: 0 });
      expect(identityOf(der)).toEqual({ crlNumber: BigInt(d.crlNumber!), keyId: d.authorityKeyIdentifier });
    }
    expect(identityOf(cases[2]!).crlNumber).toBe((1n << 159n) - 3n);
    expect(describeCrl(cases[3]!, { maxEntries: 0 }).deltaCrlIndicator).toBe("8");
  });

  it("refuses a frame that is not a CertificateList's, a negative number, and an INTEGER that does not fill its extension", async () => {
    const der = await build({ number: 12n, keyId: Buffer.alloc(20, 7) });
    const number = Buffer.from("0603551d140403020 10c".replace(/ /g, ""), "hex"); // cRLNumber, OCTET STRING { INTEGER 12 }
    const at = der.indexOf(number);
    expect(at).toBeGreaterThan(0);
    const negative = Buffer.from(der);
    negative[at + number.length - 1] = 0x8c;
    const short = Buffer.from(der);
    short[at + number.length - 2] = 0x00; // INTEGER of length 0, and a byte after it inside the OCTET STRING
    for (const bad of [negative, short]) expect(() => identityOf(bad)).toThrow(RangeError);
    expect(() => crlFrameIdentity(seq(seq(), seq()))).toThrow(RangeError);
    expect(() => crlFrameIdentity(Buffer.from("3000", "hex"))).toThrow(RangeError);
  });

  it("installedCrlNumber: the number only for the same key; nothing for another key's CRL, a damaged one, or no file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-installed-"));
    const key = Buffer.alloc(20, 7);
    const der = await build({ number: 41n, keyId: key, entries: 10 });
    const path = join(dir, "ca.crl");
    writeFileSync(path, der);
    expect(installedCrlNumber(path, key)).toBe(41n);
    expect(installedCrlNumber(path, Buffer.alloc(20, 8))).toBeUndefined();
    const negative = Buffer.from(der);
    negative[der.indexOf(Buffer.from("0603551d14040302012 9".replace(/ /g, ""), "hex")) + 9] = 0xa9;
    writeFileSync(path, negative);
    expect(installedCrlNumber(path, key)).toBeUndefined();
    writeFileSync(path, der.subarray(0, der.length - 5));
    expect(installedCrlNumber(path, key)).toBeUndefined();
    expect(installedCrlNumber(join(dir, "none.crl"), key)).toBeUndefined();
  });
});
