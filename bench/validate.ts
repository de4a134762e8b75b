/**
 * Validation benchmark (issue 10 point 9): validatePath per second against a warm CrlIndexCache holding a
 * 1,000,000-entry CRL of our own CA, next to raw RSA-2048 verifications per second with node:crypto
 * (crypto.verify of the end entity's TBS with the CA's key, the KeyObject made once) measured in the same run,
 * interleaved. Target ratio ≥ 0.7. One validation = parse the chain and the anchor, verify the end entity's
 * signature, §6.1 processing, and the §6.3 lookup of its serial in the CRL's index (the CRL parsed and its
 * signature checked once, before the timed rounds). The certificates alternate between one not on the CRL and
 * one on it (each checked once for the right verdict first).
 *
 * The note adds: the cost of the first validation after a new 1M-entry CRL arrives (ms, and RSS growth: the
 * parse into the compact index and the one signature check over ~40 MB), CMS verifications per second
 * (verifySignedData on a small attached document signed by the end entity, the same warm cache), and the same
 * validation against a server's whole set — the CRL among OTHER_CRLS small CRLs of other issuers, as `jpki serve`
 * gives its engine every CRL it publishes — frozen (read once, grouped by issuer: README "A server's whole set")
 * and as a plain array (every CRL looked up on each call).
 *
 * Setup (not timed): CA and end-entity certificates with openssl (RSA-2048, SHA-256), the CRL with our builder
 * (bench/inspect.ts's way: ascending 16-octet serials) and signed with the CA key. JPKI_BENCH_CRL_ENTRIES sizes
 * it (default 1,000,000), JPKI_BENCH_VALIDATE_SECONDS the length of each timed round (default 2).
 * JPKI_BENCH_PROFILE=<dir> writes a CPU profile of the timed rounds (bench/profile.ts) to <dir>/validate.cpuprofile.
 */
import { spawnSync } from "node:child_process";
import { createPrivateKey, verify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCrl, type CrlEntryInput } from "../src/crl/builder.js";
import { pemOrDer } from "../src/pki/pem.js";
import { SoftwareSigner } from "../src/pki/signer.js";
import { oid, printable, seq, set } from "../src/pki/der.js";
import { parseCertificate } from "../src/validation/certificate.js";
import { verifySignedData } from "../src/validation/cms.js";
import { CrlIndexCache } from "../src/validation/crl-index-cache.js";
import { validatePath } from "../src/validation/validate.js";
import { gc } from "./gc.js";
import type { BenchResult } from "./issue.js";
import { profiled } from "./profile.js";

