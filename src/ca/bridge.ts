/**
 * The prefectures' Bridge CA (ブリッジ認証局, run by their association 都道府県協議会; shared/spec/JPKI.md "CA
 * certificates"): one self-signed CA that cross-certifies every prefecture CA in both directions, so a verifier
 * that trusts only the Bridge validates a certificate of any prefecture through the cross-certificate
 * Bridge → prefecture CA (RFC 5280 §3.2 cross-certification; RFC 4158 for the paths it makes).
 *
 * Our decisions (JPKI.md "Ours"):
 * - Every cross-certificate carries basicConstraints cA, pathLenConstraint 0. Bridge → prefecture: the prefecture
 *   CA issues end entities only, never further CAs. Prefecture → Bridge: a verifier anchored at one prefecture
 *   reaches the Bridge and nothing under it, so trusting Osaka's CA never validates Tokyo's certificates, even
 *   with every cross-certificate at hand (the path Osaka → Bridge → Tokyo → end entity breaks §6.1.4(l)).
 * - Bridge → prefecture carries the prefecture CA's purpose policy (署名用 or 利用者証明用), so a path through the
 *   Bridge asserts the policy of the end entity's purpose only.
 * - Each cross-certificate names the issuer's ARL as its distribution point, the same one the issuer's own
 *   certificate names, so the issuer's ARL (issuingDistributionPoint onlyContainsCACerts) covers it. The Bridge's
 *   ARL is published with the prefecture CAs' ARLs, at arl/bridge.crl (served at <baseUrl>/arl/bridge.crl).
 *
 * The Bridge is no prefecture CA: it issues no end entities, keeps no revocation log, and its state lives in the
 * workspace directory, not the store (bridge/): `bridge.key` holds the certificate and the encrypted key together
 * (one atomic file: never a key without its certificate), `state.json` the cross-certificates issued and the
 * ARL numbering (the number is made durable before its ARL is written, so a crash leaves a gap, never a reused
 * number). Everything else (bridge.pem, bridge.crt, cross/*.pem, cross.pem, the ARL) is derived and rewritten.
 * A lock file keeps two `jpki ca bridge` runs on one workspace from interleaving.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { X509Certificate as X509, createHash, createPublicKey, verify as cryptoVerify } from "node:crypto";
import { dirname, join } from "node:path";
import { JpkiError } from "../errors.js";
import { certificateParts, children, extension, readHeader } from "../pki/der.js";
import { decryptPrivateKey, encryptPrivateKey, generateRsaKey, type KeyWrapParams } from "../pki/keys.js";
import { parsePemBlocks, toPem } from "../pki/pem.js";
import { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";
import { CRL_REASON, type CrlReasonName } from "../crl/reason.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner, type Signer } from "../pki/signer.js";
import {
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  generalNamesDirName,
  keyIdentifier,
  keyUsage,
  subjectKeyIdentifier,
} from "../profile/extensions.js";
import { BRIDGE_SUBJECT, BRIDGE_SUBJECT_JA, encodeName } from "../profile/names.js";
import { EXT_OID, POLICY_OID } from "../profile/oids.js";
import { sweepStaleTemps, syncDir } from "../store/staging.js";
import { withFileLock } from "../store/file-lock.js";
import { writeFileAtomic } from "../store/files.js";
import { ARL_SCOPE, type CaRecord } from "../store/types.js";
import type { PublishedCrl } from "../crl/publisher.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { Workspace } from "../workspace/workspace.js";
import { buildCrl } from "../crl/builder.js";
import { arlIssuingDistributionPoint, certificateExtension } from "../crl/scope.js";
import { readCrlFile } from "../validation/crl.js";
import { assembleCertificate, encodeTbs } from "./certificate.js";
import { compromisedCaIds } from "./compromised.js";
import { caUrls } from "./ids.js";
import { caValidity } from "./validity.js";

import { BRIDGE_ID, MAX_ARL_NUMBER, parseStateArlNumber } from "./bridge-id.js";

export { BRIDGE_ID };

export interface BridgePaths {
  readonly dir: string;
  /** the certificate and the encrypted key, one PEM file (the record) */
  readonly key: string;
  /** the same re-encrypted by `ca rewrap`, made durable before the CA keys change and installed after */
  readonly keyNext: string;
  readonly state: string;
  readonly lock: string;
  /** the certificate, for verifiers' --trust */
  readonly certificatePem: string;
  readonly certificateDer: string;
  readonly crossDir: string;
  /** every current cross-certificate, one PEM bundle for verifiers' --chain */
  readonly crossBundle: string;
  /** the Bridge's ARL, beside the prefecture CAs' ARLs */
  readonly arl: string;
}

export function bridgePaths(root: string): BridgePaths {
  const dir = join(root, "bridge");
  return {
    dir,
    key: join(dir, "bridge.key"),
    keyNext: join(dir, "bridge.key.next"),
    state: join(dir, "state.json"),
    lock: join(dir, ".lock"),
    certificatePem: join(dir, "bridge.pem"),
    certificateDer: join(dir, "bridge.crt"),
    crossDir: join(dir, "cross"),
    crossBundle: join(dir, "cross.pem"),
    arl: join(root, "arl", `${BRIDGE_ID}.crl`),
  };
}

