/**
 * Every DER reader above pki/ reads headers through der.ts headAt (src/pki/der.test.ts proves it against asn1js and
 * takes the same hostile headers to the readers in pki/): here the same headers go to the readers of the validation
 * API (spanAt), the CRL entry codec (elementLength) and the CRL stream reader behind `jpki inspect` (CrlReader), and
 * each must refuse what headAt refuses, with its words, and read what it reads.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../src/errors.js";
import { HEAD_LENGTH_TRUNCATED, HEAD_OK, HEAD_TRUNCATED, head, headAt } from "../src/pki/der.js";
import { elementLength } from "../src/profile/crl-entry.js";
import { CrlReader, crlBytesSource } from "../src/profile/crl-reader.js";
import { spanAt } from "../src/validation/asn1.js";

/** Headers (with a content, 02 01 05, where there is room for one) that break one rule each, and one that breaks none. */
const HOSTILE = [
  "", // nothing
  "30", // a tag alone
  "308201", // length octets cut short
  "3080020105", // indefinite
  "30850000000003020105", // five length octets
  "30880000000000000003020105", // eight
  "30ff020105", // reserved
  "3084ffffffff020105", // 4 GiB: a content overrunning the input
  "308103020105", // a long form where the short fits
  "30820003020105", // a leading zero
  "3f03020105", // a high tag number
  "3003020105", // well-formed
].map((h) => Buffer.from(h, "hex"));

describe("hostile headers: the readers above pki/ give headAt's verdict", () => {
  it("validation spanAt (the validation API's reader) and crl-entry elementLength", () => {
    for (const b of HOSTILE) {
      const fault = headAt(b, 0, b.length);
      const size = head.headerLength + head.length;
      if (fault) {
        expect(() => spanAt(b, 0, b.length), b.toString("hex")).toThrow(new RangeError(fault));
        expect(() => elementLength(b, 0), b.toString("hex")).toThrow(new RangeError(`DER element at 0: ${fault}`));
      } else {
        expect(elementLength(b, 0)).toBe(size);
        if (size > b.length) expect(() => spanAt(b, 0, b.length), b.toString("hex")).toThrow(new RangeError("truncated DER"));
        else expect(spanAt(b, 0, b.length).end).toBe(size);
      }
    }
  });

  it("the CRL stream reader (jpki inspect): a PKITS CRL under each header refuses it with headAt's `der` words", () => {
    const crl = readFileSync(new URL("vectors/pkits/crls/TrustAnchorRootCRL.crl", import.meta.url));
    const content = crl.subarray(headAt(crl, 0, crl.length, true) ? 0 : head.headerLength);
    const n = content.length;
    const headers = [
      [0x30, 0x82, n >> 8, n & 255], // as it is
      [0x30, 0x84, 0, 0, n >> 8, n & 255],
      [0x30, 0x83, 0, n >> 8, n & 255],
      [0x30, 0x85, 0, 0, 0, n >> 8, n & 255],
      [0x30, 0x80],
      [0x3f, 0x82, n >> 8, n & 255],
    ];
    let opened = 0;
    for (const h of headers) {
      const d = Buffer.concat([Buffer.from(h), content]);
      const fault = headAt(d, 0, d.length, true);
      const open = () => CrlReader.open(crlBytesSource(d)).close();
      if (fault === HEAD_OK) {
        open();
        opened++;
        continue;
      }
      expect(fault).not.toBe(HEAD_TRUNCATED);
      expect(fault).not.toBe(HEAD_LENGTH_TRUNCATED);
      let message = "";
      try {
        open();
      } catch (e) {
        expect(isJpkiError(e) && e.code).toBe("ERR_DER_MALFORMED");
        message = (e as Error).message;
      }
      expect(message, Buffer.from(h).toString("hex")).toContain(fault);
    }
    expect(opened).toBe(1);
  });
});
