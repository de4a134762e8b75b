/**
 * The revocation log both store backends keep: append-only, per CA, each block the DER of the CRL entries
 * (RFC 5280 §5.1.2.6 revokedCertificates) one transaction revoked, concatenated, with 8 bytes of metadata per
 * entry. A CA's full CRL is the concatenation of its blocks in id order, filtered entry by entry only in the
 * blocks holding a certificate that expired before the cut-off; nothing is re-encoded when a CRL is built.
 *
 * Pure encoding and filtering here, and the one class that collects a transaction's entries; where blocks are
 * stored (a SQLite table, a PostgreSQL table) is each backend's business.
 */
import { encodeEntry, entryOffsets, type CrlEntryInput, type EncodedEntries } from "../profile/crl-entry.js";
import type { DumpRevocationOrder } from "./types.js";

/** Bytes of metadata per log entry: uint32 not_after (seconds since the epoch), uint32 municipality code. */
export const META_BYTES = 8;

/** One block as a backend stores it: a CA's entries from one transaction (or one page of a migration or load). */
export interface RevocationBlock {
  readonly caId: string;
  readonly entries: number;
  /** the earliest not_after (ms) among the block's certificates: a block at or after the cut-off goes whole */
  readonly minNotAfter: number;
  readonly der: Buffer;
  readonly meta: Buffer;
  /** the distinct municipality codes (partition keys) of its entries */
  readonly municipalities: ReadonlySet<number>;
}

/** A municipality code as the log keeps it: its 6 digits as a uint32 (0 when it is not a number). */
export function municipalityKey(municipality: string): number {
  return Number.parseInt(municipality, 10) || 0;
}

/** A municipality code as the log keeps it (uint32) back to its 6 digits. */
export function municipalityText(code: number): string {
  return String(code).padStart(6, "0");
}

/** The not_after (seconds) of entry `i` of a block's metadata. */
export function notAfterSecondsAt(meta: Buffer, i: number): number {
  return meta.readUInt32BE(i * META_BYTES);
}

/** The municipality code (partition key) of entry `i` of a block's metadata. */
export function municipalityAt(meta: Buffer, i: number): number {
  return meta.readUInt32BE(i * META_BYTES + 4);
}

/** The distinct municipality codes (the partition keys) of a log block's entries. */
export function municipalitiesOf(meta: Buffer, count: number): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < count; i++) out.add(municipalityAt(meta, i));
  return out;
}

/**
 * A stored block's entries as a CRL lists them on `cutoff` (ms): the whole block when none of its certificates
 * expired before the cut-off (`meta` is then not needed, and may be null: backends fetch it only for such
 * blocks), else the others, or nothing. X.509 times are whole seconds, so not_after in seconds loses nothing.
 */
export function blockEntries(der: Buffer, count: number, minNotAfter: number, meta: Buffer | null, cutoff: number): EncodedEntries | undefined {
  if (minNotAfter >= cutoff) return { der, count };
  if (!meta) throw new RangeError("revocation log: a block with expired entries was read without its metadata");
  const offsets = entryOffsets(der);
  const kept: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (notAfterSecondsAt(meta, i) * 1000 >= cutoff) kept.push(der.subarray(offsets[i], offsets[i + 1]));
  }
  return kept.length ? { der: Buffer.concat(kept), count: kept.length } : undefined;
}

/**
 * Adds a block's entries to the lists of the partitions (municipality keys) in `out`, leaving out other
 * partitions' entries and, where the block holds one, certificates expired before `cutoff` (ms). A partition's run of
 * consecutive entries is referenced, not copied; a block of one wanted partition with nothing expired goes whole.
 */