/** Which way a cross-certificate points: issued by the Bridge to a prefecture CA, or by that CA to the Bridge. */
export type CrossDirection = "bridge-to-ca" | "ca-to-bridge";

export interface CrossCertificate {
  readonly caId: string;
  readonly direction: CrossDirection;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly der: Buffer;
  /** the exported PEM file */
  readonly path: string;
}

interface StoredCross {
  caId: string;
  direction: CrossDirection;
  /** SHA-256 of the prefecture CA certificate it was made for: a new CA certificate needs new cross-certificates */
  caCertificateSha256: string;
  der: string;
}

/** A Bridge -> CA cross-certificate the Bridge revoked (`jpki ca bridge --revoke`): an entry of its ARL. */
interface RevokedCross {
  caId: string;
  /** lower-case hex */
  serial: string;
  revokedAt: number;
  reason: number;
  notAfter: number;
}

interface BridgeState {
  version: 1;
  /** the last ARL number reserved (decimal string: a bigint) */
  arlNumber: string;
  cross: StoredCross[];
  revoked?: RevokedCross[];
  /** SHA-256 of CA certificates the Bridge no longer cross-certifies (revoked): a re-run leaves them out */
  withdrawn?: string[];
}

export interface BridgeResult {
  readonly created: boolean;
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly sha256Fingerprint: string;
  readonly certificatePath: string;
  readonly crossBundlePath: string;
  /** the cross-certificates issued by this run */
  readonly issued: readonly CrossCertificate[];
  /** CAs whose cross-certificates were current already */
  readonly unchanged: readonly string[];
  /** CAs left out: their certificate has expired */
  readonly expired: readonly string[];
  /** CAs left out: the Bridge revoked their cross-certificates (`revokeBridgeCross`) */
  readonly withdrawn: readonly string[];
  /**
   * CAs left out: their key was rolled over as compromised (`ca rollover --compromised`, ca/rollover.ts). Those
   * still in `stillVouched` hold a Bridge -> CA cross-certificate from before: `ca bridge --revoke` withdraws it.
   */
  readonly compromised: readonly string[];
  /** compromised CAs the Bridge still vouches for with an unrevoked cross-certificate */
  readonly stillVouched: readonly string[];
  readonly arl: BridgeArl;
}

export interface BridgeOptions {
  readonly passphrase: string;
  /** the CAs to cross-certify (default: every CA of the workspace) */
  readonly caIds?: readonly string[];
  /** the workspace's key-wrap parameters for a new Bridge key, after the passphrase was checked against the CAs */
  readonly keyWrap: KeyWrapParams;
  readonly onProgress?: (message: string) => void;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The cross-certificates' and the Bridge's own key usage: they sign certificates and CRLs only. */
const CA_KEY_USAGE = () => extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"]));

/** The end-entity policy of the CAs of one purpose (and the workspace's policy set, production or test). */
function purposePolicy(rec: CaRecord, config: WorkspaceConfig): string {
  if (rec.purpose === "authentication") return POLICY_OID.authentication;
  return config.policy === "test" ? POLICY_OID.signatureTest : POLICY_OID.signature;
}

/**
 * Runs `fn` holding bridge/.lock (store/file-lock.ts: a dead holder's lock is taken over), after sweeping the
 * temporary files of killed runs; filesystem failures become ERR_FILE_UNUSABLE naming the path.
 */
async function withBridgeLock<T>(paths: BridgePaths, fn: () => Promise<T>): Promise<T> {
  return fsErrors(paths.dir, async () => {
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    return withFileLock(paths.lock, "the Bridge CA of this workspace", async () => {
      for (const d of [paths.dir, paths.crossDir, dirname(paths.arl)]) sweepStaleTemps(d);
      return fn();
    });
  });
}

async function fsErrors<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    // Only the filesystem's own failures are ours to name: a JpkiError keeps its code, and anything else (a bug)
    // is not dressed up as a permissions problem.
    if (e instanceof JpkiError || !isFsError(e)) throw e;
    throw fileUnusable((e as NodeJS.ErrnoException).path ?? where, e);
  }
}

/**
 * A failure of a filesystem call: a system error (an errno code and the syscall that failed: "ENOSPC", "E2BIG",
 * libuv's "UNKNOWN"), readRegularFile's NOT_REGULAR, or Node's refusal to read a file past 2 GiB. Matched on the
 * code's spelling alone, "E2BIG" and "UNKNOWN" were left to reach the user as ERR_INTERNAL with a stack trace.
 */
function isFsError(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException | undefined;
  if (!x || typeof x !== "object" || typeof x.code !== "string") return false;
  return typeof x.errno === "number" || typeof x.syscall === "string" || x.code === NOT_REGULAR || x.code === "ERR_FS_FILE_TOO_LARGE" || /^E[A-Z0-9]+$/.test(x.code);
}

