/**
 * The launcher's hold of a daemon's stop signals in its start-up (bin/early-stop.cjs), in a process of its own each:
 * the signal it holds is taken over by the command's handlers (withStopSignal), or, before a prompt, delivered as
 * node's default would have.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const EARLY_STOP = join(import.meta.dirname, "..", "..", "bin", "early-stop.cjs");

/** Runs `body` in a node process that first called holdEarlyStop(args) and sent itself SIGTERM; how it ended. */
function held(args: string[], body: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string } {
  const script = `
    const held = require(${JSON.stringify(EARLY_STOP)}).holdEarlyStop(${JSON.stringify(args)});
    const early = globalThis[Symbol.for("jpki.early-stop")];
    process.kill(process.pid, "SIGTERM");
    setTimeout(() => { ${body} }, 50);`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout };
}

describe("bin/early-stop.cjs", () => {
  it("holds SIGTERM for jpki watch and jpki serve from the launcher's first line: the command's handlers take it over, and the process goes on", () => {
    for (const args of [["--workspace", "w", "watch", "spool"], ["serve", "--listen", "127.0.0.1:0"]]) {
      expect(held(args, `console.log(held, early.take(), globalThis[Symbol.for("jpki.early-stop")] === undefined)`), args.join(" ")).toEqual({ status: 0, signal: null, stdout: "true SIGTERM true\n" });
    }
  });

  it("delivers the signal held once let go before a prompt (release): node's default, as before", () => {
    expect(held(["watch", "spool"], `early.release(); setTimeout(() => console.log("still here"), 1000)`)).toMatchObject({ status: null, signal: "SIGTERM", stdout: "" });
  });

  it("ignores SIGHUP for jpki serve until its own handler is set (it reopens the access log; node's default ended serve 129 in its start-up, and a --workers worker the primary passed it to): nothing held, nothing delivered", () => {
    const hup = (args: string[], body: string) => {
      const script = `
        require(${JSON.stringify(EARLY_STOP)}).holdEarlyStop(${JSON.stringify(args)});
        const early = globalThis[Symbol.for("jpki.early-stop")];
        process.kill(process.pid, "SIGHUP");
        setTimeout(() => { ${body} }, 50);`;
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30_000 });
      return { status: r.status, signal: r.signal, stdout: r.stdout };
    };
    // serve's handler takes over (take: no stop held), and a prompt's release delivers nothing either
    expect(hup(["serve", "--listen", "127.0.0.1:0"], `console.log(early.take(), process.listenerCount("SIGHUP"))`)).toEqual({ status: 0, signal: null, stdout: "undefined 0\n" });
    expect(hup(["serve"], `early.release(); setTimeout(() => console.log("still here", process.listenerCount("SIGHUP")), 200)`)).toEqual({ status: 0, signal: null, stdout: "still here 0\n" });
    // watch has no SIGHUP handler of its own: node's default, as before
    expect(hup(["watch", "spool"], `console.log("still here")`)).toMatchObject({ status: null, signal: "SIGHUP", stdout: "" });
  });

  it("holds nothing for other commands, a workspace named watch, or help: node's default ends them", () => {
    for (const args of [["crl", "generate"], ["notices", "ingest", "f"], ["-w", "watch", "crl", "generate"], ["--workspace=x", "watch", "--help"], ["serve", "--help"]]) {
      expect(held(args, `console.log("still here")`), args.join(" ")).toMatchObject({ status: null, signal: "SIGTERM", stdout: "" });
    }
  });
});
