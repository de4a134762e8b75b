/**
 * V8's full collection, exposed to the benchmarks only (the library and the CLI never force one): a bench that
 * reads RSS collects first so it reads what is kept, and a bench whose setup made garbage collects it before the
 * timed section, which a real process would not have carried in.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
export const gc = runInNewContext("gc") as () => void;
