/**
 * A minor garbage collection on demand, for readers that stream large blobs through short-lived Buffers.
 *
 * Why: better-sqlite3 copies every BLOB it returns into a new Buffer, whose memory is freed only when V8 collects
 * the Buffer, and nothing else a CRL stream does allocates enough to make V8 collect: a 1,000,000-entry CRL's 44 MB
 * of log blocks each landed in fresh memory. On these virtual machines touching a page of memory for the first
 * time costs several microseconds (writing 44 MB to a file took 8 ms from one reused buffer, 104 ms from 100
 * distinct ones, 250 ms from 100 just allocated). Collecting the young generation after every few megabytes lets
 * the next blocks reuse the memory of the last: the log read, hashed and written for a 1M-entry CRL went from
 * ≈ 350 to ≈ 185 ms, peak RSS 83 → 58 MB (measured with 16 blocks of 462 KB a page; a collection costs ≈ 2 ms,
 * hence one per STREAM_COLLECT_BYTES, not per block).
 *
 * V8 exposes `gc` only behind --expose-gc; the flag, set at run time, applies to contexts created after it, so the
 * function comes from a fresh vm context. Where that fails (another runtime), nothing is collected: only slower.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Bytes a stream hands out between two collections. */
export const STREAM_COLLECT_BYTES = 4 << 20;

type Gc = (opts: { type: "minor" | "major"; execution?: "sync" | "async" }) => void;
let gc: Gc | undefined | null = null;

/** Collects the young generation now: Buffers already dropped give their memory back for the next ones. */
export function collectYoungGeneration(): void {
  if (gc === null) {
    try {
      setFlagsFromString("--expose-gc");
      const f: unknown = runInNewContext("typeof gc === 'function' ? gc : undefined");
      gc = typeof f === "function" ? (f as Gc) : undefined;
    } catch {
      gc = undefined;
    }
  }
  gc?.({ type: "minor" });
}
