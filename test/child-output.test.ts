import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { childOutput } from "./child-output.js";

describe("childOutput", () => {
  it("ends once the output has all been read, not at the exit: a line written after the process was reaped is in it", async () => {
    // The grandchild holds sh's stdout and writes once sh is gone from /proc — reaped, so Node has already emitted
    // "exit" — which is what a process's last line still in the pipe at its exit looks like, made certain.
    const sh = `echo first; (while [ -e /proc/$$ ]; do sleep 0.02; done; echo last) & exit 3`;
    const child = spawn("sh", ["-c", sh], { stdio: ["ignore", "pipe", "pipe"] });
    const out = childOutput(child);
    let atExit: string | undefined;
    child.once("exit", () => (atExit = out.stdout()));
    expect(await out.ended).toEqual({ code: 3, signal: null });
    expect(atExit).not.toContain("last"); // the case this is for did happen
    expect(out.stdout()).toBe("first\nlast\n");
  });

  it("says the signal that ended it, and keeps a character whose bytes came in two reads whole", async () => {
    const js = `process.stderr.write(Buffer.from([0xe3])); setTimeout(() => { process.stderr.write(Buffer.from([0x81, 0x82])); process.kill(process.pid, "SIGKILL"); }, 50);`;
    const child = spawn(process.execPath, ["-e", js], { stdio: ["ignore", "pipe", "pipe"] });
    const out = childOutput(child);
    expect(await out.ended).toEqual({ code: null, signal: "SIGKILL" });
    expect(out.stderr()).toBe("あ");
    expect(out.stdout()).toBe("");
  });
});
