/**
 * arlEntries: which link certificates a CA's ARL (and full CRL) lists once a key generation is compromised. Any
 * certificate stands in for a link here (only its serial is read): J-LIS's roots from fixtures/jlis.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CaLinkRecord } from "../store/types.js";
import { arlEntries, fullCrlLinkEntries, ownCertificateEntry } from "./arl.js";
import { CRL_REASON } from "./reason.js";

const cert = (f: string) => new X509Certificate(readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "jlis", f))).raw;
const serial = (der: Buffer) => new X509Certificate(der).serialNumber.toLowerCase();
const [g2ByG1, g1ByG2, g3ByG2, g2ByG3] = ["sign-ca-2015.pem", "sign-ca-2023.pem", "auth-ca-2015.pem", "auth-ca-2023.pem"].map(cert) as [Buffer, Buffer, Buffer, Buffer];
const chain = (o: { g1?: Date; g2?: Date }): CaLinkRecord[] => [
  { oldCaId: "13-sig", newCaId: "13-sig-g2", oldWithNew: g2ByG1, newWithOld: g1ByG2, createdAt: new Date(1000), ...(o.g1 ? { compromisedAt: o.g1 } : {}) },
  { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", oldWithNew: g3ByG2, newWithOld: g2ByG3, createdAt: new Date(2000), ...(o.g2 ? { compromisedAt: o.g2 } : {}) },
];
/** Stands in for each generation's own (self-signed) CA certificate: only its serial is read. */
const own = (caId: string) => ({ "13-sig": g1ByG2, "13-sig-g2": g2ByG3, "13-sig-g3": g3ByG2 })[caId]!;
const listed = (links: CaLinkRecord[], caId: string) => arlEntries(links, caId, own(caId)).map((e) => [e.serial, e.revokedAt.getTime(), e.reason]);

describe("arlEntries", () => {
  it("lists nothing while no generation is compromised", () => {
    for (const id of ["13-sig", "13-sig-g2", "13-sig-g3"]) expect(arlEntries(chain({}), id, own(id))).toEqual([]);
  });

  it("g2 of g1 -> g2 -> g3 compromised: g3 revokes NewWithOld (g2's key by g3), g1 revokes OldWithNew (g2's key by g1), g2 the link its key signed", () => {
    const links = chain({ g2: new Date(5000) });
    expect(listed(links, "13-sig-g3")).toEqual([[serial(g2ByG3), 5000, CRL_REASON.cACompromise]]);
    // the predecessor's link: a verifier still trusting g1's root reached the stolen key through it
    expect(listed(links, "13-sig")).toEqual([[serial(g2ByG1), 5000, CRL_REASON.cACompromise]]);
    expect(listed(links, "13-sig-g2")).toEqual([
      [serial(g3ByG2), 5000, CRL_REASON.cACompromise],
      [serial(own("13-sig-g2")), 5000, CRL_REASON.cACompromise],
    ]);
  });

  it("g2 rolled over for a compromised key (no links to g3): g1 revokes its OldWithNew from the rollover's time", () => {
    const links: CaLinkRecord[] = [chain({})[0]!, { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", createdAt: new Date(2000) }];
    expect(listed(links, "13-sig")).toEqual([[serial(g2ByG1), 2000, CRL_REASON.cACompromise]]);
    // g2's own ARL states its own certificate revoked, as its full CRL does
    expect(listed(links, "13-sig-g2")).toEqual([[serial(own("13-sig-g2")), 2000, CRL_REASON.cACompromise]]);
  });

  it("a compromised generation's ARL lists its own CA certificate exactly when its full CRL does (RFC 5280 §5: a complete CRL for the CA certificates it issued, its self-signed one among them)", () => {
    const cases: CaLinkRecord[][] = [chain({}), chain({ g1: new Date(4000) }), chain({ g2: new Date(5000) }), chain({ g1: new Date(4000), g2: new Date(5000) })];
    for (const links of cases) {
      for (const id of ["13-sig", "13-sig-g2", "13-sig-g3"]) {
        // the full CRL's own-certificate entry (crl/publisher.ts: last, after fullCrlLinkEntries), the ARL's last too
        const entry = ownCertificateEntry(links, id, own(id));
        const arl = arlEntries(links, id, own(id));
        if (entry) expect(arl.at(-1), id).toEqual(entry);
        // without one, the ARL lists the links its key signed and nothing else (the stand-ins share serials with links)
        else expect(arl.length, id).toBe(fullCrlLinkEntries(links, id).filter((e) => arl.some((a) => a.serial === e.serial)).length);
      }
    }
  });

  it("g1 and g2 both compromised: each link listed once, at its own generation's time", () => {
    const links = chain({ g1: new Date(4000), g2: new Date(5000) });
    expect(listed(links, "13-sig")).toEqual([
      [serial(g2ByG1), 4000, CRL_REASON.cACompromise],
      [serial(own("13-sig")), 4000, CRL_REASON.cACompromise],
    ]);
    expect(listed(links, "13-sig-g2")).toEqual([
      [serial(g1ByG2), 4000, CRL_REASON.cACompromise],
      [serial(g3ByG2), 5000, CRL_REASON.cACompromise],
      [serial(own("13-sig-g2")), 5000, CRL_REASON.cACompromise],
    ]);
    expect(listed(links, "13-sig-g3")).toEqual([[serial(g2ByG3), 5000, CRL_REASON.cACompromise]]);
  });
});
