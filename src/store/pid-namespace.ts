/**
 * Who a process is, for files that name their writer: its PID and its PID namespace. A bare PID says nothing
 * across PID namespaces — containers on one host, or hosts sharing a volume — where the same number may be a
 * live process in each, and another namespace's process is "not running" to this one. So what a process leaves
 * behind for others to judge (a spool claim, ca/spool-claim.ts; a temporary file, staging.ts) names both, and
 * only a PID of this namespace is ever looked up.
 *
 * The namespace is 16 hex digits: a hash of the kernel's boot id and /proc/self/ns/pid (containers on one host
 * share the boot id, with --uts=host even the hostname, never a PID namespace); random per process where /proc
 * cannot tell, and every other process's files are then foreign.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";

let ns: string | undefined;
/** This process's PID namespace (16 hex digits). */
export function thisNamespace(): string {
  if (ns === undefined) {
    try {
      const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      const pidNs = readlinkSync("/proc/self/ns/pid");
      if (!boot || !pidNs) throw new Error("no namespace");
      ns = createHash("sha256").update(`${boot}\n${pidNs}`).digest("hex").slice(0, 16);
    } catch {
      ns = randomBytes(8).toString("hex"); // cannot tell: no other process's file is provably dead
    }
  }
  return ns;
}

/**
 * Whether a process with this pid runs in this namespace (ours always does; EPERM: it runs as another user).
 * Only meaningful for a pid of {@link thisNamespace}.
 */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