export function splitBlockByPartition(der: Buffer, count: number, minNotAfter: number, meta: Buffer, cutoff: number, out: ReadonlyMap<number, EncodedEntries[]>): void {
  const checkExpiry = minNotAfter < cutoff;
  // A block of one partition with nothing expired goes whole (no per-entry offsets): the common shape of a large
  // partition's blocks.
  const first = out.get(meta.readUInt32BE(4));
  if (first && !checkExpiry) {
    let k = 1;
    while (k < count && out.get(meta.readUInt32BE(k * META_BYTES + 4)) === first) k++;
    if (k === count) {
      first.push({ der, count });
      return;
    }
  }
  const offsets = entryOffsets(der);
  let runStart = 0;
  let runList: EncodedEntries[] | undefined;
  let runCount = 0;
  const close = (end: number) => {
    if (runList && runCount) runList.push({ der: der.subarray(offsets[runStart]!, offsets[end]!), count: runCount });
  };
  for (let k = 0; k < count; k++) {
    const list = out.get(meta.readUInt32BE(k * META_BYTES + 4));
    const keep = list !== undefined && (!checkExpiry || meta.readUInt32BE(k * META_BYTES) * 1000 >= cutoff);
    const target = keep ? list : undefined;
    if (target !== runList || !keep) {
      close(k);
      runList = target;
      runStart = k;
      runCount = 0;
    }
    if (keep) runCount++;
  }
  close(count);
}

/**
 * Collects the CRL entries one transaction revokes, per CA in the order they are added, and hands them out
 * as one block per CA (`take`). The caller writes the blocks in the same transaction as the revocations.
 */
export class RevocationBlocks {
  readonly #open = new Map<string, { der: Buffer[]; meta: number[]; minNotAfter: number; municipalities: Set<number> }>();

  /** Entries collected and not yet taken, all CAs together. */
  get size(): number {
    let n = 0;
    for (const b of this.#open.values()) n += b.der.length;
    return n;
  }

  /** Adds a revocation: `revokedAt` and `notAfter` in ms, `reason` a CRLReason code (0 writes no extension). */
  add(caId: string, serial: string, revokedAt: number, reason: number, notAfter: number, municipality: string): void {
    let b = this.#open.get(caId);
    if (!b) this.#open.set(caId, (b = { der: [], meta: [], minNotAfter: notAfter, municipalities: new Set() }));
    b.der.push(encodeEntry({ serial, revokedAt: new Date(revokedAt), reason }));
    const m = municipalityKey(municipality);
    b.meta.push(Math.floor(notAfter / 1000), m);
    b.municipalities.add(m);
    if (notAfter < b.minNotAfter) b.minNotAfter = notAfter;
  }

  /** The blocks collected since the last take, one per CA in the order the CAs first appeared; then empty. */
  take(): RevocationBlock[] {
    const out: RevocationBlock[] = [];
    for (const [caId, b] of this.#open) {
      const meta = Buffer.allocUnsafe(b.meta.length * 4);
      for (let i = 0; i < b.meta.length; i++) meta.writeUInt32BE(b.meta[i]!, i * 4);
      out.push({ caId, entries: b.der.length, minNotAfter: b.minNotAfter, der: Buffer.concat(b.der), meta, municipalities: b.municipalities });
    }
    this.#open.clear();
    return out;
  }
}

/**
 * A dump's CRL-order record for entry `i` of a log block whose CA holds no revoked certificate of that serial: one a
 * restore carried over, with what its CRL entry and partition need (both backends' dumps; `recorded`: whether the
 * store also answers OCSP for it).
 */
export function carriedOrderEntry(caId: string, e: CrlEntryInput, meta: Buffer, i: number, recorded: boolean): DumpRevocationOrder {
  const m = municipalityAt(meta, i);
  return {
    caId,
    serial: e.serial,
    carried: {
      revokedAt: e.revokedAt,
      reason: e.reason ?? 0,
      notAfter: new Date(notAfterSecondsAt(meta, i) * 1000),
      ...(m === 0 ? {} : { municipality: municipalityText(m) }),
      recorded,
    },
  };
}
