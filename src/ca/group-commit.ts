/**
 * Group commit of issuances: certificates signed concurrently — the window of a batch, concurrent `issue()`
 * calls — are committed together, one `commitIssuances` call (one transaction, a few statements over arrays)
 * for as many as were signed while the previous commit was running, instead of one transaction each. On
 * PostgreSQL each transaction costs round trips and server work that the two cores would rather spend signing.
 *
 * Each caller still gets its own outcome. commitIssuances decides record by record (a duplicate application
 * id, a stale registry record are results, not errors), so one record's refusal never touches the others. A
 * statement error does abort the whole transaction — nothing of it is stored — and one bad record (a serial
 * that is already taken, a value the database refuses) must not fail the certificates signed beside it: then
 * each record of the group is committed again on its own, in order, and only its own caller sees its error.
 * An error that is the store's and no record's (unreachable, a lock wait that timed out) fails the whole
 * group at once: committing one by one would only fail again, slower.
 *
 * Records commit in the order they were submitted, so a later application for the same resident and type
 * supersedes an earlier one, as one-by-one commits would; one group commits at a time.
 *
 * Group size: by default whatever has gathered (a lone `issue()` commits at once). A batch knows more is
 * coming and asks for full groups (`fullGroups`) until its input ends (`flush()`): the server's cost per
 * certificate falls with the size of the transaction (measured: ~95 µs of server CPU per certificate in
 * groups of 500 against ~125 µs in the groups of 50–100 that gather while one commits), and the signers go on
 * while a full group commits.
 *
 * Durability (`durable`, the store's syncCommitted): a caller is told its certificate was issued — and writes it
 * out, hands it to the resident — only once the commit is on disk. A certificate whose commit a power cut then
 * lost would be one the CA has no record of: not revocable by serial, its supersession revocation lost with it.
 * The next group commits while the sync runs; groups committed during one sync share the next.
 */
import { isJpkiError } from "../errors.js";
import type { IssuanceCommitResult, IssuanceRecord } from "../store/types.js";

interface Waiting {
  readonly rec: IssuanceRecord;
  resolve(r: IssuanceCommitResult): void;
  reject(e: unknown): void;
}

/** Store errors that say nothing about a record: the group fails as a whole, without committing one by one. */
const GROUP_WIDE = new Set(["ERR_STORE_UNREACHABLE", "ERR_STORE_PERMISSION", "ERR_WORKSPACE_LOCKED", "ERR_STORE_UPGRADED"]);

export class GroupCommitter {
  readonly #commit: (records: readonly IssuanceRecord[]) => Promise<IssuanceCommitResult[]>;
  readonly #maxGroup: number;
  #queue: Waiting[] = [];
  #running = false;
  #fullGroups: boolean;
  readonly #durable: (() => Promise<void>) | undefined;

  /**
   * `commit` is the store's commitIssuances; a group holds at most `maxGroup` records; with `fullGroups`
   * nothing commits before `maxGroup` records wait, until `flush()`; `durable` makes what committed survive a
   * power cut, and callers hear of their commit only after it.
   */
  constructor(
    commit: (records: readonly IssuanceRecord[]) => Promise<IssuanceCommitResult[]>,
    opts: { maxGroup?: number; fullGroups?: boolean; durable?: () => Promise<void> } = {},
  ) {
    this.#commit = commit;
    this.#durable = opts.durable;
    this.#maxGroup = Math.max(1, opts.maxGroup ?? 500);
    this.#fullGroups = opts.fullGroups ?? false;
  }

  /** Commits `rec` with others waiting; resolves with its own result once that transaction committed. */
  submit(rec: IssuanceRecord): Promise<IssuanceCommitResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ rec, resolve, reject });
      this.#kick();
    });
  }

  /** No more full groups to wait for: commits what waits now, and from now on whatever gathers. */
  flush(): void {
    this.#fullGroups = false;
    this.#kick();
  }

  /**
   * Commits the records waiting now, a group short of full among them, then waits for full groups again: a batch's
   * input that has paused (a feeder sending one application at a time) must not hold what is signed until `maxGroup`
   * more come.
   */
  commitWaiting(): void {
    this.#short = true;
    this.#kick();
  }

  /** set by commitWaiting: groups short of full commit until the queue is empty */
  #short = false;

  #due(): boolean {
    return this.#queue.length >= (this.#fullGroups && !this.#short ? this.#maxGroup : 1);
  }

  #kick(): void {
    if (!this.#running && this.#due()) void this.#run();
    else if (!this.#running) this.#short = false;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      // One turn of the microtask queue first: records submitted in the same tick go in the first group too.
      await null;
      while (this.#due()) {
        const group = this.#queue.splice(0, this.#maxGroup);
        await this.#commitGroup(group);
      }
    } finally {
      this.#running = false;
      this.#short = false;
    }
  }

  async #commitGroup(group: Waiting[]): Promise<void> {
    let results: IssuanceCommitResult[];
    try {
      results = await this.#commit(group.map((w) => w.rec));
    } catch (e) {
      if (group.length === 1 || (isJpkiError(e) && GROUP_WIDE.has(e.code))) {
        for (const w of group) w.reject(e); // nothing of the group committed: nothing to wait for
        return;
      }
      // The transaction was rolled back whole: commit each record alone so only the bad one's caller fails.
      const told: Array<() => void> = [];
      for (const w of group) {
        try {
          const [r] = await this.#commit([w.rec]);
          told.push(() => w.resolve(r!));
        } catch (err) {
          w.reject(err);
        }
      }
      this.#tell(told, group);
      return;
    }
    this.#tell(
      group.map((w, i) => () => w.resolve(results[i]!)),
      group,
    );
  }

  /** Tells the committed callers once their commit is durable; not awaited, so the next group commits meanwhile. */
  #tell(told: ReadonlyArray<() => void>, group: readonly Waiting[]): void {
    if (!this.#durable || told.length === 0) {
      for (const t of told) t();
      return;
    }
    // Called inside then(): a durable() that throws instead of rejecting still settles every caller.
    Promise.resolve()
      .then(this.#durable)
      .then(
        () => {
          for (const t of told) t();
        },
        // Committed but perhaps not on disk: the callers hear the sync's error (a retry with the same application
        // id finds the certificate if it survived).
        (e: unknown) => {
          for (const w of group) w.reject(e);
        },
      );
  }
}
