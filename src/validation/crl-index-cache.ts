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
 * held; the least recently used go first. A 1M-entry CRL costs about 40 MB of DER and 30–40 MB of index. A frozen
 * set's DER is read in place (parseAll), and counts all the same, since the cache keeps it alive — unless the
 * cache is `boundedBySet`: its owner calls retainOnly with each new set, and only indexes count.
 *
 * `parseAll(ders)` parses a whole set: a frozen array (a server's or the engine thread's CRL files, passed again
 * with every validation) is looked at once and remembered until the cache lets one of its CRLs go, so a
 * validation against a national set — a full CRL, a partition per municipality and an ARL per CA, thousands of
 * files — does not look up every one of them each time. `crlsIssuedBy` then narrows the set to one issuer's.
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
  /**
   * The owner gives the cache one set at a time (parseAll of a frozen array) and calls retainOnly with each new
   * one, so what the cache holds is that set: a frozen set's DER, read in place and held by the owner anyway, is
   * not counted toward maxBytes (its indexes are). Default false: a set the caller dropped would otherwise stay
   * reachable from the cache, uncounted, until maxCrls pushed it out.
   */
  readonly boundedBySet?: boolean;
}

interface Held {
  readonly digest: string;
  readonly crl: Crl | undefined;
  /** DER plus index (a lazily indexed CRL's index counts once built) */
  bytes: number;
  /** when it was last asked for (the cache's tick): the least recent goes first */
  used: number;
}

/** A frozen array of CRL files, parsed: what parseAll remembers of it. */
interface ParsedSet {
  /** the cache's evictions when it was parsed: any since, and a CRL of it may have been let go */
  readonly evictions: number;
  readonly crls: readonly Crl[];
  readonly held: readonly Held[];
}

/** The CRLs of a parsed set by issuer (Name.key), made when first asked for. */
const byIssuer = new WeakMap<readonly Crl[], Map<string, readonly Crl[]>>();
const NONE: readonly Crl[] = Object.freeze([]);

/**
 * The CRLs among `crls` issued by the name whose key (name.ts Name.key: equal keys, equal names) is `issuerKey`,
 * in their order. For a set parseAll returned the grouping is made once and kept with it; for any other array it
 * is a filter.
 */
export function crlsIssuedBy(crls: readonly Crl[], issuerKey: string): readonly Crl[] {
  if (!Object.isFrozen(crls)) return crls.filter((c) => c.issuer.key === issuerKey);
  let groups = byIssuer.get(crls);
  if (!groups) {
    const g = new Map<string, Crl[]>();
    for (const c of crls) {
      const list = g.get(c.issuer.key);
      if (list) list.push(c);
      else g.set(c.issuer.key, [c]);
    }
    byIssuer.set(crls, (groups = g));
  }
  return groups.get(issuerKey) ?? NONE;
}

export class CrlIndexCache {
  readonly #maxCrls: number;
  readonly #maxBytes: number;
  readonly #boundedBySet: boolean;
  /** by SHA-256 of the DER (hex); a Held without a crl: the bytes are no CRL we can read */
  readonly #byDigest = new Map<string, Held>();
  readonly #byBuffer = new WeakMap<Uint8Array, { digest: string; held: Held }>();
  /** every Held still in #byDigest, so parseAll can tell whether a set it parsed is whole without the digests */
  readonly #alive = new WeakSet<Held>();
  readonly #sets = new WeakMap<readonly Uint8Array[], ParsedSet>();
  #bytes = 0;
  #parses = 0;
  #evictions = 0;
  /** counts the asks: a CRL's `used` is the tick of its last (an LRU by stamps: a Map re-ordered on every ask
   * cost a delete and a set per CRL per validation, a fifth of a validation against 300 CRLs) */
  #tick = 0;

  constructor(params: CrlIndexCacheParams = {}) {
    const maxCrls = params.maxCrls ?? 8;
    const maxBytes = params.maxBytes ?? 512 * 2 ** 20;
    if (!Number.isSafeInteger(maxCrls) || maxCrls < 1) throw new JpkiError("ERR_USAGE", "CrlIndexCache: maxCrls must be a positive integer");
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new JpkiError("ERR_USAGE", "CrlIndexCache: maxBytes must be a positive integer");
    this.#maxCrls = maxCrls;
    this.#maxBytes = maxBytes;
    this.#boundedBySet = params.boundedBySet ?? false;
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
    const crl = this.#held(der, true).crl;
    // Bytes a frozen set brought in first are parsed lazily: entries that do not decode make them no CRL here,
    // as parseCrl says for a copy (reading the flag indexes them, as parsing a copy would have).
    return crl?.undecodableEntries === undefined ? crl : undefined;
  }

