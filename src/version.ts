import { createRequire } from "node:module";

/**
 * The jpki version: what `jpki --version` prints and what a backup's manifest records. package.json is its one
 * source: bin/jpki.cjs prints it from there without loading any ES module (issue 8 point 9), and this reads
 * the same file through the package's own "./package.json" export, which resolves alike from src/ and dist/src/.
 */
export const VERSION: string = (createRequire(import.meta.url)("jpki/package.json") as { version: string }).version;
