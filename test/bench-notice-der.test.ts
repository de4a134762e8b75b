import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BenchCertificates, noticeDerKind } from "../bench/notice-der.js";
import { IssuanceService } from "../src/ca/issuance.js";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { FixedClock } from "../src/pki/clock.js";
import { certificateParts } from "../src/pki/der.js";
import { checkCertificate } from "../src/profile/check.js";
import { decodeFourItemsSan } from "../src/profile/san.js";
import { EXT_OID } from "../src/profile/oids.js";
import { describeCertificate } from "../src/profile/describe.js";
import { generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord } from "../src/registry/resident.js";
import { certifiedKeyOf } from "../src/store/rows.js";
import type { ResidentRecord } from "../src/store/types.js";
import { Workspace } from "../src/workspace/workspace.js";
import { cardKeyVariant } from "./card-fixtures.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";

const clock = new FixedClock("2026-04-01T00:00:00Z");
let dir: string;
let ws: Workspace;
let residents: ResidentRecord[];
let makers: BenchCertificates;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jpki-bench-der-"));
  ws = Workspace.create(dir, { clock });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
  // the notice bench's own residents (its seed), of the one prefecture whose CAs this workspace has
  residents = [...generateResidents({ count: 12, seed: "bench-notices", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now: clock.now() }));
  await ws.store.upsertResidents(residents);
  makers = await BenchCertificates.open(ws.store, ws.config);
});

afterAll(async () => {
  await ws.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The four items a certificate's subjectAltName carries (signature certificates), as decoded; undefined without one. */
function sanItems(der: Buffer) {
  const san = AsnConvert.parse(der, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === EXT_OID.subjectAltName);
  if (!san) return undefined;
  const d = decodeFourItemsSan(new Uint8Array(san.extnValue.buffer))!;
  return { name: d.name, address: d.address, birthDate: d.raw.birthDate, gender: d.gender };
}

describe("bench/notice-der: JPKI_BENCH_NOTICE_DER", () => {
  it("reads the knob: unset or placeholder is the 64-octet placeholder, real is real, anything else stops the bench", () => {
    expect(noticeDerKind(undefined)).toBe("placeholder");
    expect(noticeDerKind("")).toBe("placeholder");
    expect(noticeDerKind("placeholder")).toBe("placeholder");
    expect(noticeDerKind("real")).toBe("real");
    expect(() => noticeDerKind("1450")).toThrow(/JPKI_BENCH_NOTICE_DER=1450/);
  });

  it("makes each certificate as long as issuance's for the same resident and type, with its four items, the row's serial and a key of its own", async () => {
    const subject = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const service = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw", checkProfile: "full" });
    const sizes = new Set<number>();
    let n = 0;
    for (const r of residents) {
      for (const type of ["signature", "authentication"] as const) {
        const issued = await service.issue({ residentCode: r.residentCode, type, publicKey: cardKeyVariant(subject, ++n) });
        const serial = (n + 0x100).toString(16).padStart(4, "0") + "ab".repeat(14); // 01…: 16 octets, as the bench's
        const der = await makers.der({ serial, type, municipalityCode: r.municipalityCode, fourItems: r.fourItems, notAfter: issued.notAfter }, clock.now());
        // same length as the real one, and a whole DER SEQUENCE of it (30 82 <length>)
        expect(der.length).toBe(issued.der.length);
        expect([der[0], der[1], der.readUInt16BE(2) + 4]).toEqual([0x30, 0x82, der.length]);
        sizes.add(der.length);
        // the serial is the row's; the names, validity and four items are what issuance put in the real one
        const parts = certificateParts(der);
        const real = certificateParts(issued.der);
        expect(parts.serial.subarray(2).toString("hex")).toBe(serial);
        expect(parts.issuer.equals(real.issuer)).toBe(true);
        expect(parts.validity.equals(real.validity)).toBe(true);
        expect(describeCertificate(der).subject.rdns.slice(0, -1)).toEqual(describeCertificate(issued.der).subject.rdns.slice(0, -1));
        expect(sanItems(der)).toEqual(sanItems(issued.der));
        if (type === "signature") expect(sanItems(der)?.address).toBeTruthy();
        // a 2048-bit RSA key of its own: the stores key it (certified_key) as a real one
        expect(createPublicKey({ key: parts.spki, format: "der", type: "spki" }).asymmetricKeyDetails?.modulusLength).toBe(2048);
        expect(parts.spki.equals(real.spki)).toBe(false);
        expect(certifiedKeyOf(der)).not.toBeNull();
        // the profile holds (the signature is random octets, which the profile check does not verify)
        expect(checkCertificate(der, { expect: type }).violations.filter((v) => v.severity === "error")).toEqual([]);
      }
    }
    // the signature certificate carries the address: sizes vary with the resident, as issuance's do
    expect(sizes.size).toBeGreaterThan(2);
  });

  it("gives every certificate a different key and signature, so no two rows share a certified key", async () => {
    const r = residents[0]!;
    const one = { serial: "01" + "00".repeat(15), type: "authentication" as const, municipalityCode: r.municipalityCode, fourItems: r.fourItems, notAfter: new Date("2031-04-01T00:00:00Z") };
    const a = await makers.der(one, clock.now());
    const b = await makers.der(one, clock.now());
    expect(a.length).toBe(b.length);
    expect(certifiedKeyOf(a)!.equals(certifiedKeyOf(b)!)).toBe(false);
    expect(a.subarray(-256).equals(b.subarray(-256))).toBe(false);
  });

  it("refuses a serial that does not fit where issuance's goes (16 octets, first 01–7f)", async () => {
    const r = residents[0]!;
    const c = { type: "authentication" as const, municipalityCode: r.municipalityCode, fourItems: r.fourItems, notAfter: new Date("2031-04-01T00:00:00Z") };
    await expect(makers.der({ ...c, serial: "80" + "00".repeat(15) }, clock.now())).rejects.toThrow(/serial/);
    await expect(makers.der({ ...c, serial: "01" + "00".repeat(14) }, clock.now())).rejects.toThrow(/serial/);
  });
});
