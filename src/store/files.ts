/**
 * Atomic file publication: write to a temporary sibling, fsync, rename over the target, fsync the
 * directory. A reader (or a crash) sees the old file or the new one, never half of one.
 *
 * Owner-only by default (files 0600, directories created 0700, whatever the umask): most of what we write
 * sits in the workspace beside the CA keys, and what is public (CA certificates, CRLs) is served by our own
 * server. Pass `mode` for a file others must read directly.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { tempPathFor } from "./staging.js";

export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Named with our pid (staging.ts), so the next start can sweep it if this process is killed mid-write.
  const tmp = tempPathFor(path);
  // An iterable is consumed as it is written, so a generator of chunks never has to exist whole in memory.
  const chunks: Iterable<Uint8Array> = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", mode);
    fchmodSync(fd, mode); // exactly this mode, not the mode as the umask narrowed it
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(dir, "r");
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}
