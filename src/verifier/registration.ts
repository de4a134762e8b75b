/**
 * Registration of signature verifiers (署名検証者): only registered verifiers receive revocation information
 * (shared/spec/JPKI.md "Distribution"). A registration names the verifier and its kind — 行政機関 (government)
 * or 民間認証事業者 (private) — and issues its credentials: a bearer token (credentials.ts), a client
 * certificate from the verifier CA (authority.ts) for mutual TLS, or both. Revoking a registration refuses
 * every credential it had; `jpki serve` notices within its refresh interval (server/access.ts).
 *
 * Client keys: by default the verifier sends a PKCS#10 request (RSA-2048, sha256WithRSA) and keeps its key;
 * for convenience jpki can generate the key pair instead, and then hands the private key back to the caller
 * once (the CLI writes it owner-only) and keeps no copy.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { verifyCsr } from "../ca/csr.js";
import { JpkiError } from "../errors.js";
import { strongKeyWrapParams, unlockPrivateKey } from "../pki/keys.js";
import { toPem } from "../pki/pem.js";
import type { VerifierCaRecord, VerifierKind, VerifierRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { createVerifierCa, issueClientCertificate } from "./authority.js";
import { certificateSha256, newToken, tokenSha256 } from "./credentials.js";

/** The kinds of verifier, with the Japanese term (spec: 署名検証者 are 行政機関 and 民間認証事業者). */
export const VERIFIER_KINDS: Readonly<Record<VerifierKind, { readonly ja: string; readonly label: string }>> = Object.freeze({
  government: { ja: "行政機関", label: "government body" },
  private: { ja: "民間認証事業者", label: "private certification provider" },
});

export function parseVerifierKind(s: string): VerifierKind {
  if (!Object.hasOwn(VERIFIER_KINDS, s)) throw new JpkiError("ERR_VERIFIER_INVALID", `verifier kind ${JSON.stringify(s)}: give ${Object.keys(VERIFIER_KINDS).join(" or ")}`);
  return s as VerifierKind;
}

export interface RegisterVerifierOptions {
  readonly name: string;
  readonly kind: VerifierKind;
  /** issue a bearer token (default true) */
  readonly token?: boolean;
  /** issue a client certificate: for the key in a PKCS#10 request, or for a key pair generated here */
  readonly certificate?: { readonly csr: Uint8Array } | { readonly generateKey: true };
  /** the workspace passphrase: the verifier CA key is encrypted under it (needed with `certificate`) */
  readonly passphrase?: string;
  /** client certificate lifetime, days */
  readonly days?: number;
}

export interface RegisteredVerifier {
  readonly record: VerifierRecord;
  /** the bearer token: shown once, stored only as its SHA-256 */
  readonly token?: string;
  readonly certificatePem?: string;
  /** PKCS#8 PEM of the generated key (generateKey only): the caller's to keep, owner-only */
  readonly privateKeyPem?: string;
  /** the verifier CA certificate: what the server checks client certificates against */
  readonly caCertificatePem?: string;
}

function checkName(name: string): string {
  const n = name.normalize("NFC").trim();
  if (!n || n.length > 200 || /[\u0000-\u001f\u007f]/.test(n)) throw new JpkiError("ERR_VERIFIER_INVALID", "a verifier's name is 1 to 200 characters without control characters");
  return n;
}

/** The verifier CA, made on first use under the workspace passphrase (checked against a CA key first). */
export async function ensureVerifierCa(ws: Workspace, passphrase: string): Promise<VerifierCaRecord> {
  const existing = await ws.store.getVerifierCa();
  if (existing) return existing;
  // A typo must not create a CA key under another passphrase: it must open the CA keys already there.
  const [ca] = await ws.store.listCas();
  if (ca) await unlockPrivateKey(ca.encryptedKeyPem, passphrase);
  const keyWrap = ca ? strongKeyWrapParams(ca.encryptedKeyPem) : undefined;
  const made = await createVerifierCa({ passphrase, now: ws.clock.now(), ...(keyWrap ? { keyWrap } : {}) });
  return ws.store.initVerifierCa(made);
}

export async function registerVerifier(ws: Workspace, o: RegisterVerifierOptions): Promise<RegisteredVerifier> {
  const name = checkName(o.name);
  const kind = parseVerifierKind(o.kind);
  const wantToken = o.token ?? true;
  if (!wantToken && !o.certificate) throw new JpkiError("ERR_USAGE", "a verifier needs a credential: a token, a client certificate, or both");
  if (o.days !== undefined && (!Number.isInteger(o.days) || o.days < 1 || o.days > 3650)) throw new JpkiError("ERR_USAGE", "a client certificate's lifetime is 1 to 3650 days");
  const id = `v-${randomBytes(6).toString("hex")}`;
  const now = ws.clock.now();
  const token = wantToken ? newToken() : undefined;
  let cert: { pem: string; sha256: string; notAfter: Date; keyPem?: string; caPem: string } | undefined;
  if (o.certificate) {
    if (!o.passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "a client certificate is signed by the verifier CA, whose key needs the passphrase: set JPKI_PASSPHRASE or pass --passphrase-file");
    let spki: Buffer;
    let keyPem: string | undefined;
    if ("csr" in o.certificate) {
      spki = verifyCsr(o.certificate.csr);
    } else {
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
      spki = pair.publicKey.export({ type: "spki", format: "der" });
      keyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    }
    const ca = await ensureVerifierCa(ws, o.passphrase);
    const issued = await issueClientCertificate(ca, { passphrase: o.passphrase, verifierId: id, name, spki, now, ...(o.days !== undefined ? { days: o.days } : {}) });
    cert = { pem: toPem(issued.der, "CERTIFICATE"), sha256: certificateSha256(issued.der), notAfter: issued.notAfter, caPem: toPem(ca.certificateDer, "CERTIFICATE"), ...(keyPem ? { keyPem } : {}) };
  }
  const record: VerifierRecord = {
    id,
    name,
    kind,
    tokenSha256: token ? tokenSha256(token) : undefined,
    certSha256: cert?.sha256,
    certNotAfter: cert?.notAfter,
    createdAt: now,
    revokedAt: undefined,
  };
  await ws.store.putVerifier(record);
  return {
    record,
    ...(token ? { token } : {}),
    ...(cert ? { certificatePem: cert.pem, caCertificatePem: cert.caPem, ...(cert.keyPem ? { privateKeyPem: cert.keyPem } : {}) } : {}),
  };
}

/** Revokes a registration: every credential of it is refused from now on (ERR_VERIFIER_UNKNOWN, ERR_VERIFIER_REVOKED). */
export function revokeVerifier(ws: Workspace, id: string): Promise<VerifierRecord> {
  return ws.store.revokeVerifier(id, ws.clock.now());
}
