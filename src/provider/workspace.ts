/**
 * A private certification provider (民間認証事業者, e.g. an Internet bank, 電子署名法 art. 8) built on JPKI, as the
 * seed draws it (slide 3(4)): the customer obtains a public signature certificate (①), applies to the provider
 * with it (②), the provider checks it with the public service (③④), issues its own certificate (⑤), and later
 * follows the public CRLs so that a death or a move that revokes the public certificate revokes its own too, and its
 * own CRL, which its relying parties (the shopping site of ⑦⑧) ask, says so.
 *
 * Where its state lives, and why: in a directory of its own, not in the public workspace's store. The provider is
 * another organisation with another key, another passphrase and another failure domain; it reaches the public side
 * only through the HTTP endpoint (`jpki serve`) as a registered verifier, as a real one would. So, as the Bridge CA
 * (ca/bridge.ts) does:
 * - `provider.key`: the CA certificate and its key encrypted under the provider's passphrase (PBKDF2-SHA256 600,000
 *   iterations, AES-256, pki/key-wrap.ts), one atomic file: never a key without its certificate;
 * - `config.json`: name, endpoint, its own CRL URL, lifetimes; `trust/<ca>.pem`: the public CA certificates trusted;
 * - `state.json`: every certificate issued with its link to the public certificate (private serial ↔ public issuer
 *   + serial, when), the revocations, the request digests seen, the provider's CRL numbering, and what was last
 *   seen of each public CRL (ETag, Last-Modified, CRL number, digest). One atomic write per change: a crash leaves
 *   the state before or after it, never half;
 * - `public-crl/<ca>.crl`: the last verified public CRL of each CA, so a 304 has something to stand for;
 * - `certs/<serial>.pem`, `provider.pem`, `crl/provider.crl` (+ .pem): derived, rewritten from the state.
 * Everything is owner-only (files 0600, directories 0700) except what is public by nature: the CA certificate and
 * the CRL (0644), which the provider's relying parties fetch.
 * A lock file keeps two provider commands from interleaving (store/file-lock.ts: a dead holder's lock is taken over).
 *
 * The JSON state is rewritten whole on every change: right for thousands of customers, not for millions (then a
 * table in a store; see the report of issue 11 point 2).
 */
