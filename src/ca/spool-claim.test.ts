/**
 * Spool claims across PID namespaces (ca/spool-claim.ts): who holds a file in processing/, when it is taken over,
 * and settling a finished file into done/ or failed/ without replacing another file's, or twice after a kill.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLAIM_STALE_MS, beat, claimEntry, claimState, parseClaim, settleClaim, sidecarOf, stale, sweepClaimLeftovers, takeClaim, thisNamespace } from "./spool-claim.js";

const OTHER_NS = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
const HOUR = 3600_000;
let spool: string;
let processing: string;
let done: string;
let failed: string;

/** A pid no process has here: a child's, once it has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((res) => p.on("exit", res));
  return p.pid!;
}

function at(path: string, ms: number): void {
  utimesSync(path, new Date(ms), new Date(ms));
}

beforeEach(() => {
  spool = mkdtempSync(join(tmpdir(), "jpki-claim-"));
  [processing, done, failed] = ["processing", "done", "failed"].map((d) => join(spool, d)) as [string, string, string];
  for (const d of [processing, done, failed]) mkdirSync(d);
});

describe("claims", () => {
  it("reads this version's, an earlier version's and an older version's claims", () => {
    expect(parseClaim(`42~@${OTHER_NS}~feed.jsonl`)).toEqual({ name: "feed.jsonl", owner: { pid: 42, ns: OTHER_NS } });
    expect(parseClaim("42~feed.jsonl")).toEqual({ name: "feed.jsonl", owner: { pid: 42 } });
    expect(parseClaim("feed.jsonl")).toEqual({ name: "feed.jsonl" });
    expect(claimEntry("x.csv")).toBe(`${process.pid}~@${thisNamespace()}~x.csv`);
    expect(thisNamespace()).toMatch(/^[0-9a-f]{16}$/);
  });

  it("leaves another namespace's claim alone while its heartbeat is fresh, whatever its pid is here; takes it once stale", async () => {
    const pid = await deadPid(); // not running here: in its own namespace it may well be
    const claim = join(processing, `${pid}~@${OTHER_NS}~feed.jsonl`);
    writeFileSync(claim, "{}\n");
    writeFileSync(sidecarOf(claim, "alive"), "");
    const now = Date.now();
    at(claim, now - 2 * HOUR); // the producer's old mtime: the heartbeat is what counts
    at(sidecarOf(claim, "alive"), now - 60_000);
    expect(claimState(claim, now)).toBe("held");
    at(sidecarOf(claim, "alive"), now - CLAIM_STALE_MS - 1);
    expect(claimState(claim, now)).toBe("free");
    // with no heartbeat beside it, the claim's own mtime
    const bare = join(processing, `${pid}~@${OTHER_NS}~other.jsonl`);
    writeFileSync(bare, "{}\n");
    at(bare, now - 60_000);
    expect(claimState(bare, now)).toBe("held");
    at(bare, now - CLAIM_STALE_MS - 1);
    expect(claimState(bare, now)).toBe("free");
    // a custom timeout
    expect(claimState(bare, now, 2 * CLAIM_STALE_MS)).toBe("held");
  });

  it("takes a claim of this namespace whose watcher is gone at once, and leaves a live one's alone until it is stale", async () => {
    const now = Date.now();
    const gone = join(processing, `${await deadPid()}~@${thisNamespace()}~a.jsonl`);
    writeFileSync(gone, "");
    writeFileSync(sidecarOf(gone, "alive"), "");
    expect(claimState(gone, now)).toBe("free");
    const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
    const exited = new Promise((res) => live.on("exit", res));
    try {
      const held = join(processing, `${live.pid}~@${thisNamespace()}~b.jsonl`);
      writeFileSync(held, "");
      writeFileSync(sidecarOf(held, "alive"), "");
      expect(claimState(held, now)).toBe("held");
      // alive but silent past the timeout: hung, or its pid reused
      at(sidecarOf(held, "alive"), now - CLAIM_STALE_MS - 1);
      expect(claimState(held, now)).toBe("free");
      // an earlier version's claim: its pid alone decides, as that version did (no heartbeat to wait for)
      const earlier = join(processing, `${live.pid}~c.jsonl`);
      writeFileSync(earlier, "");
      at(earlier, now - 2 * CLAIM_STALE_MS);
      expect(claimState(earlier, now)).toBe("held");
    } finally {
      live.kill("SIGKILL");
      await exited;
    }
    expect(claimState(join(processing, `${live.pid}~c.jsonl`), now)).toBe("free");
    expect(claimState(join(processing, "d.jsonl"), now)).toBe("free"); // an older version's bare name
    expect(claimState(join(processing, claimEntry("e.jsonl")), now)).toBe("ours");
  });

  it("a heartbeat keeps a claim fresh, says when the claim was taken over, and a clean stop releases it", () => {
    const now = Date.now();
    writeFileSync(join(spool, "feed.jsonl"), "{}\n");
    const mine = join(processing, claimEntry("feed.jsonl"));
    const alive = sidecarOf(mine, "alive");
    expect(takeClaim(join(spool, "feed.jsonl"), mine, now - 2 * CLAIM_STALE_MS)).toBe(true);
    expect(Math.abs(statSync(alive).mtimeMs - (now - 2 * CLAIM_STALE_MS))).toBeLessThan(1);
    expect(readFileSync(alive, "utf8")).toContain(`"pid":${process.pid}`); // who holds it, for an operator
    expect(beat(mine, now)).toBe(true);
    expect(Math.abs(statSync(alive).mtimeMs - now)).toBeLessThan(1);
    stale(mine);
    expect(statSync(alive).mtimeMs).toBe(0);
    renameSync(mine, join(processing, `1~@${OTHER_NS}~feed.jsonl`)); // taken over
    expect(beat(mine, now)).toBe(false);
  });

  it("taking a claim over removes its old owner's sidecars and half-written temporary files, nothing else", () => {
    const old = join(processing, `7~@${OTHER_NS}~feed.jsonl`);
    const keep = join(processing, `7~@${OTHER_NS}~feed.jsonl.more.jsonl`);
    for (const f of [old, keep]) writeFileSync(f, "");
    const leftovers = [".alive", ".rejects.jsonl", ".error.json"].map((s) => `.7~@${OTHER_NS}~feed.jsonl${s}`);
    leftovers.push(`..7~@${OTHER_NS}~feed.jsonl.rejects.jsonl.7.0123456789ab.tmp`);
    for (const f of [...leftovers, `.7~@${OTHER_NS}~feed.jsonl.more.jsonl.alive`]) writeFileSync(join(processing, f), "");
    const mine = join(processing, claimEntry("feed.jsonl"));
    expect(takeClaim(old, mine, Date.now())).toBe(true);
    expect(readdirSync(processing).sort()).toEqual([`.${claimEntry("feed.jsonl")}.alive`, `.7~@${OTHER_NS}~feed.jsonl.more.jsonl.alive`, claimEntry("feed.jsonl"), `7~@${OTHER_NS}~feed.jsonl.more.jsonl`].sort());
    // a rename another watcher won: nothing of ours is left behind
    expect(takeClaim(old, join(processing, claimEntry("again.jsonl")), Date.now())).toBe(false);
    expect(existsSync(sidecarOf(join(processing, claimEntry("again.jsonl")), "alive"))).toBe(false);
  });

  it("sweeps leftovers of claims no longer there once they are stale, never a present claim's", () => {
    const now = Date.now();
    const present = join(processing, `9~@${OTHER_NS}~feed.jsonl`);
    writeFileSync(present, "");
    const files = {
      ownOld: `.9~@${OTHER_NS}~feed.jsonl.rejects.jsonl`,
      orphanOld: `.8~@${OTHER_NS}~gone.jsonl.alive`,
      orphanTemp: `..8~@${OTHER_NS}~gone.jsonl.rejects.jsonl.8.0123456789ab.tmp`,
      orphanNew: `.8~@${OTHER_NS}~new.jsonl.alive`,
    };
    for (const f of Object.values(files)) writeFileSync(join(processing, f), "");
    for (const f of [files.ownOld, files.orphanOld, files.orphanTemp]) at(join(processing, f), now - 2 * CLAIM_STALE_MS);
    expect(sweepClaimLeftovers(processing, now).sort()).toEqual([files.orphanOld, files.orphanTemp].sort());
    expect(readdirSync(processing).sort()).toEqual([files.ownOld, files.orphanNew, `9~@${OTHER_NS}~feed.jsonl`].sort());
  });
});

describe("settling a finished file", () => {
  /** A claimed file with a reject file beside it in processing/. */
  function claimed(name: string, body: string, rejects?: string): string {
    const c = join(processing, `${Math.floor(Math.random() * 1e6)}~@${OTHER_NS}~${name}`);
    writeFileSync(c, body);
    if (rejects !== undefined) writeFileSync(sidecarOf(c, "rejects"), rejects);
    return c;
  }
  const stamp = "2026-05-01T00-00-00-000Z";

  it("never replaces a file or a reject file there: three files of one name (one stamp) and an earlier file's lone reject file all survive", () => {
    writeFileSync(join(done, "feed.jsonl.rejects.jsonl"), "first\n"); // its file archived by an operator
    const names = ["second", "third", "fourth"].map((x) => settleClaim({ claim: claimed("feed.jsonl", x, `${x} rejects\n`), name: "feed.jsonl", dir: done, otherDir: failed, stamp }));
    expect(names.map((s) => [s.path, s.sidecars.rejects])).toEqual(
      [`${stamp}-feed.jsonl`, `${stamp}-2-feed.jsonl`, `${stamp}-3-feed.jsonl`].map((b) => [join(done, b), join(done, `${b}.rejects.jsonl`)]),
    );
    expect(readFileSync(join(done, "feed.jsonl.rejects.jsonl"), "utf8")).toBe("first\n");
    expect(names.map((s) => readFileSync(s.sidecars.rejects!, "utf8"))).toEqual(["second rejects\n", "third rejects\n", "fourth rejects\n"]);
    expect(names.map((s) => readFileSync(s.path, "utf8"))).toEqual(["second", "third", "fourth"]);
    expect(readdirSync(processing)).toEqual([]);
  });

  it("a file killed between its link into done/ and its removal from processing/ is settled once, under the name it had", () => {
    const c = claimed("feed.jsonl", "body", "rejects\n");
    linkSync(c, join(done, "feed.jsonl")); // the first settling's link, then a kill
    const s = settleClaim({ claim: c, name: "feed.jsonl", dir: done, otherDir: failed, stamp });
    expect(s).toEqual({ path: join(done, "feed.jsonl"), sidecars: { rejects: join(done, "feed.jsonl.rejects.jsonl") } });
    expect(readdirSync(done).sort()).toEqual(["feed.jsonl", "feed.jsonl.rejects.jsonl"]);
    expect(readdirSync(processing)).toEqual([]);
  });

  it("settled in failed/ before a kill and in done/ when resumed: only done/ holds it then", () => {
    const c = claimed("feed.jsonl", "body");
    linkSync(c, join(failed, "feed.jsonl"));
    writeFileSync(join(failed, "feed.jsonl.error.json"), "{}");
    settleClaim({ claim: c, name: "feed.jsonl", dir: done, otherDir: failed, stamp });
    expect(readdirSync(failed)).toEqual([]);
    expect(readdirSync(done)).toEqual(["feed.jsonl"]);
  });

  it("a claim taken over by another watcher is ERR_SPOOL_CLAIM_LOST, and nothing is moved", () => {
    const c = claimed("feed.jsonl", "body", "rejects\n");
    renameSync(c, join(processing, `1~@${OTHER_NS}~feed.jsonl`));
    expect(() => settleClaim({ claim: c, name: "feed.jsonl", dir: done, otherDir: failed, stamp })).toThrow(expect.objectContaining({ code: "ERR_SPOOL_CLAIM_LOST" }));
    expect(readdirSync(done)).toEqual([]);
  });
});

