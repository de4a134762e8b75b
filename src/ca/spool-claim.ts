/**
 * Claims on the files of a notice spool (ca/spool.ts): who holds a file in processing/, when another watcher may
 * take it over, and how a finished file leaves processing/ for done/ or failed/ without replacing anything there.
 *
 * Watchers sharing a spool may run in separate PID namespaces — containers on one host, or hosts sharing a volume —
 * where a bare PID says nothing: the same number may be a live watcher in each, and another namespace's watcher is
 * "not running" to this one. So a claim names its owner's namespace too:
 *
 *   processing/PID~@NS~NAME          NAME claimed by process PID of namespace NS (store/pid-namespace.ts: 16 hex
 *                                    digits, a hash of the kernel's boot id and /proc/self/ns/pid; random per
 *                                    process where /proc cannot tell, and every other claim is then foreign)
 *   processing/.PID~@NS~NAME.alive   its heartbeat, made before the claim; the owner sets its mtime every
 *                                    CLAIM_HEARTBEAT_MS and after every batch while it works
 *   processing/.PID~@NS~NAME.rejects.jsonl, .error.json   what the file's run produced, settled beside it
 *   processing/PID~NAME              an earlier version's claim (PID only); processing/NAME: an older one's
 *
 * Another watcher takes a claim over: at once when it is of this namespace and its PID no longer runs; when its
 * heartbeat (without one, the claim's own mtime) is older than CLAIM_STALE_MS, whoever made it (hosts' clocks
 * must agree within a few minutes); an earlier version's claim when its PID does not run here, as those versions
 * did; a bare name always. Starting with PID~, a claim reads to an earlier version as that PID's, which keeps its
 * rule during a rolling upgrade. A watcher whose claim was taken over (it hung past the timeout) finds out when
 * it settles the file: ERR_SPOOL_CLAIM_LOST, nothing moved; ingestion being idempotent, nothing is applied twice.
 *
 * A notice file holds residents' data, and a rename or a link keeps the producer's mode: the watcher makes it
 * owner-only (0600) once it is claimed, and again before it is settled (ownerOnly).
 */
import { chmodSync, closeSync, existsSync, fchmodSync, linkSync, lstatSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, openRegularFile } from "../pki/regular-file.js";
import { processAlive, thisNamespace } from "../store/pid-namespace.js";
import { NO_LINKS } from "../store/staging.js";

/** This process's PID namespace, as claims name it (store/pid-namespace.ts: temporary files name it too). */
export { thisNamespace };

/** A claim whose heartbeat is older than this is taken over, whoever made it. */
export const CLAIM_STALE_MS = 10 * 60_000;
/** How often a watcher refreshes its heartbeat while it works (also after every batch). */
export const CLAIM_HEARTBEAT_MS = 30_000;

/** What a finished file's run leaves beside it in done/ or failed/. */
export const SIDECARS = { rejects: ".rejects.jsonl", error: ".error.json" } as const;
export type Sidecar = keyof typeof SIDECARS;

const CLAIM = /^(\d+)~@([0-9a-f]{16})~(.+)$/;
const EARLIER_CLAIM = /^(\d+)~(.+)$/;

export interface Claim {
  /** the spool file's own name */
  readonly name: string;
  /** undefined: an older version's bare name; `ns` undefined: an earlier version's PID-only claim */
  readonly owner?: { readonly pid: number; readonly ns?: string };
}

/** Reads an entry of processing/ as a claim. */
export function parseClaim(entry: string): Claim {
  const m = CLAIM.exec(entry);
  if (m) return { name: m[3]!, owner: { pid: Number(m[1]), ns: m[2]! } };
  const e = EARLIER_CLAIM.exec(entry);
  if (e) return { name: e[2]!, owner: { pid: Number(e[1]) } };
  return { name: entry };
}

/** The entry under which this process claims a file named `name`. */
export function claimEntry(name: string): string {
  return `${process.pid}~@${thisNamespace()}~${name}`;
}

/** The path of a sidecar of the claim at `claim` (in processing/, a dot-name: never taken for a spool file). */
export function sidecarOf(claim: string, what: Sidecar | "alive"): string {
  return join(dirname(claim), `.${basename(claim)}${what === "alive" ? ".alive" : SIDECARS[what]}`);
}

/** When the claim at `path` last showed its owner at work: its heartbeat's mtime, else its own. */
function heartbeatAt(path: string): number | undefined {
  for (const p of [sidecarOf(path, "alive"), path]) {
    try {
      return lstatSync(p).mtimeMs;
    } catch {
      // no heartbeat: the claim's own time; no claim: gone
    }
  }
  return undefined;
}

/**
 * Whose the claim at `path` (in processing/) is: "ours" (this process made it), "held" (another
 * watcher's that may be at work), or "free" (to be taken over). `now` and `staleMs`: wall-clock ms.
 */
