/**
 * `jpki provider init|trust|untrust|enrol|follow|list|show|revoke|crl`: a private certification provider (民間認証事業者) on JPKI — the
 * flow of the seed's slide 3(4). Thin: the library's provider/ does the work (STYLE.md §15).
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import type { FollowResult, ProviderLinkView, SkippedTrustFile } from "../../index.js";
import { JpkiError, checkInputFile, checkNewOutputFile, checkWorkspaceDir, library, outputExists } from "../lib.js";
import { Context, readVerifierToken, withStopSignal } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import type { Io } from "../output.js";
import { entriesText } from "../output.js";
import { downloadLimits, maxCrlOption, timeoutOption, totalTimeoutOption, type DownloadOptionValues } from "../download-options.js";

const DEFAULT_DIR = "jpki-provider";

/**
 * The provider workspace: --dir, else $JPKI_PROVIDER_HOME, else ./jpki-provider. A file or a special path is refused
 * here; a missing directory is the library's ERR_PROVIDER_MISSING (init makes it).
 */
function providerDir(io: Io, dir: string | undefined): string {
  return checkWorkspaceDir(dir ?? io.env.JPKI_PROVIDER_HOME ?? DEFAULT_DIR, dir ? "provider directory --dir" : "provider directory", { cwd: io.cwd });
}

const dirOption = ["--dir <dir>", `the provider's workspace (default: $JPKI_PROVIDER_HOME or ./${DEFAULT_DIR})`] as const;
const tokenOption = ["--token-file <file>", "the registered verifier's bearer token ('jpki verifier add --kind private' printed it), in an owner-only file (chmod 600); else $JPKI_VERIFIER_TOKEN"] as const;

function linkLine(l: ProviderLinkView): string {
  const why = l.status === "revoked" ? ` ${l.reason} at ${l.revokedAt!.toISOString()} (public ${l.public.caId} ${l.public.serial}${l.public.crlNumber ? ` on CRL #${l.public.crlNumber}` : ""})` : "";
  return `${l.serial}  ${l.status.padEnd(7)}  ${l.customerId}  until ${l.notAfter.toISOString()}  ← ${l.public.caId} ${l.public.serial}${why}`;
}

