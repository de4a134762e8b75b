/** Workspace configuration: the store kind (issue 8 point 4) is validated with the rest. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";
import { Workspace } from "./workspace.js";

describe("config crlPem", () => {
  it("defaults to DER only and takes a boolean alone", () => {
    expect(parseConfig({}).crlPem).toBe(false);
    expect(parseConfig({ crlPem: true }).crlPem).toBe(true);
    for (const bad of ["yes", 1, null]) expect(() => parseConfig({ crlPem: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("crlPem") }));
  });
});

describe("config store", () => {
  it("defaults to sqlite, takes postgres, and refuses anything else, a connection string above all", () => {
    expect(parseConfig({}).store).toBe("sqlite");
    expect(parseConfig({ store: "postgres" }).store).toBe("postgres");
    for (const bad of ["mysql", "postgres://u@h/db", 1, null]) {
      expect(() => parseConfig({ store: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("JPKI_STORE") }));
    }
  });

  it("the synchronous factories refuse a postgres workspace, pointing at openAsync", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-config-"));
    expect(() => Workspace.create(root, { config: { store: "postgres" } })).toThrowError(expect.objectContaining({ code: "ERR_USAGE" }));
    writeFileSync(join(root, "config.json"), JSON.stringify({ store: "postgres" }));
    expect(() => Workspace.open(root)).toThrowError(expect.objectContaining({ code: "ERR_USAGE", message: expect.stringContaining("openAsync") }));
    await expect(Workspace.openAsync(root)).rejects.toMatchObject({ code: "ERR_USAGE", message: expect.stringContaining("JPKI_STORE") });
  });

  it("openAsync and createAsync open a SQLite workspace as open and create do", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-config-")), "ws");
    await expect(Workspace.openAsync(root)).rejects.toMatchObject({ code: "ERR_WORKSPACE_MISSING" });
    const ws = await Workspace.createAsync(root);
    expect(ws.config.store).toBe("sqlite");
    expect(ws.store.kind).toBe("sqlite");
    await ws.close();
    const again = await Workspace.openAsync(root);
    expect(again.store.kind).toBe("sqlite");
    await again.close();
  });
});

describe("config openRoutes and verifierRateLimit (jpki serve, registered verifiers only)", () => {
  it("opens only /healthz by default, takes known routes, refuses anything else", () => {
    expect(parseConfig({}).openRoutes).toEqual(["/healthz"]);
    expect(parseConfig({ openRoutes: ["/healthz", "/metrics", "/metrics"] }).openRoutes).toEqual(["/healthz", "/metrics"]);
    expect(parseConfig({ openRoutes: [] }).openRoutes).toEqual([]);
    for (const bad of [["/crl"], "/healthz", [1], null]) {
      expect(() => parseConfig({ openRoutes: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("openRoutes") }));
    }
  });

  it("takes a rate per second (0: off) and a burst, merged over the defaults", () => {
    expect(parseConfig({}).verifierRateLimit).toEqual({ perSecond: 100, burst: 1000 });
    expect(parseConfig({ verifierRateLimit: { perSecond: 0 } }).verifierRateLimit).toEqual({ perSecond: 0, burst: 1000 });
    for (const bad of [{ perSecond: -1 }, { burst: 0 }, { rate: 5 }, 5]) {
      expect(() => parseConfig({ verifierRateLimit: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("verifierRateLimit") }));
    }
  });
});

describe("config refusedRateLimit (requests refused for their credential, per client address)", () => {
  it("defaults to 10 a second in bursts of 100, merged over the defaults; 0 turns it off; refuses anything else", () => {
    expect(parseConfig({}).refusedRateLimit).toEqual({ perSecond: 10, burst: 100 });
    expect(parseConfig({ refusedRateLimit: { perSecond: 0 } }).refusedRateLimit).toEqual({ perSecond: 0, burst: 100 });
    for (const bad of [{ perSecond: -1 }, { burst: 0 }, { rate: 5 }, 5]) {
      expect(() => parseConfig({ refusedRateLimit: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("refusedRateLimit") }));
    }
  });
});

describe("config pkcs11Modules (the PKCS#11 modules this host loads for CA keys)", () => {
  it("defaults to none, takes absolute paths and bare library names, refuses anything else", () => {
    expect(parseConfig({}).pkcs11Modules).toEqual([]);
    expect(parseConfig({ pkcs11Modules: ["/usr/lib/softhsm/libsofthsm2.so", "libsofthsm2.so", "/usr/lib/softhsm/libsofthsm2.so"] }).pkcs11Modules).toEqual(["/usr/lib/softhsm/libsofthsm2.so", "libsofthsm2.so"]);
    for (const bad of ["/usr/lib/softhsm/libsofthsm2.so", ["lib/p11.so"], ["./p11.so"], [""], [1], ["/a\0b"], null]) {
      expect(() => parseConfig({ pkcs11Modules: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("pkcs11Modules") }));
    }
  });
});
