/**
 * Issue 8: the sweep of the registry side's issuance information (registry/issuance-sweep.ts). The store's part
 * (which rows go, on both backends) is in the store contract; here, on SQLite: the counter decides exactly as
 * it did before the sweep, and the daily schedule sweeps when its injected clock says so, never throwing.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import { seedSweepFixture } from "../store/contract.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/types.js";
import { runProcedures, type CounterProcedure } from "./counter.js";
import { IssuanceSweepSchedule, sweepIssuanceInformation, type IssuanceSweepEvent } from "./issuance-sweep.js";
import { makeResidentCode } from "./resident-code.js";

const DAY = 24 * 3600_000;
const CODES = [1, 2, 3, 4].map((i) => makeResidentCode(`200000000${i}`)) as [string, string, string, string];

/**
 * A counter run's outcome with its notice ids masked: two stores key their counter notice ids each with its own
 * random key (registry/counter.ts counterNoticeId), so the same procedures get different ids there.
 */
function unkeyed<T>(outcome: T): unknown {
  return JSON.parse(JSON.stringify(outcome).replace(/ctr:v2:[0-9a-f]{32}/g, "ctr:v2:(id)"));
}

async function seeded(): Promise<{ s: Store; f: Awaited<ReturnType<typeof seedSweepFixture>> }> {
  const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-sweep-")), "jpki.db"), { create: true });
  return { s, f: await seedSweepFixture(s, CODES) };
}

