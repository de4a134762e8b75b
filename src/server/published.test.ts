/** Which URL path names which workspace file: the shapes certificates name, nothing joined from the request. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { workspacePaths } from "../workspace/workspace.js";
import { resolvePublished } from "./published.js";

const paths = workspacePaths("/srv/ws");

describe("resolvePublished", () => {
  it("prefecture CAs' CRLs, partitions, ARLs and certificates", () => {
    expect(resolvePublished(paths, "/crl/13-sig.crl")).toEqual({ kind: "crl", caId: "13-sig", path: join("/srv/ws", "crl", "13-sig.crl") });
    expect(resolvePublished(paths, "/crl/13-sig/131016.crl")).toEqual({ kind: "partition", caId: "13-sig", path: join("/srv/ws", "crl", "13-sig", "131016.crl") });
    expect(resolvePublished(paths, "/arl/27-auth.crl")).toEqual({ kind: "arl", caId: "27-auth", path: join("/srv/ws", "arl", "27-auth.crl") });
    expect(resolvePublished(paths, "/ca/13-sig.crt")).toEqual({ kind: "ca-certificate", caId: "13-sig", path: join("/srv/ws", "ca", "13-sig.crt") });
    expect(resolvePublished(paths, "/ca/index.json")).toEqual({ kind: "ca-index", caId: "", path: join("/srv/ws", "ca", "index.json") });
    expect(resolvePublished(paths, "/ca/13-sig.json")).toBeUndefined();
  });

  it("a key rollover's generations (13-sig-g2) and its link certificates (ca/rollover.ts), nothing else of that shape", () => {
    expect(resolvePublished(paths, "/crl/13-sig-g2.crl")).toEqual({ kind: "crl", caId: "13-sig-g2", path: join("/srv/ws", "crl", "13-sig-g2.crl") });
    expect(resolvePublished(paths, "/crl/13-sig-g2/131016.crl")).toEqual({ kind: "partition", caId: "13-sig-g2", path: join("/srv/ws", "crl", "13-sig-g2", "131016.crl") });
    expect(resolvePublished(paths, "/ca/13-sig-g2.crt")).toEqual({ kind: "ca-certificate", caId: "13-sig-g2", path: join("/srv/ws", "ca", "13-sig-g2.crt") });
    expect(resolvePublished(paths, "/ca/13-sig-g2.by-13-sig.crt")).toEqual({ kind: "ca-certificate", caId: "13-sig-g2", path: join("/srv/ws", "ca", "13-sig-g2.by-13-sig.crt") });
    expect(resolvePublished(paths, "/ca/13-sig.by-13-sig-g2.crt")).toEqual({ kind: "ca-certificate", caId: "13-sig", path: join("/srv/ws", "ca", "13-sig.by-13-sig-g2.crt") });
    for (const p of ["/ca/13-sig-g2.by-13-sig.pem", "/ca/13-sig-g1.crt", "/ca/13-g2.crt", "/ca/13-sig.by-48-sig.crt", "/ca/13-sig.by-..crt", "/ca/x.by-13-sig.crt"]) {
      expect(resolvePublished(paths, p), p).toBeUndefined();
    }
  });

  it("the Bridge CA's ARL and certificate (ca/bridge.ts), and nothing else of it", () => {
    expect(resolvePublished(paths, "/arl/bridge.crl")).toEqual({ kind: "arl", caId: "bridge", path: join("/srv/ws", "arl", "bridge.crl") });
    expect(resolvePublished(paths, "/ca/bridge.crt")).toEqual({ kind: "ca-certificate", caId: "bridge", path: join("/srv/ws", "bridge", "bridge.crt") });
    for (const p of ["/crl/bridge.crl", "/ca/bridge.key", "/bridge/bridge.key", "/bridge/state.json", "/ca/bridge.pem", "/arl/bridge.crl/x", "/crl/bridge/131016.crl", "/ca/../bridge/bridge.key"]) {
      expect(resolvePublished(paths, p), p).toBeUndefined();
    }
  });

  it("no path outside the shapes: unknown prefecture codes, traversal, extra segments", () => {
    for (const p of ["/crl/48-sig.crl", "/crl/../jpki.db", "/crl/13-sig/../../jpki.db", "/jpki.db", "/crl/13-sig/1310.crl", "/arl/13-sig.crl/extra/x"]) {
      expect(resolvePublished(paths, p), p).toBeUndefined();
    }
  });
});
