/**
 * Output for the CLI: human text or one JSON document on stdout, diagnostics and progress on stderr.
 * Commands write through an Io so tests drive the program in-process and read what it printed.
 */
import { statSync } from "node:fs";
import { JpkiError } from "../errors.js";
import type { UpgradeOptions, UpgradeProgress } from "../store/upgrade.js";
import type { PostgresStoreOptions } from "../store/postgres.js";

export interface Io {
  readonly stdout: { write(s: string): unknown; isTTY?: boolean };
  readonly stderr: { write(s: string): unknown; isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /**
   * Test-only settings of the library services a command runs. processIo never sets them, and no flag or
   * environment variable does: a production run always has the library's defaults. test/integration/serve-bound.mjs
   * gives `serve` a store bound (ServerOptions.storeWaitMs) of half a second, and its PostgreSQL store a close that
   * cuts what is still out after 0.2 s and a lock wait longer than the test (PostgresStoreOptions), so serve.test
   * proves what the 5 s bound and the 2 s close do without waiting them out, and that a stop never waits for a lock.
   * It also gives a store upgrade's fill small pages that each take a while (UpgradeOptions `pageRows`, `inPage`),
   * so a test can stop a daemon in the middle of its own upgrade with a few rows rather than a national table.
   */
  readonly testing?: {
    readonly storeWaitMs?: number;
    readonly postgres?: Pick<PostgresStoreOptions, "closeWaitMs" | "lockTimeoutMs">;
    readonly upgrade?: Pick<UpgradeOptions, "pageRows" | "inPage">;
  };
}

export const processIo = (): Io => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  // Opened on first use: few commands read stdin, and opening it costs every start a few milliseconds.
  get stdin() {
    return process.stdin;
  },
});

/**
 * `jpki … | head`: the reader goes away, the next write to the pipe fails with EPIPE, and Node would report
 * that as an unhandled 'error' event with a stack trace. Instead the stream is dropped quietly: like a tool
 * ended by SIGPIPE, jpki writes nothing more to it. Unlike one, it finishes the command (a reader leaving
 * never cuts a store transaction short) and exits with the command's own code, 0 when it succeeded, so a
 * `set -o pipefail` script piping into head does not fail. Any other write error is still raised.
 */
export function quietOnClosedPipe(stream: NodeJS.WritableStream): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    // After the error Node has destroyed the stream: later writes are dropped without another event.
    if (e.code !== "EPIPE") throw e;
  });
}

