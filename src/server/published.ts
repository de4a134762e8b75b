/**
 * The publication point's files as HTTP representations: which URL path names which file of the workspace,
 * and each file's entity tag (a hash of its content), Last-Modified and cache lifetime.
 *
 * Paths are the ones the certificates name (ca/authority.ts caUrls), relative to the path of the workspace's
 * baseUrl: `/crl/<ca>.crl` (full CRL), `/crl/<ca>-delta.crl` (its delta CRL, crl/delta.ts),
 * `/crl/<ca>/<municipality>.crl` (partition), `/arl/<ca>.crl`, and `/ca/<ca>.crt` (caIssuers); the Bridge CA's
 * `/arl/bridge.crl` and `/ca/bridge.crt`; and `/ca/index.json`, the CA key generations and their successors
 * (ca/generation-index.ts). Nothing else on disk is reachable: a path is matched against these shapes,
 * never joined from what the request says.
 *
 * A published file is only ever replaced by rename (store/staging.ts), so a descriptor opened once reads one
 * whole version: a response is never torn, even when the CRL is replaced while it streams. What a file's
 * hash and nextUpdate are is remembered per (device, inode, size, mtime), so a poll of an unchanged CRL costs
 * one stat and no read.
 */
import { createHash } from "node:crypto";
import { statSync, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { performance } from "node:perf_hooks"; // not the global: app.ts says why
import { join } from "node:path";
import { parseCaId } from "../ca/ids.js";
import { BRIDGE_ID } from "../ca/bridge-id.js";
import { CA_INDEX_FILE } from "../ca/generation-index.js";
import { readHeader, TAG } from "../pki/der.js";
import type { WorkspacePaths } from "../workspace/workspace.js";
import type { Representation } from "./http-cache.js";

export type PublishedKind = "crl" | "delta" | "partition" | "arl" | "ca-certificate" | "ca-index";

export const CONTENT_TYPE: Readonly<Record<PublishedKind, string>> = Object.freeze({
  // RFC 2585 §4.1, §4.2
  crl: "application/pkix-crl",
  delta: "application/pkix-crl",
  partition: "application/pkix-crl",
  arl: "application/pkix-crl",
  "ca-certificate": "application/pkix-cert",
  "ca-index": "application/json",
});

export interface PublishedFile {
  readonly kind: PublishedKind;
  readonly path: string;
  /** the CA the file belongs to, e.g. 13-sig ("" for ca/index.json, which is all of them) */
  readonly caId: string;
}

export interface FileVersion extends Representation {
  /** the CRL's nextUpdate; undefined for certificates */
  readonly nextUpdate?: Date;
  /**
   * Last-Modified as an HTTP-date, formatted once; sent only once it is a strong validator (lastModifiedIsStrong).
   * It is the file's ctime, not its mtime: a published file is written, checked and only then renamed into
   * place, so its mtime can be older than the version it replaces or share that version's second (two
   * publications in one second, or a publisher superseding another), and a client echoing that date in
   * If-Modified-Since or If-Range was answered 304 for a new CRL or a range spliced from two. The rename sets
   * the ctime: what the server reads is never earlier than the install.
   */
  readonly lastModifiedHttp: string;
  /** the whole content, kept for small files (up to SMALL_FILE_BYTES): served without opening the file */
  readonly body?: Buffer;
}

/** Files up to this size are kept in memory once read (a CA certificate, a partition's CRL). */
export const SMALL_FILE_BYTES = 1 << 20;

/**
 * How long a version found by `current` is trusted without another stat. A poll may see a file replaced up
 * to this long ago as unchanged (a 304): far below the CRL schedule's interval, and it saves a system call
 * per poll. A response with a body never is: it is served from a version checked by a stat made after the
 * request arrived (published-route.ts), so once a CRL is installed, no request made after gets an older one.
 */
export const STAT_TTL_MS = 250;

/** The directory of ARLs beside the CRL directory (`<workspace>/arl`). */
export function arlDir(paths: WorkspacePaths): string {
  return join(paths.root, "arl");
}

// A CA id, with the key generation of a rollover (ca/rollover.ts): 13-sig, 13-sig-g2.
const CA = /^\d{2}-(?:sig|auth)(?:-g\d{1,4})?$/;
const MUNICIPALITY = /^\d{6}$/;

/** The published file a URL path (already stripped of the baseUrl's path) names, or undefined. */
export function resolvePublished(paths: WorkspacePaths, urlPath: string): PublishedFile | undefined {
  const parts = urlPath.split("/");
  if (parts[0] !== "" || parts.length < 3 || parts.length > 4) return undefined;
  const [, dir, a, b] = parts as [string, string, string, string | undefined];
  const ca = (file: string, ext: string) => {
    if (!file.endsWith(ext)) return undefined;
    const id = file.slice(0, -ext.length);
    if (!CA.test(id)) return undefined;
    try {
      parseCaId(id); // a real prefecture code
    } catch {
      return undefined;
    }
    return id;
  };
  if (b === undefined) {
    if (dir === "crl") {
      const delta = ca(a, "-delta.crl");
      if (delta) return { kind: "delta", caId: delta, path: join(paths.crlDir, `${delta}-delta.crl`) };
      const id = ca(a, ".crl");
      return id ? { kind: "crl", caId: id, path: join(paths.crlDir, `${id}.crl`) } : undefined;
    }
    // The Bridge CA (ca/bridge.ts): its ARL beside the prefecture CAs' ARLs, its certificate in its own directory.
    if (dir === "arl" && a === `${BRIDGE_ID}.crl`) return { kind: "arl", caId: BRIDGE_ID, path: join(arlDir(paths), a) };
    if (dir === "ca" && a === `${BRIDGE_ID}.crt`) return { kind: "ca-certificate", caId: BRIDGE_ID, path: join(paths.root, "bridge", a) };
    if (dir === "ca" && a === CA_INDEX_FILE) return { kind: "ca-index", caId: "", path: join(paths.caDir, a) };
    if (dir === "arl") {
      const id = ca(a, ".crl");
      return id ? { kind: "arl", caId: id, path: join(arlDir(paths), `${id}.crl`) } : undefined;
    }
    if (dir === "ca") {
      // A key rollover's link certificate, "<subject generation>.by-<issuing generation>.crt" (ca/rollover.ts),
      // beside the CA certificates, where verifiers fetch CA certificates.
      const link = /^([^.]+)\.by-([^.]+)\.crt$/.exec(a);
      if (link) {
        const subject = ca(`${link[1]}.crt`, ".crt");
        const issuer = ca(`${link[2]}.crt`, ".crt");
        return subject && issuer ? { kind: "ca-certificate", caId: subject, path: join(paths.caDir, a) } : undefined;
      }
      const id = ca(a, ".crt");
      return id ? { kind: "ca-certificate", caId: id, path: join(paths.caDir, `${id}.crt`) } : undefined;
    }
    return undefined;
  }
  if (dir !== "crl" || !CA.test(a) || !b.endsWith(".crl") || !MUNICIPALITY.test(b.slice(0, -4))) return undefined;
  try {
    parseCaId(a);
  } catch {
    return undefined;
  }
  return { kind: "partition", caId: a, path: join(paths.crlDir, a, b) };
}

/**
 * nextUpdate of a DER CRL from its first bytes (TBSCertList: version?, signature, issuer, thisUpdate,
 * nextUpdate?), or undefined when it has none or the bytes are not such a CRL.
 */
export function crlNextUpdate(head: Uint8Array): Date | undefined {
  try {
    const outer = readHeader(head, 0);
    if (outer.tag !== TAG.SEQUENCE) return undefined;
    const tbs = readHeader(head, outer.headerLength);
    if (tbs.tag !== TAG.SEQUENCE) return undefined;
    let off = outer.headerLength + tbs.headerLength;
    const skip = () => {
      const h = readHeader(head, off);
      off += h.headerLength + h.length;
      return h;
    };
    if (readHeader(head, off).tag === TAG.INTEGER) skip(); // version
    skip(); // signature
    skip(); // issuer
    skip(); // thisUpdate
    const h = readHeader(head, off);
    if (h.tag !== TAG.UTC_TIME && h.tag !== TAG.GENERALIZED_TIME) return undefined;
    const text = Buffer.from(head.subarray(off + h.headerLength, off + h.headerLength + h.length)).toString("latin1");
    const m = (h.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(text);
    if (!m) return undefined;
    let year = Number(m[1]);
    if (h.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
    return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  } catch {
    return undefined;
  }
}

/** How far the file system's coarse clock may lag the wall clock when it stamps a ctime, ms (a kernel tick, with room). */
const CTIME_LAG_MS = 50;

/**
 * Whether a version's Last-Modified may be sent now (RFC 9110 §8.8.2.2: a date is a strong validator only once
 * a second has passed since the modification). Whole seconds name versions only that way: a client is given a
 * date D only after second D has ended, and any version installed after that has a later ctime second, so
 * If-Modified-Since: D or If-Range: D never matches it.
 */
export function lastModifiedIsStrong(v: Representation, nowMs = Date.now()): boolean {
  return Math.floor((nowMs - CTIME_LAG_MS) / 1000) > Math.floor(v.lastModified.getTime() / 1000);
}

const HEAD_BYTES = 4096;
const HASH_CHUNK = 1 << 20;

function sameFile(a: Stats, b: { dev: number; ino: number; size: number; mtimeMs: number }): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

interface Known extends FileVersion {
  readonly dev: number;
  readonly ino: number;
  readonly mtimeMs: number;
  /** when `current` last saw this version at its path (performance.now()) */
  checkedAt: number;
}

/** An opened version of a file: read it through `handle`, then close it. */
export interface OpenedFile {
  readonly version: FileVersion;
  readonly handle: FileHandle;
}

export class PublishedFiles {
  readonly #known = new Map<string, Known | Promise<Known>>();

  /**
   * The version now at `path` if it was seen before (one stat, no read): enough to answer a conditional
   * request. Undefined when the file is new, changed or missing: then `open` it. A version checked less than
   * `maxAgeMs` ago is trusted without the stat (0: always stat). `now`: performance.now(), when the caller has read it.
   */
  current(path: string, maxAgeMs = STAT_TTL_MS, now = performance.now()): FileVersion | undefined {
    const k = this.#known.get(path);
    if (!k || k instanceof Promise) return undefined;
    if (now - k.checkedAt < maxAgeMs) return k;
    let st: Stats;
    try {
      st = statSync(path);
    } catch {
      return undefined;
    }
    if (!sameFile(st, k)) return undefined;
    k.checkedAt = now;
    return k;
  }

  /** Opens the file and describes the version it holds; undefined when there is no such file. */
  async open(path: string): Promise<OpenedFile | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
      throw e;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return undefined;
      }
      let k = this.#known.get(path);
      if (k instanceof Promise) k = await k.catch(() => undefined);
      if (!k || !sameFile(st, k)) {
        const p = describe(handle, st);
        this.#known.set(path, p);
        try {
          k = await p;
          this.#known.set(path, k);
        } catch (e) {
          this.#known.delete(path);
          throw e;
        }
      }
      return { version: k, handle };
    } catch (e) {
      await handle.close();
      throw e;
    }
  }
}

