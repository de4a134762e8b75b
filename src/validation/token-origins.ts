/**
 * Where a registered verifier's bearer token (署名検証者のトークン) may go: the origins (RFC 6454: scheme, host,
 * port) it was given for. CrlCache and OcspClient ask the URLs the certificates name (CRL distribution points,
 * freshestCRL, the AIA OCSP responder) as well as those they are told; a certificate signed from a trust anchor
 * may name any host — with J-LIS roots among `jpki verify --trust`, J-LIS's — and each got the token that opens
 * our `jpki serve`. With `tokenOrigins` set, a URL on another origin is asked without it. Without it, the token
 * goes only where the caller pointed explicitly: OcspClient's `url`, a URL given to `CrlCache.get` — never to a URL
 * only a certificate names (it went to every origin before: the default of a library caller was the unsafe one).
 */
import { JpkiError } from "../errors.js";

/** The set of origins `list` names, each given as an http(s) origin (a final "/" allowed); undefined: no restriction. */
export function tokenOriginSet(list: readonly string[] | undefined, what: string): ReadonlySet<string> | undefined {
  return list === undefined ? undefined : new Set(list.map((o) => httpOrigin(o, what)));
}

/** `text` as the origin it is (`https://Host:443/` → `https://host`); ERR_USAGE for anything with a path, query or credentials. */
export function httpOrigin(text: string, what: string): string {
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    u = undefined;
  }
  if (!u || !/^https?:$/.test(u.protocol) || u.username || u.password || u.pathname !== "/" || u.search || u.hash || /[?#]/.test(text)) {
    throw new JpkiError("ERR_USAGE", `${what} ${JSON.stringify(text)} is not an http:// or https:// origin (scheme, host and port only, such as https://jpki.example:8443)`);
  }
  return u.origin;
}

/** The origin of a URL, or undefined for one that does not parse. */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Whether a request to `url` may carry the token: one on those origins (the caller gives the default set when none was configured). */
export function tokenGoesTo(origins: ReadonlySet<string>, url: string): boolean {
  const o = originOf(url);
  return o !== undefined && origins.has(o);
}

/** Added to a 401 from a URL the token was kept from: what to do if that host is the verifier's own server. */
export const TOKEN_WITHHELD = " (asked without the verifier's token: its origin is not one the token was given for; jpki verify: --token-origin; the library: tokenOrigins)";
