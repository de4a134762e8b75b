/**
 * `jpki verify CERT`: is this JPKI certificate good for a purpose, now or at --at? A thin shell over
 * validateJpkiAsync (src/validation/jpki.ts): the path to a trusted CA, its revocation from the CRLs given or
 * fetched (--crl, --crl-url through a CrlCache) or from OCSP (--ocsp, an OcspClient), the JPKI purpose. Prints the verdict in words a municipal clerk understands; exit 0 valid, 1 invalid, 15 could
 * not decide (soft-fail), errors as everywhere else (2 usage, 10 undecodable input …).
 */
import { existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { Command, Option } from "commander";
import type { CrlFetchOutcome, JpkiValidationResult, RevocationCheck, RevocationSourceName } from "../../index.js";
import { Context, DEFAULT_WORKSPACE, readVerifierToken, withWorkspace } from "../context.js";
import { EXIT_INVALID, EXIT_UNDECIDED, VerdictExit, commandExitCodes } from "../exit-codes.js";
import { JpkiError, library, readInputFile } from "../lib.js";
import type { Io } from "../output.js";
import { looksLikePem } from "../../pki/pem.js";
import { parseTimeOption } from "../time-option.js";
import { downloadLimits, maxCrlOption, timeoutSeconds, totalTimeoutOption } from "../download-options.js";

interface VerifyOptions {
  trust: string[];
  chain: string[];
  crl: string[];
  crlUrl: string[];
  ocsp?: string | true;
  tokenFile?: string;
  tokenOrigin: string[];
  timeout: string;
  totalTimeout: string;
  maxCrlMib: string;
  at?: string;
  purpose: "signature" | "authentication";
  softFail?: boolean;
  showItems?: boolean;
  statusOf?: string;
  url?: string;
  link?: boolean;
  batchSize: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/**
 * The largest input files read: far above anything real (a national CRL is tens of MiB, a PEM bundle of a
 * thousand certificates a few MiB), far below what fails a read or a string (2 GiB, 512 Mi characters).
 */
const MAX_CERTIFICATE_FILE = 64 * 2 ** 20;
const MAX_CRL_FILE = 1024 * 2 ** 20;
const MAX_STATUS_LIST = 256 * 2 ** 20;

export function makeVerifyCommand(io: Io): Command {
  return new Command("verify")
    .description("check a JPKI certificate: trusted CA, validity period, revocation (CRL, OCSP), and purpose (signature 署名用 / authentication 利用者証明用)")
    .argument("[cert]", "the certificate to check (PEM or DER; further PEM certificates in the file are used as intermediates)")
    .option("--status-of <file>", "liveness check (現況確認) of a list of certificates at a jpki serve (--url): a PEM bundle, or lines of <caId>:<serial> or certificate ids")
    .option("--url <url>", "with --status-of: the jpki serve to ask (its base URL; POST <url>/v1/status)")
    .option("--link", "with --status-of: ask which certificate replaced each revoked one (新旧証明書の紐付け; given to government bodies and with the resident's consent)")
    .option("--batch-size <n>", "with --status-of: certificates per request (1 to 1000)", "1000")
    .option("--trust <file>", "a trusted CA certificate file, PEM (one or several) or DER; repeatable (default: the workspace's CA certificates)", collect, [])
    .option("--chain <file>", "intermediate or cross certificates, PEM or DER; repeatable", collect, [])
    .option("--crl <file>", "a CRL (失効リスト), PEM or DER; repeatable (default with workspace trust: the workspace's published CRLs)", collect, [])
    .option("--crl-url <url>", "fetch a CRL over HTTP(S); repeatable. `auto`: the CRLs the certificates name (distribution points, delta CRLs)", collect, [])
    .option("--ocsp [url]", "ask OCSP (RFC 6960): the responder each certificate names (AIA), or the URL given")
    .option("--token-file <file>", "a file holding the bearer token of a registered verifier (jpki verifier add), sent to the origins of --crl-url URL and --ocsp URL; default $JPKI_VERIFIER_TOKEN")
    .option("--token-origin <origin>", "also send the token to this origin (https://host[:port]), for the URLs the certificates name (--crl-url auto, --ocsp); repeatable", collect, [])
    .option("--timeout <seconds>", "give up on an OCSP request after this long, on a CRL download after this long without a byte (a steady one runs on, up to --total-timeout)", "10")
    .option(...totalTimeoutOption)
    .option(...maxCrlOption)
    .option("--at <time>", "the time to check at, ISO 8601 (e.g. 2026-04-01 or 2026-04-01T09:00:00+09:00); default now")
    .addOption(new Option("--purpose <purpose>", "what the certificate must be good for").choices(["signature", "authentication"]).default("signature"))
    .option("--soft-fail", "accept a certificate whose revocation status cannot be established, with exit code 15 instead of 1")
    .option("--show-items", "print the four basic items (基本4情報) of a signature certificate: personal data, off by default (also in --json)")
    .addHelpText(
      "after",
      `
Trust: with --trust, only the CA certificates given are trusted. Without it, inside a workspace (--workspace,
$JPKI_HOME or ./${DEFAULT_WORKSPACE}), its CA certificates are (every key generation's, but not one whose key
is compromised: 'ca rollover --compromised', 'ca compromised'), and its published CRLs (crl/*.crl, arl/*.crl)
are used unless --crl is given. Outside a workspace --trust is required. J-LIS's roots (fixtures/jlis/*.pem) can
be given to --trust.

Revocation is checked against the CRLs given (--crl, or the workspace's) and fetched (--crl-url URL, or
--crl-url auto for the URLs the certificates name; fetches that fail are reported, not fatal). With --ocsp each
certificate's status is asked of OCSP first (its AIA responder, or --ocsp URL), and the CRLs given or fetched
decide only when OCSP gives no usable answer (down, refused, stale, unknown, a bad signature or nonce). A
certificate whose status no source establishes is invalid (exit 1, revocation-unknown), unless --soft-fail
(exit 15). jpki serve answers registered verifiers only: give the token \`jpki verifier add\` printed with
--token-file FILE (owner-only, chmod 600, as a passphrase file) or $JPKI_VERIFIER_TOKEN, never on the command
line. The token goes only to the origins (scheme, host, port) of --crl-url URL and --ocsp URL and to those given
with --token-origin: a URL a certificate names on any other origin (with J-LIS's roots in --trust, J-LIS's
hosts) is asked without it, and a 401 from there says so. --json says which source answered for each certificate (revocationChecks) and what each fetch came to
(crlFetches, ocsp). --crl and --crl-url may be combined. --ocsp takes an optional URL: write CERT before it,
or use --ocsp=URL.

A wrong purpose (a signature certificate checked for authentication, or the reverse)
is invalid with status profile-violation; a certificate of another prefecture's or a foreign CA is untrusted.

Liveness check (--status-of FILE --url URL): asks a jpki serve's POST /v1/status about every certificate the
file lists, in batches, with the token of --token-file or $JPKI_VERIFIER_TOKEN. FILE is a PEM bundle (each
certificate asked about by its certificate id, the hex SHA-256 of its DER) or text: one <caId>:<serial> (hex)
or 64-digit certificate id per line, # comments and blank lines skipped. Prints one row per certificate: good,
revoked or unknown, what the caller's kind may see (a government body: the revocation reason and time), and
with --link the certificate that replaced it, where given. Exit 0 when every certificate is good, 1 when any
is revoked or unknown or was refused as malformed, 17 (ERR_SERVICE_FAILED) when the server could not be
reached or refused the request (401 without a registered verifier's token).

${commandExitCodes({
  ok: "valid (有効)",
  verdicts: [
    [EXIT_INVALID, "invalid: revoked, expired, not yet valid, untrusted, wrong purpose, revocation unknown without --soft-fail"],
    [EXIT_UNDECIDED, "could not decide: valid but its revocation status is unknown (--soft-fail)"],
  ],
  errors: [
    ["ERR_USAGE", "usage error"],
    [["ERR_FILE_NOT_FOUND", "ERR_FILE_UNUSABLE"], "an input file missing or unusable"],
    ["ERR_DER_MALFORMED", "an input file is not a certificate or CRL"],
    ["ERR_SERVICE_FAILED", "--status-of: the server could not be reached or refused the request"],
  ],
})}

Examples:
  jpki verify cert.pem                                   # inside a workspace: trust its CAs and CRLs
  jpki verify cert.pem --trust .jpki/ca/13-sig.pem --crl .jpki/crl/13-sig.crl
  jpki verify auth.der --purpose authentication --trust fixtures/jlis/auth-ca-2023.pem --soft-fail
  jpki verify cert.pem --at 2030-01-01 --json | jq .status
  jpki verify cert.pem --trust ca.pem --ocsp --token-file verifier.token --token-origin https://jpki.example   # OCSP at the AIA URL
  jpki verify cert.pem --trust ca.pem --ocsp https://jpki.example/ocsp/13-sig --crl-url auto --soft-fail
  jpki verify cert.pem --trust ca.pem --crl-url https://jpki.example/crl/13-sig.crl --token-file verifier.token
  jpki verify --status-of customers.pem --url https://jpki.example --token-file verifier.token --link`,
    )
    .action(async (file: string | undefined, o: VerifyOptions, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.statusOf !== undefined) return statusOf(ctx, o, file);
      if (o.url !== undefined || o.link) throw new JpkiError("ERR_USAGE", "--url and --link go with --status-of FILE");
      if (file === undefined) throw new JpkiError("ERR_USAGE", "give the certificate to check, or --status-of FILE --url URL for a liveness check of a list");
      const at = o.at === undefined ? new Date() : parseTimeOption(o.at);
      const ocspUrl = typeof o.ocsp === "string" ? httpUrl(o.ocsp, "--ocsp", " (or write the certificate before --ocsp, which takes an optional URL)") : undefined;
      const crlUrls = o.crlUrl.filter((u) => u !== "auto").map((u) => httpUrl(u, "--crl-url", ", or auto"));
      const autoCrls = o.crlUrl.includes("auto");
      const limits = downloadLimits(o);
      const { timeoutMs } = limits;
      const bearerToken = readVerifierToken(io, o.tokenFile);
      const lib = await library();
      // The token goes to the servers named on the command line, never to one only a certificate names.
      const tokenOrigins = [...crlUrls, ...(ocspUrl ? [ocspUrl] : [])].flatMap((u) => lib.originOf(u) ?? []).concat(o.tokenOrigin.map((t) => lib.httpOrigin(t, "--token-origin")));
      const certs = (f: string, what: string) => readCertificates(lib, io.cwd, f, what);
      const input = certs(file, "certificate");
      let trust = o.trust.flatMap((f) => certs(f, "trust certificate --trust"));
      let crls = o.crl.flatMap((f) => readCrls(lib, io.cwd, f));
      let trustFrom = `${o.trust.length} file(s) given with --trust`;
      let leftOut: Array<{ id: string; der: Buffer }> = [];
      if (o.trust.length === 0) {
        const ws = await workspaceTrust(ctx, lib);
        trust = ws.anchors;
        leftOut = ws.compromised;
        if (o.crl.length === 0) crls = ws.crls;
        trustFrom = `the CA certificates of the workspace ${ws.dir}`;
      }
      const crlCache = o.crlUrl.length > 0 ? new lib.CrlCache({ bearerToken, tokenOrigins, ...limits }) : undefined;
      const named = await Promise.all(crlUrls.map((u) => crlCache!.get(u)));
      crls = [...crls, ...named.flatMap((f) => (f.der ? [f.der] : []))];
      // OCSP first when asked for; the CRLs (given, the workspace's, fetched) then as the fallback
      const crlsThere = crls.length > 0 || o.crlUrl.length > 0;
      const sources: RevocationSourceName[] = o.ocsp ? (crlsThere ? ["ocsp", "crl"] : ["ocsp"]) : ["crl"];
      const r = await lib.validateJpkiAsync({
        certificate: input[0]!,
        purpose: o.purpose,
        trustAnchors: trust,
        intermediates: [...input.slice(1), ...o.chain.flatMap((f) => certs(f, "chain certificate --chain"))],
        crls,
        at,
        revocation: o.softFail ? "soft-fail" : "hard-fail",
        revocationSources: sources,
        ...(autoCrls ? { crlSource: crlCache } : {}),
        ...(o.ocsp ? { ocspSource: new lib.OcspClient({ url: ocspUrl, bearerToken, tokenOrigins, timeoutMs }) } : {}),
      });
      const { crlFetches, ocspResponses, ...verdict } = r;
      const fetches = [...named, ...crlFetches].map(({ der: _der, ...f }: CrlFetchOutcome) => f);
      const shown: JpkiValidationResult = o.showItems ? verdict : withoutItems(verdict);
      const compromisedIssuer = verdict.status === "untrusted" ? lib.compromisedSignerOf(input[0]!, leftOut.map((c) => lib.compromisedGeneration(c.id, c.der))) : undefined;
      ctx.out.result(
        { ...shown, at, trust: { from: trustFrom, certificates: trust.length, crls: crls.length }, revocationSources: sources, crlFetches: fetches, ocsp: ocspResponses, ...(compromisedIssuer ? { compromisedIssuer } : {}) },
        () => formatVerdict(verdict, { at, file, showItems: Boolean(o.showItems), trustFrom, fetches, ...(compromisedIssuer ? { compromisedIssuer } : {}) }),
      );
      const code = exitCodeOf(verdict);
      if (code !== 0) throw new VerdictExit(code);
    });
}

/** `--status-of FILE`: the liveness check of a list at a jpki serve, a table or one JSON document. */
async function statusOf(ctx: Context, o: VerifyOptions, file: string | undefined): Promise<void> {
  if (file !== undefined) throw new JpkiError("ERR_USAGE", "--status-of checks the certificates of its list: give no certificate argument with it");
  if (o.url === undefined) throw new JpkiError("ERR_USAGE", "--status-of asks a jpki serve: give its base URL with --url");
  const url = httpUrl(o.url, "--url", "");
  const batchSize = Number(o.batchSize);
  if (!/^\d+$/.test(o.batchSize) || batchSize < 1 || batchSize > 1000) throw new JpkiError("ERR_USAGE", `--batch-size ${JSON.stringify(o.batchSize)}: give 1 to 1000`);
  const bearerToken = readVerifierToken(ctx.io, o.tokenFile);
  const lib = await library();
  const text = readInputFile(o.statusOf!, "certificate list --status-of", { cwd: ctx.io.cwd, maxBytes: MAX_STATUS_LIST }).toString("utf8");
  const items = lib.parseStatusList(text, `--status-of ${o.statusOf}`);
  const answer = await lib.fetchStatus(items, { url, batchSize, timeoutMs: timeoutSeconds(o.timeout), ...(bearerToken ? { bearerToken } : {}), ...(o.link ? { link: true } : {}) });
  ctx.out.result(answer, () => formatStatus(answer));
  const allGood = answer.items.every((i) => "status" in i && i.status === "good");
  if (!allGood) throw new VerdictExit(EXIT_INVALID);
}

const LIVENESS_WORDS = { good: "good (有効)", revoked: "REVOKED (失効)", unknown: "unknown (不明)" } as const;

function formatStatus(a: Awaited<ReturnType<Lib["fetchStatus"]>>): string {
  const rows = a.items.map((i) => {
    if ("error" in i) return `#${i.index + 1}  refused: ${i.error} (${i.message})`;
    const name = "certificateId" in i.item ? i.item.certificateId.slice(0, 16) + "…" : `${i.item.caId}:${i.item.serial}`;
    const more = [
      i.revocation ? `${i.revocation.reason} since ${day(new Date(i.revocation.time))}` : "",
      i.unknownReason ? (i.unknownReason === "expired" ? "expired" : "not issued here") : "",
      i.replacedBy ? `replaced by ${i.replacedBy.caId}:${i.replacedBy.serial}` : "",
    ].filter(Boolean);
    return `#${i.index + 1}  ${name}  ${LIVENESS_WORDS[i.status]}${more.length ? `  ${more.join("; ")}` : ""}`;
  });
  const counts = { good: 0, revoked: 0, unknown: 0, refused: 0 };
  for (const i of a.items) counts["error" in i ? "refused" : i.status]++;
  return [...rows, `${a.items.length} checked at ${a.checkedAt} (${a.view} view): ${counts.good} good, ${counts.revoked} revoked, ${counts.unknown} unknown${counts.refused ? `, ${counts.refused} refused` : ""}`].join("\n");
}

function httpUrl(s: string, option: string, hint: string): string {
  if (!/^https?:\/\/[^\s]+$/i.test(s)) throw new JpkiError("ERR_USAGE", `${option} ${JSON.stringify(s)} is not an http:// or https:// URL${hint}`);
  return s;
}

/** 0 valid, 15 valid with revocation warnings (soft-fail), 1 anything else. */
export function exitCodeOf(r: JpkiValidationResult): number {
  if (r.status !== "valid") return EXIT_INVALID;
  return r.revocationWarnings.length > 0 ? EXIT_UNDECIDED : 0;
}

function withoutItems(r: JpkiValidationResult): JpkiValidationResult {
  const { fourItems: _omitted, ...rest } = r;
  return rest as JpkiValidationResult;
}

type Lib = Awaited<ReturnType<typeof library>>;

/** Every certificate in a file: PEM (one or several CERTIFICATE blocks) or one DER certificate, each checked to decode. */
function readCertificates(lib: Lib, cwd: string, file: string, what: string): Buffer[] {
  const bytes = readInputFile(file, what, { cwd, maxBytes: MAX_CERTIFICATE_FILE });
  return decodeAll(lib, bytes, ["CERTIFICATE"], (d) => lib.describeJpkiAnchor(d), `${what} ${file}`, "certificate");
}

function readCrls(lib: Lib, cwd: string, file: string): Buffer[] {
  const bytes = readInputFile(file, "CRL --crl", { cwd, maxBytes: MAX_CRL_FILE });
  return decodeAll(lib, bytes, ["X509 CRL"], (d) => lib.checkCrl(d), `CRL --crl ${file}`, "CRL");
}

function decodeAll(lib: Lib, bytes: Buffer, labels: string[], check: (d: Buffer) => unknown, where: string, kind: string): Buffer[] {
  let ders: Buffer[];
  // PEM by its start, unless the file is one whole DER SEQUENCE: a DER certificate may carry "-----BEGIN " in a name.
  if (looksLikePem(bytes)) {
    ders = lib.parsePemBlocks(bytes.toString("utf8")).filter((b) => labels.includes(b.label)).map((b) => b.der);
    if (ders.length === 0) throw new JpkiError("ERR_DER_MALFORMED", `the ${where} holds no PEM ${labels.join(" or ")} block`);
  } else {
    ders = [lib.pemOrDer(bytes, labels, kind)];
  }
  for (const d of ders) {
    try {
      check(d);
    } catch (e) {
      throw new JpkiError("ERR_DER_MALFORMED", `the ${where} is not a ${kind} that can be decoded`, { cause: e });
    }
  }
  return ders;
}

/**
 * The workspace's CA certificates and published CRLs (no passphrase): every generation's self-signed certificate
 * from the store but those whose key is compromised (ca/compromised.ts), and the CRL files. All of ca/*.pem were
 * trusted before (found when a retired key was declared compromised): the stolen generation's root, and every link
 * certificate as an anchor of its own, so what the thief signed verified VALID here while the ARLs revoked the links.
 */
async function workspaceTrust(ctx: Context, lib: Lib): Promise<{ dir: string; anchors: Buffer[]; crls: Buffer[]; compromised: Array<{ id: string; der: Buffer }> }> {
  const explicit = ctx.opts.workspace !== undefined || Boolean(ctx.io.env.JPKI_HOME);
  const dir = ctx.workspaceDir;
  if (!existsSync(join(dir, "config.json"))) {
    if (explicit) throw new JpkiError("ERR_WORKSPACE_MISSING", `no workspace at ${dir}: give the trusted CA certificates with --trust FILE instead`);
    throw new JpkiError("ERR_USAGE", "no trust anchors: give the trusted CA certificates with --trust FILE (PEM or DER, e.g. a prefecture CA's ca/13-sig.pem or J-LIS's root), or run inside a jpki workspace (--workspace DIR)");
  }
  const files = (sub: string, ext: string) => {
    const d = join(dir, sub);
    return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith(ext)).sort().map((f) => join(d, f)) : [];
  };
  // Checked as any input file: a directory, a FIFO or a link into /dev where a file should be is refused by name,
  // where readFileSync would fail with EISDIR (a stack trace) or block forever.
  const read = (f: string, maxBytes: number) => readInputFile(relative(dir, f), "the workspace's file", { cwd: dir, maxBytes });
  let anchors: Buffer[];
  let left: Array<{ id: string; der: Buffer }>;
  try {
    [anchors, left] = await withWorkspace(ctx, async (ws) => {
      const compromised = await lib.compromisedCaIds(ws.store);
      const cas = await ws.store.listCas();
      return [cas.filter((c) => !compromised.has(c.id)).map((c) => c.certificateDer), cas.filter((c) => compromised.has(c.id)).map((c) => ({ id: c.id, der: c.certificateDer }))] as const;
    });
  } catch (e) {
    // A copy of the published files (no jpki.db), a PostgreSQL server down or JPKI_STORE unset: verify used to work
    // there from ca/*.pem, and the store's own error ("restore the store from a backup") sent a relying party
    // after the wrong thing. Same code and exit; the way on named.
    if (!(e instanceof JpkiError)) throw e;
    throw new JpkiError(e.code, `${e.message}. 'jpki verify' takes a workspace's trust anchors from its store, which knows the key generations declared compromised (ca/*.pem does not): to verify without the store, give the CA certificates to trust with --trust FILE (and the CRLs with --crl FILE)`, { cause: e, ...(e.details ? { details: { ...e.details } } : {}) });
  }
  if (anchors.length === 0) throw new JpkiError("ERR_CA_UNKNOWN", `the workspace ${dir} has no CA yet (jpki ca init): give the trusted CA certificates with --trust FILE`);
  const crls = [...files("crl", ".crl"), ...files("arl", ".crl")].map((f) => read(f, MAX_CRL_FILE));
  return { dir, anchors, crls, compromised: left };
}

