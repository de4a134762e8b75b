import { describe, expect, it, vi } from "vitest";
import { JpkiError } from "../errors.js";
import { currentCall, holdFor, STORE_CALL_KINDS, StoreWatchdog, type StoreCallKind, type WatchedCall } from "./watchdog.js";

describe("StoreWatchdog", () => {
  it("answers a call past the bound ERR_STORE_UNRESPONSIVE, refuses the next without making it while that one is out, says so once, and calls again once it settles", async () => {
    // The watchdog's clock is the test's: on the real one, a loaded machine that ran the next call more than a bound
    // after the stall began saw it let through as the stall's probe (the next test), not refused.
    let now = 0;
    const stalls: string[] = [];
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now, onStalled: (e) => stalls.push(e.code) });
    let release!: (v: string) => void;
    const deadlines: number[] = [];
    const before = dog.now();
    const hung = dog.run("reading the CA certificates", (deadline) => {
      deadlines.push(deadline);
      return new Promise<string>((r) => (release = r));
    });
    now = 40;
    await expect(hung).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    // the write deadline a store is given is the moment the watchdog answers for the call
    expect(deadlines[0]! - before).toBeGreaterThanOrEqual(40);
    expect(dog.stalled).toBe(true);
    let called = 0;
    await expect(dog.run("the overview's reads", async () => ++called)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(called).toBe(0);
    // counted by kind and why, for /metrics (jpki_store_refused_calls_total); the call let through is not
    expect(dog.refusals.get("the overview's reads")).toEqual({ stalled: 1, held: 0 });
    expect(dog.refusals.has("reading the CA certificates")).toBe(false);
    expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
    release("late");
    await new Promise((r) => setImmediate(r));
    expect(dog.stalled).toBe(false);
    expect(await dog.run("the overview's reads", async () => ++called)).toBe(1);
    dog.close();
  });

  it("lets one call through per bound while stalled (a probe): a hung one keeps the stall; one answered in time ends it though the first late call never settles, and that call's outcome, when it comes, changes nothing", async () => {
    let now = 0;
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now });
    let release!: (v: string) => void;
    const first = dog.run("reading the certificate's owner", () => new Promise<string>((r) => (release = r)));
    now = 40;
    await expect(first).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(dog.stalled).toBe(true);
    let called = 0;
    const answer = () => dog.run("the overview's reads", async () => ++called);
    // refused until a bound has passed since the stall began
    now = 79;
    await expect(answer()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(called).toBe(0);
    // a probe that hangs too: the next is a bound after it, and the stall stays
    now = 80;
    const hungProbe = dog.run("an OCSP status read", () => new Promise<never>(() => undefined));
    await expect(answer()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    now = 120;
    await expect(hungProbe).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(dog.stalled).toBe(true);
    // a probe answered in time: the store answers again, and every call goes through though the late ones are out
    expect(await answer()).toBe(1);
    expect(dog.stalled).toBe(false);
    expect(await answer()).toBe(2);
    expect(await answer()).toBe(3);
    // the forgotten late call settling later neither stalls nor unstalls anything
    release("late");
    await new Promise((r) => setImmediate(r));
    expect(dog.stalled).toBe(false);
    // and a new stall is counted afresh (nothing owed from the forgotten calls)
    const again = dog.run("reading the resident", () => new Promise<never>(() => undefined));
    now = 200;
    await expect(again).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(dog.stalled).toBe(true);
    await expect(answer()).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(called).toBe(3);
    dog.close();
  });

  it("a store method begun by a call finds it (currentCall), what it holds for it is let go of once the call is late, nothing is held for it after that, and the store's failure of a call it let go of keeps the stall until a probe answers", async () => {
    let now = 0;
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now });
    let call: WatchedCall | undefined;
    let afterAwait: WatchedCall | undefined;
    let fail!: (e: unknown) => void;
    const let_go: string[] = [];
    const first = dog.run("reading the CA certificates", async () => {
      // as a store method begins: the call is known until its first await (the store reads it there)
      call = currentCall();
      holdFor(call!, () => let_go.push("connection"));
      await new Promise((r) => setImmediate(r));
      afterAwait = currentCall();
      return new Promise<never>((_, reject) => (fail = reject));
    });
    expect(call).toBeDefined();
    expect(currentCall()).toBeUndefined(); // nothing outside the call's start runs as its part
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(afterAwait).toBeUndefined();
    now = 40;
    await expect(first).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(let_go).toEqual(["connection"]);
    expect(holdFor(call!, () => let_go.push("the overview's reads"))).toBeUndefined();
    // the store fails the call it let go of: that says nothing of the store, the stall stays
    fail(new JpkiError("ERR_STORE_UNRESPONSIVE", "closed", { details: { lateCall: "connection-closed" } }));
    await new Promise((r) => setImmediate(r));
    expect(dog.stalled).toBe(true);
    let called = 0;
    await expect(dog.run("the overview's reads", async () => ++called)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(called).toBe(0);
    // a probe a bound later answers in time: over
    now = 80;
    expect(await dog.run("reading the registered verifiers", async () => ++called)).toBe(1);
    expect(dog.stalled).toBe(false);
    expect(let_go).toEqual(["connection"]);
    // a call untied in time (released before its bound) is not let go of
    const held = dog.run("reading the CA certificates", async () => {
      const untie = holdFor(currentCall()!, () => let_go.push("released one"))!;
      untie();
      return new Promise<never>(() => undefined);
    });
    now = 120;
    await expect(held).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(let_go).toEqual(["connection"]);
    dog.close();
  });
  it("while stalled with no request to probe the store, sends its own probe (one per bound, none while one is out in time): the stall ends once the store answers, and the next stall is reported afresh", async () => {
    let now = 0;
    const stalls: string[] = [];
    let pings = 0;
    let answers = false;
    const dog = new StoreWatchdog({
      waitMs: 40,
      now: () => now,
      onStalled: (e) => stalls.push(e.code),
      probe: () => {
        pings++;
        return answers ? Promise.resolve() : new Promise<never>(() => undefined);
      },
    });
    const sweeps = () => new Promise((r) => setTimeout(r, 40)); // several sweeps (every 10 ms) at the same `now`
    const hung = dog.run("reading the certificate's owner", () => new Promise<never>(() => undefined));
    now = 40;
    await expect(hung).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(dog.stalled).toBe(true);
    // none before a bound has passed since the stall began
    await sweeps();
    expect(pings).toBe(0);
    now = 80;
    await vi.waitFor(() => expect(pings).toBe(1));
    // it hangs (the store is still gone): no other until a bound later, and the stall stays
    await sweeps();
    expect(pings).toBe(1);
    expect(dog.stalled).toBe(true);
    // the store is back; nobody asks anything, and the next probe ends the stall
    answers = true;
    now = 120;
    await vi.waitFor(() => expect(dog.stalled).toBe(false));
    expect(pings).toBe(2);
    // over: no more probes
    now = 400;
    await sweeps();
    expect(pings).toBe(2);
    // the next outage is a stall of its own, reported
    const again = dog.run("reading the resident", () => new Promise<never>(() => undefined));
    now = 440;
    await expect(again).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
    expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
    dog.close();
  });

  it("holds a kind of call still late when the store answers another in time (one table locked by another session): that kind is refused but one probe per bound, its probe late again stalls nothing else and says nothing, and one answered in time ends the hold", async () => {
    let now = 0;
    const stalls: string[] = [];
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now, onStalled: (e) => stalls.push(e.code) });
    const hang = () => new Promise<never>(() => undefined);
    let writes = 0;
    let reads = 0;
    const write = (f: () => Promise<unknown>) => dog.run("recording verifier fetches", () => (writes++, f()));
    const read = () => dog.run("reading the registered verifiers", async () => ++reads);
    try {
      const first = write(hang);
      now = 40;
      await expect(first).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(true);
      // a bound later, a read of another table is the probe, and answers: the store answers, but not that kind
      now = 80;
      expect(await read()).toBe(1);
      expect(dog.stalled).toBe(false);
      expect(dog.heldKinds).toEqual(["recording verifier fetches"]);
      // the held kind's first call goes at once, as its probe, and hangs on the lock too
      const probe = write(hang);
      expect(writes).toBe(2);
      // meanwhile its other calls are refused without being made; every other kind is answered
      now = 100;
      await expect(write(async () => "no")).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(writes).toBe(2);
      // counted as refused while held (/metrics: jpki_store_refused_calls_total{why="held"}), the probe not
      expect(dog.refusals.get("recording verifier fetches")).toEqual({ stalled: 0, held: 1 });
      expect(await read()).toBe(2);
      // the probe late again: answered 503, and nothing else is stalled for it (before, every kind was refused again,
      // the stall said again, and every call of the locked kind admitted between stalls waited the bound)
      now = 120;
      await expect(probe).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(false);
      expect(await read()).toBe(3);
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
      // the lock is gone: the next probe, a bound after the last, answers, and the hold ends
      now = 121;
      expect(await write(async () => "written")).toBe("written");
      expect(dog.heldKinds).toEqual([]);
      expect(await write(async () => "again")).toBe("again");
      // a call of that kind late again is a stall of the store, as any (reported afresh)
      const again = write(hang);
      now = 161;
      await expect(again).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.stalled).toBe(true);
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
    } finally {
      dog.close();
    }
  });
  it("holds the kind of a call the store gave up at its own deadline (SQLite's WriteDeadline under another process's write lock): the next calls of it are refused at once but one probe per bound, the stall is reported once, and a probe answered in time ends the hold", async () => {
    let now = 0;
    const stalls: string[] = [];
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now, onStalled: (e) => stalls.push(e.code) });
    let writes = 0;
    let reads = 0;
    // the store's own refusal at the deadline: the call settles failed, never late
    const givenUp = () => Promise.reject(new JpkiError("ERR_STORE_UNRESPONSIVE", "the store's write lock was held elsewhere past the deadline"));
    const write = (f: () => Promise<unknown>) => dog.run("recording verifier fetches", () => (writes++, f()));
    const read = () => dog.run("reading the registered verifiers", async () => ++reads);
    try {
      await expect(write(givenUp)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
      expect(dog.stalled).toBe(false);
      expect(dog.heldKinds).toEqual(["recording verifier fetches"]);
      // the next write, within the bound, is refused without being made (before: made, waited the bound, reported)
      now = 10;
      await expect(write(async () => "no")).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(writes).toBe(1);
      expect(dog.refusals.get("recording verifier fetches")).toEqual({ stalled: 0, held: 1 });
      // other kinds are answered
      expect(await read()).toBe(1);
      // a bound after the first, one write goes as the kind's probe; given up again, it says nothing new
      now = 40;
      await expect(write(givenUp)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(writes).toBe(2);
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE"]);
      await expect(write(async () => "no")).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(writes).toBe(2);
      // the lock gone: the next probe answers and the hold ends
      now = 80;
      expect(await write(async () => "written")).toBe("written");
      expect(dog.heldKinds).toEqual([]);
      expect(await write(async () => "again")).toBe("again");
      // given up again later: a new stall of that kind, reported afresh
      await expect(write(givenUp)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(stalls).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
    } finally {
      dog.close();
    }
  });

  it("a kind is a /metrics label (jpki_store_held, jpki_store_refused_calls_total), so only the fixed table's: the type refuses a kind built from a request, and one that reaches the watchdog anyway (a cast, a plain-JS caller) is refused, counted and held as an unnamed call", async () => {
    let now = 0;
    const dog = new StoreWatchdog({ waitMs: 40, now: () => now });
    const hang = () => new Promise<never>(() => undefined);
    const serial = "0123";
    // @ts-expect-error a kind built from a request (one series per serial) is not a StoreCallKind
    void (() => dog.run(`reading certificate ${serial}`, hang));
    const dynamic = (s: string) => `reading certificate ${s}` as StoreCallKind;
    try {
      const first = dog.run(dynamic("01"), hang);
      now = 40;
      await expect(first).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      await expect(dog.run(dynamic("02"), async () => 1)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      // another kind answers in time: the late call's kind is held, under the unnamed kind
      now = 80;
      expect(await dog.run("reading the registered verifiers", async () => 1)).toBe(1);
      expect(dog.heldKinds).toEqual(["a store call"]);
      // and every other dynamic kind is that one kind: its probe goes, the next is refused as held
      const probe = dog.run(dynamic("03"), hang);
      await expect(dog.run(dynamic("04"), async () => 1)).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect([...dog.refusals]).toEqual([["a store call", { stalled: 1, held: 1 }]]);
      now = 120;
      await expect(probe).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(dog.heldKinds).toEqual(["a store call"]);
      for (const kind of [...dog.refusals.keys(), ...dog.heldKinds]) expect(STORE_CALL_KINDS).toContain(kind);
      // a call watched directly (the disclosure log's way) likewise: of the unnamed kind, its answer in time ends its hold
      const added: WatchedCall = { startedAt: dog.now(), kind: dynamic("05"), late: () => undefined };
      dog.add(added);
      expect(added.kind).toBe("a store call");
      dog.settled(added);
      expect(dog.heldKinds).toEqual([]);
    } finally {
      dog.close();
    }
  });
});