import { X509Certificate, createHash, createPublicKey, verify as cryptoVerify } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { buildCrl } from "../crl/builder.js";
import { CRL_REASON, parseReason, type CrlReasonName } from "../crl/reason.js";
import { JpkiError, type ErrorCode } from "../errors.js";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { caValidity } from "../ca/validity.js";
import type { Clock } from "../pki/clock.js";
import { certificateParts, children, extension, readHeader } from "../pki/der.js";
import { decryptPrivateKey, encryptPrivateKey, generateRsaKey } from "../pki/keys.js";
import { parsePemBlocks, pemOrDer, toPem } from "../pki/pem.js";
import { normaliseSerial, randomSerial, serialHex } from "../pki/serial.js";
import { SoftwareSigner, type Signer } from "../pki/signer.js";
import { authorityKeyIdentifier, basicConstraints, crlDistributionPoints, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { encodeName, type Rdn } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { withFileLock } from "../store/file-lock.js";
import { writeFailure, writeFileAtomic } from "../store/files.js";
import { sweepStaleTemps, syncDir } from "../store/staging.js";
import { caId, parseCaId } from "../ca/ids.js";
import { describeJpkiAnchor } from "../validation/jpki.js";
import { readCrlFile } from "../validation/crl.js";

export interface ProviderPaths {
  readonly root: string;
  readonly config: string;
  readonly key: string;
  readonly state: string;
  readonly lock: string;
  readonly trustDir: string;
  readonly publicCrlDir: string;
  readonly certsDir: string;
  readonly certificatePem: string;
  readonly crlDir: string;
  /** the provider's CRL (DER), what its relying parties fetch */
  readonly crl: string;
  readonly crlPem: string;
}

export function providerPaths(dir: string): ProviderPaths {
  const root = resolve(dir);
  return {
    root,
    config: join(root, "config.json"),
    key: join(root, "provider.key"),
    state: join(root, "state.json"),
    lock: join(root, ".lock"),
    trustDir: join(root, "trust"),
    publicCrlDir: join(root, "public-crl"),
    certsDir: join(root, "certs"),
    certificatePem: join(root, "provider.pem"),
    crlDir: join(root, "crl"),
    crl: join(root, "crl", "provider.crl"),
    crlPem: join(root, "crl", "provider.crl.pem"),
  };
}

/** config.json: what the operator decides; validated when read (STYLE.md §6). */
export interface ProviderConfig {
  readonly version: 1;
  /** the provider's name, the O= of its CA and of its customers' certificates */
  readonly name: string;
  /** the public JPKI endpoint (`jpki serve`'s base URL) whose CRLs it follows */
  readonly endpoint: string;
  /** where the provider publishes its own CRL: named in its certificates' cRLDistributionPoints (optional) */
  readonly crlUrl?: string;
  /** a customer certificate's lifetime at most (days); never past the public certificate's notAfter */
  readonly certificateDays: number;
  /** the provider CRL's nextUpdate − thisUpdate */
  readonly crlLifetimeHours: number;
  /** an enrolment request signed longer ago than this is refused (its signing-time attribute) */
  readonly maxRequestAgeMinutes: number;
}

const DEFAULTS = { certificateDays: 365, crlLifetimeHours: 48, maxRequestAgeMinutes: 60 } as const;

/** What a provider certificate records of the public certificate it rests on: the link (紐付け). */
export interface PublicCertificateRef {
  /** the public CA's id with its key generation, e.g. "13-sig", "13-sig-g2" after a rollover (ca/ids.ts) */
  readonly caId: string;
  readonly issuer: string;
  /** the serial as the CRL index keys it: hex of the INTEGER's contents */
  readonly serial: string;
  readonly notAfter: number;
  readonly sha256: string;
}

export interface LinkRevocation {
  readonly at: number;
  /** RFC 5280 CRLReason code on the provider's CRL */
  readonly reason: number;
  /** the public entry's reason and revocation time, and the public CRL number that listed it */
  readonly publicReason?: number;
  readonly publicRevokedAt?: number;
  readonly publicCrlNumber?: string;
}

/** One certificate the provider issued, linked to the public certificate it was issued on. */
export interface ProviderLink {
  /** the provider certificate's serial, lower-case hex without the sign octet (as its CRL lists it) */
  readonly serial: string;
  readonly customerId: string;
  readonly issuedAt: number;
  readonly notAfter: number;
  /** base64 DER of the provider certificate */
  readonly certificate: string;
  readonly public: PublicCertificateRef;
  /**
   * The request it was issued on, honoured once: SHA-256 over SHA-256(signer certificate) ‖ the SignerInfo's signature
   * value, so a re-encoded copy is the same request (links recorded before: SHA-256 of the request file's bytes)
   */
  readonly requestSha256: string;
  /** the provider generated the key (and handed it back once): such a request is never replayed */
  readonly keyGenerated: boolean;
  /** the provider certified the public certificate's own key */
  readonly sameKey: boolean;
  readonly revoked?: LinkRevocation;
}

/** What the provider last saw of one public CRL. */
export interface PublicCrlSeen {
  readonly url: string;
  readonly etag?: string;
  readonly lastModified?: string;
  /** the CRL number, decimal */
  readonly number: string;
  readonly sha256: string;
  readonly thisUpdate: number;
  readonly nextUpdate?: number;
  readonly checkedAt: number;
}

export interface ProviderState {
  readonly version: 1;
  /** the last CRL number reserved (decimal): made durable before its CRL is written */
  readonly crlNumber: string;
  readonly links: readonly ProviderLink[];
  /** by public CA id */
  readonly publicCrls: Readonly<Record<string, PublicCrlSeen>>;
  /**
   * Public CA generations `follow` found declared compromised (provider/compromise.ts), by id: enrolment refuses them
   * and `trust` will not take them again. Never removed (`untrust` keeps it): a stolen key stays stolen.
   */
  readonly compromisedCas?: Readonly<Record<string, PublicCaCompromise>>;
}

/** How `follow` learnt that a public CA generation's key was declared compromised. */
export interface PublicCaCompromise {
  /**
   * the generation whose full CRL said so: the successor, listing the NewWithOld link; or (`own`) the generation
   * itself, listing its own CA certificate
   */
  readonly successor: string;
  /** the serial (hex) of what that CRL lists: the link certificate, or (`own`) the generation's own certificate */
  readonly linkSerial: string;
  /** that CRL's number, decimal */
  readonly crlNumber: string;
  /** the revocation date on that CRL: when the public side declared the key compromised */
  readonly publicRevokedAt: number;
  /** when this provider found it */
  readonly detectedAt: number;
  /** found on the generation's own CRL, its own certificate listed cACompromise (crl/arl.ts ownCertificateEntry) */
  readonly own?: true;
}

/** What said that `caId`'s key is compromised, in words, for messages. */
export function compromiseEvidence(caId: string, rec: PublicCaCompromise): string {
  return rec.own
    ? `${caId}'s own CRL #${rec.crlNumber}, signed by that key, lists its own CA certificate ${rec.linkSerial} revoked for cACompromise`
    : `${rec.successor}'s CRL #${rec.crlNumber} lists the link certificate ${rec.linkSerial} through which ${rec.successor} vouched for it`;
}

/** How long a provider command waits for the lock by default: a follow pass takes a second or two. */
export const PROVIDER_LOCK_WAIT_MS = 15_000;

/**
 * Runs `fn` holding the provider's lock, after sweeping the temporary files of killed runs. Another live holder (a
 * `follow --watch` pass while a customer enrols) is waited for up to `waitMs`, then ERR_WORKSPACE_LOCKED.
 */
export async function withProviderLock<T>(paths: ProviderPaths, fn: () => Promise<T>, opts: { readonly waitMs?: number } = {}): Promise<T> {
  if (!existsSync(paths.config)) throw new JpkiError("ERR_PROVIDER_MISSING", `no provider workspace at ${paths.root}: run 'jpki provider init --dir ${paths.root} …' first`);
  const until = Date.now() + (opts.waitMs ?? PROVIDER_LOCK_WAIT_MS);
  for (;;) {
    let ran = false;
    try {
      return await withFileLock(paths.lock, `the provider workspace ${paths.root}`, async () => {
        ran = true;
        for (const d of [paths.root, paths.publicCrlDir, paths.certsDir, paths.crlDir]) if (existsSync(d)) sweepStaleTemps(d);
        return fn();
      });
    } catch (e) {
      // Only a refusal to take the lock is retried, never a failure of `fn`.
      if (ran || !(e instanceof JpkiError && e.code === "ERR_WORKSPACE_LOCKED") || Date.now() >= until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const HTTP_URL = /^https?:\/\/[^\s]+$/i;

function checkConfig(c: Partial<ProviderConfig>, where: string): ProviderConfig {
  const bad = (m: string) => new JpkiError("ERR_CONFIG_INVALID", `${where}: ${m}`);
  if (c.version !== 1) throw bad("version must be 1");
  if (typeof c.name !== "string" || !c.name.trim() || c.name.length > 64 || /[\x00-\x1f]/.test(c.name)) throw bad("name must be 1–64 printable characters");
  if (typeof c.endpoint !== "string" || !HTTP_URL.test(c.endpoint)) throw bad("endpoint must be the http(s) base URL of the public JPKI endpoint, e.g. https://jpki.example.jp");
  if (c.crlUrl !== undefined && (typeof c.crlUrl !== "string" || !HTTP_URL.test(c.crlUrl))) throw bad("crlUrl must be an http(s) URL");
  const int = (v: unknown, lo: number, hi: number, name: string) => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw bad(`${name} must be a whole number from ${lo} to ${hi}`);
    return v as number;
  };
  return Object.freeze({
    version: 1,
    name: c.name.trim(),
    endpoint: c.endpoint.replace(/\/+$/, ""),
    ...(c.crlUrl ? { crlUrl: c.crlUrl } : {}),
    certificateDays: int(c.certificateDays ?? DEFAULTS.certificateDays, 1, 3650, "certificateDays"),
    crlLifetimeHours: int(c.crlLifetimeHours ?? DEFAULTS.crlLifetimeHours, 1, 24 * 31, "crlLifetimeHours"),
    maxRequestAgeMinutes: int(c.maxRequestAgeMinutes ?? DEFAULTS.maxRequestAgeMinutes, 1, 7 * 24 * 60, "maxRequestAgeMinutes"),
  });
}

export function readProviderConfig(paths: ProviderPaths): ProviderConfig {
  if (!existsSync(paths.config)) throw new JpkiError("ERR_PROVIDER_MISSING", `no provider workspace at ${paths.root}: run 'jpki provider init --dir ${paths.root} …' first`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.config, "utf8"));
  } catch (e) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.config} is not JSON: restore it from a backup`, { cause: e });
  }
  return checkConfig(raw as Partial<ProviderConfig>, paths.config);
}

/**
 * A public CA id as the state records it: a prefecture signature CA's, spelt as ca/ids.ts caId spells it, with the
 * key generation after a rollover ("13-sig", "13-sig-g2"). It names files (public-crl/<ca>.crl), so nothing else.
 */
function isSignatureCaId(id: unknown): boolean {
  if (typeof id !== "string") return false;
  try {
    const p = parseCaId(id);
    return p.purpose === "signature" && caId(p.prefectureCode, p.purpose, p.generation) === id;
  } catch {
    return false;
  }
}

export function readProviderState(paths: ProviderPaths): ProviderState {
  if (!existsSync(paths.state)) {
    // `init` writes the state before config.json, so a configured workspace without one has lost it (a wrong rm, a
    // partial restore). Read as empty, it said "no customers": no public CRL was followed, and a customer whose
    // public certificate was revoked kept a private certificate that verified (a review helper's repro).
    if (existsSync(paths.config)) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.state} is missing: without it no customer's certificate is followed; restore it from a backup (it holds every certificate issued and its link)`);
    }
    return { version: 1, crlNumber: "0", links: [], publicCrls: {} };
  }
  try {
    const s = JSON.parse(readFileSync(paths.state, "utf8")) as ProviderState;
    if (s?.version !== 1 || typeof s.crlNumber !== "string" || !/^\d+$/.test(s.crlNumber) || !Array.isArray(s.links) || typeof s.publicCrls !== "object" || !s.publicCrls) {
      throw new Error("unexpected shape");
    }
    for (const l of s.links) {
      // Every field a pass reads: a notAfter that is no number left a link listed as valid and never followed.
      if (!l || typeof l.serial !== "string" || !/^[0-9a-f]+$/.test(l.serial) || typeof l.certificate !== "string" || !Number.isFinite(l.notAfter) || !l.public || typeof l.public.serial !== "string" || !/^[0-9a-f]+$/.test(l.public.serial) || !isSignatureCaId(l.public.caId) || !Number.isFinite(l.public.notAfter)) {
        throw new Error("a link entry is malformed");
      }
      if (l.revoked && (!Number.isFinite(l.revoked.at) || !Number.isInteger(l.revoked.reason))) throw new Error(`the revocation of ${l.serial} is malformed`);
    }
    for (const [id, p] of Object.entries(s.publicCrls)) {
      if (!isSignatureCaId(id) || !p || typeof p.number !== "string" || !/^\d+$/.test(p.number) || typeof p.sha256 !== "string") throw new Error(`the public CRL record of ${id} is malformed`);
    }
    if (s.compromisedCas !== undefined && (typeof s.compromisedCas !== "object" || !s.compromisedCas)) throw new Error("compromisedCas is malformed");
    for (const [id, c] of Object.entries(s.compromisedCas ?? {})) {
      // read by enrolment to refuse: a record it cannot read must not pass as "not compromised"
      if (!isSignatureCaId(id) || !c || !isSignatureCaId(c.successor) || typeof c.linkSerial !== "string" || typeof c.crlNumber !== "string" || !Number.isFinite(c.publicRevokedAt) || !Number.isFinite(c.detectedAt) || (c.own !== undefined && c.own !== true)) throw new Error(`the compromise record of ${id} is malformed`);
    }
    return s;
  } catch (e) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.state} is damaged (${(e as Error).message}): restore it from a backup`, { cause: e });
  }
}

/**
 * writeFileAtomic for the provider's files. A full disk, a quota or a read-only filesystem is ERR_FILE_UNUSABLE
 * (exit 2) naming the file and what it means (`then`): it came out as ERR_INTERNAL, "a bug in jpki" (exit 70), from
 * every provider command that writes. Anything else is left as it is.
 */
export function writeProviderFile(path: string, data: string | Uint8Array, then: string, mode = 0o600): void {
  try {
    writeFileAtomic(path, data, mode);
  } catch (e) {
    throw writeFailure(e, basename(path), dirname(path), then) ?? e;
  }
}

export function writeProviderState(paths: ProviderPaths, s: ProviderState): void {
  writeProviderFile(paths.state, `${JSON.stringify(s, null, 1)}\n`, "this change was not recorded (the state is as before it); free space there, then run the command again");
}

/** A public CA the provider trusts: a prefecture's signature CA (都道府県単位認証局, 署名用), one key generation of it. */
export interface TrustedCa {
  /** with its key generation: "13-sig", "13-sig-g2" (both may be trusted: the same name, other keys) */
  readonly caId: string;
  readonly der: Buffer;
  readonly subject: Buffer;
  readonly spki: Buffer;
}

/**
 * Checks a certificate offered as a trust anchor: a JPKI prefecture signature CA (the provider enrols on
 * signature certificates: they carry the four items and nonRepudiation). Its id, key generation included, is the
 * one the public side gave it (validation/jpki.ts describeJpkiAnchor): it names the CRL the provider fetches.
 */
export function trustedCaOf(input: Uint8Array, what = "a trust anchor"): TrustedCa {
  const der = (() => {
    try {
      return pemOrDer(input, ["CERTIFICATE"], "CA certificate");
    } catch (e) {
      throw new JpkiError("ERR_DER_MALFORMED", `${what} is not a PEM or DER certificate`, { cause: e });
    }
  })();
  const info = describeJpkiAnchor(der);
  if (!info || info.operator !== "prefecture" || info.purpose !== "signature" || !info.caId) {
    throw new JpkiError("ERR_CA_INVALID", `${what} is not a JPKI prefecture signature CA certificate (C=JP, O=JPKI, OU=JPKI for digital signature, OU=<prefecture>): the provider enrols on signature certificates only`);
  }
  const parts = certificateParts(der);
  return { caId: info.caId, der, subject: Buffer.from(parts.subject), spki: Buffer.from(parts.spki) };
}

/** A file in trust/ that was passed over: not a certificate, not a prefecture signature CA's, or unreadable. */
export interface SkippedTrustFile {
  /** the path, as trust/<name> */
  readonly file: string;
  /** the CA id its name gives (trust/13-sig.pem: 13-sig), when it names one */
  readonly caId?: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * The CAs in trust/, each file on its own: one that cannot be used is `skipped` with why, and the others are
 * trusted. One bad file failed every provider command (ERR_CA_INVALID), `follow` of every CA included; now only
 * what needs that CA fails (enrolment on it, the following of its CRL), and the commands say which file and why.
 */
export function readTrustAnchors(paths: ProviderPaths): { readonly trusted: ReadonlyArray<TrustedCa & { readonly file: string }>; readonly skipped: readonly SkippedTrustFile[] } {
  if (!existsSync(paths.trustDir)) return { trusted: [], skipped: [] };
  const trusted: Array<TrustedCa & { readonly file: string }> = [];
  const skipped: SkippedTrustFile[] = [];
  for (const f of readdirSync(paths.trustDir).filter((n) => n.endsWith(".pem")).sort()) {
    const file = join(paths.trustDir, f);
    const stem = f.slice(0, -".pem".length);
    try {
      trusted.push({ ...trustedCaOf(readFileSync(file), file), file });
    } catch (e) {
      const code: ErrorCode = e instanceof JpkiError ? e.code : "ERR_FILE_UNUSABLE";
      const why = e instanceof JpkiError ? e.message : `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      const caId = isSignatureCaId(stem) ? stem : undefined;
      const mend = caId ? `; what needs ${caId} fails until it is mended ('jpki provider trust' with ${caId}'s certificate replaces it, 'jpki provider untrust ${caId}' removes it)` : "";
      skipped.push({ file: `trust/${f}`, ...(caId ? { caId } : {}), code, message: `${why}${mend}` });
    }
  }
  return { trusted, skipped };
}