/** Words for the statuses, with the Japanese term beside the English one. */
const STATUS_WORDS: Readonly<Record<JpkiValidationResult["status"], string>> = {
  valid: "VALID (有効)",
  revoked: "NOT VALID: revoked (失効)",
  expired: "NOT VALID: expired (有効期間満了)",
  "not-yet-valid": "NOT VALID: not yet valid (有効期間開始前)",
  untrusted: "NOT VALID: not trusted (信頼できない)",
  "profile-violation": "NOT VALID: wrong kind of certificate (プロファイル不適合)",
  "revocation-unknown": "NOT VALID: revocation status unknown (失効確認不能)",
};

const SOURCE_WORDS: Readonly<Record<Exclude<RevocationCheck["source"], "none">, string>> = { crl: "a CRL (失効リスト)", ocsp: "OCSP" };

const PURPOSE_WORDS = { signature: "signature certificate (署名用電子証明書)", authentication: "authentication certificate (利用者証明用電子証明書)" } as const;

const REVOCATION_WORDS: Readonly<Record<string, string>> = {
  keyCompromise: "card lost or stolen, or key compromised",
  affiliationChanged: "a certified item changed (move, name change, correction)",
  cessationOfOperation: "no longer in use (death, record removed, card returned or the holder's request)",
  superseded: "replaced by a new certificate",
  cACompromise: "the CA's key was compromised",
  certificateHold: "suspected key problem",
  unspecified: "no reason given",
};

