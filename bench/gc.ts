/**
 * V8's full collection, exposed to the benchmarks only (the library and the CLI never force one): a bench that
 * reads RSS collects first so it reads what is kept, and a bench whose setup made garbage collects it before the
 * timed section, which a real process would not have carried in.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
export const gc = runInNewContext("gc") as () => void;

/**
 * A young-generation collection only (V8's gc({ type: "minor" })): what the issue bench runs between its rounds. A full
 * collection there (gc()) threw away the hot path's optimised code and type feedback every round (measured 2026-12-07,
 * 5 rounds of 3,000: issueBatch deoptimised in every round and 25–40 functions compiled again per round, against none
 * and 3–19 after a minor collection or none), which no batch of a running CA pays.
 */
export const minorGc = () => (gc as unknown as (opts: { type: "minor" }) => void)({ type: "minor" });
