import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { cardKeyVariant } from "../../test/card-fixtures.js";
import { FixedClock } from "../pki/clock.js";
import { checkCertificate } from "../profile/check.js";
import { describeCertificate } from "../profile/describe.js";
import { decodeFourItemsSan } from "../profile/san.js";
import type { JpkiError } from "../errors.js";
import type { IssuanceRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { IssuanceService, parseApplication } from "./issuance.js";
import { initCas } from "./manage.js";
import { prefecture } from "./prefectures.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, CertificatePolicies, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { EXT_OID, FOUR_ITEMS_OID, POLICY_OID } from "../profile/oids.js";

const clock = new FixedClock("2026-04-01T00:00:00Z");
let ws: Workspace;
let service: IssuanceService;
/**
 * A new subject key each call: a variant of one RSA-2048 key (cardKeyVariant), where each call made a key pair (≈ 0.1 s
 * of CPU, 18 calls); no test here holds a subject's private key. Numbered in the variant's upper octets (n × 2²⁴), so
 * a test's own variants of one of them (cardKeyVariant(key, line), lower octets) never land on another's key.
 */
const subjectBase = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
let subjects = 0;
const spki = () => cardKeyVariant(subjectBase, ++subjects * 2 ** 24);
const takahashi = { residentCode: makeResidentCode("0000000123"), municipalityCode: "131016", status: "active" as const,
  fourItems: { name: "髙橋　𠮷男", address: "東京都千代田区千代田１番１号", birthDate: "1989-01-07", gender: "male" as const } };

beforeAll(async () => {
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-issue-")), { clock, config: { validityRule: "fifth-birthday" } });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
  await ws.store.upsertResidents([takahashi, { ...takahashi, residentCode: makeResidentCode("0000000124"), status: "deceased" }]);
  service = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw", checkProfile: "full" });
});

describe("IssuanceService", () => {
  it("puts the registry's four items into the certificate and the decoder reads every field back", async () => {
    const c = await service.issue({ residentCode: takahashi.residentCode, type: "signature", publicKey: spki() });
    const cert = AsnConvert.parse(c.der, Certificate);
    const san = cert.tbsCertificate.extensions!.find((e) => e.extnID === EXT_OID.subjectAltName)!;
    const decoded = decodeFourItemsSan(new Uint8Array(san.extnValue.buffer))!;
    // 髙 and 𠮷 are outside JIS X 0208: substituted and flagged; the registry keeps the true form
    expect(decoded.name).toBe("高橋　吉男");
    expect(decoded.nameSubstituteFlags).toBe("10010"); // 髙 橋 　 𠮷 男
    expect(decoded.raw.birthDate).toBe("319890107"); // the last day of Shōwa
    expect(decoded.gender).toBe("male");
    expect(decoded.address).toBe(takahashi.fourItems.address);
    expect(decoded.addressSubstituteFlags).toBe("0".repeat([...takahashi.fourItems.address].length));
    const d = describeCertificate(c.der);
    expect(d.subject.text).toBe(`C=JP, L=Tokyo-to, L=Chiyoda-ku, CN=${d.subject.rdns.at(-1)!.value}`);
    expect(d.subject.text).not.toContain("髙");
    expect(checkCertificate(c.der, { expect: "signature" }).violations.filter((v) => v.severity === "error")).toEqual([]);
    // stored issuance record keeps the true form
    expect((await ws.store.getCertificate(c.serial))?.fourItems).toEqual(takahashi.fourItems);
    // fifth-birthday rule: born 01-07, issued 2026-04-01 → 2031-01-07 23:59:59 JST
    expect(c.notAfter.toISOString()).toBe("2031-01-07T14:59:59.000Z");
    expect(Buffer.from(c.serial, "hex").length).toBe(16);
    // the serial opens with the issuance time (pki/serial.ts: the store's serial-keyed indexes append)
    expect(Buffer.from(c.serial, "hex").readUIntBE(0, 6)).toBe(clock.now().getTime());
  });

  it("issues authentication certificates without the four items, under the authentication CA", async () => {
    const c = await service.issue({ residentCode: takahashi.residentCode, type: "authentication", publicKey: spki() });
    expect(c.caId).toBe("13-auth");
    const report = checkCertificate(c.der, { expect: "authentication" });
    expect(report.kind).toBe("authentication");
    expect(report.violations.filter((v) => v.severity === "error")).toEqual([]);
    // no otherName of the four items anywhere in a subjectAltName, and the authentication policy alone
    const exts = AsnConvert.parse(c.der, Certificate).tbsCertificate.extensions ?? [];
    const fourItemIds = new Set<string>(Object.values(FOUR_ITEMS_OID));
    for (const san of exts.filter((e) => e.extnID === EXT_OID.subjectAltName)) {
      const ids = AsnConvert.parse(san.extnValue.buffer, SubjectAlternativeName).flatMap((g) => (g.otherName ? [g.otherName.typeId] : []));
      expect(ids.filter((id) => fourItemIds.has(id))).toEqual([]);
    }
    const policies = exts.filter((e) => e.extnID === EXT_OID.certificatePolicies);
    expect(policies.flatMap((e) => AsnConvert.parse(e.extnValue.buffer, CertificatePolicies).map((p) => p.policyIdentifier))).toEqual([POLICY_OID.authentication]);
    expect(describeCertificate(c.der).fourItems).toBeFalsy();
  });

  it("refuses a deceased resident and a prefecture that is not the resident's", async () => {
    await expect(service.issue({ residentCode: makeResidentCode("0000000124"), type: "signature", publicKey: spki() })).rejects.toMatchObject({ code: "ERR_RESIDENT_NOT_ELIGIBLE" });
    await expect(service.issue({ residentCode: takahashi.residentCode, type: "signature", publicKey: spki(), prefecture: "27" })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });

  it("refuses before signing a resident whose notice the CA side applied and the registry has not (ERR_REGISTRY_BEHIND)", async () => {
    const code = makeResidentCode("0000000129");
    await ws.store.upsertResidents([{ ...takahashi, residentCode: code }]);
    await ws.store.commitNoticeBatch({ noticeIds: ["behind-1"], residentCodes: [code] }, () => ({
      commit: {
        at: new Date(1500),
        notices: [{ noticeId: "behind-1", residentCode: code, sequence: 1, kind: "relocation", body: "{}", status: "applied", revocations: 0 }],
        sequences: [{ residentCode: code, last: 1 }],
        revocations: [],
        relinks: [],
        dirtyCas: [],
      },
    }));
    await expect(service.checkResident({ residentCode: code })).rejects.toMatchObject({ code: "ERR_REGISTRY_BEHIND" });
    // prepare signs without committing: only its own check can refuse it
    await expect(service.prepare({ residentCode: code, type: "signature", publicKey: spki() })).rejects.toMatchObject({ code: "ERR_REGISTRY_BEHIND" });
  });

  it("gives every certificate a distinct serial, even in a batch for one resident", async () => {
    const key = spki().toString("base64");
    async function* lines() {
      // each line its own application: without ids a repeat of resident and type is refused (test below)
      for (let i = 1; i <= 20; i++) yield { line: i, value: { applicationId: `renewal-${i}`, residentCode: takahashi.residentCode, type: "signature", publicKey: key } };
    }
    const serials: string[] = [];
    const res = await service.issueBatch(lines(), { onIssued: (c) => serials.push(c.serial), commitEvery: 7 });
    expect(res.issued).toBe(20);
    expect(new Set(serials).size).toBe(20);
    // each one superseded the one before: only the last is valid
    const valid = await ws.store.findCertificates({ residentCode: takahashi.residentCode, type: "signature", status: "valid" });
    expect(valid.map((c) => c.serial)).toEqual([serials.at(-1)]);
  });

  it("a feeder that sends the next application only once the last is issued gets each one (the input's pause commits what is signed)", async () => {
    // A counter piping one application at a time into `issue --batch -`: each certificate waited for 512 more lines
    // (the window) and 500 more signatures (the group), so this feeder and the batch waited on each other for ever.
    const key = spki().toString("base64");
    let issuedOne: () => void = () => undefined;
    async function* feeder() {
      for (let i = 1; i <= 3; i++) {
        const told = new Promise<void>((r) => (issuedOne = r));
        yield { line: i, value: { applicationId: `one-at-a-time-${i}`, residentCode: takahashi.residentCode, type: "signature", publicKey: key } };
        await told;
      }
    }
    const serials: string[] = [];
    const res = await service.issueBatch(feeder(), {
      onIssued: (c) => {
        serials.push(c.serial);
        issuedOne();
      },
    });
    expect(res).toMatchObject({ read: 3, issued: 3, failed: 0 });
    expect(new Set(serials).size).toBe(3);
  });

  it("takes every line once and in order through a signing window smaller than the batch", async () => {
    // concurrency 3: the window is refilled and its taken slots compacted away many times over 20 lines
    const key = spki().toString("base64");
    async function* lines() {
      for (let i = 1; i <= 20; i++) yield { line: i, value: { applicationId: `small-window-${i}`, residentCode: takahashi.residentCode, type: "signature", publicKey: key } };
    }
    const serials: string[] = [];
    const res = await service.issueBatch(lines(), { concurrency: 3, commitEvery: 5, onIssued: (c) => serials.push(c.serial) });
    expect(res).toMatchObject({ read: 20, issued: 20, failed: 0 });
    // committed in input order: each superseded the one before, the last stands
    const ids = await Promise.all(serials.map(async (serial) => (await ws.store.getCertificate(serial))?.applicationId));
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => `small-window-${i + 1}`));
    const valid = await ws.store.findCertificates({ residentCode: takahashi.residentCode, type: "signature", status: "valid" });
    expect(valid.map((c) => c.applicationId)).toEqual(["small-window-20"]);
  });

  it("refuses a resident and type repeated without application ids (a file given twice), issuing the first only", async () => {
    const key = spki().toString("base64");
    async function* lines() {
      yield { line: 1, value: { residentCode: takahashi.residentCode, type: "signature", publicKey: key } };
      yield { line: 2, value: { residentCode: takahashi.residentCode, type: "authentication", publicKey: spki().toString("base64") } };
      yield { line: 3, value: { residentCode: takahashi.residentCode, type: "signature", publicKey: key } };
    }
    const serials: string[] = [];
    const res = await service.issueBatch(lines(), { onIssued: (c) => serials.push(c.serial) });
    expect(res).toMatchObject({ read: 3, issued: 2, failed: 1 });
    expect(res.errors).toEqual([{ line: 3, code: "ERR_APPLICATION_INVALID", message: expect.stringMatching(/^line 3: .*signature certificate repeats line 1/) }]);
    // the certificate line 1 issued stands: nothing superseded it
    const valid = await ws.store.findCertificates({ residentCode: takahashi.residentCode, type: "signature", status: "valid" });
    expect(valid.map((c) => c.serial)).toEqual([serials[0]]);
  });

  it("stops a batch at the first commit that cannot reach the store: nothing more read or signed, the error says how far it came", async () => {
    // Was: every later line was signed and failed alike (a batch of a million against a database that went down).
    const { JpkiError: Err } = await import("../errors.js");
    let commits = 0;
    const store = new Proxy(ws.store, {
      get(target, prop, recv) {
        if (prop === "commitIssuances") {
          return async (records: readonly IssuanceRecord[]) => {
            if (++commits > 1) throw new Err("ERR_STORE_UNREACHABLE", "the PostgreSQL server cannot be reached (simulated)");
            return target.commitIssuances(records);
          };
        }
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const svc = new IssuanceService({ store, config: ws.config, clock, passphrase: "pw" });
    const codes = Array.from({ length: 8 }, (_, i) => makeResidentCode(`00000002${String(i).padStart(2, "0")}`));
    await ws.store.upsertResidents(codes.map((residentCode) => ({ ...takahashi, residentCode })));
    const key = spki();
    let read = 0;
    async function* lines() {
      // far more lines than the store could take: a batch that went on would read them all
      for (let line = 1; line <= 5000; line++) {
        read++;
        yield { line, value: { applicationId: `lost-${line}`, residentCode: codes[line % codes.length]!, type: "authentication", publicKey: cardKeyVariant(key, line).toString("base64") } };
      }
    }
    const issued: string[] = [];
    const err = await svc.issueBatch(lines(), { onIssued: (c) => issued.push(c.serial), commitEvery: 4, concurrency: 8 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { issued: 4 } });
    expect((err as Error).message).toMatch(/^the store could not be reached at line \d+ \(the PostgreSQL server cannot be reached \(simulated\)\): the batch stopped after reading \d+ lines, 4 certificates issued/);
    expect(issued).toHaveLength(4);
    expect(read).toBeLessThan(100);
  });

  it("in a batch, signs again a certificate whose registry record changed before its commit, and gives up after three tries", async () => {
    // A store whose commit answers "registry-changed" the first `refusals` times a resident's record comes.
    const refusals = new Map<string, number>();
    const store = new Proxy(ws.store, {
      get(target, prop, recv) {
        if (prop !== "commitIssuances") {
          const v = Reflect.get(target, prop, recv);
          return typeof v === "function" ? v.bind(target) : v; // the store's private fields need the store as this
        }
        return async (records: readonly IssuanceRecord[]) => {
          const left = records.filter((r) => (refusals.get(r.residentCode) ?? 0) === 0);
          const done = new Map((await target.commitIssuances(left)).map((res, i) => [left[i]!, res]));
          return records.map((r) => {
            const n = refusals.get(r.residentCode) ?? 0;
            if (n === 0) return done.get(r)!;
            refusals.set(r.residentCode, n - 1);
            return { status: "stale" as const, why: "registry-changed" as const };
          });
        };
      },
    });
    const svc = new IssuanceService({ store, config: ws.config, clock, passphrase: "pw" });
    const codes = [makeResidentCode("0000000125"), makeResidentCode("0000000126"), makeResidentCode("0000000127")];
    await ws.store.upsertResidents(codes.map((residentCode) => ({ ...takahashi, residentCode })));
    refusals.set(codes[0]!, 1).set(codes[1]!, 2).set(codes[2]!, 3);
    const key = spki();
    async function* lines() {
      let line = 0;
      for (const residentCode of codes) yield { line: ++line, value: { residentCode, type: "authentication", publicKey: cardKeyVariant(key, line).toString("base64") } };
    }
    const issued: string[] = [];
    const res = await svc.issueBatch(lines(), { onIssued: (c) => issued.push(c.residentCode) });
    expect(issued.sort()).toEqual([codes[0], codes[1]]);
    expect(res).toMatchObject({ issued: 2, failed: 1, errors: [{ line: 3, code: "ERR_REGISTRY_BEHIND" }] });
    for (const [i, n] of [[0, 1], [1, 1], [2, 0]] as const) {
      expect((await ws.store.findCertificates({ residentCode: codes[i]!, type: "authentication" })).length).toBe(n);
    }
  });
});

describe("group commit", () => {
  it("commits concurrent issue() calls together; a refused application fails only its own call", async () => {
    const codes = ["0000000131", "0000000132", "0000000133", "0000000134", "0000000135"].map(makeResidentCode);
    await ws.store.upsertResidents(codes.map((residentCode) => ({ ...takahashi, residentCode })));
    // The first commit is held until every certificate is signed, so the other four wait for it together.
    const groups: number[] = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const store = new Proxy(ws.store, {
      get(target, key) {
        if (key === "commitIssuances") {
          return async (records: IssuanceRecord[]) => {
            groups.push(records.length);
            if (groups.length === 1) await held;
            return target.commitIssuances(records);
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const grouped = new IssuanceService({ store, config: ws.config, clock, passphrase: "pw" });
    const prepare = grouped.prepare.bind(grouped);
    let prepared = 0;
    grouped.prepare = async (app) => {
      const rec = await prepare(app);
      if (++prepared === codes.length) setImmediate(release);
      return rec;
    };
    // two counters gave the same application id to two residents: whichever commits second is refused
    const apps = codes.map((residentCode, i) => ({ residentCode, type: "signature" as const, publicKey: spki(), applicationId: i >= 3 ? "counter-7:0001" : `counter-7:10${i}` }));
    const out = await Promise.allSettled(apps.map((a) => grouped.issue(a)));
    expect(groups).toEqual([1, 4]);
    const refused = out.flatMap((o, i) => (o.status === "rejected" ? [{ i, code: (o.reason as JpkiError).code }] : []));
    expect(refused).toHaveLength(1);
    expect(refused[0]!.code).toBe("ERR_APPLICATION_INVALID");
    expect(refused[0]!.i).toBeGreaterThanOrEqual(3);
    for (const o of out) if (o.status === "fulfilled") expect((await ws.store.getCertificate(o.value.serial))?.residentCode).toBe(o.value.residentCode);
    expect(out.filter((o) => o.status === "fulfilled")).toHaveLength(4);
  });
});

describe("durability: a certificate is handed out only once its commit is on disk", () => {
  it("issue() and a batch's onIssued wait for a syncCommitted begun after the commit", async () => {
    const events: string[] = [];
    const store = new Proxy(ws.store, {
      get(target, key) {
        if (key === "commitIssuances") {
          return async (records: IssuanceRecord[]) => {
            const r = await target.commitIssuances(records);
            events.push(`commit ${records.length}`);
            return r;
          };
        }
        if (key === "syncCommitted") {
          return async () => {
            events.push("sync begins");
            await new Promise((r) => setTimeout(r, 5));
            events.push("synced");
          };
        }
        const v = Reflect.get(target, key) as unknown;
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const svc = new IssuanceService({ store, config: ws.config, clock, passphrase: "pw" });
    await svc.issue({ residentCode: takahashi.residentCode, type: "authentication", publicKey: spki() });
    events.push("issued");
    expect(events).toEqual(["commit 1", "sync begins", "synced", "issued"]);

    events.length = 0;
    const key = spki().toString("base64");
    async function* lines() {
      for (let i = 1; i <= 3; i++) yield { line: i, value: { applicationId: `sync-${i}`, residentCode: takahashi.residentCode, type: "authentication", publicKey: key } };
    }
    const res = await svc.issueBatch(lines(), { commitEvery: 3, onIssued: () => events.push("issued") });
    expect(res.issued).toBe(3);
    expect(events).toEqual(["commit 3", "sync begins", "synced", "issued", "issued", "issued"]);
  });
});

describe("an application id after the resident's code changed (住民票コード変更)", () => {
  it("is the same person's: a re-run under the old code answers the certificate issued, another resident is still refused", async () => {
    const { changeResidentCode } = await import("../registry/counter.js");
    const { NoticeIngestor } = await import("./notices.js");
    const old = makeResidentCode("0000000321");
    const renewed = makeResidentCode("0000000322");
    await ws.store.upsertResidents([{ ...takahashi, residentCode: old }, { ...takahashi, residentCode: makeResidentCode("0000000323") }]);
    const key = spki();
    const app = { residentCode: old, type: "authentication" as const, publicKey: key, applicationId: "counter-9:code-change" };
    const first = await service.issue(app);
    // the registry side changes the code; the CA side applies its notice and re-links the certificate
    const changed = await changeResidentCode(ws.store, old, renewed, { now: clock.now() });
    async function* feed() {
      yield { line: 1, value: { ...changed.notice! } as unknown as Record<string, unknown> };
    }
    const applied = await new NoticeIngestor({ store: ws.store, clock }).ingest(feed());
    expect(applied.applied).toBe(1);
    expect((await ws.store.getCertificate(first.serial))?.residentCode).toBe(renewed);
    const again = await service.issue(app);
    expect(again).toMatchObject({ alreadyIssued: true, serial: first.serial });
    await expect(service.issue({ ...app, residentCode: makeResidentCode("0000000323") })).rejects.toMatchObject({ code: "ERR_APPLICATION_INVALID" });
  });
});

describe("an application id whose certificate has since been revoked", () => {
  it("is refused (ERR_APPLICATION_CERT_REVOKED), alone and in a batch, and issues nothing new (was: the revoked certificate, as already issued)", async () => {
    const code = makeResidentCode("0000000331");
    await ws.store.upsertResidents([{ ...takahashi, residentCode: code }]);
    const app = { residentCode: code, type: "signature" as const, publicKey: spki(), applicationId: "counter-3:lost-card" };
    const first = await service.issue(app);
    await ws.store.revoke({ serial: first.serial, revokedAt: clock.now(), reason: 1, source: "manual" });
    const e = await service.issue(app).then(() => undefined, (x: JpkiError) => x);
    expect(e).toMatchObject({ code: "ERR_APPLICATION_CERT_REVOKED", details: { serial: first.serial, reason: "keyCompromise" } });
    expect(e!.message).toContain(first.serial);
    expect(e!.message).not.toContain(code);
    async function* lines() {
      yield { line: 1, value: { residentCode: code, type: "signature", publicKey: app.publicKey.toString("base64"), applicationId: app.applicationId } };
    }
    const res = await service.issueBatch(lines());
    expect(res).toMatchObject({ issued: 0, alreadyIssued: 0, failed: 1 });
    expect(res.errors[0]).toMatchObject({ line: 1, code: "ERR_APPLICATION_CERT_REVOKED" });
    expect((await ws.store.findCertificates({ residentCode: code })).map((c) => c.serial)).toEqual([first.serial]);
  });
});

describe("the counter id (the subject CN's last 9 characters)", () => {
  it("is refused unless 1–9 letters or digits, before anything is signed (was: checked in batch lines only, so 'jpki issue --counter' and 'card issue --counter' put 'CN=evil,O' into the subject)", async () => {
    const code = makeResidentCode("0000000341");
    await ws.store.upsertResidents([{ ...takahashi, residentCode: code }]);
    for (const counterId of ["CN=evil,O=x", "13101\u202e01", "", "1310160001"]) {
      await expect(service.issue({ residentCode: code, type: "signature", publicKey: spki(), counterId })).rejects.toMatchObject({ code: "ERR_APPLICATION_INVALID", message: expect.stringContaining("counterId must be 1–9 letters or digits") });
    }
    expect(await ws.store.findCertificates({ residentCode: code })).toEqual([]);
    const ok = await service.issue({ residentCode: code, type: "signature", publicKey: spki(), counterId: "C7" });
    expect(describeCertificate(ok.der).subject.rdns.at(-1)!.value).toMatch(/^\d{19}C70000000$/);
  });
});

describe("check what you sign", () => {
  // A signer that does not verify its own output (a token, say) returning a wrong signature: the certificate
  // must be refused before anything is stored. OpenSSL's software signer verifies inside the RSA operation.
  it("refuses a certificate whose signature does not verify when the signer is not self-verifying", async () => {
    const { CertificationAuthority } = await import("./authority.js");
    const { SoftwareSigner } = await import("../pki/signer.js");
    const { decryptPrivateKey } = await import("../pki/keys.js");
    const rec = (await ws.store.getCa("13-sig"))!;
    const real = new SoftwareSigner(decryptPrivateKey(rec.encryptedKeyPem, "pw", "the CA key"));
    const faulty = (selfVerifying: boolean) => ({
      algorithmIdentifier: real.algorithmIdentifier,
      spki: real.spki,
      selfVerifying,
      sign: async (data: Uint8Array | readonly Uint8Array[]) => {
        const sig = await real.sign(data);
        sig[100]! ^= 1; // a fault in the token
        return sig;
      },
      signDigest: async (sha256: Uint8Array) => {
        const sig = await real.signDigest(sha256);
        sig[100]! ^= 1;
        return sig;
      },
    });
    const key = spki();
    const certify = async (signer: ReturnType<typeof faulty>) => {
      const ca = CertificationAuthority.withSigner(rec, signer, ws.config);
      const c = await ca.certify({ type: "signature", municipalityCode: "131016", municipalityRomaji: "Chiyoda-ku", fourItems: takahashi.fourItems, spki: key, requestedAt: clock.now(), counterId: "131016000", notAfter: new Date("2030-01-01T00:00:00Z") });
      return ca.assertIssued(c, key);
    };
    await expect(certify(faulty(false))).rejects.toMatchObject({ code: "ERR_PROFILE_VIOLATION" });
    // The same fault from a signer that claims to verify itself goes through: the flag is what decides, so
    // only signers whose every signature is checked (OpenSSL's RSA) may set it.
    await expect(certify(faulty(true))).resolves.toBeUndefined();
  });
});

describe("check what you sign: the fields", () => {
  // A self-verifying signer's certificates are not verified again, so these comparisons are all that stands
  // between a certificate that is not the one meant (another issuer, key or serial) and the store.
  it("refuses a certificate that does not carry the CA's name as issuer, the key meant, or the serial meant", async () => {
    const { CertificationAuthority } = await import("./authority.js");
    const { SoftwareSigner } = await import("../pki/signer.js");
    const { decryptPrivateKey } = await import("../pki/keys.js");
    const { certificateParts } = await import("../pki/der.js");
    const rec = (await ws.store.getCa("13-sig"))!;
    const ca = CertificationAuthority.withSigner(rec, new SoftwareSigner(decryptPrivateKey(rec.encryptedKeyPem, "pw", "the CA key")), ws.config);
    const key = spki();
    const c = await ca.certify({ type: "signature", municipalityCode: "131016", municipalityRomaji: "Chiyoda-ku", fourItems: takahashi.fourItems, spki: key, requestedAt: clock.now(), counterId: "131016000", notAfter: new Date("2030-01-01T00:00:00Z") });
    await expect(ca.assertIssued(c, key)).resolves.toBeUndefined();
    const refused = expect.objectContaining({ code: "ERR_PROFILE_VIOLATION" });
    await expect(ca.assertIssued(c, spki()), "another key").rejects.toEqual(refused);
    const serial = Buffer.from(c.serial);
    serial[serial.length - 1]! ^= 1;
    await expect(ca.assertIssued({ ...c, serial }, key), "another serial").rejects.toEqual(refused);
    await expect(ca.assertIssued({ ...c, serial: Buffer.concat([Buffer.from([1]), c.serial]) }, key), "a longer serial").rejects.toEqual(refused);
    // One octet of the issuer name changed in the DER (its last, inside the CN's value)
    const parts = certificateParts(c.der);
    const at = c.der.indexOf(parts.issuer) + parts.issuer.length - 1;
    const otherIssuer = Buffer.from(c.der);
    otherIssuer[at]! ^= 1;
    await expect(ca.assertIssued({ ...c, der: otherIssuer }, key), "another issuer").rejects.toEqual(refused);
    await expect(ca.assertIssued({ ...c, der: c.der.subarray(0, 200) }, key), "truncated").rejects.toEqual(refused);
    // assertCarries, what issuance calls for a self-verifying signer instead of awaiting assertIssued: the same verdicts, thrown
    expect(() => ca.assertCarries(c, key)).not.toThrow();
    expect(() => ca.assertCarries(c, spki()), "another key").toThrow(refused);
    expect(() => ca.assertCarries({ ...c, serial }, key), "another serial").toThrow(refused);
    expect(() => ca.assertCarries({ ...c, serial: Buffer.concat([Buffer.from([1]), c.serial]) }, key), "a longer serial").toThrow(refused);
    expect(() => ca.assertCarries({ ...c, der: otherIssuer }, key), "another issuer").toThrow(refused);
    expect(() => ca.assertCarries({ ...c, der: c.der.subarray(0, 200) }, key), "truncated").toThrow(refused);
  });

  it("is made on every certificate a self-verifying signer signs, before anything is stored (issuance calls assertCarries, not assertIssued)", async () => {
    const { CertificationAuthority } = await import("./authority.js");
    const { JpkiError } = await import("../errors.js");
    const code = makeResidentCode("0000000342");
    await ws.store.upsertResidents([{ ...takahashi, residentCode: code }]);
    const s = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" });
    expect((await s.authority("13", "signature")).signer.selfVerifying).toBe(true);
    const spy = vi.spyOn(CertificationAuthority.prototype, "assertCarries").mockImplementation(() => {
      throw new JpkiError("ERR_PROFILE_VIOLATION", "refused by the test");
    });
    try {
      await expect(s.issue({ residentCode: code, type: "signature", publicKey: spki() })).rejects.toMatchObject({ code: "ERR_PROFILE_VIOLATION" });
      const batch = await s.issueBatch((async function* () { yield { line: 1, value: { residentCode: code, type: "signature", publicKey: spki().toString("base64") } }; })());
      expect(batch).toMatchObject({ issued: 0, failed: 1, errors: [{ line: 1, code: "ERR_PROFILE_VIOLATION" }] });
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
    expect(await ws.store.findCertificates({ residentCode: code })).toEqual([]);
  });
});

describe("a clock outside the CA's validity (stepped back before the CA was made, or ahead past its end)", () => {
  it("is refused with a typed error: no certificate that starts before its CA or ends before it starts", async () => {
    const jumpy = new FixedClock("2026-04-01T00:00:00Z");
    const s = new IssuanceService({ store: ws.store, config: ws.config, clock: jumpy, passphrase: "pw" });
    const before = (await ws.store.findCertificates({ status: "all" })).length;
    for (const at of ["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"]) {
      jumpy.set(at);
      const e = await s.issue({ residentCode: takahashi.residentCode, type: "signature", publicKey: spki() }).then(
        (c) => ({ code: "issued", notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString() }),
        (err: JpkiError) => ({ code: err.code }),
      );
      expect(e, at).toEqual({ code: "ERR_CLOCK_OUTSIDE_CA_VALIDITY" });
    }
    expect((await ws.store.findCertificates({ status: "all" })).length).toBe(before);
  });
});

describe("parseApplication: personal data in a headerless CSV is not quoted back", () => {
  it("a record none of whose field names is known asks for the header row and quotes none; an identifier-shaped unknown name is quoted", () => {
    // The first application of a CSV without its header row: its values became the field names.
    const code = makeResidentCode("0000000031");
    const headerless = { [code]: code, signature: "signature", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA": "x" };
    let e: JpkiError | undefined;
    try {
      parseApplication(headerless, 2);
    } catch (x) {
      e = x as JpkiError;
    }
    expect(e?.code).toBe("ERR_APPLICATION_INVALID");
    expect(e?.message).toMatch(/^line 2: none of the application's field names is one we know \(is the CSV header row missing\?\)/);
    expect(e?.message).not.toContain(code);
    expect(() => parseApplication({ residentCode: code, publicKey: "x", colour: "red" })).toThrow(/unknown field "colour"/);
    expect(() => parseApplication({ residentCode: code, publicKey: "x", [code]: "1" })).toThrow(/unknown field \(a name that is not an identifier\)/);
  });
});

describe("IssuanceService across a rollover for a compromised key", () => {
  // Found by a helper: a long-lived service (a batch, a counter) kept signing with the generation it opened after
  // 'ca rollover --compromised' until it restarted — with the stolen key.
  it("lets the compromised generation go within a minute and issues from the new one; an ordinary rollover changes nothing until restart", async () => {
    const c = new FixedClock("2026-04-01T00:00:00Z");
    const w = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-issue-compromised-")), { clock: c });
    try {
      await initCas(w, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      const codes = [1, 2, 3, 4, 5].map((i) => makeResidentCode(`000000070${i}`));
      await w.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", status: "active" as const, fourItems: { name: "山田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "female" as const } })));
      const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
      const svc = new IssuanceService({ store: w.store, config: w.config, clock: c, passphrase: "pw" });
      const issue = async (i: number, type: "signature" | "authentication") => (await svc.issue({ residentCode: codes[i]!, type, publicKey: cardKeyVariant(spki, i * 2 + (type === "signature" ? 0 : 1)) })).caId;
      expect(await issue(0, "signature")).toBe("13-sig");
      expect(await issue(0, "authentication")).toBe("13-auth");
      const { rolloverCas } = await import("./rollover.js");
      await rolloverCas(w, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      await rolloverCas(w, { prefectureCode: "13", purposes: ["authentication"], passphrase: "pw" });
      c.advance(61_000);
      expect(await issue(1, "signature")).toBe("13-sig-g2");
      // the ordinary rollover: the generation opened goes on (both keys are valid), as documented
      expect(await issue(1, "authentication")).toBe("13-auth");
    } finally {
      await w.close();
    }
  });
});
