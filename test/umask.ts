/**
 * Tests of the owner-only rule (files 0600, directories 0700 whatever the umask) run under umask 0, where a file
 * made without an explicit mode shows as 0666 and a directory as 0777.
 */
import { statSync } from "node:fs";
import { afterEach, beforeEach } from "vitest";

/** The permission bits of a path. */
export const fileMode = (p: string): number => statSync(p).mode & 0o777;

/** Runs each test of the enclosing suite (or file) under umask 0, and puts the process's umask back after it. */
export function underUmaskZero(): void {
  let saved: number;
  beforeEach(() => {
    saved = process.umask(0);
  });
  afterEach(() => {
    process.umask(saved);
  });
}
