import { describe, expect, it } from "vitest";
import { StoreWatchdog } from "./watchdog.js";

describe("StoreWatchdog", () => {
  it("answers a call past the bound ERR_STORE_UNRESPONSIVE, refuses the next without making it while that one is out, says so once, and calls again once it settles", async () => {
    const stalls: string[] = [];
    const dog = new StoreWatchdog({ waitMs: 40, onStalled: (e) => stalls.push(e.code) });
    let release!: (v: string) => void;
    const deadlines: number[] = [];
    const before = dog.now();
    const hung = dog.run("a read", (deadline) => {
      deadlines.push(deadline);
      return new Promise<string>((r) => (release = r));
    });
    await expect(hung).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    // the write deadline a store is given is the moment the watchdog answers for the call
    expect(deadlines[0]! - before).toBeGreaterThanOrEqual(40);
    expect(dog.stalled).toBe(true);
    let called = 0;
    await expect(dog.run("another", async () => ++called)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(called).toBe(0);
    expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
    release("late");
    await new Promise((r) => setImmediate(r));
    expect(dog.stalled).toBe(false);
    expect(await dog.run("again", async () => ++called)).toBe(1);
    dog.close();
  });
});