/** The CAs in trust/; the first file that cannot be used fails it (readTrustAnchors passes such files over). */
export function readTrustedCas(paths: ProviderPaths): TrustedCa[] {
  const { trusted, skipped } = readTrustAnchors(paths);
  if (skipped[0]) throw new JpkiError(skipped[0].code, skipped[0].message);
  return [...trusted];
}


/**
 * `jpki provider trust FILE…`: trusts more public CAs in a workspace that exists — after a key rollover of a public
 * CA (`jpki ca rollover`), the new generation (13-sig-g2), whose customers' renewed certificates were refused
 * ("not issued by a CA key this provider trusts") with no command to add it: only `init` took --trust, and `init`
 * refuses a workspace that exists. Each is checked as at init (a prefecture signature CA, its id from the
 * certificate) and kept as trust/<ca>.pem; one already trusted is left as it is (`already`), another certificate
 * under an id trusted already is ERR_USAGE (trust/<ca>.pem holds one per key generation, and replacing it would
 * check that generation's customers and CRLs on another key). No passphrase: trust anchors are not signed here;
 * whoever can write trust/ could already.
 */
export async function trustPublicCas(o: { readonly dir: string; readonly trustAnchors: readonly Uint8Array[] }): Promise<{ readonly added: readonly string[]; readonly already: readonly string[]; readonly trusted: readonly string[]; readonly skippedTrust?: readonly SkippedTrustFile[] }> {
  const paths = providerPaths(o.dir);
  readProviderConfig(paths);
  if (!o.trustAnchors.length) throw new JpkiError("ERR_USAGE", "give the public CA certificates to trust (one or more files), e.g. <public workspace>/ca/13-sig-g2.pem");
  const given = o.trustAnchors.map((a, i) => trustedCaOf(a, `trust anchor ${i + 1}`));
  return withProviderLock(paths, async () => {
    // A file that cannot be used is passed over: trusting its CA's certificate again replaces it (the way to mend it).
    const anchors = readTrustAnchors(paths);
    const held = new Map(anchors.trusted.map((t) => [t.caId, t]));
    const compromised = readProviderState(paths).compromisedCas ?? {};
    const bad = given.find((t) => compromised[t.caId]);
    if (bad) throw new JpkiError("ERR_PUBLIC_CA_COMPROMISED", `${bad.caId}'s key was declared compromised by the public side (${compromiseEvidence(bad.caId, compromised[bad.caId]!)}): it is not trusted again; nothing was changed`);
    const added: TrustedCa[] = [];
    const already: string[] = [];
    for (const [i, t] of given.entries()) {
      const same = held.get(t.caId) ?? added.find((x) => x.caId === t.caId);
      if (!same) added.push(t);
      else if (!same.der.equals(t.der)) throw new JpkiError("ERR_USAGE", `trust anchor ${i + 1} is another certificate of ${t.caId} than the one trusted (trust/${t.caId}.pem) or given before it: one certificate per CA key generation; nothing was changed`);
      else if (held.has(t.caId) && !already.includes(t.caId)) already.push(t.caId);
    }
    mkdirSync(paths.trustDir, { recursive: true, mode: 0o700 });
    for (const t of added) writeProviderFile(join(paths.trustDir, `${t.caId}.pem`), toPem(t.der, "CERTIFICATE"), "the CAs before it in the list are trusted, this one not; free space there, then run the command again");
    const skippedTrust = anchors.skipped.filter((x) => !x.caId || !added.some((t) => t.caId === x.caId));
    return { added: added.map((t) => t.caId), already, trusted: [...new Set([...held.keys(), ...added.map((t) => t.caId)])].sort(), ...(skippedTrust.length ? { skippedTrust } : {}) };
  });
}

