/**
 * The note a workspace's store is retired with when `jpki store copy` moves the workspace to another store
 * (store/copy.ts; Store.dump's `retire`): kept in the old store's meta ('retired'), where every write is then
 * refused. It says where the workspace's store went, and what is told to whoever still uses the old one: a process
 * that writes to it (the triggers' message), and `jpki backup`, which refuses it ({@link storeRetired}): it is no
 * longer the workspace's truth, and a backup of it would be stale.
 */
import { JpkiError } from "../errors.js";
import type { Store } from "./types.js";

/** Where a retired store's workspace moved to: a file path, or a connection string with any password redacted. */
export interface RetiredTo {
  readonly kind: Store["kind"];
  readonly location: string;
}

/** The note a move retires the store it leaves with (the one format; {@link retiredTo} reads it back). */
export function retirementNote(root: string, to: RetiredTo, at: Date): string {
  return `the workspace ${root} moved to ${to.kind} ${to.location} on ${at.toISOString()}; this copy is kept read-only (were config.json still to name this store, the move was stopped: run 'jpki store copy --to ${to.kind}' again, which finishes it)`;
}

const NOTE = /^the workspace .+ moved to (sqlite|postgres) (.+) on (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z); /;

/** Where the note says the store's workspace moved, and when; undefined for a note in another form. */
export function retiredTo(note: string): (RetiredTo & { readonly at: string }) | undefined {
  const m = NOTE.exec(note);
  return m ? { kind: m[1] as Store["kind"], location: m[2]!, at: m[3]! } : undefined;
}

/**
 * What `jpki backup` answers for a retired store (on either backend, found when the workspace is opened or in the
 * backup's own snapshot): ERR_STORE_RETIRED, naming where the live store is when the note says.
 */
export function storeRetired(note: string): JpkiError {
  const to = retiredTo(note);
  const where = to
    ? `its workspace moved to the ${to.kind} store ${to.location} on ${to.at} ('jpki store copy')`
    : `its workspace moved to another store (${note})`;
  const next = to
    ? `back up the live store (${to.kind === "postgres" ? `JPKI_STORE=${to.location}` : to.location}); were config.json still to name this store, the move was stopped: run 'jpki store copy --to ${to.kind}' again, which finishes it, then back up`
    : "back up the workspace's live store; were config.json still to name this one, the move was stopped: run 'jpki store copy' again, which finishes it, then back up";
  return new JpkiError("ERR_STORE_RETIRED", `this store is retired, read-only and no longer the workspace's truth: ${where}. A backup of it would be stale, so none was made: ${next}`, {
    details: { reason: "retired", ...(to ? { liveStore: { kind: to.kind, location: to.location }, movedAt: to.at } : {}) },
  });
}
