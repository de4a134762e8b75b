/**
 * The index of a workspace's CA key generations, `ca/index.json`, served at `<baseUrl>/ca/index.json` beside the CA
 * certificates (server/published.ts): each generation's id, its SHA-256, and its successor as the store's rollover
 * records (`ca_links`) say.
 *
 * Why: a generation's successor is not always the next number. A new generation takes the first free id
 * (ca/free-ids.ts): after a restore retires 13-sig-g2, 13-sig's successor is 13-sig-g3. A follower that assumed
 * g+1 (a private provider, provider/compromise.ts) never checked 13-sig against its real successor's CRL and never
 * heard of the newer generation. The index is a hint to such followers: they verify every certificate and link it
 * names as before, and an endpoint without one (an older server) leaves them guessing g+1.
 *
 * Written by whatever changes the CAs or their succession (`ca init`, `ca rollover`) and mended by `crl generate`
 * (a rollover made on another host sharing a PostgreSQL store); atomically and owner-only, as every file of ca/;
 * only when its content changes, so its ETag and Last-Modified move only then.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../store/files.js";
import type { CaLinkRecord, CaRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { caGeneration, parseCaId } from "./ids.js";

/** The file's name in ca/ and its URL path under the baseUrl. */
export const CA_INDEX_FILE = "index.json";

export interface CaIndexGeneration {
  /** the CA id, 13-sig-g3 */
  readonly id: string;
  readonly prefectureCode: string;
  readonly purpose: CaRecord["purpose"];
  readonly generation: number;
  /** SHA-256 of its certificate (DER, hex) */
  readonly sha256: string;
  /** the generation a rollover of it made, by the store's rollover record; absent for the active one */
  readonly successor?: string;
  /** whether link certificates join it to its successor (false after `ca rollover --compromised`) */
  readonly linked?: boolean;
}

export interface CaIndex {
  readonly generations: readonly CaIndexGeneration[];
}

/** The index of these CAs and rollover records (pure: ordered by prefecture, purpose, generation). */
export function caIndex(cas: readonly CaRecord[], links: readonly CaLinkRecord[]): CaIndex {
  const next = new Map(links.map((l) => [l.oldCaId, l]));
  const generations = cas
    .map((c): CaIndexGeneration => {
      const p = parseCaId(c.id);
      const l = next.get(c.id);
      return {
        id: c.id,
        prefectureCode: p.prefectureCode,
        purpose: p.purpose,
        generation: p.generation,
        sha256: createHash("sha256").update(c.certificateDer).digest("hex"),
        ...(l ? { successor: l.newCaId, linked: l.oldWithNew !== undefined && l.newWithOld !== undefined } : {}),
      };
    })
    .sort((a, b) => byCodePoint(a.prefectureCode, b.prefectureCode) || byCodePoint(a.purpose, b.purpose) || caGeneration(a.id) - caGeneration(b.id));
  return { generations };
}

/**
 * Code point order, not localeCompare: the first localeCompare of a process builds ICU's collator (≈ 8 ms here),
 * a fixed cost every `crl generate` paid for ordering two-digit codes and two lowercase ASCII words, whose order
 * is the same either way (so an index.json written before reads back unchanged).
 */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function caIndexPath(ws: Workspace): string {
  return join(ws.paths.caDir, CA_INDEX_FILE);
}

/**
 * Writes ca/index.json for the store's CAs and rollover records (or those given) when its content differs from the
 * file's; true when it wrote.
 */
export async function writeCaIndex(ws: Workspace, cas?: readonly CaRecord[], links?: readonly CaLinkRecord[]): Promise<boolean> {
  const body = `${JSON.stringify(caIndex(cas ?? (await ws.store.listCas()), links ?? (await ws.store.listCaLinks())), null, 2)}\n`;
  const path = caIndexPath(ws);
  let held: string | undefined;
  try {
    held = readFileSync(path, "utf8");
  } catch {
    // none yet (or unreadable): written
  }
  if (held === body) return false;
  writeFileAtomic(path, body);
  return true;
}
