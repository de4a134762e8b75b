/**
 * ISO 8601 times as jpki takes them from people and programs (RFC 3339 §5.6: a date, "T" or a space, a time,
 * a zone), read strictly. Date's own parser is lenient: "2026-02-30T00:00:00Z" is 2026-03-02, hour 24 is the
 * next day, "2026-04-01 junk" a day in June, and a time without a zone the machine's local time — each a verdict
 * reached at a time nobody asked for. One reader for the CLI's `--at` and the verifier API's `at` / `since`.
 */

/** Why a text is no time readIsoTime takes. */
export type IsoTimeProblem = "not-a-time" | "no-zone" | "not-in-calendar";

const DAY = /^(\d{4})-(\d\d)-(\d\d)$/;
const INSTANT = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/i;
const ZONELESS = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?$/i;

/**
 * The instant `s` names: a time with its zone (Z or ±HH:MM, seconds and up to nine fraction digits optional) or,
 * with `day`, a bare YYYY-MM-DD (its start in UTC). Every field in range and the day one the month has.
 */
export function readIsoTime(s: string, opts: { readonly day?: boolean } = {}): Date | IsoTimeProblem {
  const day = opts.day ? DAY.exec(s) : null;
  const m = day ?? INSTANT.exec(s);
  if (!m) return ZONELESS.test(s) || (!opts.day && DAY.test(s)) ? "no-zone" : "not-a-time";
  const [, y, mo, d, h = "00", mi = "00", sec = "00"] = m;
  // Each field in range, and the day one the month has (Date.UTC would roll 02-30 over to 03-02).
  const parts = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(sec)] as const;
  const probe = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5]));
  if (probe.getUTCFullYear() !== parts[0] || probe.getUTCMonth() !== parts[1] - 1 || probe.getUTCDate() !== parts[2] || probe.getUTCHours() !== parts[3] || probe.getUTCMinutes() !== parts[4] || probe.getUTCSeconds() !== parts[5]) {
    return "not-in-calendar";
  }
  if (day) return probe;
  const zone = m[8]!;
  if (!/^z$/i.test(zone) && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) return "not-a-time";
  const t = new Date(s.replace(" ", "T"));
  return Number.isNaN(t.getTime()) ? "not-a-time" : t;
}
