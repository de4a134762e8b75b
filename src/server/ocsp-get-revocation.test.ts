/**
 * A revocation reaches RFC 5019 GETs answered from memory, on both stores. A GET repeated by its URL is answered
 * from the responder's pre-produced answer (OcspResponder.preProducedFor: no decoding, no store read, the route's
 * headers made once per answer); a revocation committed to the store — by `jpki revoke` in another process, here a
 * store write, as the responder reads nothing but the store — moves its CA's revision, and the first GET after the
 * responder's poll that reads it is answered `revoked`: a new answer with validators of its own (the good one's
 * ETag gets it, not a 304), pre-produced in turn. Between the commit and that poll (≤ pollMs + one query) the good
 * answer may still go out: the documented bound (responder.ts), not asserted here. The poll is called, not waited for.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CertificationAuthority } from "../ca/authority.js";
import { initCas } from "../ca/manage.js";
import { renewOcspSigners } from "../ca/ocsp-signer.js";
import { prefecture } from "../ca/prefectures.js";
import { OcspResponder, type OcspAnswer } from "../ocsp/responder.js";
import { certificateParts, children, nul, octetString, oid, readHeader, seq, tlv } from "../pki/der.js";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { usePostgres } from "../../test/use-postgres.js";
import { ocspGetRoute } from "./ocsp.js";

const server = usePostgres();
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

/** A GET request about `serial` of `ca` (SHA-1 CertID, no nonce), base64 and URL-encoded as openssl's. */
function getPath(ca: CertificationAuthority, serial: string): string {
  const p = certificateParts(ca.record.certificateDer);
  const bits = children(p.spki)[1]!;
  const key = bits.subarray(readHeader(bits).headerLength + 1);
  const sha1 = (b: Buffer) => createHash("sha1").update(b).digest();
  const certId = seq(seq(oid("1.3.14.3.2.26"), nul()), octetString(sha1(p.subject)), octetString(sha1(key)), tlv(0x02, Buffer.from(serial, "hex")));
  return `/ocsp/${ca.record.id}/${encodeURIComponent(seq(seq(seq(seq(certId)))).toString("base64"))}`;
}

/** The certificate status a successful response gives (its one SingleResponse's). */
function statusOf(der: Buffer): string {
  if (!der.length) return "no body"; // a 304
  const [status, bytes] = children(der);
  expect(status!.toString("hex")).toBe("0a0100");
  const octets = children(children(bytes!)[0]!)[1]!;
  const tbs = children(octets.subarray(readHeader(octets).headerLength))[0]!;
  const tag = children(children(children(tbs)[2]!)[0]!)[1]![0];
  return tag === 0x80 ? "good" : tag === 0xa1 ? "revoked" : tag === 0x82 ? "unknown" : "?";
}

