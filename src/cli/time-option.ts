/**
 * `--at TIME` of the verifying commands: ISO 8601 (RFC 3339), read strictly. Date's own parser is lenient:
 * "2026-04-01 junk" is 2026-06-04, "2026-02-30" is 2026-03-02, and a time without a zone is the machine's local
 * time, so a verdict would be reached at a time nobody asked for.
 */
import { JpkiError } from "../errors.js";

const DAY = /^(\d{4})-(\d\d)-(\d\d)$/;
const INSTANT = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d)$/i;

/** A day (YYYY-MM-DD: its start in UTC) or a time with its zone (Z or ±HH:MM). ERR_USAGE for anything else. */
export function parseTimeOption(s: string, option = "--at"): Date {
  const bad = (why: string) =>
    new JpkiError("ERR_USAGE", `${option} ${JSON.stringify(s)} ${why}: use ISO 8601, e.g. 2026-04-01 or 2026-04-01T09:00:00+09:00`);
  const day = DAY.exec(s);
  const m = day ?? INSTANT.exec(s);
  if (!m) {
    if (/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(s)) throw bad("has no zone (Z or +09:00)");
    throw bad("is not a time");
  }
  const [, y, mo, d, h = "00", mi = "00", sec = "00"] = m;
  // Each field in range, and the day one the month has (Date.UTC would roll 02-30 over to 03-02).
  const parts = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(sec)] as const;
  const probe = new Date(Date.UTC(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5]));
  if (probe.getUTCFullYear() !== parts[0] || probe.getUTCMonth() !== parts[1] - 1 || probe.getUTCDate() !== parts[2] || probe.getUTCHours() !== parts[3] || probe.getUTCMinutes() !== parts[4] || probe.getUTCSeconds() !== parts[5]) {
    throw bad("is no date of the calendar");
  }
  if (day) return probe;
  const zone = m[8]!;
  if (!/^z$/i.test(zone) && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) throw bad("has no valid zone");
  const t = new Date(s.replace(" ", "T"));
  if (Number.isNaN(t.getTime())) throw bad("is not a time");
  return t;
}
