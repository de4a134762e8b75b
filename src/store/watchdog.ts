/**
 * A bound on how long the verifier API (`POST /v1/validate`, `POST /v1/status`; server/app.ts) waits for the
 * store. A database server that hangs or vanishes without closing the connection (a stopped VM, a partition), or
 * a SQLite store whose write lock another process holds, answered nothing, and the API's clients waited with it:
 * a validation waited as long as the store, a SQLite one 20 s (BUSY_TIMEOUT_MS) before its 503. `/healthz` was
 * bounded the same way before (HEALTH_STORE_WAIT_MS).
 *
 * One watchdog for all calls, no timer per call: these are the API's hot paths (bench api, POST /v1/validate
 * per second), where a setTimeout and a Promise.race per answer were a measurable share of the serving thread.
 * The calls watched are kept in start order, all with the one bound, so an interval (running only while calls
 * are outstanding) looks at the oldest few only. A call past the bound is declared late: its waiter gets
 * ERR_STORE_UNRESPONSIVE, and while a late call has not settled the store counts as stalled — new calls are
 * refused at once (`run`), without being sent: a hung store is not handed one more query per request, and the
 * client learns in a moment what the first learned after the bound.
 *
 * A probe ends a stall: while stalled, one call per `waitMs` is let through (`admit`), or, when no request comes
 * for it, the watchdog sends its own (`probe`: Store.ping). A call hung on a
 * PostgreSQL connection whose server vanished settles only when TCP keepalive ends it (~10 min); waiting for it
 * kept every route refused that long after the database was back and fresh pool connections would answer. A
 * call that succeeds before it was declared late shows the store answers: the late calls are then forgotten for
 * admission (they still run; their waiters were answered already), and the stall is over — but for the kinds of the
 * late calls (WatchedCall.kind: `run`'s `what`), other than the one that answered, which are held: a store that
 * answers all but one kind of call (a lock on one table) otherwise stalled and unstalled everything once per cycle
 * (`admit` says more).
 *
 * The disclosure log watches its group writes itself (verifier/disclosure-log.ts, with `add`/`settled`): one
 * entry per write, nothing per answer.
 *
 * A late call gives up what the store holds for it. A probe while a database host is silently gone takes a pooled
 * PostgreSQL connection and hangs on it; ten probes (the pool's size) and every connection was hung until TCP
 * keepalive ended it, so once the database was back the probes waited for a free connection, went late, and
 * recovery waited ~10 min after all. So a store reads the call its method is for as the method begins
 * (`currentCall`: the call whose `f` is running, synchronously, `within`), ties the connection it checks out for it
 * to the call (`holdFor`), and the sweep that declares the call late lets go of it (postgres.ts cuts it once the
 * pool has no other connection to give, and opens a fresh one). The store's failure of a call it let go of
 * (`details.lateCall`) says nothing of the store: the call keeps counting late, as it did while it hung, until a
 * probe answers in time.
 * Only the synchronous start of `f` is known, not its continuations after an await (an AsyncLocalStorage would
 * follow those, but on Node 20 and 22 one in use costs every promise of the process a hook, ≈ 0.3 µs, on the API's
 * hot paths). So a watched call begins all its store methods in `f`'s synchronous start (Promise.all: the
 * overview's reads, server/crl-records.ts, the validation service's CA certificates), or, for a step that needs what
 * was read first, `within(call, …)` (`run` gives `f` its call); a store method begun otherwise after an await is
 * no call's. That is not only when the host vanishes mid-call: the pool hands out connections idle since
 * before an outage, dead, and one given to such a later read hung untied, never cut, until TCP gave up (≈ 15 min
 * for a statement unanswered). Within a store method, what it takes after its own first await is the call's as
 * long as the method passes the call on (postgres.ts #tx reads it once for every retry). Reads gathered into one
 * query (coalesce.ts) are tied to a waiting call that is not late yet.
 */
import { JpkiError } from "../errors.js";
import { storeCallKind, UNNAMED_CALL, type StoreCallKind } from "./call-kinds.js";