/** Hashes one version through its descriptor (never by path: the path may already name a newer one). */
async function describe(handle: FileHandle, st: Stats): Promise<Known> {
  const hash = createHash("sha256");
  const small = st.size <= SMALL_FILE_BYTES;
  // A small file is read whole into the buffer it is then served from; a large one in chunks.
  const buf = Buffer.allocUnsafe(small ? st.size : HASH_CHUNK);
  let head: Buffer | undefined;
  let pos = 0;
  while (pos < st.size) {
    const at = small ? pos : 0;
    const { bytesRead } = await handle.read(buf, at, Math.min(buf.length - at, st.size - pos), pos);
    if (bytesRead === 0) break;
    if (pos === 0) head = Buffer.from(buf.subarray(0, Math.min(bytesRead, HEAD_BYTES)));
    hash.update(buf.subarray(at, at + bytesRead));
    pos += bytesRead;
  }
  if (pos !== st.size) throw new Error(`${st.size - pos} bytes of a published file could not be read (it shrank?)`);
  const nextUpdate = head ? crlNextUpdate(head) : undefined;
  return {
    etag: `"${hash.digest("base64url").slice(0, 32)}"`,
    lastModified: st.ctime,
    lastModifiedHttp: st.ctime.toUTCString(),
    size: st.size,
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(small ? { body: buf } : {}),
    dev: st.dev,
    ino: st.ino,
    mtimeMs: st.mtimeMs,
    checkedAt: performance.now(),
  };
}
