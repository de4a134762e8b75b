/**
 * The CPU time the calling thread has had, in ms: for a test that bounds the work a call does (a linear-time parser
 * against a quadratic one), not the time it takes. The wall clock counts the time a loaded host gives the thread no
 * core (seconds at load 10+ on two cores); the thread's own CPU time does not. Linux: utime + stime of
 * /proc/thread-self/stat, in clock ticks (10 ms at the usual USER_HZ of 100); elsewhere the whole process's CPU time
 * (process.cpuUsage), which counts other threads too but not the time without a core.
 */
import { readFileSync } from "node:fs";

const TICK_MS = 10;

export function threadCpuMs(): number {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    // after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[14 - 3]) + Number(fields[15 - 3])) * TICK_MS;
  } catch {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
}
