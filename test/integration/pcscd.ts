/**
 * A throwaway pcscd for the interop tests, with vsmartcard's vpcd reader on a port of its own.
 *
 * pcscd 1.9.9 always listens on /run/pcscd/pcscd.comm (the server ignores PCSCLITE_CSOCK_NAME; only the client
 * library honours it). So that a test neither collides with a system pcscd nor sees the machine's real readers,
 * pcscd runs in a private mount namespace (`unshare -m`; `unshare -rm`, a user namespace, when not root) with
 * a tmpfs over /run, and the clients reach its socket through /proc/<pid>/root/run/pcscd/pcscd.comm. Its
 * reader list comes from a private reader.conf.d (`pcscd -c`) naming only vpcd, on a free port: vpcd opens
 * `port` and `port + 1` (two slots) and waits there for virtual cards.
 * Only if no namespace can be made (a container without the capability) does it fall back to the fixed path,
 * and then only when no other pcscd owns it.
 *
 * Speed: Debian 12's vpcd sends each message's 2-byte length and its payload in two send()s, so Nagle's algorithm
 * on its side waits for the card's delayed ACK — ~40 ms per APDU, seconds per OpenSC command. As root, pcscd and
 * the card get a network namespace of their own ({@link startReaderNetwork}) whose loopback routes carry
 * `quickack 1`: every ACK goes at once, an OpenSC command takes a tenth of a second. Without root everything still
 * works, slowly.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Debian's (and upstream's) place for the vpcd driver. */
export const VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

export interface Pcscd {
  /** The port vpcd waits on for the card (slot 0). */
  readonly vpcdPort: number;
  /** Environment for PC/SC clients (opensc-tool, pkcs11-tool …): the socket of this pcscd, and a private HOME. */
  readonly env: Record<string, string>;
  /** Everything pcscd wrote, for a failing test's message. */
  log(): string;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}

/** A port p with p and p + 1 free (vpcd binds both, on every IPv4 address). */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "0.0.0.0", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    if (p < 65535 && (await portFree(p + 1))) return p;
  }
  throw new Error("no two adjacent free TCP ports for vpcd");
}

/** How pcscd can get a /run of its own here: as root, as a user namespace's root, or not at all. */
function namespaceCommand(): string[] | undefined {
  for (const args of [["-m"], ["-r", "-m"]]) {
    const r = spawnSync("unshare", [...args, "--propagation", "private", "sh", "-c", "mount -t tmpfs jpki-probe /run"], { stdio: "ignore" });
    if (r.status === 0) return ["unshare", ...args, "--propagation", "private"];
  }
  return undefined;
}

/** A network namespace for pcscd and the card; it outlives pcscd restarts. */
export interface ReaderNetwork {
  /** The command line that runs `cmd args` inside it. */
  wrap(cmd: string, args: string[]): [string, string[]];
  stop(): Promise<void>;
}

/** The loopback of the reader network: up, with immediate ACKs (see the header). */
const QUICKACK_LOOPBACK =
  "ip link set lo up && ip route change local 127.0.0.1 dev lo proto kernel scope host src 127.0.0.1 table local quickack 1 && " +
  "ip route change local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1 table local quickack 1";

/**
 * A network namespace held by a sleeping process, its loopback with quickack routes; undefined where that cannot
 * be had (not root, no iproute2): then pcscd and the card share the test's network, and APDUs are slow.
 */
export async function startReaderNetwork(): Promise<ReaderNetwork | undefined> {
  const probe = spawnSync("unshare", ["-n", "sh", "-c", QUICKACK_LOOPBACK], { stdio: "ignore" });
  if (probe.status !== 0 || spawnSync("nsenter", ["--version"], { stdio: "ignore" }).status !== 0) return undefined;
  const holder = spawn("unshare", ["-n", "sh", "-c", `${QUICKACK_LOOPBACK} && echo up && exec sleep infinity`], { stdio: ["ignore", "pipe", "ignore"] });
  const exited = new Promise<void>((resolve) => holder.once("exit", () => resolve()));
  const up = await new Promise<boolean>((resolve) => {
    holder.stdout!.once("data", () => resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!up) return undefined;
  return {
    wrap: (cmd, args) => ["nsenter", ["-t", String(holder.pid), "-n", cmd, ...args]],
    async stop() {
      if (holder.exitCode === null && holder.signalCode === null) {
        holder.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** Starts pcscd with vpcd on `vpcdPort` (and the next port), by default a free pair; in `network` if given. */
export async function startPcscd(options: { vpcdPort?: number; network?: ReaderNetwork } = {}): Promise<Pcscd> {
  if (!existsSync(VPCD_DRIVER)) throw new Error(`${VPCD_DRIVER} is missing: install Debian's vsmartcard-vpcd (and pcscd, opensc)`);
  const dir = mkdtempSync(join(tmpdir(), "jpki-pcscd-"));
  const confDir = join(dir, "reader.conf.d");
  const home = join(dir, "home");
  mkdirSync(confDir, { mode: 0o700 });
  mkdirSync(home, { mode: 0o700 });
  const vpcdPort = options.vpcdPort ?? (await freePortPair());
  // DEVICENAME /dev/null:PORT = "listen on PORT" (ifd-vpcd.c IFDHCreateChannelByName); a host name there would
  // make vpcd connect out instead.
  writeFileSync(
    join(confDir, "vpcd"),
    `FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:${vpcdPort}\nLIBPATH ${VPCD_DRIVER}\nCHANNELID ${vpcdPort}\n`,
    { mode: 0o600 },
  );
  const ns = namespaceCommand();
  const inNetwork = (cmd: string, args: string[]): [string, string[]] => (options.network ? options.network.wrap(cmd, args) : [cmd, args]);
  let child: ChildProcess;
  if (ns) {
    const [cmd, ...args] = ns;
    // nsenter, unshare and sh exec in turn, so the child's pid is pcscd's and /proc/<pid>/root sees its /run.
    child = spawn(...inNetwork(cmd!, [...args, "sh", "-c", `mount -t tmpfs -o mode=0755 jpki-pcscd /run && exec pcscd --foreground --info -c '${confDir}'`]), {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } else {
    if (existsSync("/run/pcscd/pcscd.comm")) throw new Error("another pcscd owns /run/pcscd/pcscd.comm and no private mount namespace can be made here (unshare -m failed)");
    child = spawn(...inNetwork("pcscd", ["--foreground", "--info", "-c", confDir]), { stdio: ["ignore", "pipe", "pipe"] });
  }
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const socket = ns ? `/proc/${child.pid}/root/run/pcscd/pcscd.comm` : "/run/pcscd/pcscd.comm";
  // Up when its socket exists; it takes a few hundred milliseconds. A pcscd that exits first failed to start.
  let gone = false;
  void exited.then(() => (gone = true));
  while (!existsSync(socket)) {
    if (gone) throw new Error(`pcscd did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    vpcdPort,
    env: { PCSCLITE_CSOCK_NAME: socket, HOME: home },
    log: () => output,
    async stop() {
      if (!gone) {
        child.kill("SIGTERM");
        // pcscd stops on SIGTERM within a poll of its readers; a hung one must not hang the suite.
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