function day(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function formatVerdict(
  r: JpkiValidationResult,
  o: { at: Date; file: string; showItems: boolean; trustFrom: string; fetches?: ReadonlyArray<Pick<CrlFetchOutcome, "url" | "status" | "error">>; compromisedIssuer?: string },
): string {
  const lines: string[] = [];
  const describe = (i: number) => {
    const c = r.chain?.[i];
    return i === 0 ? `the certificate itself (${o.file}; serial ${c?.serial ?? "?"})` : `the CA certificate ${i} step(s) above it (${c?.subject ?? "?"})`;
  };
  const kind = r.certificatePurpose === "unknown" ? "certificate of no JPKI purpose" : PURPOSE_WORDS[r.certificatePurpose];
  const issuer = r.prefecture ? `${r.prefecture.romaji} (${r.prefecture.kanji})` : r.issuer?.operator === "jlis" ? "J-LIS (地方公共団体情報システム機構)" : "a CA outside JPKI";
  lines.push(`${STATUS_WORDS[r.status]}: ${kind} issued by ${issuer}, checked for ${r.purpose} at ${day(o.at)}`);
  if (r.status === "valid") {
    for (const w of r.revocationWarnings) {
      lines.push(`  but: could not check whether ${describe(w.index)} is revoked (失効): ${w.detail}. Not decided (--soft-fail): ${nextStep(w.detail)}.`);
    }
  } else {
    lines.push(`  which: ${describe(r.index)}`);
    lines.push(
      o.compromisedIssuer
        ? `  why:   it was signed by the key of ${o.compromisedIssuer}, a CA key generation declared compromised (鍵危殆化): the workspace trusts it no more, whether this certificate is genuine or forged with the stolen key. A genuine one is revoked with 'jpki revoke --ca ${o.compromisedIssuer} --all --reason ca-compromise'; its holder needs a new certificate.`
        : `  why:   ${explain(r)}`,
    );
  }
  for (const c of r.revocationChecks ?? []) {
    if (c.source !== "none") lines.push(`  revocation: ${describe(c.index)}: ${c.status}, from ${SOURCE_WORDS[c.source]}${c.url ? ` ${c.url}` : ""}`);
  }
  // A CRL asked for by URL that could not be fetched is said, with why: "give a current CRL with --crl-url" alone,
  // after a --crl-url answered 401, sent the reader to the option they had used (only --json said why).
  for (const f of o.fetches ?? []) {
    if (f.status === "failed" || f.status === "stale") lines.push(`  fetch: ${f.url}: ${f.status === "stale" ? "failed, the cached CRL used instead" : "failed"} (${f.error ?? "no reason given"})`);
  }
  lines.push(`  trust: ${o.trustFrom}`);
  if (o.showItems && r.fourItems) {
    const f = r.fourItems;
    lines.push("  four basic items (基本4情報):", `    name 氏名:          ${f.name}`, `    address 住所:       ${f.address}`, `    birth date 生年月日: ${f.birthDate}`, `    gender 性別:        ${f.gender}`);
  }
  return lines.join("\n");
}

/** What to try next when no source answered: OCSP is suggested only when it was not asked already. */
function nextStep(detail: string): string {
  return /OCSP/.test(detail) ? "give a current CRL with --crl or --crl-url" : "give a current CRL with --crl or --crl-url, or ask --ocsp";
}

function explain(r: Exclude<JpkiValidationResult, { status: "valid" }>): string {
  switch (r.reason) {
    case "revoked": {
      const v = r.revocation;
      return v
        ? `the certificate was revoked on ${day(v.time)}, reason: ${REVOCATION_WORDS[v.reason] ?? v.reason} (${v.reason}), says ${SOURCE_WORDS[v.source]}. It must not be accepted.`
        : r.message;
    }
    case "expired":
      return "its validity period has ended; the holder needs a new certificate.";
    case "not-yet-valid":
      return "its validity period has not started at the time checked.";
    case "no-trust-anchor":
      return "it was not issued by a certification authority (認証局) you trust: another prefecture's CA, the other purpose's CA, or not JPKI. Check --trust.";
    case "path-length-exceeded":
      return `the CA you trust does not extend its trust this far (a pathLenConstraint): e.g. one prefecture's CA does not vouch for other prefectures through the Bridge CA (ブリッジ認証局). Trust the Bridge CA or the issuing prefecture's CA. (${r.message})`;
    case "signature-invalid":
      return "the CA's signature on it does not verify: it is forged or damaged.";
    case "revocation-unknown": {
      const why = r.revocationChecks?.find((c) => c.index === r.index)?.detail;
      const what = why ? `no revocation source could confirm it unrevoked (${why})` : "no current CRL (失効リスト) covers it, so it cannot be confirmed unrevoked";
      return `${what}. ${nextStep(why ?? "")[0]!.toUpperCase()}${nextStep(why ?? "").slice(1)}, or --soft-fail to decide later.`;
    }
    default:
      return r.message;
  }
}
