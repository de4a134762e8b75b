/**
 * Conditional and range requests, RFC 9110 §13 and §14 (examples from §14.1.2 for the ranges).
 */
import { describe, expect, it } from "vitest";
import { decide, entityTags, httpDate, parseHttpDate, parseRange, type Representation } from "./http-cache.js";
import { threadCpuMs } from "../../test/thread-cpu.js";

const rep: Representation = { etag: '"abc"', lastModified: new Date("2026-11-30T10:00:00.700Z"), size: 10_000 };
const lm = httpDate(rep.lastModified);

describe("preconditions", () => {
  it("If-None-Match: a matching tag (weak comparison, lists, *) is a 304; another tag is a 200", () => {
    expect(decide("GET", { "if-none-match": '"abc"' }, rep)).toEqual({ status: 304 });
    expect(decide("GET", { "if-none-match": 'W/"abc"' }, rep)).toEqual({ status: 304 });
    expect(decide("GET", { "if-none-match": '"x", "abc"' }, rep)).toEqual({ status: 304 });
    expect(decide("HEAD", { "if-none-match": "*" }, rep)).toEqual({ status: 304 });
    expect(decide("GET", { "if-none-match": '"abd"' }, rep)).toEqual({ status: 200 });
  });

  it("If-Modified-Since compares whole seconds and is ignored beside If-None-Match", () => {
    expect(decide("GET", { "if-modified-since": lm }, rep)).toEqual({ status: 304 });
    expect(decide("GET", { "if-modified-since": httpDate(new Date(rep.lastModified.getTime() - 1000)) }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { "if-modified-since": "not a date" }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { "if-modified-since": lm, "if-none-match": '"other"' }, rep)).toEqual({ status: 200 });
  });

  it("reads only HTTP-dates (IMF-fixdate, RFC 850, asctime, all UTC): a precondition with anything else is ignored", () => {
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(784111777);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT")).toBe(784111777);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(784111777);
    for (const bad of ["2100", "1", "tomorrow 2030", "Sun, 31 Feb 2100 08:49:37 GMT", "Sun, 06 Nov 2100 08:49:37 +0900", "2100-01-01T00:00:00Z"]) {
      expect(parseHttpDate(bad), bad).toBeUndefined();
      expect(decide("GET", { "if-modified-since": bad }, rep), bad).toEqual({ status: 200 });
    }
    expect(decide("GET", { "if-unmodified-since": "1" }, rep)).toEqual({ status: 200 });
  });

  it("If-Match needs a strong match and If-Unmodified-Since an unmodified file, else 412", () => {
    expect(decide("GET", { "if-match": '"abc"' }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { "if-match": 'W/"abc"' }, rep)).toEqual({ status: 412 });
    expect(decide("GET", { "if-match": '"zzz"' }, rep)).toEqual({ status: 412 });
    expect(decide("GET", { "if-unmodified-since": httpDate(new Date(rep.lastModified.getTime() - 2000)) }, rep)).toEqual({ status: 412 });
    expect(decide("GET", { "if-unmodified-since": lm }, rep)).toEqual({ status: 200 });
  });

  it("reads entity-tag lists and leaves out what is not a tag", () => {
    expect(entityTags(' "a" , W/"b",* ')).toEqual(['"a"', 'W/"b"', "*"]);
    expect(entityTags("garbage")).toEqual([]);
  });

  it("skips empty list elements (RFC 9110 §5.6.1.2), which ended the list: a matching tag after one was not seen", () => {
    expect(entityTags('"a",,"b"')).toEqual(['"a"', '"b"']);
    expect(entityTags(', "a" , ,W/"b",')).toEqual(['"a"', 'W/"b"']);
    expect(decide("GET", { "if-none-match": '"x",, "abc"' }, rep)).toEqual({ status: 304 });
    expect(decide("GET", { "if-match": ', "abc"' }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { "if-match": '"x", , "zzz"' }, rep)).toEqual({ status: 412 });
  });
});

describe("ranges", () => {
  it("reads a hostile Range header (node's 16 KB of blanks, digits) in linear time: it took 150 ms of the event loop each", () => {
    // Ten times node's header limit: the quadratic code took ≈ 150 ms for each 16 KB value, so ≈ 15 s for each of
    // these; the linear code takes about a millisecond. The bound sits between with a margin of thousands either
    // way, and is on this thread's CPU time, not the wall clock's: the work done, which a starved host (two cores,
    // other workers descheduling this one) does not stretch, as it stretched the time taken.
    const blanks = " ".repeat(160_000);
    const started = threadCpuMs();
    for (const v of [`bytes=${blanks}x`, `bytes=1-${blanks}x`, `bytes=${"1".repeat(80_000)}${blanks.slice(80_000)}x`, `bytes=${blanks}-${blanks}x`]) {
      expect(parseRange(v, 100), v.slice(0, 12)).toBe("ignore");
      expect(threadCpuMs() - started, v.slice(0, 12)).toBeLessThan(3_000);
    }
  });

  it("RFC 9110 §14.1.2's examples over 10,000 bytes", () => {
    expect(parseRange("bytes=0-499", 10_000)).toEqual({ start: 0, end: 499 });
    expect(parseRange("bytes=500-999", 10_000)).toEqual({ start: 500, end: 999 });
    expect(parseRange("bytes=-500", 10_000)).toEqual({ start: 9500, end: 9999 });
    expect(parseRange("bytes=9500-", 10_000)).toEqual({ start: 9500, end: 9999 });
    expect(parseRange("bytes=0-0", 10_000)).toEqual({ start: 0, end: 0 });
    expect(parseRange("bytes=9500-20000", 10_000)).toEqual({ start: 9500, end: 9999 });
  });

  it("ignores what it cannot read or several ranges; a start past the end is unsatisfiable", () => {
    expect(parseRange("bytes=5-1", 100)).toBe("ignore");
    expect(parseRange("items=0-1", 100)).toBe("ignore");
    expect(parseRange("bytes=0-1,5-6", 100)).toBe("ignore");
    expect(parseRange(" bytes = 5 - 9 ", 100)).toEqual({ start: 5, end: 9 });
    expect(parseRange("bytes = - 5", 100)).toEqual({ start: 95, end: 99 });
    expect(parseRange("bytes=-", 100)).toBe("ignore");
    expect(parseRange("bytes=-", 100)).toBe("ignore");
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=99999999999999999999-", 100)).toBe("ignore");
  });

  it("If-Range: a range only while the tag or date still holds; HEAD never gets a range", () => {
    expect(decide("GET", { range: "bytes=0-9", "if-range": '"abc"' }, rep)).toEqual({ status: 206, start: 0, end: 9 });
    expect(decide("GET", { range: "bytes=0-9", "if-range": '"old"' }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { range: "bytes=0-9", "if-range": lm }, rep)).toEqual({ status: 206, start: 0, end: 9 });
    expect(decide("GET", { range: "bytes=0-9", "if-range": 'W/"abc"' }, rep)).toEqual({ status: 200 });
    expect(decide("HEAD", { range: "bytes=0-9" }, rep)).toEqual({ status: 200 });
    expect(decide("GET", { range: "bytes=20000-" }, rep)).toEqual({ status: 416 });
  });
});
