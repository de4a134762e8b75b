/**
 * CA keys in a PKCS#11 token (PKCS#11 v2.40, OASIS; key references as RFC 7512 "pkcs11:" URIs).
 *
 * The CA's RSA-2048 key pair is generated inside the token, private half CKA_SENSITIVE and not CKA_EXTRACTABLE:
 * the store keeps only the key's URI and the CA certificate. Every signature (certificates, CRLs, OCSP signing
 * certificates) is a CKM_RSA_PKCS operation over the DigestInfo we hashed ourselves, so a streamed CRL is hashed
 * in node and the token sees 51 bytes, whatever the CRL's size.
 *
 * PKCS#11 state is per process, not per object: C_Initialize once per module, and a login holds for every
 * session of the application on that token. So modules and tokens are kept here, process-wide, keyed by module
 * path and token label; a wrong PIN is remembered too, so a second CA on the same token never tries it again
 * (each try counts towards the token locking the PIN).
 *
 * graphene-pk11 (and pkcs11js, its native binding) load lazily, only when a token CA is opened: a workspace
 * with software keys never loads them.
 */
import { createHash, createPublicKey, publicDecrypt, constants, randomBytes, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import type * as Graphene from "graphene-pk11";
import { NOT_REGULAR, readRegularFile } from "./regular-file.js";
import { JpkiError } from "../errors.js";
import { SHA256_DIGEST_INFO_PREFIX, SHA256_WITH_RSA, type Signer } from "./signer.js";

/** Where a key lives: module (shared library), token label, object label and CKA_ID (RFC 7512 §2.3). */
export interface Pkcs11KeyRef {
  /** path of the PKCS#11 module (RFC 7512 query attribute module-path) */
  readonly modulePath: string;
  /** CKA_LABEL of the token (path attribute token) */
  readonly token: string;
  /** CKA_LABEL of the key objects (path attribute object) */
  readonly object: string;
  /** CKA_ID of the key objects (path attribute id) */
  readonly id: Buffer;
}

// RFC 7512 §2.3: pk11-pchar is unreserved / pct-encoded / ":" / "[" / "]" / "@" / "!" / "$" / "'" / "(" / ")" / "*" / "+" / "," / "="
// ("&" too); we encode everything else, ";" "?" "/" and "%" included, so a label can hold any byte. A query
// value (pk11-qchar) may also hold "/" "?" "|" as they are: a module path reads as a path.
const SAFE = /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/;
const QSAFE = /[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|]/;
function pct(bytes: Buffer, safe = SAFE): string {
  let s = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += b < 0x80 && safe.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return s;
}
function unpct(s: string): Buffer {
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) throw new JpkiError("ERR_CONFIG_INVALID", "a pkcs11: URI has a bad %-escape");
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(s[i]!, "utf8"));
  }
  return Buffer.from(out);
}

/** The RFC 7512 URI of a key: pkcs11:token=…;object=…;id=%..?module-path=… (id always %-encoded, §2.3). */
export function formatPkcs11Uri(ref: Pkcs11KeyRef): string {
  const id = [...ref.id].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
  return `pkcs11:token=${pct(Buffer.from(ref.token, "utf8"))};object=${pct(Buffer.from(ref.object, "utf8"))};id=${id}?module-path=${pct(Buffer.from(ref.modulePath, "utf8"), QSAFE)}`;
}

/** Parses what formatPkcs11Uri writes (and any RFC 7512 URI naming token, object, id and module-path). */
export function parsePkcs11Uri(uri: string): Pkcs11KeyRef {
  if (!uri.startsWith("pkcs11:")) throw new JpkiError("ERR_CONFIG_INVALID", "a CA key reference is not a pkcs11: URI (RFC 7512)");
  const rest = uri.slice("pkcs11:".length);
  const q = rest.indexOf("?");
  const [path, query] = q < 0 ? [rest, ""] : [rest.slice(0, q), rest.slice(q + 1)];
  const attrs = new Map<string, Buffer>();
  for (const part of path.split(";").filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 1) throw new JpkiError("ERR_CONFIG_INVALID", "a pkcs11: URI has a path attribute without a value");
    attrs.set(part.slice(0, eq), unpct(part.slice(eq + 1)));
  }
  for (const part of query.split("&").filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 1) throw new JpkiError("ERR_CONFIG_INVALID", "a pkcs11: URI has a query attribute without a value");
    attrs.set(`?${part.slice(0, eq)}`, unpct(part.slice(eq + 1)));
  }
  const token = attrs.get("token");
  const object = attrs.get("object");
  const id = attrs.get("id");
  const modulePath = attrs.get("?module-path");
  if (!token || !object || !id || !modulePath) {
    throw new JpkiError("ERR_CONFIG_INVALID", "a CA key's pkcs11: URI must name token, object, id and module-path");
  }
  return { token: token.toString("utf8"), object: object.toString("utf8"), id, modulePath: modulePath.toString("utf8") };
}

