import { performance } from "node:perf_hooks";

/** An injected clock (STYLE.md §7): library code never reads the wall clock directly. */
export interface Clock {
  now(): Date;
  /**
   * now() in ms since the epoch, without a Date made for it: for a hot path that only compares times (a 304's
   * max-age). A clock without it is read through now().
   */
  nowMs?(): number;
}

/** A clock's time in ms since the epoch: its nowMs() when it has one, else now()'s. */
export function clockMs(clock: Clock): () => number {
  return clock.nowMs ? () => clock.nowMs!() : () => clock.now().getTime();
}

/**
 * The wall clock in whole ms, read as the monotonic clock plus an offset taken from the wall clock again each time
 * `resyncMs` has passed on the monotonic one: Date.now() is a call into the runtime (≈ 50 ns on the serving VM),
 * performance.now() a fast API call, and a 304 read the wall clock twice (its max-age, its fetch record and log
 * line). A step of the system clock (settimeofday, an NTP step) shows within `resyncMs`; NTP's slewing moves the
 * monotonic clock alike. `wall` and `mono` are a test's.
 */
export function monotonicWallMs(resyncMs = 1000, wall: () => number = Date.now, mono: () => number = () => performance.now()): () => number {
  // taken at the first reading, not when made (systemClock's is made as this module loads)
  let offset = 0;
  let next = -Infinity;
  return () => {
    const m = mono();
    if (m >= next) {
      offset = wall() - m;
      next = m + resyncMs;
    }
    return Math.floor(m + offset);
  };
}

export const systemClock: Clock = Object.freeze({ now: () => new Date(), nowMs: monotonicWallMs() });

/** A clock that stays where it is put; tests move it explicitly. */
export class FixedClock implements Clock {
  #t: number;
  constructor(at: Date | string | number) {
    this.#t = new Date(at).getTime();
  }
  now(): Date {
    return new Date(this.#t);
  }
  nowMs(): number {
    return this.#t;
  }
  set(at: Date | string | number): void {
    this.#t = new Date(at).getTime();
  }
  advance(ms: number): void {
    this.#t += ms;
  }
}

const UNITS = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["min", 60_000],
  ["s", 1000],
] as const;

/**
 * A duration for a message, its sign dropped: the largest unit it reaches and the next one down when not zero
 * ("2 h 5 min", "5 min", "12 s"), or milliseconds under a second. Truncated, never rounded up: "more than the 5 min
 * allowed" must not be said of 4 min 59.6 s.
 */
export function formatDuration(ms: number): string {
  const a = Math.abs(ms);
  const i = UNITS.findIndex(([, n]) => a >= n);
  if (i < 0) return `${Math.floor(a)} ms`;
  const [unit, n] = UNITS[i]!;
  const q = Math.floor(a / n);
  const next = UNITS[i + 1];
  const r = next ? Math.floor((a - q * n) / next[1]) : 0;
  return r && next ? `${q} ${unit} ${r} ${next[0]}` : `${q} ${unit}`;
}
