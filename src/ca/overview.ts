/**
 * The CAs at a glance, for the status page of `jpki serve` (issue 11 point 3) and anyone else who asks: each
 * prefecture CA (都道府県単位認証局) with its latest published CRLs (失効リスト) — the full CRL, its delta,
 * its municipality partitions and its ARL: number (RFC 5280 §5.2.3), thisUpdate, age, nextUpdate, entries,
 * whether it is past its nextUpdate — and how many certificates it revoked on each of the last days.
 *
 * Days are civil days in Japan (JST, UTC+9, no daylight saving): the registry's notices and the counters'
 * working days are Japanese days, so a move registered at 08:00 JST counts on that day, not on the UTC day
 * before. Every day of the window is listed, with 0 where nothing was revoked, so a chart needs no filling in.
 */
import { JpkiError } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import { ARL_SCOPE, type CrlRecord, type Store } from "../store/types.js";
import { prefecture } from "./prefectures.js";

/** JST: UTC+9 all year. */
export const JST_OFFSET_MINUTES = 540;
/** The longest window a caller may ask for, days: the scan is of every revocation since its start. */
export const MAX_OVERVIEW_DAYS = 366;
const DAY_MS = 86_400_000;

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
  /** revocations on each day of the window, oldest first: day is the JST date "YYYY-MM-DD" */
  readonly revocationsPerDay: ReadonlyArray<{ readonly day: string; readonly count: number }>;
}

export interface CaOverview {
  readonly generatedAt: string;
  /** the window: first and last JST day, inclusive */
  readonly from: string;
  readonly to: string;
  readonly cas: readonly OverviewCa[];
}

/** A CA's prefecture in kanji; its code as it is when the table does not know it (the overview still answers). */
function prefectureName(code: string): string {
  try {
    return prefecture(code).kanji;
  } catch {
    return code;
  }
}

/** The JST date of an instant. */
function jstDay(ms: number): string {
  return new Date(ms + JST_OFFSET_MINUTES * 60_000).toISOString().slice(0, 10);
}

function crlOf(kind: OverviewCrlKind, r: CrlRecord, now: number, municipality?: string): OverviewCrl {
  return {
    kind,
    ...(municipality ? { municipality } : {}),
    number: r.number.toString(),
    ...(r.baseNumber !== undefined ? { baseNumber: r.baseNumber.toString() } : {}),
    thisUpdate: r.thisUpdate.toISOString(),
    nextUpdate: r.nextUpdate.toISOString(),
    ageSeconds: Math.max(0, Math.floor((now - r.thisUpdate.getTime()) / 1000)),
    stale: r.nextUpdate.getTime() <= now,
    entries: r.entries,
  };
}

const KIND_ORDER: Readonly<Record<OverviewCrlKind, number>> = { full: 0, delta: 1, partition: 2, arl: 3 };

/**
 * Every CA of the store with its latest CRLs and its revocations on each of the last `days` JST days (today
 * included). ERR_USAGE when `days` is not a whole number from 1 to MAX_OVERVIEW_DAYS.
 */
export async function caOverview(store: Store, o: { readonly clock: Clock; readonly days: number }): Promise<CaOverview> {
  if (!Number.isInteger(o.days) || o.days < 1 || o.days > MAX_OVERVIEW_DAYS) {
    throw new JpkiError("ERR_USAGE", `the overview covers 1 to ${MAX_OVERVIEW_DAYS} days: ask for a whole number of days in that range`);
  }
  const now = o.clock.now().getTime();
  const offset = JST_OFFSET_MINUTES * 60_000;
  // The first instant of today in JST, then back days-1 days.
  const todayStart = Math.floor((now + offset) / DAY_MS) * DAY_MS - offset;
  const since = todayStart - (o.days - 1) * DAY_MS;
  const [cas, full, deltas, scoped, perDay] = await Promise.all([
    store.listCas(),
    store.crlStatus(),
    store.deltaCrlStatus(),
    store.crlScopeStatus(),
    store.revocationsPerDay({ since: new Date(since), utcOffsetMinutes: JST_OFFSET_MINUTES }),
  ]);
  const crls = new Map<string, OverviewCrl[]>();
  const add = (caId: string, c: OverviewCrl) => {
    let l = crls.get(caId);
    if (!l) crls.set(caId, (l = []));
    l.push(c);
  };
  for (const s of full) if (s.latest) add(s.caId, crlOf("full", s.latest, now));
  for (const d of deltas) if (d.delta) add(d.caId, crlOf("delta", d.delta, now));
  for (const s of scoped) if (s.latest) add(s.caId, s.scope === ARL_SCOPE ? crlOf("arl", s.latest, now) : crlOf("partition", s.latest, now, s.scope));
  const counts = new Map<string, Map<string, number>>();
  for (const r of perDay) {
    let m = counts.get(r.caId);
    if (!m) counts.set(r.caId, (m = new Map()));
    const day = jstDay(r.day.getTime());
    m.set(day, (m.get(day) ?? 0) + r.count);
  }
  const window = Array.from({ length: o.days }, (_, i) => jstDay(since + i * DAY_MS));
  return {
    generatedAt: new Date(now).toISOString(),
    from: window[0]!,
    to: window[window.length - 1]!,
    cas: cas
      .map((c) => ({
        id: c.id,
        prefectureCode: c.prefectureCode,
        prefecture: prefectureName(c.prefectureCode),
        purpose: c.purpose,
        crls: (crls.get(c.id) ?? []).sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.municipality ?? "").localeCompare(b.municipality ?? "")),
        revocationsPerDay: window.map((day) => ({ day, count: counts.get(c.id)?.get(day) ?? 0 })),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
}
