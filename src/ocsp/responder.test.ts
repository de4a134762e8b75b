import { createHash, createPublicKey, verify } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { JpkiError } from "../errors.js";
import { CertificationAuthority } from "../ca/authority.js";
import { initCas } from "../ca/manage.js";
import { renewOcspSigners } from "../ca/ocsp-signer.js";
import { prefecture } from "../ca/prefectures.js";
import { certificateParts, children, explicit, generalizedTime, nul, octetString, oid, readHeader, seq, tlv } from "../pki/der.js";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { OCSP_OID } from "./request.js";
import { MAX_REMEMBERED_GET, OcspResponder, UNKNOWN_CA_RELOAD_MS } from "./responder.js";
import { rolloverCas } from "../ca/rollover.js";
import { StoreWatchdog } from "../store/watchdog.js";

const clock = new FixedClock("2030-04-01T00:00:00Z");
let ws: Workspace;
let ca: CertificationAuthority;
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

function certIdFor(serialHex: string, hash: "sha1" | "sha256" = "sha1", issuer = ca): Buffer {
  const p = certificateParts(issuer.record.certificateDer);
  const spki = children(p.spki);
  const bits = spki[1]!;
  const key = bits.subarray(readHeader(bits).headerLength + 1);
  const alg = hash === "sha1" ? seq(oid("1.3.14.3.2.26"), nul()) : seq(oid("2.16.840.1.101.3.4.2.1"));
  return seq(alg, octetString(createHash(hash).update(p.subject).digest()), octetString(createHash(hash).update(key).digest()), tlv(0x02, Buffer.from(serialHex, "hex")));
}
function request(ids: Buffer[], nonce?: Buffer): Buffer {
  const exts = nonce ? [explicit(2, seq(seq(oid(OCSP_OID.nonce), octetString(octetString(nonce)))))] : [];
  return seq(seq(seq(...ids.map((c) => seq(c))), ...exts));
}

/** The parts of a successful response a client checks: statuses, the nonce, and the signature by the embedded certificate. */
function readResponse(der: Buffer) {
  const [status, bytes] = children(der);
  expect(status!.toString("hex")).toBe("0a0100");
  const [, octets] = children(children(bytes!)[0]!);
  const basic = octets!.subarray(readHeader(octets!).headerLength);
  const [tbs, , sig, certs] = children(basic);
  const cert = children(children(certs!)[0]!)[0]!;
  const ok = verify("sha256", tbs!, createPublicKey({ key: certificateParts(cert).spki, format: "der", type: "spki" }), sig!.subarray(readHeader(sig!).headerLength + 1));
  const f = children(tbs!);
  const singles = children(f[2]!).map((s) => children(s)[1]![0]);
  const kinds = singles.map((t) => (t === 0x80 ? "good" : t === 0xa1 ? "revoked" : t === 0x82 ? "unknown" : "?"));
  return { ok, kinds, hasNonce: f.length > 3, producedAt: f[1]!.toString("latin1") };
}

let responder: OcspResponder;

beforeAll(async () => {
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-ocsp-")), { clock });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
  ca = CertificationAuthority.open((await ws.store.getCa("13-sig"))!, "pw", ws.config);
  const auth = CertificationAuthority.open((await ws.store.getCa("13-auth"))!, "pw", ws.config);
  await ws.store.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]);
  const cert = (serial: string, caId: string, type: "signature" | "authentication") => ({
    serial, caId, type, residentCode: "r1", municipalityCode: "131016", fourItems: items,
    notBefore: clock.now(), notAfter: new Date("2033-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]),
  });
  await ws.store.commitIssuances([cert("0a01", "13-sig", "signature"), cert("0b01", "13-auth", "authentication")]);
  await renewOcspSigners(ws.store, [ca, auth], { now: clock.now(), passphrase: "ocsp-pw" });
  responder = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw", responseValidityMs: 3600_000 });
  await responder.refresh();
}, 60_000);

