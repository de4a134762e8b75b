/**
 * `provider follow` against a hostile public side: an endpoint that answers with CRLs of the wrong key, old or
 * repeated numbers, deltas, stale or future CRLs, garbage, endless bodies, hangs, redirects, server errors and
 * contradictory 304s. Each answer is a typed error naming what was wrong, or a CRL used; nothing is ever un-revoked
 * and nothing is half-written. The public CA here is a key and a name made in the test, its CRLs built with
 * crl/builder.ts; the endpoint is an injected fetch or, where the transport itself is the attack, a loopback server.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { runInProcess } from "../../test/cli-in-process.js";
import { slowly } from "../../test/slow-body.js";
import { until } from "../../test/until.js";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { buildCrl, crlDer, type CrlEntryInput } from "../crl/builder.js";
import { deltaCrlIndicator } from "../crl/delta.js";
import { enumerated, explicit, extension, integerFromUnsigned, seq, time } from "../pki/der.js";
import { FixedClock } from "../pki/clock.js";
import { generateRsaKey } from "../pki/keys.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, crlDistributionPoints, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { parseCrl } from "../validation/crl.js";
import { parseCertificate } from "../validation/certificate.js";
import { checkGenerationNow, endpointFetch, followPublicCrls, watchPublicCrls } from "./follow.js";
import { initProvider, providerPaths, readProviderState, readTrustAnchors, trustPublicCas, untrustPublicCa, writeProviderState, type ProviderLink } from "./workspace.js";
import { CRL_REASON } from "../crl/reason.js";

/** A full disk where the paths matching `match` are written (store/files.ts writeFileAtomic); none by default. */
const diskFull = vi.hoisted(() => ({ match: undefined as RegExp | undefined }));
vi.mock("../store/files.js", async (original) => {
  const m = await original<typeof import("../store/files.js")>();
  return {
    ...m,
    writeFileAtomic: (path: string, ...rest: [string | Uint8Array | Iterable<Uint8Array>, number?]) => {
      if (diskFull.match?.test(path)) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
      return m.writeFileAtomic(path, ...rest);
    },
  };
});

const HOUR = 3600_000;
const T0 = Date.parse("2027-03-01T00:00:00Z");
const ENDPOINT = "http://jpki.example";
const PASS = "pw";
const TOKYO_SIG = encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]);

interface PublicCa {
  readonly signer: SoftwareSigner;
  readonly der: Buffer;
}

let tokyo: PublicCa;
/** a CA of the same name with another key: what an attacker who copied the name can sign with */
let impostor: PublicCa;
let template: string;

async function makeCa(): Promise<PublicCa> {
  const signer = new SoftwareSigner(await generateRsaKey(2048));
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: TOKYO_SIG,
    subject: TOKYO_SIG,
    spki: signer.spki,
    notBefore: new Date(T0 - 365 * 24 * HOUR),
    notAfter: new Date(T0 + 10 * 365 * 24 * HOUR),
    extensions: [
      extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
      extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(signer.spki))),
    ],
  });
  return { signer, der: assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs)) };
}

/** A CRL of Tokyo's signature CA (or of `by`), numbered `number`, issued at `at` for 24 hours. */
async function crl(number: number, entries: readonly CrlEntryInput[], o: { at?: number; nextUpdate?: number; by?: PublicCa; extra?: Buffer[] } = {}): Promise<Buffer> {
  const by = o.by ?? tokyo;
  const at = o.at ?? T0;
  return crlDer(
    await buildCrl({
      issuerName: TOKYO_SIG,
      authorityKeyId: keyIdentifier(by.signer.spki),
      number: BigInt(number),
      thisUpdate: new Date(at),
      nextUpdate: new Date(o.nextUpdate ?? at + 24 * HOUR),
      entries: [entries],
      signer: by.signer,
      ...(o.extra ? { extraExtensions: o.extra } : {}),
    }),
  );
}

/** A public certificate's revocation: serial 0b (bob's), a move (affiliationChanged). */
const BOB_REVOKED: CrlEntryInput = { serial: "0b", revokedAt: new Date(T0 - HOUR), reason: 3 };

const link = (serial: string, publicSerial: string): ProviderLink => ({
  serial,
  customerId: `c-${serial}`,
  issuedAt: T0 - 30 * 24 * HOUR,
  notAfter: T0 + 300 * 24 * HOUR,
  certificate: "",
  public: { caId: "13-sig", issuer: "C=JP, O=JPKI", serial: publicSerial, notAfter: T0 + 400 * 24 * HOUR, sha256: "00" },
  requestSha256: `r-${serial}`,
  keyGenerated: false,
  sameKey: false,
});

/** A provider workspace with two live links, alice (1a, on public 0a) and bob (1b, on public 0b), that has seen nothing yet. */
function provider(): string {
  const d = join(mkdtempSync(join(tmpdir(), "jpki-follow-")), "bank");
  cpSync(template, d, { recursive: true });
  return d;
}

type Answer = () => Response;
/**
 * An endpoint that answers each request with the next answer in turn (the last one from then on), recording what it
 * was asked. Answers are made afresh each time (a Response's body is read once).
 */
function endpoint(...answers: Answer[]) {
  const asked: Array<{ url: string; headers: Headers }> = [];
  const fetch: typeof globalThis.fetch = async (u, init) => {
    // CA certificates (a newer generation, follow.ts newerGeneration): none published here
    if (String(u).includes("/ca/")) return new Response(null, { status: 404 });
    asked.push({ url: String(u), headers: new Headers(init?.headers) });
    const a = answers[Math.min(asked.length - 1, answers.length - 1)]!;
    return a();
  };
  return { fetch, asked };
}
const ok = (body: Buffer, etag = `"${body.length}-${body.subarray(-8).toString("hex")}"`): Answer => () => new Response(body, { status: 200, headers: { etag } });
const status = (n: number, headers: Record<string, string> = {}, body: string | null = null): Answer => () => new Response(body, { status: n, headers });

/** Which of the provider's certificates its published CRL lists. */
const listed = (d: string) => ["1a", "1b"].filter((s) => parseCrl(readFileSync(providerPaths(d).crl)).entries.get(s));
const stateOf = (d: string) => readFileSync(providerPaths(d).state, "utf8");
/** No real waiting between attempts: the waits asked for are recorded. */
function sleeper() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

beforeAll(async () => {
  [tokyo, impostor] = await Promise.all([makeCa(), makeCa()]);
  template = join(mkdtempSync(join(tmpdir(), "jpki-follow-template-")), "bank");
  await initProvider({ dir: template, name: "Example Bank", endpoint: ENDPOINT, trustAnchors: [tokyo.der], passphrase: PASS, clock: new FixedClock(new Date(T0 - 60 * 24 * HOUR)) });
  const paths = providerPaths(template);
  writeProviderState(paths, { ...readProviderState(paths), links: [link("1a", "0a"), link("1b", "0b")] });
}, 60_000);

const follow = (d: string, fetch: typeof globalThis.fetch, at = T0 + HOUR, extra: Record<string, unknown> = {}) =>
  followPublicCrls({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(at)), fetch, bearerToken: "tok", ...extra });

describe("provider follow against a hostile endpoint", () => {
  it("revokes on the CA's CRL; refuses one by another key under the CA's name, and changes nothing", async () => {
    const d = provider();
    const forged = await crl(9, [], { by: impostor });
    const before = stateOf(d);
    const r = await follow(d, endpoint(ok(forged)).fetch);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID", message: expect.stringContaining("does not verify with the trusted CA's key") } });
    expect(JSON.parse(stateOf(d)).publicCrls).toEqual(JSON.parse(before).publicCrls);
    const real = await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED]))).fetch);
    expect(real.revoked).toEqual([expect.objectContaining({ serial: "1b", reason: "affiliationChanged" })]);
    expect(listed(d)).toEqual(["1b"]);
  });
});

