/**
 * The CA profile checks that must hold before a CA may sign anything (STYLE.md §6): its certificate parses
 * as DER, asserts cA in basicConstraints, and allows keyCertSign and cRLSign. Read with the strict DER walker
 * rather than an ASN.1 schema library, so signing a CRL loads none of that stack.
 */
import { JpkiError } from "../errors.js";
import { children, oid, readHeader } from "../pki/der.js";
import { EXT_OID } from "./oids.js";

const KU = oid(EXT_OID.keyUsage);
const BC = oid(EXT_OID.basicConstraints);
/** KeyUsage bits (RFC 5280 §4.2.1.3) in the first content byte after the unused-bits count. */
const KEY_CERT_SIGN = 0x04;
const CRL_SIGN = 0x02;

/** The extnValue contents of the extensions of a certificate, by their OID's DER. */
function extensionValues(certificateDer: Uint8Array): Map<string, Buffer> {
  const [tbs] = children(certificateDer);
  const out = new Map<string, Buffer>();
  const wrapper = children(tbs!).find((f) => f[0] === 0xa3); // extensions [3] EXPLICIT
  if (!wrapper) return out;
  for (const ext of children(children(wrapper)[0]!)) {
    const parts = children(ext);
    const value = parts[parts.length - 1]!; // OCTET STRING, after the optional critical flag
    out.set(parts[0]!.toString("hex"), value.subarray(readHeader(value).headerLength));
  }
  return out;
}

export function assertCaCertificate(record: { readonly id: string; readonly certificateDer: Uint8Array }): void {
  let exts: Map<string, Buffer>;
  try {
    exts = extensionValues(record.certificateDer);
  } catch (e) {
    throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the certificate of CA ${record.id} is not valid DER: the workspace is damaged`, { cause: e });
  }
  const ku = exts.get(KU.toString("hex"));
  // BIT STRING: tag, length, unused-bits count, then the bits (first byte: digitalSignature is 0x80)
  const kuBits = ku && ku[0] === 0x03 && ku.length >= 4 ? ku[3]! : 0;
  if ((kuBits & (KEY_CERT_SIGN | CRL_SIGN)) !== (KEY_CERT_SIGN | CRL_SIGN)) {
    throw new JpkiError("ERR_CA_INVALID", `CA ${record.id}: its certificate lacks keyCertSign and cRLSign key usage`);
  }
  const bc = exts.get(BC.toString("hex"));
  let cA = false;
  try {
    const first = bc ? children(bc)[0] : undefined; // SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER OPTIONAL }
    cA = first !== undefined && first[0] === 0x01 && first[2] !== 0x00;
  } catch {
    cA = false;
  }
  if (!cA) throw new JpkiError("ERR_CA_INVALID", `CA ${record.id}: its certificate is not a CA certificate (basicConstraints cA)`);
}
