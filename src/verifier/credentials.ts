/**
 * Credentials of registered signature verifiers (署名検証者): bearer tokens (RFC 6750) and the fingerprints of
 * their client certificates. Pure functions; the registry (registration.ts) and the server's access check
 * (server/access.ts) share them.
 *
 * A token is 256 random bits, shown once at registration and stored only as its SHA-256. A fast hash is the
 * right one here: slow password hashes (scrypt, Argon2, bcrypt) exist to make guessing a low-entropy secret
 * expensive, but nobody can enumerate 2^256 tokens however fast the hash is, so a stolen database gives away
 * nothing. A slow hash would instead cost every request milliseconds of CPU (the 304 poll path answers in
 * microseconds) and hand anyone sending junk tokens a way to burn the server's CPU; and since SHA-256 is
 * deterministic, the server finds a token's verifier with one map lookup by hash, never comparing secrets.
 */
import { hash, randomBytes } from "node:crypto";

/** Recognisable by secret scanners, and by operators reading a config file. */
export const TOKEN_PREFIX = "jpkiv_";
/** 32 bytes (256 bits) of CSPRNG output, base64url: 43 characters. */
const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^jpkiv_[A-Za-z0-9_-]{43}$/;

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString("base64url");
}

/** Hex SHA-256 of a token: the only form in which a token is stored or compared. */
export function tokenSha256(token: string): string {
  // One-shot: this runs on every authenticated request (0.4 µs against 1.2 through a Hash object).
  return hash("sha256", token, "hex");
}

/** Whether a string has the shape of one of our tokens (a cheap filter before hashing). */
export function isTokenShaped(s: string): boolean {
  return TOKEN_PATTERN.test(s);
}

/**
 * The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the scheme is case-insensitive), or
 * undefined when the header is absent; null when it is present but not a bearer token of ours.
 */
export function bearerToken(header: string | undefined): string | undefined | null {
  if (header === undefined) return undefined;
  const m = /^bearer +(\S+) *$/i.exec(header);
  if (!m || !isTokenShaped(m[1]!)) return null;
  return m[1]!;
}

/** Hex SHA-256 of a certificate's DER: how a client certificate names its verifier. */
export function certificateSha256(der: Uint8Array): string {
  return hash("sha256", der, "hex");
}