describe("provider follow: what a CRL says", () => {
  it("dates the provider's entry by the pass, and carries the public revocation time as its invalidityDate (RFC 5280 §5.3.2), which openssl reads", async () => {
    const d = provider();
    // the pass comes a day after the public revocation (an hour before T0): the endpoint was down, say
    await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED]))).fetch, T0 + 23 * HOUR);
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", providerPaths(d).crl, "-noout", "-text"], { encoding: "utf8" });
    const entry = text.slice(text.indexOf("Serial Number: 1B"));
    expect(entry).toMatch(/Revocation Date: Mar {2}1 23:00:00 2027 GMT/);
    expect(entry).toMatch(/Invalidity Date:\s*\n\s*Feb 28 23:00:00 2027 GMT/);
    expect(entry).toMatch(/Affiliation Changed/);
  });

  it("never un-revokes: an older number is refused, the same number with other contents too, and a newer CRL that no longer lists a certificate leaves it revoked", async () => {
    const d = provider();
    const five = await crl(5, [BOB_REVOKED]);
    expect((await follow(d, endpoint(ok(five)).fetch)).revoked).toHaveLength(1);
    const published = readFileSync(providerPaths(d).crl);
    for (const [body, last] of [[await crl(4, []), "number 4, but number 5 was seen before:"], [await crl(5, [], { at: T0 + 60_000 }), "number 5 was seen before with other contents"]] as const) {
      const r = await follow(d, endpoint(ok(body)).fetch, T0 + 2 * HOUR);
      expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_ROLLBACK", message: expect.stringContaining(last) } });
      expect(r.crl).toBeUndefined();
      expect(readFileSync(providerPaths(d).crl)).toEqual(published);
    }
    const six = await follow(d, endpoint(ok(await crl(6, [], { at: T0 + 2 * HOUR }))).fetch, T0 + 3 * HOUR);
    expect(six.crls[0]).toMatchObject({ status: "downloaded", number: "6" });
    expect(JSON.parse(stateOf(d)).links.find((l: ProviderLink) => l.serial === "1b").revoked).toMatchObject({ publicCrlNumber: "5" });
    expect(listed(d)).toEqual(["1b"]);
  });

  it("refuses a delta CRL, whatever its base", async () => {
    const d = provider();
    await follow(d, endpoint(ok(await crl(5, []))).fetch);
    for (const base of [99n, 1n, 5n]) {
      const r = await follow(d, endpoint(ok(await crl(7, [BOB_REVOKED], { extra: [deltaCrlIndicator(base)] }))).fetch);
      expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID", message: expect.stringContaining("deltaCRLIndicator") } });
    }
    expect(JSON.parse(stateOf(d)).publicCrls["13-sig"]).toMatchObject({ number: "5" });
    expect(listed(d)).toEqual([]);
  });

  it("applies the revocations of a CRL dated after this host's clock, and says ERR_PUBLIC_CRL_CLOCK (the clock is behind)", async () => {
    const d = provider();
    await follow(d, endpoint(ok(await crl(5, []))).fetch);
    // this host's clock 3 hours behind the CA's: the CRL is the CA's (signed), and Bob's revocation in it counts
    const future = await follow(d, endpoint(ok(await crl(8, [BOB_REVOKED], { at: T0 + 3 * HOUR }))).fetch);
    expect(future.crls[0]).toMatchObject({ status: "downloaded", number: "8", error: { code: "ERR_PUBLIC_CRL_CLOCK", message: expect.stringContaining("after this host's clock") } });
    expect(future.revoked.map((r) => r.serial)).toEqual(["1b"]);
    expect(future.crlCause).toBe("revocations");
    expect(JSON.parse(stateOf(d)).publicCrls["13-sig"]).toMatchObject({ number: "8" });
    expect(listed(d)).toEqual(["1b"]);
    // the same CRL once the clock has caught up: current, no error, nothing revoked twice
    const later = await follow(d, endpoint(ok(await crl(8, [BOB_REVOKED], { at: T0 + 3 * HOUR }))).fetch, T0 + 3 * HOUR + 60_000);
    expect(later.crls[0]!.error).toBeUndefined();
    expect(later.revoked).toEqual([]);
  });

  it("refuses a complete CRL with a removeFromCRL entry (RFC 5280 §5.3.1: delta CRLs only), and un-revokes nothing", async () => {
    const d = provider();
    expect((await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED]))).fetch)).revoked).toHaveLength(1);
    const alice = { serial: "0a", revokedAt: new Date(T0 - HOUR), reason: 3 };
    const r = await follow(d, endpoint(ok(await crl(6, [{ ...BOB_REVOKED, reason: 8 }, alice], { at: T0 + HOUR }))).fetch, T0 + 2 * HOUR);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID", message: expect.stringContaining("removeFromCRL") } });
    expect(r.crls[0]!.error!.message).toContain("0b");
    expect(r.revoked).toEqual([]); // alice's revocation on the refused CRL does not count either: the CRL is not used
    expect(JSON.parse(stateOf(d)).publicCrls["13-sig"]).toMatchObject({ number: "5" });
    expect(JSON.parse(stateOf(d)).links.find((l: ProviderLink) => l.serial === "1b").revoked).toMatchObject({ publicCrlNumber: "5" });
    expect(listed(d)).toEqual(["1b"]);
  });

  it("refuses garbage, truncated DER and an empty body, and records nothing", async () => {
    const d = provider();
    const good = await crl(5, [BOB_REVOKED]);
    const before = stateOf(d);
    for (const body of [Buffer.from("<html>502 Bad Gateway</html>"), good.subarray(0, good.length - 40), Buffer.alloc(0), Buffer.concat([good, Buffer.from([0])])]) {
      const r = await follow(d, endpoint(ok(body)).fetch);
      expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID" } });
      expect(r.revoked).toEqual([]);
    }
    expect(JSON.parse(stateOf(d)).publicCrls).toEqual(JSON.parse(before).publicCrls);
    expect(JSON.parse(stateOf(d)).links.every((l: ProviderLink) => !l.revoked)).toBe(true);
  });

  it("counts an entry that names its CA in certificateIssuer (§5.3.3, and the entries after it), as enrolment's validation does; one naming another CA not", async () => {
    const d = provider();
    // RFC 5280 §5.3.3: certificateIssuer carries over to the entries that follow. The first names Tokyo (this CA):
    // alice's and bob's are Tokyo's revocations, and validateJpki (enrolment) reads them so. Read as another
    // issuer's, they were dropped: the public certificates revoked, the provider's still good.
    const gn = (name: Buffer) => seq(explicit(4, name));
    const entry = (serial: string, issuer?: Buffer) =>
      seq(integerFromUnsigned(Buffer.from(serial, "hex")), time(new Date(T0 - HOUR)), ...(issuer ? [seq(extension(EXT_OID.cRLReason, false, enumerated(3)), extension(EXT_OID.certificateIssuer, true, gn(issuer)))] : [seq(extension(EXT_OID.cRLReason, false, enumerated(3)))]));
    const withIssuer = (entries: Buffer[]) =>
      buildCrl({ issuerName: TOKYO_SIG, authorityKeyId: keyIdentifier(tokyo.signer.spki), number: 5n, thisUpdate: new Date(T0), nextUpdate: new Date(T0 + 24 * HOUR), entries: [{ der: Buffer.concat(entries), count: entries.length }], signer: tokyo.signer }).then(crlDer);
    const own = await withIssuer([entry("0a", TOKYO_SIG), entry("0b")]);
    const r = await follow(d, endpoint(ok(own)).fetch);
    expect(r.crls[0]).toMatchObject({ status: "downloaded", number: "5" });
    expect(r.revoked.map((x) => x.serial).sort()).toEqual(["1a", "1b"]);
    expect(listed(d)).toEqual(["1a", "1b"]);
    // entries said to be another CA's certificates are not this CA's revocations (crl-check.ts findEntry)
    const e = provider();
    const osaka = encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Osaka-fu"]]);
    const other = await follow(e, endpoint(ok(await withIssuer([entry("0a", osaka), entry("0b")]))).fetch);
    expect(other.revoked).toEqual([]);
  });

  it("uses a stale CRL's revocations, and says it is stale with a code of its own", async () => {
    const d = provider();
    // issued two days ago for a day: past its nextUpdate, yet what it lists is revoked
    const r = await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED], { at: T0 - 48 * HOUR }))).fetch);
    expect(r.revoked).toEqual([expect.objectContaining({ serial: "1b" })]);
    expect(listed(d)).toEqual(["1b"]);
    expect(r.crls[0]).toMatchObject({ status: "downloaded", stale: true, error: { code: "ERR_PUBLIC_CRL_STALE", message: expect.stringContaining(new Date(T0 - 24 * HOUR).toISOString()) } });
    // still stale on the 304 that follows
    const again = await follow(d, endpoint(status(304)).fetch);
    expect(again.crls[0]).toMatchObject({ status: "not-modified", stale: true, error: { code: "ERR_PUBLIC_CRL_STALE" } });
  });
});

describe("provider follow: what HTTP says", () => {
  it("a 304 that names another ETag than the one asked about is no answer about the CRL held: it asks again without validators", async () => {
    const d = provider();
    await follow(d, endpoint(ok(await crl(5, []), '"v5"')).fetch);
    const six = await crl(6, [BOB_REVOKED]);
    const e = endpoint(status(304, { etag: '"v6"' }), ok(six, '"v6"'));
    const r = await follow(d, e.fetch, T0 + 2 * HOUR);
    expect(e.asked.map((a) => a.headers.get("if-none-match"))).toEqual(['"v5"', null]);
    expect(r.crls[0]).toMatchObject({ status: "downloaded", number: "6" });
    expect(r.revoked).toHaveLength(1);
    // the same ETag on the 304 (or a weak one of it): the CRL held stands
    const same = await follow(d, endpoint(status(304, { etag: 'W/"v6"' })).fetch, T0 + 3 * HOUR);
    expect(same.crls[0]).toMatchObject({ status: "not-modified", number: "6" });
  });

  it("refuses a 304 to a first, unconditional request", async () => {
    const d = provider();
    const e = endpoint(status(304, { etag: '"x"' }));
    const r = await follow(d, e.fetch);
    expect(e.asked[0]!.headers.get("if-none-match")).toBeNull();
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("not conditional") } });
  });

  it("asks again after a 503, a 500 or a refused connection, waiting longer each time, and uses the answer", async () => {
    const d = provider();
    const s = sleeper();
    let n = 0;
    const refused = () => {
      n++;
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    };
    const e = endpoint(status(503, {}, "busy"), refused, status(500, {}, "oops"), ok(await crl(5, [BOB_REVOKED])));
    const r = await follow(d, e.fetch, T0 + HOUR, { sleep: s.sleep, retries: 3 });
    expect(n).toBe(1);
    expect(e.asked).toHaveLength(4);
    expect(r.crls[0]).toMatchObject({ status: "downloaded", number: "5" });
    expect(r.revoked).toHaveLength(1);
    expect(s.waits).toHaveLength(3);
    expect(s.waits[1]!).toBeGreaterThan(s.waits[0]!);
    expect(s.waits[2]!).toBeGreaterThan(s.waits[1]!);
  });

  it("gives up after its retries with the last status in a typed error, and records nothing", async () => {
    const d = provider();
    const s = sleeper();
    const before = stateOf(d);
    const e = endpoint(status(503, {}, "unavailable"));
    const r = await follow(d, e.fetch, T0 + HOUR, { sleep: s.sleep });
    expect(e.asked.length).toBeGreaterThan(1);
    expect(s.waits).toHaveLength(e.asked.length - 1);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("HTTP 503") } });
    const { links, publicCrls } = JSON.parse(stateOf(d));
    expect({ links, publicCrls }).toEqual((({ links, publicCrls }) => ({ links, publicCrls }))(JSON.parse(before)));
  });

  it("waits out a 429's Retry-After, but not one longer than it will wait", async () => {
    const d = provider();
    const s = sleeper();
    const e = endpoint(status(429, { "retry-after": "3" }), ok(await crl(5, [])));
    expect((await follow(d, e.fetch, T0 + HOUR, { sleep: s.sleep })).crls[0]).toMatchObject({ status: "downloaded" });
    expect(s.waits).toEqual([3000]);
    const s2 = sleeper();
    const long = endpoint(status(429, { "retry-after": "86400" }), ok(await crl(6, [])));
    const r = await follow(d, long.fetch, T0 + HOUR, { sleep: s2.sleep });
    expect(s2.waits).toEqual([]);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("HTTP 429") } });
  });

  it("does not follow a redirect, nor ask again after one", async () => {
    const d = provider();
    const s = sleeper();
    const e = endpoint(status(302, { location: "http://evil.example/13-sig.crl" }));
    const r = await follow(d, e.fetch, T0 + HOUR, { sleep: s.sleep });
    expect(e.asked).toHaveLength(1);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("HTTP 302") } });
  });

  it("refuses a 200 whose body is not the length its Content-Length says, cut short or going on past it, and records nothing", async () => {
    const d = provider();
    const before = stateOf(d);
    const five = await crl(5, [BOB_REVOKED]);
    const framed = (body: Buffer, length: number): Answer => () => new Response(body, { status: 200, headers: { "content-length": String(length) } });
    const short = await follow(d, endpoint(framed(five.subarray(0, -10), five.length)).fetch);
    expect(short.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining(`ended after ${five.length - 10} of the ${five.length} bytes its Content-Length says`) } });
    const long = await follow(d, endpoint(framed(Buffer.concat([five, Buffer.alloc(10)]), five.length)).fetch);
    expect(long.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining(`goes on past the ${five.length} bytes its Content-Length says`) } });
    expect(short.revoked.concat(long.revoked)).toEqual([]);
    const { links, publicCrls } = JSON.parse(stateOf(d));
    expect({ links, publicCrls }).toEqual((({ links, publicCrls }) => ({ links, publicCrls }))(JSON.parse(before)));
  });
});