/** Where the user PIN comes from: JPKI_PKCS11_PIN, else the file JPKI_PKCS11_PIN_FILE names. Never an argument. */
export type Pkcs11PinSource = () => string;

/**
 * The PIN in JPKI_PKCS11_PIN, without one final line break (LF or CRLF), as a PIN file's first line is read: a
 * variable set from a file with its newline (a mounted secret, an env file) sent the token a PIN with it, which
 * it refused (CKR_PIN_INCORRECT) — one of the few tries before a real HSM locks its user PIN. Found by a helper.
 * The card's PINs from the environment (JPKI_CARD_SIGNATURE_PIN, JPKI_CARD_AUTH_PIN) are read so too.
 */
export function envPinValue(value: string): string {
  return value.replace(/\r?\n$/, "");
}

function envPin(): string {
  const env = process.env.JPKI_PKCS11_PIN;
  if (env) return envPinValue(env);
  const file = process.env.JPKI_PKCS11_PIN_FILE;
  if (file) return readPinFile(file);
  throw new JpkiError("ERR_PKCS11_PIN_MISSING", "the CA keys are in a PKCS#11 token: set JPKI_PKCS11_PIN or pass --pkcs11-pin-file FILE");
}

/** Reads a PIN file: its first line, without the newline (LF or CRLF) and without a leading UTF-8 byte order mark. The PIN itself never appears in an error. */
export function readPinFile(path: string): string {
  let text: string;
  try {
    // A PIN others can read is a PIN others hold (as the card's administrative key file is refused); the mode is
    // that of the file read (its descriptor), and a FIFO at the path is refused, not waited on.
    text = readRegularFile(path, {
      ownerOnly: (mode) => new JpkiError("ERR_PKCS11_PIN_FILE_UNSAFE", `the token PIN file ${path} can be read or written by other users (mode ${mode.toString(8)}): chmod 600 it`),
    }).bytes.toString("utf8");
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new JpkiError("ERR_PKCS11_PIN_MISSING", `cannot read the token PIN file ${path}: ${code === NOT_REGULAR ? "not a regular file" : (code ?? "error")}`, { cause: e });
  }
  // without the byte order mark a Windows editor starts a UTF-8 file with: it is no part of the PIN typed
  const pin = text.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0] ?? "";
  if (!pin) throw new JpkiError("ERR_PKCS11_PIN_MISSING", `the token PIN file ${path} is empty`);
  return pin;
}

let pinSource: Pkcs11PinSource = envPin;

/**
 * Sets where this process reads the token PIN (the CLI's --pkcs11-pin-file). Process-wide because the login
 * is (PKCS#11 §5.6: a login applies to every session of the application).
 */
export function setPkcs11PinSource(source: Pkcs11PinSource | undefined): void {
  pinSource = source ?? envPin;
}

let graphene: typeof Graphene | undefined;
function lib(): typeof Graphene {
  return (graphene ??= createRequire(import.meta.url)("graphene-pk11") as typeof Graphene);
}

const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_LOCKED = 0xa4;
const CKR_PIN_EXPIRED = 0xa3;
const CKR_USER_ALREADY_LOGGED_IN = 0x100;
const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;
const CKF_OS_LOCKING_OK = 0x2;

function ckr(e: unknown): number | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}
function ckrName(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return /CKR_[A-Z_]+/.exec(m)?.[0] ?? "error";
}

const modules = new Map<string, Graphene.Module>();

function loadModule(path: string): Graphene.Module {
  let m = modules.get(path);
  if (m) return m;
  try {
    m = lib().Module.load(path);
    try {
      // CKF_OS_LOCKING_OK: signatures run on libuv's threads, several sessions at once; without it (pInitArgs
      // NULL) a library may assume one thread and skip its locks (SoftHSM2 then corrupts its heap under load).
      m.initialize({ flags: CKF_OS_LOCKING_OK });
    } catch (e) {
      // Another thread of this process (jpki serve's CRL schedule runs on one) initialised the module already:
      // the library is process-wide and shared, so it is ready for this thread too.
      if (ckr(e) !== CKR_CRYPTOKI_ALREADY_INITIALIZED) throw e;
    }
  } catch (e) {
    throw new JpkiError("ERR_PKCS11_MODULE", `cannot load the PKCS#11 module ${path} (${e instanceof Error ? e.message.split("\n")[0] : "error"}): check the path, e.g. /usr/lib/softhsm/libsofthsm2.so`, { cause: e });
  }
  modules.set(path, m);
  return m;
}

