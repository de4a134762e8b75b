/**
 * The CAs at a glance, for the status page of `jpki serve` (issue 11 point 3) and any verifier (署名検証者) who
 * asks: each prefecture CA (都道府県単位認証局) with its latest published CRLs (失効リスト) — the full CRL, its
 * delta, its municipality partitions and its ARL: number (RFC 5280 §5.2.3), thisUpdate, age, nextUpdate,
 * entries, whether it is past its nextUpdate — and how many of its certificates were revoked on each of the
 * last days.
 *
 * Revocations per day are read from the CA's latest published full CRL (the revocationDate of each entry,
 * §5.1.2.6), not from the store. The store keeps no index on revocation time, so counting there is a scan of
 * every certificate ever issued (measured here: ~0.2 µs a row on SQLite — 40 s or more at the national
 * scale, on the server's one thread); the CRL holds only the revoked, is parsed once per CRL number (the counts
 * of a published CRL never change) and is what verifiers see. So the chart says "as the published CRL lists
 * them": a revocation not yet on a CRL appears with the next one (CRLs follow every batch of notices), and a
 * certificate that expired more than the grace period ago has left the CRL and is no longer counted.
 *
 * Days are civil days in Japan (JST, UTC+9, no daylight saving): the registry's notices and the counters'
 * working days are Japanese days, so a move registered at 08:00 JST counts on that day, not on the UTC day
 * before. Every day of the window is listed, with 0 where nothing was revoked, so a chart needs no filling in.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { isAbsolute, join } from "node:path";
import { prefecture } from "../ca/prefectures.js";
import { JpkiError } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import type { EndedCrls } from "../crl/finished.js";
import { ARL_SCOPE, DELTA_SCOPE, FULL_SCOPE, type CrlRecord, type Store } from "../store/types.js";
import type { StoreWatchdog } from "../store/watchdog.js";
import { parseCrl } from "../validation/crl.js";
import { CompactCrlEntries } from "../validation/crl-index.js";
import { JST_OFFSET_MS } from "../pki/jst.js";

/** JST: UTC+9 all year (pki/jst.ts), in minutes. */
export const JST_OFFSET_MINUTES = JST_OFFSET_MS / 60_000;
/** The longest window a caller may ask for, days. */
export const MAX_OVERVIEW_DAYS = 366;
const DAY_MS = 86_400_000;
const OFFSET_MS = JST_OFFSET_MINUTES * 60_000;

export type OverviewCrlKind = "full" | "delta" | "partition" | "arl";

export interface OverviewCrl {
  readonly kind: OverviewCrlKind;
  /** the municipality code (6 digits) of a partition */
  readonly municipality?: string;
  /** CRL number (decimal string: it is a bigint) */
  readonly number: string;
  /** the complete CRL a delta is based on */
  readonly baseNumber?: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  /** seconds since thisUpdate */
  readonly ageSeconds: number;
  /** nextUpdate has passed: verifiers must not rely on it */
  readonly stale: boolean;
  /**
   * stale and the last of its scope: a retired key generation that publishes it no more (crl/finished.ts), as
   * `/crl/index.json` says — its end, not an overdue CRL; absent otherwise
   */
  readonly ended?: true;
  readonly entries: number;
}

export interface OverviewCa {
  /** our CA id, e.g. "13-sig" */
  readonly id: string;
  readonly prefectureCode: string;
  /** e.g. 東京都 */
  readonly prefecture: string;
  readonly purpose: "signature" | "authentication";
  /** latest published CRLs: full first, then delta, partitions by municipality code, ARL */
  readonly crls: readonly OverviewCrl[];
  /**
   * revocations on each day of the window, oldest first (day: the JST date "YYYY-MM-DD"), as the full CRL
   * numbered `revocationsFrom` lists them; empty with no full CRL published (or one that could not be read)
   */
  readonly revocationsPerDay: ReadonlyArray<{ readonly day: string; readonly count: number }>;
  readonly revocationsFrom?: string;
  /**
   * what is wrong with the file of the latest full CRL, where something is: verifiers fetching it get a 404, a
   * damaged file, or another CRL than the one the store published (CrlFileProblem)
   */
  readonly fullCrlProblem?: CrlFileProblem;
}