describe("provider follow over a real socket", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => (s.closeAllConnections(), s.close(r)));
  });
  async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; hits: string[] }> {
    const hits: string[] = [];
    const s = createServer((req, res) => (hits.push(`${req.url} ${req.headers.authorization ?? ""}`), handler!(req, res)));
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits };
  }
  const followAt = async (d: string, url: string, extra: Record<string, unknown> = {}) => {
    const paths = providerPaths(d);
    const config = JSON.parse(readFileSync(paths.config, "utf8"));
    const { writeFileSync } = await import("node:fs");
    writeFileSync(paths.config, JSON.stringify({ ...config, endpoint: url }));
    return followPublicCrls({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(T0 + HOUR)), bearerToken: "tok", timeoutMs: 500, sleep: async () => undefined, ...extra });
  };


  it("gives up on an endpoint that never answers within the inactivity timeout, and on a body that never ends within the total", async () => {
    const d = provider();
    const hang = await serve(() => undefined);
    expect((await followAt(d, hang.url)).crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("no byte from the endpoint for 500 ms") } });
    // a byte every 50 ms keeps the inactivity timeout away for ever: the total ends it (an inactivity timeout of a
    // minute here: at 500 ms, a loaded host's pause of 450 ms between two bytes ended it first)
    const trickle = await serve((_q, res) => {
      res.writeHead(200, { "content-type": "application/pkix-crl" });
      res.write(Buffer.from([0x30, 0x84]));
      const i = setInterval(() => res.write(Buffer.from([0])), 50);
      res.on("close", () => clearInterval(i));
    });
    // (each message names the clock that ended its download: no bound on the time taken, which a loaded host can pass)
    expect((await followAt(d, trickle.url, { timeoutMs: 60_000, totalTimeoutMs: 1500 })).crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("not complete within 1500 ms") } });
    // a timeout is not asked again: a hanging endpoint would hold the workspace for retries × the timeout
    expect([hang.hits.length, trickle.hits.length]).toEqual([1, 1]);
  });

  it("follow --watch: a stop (SIGTERM) cuts a download in progress short and ends the pass cleanly, nothing of it written", { timeout: 30_000 }, async () => {
    const d = provider();
    const paths = providerPaths(d);
    const before = stateOf(d);
    const crlBefore = readFileSync(paths.crl);
    // a steady trickle of hours: never idle for the inactivity timeout, far inside the 10-minute total
    const body = await crl(5, [BOB_REVOKED]);
    let sent = 0;
    const slow = await serve(slowly(body, { pieces: 100_000, everyMs: 100, onPiece: (n) => (sent = n) }));
    writeFileSync(paths.config, JSON.stringify({ ...JSON.parse(readFileSync(paths.config, "utf8")), endpoint: slow.url }));
    const stop = new AbortController();
    const passes: Awaited<ReturnType<typeof followPublicCrls>>[] = [];
    const watching = watchPublicCrls({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(T0 + HOUR)), bearerToken: "tok", intervalMs: 60_000, signal: stop.signal, onPass: (r) => passes.push(r) });
    // some of the body has gone out (a fixed 300 ms after the request stood for it: on a loaded host, none had)
    await until(() => sent >= 3, "three pieces of the body sent");
    stop.abort();
    await watching;
    expect(passes).toEqual([expect.objectContaining({ stopped: true, crls: [{ caId: "13-sig", url: `${slow.url}/crl/13-sig.crl`, status: "stopped" }], revoked: [] })]);
    // nothing half-written: the state as it was (no ETag of a CRL not had), no public CRL file, the same provider CRL
    expect(stateOf(d)).toBe(before);
    expect(existsSync(join(paths.publicCrlDir, "13-sig.crl"))).toBe(false);
    expect(readFileSync(paths.crl).equals(crlBefore)).toBe(true);
    expect(slow.hits.length).toBe(1);
  });

  it("takes a CRL that comes slowly but steadily, for longer than the timeout: the timeout is of inactivity", async () => {
    const d = provider();
    const body = await crl(5, [BOB_REVOKED]);
    // Pieces of ⌈size/70⌉ bytes, one every 50 ms (a timer never fires early): the last comes ≥ 3050 ms after the
    // first, longer than the 3000 ms timeout, which once bounded the whole of it. The pieces counted out, not a clock
    // read, say the body took that long. (A 400 ms timeout left a loaded host 350 ms of slack between two pieces, and
    // 1000 ms still had a paused process — server and client share it — wake with the inactivity timer due before
    // the piece read.)
    const pieces = Math.ceil(body.length / Math.ceil(body.length / 70));
    expect(pieces * 50).toBeGreaterThan(3000 + 50);
    let sent = 0;
    const steady = await serve(slowly(body, { pieces: 70, everyMs: 50, onPiece: (n) => (sent = n) }));
    const r = await followAt(d, steady.url, { timeoutMs: 3000, totalTimeoutMs: 60_000 });
    expect(sent).toBe(pieces);
    expect(r.crls[0]).toMatchObject({ status: "downloaded", number: "5" });
    expect(r.revoked).toEqual([expect.objectContaining({ serial: "1b" })]);
  });

  it("gives up on a download that stalls midway once no byte has come for the inactivity timeout, and does not ask again", async () => {
    const d = provider();
    const before = stateOf(d);
    const body = await crl(5, [BOB_REVOKED]);
    // steady for 65 pieces, one every 50 ms (≥ 3200 ms, longer than the timeout), then nothing, the connection left open
    let sent = 0;
    const stall = await serve(slowly(body, { pieces: 90, everyMs: 50, stallAfter: 65, onPiece: (n) => (sent = n) }));
    const r = await followAt(d, stall.url, { timeoutMs: 3000, totalTimeoutMs: 600_000 });
    // the inactivity timeout's message (the total's names itself), and only once the stall began: every piece before
    // it went out, over longer than the timeout, so it is the stall, not the time the download had run, that counted
    expect(r.crls[0]).toMatchObject({
      status: "failed",
      error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("no byte from the endpoint for 3000 ms") },
    });
    expect(sent).toBe(65);
    expect(stall.hits).toHaveLength(1); // a failure once the answer has begun is not asked again
    expect(JSON.parse(stateOf(d)).publicCrls).toEqual(JSON.parse(before).publicCrls);
  });

  it("refuses by default a CRL declared larger than 256 MiB, before reading it", async () => {
    const d = provider();
    const huge = await serve((_q, res) => {
      res.writeHead(200, { "content-length": String(300 * 1024 ** 2) });
      res.write(Buffer.from([0x30, 0x84])); // and nothing more
    });
    const r = await followAt(d, huge.url, { timeoutMs: 2000 });
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining(`more than the ${256 * 1024 ** 2} bytes accepted`) } });
  });

  it("refuses a timeout that is no number of milliseconds > 0 before fetching anything", async () => {
    const d = provider();
    const never = await serve(() => undefined);
    for (const bad of [{ timeoutMs: 0 }, { totalTimeoutMs: -1 }, { timeoutMs: Number.NaN }]) {
      await expect(followAt(d, never.url, bad)).rejects.toMatchObject({ code: "ERR_USAGE" });
    }
    expect(never.hits).toEqual([]);
  });

  // The CLI's options reach the download: `jpki provider follow` run in-process on this workspace.
  const followCli = (d: string, ...args: string[]) => runInProcess(["--json", "provider", "follow", "--dir", d, ...args], { env: { JPKI_PASSPHRASE: PASS, JPKI_VERIFIER_TOKEN: "tok" }, cwd: tmpdir() });
  const pointAt = (d: string, url: string) => {
    const paths = providerPaths(d);
    writeFileSync(paths.config, JSON.stringify({ ...JSON.parse(readFileSync(paths.config, "utf8")), endpoint: url }));
  };

  it("jpki provider follow --total-timeout ends a download that keeps coming, long before the default 10 min (exit 17)", async () => {
    const d = provider();
    // an octet every 400 ms, minutes in all: never idle for the 10 s --timeout, so only the total can end it.
    // (It was ~10 s in all: twice on a loaded CI host the 500 ms timer ran late enough for the download to finish.)
    const steady = await serve(slowly(await crl(5, [BOB_REVOKED]), { pieces: 100_000, everyMs: 400 }));
    pointAt(d, steady.url);
    // No clock here: a download that came to its end would have been taken, so the failure, naming the total's
    // 500 ms, is the total timeout's doing.
    const r = await followCli(d, "--total-timeout", "0.5");
    expect(r.code, r.stderr).toBe(17);
    expect(JSON.parse(r.stdout).crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("not complete within 500 ms") } });
  });

  it("jpki provider follow --timeout and --max-crl-mib reach the download; bad values are ERR_USAGE naming the option, before anything is fetched", async () => {
    const d = provider();
    const big = Buffer.alloc(2 ** 20 + 1, 0x30);
    const server = await serve((_q, res) => res.writeHead(200, { "content-length": String(big.length) }).end(big));
    pointAt(d, server.url);
    const r = await followCli(d, "--max-crl-mib", "1");
    expect(JSON.parse(r.stdout).crls[0]).toMatchObject({ status: "failed", error: { message: expect.stringContaining(`more than the ${2 ** 20} bytes accepted`) } });
    const hang = await serve(() => undefined);
    pointAt(d, hang.url);
    const idle = await followCli(d, "--timeout", "0.3");
    expect(JSON.parse(idle.stdout).crls[0]).toMatchObject({ status: "failed", error: { message: expect.stringContaining("no byte from the endpoint for 300 ms") } });
    const hits = hang.hits.length;
    for (const [option, value] of [["--total-timeout", "0"], ["--total-timeout", "-1"], ["--max-crl-mib", "2048"], ["--timeout", "x"]] as const) {
      const bad = await followCli(d, option, value);
      expect(bad.code, `${option} ${value}`).toBe(2);
      expect(JSON.parse(bad.stderr).error).toMatchObject({ code: "ERR_USAGE", message: expect.stringContaining(`${option} "${value}"`) });
      const enrol = await runInProcess(["--json", "provider", "enrol", "--dir", d, "--request", "nowhere.p7s", option, value], { env: { JPKI_PASSPHRASE: PASS }, cwd: tmpdir() });
      expect(JSON.parse(enrol.stderr).error).toMatchObject({ code: "ERR_USAGE", message: expect.stringContaining(`${option} "${value}"`) });
    }
    expect(hang.hits.length).toBe(hits);
  });

  it("a full disk is ERR_FILE_UNUSABLE naming the file (exit 2), not ERR_INTERNAL; a revocation whose CRL could not be written is published by the next pass", async () => {
    const d = provider();
    // dated by the real clock, which the CLI runs on
    const body = await crl(5, [BOB_REVOKED], { at: Date.now() - 60_000 });
    const server = await serve((_q, res) => res.writeHead(200, { etag: '"5"' }).end(body));
    pointAt(d, server.url);
    const before = stateOf(d);
    try {
      diskFull.match = /state\.json$/;
      const full = await followCli(d);
      expect(full.code, full.stderr).toBe(2);
      expect(JSON.parse(full.stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("state.json could not be written") });
      expect(full.stderr).toContain("no space left");
      expect(stateOf(d)).toBe(before);
      diskFull.match = /provider\.crl(\.pem)?$/;
      const noCrl = await followCli(d);
      expect(noCrl.code, noCrl.stderr).toBe(2);
      expect(JSON.parse(noCrl.stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("the next 'jpki provider follow' publishes it") });
      expect(listed(d)).toEqual([]);
    } finally {
      diskFull.match = undefined;
    }
    const next = await followCli(d);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ crlCause: "unfinished" });
    expect(listed(d)).toEqual(["1b"]);
  });

  it("stops reading a body past the size it accepts, however fast it comes", async () => {
    const d = provider();
    const flood = await serve((_q, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (res.write(chunk));
      };
      res.on("drain", pump);
      pump();
    });
    const r = await followAt(d, flood.url, { maxCrlBytes: 1024 * 1024, timeoutMs: 5000 });
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("bytes accepted") } });
  });

  it("does not carry the token to another host on a redirect, nor go round a loop", async () => {
    const d = provider();
    const other = await serve((_q, res) => res.end("x"));
    const away = await serve((_q, res) => (res.writeHead(302, { location: `${other.url}/steal` }), res.end()));
    expect((await followAt(d, away.url)).crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("redirect") } });
    expect(other.hits).toEqual([]);
    const loop = await serve((q, res) => (res.writeHead(301, { location: q.url! }), res.end()));
    expect((await followAt(d, loop.url)).crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE" } });
    expect(loop.hits).toHaveLength(1);
  });
});

