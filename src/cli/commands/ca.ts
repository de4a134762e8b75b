/** `jpki ca init|list|show|rewrap`: the prefecture CAs. */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { alignColumns } from "../columns.js";
import type { CaSummary, CertificateType, WorkspaceConfig } from "../../index.js";
import { JpkiError, library } from "../lib.js";
import { Context, readPassphraseFile, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import type { Io } from "../output.js";
import { entriesText, upgradeProgress } from "../output.js";

function purposes(p: string): CertificateType[] {
  return p === "both" ? ["signature", "authentication"] : [p as CertificateType];
}

/** One line per CA, in aligned columns: id, prefecture, purpose, valid until, subject (and generation). */
function caLines(list: readonly CaSummary[]): string[] {
  return alignColumns(
    list.map((s) => {
      const gen = s.status === "retired" ? `  (generation ${s.generation}, retired${s.crls ? `, CRLs ${s.crls}` : ""})` : s.generation > 1 ? `  (generation ${s.generation})` : "";
      return [s.id, s.prefecture, s.purpose, s.notAfter.slice(0, 10), `${s.subject}${gen}`];
    }),
  );
}

export function makeCaCommand(io: Io): Command {
  const ca = new Command("ca").description("prefecture certification authorities (都道府県単位認証局)");

  ca.command("init")
    .description("create prefecture CAs: RSA-2048 key (encrypted at rest), self-signed certificate in the JPKI CA profile")
    .requiredOption("-p, --prefecture <codes>", "JIS X 0401 codes: 13, 13,27, 01-47 or all")
    .addOption(new Option("--purpose <purpose>", "which CAs per prefecture").choices(["signature", "authentication", "both"]).default("both"))
    .option("--skip-existing", "leave CAs that already exist instead of failing (writing their ca/ files if missing)")
    .option("--base-url <url>", "base of the CRL and AIA URLs put into certificates (new workspace only)")
    .addOption(new Option("--validity-rule <rule>", "end-entity validity (new workspace only)").choices(["3y", "fifth-birthday"]))
    .addOption(new Option("--policy <policy>", "signature policy OID set (new workspace only)").choices(["production", "test"]))
    .option("--pkcs11-module <lib>", "generate the CA keys in a PKCS#11 token: path of its module, e.g. /usr/lib/softhsm/libsofthsm2.so")
    .option("--token <label>", "label of the PKCS#11 token (with --pkcs11-module)")
    .addOption(new Option("--store <kind>", "where the workspace keeps its records (new workspace only; default: postgres when JPKI_STORE is set, else sqlite)").choices(["sqlite", "postgres"]))
    .addHelpText(
      "after",
      `
The passphrase protecting the CA keys comes from --passphrase-file or JPKI_PASSPHRASE (or a prompt).
Keys are stored as encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-CBC) in the
workspace store; in a workspace that already has CAs the passphrase must open them. A passphrase file loses
one final line break; a new workspace refuses a JPKI_PASSPHRASE that ends with one (ERR_USAGE), which
the same passphrase typed or in a file would never match.

CA keys in a PKCS#11 token (HSM): with --pkcs11-module and --token the key pairs are generated inside the
token (RSA-2048, CKA_SENSITIVE, not extractable) and the store keeps only each key's RFC 7512 URI (module
path, token, key label and id) beside the certificate. Every later signature (certificates, CRLs, OCSP
signing certificates) is made by the token, found again from that URI without flags. The module is also
added to config.json's "pkcs11Modules": jpki loads only modules listed there, never one a key reference in
the store names otherwise (exit 19, ERR_PKCS11_MODULE_NOT_ALLOWED, nothing loaded); another host sharing a
PostgreSQL store lists the module in its own config.json. The user PIN comes from --pkcs11-pin-file FILE,
JPKI_PKCS11_PIN or JPKI_PKCS11_PIN_FILE, never from an argument; a refused PIN is not tried again (exit 19,
ERR_PKCS11_PIN_WRONG). No passphrase is needed for token keys.

The store: SQLite (jpki.db in the workspace) by default, or PostgreSQL. The PostgreSQL connection string
comes only from JPKI_STORE (postgres://user@host/db, postgres:///db?host=/run/postgresql; the password from
PGPASSWORD or ~/.pgpass), never from an argument or config.json. A new workspace uses --store if given,
else postgres when JPKI_STORE is set, else sqlite; config.json records the kind, and every later command on
that workspace needs JPKI_STORE set again.

Examples:
  JPKI_PASSPHRASE=secret jpki ca init --prefecture 13
  jpki ca init --prefecture all --purpose signature --passphrase-file ./pass.txt
  jpki --workspace /srv/jpki ca init -p 01-47 --base-url https://crl.example.jp
  JPKI_STORE=postgres:///jpki?host=/run/postgresql jpki ca init -p 13 --store postgres
  jpki --pkcs11-pin-file ./pin ca init -p 13 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token jpki-ca`,
    )
    .action(async (o: { prefecture: string; purpose: string; skipExisting?: boolean; baseUrl?: string; validityRule?: string; policy?: string; store?: string; pkcs11Module?: string; token?: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (!o.pkcs11Module !== !o.token) throw new JpkiError("ERR_USAGE", "a CA key in a PKCS#11 token needs both --pkcs11-module LIB and --token LABEL");
      const { Workspace, initCas, prefectureList, workspacePaths } = await library();
      const prefs = prefectureList(o.prefecture);
      const token = o.pkcs11Module && o.token ? { modulePath: o.pkcs11Module.includes("/") ? resolve(io.cwd, o.pkcs11Module) : o.pkcs11Module, token: o.token } : undefined;
      // token keys need no passphrase (the PIN is asked when the token is opened)
      // a workspace not made yet gets its first keys under this passphrase: it must be the one typed (UTF-8)
      const passphrase = token ? "" : await ctx.passphrase({ forNewKeys: !existsSync(workspacePaths(ctx.workspaceDir).config) });
      const config: Partial<Record<keyof WorkspaceConfig, unknown>> = {};
      if (o.baseUrl) config.baseUrl = o.baseUrl;
      if (o.baseUrl) config.cpsUri = `${o.baseUrl.replace(/\/+$/, "")}/cps`;
      if (o.validityRule) config.validityRule = o.validityRule;
      if (o.policy) config.policy = o.policy;
      // The store of a new workspace: --store, else postgres when JPKI_STORE is set, else sqlite (the default).
      // An existing workspace keeps the one its config.json records (an explicit --store that differs is refused).
      const dir = ctx.workspaceDir;
      if (o.store) config.store = o.store;
      else if (ctx.storeUrl && !existsSync(workspacePaths(dir).config)) config.store = "postgres";
      const ws = ctx.checkStore(await Workspace.createAsync(dir, { config: config as Partial<WorkspaceConfig>, storeUrl: ctx.storeUrl, upgrade: { onProgress: upgradeProgress(ctx.out) } }));
      try {
        let done = 0;
        const total = prefs.length * purposes(o.purpose).length;
        const res = await initCas(ws, {
          prefectures: prefs,
          purposes: purposes(o.purpose),
          passphrase,
          ...(token ? { token } : {}),
          skipExisting: Boolean(o.skipExisting),
          onCreated: (s) => ctx.out.progress(`created ${s.id} (${++done}/${total})`),
        });
        ctx.out.progressDone();
        ctx.out.result({ workspace: ws.paths.root, created: res.created, skipped: res.skipped, passedOver: res.passedOver }, () =>
          [
            `workspace ${ws.paths.root}`,
            ...caLines(res.created).map((line, i) => `created ${line}\n         certificate: ${res.created[i]!.certificatePath}`),
            ...res.skipped.map((id) => `skipped ${id} (exists)`),
            ...res.passedOver.map((p) => `passed over ${p.id} (${p.reason}): made ${p.instead} instead`),
          ].join("\n"),
        );
      } finally {
        await ws.close();
      }
    });

  ca.command("list")
    .description("list the CAs in the workspace")
    .addHelpText("after", `\nExamples:\n  jpki ca list\n  jpki --json ca list | jq -r '.cas[] | select(.status == "active") | .id'`)
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { retiredCrlStates, summariseCa } = await library();
      await withWorkspace(ctx, async (ws) => {
        const all = await ws.store.listCas();
        const states = await retiredCrlStates(ws, all);
        const list = all.map((r) => summariseCa(ws, r, all, states));
        ctx.out.result({ cas: list }, () => (list.length ? caLines(list).join("\n") : "no CAs yet: run 'jpki ca init --prefecture 13'"));
      });
    });

  ca.command("show")
    .description("show one CA: its certificate, fingerprint, CRL state")
    .argument("<ca>", "CA id such as 13-sig or 13-auth, or a prefecture code (its signature CA)")
    .option("--pem", "print the CA certificate as PEM")
    .addHelpText("after", `\nExamples:\n  jpki ca show 13-sig\n  jpki ca show 13 --pem > tokyo-sign-ca.pem        # 13: Tokyo's signature CA`)
    .action(async (id: string, o: { pem?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { caId, describeLinks, getCaRecord, parseCaId, retiredCrlStates, summariseCa, toPem } = await library();
      const { prefectureCode, purpose, generation } = parseCaId(id);
      await withWorkspace(ctx, async (ws) => {
        const rec = await getCaRecord(ws, caId(prefectureCode, purpose, generation));
        if (o.pem) {
          io.stdout.write(toPem(rec.certificateDer, "CERTIFICATE"));
          return;
        }
        const all = await ws.store.listCas();
        const s = summariseCa(ws, rec, all, await retiredCrlStates(ws, all, [rec.id]));
        const crl = await ws.store.latestCrl(rec.id);
        const latestCrl = crl ? { number: crl.number.toString(), thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString(), entries: crl.entries, path: crl.path } : null;
        // The link certificates of the rollovers this generation took part in (as the new or the old generation).
        const rollovers = (await ws.store.listCaLinks()).filter((l) => l.oldCaId === rec.id || l.newCaId === rec.id);
        // A link of a generation declared compromised later (ca/compromised.ts) is revoked, on its issuer's ARL.
        const links = rollovers.flatMap((r) => describeLinks(ws, r).map(({ der: _der, ...l }) => ({ ...l, ...(r.compromisedAt ? { revokedAt: r.compromisedAt.toISOString() } : {}) })));
        // A rollover without link certificates is one made for a compromised key (ca/rollover.ts `compromised`).
        const compromised = rollovers.filter((l) => !l.oldWithNew).map((l) => ({ from: l.oldCaId, to: l.newCaId, at: l.createdAt.toISOString() }));
        const declared = rollovers.find((l) => l.oldCaId === rec.id && l.compromisedAt)?.compromisedAt;
        ctx.out.result({ ...s, latestCrl, links, compromisedRollovers: compromised, ...(declared ? { compromisedAt: declared.toISOString() } : {}) }, () =>
          [
            `CA ${s.id}  ${s.prefecture} (${s.prefectureRomaji}), ${s.purpose}, generation ${s.generation} (${s.status}${s.crls ? `, CRLs ${s.crls}` : ""})`,
            `  subject      ${s.subject}`,
            `  serial       ${s.serial}`,
            `  valid        ${s.notBefore} .. ${s.notAfter}`,
            `  SHA-256      ${s.sha256Fingerprint}`,
            `  certificate  ${s.certificatePath}`,
            `  CRL URL      ${s.crlUrl}`,
            `  latest CRL   ${latestCrl ? `#${latestCrl.number} ${latestCrl.thisUpdate}, ${latestCrl.entries} entries, ${latestCrl.path}` : "none yet ('jpki crl generate')"}`,
            ...links.map((l) => `  link         ${l.direction}: ${l.subjectCaId}'s key by ${l.issuerCaId}, serial ${l.serial}, until ${l.notAfter.toISOString()}, ${l.path}${l.revokedAt ? ` (REVOKED ${l.revokedAt}, cACompromise)` : ""}`),
            ...compromised.map((c) => `  compromised  ${c.from} rolled over to ${c.to} at ${c.at} for a compromised key: no link certificates`),
            ...(declared ? [`  compromised  key declared compromised at ${declared.toISOString()} ('jpki ca compromised'): trusted by nothing of jpki`] : []),
          ].join("\n"),
        );
      });
    });
  ca.command("rollover")
    .description("roll a prefecture CA over to a new key (鍵更新): a new generation with link certificates between the old and the new key")
    .requiredOption("-p, --prefecture <code>", "JIS X 0401 code of one prefecture, e.g. 13")
    .addOption(new Option("--purpose <purpose>", "which CAs of the prefecture").choices(["sig", "auth", "both", "signature", "authentication"]).default("both"))
    .option("--compromised", "the old key is suspected compromised (鍵危殆化): make the new generation WITHOUT link certificates")
    .addHelpText(
      "after",
      `
Creates a new RSA-2048 key and self-signed certificate for the CA (the same subject name; the next key
generation: 13-sig -> 13-sig-g2 -> 13-sig-g3) and the two link certificates of RFC 4210 §4.4:
  OldWithNew  the new key certified by the old key: a verifier that trusts only the old root validates
              certificates of the new key through it (leaf -> OldWithNew -> old root)
  NewWithOld  the old key certified by the new key: a verifier that trusts only the new root validates
              certificates issued before the rollover (leaf -> NewWithOld -> new root)
From then on the new generation issues every certificate, with its own CRL, ARL and OCSP URLs. The old one
keeps answering for what it issued: revocations go on its CRLs, published by 'jpki crl generate' until its
last certificate expires. The link certificates are written to <workspace>/ca/<subject>.by-<issuer>.crt
(and .pem) and served by 'jpki serve' at <baseUrl>/ca/<subject>.by-<issuer>.crt. A running 'jpki serve'
issues from the new key after a restart.

--compromised, the day the old key is suspected compromised: the new generation is made WITHOUT link
certificates. A NewWithOld would make every verifier trusting the new root accept what the stolen key signs,
and an OldWithNew signed by a stolen key vouches for nothing. So the new root must reach verifiers out of band
(compare the SHA-256 fingerprint printed here over a second channel), the old root must be removed from their
trust stores, and 'jpki revoke --ca <old id> --all --reason ca-compromise' revokes what the old key issued.

The passphrase comes from --passphrase-file or JPKI_PASSPHRASE (or a prompt); the new key is encrypted under it.

${commandExitCodes({
  ok: "done",
  errors: [
    ["ERR_WORKSPACE_LOCKED", "another jpki process is changing the CA keys ('ca init', 'ca rewrap', another 'ca rollover'): retry when it finishes"],
    ["ERR_ROLLOVER_NO_CA", "no CA of that prefecture and purpose"],
    ["ERR_ROLLOVER_EXPIRED", "its certificate expired"],
    ["ERR_ROLLOVER_CONFLICT", "another run rolled it over first"],
    [["ERR_PASSPHRASE_MISSING", "ERR_PASSPHRASE_WRONG"], "passphrase missing or wrong"],
  ],
})}

Examples:
  jpki ca rollover --prefecture 13
  jpki ca rollover -p 13 --purpose sig --passphrase-file ./pass.txt --json
  jpki ca rollover -p 13 --purpose sig --compromised && jpki revoke --ca 13-sig --all --reason ca-compromise`,
    )
    .action(async (o: { prefecture: string; purpose: string; compromised?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { bridgePaths, rolloverCas } = await library();
      const passphrase = await ctx.caPassphrase();
      const which: CertificateType[] =
        o.purpose === "both" ? ["signature", "authentication"] : o.purpose === "sig" || o.purpose === "signature" ? ["signature"] : ["authentication"];
      await withWorkspace(ctx, async (ws) => {
        const rolled = await rolloverCas(ws, { prefectureCode: o.prefecture, purposes: which, passphrase, compromised: o.compromised === true, onProgress: (m) => ctx.out.progress(m) });
        ctx.out.progressDone();
        const json = rolled.map((r) => ({ ...r, links: r.links.map(({ der: _der, ...l }) => l) }));
        // The Bridge CA is not rolled over with the CA: it reaches a new generation only through OldWithNew until
        // 'ca bridge' cross-certifies it, and after a compromise it vouches for the stolen key until '--revoke'.
        // Said here, where the operator is (found by a helper: neither was said anywhere but operations.md).
        const bridge = existsSync(bridgePaths(ws.paths.root).key)
          ? [
              ...rolled.filter((r) => r.compromised).map((r) => `jpki ca bridge --revoke ${r.previous}`),
              "jpki ca bridge",
            ]
          : [];
        ctx.out.result({ rolled: json, ...(bridge.length ? { bridge } : {}) }, () =>
          json
            .map((r) =>
              [
                `rolled ${r.previous} over to ${r.current.id} (generation ${r.generation})`,
                ...r.passedOver.map((p) => `  passed over ${p.id}: ${p.reason}`),
                `  certificate  ${r.current.certificatePath}`,
                ...r.links.map((l) => `  ${l.direction.padEnd(12)} ${l.path}  (${l.url})`),
                ...(r.compromised
                  ? [
                      `  compromised  no link certificates: distribute the new root out of band and check its fingerprint`,
                      `  SHA-256      ${r.current.sha256Fingerprint}`,
                      `  remove ${r.previous}'s certificate from every trust store; revoke what it issued: 'jpki revoke --ca ${r.previous} --all --reason ca-compromise'`,
                    ]
                  : []),
              ].join("\n"),
            )
            .concat("next: 'jpki crl generate' publishes the new generation's CRLs; the old one's go on until its certificates expire")
            .concat(
              bridge.map((c) =>
                c === "jpki ca bridge"
                  ? `next: '${c}' cross-certifies the new generation${rolled.length > 1 ? "s" : ""} (until then the Bridge CA reaches ${rolled.some((r) => r.compromised) ? "none: there are no link certificates" : "them only through OldWithNew"})`
                  : `next: '${c}': the Bridge CA still vouches for the compromised key`,
              ),
            )
            .join("\n"),
        );
      });
    });

  ca.command("compromised")
    .description("declare a retired generation's key compromised (鍵危殆化): its link certificates go on the ARLs, nothing of jpki trusts it")
    .argument("<ca>", "the retired generation's CA id, e.g. 13-sig after a rollover to 13-sig-g2")
    .addHelpText(
      "after",
      `
For a key stolen AFTER an ordinary 'jpki ca rollover' retired it (the operations guide keeps that key until the
last certificate it issued expires). Its NewWithOld link certificate -- the old key certified by the successor --
vouches for the stolen key to every verifier that trusts the successor's root (and to those trusting the Bridge
CA, through it). This records the compromise in the store, in one transaction with its audit record:
  - NewWithOld goes on the successor's ARL and OldWithNew on the old generation's, reason cACompromise, revoked
    now, and both on the full CRLs of both generations too (those have no issuingDistributionPoint: a verifier may
    read a CA certificate's status there, and Java takes the link's subject's CRL for it); the OldWithNew that
    certified this key, if an ordinary rollover made it, goes on its predecessor's; all of them become due ('jpki crl generate --prefecture <code>' or 'jpki serve' signs them: verifiers then
    reject every path through the links);
  - the generation is no trust anchor of 'jpki serve's validation API, never cross-certified by 'jpki ca bridge',
    and no audit checkpoint is anchored on it.
It needs no passphrase (nothing is signed here). Then, as after any compromise (docs/operations.md §8): revoke
what the key issued ('jpki revoke --ca <id> --all --reason ca-compromise'), withdraw a Bridge cross-certificate
if one is named, and tell verifiers to remove the old root.
The active generation's key is replaced instead: 'jpki ca rollover --prefecture <code> --purpose <p> --compromised'.
Running it again changes nothing (exit 0, "already").

${commandExitCodes({
  ok: "recorded, or recorded before",
  errors: [
    ["ERR_CA_UNKNOWN", "no such CA"],
    ["ERR_CA_ACTIVE", "it is the active generation: 'jpki ca rollover --compromised'"],
  ],
})}

Examples:
  jpki ca compromised 13-sig && jpki crl generate --prefecture 13 && jpki revoke --ca 13-sig --all --reason ca-compromise
  jpki ca compromised 13-sig --json`,
    )
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { bridgeVouchesFor, declareCompromised, parseCaId } = await library();
      await withWorkspace(ctx, async (ws) => {
        const r = await declareCompromised(ws, id);
        const crl = `jpki crl generate --prefecture ${parseCaId(r.caId).prefectureCode}`;
        const bridge = bridgeVouchesFor(ws, r.caId) ? [`jpki ca bridge --revoke ${r.caId}`] : [];
        const next = [crl, `jpki revoke --ca ${r.caId} --all --reason ca-compromise`, ...bridge];
        ctx.out.result({ ...r, at: r.at.toISOString(), next }, () =>
          [
            r.already
              ? `${r.caId}'s key was recorded as compromised already (${r.at.toISOString()}): nothing changed`
              : `recorded ${r.caId}'s key as compromised at ${r.at.toISOString()}: its link certificates with ${r.successorCaId} go on the ARLs and full CRLs of ${r.successorCaId} and ${r.caId} (cACompromise)`,
            `next: '${crl}' signs those ARLs (a running 'jpki serve' publishes them on its schedule)`,
            `next: 'jpki revoke --ca ${r.caId} --all --reason ca-compromise' revokes what the key issued`,
            ...bridge.map((c) => `next: '${c}': the Bridge CA still vouches for the compromised key`),
            `tell verifiers to remove ${r.caId}'s certificate from their trust stores (docs/operations.md §8)`,
          ].join("\n"),
        );
      });
    });

  ca.command("bridge")
    .description("create the prefectures' Bridge CA (ブリッジ認証局) and cross-certify the prefecture CAs both ways, so a verifier trusting the Bridge validates any prefecture")
    .option("-p, --prefecture <codes>", "cross-certify only these prefectures' CAs (JIS X 0401 codes: 13, 13,27, 01-47 or all; default all CAs of the workspace)")
    .option("--revoke <ca>", "stop vouching for one CA (e.g. 13-sig, its key compromised): its Bridge -> CA cross-certificate goes on the Bridge's ARL")
    .option("--reason <reason>", "with --revoke: the CRL reason (default cACompromise; e.g. affiliationChanged, cessationOfOperation)")
    .addHelpText(
      "after",
      `
The first run makes the Bridge CA (C=JP, O=JPKI, OU=Prefectural Association For JPKI, OU=BridgeCA: an RSA-2048
key encrypted under the workspace passphrase, a self-signed certificate). Every run cross-certifies the CAs
that have no cross-certificates for their current certificate yet, in both directions (Bridge -> CA and
CA -> Bridge, each pathLenConstraint 0: a verifier trusting one prefecture's CA never reaches another
prefecture through the Bridge), and publishes a new ARL of the Bridge. Run it again after 'jpki ca init'
adds prefectures. The CRL schedule of 'jpki serve' and 'jpki watch' (and 'jpki crl generate --partitions')
republishes the Bridge's ARL before its nextUpdate.

Files (in the workspace): bridge/bridge.pem (give it to verifiers' --trust), bridge/cross.pem (every
cross-certificate: --chain), bridge/cross/*.pem, arl/bridge.crl (the Bridge's ARL, served by 'jpki serve'
at /arl/bridge.crl). The passphrase comes from --passphrase-file or JPKI_PASSPHRASE (or a prompt).

--revoke puts the CA's Bridge -> CA cross-certificate on the Bridge's ARL (verifiers trusting the Bridge then
reject that CA's certificates), drops both directions from the bundle, and later runs leave that CA
certificate out; a new certificate of the CA (a new key) can be cross-certified again.

${commandExitCodes({
  ok: "done",
  errors: [
    ["ERR_USAGE", "--reason without --revoke, --revoke with --prefecture, or removeFromCRL as the reason"],
    ["ERR_FILE_UNUSABLE", "a Bridge file cannot be read or written (permissions, disk, a file too large to be one)"],
    ["ERR_WORKSPACE_MISSING", "no workspace"],
    ["ERR_WORKSPACE_LOCKED", "another process is working on the Bridge or the CA keys"],
    ["ERR_WORKSPACE_CORRUPT", "the Bridge's files are damaged"],
    ["ERR_CA_UNKNOWN", "no such CA, or none to cross-certify"],
    ["ERR_CA_INVALID", "a certificate expired: the Bridge's own, or one to cross-certify"],
    [["ERR_PASSPHRASE_MISSING", "ERR_PASSPHRASE_WRONG"], "passphrase missing or wrong"],
  ],
})}

Examples:
  jpki ca bridge --passphrase-file ./pass.txt
  jpki verify cert.pem --trust .jpki/bridge/bridge.pem --chain .jpki/bridge/cross.pem \\
      --crl .jpki/crl/13-sig.crl --crl .jpki/arl/bridge.crl`,
    )
    .action(async (o: { prefecture?: string; revoke?: string; reason?: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { certifyBridge, revokeBridgeCross, parseReason, prefectureList, withCaKeysLock, workspaceKeyWrap } = await library();
      if (o.reason && !o.revoke) throw new JpkiError("ERR_USAGE", "--reason goes with --revoke");
      if (o.revoke && o.prefecture) throw new JpkiError("ERR_USAGE", "--revoke names one CA: leave out --prefecture");
      const passphrase = await ctx.caPassphrase();
      if (o.revoke) {
        const caId = o.revoke;
        const reason = o.reason ? parseReason(o.reason).name : undefined;
        await withWorkspace(ctx, async (ws) => {
          const r = await revokeBridgeCross(ws, { passphrase, caId, ...(reason ? { reason } : {}) });
          ctx.out.result({ workspace: ws.paths.root, ...r, arl: { ...r.arl, number: r.arl.number.toString() } }, () =>
            [
              ...r.revoked.map((x) => `revoked the Bridge's cross-certificate of ${r.caId}: serial ${x.serial} (${x.reason})`),
              `  ARL #${r.arl.number}: ${entriesText(r.arl.entries)}, until ${r.arl.nextUpdate.toISOString()}, ${r.arl.path}`,
            ].join("\n"),
          );
        });
        return;
      }
      await withWorkspace(ctx, async (ws) => {
        let caIds: string[] | undefined;
        if (o.prefecture) {
          const codes = new Set(prefectureList(o.prefecture).map((p) => p.code));
          caIds = (await ws.store.listCas()).filter((r) => codes.has(r.prefectureCode)).map((r) => r.id);
          if (caIds.length === 0) throw new JpkiError("ERR_CA_UNKNOWN", `no CA of prefecture(s) ${o.prefecture} in ${ws.paths.root}: 'jpki ca init --prefecture ${o.prefecture}' creates them`);
        }
        // Under the CA-keys lock: the Bridge key is wrapped under the CA keys' passphrase, and made beside a `ca rewrap`
        // (which found no Bridge to re-encrypt) it stayed under the old one while the CA keys moved to the new.
        const r = await withCaKeysLock(ws, async () => {
          const keyWrap = await workspaceKeyWrap(ws, passphrase);
          return certifyBridge(ws, { passphrase, keyWrap, ...(caIds ? { caIds } : {}), onProgress: (m) => ctx.out.progress(m) });
        });
        ctx.out.progressDone();
        ctx.out.result(
          {
            workspace: ws.paths.root,
            bridge: { created: r.created, subject: r.subject, serial: r.serial, notBefore: r.notBefore, notAfter: r.notAfter, sha256Fingerprint: r.sha256Fingerprint, certificatePath: r.certificatePath },
            crossCertificates: r.issued.map((c) => ({ caId: c.caId, direction: c.direction, serial: c.serial, notAfter: c.notAfter, path: c.path })),
            unchanged: r.unchanged,
            expired: r.expired,
            withdrawn: r.withdrawn,
            compromised: r.compromised,
            stillVouched: r.stillVouched,
            crossBundlePath: r.crossBundlePath,
            arl: { number: r.arl.number.toString(), thisUpdate: r.arl.thisUpdate, nextUpdate: r.arl.nextUpdate, path: r.arl.path },
          },
          () =>
            [
              `${r.created ? "created" : "Bridge CA"} ${r.subject}`,
              `  certificate  ${r.certificatePath}  (SHA-256 ${r.sha256Fingerprint})`,
              `  valid        ${r.notBefore.toISOString()} .. ${r.notAfter.toISOString()}`,
              ...[...new Set(r.issued.map((c) => c.caId))].map((id) => `  cross-certified ${id} (both directions)`),
              ...(r.unchanged.length ? [`  already cross-certified: ${r.unchanged.join(", ")}`] : []),
              ...(r.expired.length ? [`  left out, their certificate expired: ${r.expired.join(", ")}`] : []),
              ...(r.withdrawn.length ? [`  left out, revoked by the Bridge (--revoke): ${r.withdrawn.join(", ")}`] : []),
              ...(r.compromised.length ? [`  left out, rolled over for a compromised key: ${r.compromised.join(", ")}`] : []),
              ...r.stillVouched.map((id) => `  WARNING: the Bridge still vouches for ${id}'s compromised key: 'jpki ca bridge --revoke ${id}' withdraws it`),
              `  cross-certificates  ${r.crossBundlePath}`,
              `  ARL          #${r.arl.number} until ${r.arl.nextUpdate.toISOString()}, ${r.arl.path}`,
            ].join("\n"),
        );
      });
    });

  ca.command("rewrap")
    .description("re-encrypt every CA key and OCSP signing key with the strong KDF (PBKDF2-HMAC-SHA256, 600,000 iterations), optionally under a new passphrase")
    .option("--new-passphrase-file <file>", "encrypt under the passphrase in this file instead (never on the command line)")
    .addHelpText(
      "after",
      `
The current passphrase comes from --passphrase-file or JPKI_PASSPHRASE (or a prompt). Every key is
decrypted, checked against its certificate and re-encrypted; all keys are replaced in one transaction, or
none is. Also makes the workspace owner-only (directories 0700, store 0600). Keys in a PKCS#11 token are
left alone. The verifier CA's key (client certificates for 'jpki serve', listed as verifier-ca) moves with
the CA keys.

The keys of the CAs' OCSP signing certificates (listed as ocsp:<CA>) are re-encrypted too. They follow the
CA keys to the new passphrase, as 'jpki serve' wraps them under the CA passphrase; when it had their own
(JPKI_OCSP_PASSPHRASE), set that here as well: they stay under it, and those still under the CA passphrase
(from a serve without it) move to it. Stop 'jpki serve' first: a signing
certificate renewed meanwhile is refused (exit 3), nothing changed. A serve left running with the old
passphrase goes on signing CRLs but renews no OCSP signing certificate (ERR_KEYS_REWRAPPED in its log,
hourly) until it is restarted with the new one.

${commandExitCodes({
  ok: "every key re-encrypted",
  errors: [
    [["ERR_WORKSPACE_MISSING", "ERR_WORKSPACE_CORRUPT"], "no workspace, or a damaged one: nothing re-encrypted"],
    ["ERR_WORKSPACE_LOCKED", "busy: another process is changing the keys, or an OCSP signing certificate was renewed meanwhile"],
    [["ERR_PASSPHRASE_MISSING", "ERR_PASSPHRASE_WRONG"], "passphrase missing or wrong"],
  ],
})}

Examples:
  jpki ca rewrap --passphrase-file ./pass.txt
  jpki ca rewrap --passphrase-file ./old.txt --new-passphrase-file ./new.txt`,
    )
    .action(async (o: { newPassphraseFile?: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { rewrapCaKeys } = await library();
      // The new passphrase's file is checked first: a file it refuses is said before anything else.
      const newPassphrase = o.newPassphraseFile ? readPassphraseFile(o.newPassphraseFile, "new passphrase file --new-passphrase-file", io.cwd, { forNewKeys: true }) : undefined;
      const passphrase = await ctx.caPassphrase();
      await withWorkspace(ctx, async (ws) => {
        const ocspPassphrase = io.env.JPKI_OCSP_PASSPHRASE || undefined;
        const res = await rewrapCaKeys(ws, { passphrase, ...(newPassphrase !== undefined ? { newPassphrase } : {}), ...(ocspPassphrase ? { ocspPassphrase } : {}) });
        const ocsp = res.rewrapped.filter((k) => k.startsWith("ocsp:")).length;
        const bridge = res.rewrapped.includes("bridge") ? 1 : 0; // the Bridge CA's key: no CA key of the workspace
        const verifierCa = res.rewrapped.includes("verifier-ca") ? 1 : 0; // the verifier CA's (mutual TLS), likewise
        const under = newPassphrase === undefined ? "" : ocspPassphrase && ocsp ? " (CA keys under the new passphrase, OCSP signing keys under JPKI_OCSP_PASSPHRASE)" : " under the new passphrase";
        ctx.out.result({ workspace: ws.paths.root, rewrapped: res.rewrapped, newPassphrase: newPassphrase !== undefined }, () =>
          res.rewrapped.length
            ? `re-encrypted ${res.rewrapped.length - ocsp - bridge - verifierCa} CA key(s)${bridge ? ", the Bridge CA's key" : ""}${verifierCa ? ", the verifier CA's key" : ""}${ocsp ? ` and ${ocsp} OCSP signing key(s)` : ""}${under}: ${res.rewrapped.join(", ")}`
            : "no software CA keys in this workspace (none, or all in a PKCS#11 token): nothing to re-encrypt",
        );
      });
    });
  return ca;
}
