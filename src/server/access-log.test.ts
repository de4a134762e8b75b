/**
 * The access log's thread writes the lines the serving thread recorded: whole, in order, the same lines
 * accessLine makes, tokens redacted, everything by the end of close(); its file is owner-only; a failing
 * disk drops lines and counts them.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AccessLog, accessLine, lineSink, loggedUrl } from "./access-log.js";

const T0 = Date.parse("2026-11-30T12:00:00.000Z");

describe("AccessLog", () => {
  it("writes every recorded request as the line accessLine makes, in order, and all of them by the end of close()", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    const args: Array<Parameters<AccessLog["record"]>> = [];
    for (let i = 0; i < 5000; i++) {
      const a: Parameters<AccessLog["record"]> = [T0 + i, i % 7 ? "GET" : "HEAD", `/crl/13-sig.crl?i=${i % 50}`, i % 3 ? 304 : 200, i / 1000, `10.0.0.${i % 4}`, i % 2 ? "v-0a1b" : "anonymous"];
      args.push(a);
      log.record(...a);
    }
    // A hostile URL stays one line; a token in it never reaches the file.
    const hostile: Parameters<AccessLog["record"]> = [T0, "GET", '/crl/"x"\\\n?access_token=secret1&jpkiv_secret2', 401, 0.5, "::1", "anonymous"];
    args.push(hostile);
    log.record(...hostile);
    await log.close();
    const text = readFileSync(path, "utf8");
    expect(text).toBe(args.map((a) => accessLine(...a)).join(""));
    expect(text).not.toContain("secret");
    const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(5001);
    expect(lines[1]).toEqual({ time: "2026-11-30T12:00:00.001Z", method: "GET", url: "/crl/13-sig.crl?i=1", status: 304, ms: 0, remote: "10.0.0.1", verifier: "v-0a1b" });
    expect(lines[5000]!.url).toBe('/crl/"x"\\\n?access_token=[redacted]&jpkiv_[redacted]');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    log.record(T0, "GET", "/after-close", 200, 0, "", "anonymous"); // ignored, never thrown
    expect(readFileSync(path, "utf8")).not.toContain("after-close");
    expect(log.dropped).toBe(0);
  });

  it("writes lines while the server runs, not only at close", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    log.record(T0, "GET", "/crl/13-sig.crl", 304, 0.01, "127.0.0.1", "anonymous");
    for (let i = 0; i < 100 && !(existsSync(path) && readFileSync(path, "utf8").length > 0); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(path, "utf8")).toContain('"url":"/crl/13-sig.crl"');
    await log.close();
  });

  it("keeps each URL right past the table of remembered strings (a scan of random paths)", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    const n = 25_000; // more than two generations of ids
    for (let i = 0; i < n; i++) {
      log.record(T0, "GET", `/scan/${i}`, 404, 0, "192.0.2.1", "anonymous");
      if (i % 4000 === 0) await new Promise((r) => setTimeout(r, 60)); // let the thread interleave
    }
    await log.close();
    const urls = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { url: string }).url);
    expect(urls).toEqual(Array.from({ length: n }, (_, i) => `/scan/${i}`));
  });

  it("counts the lines a full disk did not take, and the server side never throws", async () => {
    const log = new AccessLog("/dev/full");
    for (let i = 0; i < 10; i++) log.record(T0, "GET", "/crl/13-sig.crl", 304, 0, "127.0.0.1", "anonymous");
    await log.close();
    expect(log.dropped).toBe(10);
  });
});

describe("loggedUrl and lineSink", () => {
  it("blots out tokens and access_token values, and formats on the calling thread", () => {
    expect(loggedUrl("/crl/a.crl?access_token=abc;x=1")).toBe("/crl/a.crl?access_token=[redacted];x=1");
    expect(loggedUrl("/jpkiv_abcDEF-_9/x")).toBe("/jpkiv_[redacted]/x");
    const got: string[] = [];
    lineSink((l) => got.push(l)).record(T0, "GET", "/ca/13-sig.crt", 200, 1.234, "127.0.0.1", "v-1");
    expect(got).toEqual([`{"time":"2026-11-30T12:00:00.000Z","method":"GET","url":"/ca/13-sig.crt","status":200,"ms":1.23,"remote":"127.0.0.1","verifier":"v-1"}\n`]);
  });
});
