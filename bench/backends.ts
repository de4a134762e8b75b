/**
 * The store backends the benchmarks run on, side by side: SQLite (a jpki.db in the bench's temporary
 * workspace) and PostgreSQL. `JPKI_BENCH_BACKENDS=sqlite,postgres` selects them (default: both).
 *
 * PostgreSQL: the server named by `JPKI_BENCH_PG=postgres://…` (a role allowed to CREATE DATABASE; each bench
 * makes a database of its own there, `jpki_bench_<pid>_<n>`, and drops it afterwards), else a throwaway
 * server started here with test/postgres-server.ts (initdb in a temporary directory, Unix socket only, fsync
 * off — as the tests run it — with more memory: shared_buffers 2 GB, max_wal_size 8 GB), stopped at the end.
 * When it cannot be started the reason is printed and the benches go on with SQLite alone.
 */
import pg from "pg";
import { connectionString, postmasterOfBackend, serverCpu, startPostgres } from "../test/postgres-server.js";
import { Workspace } from "../src/workspace/workspace.js";
import type { WorkspaceConfig } from "../src/workspace/config.js";

export type BackendName = "sqlite" | "postgres";

export interface Backend {
  readonly name: BackendName;
  /** A new workspace at `root` on an empty store of its own; `env` is what a child `jpki` needs to open it. */
  workspace(root: string, config?: Partial<WorkspaceConfig>): Promise<{ ws: Workspace; env: Record<string, string> }>;
  /** The env a child `jpki ca init` needs to create a workspace at a new store (JPKI_STORE for PostgreSQL). */
  newStoreEnv(): Promise<Record<string, string>>;
  /** After each bench: drops the databases it made (its workspace directory it removes itself). */
  cleanup(): Promise<void>;
  /** Drops the databases made for the benches; stops a server started for them. */
  close(): Promise<void>;
  /** CPU seconds the database server has used so far, when it runs on this host (that server's processes only), for per-unit costs. */
  serverCpuSeconds?(): number;
  /** The same in two parts: the sessions' backends, and the server's own processes (walwriter, checkpointer, …). */
  serverCpu?(): { readonly backends: number; readonly background: number };
  /**
   * Gathers the planner's statistics of the store `env` names (PostgreSQL's ANALYZE), as autovacuum does for a
   * live store within a minute of a load: a bench's store was filled seconds ago. Nothing on SQLite. `vacuum`: VACUUM
   * too, as autovacuum does after a load that updated a million rows (else it does so during the timed runs).
   */
  analyze?(env: Record<string, string>, opts?: { vacuum?: boolean }): Promise<void>;
}

const sqlite: Backend = {
  name: "sqlite",
  async workspace(root, config) {
    return { ws: Workspace.create(root, config ? { config } : {}), env: {} };
  },
  async newStoreEnv() {
    return {};
  },
  async cleanup() {},
  async close() {},
};

/** Where the PostgreSQL databases come from: a server of our own or the one JPKI_BENCH_PG names. */
interface Databases {
  readonly where: string;
  readonly cpu?: () => { readonly backends: number; readonly background: number };
  create(): Promise<string>;
  /** drops every database made so far */
  drop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Databases made with CREATE DATABASE through `adminUrl` and dropped by `drop()` (after each bench, so a scale
 * run never holds two benches' stores at once); `stop` ends a server of our own.
 */
function databases(where: string, adminUrl: string, stop?: () => Promise<void>, cpu?: () => { readonly backends: number; readonly background: number }): Databases {
  // JPKI_BENCH_KEEP keeps the databases on a server JPKI_BENCH_PG names, as it keeps the workspace directories,
  // for measuring by hand afterwards (a server of our own goes with the run, its databases with it).
  const keep = !!process.env.JPKI_BENCH_KEEP && !stop;
  const made: string[] = [];
  let n = 0;
  const admin = async <T>(f: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  const drop = () =>
    admin(async (c) => {
      for (const name of made.splice(0)) {
        if (keep) console.error(`kept database ${name}`);
        else await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
    });
  return {
    where,
    ...(cpu ? { cpu } : {}),
    async create() {
      const name = `jpki_bench_${process.pid}_${++n}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      made.push(name);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
    drop,
    async close() {
      try {
        await drop();
      } finally {
        await stop?.();
      }
    },
  };
}

function postgres(dbs: Databases): Backend & { readonly where: string } {
  return {
    name: "postgres",
    where: dbs.where,
    async workspace(root, config) {
      const url = await dbs.create();
      const ws = await Workspace.createAsync(root, { config: { ...config, store: "postgres" }, storeUrl: url });
      return { ws, env: { JPKI_STORE: url } };
    },
    async analyze(env, opts) {
      const c = new pg.Client({ connectionString: env.JPKI_STORE });
      await c.connect();
      try {
        await c.query(opts?.vacuum ? "VACUUM ANALYZE" : "ANALYZE");
      } finally {
        await c.end();
      }
    },
    async newStoreEnv() {
      return { JPKI_STORE: await dbs.create() };
    },
    cleanup: () => dbs.drop(),
    close: () => dbs.close(),
    ...(dbs.cpu ? { serverCpu: dbs.cpu, serverCpuSeconds: () => ((c) => c.backends + c.background)(dbs.cpu!()) } : {}),
  };
}

/** The postmaster of the server `url` names when it runs on this host (its session's backend's parent). */
async function postmasterOf(url: string): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return postmasterOfBackend((await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
  } finally {
    await c.end();
  }
}

/** The URL of a new, empty database on the PostgreSQL backend (for raw baselines), or undefined on SQLite. */
export async function scratchDatabase(b: Backend): Promise<string | undefined> {
  return b.name === "postgres" ? (await b.newStoreEnv()).JPKI_STORE : undefined;
}

/**
 * The backends asked for, in order. Messages (which server, or why PostgreSQL is left out) go to `say`, so
 * they land in the bench's output.
 */
export async function openBackends(say: (line: string) => void): Promise<Backend[]> {
  const names = (process.env.JPKI_BENCH_BACKENDS ?? "sqlite,postgres").split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (n !== "sqlite" && n !== "postgres") throw new Error(`JPKI_BENCH_BACKENDS: unknown backend ${JSON.stringify(n)} (sqlite, postgres)`);
  const out: Backend[] = [];
  for (const n of names) {
    if (n === "sqlite") {
      out.push(sqlite);
      continue;
    }
    try {
      const url = process.env.JPKI_BENCH_PG;
      let dbs: Databases;
      if (url) {
        // Its CPU when it runs on this host (its postmaster and children only: the host's other servers, a test
        // run's, are not the bench's), else none.
        const pm = await postmasterOf(url); // reach it now: a bad URL is reported before any bench runs
        dbs = databases("the server JPKI_BENCH_PG names", url, undefined, pm === undefined ? undefined : () => serverCpu(pm));
      } else {
        const server = await startPostgres({
          settings: { shared_buffers: "2GB", max_wal_size: "8GB", checkpoint_timeout: "30min", work_mem: "64MB", maintenance_work_mem: "512MB" },
        });
        const admin = connectionString(server.socketDir, "postgres");
        const pm = await postmasterOf(admin);
        dbs = databases(`a throwaway server (socket in ${server.socketDir})`, admin, () => server.stop(), pm === undefined ? undefined : () => serverCpu(pm));
      }
      const b = postgres(dbs);
      say(`postgres: ${b.where}`);
      out.push(b);
    } catch (e) {
      say(`postgres: not available, going on without it — ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return out;
}
