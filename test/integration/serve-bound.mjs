/**
 * `jpki` as src/cli/main.ts runs it, with test-only settings (Io.testing) given first as JSON: the store bound of
 * `serve` (ServerOptions.storeWaitMs) and PostgreSQL store options (closeWaitMs, lockTimeoutMs), in ms; a store
 * upgrade's fill in pages of `upgrade.pageRows` rows, each holding its transaction `upgrade.pageHoldMs` longer (as a
 * page of 10,000 rows takes a while), for any command. Run through the launcher as the CLI is:
 *   node bin/jpki.cjs --run-module test/integration/serve-bound.mjs '{"storeWaitMs":500}' --workspace WS serve …
 * Plain JavaScript on the built program (dist/): a spawned node runs it without a TypeScript loader.
 */
import { processIo, quietOnClosedPipe } from "../../dist/src/cli/output.js";
import { run } from "../../dist/src/cli/program.js";

const [settings, ...args] = process.argv.slice(2);
const testing = JSON.parse(settings ?? "");
const ms = (v) => Number.isInteger(v) && v > 0;
const only = (keys) => (o) => Object.entries(o).every(([k, v]) => keys.includes(k) && ms(v));
const known = { storeWaitMs: ms, postgres: only(["closeWaitMs", "lockTimeoutMs"]), upgrade: only(["pageRows", "pageHoldMs"]) };
for (const [k, v] of Object.entries(testing)) if (!known[k]?.(v)) throw new Error(`serve-bound.mjs: not a test setting: ${k}=${JSON.stringify(v)}`);
if (testing.upgrade) {
  const { pageRows, pageHoldMs } = testing.upgrade;
  // the page's transaction held, the event loop stopped, as while SQLite writes a page of rows
  const hold = pageHoldMs ? () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pageHoldMs) : () => undefined;
  testing.upgrade = { ...(pageRows ? { pageRows } : {}), inPage: hold };
}
quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
// processIo's stdin is a getter (opened on first use): kept one, not read here
process.exitCode = await run(args, Object.defineProperties({ testing }, Object.getOwnPropertyDescriptors(processIo())));
