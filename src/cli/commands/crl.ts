/** `jpki crl generate`: build and publish CRLs for prefecture CAs. */
import { Command, Option } from "commander";
import type { CertificateType, PublishedCrl } from "../../index.js";
import { JpkiError, crlLibrary } from "../lib.js";
import { Context, withWorkspaceLoading } from "../context.js";
import type { Io } from "../output.js";
import { entriesText } from "../output.js";

export function makeCrlCommand(io: Io): Command {
  const crl = new Command("crl").description("certificate revocation lists (失効リスト)");
  crl.command("generate")
    .description(
      "build a v2 CRL per CA (CRL number increasing, AKI, reason codes), verify it with the CA's key as written, and install it atomically; with --partitions also the municipality partitions and the ARL",
    )
    .option("-p, --prefecture <codes>", "prefecture codes: 13, 13,27, 01-47 or all")
    .option("--ca <id>", "one CA id such as 13-sig")
    .addOption(new Option("--purpose <purpose>", "with --prefecture: which CAs").choices(["signature", "authentication", "both"]).default("both"))
    .addOption(
      new Option(
        "--partitions [which]",
        "also publish the municipality partitions (crl/<ca>/<municipality>.crl, what each certificate's distribution point names) and the ARL (arl/<ca>.crl): 'due' (the default of the flag) those with unpublished revocations, never published or near nextUpdate; 'all' every one",
      ).choices(["due", "all"]),
    )
    .option(
      "--delta",
      "publish only the delta CRL of each CA's full CRL (crl/<ca>-delta.crl, RFC 5280 §5.2.4): the revocations since the latest full CRL, which it names as its base; needs deltaCrlIntervalMinutes in config.json. Published partitions holding revocations since their last CRL are republished with it: a delta cannot complete a partition",
    )
    .addHelpText(
      "after",
      `
Scopes: without --partitions, each CA's full CRL (crl/<ca>.crl), and each partition already published that holds
revocations since its last CRL (a verifier reads the partition its certificate names, so it must not lag the full
CRL); partitions never published and the ARL are left to --partitions, but for an ARL that lists revoked link
certificates ('jpki ca compromised') and is not yet published. 'jpki watch' and 'jpki serve' publish every
scope on their own schedule. A retired key generation whose certificates have all expired publishes only its full
CRL (and, asked for, its ARL), while a link certificate of its rollovers is in force; then nothing. CRL numbers
come from one sequence per CA shared by its scopes: each scope's numbers only increase. The last crlKeep CRLs
of each scope (config, default 3) stay as <file>.<number>.

Delta CRLs: with deltaCrlIntervalMinutes set in config.json, every full CRL (the base) carries freshestCRL and
is followed at once by a delta on it (crl/<ca>-delta.crl, critical deltaCRLIndicator = the base's number, same
number sequence); --delta publishes a delta alone, listing what was revoked after the base. Nothing is ever
removed by a delta (no removeFromCRL): JPKI never releases a hold. Exit 4 (ERR_CRL_NO_BASE) when a CA has no
full CRL a delta can be built on.

Examples:
  jpki crl generate --prefecture 13
  jpki crl generate --ca 13-sig --partitions --json
  jpki crl generate --prefecture all --partitions all
  jpki crl generate --ca 13-sig --delta --json
  openssl verify -crl_check -use_deltas -extended_crl -CAfile .jpki/ca/13-sig.pem -CRLfile .jpki/crl/13-sig.crl -CRLfile .jpki/crl/13-sig-delta.crl cert.pem
  openssl crl -inform DER -in .jpki/crl/13-sig/131016.crl -noout -text`,
    )
    .action(async (o: { prefecture?: string; ca?: string; purpose: string; partitions?: true | "due" | "all"; delta?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (!o.prefecture === !o.ca) throw new JpkiError("ERR_USAGE", "say which CRLs: --prefecture CODES or --ca ID");
      const passphrase = await ctx.caPassphrase();
      await withWorkspaceLoading(ctx, crlLibrary, async (ws, { generateCrls }) => {
        const purposes: CertificateType[] = o.purpose === "both" ? ["signature", "authentication"] : [o.purpose as CertificateType];
        const partitions = o.partitions === undefined ? "none" : o.partitions === true ? "due" : o.partitions;
        // What landed is reported also when a CA then fails: generateCrls raises the first failure after every CA
        // was tried, and the CRLs published before it are as published as any (the audit log has them). They went
        // unreported: the operator saw the error alone and could not tell which CRLs were out.
        const results: PublishedCrl[] = [];
        let failure: { e: unknown } | undefined;
        try {
          await generateCrls(ws, { ...(o.ca ? { ca: o.ca } : { prefecture: o.prefecture! }), purposes, passphrase, partitions, ...(o.delta ? { delta: true } : {}), onPublished: (c) => results.push(c) });
        } catch (e) {
          failure = { e };
        }
        if (failure && !results.length) throw failure.e;
        const scopeName = (s: string) => (s === "" ? "full" : s === "arl" ? "arl" : s === "delta" ? "delta" : "partition");
        ctx.out.result(
          {
            crls: results.map((r) => ({
              ...r,
              scope: scopeName(r.scope),
              ...(scopeName(r.scope) === "partition" ? { municipality: r.scope } : {}),
              number: r.number.toString(),
              ...(r.baseNumber !== undefined ? { baseNumber: r.baseNumber.toString() } : {}),
              thisUpdate: r.thisUpdate.toISOString(),
              nextUpdate: r.nextUpdate.toISOString(),
            })),
          },
          () =>
            results.length === 0
              ? "no CRL published: the CAs named have nothing to publish (a key generation rolled over whose certificates have all expired publishes only its full CRL and ARL, and only while a link certificate of its rollovers is in force; 'jpki ca list' shows each generation)"
              : results
              .map((r) =>
                r.superseded
                  ? `CRL ${r.caId}${r.scope ? `/${r.scope}` : ""} #${r.number}: not installed, one with this number or a higher one is already published (by another jpki process meanwhile, or in crl/ without the store's record of it); the next is numbered above it`
                  : `CRL ${r.caId}${r.scope ? `/${r.scope}` : ""} #${r.number}${r.baseNumber !== undefined ? ` (delta on #${r.baseNumber})` : ""}: ${entriesText(r.entries)}, next update ${r.nextUpdate.toISOString()}\n  ${r.derPath} (DER)${r.pemPath ? `\n  ${r.pemPath} (PEM)` : ""}`,
              )
              .join("\n") + (failure ? `\n${results.length} CRLs published before the failure below; the CAs (or scopes) that failed stay due` : ""),
        );
        if (failure) throw failure.e;
      });
    });
  return crl;
}