/** A logged-in token: a few sessions (one operation at a time each, PKCS#11 §5.2), shared by its keys. */
export class Pkcs11Token {
  readonly modulePath: string;
  readonly label: string;
  readonly #slot: Graphene.Slot;
  readonly #idle: Graphene.Session[] = [];
  readonly #waiting: Array<(s: Graphene.Session) => void> = [];
  readonly #maxSessions: number;
  #open = 0;

  private constructor(modulePath: string, label: string, slot: Graphene.Slot, first: Graphene.Session, maxSessions: number) {
    this.modulePath = modulePath;
    this.label = label;
    this.#slot = slot;
    this.#idle.push(first);
    this.#open = 1;
    this.#maxSessions = maxSessions;
  }

  static #tokens = new Map<string, Pkcs11Token | JpkiError>();

  /**
   * The token labelled `label` in the module at `modulePath`, logged in as the user with the configured PIN.
   * Opened once per process; a refused PIN is remembered and never presented again by this process.
   */
  static open(modulePath: string, label: string): Pkcs11Token {
    const key = `${modulePath}\0${label}`;
    const known = Pkcs11Token.#tokens.get(key);
    if (known instanceof JpkiError) throw known;
    if (known) return known;
    const m = loadModule(modulePath);
    const g = lib();
    const slots = m.getSlots(true);
    let slot: Graphene.Slot | undefined;
    for (let i = 0; i < slots.length; i++) {
      const s = slots.items(i);
      if (s.getToken().label.trimEnd() === label) {
        slot = s;
        break;
      }
    }
    if (!slot) throw new JpkiError("ERR_PKCS11_TOKEN_NOT_FOUND", `no token labelled "${label}" in ${modulePath}: check --token (softhsm2-util --show-slots lists them)`);
    const pin = pinSource();
    const session = slot.open(g.SessionFlag.SERIAL_SESSION | g.SessionFlag.RW_SESSION);
    try {
      session.login(pin, g.UserType.USER);
    } catch (e) {
      const rv = ckr(e);
      if (rv !== CKR_USER_ALREADY_LOGGED_IN) {
        session.close();
        const err =
          rv === CKR_PIN_INCORRECT ? new JpkiError("ERR_PKCS11_PIN_WRONG", `the token "${label}" refused the PIN (CKR_PIN_INCORRECT): it was not tried again; check JPKI_PKCS11_PIN or the PIN file before the token locks it`)
          : rv === CKR_PIN_LOCKED || rv === CKR_PIN_EXPIRED ? new JpkiError("ERR_PKCS11_PIN_WRONG", `the token "${label}" has locked or expired the user PIN (${ckrName(e)}): its security officer resets it`)
          : new JpkiError("ERR_PKCS11_TOKEN_NOT_FOUND", `cannot log in to the token "${label}" (${ckrName(e)})`);
        // Remembered: a second CA on this token must not present the same wrong PIN again.
        if (err.code === "ERR_PKCS11_PIN_WRONG") Pkcs11Token.#tokens.set(key, err);
        throw err;
      }
    }
    const t = new Pkcs11Token(modulePath, label, slot, session, 4);
    Pkcs11Token.#tokens.set(key, t);
    return t;
  }

  /** Runs `f` on a session of its own; at most maxSessions at once, the others wait their turn. */
  async withSession<T>(f: (s: Graphene.Session) => Promise<T> | T): Promise<T> {
    const s = await this.#acquire();
    try {
      return await f(s);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(s);
      else this.#idle.push(s);
    }
  }