afterAll(async () => {
  responder?.stop();
  await ws?.close();
});

describe("OcspResponder", () => {
  it("answers good from a pre-produced response: the second ask costs no signature and gets the same bytes", async () => {
    const a = await responder.answer("13-sig", request([certIdFor("0a01")]));
    expect(a).toMatchObject({ responseStatus: "successful", statuses: ["good"], preProduced: false });
    expect(readResponse(a.der)).toMatchObject({ ok: true, kinds: ["good"], hasNonce: false });
    clock.advance(1000);
    const b = await responder.answer("13-sig", request([certIdFor("0a01")]));
    expect(b.preProduced).toBe(true);
    expect(b.der.equals(a.der)).toBe(true);
    expect(b.cache!.nextUpdate.getTime() - b.cache!.producedAt.getTime()).toBe(3600_000);
    // a SHA-256 CertID is its own pre-produced answer
    expect((await responder.answer("13-sig", request([certIdFor("0a01", "sha256")]))).statuses).toEqual(["good"]);
  });

  it("answers a GET repeated by its URL encoding from the cache, with the same checks as answer()", async () => {
    expect(responder.preProducedFor("13-sig", "ENC")).toBeUndefined();
    const first = await responder.answer("13-sig", request([certIdFor("0a01")]), "ENC");
    const again = responder.preProducedFor("13-sig", "ENC")!;
    expect(again).toMatchObject({ responseStatus: "successful", statuses: ["good"], preProduced: true });
    expect(again.der.equals(first.der)).toBe(true);
    expect(again.cache!.producedAtHttp).toBe(again.cache!.producedAt.toUTCString());
    expect(responder.preProducedFor("13-auth", "ENC")).toBeUndefined(); // the encoding is remembered per CA
    expect(responder.preProducedFor("13-sig", "ENC2")).toBeUndefined();
    // a revocation at the CA (of another certificate) seen by a poll: the entry is older, not served
    const items2 = { ...items, name: "山田　花子" };
    await ws.store.upsertResidents([{ residentCode: "r2", municipalityCode: "131016", fourItems: items2, status: "active" }]);
    await ws.store.commitIssuances([{ serial: "0a02", caId: "13-sig", type: "signature", residentCode: "r2", municipalityCode: "131016", fourItems: items2, notBefore: clock.now(), notAfter: new Date("2033-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]) }]);
    await ws.store.revoke({ serial: "0a02", revokedAt: clock.now(), reason: 1, source: "manual" });
    expect(responder.preProducedFor("13-sig", "ENC")).toBeDefined(); // until the poll
    await responder.refresh();
    expect(responder.preProducedFor("13-sig", "ENC")).toBeUndefined();
    const fresh = await responder.answer("13-sig", request([certIdFor("0a01")]), "ENC");
    expect(fresh.preProduced).toBe(false);
    expect(responder.preProducedFor("13-sig", "ENC")!.der.equals(fresh.der)).toBe(true);
    // past the refresh age (half the validity) it is signed again
    clock.advance(1800_001);
    expect(responder.preProducedFor("13-sig", "ENC")).toBeUndefined();
    await responder.refresh();
  });

  it(`remembers no GET encoding longer than ${MAX_REMEMBERED_GET} characters (a padded request grew the process ~30 KB each), and answers it from the cache all the same`, async () => {
    const long = "L".repeat(MAX_REMEMBERED_GET + 1);
    const short = "S".repeat(MAX_REMEMBERED_GET);
    const first = await responder.answer("13-sig", request([certIdFor("0a01")]), long);
    expect(first.responseStatus).toBe("successful");
    expect(responder.preProducedFor("13-sig", long)).toBeUndefined();
    const again = await responder.answer("13-sig", request([certIdFor("0a01")]), long);
    expect(again.preProduced).toBe(true);
    expect(again.der.equals(first.der)).toBe(true);
    await responder.answer("13-sig", request([certIdFor("0a01")]), short);
    expect(responder.preProducedFor("13-sig", short)!.der.equals(first.der)).toBe(true);
  });

  it("answers a nonce fresh and echoes it; several CertIDs in one request fresh too", async () => {
    const a = await responder.answer("13-sig", request([certIdFor("0a01")], Buffer.alloc(16, 9)));
    expect(a.preProduced).toBe(false);
    expect(a.cache).toBeUndefined();
    expect(readResponse(a.der)).toMatchObject({ ok: true, hasNonce: true });
    expect(a.der.includes(octetString(Buffer.alloc(16, 9)))).toBe(true);
    const m = await responder.answer("13-sig", request([certIdFor("0a01"), certIdFor("0fff"), certIdFor("0b01")]));
    expect(m.statuses).toEqual(["good", "unknown", "unknown"]);
  });

  it("after a revocation commits, never serves the pre-produced good once the next poll has seen it", async () => {
    const good = await responder.answer("13-sig", request([certIdFor("0a01")]));
    expect(good.statuses).toEqual(["good"]);
    await ws.store.revoke({ serial: "0a01", revokedAt: clock.now(), reason: 3, source: "manual" });
    // until the poll, within the documented bound, the cached answer may still go out
    expect((await responder.answer("13-sig", request([certIdFor("0a01")]))).preProduced).toBe(true);
    await responder.refresh();
    const after = await responder.answer("13-sig", request([certIdFor("0a01")]));
    expect(after).toMatchObject({ statuses: ["revoked"], preProduced: false });
    expect(readResponse(after.der).kinds).toEqual(["revoked"]);
    expect(after.der.includes(explicit(0, tlv(0x0a, Buffer.from([3]))))).toBe(true); // reason affiliationChanged
    expect((await responder.answer("13-sig", request([certIdFor("0a01")]))).preProduced).toBe(true);
  });

  it("serves no pre-produced answer when its polls have stopped succeeding for longer than staleAfterMs", async () => {
    await responder.answer("13-sig", request([certIdFor("0a01", "sha256")]));
    clock.advance(10_000); // 10 s without a poll (default bound: 5 polls of 1 s)
    expect((await responder.answer("13-sig", request([certIdFor("0a01", "sha256")]))).preProduced).toBe(true); // revoked: final
    const unknown = await responder.answer("13-sig", request([certIdFor("0eee")]));
    expect((await responder.answer("13-sig", request([certIdFor("0eee")]))).preProduced).toBe(false);
    expect(unknown.statuses).toEqual(["unknown"]);
    await responder.refresh();
  });

  it("unknown for a serial the CA did not issue; unauthorized for another CA's CertID or an unknown CA; malformedRequest for garbage", async () => {
    expect((await responder.answer("13-sig", request([certIdFor("0b01")]))).statuses).toEqual(["unknown"]); // issued by 13-auth
    const foreign = await responder.answer("13-auth", request([certIdFor("0b01")])); // 13-sig's hashes at 13-auth's URL
    expect(foreign).toMatchObject({ responseStatus: "unauthorized", der: Buffer.from("30030a0106", "hex") });
    expect((await responder.answer("99-sig", request([certIdFor("0a01")]))).responseStatus).toBe("unauthorized");
    const bad = await responder.answer("13-sig", Buffer.from("garbage"));
    expect(bad).toMatchObject({ responseStatus: "malformedRequest", der: Buffer.from("30030a0101", "hex") });
  });

  it("tryLater while the store is out of reach (a restart: ask again); internalError for anything else", async () => {
    const failing = (e: Error) =>
      new Proxy(ws.store, {
        get: (t, k) => {
          if (k === "certificateStatus") return async () => Promise.reject(e);
          const v: unknown = Reflect.get(t, k);
          return typeof v === "function" ? v.bind(t) : v; // the store's own methods on the store (its private fields)
        },
      });
    const down = new OcspResponder({ store: failing(new JpkiError("ERR_STORE_UNREACHABLE", "the server is gone")), clock, passphrase: "ocsp-pw" });
    await down.refresh();
    expect((await down.answer("13-sig", request([certIdFor("0a01")]))).responseStatus).toBe("tryLater");
    const broken = new OcspResponder({ store: failing(new Error("a bug")), clock, passphrase: "ocsp-pw" });
    await broken.refresh();
    expect((await broken.answer("13-sig", request([certIdFor("0a01")]))).responseStatus).toBe("internalError");
  });

  it("tryLater, not a request held as long as the store, when a status read or a reload for an unknown CA never returns (the serve's watchdog); answered once the store is back", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let hang = false;
    const calls = { certificateStatus: 0, listCas: 0 };
    // a database server that stopped answering: reads wait until released
    const hung = new Proxy(ws.store, {
      get: (t, k) => {
        const v: unknown = Reflect.get(t, k);
        if (typeof v !== "function") return v;
        if (k === "certificateStatus" || k === "listCas") {
          return async (...a: unknown[]) => {
            calls[k]++;
            if (hang) await gate;
            return (v as (...x: unknown[]) => unknown).apply(t, a);
          };
        }
        return v.bind(t);
      },
    });
    // The watchdog's clock is the test's: on the wall clock the second ask was refused only if it came within the
    // 100 ms bound after the stall; a host that took the process off the CPU longer let it through as the probe.
    const dogClock = { t: 0 };
    const watchdog = new StoreWatchdog({ waitMs: 100, now: () => dogClock.t });
    const r = new OcspResponder({ store: hung, clock, passphrase: "ocsp-pw", watchdog, unknownCaReloadMs: 0, onError: () => undefined });
    await r.refresh();
    hang = true;
    try {
      // a nonce: answered fresh from the store, never from the pre-produced cache
      const asked = () => r.answer("13-sig", request([certIdFor("0a01")], Buffer.from("n1")));
      const first = asked();
      dogClock.t += 100; // the bound passes: the next sweep declares the read late
      expect((await first).responseStatus).toBe("tryLater");
      expect(watchdog.stalled).toBe(true);
      // refused at once while the first read is out: the hung store is not asked again (one asked would wait for a
      // bound the stopped clock never reaches: 10 s then ends the wait)
      const still = new Promise<{ responseStatus: string }>((r) => setTimeout(() => r({ responseStatus: "still waiting on the store" }), 10_000).unref());
      expect((await Promise.race([asked(), still])).responseStatus).toBe("tryLater");
      expect(calls.certificateStatus).toBe(1);
      // a CA id not loaded: the reload it waits for is bounded too, and says tryLater, not "not ours"
      expect((await r.answer("13-sig-g9", request([certIdFor("0a01")]))).responseStatus).toBe("tryLater");
      release();
      await vi.waitFor(() => expect(watchdog.stalled).toBe(false));
      const back = await asked();
      expect(back.responseStatus).toBe("successful");
      expect(back.statuses).toHaveLength(1); // its status as the store has it (an earlier test revoked it)
    } finally {
      release();
      watchdog.close();
    }
  });

  it("tryLater when the CA has no current signing certificate", async () => {
    const later = new OcspResponder({ store: ws.store, clock: new FixedClock("2031-01-01T00:00:00Z"), passphrase: "ocsp-pw" });
    await later.refresh();
    expect((await later.answer("13-sig", request([certIdFor("0a01")]))).responseStatus).toBe("tryLater");
    // a wrong responder passphrase loads no signer: tryLater, never a crash
    const wrong = new OcspResponder({ store: ws.store, clock, passphrase: "nope", onError: () => undefined });
    await wrong.refresh();
    expect((await wrong.answer("13-sig", request([certIdFor("0a01")]))).responseStatus).toBe("tryLater");
  });
});

describe("OcspResponder's failures that last (server/repeated-errors.ts)", () => {
  it("says a poll failure once however many polls it lasts, and when it stopped; a signing key that does not open, once per reload that keeps failing it, not per poll", async () => {
    let failing = true;
    const store = new Proxy(ws.store, {
      get: (t, k) => {
        const v: unknown = Reflect.get(t, k);
        if (typeof v !== "function") return v;
        if (k === "caRevisions") {
          return async (...a: unknown[]) => {
            if (failing) throw new JpkiError("ERR_STORE_UNREACHABLE", "the store could not be reached while reading CA revisions: connect ECONNREFUSED");
            return (v as (...x: unknown[]) => unknown).apply(t, a);
          };
        }
        return v.bind(t);
      },
    });
    const said: string[] = [];
    const stopped: string[] = [];
    const r = new OcspResponder({ store, clock, passphrase: "ocsp-pw", onError: (e) => said.push((e as JpkiError).code), onRecovered: (x) => stopped.push(`${x.code} ${x.times}`) });
    for (let i = 0; i < 5; i++) await r.refresh();
    expect(said).toEqual(["ERR_STORE_UNREACHABLE"]);
    failing = false;
    await r.refresh();
    expect(stopped).toEqual(["ERR_STORE_UNREACHABLE 5"]);
    expect(said).toHaveLength(1);
    // a wrong passphrase: no signer opens, so every poll reloads and fails to open the keys again
    const keys: string[] = [];
    const wrong = new OcspResponder({ store: ws.store, clock, passphrase: "nope", onError: (e) => keys.push((e as Error).message) });
    for (let i = 0; i < 5; i++) await wrong.refresh();
    expect(keys.length).toBeGreaterThan(0);
    expect(new Set(keys).size).toBe(keys.length); // each key's failure once
  });
});

// Last: it rolls 13-sig over to a new generation, which the tests above do not expect.
describe("OcspResponder after a CA rollover under it", () => {
  it("reads the store again for a CA id it has not loaded (one read for concurrent requests): tryLater while the new generation has no signer, answered once it has; never unauthorized for a CA of the store", async () => {
    const reads = vi.spyOn(ws.store, "listCas");
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw" });
    try {
      await r.refresh();
      const [rolled] = await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
      const id = rolled!.current.id;
      const next = CertificationAuthority.open((await ws.store.getCa(id))!, "pw", ws.config);
      reads.mockClear();
      // the CA is in the store, its signer not yet (the schedule's renewal issues it): ask again, not "not ours"
      const early = await Promise.all([1, 2, 3].map(() => r.answer(id, request([certIdFor("0c01", "sha1", next)]))));
      expect(early.map((a) => a.responseStatus)).toEqual(["tryLater", "tryLater", "tryLater"]);
      expect(reads).toHaveBeenCalledTimes(1); // one reload, shared
      await renewOcspSigners(ws.store, [next], { now: clock.now(), passphrase: "ocsp-pw" });
      // within the rate limit nothing more is read: still tryLater
      expect((await r.answer(id, request([certIdFor("0c01", "sha1", next)]))).responseStatus).toBe("tryLater");
      expect(reads).toHaveBeenCalledTimes(1);
      clock.advance(UNKNOWN_CA_RELOAD_MS);
      const answered = await r.answer(id, request([certIdFor("0c01", "sha1", next)]));
      expect(answered).toMatchObject({ responseStatus: "successful", statuses: ["unknown"] });
      expect(readResponse(answered.der).ok).toBe(true);
      // well before the minute's reload (reloadMs)
      expect(reads).toHaveBeenCalledTimes(2);
    } finally {
      reads.mockRestore();
      r.stop();
    }
  });

  it("made-up CA ids make it read the store at most once per UNKNOWN_CA_RELOAD_MS, however many requests", async () => {
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw" });
    await r.refresh();
    const reads = vi.spyOn(ws.store, "listCas");
    try {
      for (let round = 0; round < 2; round++) {
        // those sharing the read are told "not ours"; those after it, within the window, tryLater: the store was not
        // read for them, and a CA made meanwhile (a rollover) must not be answered "not ours", which is final
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => r.answer(`99-x${round}-${i}`, request([certIdFor("0a01")]))));
        expect(new Set(answers.map((a) => a.responseStatus))).toEqual(new Set(["unauthorized"]));
        const later: string[] = [];
        for (let i = 0; i < 10; i++) later.push((await r.answer(`98-y${round}-${i}`, request([certIdFor("0a01")]))).responseStatus);
        expect(new Set(later)).toEqual(new Set(["tryLater"]));
        expect(reads).toHaveBeenCalledTimes(round + 1);
        clock.advance(UNKNOWN_CA_RELOAD_MS);
      }
    } finally {
      reads.mockRestore();
      r.stop();
    }
  });
});

// After the rollover above: 13-sig is a retired generation, whose key is now declared stolen (jpki ca compromised).
describe("OcspResponder for a compromised CA generation", () => {
  it("answers every serial of it revoked, cACompromise, at the compromise time (genuine, never issued, nonce or not; one revoked before keeps its reason); issues it no new signer; unauthorized once the old one expired", async () => {
    const issued = {
      serial: "0d01", caId: "13-sig", type: "signature" as const, residentCode: "r1", municipalityCode: "131016", fourItems: items,
      notBefore: clock.now(), notAfter: new Date("2033-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]),
    };
    await ws.store.commitIssuances([issued]);
    const r = new OcspResponder({ store: ws.store, clock, passphrase: "ocsp-pw" });
    try {
      await r.refresh();
      expect((await r.answer("13-sig", request([certIdFor("0d01")]))).statuses).toEqual(["good"]); // pre-produced now
      expect((await r.answer("13-sig", request([certIdFor("7777")]))).statuses).toEqual(["unknown"]);
      clock.advance(1000);
      const { at } = await ws.store.declareCaCompromised("13-sig", clock.now());
      clock.advance(1000);
      await r.refresh(); // the poll that sees the revision move
      const caCompromise = explicit(0, tlv(0x0a, Buffer.from([2])));
      for (const serial of ["0d01", "7777"]) {
        const a = await r.answer("13-sig", request([certIdFor(serial)]));
        expect(a, serial).toMatchObject({ responseStatus: "successful", statuses: ["revoked"] });
        expect(readResponse(a.der).ok).toBe(true);
        expect(a.der.includes(caCompromise), serial).toBe(true);
        expect(a.der.includes(generalizedTime(at)), serial).toBe(true);
      }
      const fresh = await r.answer("13-sig", request([certIdFor("0d01"), certIdFor("7777", "sha256"), certIdFor("0a01")], Buffer.from("nonce-12345678")));
      expect(fresh.statuses).toEqual(["revoked", "revoked", "revoked"]);
      expect(fresh.der.includes(explicit(0, tlv(0x0a, Buffer.from([3]))))).toBe(true); // 0a01's affiliationChanged, from before
      // the schedule's renewal issues nothing more from the stolen key, however late; other CAs' as before
      const auth = CertificationAuthority.open((await ws.store.getCa("13-auth"))!, "pw", ws.config);
      const before = (await ws.store.ocspResponders()).find((x) => x.caId === "13-sig")!;
      clock.advance(before.notAfter.getTime() - clock.now().getTime() + 1000);
      const renewed = await renewOcspSigners(ws.store, [ca, auth], { now: clock.now(), passphrase: "ocsp-pw" });
      expect(renewed.map((x) => x.caId)).toEqual(["13-auth"]);
      expect((await ws.store.ocspResponders()).find((x) => x.caId === "13-sig")!.serial).toBe(before.serial);
      // its signer expired: unauthorized at once and every time (tryLater would have the client ask forever)
      await r.refresh();
      for (const serial of ["0d01", "7777"]) expect((await r.answer("13-sig", request([certIdFor(serial)]))).responseStatus).toBe("unauthorized");
      expect((await r.answer("13-auth", request([certIdFor("0b01", "sha1", auth)]))).statuses).toEqual(["good"]);
    } finally {
      r.stop();
    }
  });
});
