/** `jpki verify-signature [DOC] SIG`: verify a signed document (CMS SignedData, RFC 5652) and its signer's path. */
import { Command, Option } from "commander";
import { JpkiError, library, readInputFile } from "../lib.js";
import { Context } from "../context.js";
import { EXIT_INVALID, EXIT_UNDECIDED, VerdictExit, commandExitCodes } from "../exit-codes.js";
import type { Io } from "../output.js";
import { looksLikePem } from "../../pki/pem.js";
import { parseTimeOption } from "../time-option.js";

interface Opts {
  trust: string[];
  chain: string[];
  crl: string[];
  at?: string;
  attached?: boolean;
  purpose?: "signature";
  revocation: "hard-fail" | "soft-fail" | "off";
}

const collect = (v: string, prev: string[]) => [...prev, v];

/**
 * The largest files read, each held whole in memory: a document (or an attached signature carrying it) and a
 * CRL up to 1 GiB, a certificate bundle up to 64 MiB; below the 2 GiB where a read fails outright.
 */
const MAX_DOCUMENT = 1024 * 2 ** 20;
const MAX_CERTIFICATE_FILE = 64 * 2 ** 20;

/** Every certificate in a file: all CERTIFICATE blocks of a PEM file, or one DER certificate. */
function certificatesIn(bytes: Buffer, lib: Awaited<ReturnType<typeof library>>, what: string): Buffer[] {
  // PEM by its start, unless the file is one whole DER SEQUENCE: a DER certificate may carry "-----BEGIN " in a name.
  if (looksLikePem(bytes)) {
    const blocks = lib.parsePemBlocks(bytes.toString("utf8")).filter((b) => b.label === "CERTIFICATE");
    if (blocks.length === 0) throw new JpkiError("ERR_DER_MALFORMED", `${what} holds no PEM CERTIFICATE`);
    return blocks.map((b) => b.der);
  }
  return [lib.pemOrDer(bytes, ["CERTIFICATE"], what)];
}

