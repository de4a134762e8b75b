/**
 * Reading a file that must be a regular file — a passphrase or PIN file, a lock, a card's state, a backup's
 * manifest, a command's input — without ever waiting on something else put at its path.
 *
 * A plain readFileSync of a FIFO blocks until a writer comes (for ever, for an operator's mistake or a planted
 * one), and a check by path (stat, then read) leaves a window in which the file can be swapped for one. So the
 * file is opened non-blocking and judged by the descriptor it was opened with: only a regular file is read.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from "node:fs";

export interface RegularFileOptions {
  /** refuse a symbolic link at the path (ELOOP) instead of following it */
  readonly noFollow?: boolean;
  /**
   * A secret's file (a passphrase, a token, a PIN, a key): refused with the error this makes when group or others
   * may read or write it (any of mode 077). One rule for every secret file, judged on the descriptor read.
   */
  readonly ownerOnly?: (mode: number) => Error;
  /** sees the file's stat before a byte is read; throws to refuse it (a size bound) */
  readonly accept?: (stat: Stats) => void;
}

/** The code of the error readRegularFile throws for anything but a regular file (a FIFO, a directory, a device). */
export const NOT_REGULAR = "ENOTREG";

/**
 * The bytes of the regular file at `path` and its stat (taken before the read: `accept` bounds the size of
 * what is read, up to a file growing meanwhile). Throws the open's or the read's own error (ENOENT, EACCES, ELOOP with noFollow …),
 * an Error with code NOT_REGULAR for anything else at the path, or what `accept` throws. Callers turn these
 * into their own typed errors.
 */
export function readRegularFile(path: string, opts: RegularFileOptions = {}): { readonly bytes: Buffer; readonly stat: Stats } {
  const { fd, stat } = openRegularFile(path, opts);
  try {
    return { bytes: readFileSync(fd), stat };
  } finally {
    closeSync(fd);
  }
}

/**
 * The regular file at `path` opened for reading, as readRegularFile opens it (same errors), for a caller that
 * reads it in pieces (a CRL streamed entry by entry): the descriptor is the caller's to close.
 */
export function openRegularFile(path: string, opts: RegularFileOptions = {}): { readonly fd: number; readonly stat: Stats } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow ? constants.O_NOFOLLOW : 0));
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: NOT_REGULAR });
    if (opts.ownerOnly && stat.mode & 0o077) throw opts.ownerOnly(stat.mode & 0o777);
    opts.accept?.(stat);
    return { fd, stat };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