export { STORE_CALL_KINDS, type StoreCallKind } from "./call-kinds.js";

/** How long the verifier API waits for the store by default, ms: as long as /healthz (HEALTH_STORE_WAIT_MS). */
export const STORE_WAIT_MS = 5_000;

/** What a client told the store did not answer is asked to wait before asking again, seconds (Retry-After). */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** A store call being watched: when it started (the watchdog's clock), and what to do once it is late. */
export interface WatchedCall {
  readonly startedAt: number;
  /**
   * what the call does (`run`'s `what`; the disclosure log's group writes: DISCLOSURE_WRITES): calls of one kind wait
   * on the same tables and locks, and a kind still late once the store answers others is held (StoreWatchdog `admit`).
   * One of a fixed table (call-kinds.ts): it is a /metrics label.
   */
  readonly kind?: StoreCallKind;
  /** called once, when the call has been waited for `waitMs` (the watchdog then counts it late until `settled`) */
  late(e: JpkiError): void;
  /** set by the watchdog when it declared the call late */
  wasLate?: boolean;
  /**
   * What the store holds for the call and gives up once it is late (`holdFor`: a pooled PostgreSQL connection);
   * null once the call was declared late (what it takes after that is given up at once).
   */
  holds?: Set<() => void> | null;
}

/** The call whose `f` is running now, synchronously (runAs). */
let current: WatchedCall | undefined;

/**
 * The watched call whose store method is beginning now, if any (read before the method's first await: only the
 * synchronous start of a call's `f` runs as its part, runAs): a store ties what it takes for it to it (`holdFor`).
 */
export function currentCall(): WatchedCall | undefined {
  return current;
}

/** `f()`, as part of `call` (none: of no call) while it runs synchronously: currentCall. */
export function runAs<T>(call: WatchedCall | undefined, f: () => T): T {
  const outer = current;
  current = call;
  try {
    return f();
  } finally {
    current = outer;
  }
}

/** Whether the watchdog has declared the call late (what the store would take for it now is given up at once). */
export function isLate(call: WatchedCall): boolean {
  return call.holds === null;
}

/**
 * Ties what the store took for `call` to it: `letGo` runs once if the call is declared late while it is held. The
 * function returned unties it (the store is done with it). Undefined when the call is late already: the store
 * gives it back unused (a connection that came free after the bound is not sent a statement nobody waits for).
 */
export function holdFor(call: WatchedCall, letGo: () => void): (() => void) | undefined {
  if (call.holds === null) return undefined;
  const holds = (call.holds ??= new Set());
  holds.add(letGo);
  return () => call.holds?.delete(letGo);
}

/**
 * Whether `failure` is the store's own for a call it let go of (holdFor): a connection closed past the bound, or
 * a statement not sent because the call was late. It tells nothing of whether the store answers.
 */
export function letGoFailure(failure: unknown): boolean {
  return (failure as { code?: unknown } | undefined)?.code === "ERR_STORE_UNRESPONSIVE" && (failure as JpkiError).details?.lateCall !== undefined;
}

export interface StoreWatchdogOptions {
  /** the bound, ms (default STORE_WAIT_MS) */
  readonly waitMs?: number;
  /** a monotonic clock, ms (default performance.now): the stores' write deadlines are on it too */
  readonly now?: () => number;
  /**
   * The store has become stalled (a first call went late): for the operator's log, once per stall — the requests
   * refused meanwhile are not reported one by one (a flood of lines at the API's request rate)
   */
  readonly onStalled?: (e: JpkiError) => void;
  /**
   * A cheap call the watchdog sends itself while stalled, as a probe (one per `waitMs`, shared with the requests'
   * probes: `admit`): jpki serve's is Store.ping. Without it only a request's probe ends a stall, so on a server
   * with no traffic the stall outlived the outage: the first requests after a quiet spell were refused but one, and
   * the next outage was not reported (onStalled is once per stall, and the old one had not ended).
   */
  readonly probe?: () => Promise<unknown>;
}

/** The error of a call the store did not answer within the bound (or refused because an earlier one has not). */
export function storeUnresponsive(waitMs: number, what = "a store call"): JpkiError {
  return new JpkiError("ERR_STORE_UNRESPONSIVE", `the store did not answer ${what} within ${waitMs} ms: no answer was given; try again`);
}

/** The kind of the disclosure log's group writes (WatchedCall.kind). */
export const DISCLOSURE_WRITES: StoreCallKind = "recording disclosures";

/** The kind of the watchdog's own probe: never held (it is sent only while the whole store is stalled). */
const OWN_PROBE: StoreCallKind = "a probe of the store";

export class StoreWatchdog {
  readonly waitMs: number;
  readonly now: () => number;
  readonly #onStalled: ((e: JpkiError) => void) | undefined;
  readonly #probe: (() => Promise<unknown>) | undefined;
  /** outstanding calls, in start order (a Set iterates in insertion order) */
  readonly #calls = new Set<WatchedCall>();
  /** calls declared late and not settled yet */
  #late = 0;
  /** this.now() from which the next probe may go through while stalled (one per waitMs) */
  #probeAt = 0;
  /**
   * Kinds of calls held (WatchedCall.kind), each with when its next probe may go: a call of such a kind was still
   * late when the store answered another call in time, so the store answers but not that kind (a lock held on its
   * table by another session, a transaction holding a row it needs). Its calls are refused but one per bound, as
   * they all are while stalled, until one answers in time; one going late does not stall the others' (see `admit`).
   */
  readonly #held = new Map<StoreCallKind, { probeAt: number }>();
  /**
   * Calls refused without being sent, by kind, and why: `stalled` (a call past the bound has not settled) or `held`
   * (its kind is held). jpki serve's /metrics (jpki_store_refused_calls_total): a hold refuses one kind's calls for as
   * long as its lock lasts, and was seen only as 503s among the route's answers, with no word of which calls.
   */
  readonly #refused = new Map<StoreCallKind, { stalled: number; held: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(o: StoreWatchdogOptions = {}) {
    this.waitMs = o.waitMs ?? STORE_WAIT_MS;
    this.now = o.now ?? (() => performance.now());
    this.#onStalled = o.onStalled;
    this.#probe = o.probe;
  }

  /** `f()` as part of `call`: a store method it begins ties what it takes to the call (runAs, currentCall). */
  within<T>(call: WatchedCall, f: () => T): T {
    return runAs(call, f);
  }

  /** Whether a call past the bound has not settled yet: the store is taken to be hung, and new calls are refused. */
  get stalled(): boolean {
    return this.#late > 0;
  }

  /**
   * Whether a new call (of `kind`, WatchedCall.kind) may be sent now: always unless stalled or its kind is held;
   * while stalled, one call per `waitMs` (the probe whose timely success ends the stall: `settled`), and while its
   * kind is held one call of it per `waitMs` (the kind's probe: the first at once once the hold begins). A caller
   * refused gets ERR_STORE_UNRESPONSIVE without asking.
   *
   * Why holds. The stall ends when any call answers in time (the watchdog's own probe, SELECT 1, among them), which is
   * right for a store gone and back: every call then answers again, and the calls that went late may never settle (a
   * connection cut on a vanished host). But a store that answers all but one kind of call (another session's lock on
   * one table: an ACCESS EXCLUSIVE maintenance lock, a long transaction holding the audit head the disclosure writes
   * append to) ended its stall a bound after it began and went late again at once on that kind: measured on
   * PostgreSQL with a 200 ms bound and a call of each of two kinds every 20 ms for 4 s of a lock on one table, 15
   * stalls reported, half the calls to the other, unlocked, tables refused (91 of 189), and every call to the locked
   * one admitted between stalls waited the whole bound. Held, the locked kind is refused at once but its probe, the
   * stall is reported once, and the others are answered.
   */
  admit(kind?: StoreCallKind): boolean {
    const now = this.now();
    if (this.#late > 0) {
      if (now < this.#probeAt) return this.#refuse(kind, "stalled");
      this.#probeAt = now + this.waitMs;
      return true;
    }
    const held = kind === undefined || !this.#held.size ? undefined : this.#held.get(storeCallKind(kind));
    if (!held) return true;
    if (now < held.probeAt) return this.#refuse(kind, "held");
    held.probeAt = now + this.waitMs;
    return true;
  }

  /** Counts a call `admit` refuses (off the path of a call admitted: nothing is counted there). */
  #refuse(kind: StoreCallKind | undefined, why: "stalled" | "held"): false {
    // Checked against the table, not trusted: the type stops a dynamic kind only where the caller is type-checked.
    const k = storeCallKind(kind);
    let n = this.#refused.get(k);
    if (!n) this.#refused.set(k, (n = { stalled: 0, held: 0 }));
    n[why]++;
    return false;
  }

  /** The kinds of calls held now (see `admit`), for a test or an operator's view (/metrics, /healthz). */
  get heldKinds(): StoreCallKind[] {
    return [...this.#held.keys()];
  }

  /** The calls refused since the start, by kind and why (see `#refused`), for an operator's view (/metrics). */
  get refusals(): ReadonlyMap<StoreCallKind, { readonly stalled: number; readonly held: number }> {
    return this.#refused;
  }

  /** The deadline a call started now must be written by (a store that can withdraw a write takes it: Store.appendDisclosures). */
  deadline(startedAt: number): number {
    return startedAt + this.waitMs;
  }

  /** Watches a call that started at `call.startedAt` (now, or a moment ago: calls are kept in start order); `settled` ends it. */
  add(call: WatchedCall): void {
    // A kind not in the table (a cast, a plain-JS caller) is held and counted as an unnamed call: never a label.
    if (call.kind !== undefined && storeCallKind(call.kind) !== call.kind) (call as { kind?: StoreCallKind }).kind = UNNAMED_CALL;
    this.#calls.add(call);
    // A quarter of the bound: a late call is answered within 1.25 × the bound. Unref'd: it never holds the process.
    this.#timer ??= setInterval(() => this.#sweep(), Math.max(10, this.waitMs / 4)).unref();
  }

  /**
   * The call settled (answered, or failed with `failure`), late or not. A store that gave a write up at its
   * deadline itself (SQLite: WriteDeadline) failed it before the sweep saw it late: the stall is reported all the same.
   */
  settled(call: WatchedCall, failure?: unknown): void {
    // A call forgotten when a probe ended its stall is no longer counted: its outcome says nothing now.
    if (!this.#calls.has(call)) return;
    // The store let go of the call as late (its connection closed): no word from the store, so the call stays
    // counted late, as it was while it hung, until a probe answers in time. Ending the stall here handed the hung
    // store one more query per request again, each answered only after the bound.
    if (call.wasLate && failure !== undefined && letGoFailure(failure)) return;
    this.#calls.delete(call);
    const held = call.kind !== undefined && this.#held.has(call.kind);
    if (!call.wasLate && this.#late === 0 && (failure as { code?: unknown } | undefined)?.code === "ERR_STORE_UNRESPONSIVE") {
      if (!held) this.#onStalled?.(failure as JpkiError);
      // Given up by the store at its own deadline, before the sweep saw it late (SQLite: another process holds the
      // write lock), the call settled and nothing stalled: every call of its kind admitted after it waited the whole
      // bound too, and each was reported (one log line per request under the lock, measured: app.test's write-lock
      // test). Its kind is held as a late call's is once a stall ends: refused at once but one probe per bound, the
      // first a bound from now (a locked store is not asked again at once), reported once, ended by a probe in time.
      if (!held && call.kind !== undefined && call.kind !== OWN_PROBE) this.#held.set(call.kind, { probeAt: this.now() + this.waitMs });
    }
    if (call.wasLate) {
      call.wasLate = false;
      this.#late--;
    } else if (failure === undefined) {
      // Answered within the bound: this kind answers again.
      if (held) this.#held.delete(call.kind!);
      if (this.#late > 0) {
        // Answered within the bound while stalled: the store answers again. The late calls are forgotten (their
        // waiters were answered; a store's outcome for them, when it comes, changes nothing here), and the kinds
        // of those of another kind than this one are held until one of theirs answers (`admit` says why).
        const now = this.now();
        for (const c of this.#calls) {
          if (!c.wasLate) continue;
          c.wasLate = false;
          this.#calls.delete(c);
          if (c.kind !== undefined && c.kind !== call.kind && c.kind !== OWN_PROBE && !this.#held.has(c.kind)) this.#held.set(c.kind, { probeAt: now });
        }
        this.#late = 0;
      }
    }
    // The interval is not stopped here: under load the set empties between writes, and a timer started and
    // stopped per write is what this avoids. The sweep stops it when it finds nothing outstanding.
  }

  /**
   * `f(deadline)`'s answer, or ERR_STORE_UNRESPONSIVE once it has been waited for the bound; refused at once, without
   * calling `f`, while the store is stalled (but for one probe per waitMs: `admit`). `f` is given the call: a step it
   * can only begin after an await (it needs what was read first) is begun `within(call, …)` to be the call's too.
   * For calls off the hottest path (a reload of the trust anchors, a
   * government body's reads of the owner and resident, a liveness check's reads and write): one promise and one
   * entry each, no timer.
   */
  run<T>(what: StoreCallKind, f: (deadline: number, call: WatchedCall) => Promise<T>): Promise<T> {
    // `what` is checked against the table where it could reach a label (admit's refusals and holds, add), off the
    // path of a call admitted while nothing is stalled or held.
    if (!this.admit(what)) return Promise.reject(storeUnresponsive(this.waitMs, what));
    return new Promise<T>((resolve, reject) => {
      const call: WatchedCall = { startedAt: this.now(), kind: what, late: reject };
      let p: Promise<T>;
      try {
        p = this.within(call, () => f(this.deadline(call.startedAt), call)); // a write's deadline (WriteDeadline): the very moment this call is late
      } catch (e) {
        reject(e);
        return;
      }
      this.add(call);
      p.then(
        (v) => {
          this.settled(call);
          resolve(v); // nothing, once late: its waiter was answered
        },
        (e: unknown) => {
          this.settled(call, e);
          reject(e);
        },
      );
    });
  }

  #sweep(): void {
    const now = this.now();
    for (const call of this.#calls) {
      if (call.wasLate) continue;
      if (now - call.startedAt < this.waitMs) break; // the rest started later
      const e = storeUnresponsive(this.waitMs);
      if (call.kind !== undefined && this.#held.has(call.kind)) {
        // A held kind's probe, late again: its kind stays held, the others are not stalled for it. Forgotten as
        // the late calls are when a stall ends: its waiter is answered, and its outcome changes nothing here.
        this.#calls.delete(call);
        call.late(e);
        this.#letGo(call);
        continue;
      }
      call.wasLate = true;
      if (this.#late++ === 0) {
        this.#probeAt = now + this.waitMs; // the first probe a bound after the stall began: a hung store is not asked at once again
        this.#onStalled?.(e);
      }
      call.late(e);
      this.#letGo(call);
    }
    // Stalled, and a probe is due that no request has taken: the watchdog sends its own. A stall keeps its late
    // calls outstanding, so this interval runs as long as the stall does; the probe's outcome is `run`'s to count.
    if (this.#late > 0 && this.#probe && now >= this.#probeAt) {
      const probe = this.#probe;
      this.run(OWN_PROBE, () => probe()).catch(() => undefined);
    }
    if (!this.#calls.size) this.#stop();
  }

  /** What the store holds for a call declared late is given up (a connection that may be hung on a vanished host: postgres.ts). */
  #letGo(call: WatchedCall): void {
    const holds = call.holds;
    call.holds = null;
    if (holds) for (const letGo of holds) letGo();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the interval (calls still outstanding are no longer bounded). */
  close(): void {
    this.#stop();
  }
}