describe("provider follow: crash safety", () => {
  it("a pass killed after noting a revocation, before its CRL landed, is finished by the next; no CRL number is used twice", async () => {
    const d = provider();
    const five = ok(await crl(5, [BOB_REVOKED]), '"v5"');
    const paths = providerPaths(d);
    const oldCrl = readFileSync(paths.crl);
    const numberBefore = parseCrl(oldCrl).crlNumber!;
    const first = await follow(d, endpoint(five).fetch);
    expect(first.crl!.number).toBe(numberBefore + 1n);
    // what a kill between the state write and the CRL leaves: the revocation recorded, the old CRL in place
    writeFileSync(paths.crl, oldCrl);
    expect(listed(d)).toEqual([]);
    const r = await follow(d, endpoint(status(304, { etag: '"v5"' })).fetch, T0 + 2 * HOUR);
    expect(r).toMatchObject({ revoked: [], crlCause: "unfinished" });
    expect(listed(d)).toEqual(["1b"]);
    const reserved = BigInt(JSON.parse(stateOf(d)).crlNumber);
    expect(r.crl!.number).toBe(reserved);
    expect(r.crl!.number).toBeGreaterThan(numberBefore + 1n); // the number the killed pass reserved is burned, not reused
  });
});

describe("provider follow: a clock that was ahead", () => {
  it("publishes again, dated now, a provider CRL published while the clock was ahead (its thisUpdate still to come)", async () => {
    const d = provider();
    const five = ok(await crl(5, [], { at: T0 + 30 * 24 * HOUR }), '"v5"');
    // the clock 30 days ahead (and a public CRL current then): the provider CRL is due and dated that day
    const ahead = await follow(d, endpoint(five).fetch, T0 + 30 * 24 * HOUR);
    expect(ahead.crl).toBeDefined();
    expect(parseCrl(readFileSync(providerPaths(d).crl)).thisUpdate.getTime()).toBe(T0 + 30 * 24 * HOUR);
    // the clock put right: the CRL relying parties hold is not valid yet, so it goes again, dated now
    const back = await follow(d, endpoint(status(304, { etag: '"v5"' })).fetch, T0 + 2 * HOUR);
    expect(back.crlCause).toBe("clock");
    expect(parseCrl(readFileSync(providerPaths(d).crl)).thisUpdate.getTime()).toBe(T0 + 2 * HOUR);
    // and then not again: it is current
    expect((await follow(d, endpoint(status(304, { etag: '"v5"' })).fetch, T0 + 3 * HOUR)).crl).toBeUndefined();
  });
});

describe("provider follow: a provider CRL is renewed only while the public side is known", () => {
  it("lets its CRL go stale while a public CRL cannot be had or is past its nextUpdate, and renews it once one is current", async () => {
    const d = provider();
    const s = sleeper();
    const first = await follow(d, endpoint(ok(await crl(5, []), '"v5"')).fetch, T0 + HOUR);
    expect(first.crl).toBeDefined();
    const number = first.crl!.number;
    // 30 h later, past half its 48 h: due — but the endpoint answers 503 throughout
    const down = await follow(d, endpoint(status(503)).fetch, T0 + 31 * HOUR, { sleep: s.sleep });
    expect(down.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE" } });
    expect(down.crl).toBeUndefined();
    // the endpoint back, its newest CRL past its nextUpdate (stale): still not renewed
    const stale = await follow(d, endpoint(status(304, { etag: '"v5"' })).fetch, T0 + 32 * HOUR);
    expect(stale.crls[0]).toMatchObject({ stale: true, error: { code: "ERR_PUBLIC_CRL_STALE" } });
    expect(stale.crl).toBeUndefined();
    expect(parseCrl(readFileSync(providerPaths(d).crl)).crlNumber).toBe(number);
    // a current public CRL: renewed
    const back = await follow(d, endpoint(ok(await crl(6, [], { at: T0 + 31 * HOUR }), '"v6"')).fetch, T0 + 33 * HOUR);
    expect(back).toMatchObject({ crlCause: "due" });
    expect(back.crl!.number).toBeGreaterThan(number);
  });
});

describe("provider follow: the passphrase is checked first", () => {
  it("a wrong passphrase fails a pass before anything is fetched or recorded", async () => {
    const d = provider();
    const before = stateOf(d);
    const e = endpoint(ok(await crl(5, [BOB_REVOKED])));
    await expect(follow(d, e.fetch, T0 + HOUR, { passphrase: "wrong" })).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    expect(e.asked).toEqual([]);
    expect(stateOf(d)).toBe(before);
    expect(listed(d)).toEqual([]);
  });

  it("follow --watch with a wrong passphrase ends before its first pass fetches anything", async () => {
    const d = provider();
    const before = stateOf(d);
    const e = endpoint(ok(await crl(5, [BOB_REVOKED])));
    const passes: unknown[] = [];
    const stop = new AbortController();
    await expect(
      watchPublicCrls({ dir: d, passphrase: "wrong", clock: new FixedClock(new Date(T0 + HOUR)), fetch: e.fetch, intervalMs: 1000, signal: stop.signal, onPass: (r) => (passes.push(r), stop.abort()) }),
    ).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    expect(passes).toEqual([]);
    expect(e.asked).toEqual([]);
    expect(stateOf(d)).toBe(before);
  });
});

/** What a promise has come to once the microtasks and I/O callbacks now due have run: no timer is waited on. */
async function settledNow<T>(p: Promise<T>): Promise<{ value: T } | { error: unknown } | "pending"> {
  let out: { value: T } | { error: unknown } | "pending" = "pending";
  p.then(
    (value) => void (out = { value }),
    (error) => void (out = { error }),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return out;
}

describe("endpointFetch: the caller's signal ends the retries", () => {
  const URL = `${ENDPOINT}/ocsp/13-sig`;
  const refusedFetch = () => {
    const calls: AbortSignal[] = [];
    const fetch: typeof globalThis.fetch = async (_u, init) => {
      calls.push(init!.signal!);
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    };
    return { fetch, calls };
  };

  it("makes no further attempt once the caller aborted during a wait, and fails with the caller's reason", async () => {
    const f = refusedFetch();
    // the first wait is held until the test lets it go, the later ones pass at once
    let release = () => {};
    const waits: number[] = [];
    const sleep = (ms: number) => (waits.push(ms), waits.length === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve());
    const ctl = new AbortController();
    const p = endpointFetch({ fetch: f.fetch, sleep, retries: 2 })(URL, { method: "POST", body: Buffer.from("req"), signal: ctl.signal });
    await settledNow(p);
    expect(f.calls).toHaveLength(1);
    const reason = new DOMException("no answer within 10 ms", "TimeoutError");
    ctl.abort(reason);
    release(); // a sleep that does not heed the signal comes back all the same
    expect(await settledNow(p)).toEqual({ error: reason });
    expect(f.calls).toHaveLength(1);
    expect(waits).toHaveLength(1);
  });

  it("passes the caller's signal to the attempt's fetch, so a hanging attempt ends at the abort, not at its own timeout", async () => {
    const calls: AbortSignal[] = [];
    const hanging: typeof globalThis.fetch = (_u, init) =>
      new Promise((_, reject) => {
        calls.push(init!.signal!);
        init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason), { once: true });
      });
    const ctl = new AbortController();
    const p = endpointFetch({ fetch: hanging, timeoutMs: 60_000, sleep: async () => undefined })(URL, { method: "POST", signal: ctl.signal });
    expect(await settledNow(p)).toBe("pending");
    const reason = new DOMException("gave up", "TimeoutError");
    ctl.abort(reason);
    expect(await settledNow(p)).toEqual({ error: reason });
    expect(calls).toHaveLength(1);
  });

  it("cuts a Retry-After wait short on its own timer, and makes no attempt for a signal already aborted", async () => {
    const e = endpoint(status(503, { "retry-after": "20" }), ok(Buffer.from("late")));
    const ctl = new AbortController();
    const p = endpointFetch({ fetch: e.fetch })(URL, { signal: ctl.signal });
    await settledNow(p);
    expect(e.asked).toHaveLength(1);
    ctl.abort(new Error("done with it"));
    expect(await settledNow(p)).toEqual({ error: new Error("done with it") });
    expect(e.asked).toHaveLength(1);

    const f = refusedFetch();
    await expect(endpointFetch({ fetch: f.fetch, sleep: async () => undefined })(URL, { signal: AbortSignal.abort(new Error("already")) })).rejects.toThrow("already");
    expect(f.calls).toHaveLength(0);
  });
});

