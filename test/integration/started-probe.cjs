"use strict";
// Preloaded (node --require) by test/integration/daemon-start.test.ts: writes "started" on fd 3 once the main
// module's first turn has run — for bin/jpki.cjs, its synchronous start, where it holds a daemon's stop signals
// (bin/early-stop.cjs) — so a test can send a signal at the first moment jpki's own code has run, not in node's
// start before it, where nothing can catch one. For this process only: a process it forks (a serve --workers
// worker) inherits NODE_OPTIONS, and there fd 3 is cluster's IPC channel, which "started" broke.
process.env.NODE_OPTIONS = (process.env.NODE_OPTIONS ?? "").replace(`--require ${JSON.stringify(__filename)}`, "");
setImmediate(() => require("node:fs").writeSync(3, "started\n"));
