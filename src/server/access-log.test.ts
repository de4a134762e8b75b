/**
 * The access log's thread writes the lines the serving thread recorded: whole, in order, the same lines
 * accessLine makes, tokens redacted, everything by the end of close(); its file is owner-only; a failing
 * disk drops lines and counts them.
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { AccessLog, accessLine, lineSink, loggedUrl } from "./access-log.js";
import { filledItsDisk } from "../../test/full-disk.js";
import { until } from "../../test/until.js";

const T0 = Date.parse("2026-11-30T12:00:00.000Z");

type Args = Parameters<AccessLog["record"]>;

/** Records `args` in a fresh log file and closes it: what the file holds, and what accessLine makes of them. */
async function roundTrip(args: readonly Args[]): Promise<{ written: string; expected: string }> {
  const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
  const log = new AccessLog(path);
  for (const a of args) log.record(...a);
  await log.close();
  return { written: readFileSync(path, "utf8"), expected: args.map((a) => accessLine(...a)).join("") };
}

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
    expect(lines[1]).toEqual({ time: "2026-11-30T12:00:00.001Z", method: "GET", url: "/crl/13-sig.crl?i=[redacted]", status: 304, ms: 0, remote: "10.0.0.1", verifier: "v-0a1b" });
    expect(lines[5000]!.url).toBe('/crl/"x"\\\n?access_token=[redacted]&jpkiv_[redacted]');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    log.record(T0, "GET", "/after-close", 200, 0, "", "anonymous"); // not written, never thrown: counted
    expect(readFileSync(path, "utf8")).not.toContain("after-close");
    expect(log.dropped).toBe(1);
  });

  it("writes each line whole when consecutive requests differ in one field only (the thread reuses what they share)", async () => {
    const poll: Args = [T0, "GET", "/crl/13-sig.crl", 304, 0.01, "127.0.0.1", "v-1"];
    const long = (c: string) => `/crl/${c.repeat(300)}`; // past MAX_REMEMBERED: sent with its one record
    const with_ = (i: number, v: Args[number]): Args => Object.assign([...poll], { [i]: v }) as Args;
    // Each differs from the poll in one field; in the same millisecond, as most of a poll's lines are.
    const one: Args[] = [
      with_(0, T0 + 1),
      with_(1, "HEAD"),
      with_(2, "/crl/13-auth.crl"),
      with_(2, long("a")),
      with_(2, long("b")),
      with_(3, 200),
      with_(4, 7.5),
      with_(5, "10.0.0.9"),
      with_(6, "anonymous"),
      with_(6, "v".repeat(300)),
      with_(6, "w".repeat(300)),
    ];
    const args: Args[] = [poll];
    for (const a of one) args.push(a, a, poll);
    const { written, expected } = await roundTrip(args);
    expect(written).toBe(expected);
  });

  it("writes a batch whose lines are mostly outside ASCII (3 bytes a character) whole", async () => {
    // an embedder's verifier names (AccessLogSink takes any string): 600 bytes of UTF-8 a line, 200 characters
    const args = Array.from({ length: 2000 }, (_, i): Args => [T0, "GET", "/crl/13-sig.crl", 304, 0.01, "127.0.0.1", `${"検証者".repeat(66)}${i % 2}`]);
    const { written, expected } = await roundTrip(args);
    expect(written).toBe(expected);
  });

  it("writes lines while the server runs, not only at close", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    log.record(T0, "GET", "/crl/13-sig.crl", 304, 0.01, "127.0.0.1", "anonymous");
    await until(() => existsSync(path) && readFileSync(path, "utf8").length > 0, "the thread's first line");
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

  it("counts a record after close() as dropped: it was ignored, a line lost without a trace", async () => {
    const log = new AccessLog(join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log"));
    log.record(T0, "GET", "/crl/13-sig.crl", 304, 0, "127.0.0.1", "anonymous");
    const closing = log.close();
    log.record(T0, "GET", "/crl/13-sig.crl", 304, 0, "127.0.0.1", "anonymous"); // while it closes
    await closing;
    log.record(T0, "GET", "/crl/13-sig.crl", 304, 0, "127.0.0.1", "anonymous"); // once closed
    expect(log.dropped).toBe(2);
  });

  it("writes a line with null for a time or duration that is not a number, and goes on", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    log.record(NaN, "GET", "/a", 200, NaN, "", "anonymous");
    log.record(1e20, "GET", "/b", 200, Infinity, "", "anonymous");
    log.record(T0, "GET", "/c", 200, 1, "", "anonymous");
    await log.close();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { time: string | null; ms: number | null });
    expect(lines.map((l) => [l.time, l.ms])).toEqual([[null, null], [null, null], ["2026-11-30T12:00:00.000Z", 1]]);
    expect(log.dropped).toBe(0);
  });

  it("writes each duration as accessLine does, its text made once per hundredth of a millisecond and reused", async () => {
    // Pairs that share tenths but not hundredths, repeats (the kept text), the last kept hundredth and the first
    // past it, rounding up and down, a negative zero, and what is not kept at all (long, negative, not a number).
    const ms = [1.234, 1.21, 1.234, 1.2349, 1.235, 0.004, 0.005, 0, -0.001, 163.83, 163.834, 163.84, 163.85, 5000.126, -3, 12, 12.001, NaN, Infinity, 1.21];
    const { written, expected } = await roundTrip(ms.map((m, i): Args => [T0 + i, "GET", "/crl/13-sig.crl", 304, m, "10.0.0.1", "v-1"]));
    expect(written).toBe(expected);
    expect(written.match(/"ms":[^,]*/g)).toEqual(["1.23", "1.21", "1.23", "1.23", "1.24", "0", "0.01", "0", "0", "163.83", "163.83", "163.84", "163.85", "5000.13", "-3", "12", "12", "null", "null", "1.21"].map((t) => `"ms":${t}`));
  });

  it("cuts a very long URL (after redacting it), and logs a flood of them right", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    const long = (i: number) => `/${i}/${"z".repeat(5000)}?access_token=secret`;
    for (let i = 0; i < 300; i++) log.record(T0, "GET", long(i), 404, 0, "192.0.2.1", "anonymous");
    await log.close();
    const urls = parsed(readFileSync(path, "utf8")).map((l) => l.url);
    expect(urls).toEqual(Array.from({ length: 300 }, (_, i) => loggedUrl(long(i))));
    expect(urls[0]).toMatch(/^\/0\/z+…\[\d+ more\]$/);
    expect(urls[0]!.length).toBeLessThan(1100);
  });
});

