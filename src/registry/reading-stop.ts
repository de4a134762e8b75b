/**
 * A long run's stop (SIGTERM, SIGINT: `issue --batch`, `registry import`, `notices ingest`) as its input is read.
 * Each run checked its stop signal between two records: a stop that came while it waited for the next one — a pipe
 * with nothing more to send yet, `jpki issue --batch -` fed by hand or by a process that waits — was acted on only
 * once a line or the end of the input came, which could be never. {@link untilStopped} ends that wait at the signal.
 */
import type { Readable } from "node:stream";

/** The items of a source read up to a stop, and whether the stop ended them. */
export interface StoppableInput<T> extends AsyncIterable<T> {
  /**
   * Whether the signal ended the items before the source's end was seen: checked as each item comes, before it is
   * taken (the item in hand when the stop came is not taken), and, with `release`, while the source waits for one.
   * An item taken is the caller's to finish; an end the source gives at once (a file's) is the input's end.
   */
  readonly stopped: boolean;
}

const STOP = Symbol("stop");

/**
 * `source`'s items until `signal` aborts. With `release`, a wait for the next item is ended by the signal too:
 * `release` then lets go of what the source waits on (releaseStream: the stream is destroyed, what it held unread),
 * and whatever the source's pending read ends with goes nowhere. Without it, only between items: a source that
 * never waits long (a file) is read on until its next item, as before, and closed as a loop's `break` closes it.
 * Iterated once.
 */
export function untilStopped<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined, release?: () => void): StoppableInput<T> {
  const state = { stopped: false };
  return {
    get stopped() {
      return state.stopped;
    },
    [Symbol.asyncIterator]: () => items(source, signal, release, state),
  };
}

/**
 * untilStopped's items. One generator function for the module, not one made per call: a generator object's map is
 * its function's, so each call's own function gave its items a new map, and the caller that reads them (issueBatch,
 * optimised once hot) was deoptimised at its first `next()` of every batch ("wrong map") and compiled again — tens
 * of ms of a V8 helper thread's CPU per batch for a function that size (--trace-deopt, issue bench).
 */
async function* items<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined, release: (() => void) | undefined, state: { stopped: boolean }): AsyncGenerator<T, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  // ended: the source is done (its end, or it threw); abandoned: its read is pending, let go of by `release`
  let ended = false;
  let abandoned = false;
  try {
    for (;;) {
      let r: IteratorResult<T> | typeof STOP;
      try {
        r = signal && release ? await orStop(it.next(), signal) : await it.next();
      } catch (e) {
        ended = true;
        throw e;
      }
      if (r === STOP) {
        state.stopped = true;
        abandoned = true;
        release!();
        return;
      }
      if (r.done) {
        ended = true;
        return;
      }
      // After the read, not before it: an end that is there to be read (a file's) is the input's end, not a stop.
      if (signal?.aborted) {
        state.stopped = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // Closed as a `for await` closes what it reads (readRecords then closes its file). Not awaited when its read
    // is pending: a generator's return waits for that read to settle (the released stream's end, soon).
    if (abandoned) void it.return?.()?.catch(() => undefined);
    else if (!ended) await it.return?.();
  }
}

/**
 * `p`, or STOP once `signal` aborts first; `p`'s outcome then goes nowhere. One listener, removed when `p` settles:
 * a Promise.race against one promise of the stop kept a reaction per item until the stop (a million for a file of
 * a million records). Aborted already (the stop came while the caller worked on the last item), `p` is given one
 * turn of the event loop: an end the stream holds already is the input's end, a wait is not waited.
 */
function orStop<T>(p: Promise<T>, signal: AbortSignal): Promise<T | typeof STOP> {
  return new Promise<T | typeof STOP>((resolve, reject) => {
    const stop = () => resolve(STOP);
    let turn: NodeJS.Immediate | undefined;
    if (signal.aborted) turn = setImmediate(stop);
    else signal.addEventListener("abort", stop, { once: true });
    const settled = () => {
      clearImmediate(turn);
      signal.removeEventListener("abort", stop);
    };
    p.then(
      (v) => {
        settled();
        resolve(v);
      },
      (e: unknown) => {
        settled();
        reject(e);
      },
    );
  });
}

/**
 * What ends a wait on `stream` at a stop: destroyed, so that its pending read ends and nothing holds the process (a
 * paused stdin still waited for its next chunk: the process exited only once a line or the end came).
 */
export function releaseStream(stream: NodeJS.ReadableStream): () => void {
  return () => {
    const s = stream as Partial<Readable>;
    if (typeof s.destroy === "function") s.destroy();
    else stream.pause();
  };
}