export function claimState(path: string, now: number, staleMs = CLAIM_STALE_MS): "ours" | "held" | "free" {
  const { owner } = parseClaim(basename(path));
  if (!owner) return "free";
  if (owner.ns === undefined) return owner.pid !== process.pid && processAlive(owner.pid) ? "held" : "free";
  if (owner.ns === thisNamespace()) {
    if (owner.pid === process.pid) return "ours";
    if (!processAlive(owner.pid)) return "free";
  }
  const at = heartbeatAt(path);
  if (at === undefined) return "held"; // gone meanwhile: nothing to take
  return now - at > staleMs ? "free" : "held";
}

/**
 * Sets the heartbeat of the claim at `path` to `now`; false when the claim is no longer there (taken over).
 * Never throws (it runs from a timer): a heartbeat that cannot be written leaves the claim to look stale.
 */
export function beat(path: string, now: number): boolean {
  try {
    lstatSync(path);
  } catch {
    return false;
  }
  const alive = sidecarOf(path, "alive");
  const t = new Date(now);
  try {
    utimesSync(alive, t, t);
  } catch {
    try {
      writeAlive(alive, t); // removed meanwhile (a sweep that saw no claim): made again
    } catch {
      // the next beat tries again
    }
  }
  return true;
}

/** Releases the claim at `path` (its watcher stops and leaves it): its heartbeat is set stale for everyone. */
export function stale(path: string): void {
  try {
    utimesSync(sidecarOf(path, "alive"), new Date(0), new Date(0));
  } catch {
    // no heartbeat: the claim's own time says
  }
}

function writeAlive(alive: string, t: Date): void {
  // Who holds the claim, for an operator looking at processing/; the mtime is the heartbeat.
  writeFileSync(alive, JSON.stringify({ pid: process.pid, namespace: thisNamespace(), since: t.toISOString() }) + "\n", { mode: 0o600 });
  utimesSync(alive, t, t);
}

/**
 * Makes the regular file at `path` (a claim in processing/) owner-only, 0600, whatever mode its producer gave it.
 * Opened without following a symbolic link and judged by the descriptor: a link planted in the spool is never
 * followed to chmod a file outside it, and a FIFO or device (settled unread in failed/) is left as it is. Nothing
 * is done for a file of another user's (EPERM: only its owner, the producer, may change its mode) or one gone
 * meanwhile (the caller finds out).
 */
function ownerOnly(path: string): void {
  let fd: number;
  try {
    if (!lstatSync(path).isFile()) return; // not opened at all: a device's open may act on it
    fd = openRegularFile(path, { noFollow: true }).fd;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EACCES") return ownerOnlyUnreadable(path);
    if (code === "ENOENT" || code === "ELOOP" || code === NOT_REGULAR) return;
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") throw e;
  } finally {
    closeSync(fd);
  }
}

/**
 * A file its owner cannot read (mode 0044, say: others can) has no descriptor to chmod: it is done by path, once
 * lstat says a regular file of this user's is there (processing/ is the watchers' own directory: the window
 * between the two is theirs alone).
 */
function ownerOnlyUnreadable(path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isFile() && st.uid === process.getuid?.()) chmodSync(path, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "EPERM") throw e;
  }
}

/**
 * Claims `from` (a spool file, or a claim to take over) as `to`, this process's entry: the heartbeat is made
 * first, so the new claim is never seen without one, then the rename only one watcher wins. False when another
 * won. A claim taken over leaves its old owner's sidecars behind: they are removed.
 */
export function takeClaim(from: string, to: string, now: number): boolean {
  const alive = sidecarOf(to, "alive");
  try {
    writeAlive(alive, new Date(now));
    renameSync(from, to);
  } catch {
    rmSync(alive, { force: true });
    return false;
  }
  // After the rename, not before: until it, the file is in the producer's directory and may yet be another
  // watcher's. A kill between the two leaves the claim as the producer made it, to be taken over (and made
  // owner-only) here or settled by settleClaim, which makes it owner-only first. Best effort: the claim is won.
  try {
    ownerOnly(to);
  } catch {
    // settleClaim tries again, and fails there
  }
  if (dirname(from) === dirname(to)) dropLeftovers(from);
  return true;
}

/**
 * Removes what the claim at `claim` had beside it: its sidecars and their temporary files (a reject file half
 * written when its watcher was killed). Called once the claim is another's: its owner is gone, or stale.
 */
function dropLeftovers(claim: string): void {
  const dir = dirname(claim);
  const entry = basename(claim);
  const temps = Object.values(SIDECARS).map((s) => `..${entry}${s}.`);
  for (const e of readdirSync(dir)) {
    if (e === `.${entry}.alive` || Object.values(SIDECARS).some((s) => e === `.${entry}${s}`) || (e.endsWith(".tmp") && temps.some((t) => e.startsWith(t)))) {
      rmSync(join(dir, e), { force: true });
    }
  }
}

/**
 * Removes what a claim no longer present left in processing/ (a watcher killed between its steps, a claim taken
 * over from a watcher still writing): dot-entries that belong to no claim there and are older than `staleMs`.
 */