describe.each(["sqlite", "postgres"] as const)("OCSP GET from memory after a revocation (%s)", (kind) => {
  const clock = new FixedClock("2030-04-01T00:00:00Z");
  let ws: Workspace;
  let ca: CertificationAuthority;
  let responder: OcspResponder;
  let http: Server;
  let port: number;
  /** what the route counted, in order: which answers were pre-produced */
  const counted: OcspAnswer[] = [];

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-ocsp-get-"));
    ws = kind === "postgres" ? await Workspace.createAsync(root, { storeUrl: await server.createDatabase(), config: { store: "postgres" }, clock }) : Workspace.create(root, { clock });
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    ca = CertificationAuthority.open((await ws.store.getCa("13-sig"))!, "pw", ws.config);
    await issue("0a01", "r1");
    await issue("0a02", "r2");
    await renewOcspSigners(ws.store, [ca], { now: clock.now(), passphrase: "ocsp-pw" });
    responder = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw", responseValidityMs: 3600_000 });
    await responder.refresh();
    // max-age 3000 s of an hour's validity: capped by nextUpdate from 600 s after an answer is produced, while it is
    // still the pre-produced one (re-signed at half the validity)
    const route = ocspGetRoute({ prefix: "", responder: () => responder, clock, maxAgeSeconds: 3000, count: (a) => counted.push(a), onResponse: () => undefined });
    http = createServer((req, res) => {
      if (!route(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    port = (http.address() as AddressInfo).port;
  }, 120_000);

  afterAll(async () => {
    await new Promise((resolve) => http?.close(resolve));
    await ws?.close();
  });

  /** A signature certificate of its own resident (a second one of a resident's revokes the first) */
  const issue = async (serial: string, residentCode: string) => {
    const fourItems = { ...items, name: `山田　${residentCode}` };
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", fourItems, status: "active" }]);
    await ws.store.commitIssuances([{ serial, caId: "13-sig", type: "signature", residentCode, municipalityCode: "131016", fourItems, notBefore: clock.now(), notAfter: new Date("2033-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]) }]);
  };

  const get = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; preProduced: boolean | undefined }>((resolve, reject) => {
      const before = counted.length;
      request({ host: "127.0.0.1", port, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), preProduced: counted.length > before ? counted.at(-1)!.preProduced : undefined }));
      })
        .on("error", reject)
        .end();
    });

  it("answers revoked on the first GET after the poll that reads the revocation, then from memory; the good answer's ETag gets the revoked one, not 304", async () => {
    const path = getPath(ca, "0a01");
    const first = await get(path);
    expect([first.status, statusOf(first.body), first.preProduced]).toEqual([200, "good", false]); // signed for it
    const answer = vi.spyOn(responder, "answer");
    const statusRead = vi.spyOn(ws.store, "certificateStatus");
    const again = await get(path);
    expect([again.status, again.preProduced, again.headers.etag]).toEqual([200, true, first.headers.etag]);
    expect(again.body.equals(first.body)).toBe(true);
    expect([answer.mock.calls.length, statusRead.mock.calls.length]).toEqual([0, 0]); // neither decoded nor read

    await ws.store.revoke({ serial: "0a01", revokedAt: clock.now(), reason: 1, source: "manual" });
    await responder.refresh(); // the poll: the CA's revision moved
    const revoked = await get(path, { "if-none-match": String(first.headers.etag) });
    expect([revoked.status, statusOf(revoked.body), revoked.preProduced]).toEqual([200, "revoked", false]);
    expect(revoked.headers.etag).not.toBe(first.headers.etag);
    expect(statusRead).toHaveBeenCalledTimes(1);
    const served = await get(path);
    expect([served.status, served.preProduced, served.headers.etag]).toEqual([200, true, revoked.headers.etag]);
    expect(served.body.equals(revoked.body)).toBe(true);
    expect(await get(path, { "if-none-match": String(revoked.headers.etag) })).toMatchObject({ status: 304, preProduced: true });
    expect(statusRead).toHaveBeenCalledTimes(1);
  });

  it("a revocation of another certificate of the CA is a new pre-produced set too: the good answer is signed again, not served from before", async () => {
    const path = getPath(ca, "0a02");
    await get(path);
    expect((await get(path)).preProduced).toBe(true);
    await issue("0a03", "r3");
    await ws.store.revoke({ serial: "0a03", revokedAt: clock.now(), reason: 1, source: "manual" });
    await responder.refresh();
    const after = await get(path);
    expect([after.status, statusOf(after.body), after.preProduced]).toEqual([200, "good", false]);
    expect((await get(path)).preProduced).toBe(true);
  });

  it("says max-age up to nextUpdate at most, for an answer served from memory and its 304 alike (RFC 5019 §6.2)", async () => {
    const path = getPath(ca, "0a02");
    const full = await get(path);
    expect([full.preProduced, full.headers["cache-control"]]).toEqual([true, "private, max-age=3000, no-transform, must-revalidate"]);
    expect(full.headers.expires).toBe(new Date(clock.now().getTime() + 3600_000).toUTCString());
    clock.advance(1000_000);
    try {
      await responder.refresh(); // a poll within staleAfterMs, as the running responder's
      const capped = await get(path);
      expect([capped.preProduced, capped.headers["cache-control"], capped.headers.etag]).toEqual([true, "private, max-age=2600, no-transform, must-revalidate", full.headers.etag]);
      expect(capped.body.equals(full.body)).toBe(true);
      const notModified = await get(path, { "if-none-match": String(full.headers.etag) });
      expect([notModified.status, notModified.headers["cache-control"], notModified.headers.expires]).toEqual([304, "private, max-age=2600, no-transform, must-revalidate", full.headers.expires]);
    } finally {
      clock.set(new Date("2030-04-01T00:00:00Z"));
    }
  });
});