/** A FIFO with a non-blocking reader: nothing is read until `read()` is called. */
function fifo(): { path: string; read: (limit?: number) => string; close: () => void } {
  const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "fifo");
  execFileSync("mkfifo", ["-m", "600", path]);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(1 << 16);
  const chunks: Buffer[] = [];
  return {
    path,
    /** everything the pipe holds, or at most `limit` bytes of it (a slow reader); all read so far */
    read(limit = Infinity) {
      for (let left = limit; left > 0; ) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
        } catch (e) {
          if ((e as { code?: string }).code === "EAGAIN") break;
          throw e;
        }
        if (n === 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
        left -= n;
      }
      return Buffer.concat(chunks).toString("utf8");
    },
    close: () => closeSync(fd),
  };
}

const parsed = (text: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { url: string });

describe("AccessLog.reopen (SIGHUP after a rotation)", () => {
  it("after the file is moved away, later lines go to a new file by the same name; none is lost, torn or repeated", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-log-"));
    const path = join(dir, "access.log");
    const log = new AccessLog(path);
    const rec = (i: number) => log.record(T0 + i, "GET", `/crl/13-sig-${i}.crl`, 304, 0.1, "10.0.0.1", "anonymous");
    for (let i = 0; i < 3000; i++) rec(i);
    // until the thread has written some of them into the file (polled: a loaded machine runs it late)
    while (!statSync(path).size) await new Promise((r) => setTimeout(r, 10));
    renameSync(path, `${path}.1`); // logrotate's move
    for (let i = 3000; i < 4000; i++) rec(i); // still going to the moved file, or to the new one: either is fine
    log.reopen();
    for (let i = 4000; i < 6000; i++) rec(i);
    await log.close();
    const old = parsed(readFileSync(`${path}.1`, "utf8"));
    const fresh = parsed(readFileSync(path, "utf8"));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // every line exactly once, in order, split at one point between the two files
    expect([...old, ...fresh].map((l) => l.url)).toEqual(Array.from({ length: 6000 }, (_, i) => `/crl/13-sig-${i}.crl`));
    expect(old.length).toBeGreaterThan(0);
    expect(fresh.length).toBeGreaterThanOrEqual(2000); // what was recorded after reopen() is in the new file
    expect(log.dropped).toBe(0);
  });
});