/** ERR_FILE_UNUSABLE naming the Bridge file `path` and why (not a regular file, or the errno). */
function fileUnusable(path: string, e: unknown): JpkiError {
  const code = (e as NodeJS.ErrnoException).code;
  const message =
    code === NOT_REGULAR
      ? `the Bridge CA's files: ${path} is not a regular file: move it aside, and restore the file from a backup if it was one of the Bridge's`
      : `the Bridge CA's files: ${path} cannot be written or read (${code ?? "error"}): check the directory's permissions and free space`;
  return new JpkiError("ERR_FILE_UNUSABLE", message, { cause: e, details: { path } });
}

/** The largest bridge/ file read: its state and key are kilobytes (47 prefectures' cross-certificates, a few generations). */
const MAX_BRIDGE_FILE = 64 * 2 ** 20;

/**
 * A Bridge file's bytes, undefined when there is none. Read by its descriptor (regular-file.ts): a FIFO planted at
 * bridge/state.json or bridge/bridge.key is refused (ERR_FILE_UNUSABLE) where readFileSync waited on it for ever.
 */
function readBridgeFile(path: string): Buffer | undefined {
  try {
    return readRegularFile(path, {
      accept: (st) => {
        if (st.size > MAX_BRIDGE_FILE) throw new JpkiError("ERR_FILE_UNUSABLE", `the Bridge CA's files: ${path} is ${st.size} bytes, more than the ${MAX_BRIDGE_FILE} a Bridge file can be: restore it from a backup`, { details: { path } });
      },
    }).bytes;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    if (e instanceof JpkiError) throw e;
    throw fileUnusable(path, e);
  }
}


/** A CA id as ca/ids.ts makes them, with the key generation of a rollover ("13-sig-g2"): the Bridge cross-certifies every generation. */
const CA_ID = /^\d{2}-(?:sig|auth)(?:-g(?:[2-9]|[1-9]\d{1,3}))?$/;

function readState(paths: BridgePaths): BridgeState {
  const bytes = readBridgeFile(paths.state);
  if (!bytes) return { version: 1, arlNumber: "0", cross: [] };
  try {
    const s = JSON.parse(bytes.toString("utf8")) as BridgeState;
    if (s?.version !== 1 || typeof s.arlNumber !== "string" || !/^\d+$/.test(s.arlNumber) || !Array.isArray(s.cross)) throw new Error("unexpected shape");
    if (parseStateArlNumber(s.arlNumber) === undefined) throw new Error(`the ARL number is above ${MAX_ARL_NUMBER}`);
    for (const c of s.cross) {
      // Each entry names a file (cross/<caId>…): a caId that is not one is damage, or an attempt at a path.
      if (!c || typeof c !== "object" || typeof c.caId !== "string" || !CA_ID.test(c.caId) || (c.direction !== "bridge-to-ca" && c.direction !== "ca-to-bridge")) throw new Error("a cross-certificate entry is malformed");
      if (typeof c.der !== "string" || typeof c.caCertificateSha256 !== "string") throw new Error(`the cross-certificate entry of ${c.caId} is malformed`);
      try {
        certificateParts(Buffer.from(c.der, "base64"));
      } catch {
        throw new Error(`the cross-certificate of ${c.caId} (${c.direction}) is not a certificate`);
      }
    }
    for (const r of s.revoked ?? []) {
      if (!r || typeof r.serial !== "string" || !/^[0-9a-f]+$/.test(r.serial) || !Number.isFinite(r.revokedAt) || !Number.isInteger(r.reason) || !Number.isFinite(r.notAfter)) throw new Error("a revoked entry is malformed");
    }
    if (s.withdrawn !== undefined && (!Array.isArray(s.withdrawn) || s.withdrawn.some((w) => typeof w !== "string"))) throw new Error("the withdrawn list is malformed");
    return s;
  } catch (e) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.state} is damaged (${(e as Error).message}): restore it from a backup`, { cause: e });
  }
}

/** bridge/bridge.key's certificate and decrypted key (ERR_PASSPHRASE_WRONG, ERR_WORKSPACE_CORRUPT). */
function readBridgeKey(path: string, passphrase: string): { cert: Buffer; key: ReturnType<typeof decryptPrivateKey> } {
  const bytes = readBridgeFile(path);
  if (!bytes) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} is gone: restore it from a backup`);
  const blocks = parsePemBlocks(bytes.toString("utf8"));
  const cert = blocks.find((b) => b.label === "CERTIFICATE")?.der;
  const keyPem = blocks.find((b) => b.label === "ENCRYPTED PRIVATE KEY");
  if (!cert || !keyPem) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} lacks the Bridge CA's certificate or key: restore it from a backup`);
  return { cert, key: decryptPrivateKey(toPem(keyPem.der, "ENCRYPTED PRIVATE KEY"), passphrase, "the key of the Bridge CA") };
}

/**
 * Finishes a `ca rewrap` that stopped between replacing the CA keys and installing the Bridge's re-encrypted
 * key: bridge.key.next, when `passphrase` opens it (the new one), becomes bridge.key. When it does not (the
 * rewrap stopped before the CA keys changed: the old passphrase still rules), it is left for the next rewrap.
 */
