/**
 * `--at TIME` of the verifying commands: a day (its start in UTC) or a time with its zone, read strictly by
 * readIsoTime (pki/iso-time.ts, which says why Date's own parser will not do).
 */
import { JpkiError, readIsoTime } from "./lib.js";

const WHY = { "not-a-time": "is not a time", "no-zone": "has no zone (Z or +09:00)", "not-in-calendar": "is no date of the calendar" } as const;

/** A day (YYYY-MM-DD: its start in UTC) or a time with its zone (Z or ±HH:MM). ERR_USAGE for anything else. */
export function parseTimeOption(s: string, option = "--at"): Date {
  const t = readIsoTime(s, { day: true });
  if (t instanceof Date) return t;
  throw new JpkiError("ERR_USAGE", `${option} ${JSON.stringify(s)} ${WHY[t]}: use ISO 8601, e.g. 2026-04-01 or 2026-04-01T09:00:00+09:00`);
}