export function sweepClaimLeftovers(processing: string, now: number, staleMs = CLAIM_STALE_MS): string[] {
  const entries = readdirSync(processing);
  const claims = entries.filter((e) => !e.startsWith("."));
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.startsWith(".")) continue;
    const bare = e.replace(/^\.{1,2}/, ""); // a sidecar ".C…", its temporary file "..C…"
    if (claims.some((c) => bare.startsWith(`${c}.`))) continue;
    try {
      if (now - lstatSync(join(processing, e)).mtimeMs <= staleMs) continue;
      rmSync(join(processing, e), { force: true });
      removed.push(e);
    } catch {
      // gone already
    }
  }
  return removed;
}

export interface Settled {
  /** where the file went */
  readonly path: string;
  /** where its sidecars went */
  readonly sidecars: Partial<Record<Sidecar, string>>;
}

function lost(claim: string): JpkiError {
  return new JpkiError(
    "ERR_SPOOL_CLAIM_LOST",
    `${basename(claim)}: another watcher took the file over while this one worked on it (this one's heartbeat had stopped for longer than the claim timeout); that watcher finishes the file, and nothing is applied twice`,
    { details: { claim } },
  );
}

/**
 * Moves a finished claim out of processing/ into `dir` (done/ or failed/), under a name that no file there has,
 * with its sidecars beside it: NAME, else STAMP-NAME, else STAMP-2-NAME, … (a name is free when neither it nor
 * any of its sidecar names is taken, so an earlier file's reject file is never replaced). The claim is
 * hard-linked in — a link never replaces a file, so the name is this file's once made, whatever another watcher
 * does — then its sidecars renamed beside it, then the claim removed. A kill between those steps leaves the claim
 * in processing/ to be resumed; settling it again finds its own link (the same inode) in done/ or failed/ and
 * finishes under that name, so a file is never there twice. Where there are no hard links (some network file
 * systems; a directory claimed by mistake) a rename into a name found free does instead.
 */
export function settleClaim(o: { claim: string; name: string; dir: string; otherDir: string; stamp: string }): Settled {
  let st;
  try {
    st = lstatSync(o.claim);
  } catch {
    throw lost(o.claim);
  }
  const sidecars = (Object.keys(SIDECARS) as Sidecar[]).filter((s) => existsSync(sidecarOf(o.claim, s)));
  // Before the link (or rename), not after: the mode is the inode's, so the name in done/ or failed/ is owner-only
  // from the instant it appears. Made after, a kill between the two would leave it there with the producer's mode,
  // and where there are no hard links (the rename path) nothing would come back to it: the claim is gone from
  // processing/. Made before, a kill leaves an owner-only claim in processing/, resumed and settled later.
  ownerOnly(o.claim);
  let base = st.nlink > 1 ? ownLink(o, st) : undefined;
  for (let k = 0; base === undefined; k++) {
    const candidate = k === 0 ? o.name : k === 1 ? `${o.stamp}-${o.name}` : `${o.stamp}-${k}-${o.name}`;
    const target = join(o.dir, candidate);
    if (existsSync(target) || Object.values(SIDECARS).some((s) => existsSync(target + s))) continue;
    try {
      linkSync(o.claim, target);
      base = candidate;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (code === "EEXIST") continue; // another watcher's file took the name first
      if (code === "ENOENT") throw lost(o.claim);
      if (!NO_LINKS.has(code)) throw e;
      try {
        renameSync(o.claim, target);
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code === "ENOENT") throw lost(o.claim);
        throw e2;
      }
      base = candidate;
    }
  }
  const placed: Partial<Record<Sidecar, string>> = {};
  for (const s of sidecars) {
    const to = join(o.dir, base + SIDECARS[s]);
    renameSync(sidecarOf(o.claim, s), to); // the name is this file's: what is there is its own earlier try
    placed[s] = to;
  }
  try {
    unlinkSync(o.claim);
  } catch {
    // renamed already (no hard links), or taken over since the link: the taker finds the link and settles there
  }
  rmSync(sidecarOf(o.claim, "alive"), { force: true });
  return { path: join(o.dir, base), sidecars: placed };
}

/** The name in `dir` under which an earlier settling of this claim linked it; one found in `otherDir` is removed. */
function ownLink(o: { name: string; dir: string; otherDir: string }, st: { dev: number; ino: number }): string | undefined {
  for (const d of [o.dir, o.otherDir]) {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.startsWith(".") || (e !== o.name && !e.endsWith(`-${o.name}`))) continue;
      let s;
      try {
        s = statSync(join(d, e));
      } catch {
        continue;
      }
      if (s.dev !== st.dev || s.ino !== st.ino) continue;
      if (d === o.dir) return e;
      // Settled there before, and it ended differently this time: the name and its sidecars were this file's.
      for (const x of [e, ...Object.values(SIDECARS).map((s) => e + s)]) rmSync(join(d, x), { force: true });
    }
  }
  return undefined;
}