describe("a notice file is owner-only once claimed, whatever mode its producer gave it (umask 0)", () => {
  const mode = (p: string) => statSync(p).mode & 0o777;
  const stamp = "2026-05-01T00-00-00-000Z";
  let saved: number;
  beforeEach(() => {
    saved = process.umask(0);
  });
  afterEach(() => {
    process.umask(saved);
  });
  /** A file as a producer under umask 0 drops it: readable and writable by everyone. */
  function dropped(path: string): string {
    writeFileSync(path, "{}\n");
    chmodSync(path, 0o666);
    return path;
  }

  it("the claim is 0600 from the moment it is taken, its heartbeat too", () => {
    const to = join(processing, claimEntry("feed.jsonl"));
    expect(takeClaim(dropped(join(spool, "feed.jsonl")), to, Date.now())).toBe(true);
    expect(mode(to)).toBe(0o600);
    expect(mode(sidecarOf(to, "alive"))).toBe(0o600);
  });

  it("settled in done/ or failed/ 0600: a claim left with the producer's mode (a kill right after the claim) too", () => {
    for (const [dir, other] of [
      [done, failed],
      [failed, done],
    ] as const) {
      const c = dropped(join(processing, `${Math.floor(Math.random() * 1e6)}~@${OTHER_NS}~feed.jsonl`));
      const s = settleClaim({ claim: c, name: "feed.jsonl", dir, otherDir: other, stamp });
      expect(s.path).toBe(join(dir, "feed.jsonl"));
      expect(mode(s.path)).toBe(0o600);
    }
  });

  it("a claim that is a symbolic link is settled as it is: the file it points to keeps its mode", () => {
    const outside = dropped(join(spool, "outside.jsonl"));
    const c = join(processing, `${Math.floor(Math.random() * 1e6)}~@${OTHER_NS}~link.jsonl`);
    symlinkSync(outside, c);
    settleClaim({ claim: c, name: "link.jsonl", dir: failed, otherDir: done, stamp });
    expect(mode(outside)).toBe(0o666);
  });
});
