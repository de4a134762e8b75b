/**
 * Atomic file publication: write to a temporary sibling, fsync, rename over the target, fsync the
 * directory. A reader (or a crash) sees the old file or the new one, never half of one. The staging itself
 * (temporary names with the writer's pid, swept after a kill) is staging.ts; this is its one-file form.
 *
 * Owner-only by default (files 0600, directories created 0700, whatever the umask): most of what we write
 * sits in the workspace beside the CA keys, and what is public (CA certificates, CRLs) is served by our own
 * server. Pass `mode` for a file others must read directly.
 */
import { dirname } from "node:path";
import { stageFile, syncDir } from "./staging.js";

export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>, mode = 0o600): void {
  const staged = stageFile(path, data, mode);
  try {
    staged.install();
  } catch (e) {
    staged.discard();
    throw e;
  }
  syncDir(dirname(path));
}
