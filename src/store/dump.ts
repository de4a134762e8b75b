/**
 * What both backends' `load` share: the rules a dump stream must follow to be loaded (header first, kinds in
 * DUMP_KINDS order, `end` last, counts as announced), checked as the batches pass, so a backend only writes.
 */
import { JpkiError } from "../errors.js";
import { DUMP_KINDS, type DumpBatch, type DumpCounts, type DumpKind } from "./types.js";

export type DumpDataBatch = Exclude<DumpBatch, { kind: "header" } | { kind: "end" }>;

export function zeroCounts(): Record<DumpKind, number> {
  return Object.fromEntries(DUMP_KINDS.map((k) => [k, 0])) as Record<DumpKind, number>;
}

function mismatch(why: string): JpkiError {
  return new JpkiError("ERR_STORE_COPY_MISMATCH", `${why}: nothing was loaded`);
}

/** Follows a dump stream: `accept` each batch in turn (it returns the data batches to write), `finish` at its end. */
export class DumpStreamCheck {
  #header: DumpCounts | undefined;
  #ended = false;
  #kind = -1;
  readonly counts = zeroCounts();

  accept(b: DumpBatch): DumpDataBatch | undefined {
    if (this.#ended) throw mismatch("the dump has records after its end");
    if (b.kind === "header") {
      if (this.#header || this.#kind >= 0) throw mismatch("the dump's header is not its first record");
      this.#header = b.counts;
      return undefined;
    }
    if (!this.#header) throw mismatch("the dump does not start with its header");
    if (b.kind === "end") {
      this.#ended = true;
      return undefined;
    }
    const i = DUMP_KINDS.indexOf(b.kind);
    if (i < 0) throw mismatch(`the dump has records of an unknown kind ${JSON.stringify((b as { kind: unknown }).kind)}`);
    if (i < this.#kind) throw mismatch(`the dump's ${b.kind} come after its ${DUMP_KINDS[this.#kind]}`);
    this.#kind = i;
    this.counts[b.kind] += b.records.length;
    return b;
  }

  /** The counts loaded, once the stream has ended as announced; throws otherwise (the caller rolls back). */
  finish(): DumpCounts {
    if (!this.#ended) throw mismatch("the dump stopped before its end record (the source was interrupted)");
    for (const k of DUMP_KINDS) {
      if (this.counts[k] !== this.#header![k]) throw mismatch(`the dump announced ${this.#header![k]} ${k} and carried ${this.counts[k]}`);
    }
    return { ...this.counts };
  }
}