/**
 * What can be wrong with a published CRL's file: gone, not readable or not a CRL, or another file than the one
 * published (its SHA-256 or its number is not the store's record of it).
 */
export type CrlFileProblem = "missing" | "unreadable" | "not-this-crl";

/** What CrlRevocationDays.of found: the counts by JST day number, or what is wrong with the file. */
export type CrlDayCounts = { readonly days: ReadonlyMap<number, number> } | { readonly problem: CrlFileProblem };

export interface CaOverview {
  readonly generatedAt: string;
  /** the window: first and last JST day, inclusive */
  readonly from: string;
  readonly to: string;
  readonly cas: readonly OverviewCa[];
}

/** The JST date of an instant. */
function jstDay(ms: number): string {
  return new Date(ms + OFFSET_MS).toISOString().slice(0, 10);
}

/** A JST day's number since the epoch. */
function jstDayNumber(ms: number): number {
  return Math.floor((ms + OFFSET_MS) / DAY_MS);
}

/** A CA's prefecture in kanji; its code as it is when the table does not know it (the overview still answers). */
function prefectureName(code: string): string {
  try {
    return prefecture(code).kanji;
  } catch {
    return code;
  }
}

/**
 * Revocations per JST day of each CA's latest full CRL, kept per CA for the CRL number last counted: a CRL once
 * published never changes, so it is read and parsed once, when its number is first seen — as long as its file
 * stays as it was (one stat per look), else it is looked at again and, gone, damaged or another CRL than the
 * store's record (SHA-256, number), reported as a problem, not counted. Hold one per server.
 */
export class CrlRevocationDays {
  readonly #byCa = new Map<string, { readonly number: bigint; readonly file: string; readonly counts: CrlDayCounts }>();
  readonly #root: string;
  readonly #onError: ((e: unknown, what: string) => void) | undefined;

  readonly #threadModule: URL | undefined;
  #thread: CrlDaysThread | undefined;

  /**
   * `root`: the workspace directory the CRL records' paths are relative to; `thread`: count on a thread of its own
   * where the compiled module exists (`jpki serve`; a URL names the module, for tests), else on the calling thread
   */
  constructor(root: string, o: { readonly onError?: (e: unknown, what: string) => void; readonly thread?: boolean | URL } = {}) {
    this.#root = root;
    this.#onError = o.onError;
    const module = o.thread instanceof URL ? o.thread : o.thread ? COUNTING_THREAD : undefined;
    this.#threadModule = module && existsSync(fileURLToPath(module)) ? module : undefined;
  }