export function makeVerifySignatureCommand(io: Io): Command {
  return new Command("verify-signature")
    .description("verify a signed document (CMS SignedData, RFC 5652: SHA-256, RSA PKCS#1 v1.5) and its signer's certificate path, as an electronic application (電子申請) is checked")
    .argument("<doc-or-sig>", "the signed document (DOC) for a detached signature, or '-' when the signature is attached; with --attached, the signature")
    .argument("[sig]", "the signature: CMS, DER or PEM")
    .option("--attached", "the signature carries the document: give only SIG")
    .option("--trust <file>", "trust anchor certificate(s), PEM or DER (repeatable; at least one)", collect, [] as string[])
    .option("--chain <file>", "intermediate CA certificate(s) besides those in the signature (repeatable)", collect, [] as string[])
    .option("--crl <file>", "CRL, PEM or DER (repeatable)", collect, [] as string[])
    .option("--at <time>", "the verification time, ISO 8601 (default now)")
    .addOption(new Option("--purpose <purpose>", "require a signature certificate (署名用電子証明書): keyUsage nonRepudiation and the JPKI signature policy").choices(["signature"]))
    .addOption(new Option("--revocation <mode>", "revocation checking").choices(["hard-fail", "soft-fail", "off"]).default("hard-fail"))
    .addHelpText(
      "after",
      `
Time rule: the signer's certificate path must be valid at the signing time (the signing-time attribute, the
signer's own claim; without it --at or now) and, with revocation, still at --at or now, with the CRLs given:
a certificate revoked by then invalidates the signature, as 'openssl cms -verify -crl_check' decides. A
signing time later than --at (or now) is not-yet-valid (reason signing-time-in-future): a signature cannot
have been made after it is verified.

Output: the status (valid, bad-signature, digest-mismatch, unsupported-algorithm, signer-not-found,
wrong-purpose, revoked, expired, not-yet-valid, untrusted, profile-violation, revocation-unknown), its reason,
the signer and the signing time; with --json one JSON document.

${commandExitCodes({
  ok: "valid",
  verdicts: [
    [EXIT_INVALID, "invalid: any other status"],
    [EXIT_UNDECIDED, "could not decide: revocation-unknown (no current CRL covers a certificate of the path)"],
  ],
  errors: [
    ["ERR_USAGE", "usage error, e.g. a detached signature without its document"],
    ["ERR_CMS_MALFORMED", "the signature is not a CMS SignedData"],
  ],
})}

Examples:
  jpki verify-signature application.xml application.p7s --trust ca/13-sig.pem --crl crl/13-sig.crl
  jpki verify-signature - signed.p7s --trust ca/13-sig.pem --crl crl/13-sig.crl --purpose signature --json
  jpki verify-signature --attached signed.p7s --trust ca/13-sig.pem --revocation off`,
    )
    .action(async (first: string, second: string | undefined, o: Opts, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      let docFile: string | undefined;
      let sigFile: string;
      if (second === undefined) {
        if (!o.attached) throw new JpkiError("ERR_USAGE", "give DOC and SIG, or '-' and SIG, or --attached SIG for a signature that carries its document");
        sigFile = first;
      } else {
        if (o.attached) throw new JpkiError("ERR_USAGE", "--attached takes only SIG: drop DOC (or use '-' for it)");
        docFile = first === "-" ? undefined : first;
        sigFile = second;
      }
      if (o.trust.length === 0) throw new JpkiError("ERR_USAGE", "give at least one --trust certificate (the CA the signer's path ends at)");
      const at = o.at !== undefined ? parseTimeOption(o.at) : undefined;
      const read = (f: string, what: string, maxBytes = MAX_DOCUMENT) => readInputFile(f, what, { cwd: io.cwd, maxBytes });
      const lib = await library();
      const signature = read(sigFile, "signature SIG");
      const content = docFile !== undefined ? read(docFile, "document DOC") : undefined;
      const trustAnchors = o.trust.flatMap((f) => certificatesIn(read(f, `--trust ${f}`, MAX_CERTIFICATE_FILE), lib, `--trust ${f}`));
      const intermediates = o.chain.flatMap((f) => certificatesIn(read(f, `--chain ${f}`, MAX_CERTIFICATE_FILE), lib, `--chain ${f}`));
      const crls = o.crl.map((f) => lib.pemOrDer(read(f, `--crl ${f}`), ["X509 CRL"], `CRL ${f}`));
      const r = lib.verifySignedData({
        signature,
        ...(content ? { content } : {}),
        trustAnchors,
        intermediates,
        crls,
        ...(at ? { at } : {}),
        revocation: o.revocation,
        ...(o.purpose ? { purpose: o.purpose } : {}),
      });
      if (r.status === "malformed") throw new JpkiError("ERR_CMS_MALFORMED", `${sigFile}: ${r.message}`, { details: { reason: r.reason } });
      if (r.status === "content-missing") throw new JpkiError("ERR_USAGE", `${sigFile} is a detached signature: give the signed document as DOC`);
      const view = {
        status: r.status,
        ...(r.reason ? { reason: r.reason } : {}),
        message: r.message,
        ...(r.signer ? { signer: { serial: r.signerSerial, subject: r.signerSubject, certificate: lib.toPem(r.signer, "CERTIFICATE") } } : {}),
        signingTime: r.signingTime?.toISOString() ?? null,
        validatedAt: r.validatedAt?.toISOString() ?? null,
        attached: r.content !== undefined,
      };
      ctx.out.result(view, () =>
        [
          `${r.status}${r.reason && r.reason !== r.status ? ` (${r.reason})` : ""}: ${r.message}`,
          ...(r.signer ? [`signer         ${r.signerSubject}  serial ${r.signerSerial}`] : []),
          `signing time   ${r.signingTime?.toISOString() ?? "(none)"}`,
        ].join("\n"),
      );
      if (r.status === "revocation-unknown") throw new VerdictExit(EXIT_UNDECIDED);
      if (r.status !== "valid") throw new VerdictExit(EXIT_INVALID);
    });
}
