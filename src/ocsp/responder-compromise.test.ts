// The OCSP responder and a CA key compromise (鍵危殆化) made while it runs: how soon it is seen, who may sign, and
// the extended revoke extension on answers for serials never issued. Its own workspace: 13-sig is rolled over
// with --compromised here, 13-auth stays sound.
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificationAuthority } from "../ca/authority.js";
import { initCas } from "../ca/manage.js";
import { issueOcspSigner, renewOcspSigners } from "../ca/ocsp-signer.js";
import { prefecture } from "../ca/prefectures.js";
import { rolloverCas } from "../ca/rollover.js";
import { certificateParts, children, explicit, generalizedTime, nul, octetString, oid, readHeader, seq, tlv } from "../pki/der.js";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { OCSP_OID } from "./request.js";
import { OcspResponder } from "./responder.js";

const clock = new FixedClock("2030-04-01T00:00:00Z");
let ws: Workspace;
let sig: CertificationAuthority;
let auth: CertificationAuthority;
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

function certIdFor(serialHex: string, issuer: CertificationAuthority): Buffer {
  const p = certificateParts(issuer.record.certificateDer);
  const bits = children(p.spki)[1]!;
  const key = bits.subarray(readHeader(bits).headerLength + 1);
  return seq(seq(oid("1.3.14.3.2.26"), nul()), octetString(createHash("sha1").update(p.subject).digest()), octetString(createHash("sha1").update(key).digest()), tlv(0x02, Buffer.from(serialHex, "hex")));
}
function request(ids: Buffer[], nonce?: Buffer): Buffer {
  const exts = nonce ? [explicit(2, seq(seq(oid(OCSP_OID.nonce), octetString(octetString(nonce)))))] : [];
  return seq(seq(seq(...ids.map((c) => seq(c))), ...exts));
}
/** The extensions of a successful response's responseExtensions, as [OID DER, extnValue content]; none: []. */
function responseExtensions(der: Buffer): Array<[string, string]> {
  const [, bytes] = children(der);
  const [, octets] = children(children(bytes!)[0]!);
  const [tbs] = children(octets!.subarray(readHeader(octets!).headerLength));
  const f = children(tbs!);
  if (f.length === 3) return [];
  expect(f.length).toBe(4);
  return children(children(f[3]!)[0]!).map((e) => {
    const [id, value] = children(e);
    return [id!.toString("hex"), value!.subarray(readHeader(value!).headerLength).toString("hex")];
  });
}
const EXTENDED_REVOKE: [string, string] = [oid(OCSP_OID.extendedRevoke).toString("hex"), "0500"];
const caCompromise = explicit(0, tlv(0x0a, Buffer.from([2])));

beforeAll(async () => {
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-ocsp-comp-")), { clock });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
  sig = CertificationAuthority.open((await ws.store.getCa("13-sig"))!, "pw", ws.config);
  auth = CertificationAuthority.open((await ws.store.getCa("13-auth"))!, "pw", ws.config);
  await ws.store.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]);
  const cert = (serial: string, caId: string, type: "signature" | "authentication") => ({
    serial, caId, type, residentCode: "r1", municipalityCode: "131016", fourItems: items,
    notBefore: clock.now(), notAfter: new Date("2033-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]),
  });
  await ws.store.commitIssuances([cert("0a01", "13-sig", "signature"), cert("0b01", "13-auth", "authentication")]);
  // an hour on: the signers' notBefore (5 minutes back) is past the CAs' own
  clock.advance(3600_000);
  await renewOcspSigners(ws.store, [sig, auth], { now: clock.now(), passphrase: "ocsp-pw" });
}, 60_000);

afterAll(async () => {
  await ws?.close();
});

