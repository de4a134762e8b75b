/**
 * A closed-loop HTTP/1.1 load generator on raw keep-alive sockets, for benches whose baseline is measured
 * in-process: every answer the server gives here, the load generator pays for on the same 2 cores. autocannon
 * spends ≈ 60 µs of CPU per request (its HTTP parser, its histograms, its request builder), a fifth of what a
 * `POST /v1/validate` costs all told; that is CPU taken from the server, which a verifier's clients on other
 * machines would not take. This one writes requests built once as bytes and reads only the status line and
 * the length of each answer (≈ 10–15 µs per request), so the rate it gets is closer to what the server can do.
 *
 * Closed loop like autocannon: `connections` sockets, one request in flight on each (no pipelining), the
 * next sent when the previous answer is complete. Every status is counted; a run is only as good as its 200s.
 *
 * Run as a child process: `node http-load.js SPEC.json` prints one JSON line (LoadResult).
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";

export interface LoadSpec {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly headers: Record<string, string>;
  /** request bodies sent in rotation */
  readonly bodies: readonly string[];
  readonly connections: number;
  readonly seconds: number;
}

export interface LoadResult {
  readonly rps: number;
  readonly total: number;
  /** CPU seconds this process used, all threads */
  readonly cpu: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
}

const CRLF2 = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = Buffer.from("\r\nContent-Length:");

/** One request as bytes. */
function requestBytes(spec: LoadSpec, body: string): Buffer {
  const b = Buffer.from(body);
  const head = [`POST ${spec.path} HTTP/1.1`, `host: ${spec.host}:${spec.port}`, `content-length: ${b.length}`, ...Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`), b]);
}

/**
 * Where the answer starting at `buf[0]` ends and its status, or undefined while incomplete. Answers with a
 * content-length only: the server under test sets it on every answer, and an answer without one is an error.
 */
function parseAnswer(buf: Buffer): { end: number; status: number } | undefined | "unframed" {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd < 0) return undefined;
  // "HTTP/1.1 200 …": the status is bytes 9–11. Node's server writes "Content-Length"; any other case is looked up slowly.
  const status = (buf[9]! - 48) * 100 + (buf[10]! - 48) * 10 + (buf[11]! - 48);
  let at = buf.indexOf(CONTENT_LENGTH);
  if (at < 0 || at > headEnd) at = buf.toString("latin1", 0, headEnd).toLowerCase().indexOf("\r\ncontent-length:");
  if (at < 0 || at > headEnd) return "unframed";
  let i = at + CONTENT_LENGTH.length;
  while (buf[i] === 32) i++;
  let length = 0;
  for (; buf[i]! >= 48 && buf[i]! <= 57; i++) length = length * 10 + buf[i]! - 48;
  const end = headEnd + 4 + length;
  return buf.length < end ? undefined : { end, status };
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const requests = spec.bodies.map((b) => requestBytes(spec, b));
  const statuses: Record<string, number> = {};
  let total = 0;
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + spec.seconds * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let buf: Buffer = Buffer.alloc(0);
      const sock: Socket = connect(spec.port, spec.host);
      sock.setNoDelay(true);
      const send = () => {
        if (performance.now() >= deadline) {
          sock.end();
          return resolve();
        }
        sock.write(requests[next++ % requests.length]!);
      };
      sock.on("connect", send);
      sock.on("data", (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        for (;;) {
          const a = parseAnswer(buf);
          if (a === undefined) return;
          if (a === "unframed") {
            errors++;
            sock.destroy();
            return resolve();
          }
          statuses[a.status] = (statuses[a.status] ?? 0) + 1;
          total++;
          buf = buf.subarray(a.end);
          send();
        }
      });
      sock.on("error", () => {
        errors++;
        resolve();
      });
      sock.on("close", () => resolve());
    });
  return Promise.all(Array.from({ length: spec.connections }, one)).then(() => {
    const c = process.cpuUsage();
    return { rps: total / ((performance.now() - t0) / 1000), total, cpu: (c.user + c.system) / 1e6, statuses, errors };
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/")) && process.argv[2]) {
  const spec = JSON.parse(readFileSync(process.argv[2], "utf8")) as LoadSpec;
  void runLoad(spec).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
