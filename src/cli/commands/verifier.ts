/** `jpki verifier add|list|fetches|revoke`: registered signature verifiers (署名検証者), the only callers of `jpki serve`. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import type { VerifierKind, VerifierRecord } from "../../index.js";
import { JpkiError, checkInputFile, checkOutputDir, library } from "../lib.js";
import { Context, withWorkspace } from "../context.js";
import type { Io } from "../output.js";

interface AddOpts {
  name: string;
  kind: VerifierKind;
  token: boolean;
  clientCert?: boolean;
  csr?: string;
  out: string;
  days?: string;
}

function view(v: VerifierRecord) {
  return {
    id: v.id,
    name: v.name,
    kind: v.kind,
    credentials: [...(v.tokenSha256 ? ["token"] : []), ...(v.certSha256 ? ["certificate"] : [])],
    ...(v.certNotAfter ? { certificateNotAfter: v.certNotAfter.toISOString() } : {}),
    createdAt: v.createdAt.toISOString(),
    revokedAt: v.revokedAt?.toISOString() ?? null,
  };
}

export function makeVerifierCommand(io: Io): Command {
  const cmd = new Command("verifier").description("registered signature verifiers (署名検証者): the only callers 'jpki serve' answers");

  cmd
    .command("add")
    .description("register a verifier and issue its credential: a bearer token (shown once) and/or a client certificate for mutual TLS")
    .requiredOption("--name <name>", "the verifier's name, e.g. 'デジタル庁' or 'Example Trust K.K.'")
    .addOption(new Option("--kind <kind>", "government (行政機関) or private (民間認証事業者)").choices(["government", "private"]).makeOptionMandatory())
    .option("--no-token", "issue no bearer token (a client certificate only)")
    .option("--csr <file>", "issue a client certificate for the key of this PKCS#10 request (RSA-2048, sha256WithRSA): the verifier keeps its key")
    .option("--client-cert", "issue a client certificate for a key pair generated here, written owner-only to --out")
    .option("--out <dir>", "where the client certificate (and generated key) and the verifier CA certificate go", ".")
    .option("--days <n>", "client certificate lifetime in days (default 397)")
    .addHelpText(
      "after",
      `
The token is printed once (stdout, or "token" with --json) and stored only as its SHA-256: keep it, or
register the verifier again. Send it as 'Authorization: Bearer <token>'. Saved to a file (for --token-file),
it must be owner-only, as a passphrase file: (umask 077; jpki verifier add … --json | jq -r .token > token.txt).
A client certificate comes from the workspace's verifier CA (made on first use, its key encrypted under the
CA passphrase: JPKI_PASSPHRASE or --passphrase-file). Prefer --csr, so the private key never leaves the
verifier; --client-cert writes <id>.key.pem (mode 0600) beside <id>.crt.pem. verifier-ca.pem is the CA
certificate 'jpki serve' checks client certificates against (HTTPS only: --tls-cert/--tls-key).

Examples:
  jpki verifier add --name 'デジタル庁' --kind government
  jpki verifier add --name 'Example Trust' --kind private --no-token --csr example.csr --out ./example`,
    )
    .action(async (o: AddOpts, c: Command) => {
      const ctx = Context.of(io, c);
      if (o.csr && o.clientCert) throw new JpkiError("ERR_USAGE", "give --csr (the verifier's own key) or --client-cert (a key made here), not both");
      const csr = o.csr ? readFileSync(checkInputFile(o.csr, "certificate request --csr", { cwd: io.cwd })) : undefined;
      const wantCert = Boolean(csr || o.clientCert);
      if (!o.token && !wantCert) throw new JpkiError("ERR_USAGE", "--no-token needs --csr or --client-cert: a verifier needs a credential");
      const out = wantCert ? checkOutputDir(o.out, "output directory --out", { cwd: io.cwd, create: true }) : undefined;
      const days = o.days === undefined ? undefined : Number(o.days);
      if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 3650)) throw new JpkiError("ERR_USAGE", "--days must be a whole number from 1 to 3650");
      const passphrase = wantCert ? await ctx.caPassphrase() : undefined;
      const { registerVerifier, writeFileAtomic } = await library();
      await withWorkspace(ctx, async (ws) => {
        const r = await registerVerifier(ws, {
          name: o.name,
          kind: o.kind,
          token: o.token,
          ...(csr ? { certificate: { csr } } : o.clientCert ? { certificate: { generateKey: true as const } } : {}),
          ...(passphrase ? { passphrase } : {}),
          ...(days !== undefined ? { days } : {}),
        });
        const files: Record<string, string> = {};
        if (out && r.certificatePem) {
          const id = r.record.id;
          // The key first: a certificate without its key is of no use, a key without its certificate is harmless.
          if (r.privateKeyPem) writeFileAtomic((files.key = join(out, `${id}.key.pem`)), r.privateKeyPem, 0o600);
          writeFileAtomic((files.certificate = join(out, `${id}.crt.pem`)), r.certificatePem, 0o644);
          writeFileAtomic((files.ca = join(out, "verifier-ca.pem")), r.caCertificatePem!, 0o644);
        }
        const data = { ...view(r.record), ...(r.token ? { token: r.token } : {}), ...(Object.keys(files).length ? { files } : {}) };
        ctx.out.result(data, () =>
          [
            `registered ${r.record.id}: ${r.record.name} (${r.record.kind})`,
            ...(r.token ? [`token (shown once, stored only as its SHA-256): ${r.token}`] : []),
            ...Object.entries(files).map(([k, p]) => `${k.padEnd(11)} ${p}`),
          ].join("\n"),
        );
      });
    });

  cmd
    .command("list")
    .description("list registered verifiers: id, kind, credentials, revoked or not (never a token)")
    .addHelpText("after", `\nExamples:\n  jpki verifier list\n  jpki --json verifier list | jq -r '.verifiers[] | select(.revokedAt == null) | .id'`)
    .action(async (_o: unknown, c: Command) => {
      const ctx = Context.of(io, c);
      await withWorkspace(ctx, async (ws) => {
        const all = (await ws.store.listVerifiers()).map(view);
        ctx.out.result({ verifiers: all }, () =>
          all.length
            ? all.map((v) => `${v.id}  ${v.kind.padEnd(10)} ${(v.revokedAt ? `revoked ${v.revokedAt.slice(0, 10)}` : "active").padEnd(18)} ${v.credentials.join("+").padEnd(17)} ${v.name}`).join("\n")
            : "no registered verifiers: add one with 'jpki verifier add --name N --kind government|private'",
        );
      });
    });

  cmd
    .command("fetches")
    .description("what registered verifiers fetched from 'jpki serve', newest first: one record per verifier, path and status per flush interval (about a second), with its count")
    .argument("[id]", "only this verifier (as 'jpki verifier list' shows it)")
    .option("--limit <n>", "how many records (1–100000)", "100")
    .addHelpText("after", `\nExamples:\n  jpki verifier fetches --limit 20\n  jpki verifier fetches v-3f9c0a1b2c4d --json`)
    .action(async (id: string | undefined, o: { limit: string }, c: Command) => {
      const ctx = Context.of(io, c);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new JpkiError("ERR_USAGE", `--limit must be a whole number from 1 to 100000, not ${JSON.stringify(o.limit)}`);
      await withWorkspace(ctx, async (ws) => {
        if (id !== undefined && !(await ws.store.listVerifiers()).some((v) => v.id === id)) throw new JpkiError("ERR_VERIFIER_UNKNOWN", `no registered verifier ${id}: see 'jpki verifier list'`);
        const records = (await ws.store.listVerifierFetches({ ...(id !== undefined ? { verifierId: id } : {}), limit, newest: true })).map((f) => ({
          verifier: f.verifierId,
          scope: f.scope,
          path: f.path,
          status: f.status,
          count: f.count,
          first: f.at.toISOString(),
          last: f.lastAt.toISOString(),
        }));
        ctx.out.result({ fetches: records }, () =>
          records.length
            ? records.map((r) => `${r.last}  ${r.verifier}  ${String(r.status)}  ×${String(r.count).padEnd(7)} ${r.path}`).join("\n")
            : "no fetches recorded" + (id ? ` for ${id}` : ""),
        );
      });
    });

  cmd
    .command("revoke")
    .description("revoke a verifier: every credential of it is refused, by a running 'jpki serve' within a second")
    .argument("<id>", "the verifier id, as 'jpki verifier list' shows it")
    .addHelpText("after", `\nExamples:\n  jpki verifier revoke v-3f9c0a1b2c4d`)
    .action(async (id: string, _o: unknown, c: Command) => {
      const ctx = Context.of(io, c);
      const { revokeVerifier } = await library();
      await withWorkspace(ctx, async (ws) => {
        const v = await revokeVerifier(ws, id);
        ctx.out.result(view(v), `revoked ${v.id} (${v.name}) at ${v.revokedAt!.toISOString()}: running 'jpki serve' processes refuse it within 1 s`);
      });
    });

  return cmd;
}
