/**
 * WAL frames of a SQLite store's commits, by B-tree (issue 8, the issuance target). Each page a transaction
 * changes is one frame appended to `<db>-wal` (https://sqlite.org/fileformat2.html#walformat): a write for the
 * committing thread and, later, a copy for the checkpointer. A certificate that lands on a random page of a
 * random-keyed tree costs about one frame per such tree once the tree has many more pages than a group commit has
 * certificates, so the frames per certificate grow with the store; this names the trees they go to.
 *
 * Why the file and not a counter: SQLite's own page-write counter is not exposed by better-sqlite3, and the
 * frame headers carry each frame's page number, which dbstat maps to its table or index.
 */
import { closeSync, openSync, readSync } from "node:fs";
import type Database from "better-sqlite3";

const WAL_HEADER = 32;
const FRAME_HEADER = 24;

/**
 * Reads the frames committed to one database's WAL since the last read. The log starts over (a new salt in its
 * header, frames written again from the start) when a writer begins after a complete checkpoint: `take` must run
 * after each commit and before the next write transaction, or the frames that one overwrote are not seen.
 * Committed frames only: those of a transaction not yet committed are read again at the next call.
 */
export class WalFrames {
  readonly #wal: string;
  #salt: Buffer | undefined;
  #next = WAL_HEADER;
  #frames = 0;
  readonly #pages = new Map<number, number>();

  constructor(dbPath: string) {
    this.#wal = `${dbPath}-wal`;
  }

  /** Frames committed since the last call (all of them at the first), now counted. */
  take(): number {
    let fd: number;
    try {
      fd = openSync(this.#wal, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0; // no log yet, or removed at the last close
      throw e;
    }
    try {
      const header = Buffer.alloc(WAL_HEADER);
      if (readSync(fd, header, 0, WAL_HEADER, 0) < WAL_HEADER) return 0;
      const raw = header.readUInt32BE(8);
      const pageSize = raw === 1 ? 65536 : raw;
      const salt = header.subarray(16, 24);
      if (!this.#salt?.equals(salt)) {
        this.#salt = Buffer.from(salt);
        this.#next = WAL_HEADER; // a new log: its frames start at the top again
      }
      const frame = Buffer.alloc(FRAME_HEADER);
      const pending: number[] = [];
      let at = this.#next;
      let taken = 0;
      // A frame belongs to this log while it carries the header's salt; past the last one are older frames.
      while (readSync(fd, frame, 0, FRAME_HEADER, at) === FRAME_HEADER && frame.subarray(8, 16).equals(salt)) {
        pending.push(frame.readUInt32BE(0));
        at += FRAME_HEADER + pageSize;
        if (frame.readUInt32BE(4) !== 0) {
          // a commit frame: its transaction's frames count
          for (const p of pending) this.#pages.set(p, (this.#pages.get(p) ?? 0) + 1);
          taken += pending.length;
          pending.length = 0;
          this.#next = at;
        }
      }
      this.#frames += taken;
      return taken;
    } finally {
      closeSync(fd);
    }
  }

  /** Moves past the frames committed so far without counting them: where a measurement starts. */
  skip(): void {
    this.take();
    this.#pages.clear();
    this.#frames = 0;
  }

  /** Frames counted so far. */
  get frames(): number {
    return this.#frames;
  }

  /**
   * The frames counted, by the table or index that holds each page now (dbstat, on a connection to the same
   * database): a page freed since is "(free)". One pass over every page of the database.
   */
  byTree(db: Database.Database): Map<string, number> {
    const owner = new Map(db.prepare("SELECT pageno, name FROM dbstat").raw().all() as Array<[number, string]>);
    const out = new Map<string, number>();
    for (const [page, n] of this.#pages) {
      const name = owner.get(page) ?? "(free)";
      out.set(name, (out.get(name) ?? 0) + n);
    }
    return new Map([...out].sort((a, b) => b[1] - a[1]));
  }
}
