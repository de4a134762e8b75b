/**
 * openCrlScheduleThread when no thread can be made: the Worker constructor throws ERR_WORKER_INIT_FAILED at the
 * process's thread limit (a container's pids.max, systemd's TasksMax), and `jpki serve` failed to start with that
 * raw error. With `inThread` (serve passes openCrlSchedule) the schedule runs in the calling thread instead;
 * without it the error still rejects. The Worker is a stand-in here; the thread itself runs from dist/.
 */
import { describe, expect, it, vi } from "vitest";
import { openCrlScheduleThread } from "./schedule-thread.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

const data = { root: "/nonexistent", passphrase: "pw", crlIntervalMs: 30_000 };

describe("openCrlScheduleThread at the process's thread limit", () => {
  it("opens the schedule in the calling thread when given one", async () => {
    const loop = async () => undefined;
    const inThread = vi.fn(async () => loop);
    await expect(openCrlScheduleThread({ ...data, signal: new AbortController().signal, inThread })).resolves.toBe(loop);
    expect(inThread).toHaveBeenCalledOnce();
  });

  it("rejects with the thread's error without one", async () => {
    await expect(openCrlScheduleThread({ ...data, signal: new AbortController().signal })).rejects.toMatchObject({ code: "ERR_WORKER_INIT_FAILED" });
  });
});
