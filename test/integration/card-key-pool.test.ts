/**
 * test/integration/helpers.ts cardKey: a file's n-th RSA-2048 card key is the run's pool's n-th, whatever the files
 * run before it in the same worker drew. In "sqlite-shared" one worker runs file after file with helpers.ts loaded
 * once, and a count of its own went on from the last file's: each file drew slots past those the pool held, every
 * one a new openssl keygen.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { CARD_KEY_POOL_ENV } from "../card-key-pool.js";
import { cardKey, tempDir } from "./helpers.js";

describe("cardKey from the run's pool", () => {
  it("draws a file's keys from the pool's first slot on, whatever another file of the worker drew before", () => {
    const pool = process.env[CARD_KEY_POOL_ENV];
    expect(pool, "the global setup names the run's pool").toBeDefined();
    const dir = tempDir();
    const slot = (n: number) => readFileSync(join(pool!, `${n}.key.pem`), "utf8");
    // another file, run before this one in the worker, draws three keys
    const state = expect.getState();
    const other = vi.spyOn(expect, "getState").mockReturnValue({ ...state, testPath: join(dir, "other.test.ts") });
    for (const n of [0, 1, 2]) cardKey(dir, `other-${n}`);
    other.mockRestore();
    const first = readFileSync(cardKey(dir, "mine-0").key, "utf8");
    const second = readFileSync(cardKey(dir, "mine-1").key, "utf8");
    expect(first).toBe(slot(0));
    expect(second).toBe(slot(1));
    expect(second).not.toBe(first);
  });
});