/**
 * `jpki provider untrust CA`: stops trusting one key generation of a public CA — the public side declared its key
 * compromised (鍵危殆化: `jpki ca compromised`, `ca rollover --compromised`). Whoever holds a stolen key signs
 * certificates no CRL lists, and an enrolment on one validated (only `--ocsp`, which answers every serial of such
 * a generation revoked, would refuse it). `follow` (and enrolment) tell it when the successor generation is trusted
 * too (provider/compromise.ts: the link revoked on the successor's CRL; `follow` then revokes as here) and this
 * confirms it; otherwise the operator says so here: the generation's certificate leaves trust/ (enrolment refuses its certificates from then on),
 * and every live provider certificate linked to it is revoked — its identity proof is void, genuine or forged
 * (cessationOfOperation, as reasons.ts maps cACompromise) — and the provider CRL published. Deleting the file by
 * hand left those certificates valid and `follow` failing (ERR_CA_UNKNOWN) for good.
 * Order for a kill: the revocations and their CRL number first (one state write), then the file, then the CRL; run
 * again it finishes (or the next `follow` publishes the CRL owed).
 */
export async function untrustPublicCa(o: { readonly dir: string; readonly passphrase: string; readonly clock: Clock; readonly caId: string }): Promise<{ readonly caId: string; readonly revoked: readonly string[]; readonly trusted: readonly string[]; readonly crl?: ProviderCrl; readonly skippedTrust?: readonly SkippedTrustFile[] }> {
  const paths = providerPaths(o.dir);
  const config = readProviderConfig(paths);
  const id = o.caId.trim();
  if (!isSignatureCaId(id)) throw new JpkiError("ERR_CA_UNKNOWN", `${JSON.stringify(o.caId)} is not a public signature CA id as the provider names them: e.g. 13-sig, 13-sig-g2 ('jpki provider list' shows them)`);
  const ca = openProviderCa(paths, o.passphrase); // before anything changes: a wrong passphrase changes nothing
  return withProviderLock(paths, async () => {
    const anchors = readTrustAnchors(paths);
    const held = anchors.trusted.map((t) => ({ file: t.file, t }));
    // its file goes even when it cannot be read (trust/<id>.pem): the generation is untrusted either way
    const mine = [...held.filter((h) => h.t.caId === id).map((h) => h.file), ...anchors.skipped.filter((x) => x.caId === id).map((x) => join(paths.root, x.file))];
    const skippedTrust = anchors.skipped.filter((x) => x.caId !== id);
    let state = readProviderState(paths);
    const now = o.clock.now();
    const live = state.links.filter((l) => l.public.caId === id && !l.revoked && l.notAfter > now.getTime());
    // Run again after a kill between removing the file and publishing: nothing left to revoke, but the CRL is owed.
    const owedBefore = publishedCrlNumber(paths) < BigInt(state.crlNumber);
    if (!mine.length && !live.length && !owedBefore) throw new JpkiError("ERR_CA_UNKNOWN", `the provider does not trust ${id}, and no live certificate of it rests on one: nothing to do`);
    // What was seen of its CRLs goes too: it belongs to the anchor that verified them. Kept, a certificate trusted
    // later under the id (the right one after a wrong one) had the old key's CRL sent as "current" on every 304 and
    // refused as invalid, and its own CRL numbers held to the old key's (ERR_PUBLIC_CRL_ROLLBACK), for good.
    const { [id]: _seen, ...publicCrls } = state.publicCrls;
    if (live.length || _seen) {
      const at = now.getTime();
      const gone = new Set(live);
      state = { ...state, publicCrls, links: state.links.map((l) => (gone.has(l) ? { ...l, revoked: { at, reason: CRL_REASON.cessationOfOperation, publicReason: CRL_REASON.cACompromise } } : l)) };
      if (live.length) state = reserveCrlNumber(paths, state);
      writeProviderState(paths, state);
    }
    rmSync(join(paths.publicCrlDir, `${id}.crl`), { force: true });
    for (const f of mine) rmSync(f, { force: true });
    if (mine.length) syncDir(paths.trustDir);
    const owed = publishedCrlNumber(paths) < BigInt(state.crlNumber);
    const crl = owed ? await publishProviderCrl(paths, config, ca, o.clock, state, { reserved: true }) : undefined;
    return { caId: id, revoked: live.map((l) => l.serial), trusted: held.filter((h) => h.t.caId !== id).map((h) => h.t.caId).sort(), ...(crl ? { crl } : {}), ...(skippedTrust.length ? { skippedTrust } : {}) };
  });
}