  /**
   * The counts by JST day number of the CRL `record`, or what is wrong with its file. Counts are kept per CRL
   * number (the same object again); a problem is looked for anew each time (the file may be put right).
   */
  async of(caId: string, record: CrlRecord): Promise<CrlDayCounts> {
    if (!record.path) return { problem: "missing" };
    const path = isAbsolute(record.path) ? record.path : join(this.#root, record.path);
    // The file as it is now (one stat): counted before and unchanged since, the same counts; gone or replaced
    // since it was counted, looked at again.
    let file: string;
    try {
      const s = await stat(path);
      file = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (e) {
      return { problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "unreadable" };
    }
    const known = this.#byCa.get(caId);
    if (known && known.number === record.number && known.file === file) return known.counts;
    const counted = await this.#count({ path, number: record.number.toString(), ...(record.sha256 ? { sha256: record.sha256 } : {}) });
    if ("problem" in counted) {
      if (counted.error) this.#onError?.(new Error(counted.error), `counting the revocations of CRL ${record.number} of ${caId}`);
      return { problem: counted.problem };
    }
    const counts = { days: new Map(counted.days) };
    // Only ever forward: a slower read of an older number must not replace a newer one's counts.
    if (!known || known.number <= record.number) this.#byCa.set(caId, { number: record.number, file, counts });
    return counts;
  }

  /** countCrlDays on the counting thread where there is one (started on first use), else here. */
  #count(job: CrlDaysJob): Promise<CrlDaysResult> {
    if (!this.#threadModule) return countCrlDays(job);
    try {
      this.#thread ??= new CrlDaysThread(this.#threadModule);
    } catch {
      // ERR_WORKER_INIT_FAILED, thrown by the Worker constructor at the process's thread limit (a container's
      // pids.max, systemd's TasksMax): GET /v1/overview failed with it every time. Counted here; the thread is tried
      // again at the next count (a new CRL number), when the limit may have room.
      return countCrlDays(job);
    }
    return this.#thread.count(job).catch(() => countCrlDays(job)); // a thread that died: counted here, as before
  }
}

/** A CRL file to count (CrlRevocationDays → the counting thread): its path, and the store's number and SHA-256 of it. */
export interface CrlDaysJob {
  readonly path: string;
  /** decimal */
  readonly number: string;
  readonly sha256?: string;
}

/** What countCrlDays found: revocations per JST day number, or what is wrong with the file (and the error, if any). */
export type CrlDaysResult = { readonly days: ReadonlyArray<readonly [number, number]> } | { readonly problem: CrlFileProblem; readonly error?: string };

/**
 * Reads a published CRL file, checks it is the CRL the store recorded (its SHA-256 before anything is parsed, then
 * its number: another CRL at the path was counted as this number's) and counts its entries' revocation dates per
 * JST day number. Runs on the counting thread (crl-days-thread.ts): a million-entry CRL takes ≈ 0.5 s to parse
 * and index, which on the serving thread held every request of `jpki serve` (a review helper measured /healthz at
 * 784 ms during the first overview after a publication).
 */
export async function countCrlDays(job: CrlDaysJob): Promise<CrlDaysResult> {
  let der: Buffer;
  try {
    der = await readFile(job.path);
  } catch (e) {
    return { problem: (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "unreadable", error: (e as Error).message };
  }
  if (job.sha256 && createHash("sha256").update(der).digest("hex") !== job.sha256) return { problem: "not-this-crl" };
  const days = new Map<number, number>();
  try {
    const crl = parseCrl(der);
    if (crl.crlNumber?.toString() !== job.number) return { problem: "not-this-crl" };
    if (crl.entries instanceof CompactCrlEntries) {
      for (const t of crl.entries.revocationTimes()) {
        const d = jstDayNumber(t);
        days.set(d, (days.get(d) ?? 0) + 1);
      }
    }
  } catch (e) {
    return { problem: "unreadable", error: (e as Error).message };
  }
  return { days: [...days] };
}

const COUNTING_THREAD = new URL("./crl-days-thread.js", import.meta.url);

/** The counting thread: one job at a time in order, each answered by its id. */
class CrlDaysThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: CrlDaysResult) => void; reject: (e: Error) => void }>();
  #next = 0;
  /** set once the thread has ended: a job posted to it then would never be answered */
  #ended: Error | undefined;

  constructor(module: URL) {
    this.#worker = newThread(module);
    this.#worker.on("message", (m: { id: number; result: CrlDaysResult }) => {
      this.#pending.get(m.id)?.resolve(m.result);
      this.#pending.delete(m.id);
    });
    const fail = (e: Error) => {
      this.#ended ??= e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.on("error", fail);
    this.#worker.on("exit", (code) => fail(new Error(`the counting thread ended (exit code ${code})`)));
    // Never what keeps a process alive. After the listeners: node refs a worker's port again when a "message"
    // listener is added, so unref'd first, the thread held `jpki serve` up after SIGTERM, for good, once anyone
    // had asked GET /v1/overview.
    this.#worker.unref();
  }

  count(job: CrlDaysJob): Promise<CrlDaysResult> {
    if (this.#ended) return Promise.reject(this.#ended);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, job });
    });
  }
}

function crlOf(kind: OverviewCrlKind, r: CrlRecord, now: number, municipality?: string, ended = false): OverviewCrl {
  const stale = r.nextUpdate.getTime() <= now;
  return {
    kind,
    ...(municipality ? { municipality } : {}),
    number: r.number.toString(),
    ...(r.baseNumber !== undefined ? { baseNumber: r.baseNumber.toString() } : {}),
    thisUpdate: r.thisUpdate.toISOString(),
    nextUpdate: r.nextUpdate.toISOString(),
    ageSeconds: Math.max(0, Math.floor((now - r.thisUpdate.getTime()) / 1000)),
    stale,
    ...(stale && ended ? { ended: true as const } : {}),
    entries: r.entries,
  };
}

