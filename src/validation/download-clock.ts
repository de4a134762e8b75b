/**
 * The clocks of one HTTP download: an inactivity timeout, re-armed by every byte that comes (connecting, awaiting
 * the answer, between two pieces of the body), and a total. One total short enough to catch a stalled connection
 * soon fails a national CRL of tens of MB over a slow but live link; the inactivity timeout catches the stall
 * however long the download has run, and the generous total ends a trickle that never stops.
 *
 * Shared by the revocation sources (revocation-sources.ts: `jpki verify`, the validation engine) and the private
 * provider's transport (provider/follow.ts), so both give up on an endpoint alike. Here, below both. So is the bound
 * on a body's size (boundedBody): the longer a download may run, the more an endpoint gone wrong can send.
 */
import { JpkiError } from "../errors.js";

export interface DownloadTimeouts {
  /** no byte for this long: the connection is taken for stalled */
  readonly inactivityMs: number;
  /** however steadily the bytes come, the download ends after this long */
  readonly totalMs: number;
}

/**
 * A download given up for time: the abort reason of its signal, so fetch and the body's reads fail with it. Named
 * TimeoutError as AbortSignal.timeout's reason is, so a client handed a clocked fetch (OcspClient) reads it as a
 * timeout.
 */
/**
 * Why a fetch failed, in words that name it: undici's error says only "fetch failed" (a TypeError) and keeps the
 * reason — ECONNREFUSED, ENOTFOUND, a reset, a certificate the TLS check refused, a redirect refused — in `cause`.
 */
export function fetchFailureReason(e: unknown): string {
  const err = e as (Error & { cause?: { code?: string; message?: string } }) | undefined;
  if (err?.name === "TimeoutError" || err?.name === "AbortError") return `cut off: ${err.message}`;
  const code = err?.cause?.code;
  const message = err?.cause?.message;
  if (code && message) return message.includes(code) ? message : `${code}: ${message}`;
  return code ?? message ?? err?.message ?? String(e);
}

export class DownloadTimeout extends Error {
  override readonly name = "TimeoutError";
  constructor(
    readonly kind: "inactivity" | "total",
    readonly ms: number,
  ) {
    super(kind === "inactivity" ? `no byte from the endpoint for ${ms} ms` : `not complete within ${ms} ms, though bytes kept coming`);
  }
}

/** The two timeouts, checked (ERR_USAGE, the option names given): a number of milliseconds > 0 each. */
export function checkDownloadTimeouts(t: DownloadTimeouts, names: { inactivity: string; total: string }): DownloadTimeouts {
  for (const [name, v] of [[names.inactivity, t.inactivityMs], [names.total, t.totalMs]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new JpkiError("ERR_USAGE", `${name} must be a number of milliseconds > 0`);
  }
  return { inactivityMs: t.inactivityMs, totalMs: t.totalMs };
}

export interface DownloadClock {
  /** aborted with a DownloadTimeout when either clock runs out */
  readonly signal: AbortSignal;
  /** a byte came: re-arms the inactivity clock */
  touch(): void;
  /** the answer is read, cancelled or failed: disarms both */
  stop(): void;
}

/** One download's clocks, armed now. */
export function downloadClock(t: DownloadTimeouts): DownloadClock {
  const ctl = new AbortController();
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearTimeout(idle);
    clearTimeout(total);
  };
  const fire = (kind: DownloadTimeout["kind"], ms: number) => () => {
    stop();
    ctl.abort(new DownloadTimeout(kind, ms));
  };
  // unref: a clock must not keep a process alive that has nothing else to wait for
  const idle = setTimeout(fire("inactivity", t.inactivityMs), t.inactivityMs).unref();
  const total = setTimeout(fire("total", t.totalMs), t.totalMs).unref();
  return { signal: ctl.signal, touch: () => void (stopped || idle.refresh()), stop };
}

/**
 * The response with its body read through `clock`: each piece re-arms the inactivity timeout, the end, an error or a
 * cancel stops both. A body read cut off by the clock fails with the clock's DownloadTimeout.
 */
