/**
 * CA management for the designated certification organisation (指定認証機関), which runs every
 * prefecture's CAs from one workspace: create, list, describe, publish their certificates, re-encrypt
 * their keys.
 */
import { lstatSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { X509Certificate, createHash, createPublicKey, type KeyObject } from "node:crypto";
import { JpkiError, isJpkiError } from "../errors.js";
import { certificateParts } from "../pki/der.js";
import { newKeyWrapParams } from "../pki/key-wrap.js";
import { decryptPrivateKey, encryptPrivateKey, strongKeyWrapParams, type KeyWrapParams } from "../pki/keys.js";
import { toPem } from "../pki/pem.js";
import type { CertificateType } from "../profile/types.js";
import { withFileLock } from "../store/file-lock.js";
import { writeFileAtomic } from "../store/files.js";
import type { CaRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { caId, caUrls, createCaRecord, type CaKeyToken } from "./authority.js";
import { stageBridgeRewrap, withBridgeLockIfAny } from "./bridge.js";
import { freeCaIds, type PassedOverCaId } from "./free-ids.js";
import { writeCaIndex } from "./generation-index.js";
import { activeGeneration, caGeneration, isRetired } from "./ids.js";
import { prefecture, type Prefecture } from "./prefectures.js";

export interface CaSummary {
  readonly id: string;
  readonly prefectureCode: string;
  readonly prefecture: string;
  readonly prefectureRomaji: string;
  readonly purpose: CertificateType;
  /** the key generation (ca/rollover.ts): 1 as `jpki ca init` made it, 2 after the first rollover, … */
  readonly generation: number;
  /** "active": issues new certificates; "retired": a later generation does, this one still signs CRLs for its own (when known) */
  readonly status?: "active" | "retired";
  /**
   * of a retired generation (when known): "current" while it still publishes its CRLs, "ended" once its last full CRL
   * has passed its nextUpdate and none follows (its certificates and link certificates have all expired: crl/finished.ts)
   */
  readonly crls?: "current" | "ended";
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly sha256Fingerprint: string;
  readonly certificatePath: string;
  readonly certificateDerPath: string;
  readonly crlUrl: string;
  /** where the key is, for a CA whose key is in a PKCS#11 token: its RFC 7512 URI (absent for a software key) */
  readonly keyRef?: string;
}

export function caFiles(ws: Workspace, id: string): { pem: string; der: string } {
  return { pem: join(ws.paths.caDir, `${id}.pem`), der: join(ws.paths.caDir, `${id}.crt`) };
}

/**
 * A CA described; with `all` (every CA record of the workspace) also whether it is the active generation, and with
 * `crlStates` (crl/finished.ts retiredCrlStates) whether a retired one's CRLs are current or ended.
 */
export function summariseCa(ws: Workspace, rec: CaRecord, all?: readonly CaRecord[], crlStates?: ReadonlyMap<string, "current" | "ended">): CaSummary {
  const x = new X509Certificate(rec.certificateDer);
  const p = prefecture(rec.prefectureCode);
  const files = caFiles(ws, rec.id);
  return {
    id: rec.id,
    prefectureCode: p.code,
    prefecture: p.kanji,
    prefectureRomaji: p.romaji,
    purpose: rec.purpose,
    generation: caGeneration(rec.id),
    ...(all ? { status: isRetired(all, rec.id) ? ("retired" as const) : ("active" as const) } : {}),
    ...(crlStates?.has(rec.id) ? { crls: crlStates.get(rec.id)! } : {}),
    subject: x.subject.split("\n").join(", "),
    serial: x.serialNumber.toLowerCase(),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    sha256Fingerprint: createHash("sha256").update(rec.certificateDer).digest("hex"),
    certificatePath: files.pem,
    certificateDerPath: files.der,
    crlUrl: caUrls(ws.config.baseUrl, rec.id).crl,
    ...(rec.keyRef ? { keyRef: rec.keyRef } : {}),
  };
}

/**
 * Writes a CA's certificate as PEM and DER into the workspace (for openssl and for verifiers). Each file is
 * replaced whole (a symlink at the path is replaced, never written through); a failure is ERR_FILE_UNUSABLE
 * naming the file, and saying how to write the files again once the cause is gone.
 */
export function exportCaCertificate(ws: Workspace, rec: CaRecord): void {
  const files = caFiles(ws, rec.id);
  for (const [path, data] of [[files.der, rec.certificateDer], [files.pem, toPem(rec.certificateDer, "CERTIFICATE")]] as const) {
    try {
      writeFileAtomic(path, data);
    } catch (e) {
      throw new JpkiError("ERR_FILE_UNUSABLE", `the certificate file ${path} of CA ${rec.id} cannot be written (${(e as NodeJS.ErrnoException).code ?? "error"}): the CA is stored; once the cause is gone, 'jpki crl generate' writes the CA files that are missing`, { cause: e });
    }
  }
}

/** Whether `path` is a regular file itself (not missing, not a symlink, directory or anything else). */
function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Writes a CA's certificate files when either is missing or not a regular file (a process killed between the
 * CA's commit and its files, a symlink put there); true when it wrote them.
 */
export function exportCaCertificateIfMissing(ws: Workspace, rec: CaRecord): boolean {
  const f = caFiles(ws, rec.id);
  if (isRegularFile(f.der) && isRegularFile(f.pem)) return false;
  exportCaCertificate(ws, rec);
  return true;
}

/**
 * Refuses, before a key is generated, a directory where a new CA's certificate file goes: the file's rename
 * would fail only after the CA was committed (anything else there, a symlink included, is replaced).
 */
export function checkCaFileTargets(ws: Workspace, ids: readonly string[]): void {
  for (const id of ids) {
    for (const path of Object.values(caFiles(ws, id))) {
      let dir = false;
      try {
        dir = lstatSync(path).isDirectory();
      } catch {
        // nothing there: written as new
      }
      if (dir) throw new JpkiError("ERR_FILE_UNUSABLE", `${path} is a directory where the certificate of the new CA ${id} goes: move it away; nothing was made`);
    }
  }
}

export interface InitOptions {
  readonly prefectures: readonly Prefecture[];
  readonly purposes: readonly CertificateType[];
  readonly passphrase: string;
  /**
   * generate the keys in this PKCS#11 token (the passphrase is then not used); its module is added to the
   * workspace's config.json pkcs11Modules, the modules this host loads for its CAs' keys
   */
  readonly token?: CaKeyToken;
  /** leave CAs that already exist as they are instead of failing */
  readonly skipExisting?: boolean;
  readonly onCreated?: (s: CaSummary) => void;
}

export interface InitResult {
  readonly created: CaSummary[];
  readonly skipped: string[];
  /** first-generation ids that were not free (free-ids.ts), why, and the id the CA got instead */
  readonly passedOver: ReadonlyArray<PassedOverCaId & { readonly instead: string }>;
}

/**
 * Creates the CAs asked for. Each CA is committed whole (certificate and encrypted key in one row);
 * existing ones are refused up front, before any key is generated, unless skipExisting. In a workspace
 * that already has CAs the passphrase must open them (ERR_PASSPHRASE_WRONG, nothing generated), and new
 * keys share the existing keys' PBKDF2 salt, so one derivation opens every CA of the workspace.
 */
export async function initCas(ws: Workspace, opts: InitOptions): Promise<InitResult> {
  return withCaKeysLock(ws, () => initCasLocked(ws, opts));
}

/**
 * Runs `fn` as the one process changing the workspace's set of CA keys (ca init, rewrap, rollover, bridge). Two
 * `ca init` on a new workspace each found no key to check their passphrase against and made keys under two
 * passphrases; the second now fails with ERR_WORKSPACE_LOCKED, or, once the first is done, checks its passphrase
 * against the first's keys (ERR_PASSPHRASE_WRONG). The lock file keeps this host's processes apart; the store's
 * lock (Store.withCaKeysLock: on PostgreSQL an advisory lock in the database) those of every host sharing it,
 * each of which has a workspace directory of its own.
 */
export function withCaKeysLock<T>(ws: Workspace, fn: () => Promise<T>): Promise<T> {
  return withFileLock(join(ws.paths.root, ".ca-keys.lock"), `the CA keys of ${ws.paths.root}`, () => ws.store.withCaKeysLock(fn));
}

async function initCasLocked(ws: Workspace, opts: InitOptions): Promise<InitResult> {
  const wanted = opts.prefectures.flatMap((p) => opts.purposes.map((purpose) => ({ p, purpose, id: caId(p.code, purpose) })));
  const skipped: string[] = [];
  const missing: typeof wanted = [];
  const all = await ws.store.listCas();
  for (const w of wanted) {
    // A prefecture's CA made at a later generation (its first id was retired: free-ids.ts) exists all the same.
    const rec = (await ws.store.getCa(w.id)) ?? activeGeneration(all, w.p.code, w.purpose);
    if (rec) {
      if (!opts.skipExisting) throw new JpkiError("ERR_CA_EXISTS", `CA ${rec.id} already exists in ${ws.paths.root}: use --skip-existing to leave it as it is`);
      // its certificate files, if an earlier run was killed between the CA's commit and its files
      exportCaCertificateIfMissing(ws, rec);
      skipped.push(rec.id);
    } else missing.push(w);
  }
  const keyWrap = opts.token ? undefined : await workspaceKeyWrap(ws, opts.passphrase);
  // The first free generation: an id retired by a restore, or whose CRLs are published with no CA behind it, is
  // never made a second time (free-ids.ts); the CA starts at the next generation instead.
  const free = await freeCaIds(ws, missing.map((w) => ({ prefectureCode: w.p.code, purpose: w.purpose, from: 1 })));
  const passedOver = free.flatMap((f) => f.passedOver.map((p) => ({ ...p, instead: f.id })));
  const generations = new Map(missing.map((w, i) => [w.id, free[i]!.generation]));
  checkCaFileTargets(ws, free.map((f) => f.id));
  const created: CaSummary[] = [];
  // One CA in flight per core: node's asynchronous generateKeyPair (and the certificate's signature) run in
  // libuv's thread pool, which bin/jpki.cjs sizes to one thread per core, so every core generates keys while
  // the main thread only assembles and stores; more at once would only queue in the pool. A token generates
  // in C_GenerateKeyPair, synchronously: one at a time.
  const queue = [...missing];
  const worker = async () => {
    for (let w = queue.shift(); w; w = queue.shift()) {
      const rec = await createCaRecord({ prefectureCode: w.p.code, purpose: w.purpose, passphrase: opts.passphrase, config: ws.config, now: ws.clock.now(), keyWrap, generation: generations.get(w.id)!, ...(opts.token ? { token: opts.token } : {}) });
      // The module the operator named here (it just loaded and made a key) is one this host may load again for
      // the key's reference: recorded in config.json before the CA is stored (pki/pkcs11.ts: never from the store).
      if (opts.token) ws.allowPkcs11Module(opts.token.modulePath);
      await ws.store.putCa(rec);
      exportCaCertificate(ws, rec);
      const s = summariseCa(ws, rec);
      created.push(s);
      opts.onCreated?.(s);
    }
  };
  await Promise.all(Array.from({ length: opts.token ? 1 : Math.max(1, Math.min(availableParallelism(), queue.length)) }, worker));
  created.sort((a, b) => a.id.localeCompare(b.id));
  await writeCaIndex(ws);
  return { created, skipped, passedOver };
}

export async function getCaRecord(ws: Workspace, id: string): Promise<CaRecord> {
  const rec = await ws.store.getCa(id);
  if (!rec) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${id} in ${ws.paths.root}: 'jpki ca list' shows the CAs, 'jpki ca init' creates them`);
  return rec;
}

/**
 * The key-wrapping parameters for new CA keys of this workspace: those of its existing strong keys (after
 * checking that the passphrase opens one), or a fresh salt for a new workspace or one with only older keys.
 */
export async function workspaceKeyWrap(ws: Workspace, passphrase: string): Promise<KeyWrapParams> {
  // CAs whose keys are in a token have no passphrase-wrapped key to share parameters with or to check against
  const existing = (await ws.store.listCas()).filter((r) => !r.keyRef);
  if (existing.length === 0) return newKeyWrapParams();
  const strong = existing.find((r) => strongKeyWrapParams(r.encryptedKeyPem));
  const probe = strong ?? existing[0]!;
  decryptPrivateKey(probe.encryptedKeyPem, passphrase, `the key of CA ${probe.id} already in ${ws.paths.root} (all CA keys of a workspace share one passphrase)`);
  return (strong && strongKeyWrapParams(strong.encryptedKeyPem)) ?? newKeyWrapParams();
}

export interface RewrapOptions {
  /** the passphrase the keys are encrypted under now */
  readonly passphrase: string;
  /** encrypt under this passphrase instead (default: the same one) */
  readonly newPassphrase?: string;
  /**
   * the passphrase of the OCSP signing keys when they have their own (JPKI_OCSP_PASSPHRASE at `jpki serve`): they
   * are re-encrypted under it again. Without it they are under the CA keys' passphrase, as `jpki serve` then wraps
   * them, and move with the CA keys to `newPassphrase`.
   */
  readonly ocspPassphrase?: string;
}

/**
 * Re-encrypts every CA key of the workspace, every CA's OCSP signing key (listed as "ocsp:<CA id>") and the verifier
 * CA's key ("verifier-ca"), with the
 * strong KDF (pki/key-wrap.ts: PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-CBC) under one fresh salt,
 * optionally under a new passphrase. All or nothing: every key is decrypted, checked against its certificate,
 * re-encrypted and read back before one store transaction replaces them all. Also makes the workspace
 * owner-only (workspaces made before that rule).
 */
export async function rewrapCaKeys(ws: Workspace, opts: RewrapOptions): Promise<{ rewrapped: string[] }> {
  return withCaKeysLock(ws, () => rewrapLocked(ws, opts));
}

async function rewrapLocked(ws: Workspace, opts: RewrapOptions): Promise<{ rewrapped: string[] }> {
  const newPassphrase = opts.newPassphrase ?? opts.passphrase;
  // keys in a PKCS#11 token are not ours to re-encrypt: the token's PIN protects them
  const all = await ws.store.listCas();
  const cas = all.filter((r) => !r.keyRef);
  const params = newKeyWrapParams();
  const keys = cas.map((rec) => ({
    id: rec.id,
    encryptedKeyPem: rewrapKey({ pem: rec.encryptedKeyPem, certificateDer: rec.certificateDer, what: `the key of CA ${rec.id}`, from: opts.passphrase, to: newPassphrase, params }),
  }));
  // The OCSP signing keys (ca/ocsp-signer.ts) are under the responders' passphrase, which `jpki serve` takes to be
  // the CA one unless JPKI_OCSP_PASSPHRASE is set: left behind, a server started with the new passphrase could not
  // open them and OCSP answered tryLater until each certificate's renewal. The schedule always makes them in
  // software, so a CA whose own key is in a PKCS#11 token still has one to re-encrypt.
  const ocspFrom = opts.ocspPassphrase ?? opts.passphrase;
  const ocspTo = opts.ocspPassphrase ?? newPassphrase;
  const caOrder = new Map(all.map((r, i) => [r.id, i]));
  const ocspSigners = (await ws.store.ocspResponders())
    .sort((a, b) => (caOrder.get(a.caId) ?? Infinity) - (caOrder.get(b.caId) ?? Infinity))
    .map((rec) => ({
      caId: rec.caId,
      serial: rec.serial,
      encryptedKeyPem: rewrapKey({
        pem: rec.encryptedKeyPem,
        certificateDer: rec.certificateDer,
        what: `the OCSP signing key of CA ${rec.caId}`,
        ...(opts.ocspPassphrase === undefined ? { hint: " (if 'jpki serve' had JPKI_OCSP_PASSPHRASE, set it for the rewrap too)" } : {}),
        from: ocspFrom,
        // A key a serve without JPKI_OCSP_PASSPHRASE wrapped under the CA passphrase moves to JPKI_OCSP_PASSPHRASE
        // (the way out checkResponderKeysOpen names): a serve started with it could not open it.
        ...(opts.ocspPassphrase !== undefined ? { orFrom: opts.passphrase } : {}),
        to: ocspTo,
        params,
      }),
    }));
  // The verifier CA's key (verifier/authority.ts) is under the CA keys' passphrase too. Left behind, a rewrap to a new
  // passphrase — one that leaked, say — kept it under the old one: 'jpki verifier add --client-cert' refused the new
  // passphrase, and whoever held the old one (and a copy of the store) could still issue client certificates
  // 'jpki serve' accepts. Found by a helper.
  const verifierCaRecord = await ws.store.getVerifierCa();
  const verifierCa = {
    before: verifierCaRecord?.encryptedKeyPem,
    ...(verifierCaRecord
      ? { encryptedKeyPem: rewrapKey({ pem: verifierCaRecord.encryptedKeyPem, certificateDer: verifierCaRecord.certificateDer, what: "the verifier CA key", from: opts.passphrase, to: newPassphrase, params }) }
      : {}),
  };
  // The Bridge CA's key (ca/bridge.ts) shares the passphrase: re-encrypted first (under the Bridge's lock) to a
  // durable bridge.key.next, installed once the CA keys are replaced, so a wrong passphrase or a damaged Bridge
  // changes nothing, and a crash in between is finished by the next command that opens the Bridge.
  const bridged = await withBridgeLockIfAny(ws.paths.root, async () => {
    const bridge = stageBridgeRewrap(ws.paths.root, opts.passphrase, newPassphrase, params);
    try {
      if (keys.length || ocspSigners.length || verifierCaRecord) await ws.store.replaceCaKeys(keys, { ocspSigners, verifierCa });
    } catch (e) {
      bridge?.discard();
      throw e;
    }
    bridge?.install();
    return bridge !== undefined;
  });
  ws.restrictPermissions();
  return { rewrapped: [...keys.map((k) => k.id), ...ocspSigners.map((k) => `ocsp:${k.caId}`), ...(verifierCaRecord ? ["verifier-ca"] : []), ...(bridged ? ["bridge"] : [])] };
}

/**
 * One key of a rewrap: decrypted under `from`, checked against its certificate's public key, encrypted under `to`
 * and read back. Throws before anything is stored (ERR_PASSPHRASE_WRONG, ERR_WORKSPACE_CORRUPT).
 */
function rewrapKey(o: { pem: string; certificateDer: Buffer; what: string; hint?: string; from: string; orFrom?: string; to: string; params: KeyWrapParams }): string {
  const key = decryptEither(o.pem, o.from, o.orFrom, `${o.what}${o.hint ?? ""}`);
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  if (!spki.equals(certificateParts(o.certificateDer).spki)) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${o.what} does not match its certificate: the workspace is damaged; nothing was re-encrypted`);
  }
  const encryptedKeyPem = encryptPrivateKey(key, o.to, o.params);
  const back = createPublicKey(decryptPrivateKey(encryptedKeyPem, o.to, `${o.what}, re-encrypted`)).export({ type: "spki", format: "der" });
  if (!back.equals(spki)) throw new JpkiError("ERR_INTERNAL", `re-encrypting ${o.what} did not round-trip; nothing was changed`);
  return encryptedKeyPem;
}

/** A key decrypted under `from`, or else under `orFrom` (when given): the first's error if neither opens it. */
function decryptEither(pem: string, from: string, orFrom: string | undefined, what: string): KeyObject {
  try {
    return decryptPrivateKey(pem, from, what);
  } catch (e) {
    if (orFrom === undefined || orFrom === from || !isJpkiError(e, "ERR_PASSPHRASE_WRONG")) throw e;
    try {
      return decryptPrivateKey(pem, orFrom, what);
    } catch {
      throw e;
    }
  }
}