const KIND_ORDER: Readonly<Record<OverviewCrlKind, number>> = { full: 0, delta: 1, partition: 2, arl: 3 };

/**
 * Every CA of the store with its latest CRLs and its revocations on each of the last `days` JST days (today
 * included), counted by `revocationDays` from the latest full CRL. ERR_USAGE when `days` is not a whole number
 * from 1 to MAX_OVERVIEW_DAYS. `ended` (FinishedCrls.ended of the workspace: crl/finished.ts) marks the CRLs past
 * their nextUpdate that no run will replace; without it none is marked.
 */
export async function caOverview(
  store: Store,
  o: {
    readonly clock: Clock;
    readonly days: number;
    readonly revocationDays: CrlRevocationDays;
    readonly watchdog?: StoreWatchdog;
    readonly ended?: (candidates: ReadonlySet<string>) => Promise<EndedCrls>;
  },
): Promise<CaOverview> {
  if (!Number.isInteger(o.days) || o.days < 1 || o.days > MAX_OVERVIEW_DAYS) {
    throw new JpkiError("ERR_USAGE", `the overview covers 1 to ${MAX_OVERVIEW_DAYS} days: ask for a whole number of days in that range`);
  }
  const now = o.clock.now().getTime();
  const today = jstDayNumber(now);
  const window = Array.from({ length: o.days }, (_, i) => today - o.days + 1 + i);
  const read = async () => {
    const got = await Promise.all([store.listCas(), store.crlStatus(), store.deltaCrlStatus(), store.crlScopeStatus()]);
    // Only the CAs with a CRL past its nextUpdate are looked at: finding a generation done scans its certificates.
    const expired = new Set([...got[1], ...got[2].map((d) => ({ caId: d.caId, latest: d.delta })), ...got[3]].filter((s) => s.latest && s.latest.nextUpdate.getTime() <= now).map((s) => s.caId));
    const ended: EndedCrls = o.ended && expired.size ? await o.ended(expired) : () => false;
    return [...got, ended] as const;
  };
  // Bounded when a watchdog is given (jpki serve's): a hung store held GET /v1/overview as long as it hung.
  const [cas, full, deltas, scoped, ended] = await (o.watchdog ? o.watchdog.run("the overview's reads", read) : read());
  const crls = new Map<string, OverviewCrl[]>();
  const add = (caId: string, c: OverviewCrl) => {
    let l = crls.get(caId);
    if (!l) crls.set(caId, (l = []));
    l.push(c);
  };
  const fullOf = new Map<string, CrlRecord>();
  for (const s of full) {
    if (!s.latest) continue;
    add(s.caId, crlOf("full", s.latest, now, undefined, ended(s.caId, FULL_SCOPE, s.latest)));
    fullOf.set(s.caId, s.latest);
  }
  for (const d of deltas) if (d.delta) add(d.caId, crlOf("delta", d.delta, now, undefined, ended(d.caId, DELTA_SCOPE, d.delta)));
  for (const s of scoped) {
    if (!s.latest) continue;
    const isEnded = ended(s.caId, s.scope, s.latest);
    add(s.caId, s.scope === ARL_SCOPE ? crlOf("arl", s.latest, now, undefined, isEnded) : crlOf("partition", s.latest, now, s.scope, isEnded));
  }
  const out: OverviewCa[] = [];
  for (const c of [...cas].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const f = fullOf.get(c.id);
    const counted = f ? await o.revocationDays.of(c.id, f) : undefined;
    const days = counted && "days" in counted ? counted.days : undefined;
    out.push({
      id: c.id,
      prefectureCode: c.prefectureCode,
      prefecture: prefectureName(c.prefectureCode),
      purpose: c.purpose,
      crls: (crls.get(c.id) ?? []).sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.municipality ?? "").localeCompare(b.municipality ?? "")),
      revocationsPerDay: days ? window.map((d) => ({ day: jstDay(d * DAY_MS), count: days.get(d) ?? 0 })) : [],
      ...(days && f ? { revocationsFrom: f.number.toString() } : {}),
      ...(counted && "problem" in counted ? { fullCrlProblem: counted.problem } : {}),
    });
  }
  return { generatedAt: new Date(now).toISOString(), from: jstDay(window[0]! * DAY_MS), to: jstDay(today * DAY_MS), cas: out };
}
