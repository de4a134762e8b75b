/**
 * Building a CA's next full CRL from the blocks its previous one already holds on this host's disk.
 *
 * A full CRL is the CA's revocation log, block after block (store/revocation-log.ts), and the log only grows: the
 * next CRL repeats almost every byte of the last one. On PostgreSQL those bytes cross the socket again at about
 * 100 MB/s (half the time of a 1,000,000-entry CRL). So each published full CRL leaves a note of where each whole
 * block lies in its file (a "block layout", kept under the workspace's cache/, owner-only), and the next build hands
 * the store those blocks (store/types.ts KnownBlocks): the store sends each block's SHA-256 instead of its bytes,
 * the bytes are read from the previous file and used only when they hash the same. Correctness therefore rests on
 * the store and SHA-256 alone: a layout or a previous CRL that is stale, altered, truncated or another host's gives
 * blocks that do not match, and those are read from the store as before. Nothing here is trusted for more than a hint.
 */
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { EncodedEntries, EntriesTotal } from "../profile/crl-entry.js";
import { sweepTempsFor, tempPathFor } from "../store/staging.js";
import type { KnownBlocks } from "../store/types.js";

const LAYOUT_VERSION = 1;
/**
 * Bytes read from the previous CRL at a time: blocks are asked for in file order, so one read serves many (two of a
 * national-scale CA's ≈ 460 KB blocks). 1 MiB, not 4: the window is fresh memory, a minor fault each 4 KB at
 * ≈ 13 µs on these virtual machines, and the reads are few either way (45 for a 1M-entry CRL's 44 MB).
 */
const WINDOW_BYTES = 1 << 20;
/**
 * How the layout and the previous CRL are opened: never through a symbolic link (a hint is read from the workspace
 * only), and without blocking (a FIFO put there would otherwise hold the publication until a writer came: it is then
 * opened at once and refused as no regular file).
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/**
 * A layout larger than this is not read (JSON.parse holds it as a string twice over). openHeldBlocks narrows it to
 * what the CRL it describes can need: a block is at least one entry, longer in the CRL than its triple in the layout.
 */
const MAX_LAYOUT_BYTES = 256 << 20;

/**
 * `cache/crl-blocks/` as a directory of the workspace itself, or undefined: cache/ and crl-blocks/ must each be a
 * directory, not a symbolic link (followed, the layout was written wherever it pointed, as publicationDir refuses for
 * the CRLs) nor anything else. With `make`, each is made (0700) when missing. Never an error: the cache is a hint.
 */
function blocksDir(root: string, make: boolean): string | undefined {
  let at = root;
  for (const part of ["cache", "crl-blocks"]) {
    at = join(at, part);
    try {
      if (!lstatSync(at).isDirectory()) return undefined;
      continue;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !make) return undefined;
    }
    try {
      mkdirSync(at, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || !lstatSync(at).isDirectory()) return undefined;
    }
  }
  return at;
}

/** The regular file at `path` opened for reading (not through a link, never waiting on a FIFO), or undefined. */
function openRegular(path: string): { fd: number; size: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (st.isFile()) return { fd, size: st.size };
  } catch {
    // as not a regular file
  }
  closeSync(fd);
  return undefined;
}