export function clocked(res: Response, clock: DownloadClock): Response {
  clock.touch(); // the status and headers are bytes
  if (!res.body) {
    clock.stop();
    return res;
  }
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await readUntilAborted(reader, clock.signal);
        } catch (e) {
          clock.stop();
          throw clock.signal.aborted ? clock.signal.reason : e;
        }
        if (r.done) {
          clock.stop();
          c.close();
          return;
        }
        clock.touch();
        c.enqueue(r.value);
      },
      cancel(reason) {
        clock.stop();
        return reader.cancel(reason);
      },
    },
    // read only when the reader asks: the clock measures the endpoint, not a buffer filling ahead of the reader
    { highWaterMark: 0 },
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * The next read of `reader`, or the signal's reason once it fires, whichever comes first; the source is then
 * cancelled (its connection closed). The clocks end a read themselves rather than trust the source to heed the
 * signal: undici 6 has races in which an abort does not error a body it is still receiving (nodejs/undici#4089),
 * and a read left pending there waits on a trickle for as long as it lasts — minutes past a 500 ms total in CI.
 */
function readUntilAborted<T>(reader: ReadableStreamDefaultReader<T>, signal: AbortSignal): ReturnType<ReadableStreamDefaultReader<T>["read"]> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      reader.cancel(signal.reason).catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    reader.read().then(
      (r) => (signal.removeEventListener("abort", onAbort), resolve(r)),
      (e: unknown) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}

/**
 * `fetch`'s answer, or the signal's reason once it fires, whichever comes first (as readUntilAborted, for a fetch
 * that does not heed its signal); an answer that comes after has its body cancelled.
 */
export function fetchUntilAborted(p: Promise<Response>, signal: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      p.then((late) => late.body?.cancel(signal.reason).catch(() => undefined), () => undefined);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (r) => (signal.removeEventListener("abort", onAbort), resolve(r)),
      (e: unknown) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}

/**
 * One request on its own clocks: the answer, its body still to be read through them; or the failure, a
 * DownloadTimeout when the clocks ended it. Any signal in `init` is replaced by the clocks'.
 */
export async function clockedFetch(fetch: typeof globalThis.fetch, url: string, init: RequestInit, t: DownloadTimeouts): Promise<Response> {
  const clock = downloadClock(t);
  try {
    return clocked(await fetchUntilAborted(fetch(url, { ...init, signal: clock.signal }), clock.signal), clock);
  } catch (e) {
    clock.stop();
    throw clock.signal.aborted ? clock.signal.reason : e;
  }
}

/** A body given up past the bytes accepted: the message says how many. */
export class BodyTooLarge extends Error {
  constructor(
    what: string,
    readonly max: number,
    declared?: number,
  ) {
    super(declared !== undefined ? `${what} is ${declared} bytes, more than the ${max} bytes accepted` : `${what} is more than the ${max} bytes accepted`);
  }
}

/**
 * A body whose length is not the Content-Length it came with: cut short (the connection ended early), or longer
 * (the endpoint misframes its answers). Either way it is not the CRL the endpoint meant to send.
 */
export class BodyLengthMismatch extends Error {
  constructor(
    what: string,
    readonly declared: number,
    readonly got: "short" | "long",
    received: number,
  ) {
    super(got === "short" ? `${what} ended after ${received} of the ${declared} bytes its Content-Length says` : `${what} goes on past the ${declared} bytes its Content-Length says`);
  }
}

/**
 * The length the body will have, when the headers say it: a Content-Length of digits only, and no content coding
 * (fetch decodes a gzip body, and its Content-Length stays the coded one).
 */
function framedLength(h: Headers): number | undefined {
  const cl = h.get("content-length");
  const coding = h.get("content-encoding")?.trim().toLowerCase();
  if (cl === null || !/^\d+$/.test(cl) || (coding !== undefined && coding !== "" && coding !== "identity")) return undefined;
  const n = Number(cl);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The body, read piece by piece and given up past `max` bytes (BodyTooLarge; one whose Content-Length says so
 * before a byte is read): an endpoint gone wrong must not exhaust memory. `what` names it in the message.
 *
 * Held once: a CRL near `max` (256 MiB) must not cost twice that at the join. With a Content-Length within `max`,
 * the buffer is allocated at that length before the first piece and each piece is copied into it as it comes; a
 * body that goes past it or ends short of it is refused (BodyLengthMismatch). Without one (or with a content coding),
 * the pieces are kept and joined at the end into one buffer of the exact length: twice the body, but only for that
 * copy. A buffer grown geometrically would peak higher: each growth holds the old buffer and the new (2.5 to 3 times
 * the body when it ends just past a step, for a factor of 1.5 to 2), and its result would then either keep the unused
 * capacity for as long as the CRL is cached or cost one more copy to trim. An endpoint that wants its CRL taken in
 * one allocation says its length, as jpki serve does.
 *
 * `alloc` gives the body's buffer (one per call), injected so a test can count the body-sized allocations; its
 * default has an ArrayBuffer of its own (a pooled small one would keep the pool alive as long as the CRL), left
 * unfilled since every byte is written before the buffer is returned.
 */
export async function boundedBody(res: Response, max: number, what: string, alloc: (size: number) => Buffer = Buffer.allocUnsafeSlow): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new BodyTooLarge(what, max, declared);
  }
  const length = framedLength(res.headers);
  // A throw inside the loops below cancels the body: leaving a for-await over a ReadableStream cancels it (the
  // loop holds the stream's lock, so a res.body.cancel() there could only fail).
  if (length !== undefined) {
    const body = alloc(length);
    let n = 0;
    for await (const c of res.body ?? []) {
      if (n + c.length > length) throw new BodyLengthMismatch(what, length, "long", n + c.length);
      body.set(c, n);
      n += c.length;
    }
    if (n < length) throw new BodyLengthMismatch(what, length, "short", n);
    return body;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body ?? []) {
    n += c.length;
    if (n > max) throw new BodyTooLarge(what, max);
    chunks.push(Buffer.from(c));
  }
  const body = alloc(n);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}
