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
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { X509Certificate as X509, createHash, createPublicKey, verify as cryptoVerify } from "node:crypto";
import { join } from "node:path";
import { JpkiError } from "../errors.js";
import { certificateParts, children, extension, readHeader } from "../pki/der.js";
import { decryptPrivateKey, encryptPrivateKey, generateRsaKey, type KeyWrapParams } from "../pki/keys.js";
import { parsePemBlocks, toPem } from "../pki/pem.js";
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
import { processAlive, stageFile, type StagedFile } from "../store/staging.js";
import { writeFileAtomic } from "../store/files.js";
import { ARL_SCOPE, type CaRecord } from "../store/types.js";
import type { PublishedCrl } from "../crl/publisher.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import type { Workspace } from "../workspace/workspace.js";
import { buildCrl } from "../crl/builder.js";
import { arlIssuingDistributionPoint, certificateExtension } from "../crl/scope.js";
import { describeCrl } from "../profile/describe.js";
import { assembleCertificate, encodeTbs } from "./certificate.js";
import { caUrls } from "./ids.js";
import { endOfJstDay } from "./validity.js";

import { BRIDGE_ID } from "./bridge-id.js";

export { BRIDGE_ID };

export interface BridgePaths {
  readonly dir: string;
  /** the certificate and the encrypted key, one PEM file (the record) */
  readonly key: string;
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

interface BridgeState {
  version: 1;
  /** the last ARL number reserved (decimal string: a bigint) */
  arlNumber: string;
  cross: StoredCross[];
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

/** Runs `fn` holding bridge/.lock (O_EXCL, with our pid; a lock whose process is gone is taken over). */
async function withBridgeLock<T>(paths: BridgePaths, fn: () => Promise<T>): Promise<T> {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  // Two tries: the second after removing a lock whose process is gone (killed mid-run).
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(paths.lock, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let holder = NaN;
      try {
        holder = Number.parseInt(readFileSync(paths.lock, "utf8").trim(), 10);
      } catch {
        // gone meanwhile: try again
      }
      // An unreadable pid is a lock being taken right now (created, pid not yet written): held.
      if (attempt > 0 || !(Number.isInteger(holder) && holder > 0) || processAlive(holder)) {
        throw new JpkiError(
          "ERR_WORKSPACE_LOCKED",
          `another jpki process${Number.isInteger(holder) ? ` (pid ${holder})` : ""} is working on the Bridge CA of this workspace: retry when it finishes (if none runs, remove ${paths.lock})`,
        );
      }
      rmSync(paths.lock, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(paths.lock, { force: true });
  }
}

function readState(paths: BridgePaths): BridgeState {
  if (!existsSync(paths.state)) return { version: 1, arlNumber: "0", cross: [] };
  try {
    const s = JSON.parse(readFileSync(paths.state, "utf8")) as BridgeState;
    if (s.version !== 1 || !/^\d+$/.test(s.arlNumber) || !Array.isArray(s.cross)) throw new Error("unexpected shape");
    return s;
  } catch (e) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.state} is damaged (${(e as Error).message}): restore it from a backup`, { cause: e });
  }
}

/** The Bridge's certificate and signer: the stored ones, or new ones (a new RSA-2048 key, self-signed). */
async function openOrCreateBridge(
  ws: Workspace,
  paths: BridgePaths,
  opts: { readonly passphrase: string; readonly keyWrap: KeyWrapParams | undefined; readonly onProgress?: (m: string) => void },
): Promise<{ der: Buffer; signer: Signer; created: boolean }> {
  if (existsSync(paths.key)) {
    const blocks = parsePemBlocks(readFileSync(paths.key, "utf8"));
    const cert = blocks.find((b) => b.label === "CERTIFICATE")?.der;
    const keyPem = blocks.find((b) => b.label === "ENCRYPTED PRIVATE KEY");
    if (!cert || !keyPem) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} lacks the Bridge CA's certificate or key: restore it from a backup`);
    const key = decryptPrivateKey(toPem(keyPem.der, "ENCRYPTED PRIVATE KEY"), opts.passphrase, "the key of the Bridge CA");
    const signer = new SoftwareSigner(key);
    if (!signer.spki.equals(certificateParts(cert).spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the Bridge CA's key in ${paths.key} does not match its certificate`);
    return { der: cert, signer, created: false };
  }
  if (!opts.keyWrap) throw new JpkiError("ERR_INTERNAL", "creating the Bridge CA needs the workspace's key-wrap parameters");
  opts.onProgress?.("generating the Bridge CA key (RSA-2048)");
  const key = await generateRsaKey(2048);
  const signer = new SoftwareSigner(key);
  const name = encodeName(BRIDGE_SUBJECT);
  const nb = new Date(Math.floor(ws.clock.now().getTime() / 1000) * 1000);
  const jst = new Date(nb.getTime() + 9 * 3600_000);
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: name,
    notBefore: nb,
    notAfter: endOfJstDay(jst.getUTCFullYear() + ws.config.caValidityYears, jst.getUTCMonth(), jst.getUTCDate()),
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
  const nb = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const notAfter = new Date(Math.min(certNotAfter(issuer.der).getTime(), certNotAfter(subjectDer).getTime()));
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

function crossFile(paths: BridgePaths, c: { caId: string; direction: CrossDirection }): string {
  return join(paths.crossDir, c.direction === "bridge-to-ca" ? `${c.caId}.by-bridge.pem` : `bridge.by-${c.caId}.pem`);
}

function describeCross(paths: BridgePaths, s: StoredCross): CrossCertificate {
  const der = Buffer.from(s.der, "base64");
  const x = new X509(der);
  return { caId: s.caId, direction: s.direction, serial: x.serialNumber.toLowerCase(), notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo), der, path: crossFile(paths, s) };
}

/**
 * Creates the Bridge CA if the workspace has none, cross-certifies the CAs asked for (both directions) whose
 * current certificate has no cross-certificates yet, and publishes a new ARL of the Bridge. Idempotent: run it
 * again after `jpki ca init` adds prefectures, or to refresh the ARL before its nextUpdate.
 */
export async function certifyBridge(ws: Workspace, opts: BridgeOptions): Promise<BridgeResult> {
  const paths = bridgePaths(ws.paths.root);
  const all = await ws.store.listCas();
  const wanted = opts.caIds ? opts.caIds.map((id) => {
    const r = all.find((c) => c.id === id);
    if (!r) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${id} in ${ws.paths.root}: 'jpki ca list' shows the CAs`);
    return r;
  }) : all;
  if (wanted.length === 0) throw new JpkiError("ERR_CA_UNKNOWN", `no CAs in ${ws.paths.root} to cross-certify: run 'jpki ca init' first`);
  return withBridgeLock(paths, async () => {
    const state = readState(paths);
    const bridge = await openOrCreateBridge(ws, paths, opts);
    const now = ws.clock.now();
    const issued: StoredCross[] = [];
    const unchanged: string[] = [];
    const { CertificationAuthority } = await import("./authority.js");
    for (const rec of wanted) {
      const caSha = sha256(rec.certificateDer);
      const current = state.cross.filter((c) => c.caId === rec.id && c.caCertificateSha256 === caSha);
      if (current.some((c) => c.direction === "bridge-to-ca") && current.some((c) => c.direction === "ca-to-bridge")) {
        unchanged.push(rec.id);
        continue;
      }
      opts.onProgress?.(`cross-certifying ${rec.id}`);
      const ca = CertificationAuthority.open(rec, opts.passphrase, ws.config);
      const toCa = await crossCertify(bridge, rec.certificateDer, now, purposePolicy(rec, ws.config), ws.config.cpsUri);
      const toBridge = await crossCertify({ der: rec.certificateDer, signer: ca.signer }, bridge.der, now, undefined, ws.config.cpsUri);
      issued.push({ caId: rec.id, direction: "bridge-to-ca", caCertificateSha256: caSha, der: toCa.toString("base64") });
      issued.push({ caId: rec.id, direction: "ca-to-bridge", caCertificateSha256: caSha, der: toBridge.toString("base64") });
    }
    // The cross-certificates issued and the ARL number reserved become durable in one write before anything is
    // published: a crash after it leaves a gap in the ARL numbers, never a number used twice.
    const replaced = new Set(issued.map((c) => `${c.caId}/${c.direction}`));
    const number = BigInt(state.arlNumber) + 1n;
    const next: BridgeState = { version: 1, arlNumber: number.toString(), cross: [...state.cross.filter((c) => !replaced.has(`${c.caId}/${c.direction}`)), ...issued] };
    writeFileAtomic(paths.state, `${JSON.stringify(next, null, 1)}\n`);

    const arl = await publishBridgeArl(ws, paths, bridge, number);
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
      arl,
    };
  });
}

/** What refreshing the Bridge's ARL published. */
export interface BridgeArl {
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
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
  const due = () => opts.force || !existsSync(paths.arl) || arlNextUpdate(paths.arl) - ws.clock.now().getTime() <= opts.marginMs;
  if (!due()) return undefined;
  return withBridgeLock(paths, async () => {
    if (!due()) return undefined; // another process refreshed it meanwhile
    const state = readState(paths);
    const bridge = await openOrCreateBridge(ws, paths, { passphrase, keyWrap: undefined });
    const number = BigInt(state.arlNumber) + 1n;
    writeFileAtomic(paths.state, `${JSON.stringify({ ...state, arlNumber: number.toString() }, null, 1)}\n`);
    return publishBridgeArl(ws, paths, bridge, number);
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
    entries: 0,
    derPath: arl.path,
    sha256: arl.sha256,
    byteLength: arl.byteLength,
    superseded: false,
  };
}

/** The nextUpdate of the ARL at `path` (ms), or 0 when it does not parse (then it is refreshed). */
function arlNextUpdate(path: string): number {
  try {
    const next = describeCrl(readFileSync(path), { maxEntries: 0 }).nextUpdate;
    return next ? Date.parse(next) : 0;
  } catch {
    return 0;
  }
}

/** The Bridge's ARL: no cross-certificate is revoked (none can be yet), numbered, signed, read back before install. */
async function publishBridgeArl(ws: Workspace, paths: BridgePaths, bridge: Issuer, number: bigint): Promise<BridgeArl> {
  const thisUpdate = new Date(Math.floor(ws.clock.now().getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + ws.config.crlLifetimeHours * 3600_000);
  const parts = certificateParts(bridge.der);
  const chunks: Buffer[] = [];
  await buildCrl({
    issuerName: Buffer.from(parts.subject),
    authorityKeyId: keyIdentifier(parts.spki),
    number,
    thisUpdate,
    nextUpdate,
    entries: [],
    signer: bridge.signer,
    issuerKey: Buffer.from(parts.spki),
    sink: (c) => chunks.push(c),
    extraExtensions: [arlIssuingDistributionPoint(BRIDGE_ID, bridge.der)],
  });
  const der = Buffer.concat(chunks);
  verifyArl(der, parts.spki);
  mkdirSync(join(ws.paths.root, "arl"), { recursive: true, mode: 0o700 });
  writeFileAtomic(paths.arl, der);
  return { number, thisUpdate, nextUpdate, path: paths.arl, sha256: sha256(der), byteLength: der.length };
}

/** Check what we sign: the ARL's signature verifies with the Bridge's key before it is installed. */
function verifyArl(der: Buffer, spki: Uint8Array): void {
  const [tbs, , sig] = children(der);
  const ok = cryptoVerify("sha256", tbs!, createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }), sig!.subarray(readHeader(sig!).headerLength + 1));
  if (!ok) throw new JpkiError("ERR_CRL_UNVERIFIED", "the Bridge CA's ARL did not verify with its key: it was not published");
}

/** The derived files: the certificate for --trust, each cross-certificate, the bundle for --chain. */
function exportBridge(paths: BridgePaths, der: Buffer, state: BridgeState): void {
  writeFileAtomic(paths.certificateDer, der);
  writeFileAtomic(paths.certificatePem, toPem(der, "CERTIFICATE"));
  mkdirSync(paths.crossDir, { recursive: true, mode: 0o700 });
  const pems: string[] = [];
  for (const c of [...state.cross].sort((a, b) => a.caId.localeCompare(b.caId) || a.direction.localeCompare(b.direction))) {
    const pem = toPem(Buffer.from(c.der, "base64"), "CERTIFICATE");
    writeFileAtomic(crossFile(paths, c), pem);
    pems.push(pem);
  }
  writeFileAtomic(paths.crossBundle, pems.join(""));
}

/** The workspace's Bridge, when it has one: its certificate and every current cross-certificate (DER). */
export function readBridge(root: string): { certificate: Buffer; crossCertificates: Buffer[] } | undefined {
  const paths = bridgePaths(root);
  if (!existsSync(paths.key)) return undefined;
  const cert = parsePemBlocks(readFileSync(paths.key, "utf8")).find((b) => b.label === "CERTIFICATE")?.der;
  if (!cert) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} lacks the Bridge CA's certificate`);
  return { certificate: cert, crossCertificates: readState(paths).cross.map((c) => Buffer.from(c.der, "base64")) };
}

/**
 * For `rewrapCaKeys`: the Bridge's certificate and key re-encrypted under `newPassphrase` with `params`, staged
 * beside bridge/bridge.key (not installed: the caller installs it once the CA keys are replaced), or undefined
 * when the workspace has no Bridge. Wrong passphrase: ERR_PASSPHRASE_WRONG, nothing staged.
 */
export function stageBridgeRewrap(root: string, passphrase: string, newPassphrase: string, params: KeyWrapParams): StagedFile | undefined {
  const paths = bridgePaths(root);
  if (!existsSync(paths.key)) return undefined;
  const blocks = parsePemBlocks(readFileSync(paths.key, "utf8"));
  const cert = blocks.find((b) => b.label === "CERTIFICATE")?.der;
  const keyPem = blocks.find((b) => b.label === "ENCRYPTED PRIVATE KEY");
  if (!cert || !keyPem) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.key} lacks the Bridge CA's certificate or key: restore it from a backup`);
  const key = decryptPrivateKey(toPem(keyPem.der, "ENCRYPTED PRIVATE KEY"), passphrase, "the key of the Bridge CA");
  const pem = encryptPrivateKey(key, newPassphrase, params);
  const back = createPublicKey(decryptPrivateKey(pem, newPassphrase, "the re-encrypted key of the Bridge CA")).export({ type: "spki", format: "der" });
  if (!back.equals(certificateParts(cert).spki)) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the Bridge CA's key in ${paths.key} does not match its certificate`);
  return stageFile(paths.key, toPem(cert, "CERTIFICATE") + pem);
}
