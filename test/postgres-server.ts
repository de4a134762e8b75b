/**
 * A throwaway PostgreSQL server for the store tests and the benchmarks (bench/backends.ts): initdb into a
 * temporary directory, listening only on a Unix socket in that directory (no TCP port), fsync off, trust
 * authentication (except the role {@link PASSWORD_ROLE}, which must give a password); stopped and removed by
 * `stop()`. Uses Debian's server binaries (/usr/lib/postgresql/<version>/bin, or JPKI_PG_BIN); `.ci/run`
 * installs them.
 *
 * initdb and postgres refuse to run as root, and the tests do run as root in CI: then the data directory
 * belongs to the `postgres` system user and the server runs as that user (root can still reach the socket).
 * As anyone else the server simply runs as the current user.
 *
 * A test run that dies without calling `stop()` (killed, timed out, crashed) must not leave a server running
 * or its directory behind. Three layers, each enough on its own for the cases it covers:
 * - an 'exit' handler stops the server (immediate shutdown) and removes the directory when the owning
 *   process exits without having called stop() — a normal exit, process.exit(), an uncaught exception;
 * - a watchdog, a small detached process started with the server, polls the owner's pid and does the same
 *   when the owner is gone — SIGKILL, a crash of Node itself — and exits when the directory disappears;
 * - `owner` in the directory records the owner (pid and start time): the next startPostgres sweeps every
 *   jpki-pg-* directory whose owner is dead, in case the watchdog was killed too.
 * The server is stopped by its postmaster pid (SIGQUIT, PostgreSQL's immediate shutdown), never by name.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);
const SUPERUSER = "jpki";
const PREFIX = "jpki-pg-";
/** A role the server asks for a password (scram-sha-256), for tests of failed authentication; create it yourself. */
export const PASSWORD_ROLE = "jpki_pw";

export interface PostgresTestServer {
  /** the socket directory: `host` for node-postgres */
  readonly socketDir: string;
  /**
   * A connection string for a new database: empty, or a copy of `template` (CREATE DATABASE … TEMPLATE, a file
   * copy; nobody may be connected to the template meanwhile).
   */
  createDatabase(template?: string): Promise<string>;
  /** a connection string for `database` as the superuser (the database need not exist) */
  url(database: string): string;
  /** the watchdog process (see the header) */
  readonly watchdogPid: number | undefined;
  /**
   * CPU seconds the server has used so far: the postmaster, its live children, and the children it has
   * reaped (their time lands in the postmaster's cutime/cstime). The benchmarks report it per unit of work.
   */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** The newest installed server's bin directory. */
export function binDir(): string {
  const fromEnv = process.env.JPKI_PG_BIN;
  if (fromEnv) return fromEnv;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) {
    throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql: install Debian's postgresql (.ci/run does) or set JPKI_PG_BIN");
  }
  return join(base, versions[0]!, "bin");
}

/** Who runs the server: the `postgres` user when we are root, else ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

export function connectionString(socketDir: string, database: string, user = SUPERUSER, password?: string): string {
  const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgresql://${auth}@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}`;
}

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22): a pid alone may be reused. */
function startTime(pid: number): string {
  return statFields(pid)[19] ?? "";
}

/** /proc/<pid>/stat after the command name: state, ppid, … (empty when there is no such process). */
function statFields(pid: number): string[] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return [];
  }
}

/**
 * The server's own processes by their titles (PostgreSQL sets them: "postgres: walwriter", …); every other child
 * of the postmaster is a backend serving a session (or a parallel worker of one).
 */
const BACKGROUND_TITLE = /^postgres: (checkpointer|background writer|walwriter|autovacuum (launcher|worker)|logical replication launcher|archiver|stats collector)\b/;

/**
 * CPU seconds of one server, not the host's other servers': `backends`, its sessions' backends (utime+stime of the
 * live ones, and the postmaster's cutime+cstime: the children that ended, sessions almost all), and `background`, its
 * own processes (the walwriter, checkpointer, background writer, autovacuum, …) and the postmaster's utime+stime.
 * /proc/<pid>/stat fields 14–17, clock ticks; 100 per second on Linux.
 */
export function serverCpu(pm: number): { readonly backends: number; readonly background: number } {
  const ticks = (f: string[], from: number, n: number) => f.slice(from, from + n).reduce((a, x) => a + Number(x), 0);
  const own = statFields(pm);
  let backends = ticks(own, 13, 2);
  let background = ticks(own, 11, 2);
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (Number(f[1]) !== pm) continue;
    let title = "";
    try {
      title = readFileSync(`/proc/${name}/cmdline`, "utf8");
    } catch {
      // ended meanwhile: its CPU is in the postmaster's cutime once reaped
    }
    if (BACKGROUND_TITLE.test(title)) background += ticks(f, 11, 2);
    else backends += ticks(f, 11, 2);
  }
  return { backends: backends / 100, background: background / 100 };
}