function rollForwardRewrap(paths: BridgePaths, passphrase: string): void {
  if (!existsSync(paths.keyNext)) return;
  try {
    const { cert, key } = readBridgeKey(paths.keyNext, passphrase);
    if (!createPublicKey(key).export({ type: "spki", format: "der" }).equals(certificateParts(cert).spki)) return;
  } catch {
    return;
  }
  renameSync(paths.keyNext, paths.key);
  syncDir(paths.dir);
}

/** The Bridge's certificate and signer: the stored ones, or new ones (a new RSA-2048 key, self-signed). */
async function openOrCreateBridge(
  ws: Workspace,
  paths: BridgePaths,
  opts: { readonly passphrase: string; readonly keyWrap: KeyWrapParams | undefined; readonly onProgress?: (m: string) => void },
  state: BridgeState,
): Promise<{ der: Buffer; signer: Signer; created: boolean }> {
  rollForwardRewrap(paths, opts.passphrase);
  if (existsSync(paths.key)) {
    const { cert, key } = readBridgeKey(paths.key, opts.passphrase);
    const signer = new SoftwareSigner(key);
    if (!signer.spki.equals(certificateParts(cert).spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the Bridge CA's key in ${paths.key} does not match its certificate`);
    const notAfter = certNotAfter(cert);
    if (notAfter.getTime() <= ws.clock.now().getTime()) {
      throw new JpkiError("ERR_CA_INVALID", `the Bridge CA's certificate expired at ${notAfter.toISOString()}: it signs nothing more (a new Bridge generation is not supported yet)`);
    }
    return { der: cert, signer, created: false };
  }
  // A Bridge that has issued anything is never silently replaced: verifiers trust its key, and a new one would
  // leave every cross-certificate and ARL they hold unverifiable.
  if (state.cross.length > 0 || BigInt(state.arlNumber) > 0n || existsSync(paths.arl)) {
    throw new JpkiError(
      "ERR_WORKSPACE_CORRUPT",
      `${paths.key} is missing, but this Bridge CA has issued cross-certificates or ARLs: restore bridge/bridge.key from a backup (a new key would break every verifier's trust in the Bridge)`,
    );
  }
  if (!opts.keyWrap) throw new JpkiError("ERR_INTERNAL", "creating the Bridge CA needs the workspace's key-wrap parameters");
  opts.onProgress?.("generating the Bridge CA key (RSA-2048)");
  const key = await generateRsaKey(2048);
  const signer = new SoftwareSigner(key);
  const name = encodeName(BRIDGE_SUBJECT);
  const { notBefore: nb, notAfter } = caValidity(ws.clock.now(), ws.config.caValidityYears);
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: name,
    notBefore: nb,
    notAfter,
    subject: name,
    spki: signer.spki,
    extensions: [
      CA_KEY_USAGE(),
      extension(EXT_OID.subjectAltName, false, generalNamesDirName(encodeName(BRIDGE_SUBJECT_JA))),
      extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
      extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(name, [caUrls(ws.config.baseUrl, BRIDGE_ID).arl])),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(signer.spki))),
    ],
  });
  const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
  // Certificate and key in one file, written atomically: a crash leaves both or neither.
  writeFileAtomic(paths.key, toPem(der, "CERTIFICATE") + encryptPrivateKey(key, opts.passphrase, opts.keyWrap));
  return { der, signer, created: true };
}

interface Issuer {
  readonly der: Buffer;
  readonly signer: Signer;
}

/**
 * One cross-certificate: `subjectDer`'s name and key, certified by `issuer`, valid from now until neither
 * certificate has expired, pathLenConstraint 0, the issuer's ARL as distribution point.
 */
async function crossCertify(issuer: Issuer, subjectDer: Buffer, now: Date, policy: string | undefined, cpsUri: string): Promise<Buffer> {
  const ip = certificateParts(issuer.der);
  const sp = certificateParts(subjectDer);
  // From when both CAs existed (a document signed before the cross-certification still verifies through it at
  // its signing time) until either certificate ends.
  const nb = new Date(Math.max(certNotBefore(issuer.der).getTime(), certNotBefore(subjectDer).getTime()));
  const notAfter = new Date(Math.min(certNotAfter(issuer.der).getTime(), certNotAfter(subjectDer).getTime()));
  if (notAfter.getTime() <= now.getTime()) throw new JpkiError("ERR_CA_INVALID", `a certificate to cross-certify expired at ${notAfter.toISOString()}`);
  const issuerCdp = certificateExtension(issuer.der, EXT_OID.cRLDistributionPoints);
  if (!issuerCdp) throw new JpkiError("ERR_CA_INVALID", "the issuing CA's certificate has no cRLDistributionPoints: the cross-certificate's ARL has nowhere to be found");
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: issuer.signer.algorithmIdentifier,
    issuer: Buffer.from(ip.subject),
    notBefore: nb,
    notAfter,
    subject: Buffer.from(sp.subject),
    spki: Buffer.from(sp.spki),
    extensions: [
      CA_KEY_USAGE(),
      extension(EXT_OID.basicConstraints, true, basicConstraints(true, 0)),
      ...(policy ? [extension(EXT_OID.certificatePolicies, false, certificatePolicies(policy, cpsUri))] : []),
      extension(EXT_OID.cRLDistributionPoints, false, issuerCdp),
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(keyIdentifier(ip.spki))),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(sp.spki))),
    ],
  });
  return assembleCertificate(tbs, issuer.signer.algorithmIdentifier, await issuer.signer.sign(tbs));
}

