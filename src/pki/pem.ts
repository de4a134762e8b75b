/** PEM (RFC 7468) encoding and decoding. OpenSSL wants the label "X509 CRL" for CRLs, not "CRL". */
import { JpkiError } from "../errors.js";
import { isWholeTlv } from "./der.js";

export type PemLabel = "CERTIFICATE" | "X509 CRL" | "CMS" | "PUBLIC KEY" | "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" | "ENCRYPTED PRIVATE KEY" | "PRIVATE KEY";

export function toPem(der: Uint8Array, label: PemLabel): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * The encapsulation boundaries (RFC 7468 §2). A block is a BEGIN line and the first END line of the same label
 * after it. Found with one pass for each kind of line, not with /-----BEGIN (L)-----([\s\S]*?)-----END \1-----/:
 * that lazy body re-scanned the rest of the text from every BEGIN without its END, so a text of BEGIN lines
 * alone took quadratic time (a 2 MiB body of POST /v1/verify-signature: ~50 s on the server's one thread).
 */
const BEGIN_RE = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const END_RE = /-----END ([A-Z0-9 ]+)-----/g;

/** A character no PEM body may hold: not a base64 digit, not padding, not the whitespace RFC 7468 §3 allows. */
const NOT_BASE64 = /[^A-Za-z0-9+/=\r\n\t ]/;
/** From the first `=` to the end: one or two `=`, whitespace between and after. Linear: no quantifier can
 * re-match what another matched (each group starts with its `=`). */
const PADDING = /^(?:=[\r\n\t ]*){1,2}$/;

/**
 * Base64 digits with whitespace anywhere and at most two `=` at the end — what stripping the whitespace and
 * testing /^[A-Za-z0-9+/]*={0,2}$/ said, without the stripped copy. Two regular expressions rather than a
 * loop over charCodeAt: the body is a slice of the request's text, and V8 reads a sliced string's characters
 * one by one ≈ 4× slower than its regexp engine scans it (a certificate's PEM on every POST /v1/validate:
 * 5.6 µs by the loop, 1.4 by these).
 */
function isBase64Body(s: string): boolean {
  if (NOT_BASE64.test(s)) return false;
  const pad = s.indexOf("=");
  return pad < 0 || PADDING.test(s.slice(pad));
}

/** All PEM blocks in a text, in order. */
export function parsePemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  const out: Array<{ label: string; der: Buffer }> = [];
  if (!text.includes("-----BEGIN ")) return out;
  // Where each label's END lines start, in order (overlapping lines too: each match moves on by one character).
  const ends = new Map<string, number[]>();
  // The module's two expressions, rewound (this function is synchronous: no other call can be half-way through
  // them): a new RegExp for each call was made and initialised on every POST /v1/validate (≈ 0.6 µs of the
  // serving thread an answer, perf).
  const endRe = END_RE;
  endRe.lastIndex = 0;
  for (let m = endRe.exec(text); m; m = endRe.exec(text)) {
    const list = ends.get(m[1]!);
    if (list) list.push(m.index);
    else ends.set(m[1]!, [m.index]);
    endRe.lastIndex = m.index + 1;
  }
  const seen = new Map<string, number>();
  const beginRe = BEGIN_RE;
  beginRe.lastIndex = 0;
  for (let m = beginRe.exec(text); m; m = beginRe.exec(text)) {
    const label = m[1]!;
    const bodyStart = m.index + m[0].length;
    const list = ends.get(label) ?? [];
    let i = seen.get(label) ?? 0;
    while (i < list.length && list[i]! < bodyStart) i++;
    seen.set(label, i);
    if (i === list.length) {
      beginRe.lastIndex = m.index + 1; // no END for it: as the regex did, look for a BEGIN further on
      continue;
    }
    const end = list[i]!;
    const body = text.slice(bodyStart, end);
    if (!isBase64Body(body)) {
      throw new JpkiError("ERR_DER_MALFORMED", `PEM block "${label}" has characters outside base64`);
    }
    // Node's base64 decoder skips the line breaks and spaces isBase64Body allowed.
    out.push({ label, der: Buffer.from(body, "base64") });
    beginRe.lastIndex = end + "-----END ".length + label.length + 5;
  }
  return out;
}

/**
 * True when the bytes look like PEM text rather than DER. A DER SEQUENCE whose definite length spans exactly the
 * input is DER, whatever it contains: a CMS SignedData carrying a PEM document as its attached content (a signed
 * PKCS#10 request, provider/enrol.ts) has "-----BEGIN " in its first bytes and is still DER. Anything else holding
 * "-----BEGIN " is PEM, with whatever text before it.
 */
export function looksLikePem(bytes: Uint8Array): boolean {
  if (isWholeDerSequence(bytes)) return false;
  // Anywhere, as openssl reads PEM: `openssl x509 -text` puts several KiB of text before the block.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes("-----BEGIN ");
}

/**
 * Accepts PEM (any of the given labels) or raw DER, returning DER. `what` names the expected object in errors.
 */
export function pemOrDer(bytes: Uint8Array, labels: readonly string[], what: string): Buffer {
  if (looksLikePem(bytes)) {
    const blocks = parsePemBlocks(Buffer.from(bytes).toString("utf8"));
    const block = blocks.find((b) => labels.includes(b.label));
    if (!block) {
      const seen = blocks.map((b) => b.label).join(", ") || "none";
      throw new JpkiError("ERR_DER_MALFORMED", `expected a PEM ${what} (${labels.join(" or ")}), found: ${seen}`);
    }
    return block.der;
  }
  if (bytes.length < 2 || bytes[0] !== 0x30) {
    throw new JpkiError("ERR_DER_MALFORMED", `not a ${what}: neither PEM nor DER (a DER ${what} starts with a SEQUENCE)`);
  }
  return Buffer.from(bytes);
}

/**
 * PEM of data given as consecutive chunks, without joining them: 48 bytes make one 64-character line, so
 * chunks are cut at multiples of 48 and the remainder carried over. Byte-identical to toPem of the whole.
 */
export function* pemChunks(chunks: Iterable<Uint8Array>, label: PemLabel): Generator<Buffer> {
  yield Buffer.from(`-----BEGIN ${label}-----\n`, "ascii");
  let carry: Buffer = Buffer.alloc(0);
  for (const c of chunks) {
    const data = carry.length ? Buffer.concat([carry, c]) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    const whole = data.length - (data.length % 48);
    if (whole) yield lines(data.subarray(0, whole));
    carry = Buffer.from(data.subarray(whole));
  }
  if (carry.length) yield lines(carry);
  yield Buffer.from(`-----END ${label}-----\n`, "ascii");
}

function lines(bytes: Buffer): Buffer {
  const b64 = bytes.toString("base64");
  let out = "";
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return Buffer.from(out, "ascii");
}

/** A DER SEQUENCE (0x30) with a definite length whose header and contents are exactly `bytes`. */
function isWholeDerSequence(bytes: Uint8Array): boolean {
  return bytes[0] === 0x30 && isWholeTlv(bytes);
}
