/**
 * CRLs parsed once and reused across validations (RFC 5280 §6.3.3 needs only the CRL's scope, its entries
 * and one signature check; none of that changes between two validations against the same CRL).
 *
 * `CrlIndexCache.parse(der)` returns the parsed CRL (header and compact entry index, crl-index.ts) for these
 * bytes: the very same Buffer is recognised by identity (a WeakMap: a warm lookup costs no hashing of the
 * 40 MB), other Buffers holding the same bytes by their SHA-256. The signature check is remembered on the parsed
 * CRL by validate.ts, so it too happens once per CRL and key.
 *
 * Bounded memory: at most `maxCrls` CRLs (default 8) and `maxBytes` (default 512 MiB) of DER plus index are
 * held; the least recently used go first. A 1M-entry CRL costs about 40 MB of DER and 30–40 MB of index.
 */
import { createHash } from "node:crypto";
import { JpkiError } from "../errors.js";
import type { CompactCrlEntries } from "./crl-index.js";
import { parseCrl, type Crl } from "./crl.js";

export interface CrlIndexCacheParams {
  /** at most this many CRLs (default 8) */
  readonly maxCrls?: number;
  /** at most this many bytes of DER plus index (default 512 MiB) */
  readonly maxBytes?: number;
}

interface Held {
  readonly crl: Crl | undefined;
  readonly bytes: number;
}

export class CrlIndexCache {
  readonly #maxCrls: number;
  readonly #maxBytes: number;
  /** by SHA-256 of the DER (hex), in least-recently-used order; undefined: the bytes are no CRL we can read */
  readonly #byDigest = new Map<string, Held>();
  readonly #byBuffer = new WeakMap<Uint8Array, { digest: string; held: Held }>();
  #bytes = 0;
  #parses = 0;
  /** the digest last added or touched: the last key of #byDigest */
  #newest: string | undefined;

  constructor(params: CrlIndexCacheParams = {}) {
    const maxCrls = params.maxCrls ?? 8;
    const maxBytes = params.maxBytes ?? 512 * 2 ** 20;
    if (!Number.isSafeInteger(maxCrls) || maxCrls < 1) throw new JpkiError("ERR_USAGE", "CrlIndexCache: maxCrls must be a positive integer");
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new JpkiError("ERR_USAGE", "CrlIndexCache: maxBytes must be a positive integer");
    this.#maxCrls = maxCrls;
    this.#maxBytes = maxBytes;
  }

  /** How many CRLs were parsed (cache misses) since this cache was made. */
  get parses(): number {
    return this.#parses;
  }

  /** CRLs held and their bytes (DER plus index). */
  get stats(): { readonly crls: number; readonly bytes: number } {
    return { crls: this.#byDigest.size, bytes: this.#bytes };
  }

  /** The parsed CRL for these bytes, or undefined when they do not decode as a CRL. Never throws on bad bytes. */
  parse(der: Uint8Array): Crl | undefined {
    const known = this.#byBuffer.get(der);
    if (known && this.#byDigest.get(known.digest) === known.held) {
      this.#touch(known.digest, known.held);
      return known.held.crl;
    }
    const digest = createHash("sha256").update(der).digest("hex");
    let held = this.#byDigest.get(digest);
    if (held) this.#touch(digest, held);
    else {
      this.#parses++;
      let crl: Crl | undefined;
      try {
        // a private copy: the caller's Buffer may be reused for other bytes, the parsed view must not change
        crl = parseCrl(Buffer.from(der));
      } catch {
        crl = undefined;
      }
      const index = crl?.entries as Partial<CompactCrlEntries> | undefined;
      held = { crl, bytes: der.byteLength + (index?.byteLength ?? 0) };
      this.#byDigest.set(digest, held);
      this.#newest = digest;
      this.#bytes += held.bytes;
      this.#evict(digest);
    }
    this.#byBuffer.set(der, { digest, held });
    return held.crl;
  }

  #touch(digest: string, held: Held): void {
    // already the most recent (the usual case: one CRL checked over and over): nothing to reorder
    if (this.#newest === digest) return;
    this.#byDigest.delete(digest);
    this.#byDigest.set(digest, held);
    this.#newest = digest;
  }

  /** Drops the least recently used until within bounds (the one just added stays, even when alone it is over). */
  #evict(keep: string): void {
    for (const [digest, held] of this.#byDigest) {
      if (this.#byDigest.size <= this.#maxCrls && this.#bytes <= this.#maxBytes) break;
      if (digest === keep) continue;
      this.#byDigest.delete(digest);
      this.#bytes -= held.bytes;
    }
  }
}