function certNotAfter(der: Buffer): Date {
  return new Date(new X509(der).validTo);
}

function certNotBefore(der: Buffer): Date {
  return new Date(new X509(der).validFrom);
}

function crossFile(paths: BridgePaths, c: { caId: string; direction: CrossDirection }): string {
  return join(paths.crossDir, c.direction === "bridge-to-ca" ? `${c.caId}.by-bridge.pem` : `bridge.by-${c.caId}.pem`);
}

function describeCross(paths: BridgePaths, s: StoredCross): CrossCertificate {
  const der = Buffer.from(s.der, "base64");
  const x = new X509(der);
  return { caId: s.caId, direction: s.direction, serial: x.serialNumber.toLowerCase(), notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo), der, path: crossFile(paths, s) };
}

/** The current cross-certificates of a CA: made for its present certificate, and by (or for) the present Bridge. */
function currentCross(state: BridgeState, rec: CaRecord, bridge: Issuer): StoredCross[] {
  const caSha = sha256(rec.certificateDer);
  const bridgeKey = createPublicKey({ key: Buffer.from(certificateParts(bridge.der).spki), format: "der", type: "spki" });
  const bridgeSpki = certificateParts(bridge.der).spki;
  return state.cross.filter((c) => {
    if (c.caId !== rec.id || c.caCertificateSha256 !== caSha) return false;
    const der = Buffer.from(c.der, "base64");
    if (c.direction === "ca-to-bridge") return Buffer.from(certificateParts(der).spki).equals(bridgeSpki);
    const [tbs, , sig] = children(der);
    return cryptoVerify("sha256", tbs!, bridgeKey, sig!.subarray(readHeader(sig!).headerLength + 1));
  });
}

/** The next ARL number: past the state's and past the published ARL's (a state file lost or restored from an old backup). */
function nextArlNumber(paths: BridgePaths, state: BridgeState): bigint {
  // none published, or unreadable: the state's number
  const published = readCrlFile(paths.arl)?.crlNumber;
  const next = (published !== undefined && published > BigInt(state.arlNumber) ? published : BigInt(state.arlNumber)) + 1n;
  if (next > MAX_ARL_NUMBER) {
    // Only an altered file gets there: at a hundred ARLs a second the range lasts billions of years.
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the next Bridge ARL number would pass ${MAX_ARL_NUMBER} (${published !== undefined && published > BigInt(state.arlNumber) ? paths.arl : paths.state} holds ${published !== undefined && published > BigInt(state.arlNumber) ? published : state.arlNumber}): the file was altered; restore it from a backup`);
  }
  return next;
}

/**
 * Creates the Bridge CA if the workspace has none, cross-certifies the CAs asked for (both directions) whose
 * current certificate has no current cross-certificates yet, and publishes a new ARL of the Bridge. Idempotent:
 * run it again after `jpki ca init` adds prefectures. CAs whose certificate has expired are left out
 * (`expired`), and so are those the Bridge revoked (`withdrawn`).
 */
export async function certifyBridge(ws: Workspace, opts: BridgeOptions): Promise<BridgeResult> {
  const paths = bridgePaths(ws.paths.root);
  const all = await ws.store.listCas();
  const wanted = opts.caIds
    ? opts.caIds.map((id) => {
        const r = all.find((c) => c.id === id);
        if (!r) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${id} in ${ws.paths.root}: 'jpki ca list' shows the CAs`);
        return r;
      })
    : all;
  if (wanted.length === 0) throw new JpkiError("ERR_CA_UNKNOWN", `no CAs in ${ws.paths.root} to cross-certify: run 'jpki ca init' first`);
  return withBridgeLock(paths, async () => {
    const state = readState(paths);
    const bridge = await openOrCreateBridge(ws, paths, opts, state);
    const now = ws.clock.now();
    const issued: StoredCross[] = [];
    const unchanged: string[] = [];
    const expired: string[] = [];
    const withdrawn: string[] = [];
    const compromised: string[] = [];
    // A generation rolled over for a compromised key (a link row without certificates): the Bridge never vouches
    // for that key anew. It cross-certified it as any CA (found by a helper): a Bridge made, or re-run, after
    // `ca rollover --compromised` gave every verifier trusting the Bridge a path to whatever the stolen key signs.
    const compromisedIds = await compromisedCaIds(ws.store);
    const { CertificationAuthority } = await import("./authority.js");
    for (const rec of wanted) {
      if (certNotAfter(rec.certificateDer).getTime() <= now.getTime()) {
        expired.push(rec.id);
        continue;
      }
      if (compromisedIds.has(rec.id)) {
        compromised.push(rec.id);
        continue;
      }
      if (state.withdrawn?.includes(sha256(rec.certificateDer))) {
        withdrawn.push(rec.id);
        continue;
      }
      const current = currentCross(state, rec, bridge);
      if (current.some((c) => c.direction === "bridge-to-ca") && current.some((c) => c.direction === "ca-to-bridge")) {
        unchanged.push(rec.id);
        continue;
      }
      opts.onProgress?.(`cross-certifying ${rec.id}`);
      const ca = CertificationAuthority.open(rec, opts.passphrase, ws.config);
      const caSha = sha256(rec.certificateDer);
      const toCa = await crossCertify(bridge, rec.certificateDer, now, purposePolicy(rec, ws.config), ws.config.cpsUri);
      const toBridge = await crossCertify({ der: rec.certificateDer, signer: ca.signer }, bridge.der, now, undefined, ws.config.cpsUri);
      issued.push({ caId: rec.id, direction: "bridge-to-ca", caCertificateSha256: caSha, der: toCa.toString("base64") });
      issued.push({ caId: rec.id, direction: "ca-to-bridge", caCertificateSha256: caSha, der: toBridge.toString("base64") });
    }
    // The cross-certificates issued and the ARL number reserved become durable in one write before anything is
    // published: a crash after it leaves a gap in the ARL numbers, never a number used twice.
    const replaced = new Set(issued.map((c) => `${c.caId}/${c.direction}`));
    const number = nextArlNumber(paths, state);
    const next: BridgeState = { ...state, arlNumber: number.toString(), cross: [...state.cross.filter((c) => !replaced.has(`${c.caId}/${c.direction}`)), ...issued] };
    writeFileAtomic(paths.state, `${JSON.stringify(next, null, 1)}\n`);

    const arl = await publishBridgeArl(ws, paths, bridge, number, next);
    exportBridge(paths, bridge.der, next);
    const x = new X509(bridge.der);
    return {
      created: bridge.created,
      subject: x.subject.split("\n").join(", "),
      serial: x.serialNumber.toLowerCase(),
      notBefore: new Date(x.validFrom),
      notAfter: new Date(x.validTo),
      sha256Fingerprint: sha256(bridge.der),
      certificatePath: paths.certificatePem,
      crossBundlePath: paths.crossBundle,
      issued: issued.map((s) => describeCross(paths, s)),
      unchanged,
      expired,
      withdrawn,
      compromised,
      stillVouched: compromised.filter((id) => next.cross.some((c) => c.caId === id && c.direction === "bridge-to-ca")),
      arl,
    };
  });
}

