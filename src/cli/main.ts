#!/usr/bin/env node
// Entry point of the `jpki` binary (bin/jpki.cjs launches it, after answering --version and the top-level
// help itself). It loads only commander and the command definitions; a command loads the library when it
// runs (cli/lib.ts).
import { quietOnClosedPipe, processIo } from "./output.js";
import { run } from "./program.js";

quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
const code = await run(process.argv.slice(2), processIo());
process.exitCode = code;
