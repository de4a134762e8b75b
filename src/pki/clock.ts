/** An injected clock (STYLE.md §7): library code never reads the wall clock directly. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = Object.freeze({ now: () => new Date() });

/** A clock that stays where it is put; tests move it explicitly. */
export class FixedClock implements Clock {
  #t: number;
  constructor(at: Date | string | number) {
    this.#t = new Date(at).getTime();
  }
  now(): Date {
    return new Date(this.#t);
  }
  set(at: Date | string | number): void {
    this.#t = new Date(at).getTime();
  }
  advance(ms: number): void {
    this.#t += ms;
  }
}