function followText(r: FollowResult): string {
  return [
    ...r.crls.map((c) => `public CRL ${c.caId}: ${c.status}${c.number ? ` #${c.number}` : ""}${c.stale ? " (stale: past its nextUpdate)" : ""}${c.error ? ` [${c.error.code}] ${c.error.message}` : ""}`),
    ...(r.crls.length ? [] : ["no live customer certificates: no public CRL to follow"]),
    ...r.compromise.map((c) => `public CA ${c.caId} (checked on ${c.successor}'s CRL): ${c.status}${c.error ? ` [${c.error.code}] ${c.error.message}` : ""}`),
    ...(r.generationIndex?.status === "unavailable" || r.generationIndex?.error ? [`public CA generation index ${r.generationIndex.url}: ${r.generationIndex.status}${r.generationIndex.reason ? ` (${r.generationIndex.reason})` : ""}${r.generationIndex.error ? ` [${r.generationIndex.error.code}] ${r.generationIndex.error.message}` : ""}`] : []),
    ...r.revoked.map((v) => `revoked ${v.serial} (${v.customerId}) ${v.reason}: public ${v.public.caId} ${v.public.serial} ${v.public.reason} on CRL #${v.public.crlNumber}`),
    ...(r.stopped ? ["pass stopped (SIGTERM/SIGINT): a download in progress was cut short and counts for nothing; what came before is recorded"] : []),
    r.crl ? `provider CRL #${r.crl.number} published (${entriesText(r.crl.entries)}, ${r.crlCause}): ${r.crl.path}` : "provider CRL unchanged",
  ].join("\n");
}

/** Files of trust/ passed over, one stderr line each (the --json result carries them as skippedTrust). */
function warnSkipped(ctx: Context, skipped: readonly SkippedTrustFile[] | undefined): void {
  for (const x of skipped ?? []) ctx.out.info(`jpki: warning: ${x.file} was passed over [${x.code}]: ${x.message}`);
}

/** A follow pass's warnings, one stderr line each: files of trust/ passed over, newer public CA generations not trusted. */
function warnFollow(ctx: Context, r: FollowResult): void {
  warnSkipped(ctx, r.skippedTrust);
  for (const n of r.newerGenerations ?? []) ctx.out.info(`jpki: warning: ${n.message}`);
}

function followJson(r: FollowResult) {
  return { ...r, ...(r.crl ? { crl: { ...r.crl, number: r.crl.number.toString() } } : {}) };
}

export function makeProviderCommand(io: Io): Command {
  const cmd = new Command("provider")
    .description("a private certification provider (民間認証事業者) on JPKI: its own CA, certificates issued on a customer's public signature certificate, revoked when that one is")
    .addHelpText(
      "after",
      `
The flow (the seed's slide 3(4)): the customer signs an application with the card's signature key (①②); the
provider validates that public certificate against the public CRL it fetches from the JPKI endpoint (③④) and
issues its own certificate, recording the link (⑤); 'follow' fetches the public CRLs again (conditional GET:
an unchanged CRL costs a 304) and revokes the provider certificates whose public certificate was revoked,
then publishes the provider's CRL for its relying parties (⑦⑧).

The provider's key passphrase comes from $JPKI_PASSPHRASE or --passphrase-file, as the CAs' does.

Example:
  jpki provider init --dir bank --name 'Example Bank' --endpoint https://jpki.example.jp --trust 13-sig.pem
  jpki provider enrol --dir bank --request application.p7s --token-file token.txt
  jpki provider follow --dir bank --token-file token.txt --watch --interval 300`,
    );

  cmd
    .command("init")
    .description("create a provider workspace: its CA (RSA-2048, key encrypted under the passphrase), the public CAs it trusts, its first CRL")
    .option(...dirOption)
    .requiredOption("--name <name>", "the provider's name: O= of its CA and certificates, e.g. 'Example Bank'")
    .requiredOption("--endpoint <url>", "base URL of the public JPKI endpoint ('jpki serve') whose CRLs it follows")
    .requiredOption("--trust <files...>", "the public prefecture signature CA certificates it trusts (PEM or DER), e.g. <workspace>/ca/13-sig.pem; after a key rollover each generation's (ca/13-sig-g2.pem)")
    .option("--crl-url <url>", "where the provider publishes its CRL: named in its certificates' cRLDistributionPoints")
    .option("--certificate-days <n>", "a customer certificate's lifetime at most, in days (default 365; never past the public certificate's)")
    .addHelpText(
      "after",
      `
The trust anchors are given as files, never fetched from the endpoint: trust must not come from the channel it checks.

Example:
  jpki provider init --dir bank --name 'Example Bank' --endpoint https://jpki.example.jp --trust 13-sig.pem \\
      --crl-url https://pki.bank.example.jp/provider.crl`,
    )
    .action(async (o: { dir?: string; name: string; endpoint: string; trust: string[]; crlUrl?: string; certificateDays?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const anchors = o.trust.map((f) => readFileSync(checkInputFile(f, "trust anchor --trust", { cwd: io.cwd })));
      const days = o.certificateDays === undefined ? undefined : Number(o.certificateDays);
      const dir = providerDir(io, o.dir);
      const passphrase = await ctx.passphrase();
      const { initProvider, systemClock } = await library();
      const r = await initProvider({ dir, name: o.name, endpoint: o.endpoint, ...(o.crlUrl ? { crlUrl: o.crlUrl } : {}), trustAnchors: anchors, passphrase, clock: systemClock, ...(days !== undefined ? { certificateDays: days } : {}) });
      ctx.out.result(r, () => `provider ${r.subject} created in ${r.dir}\n  certificate ${r.certificatePath} (sha256 ${r.sha256Fingerprint})\n  CRL ${r.crlPath}\n  trusts ${r.trusted.join(", ")}`);
    });

  cmd
    .command("trust")
    .description("trust more public prefecture signature CAs in a provider workspace: after a key rollover, the new generation (ca/13-sig-g2.pem)")
    .argument("<files...>", "the public CA certificates (PEM or DER), e.g. <workspace>/ca/13-sig-g2.pem")
    .option(...dirOption)
    .addHelpText(
      "after",
      `
After 'jpki ca rollover' on the public side, customers with renewed certificates are refused until the provider
trusts the new generation. Each certificate is kept as trust/<ca>.pem (the id the public side gave it, generation
included); one trusted already is left as it is, another certificate of an id trusted already is ERR_USAGE. The
files are given, never fetched from the endpoint: trust must not come from the channel it checks. A file of
trust/ that cannot be used is passed over by every command (a warning names it; skippedTrust in --json) and
fails only what needs its CA; trusting that CA's certificate replaces it. A generation
'follow' found declared compromised is not trusted again (ERR_PUBLIC_CA_COMPROMISED, exit 17).

Example:
  jpki provider trust --dir bank 13-sig-g2.pem`,
    )
    .action(async (files: string[], o: { dir?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const anchors = files.map((f) => readFileSync(checkInputFile(f, "CA certificate", { cwd: io.cwd })));
      const dir = providerDir(io, o.dir);
      const { trustPublicCas } = await library();
      const r = await trustPublicCas({ dir, trustAnchors: anchors });
      warnSkipped(ctx, r.skippedTrust);
      ctx.out.result(r, () => [`trusted now: ${r.trusted.join(", ")}`, ...(r.added.length ? [`  added ${r.added.join(", ")}`] : []), ...(r.already.length ? [`  already trusted ${r.already.join(", ")}`] : [])].join("\n"));
    });

  cmd
    .command("untrust")
    .description("stop trusting one key generation of a public CA (its key declared compromised): revoke every live certificate linked to it, publish the provider CRL")
    .argument("<ca>", "the public CA's id with its generation, as list shows it: 13-sig, 13-sig-g2")
    .option(...dirOption)
    .addHelpText(
      "after",
      `
When the public side declares a generation's key compromised ('jpki ca compromised', 'ca rollover --compromised'),
certificates signed with the stolen key are on no CRL. 'follow' finds it when the provider trusts the successor
too (the link certificate revoked on its CRL), or on the generation's own CRL (its own certificate listed), and
revokes what rests on it; otherwise (a successor trusted but no link: 'ca rollover --compromised') the operator,
told by the public side, says so here.
untrust removes trust/<ca>.pem, so enrolment refuses that generation's certificates, and revokes every live
provider certificate linked to it (cessationOfOperation: the identity it rests on proves nothing now); customers
enrol again with a certificate of the successor generation ('jpki provider trust' it first).

Example:
  jpki provider untrust 13-sig --dir bank --passphrase-file ./pass.txt`,
    )
    .action(async (caId: string, o: { dir?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const dir = providerDir(io, o.dir);
      const passphrase = await ctx.passphrase();
      const { untrustPublicCa, systemClock } = await library();
      const r = await untrustPublicCa({ dir, passphrase, clock: systemClock, caId });
      warnSkipped(ctx, r.skippedTrust);
      ctx.out.result({ ...r, ...(r.crl ? { crl: { ...r.crl, number: r.crl.number.toString() } } : {}) }, () =>
        [`${r.caId} is no longer trusted; trusted now: ${r.trusted.join(", ") || "none"}`, `  ${r.revoked.length} linked certificate(s) revoked${r.revoked.length ? `: ${r.revoked.join(", ")}` : ""}`, ...(r.crl ? [`  provider CRL #${r.crl.number} published: ${r.crl.path}`] : [])].join("\n"),
      );
    });

  cmd
    .command("enrol")
    .alias("enroll")
    .description("validate a customer's signed application and public signature certificate, then issue the provider's certificate and link the two")
    .option(...dirOption)
    .requiredOption("--request <file>", "CMS SignedData (DER/PEM) signed with the customer's public signature key, content attached: a PKCS#10 request, or an application with --generate-key")
    .option("--generate-key", "the signed content is an application: generate the customer's key here, written once to --key-out")
    .option("--key-out <file>", "where the generated key goes (PKCS#8 PEM, mode 0600; the provider keeps no copy)")
    .option("--customer <id>", "the provider's id for the customer (the certificate's CN; default a random opaque id)")
    .option("--ocsp", "ask the endpoint's OCSP responder too, and issue only on 'good' (same-day certainty: the CRL may be hours old)")
    .option(...tokenOption)
    .option(...timeoutOption)
    .option(...totalTimeoutOption)
    .option(...maxCrlOption)
    .addHelpText(
      "after",
      `
Refused, with nothing issued: a public certificate revoked, expired, of the test environment, of the other purpose
or from a CA not trusted (ERR_PROVIDER_PUBLIC_CERT_INVALID), a request without signing time or older than the
configured age (ERR_PROVIDER_REQUEST_INVALID), a request with a generated key given twice, or one whose
certificate has since been revoked or has expired (ERR_PROVIDER_REQUEST_REUSED),
a public CRL that cannot be had (ERR_PUBLIC_CRL_UNAVAILABLE), is wrong (ERR_PUBLIC_CRL_INVALID, _ROLLBACK) or is
past its nextUpdate (ERR_PUBLIC_CRL_STALE; all exit 17), a certificate of a public CA generation declared
compromised (ERR_PUBLIC_CA_COMPROMISED, exit 17: found by 'follow', or here, where the successor generation is
trusted too, on its CRL and the link certificate, as follow checks; a check that cannot be made issues nothing,
nor does a successor's CRL past its nextUpdate that does not list the link: ERR_PUBLIC_CRL_STALE naming it;
nor, then, one whose index of CA generations (/ca/index.json) cannot be had, a 404 aside: which generation
succeeds the signer's is not known, ERR_PUBLIC_CA_INDEX_UNAVAILABLE, exit 17, or one that names no successor
for the trusted certificate of the signer's generation, ERR_PUBLIC_CA_INDEX_MISMATCH, exit 17),
with --ocsp a responder down or unreachable after the same retries (ERR_PUBLIC_OCSP_UNAVAILABLE, exit 17), an
answer dated ahead of this host's clock (thisUpdate, producedAt; 5 min of skew allowed) or past its nextUpdate
(ERR_PUBLIC_OCSP_NOT_CURRENT, exit 17), or one malformed, with a bad signature, about another certificate or
without the request's nonce (ERR_PUBLIC_OCSP_INVALID, exit 17); "revoked" or "unknown" is
ERR_PROVIDER_PUBLIC_CERT_INVALID (exit 16).

The public CRL's download fails after --timeout without a byte or --total-timeout in all, and a CRL over
--max-crl-mib is refused, as for follow; the --ocsp exchange (a few KB) is held to --timeout as a whole.

Example (the customer's side with openssl; the card's key signs):
  openssl req -new -key new.key -subj /CN=me -out new.csr
  openssl cms -sign -nodetach -binary -in new.csr -signer card.crt -inkey card.key -outform DER -out application.p7s`,
    )
    .action(async (o: { dir?: string; request: string; generateKey?: boolean; keyOut?: string; customer?: string; ocsp?: boolean; tokenFile?: string } & DownloadOptionValues, c: Command) => {
      const ctx = Context.of(io, c);
      const limits = downloadLimits(o);
      if (o.generateKey && !o.keyOut) throw new JpkiError("ERR_USAGE", "--generate-key needs --key-out FILE: the key is handed back once");
      if (o.keyOut && !o.generateKey) throw new JpkiError("ERR_USAGE", "--key-out goes with --generate-key");
      // Never replaced: a key file there may be another customer's, not yet handed over, and the provider keeps no copy.
      const keyOut = o.keyOut ? checkNewOutputFile(o.keyOut, "key file --key-out", { cwd: io.cwd }) : undefined;
      const request = readFileSync(checkInputFile(o.request, "request --request", { cwd: io.cwd }));
      const dir = providerDir(io, o.dir);
      const bearerToken = readVerifierToken(io, o.tokenFile);
      const passphrase = await ctx.passphrase();
      const { enrolCustomer, systemClock, writeFileNew } = await library();
      // The key file is written before the enrolment is recorded (deliverKey): a failure to write it records nothing.
      const r = await enrolCustomer({
        dir,
        passphrase,
        clock: systemClock,
        request,
        generateKey: Boolean(o.generateKey),
        ...(keyOut
          ? {
              deliverKey: (pem: string) => {
                try {
                  writeFileNew(keyOut, pem, 0o600);
                } catch (e) {
                  // created since the check above: nothing is recorded (enrol.ts deliverKey), the request stays usable
                  if ((e as NodeJS.ErrnoException)?.code === "EEXIST") throw outputExists(o.keyOut!, "key file --key-out", keyOut, "nothing was issued or recorded; choose another name");
                  throw e;
                }
              },
            }
          : {}),
        ocsp: Boolean(o.ocsp),
        ...(o.customer ? { customerId: o.customer } : {}),
        bearerToken,
        ...limits,
      });
      warnSkipped(ctx, r.skippedTrust);
      const { certificate: _der, privateKeyPem: _key, ...shown } = r;
      ctx.out.result({ ...shown, ...(keyOut ? { keyPath: keyOut } : {}) }, () =>
        [
          `${r.alreadyEnrolled ? "already enrolled" : "issued"} ${r.serial} to ${r.customerId} until ${r.notAfter.toISOString()}: ${r.certificatePath}`,
          `  linked to public ${r.public.caId} ${r.public.serial} (valid on CRL #${r.publicCrl.number}, ${r.publicCrl.status}${r.publicOcsp ? "; OCSP good" : ""})`,
          ...(keyOut ? [`  the customer's key: ${keyOut} (hand it over, then delete it)`] : []),
        ].join("\n"),
      );
    });

  cmd
    .command("follow")
    .description("fetch the public CRLs (conditional GET), revoke the provider certificates whose public certificate is revoked, publish the provider CRL")
    .option(...dirOption)
    .option(...tokenOption)
    .option("--watch", "keep following, a pass every --interval, until SIGTERM/SIGINT")
    .option("--interval <seconds>", "seconds between passes with --watch", "300")
    .option(...timeoutOption)
    .option(...totalTimeoutOption)
    .option(...maxCrlOption)
    .addHelpText(
      "after",
      `
Each pass fetches each public CA's full CRL at <endpoint>/crl/<ca>.crl with If-None-Match/If-Modified-Since,
verifies it with the trusted CA certificate, refuses one whose CRL number goes backwards, and records what it
saw. A revocation maps to the provider's reason: affiliationChanged, cessationOfOperation, superseded and
certificateHold carry over; keyCompromise only for a certificate of the card's own key (else
cessationOfOperation). Safe to kill and run again: the next pass completes what a killed one left.
For each trusted generation whose successor is trusted too (13-sig, 13-sig-g2), it fetches the link certificate
<endpoint>/ca/13-sig.by-13-sig-g2.crt and looks it up on 13-sig-g2's CRL: listed, the public side declared
13-sig's key compromised; every certificate resting on 13-sig is revoked, and the pass fails with
ERR_PUBLIC_CA_COMPROMISED until 'jpki provider untrust 13-sig' (enrol and trust refuse it from then on).
The same when a trusted generation's own CRL lists its own CA certificate (cACompromise): the public side's
statement, signed by that key, that it is compromised; what tells the newest trusted generation, or one whose
successor is not trusted or was made by 'ca rollover --compromised' (no link), as compromised.
When the endpoint publishes a generation newer than the newest trusted one of a CA (<endpoint>/ca/13-sig-g2.crt),
the pass warns on stderr (newerGenerations in --json; the exit code is not changed): 'linked' when the trusted key
certifies it (an ordinary rollover: 'jpki provider trust' it), else compare its SHA-256 with the public side's over
another channel before trusting it (a rollover made because of a compromise publishes no link).
Which generation succeeds which is read from <endpoint>/ca/index.json (a rollover may pass over an id: 13-sig →
13-sig-g3), asked when two generations of a CA are trusted or a newer one is looked for; a 404 (an older server)
leaves g+1. An index that cannot be had otherwise (no answer, a 5xx after the retries, a body that is not an index)
is reported (generationIndex "unavailable" and why, in --json); with two generations of a CA trusted it fails the
pass with ERR_PUBLIC_CA_INDEX_UNAVAILABLE (exit 17): the revocations the CRLs list are applied, but the provider CRL
is not renewed for being due, as when a compromise check cannot be made. So does an index that names no successor
for the certificate trusted as such a generation (its entry missing, naming none, or with another SHA-256):
ERR_PUBLIC_CA_INDEX_MISMATCH (exit 17).
A 429, 5xx or refused connection is asked again twice, with a growing wait; a redirect is not followed.
A download fails after 10 s without a byte (--timeout), or after 10 min however steadily it comes
(--total-timeout); a CRL over 256 MiB (--max-crl-mib) is refused. With --watch and --json, each pass writes
one JSON document on a line of its own. With --watch, SIGTERM or SIGINT cuts a download in progress short (that CA
is "stopped": nothing of it written) and ends the pass as any pass ends: what it had is recorded, then the CRL.

${commandExitCodes({
  ok: "every public CRL followed",
  errors: [
    ["ERR_PUBLIC_CA_COMPROMISED", "a trusted public CA generation was declared compromised: what rests on it was revoked; run 'jpki provider untrust'"],
    [["ERR_PUBLIC_CRL_UNAVAILABLE", "ERR_PUBLIC_CRL_INVALID", "ERR_PUBLIC_CRL_ROLLBACK"], "a public CRL (or a generation's link certificate) could not be had or was refused (the others are still followed)"],
    ["ERR_PUBLIC_CA_INDEX_UNAVAILABLE", "two generations of a public CA are trusted and the endpoint's /ca/index.json could not be had (not a 404): a successor it names would go unchecked"],
    ["ERR_PUBLIC_CA_INDEX_MISMATCH", "two generations of a public CA are trusted and the endpoint's /ca/index.json names no successor for the trusted certificate of the older (missing, none, or another SHA-256): its successor would go unchecked"],
    ["ERR_PUBLIC_CRL_CLOCK", "a public CRL is dated after this host's clock (its revocations are applied all the same)"],
    ["ERR_PUBLIC_CRL_STALE", "a public CRL is past its nextUpdate (its revocations are applied all the same)"],
    [["ERR_CA_UNKNOWN", "ERR_CA_INVALID"], "customers' certificates rest on a public CA whose trust/<ca>.pem is gone or not that CA's certificate: its CRL is not followed (the others are); 'provider trust' puts it back, 'provider untrust' revokes what rests on it"],
    ["ERR_DER_MALFORMED", "the same, trust/<ca>.pem not being a certificate at all"],
    ["ERR_FILE_UNUSABLE", "a file could not be written (a full disk, a quota, a read-only filesystem: the message says what was recorded and what the next pass does), or trust/<ca>.pem cannot be read"],
  ],
})}

Examples:
  jpki provider follow --dir bank --token-file token.txt
  jpki provider follow --dir bank --token-file token.txt --watch --interval 300 --json`,
    )
    .action(async (o: { dir?: string; tokenFile?: string; watch?: boolean; interval: string } & DownloadOptionValues, c: Command) => {
      const ctx = Context.of(io, c);
      const limits = downloadLimits(o);
      const dir = providerDir(io, o.dir);
      const token = readVerifierToken(io, o.tokenFile);
      const passphrase = await ctx.passphrase();
      const { followPublicCrls, watchPublicCrls, systemClock } = await library();
      // a compromised public CA first: the gravest, and what the operator must act on ('untrust')
      const failed = (r: FollowResult) => {
        const ca = r.compromise.find((x) => x.error?.code === "ERR_PUBLIC_CA_COMPROMISED");
        if (ca) return { what: `public CA ${ca.caId}`, error: ca.error };
        const crl = r.crls.find((x) => x.error);
        if (crl) return { what: `public CRL ${crl.caId}`, error: crl.error };
        const check = r.compromise.find((x) => x.error);
        if (check) return { what: `public CA ${check.caId}`, error: check.error };
        const index = r.generationIndex?.error;
        return index && { what: "public CA generation index", error: index };
      };
      // Given alone it changed nothing, silently: one pass ran and the command ended.
      if (!o.watch && c.getOptionValueSource("interval") === "cli") throw new JpkiError("ERR_USAGE", "--interval sets the time between passes of --watch: add --watch, or drop --interval for one pass");
      if (o.watch) {
        const seconds = Number(o.interval);
        if (!Number.isFinite(seconds) || seconds < 1) throw new JpkiError("ERR_USAGE", "--interval must be a number of seconds ≥ 1");
        await withStopSignal("provider follow --watch", (signal) =>
          watchPublicCrls({ dir, passphrase, clock: systemClock, bearerToken: token, ...limits, intervalMs: seconds * 1000, signal, onPass: (r) => (warnFollow(ctx, r), ctx.out.line(followJson(r), () => followText(r))), onBusy: (e) => ctx.out.info(`jpki: ${e.message}; this pass is skipped`) }),
        );
        return;
      }
      const r = await followPublicCrls({ dir, passphrase, clock: systemClock, bearerToken: token, ...limits });
      warnFollow(ctx, r);
      ctx.out.result(followJson(r), () => followText(r));
      const f = failed(r);
      if (f?.error) throw new JpkiError(f.error.code, `${f.what}: ${f.error.message}`);
    });

  cmd
    .command("list")
    .description("every certificate the provider issued, with the public certificate it is linked to")
    .option(...dirOption)
    .addHelpText("after", `\nExamples:\n  jpki provider list --dir bank\n  jpki provider list --dir bank --json`)
    .action(async (o: { dir?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const { listProviderLinks, systemClock } = await library();
      const links = listProviderLinks(providerDir(io, o.dir), systemClock);
      ctx.out.result({ certificates: links }, () => (links.length ? links.map(linkLine).join("\n") : "no certificates issued yet"));
    });

  cmd
    .command("show")
    .description("one certificate the provider issued: its link, status and PEM")
    .argument("<serial>", "the serial in hex, as enrol or list printed it")
    .option(...dirOption)
    .addHelpText("after", `\nExamples:\n  jpki provider show --dir bank 5f3a…c1\n  jpki provider show --dir bank 5f3a…c1 --json`)
    .action(async (serial: string, o: { dir?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const { showProviderLink, systemClock } = await library();
      const l = showProviderLink(providerDir(io, o.dir), serial, systemClock);
      ctx.out.result(l, () => `${linkLine(l)}\n${l.certificatePem}`);
    });

  cmd
    .command("revoke")
    .description("revoke one of the provider's certificates itself (the customer's key lost, the account closed) and publish the provider CRL")
    .argument("<serial>", "the serial in hex, as enrol or list printed it")
    .option(...dirOption)
    .requiredOption("--reason <reason>", "an RFC 5280 reason name (keyCompromise, cessationOfOperation, affiliationChanged, superseded …) or a cause such as loss")
    .addHelpText("after", `\nExamples:\n  jpki provider revoke --dir bank 5f3a…c1 --reason loss\n  jpki provider revoke --dir bank 5f3a…c1 --reason cessationOfOperation --passphrase-file ./pass.txt --json`)
    .action(async (serial: string, o: { dir?: string; reason: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const dir = providerDir(io, o.dir);
      const passphrase = await ctx.passphrase();
      const { revokeProviderCertificate, systemClock } = await library();
      const r = await revokeProviderCertificate({ dir, passphrase, clock: systemClock, serial, reason: o.reason });
      ctx.out.result({ ...r.link, crl: { ...r.crl, number: r.crl.number.toString() } }, () => `revoked ${r.link.serial} (${r.link.reason}); provider CRL #${r.crl.number} published: ${r.crl.path}`);
    });

  cmd
    .command("crl")
    .description("publish a new provider CRL now (follow does when something changed)")
    .option(...dirOption)
    .addHelpText("after", `\nExamples:\n  jpki provider crl --dir bank --passphrase-file ./pass.txt`)
    .action(async (o: { dir?: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const dir = providerDir(io, o.dir);
      const passphrase = await ctx.passphrase();
      const { openProviderCa, providerPaths, publishProviderCrl, readProviderConfig, withProviderLock, systemClock } = await library();
      const paths = providerPaths(dir);
      const config = readProviderConfig(paths);
      const crl = await withProviderLock(paths, () => publishProviderCrl(paths, config, openProviderCa(paths, passphrase), systemClock));
      ctx.out.result({ ...crl, number: crl.number.toString() }, () => `provider CRL #${crl.number} published (${entriesText(crl.entries)}): ${crl.path}`);
    });

  return cmd;
}
