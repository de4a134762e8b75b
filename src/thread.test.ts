/**
 * Threads jpki starts do not take the process's command-line options (thread.ts): a `--require`d monitoring agent
 * loaded again in each of them (and `--cpu-prof` wrote a profile per thread). Every `new Worker` of src/, test/ and
 * bench/ (tests aside) goes through newThread; two of the threads run here from dist/ (the global setup builds it)
 * in a process started with `--require` of a file that notes each thread it loads in.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const SRC = new URL(".", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const TEST = new URL("../test/", import.meta.url).pathname;
const BENCH = new URL("../bench/", import.meta.url).pathname;
const dist = (p: string) => JSON.stringify(new URL(`../dist/src/${p}`, import.meta.url).href);

describe("newThread", () => {
  it("is where every thread of src/, test/ and bench/ is made (tests themselves aside)", () => {
    // test/ and bench/ too: the fuzz runner's threads took the process's --cpu-prof (a profile per target) until it used newThread.
    const makers = [SRC, TEST, BENCH].flatMap((dir) =>
      (readdirSync(dir, { recursive: true }) as string[])
        .filter((f) => /\.(ts|mts|cts|mjs|cjs|js)$/.test(f) && !/\.test\.ts$/.test(f))
        .filter((f) => /\bnew Worker\(/.test(readFileSync(join(dir, f), "utf8")))
        .map((f) => relative(ROOT, join(dir, f))),
    );
    expect(makers).toEqual(["src/thread.ts"]);
  });

  it("starts the access log's and the overview's threads without the process's --require (dist/)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-thread-argv-"));
    const loads = join(dir, "loads");
    writeFileSync(join(dir, "agent.cjs"), `require("node:fs").appendFileSync(${JSON.stringify(loads)}, require("node:worker_threads").threadId + "\\n");\n`);
    writeFileSync(join(dir, "13-sig.crl"), "not a CRL: counted on the thread all the same");
    writeFileSync(
      join(dir, "run.mjs"),
      `import { AccessLog } from ${dist("server/access-log.js")};
import { CrlRevocationDays } from ${dist("verifier/overview.js")};
// the server, which holds the process while the unreferenced threads work
const server = setInterval(() => {}, 1000);
const log = new AccessLog(${JSON.stringify(join(dir, "access.log"))});
log.record(0, "GET", "/healthz", 200, 1, "127.0.0.1", "anonymous");
await log.close();
console.log(JSON.stringify(await new CrlRevocationDays(${JSON.stringify(dir)}, { thread: true }).of("13-sig", { path: "13-sig.crl", number: 1n })));
clearInterval(server);
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, ["--require", join(dir, "agent.cjs"), join(dir, "run.mjs")], {
      env: { ...process.env, NODE_OPTIONS: "" },
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toEqual({ problem: "unreadable" });
    expect(readFileSync(join(dir, "access.log"), "utf8")).toContain('"url":"/healthz"'); // the log's thread ran
    expect(readFileSync(loads, "utf8").trim().split("\n")).toEqual(["0"]); // loaded in the main thread only
  });
});
