/**
 * CRL numbers after a restore, RFC 5280 §5.2.3: "CRL issuers conforming to this profile MUST include this
 * extension in all CRLs and MUST mark this extension as non-critical … a monotonically increasing sequence number
 * for a given CRL scope and CRL issuer". A restored store remembers only the numbers handed out up to the
 * backup; those handed out after it were published (and fetched, cached, compared by verifiers, and by jpki's own
 * provider side, which refuses a number that goes backwards: ERR_PUBLIC_CRL_ROLLBACK), so the restored
 * sequence must jump past every one of them, in every scope — full CRLs, municipality partitions, ARLs and
 * deltas all number from the CA's one sequence (crl/scope.ts), so moving that one sequence moves them all.
 *
 * Nobody can know how many numbers were handed out after the backup (a workspace whose disk was lost has no
 * file left to read them from), so the jump is a safety gap, the larger of what can be known and what can be
 * bounded:
 *   next = max(highest in the backup's store, highest in the backup's CRL files,
 *              highest in the CRL files still in the workspace being replaced) + gap + 1
 *   gap  = MIN_CRL_GAP + elapsed seconds since the backup × MAX_CRL_NUMBERS_PER_SECOND
 * The schedule is no bound (an operator or a script runs `jpki crl generate` at will, and every municipality
 * partition takes its own number), so the rate is one no store reaches: 100 reservations a second per CA,
 * sustained, each a write transaction followed by building, signing and verifying a CRL. Numbers have 20 octets
 * of room (the store keeps 63 bits: 9.2 × 10^18), so even a year-old backup costs 3 × 10^9 numbers, nothing.
 * `--crl-gap` asks for a larger gap when an operator knows of more.
 */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readRegularFile } from "../pki/regular-file.js";
import { CRL_REASON } from "../crl/reason.js";
import { describeCrl } from "../profile/describe.js";

export const MIN_CRL_GAP = 1000n;
export const MAX_CRL_NUMBERS_PER_SECOND = 100n;

/** The safety gap for a backup taken `elapsedMs` ago (a clock behind the backup counts as no time). */
export function crlNumberGap(elapsedMs: number): bigint {
  const seconds = BigInt(Math.max(0, Math.ceil(elapsedMs / 1000)));
  return MIN_CRL_GAP + seconds * MAX_CRL_NUMBERS_PER_SECOND;
}

/**
 * Where a CRL file belongs, from its path under the workspace root (crl/scope.ts scopePath, with the
 * `<file>.<number>` history links publisher.ts keeps and the `.pem` copies): the CA id, or undefined.
 */
export function crlFileCa(rel: readonly string[]): string | undefined {
  const name = rel[rel.length - 1]!.replace(/\.pem$/, "").replace(/\.\d+$/, "");
  if (!name.endsWith(".crl")) return undefined;
  const stem = name.slice(0, -".crl".length);
  if (rel.length === 2 && rel[0] === "arl") return stem;
  if (rel.length === 2 && rel[0] === "crl") return stem.replace(/-delta$/, "");
  if (rel.length === 3 && rel[0] === "crl" && /^\d{6}$/.test(stem)) return rel[1];
  return undefined;
}

export interface PublishedNumbers {
  /** per CA, the highest CRL number found in its files */
  readonly highest: Map<string, bigint>;
  /** files that look like CRLs but did not parse (their numbers are unknown: the time gap covers them) */
  readonly unreadable: string[];
}

/**
 * The highest CRL number of every CA among the CRL files under a workspace root (crl/ and arl/, history links
 * and PEM copies included). Reads only; a root without them has none.
 */
