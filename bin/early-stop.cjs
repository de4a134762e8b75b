"use strict";
/**
 * A stop asked for before the command can stop cleanly. `jpki watch` and `jpki serve` (the daemons under a service
 * manager) stop on SIGTERM or SIGINT after the batch or answers in progress and exit 0, but their handlers were set
 * only once they had loaded the program, read the passphrase and loaded the library (src/cli/context.ts
 * withStopSignal): a SIGTERM in their first ≈ 1.5–2 s (a restart right after a start, a deploy's stop) met node's
 * default and ended them 143, which a service manager takes for a failure. The launcher now catches the two signals
 * for such a command from its first line and keeps the first; withStopSignal, once it is set, takes it over
 * (`take`) and the command stops as it would have a moment later: nothing begun, the workspace closed and its lock
 * released, exit 0. A `serve --workers` worker runs this launcher too, so holds its own.
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
// The daemons, whose start-up stop is tested (test/integration/daemon-start.test.ts). The other commands that stop
// cleanly on a signal (notices ingest, registry apply …: run by hand or by a job, not restarted by a service
// manager) set their handlers at the same place, and still end 143 in their first moments.
const STOPPING_COMMANDS = new Set(["watch", "serve"]);
const SIGNALS = ["SIGTERM", "SIGINT"];
// Signals a command handles by itself without stopping: ignored, not held, until its handler is set.
const IGNORED = new Map([["serve", ["SIGHUP"]]]);
const ignore = () => {};

/** Holds SIGTERM and SIGINT from now on when `args` run a command of STOPPING_COMMANDS; returns whether it does. */
function holdEarlyStop(args) {
  let o;
  try {
    o = parse(args);
  } catch {
    return false;
  }
  if (!STOPPING_COMMANDS.has(o.command) || o.help) return false;
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