/** The provider's CA: its certificate and, once unlocked, its signer. */
export interface ProviderCa {
  readonly der: Buffer;
  readonly subject: Buffer;
  readonly spki: Buffer;
  readonly keyId: Buffer;
  readonly notAfter: Date;
  readonly signer: Signer;
}

function readKeyFile(paths: ProviderPaths): { cert: Buffer; keyPem: string } {
  if (!existsSync(paths.key)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} is missing: restore the provider's key from a backup`);
  const blocks = parsePemBlocks(readFileSync(paths.key, "utf8"));
  const cert = blocks.find((b) => b.label === "CERTIFICATE")?.der;
  const key = blocks.find((b) => b.label === "ENCRYPTED PRIVATE KEY");
  if (!cert || !key) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} lacks the provider CA's certificate or key: restore it from a backup`);
  return { cert, keyPem: toPem(key.der, "ENCRYPTED PRIVATE KEY") };
}

/** The provider CA's certificate (no passphrase needed). */
export function providerCertificate(paths: ProviderPaths): Buffer {
  return readKeyFile(paths).cert;
}

/** Opens the provider CA with its passphrase (ERR_PASSPHRASE_WRONG), checking key and certificate belong together. */
export function openProviderCa(paths: ProviderPaths, passphrase: string): ProviderCa {
  const { cert, keyPem } = readKeyFile(paths);
  const signer = new SoftwareSigner(decryptPrivateKey(keyPem, passphrase, "the provider CA's key"));
  const parts = certificateParts(cert);
  if (!signer.spki.equals(parts.spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the provider CA's key in ${paths.key} does not match its certificate`);
  return { der: cert, subject: Buffer.from(parts.subject), spki: Buffer.from(parts.spki), keyId: keyIdentifier(parts.spki), notAfter: new Date(new X509Certificate(cert).validTo), signer };
}

export interface InitProviderOptions {
  readonly dir: string;
  readonly name: string;
  readonly endpoint: string;
  readonly crlUrl?: string;
  /** the public CA certificates (PEM or DER) the provider trusts: prefecture signature CAs */
  readonly trustAnchors: readonly Uint8Array[];
  readonly passphrase: string;
  readonly clock: Clock;
  readonly certificateDays?: number;
  readonly crlLifetimeHours?: number;
  readonly maxRequestAgeMinutes?: number;
  /** the CA certificate's lifetime in years (default 10) */
  readonly caValidityYears?: number;
}

export interface ProviderInitResult {
  readonly dir: string;
  readonly subject: string;
  readonly serial: string;
  readonly sha256Fingerprint: string;
  readonly notAfter: Date;
  readonly certificatePath: string;
  readonly crlPath: string;
  readonly trusted: readonly string[];
}

/** The provider CA's name: C=JP, O=<provider>, CN=<provider> CA. */
export function providerCaName(name: string): Rdn[] {
  return [["countryName", "JP"], ["organizationName", name], ["commonName", `${name} CA`]];
}

/**
 * `jpki provider init`: a new provider workspace with its own CA (RSA-2048, self-signed, keyCertSign + cRLSign,
 * pathLenConstraint 0: it certifies customers only), the public CAs it trusts, and its first (empty) CRL.
 * Refuses a directory that holds one already (ERR_PROVIDER_EXISTS): a new key would orphan every certificate issued.
 */
export async function initProvider(o: InitProviderOptions): Promise<ProviderInitResult> {
  const paths = providerPaths(o.dir);
  const exists = () =>
    existsSync(paths.config)
      ? new JpkiError("ERR_PROVIDER_EXISTS", `${paths.root} holds a provider workspace already: it keeps its key (a new one would orphan every certificate it issued)`)
      : // The key is written before config.json: an init killed between them left a directory every other command
        // calls no workspace (ERR_PROVIDER_MISSING, "run init") and init called one, with no way out said.
        new JpkiError("ERR_PROVIDER_EXISTS", `${paths.root} holds a provider key without config.json: an init was interrupted there, and nothing can have been issued with that key (every other command needs config.json); remove ${paths.root} and run init again`);
  if (existsSync(paths.config) || existsSync(paths.key)) throw exists();
  const config = checkConfig(
    { version: 1, name: o.name, endpoint: o.endpoint, ...(o.crlUrl ? { crlUrl: o.crlUrl } : {}), certificateDays: o.certificateDays, crlLifetimeHours: o.crlLifetimeHours, maxRequestAgeMinutes: o.maxRequestAgeMinutes } as Partial<ProviderConfig>,
    "provider settings",
  );
  if (!o.trustAnchors.length) throw new JpkiError("ERR_USAGE", "give the public CA certificates the provider trusts (--trust FILE, one or more): e.g. <public workspace>/ca/13-sig.pem");
  const trusted: TrustedCa[] = [];
  for (const [i, t] of o.trustAnchors.map((a, i) => [i, trustedCaOf(a, `trust anchor ${i + 1}`)] as const)) {
    const same = trusted.find((x) => x.caId === t.caId);
    if (!same) trusted.push(t);
    // trust/<ca>.pem holds one certificate per id: a second one would silently take the first's place
    else if (!same.der.equals(t.der)) throw new JpkiError("ERR_USAGE", `trust anchor ${i + 1} is another certificate of ${t.caId} than one given before it: give one certificate per CA key generation`);
  }
  if (!o.passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "the provider CA's key needs a passphrase: set JPKI_PASSPHRASE or pass --passphrase-file");
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  return withFileLock(paths.lock, `the provider workspace ${paths.root}`, async () => {
    // Again under the lock: another init that held it while this one checked (above) has finished since, and its key
    // and config were replaced by this one's, orphaning whatever it had issued.
    if (existsSync(paths.config) || existsSync(paths.key)) throw exists();
    for (const d of [paths.trustDir, paths.publicCrlDir, paths.certsDir, paths.crlDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    const key = await generateRsaKey(2048);
    const signer = new SoftwareSigner(key);
    const name = encodeName(providerCaName(config.name));
    const { notBefore: nb, notAfter } = caValidity(o.clock.now(), o.caValidityYears ?? 10);
    const tbs = encodeTbs({
      serial: randomSerial(),
      signatureAlgorithm: signer.algorithmIdentifier,
      issuer: name,
      notBefore: nb,
      notAfter,
      subject: name,
      spki: signer.spki,
      extensions: [
        extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
        extension(EXT_OID.basicConstraints, true, basicConstraints(true, 0)),
        extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(signer.spki))),
      ],
    });
    const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
    assertSignedBy(der, signer.spki, "the provider CA's certificate");
    for (const t of trusted) writeFileAtomic(join(paths.trustDir, `${t.caId}.pem`), toPem(t.der, "CERTIFICATE"));
    // The key file first: a crash before config.json leaves a directory `init` refuses (the key exists), never a
    // config without a key.
    writeFileAtomic(paths.key, toPem(der, "CERTIFICATE") + encryptPrivateKey(key, o.passphrase));
    writeFileAtomic(paths.certificatePem, toPem(der, "CERTIFICATE"), 0o644);
    // The state before config.json: a configured workspace always has one (readProviderState refuses one without).
    writeProviderState(paths, { version: 1, crlNumber: "0", links: [], publicCrls: {} });
    writeFileAtomic(paths.config, `${JSON.stringify(config, null, 2)}\n`);
    const ca = openProviderCa(paths, o.passphrase);
    await publishProviderCrl(paths, config, ca, o.clock);
    const x = new X509Certificate(der);
    return {
      dir: paths.root,
      subject: x.subject.split("\n").join(", "),
      serial: x.serialNumber.toLowerCase(),
      sha256Fingerprint: createHash("sha256").update(der).digest("hex"),
      notAfter: new Date(x.validTo),
      certificatePath: paths.certificatePem,
      crlPath: paths.crl,
      trusted: trusted.map((t) => t.caId),
    };
  });
}

/** Check what you sign: the signature of a certificate or CRL verifies with the key meant to have made it. */
export function assertSignedBy(der: Buffer, spki: Uint8Array, what: string): void {
  let ok = false;
  try {
    const [tbs, , sig] = children(der);
    ok = cryptoVerify("sha256", tbs!, createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }), sig!.subarray(readHeader(sig!).headerLength + 1));
  } catch {
    ok = false;
  }
  if (!ok) throw new JpkiError("ERR_PROFILE_VIOLATION", `${what} did not re-parse or verify with the provider CA's key: nothing was stored; check the key`);
}