describe("provider untrust: a public CA generation whose key was declared compromised", () => {
  it("leaves trust/, its live linked certificates are revoked and on the provider CRL, and follow no longer asks for it", async () => {
    const d = provider();
    const at = new FixedClock(new Date(T0 + HOUR));
    await follow(d, endpoint(ok(await crl(5, []))).fetch);
    expect(readProviderState(providerPaths(d)).publicCrls["13-sig"]).toMatchObject({ number: "5" });
    const before = stateOf(d);
    await expect(untrustPublicCa({ dir: d, passphrase: "wrong", clock: at, caId: "13-sig" })).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    await expect(untrustPublicCa({ dir: d, passphrase: PASS, clock: at, caId: "13-auth" })).rejects.toMatchObject({ code: "ERR_CA_UNKNOWN" });
    expect(stateOf(d)).toBe(before);
    // the file deleted by hand instead: every pass fails on it, and says what to do
    const manual = provider();
    rmSync(join(providerPaths(manual).trustDir, "13-sig.pem"));
    const blind = await follow(manual, endpoint(ok(await crl(5, []))).fetch);
    expect(blind.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_CA_UNKNOWN", message: expect.stringContaining("'jpki provider untrust 13-sig'") } });
    expect((await untrustPublicCa({ dir: manual, passphrase: PASS, clock: at, caId: "13-sig" })).revoked).toEqual(["1a", "1b"]);
    // killed after the file went, before its CRL: run again, it publishes the CRL owed (it said "nothing to do")
    const killed = provider();
    const kp = providerPaths(killed);
    const ks = readProviderState(kp);
    rmSync(join(kp.trustDir, "13-sig.pem"));
    writeProviderState(kp, { ...ks, crlNumber: String(BigInt(ks.crlNumber) + 1n), links: ks.links.map((l) => ({ ...l, revoked: { at: T0, reason: CRL_REASON.cessationOfOperation } })) });
    const resumed = await untrustPublicCa({ dir: killed, passphrase: PASS, clock: at, caId: "13-sig" });
    expect(resumed).toMatchObject({ revoked: [], crl: expect.objectContaining({ entries: 2 }) });
    expect(listed(killed)).toEqual(["1a", "1b"]);
    const r = await untrustPublicCa({ dir: d, passphrase: PASS, clock: at, caId: "13-sig" });
    expect(r).toMatchObject({ caId: "13-sig", revoked: ["1a", "1b"], trusted: [], crl: expect.objectContaining({ entries: 2 }) });
    expect(existsSync(join(providerPaths(d).trustDir, "13-sig.pem"))).toBe(false);
    // what was seen of its CRLs went with the anchor: another certificate trusted under the id later starts afresh
    expect(readProviderState(providerPaths(d)).publicCrls).toEqual({});
    expect(existsSync(join(providerPaths(d).publicCrlDir, "13-sig.crl"))).toBe(false);
    expect(listed(d)).toEqual(["1a", "1b"]);
    expect(readProviderState(providerPaths(d)).links.map((l) => l.revoked?.reason)).toEqual([CRL_REASON.cessationOfOperation, CRL_REASON.cessationOfOperation]);
    // nothing live rests on it: follow asks nothing and fails nothing (it was ERR_CA_UNKNOWN on every pass)
    const f = await follow(d, endpoint(status(500)).fetch, T0 + 2 * HOUR);
    expect(f.crls).toEqual([]);
    const again = await runInProcess(["--json", "provider", "untrust", "13-sig", "--dir", d], { env: { JPKI_PASSPHRASE: PASS }, cwd: tmpdir() });
    expect(again.code).toBe(4);
    expect(JSON.parse(again.stderr).error).toMatchObject({ code: "ERR_CA_UNKNOWN", message: expect.stringContaining("nothing to do") });
  });
});

describe("provider CRL: never un-revoked by a state that lost a revocation", () => {
  it("refuses to publish a CRL without an entry the published one lists, when state.json is gone or restored from before the revocation", async () => {
    const d = provider();
    const paths = providerPaths(d);
    const beforeRevocation = readFileSync(paths.state);
    expect((await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED]))).fetch)).revoked).toHaveLength(1);
    const published = readFileSync(paths.crl);
    const { rmSync, writeFileSync } = await import("node:fs");
    // an old backup of state.json put back: bob's link is there, not revoked
    writeFileSync(paths.state, beforeRevocation);
    // a day on, the provider's CRL is due: the pass would publish one from this state
    const r = follow(d, endpoint(ok(await crl(6, [], { at: T0 + 24 * HOUR }))).fetch, T0 + 25 * HOUR);
    await expect(r).rejects.toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", message: expect.stringContaining("1b") });
    expect(readFileSync(paths.crl)).toEqual(published);
    // state.json gone altogether
    rmSync(paths.state);
    await expect(follow(d, endpoint(ok(await crl(6, []))).fetch, T0 + 25 * HOUR)).rejects.toMatchObject({ code: "ERR_WORKSPACE_CORRUPT" });
    expect(readFileSync(paths.crl)).toEqual(published);
  });
});

describe("provider: one file of trust/ that cannot be used", () => {
  const cliIn = (...args: string[]) => runInProcess(["--json", "provider", ...args], { env: { JPKI_PASSPHRASE: PASS }, cwd: tmpdir() });

  it("fails only what needs its CA: follow goes on for the others and names the file; its CA's CRL is not followed until 'trust' replaces it", async () => {
    const d = provider();
    const trustDir = providerPaths(d).trustDir;
    writeFileSync(join(trustDir, "27-sig.pem"), "not a certificate\n");
    const r = await follow(d, endpoint(ok(await crl(5, [BOB_REVOKED]))).fetch);
    expect(r.crls).toEqual([expect.objectContaining({ caId: "13-sig", status: "downloaded" })]);
    expect(r.revoked).toEqual([expect.objectContaining({ serial: "1b" })]);
    expect(r.skippedTrust).toEqual([{ file: "trust/27-sig.pem", caId: "27-sig", code: "ERR_DER_MALFORMED", message: expect.stringContaining("not a PEM or DER certificate") }]);
    // the commands that do not need it work, and say which file and why (stderr; skippedTrust in --json)
    const t = await cliIn("trust", "--dir", d, join(trustDir, "13-sig.pem"));
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ already: ["13-sig"], skippedTrust: [expect.objectContaining({ file: "trust/27-sig.pem" })] });
    expect(t.stderr).toMatch(/warning: trust\/27-sig\.pem was passed over \[ERR_DER_MALFORMED\]/);

    // the file of the CA the customers rest on: that CA's CRL fails with the file's error, nothing is fetched
    const good = readFileSync(join(trustDir, "13-sig.pem"));
    writeFileSync(join(trustDir, "13-sig.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const e = endpoint(ok(await crl(6, [BOB_REVOKED])));
    const blind = await follow(d, e.fetch, T0 + 2 * HOUR);
    expect(e.asked).toEqual([]);
    expect(blind.crls).toEqual([expect.objectContaining({ caId: "13-sig", status: "failed", error: { code: "ERR_DER_MALFORMED", message: expect.stringContaining("trust/13-sig.pem cannot be used") } })]);
    const viaCli = await cliIn("untrust", "14-sig", "--dir", d);
    expect(JSON.parse(viaCli.stderr).error.code).toBe("ERR_CA_UNKNOWN"); // not the bad file's error: untrust reads past it
    // trusting the CA's certificate again replaces the file
    writeFileSync(join(tmpdir(), `tokyo-${process.pid}.pem`), good);
    const mended = await cliIn("trust", "--dir", d, join(tmpdir(), `tokyo-${process.pid}.pem`));
    expect(mended.code, mended.stderr).toBe(0);
    expect(JSON.parse(mended.stdout)).toMatchObject({ added: ["13-sig"], trusted: ["13-sig"], skippedTrust: [expect.objectContaining({ file: "trust/27-sig.pem" })] });
    expect((await follow(d, endpoint(ok(await crl(6, [BOB_REVOKED]))).fetch, T0 + 3 * HOUR)).crls).toEqual([expect.objectContaining({ caId: "13-sig", status: "downloaded" })]);
  });
});

describe("provider follow --help", () => {
  it("lists the outcomes a pass can end with, each with its exit value: ERR_CA_UNKNOWN (4) and ERR_FILE_UNUSABLE (2) among them", async () => {
    const h = await runInProcess(["provider", "follow", "--help"], { env: {}, cwd: tmpdir() });
    expect(h.code).toBe(0);
    const text = h.stdout.replace(/\n\s+/g, " ");
    // each row: its value, what it means, its codes last; the next row starts with a value again
    const rows = text.slice(text.indexOf("Exit codes:")).split(/ (?=\d{1,3} {2}\S)/);
    const row = (code: string) => rows.find((r) => r.includes(`${code})`) || r.includes(`${code},`));
    expect(row("ERR_CA_UNKNOWN")).toMatch(/^4 {2}customers' certificates rest on a public CA whose trust\/<ca>\.pem is gone/);
    expect(row("ERR_FILE_UNUSABLE")).toMatch(/^2 {2}a file could not be written/);
    expect(row("ERR_PUBLIC_CA_COMPROMISED")).toMatch(/^17 {2}a trusted public CA generation was declared compromised/);
  });
});

/**
 * The public side lists a compromised generation's own certificate on that generation's own CRL (crl/arl.ts
 * ownCertificateEntry): what a provider trusting no successor of it can read — here, one trusting 13-sig alone.
 */
describe("provider follow: a trusted generation's own CRL lists its own certificate", () => {
  const own = () => parseCertificate(tokyo.der).serialHex;
  it("cACompromise: every certificate resting on it is revoked once, the compromise recorded as said by its own CRL, ERR_PUBLIC_CA_COMPROMISED until untrust; trust refuses it again", async () => {
    const d = provider();
    const entry = (reason: number): CrlEntryInput => ({ serial: own(), revokedAt: new Date(T0 - 2 * HOUR), reason });
    // another reason says nothing of the key: nothing is done
    const other = await follow(d, endpoint(ok(await crl(5, [entry(CRL_REASON.cessationOfOperation)]))).fetch);
    expect(other.compromise).toEqual([]);
    expect(other.revoked).toEqual([]);
    const found = await follow(d, endpoint(ok(await crl(6, [entry(CRL_REASON.cACompromise)]))).fetch, T0 + 2 * HOUR);
    expect(found.compromise).toEqual([
      { caId: "13-sig", successor: "13-sig", status: "compromised", linkSerial: own(), own: true, error: { code: "ERR_PUBLIC_CA_COMPROMISED", message: expect.stringContaining(`13-sig's own CRL #6, signed by that key, lists its own CA certificate ${own()} revoked for cACompromise`) } },
    ]);
    expect(found.compromise[0]!.error!.message).toContain("run 'jpki provider untrust 13-sig'");
    expect(found.revoked.map((r) => [r.serial, r.reason, r.public.reason, r.public.crlNumber])).toEqual([["1a", "cessationOfOperation", "cACompromise", "6"], ["1b", "cessationOfOperation", "cACompromise", "6"]]);
    expect(listed(d)).toEqual(["1a", "1b"]);
    expect(readProviderState(providerPaths(d)).compromisedCas).toEqual({ "13-sig": { successor: "13-sig", linkSerial: own(), crlNumber: "6", publicRevokedAt: T0 - 2 * HOUR, detectedAt: T0 + 2 * HOUR, own: true } });
    const again = await follow(d, endpoint(ok(await crl(6, [entry(CRL_REASON.cACompromise)]))).fetch, T0 + 3 * HOUR);
    expect(again.revoked).toEqual([]);
    expect(again.compromise).toEqual([expect.objectContaining({ caId: "13-sig", status: "compromised", own: true })]);
    await untrustPublicCa({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(T0 + 4 * HOUR)), caId: "13-sig" });
    await expect(trustPublicCas({ dir: d, trustAnchors: [tokyo.der] })).rejects.toMatchObject({ code: "ERR_PUBLIC_CA_COMPROMISED", message: expect.stringContaining("13-sig's own CRL #6") });
  });

  it("a CRL by another key under the CA's name that lists it is refused: nothing recorded, nothing revoked", async () => {
    const d = provider();
    const r = await follow(d, endpoint(ok(await crl(6, [{ serial: own(), revokedAt: new Date(T0 - 2 * HOUR), reason: CRL_REASON.cACompromise }], { by: impostor }))).fetch);
    expect(r.crls[0]).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID" } });
    expect(r.compromise).toEqual([]);
    expect(r.revoked).toEqual([]);
    expect(readProviderState(providerPaths(d)).compromisedCas).toBeUndefined();
  });
});

