"use strict";
/**
 * A stop asked for before the command can stop cleanly. The commands that stop on SIGTERM or SIGINT after the
 * batch or answers in progress (STOPPING_COMMANDS: the daemons under a service manager, `jpki watch` and `jpki
 * serve`, and the long runs a job starts, `notices ingest`, `registry import` …) set their handlers only once they
 * had loaded the program, read the passphrase and loaded the library (src/cli/context.ts withStopSignal): a SIGTERM
 * in their first ≈ 1.5–2 s (a restart right after a start, a deploy's stop, a job cancelled at once) met node's
 * default and ended them 143, which a service manager or a scheduler takes for a failure. The launcher now catches
 * the two signals for such a command from its first line and keeps the first; withStopSignal, once it is set, takes
 * it over (`take`) and the command stops as it would have a moment later: nothing begun, the workspace closed and
 * its lock released, its clean stop's exit (0; 128 + n for a batch whose input is then unread — issue --batch,
 * registry import, notices ingest — which says so). A `serve --workers` worker runs this launcher too, so holds its own.
 *
 * Before the command could wait for ever while a signal is held — the passphrase prompt on a terminal — it lets go
 * (`release`): a signal held is then delivered as node's default (143, nothing is open yet), and so is one that
 * comes during the prompt, as before. A command that fails before it stops (a usage error) exits with its own code.
 *
 * SIGHUP, for `jpki serve` only: it reopens the access log once serve's handler is set, and "does not stop the
 * server" (its help) — but until then node's default ended it 129, and a `--workers` worker still loading when the
 * primary passed one on (logrotate's postrotate, a reload right after a start) died and was replaced a second later.
 * It is ignored until then, not held: no log is open yet to reopen (serve opens it by its name just before it sets
 * its handler, in the same turn). Released before a prompt, a terminal's hangup ends the prompt as before.
 *
 * Left: node's own start, before any JavaScript runs (tens of milliseconds), where nothing can catch a signal.
 */
const { parse } = require("./early-kek.cjs");

const KEY = Symbol.for("jpki.early-stop");
/**
 * Every command that stops cleanly on a signal: each passes its name here to withStopSignal (src/cli/context.ts), and
 * src/cli/early-stop.test.ts fails when a command module calls withStopSignal under a name this list lacks, or the
 * list names one no module uses. Words: the command, then a group's subcommand; a trailing option is one the
 * command stops cleanly only with (`provider follow` runs one pass and exits without --watch, and a signal held for
 * it would never be taken: it would be ignored until the pass ended). The start-up stop of watch, serve and
 * notices ingest is tested end to end (test/integration/daemon-start.test.ts).
 */
const STOPPING_COMMANDS = Object.freeze(["watch", "serve", "card serve", "notices ingest", "registry import", "registry sweep", "provider follow --watch", "issue --batch"]);
const SIGNALS = ["SIGTERM", "SIGINT"];
// Signals a command handles by itself without stopping: ignored, not held, until its handler is set.
const IGNORED = new Map([["serve", ["SIGHUP"]]]);
const ignore = () => {};

/** Whether `o` (parse) runs a command of STOPPING_COMMANDS: its words match, and its option is given. */
function isStopping(o) {
  if (o.help) return false;
  return STOPPING_COMMANDS.some((name) => {
    const words = name.split(" ");
    const option = words[words.length - 1].startsWith("--") ? words.pop() : undefined;
    if (words[0] !== o.command) return false;
    if (words.length > 1 && words[1] !== o.subcommand) return false;
    return option === undefined || o.options.some((given) => given === option || given.startsWith(`${option}=`));
  });
}

/** Holds SIGTERM and SIGINT from now on when `args` run a command of STOPPING_COMMANDS; returns whether it does. */
function holdEarlyStop(args) {
  let o;
  try {
    o = parse(args);
  } catch {
    return false;
  }
  if (!isStopping(o)) return false;
  let pending;
  const hold = (signal) => {
    pending ??= signal;
  };
  const ignored = IGNORED.get(o.command) ?? [];
  for (const s of SIGNALS) process.on(s, hold);
  for (const s of ignored) process.on(s, ignore);
  const letGo = () => {
    for (const s of SIGNALS) process.off(s, hold);
    for (const s of ignored) process.off(s, ignore);
    delete globalThis[KEY];
  };
  globalThis[KEY] = {
    /** The command's own handlers are set: these let go, and the signal held, if any, is the command's to honour. */
    take() {
      letGo();
      return pending;
    },
    /** The command is about to wait on a person (a prompt): signals are node's default again, the held one delivered. */
    release() {
      letGo();
      if (pending) process.kill(process.pid, pending);
    },
  };
  return true;
}

module.exports = { holdEarlyStop, STOPPING_COMMANDS };