/** All of one server's CPU seconds (serverCpu's two parts). */
export function serverCpuSeconds(pm: number): number {
  const c = serverCpu(pm);
  return c.backends + c.background;
}

/**
 * The postmaster of the server a session's backend (`SELECT pg_backend_pid()`) belongs to, when that server runs
 * on this host: the backend's parent. Undefined for a server elsewhere (no such process here) or a pid that is
 * not a PostgreSQL backend.
 */
export function postmasterOfBackend(backendPid: number): number | undefined {
  const ppid = Number(statFields(backendPid)[1]);
  if (!Number.isInteger(ppid) || ppid <= 1) return undefined;
  try {
    // The postmaster runs the server binary (…/bin/postgres); a pid reused by something else does not.
    return /(^|\/)postgres$/.test(readFileSync(`/proc/${ppid}/cmdline`, "utf8").split("\0")[0] ?? "") ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Running, and the same process (start time) when known; a zombie has finished. */
function alive(pid: number, started?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const f = statFields(pid);
  if (f[0] === "Z") return false;
  return !started || !f.length || f[19] === started;
}

/** The postmaster's pid, from the first line of postmaster.pid (absent: not running). */
function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Immediate shutdown (SIGQUIT to the postmaster, which takes its backends down), a short wait for it to go,
 * then the directory. Synchronous: it runs in 'exit' handlers.
 */
function destroySync(root: string): void {
  const pid = postmasterPid(join(root, "data"));
  if (pid !== undefined && alive(pid)) {
    try {
      process.kill(pid, "SIGQUIT");
    } catch {
      // already gone
    }
    const until = Date.now() + 5000;
    while (alive(pid) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    if (alive(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
}

/** Removes the servers of earlier runs whose owner died without cleaning up (and whose watchdog died too). */
export function sweepStaleServers(dir = tmpdir()): string[] {
  const swept: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return swept;
  }
  for (const name of names) {
    const root = join(dir, name);
    let owner: { pid: number; started: string };
    try {
      owner = JSON.parse(readFileSync(join(root, "owner"), "utf8"));
    } catch {
      continue; // not made by this helper, or still being made: not ours to judge
    }
    if (alive(owner.pid, owner.started)) continue;
    destroySync(root);
    swept.push(root);
  }
  return swept;
}

/**
 * The watchdog's source, run with `node -e`: polls the owner every 250 ms; when it has gone and the
 * directory is still there, stops the postmaster by pid and removes the directory.
 */
const WATCHDOG = `
const fs = require("node:fs"), path = require("node:path");
const [owner, started, root] = JSON.parse(process.argv[1]);
const fields = (pid) => { try { const s = fs.readFileSync("/proc/" + pid + "/stat", "utf8"); return s.slice(s.lastIndexOf(")") + 2).split(" "); } catch { return []; } };
const alive = (pid, st) => { try { process.kill(pid, 0); } catch (e) { if (e.code !== "EPERM") return false; } const f = fields(pid); if (f[0] === "Z") return false; return !st || !f.length || f[19] === st; };
const pmPid = () => { try { return Number(fs.readFileSync(path.join(root, "data", "postmaster.pid"), "utf8").split("\\n")[0]) || 0; } catch { return 0; } };
const tick = () => {
  if (!fs.existsSync(root)) process.exit(0);
  if (alive(owner, started)) return;
  const pm = pmPid();
  if (pm && alive(pm)) { try { process.kill(pm, "SIGQUIT"); } catch {} }
  const until = Date.now() + 5000;
  const finish = () => {
    if (pm && alive(pm) && Date.now() < until) return setTimeout(finish, 20);
    if (pm && alive(pm)) { try { process.kill(pm, "SIGKILL"); } catch {} }
    fs.rmSync(root, { recursive: true, force: true });
    process.exit(0);
  };
  clearInterval(timer);
  finish();
};
const timer = setInterval(tick, 250);
`;

/**
 * Where a test run keeps the cluster its first initdb made (test/global-setup.ts sets it, inside the run's
 * temporary directory): every later server of the run starts on a copy of it. initdb took seconds a server, and
 * half a dozen files start one each; its output is the same every time (same binaries, same arguments), so a
 * copy is the cluster initdb would have made. Unset (the benchmarks, a file run on its own), initdb runs each time.
 */
export const INITDB_CACHE_ENV = "JPKI_TEST_PG_INITDB";

/** A new, stopped cluster in `data` (which must not exist): initdb, or a copy of the run's (INITDB_CACHE_ENV). */
async function initCluster(bin: string, data: string, as: { uid: number; gid: number } | undefined, asServer: object): Promise<void> {
  const initdb = (dir: string) => run(join(bin, "initdb"), ["-D", dir, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"], { ...asServer, cwd: dirname(dir) });
  const cache = process.env[INITDB_CACHE_ENV];
  if (!cache) return void (await initdb(data));
  if (!existsSync(cache)) {
    // Made under a name of its own, then renamed into place: two servers starting at once (two workers) each make
    // one, and the second rename finds the first's there and leaves it.
    const making = mkdtempSync(`${cache}.making-`);
    try {
      if (as) chownSync(making, as.uid, as.gid);
      await initdb(join(making, "data"));
      try {
        renameSync(making, cache);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      }
    } finally {
      rmSync(making, { recursive: true, force: true });
    }
  }
  // cp -a: the files keep their owner (the server's user) and modes (initdb's 0700 data directory)
  await run("cp", ["-a", join(cache, "data"), data]);
}

export interface StartOptions {
  /** the process whose end ends the server (default: this one; the tests of the cleanup pass another) */
  readonly owner?: number;
  /** extra postgresql.conf settings (the benchmarks give the server more memory than the tests need) */
  readonly settings?: Readonly<Record<string, string | number>>;
}

/** Names of the databases createDatabase makes: unique on a server that several processes' files share. */
let made = 0;
const runTag = randomBytes(3).toString("hex");

/** What a server whose directory is `root` offers its tests: its connections, its databases, its CPU time. */
function serverAt(root: string): Omit<PostgresTestServer, "watchdogPid" | "stop"> {
  const data = join(root, "data");
  return {
    socketDir: root,
    url: (database) => connectionString(root, database),
    cpuSeconds() {
      const pm = postmasterPid(data);
      return pm === undefined ? 0 : serverCpuSeconds(pm);
    },
    async createDatabase(template?: string) {
      const name = `jpki_test_${process.pid}_${runTag}_${++made}`;
      const admin = new pg.Client({ connectionString: connectionString(root, "postgres") });
      await admin.connect();
      try {
        await admin.query(template === undefined ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${pg.escapeIdentifier(template)}`);
      } finally {
        await admin.end();
      }
      return connectionString(root, name);
    },
  };
}

/**
 * A server another process started and stops (the run's shared one, test/global-setup.ts), as its socket directory
 * names it: the files that only make databases of their own on it use it; stop() leaves it running.
 */
export function runningServer(socketDir: string): PostgresTestServer {
  return { ...serverAt(socketDir), watchdogPid: undefined, stop: async () => undefined };
}

export async function startPostgres(opts: StartOptions = {}): Promise<PostgresTestServer> {
  sweepStaleServers();
  const bin = binDir();
  const as = serverUser();
  const root = mkdtempSync(join(tmpdir(), PREFIX));
  const owner = opts.owner ?? process.pid;
  const started = startTime(owner);
  writeFileSync(join(root, "owner"), JSON.stringify({ pid: owner, started }));
  const data = join(root, "data");
  const log = join(root, "server.log");
  if (as) chownSync(root, as.uid, as.gid);
  chmodSync(root, 0o700);
  // From here on the directory (and, once started, the server) goes with this process whatever happens.
  let stopped = false;
  const onExit = () => {
    if (!stopped) destroySync(root);
  };
  process.once("exit", onExit);
  const watchdog = spawn(process.execPath, ["-e", WATCHDOG, JSON.stringify([owner, started, root])], { detached: true, stdio: "ignore" });
  watchdog.unref();
  // execFile with uid/gid: the child runs as the server user, with a working directory and HOME it can read.
  const asServer = { cwd: root, env: { ...process.env, HOME: root, LC_ALL: "C" }, ...(as ?? {}) };
  try {
    await initCluster(bin, data, as, asServer);
    appendFileSync(
      join(data, "postgresql.conf"),
      [
        "",
        "# jpki tests: a Unix socket in this directory only, and no durability",
        "listen_addresses = ''",
        `unix_socket_directories = '${root}'`,
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "max_connections = 200",
        ...Object.entries(opts.settings ?? {}).map(([k, v]) => `${k} = ${typeof v === "number" ? v : `'${v}'`}`),
        "",
      ].join("\n"),
    );
    // The first matching line wins: the password role before initdb's trust lines.
    const hba = join(data, "pg_hba.conf");
    writeFileSync(hba, `local all ${PASSWORD_ROLE} scram-sha-256\n${readFileSync(hba, "utf8")}`);
    await run(join(bin, "pg_ctl"), ["-D", data, "-l", log, "-w", "-t", "60", "start"], asServer);
  } catch (e) {
    stopped = true;
    process.off("exit", onExit);
    destroySync(root);
    throw e;
  }
  return {
    ...serverAt(root),
    watchdogPid: watchdog.pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off("exit", onExit);
      const pm = postmasterPid(data);
      try {
        await run(join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"], asServer);
        // pg_ctl returns once postmaster.pid is gone, a moment before the process itself
        for (const until = Date.now() + 5000; pm !== undefined && alive(pm) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
      } finally {
        // the watchdog sees the directory gone and exits
        destroySync(root);
      }
    },
  };
}
