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
    await expect(Workspace.openAsync(root)).rejects.toMatchObject({ message: expect.stringMatching(/uses a PostgreSQL store/) });
    // one being made does not "use" anything yet
    const fresh = join(mkdtempSync(join(tmpdir(), "jpki-config-")), "ws");
    await expect(Workspace.createAsync(fresh, { config: { store: "postgres" } })).rejects.toMatchObject({ code: "ERR_USAGE", message: expect.stringMatching(/is to use a PostgreSQL store: set JPKI_STORE/) });
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

describe("config trustedProxies (reverse proxies whose X-Forwarded-For names the client)", () => {
  it("defaults to none; takes IPv4 and IPv6 addresses and CIDR ranges", () => {
    expect(parseConfig({}).trustedProxies).toEqual([]);
    const good = ["127.0.0.1", "10.0.0.0/8", "192.0.2.0/24", "0.0.0.0/0", "203.0.113.9/32", "::1", "2001:db8::/32", "fd00::/8", "::ffff:10.0.0.1", "::/0", "2001:db8::1/128"];
    expect(parseConfig({ trustedProxies: [...good, "127.0.0.1"] }).trustedProxies).toEqual(good);
  });
  it("refuses anything else with ERR_CONFIG_INVALID naming the bad entry", () => {
    for (const [list, named] of [
      [["127.0.0.1", "localhost"], "trustedProxies[1]"],
      [["10.0.0.0/33"], "trustedProxies[0]"],
      [["fd00::/129"], "trustedProxies[0]"],
      [["10.0.0.0/"], "trustedProxies[0]"],
      [["10.0.0.0/08"], "trustedProxies[0]"],
      [["10.0.0.0/-1"], "trustedProxies[0]"],
      [["10.0.0.0/8/8"], "trustedProxies[0]"],
      [["256.0.0.1"], "trustedProxies[0]"],
      [[" 10.0.0.1"], "trustedProxies[0]"],
      [["fe80::1%eth0"], "trustedProxies[0]"],
      [["::1", 7], "trustedProxies[1]"],
      [[null], "trustedProxies[0]"],
    ] as const) {
      expect(() => parseConfig({ trustedProxies: list }), JSON.stringify(list)).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining(named) }));
    }
    expect(() => parseConfig({ trustedProxies: [" 10.0.0.1"] })).toThrowError(expect.objectContaining({ message: expect.stringContaining('" 10.0.0.1"') }));
    for (const bad of ["127.0.0.1", null, { a: 1 }]) {
      expect(() => parseConfig({ trustedProxies: bad })).toThrowError(expect.objectContaining({ code: "ERR_CONFIG_INVALID", message: expect.stringContaining("trustedProxies") }));
    }
  });
});
