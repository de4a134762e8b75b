/**
 * The disclosure log's writer: every answer of the validation API is recorded (who asked about which
 * certificate, for which purpose and legal basis, when, what it was told, whether the four items went with it)
 * so a resident can see who checked their certificates (the registry network grants that right to know:
 * shared/spec/JPKI.md "Identity-information provision").
 *
 * Group commit, record before answer: `record()` resolves once the record is in the store, and the route
 * answers only then — an answer the log does not hold is never given, and a clean shutdown (or a crash) loses
 * nothing that was answered. Records that arrive while a write runs gather and go in the next write, one
 * transaction (SQLite) or one statement (PostgreSQL) for all of them, so under load the cost per answer is a
 * share of one commit, not one commit each. A store that fails the write fails every caller of that group:
 * the route answers 503 and discloses nothing.
 */
import type { DisclosureAppend, DisclosureOwner, Store } from "../store/types.js";

interface Waiting {
  readonly rec: DisclosureAppend;
  resolve(owner: DisclosureOwner | undefined): void;
  reject(e: unknown): void;
}

export class DisclosureLog {
  readonly #store: Store;
  readonly #maxGroup: number;
  #queue: Waiting[] = [];
  #running: Promise<void> | undefined;
  #written = 0;

  constructor(store: Store, opts: { readonly maxGroup?: number } = {}) {
    this.#store = store;
    this.#maxGroup = opts.maxGroup ?? 1000;
  }

  /** Records written so far by this log. */
  get written(): number {
    return this.#written;
  }

  /**
   * Resolves once the record is in the store (with whatever gathered beside it), with the certificate's owner
   * when the record asked the store to resolve it (`tbs`: Store.appendDisclosures); rejects when the store failed it.
   */
  record(rec: DisclosureAppend): Promise<DisclosureOwner | undefined> {
    return new Promise<DisclosureOwner | undefined>((resolve, reject) => {
      this.#queue.push({ rec, resolve, reject });
      if (!this.#running) this.#running = this.#drain();
    });
  }

  async #drain(): Promise<void> {
    // Let the records of requests answered in this turn of the event loop join the first group.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length) {
      const group = this.#queue.splice(0, this.#maxGroup);
      try {
        const owners = await this.#store.appendDisclosures(group.map((w) => w.rec));
        this.#written += group.length;
        group.forEach((w, i) => w.resolve(owners[i]));
      } catch (e) {
        for (const w of group) w.reject(e);
      }
    }
    this.#running = undefined;
  }

  /** Waits until every record submitted so far is written (or failed). */
  async close(): Promise<void> {
    while (this.#running) await this.#running;
  }
}
