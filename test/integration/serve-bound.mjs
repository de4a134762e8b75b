/**
 * `jpki` as src/cli/main.ts runs it, with one test-only setting (Io.testing): the store bound of `serve`
 * (ServerOptions.storeWaitMs), in ms, given first. Run through the launcher as the CLI is:
 *   node bin/jpki.cjs --run-module test/integration/serve-bound.mjs 500 --workspace WS serve …
 * Plain JavaScript on the built program (dist/): a spawned node runs it without a TypeScript loader.
 */
import { processIo, quietOnClosedPipe } from "../../dist/src/cli/output.js";
import { run } from "../../dist/src/cli/program.js";

const [ms, ...args] = process.argv.slice(2);
const storeWaitMs = Number(ms);
if (!Number.isInteger(storeWaitMs) || storeWaitMs <= 0) throw new Error(`serve-bound.mjs: the first argument is the store bound in ms, not ${ms}`);
quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
const io = processIo();
// processIo's stdin is a getter (opened on first use): kept one, not read here
process.exitCode = await run(args, Object.defineProperties({ testing: { storeWaitMs } }, Object.getOwnPropertyDescriptors(io)));