/** JSON.stringify that writes bigint as a decimal string and Buffers as hex. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === "bigint") return v.toString();
      if (v && typeof v === "object" && (v as { type?: string }).type === "Buffer" && Array.isArray((v as { data?: unknown }).data)) {
        return Buffer.from((v as { data: number[] }).data).toString("hex");
      }
      return v;
    },
    indent,
  );
}

/** A text progress bar: `[#########...........]  45%`. */
export function progressBar(fraction: number, width = 24): string {
  const f = Math.min(1, Math.max(0, fraction));
  const done = Math.round(f * width);
  return `[${"#".repeat(done)}${".".repeat(width - done)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}

/**
 * Tracks how much of an input file has been read, for a progress bar; a pipe (no size) shows no bar.
 * Pass `onBytes` to readRecords and prefix progress lines with `bar()`.
 */
export function fileProgress(source: string | NodeJS.ReadableStream): { onBytes: (n: number) => void; bar: () => string } {
  let total = 0;
  let bytes = 0;
  if (typeof source === "string") {
    try {
      total = statSync(source).size;
    } catch {
      total = 0; // readRecords reports the unreadable file
    }
  }
  return { onBytes: (n) => (bytes += n), bar: () => (total ? progressBar(bytes / total) + "  " : "") };
}

export class Output {
  readonly io: Io;
  readonly json: boolean;
  constructor(io: Io, json: boolean) {
    this.io = io;
    this.json = json;
  }
  /** The command's result: JSON document in --json mode, else the text. */
  result(data: unknown, text: string | (() => string)): void {
    if (this.json) this.io.stdout.write(toJson(data) + "\n");
    else this.io.stdout.write((typeof text === "function" ? text() : text).replace(/\n?$/, "\n"));
  }
  /**
   * One result of many (a --watch pass): in --json mode a JSON document on one line (JSON Lines, what a script
   * reading the stream line by line takes), else the text.
   */
  line(data: unknown, text: string | (() => string)): void {
    if (this.json) this.io.stdout.write(toJson(data, 0) + "\n");
    else this.result(data, text);
  }
  /** stderr is a stream of JSON lines (eventLines) */
  #events = false;
  /**
   * Under --json, makes stderr a stream of JSON objects, one a line, for a command that logs as it runs (`jpki
   * watch`: each CRL it publishes is an event line). A warning written as plain text there (a CRL tick that
   * failed, a sweep that failed, the workspace's own warnings) broke every reader of the stream, which parses
   * each line. From now on info() and event() write JSON lines; without --json nothing changes.
   */
  eventLines(): void {
    this.#events = this.json;
  }
  /** An event: a JSON line `{"event": name, ...fields}` on stderr when stderr is JSON lines, else `text`. */
  event(name: string, fields: Record<string, unknown>, text: string): void {
    if (this.#events) this.io.stderr.write(toJson({ event: name, ...fields }, 0) + "\n");
    else this.info(text);
  }
  /** A line on stderr for a person; `{"event":"message","message":…}` when stderr is JSON lines. */
  info(s: string): void {
    if (this.#events) this.io.stderr.write(toJson({ event: "message", message: s.replace(/\n$/, "") }, 0) + "\n");
    else this.io.stderr.write(s.replace(/\n?$/, "\n"));
  }
  /** Progress line on a terminal only; scripts and --json never see it. */
  progress(s: string): void {
    if (this.io.stderr.isTTY && !this.json) this.io.stderr.write(`\r\x1b[2K${s}`);
  }
  progressDone(): void {
    if (this.io.stderr.isTTY && !this.json) this.io.stderr.write("\r\x1b[2K");
  }
}

/** A published CRL as `crl generate` names it: `13-sig`, `13-sig/delta`, `13-sig/131016`, `13-sig/arl`. */
export function crlLabel(c: { readonly caId: string; readonly scope: string; readonly municipality?: string }): string {
  return c.scope === "full" ? c.caId : `${c.caId}/${c.municipality ?? c.scope}`;
}

/** Quiet this long into a store upgrade (most end before), ms. */
const UPGRADE_QUIET_MS = 2000;
/** Off a terminal, a progress line at most this often: a service's log gets a line, not one per page. */
const UPGRADE_LINE_MS = 10_000;

/**
 * Progress of a store upgrade that a command's store open runs (store/upgrade.ts: a column filled for every
 * certificate, an hour at national scale), on stderr once it has taken UPGRADE_QUIET_MS:
 * `upgrading the store: certified keys 1,200,000 / 200,000,000`. On a terminal (not --json) a line rewritten in
 * place as progress() does; otherwise, a line every UPGRADE_LINE_MS, since someone waits for a command that seems
 * to hang. Never stdout: --json stays one document.
 */
export function upgradeProgress(out: Output, now: () => number = Date.now): (p: UpgradeProgress) => void {
  const started = now();
  let shown = false;
  let lastLine = -Infinity;
  const n = (x: number) => x.toLocaleString("en-US");
  return (p) => {
    const t = now();
    if (t - started < UPGRADE_QUIET_MS) return;
    const live = out.io.stderr.isTTY === true && !out.json;
    const text =
      p.stage === "done" ? `upgraded the store: ${p.what} ${n(p.done)}`
      : p.stage === "indexing" ? `upgrading the store: ${p.what} ${n(p.done)} / ${n(p.total)}, building their index`
      : `upgrading the store: ${p.what} ${n(p.done)} / ${n(p.total)}`;
    if (p.stage === "done") {
      if (!shown) return;
      if (live) out.progressDone();
      out.info(text);
      return;
    }
    shown = true;
    if (live) out.progress(text);
    else if (p.stage === "indexing" || t - lastLine >= UPGRADE_LINE_MS) {
      lastLine = t;
      out.info(text);
    }
  };
}

/** "1 entry", "2 entries": a count with its noun, for the CRL lines every command prints. */
export function entriesText(n: number): string {
  return `${n} ${n === 1 ? "entry" : "entries"}`;
}

/**
 * Standard input for a batch read from `-` (`issue --batch -`, `counter batch -`). A terminal is read as a pipe is,
 * to its end, but not in silence: the clerk is told what is awaited and how to end it; with stderr elsewhere nobody
 * would be, so it is refused.
 */
export function batchStdin(io: Io, o: { readonly command: string; readonly items: string }): NodeJS.ReadableStream {
  const stdin = io.stdin ?? process.stdin;
  if (stdin.isTTY) {
    if (!io.stderr.isTTY) throw new JpkiError("ERR_USAGE", `${o.command}: standard input is a terminal and stderr is not, so nobody would be told it waits for ${o.items}; pipe them in: jpki ${o.command} < FILE`);
    io.stderr.write(`reading ${o.items} from the terminal, one JSON object a line; end with Ctrl-D\n`);
  }
  return stdin;
}

/**
 * A CA named in a command's --json output: `caId`, as `crl generate --json` and the HTTP API (/v1/status items,
 * /crl/index.json) name it, and `ca`, the same value under the name most commands gave it first — deprecated,
 * kept for the scripts that read it (never removed silently). One name everywhere: a script reading `caId` from
 * one command and `ca` from the next broke on whichever it had not met.
 */
export function caNamed(caId: string): { readonly caId: string; readonly ca: string } {
  return { caId, ca: caId };
}