const REASONS = [0, 1, 3, 4, 5];
/** Other issuers' CRLs beside ours in the "server's whole set" line: a national workspace publishes thousands. */
const OTHER_CRLS = 300;
const log = (s: string) => {
  if (process.env.JPKI_BENCH_QUIET !== "1") console.error(`  [validate] ${s}`);
};
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input });
  if (r.status !== 0) throw new Error(`validate bench: ${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

const serialAt = (k: number) => 0x4000_0000_0000_0000_0000_0000_0000_0000n + BigInt(k) * 0x1_0000_0000_0001n;

function* entryChunks(n: number): Generator<CrlEntryInput[]> {
  for (let i = 0; i < n; i += 10_000) {
    const chunk: CrlEntryInput[] = [];
    for (let k = i; k < Math.min(n, i + 10_000); k++) chunk.push({ serial: serialAt(k).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 1) + k * 1000), reason: REASONS[k % REASONS.length]! });
    yield chunk;
  }
}

/** Calls `f` for `seconds`, in batches; operations per second. */
function rate(seconds: number, f: () => void): number {
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 100; i++) f();
    n += 100;
    t = process.hrtime.bigint();
  }
  return n / (Number(t - t0) / 1e9);
}

const rss = () => process.memoryUsage().rss;
/** RSS growth in MB with its sign (a collection can leave the process smaller than before) */
const growth = (bytes: number) => `${bytes < 0 ? "-" : "+"}${(Math.abs(bytes) / 1048576).toFixed(0)} MB`;

export async function benchValidate(opts: { entries?: number; seconds?: number } = {}): Promise<BenchResult> {
  const n = opts.entries ?? 1_000_000;
  const seconds = opts.seconds ?? 2;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-validate-"));
  try {
    // --- setup (not timed) ---------------------------------------------------------------------------------
    const f = (name: string) => join(dir, name);
    const subject = "/C=JP/O=JPKI/OU=JPKI for digital signature/OU=Tokyo-to";
    // -x509 makes a CA certificate (basicConstraints cA, from openssl's v3_ca section)
    run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-subj", subject, "-days", "3650", "-sha256"]);
    writeFileSync(f("ee.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n");
    const revokedIndex = Math.floor(n / 2);
    const ee = (name: string, serial: bigint) => {
      run("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/C=JP/CN=${name}`]);
      run("openssl", ["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-set_serial", `0x${serial.toString(16)}`, "-days", "365", "-sha256", "-extfile", f("ee.ext"), "-out", f(`${name}.pem`)]);
      return pemOrDer(readFileSync(f(`${name}.pem`)), ["CERTIFICATE"], name);
    };
    const caDer = pemOrDer(readFileSync(f("ca.pem")), ["CERTIFICATE"], "CA");
    const good = ee("good", 0x3000_0000_0000_0000_0000_0000_0000_0001n);
    const bad = ee("revoked", serialAt(revokedIndex));
    const ca = parseCertificate(caDer);
    const signer = new SoftwareSigner(createPrivateKey(readFileSync(f("ca.key"))));
    const now = Date.now();
    const makeCrl = async (number: bigint) => {
      const built = await buildCrl({
        issuerName: ca.subject.der,
        authorityKeyId: ca.subjectKeyId ?? Buffer.alloc(20, 1),
        number,
        thisUpdate: new Date(now - 60_000),
        nextUpdate: new Date(now + 2 * 86_400_000),
        entries: entryChunks(n),
        signer,
      });
      return Buffer.concat(built.chunks as Buffer[], built.byteLength);
    };
    let t0 = process.hrtime.bigint();
    const crl = await makeCrl(1n);
    log(`${n.toLocaleString("en")}-entry CRL built (${(crl.length / 1048576).toFixed(0)} MB) in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
    const at = new Date(now);
    const cache = new CrlIndexCache();
    const validate = (chain: Buffer) => validatePath({ trustAnchors: [caDer], chain: [chain], crls: [crl], crlIndex: cache, at });

    // --- the first validation against this CRL: parse into the index, one signature check -----------------
    gc();
    let rss0 = rss();
    t0 = process.hrtime.bigint();
    const first = validate(good);
    const firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
    gc();
    const firstRss = rss() - rss0;
    if (first.status !== "valid") throw new Error(`validate bench: the good certificate came out ${JSON.stringify(first)}`);
    const revokedResult = validate(bad);
    if (revokedResult.status !== "revoked") throw new Error(`validate bench: the revoked certificate came out ${JSON.stringify(revokedResult)}`);
    if (cache.parses !== 1) throw new Error(`validate bench: the CRL was parsed ${cache.parses} times`);
    log(`first validation ${firstMs.toFixed(0)} ms, RSS ${growth(firstRss)}; index ${(cache.stats.bytes / 1048576).toFixed(0)} MB with the DER`);

    // --- timed, interleaved ----------------------------------------------------------------------------------
    const eeCert = parseCertificate(good);
    const key = (await import("node:crypto")).createPublicKey({ key: ca.publicKey.der, format: "der", type: "spki" });
    const raw = () => {
      if (!verify("sha256", eeCert.tbs, key, eeCert.signature)) throw new Error("validate bench: raw verify failed");
    };
    let flip = false;
    const ours = () => {
      flip = !flip;
      validate(flip ? good : bad);
    };
    rate(0.3, raw);
    rate(0.3, ours);
    const rounds = { ours: [] as number[], raw: [] as number[] };
    await profiled("validate", async () => {
      for (let r = 0; r < 3; r++) {
        rounds.raw.push(rate(seconds, raw));
        rounds.ours.push(rate(seconds, ours));
        log(`round ${r + 1}: raw verify ${rounds.raw[r]!.toFixed(0)}/s, validatePath ${rounds.ours[r]!.toFixed(0)}/s`);
      }
    });

    // --- CMS: a small attached document signed by the end entity --------------------------------------------
    writeFileSync(f("doc.txt"), "申請書: 転居届 (bench)\n");
    run("openssl", ["cms", "-sign", "-binary", "-nodetach", "-in", f("doc.txt"), "-signer", f("good.pem"), "-inkey", f("good.key"), "-outform", "DER", "-out", f("doc.p7s"), "-md", "sha256"]);
    const p7s = readFileSync(f("doc.p7s"));
    const cmsAt = new Date(Date.now() + 1000); // after the signing time the signature carries
    const cmsOnce = () => verifySignedData({ signature: p7s, trustAnchors: [caDer], crls: [crl], crlIndex: cache, at: cmsAt });
    const cmsFirst = cmsOnce();
    if (cmsFirst.status !== "valid") throw new Error(`validate bench: the CMS signature came out ${JSON.stringify(cmsFirst)}`);
    const cmsRate = rate(seconds, () => void cmsOnce());

    // --- a server's whole set: our CRL among OTHER_CRLS others (their issuers' names differ; never read) ---------
    const others: Buffer[] = [];
    for (let k = 0; k < OTHER_CRLS; k++) {
      const built = await buildCrl({
        issuerName: seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable(`Other CA ${k}`)))),
        authorityKeyId: Buffer.alloc(20, k & 0xff),
        number: 1n,
        thisUpdate: new Date(now - 60_000),
        nextUpdate: new Date(now + 2 * 86_400_000),
        entries: [[{ serial: (0x1000n + BigInt(k)).toString(16), revokedAt: new Date(now - 120_000), reason: 1 }]],
        signer,
      });
      others.push(Buffer.concat(built.chunks as Buffer[], built.byteLength));
    }
    const wholeSet = [...others.slice(0, OTHER_CRLS / 2), crl, ...others.slice(OTHER_CRLS / 2)];
    const frozenSet = Object.freeze([...wholeSet]);
    const frozenAnchors = Object.freeze([caDer]);
    const setCache = new CrlIndexCache({ maxCrls: OTHER_CRLS + 8 });
    const inSet = (crls: readonly Buffer[], anchors: readonly Buffer[]) => {
      let flip2 = false;
      return () => {
        flip2 = !flip2;
        const r = validatePath({ trustAnchors: anchors, chain: [flip2 ? good : bad], crls, crlIndex: setCache, at });
        if (r.status !== (flip2 ? "valid" : "revoked")) throw new Error(`validate bench: in the whole set the certificate came out ${r.status}`);
      };
    };
    const frozenOnce = inSet(frozenSet, frozenAnchors);
    const plainOnce = inSet(wholeSet, [caDer]);
    frozenOnce();
    frozenOnce();
    plainOnce();
    const setRounds = { frozen: [] as number[], plain: [] as number[] };
    for (let r = 0; r < 3; r++) {
      setRounds.frozen.push(rate(seconds / 2, frozenOnce));
      setRounds.plain.push(rate(seconds / 2, plainOnce));
    }

    // --- a new CRL arrives: the first validation against it ---------------------------------------------------
    const crl2 = await makeCrl(2n);
    gc();
    rss0 = rss();
    t0 = process.hrtime.bigint();
    const again = validatePath({ trustAnchors: [caDer], chain: [good], crls: [crl2], crlIndex: cache, at });
    const newMs = Number(process.hrtime.bigint() - t0) / 1e6;
    gc();
    const newRss = rss() - rss0;
    if (again.status !== "valid") throw new Error(`validate bench: against the new CRL the good certificate came out ${JSON.stringify(again)}`);

    const o = median(rounds.ours);
    const b = median(rounds.raw);
    return {
      name: `Validation against a warm ${n.toLocaleString("en")}-entry CRL (${(crl.length / 1048576).toFixed(0)} MB): validatePath vs raw RSA-2048 verify`,
      ours: o,
      baseline: b,
      unit: "validations/s",
      baselineName: "verifications/s node:crypto verify (RSA-2048, SHA-256), same run",
      target: 0.7,
      note: [
        `rounds: validatePath ${rounds.ours.map((x) => x.toFixed(0)).join(", ")}; raw verify ${rounds.raw.map((x) => x.toFixed(0)).join(", ")} (medians compared; ${seconds} s each, interleaved)`,
        `first validation after a new CRL arrives: ${newMs.toFixed(0)} ms, RSS ${growth(newRss)} (the very first, cold process: ${firstMs.toFixed(0)} ms, ${growth(firstRss)}); cache ${cache.stats.crls} CRLs, ${(cache.stats.bytes / 1048576).toFixed(0)} MB DER + index`,
        `CMS: verifySignedData ${cmsRate.toFixed(0)} verifications/s (small attached document, same warm cache; ${(cmsRate / b).toFixed(2)}× raw verify)`,
        `whole set: the same validations with our CRL among ${OTHER_CRLS} other issuers' CRLs, as a server holds them: frozen ${median(setRounds.frozen).toFixed(0)}/s (${(median(setRounds.frozen) / o).toFixed(2)}× against ours alone), a plain array ${median(setRounds.plain).toFixed(0)}/s (${(median(setRounds.plain) / o).toFixed(2)}×)`,
      ].join("\n"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
