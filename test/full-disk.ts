/**
 * Whether a file on a small tmpfs of a test's own has taken all the room there is: no page of it free, and the
 * file's own last page written to its end. No write can then add a byte to the file, so what a writer (a thread,
 * another process) put there is final: what a test of a full disk waits for before it reads the file. "Its size
 * unchanged for 300 ms" stood for it, and a writer taken off the CPU for longer than that on a loaded host ended
 * the wait before the disk was full. For tmpfs, whose space is whole pages, each allocated as a write reaches it
 * (the size is at a page's end only once the write has filled that page), and for a writer with more to write
 * than the disk holds (else the disk never fills).
 */
import { existsSync, statSync, statfsSync } from "node:fs";
import { dirname } from "node:path";

export function filledItsDisk(path: string): boolean {
  if (!existsSync(path)) return false;
  const { size, blocks } = statSync(path);
  return size > 0 && size === blocks * 512 && statfsSync(dirname(path)).bavail === 0;
}