describe("AccessLog.reopen on a full disk", () => {
  // A small tmpfs of its own (root only: mount), so that a write is cut short by ENOSPC part way through a line.
  it.skipIf(process.getuid?.() !== 0)("reopens though the old file holds half a line it cannot finish: the log stopped for good, the deleted file's space never freed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-log-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "none", dir]);
    const path = join(dir, "access.log");
    const log = new AccessLog(path);
    try {
      // 600 lines of 150-odd bytes: more than the disk holds, in a batch the kernel takes only part of
      const n = 600;
      for (let i = 0; i < n; i++) log.record(T0 + i, "GET", `/crl/13-sig-${i}.crl`, 304, 0.1, "10.0.0.1", "anonymous");
      // until the disk is full: the file can take no more, what the thread wrote there is final
      await until(() => filledItsDisk(path), "the log to fill its disk", { timeoutMs: 60_000 });
      const old = readFileSync(path, "latin1");
      // the scenario: the last write stopped inside a line
      expect(old.endsWith("\n")).toBe(false);
      const whole = parsed(old.slice(0, old.lastIndexOf("\n") + 1)).length;
      // none dropped yet: they wait (the rest of the torn line, and every line after it), and say so — once the
      // thread has seen its write cut short and published what is left (a thread taken off the CPU in between: later)
      await until(() => log.waiting === n - whole, "the lines not written whole to be waiting", { timeoutMs: 60_000 }).catch(() => undefined);
      expect(log.dropped).toBe(0);
      expect(log.waiting).toBe(n - whole);
      // the operator frees the disk by deleting the log, and signals: the space comes back only once it is closed
      rmSync(path);
      log.reopen();
      for (let i = 0; i < 10; i++) log.record(T0 + i, "GET", `/after/${i}`, 304, 0.1, "10.0.0.1", "anonymous");
      await log.close();
      // in the new file: the lines after the torn one, then those recorded after the reopen, each whole
      expect(parsed(readFileSync(path, "utf8")).map((l) => l.url)).toEqual([
        ...Array.from({ length: n - whole - 1 }, (_, i) => `/crl/13-sig-${whole + 1 + i}.crl`),
        ...Array.from({ length: 10 }, (_, i) => `/after/${i}`),
      ]);
      // the torn line alone is lost, and counted
      expect(log.dropped).toBe(1);
      expect(log.waiting).toBe(0);
    } finally {
      await log.close();
      execFileSync("umount", ["-l", dir]); // lazily: a descriptor a failing run leaves open must not keep it
    }
  }, 150_000);
});