  #acquire(): Promise<Graphene.Session> {
    const s = this.#idle.pop();
    if (s) return Promise.resolve(s);
    if (this.#open < this.#maxSessions) {
      this.#open++;
      // Sessions opened after the login share it (PKCS#11 §5.6).
      return Promise.resolve(this.#slot.open(lib().SessionFlag.SERIAL_SESSION | lib().SessionFlag.RW_SESSION));
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** A session for synchronous work (key generation, lookups): one of the pool when idle, else a new one. */
  #syncSession<T>(f: (s: Graphene.Session) => T): T {
    const s = this.#idle.pop() ?? this.#slot.open(lib().SessionFlag.SERIAL_SESSION | lib().SessionFlag.RW_SESSION);
    try {
      return f(s);
    } finally {
      this.#idle.push(s);
    }
  }

  /**
   * Generates an RSA-2048 key pair inside the token: the private key CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not
   * CKA_EXTRACTABLE, usable only to sign; labelled `object` with a fresh random CKA_ID, so a label used before
   * (an earlier workspace on the same token) never makes the reference ambiguous.
   */
  generateRsaKey(object: string): Pkcs11Signer {
    const g = lib();
    const id = randomBytes(16);
    const { spki } = this.#syncSession((s) => {
      let kp: Graphene.IKeyPair;
      try {
        kp = s.generateKeyPair(
          g.KeyGenMechanism.RSA,
          { keyType: g.KeyType.RSA, token: true, private: false, modulusBits: 2048, publicExponent: Buffer.from([1, 0, 1]), verify: true, encrypt: false, wrap: false, label: object, id },
          { keyType: g.KeyType.RSA, token: true, private: true, sensitive: true, extractable: false, sign: true, decrypt: false, unwrap: false, derive: false, label: object, id },
        );
      } catch (e) {
        throw new JpkiError("ERR_PKCS11_SIGN_FAILED", `the token "${this.label}" could not generate an RSA-2048 key pair (${ckrName(e)})`, { cause: e });
      }
      const a = kp.publicKey.getAttribute({ modulus: null, publicExponent: null }) as { modulus: Buffer; publicExponent: Buffer };
      return { spki: rsaSpki(a.modulus, a.publicExponent) };
    });
    return new Pkcs11Signer(this, { modulePath: this.modulePath, token: this.label, object, id }, spki);
  }

  /** The handle of the private key `ref` names (its label and CKA_ID), in session `s`. */
  privateKey(s: Graphene.Session, ref: Pkcs11KeyRef): Graphene.PrivateKey {
    const g = lib();
    const found = s.find({ class: g.ObjectClass.PRIVATE_KEY, label: ref.object, id: ref.id });
    if (found.length !== 1) {
      throw new JpkiError(
        "ERR_PKCS11_KEY_NOT_FOUND",
        found.length ? `the token "${this.label}" holds ${found.length} private keys labelled "${ref.object}" with one id: the reference is ambiguous` : `no private key "${ref.object}" with the recorded id in token "${this.label}": was the token re-initialised, or is it another token with this label?`,
      );
    }
    return found.items(0).toType<Graphene.PrivateKey>();
  }

  /**
   * Checks that the key is in the token (ERR_PKCS11_KEY_NOT_FOUND now rather than at the first signature) and,
   * when the token also holds its public half, that it is the key `spki` names (ERR_WORKSPACE_CORRUPT if not).
   */
  assertKey(ref: Pkcs11KeyRef, spki: Buffer): void {
    const g = lib();
    this.#syncSession((s) => {
      this.privateKey(s, ref);
      const pub = s.find({ class: g.ObjectClass.PUBLIC_KEY, label: ref.object, id: ref.id });
      if (pub.length === 1) {
        const a = pub.items(0).getAttribute({ modulus: null, publicExponent: null }) as { modulus: Buffer; publicExponent: Buffer };
        if (!rsaSpki(a.modulus, a.publicExponent).equals(spki)) {
          throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the key "${ref.object}" in token "${this.label}" is not the key of its CA certificate: the workspace or the token is not the one it was made with`);
        }
      }
    });
  }
}

/** DER SubjectPublicKeyInfo of an RSA public key from its modulus and exponent (big-endian, as PKCS#11 gives them). */
export function rsaSpki(modulus: Buffer, exponent: Buffer): Buffer {
  const b64u = (b: Buffer) => b.toString("base64url");
  return createPublicKey({ key: { kty: "RSA", n: b64u(modulus), e: b64u(exponent) }, format: "jwk" }).export({ type: "spki", format: "der" });
}

/**
 * A Signer whose private key is in a PKCS#11 token. Each signature is checked against the public key before it
 * is returned (an RSA public operation, ~1/30 of the token's private one), because a token's answer is not
 * ours to trust: so it is selfVerifying, and a garbage signature is ERR_PKCS11_SIGN_FAILED, never a certificate.
 */
export class Pkcs11Signer implements Signer {
  readonly algorithmIdentifier = SHA256_WITH_RSA;
  readonly selfVerifying = true;
  readonly spki: Buffer;
  readonly ref: Pkcs11KeyRef;
  readonly #token: Pkcs11Token;
  readonly #publicKey: KeyObject;
  /** the private key's handle per session (object handles are valid in every session of the application, but found once each) */
  readonly #handles = new WeakMap<Graphene.Session, Graphene.PrivateKey>();

  constructor(token: Pkcs11Token, ref: Pkcs11KeyRef, spki: Buffer) {
    this.#token = token;
    this.ref = ref;
    this.spki = spki;
    this.#publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    if (this.#publicKey.asymmetricKeyType !== "rsa") throw new JpkiError("ERR_KEY_UNSUPPORTED", "a CA signs with an RSA key");
  }

  /** The RFC 7512 URI the store keeps for this key. */
  get uri(): string {
    return formatPkcs11Uri(this.ref);
  }

  sign(data: Uint8Array | readonly Uint8Array[]): Promise<Buffer> {
    const h = createHash("sha256");
    if (data instanceof Uint8Array) h.update(data);
    else for (const c of data) h.update(c);
    return this.signDigest(h.digest());
  }

  async signDigest(sha256: Uint8Array): Promise<Buffer> {
    if (sha256.length !== 32) throw new RangeError("a SHA-256 digest is 32 bytes");
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO_PREFIX, sha256]);
    const sig = await this.#token.withSession(async (s) => {
      let key = this.#handles.get(s);
      if (!key) this.#handles.set(s, (key = this.#token.privateKey(s, this.ref)));
      try {
        // C_SignInit here, C_Sign on libuv's thread pool: the event loop goes on while the token signs.
        const op = s.createSign("RSA_PKCS", key);
        return await new Promise<Buffer>((resolve, reject) => op.once(digestInfo, (err, out) => (err ? reject(err) : resolve(Buffer.from(out)))));
      } catch (e) {
        throw new JpkiError("ERR_PKCS11_SIGN_FAILED", `the token "${this.ref.token}" failed to sign with key "${this.ref.object}" (${ckrName(e)})`, { cause: e });
      }
    });
    let recovered: Buffer | undefined;
    try {
      recovered = publicDecrypt({ key: this.#publicKey, padding: constants.RSA_PKCS1_PADDING }, sig);
    } catch {
      recovered = undefined;
    }
    if (!recovered?.equals(digestInfo)) {
      throw new JpkiError("ERR_PKCS11_SIGN_FAILED", `the token "${this.ref.token}" returned a signature that does not verify with key "${this.ref.object}": nothing was signed`);
    }
    return sig;
  }
}

/**
 * Refuses a module the local operator did not choose, before anything is loaded. A key reference comes from the
 * store, and loading a module runs its code (dlopen runs its constructors, C_Initialize the rest) in a process
 * holding CA keys: whoever can write the store — on PostgreSQL any writer of a database several CA hosts share —
 * would otherwise choose code every jpki process on those hosts runs. So the module a reference names must be
 * one this host lists (config.json pkcs11Modules), compared as written: no path is resolved or opened to decide.
 * `whose` says what the reference belongs to ("the key of CA 13-sig").
 */
export function assertPkcs11ModuleAllowed(modulePath: string, allowedModules: readonly string[], whose: string): void {
  if (allowedModules.includes(modulePath)) return;
  const listed = allowedModules.length ? allowedModules.map((m) => JSON.stringify(m)).join(", ") : "none";
  throw new JpkiError(
    "ERR_PKCS11_MODULE_NOT_ALLOWED",
    `${whose} names the PKCS#11 module ${JSON.stringify(modulePath)}, which this host does not allow: nothing was loaded. Only modules listed in "pkcs11Modules" of the workspace's config.json are loaded (now: ${listed}), never one the store names; if you, this host's operator, chose that module, add ${JSON.stringify(modulePath)} there`,
    { details: { modulePath } },
  );
}

/**
 * Opens the signer of a stored key reference whose public key is `spki` (the CA certificate's): the module,
 * token, login and key lookup happen now, so a missing token or wrong PIN fails before any work. The module the
 * reference names must be one of `allowedModules` (the workspace's pkcs11Modules), or nothing is loaded
 * (ERR_PKCS11_MODULE_NOT_ALLOWED; see assertPkcs11ModuleAllowed).
 */
export function openPkcs11Signer(uri: string, spki: Buffer, allowedModules: readonly string[], whose = "a CA's key reference"): Pkcs11Signer {
  const ref = parsePkcs11Uri(uri);
  assertPkcs11ModuleAllowed(ref.modulePath, allowedModules, whose);
  const token = Pkcs11Token.open(ref.modulePath, ref.token);
  token.assertKey(ref, spki);
  return new Pkcs11Signer(token, ref, spki);
}

/** Generates a CA key pair in the token and returns its signer (whose `uri` the store keeps). */
export function generatePkcs11Key(o: { modulePath: string; token: string; object: string }): Pkcs11Signer {
  return Pkcs11Token.open(o.modulePath, o.token).generateRsaKey(o.object);
}