describe("OcspResponder and a compromise made while it runs", () => {
  it("sees 'ca rollover --compromised' within a poll, as 'ca compromised': every serial of the old generation revoked, cACompromise, at the rollover's time", async () => {
    // reloadMs far off: only the poll of the revisions can tell it
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw", reloadMs: 3600_000 });
    try {
      await r.refresh();
      expect((await r.answer("13-sig", request([certIdFor("0a01", sig)]))).statuses).toEqual(["good"]); // pre-produced
      clock.advance(1000);
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      const at = (await ws.store.listCaLinks()).find((l) => l.oldCaId === "13-sig")!.createdAt;
      clock.advance(1000);
      await r.refresh(); // one poll
      for (const serial of ["0a01", "7777"]) {
        const a = await r.answer("13-sig", request([certIdFor(serial, sig)]));
        expect(a, serial).toMatchObject({ responseStatus: "successful", statuses: ["revoked"] });
        expect(a.der.includes(caCompromise), serial).toBe(true);
        expect(a.der.includes(generalizedTime(at)), serial).toBe(true);
      }
      expect((await r.answer("13-auth", request([certIdFor("0b01", auth)]))).statuses).toEqual(["good"]);
    } finally {
      r.stop();
    }
  });

  it("says 'revoked' about a serial it never issued with the extended revoke extension (RFC 6960 §2.2); about a genuine one, without (its encoding as before)", async () => {
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw" });
    try {
      await r.refresh();
      const nonce = Buffer.from("nonce-12345678");
      const nonceExt: [string, string] = [oid(OCSP_OID.nonce).toString("hex"), octetString(nonce).toString("hex")];
      const forged = await r.answer("13-sig", request([certIdFor("7777", sig)]));
      expect(forged.statuses).toEqual(["revoked"]);
      expect(responseExtensions(forged.der)).toEqual([EXTENDED_REVOKE]);
      expect(responseExtensions((await r.answer("13-sig", request([certIdFor("7777", sig)]))).der)).toEqual([EXTENDED_REVOKE]); // pre-produced
      // a serial of another CA is none 13-sig issued either
      expect(responseExtensions((await r.answer("13-sig", request([certIdFor("0b01", sig)]))).der)).toEqual([EXTENDED_REVOKE]);
      expect(responseExtensions((await r.answer("13-sig", request([certIdFor("7777", sig)], nonce))).der)).toEqual([nonceExt, EXTENDED_REVOKE]);
      // genuine: no responseExtensions at all, or the nonce alone
      const genuine = await r.answer("13-sig", request([certIdFor("0a01", sig)]));
      expect(genuine.statuses).toEqual(["revoked"]);
      expect(responseExtensions(genuine.der)).toEqual([]);
      expect(responseExtensions((await r.answer("13-sig", request([certIdFor("0a01", sig)], nonce))).der)).toEqual([nonceExt]);
      // several CertIDs, one never issued: the response says it once
      const both = await r.answer("13-sig", request([certIdFor("0a01", sig), certIdFor("7777", sig)], nonce));
      expect(both.statuses).toEqual(["revoked", "revoked"]);
      expect(responseExtensions(both.der)).toEqual([nonceExt, EXTENDED_REVOKE]);
      // a sound CA's unknown serial stays unknown, without it
      const unknown = await r.answer("13-auth", request([certIdFor("7777", auth)]));
      expect(unknown.statuses).toEqual(["unknown"]);
      expect(responseExtensions(unknown.der)).toEqual([]);
    } finally {
      r.stop();
    }
  });

  it("never signs with a responder certificate issued from the compromised key after the compromise (an older serve's renewal): the one from before goes on, and without it the answer is unauthorized", async () => {
    const at = (await ws.store.listCaLinks()).find((l) => l.oldCaId === "13-sig")!.createdAt;
    const before = (await ws.store.ocspResponders()).find((x) => x.caId === "13-sig")!;
    expect(before.notBefore.getTime()).toBeLessThan(at.getTime());
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw", reloadMs: 60_000 });
    const fresh = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw" });
    try {
      await r.refresh();
      const first = await r.answer("13-sig", request([certIdFor("0a01", sig)]));
      expect(first.statuses).toEqual(["revoked"]);
      expect(first.der.includes(before.certificateDer)).toBe(true);
      // A minute after the compromise a serve from before jpki refused it renews 13-sig's signer from the stolen key.
      // Its notBefore, backdated 5 minutes, lies before the compromise: the issuance time, after it, is what counts.
      clock.advance(60_000);
      const late = await issueOcspSigner(sig, { now: clock.now(), passphrase: "ocsp-pw" });
      expect(late.notBefore.getTime()).toBeLessThan(at.getTime());
      await ws.store.putOcspResponder(late);
      clock.advance(60_000);
      await r.refresh(); // a reload: the store now names the late one
      for (const serial of ["0a01", "7777"]) {
        const a = await r.answer("13-sig", request([certIdFor(serial, sig)]));
        expect(a, serial).toMatchObject({ responseStatus: "successful", statuses: ["revoked"] });
        expect(a.der.includes(before.certificateDer), serial).toBe(true);
        expect(a.der.includes(late.certificateDer), serial).toBe(false);
      }
      // a serve started now has only the late one: nothing may sign for 13-sig
      await fresh.refresh();
      for (const serial of ["0a01", "7777"]) expect((await fresh.answer("13-sig", request([certIdFor(serial, sig)]))).responseStatus).toBe("unauthorized");
      expect((await fresh.answer("13-auth", request([certIdFor("0b01", auth)]))).statuses).toEqual(["good"]);
    } finally {
      r.stop();
      fresh.stop();
    }
  });

  it("a compromise read by a poll drops a signer already loaded that was issued at or after it, and its pre-produced answers", async () => {
    // 13-auth rolled over the ordinary way, its key declared stolen from a time before its signer was issued (a
    // store another host stamped, its clock behind): the signer loaded since must go at the poll that reads it
    const signer = (await ws.store.ocspResponders()).find((x) => x.caId === "13-auth")!;
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw", reloadMs: 3600_000 });
    try {
      await r.refresh();
      await rolloverCas(ws, { prefectureCode: "13", purposes: ["authentication"], passphrase: "pw" });
      await r.refresh();
      const pre = await r.answer("13-auth", request([certIdFor("0b01", auth)]));
      expect(pre.statuses).toEqual(["good"]);
      await ws.store.declareCaCompromised("13-auth", new Date(signer.notBefore.getTime() + 5 * 60_000));
      clock.advance(1000);
      await r.refresh();
      for (const serial of ["0b01", "7777"]) expect((await r.answer("13-auth", request([certIdFor(serial, auth)]))).responseStatus, serial).toBe("unauthorized");
    } finally {
      r.stop();
    }
  });
});
