/**
 * Reads by key gathered into one query: calls made in the same turn of the event loop, or while a query is
 * running, go to the server together, so many concurrent callers (the signing window of an issuance batch,
 * concurrent `issue()` calls) cost a few round trips instead of one each; a lone caller waits one turn
 * (setImmediate) at most. Each caller gets its own value; a failed query fails only the callers it was for.
 * A query runs as part of the first of its callers' watched calls that is not late yet (store/watchdog.ts): its
 * connection is given up when that call goes late, as a read of its own would have been, and the next batch is
 * read beside it.
 */
import { currentCall, holdFor, isLate, runAs, type WatchedCall } from "./watchdog.js";

interface Waiter<V> {
  resolve(v: V | undefined): void;
  reject(e: unknown): void;
  /** the watched call the read is for (currentCall when it was asked) */
  readonly call: WatchedCall | undefined;
}

export class Coalescer<V> {
  readonly #fetch: (keys: string[]) => Promise<Map<string, V>>;
  readonly #max: number;
  #waiting = new Map<string, Array<Waiter<V>>>();
  #running = false;

  /** `fetch` reads the values of some keys (absent from its map: none); at most `max` keys per query. */
  constructor(fetch: (keys: string[]) => Promise<Map<string, V>>, opts: { max?: number } = {}) {
    this.#fetch = fetch;
    this.#max = Math.max(1, opts.max ?? 1000);
  }

  get(key: string): Promise<V | undefined> {
    const call = currentCall();
    return new Promise((resolve, reject) => {
      const ws = this.#waiting.get(key);
      if (ws) ws.push({ resolve, reject, call });
      else this.#waiting.set(key, [{ resolve, reject, call }]);
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      await new Promise((r) => setImmediate(r));
      while (this.#waiting.size) {
        let batch: Map<string, Array<Waiter<V>>>;
        if (this.#waiting.size <= this.#max) {
          batch = this.#waiting;
          this.#waiting = new Map();
        } else {
          batch = new Map([...this.#waiting].slice(0, this.#max));
          for (const k of batch.keys()) this.#waiting.delete(k);
        }
        const call = this.#callOf(batch);
        const fetched = runAs(call, () => this.#fetch([...batch.keys()])).then(
          (found) => {
            for (const [k, ws] of batch) for (const w of ws) w.resolve(found.get(k));
          },
          (e: unknown) => {
            for (const ws of batch.values()) for (const w of ws) w.reject(e);
          },
        );
        // A query whose call goes late is not waited for: the next batch is read beside it, as the disclosure log
        // writes beside a late write. One query hung on a connection to a vanished host held every later read (the
        // validation API's owner reads) until TCP keepalive ended it, fresh connections or not.
        let passed!: () => void;
        const late = new Promise<void>((r) => (passed = r));
        const untie = call && holdFor(call, passed);
        await (untie ? Promise.race([fetched, late]) : fetched);
        untie?.();
      }
    } finally {
      this.#running = false;
    }
  }

  /** The first watched call of the batch's callers not late yet (none: the query is tied to no call). */
  #callOf(batch: Map<string, Array<Waiter<V>>>): WatchedCall | undefined {
    for (const ws of batch.values()) for (const w of ws) if (w.call && !isLate(w.call)) return w.call;
    return undefined;
  }
}