describe("sweepIssuanceInformation", () => {
  it("removes what expired more than a day ago and revoked certificates' rows; the counter then decides every procedure as before", async () => {
    const swept = await seeded();
    const control = await seeded();
    // a day after the fixture's cut-off: the default grace puts the cut-off exactly there
    const now = new Date(swept.f.cutoff.getTime() + DAY);
    const r = await sweepIssuanceInformation(swept.s, { now });
    expect(r).toEqual({ removed: swept.f.expired, expiredBefore: swept.f.cutoff, stopped: false });
    expect((await Promise.all(CODES.map((c) => swept.s.registeredIssuances(c)))).flat().map((x) => x.serial)).toEqual(swept.f.live);
    // The same procedures at the same moment on the swept store and on an unswept copy: the same notices (or
    // none), the same outcomes. A rename affects the signature certificates, a death every certificate.
    const procedures: CounterProcedure[] = CODES.flatMap((residentCode) => [
      { kind: "rename", residentCode, name: "佐藤　花子" },
      { kind: "death", residentCode },
    ]);
    const a = await runProcedures(swept.s, procedures, { now });
    const b = await runProcedures(control.s, procedures, { now });
    expect(unkeyed(a)).toEqual(unkeyed(b));
    expect(a.errors).toEqual([]);
    // not vacuous: the live certificates' holders got notices (s1: rename + death, s4: death of its live authentication one)
    expect(a.notices.map((n) => [n.residentCode, n.kind])).toEqual([[CODES[0], "name-change"], [CODES[0], "death"], [CODES[3], "death"]]);
    await swept.s.close();
    await control.s.close();
  });

  it("refuses a negative grace period", async () => {
    const { s } = await seeded();
    await expect(sweepIssuanceInformation(s, { now: new Date(), graceMs: -1 })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_USAGE"));
    await s.close();
  });
});

describe("IssuanceSweepSchedule (injected clock)", () => {
  it("sweeps ten minutes after start, then once a day, one sweep at a time; a failure is reported and tried again a day later", async () => {
    const { s, f } = await seeded();
    // started ten minutes before the first sweep is due, which lands a day after the fixture's cut-off
    const clock = new FixedClock(f.cutoff.getTime() + DAY - 10 * 60_000);
    const events: IssuanceSweepEvent[] = [];
    const schedule = new IssuanceSweepSchedule({ store: s, clock, onSweep: (e) => events.push(e) });
    expect(schedule.poke()).toBe(false);
    clock.advance(10 * 60_000 - 1);
    expect(schedule.poke()).toBe(false);
    clock.advance(1);
    expect(schedule.poke()).toBe(true);
    expect(schedule.poke()).toBe(false); // running: not a second one
    await schedule.settled();
    expect(events).toEqual([{ kind: "swept", removed: f.expired, expiredBefore: f.cutoff, stopped: false, nextAt: new Date(clock.now().getTime() + DAY) }]);
    clock.advance(DAY - 1);
    expect(schedule.poke()).toBe(false);
    clock.advance(1);
    expect(schedule.poke()).toBe(true);
    await schedule.settled();
    // the cut-off moved a day: the certificate that expired exactly at the first one goes now
    expect(events[1]).toMatchObject({ kind: "swept", removed: 1, expiredBefore: new Date(f.cutoff.getTime() + DAY) });
    // the store fails (closed here): reported as an event, not thrown, and not retried before the next day
    await s.close();
    clock.advance(DAY);
    expect(schedule.poke()).toBe(true);
    await schedule.settled();
    expect(events[2]).toMatchObject({ kind: "failed", nextAt: new Date(clock.now().getTime() + DAY) });
    expect(isJpkiError((events[2] as { error: unknown }).error)).toBe(true);
    clock.advance(DAY - 1);
    expect(schedule.poke()).toBe(false);
    expect(events).toHaveLength(3);
  });

  it("sweeps as of the time that has really passed since it started when the wall clock jumps ahead: a live certificate's information stays", async () => {
    const { s, f } = await seeded();
    const control = await seeded();
    // The wall clock jumps two years ahead (a mis-set clock, a bad NTP step) while the monotonic clock stands still:
    // the sweep due now must not take the live certificates' rows (they expire within those two years), or their
    // holders' changes would send the CA side no notice and the certificates would stay valid.
    const start = f.cutoff.getTime() + DAY;
    const clock = new FixedClock(start);
    let elapsed = 5_000;
    const events: IssuanceSweepEvent[] = [];
    const schedule = new IssuanceSweepSchedule({ store: s, clock, elapsedMs: () => elapsed, firstDelayMs: 0, onSweep: (e) => events.push(e) });
    clock.advance(2 * 365 * DAY);
    expect(schedule.poke()).toBe(true);
    await schedule.settled();
    expect(events).toEqual([{ kind: "swept", removed: f.expired, expiredBefore: f.cutoff, stopped: false, nextAt: new Date(start + DAY) }]);
    expect((await Promise.all(CODES.map((c) => s.registeredIssuances(c)))).flat().map((x) => x.serial)).toEqual(f.live);
    // and the counter sends the same notices as on a store never swept
    const procedures: CounterProcedure[] = CODES.map((residentCode) => ({ kind: "death", residentCode }));
    const now = new Date(start);
    const notices = await runProcedures(s, procedures, { now });
    expect(unkeyed(notices)).toEqual(unkeyed(await runProcedures(control.s, procedures, { now })));
    expect(notices.notices.length).toBeGreaterThan(0);
    // The clock set right again is believed; the next sweep is due a day after the time the first was taken at
    // (not two years on), and sweeps as of the wall clock again.
    clock.set(start + DAY - 1);
    elapsed += DAY - 1;
    expect(schedule.poke()).toBe(false);
    clock.advance(1);
    elapsed += 1;
    expect(schedule.poke()).toBe(true);
    await schedule.settled();
    expect(events[1]).toMatchObject({ kind: "swept", expiredBefore: new Date(f.cutoff.getTime() + DAY) });
    await s.close();
    await control.s.close();
  });

  it("does not start once its signal has aborted", async () => {
    const { s } = await seeded();
    const stop = new AbortController();
    const schedule = new IssuanceSweepSchedule({ store: s, clock: new FixedClock(0), firstDelayMs: 0, signal: stop.signal });
    stop.abort();
    expect(schedule.poke()).toBe(false);
    await s.close();
  });
});
