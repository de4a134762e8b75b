"use strict";
/**
 * A stop asked for before the command can stop cleanly. `jpki watch` (the daemon under a service manager) stops on
 * SIGTERM or SIGINT after the batch in progress and exits 0, but its handlers were set only once it had loaded the
 * program, read the passphrase and loaded the library (src/cli/context.ts withStopSignal): a SIGTERM in its first
 * ≈ 1.5–2 s (a restart right after a start, a deploy's stop) met node's default and ended it 143, which a service
 * manager takes for a failure. The launcher now catches the two signals for such a command from its first line and
 * keeps the first; withStopSignal, once it is set, takes it over (`take`) and the command stops as it would have
 * a moment later: nothing begun, the workspace closed and its lock released, exit 0.
 *
 * Before the command could wait for ever while a signal is held — the passphrase prompt on a terminal — it lets go
 * (`release`): a signal held is then delivered as node's default (143, nothing is open yet), and so is one that
 * comes during the prompt, as before. A command that fails before it stops (a usage error) exits with its own code.
 *
 * Left: node's own start, before any JavaScript runs (tens of milliseconds), where nothing can catch a signal.
 */
const { parse } = require("./early-kek.cjs");

const KEY = Symbol.for("jpki.early-stop");
// The commands that catch SIGTERM and SIGINT to stop cleanly whose start-up is covered. The others (serve, notices
// ingest …) set their handlers at the same place, and are left to die 143 in their first moments as before.
const STOPPING_COMMANDS = new Set(["watch"]);
const SIGNALS = ["SIGTERM", "SIGINT"];

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
  for (const s of SIGNALS) process.on(s, hold);
  const letGo = () => {
    for (const s of SIGNALS) process.off(s, hold);
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