export interface CustomerCertificateInput {
  readonly customerId: string;
  readonly spki: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * The provider's certificate for a customer: subject C=JP, O=<provider>, CN=<customer id> (the provider's own
 * account id, never the four items: the provider holds those in its records if it needs them, and a certificate is
 * shown to every relying party), keyUsage critical digitalSignature + nonRepudiation, the provider's CRL as
 * distribution point when configured, AKI and SKI.
 */
export async function certifyCustomer(ca: ProviderCa, config: ProviderConfig, input: CustomerCertificateInput): Promise<{ der: Buffer; serial: string }> {
  const serial = randomSerial();
  const tbs = encodeTbs({
    serial,
    signatureAlgorithm: ca.signer.algorithmIdentifier,
    issuer: ca.subject,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    subject: encodeName([["countryName", "JP"], ["organizationName", config.name], ["commonName", input.customerId]]),
    spki: input.spki,
    extensions: [
      extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature", "nonRepudiation"])),
      ...(config.crlUrl ? [extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(undefined, [config.crlUrl]))] : []),
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(ca.keyId)),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(input.spki))),
    ],
  });
  const der = assembleCertificate(tbs, ca.signer.algorithmIdentifier, await ca.signer.sign(tbs));
  assertSignedBy(der, ca.spki, "the customer's certificate");
  if (!Buffer.from(certificateParts(der).spki).equals(input.spki)) throw new JpkiError("ERR_PROFILE_VIOLATION", "the customer's certificate does not carry the key it was meant to certify");
  return { der, serial: serialHex(serial) };
}

