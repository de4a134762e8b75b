/**
 * Staging directories: a whole tree written under a temporary name and renamed into place, or discarded — a
 * restore's copy of the backup in the workspace root (backup/restore.ts), a backup's partial directory beside its
 * destination (backup/backup.ts). Each may hold gigabytes, a whole copy of the store (personal data, encrypted CA
 * keys), so what a killed run left is swept by the next one, by staging.ts's one rule ({@link abandoned}); their
 * names carry the writer's ownerTag (pid and PID namespace) for it.
 */
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { touchEvery } from "./file-lock.js";
import { thisNamespace } from "./pid-namespace.js";
import { TEMP_STALE_MS, abandoned, processAlive } from "./staging.js";

/** How often a run touches its staging directory: what a sweep in another PID namespace judges it by. */
export const STAGING_DIR_HEARTBEAT_MS = 60_000;

/** The staging directories of this process's runs going on now: our own pid cannot tell them from an earlier process's with the same pid. */
const heldHere = new Set<string>();

/**
 * Marks the directory `path` (made by the caller) as this process's staging directory in use, and touches it every
 * minute while it is, also while the run only waits (pg_dump, pg_restore): a sweep in another PID namespace judges
 * it by when it was last written. The returned function ends that; call it once the directory is renamed or removed.
 */
export function holdStagingDir(path: string): () => void {
  heldHere.add(path);
  const beat = touchEvery(path, STAGING_DIR_HEARTBEAT_MS);
  return () => {
    clearInterval(beat);
    heldHere.delete(path);
  };
}

/** When anything in the tree at `path` was last written (its newest mtime; symbolic links not followed). */
function lastTouched(path: string): number {
  const st = lstatSync(path);
  let newest = st.mtimeMs;
  if (!st.isDirectory()) return newest;
  for (const n of readdirSync(path)) {
    try {
      newest = Math.max(newest, lastTouched(join(path, n)));
    } catch {
      // moved or removed meanwhile: its writer is at work
      newest = Math.max(newest, Date.now());
    }
  }
  return newest;
}

/**
 * Removes the staging directories in `parent` whose names `pattern` matches — its first group the maker's pid, its
 * second the maker's PID namespace (absent: an earlier version's pid-only name) — that no run is using any more. The
 * rule of staging.ts's temporary files ({@link abandoned}): one of this PID namespace goes once its pid no longer
 * runs; another namespace's (a container or host sharing the volume, whose pids mean nothing here) once nothing in
 * it was written for `staleMs` (a running one is touched every minute, {@link holdStagingDir}). An earlier
 * version's pid-only name, whose namespace nobody can tell, goes only when both hold — its pid runs nowhere here
 * and nothing in it was written for `staleMs`: its pid alone would remove another container's live run, and its
 * age alone a quiet live one of ours (an earlier version touches nothing while pg_dump or pg_restore runs); kept
 * meanwhile, it is swept once its pid is free again. Only directories are removed. Returns the names removed.
 */
export function sweepStagingDirs(parent: string, pattern: RegExp, opts: { readonly now?: number; readonly staleMs?: number } = {}): string[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const now = opts.now ?? Date.now();
  const staleMs = opts.staleMs ?? TEMP_STALE_MS;
  const removed: string[] = [];
  for (const n of names) {
    const m = pattern.exec(n);
    if (!m) continue;
    const path = join(parent, n);
    const pid = Number(m[1]);
    const ns = m[2];
    try {
      if (!lstatSync(path).isDirectory()) continue;
      const gone =
        ns === thisNamespace() && pid === process.pid
          ? !heldHere.has(path) // an earlier process's with our pid (pid 1 in a container, a pid reused)
          : abandoned(pid, ns, () => lastTouched(path), now, staleMs) && (ns !== undefined || !processAlive(pid));
      if (!gone) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(n);
    } catch {
      // gone already, or not ours to remove: the next run tries again
    }
  }
  return removed;
}
