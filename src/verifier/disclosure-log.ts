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
 *
 * A group does not wait for the answers still being worked out. It did, until it held ¾ of those in flight or 5 ms
 * had passed (2026-12-07), to share a PostgreSQL statement's fixed cost (≈ 300 µs of the server's CPU and as much
 * of node-postgres's) among more answers: the groups grew from ≈ 10 to ≈ 30, and the validation API lost a third of
 * its rate on either store — the engine and the serving thread stood idle while answers waited in a group
 * (validation-service.ts says what was measured). A lone request is recorded at once.
 *
 * A store that does not answer (a hung database server, a SQLite write lock held elsewhere) is bounded by the
 * watchdog (store/watchdog.ts), one entry per group write: past the bound, every caller of the group in flight
 * and every record queued behind it is failed ERR_STORE_UNRESPONSIVE (the route answers 503), the queued ones
 * withdrawn — never handed to the store — and, while the store is stalled, new records are refused at once but
 * for the watchdog's probe (one per bound: StoreWatchdog.admit). The late write is abandoned, not waited for: the
 * next group is written beside it, so once the store answers again (a fresh PostgreSQL connection: the one the
 * late write is on is cut once the pool has no other, postgres.ts #cutLate) records are written and answers given again. An abandoned
 * write's outcome, when it comes, answers no one (its callers got their 503) and counts in `written` only if the
 * store says it wrote it; one whose connection was closed under it stays abandoned (it may have committed).
 * Which way the bound errs, for the resident's right to know: an answer the client got MUST be in the log, so
 * an answer is still given only once its record is written, and a client told 503 is given none. The write in
 * flight is told the deadline (Store WriteDeadline): SQLite, which waits for its lock in this process, does not
 * write past it, so there the log holds a record exactly when its answer was given. PostgreSQL cannot take back
 * a statement it sent, which may commit after the 503: the log then holds a check whose answer the verifier
 * did not receive. That side is the safe one — the verifier did ask about the resident's certificate, and a
 * record too many is something the resident can ask about, where a record too few is a disclosure they can
 * never learn of.
 */
import { DISCLOSURE_WRITES, storeUnresponsive, type StoreWatchdog, type WatchedCall } from "../store/watchdog.js";
import { UnknownWrites } from "../store/write-outcome.js";
import type { DisclosureAppend, DisclosureOwner, Store } from "../store/types.js";

interface Waiting {
  readonly rec: DisclosureAppend;
  resolve(owner: DisclosureOwner | undefined): void;
  reject(e: unknown): void;
}

/** One group write: its records' callers, and whether the drain abandoned it as late (it may still settle). */
interface Group {
  readonly waiting: readonly Waiting[];
  abandoned: boolean;
  /** the store's write of the group, once sent (what an abandoned group's outcome is read from) */
  write?: Promise<unknown>;
}

export class DisclosureLog {
  readonly #store: Store;
  readonly #maxGroup: number;
  #queue: Waiting[] = [];
  #running: Promise<void> | undefined;
  #written = 0;
  readonly #watchdog: StoreWatchdog | undefined;
  /**
   * records whose write's outcome is not known (store/write-outcome.ts): `abandoned`, in writes past the bound not
   * settled yet or whose connection the store closed under them; `lost`, in writes failed in time on a connection lost
   * after their statement was sent. Their callers were answered 503; on PostgreSQL they may have committed.
   */
  readonly #unknown = new UnknownWrites();

  /** `watchdog`: bound each write (none: a write is waited for as long as the store takes) */
  constructor(store: Store, opts: { readonly maxGroup?: number; readonly watchdog?: StoreWatchdog } = {}) {
    this.#store = store;
    this.#maxGroup = opts.maxGroup ?? 1000;
    this.#watchdog = opts.watchdog;
  }

  /**
   * How many records are in writes whose outcome is not known now (see `#unknown`): what close() says at the stop,
   * read while the log runs (jpki serve's /metrics, jpki_unknown_write_records).
   */
  get unknown(): { readonly abandoned: number; readonly lost: number } {
    return this.#unknown.counts;
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
    // The store is stalled (a write or read past the bound): this record is refused, but for the probe of its recovery.
    if (this.#watchdog && !this.#watchdog.admit(DISCLOSURE_WRITES)) return Promise.reject(storeUnresponsive(this.#watchdog.waitMs, "recording a disclosure"));
    return new Promise<DisclosureOwner | undefined>((resolve, reject) => {
      this.#queue.push({ rec, resolve, reject });
      if (!this.#running) this.#running = this.#drain();
    });
  }

  async #drain(): Promise<void> {
    // Let the records of requests answered in this turn of the event loop join the first group.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length) {
      const group: Group = { waiting: this.#queue.splice(0, this.#maxGroup), abandoned: false };
      const dog = this.#watchdog;
      if (!dog) {
        await this.#write(group, undefined);
        continue;
      }
      // One entry per group write, nothing per record. Once late, the write is abandoned: the drain goes on
      // beside it (a write hung for good held every later record, which then waited unwatched instead of a 503).
      let abandon!: () => void;
      const abandoned = new Promise<void>((r) => (abandon = r));
      const call: WatchedCall = {
        startedAt: dog.now(),
        kind: DISCLOSURE_WRITES,
        late: (e) => {
          this.#late(group, e);
          abandon();
        },
      };
      dog.add(call);
      await Promise.race([this.#write(group, call), abandoned]);
    }
    this.#running = undefined;
  }

  /**
   * Writes one group and answers its callers — those failed late are not answered again (a settled promise
   * ignores a later resolve or reject) — and settles the watchdog's entry.
   */
  async #write(group: Group, call: WatchedCall | undefined): Promise<void> {
    const dog = this.#watchdog;
    try {
      const records = group.waiting.map((w) => w.rec);
      // Run as part of the watched call: a PostgreSQL store closes the write's connection once it is late (postgres.ts #tie).
      // Kept on the group before the wait, so a write abandoned at the bound (#late) is counted until it settles.
      const write = call ? dog!.within(call, () => this.#store.appendDisclosures(records, { deadline: dog!.deadline(call.startedAt) })) : this.#store.appendDisclosures(records);
      group.write = write;
      const owners = await write;
      this.#written += group.waiting.length; // in the store, abandoned or not
      group.waiting.forEach((w, i) => w.resolve(owners[i]));
      if (call) dog!.settled(call);
    } catch (e) {
      // A write whose connection the store closed once it was late (postgres.ts), or that was lost under it after
      // it was sent, may still commit on the server: an abandoned one stays counted as abandoned (#late), never as a
      // write known to have failed; one not late is counted `lost`.
      if (!group.abandoned) this.#unknown.failed(group.waiting.length, e);
      if (call) dog!.settled(call, e);
      for (const w of group.waiting) w.reject(e);
    }
  }

  /** The write of `group` is past the bound: its callers and every record queued behind it are failed, those withdrawn. */
  #late(group: Group, e: unknown): void {
    group.abandoned = true;
    this.#unknown.abandoned(group.waiting.length, group.write ?? Promise.resolve());
    for (const w of group.waiting) w.reject(e);
    const queued = this.#queue;
    this.#queue = [];
    for (const w of queued) w.reject(e);
  }

  /**
   * Waits until every record submitted so far is written, failed or — with a watchdog — in a write abandoned past
   * the bound, and says how many records the abandoned writes whose outcome is not known hold (`abandoned`: not
   * settled, or their connection closed under them; their callers were answered 503 already; on PostgreSQL a
   * statement sent may have committed, or may still commit once the server answers), and how many those failed in
   * time hold whose connection was lost after their statement was sent (`lost`: answered 503, may have committed).
   * A `jpki serve` stopping on a hung PostgreSQL server waited here for good, SIGTERM or not: the drain does not
   * wait for a late write, so neither does this.
   */
  async close(): Promise<{ readonly abandoned: number; readonly lost: number }> {
    while (this.#running) await this.#running;
    return this.#unknown.counts;
  }
}