export function publishedCrlNumbers(root: string): PublishedNumbers {
  const highest = new Map<string, bigint>();
  const unreadable: string[] = [];
  const walk = (dir: string, rel: string[]) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      const r = [...rel, n];
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue; // a history link pruned meanwhile
      }
      if (st.isDirectory()) {
        if (r.length < 3) walk(p, r);
        continue;
      }
      if (n.startsWith(".")) continue; // staged temporaries are not published
      const ca = crlFileCa(r);
      if (ca === undefined) continue;
      try {
        // Only a regular file, opened without following a link or blocking (crlFile): anything else at a CRL's name
        // is reported unreadable (the time gap covers its number), never read.
        const bytes = crlFile(p);
        const der = n.endsWith(".pem") ? pemBody(bytes) : bytes;
        const num = describeCrl(der, { maxEntries: 0 }).crlNumber;
        if (num === undefined) throw new Error("no CRL number");
        const v = BigInt(num);
        if (v > (highest.get(ca) ?? -1n)) highest.set(ca, v);
      } catch {
        unreadable.push(r.join("/"));
      }
    }
  };
  for (const top of ["crl", "arl"]) walk(join(root, top), [top]);
  return { highest, unreadable };
}

/**
 * A published CRL file's bytes: a regular file only. jpki never links or pipes one; a FIFO at a CRL's name hung the
 * restore for ever, and a symbolic link to /dev/zero read until memory ran out (found by a helper: a restore reads
 * the target's crl/ and every before-restore-<time>/crl/).
 */
function crlFile(path: string): Buffer {
  return readRegularFile(path, { noFollow: true }).bytes;
}

function pemBody(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  if (!m) throw new Error("not a PEM CRL");
  return Buffer.from(m[1]!.replace(/\s+/g, ""), "base64");
}

/** A revocation a CRL file lists. */
export interface ListedRevocation {
  readonly caId: string;
  readonly serial: string;
  readonly revokedAt: Date;
  /** CRLReason code (0 when the entry has none) */
  readonly reason: number;
  /** the municipality whose partition CRL (`crl/<ca>/<municipality>.crl`) lists it, when one does */
  readonly municipality?: string;
}

/**
 * The revocations a workspace's current full, delta and municipality partition CRL files list (`crl/<ca>.crl`,
 * `crl/<ca>-delta.crl`, `crl/<ca>/<municipality>.crl`), per CA and serial, each with the municipality whose
 * partition lists it (a partition lists a subset of the full CRL: the certificates issued in that municipality).
 * Files that do not parse are skipped (their numbers are reported by {@link publishedCrlNumbers}).
 */
export function listedRevocations(root: string): Map<string, ListedRevocation> {
  const out = new Map<string, ListedRevocation>();
  let names: string[];
  try {
    names = readdirSync(join(root, "crl"));
  } catch {
    return out;
  }
  const read = (rel: readonly string[], municipality?: string) => {
    const caId = crlFileCa(rel);
    if (caId === undefined) return;
    try {
      for (const e of describeCrl(crlFile(join(root, ...rel))).entries) {
        const key = `${caId}/${e.serialNumber}`;
        const known = out.get(key);
        if (known) {
          if (municipality !== undefined && known.municipality === undefined) out.set(key, { ...known, municipality });
          continue;
        }
        const code = e.reason === undefined ? 0 : (CRL_REASON as Record<string, number>)[e.reason];
        out.set(key, { caId, serial: e.serialNumber, revokedAt: new Date(e.revocationDate), reason: code ?? 0, ...(municipality !== undefined ? { municipality } : {}) });
      }
    } catch {
      // unreadable: publishedCrlNumbers reports it
    }
  };
  for (const n of names.sort()) {
    if (n.startsWith(".")) continue;
    if (n.endsWith(".crl")) read(["crl", n]);
  }
  // The partitions after the full CRLs, so an entry keeps the full CRL's date and reason and gains its municipality.
  for (const n of names) {
    let parts: string[];
    try {
      parts = readdirSync(join(root, "crl", n)).sort();
    } catch {
      continue; // a file, not a CA's partition directory
    }
    for (const f of parts) if (/^\d{6}\.crl$/.test(f)) read(["crl", n, f], f.slice(0, 6));
  }
  return out;
}
