/**
 * boundedBody, the body reader the CRL cache and the provider's follower share: the body is held once. Fed a
 * response of known pieces and an allocator that records what it gives, each test sees how many body-sized buffers
 * were made and whether the body returned is one of them; a body that is not the length its Content-Length says,
 * or is past the bound, is refused with its own error.
 */
import { describe, expect, test } from "vitest";
import { BodyLengthMismatch, BodyTooLarge, DownloadTimeout, boundedBody, clockedFetch } from "./download-clock.js";

/** A response whose body is `pieces`, one per read, recording whether the reader cancelled it. */
function pieced(pieces: readonly Uint8Array[], headers: Record<string, string>) {
  let i = 0;
  const seen = { cancelled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (i < pieces.length) c.enqueue(pieces[i++]!);
        else c.close();
      },
      cancel() {
        seen.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { res: new Response(body, { status: 200, headers }), seen };
}

/** An allocator that records the buffers it gives. */
function recording() {
  const made: Buffer[] = [];
  return {
    made,
    alloc: (size: number) => {
      const b = Buffer.allocUnsafeSlow(size);
      made.push(b);
      return b;
    },
  };
}

/** 3 pieces of 40,000 bytes and one of 123: a body of 120,123 bytes, each byte its offset mod 251. */
const PIECES = [0, 1, 2, 3].map((k) => Uint8Array.from({ length: k < 3 ? 40_000 : 123 }, (_, j) => (k * 40_000 + j) % 251));
const WHOLE = Buffer.concat(PIECES);
const MAX = 1024 * 1024;

describe("boundedBody: the body held once", () => {
  test("with a Content-Length: one buffer of that length, allocated up front, is the body returned (no join after)", async () => {
    const { res } = pieced(PIECES, { "content-length": String(WHOLE.length) });
    const a = recording();
    const body = await boundedBody(res, MAX, "the CRL", a.alloc);
    expect(a.made.map((b) => b.length)).toEqual([WHOLE.length]);
    expect(body.buffer).toBe(a.made[0]!.buffer);
    expect(body.byteOffset).toBe(0);
    expect(body.buffer.byteLength).toBe(WHOLE.length);
    expect(body.equals(WHOLE)).toBe(true);
  });

  test("without a Content-Length (or with a content coding, whose Content-Length is the coded one): one buffer of the length received, made at the end", async () => {
    for (const headers of [{}, { "content-encoding": "gzip", "content-length": "133" }] as Record<string, string>[]) {
      const { res } = pieced(PIECES, headers);
      const a = recording();
      const body = await boundedBody(res, MAX, "the CRL", a.alloc);
      expect(a.made.map((b) => b.length)).toEqual([WHOLE.length]);
      expect(body.buffer).toBe(a.made[0]!.buffer);
      expect(body.equals(WHOLE)).toBe(true);
    }
  });
});

describe("boundedBody: a body not the length it says, or past the bound", () => {
  test("one that ends short of its Content-Length is refused, saying how much came", async () => {
    const { res } = pieced(PIECES, { "content-length": String(WHOLE.length + 1) });
    const e = await boundedBody(res, MAX, "the CRL").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BodyLengthMismatch);
    expect(e).toMatchObject({ got: "short", declared: WHOLE.length + 1, message: `the CRL ended after ${WHOLE.length} of the ${WHOLE.length + 1} bytes its Content-Length says` });
  });

  test("one that goes past its Content-Length is refused at the piece that does, and the rest is not read", async () => {
    const { res, seen } = pieced([...PIECES, new Uint8Array(1)], { "content-length": "80000" });
    const e = await boundedBody(res, MAX, "the CRL").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BodyLengthMismatch);
    expect(e).toMatchObject({ got: "long", declared: 80_000, message: "the CRL goes on past the 80000 bytes its Content-Length says" });
    expect(seen.cancelled).toBe(true);
  });

  test("past the bound: refused before a byte is read when Content-Length says so, as it comes when none does", async () => {
    const declared = pieced(PIECES, { "content-length": String(WHOLE.length) });
    const a = recording();
    await expect(boundedBody(declared.res, WHOLE.length - 1, "the CRL", a.alloc)).rejects.toThrow(new BodyTooLarge("the CRL", WHOLE.length - 1, WHOLE.length));
    expect(declared.seen.cancelled).toBe(true);
    const undeclared = pieced(PIECES, {});
    await expect(boundedBody(undeclared.res, WHOLE.length - 1, "the CRL", a.alloc)).rejects.toThrow(new BodyTooLarge("the CRL", WHOLE.length - 1));
    expect(undeclared.seen.cancelled).toBe(true);
    expect(a.made).toEqual([]);
  });
});

/**
 * The clocks end a download whatever the source does with the signal: undici 6 has races in which an abort leaves a
 * body it is still receiving readable (a read in CI waited minutes on a trickle past a 500 ms total). These sources
 * never heed the signal, so only the clocks' own ending of the read (and of the fetch) can stop them.
 */
describe("clockedFetch: the clocks end a source that does not heed its signal", () => {
  /** A fetch whose answer comes after `answerMs` and whose body is a byte every 20 ms, `bytes` of them; the signal is ignored. */
  function deaf(answerMs: number, bytes: number) {
    let answered!: () => void;
    const seen = { cancelled: false, sent: 0, answered: new Promise<void>((r) => (answered = r)) };
    const fetch = (async () => {
      await new Promise((r) => setTimeout(r, answerMs));
      answered();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 20));
          if (seen.sent++ < bytes) c.enqueue(Uint8Array.of(0x30));
          else c.close();
        },
        cancel() {
          seen.cancelled = true;
        },
      });
      return new Response(body, { status: 200 });
    }) as unknown as typeof globalThis.fetch;
    return { fetch, seen };
  }

  test("a body that keeps coming is given up at the total, and its source cancelled", async () => {
    const { fetch, seen } = deaf(0, 200); // ~4 s of bytes, never 200 ms apart
    const res = await clockedFetch(fetch, "http://x/", {}, { inactivityMs: 1000, totalMs: 150 });
    const err = await boundedBody(res, MAX, "the CRL").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DownloadTimeout);
    expect(err).toMatchObject({ kind: "total", ms: 150 });
    expect(seen.cancelled).toBe(true);
    expect(seen.sent).toBeLessThan(200);
  });

  test("an answer that comes after the timeout is not waited for, and its body is cancelled when it comes", async () => {
    const { fetch, seen } = deaf(400, 5);
    const err = await clockedFetch(fetch, "http://x/", {}, { inactivityMs: 100, totalMs: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ kind: "inactivity", ms: 100 });
    expect(seen.cancelled).toBe(false);
    await seen.answered;
    await new Promise((r) => setImmediate(r)); // the late answer's promise handlers have run
    expect(seen.cancelled).toBe(true);
  });
});