export interface ProviderCrl {
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  readonly path: string;
  readonly sha256: string;
}

/** The number of the provider CRL on disk, or 0 when there is none or it does not parse (then it is republished). */
export function publishedCrlNumber(paths: ProviderPaths): bigint {
  return readCrlFile(paths.crl)?.crlNumber ?? 0n;
}

/**
 * A link is never deleted and a revocation never undone, so every certificate the published CRL lists is a revoked
 * link of the state. When not, the state is not the one that made that CRL: state.json lost (read as empty) or put
 * back from a backup older than a revocation. A CRL from it would drop those entries, un-revoking certificates the
 * provider's relying parties were told are revoked; nothing is published (ERR_WORKSPACE_CORRUPT).
 */
function assertKeepsRevocations(paths: ProviderPaths, previous: NonNullable<ReturnType<typeof readCrlFile>>, state: ProviderState): void {
  // the CRL's index keys serials by the INTEGER's contents: a leading 00 where the first octet's high bit is set
  const listed = (serial: string) => previous.entries.get(serial) ?? previous.entries.get(`00${serial}`);
  let found = 0;
  const unrevoked: string[] = [];
  for (const l of state.links) {
    if (!listed(l.serial)) continue;
    found++;
    if (!l.revoked) unrevoked.push(l.serial);
  }
  const missing = previous.entries.size - found;
  if (!unrevoked.length && missing <= 0) return;
  const what = [
    ...(unrevoked.length ? [`shows ${unrevoked.slice(0, 5).join(", ")}${unrevoked.length > 5 ? ` and ${unrevoked.length - 5} more` : ""} not revoked`] : []),
    ...(missing > 0 ? [`holds no link for ${missing} certificate(s)`] : []),
  ].join(" and ");
  throw new JpkiError(
    "ERR_WORKSPACE_CORRUPT",
    `${paths.state} ${what} that the published CRL #${previous.crlNumber ?? "?"} lists as revoked: it is lost or older than that CRL (a backup put back?); no CRL was published, which would have un-revoked them: restore the newest state.json`,
    { details: { unrevoked: unrevoked.slice(0, 100), missing: Math.max(0, missing) } },
  );
}

/** Days an expired certificate stays on the provider's CRL, as the public CAs keep theirs (JPKI.md: 7 days). */
const EXPIRED_GRACE_MS = 7 * 86_400_000;

/**
 * The state with the next CRL number reserved: past the reserved one and past the published one (a state restored
 * from an old backup). A change that must reach the CRL (a revocation) is written together with its reservation,
 * in one state write: then "reserved > published" is exactly "a CRL is owed", which the next pass pays even if this
 * process dies before publishing.
 */
export function reserveCrlNumber(paths: ProviderPaths, state: ProviderState): ProviderState {
  const reserved = BigInt(state.crlNumber);
  const onDisk = publishedCrlNumber(paths);
  return { ...state, crlNumber: ((reserved > onDisk ? reserved : onDisk) + 1n).toString() };
}

/**
 * Publishes a new provider CRL from the state: the number is reserved in state.json first (durable), then the CRL
 * is built, verified with the CA's key and installed atomically. A crash in between leaves a gap in the numbers,
 * never a number used twice, and a state the next `follow` completes (published number < reserved number).
 * `reserved`: the caller wrote `state` with its number reserved already (reserveCrlNumber), together with the
 * change the CRL carries; that number is used. Otherwise a fresh one is reserved here (a number reserved by a
 * process that died is burned, never reused: a PEM copy of it may have landed).
 */
export async function publishProviderCrl(paths: ProviderPaths, config: ProviderConfig, ca: ProviderCa, clock: Clock, state = readProviderState(paths), opts: { readonly reserved?: boolean } = {}): Promise<ProviderCrl> {
  let number: bigint;
  if (opts.reserved && BigInt(state.crlNumber) > publishedCrlNumber(paths)) number = BigInt(state.crlNumber);
  else {
    const next = reserveCrlNumber(paths, state);
    writeProviderState(paths, next);
    number = BigInt(next.crlNumber);
  }
  const previous = readCrlFile(paths.crl);
  if (previous) assertKeepsRevocations(paths, previous, state);
  const thisUpdate = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
  const nextUpdate = new Date(Math.min(thisUpdate.getTime() + config.crlLifetimeHours * 3600_000, ca.notAfter.getTime()));
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw new JpkiError("ERR_CA_INVALID", "the provider CA's certificate has expired: it signs no CRL");
  // RFC 5280 §3.3: an entry stays until a CRL issued after the certificate's notAfter has listed it; the grace only
  // adds time. So the cut-off is also no later than the previous CRL's thisUpdate (none yet: nothing is dropped).
  // With the grace alone, a CRL coming more than the grace after a notAfter (no follow pass for a quiet week)
  // dropped an entry no CRL issued after that notAfter had listed (as the public CAs' CRLs did: crl/publisher.ts).
  const keepAfter = Math.min(thisUpdate.getTime() - EXPIRED_GRACE_MS, readCrlFile(paths.crl)?.thisUpdate.getTime() ?? -Infinity);
  const entries = state.links
    .filter((l) => l.revoked && l.notAfter > keepAfter)
    // RFC 5280 §5.3.2 invalidityDate: the public certificate's revocation time, when a public revocation caused this
    // one. revocationDate is the pass that learnt of it (hours later, days if the endpoint was down): a relying
    // party judging a signature made in between needs to know the identity behind it was void already.
    .map((l) => ({ serial: l.serial, revokedAt: new Date(l.revoked!.at), reason: l.revoked!.reason, ...(l.revoked!.publicRevokedAt !== undefined ? { invalidityDate: new Date(l.revoked!.publicRevokedAt) } : {}) }))
    .sort((a, b) => a.serial.localeCompare(b.serial));
  const chunks: Buffer[] = [];
  await buildCrl({ issuerName: ca.subject, authorityKeyId: ca.keyId, number, thisUpdate, nextUpdate, entries: [entries], signer: ca.signer, issuerKey: ca.spki, sink: (c) => chunks.push(c) });
  const der = Buffer.concat(chunks);
  assertSignedBy(der, ca.spki, "the provider's CRL");
  mkdirSync(paths.crlDir, { recursive: true, mode: 0o700 });
  // Public by nature: the provider's relying parties fetch these (0644), unlike everything else here. The PEM copy
  // first, the DER last: the DER's number is what the next pass compares with the reserved one, so a kill between
  // the two leaves the DER behind and the next pass publishes both again (the other order left a stale PEM forever).
  const owed = `the CRL #${number} was not published (its number and what it carries are recorded: the next 'jpki provider follow' publishes it); free space there`;
  writeProviderFile(paths.crlPem, toPem(der, "X509 CRL"), owed, 0o644);
  writeProviderFile(paths.crl, der, owed, 0o644);
  return { number, thisUpdate, nextUpdate, entries: entries.length, path: paths.crl, sha256: createHash("sha256").update(der).digest("hex") };
}

