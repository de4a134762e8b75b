/**
 * InputPause (issuance.ts): a batch's wait for its next line, ended by the line or by a pause of INPUT_PAUSE_MS.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { InputPause } from "./issuance.js";

describe("InputPause", () => {
  it("keeps no line it handed over: what a batch has read can be collected while the batch runs", async () => {
    // Each race against one pause promise kept for the batch left a reaction on it holding that race's line: every
    // line read stayed reachable until the batch ended (a million-line batch held them all).
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const pause = new InputPause();
    try {
      const lines: Array<WeakRef<object>> = [];
      const readOne = async (n: number) => {
        const line = { line: n, value: { residentCode: "00000000000", publicKey: "A".repeat(400) } };
        lines.push(new WeakRef(line));
        expect(await pause.race(Promise.resolve(line))).toBe(line);
      };
      for (let n = 1; n <= 200; n++) await readOne(n);
      // WeakRef targets are kept until the job that made them ends
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      expect(lines.filter((r) => r.deref() !== undefined).length).toBe(0);
    } finally {
      pause.stop();
    }
  });

  it("a wait with no line ends paused; the next wait on the same read gets the line, not the last pause", async () => {
    const pause = new InputPause();
    try {
      let send!: (v: string) => void;
      const next = new Promise<string>((resolve) => (send = resolve));
      const first = await pause.race(next);
      expect(first).not.toBe("line");
      expect(typeof first).toBe("symbol");
      const second = pause.race(next);
      send("line");
      expect(await second).toBe("line");
      // and a line that is there at once is the answer, whatever paused before
      expect(await pause.race(Promise.resolve("now"))).toBe("now");
    } finally {
      pause.stop();
    }
  });

  it("a read that fails is the wait's error", async () => {
    const pause = new InputPause();
    try {
      await expect(pause.race(Promise.reject(new Error("EIO")))).rejects.toThrow("EIO");
    } finally {
      pause.stop();
    }
  });
});
