/**
 * The same closed loop as bench/http-load.ts, from wrk (Debian's `wrk`, C, epoll) where it is installed: it spends
 * ≈ 20 µs of CPU per request against http-load's ≈ 35–45 (node's socket and stream layers), and on 2 cores every
 * microsecond the load generator spends is taken from the server under test, which a verifier's clients on their own
 * machines would not take. One wrk thread, `connections` keep-alive connections, one request in flight on each, the
 * bodies in rotation (a Lua script built here), every non-2xx answer and socket error counted.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import type { LoadResult, LoadSpec } from "./http-load.js";

/** Whether wrk can be run here. */
export function wrkAvailable(): boolean {
  const r = spawnSync("wrk", ["--version"], { stdio: "ignore" });
  return !r.error;
}

/** A Lua string literal: JSON's escapes for what our bodies hold (ASCII, quotes, backslashes, newlines) are Lua's too. */
function lua(s: string): string {
  if (!/^[\x20-\x7e\n\r\t]*$/.test(s)) throw new Error("wrk load: a body or header holds a character the Lua script would mangle");
  return JSON.stringify(s);
}

/**
 * wrk's Lua script for `spec`: the headers, then the bodies as one list of string literals (one a line), each
 * request built once. statusesOf reads it back.
 */
export function wrkScript(spec: Omit<LoadSpec, "host" | "port" | "connections" | "seconds">): string {
  return [
    "wrk.method = \"POST\"",
    ...Object.entries(spec.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    `local bodies = {${spec.bodies.map(lua).join(",\n")}}`,
    "local reqs = {}",
    `init = function(args) for i, b in ipairs(bodies) do reqs[i] = wrk.format("POST", ${lua(spec.path)}, nil, b) end end`,
    "local n = 0",
    "request = function() n = n + 1; return reqs[(n % #reqs) + 1] end",
    "done = function(s, latency, requests)",
    "  local e = s.errors",
    '  io.write(string.format("WRK %d %d %d %d\\n", s.requests, s.duration, e.status, e.connect + e.read + e.write + e.timeout))',
    "end",
  ].join("\n");
}

/**
 * The statuses a server gives a script's requests, each sent once (wrk counts the answers that are not 2xx, not
 * which they are: bench/api-ab.js said only "answers other than 200"), and the first such answer's body (the API's
 * typed error: a code and a fixed message, never a resident's items).
 */
export async function statusesOf(script: string, host: string, port: number): Promise<string> {
  const literal = String.raw`("(?:[^"\\]|\\.)*")`;
  const headers = Object.fromEntries([...script.matchAll(new RegExp(String.raw`^wrk\.headers\[${literal}\] = ${literal}$`, "gm"))].map((m) => [JSON.parse(m[1]!), JSON.parse(m[2]!)]));
  const list = /^local bodies = \{([\s\S]*?)\}$/m.exec(script);
  const path = new RegExp(String.raw`wrk\.format\("POST", ${literal}`).exec(script);
  if (!list || !path) return "(not a script wrkScript wrote)";
  const bodies = JSON.parse(`[${list[1]}]`) as string[];
  const counts = new Map<number, number>();
  let first: string | undefined;
  for (const body of bodies) {
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host, port, path: JSON.parse(path[1]!) as string, method: "POST", headers }, (res) => {
        let s = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (s += c));
        res.on("end", () => resolve({ status: res.statusCode!, text: s }));
      });
      req.on("error", reject);
      req.end(body);
    });
    counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
    if (answer.status !== 200) first ??= `${answer.status} ${answer.text.slice(0, 200)}`;
  }
  return `${[...counts].map(([s, n]) => `${s} ×${n}`).join(", ")} for its ${bodies.length} bodies sent once each${first ? `; the first not 200: ${first}` : ""}`;
}

/** Runs wrk with `spec` (its script written to `scriptFile`); the CPU is wrk's own, from the shell's `times`. */
export function runWrk(spec: LoadSpec, scriptFile: string): Promise<LoadResult> {
  writeFileSync(scriptFile, wrkScript(spec));
  const url = `http://${spec.host}:${spec.port}${spec.path}`;
  // `times` after wrk prints the shell's children's user and system time: wrk's CPU, which node cannot read of a child.
  const args = ["-c", 'wrk "$@" && times', "wrk", "-t1", `-c${spec.connections}`, `-d${spec.seconds}s`, "-s", scriptFile, url];
  return new Promise((resolve, reject) => {
    const child = spawn("bash", args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("close", (code) => {
      const m = /^WRK (\d+) (\d+) (\d+) (\d+)$/m.exec(out);
      const t = /^\S+ \S+\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(out.trim().split("\n").slice(-2).join("\n"));
      if (code !== 0 || !m) return reject(new Error(`wrk exited ${code}: ${out.slice(-400)}`));
      const [requests, durationUs, non2xx, errors] = m.slice(1).map(Number) as [number, number, number, number];
      const cpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : Number.NaN;
      const ok = requests - non2xx;
      resolve({ rps: requests / (durationUs / 1e6), total: requests, cpu, statuses: { ...(ok ? { "2xx": ok } : {}), ...(non2xx ? { "non-2xx": non2xx } : {}) }, errors });
    });
  });
}
