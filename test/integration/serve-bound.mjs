/**
 * `jpki` as src/cli/main.ts runs it, with test-only settings (Io.testing) given first as JSON: the store bound of
 * `serve` (ServerOptions.storeWaitMs) and PostgreSQL store options (closeWaitMs, lockTimeoutMs), in ms. Run through the launcher
 * as the CLI is:
 *   node bin/jpki.cjs --run-module test/integration/serve-bound.mjs '{"storeWaitMs":500}' --workspace WS serve …
 * Plain JavaScript on the built program (dist/): a spawned node runs it without a TypeScript loader.
 */
import { processIo, quietOnClosedPipe } from "../../dist/src/cli/output.js";
import { run } from "../../dist/src/cli/program.js";

const [settings, ...args] = process.argv.slice(2);
const testing = JSON.parse(settings ?? "");
const ms = (v) => Number.isInteger(v) && v > 0;
const known = { storeWaitMs: ms, postgres: (o) => Object.entries(o).every(([k, v]) => ["closeWaitMs", "lockTimeoutMs"].includes(k) && ms(v)) };
for (const [k, v] of Object.entries(testing)) if (!known[k]?.(v)) throw new Error(`serve-bound.mjs: not a test setting: ${k}=${JSON.stringify(v)}`);
quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
// processIo's stdin is a getter (opened on first use): kept one, not read here
process.exitCode = await run(args, Object.defineProperties({ testing }, Object.getOwnPropertyDescriptors(processIo())));
