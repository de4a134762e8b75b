/**
 * Validity periods (shared/spec/JPKI.md "Eras"): three years from issuance in the seed's design, or
 * until the fifth birthday after issuance as today. Both end at 23:59:59 JST (14:59:59Z) of their day,
 * like J-LIS's certificates, and never outlive the issuing CA.
 */
import type { ValidityRule } from "../workspace/config.js";
import { asJst, JST_OFFSET_MS } from "../pki/jst.js";

/** The JST calendar date of an instant (the object is shared: read it, do not keep or change it). */
function jstDate(d: Date): { readonly y: number; readonly m: number; readonly day: number } {
  // Issuance asks for every certificate, nearly always about the same day: the last day's answer is kept (a Date and
  // an object less a certificate). An invalid Date's day is NaN, never equal to itself: computed each time, as before.
  const dayIndex = Math.floor((d.getTime() + JST_OFFSET_MS) / 86_400_000);
  if (dayIndex !== lastDayIndex) {
    const j = asJst(d);
    lastDate = { y: j.getUTCFullYear(), m: j.getUTCMonth(), day: j.getUTCDate() };
    lastDayIndex = dayIndex;
  }
  return lastDate;
}

let lastDayIndex = NaN;
let lastDate: { readonly y: number; readonly m: number; readonly day: number } = { y: NaN, m: NaN, day: NaN };

/** 23:59:59 JST of a calendar date; Feb 29 in a common year becomes Feb 28. */
export function endOfJstDay(y: number, m: number, day: number): Date {
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m, Math.min(day, last), 14, 59, 59));
}

/**
 * A CA certificate's validity (prefecture CAs, the Bridge CA, a provider's CA): from `now` to the second (DER
 * times carry no fraction) to 23:59:59 JST of the same calendar date `years` on.
 */
export function caValidity(now: Date, years: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const { y, m, day } = jstDate(notBefore);
  return { notBefore, notAfter: endOfJstDay(y + years, m, day) };
}

export function notAfterFor(opts: { rule: ValidityRule; issuedAt: Date; birthDate: string; caNotAfter: Date }): Date {
  const { y, m, day } = jstDate(opts.issuedAt);
  let end: Date;
  if (opts.rule === "3y") {
    end = endOfJstDay(y + 3, m, day);
  } else {
    const [, bm, bd] = opts.birthDate.split("-").map(Number) as [number, number, number];
    // The birthday this year counts when it is still ahead of the issuance day.
    const thisYearsIsAhead = bm - 1 > m || (bm - 1 === m && bd > day);
    end = endOfJstDay(y + (thisYearsIsAhead ? 4 : 5), bm - 1, bd);
  }
  return end.getTime() > opts.caNotAfter.getTime() ? opts.caNotAfter : end;
}