/**
 * Whether the Bridge CA (if the workspace has one) holds an unrevoked Bridge -> CA cross-certificate of `caId`:
 * after a compromise is declared (ca/compromised.ts), the operator is told to withdraw it ('ca bridge --revoke').
 */
export function bridgeVouchesFor(ws: Workspace, caId: string): boolean {
  const paths = bridgePaths(ws.paths.root);
  if (!existsSync(paths.state)) return false;
  return readState(paths).cross.some((c) => c.caId === caId && c.direction === "bridge-to-ca");
}

/** What `revokeBridgeCross` did. */
export interface BridgeRevocation {
  readonly caId: string;
  /** the Bridge -> CA cross-certificates now on the Bridge's ARL */
  readonly revoked: ReadonlyArray<{ readonly serial: string; readonly reason: CrlReasonName }>;
  readonly arl: BridgeArl;
}

/**
 * The Bridge stops vouching for a CA (its key compromised, the prefecture leaving): every Bridge -> CA
 * cross-certificate of it goes onto the Bridge's ARL with `reason` (default cACompromise), both directions leave
 * the bundle, and re-runs of `jpki ca bridge` leave that CA certificate out. A verifier trusting the Bridge
 * then rejects the CA's certificates once it has the new ARL. (The CA -> Bridge certificate is the CA's own to
 * revoke, on the CA's ARL.)
 */