/** A link as listed (`jpki provider list|show`): no key, no four items. */
export interface ProviderLinkView {
  readonly serial: string;
  readonly customerId: string;
  readonly issuedAt: Date;
  readonly notAfter: Date;
  readonly status: "valid" | "revoked" | "expired";
  readonly revokedAt?: Date;
  readonly reason?: CrlReasonName;
  readonly public: { readonly caId: string; readonly issuer: string; readonly serial: string; readonly notAfter: Date; readonly revokedAt?: Date; readonly crlNumber?: string };
}

const REASON_NAMES = new Map<number, CrlReasonName>(Object.entries(CRL_REASON).map(([n, c]) => [c, n as CrlReasonName]));

export function viewLink(l: ProviderLink, now: Date): ProviderLinkView {
  const status = l.revoked ? "revoked" : l.notAfter <= now.getTime() ? "expired" : "valid";
  return {
    serial: l.serial,
    customerId: l.customerId,
    issuedAt: new Date(l.issuedAt),
    notAfter: new Date(l.notAfter),
    status,
    ...(l.revoked ? { revokedAt: new Date(l.revoked.at), reason: REASON_NAMES.get(l.revoked.reason) ?? "unspecified" } : {}),
    public: {
      caId: l.public.caId,
      issuer: l.public.issuer,
      serial: l.public.serial,
      notAfter: new Date(l.public.notAfter),
      ...(l.revoked?.publicRevokedAt !== undefined ? { revokedAt: new Date(l.revoked.publicRevokedAt) } : {}),
      ...(l.revoked?.publicCrlNumber ? { crlNumber: l.revoked.publicCrlNumber } : {}),
    },
  };
}

/** `jpki provider list`: every certificate the provider issued, with its link. */
export function listProviderLinks(dir: string, clock: Clock): ProviderLinkView[] {
  const paths = providerPaths(dir);
  readProviderConfig(paths);
  const now = clock.now();
  return readProviderState(paths).links.map((l) => viewLink(l, now));
}

function findLink(state: ProviderState, serial: string): ProviderLink {
  const want = normaliseSerial(serial);
  const l = want ? state.links.find((x) => x.serial === want) : undefined;
  if (!l) throw new JpkiError("ERR_PROVIDER_CERT_UNKNOWN", `the provider issued no certificate with serial ${JSON.stringify(serial)}: 'jpki provider list' shows them`);
  return l;
}

/** `jpki provider show SERIAL`: one certificate with its link and PEM. */
export function showProviderLink(dir: string, serial: string, clock: Clock): ProviderLinkView & { readonly certificatePem: string } {
  const paths = providerPaths(dir);
  readProviderConfig(paths);
  const l = findLink(readProviderState(paths), serial);
  return { ...viewLink(l, clock.now()), certificatePem: toPem(Buffer.from(l.certificate, "base64"), "CERTIFICATE") };
}

/**
 * `jpki provider revoke SERIAL --reason R`: the provider revokes one of its certificates itself (the customer's key
 * lost, the account closed), whatever the public certificate's state, and publishes its CRL. ERR_CERT_ALREADY_REVOKED
 * when it is revoked already (by follow or by hand).
 */
export async function revokeProviderCertificate(o: { readonly dir: string; readonly passphrase: string; readonly clock: Clock; readonly serial: string; readonly reason: string }): Promise<{ readonly link: ProviderLinkView; readonly crl: ProviderCrl }> {
  const paths = providerPaths(o.dir);
  const config = readProviderConfig(paths);
  const reason = parseReason(o.reason);
  if (reason.name === "removeFromCRL") throw new JpkiError("ERR_USAGE", "removeFromCRL un-revokes, in delta CRLs only: it is not a reason to revoke");
  return withProviderLock(paths, async () => {
    const ca = openProviderCa(paths, o.passphrase); // before anything is recorded: a wrong passphrase changes nothing
    const state = readProviderState(paths);
    const l = findLink(state, o.serial);
    if (l.revoked) throw new JpkiError("ERR_CERT_ALREADY_REVOKED", `the provider's certificate ${l.serial} is already revoked (${REASON_NAMES.get(l.revoked.reason) ?? "unspecified"})`);
    const revoked: ProviderLink = { ...l, revoked: { at: o.clock.now().getTime(), reason: reason.code } };
    // The revocation and its CRL number in one write: killed before the CRL lands, the next follow publishes it.
    const next = reserveCrlNumber(paths, { ...state, links: state.links.map((x) => (x === l ? revoked : x)) });
    writeProviderState(paths, next);
    const crl = await publishProviderCrl(paths, config, ca, o.clock, next, { reserved: true });
    return { link: viewLink(revoked, o.clock.now()), crl };
  });
}
