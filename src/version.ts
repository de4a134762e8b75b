/** The jpki version: what `jpki --version` prints and what a backup's manifest records (kept with package.json's). */
export const VERSION = "0.1.0";
