/**
 * Proleptic Gregorian calendar arithmetic for the times certificates and CRLs carry (RFC 5280 §4.1.2.5, §5.1.2.6)
 * and the ISO 8601 form messages show them in — by integer arithmetic (H. Hinnant, "chrono-Compatible Low-Level
 * Date Algorithms"), because Date.UTC and Date#toISOString cost more than a whole CRL lookup.
 */

/** Days from 1970-01-01 to a date, month 1–12; days beyond their month carry over as Date.UTC carries them. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * Whether the fields name a real instant: month 1–12, a day of that month, hour 0–23, minute and second 0–59
 * (RFC 5280 §4.1.2.5: times are Zulu, seconds present, no leap second). Date.UTC and daysFromCivil carry what is
 * out of range into the next field — day 99 of January into April — so a time read unchecked is another time.
 */
export function civilFieldsValid(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31);
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** `d.toISOString()` (YYYY-MM-DDTHH:mm:ss.sssZ) for years 0–9999; other years and invalid dates as Date gives them. */
export function isoTime(d: Date): string {
  const ms = d.getTime();
  // years 0000–9999 only; Date#toISOString writes the others with six digits and a sign (or throws)
  if (!(ms >= -62_167_219_200_000 && ms < 253_402_300_800_000)) return d.toISOString();
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const mi = Math.floor(rest / 60_000);
  rest -= mi * 60_000;
  const s = Math.floor(rest / 1000);
  const milli = rest - s * 1000;
  return `${String(year).padStart(4, "0")}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(mi)}:${pad2(s)}.${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}