  /**
   * The CRLs of `ders` that decode, in order (parse each). A frozen array is parsed once: asked again with the
   * same array, the same result comes back (the same array object, frozen) until the cache lets one of its CRLs
   * go. Its Buffers must then keep their bytes, as parse() already assumes of a Buffer it has seen; and since
   * they do, the parsed CRLs read them where they are instead of a private copy each (parse() copies): a server
   * holding a national set of CRLs no longer holds their DER twice.
   */
  parseAll(ders: readonly Uint8Array[]): readonly Crl[] {
    const frozen = Object.isFrozen(ders);
    if (frozen) {
      const set = this.#sets.get(ders);
      if (set && set.evictions === this.#evictions) {
        const t = ++this.#tick;
        for (const h of set.held) h.used = t;
        return set.crls;
      }
      if (set) this.#sets.delete(ders); // stale: it may hold CRLs let go since (the parse below may not keep it)
    }
    const crls: Crl[] = [];
    const held: Held[] = [];
    for (const der of ders) {
      const h = this.#held(der, !frozen);
      held.push(h);
      if (h.crl) crls.push(h.crl);
    }
    if (!frozen) return crls;
    Object.freeze(crls);
    // Parsing the set may itself have let some of it go (a set larger than the bounds): then it is not kept.
    if (held.every((h) => this.#alive.has(h))) this.#sets.set(ders, { evictions: this.#evictions, crls, held });
    return crls;
  }

  /** `own`: parse a private copy of the bytes (the caller may reuse its Buffer), not the caller's Buffer itself. */
  #held(der: Uint8Array, own: boolean): Held {
    const t = ++this.#tick;
    const known = this.#byBuffer.get(der);
    if (known && this.#byDigest.get(known.digest) === known.held) {
      known.held.used = t;
      return known.held;
    }
    const digest = createHash("sha256").update(der).digest("hex");
    let held = this.#byDigest.get(digest);
    if (held) held.used = t;
    else {
      this.#parses++;
      let crl: Crl | undefined;
      // A frozen set's CRLs index their entries when a validation first reads them (crl.ts lazyEntries): a
      // server's set holds each CA's full CRL beside its partitions, and the engine reads a certificate's
      // partition; the full CRL's index (a million entries: ≈ 1.5 s and 40 MB here) is then never built.
      const lazyEntries = own ? undefined : { onIndexed: (bytes: number) => this.#indexed(created, bytes) };
      try {
        // a private copy unless the caller promised the bytes (parseAll of a frozen set): the parsed view must not change
        crl = parseCrl(own ? Buffer.from(der) : Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength), lazyEntries ? { lazyEntries } : {});
      } catch {
        crl = undefined;
      }
      const index = lazyEntries ? undefined : (crl?.entries as Partial<CompactCrlEntries> | undefined);
      // The bytes the cache keeps alive: the DER (a copy, or the caller's read in place) and the index; in a cache
      // boundedBySet, a frozen set's CRL counts its index alone (the DER is the owner's, which retainOnly follows:
      // counted, a national set's files, ≈ 2 GB, were over any bound and the set was parsed on every validation).
      const created: Held = { digest, crl, bytes: (own || !this.#boundedBySet ? der.byteLength : 0) + (index?.byteLength ?? 0), used: t };
      held = created;
      this.#byDigest.set(digest, held);
      this.#alive.add(held);
      this.#bytes += held.bytes;
      this.#evict(digest);
    }
    this.#byBuffer.set(der, { digest, held });
    return held;
  }

  /**
   * Lets go of every CRL but those of `ders` (the set a server validates against now): a CRL replaced by a newer
   * publication is not kept until it is the least recently used. For a frozen set read in place that matters
   * most: its DER is not counted toward maxBytes, and a replaced one would otherwise be held only by the cache.
   */
  retainOnly(ders: readonly Uint8Array[]): void {
    const keep = new Set<Held>();
    for (const d of ders) {
      const known = this.#byBuffer.get(d);
      if (known) keep.add(known.held);
    }
    for (const [digest, held] of this.#byDigest) {
      if (keep.has(held)) continue;
      this.#byDigest.delete(digest);
      this.#alive.delete(held);
      this.#bytes -= held.bytes;
      this.#evictions++;
    }
  }

  /** A lazily indexed CRL built its index: its bytes count from now, while the cache still holds it. */
  #indexed(held: Held, bytes: number): void {
    if (!this.#alive.has(held)) return;
    held.bytes += bytes;
    this.#bytes += bytes;
    this.#evict(held.digest);
  }

  /** Drops the least recently used until within bounds (the one just added stays, even when alone it is over). */
  #evict(keep: string): void {
    if (this.#byDigest.size <= this.#maxCrls && this.#bytes <= this.#maxBytes) return;
    // Rare (a new CRL past the bounds): the stamps sorted once, the oldest let go first.
    const byAge = [...this.#byDigest].filter(([d]) => d !== keep).sort((a, b) => a[1].used - b[1].used);
    for (const [digest, held] of byAge) {
      if (this.#byDigest.size <= this.#maxCrls && this.#bytes <= this.#maxBytes) break;
      this.#byDigest.delete(digest);
      this.#alive.delete(held);
      this.#bytes -= held.bytes;
      this.#evictions++;
    }
  }
}