export async function revokeBridgeCross(ws: Workspace, opts: { readonly passphrase: string; readonly caId: string; readonly reason?: CrlReasonName }): Promise<BridgeRevocation> {
  const paths = bridgePaths(ws.paths.root);
  const reason = opts.reason ?? "cACompromise";
  if (reason === "removeFromCRL") throw new JpkiError("ERR_USAGE", "removeFromCRL un-revokes, in delta CRLs only: it is not a reason to revoke");
  if (!existsSync(paths.key)) throw new JpkiError("ERR_CA_UNKNOWN", `this workspace has no Bridge CA: 'jpki ca bridge' creates it`);
  return withBridgeLock(paths, async () => {
    const state = readState(paths);
    const bridge = await openOrCreateBridge(ws, paths, { passphrase: opts.passphrase, keyWrap: undefined }, state);
    const mine = state.cross.filter((c) => c.caId === opts.caId);
    if (!mine.length) throw new JpkiError("ERR_CA_UNKNOWN", `the Bridge CA holds no cross-certificate of ${opts.caId}: 'jpki ca bridge --json' lists them`);
    const at = Math.floor(ws.clock.now().getTime() / 1000) * 1000;
    const revoked: RevokedCross[] = mine
      .filter((c) => c.direction === "bridge-to-ca")
      .map((c) => {
        const der = Buffer.from(c.der, "base64");
        const tlv = certificateParts(der).serial;
        let serial = Buffer.from(tlv.subarray(readHeader(tlv).headerLength));
        if (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1); // the INTEGER's sign octet
        return { caId: c.caId, serial: serial.toString("hex"), revokedAt: at, reason: CRL_REASON[reason], notAfter: certNotAfter(der).getTime() };
      });
    const number = nextArlNumber(paths, state);
    const next: BridgeState = {
      ...state,
      arlNumber: number.toString(),
      cross: state.cross.filter((c) => c.caId !== opts.caId),
      revoked: [...(state.revoked ?? []), ...revoked],
      withdrawn: [...new Set([...(state.withdrawn ?? []), ...mine.map((c) => c.caCertificateSha256)])],
    };
    writeFileAtomic(paths.state, `${JSON.stringify(next, null, 1)}\n`);
    const arl = await publishBridgeArl(ws, paths, bridge, number, next);
    exportBridge(paths, bridge.der, next);
    return { caId: opts.caId, revoked: revoked.map((r) => ({ serial: r.serial, reason })), arl };
  });
}

/** What refreshing the Bridge's ARL published. */
export interface BridgeArl {
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly entries: number;
  readonly path: string;
  readonly sha256: string;
  readonly byteLength: number;
}

/**
 * A new ARL of the Bridge when the workspace has a Bridge and its ARL is missing or within `marginMs` of its
 * nextUpdate (or always, with `force`); undefined otherwise. The CRL schedule (crl/updater.ts) calls it on each
 * tick, so a verifier trusting the Bridge never finds its ARL expired while `jpki serve` or `watch` runs.
 */
export async function refreshBridgeArl(ws: Workspace, passphrase: string, opts: { readonly marginMs: number; readonly force?: boolean }): Promise<BridgeArl | undefined> {
  const paths = bridgePaths(ws.paths.root);
  if (!existsSync(paths.key)) return undefined;
  // Also due when the ARL in place is numbered below the number state.json last reserved: a publication that died
  // after reserving, or a restore, which moves the numbering past the gap while the file put back keeps the
  // backup's number (below what verifiers have seen) until its nextUpdate nears.
  const due = () => {
    if (opts.force) return true;
    // An ARL that does not parse counts as none: it is published anew.
    const arl = existsSync(paths.arl) ? readCrlFile(paths.arl) : undefined;
    if (!arl) return true;
    return (arl.crlNumber ?? 0n) < BigInt(readState(paths).arlNumber) || (arl.nextUpdate?.getTime() ?? 0) - ws.clock.now().getTime() <= opts.marginMs;
  };
  if (!due()) return undefined;
  return withBridgeLock(paths, async () => {
    if (!due()) return undefined; // another process refreshed it meanwhile
    const state = readState(paths);
    const bridge = await openOrCreateBridge(ws, paths, { passphrase, keyWrap: undefined }, state);
    const number = nextArlNumber(paths, state);
    const next = { ...state, arlNumber: number.toString() };
    writeFileAtomic(paths.state, `${JSON.stringify(next, null, 1)}\n`);
    return publishBridgeArl(ws, paths, bridge, number, next);
  });
}

/** A Bridge ARL as the CRL publishers report theirs. */
export function bridgeArlPublished(arl: BridgeArl): PublishedCrl {
  return {
    caId: BRIDGE_ID,
    scope: ARL_SCOPE,
    number: arl.number,
    thisUpdate: arl.thisUpdate,
    nextUpdate: arl.nextUpdate,
    entries: arl.entries,
    derPath: arl.path,
    sha256: arl.sha256,
    byteLength: arl.byteLength,
    superseded: false,
  };
}


/**
 * The Bridge's ARL: the cross-certificates it revoked (until their notAfter has passed by the workspace's
 * grace), numbered, signed, verified before install; nextUpdate never past the Bridge's own notAfter.
 */
