/**
 * Errors of routes without their own handler (app.ts): the code and a fixed message, never the error's own
 * message — a store error's carries the driver's (database host, user, file path).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import { Workspace } from "../workspace/workspace.js";
import { buildServer } from "./app.js";

describe("the server's error answers", () => {
  it("GET /crl/index.json with the store away: 503 store-unavailable, nothing of the store's message", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-errors-")), "ws"));
    const errors: string[] = [];
    const { app } = await buildServer(ws, { access: { onError: (_e, what) => errors.push(what) } });
    try {
      ws.store.crlStatus = async () => {
        throw new JpkiError("ERR_STORE", "store failure while reading: connect ECONNREFUSED 10.1.2.3:5432 user=jpki_admin");
      };
      const res = await app.inject({ method: "GET", url: "/crl/index.json" });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ error: "unavailable", code: "store-unavailable", message: "the store did not answer: try again" });
      expect(res.body).not.toMatch(/10\.1\.2\.3|jpki_admin|ECONNREFUSED/);
      expect(errors).toEqual(["answering a request (no answer given)"]);
    } finally {
      await app.close();
      await ws.close();
    }
  });
});
