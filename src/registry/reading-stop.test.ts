/**
 * untilStopped (reading-stop.ts): a long run's input read up to its stop. The stop was checked between two records
 * only: one that came while the source waited for its next record (a pipe with nothing to send) was acted on when a
 * record or the end came, which could be never.
 */
import { PassThrough } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { describe, expect, it } from "vitest";
import { readRecords } from "./import.js";
import { releaseStream, untilStopped } from "./reading-stop.js";

/** A source that yields `items`, then waits until `end()` (a pipe whose writer is quiet); `closed` once returned. */
function waitingSource<T>(items: readonly T[]) {
  let end!: () => void;
  const ended = new Promise<IteratorResult<T>>((resolve) => (end = () => resolve({ done: true, value: undefined })));
  const state = { closed: false, reads: 0 };
  const source: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        state.reads++;
        return state.reads <= items.length ? { done: false, value: items[state.reads - 1]! } : ended;
      },
      return: async () => {
        state.closed = true;
        return { done: true, value: undefined };
      },
    }),
  };
  return { source, end, state };
}

describe("untilStopped", () => {
  it("with release, a stop while the source waits ends the items at once: stopped, the source released once, the wait abandoned", async () => {
    const { source, end, state } = waitingSource([1, 2]);
    const stop = new AbortController();
    let released = 0;
    const input = untilStopped(source, stop.signal, () => released++);
    const got: number[] = [];
    for await (const n of input) {
      got.push(n);
      // the second taken: the source now waits for ever, and the stop comes during that wait
      if (n === 2) setImmediate(() => stop.abort());
    }
    expect(got).toEqual([1, 2]);
    expect(input.stopped).toBe(true);
    expect(released).toBe(1);
    end(); // what the abandoned read ends with goes nowhere
    await new Promise((r) => setImmediate(r));
    expect(state.closed).toBe(true); // closed once its pending read settled
  });

  it("a stop between two items: the item in hand is not taken; an end there to be read is the input's end, not a stop", async () => {
    const stop = new AbortController();
    const a = untilStopped(waitingSource([1, 2, 3]).source, stop.signal);
    const got: number[] = [];
    for await (const n of a) {
      got.push(n);
      if (n === 1) stop.abort();
    }
    expect(got).toEqual([1]);
    expect(a.stopped).toBe(true);

    const late = new AbortController();
    const ended = waitingSource([1, 2]);
    ended.end();
    const b = untilStopped(ended.source, late.signal, () => undefined);
    const all: number[] = [];
    for await (const n of b) {
      all.push(n);
      if (n === 2) late.abort(); // after the last item; the end is there to be read
    }
    expect(all).toEqual([1, 2]);
    expect(b.stopped).toBe(false);
  });

  it("without a stop: every item, the source's error thrown as it was, and a caller's break closes the source", async () => {
    const whole = untilStopped((async function* () { yield* [1, 2, 3]; })(), undefined);
    const got: number[] = [];
    for await (const n of whole) got.push(n);
    expect(got).toEqual([1, 2, 3]);
    expect(whole.stopped).toBe(false);

    const broken = untilStopped((async function* () {
      yield 1;
      throw new Error("EIO");
    })(), new AbortController().signal, () => undefined);
    await expect((async () => {
      for await (const _ of broken) void _;
    })()).rejects.toThrow("EIO");

    const { source, state } = waitingSource([1, 2, 3]);
    for await (const n of untilStopped(source, new AbortController().signal, () => undefined)) if (n === 2) break;
    expect(state.closed).toBe(true);
  });

  it("every call's items share one object shape: a reader optimised on one batch is not deoptimised by the next", async () => {
    // A generator object's map is its generator function's: one made per call gave each batch's items a new map, and
    // issueBatch, optimised on the last batch, was deoptimised at its first next() of each ("wrong map") and
    // compiled again. %HaveSameMap needs --allow-natives-syntax, which applies to code compiled after it is set.
    setFlagsFromString("--allow-natives-syntax");
    const haveSameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: object, b: object) => boolean;
    const items = () => untilStopped((async function* () { yield 1; })(), undefined)[Symbol.asyncIterator]();
    const [a, b] = [items(), items()];
    expect(haveSameMap(a, b)).toBe(true);
    // and the check can tell: two generator functions' objects do not share one
    expect(haveSameMap(a, (async function* () { yield 1; })())).toBe(false);
    await Promise.all([a.return!(undefined), b.return!(undefined)]);
  });

  it("records read from a stream that waits (stdin, a pipe): the stop destroys the stream and the records read so far stand", async () => {
    const pipe = new PassThrough();
    pipe.write('{"n":1}\n{"n":2}\n');
    const stop = new AbortController();
    const input = untilStopped(readRecords(pipe, { format: "jsonl" }), stop.signal, releaseStream(pipe));
    const lines: number[] = [];
    for await (const r of input) {
      lines.push(r.line);
      if (r.line === 2) setImmediate(() => stop.abort());
    }
    expect(lines).toEqual([1, 2]);
    expect(input.stopped).toBe(true);
    expect(pipe.destroyed).toBe(true);
  });
});
