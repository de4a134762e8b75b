/**
 * The launcher's hold of a daemon's stop signals in its start-up (bin/early-stop.cjs), in a process of its own each:
 * the signal it holds is taken over by the command's handlers (withStopSignal), or, before a prompt, delivered as
 * node's default would have.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const EARLY_STOP = join(import.meta.dirname, "..", "..", "bin", "early-stop.cjs");
const { STOPPING_COMMANDS } = createRequire(import.meta.url)(EARLY_STOP) as { STOPPING_COMMANDS: readonly string[] };
const COMMANDS = join(import.meta.dirname, "commands");

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

  it("holds it for every other command that stops cleanly on a signal, by command and subcommand (provider follow only with --watch)", () => {
    for (const args of [["notices", "ingest", "f"], ["--json", "registry", "import", "r.csv"], ["registry", "sweep"], ["card", "serve", "--port", "35963"], ["provider", "follow", "--watch", "--interval", "60"]]) {
      expect(held(args, `console.log(held, early.take())`), args.join(" ")).toEqual({ status: 0, signal: null, stdout: "true SIGTERM\n" });
    }
  });

  it("every command module that stops cleanly on a signal (withStopSignal) is in STOPPING_COMMANDS under the name it gives, and the list names no other", () => {
    const used = new Map<string, string>();
    for (const file of readdirSync(COMMANDS).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
      const text = readFileSync(join(COMMANDS, file), "utf8");
      const calls = text.match(/\bwithStopSignal\(/g)?.length ?? 0;
      const named = [...text.matchAll(/\bwithStopSignal\(\s*"([^"]+)"/g)].map((m) => m[1]!);
      // each call names its command as a literal (the signature requires a name; a variable could not be read here)
      expect(named.length, `${file}: withStopSignal called without its command's name as a literal`).toBe(calls);
      for (const name of named) {
        // the name's last word is a command this module defines ("provider follow --watch": follow)
        const word = name.split(" ").filter((w) => !w.startsWith("--")).pop()!;
        expect(text, `${file}: "${name}" names no command of this module`).toMatch(new RegExp(`(?:\\.command|new Command)\\("${word}"`));
        used.set(name, file);
      }
    }
    expect([...used.keys()].sort()).toEqual([...STOPPING_COMMANDS].sort());
  });

  it("holds nothing for other commands, a workspace named watch, provider follow without --watch (one pass: a signal held would never be taken), or help: node's default ends them", () => {
    for (const args of [["crl", "generate"], ["notices", "pending"], ["registry", "load", "f"], ["provider", "follow"], ["card", "init"], ["-w", "watch", "crl", "generate"], ["--workspace=x", "watch", "--help"], ["serve", "--help"], ["notices", "ingest", "--help"]]) {
      expect(held(args, `console.log("still here")`), args.join(" ")).toMatchObject({ status: null, signal: "SIGTERM", stdout: "" });
    }
  });
});