/**
 * A key rollover on the public side made here: 13-sig-g2 (the same name, another key; its id in its certificate's
 * ARL URL, as the public side writes it) and the NewWithOld link, 13-sig's key certified by 13-sig-g2's.
 */
describe("provider follow: a public CA generation declared compromised", () => {
  let g2: PublicCa;
  let g2Der: Buffer;
  async function certificate(o: { signer: SoftwareSigner; spki: Buffer; serial?: Buffer; extensions?: Buffer[] }): Promise<Buffer> {
    const tbs = encodeTbs({
      serial: o.serial ?? randomSerial(),
      signatureAlgorithm: o.signer.algorithmIdentifier,
      issuer: TOKYO_SIG,
      subject: TOKYO_SIG,
      spki: o.spki,
      notBefore: new Date(T0 - 30 * 24 * HOUR),
      notAfter: new Date(T0 + 5 * 365 * 24 * HOUR),
      extensions: o.extensions ?? [extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])), extension(EXT_OID.basicConstraints, true, basicConstraints(true)), extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(o.spki)))],
    });
    return assembleCertificate(tbs, o.signer.algorithmIdentifier, await o.signer.sign(tbs));
  }
  beforeAll(async () => {
    g2 = await makeCa();
    g2Der = await certificate({
      signer: g2.signer,
      spki: g2.signer.spki,
      extensions: [
        extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
        extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
        extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(g2.signer.spki))),
        extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(undefined, [`${ENDPOINT}/arl/13-sig-g2.crl`])),
      ],
    });
  });

  /** A provider trusting 13-sig and 13-sig-g2, its two links on 13-sig. */
  async function rolledProvider(): Promise<string> {
    const d = provider();
    await trustPublicCas({ dir: d, trustAnchors: [g2Der] });
    return d;
  }
  /** The endpoint after the rollover: each generation's CRL, and the link (or another answer for it). */
  function rolledEndpoint(o: { g1: Buffer; g2: Buffer; link: Answer }) {
    const asked: string[] = [];
    const fetch: typeof globalThis.fetch = async (u) => {
      const url = String(u);
      asked.push(url);
      if (url.endsWith("/crl/13-sig.crl")) return ok(o.g1)();
      if (url.endsWith("/crl/13-sig-g2.crl")) return ok(o.g2)();
      if (url.endsWith("/ca/13-sig.by-13-sig-g2.crt")) return o.link();
      return new Response(null, { status: 404 });
    };
    return { fetch, asked };
  }
  const g2Crl = (number: number, entries: readonly CrlEntryInput[]) => crl(number, entries, { by: g2 });
  const LINK_SERIAL = Buffer.from("4c1a", "hex");
  const newWithOld = (signer = g2.signer, spki = tokyo.signer.spki) => certificate({ signer, spki, serial: LINK_SERIAL });
  const LINK_REVOKED: CrlEntryInput = { serial: "4c1a", revokedAt: new Date(T0 - 2 * HOUR), reason: CRL_REASON.cACompromise };

  it("a sound generation: the link is checked and not listed; a listed link revokes every certificate resting on it, once, records it, and says ERR_PUBLIC_CA_COMPROMISED in every pass until untrust", async () => {
    const d = await rolledProvider();
    const link = await newWithOld();
    const sound = await follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(1, []), link: ok(link) }).fetch);
    // 13-sig-g2's CRL is fetched for the check though no customer rests on it
    expect(sound.crls.map((c) => [c.caId, c.status])).toEqual([["13-sig", "downloaded"], ["13-sig-g2", "downloaded"]]);
    expect(sound.compromise).toEqual([{ caId: "13-sig", successor: "13-sig-g2", status: "sound", linkSerial: "4c1a" }]);
    expect(sound.revoked).toEqual([]);

    // the state write fails (as a kill before it would leave things): nothing counts, the next pass finds it again
    const before = stateOf(d);
    diskFull.match = /state\.json$/;
    try {
      await expect(follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(2, [LINK_REVOKED]), link: ok(link) }).fetch, T0 + 2 * HOUR)).rejects.toMatchObject({ code: "ERR_FILE_UNUSABLE" });
    } finally {
      diskFull.match = undefined;
    }
    expect(stateOf(d)).toBe(before);
    const found = await follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(2, [LINK_REVOKED]), link: ok(link) }).fetch, T0 + 2 * HOUR);
    expect(found.compromise).toEqual([expect.objectContaining({ caId: "13-sig", status: "compromised", linkSerial: "4c1a", error: expect.objectContaining({ code: "ERR_PUBLIC_CA_COMPROMISED", message: expect.stringContaining("jpki provider untrust 13-sig") }) })]);
    expect(found.revoked.map((r) => [r.serial, r.reason, r.public.reason, r.public.crlNumber])).toEqual([["1a", "cessationOfOperation", "cACompromise", "2"], ["1b", "cessationOfOperation", "cACompromise", "2"]]);
    expect(listed(d)).toEqual(["1a", "1b"]);
    expect(readProviderState(providerPaths(d)).compromisedCas).toEqual({ "13-sig": { successor: "13-sig-g2", linkSerial: "4c1a", crlNumber: "2", publicRevokedAt: T0 - 2 * HOUR, detectedAt: T0 + 2 * HOUR } });
    // the next pass: nothing revoked again, no link asked again, still said
    const e = rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(2, [LINK_REVOKED]), link: ok(link) });
    const again = await follow(d, e.fetch, T0 + 3 * HOUR);
    expect(again.revoked).toEqual([]);
    expect(e.asked.some((u) => u.includes("/ca/13-sig.by-"))).toBe(false);
    expect(again.compromise).toEqual([expect.objectContaining({ caId: "13-sig", status: "compromised" })]);
    // untrust confirms: the record stays, nothing is said any more, and trust will not take it back
    await untrustPublicCa({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(T0 + 4 * HOUR)), caId: "13-sig" });
    expect((await follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(2, [LINK_REVOKED]), link: ok(link) }).fetch, T0 + 5 * HOUR)).compromise).toEqual([]);
    expect(readProviderState(providerPaths(d)).compromisedCas?.["13-sig"]).toBeDefined();
    await expect(trustPublicCas({ dir: d, trustAnchors: [tokyo.der] })).rejects.toMatchObject({ code: "ERR_PUBLIC_CA_COMPROMISED" });
  });

  it("a successor's CRL past its nextUpdate (or dated ahead of this clock) that does not list the link is no 'sound': the check fails with its code and the CRL's date; listing it, it counts", async () => {
    const d = await rolledProvider();
    const link = await newWithOld();
    // 13-sig's own CRL is current; 13-sig-g2's newest ran out an hour before the pass
    const stale = await follow(d, rolledEndpoint({ g1: await crl(5, [], { at: T0 }), g2: await crl(1, [], { by: g2, at: T0 - 24 * HOUR, nextUpdate: T0 }), link: ok(link) }).fetch);
    expect(stale.compromise).toEqual([
      { caId: "13-sig", successor: "13-sig-g2", status: "failed", linkSerial: "4c1a", error: { code: "ERR_PUBLIC_CRL_STALE", message: expect.stringContaining(`13-sig-g2 the endpoint gives (#1), which would say so, was due to be replaced at ${new Date(T0).toISOString()}`) } },
    ]);
    expect(stale.revoked).toEqual([]);
    const ahead = await follow(d, rolledEndpoint({ g1: await crl(5, [], { at: T0 }), g2: await crl(2, [], { by: g2, at: T0 + 5 * HOUR }), link: ok(link) }).fetch);
    expect(ahead.compromise).toEqual([expect.objectContaining({ status: "failed", error: expect.objectContaining({ code: "ERR_PUBLIC_CRL_CLOCK" }) })]);
    // enrolment's own check (checkGenerationNow) reads it alike; a stale CRL that lists the link records the compromise
    const paths = providerPaths(d);
    const trusted = readTrustAnchors(paths).trusted;
    const pair = { ca: trusted.find((t) => t.caId === "13-sig")!, successor: trusted.find((t) => t.caId === "13-sig-g2")! };
    const state = readProviderState(paths);
    const now = new FixedClock(new Date(T0 + HOUR));
    const e = (g2: Buffer) => ({ fetch: rolledEndpoint({ g1: Buffer.alloc(0), g2, link: ok(link) }).fetch, bearerToken: "tok" });
    const unknown = await checkGenerationNow(paths, ENDPOINT, pair, state.publicCrls["13-sig-g2"], now, e(await crl(3, [], { by: g2, at: T0 - 24 * HOUR, nextUpdate: T0 })));
    expect(unknown.check).toMatchObject({ status: "failed", error: { code: "ERR_PUBLIC_CRL_STALE" } });
    expect(unknown.record).toBeUndefined();
    const listedStale = await checkGenerationNow(paths, ENDPOINT, pair, unknown.seen, now, e(await crl(4, [LINK_REVOKED], { by: g2, at: T0 - 24 * HOUR + 1000, nextUpdate: T0 })));
    expect(listedStale.check).toMatchObject({ status: "compromised", linkSerial: "4c1a" });
    expect(listedStale.record).toMatchObject({ successor: "13-sig-g2", linkSerial: "4c1a", crlNumber: "4" });
  });

  it("a newer generation the endpoint publishes and the provider does not trust is a warning (newerGenerations), linked when the trusted key certifies its key; nothing else changes", async () => {
    const d = provider(); // trusts 13-sig alone
    const oldWithNew = await certificate({ signer: tokyo.signer, spki: g2.signer.spki });
    const serve =
      (link: Buffer | undefined, newer: Buffer = g2Der): typeof globalThis.fetch =>
      async (u) => {
        const url = String(u);
        if (url.endsWith("/crl/13-sig.crl")) return ok(await crl(5, []))();
        if (url.endsWith("/ca/13-sig-g2.crt")) return ok(newer)();
        if (url.endsWith("/ca/13-sig-g2.by-13-sig.crt") && link) return ok(link)();
        return new Response(null, { status: 404 });
      };
    const sha256 = createHash("sha256").update(g2Der).digest("hex");
    const linked = await follow(d, serve(oldWithNew));
    expect(linked.newerGenerations).toEqual([
      { caId: "13-sig", newer: "13-sig-g2", url: `${ENDPOINT}/ca/13-sig-g2.crt`, sha256, linked: true, linkSerial: parseCertificate(oldWithNew).serialHex, message: expect.stringContaining("an ordinary key rollover") },
    ]);
    expect(linked.newerGenerations![0]!.message).toContain("run 'jpki provider trust 13-sig-g2.pem'");
    expect(linked.crls).toEqual([expect.objectContaining({ caId: "13-sig", status: "downloaded" })]);
    expect(linked.compromise).toEqual([]);
    // no link, or one that 13-sig's key did not sign: not linked, and what that may mean is said
    for (const link of [undefined, await certificate({ signer: impostor.signer, spki: g2.signer.spki })]) {
      const r = await follow(d, serve(link));
      expect(r.newerGenerations).toEqual([expect.objectContaining({ newer: "13-sig-g2", sha256, linked: false, message: expect.stringContaining("'jpki ca rollover --compromised'") })]);
      expect(r.newerGenerations![0]!.message).toContain(`confirmed with the public side over another channel`);
      expect(r.newerGenerations![0]!.message).toContain("'jpki provider untrust 13-sig'");
    }
    // what is served there is not 13-sig-g2's certificate: nothing said
    expect((await follow(d, serve(oldWithNew, tokyo.der))).newerGenerations).toBeUndefined();
    expect((await follow(d, serve(oldWithNew, Buffer.from("garbage")))).newerGenerations).toBeUndefined();
    // trusted: nothing said (13-sig-g3 is asked for, and is not there)
    await trustPublicCas({ dir: d, trustAnchors: [g2Der] });
    expect((await follow(d, serve(oldWithNew))).newerGenerations).toBeUndefined();
  });

  it("follow --watch stopped while the link is fetched: the check is not known this pass, not the endpoint's failure", async () => {
    const d = await rolledProvider();
    const stop = new AbortController();
    const e = rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(1, []), link: status(500) });
    const fetch: typeof globalThis.fetch = (u, init) => {
      if (!String(u).includes("/ca/13-sig.by-")) return e.fetch(u, init);
      // the link hangs until the stop comes, which comes now (/ca/index.json, asked first, is not there: 404)
      const hung = new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason), { once: true }));
      stop.abort();
      return hung;
    };
    const passes: Awaited<ReturnType<typeof followPublicCrls>>[] = [];
    await watchPublicCrls({ dir: d, passphrase: PASS, clock: new FixedClock(new Date(T0 + HOUR)), fetch, bearerToken: "tok", intervalMs: 60_000, signal: stop.signal, onPass: (r) => passes.push(r) });
    expect(passes).toEqual([expect.objectContaining({ stopped: true, compromise: [], revoked: [] })]);
    expect(passes[0]!.crls.map((c) => c.status)).toEqual(["downloaded", "downloaded"]);
  });

  // A rollover takes the first free id (ca/free-ids.ts): after a restore retired 13-sig-g2, 13-sig's successor is
  // 13-sig-g3. Assuming g+1, the provider never checked 13-sig on its successor's CRL nor heard of the newer generation.
  describe("a successor that is not g+1 (13-sig → 13-sig-g3), named by the endpoint's /ca/index.json", () => {
    async function g3Setup() {
      const g3 = await makeCa();
      const g3Der = await certificate({
        signer: g3.signer,
        spki: g3.signer.spki,
        extensions: [
          extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
          extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
          extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(g3.signer.spki))),
          extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(undefined, [`${ENDPOINT}/arl/13-sig-g3.crl`])),
        ],
      });
      const sha = (der: Buffer) => createHash("sha256").update(der).digest("hex");
      const index = (successor: string, sha256 = sha(tokyo.der)) =>
        Buffer.from(JSON.stringify({ generations: [{ id: "13-sig", prefectureCode: "13", purpose: "signature", generation: 1, sha256, successor, linked: true }, { id: "13-sig-g3", prefectureCode: "13", purpose: "signature", generation: 3, sha256: sha(g3Der) }] }));
      const serve = (files: Record<string, Buffer | undefined>): typeof globalThis.fetch => async (u) => {
        const f = Object.entries(files).find(([path]) => String(u).endsWith(path))?.[1];
        return f ? ok(f)() : new Response(null, { status: 404 });
      };
      return { g3, g3Der, index, serve, sha };
    }

    it("a provider trusting both checks 13-sig on 13-sig-g3's CRL and revokes on its revoked link; with no index (an older server) it could not", async () => {
      const { g3, g3Der, index, serve } = await g3Setup();
      const d = provider();
      await trustPublicCas({ dir: d, trustAnchors: [g3Der] });
      const link = await certificate({ signer: g3.signer, spki: tokyo.signer.spki, serial: LINK_SERIAL });
      const files = { "/crl/13-sig.crl": await crl(5, []), "/crl/13-sig-g3.crl": await crl(2, [LINK_REVOKED], { by: g3 }), "/ca/13-sig.by-13-sig-g3.crt": link };
      // an older server: nothing names 13-sig-g3 as the successor, and 13-sig-g2 is not trusted: no check is made
      const blind = await follow(d, serve(files));
      expect(blind.compromise).toEqual([]);
      expect(blind.revoked).toEqual([]);
      const seen = await follow(d, serve({ ...files, "/ca/index.json": index("13-sig-g3") }), T0 + 2 * HOUR);
      expect(seen.compromise).toEqual([expect.objectContaining({ caId: "13-sig", successor: "13-sig-g3", status: "compromised", linkSerial: "4c1a", error: expect.objectContaining({ code: "ERR_PUBLIC_CA_COMPROMISED" }) })]);
      expect(seen.revoked.map((r) => [r.serial, r.public.reason])).toEqual([["1a", "cACompromise"], ["1b", "cACompromise"]]);
      expect(readProviderState(providerPaths(d)).compromisedCas?.["13-sig"]).toMatchObject({ successor: "13-sig-g3", linkSerial: "4c1a" });
    });

    it("a provider trusting 13-sig alone is told of 13-sig-g3, linked; with no index it was not", async () => {
      const { g3, g3Der, index, serve, sha } = await g3Setup();
      const d = provider();
      const oldWithNew = await certificate({ signer: tokyo.signer, spki: g3.signer.spki });
      const files = { "/crl/13-sig.crl": await crl(5, []), "/ca/13-sig-g3.crt": g3Der, "/ca/13-sig-g3.by-13-sig.crt": oldWithNew };
      expect((await follow(d, serve(files))).newerGenerations).toBeUndefined();
      const told = await follow(d, serve({ ...files, "/ca/index.json": index("13-sig-g3") }));
      expect(told.newerGenerations).toEqual([expect.objectContaining({ caId: "13-sig", newer: "13-sig-g3", url: `${ENDPOINT}/ca/13-sig-g3.crt`, sha256: sha(g3Der), linked: true })]);
      // the index names 13-sig-g3, but what is served there is 13-sig's own certificate: nothing said
      expect((await follow(d, serve({ ...files, "/ca/13-sig-g3.crt": tokyo.der, "/ca/index.json": index("13-sig-g3") }))).newerGenerations).toBeUndefined();
    });

    it("an index that lies is a hint that fails closed: a successor whose link does not verify fails the check; an entry about another certificate is passed over", async () => {
      const { g3, g3Der, index, serve } = await g3Setup();
      const d = provider();
      await trustPublicCas({ dir: d, trustAnchors: [g3Der] });
      const forged = await certificate({ signer: impostor.signer, spki: tokyo.signer.spki, serial: LINK_SERIAL });
      const files = { "/crl/13-sig.crl": await crl(5, []), "/crl/13-sig-g3.crl": await crl(2, [], { by: g3 }), "/ca/index.json": index("13-sig-g3") };
      const lied = await follow(d, serve({ ...files, "/ca/13-sig.by-13-sig-g3.crt": forged }));
      expect(lied.compromise).toEqual([{ caId: "13-sig", successor: "13-sig-g3", status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID", message: expect.stringContaining("does not verify with 13-sig-g3's trusted key") } }]);
      expect(lied.crlCause).not.toBe("due");
      // no link at all where the index says one is: not known, as after a rollover for a compromised key
      expect((await follow(d, serve(files))).compromise).toEqual([expect.objectContaining({ successor: "13-sig-g3", status: "failed", error: expect.objectContaining({ code: "ERR_PUBLIC_CRL_UNAVAILABLE" }) })]);
      // an entry whose SHA-256 is not the trusted 13-sig's says nothing of it: no hint, no check (the pass fails
      // closed for it, ERR_PUBLIC_CA_INDEX_MISMATCH: the test below)
      expect((await follow(d, serve({ ...files, "/ca/index.json": index("13-sig-g3", "00".repeat(32)) }))).compromise).toEqual([]);
      expect(JSON.parse(stateOf(d)).links.every((l: ProviderLink) => !l.revoked)).toBe(true);
    });

    // The index is the one thing of the endpoint's not signed. An index that answers but does not speak of the
    // certificate trusted as 13-sig (its entry missing, with no successor, or about another certificate: the SHA-256
    // differs) left 13-sig with g+1 alone, as an unavailable one does, yet the pass reported all well and renewed the
    // provider CRL: 13-sig's real successor went unchecked. Fail closed alike.
    it("an index that does not name a successor for the trusted certificate of a generation with a later one trusted fails the pass closed (ERR_PUBLIC_CA_INDEX_MISMATCH); revocations applied", async () => {
      const { g3, g3Der, index, serve, sha } = await g3Setup();
      const url = `${ENDPOINT}/ca/index.json`;
      const files = { "/crl/13-sig.crl": await crl(5, [BOB_REVOKED], { nextUpdate: T0 + 100 * HOUR }), "/crl/13-sig-g3.crl": await crl(2, [], { by: g3, nextUpdate: T0 + 100 * HOUR }) };
      const g3Only = Buffer.from(JSON.stringify({ generations: [{ id: "13-sig-g3", prefectureCode: "13", purpose: "signature", generation: 3, sha256: sha(g3Der) }] }));
      const noSuccessor = Buffer.from(JSON.stringify({ generations: [{ id: "13-sig", prefectureCode: "13", purpose: "signature", generation: 1, sha256: sha(tokyo.der) }] }));
      for (const [body, what] of [
        [index("13-sig-g3", "00".repeat(32)), "another certificate"],
        [g3Only, "no entry"],
        [noSuccessor, "no successor"],
      ] as const) {
        const d = provider();
        await trustPublicCas({ dir: d, trustAnchors: [g3Der] });
        const r = await follow(d, serve({ ...files, "/ca/index.json": body }), T0 + HOUR);
        expect(r.generationIndex, what).toEqual({ status: "found", url, error: { code: "ERR_PUBLIC_CA_INDEX_MISMATCH", message: expect.stringContaining("13-sig") } });
        expect(r.revoked.map((v) => v.serial), what).toEqual(["1b"]);
        expect(r.crlCause, what).toBe("revocations");
        const later = await follow(d, serve({ ...files, "/ca/index.json": body }), T0 + 30 * HOUR);
        expect(later.crl, what).toBeUndefined();
      }
      // one generation trusted: nothing needs the index to name a successor
      const lone = provider();
      const r = await follow(lone, serve({ ...files, "/ca/index.json": g3Only }), T0 + HOUR);
      expect(r.generationIndex).toEqual({ status: "found", url });
      expect(r.crlCause).toBe("revocations");
    });

    // 5xx, no answer, a body that is not an index: not an older server's 404. Taken for "no index", the pass went on
    // with g+1 alone and reported all well, while 13-sig's successor 13-sig-g3 went unchecked.
    it("an index that cannot be had (not a 404) is reported; with two generations trusted the pass fails closed (ERR_PUBLIC_CA_INDEX_UNAVAILABLE), revocations applied, the CRL not renewed for being due", async () => {
      const { g3, g3Der, index, serve } = await g3Setup();
      const d = provider();
      await trustPublicCas({ dir: d, trustAnchors: [g3Der] });
      const link = await certificate({ signer: g3.signer, spki: tokyo.signer.spki, serial: LINK_SERIAL });
      // public CRLs good for days: the provider CRL (48 h) comes due while they are current
      const files = { "/crl/13-sig.crl": await crl(5, [BOB_REVOKED], { nextUpdate: T0 + 100 * HOUR }), "/crl/13-sig-g3.crl": await crl(2, [], { by: g3, nextUpdate: T0 + 100 * HOUR }), "/ca/13-sig.by-13-sig-g3.crt": link };
      const url = `${ENDPOINT}/ca/index.json`;
      const withIndex = (answer: () => Promise<Response>): typeof globalThis.fetch => (u, init) => (String(u) === url ? answer() : serve(files)(u, init));
      const s = sleeper();
      for (const [answer, reason] of [
        [async () => new Response("busy", { status: 503 }), "HTTP 503, after 3 attempts"],
        [async () => Promise.reject(new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) })), "after 3 attempts"],
        [async () => new Response("<html>maintenance</html>", { status: 200 }), "not an index of CA generations"],
        [async () => new Response(null, { status: 401 }), "HTTP 401"],
        // over the bound, said as what it is (it was "the CRL is more than …")
        [async () => new Response(" ".repeat(1024 * 1024 + 1), { status: 200 }), "the index of CA generations is more than the 1048576 bytes accepted"],
      ] as const) {
        const both = provider();
        await trustPublicCas({ dir: both, trustAnchors: [g3Der] });
        const r = await follow(both, withIndex(answer), T0 + HOUR, { sleep: s.sleep });
        expect(r.generationIndex, reason).toEqual({ status: "unavailable", url, reason: expect.stringContaining(reason), error: { code: "ERR_PUBLIC_CA_INDEX_UNAVAILABLE", message: expect.stringContaining("which generation succeeds 13-sig is not known") } });
      }
      // on the workspace trusting both: bob's revocation on 13-sig's CRL is applied all the same, but the pass is blind
      // (no renewal for being due: a first pass would publish, as "due", otherwise)
      const down = await follow(d, withIndex(async () => new Response(null, { status: 503 })), T0 + HOUR, { sleep: s.sleep });
      expect(down.generationIndex?.error?.code).toBe("ERR_PUBLIC_CA_INDEX_UNAVAILABLE");
      expect(down.revoked.map((v) => v.serial)).toEqual(["1b"]);
      expect(down.crlCause).toBe("revocations");
      const quiet = await follow(d, withIndex(async () => new Response(null, { status: 503 })), T0 + 30 * HOUR, { sleep: s.sleep });
      expect(quiet.crl).toBeUndefined();
      expect(quiet.generationIndex?.error?.code).toBe("ERR_PUBLIC_CA_INDEX_UNAVAILABLE");
      // with the index back, the same pass is due and sound
      const back = await follow(d, withIndex(async () => ok(index("13-sig-g3"))()), T0 + 30 * HOUR);
      expect(back.generationIndex).toEqual({ status: "found", url });
      expect(back.compromise).toEqual([expect.objectContaining({ caId: "13-sig", successor: "13-sig-g3", status: "sound" })]);
      expect(back.crlCause).toBe("due");
      // an older server (404): g+1 assumed, as before, and no failure
      const older = await follow(d, withIndex(async () => new Response(null, { status: 404 })), T0 + 30 * HOUR);
      expect(older.generationIndex).toEqual({ status: "absent", url });
    });

    it("with one generation trusted, an index that cannot be had is said but fails nothing: only a newer generation is looked for", async () => {
      const { serve } = await g3Setup();
      const d = provider();
      const url = `${ENDPOINT}/ca/index.json`;
      const files13 = await crl(5, []);
      const fetch: typeof globalThis.fetch = (u, init) => (String(u) === url ? Promise.resolve(new Response(null, { status: 503 })) : serve({ "/crl/13-sig.crl": files13 })(u, init));
      const r = await follow(d, fetch, T0 + HOUR, { sleep: sleeper().sleep });
      expect(r.generationIndex).toEqual({ status: "unavailable", url, reason: expect.stringContaining("HTTP 503") });
      expect(r.crlCause).toBe("due");
    });

    it("jpki provider follow: the index unavailable is a line of the text and generationIndex in --json; exit 17 with two generations trusted, 0 with one", async () => {
      const { g3, g3Der } = await g3Setup();
      // dated by the wall clock: the CLI's pass runs on it
      const now = Date.now();
      const files: Record<string, Buffer> = {
        "/crl/13-sig.crl": await crl(5, [], { at: now - HOUR }),
        "/crl/13-sig-g3.crl": await crl(2, [], { at: now - HOUR, by: g3 }),
        "/ca/13-sig.by-13-sig-g3.crt": await certificate({ signer: g3.signer, spki: tokyo.signer.spki, serial: LINK_SERIAL }),
      };
      // /ca/index.json answers 401 (a token the endpoint no longer takes for it): not retried, not a 404
      const server = createServer((req, res) => {
        const f = files[req.url ?? ""];
        if (req.url === "/ca/index.json") res.writeHead(401).end();
        else if (f) res.writeHead(200).end(f);
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const at = (d: string) => {
          const paths = providerPaths(d);
          writeFileSync(paths.config, JSON.stringify({ ...JSON.parse(readFileSync(paths.config, "utf8")), endpoint: base }));
          return d;
        };
        const run = (d: string, ...flags: string[]) => runInProcess([...flags, "provider", "follow", "--dir", d], { env: { JPKI_PASSPHRASE: PASS, JPKI_VERIFIER_TOKEN: "tok" }, cwd: tmpdir() });
        const lone = at(provider());
        const said = await run(lone);
        expect(said.code, said.stderr).toBe(0);
        expect(said.stdout).toContain(`public CA generation index ${base}/ca/index.json: unavailable (HTTP 401)\n`);
        const both = at(provider());
        await trustPublicCas({ dir: both, trustAnchors: [g3Der] });
        const failed = await run(both, "--json");
        expect(failed.code, failed.stderr).toBe(17);
        expect(JSON.parse(failed.stdout).generationIndex).toEqual({ status: "unavailable", url: `${base}/ca/index.json`, reason: "HTTP 401", error: { code: "ERR_PUBLIC_CA_INDEX_UNAVAILABLE", message: expect.any(String) } });
        expect(JSON.parse(failed.stderr).error.code).toBe("ERR_PUBLIC_CA_INDEX_UNAVAILABLE");
        const text = await run(both);
        expect(text.code).toBe(17);
        expect(text.stdout).toMatch(/^public CA generation index .*: unavailable \(HTTP 401\) \[ERR_PUBLIC_CA_INDEX_UNAVAILABLE\] .*which generation succeeds 13-sig is not known/m);
      } finally {
        await new Promise((r) => (server.closeAllConnections(), server.close(r)));
      }
    });
  });

  it("a link that does not bind the two trusted keys says nothing: signed by another key, or certifying another, is a failed check and revokes nothing, listed or not; a missing link names untrust", async () => {
    const d = await rolledProvider();
    const before = JSON.parse(stateOf(d)).links;
    const forged = await newWithOld(impostor.signer);
    const other = await newWithOld(g2.signer, impostor.signer.spki);
    for (const [answer, why] of [
      [ok(forged), "does not verify with 13-sig-g2's trusted key"],
      [ok(other), "does not certify 13-sig's trusted key"],
      [ok(Buffer.from("garbage")), "is not a DER certificate"],
    ] as const) {
      const r = await follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(1, [LINK_REVOKED]), link: answer }).fetch);
      expect(r.compromise).toEqual([{ caId: "13-sig", successor: "13-sig-g2", status: "failed", error: { code: "ERR_PUBLIC_CRL_INVALID", message: expect.stringContaining(why) } }]);
      expect(r.revoked).toEqual([]);
    }
    const missing = await follow(d, rolledEndpoint({ g1: await crl(5, []), g2: await g2Crl(2, [LINK_REVOKED]), link: status(404) }).fetch);
    expect(missing.compromise).toEqual([expect.objectContaining({ status: "failed", error: { code: "ERR_PUBLIC_CRL_UNAVAILABLE", message: expect.stringContaining("'jpki provider untrust 13-sig'") } })]);
    expect(JSON.parse(stateOf(d)).links).toEqual(before);
    expect(readProviderState(providerPaths(d)).compromisedCas).toBeUndefined();
  });
});