describe("AccessLog.reopen, the process's standard error", () => {
  it("stays quiet: the thread closing a file the serving thread opened wrote a node warning at every SIGHUP", async () => {
    const said: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const spy = vi.spyOn(process.stderr, "write").mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      said.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write);
    try {
      const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
      const log = new AccessLog(path);
      for (let round = 0; round < 3; round++) {
        log.record(T0, "GET", "/crl/13-sig.crl", 304, 0.1, "10.0.0.1", "anonymous");
        while (!existsSync(path) || !statSync(path).size) await new Promise((r) => setTimeout(r, 10));
        renameSync(path, `${path}.${round}`);
        log.reopen();
      }
      log.record(T0, "GET", "/crl/13-sig.crl", 304, 0.1, "10.0.0.1", "anonymous");
      await log.close();
      // The thread's standard error comes through a stream piped to this process's: node hands it every chunk the
      // thread wrote before it emits the exit close() waited for. A chunk still held there (process.stderr asked
      // to wait: backpressure) is written once it drains. No 200 ms pause: a loaded host could take longer.
      while (process.stderr.writableNeedDrain) await new Promise((r) => process.stderr.once("drain", r));
      await new Promise((r) => setImmediate(r));
    } finally {
      spy.mockRestore();
    }
    expect(said.join("")).not.toMatch(/File descriptor \d+ closed/);
  });
});

describe("AccessLog on a pipe", () => {
  it("waits out a reader that stalls, then writes every line whole", async () => {
    const f = fifo();
    const log = new AccessLog(f.path);
    const n = 5000; // far more than the pipe holds (64 KB)
    for (let i = 0; i < n; i++) log.record(T0, "GET", `/crl/${i}/${"x".repeat(100)}`, 304, 0, "10.0.0.1", "anonymous");
    // The thread meets a full pipe before anything is read: the lines it has written (about 430 of these fill the
    // 64 KB) stop growing. A 300 ms pause stood for that, and a host that ran the thread late started the reader
    // first: the test then passed without a stall to wait out.
    let seen = -1;
    await until(() => {
      const written = n - log.waiting;
      const stalled = written > 0 && written === seen;
      seen = written;
      return stalled;
    }, "the thread to stop at a full pipe", { everyMs: 50 });
    const reading = setInterval(() => f.read(), 5);
    await log.close();
    clearInterval(reading);
    const lines = parsed(f.read());
    f.close();
    expect(lines.map((l) => l.url)).toEqual(Array.from({ length: n }, (_, i) => `/crl/${i}/${"x".repeat(100)}`));
    expect(log.dropped).toBe(0);
  });

  it("with a reader that never reads, close() still ends, and every line is either written whole or counted", async () => {
    const f = fifo();
    const log = new AccessLog(f.path);
    const n = 5000;
    for (let i = 0; i < n; i++) log.record(T0, "GET", `/crl/${i}`, 304, 0, "10.0.0.1", "anonymous");
    await log.close();
    const lines = parsed(f.read());
    f.close();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length + log.dropped).toBe(n);
    expect(lines.map((l) => l.url)).toEqual(Array.from({ length: lines.length }, (_, i) => `/crl/${i}`));
  });

  it("a reader too slow for close()'s deadline: every line is written whole or counted as dropped, never both", async () => {
    const f = fifo();
    const log = new AccessLog(f.path);
    const n = 5000; // ≈ 1.3 MB, against ≈ 0.4 MB/s read: the deadline comes while a 64 KB piece is being written out
    for (let i = 0; i < n; i++) log.record(T0, "GET", `/crl/${i}/${"z".repeat(200)}`, 304, 0, "10.0.0.1", "anonymous");
    const reading = setInterval(() => f.read(4096), 10);
    await log.close();
    clearInterval(reading);
    const lines = parsed(f.read());
    f.close();
    expect(log.dropped).toBeGreaterThan(0);
    // before, lines written out of the piece the thread was on when it was stopped were counted as dropped too
    expect(lines.length + log.dropped).toBe(n);
    expect(lines.map((l) => l.url)).toEqual(Array.from({ length: lines.length }, (_, i) => `/crl/${i}/${"z".repeat(200)}`));
  });

  it("two logs on one pipe (the processes of --workers N on one standard output) never interleave within a line", async () => {
    const f = fifo();
    const logs = [new AccessLog(f.path), new AccessLog(f.path)];
    const reading = setInterval(() => f.read(), 2);
    const n = 5000;
    for (let i = 0; i < n; i++) {
      logs.forEach((log, k) => log.record(T0, "GET", `/w${k}/${i % 100}/${"y".repeat(200)}`, 200, 0, "10.0.0.1", "anonymous"));
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(logs.map((l) => l.close()));
    clearInterval(reading);
    const lines = parsed(f.read()); // JSON.parse throws on a torn line
    f.close();
    // Each log writes its lines in order; what it could not write before close()'s deadline (a host so loaded that
    // this reader fell 2 s behind) is counted, not torn: the lines read are a prefix of each log's own.
    for (const [k, log] of logs.entries()) {
      const mine = lines.filter((l) => l.url.startsWith(`/w${k}/`)).map((l) => l.url);
      expect(mine.length, `log ${k}`).toBeGreaterThan(0);
      expect(mine.length + log.dropped, `log ${k}`).toBe(n);
      expect(mine).toEqual(Array.from({ length: mine.length }, (_, i) => `/w${k}/${i % 100}/${"y".repeat(200)}`));
    }
    expect(lines).toHaveLength(2 * n - logs[0]!.dropped - logs[1]!.dropped);
  });

  it("marks an answer not written whole \"aborted\":true after its status, on both threads alike; every other line is as before", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    const whole: Parameters<AccessLog["record"]> = [T0, "GET", "/crl/13-sig.crl", 200, 12, "10.0.0.1", "v-1"];
    const cut: Parameters<AccessLog["record"]> = [T0, "GET", "/crl/13-sig.crl", 200, 12, "10.0.0.1", "v-1", true];
    for (const a of [whole, cut, whole]) log.record(...a);
    await log.close();
    const text = readFileSync(path, "utf8");
    expect(text).toBe([whole, cut, whole].map((a) => accessLine(...a)).join(""));
    const lines = text.trimEnd().split("\n");
    expect(lines[1]).toBe(`{"time":"2026-11-30T12:00:00.000Z","method":"GET","url":"/crl/13-sig.crl","status":200,"aborted":true,"ms":12,"remote":"10.0.0.1","verifier":"v-1"}`);
    expect(lines[0]).not.toContain("aborted");
    expect(lines[2]).toBe(lines[0]);
  });

  it("refuses a FIFO that no process reads rather than wait for one", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-log-"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    expect(() => new AccessLog(join(dir, "fifo"))).toThrow(expect.objectContaining({ code: "ERR_FILE_UNUSABLE" }));
  });
});