async function publishBridgeArl(ws: Workspace, paths: BridgePaths, bridge: Issuer, number: bigint, state: BridgeState): Promise<BridgeArl> {
  const thisUpdate = new Date(Math.floor(ws.clock.now().getTime() / 1000) * 1000);
  const nextUpdate = new Date(Math.min(thisUpdate.getTime() + ws.config.crlLifetimeHours * 3600_000, certNotAfter(bridge.der).getTime()));
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw new JpkiError("ERR_CA_INVALID", "the Bridge CA's certificate has expired: it signs no ARL");
  const keepAfter = thisUpdate.getTime() - ws.config.expiredGraceDays * 86_400_000;
  const entries = (state.revoked ?? [])
    .filter((r) => r.notAfter > keepAfter)
    .map((r) => ({ serial: r.serial, revokedAt: new Date(r.revokedAt), reason: r.reason }));
  const parts = certificateParts(bridge.der);
  const chunks: Buffer[] = [];
  await buildCrl({
    issuerName: Buffer.from(parts.subject),
    authorityKeyId: keyIdentifier(parts.spki),
    number,
    thisUpdate,
    nextUpdate,
    entries: [entries],
    signer: bridge.signer,
    issuerKey: Buffer.from(parts.spki),
    sink: (c) => chunks.push(c),
    extraExtensions: [arlIssuingDistributionPoint(BRIDGE_ID, bridge.der)],
  });
  const der = Buffer.concat(chunks);
  verifyArl(der, parts.spki);
  mkdirSync(dirname(paths.arl), { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.arl, der);
  return { number, thisUpdate, nextUpdate, entries: entries.length, path: paths.arl, sha256: sha256(der), byteLength: der.length };
}

/** Check what we sign: the ARL's signature verifies with the Bridge's key before it is installed. */
function verifyArl(der: Buffer, spki: Uint8Array): void {
  const [tbs, , sig] = children(der);
  const ok = cryptoVerify("sha256", tbs!, createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }), sig!.subarray(readHeader(sig!).headerLength + 1));
  if (!ok) throw new JpkiError("ERR_CRL_UNVERIFIED", "the Bridge CA's ARL did not verify with its key: it was not published");
}

/** The derived files: the certificate for --trust, each current cross-certificate, the bundle for --chain. */
function exportBridge(paths: BridgePaths, der: Buffer, state: BridgeState): void {
  writeFileAtomic(paths.certificateDer, der);
  writeFileAtomic(paths.certificatePem, toPem(der, "CERTIFICATE"));
  mkdirSync(paths.crossDir, { recursive: true, mode: 0o700 });
  const pems: string[] = [];
  const files = new Set<string>();
  for (const c of [...state.cross].sort((a, b) => a.caId.localeCompare(b.caId) || a.direction.localeCompare(b.direction))) {
    const pem = toPem(Buffer.from(c.der, "base64"), "CERTIFICATE");
    const file = crossFile(paths, c);
    writeFileAtomic(file, pem);
    files.add(file);
    pems.push(pem);
  }
  // A withdrawn CA's files go: the bundle and the directory list the current cross-certificates only. Files
  // only: a directory someone made there is not ours to remove (rm would fail EISDIR after the ARL went out).
  for (const e of readdirSync(paths.crossDir, { withFileTypes: true })) {
    if (e.name.endsWith(".pem") && !e.isDirectory() && !files.has(join(paths.crossDir, e.name))) rmSync(join(paths.crossDir, e.name), { force: true });
  }
  writeFileAtomic(paths.crossBundle, pems.join(""));
}

/** The workspace's Bridge, when it has one: its certificate and every current cross-certificate (DER). */
export function readBridge(root: string): { certificate: Buffer; crossCertificates: Buffer[] } | undefined {
  const paths = bridgePaths(root);
  const bytes = readBridgeFile(paths.key);
  if (!bytes) return undefined;
  const cert = parsePemBlocks(bytes.toString("utf8")).find((b) => b.label === "CERTIFICATE")?.der;
  if (!cert) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} lacks the Bridge CA's certificate`);
  return { certificate: cert, crossCertificates: readState(paths).cross.map((c) => Buffer.from(c.der, "base64")) };
}

/** A re-encrypted Bridge key written durably beside the current one, to install once the CA keys are replaced. */
export interface BridgeRewrap {
  install(): void;
  discard(): void;
}

/**
 * For `rewrapCaKeys`, under the Bridge's lock: the Bridge's certificate and key re-encrypted under
 * `newPassphrase` with `params`, written durably to bridge/bridge.key.next (not installed: the caller installs it
 * once the CA keys are replaced; if it stops in between, the next command opening the Bridge with the new
 * passphrase finishes the job, rollForwardRewrap). Undefined when the workspace has no Bridge. Wrong passphrase:
 * ERR_PASSPHRASE_WRONG, nothing written.
 */
export function stageBridgeRewrap(root: string, passphrase: string, newPassphrase: string, params: KeyWrapParams): BridgeRewrap | undefined {
  const paths = bridgePaths(root);
  rollForwardRewrap(paths, passphrase);
  if (!existsSync(paths.key)) return undefined;
  const { cert, key } = readBridgeKey(paths.key, passphrase);
  const pem = encryptPrivateKey(key, newPassphrase, params);
  const back = createPublicKey(decryptPrivateKey(pem, newPassphrase, "the re-encrypted key of the Bridge CA")).export({ type: "spki", format: "der" });
  if (!back.equals(certificateParts(cert).spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the Bridge CA's key in ${paths.key} does not match its certificate`);
  writeFileAtomic(paths.keyNext, toPem(cert, "CERTIFICATE") + pem);
  return {
    install: () => {
      renameSync(paths.keyNext, paths.key);
      syncDir(paths.dir);
    },
    discard: () => rmSync(paths.keyNext, { force: true }),
  };
}

/** Runs `fn` holding the Bridge's lock when the workspace has a Bridge directory (ca rewrap), else just runs it. */
export async function withBridgeLockIfAny<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const paths = bridgePaths(root);
  return existsSync(paths.dir) ? withBridgeLock(paths, fn) : fn();
}
