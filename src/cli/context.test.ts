/**
 * withStopSignal (context.ts): SIGTERM and SIGINT stop a long job cleanly, and a signal repeated while the
 * process stops — the job's own stop or the command's clean-up after it — must not meet node's default action
 * (the process killed mid-stop, exit 143). The handlers are called here as the process would call them; no
 * signal is sent to the test process.
 */
import { describe, expect, it } from "vitest";
import { withStopSignal } from "./context.js";

/** The handlers withStopSignal added for `name` (raw: a once-handler shows as the wrapper that removes itself). */
const added = (name: NodeJS.Signals, before: readonly unknown[]) => process.rawListeners(name).filter((l) => !before.includes(l));

describe("withStopSignal", () => {
  it("aborts on the first SIGTERM or SIGINT; a repeated one finds a handler while the job stops and after it returns", async () => {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      const before = process.rawListeners(name);
      try {
        await withStopSignal(async (signal) => {
          const ours = added(name, before);
          expect(ours).toHaveLength(1);
          ours[0]!(name); // the first: the job is told to stop
          expect(signal.aborted).toBe(true);
          // a second arriving while the job stops still finds a handler (none: node's default, which kills)
          expect(added(name, before)).toHaveLength(1);
          ours[0]!(name);
        });
        // … and after the job returned, while the command cleans up and the process exits
        expect(added(name, before)).toHaveLength(1);
      } finally {
        for (const l of added(name, before)) process.off(name, l as () => void);
      }
    }
  });

  it("lets go of both signals when the job ends unsignalled", async () => {
    const before = { SIGTERM: process.rawListeners("SIGTERM"), SIGINT: process.rawListeners("SIGINT") };
    expect(await withStopSignal(async (signal) => (signal.aborted ? "stopped" : "done"))).toBe("done");
    expect(process.rawListeners("SIGTERM")).toEqual(before.SIGTERM);
    expect(process.rawListeners("SIGINT")).toEqual(before.SIGINT);
  });
});