/** Reads `length` bytes at `offset` of `fd` (fewer at the end of the file). */
function readAt(fd: number, offset: number, length: number, into?: Buffer): Buffer {
  const buf = into && into.length >= length ? into : Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const r = readSync(fd, buf, got, length - got, offset + got);
    if (r === 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/** Where one published full CRL's whole blocks lie in its file. */
export interface BlockLayout {
  readonly caId: string;
  /** the CRL number of the file described, as a decimal string */
  readonly number: string;
  /** the file's size in bytes: a file of another size is not the one described */
  readonly size: number;
  /** [block id, offset in the file, length], in file order */
  readonly blocks: ReadonlyArray<readonly [string, number, number]>;
}

/** The layout file of a CA's full CRL: `<workspace>/cache/crl-blocks/<ca>.json`. */
export function layoutPath(root: string, caId: string): string {
  return join(root, "cache", "crl-blocks", `${caId}.json`);
}

/** What a build took from the previous CRL instead of the store. */
export interface ReuseStats {
  blocks: number;
  bytes: number;
  /** blocks the layout promised whose bytes did not hash as the store's (read from the store instead) */
  mismatched: number;
}

/** The previous CRL's blocks, read and checked on demand; close() when the build is over. */
export interface HeldBlocks extends KnownBlocks {
  readonly stats: ReuseStats;
  close(): void;
}

/**
 * A layout file as written, or undefined when it is missing, unreadable, larger than `maxBytes`, not a regular file
 * of the workspace's own cache/crl-blocks/, or not a layout (never an error: it is a hint).
 */
export function readLayout(root: string, caId: string, maxBytes = MAX_LAYOUT_BYTES): BlockLayout | undefined {
  if (!blocksDir(root, false)) return undefined;
  const file = openRegular(layoutPath(root, caId));
  if (!file) return undefined;
  let text: string;
  try {
    if (file.size > maxBytes) return undefined;
    text = readAt(file.fd, 0, file.size).toString("utf8");
  } catch {
    return undefined;
  } finally {
    closeSync(file.fd);
  }
  try {
    const v = JSON.parse(text) as { version?: unknown; caId?: unknown; number?: unknown; size?: unknown; blocks?: unknown };
    if (v.version !== LAYOUT_VERSION || v.caId !== caId || typeof v.number !== "string" || !Number.isSafeInteger(v.size) || !Array.isArray(v.blocks)) return undefined;
    for (const b of v.blocks) {
      if (!Array.isArray(b) || b.length !== 3 || typeof b[0] !== "string" || !Number.isSafeInteger(b[1]) || !Number.isSafeInteger(b[2]) || b[1] < 0 || b[2] <= 0) return undefined;
    }
    return { caId, number: v.number, size: v.size as number, blocks: v.blocks as Array<[string, number, number]> };
  } catch {
    return undefined;
  }
}

/**
 * The blocks the CA's previous full CRL at `crlPath` holds, as its layout file describes them; none when there is no
 * layout, or the file there is not the size it describes (another host's CRL, a restore) — still a holder, so the
 * store tags the blocks it sends and this build leaves a layout for the next. The file is opened now and read
 * through that descriptor only: a publication replacing it meanwhile does not change what is read.
 */
export function openHeldBlocks(root: string, caId: string, crlPath: string, windowBytes = WINDOW_BYTES): HeldBlocks {
  const stats: ReuseStats = { blocks: 0, bytes: 0, mismatched: 0 };
  const none: HeldBlocks = { stats, has: () => false, take: () => undefined, close: () => undefined };
  const file = openRegular(crlPath);
  if (!file) return none;
  const { fd, size } = file;
  const layout = readLayout(root, caId, 2 * size + 4096);
  if (!layout?.blocks.length || size !== layout.size) {
    closeSync(fd); // not the file described
    return none;
  }
  const where = new Map<string, { offset: number; length: number }>();
  for (const [id, offset, length] of layout.blocks) if (offset + length <= size) where.set(id, { offset, length });
  // One buffer read into again and again: on these machines memory touched for the first time costs more than the
  // work done on it (reading 44 MB into fresh 4 MiB buffers took ≈ 140 ms, into one reused ≈ 6 ms, and hashing it
  // 97 against 28 ms). A block handed out is dead by the next take: the store yields it before asking for the next,
  // and the CRL builder copies what it keeps (crl/builder.ts CrlParams.entries). A block larger than the buffer
  // gets one of its own.
  const reused = Buffer.allocUnsafe(Math.min(windowBytes, size));
  let window: Buffer = Buffer.alloc(0);
  let windowStart = 0;
  let open = true;
  const read = (offset: number, length: number): Buffer | undefined => {
    if (offset < windowStart || offset + length > windowStart + window.length) {
      const buf = readAt(fd, offset, Math.min(Math.max(length, windowBytes), size - offset), length <= reused.length ? reused : undefined);
      if (buf.length < length) return undefined;
      window = buf;
      windowStart = offset;
    }
    return window.subarray(offset - windowStart, offset - windowStart + length);
  };
  return {
    stats,
    has: (id, length) => open && where.get(id)?.length === length,
    take(id, length, digest) {
      const w = where.get(id);
      if (!open || !w || w.length !== length) return undefined;
      let der: Buffer | undefined;
      try {
        der = read(w.offset, length);
      } catch {
        der = undefined; // an I/O error: the store has it
      }
      if (!der || !createHash("sha256").update(der).digest().equals(digest)) {
        stats.mismatched++;
        return undefined;
      }
      stats.blocks++;
      stats.bytes += length;
      return der;
    },
    close() {
      if (!open) return;
      open = false;
      window = Buffer.alloc(0);
      closeSync(fd);
    },
  };
}

/**
 * Notes where each whole block of the log goes in the CRL being built: the entries pass through unchanged, and the
 * blocks' offsets are counted from the first entry (the builder tells where that is, crl/builder.ts CrlLayout).
 */
export class BlockLayoutRecorder {
  readonly #blocks: Array<[string, number, number]> = [];
  #at = 0;

  async *wrap<T extends EncodedEntries | EntriesTotal>(entries: AsyncIterable<T>): AsyncIterable<T> {
    for await (const chunk of entries) {
      if ("der" in chunk) {
        if (chunk.block) this.#blocks.push([chunk.block.id, this.#at, chunk.der.length]);
        this.#at += chunk.der.length;
      }
      yield chunk;
    }
  }

  /**
   * Writes the layout of the CRL `number` just installed (`size` bytes, its first entry at `entriesOffset`); a
   * failure to write it only costs the next build its reuse, so it is swallowed — and an older layout removed, since
   * it describes a file that is gone.
   */
  save(root: string, caId: string, number: bigint, size: number, entriesOffset: number): void {
    // Only into the workspace's own directories: through a link it would write (or remove) elsewhere.
    const dir = blocksDir(root, this.#blocks.length > 0);
    if (!dir) return;
    const path = layoutPath(root, caId);
    // What a writer killed between writing and renaming left (its process gone); a live one's is its work.
    sweepTempsFor(path);
    if (!this.#blocks.length) {
      try {
        rmSync(path, { force: true });
      } catch {
        // as below
      }
      return;
    }
    const layout: BlockLayout & { version: number } = {
      version: LAYOUT_VERSION,
      caId,
      number: String(number),
      size,
      blocks: this.#blocks.map(([id, at, length]) => [id, entriesOffset + at, length] as const),
    };
    const tmp = tempPathFor(path);
    try {
      // A new file (O_EXCL: never one a link put there), exactly 0600 whatever the umask.
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        fchmodSync(fd, 0o600);
        const data = Buffer.from(JSON.stringify(layout), "utf8");
        for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
      } finally {
        closeSync(fd);
      }
      // No fsync: a layout lost in a crash costs the next build its reuse, nothing else.
      renameSync(tmp, path);
    } catch {
      for (const f of [tmp, path]) {
        try {
          rmSync(f, { force: true });
        } catch {
          // the next build finds a layout that does not match its file and reads the store
        }
      }
    }
  }
}