describe("loggedUrl and lineSink", () => {
  it("keeps of the query its parameters' names only: no value, and no name that is not an ASCII identifier (an item sent as one)", () => {
    const items = { name: "高木　秘密子", address: "東京都千代田区霞が関１丁目", birth: "1990-01-01", gender: "2" };
    const enc = encodeURIComponent;
    const urls = [
      `/v1/status/history?since=2026-12-01&name=${enc(items.name)}&address=${enc(items.address)}&birth=${items.birth}&gender=${items.gender}`,
      `/v1/overview?${enc(items.name)}&${items.birth}=1;${enc(items.address)}=x`,
      `/crl/13-sig.crl?name=${items.name}#birth=${items.birth}`,
      `/crl/13-sig.crl#${enc(items.name)}?birth=${items.birth}`,
    ];
    const logged = urls.map(loggedUrl);
    expect(logged).toEqual([
      "/v1/status/history?since=[redacted]&name=[redacted]&address=[redacted]&birth=[redacted]&gender=[redacted]",
      "/v1/overview?[redacted]&[redacted]=[redacted];[redacted]=[redacted]",
      "/crl/13-sig.crl?name=[redacted]#[redacted]",
      "/crl/13-sig.crl#[redacted]",
    ]);
    const all = logged.join(" ");
    for (const v of Object.values(items)) {
      expect(all).not.toContain(v);
      expect(all).not.toContain(enc(v));
    }
    // nor in a segment of the path (no route's path holds a character outside ASCII)
    expect(loggedUrl(`/v1/x/${enc(items.name)}/${enc(items.address)}.crl`)).toBe("/v1/x/[redacted]/[redacted]");
    expect(loggedUrl(`/crl/${items.name}/13-sig.crl`)).toBe("/crl/[redacted]/13-sig.crl");
    expect(loggedUrl(`/crl/${enc(enc(items.name))}`)).toBe("/crl/[redacted]");
    expect(loggedUrl("/ocsp/13-sig/MEowSDBGMEQwQjAJBgUrDgMCGgUABBT%2B%2Fx%3D")).toBe("/ocsp/13-sig/MEowSDBGMEQwQjAJBgUrDgMCGgUABBT%2B%2Fx%3D");
    expect(loggedUrl("/v1/overview?days=7&&x")).toBe("/v1/overview?days=[redacted]&&x");
    expect(loggedUrl("/v1/overview?")).toBe("/v1/overview?");
    // nor an item written in ASCII: a resident code, a birth date, a name in Latin letters (they were logged as sent)
    expect(loggedUrl("/v1/residents/12345678901/1990-01-01")).toBe("/v1/residents/[redacted]/[redacted]");
    expect(loggedUrl("/v1/x/19901231/Taro%20Yamada/1990.1.1.crl")).toBe("/v1/x/[redacted]/[redacted]/[redacted]");
    expect(loggedUrl("/v1/x/Taro%2520Yamada")).toBe("/v1/x/[redacted]");
    expect(loggedUrl("/v1/overview?yamada-taro-19901231=1&days")).toBe("/v1/overview?[redacted]=[redacted]&days");
    // what the routes' paths hold is kept: CA ids, municipality partitions, published files
    expect(loggedUrl("/crl/13-sig/131016.crl")).toBe("/crl/13-sig/131016.crl");
    expect(loggedUrl("/crl/13-sig-delta.crl")).toBe("/crl/13-sig-delta.crl");
    expect(loggedUrl("/arl/13-sig.crl")).toBe("/arl/13-sig.crl");
  });

  it("blots out tokens and access_token values, and formats on the calling thread", () => {
    expect(loggedUrl("/crl/a.crl?access_token=abc;x=1")).toBe("/crl/a.crl?access_token=[redacted];x=[redacted]");
    expect(loggedUrl("/jpkiv_abcDEF-_9/x")).toBe("/jpkiv_[redacted]/x");
    // percent-encoded, double-encoded, upper case: the secret is not written either
    expect(loggedUrl("/v1/status/history?x=jpkiv%5FcTDI_7oxS")).toBe("/v1/status/history?x=[redacted]");
    expect(loggedUrl("/crl/a.crl?access%5Ftoken=abc&y=2")).toBe("/crl/a.crl?access_token=[redacted]&y=[redacted]");
    expect(loggedUrl("/x?t=%256Apkiv_secret")).toBe("/x?t=[redacted]");
    expect(loggedUrl("/x/%256Apkiv_secret")).toBe("/x/jpkiv_[redacted]");
    expect(loggedUrl("/x?JPKIV_secret&jpkiv%5Fsecret=1")).toBe("/x?jpkiv_[redacted]&jpkiv_[redacted]=[redacted]");
    // other escapes are logged as sent
    expect(loggedUrl("/crl/a%2Db.crl")).toBe("/crl/a%2Db.crl");
    const got: string[] = [];
    lineSink((l) => got.push(l)).record(T0, "GET", "/ca/13-sig.crt", 200, 1.234, "127.0.0.1", "v-1");
    expect(got).toEqual([`{"time":"2026-11-30T12:00:00.000Z","method":"GET","url":"/ca/13-sig.crt","status":200,"ms":1.23,"remote":"127.0.0.1","verifier":"v-1"}\n`]);
  });
});
