/**
 * withWorkspaceLoading: a command's library loads while its store opens (`crl generate`: the CRL path's modules
 * during a PostgreSQL open's waits on the server), and the workspace is closed whatever fails.
 */
import { describe, expect, it } from "vitest";
import type { Workspace } from "../workspace/workspace.js";
import { withWorkspaceLoading, type Context } from "./context.js";

/** A context whose workspace opens when `open` is resolved; what happened, in order, in `events`. */
function fakeContext(fail?: Error) {
  const events: string[] = [];
  let opened!: () => void;
  const ws = { close: async () => void events.push("closed") } as unknown as Workspace;
  const ctx = {
    openWorkspace: () => {
      events.push("open begun");
      return new Promise<Workspace>((resolve, reject) => (opened = () => (events.push("opened"), fail ? reject(fail) : resolve(ws))));
    },
  } as unknown as Context;
  return { ctx, ws, events, open: () => opened() };
}

describe("withWorkspaceLoading", () => {
  it("loads the library after the open began and before it ended, then runs with both and closes", async () => {
    const { ctx, ws, events, open } = fakeContext();
    const done = withWorkspaceLoading(
      ctx,
      async () => (events.push("load begun"), "library"),
      async (w, lib) => (events.push(`ran with ${lib}`), expect(w).toBe(ws), 42),
    );
    await new Promise((r) => setImmediate(r));
    open();
    expect(await done).toBe(42);
    expect(events).toEqual(["open begun", "load begun", "opened", "ran with library", "closed"]);
  });

  it("an open that fails raises its own error; the load left behind is no unhandled rejection", async () => {
    const { ctx, events, open } = fakeContext(new Error("unreachable store"));
    const done = withWorkspaceLoading(ctx, () => Promise.reject(new Error("load failed")), async () => 1);
    open();
    await expect(done).rejects.toThrow("unreachable store");
    await new Promise((r) => setImmediate(r)); // vitest fails the file on an unhandled rejection
    expect(events).toEqual(["open begun", "opened"]);
  });

  it("a load that fails is raised after the workspace is closed", async () => {
    const { ctx, events, open } = fakeContext();
    const done = withWorkspaceLoading(ctx, () => Promise.reject(new Error("load failed")), async () => 1);
    open();
    await expect(done).rejects.toThrow("load failed");
    expect(events).toEqual(["open begun", "opened", "closed"]);
  });
});
