/**
 * `jpki demo`: the main job end to end on the embedded store, in a fresh directory — prefecture CAs,
 * synthetic residents, card key pairs, issuance, a revocation, CRLs — and how to check each artefact.
 * With JPKI_STORE set, the records go to that PostgreSQL database instead (it must not hold the demo's CAs yet).
 */
import { randomBytes, generateKeyPair } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { Command } from "commander";
import { execFileSync } from "node:child_process";
import type { IssuedCertificate, PublishedCrl } from "../../index.js";
import { JpkiError, checkOutputDir, library } from "../lib.js";
import { Context } from "../context.js";
import type { Io } from "../output.js";

const DEMO_PREFECTURES = ["13", "27", "01"];

/** A card's key pair as the emulated card would make it; only the public half leaves this function. */
function cardPublicKey(): Promise<Buffer> {
  return new Promise((res, rej) =>
    generateKeyPair("rsa", { modulusLength: 2048 }, (err, pub) => (err ? rej(err) : res(pub.export({ type: "spki", format: "der" })))),
  );
}

export function makeDemoCommand(io: Io): Command {
  return new Command("demo")
    .description("run the main job end to end in a fresh directory and show how to check every artefact with openssl")
    .option("-d, --dir <dir>", "demo directory (default ./jpki-demo)")
    .option("--residents <n>", "how many synthetic residents (default 6)", "6")
    .option("--force", "delete the demo directory first if it exists")
    .addHelpText("after", `\nThe demo generates a random CA passphrase and stores it in <dir>/passphrase.txt (mode 600): a demo\nconvenience, never do this with real keys.\n\nWith JPKI_STORE set (a PostgreSQL connection string), the records go to that database, which must not\nhold the demo's CAs yet (use an empty one); the files stay in the demo directory.\n\nExample:\n  npx jpki demo && cd jpki-demo`)
    .action(async (o: { dir?: string; residents: string; force?: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const lib = await library();
      const { CertificationAuthority, CrlPublisher, CrlUpdater, IssuanceService, Workspace, applyNoticesToRegistry, generateResidents, getCaRecord, initCas } = lib;
      const { parseResidentRecord, prefecture, readRecords, revokeCertificate, runIngest, toPem, writeFileAtomic } = lib;
      const n = Number(o.residents);
      if (!Number.isInteger(n) || n < 2 || n > 1000) throw new JpkiError("ERR_USAGE", "--residents must be a whole number from 2 to 1000");
      // A file, a FIFO or a path under /proc, /sys or /dev is refused before anything is made (mode 0o700: the passphrase lives here).
      const what = o.dir !== undefined ? "demo directory --dir" : ctx.opts.workspace !== undefined ? "demo directory --workspace" : "demo directory";
      const dir = checkOutputDir(o.dir ?? ctx.opts.workspace ?? "jpki-demo", what, { create: true, cwd: io.cwd });
      if (readdirSync(dir).length > 0) {
        if (!o.force) throw new JpkiError("ERR_USAGE", `${dir} is not empty: pass --force to replace it, or --dir to choose another`);
        for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true }); // the checked directory stays
      }
      const say = (s: string) => (ctx.out.json ? undefined : ctx.out.info(s));
      const passphrase = randomBytes(18).toString("base64url");
      // PEM copies of the CRLs too (crlPem): the checks printed below then work with any openssl, 1.1 included.
      const ws = await Workspace.createAsync(dir, { config: { store: ctx.storeUrl ? "postgres" : "sqlite", crlPem: true }, storeUrl: ctx.storeUrl });
      try {
        writeFileAtomic(join(dir, "passphrase.txt"), passphrase + "\n", 0o600);
        say(`[1/8] workspace ${dir} (CA passphrase generated into passphrase.txt: demo only)`);

        const prefs = DEMO_PREFECTURES.map((c) => prefecture(c));
        const cas = await initCas(ws, { prefectures: prefs, purposes: ["signature", "authentication"], passphrase });
        say(`[2/8] created ${cas.created.length} CAs: ${cas.created.map((c) => `${c.id} ${c.prefecture}`).join(", ")}`);

        const inputs = [...generateResidents({ count: n, seed: "jpki-demo", prefectures: DEMO_PREFECTURES })];
        writeFileAtomic(join(dir, "residents.jsonl"), inputs.map((r) => JSON.stringify(r)).join("\n") + "\n");
        const residents = inputs.map((r) => parseResidentRecord(r, { now: ws.clock.now() }));
        await ws.store.upsertResidents(residents);
        say(`[3/8] imported ${residents.length} residents from residents.jsonl`);

        const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
        const issued: IssuedCertificate[] = [];
        for (const r of residents) {
          for (const type of ["signature", "authentication"] as const) {
            const c = await service.issue({ residentCode: r.residentCode, type, publicKey: await cardPublicKey() });
            writeFileAtomic(join(ws.paths.certDir, `${c.serial}.pem`), toPem(c.der, "CERTIFICATE"));
            issued.push(c);
          }
        }
        say(`[4/8] issued ${issued.length} certificates (a signature and an authentication certificate per resident) into certs/`);

        const revoked = issued.find((c) => c.type === "signature")!;
        await revokeCertificate(ws.store, { serial: revoked.serial, reason: "loss", at: ws.clock.now() });
        const kept = issued.find((c) => c.type === "signature" && c.caId === revoked.caId && c.serial !== revoked.serial) ?? issued.find((c) => c.type === "signature" && c.serial !== revoked.serial)!;
        say(`[5/8] revoked ${revoked.serial} (${revoked.caId}, card reported lost → keyCompromise)`);

        const publisher = new CrlPublisher({ store: ws.store, config: ws.config, clock: ws.clock, crlDir: ws.paths.crlDir, workspaceRoot: ws.paths.root });
        const crls: PublishedCrl[] = [];
        for (const c of cas.created) crls.push(await publisher.publish(CertificationAuthority.open(await getCaRecord(ws, c.id), passphrase, ws.config)));
        say(`[6/8] published ${crls.length} CRLs into crl/`);

        // The registry reports a move (転居) of another resident: the notice revokes the signature certificate
        // whose certified address no longer holds, and that CA's CRL is regenerated.
        const moverCert = issued.find((c) => c.type === "signature" && c.serial !== revoked.serial && c.serial !== kept.serial)!;
        const mover = residents.find((r) => r.residentCode === moverCert.residentCode)!;
        const a = mover.fourItems.address;
        const moved = { ...mover.fourItems, address: /[０-９]+番/.test(a) ? a.replace(/([０-９]+)番/, (_m, d: string) => `${d === "９" ? "８" : "９"}番`) : `${a}１番地` };
        const notices = [
          { noticeId: "DEMO-0001", residentCode: mover.residentCode, kind: "relocation", effectiveDate: ws.clock.now().toISOString().slice(0, 10), sequence: 1, municipalityCode: mover.municipalityCode, after: moved },
        ];
        const noticePath = join(dir, "notices.jsonl");
        writeFileAtomic(noticePath, notices.map((n) => JSON.stringify(n)).join("\n") + "\n");
        const updater = new CrlUpdater(ws, passphrase);
        const ingest = await runIngest(ws, { source: noticePath, format: "jsonl", rejectPath: join(dir, "notices.rejects.jsonl"), batchSize: 1000, crlIntervalMs: 0, updater });
        await applyNoticesToRegistry(ws.store, readRecords(noticePath, { format: "jsonl" }), ws.clock.now());
        say(`[7/8] ingested notices.jsonl: a relocation (転居) revoked ${moverCert.serial} (affiliationChanged); CRL ${moverCert.caId} regenerated`);
        const movedCrl = ingest.crls.find((c) => c.ca === moverCert.caId);
        if (ingest.revocations !== 1 || !movedCrl) throw new JpkiError("ERR_INTERNAL", "the demo's relocation notice did not revoke exactly one certificate: please report this");
        let crlText = "";
        try {
          crlText = execFileSync("openssl", ["crl", "-inform", "DER", "-in", movedCrl.path, "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        } catch {
          crlText = "(openssl not found: run the command above to see the CRL)";
        }
        say(`[8/8] registry updated from the same notice: the next certificate for this resident certifies the new address`);

        const rel = (p: string) => relative(io.cwd, p) || ".";
        const caPem = (id: string) => rel(join(ws.paths.caDir, `${id}.pem`));
        const crlPem = (id: string) => rel(join(ws.paths.crlDir, `${id}.crl.pem`));
        const certPem = (s: string) => rel(join(ws.paths.certDir, `${s}.pem`));
        const check = (c: IssuedCertificate) => `openssl verify -crl_check -CAfile ${caPem(c.caId)} -CRLfile ${crlPem(c.caId)} ${certPem(c.serial)}`;
        const result = {
          workspace: dir,
          passphraseFile: join(dir, "passphrase.txt"),
          cas: cas.created.map((c) => ({ id: c.id, certificate: c.certificatePath })),
          residents: residents.length,
          certificates: issued.map((c) => ({ serial: c.serial, ca: c.caId, type: c.type, path: join(ws.paths.certDir, `${c.serial}.pem`) })),
          revoked: { serial: revoked.serial, ca: revoked.caId, reason: "keyCompromise" },
          crls: crls.map((c) => ({ ca: c.caId, number: c.number.toString(), entries: c.entries, der: c.derPath, pem: c.pemPath })),
          notice: { file: noticePath, revokedByMove: moverCert.serial, ca: moverCert.caId, crl: movedCrl },
          checks: { valid: check(kept), revoked: check(revoked), movedAway: check(moverCert) },
        };
        ctx.out.result(result, () =>
          [
            "",
            "What the demo made:",
            `  CA certificates   ${rel(ws.paths.caDir)}/<prefecture>-sig.pem, -auth.pem`,
            `  certificates      ${rel(ws.paths.certDir)}/<serial>.pem (${issued.length})`,
            `  CRLs              ${rel(ws.paths.crlDir)}/<ca>.crl (DER) and .crl.pem`,
            ws.config.store === "sqlite" ? `  store             ${rel(ws.paths.db)} (SQLite)` : "  store             the PostgreSQL database named by JPKI_STORE",
            "",
            "Check them with openssl:",
            `  ${check(kept)}`,
            `      → OK`,
            `  ${check(revoked)}`,
            `      → certificate revoked (error 23)`,
            `  openssl x509 -in ${certPem(kept.serial)} -noout -text     # the four items are the otherName entries`,
            `  openssl crl -in ${crlPem(revoked.caId)} -noout -text`,
            "",
            `The relocation notice in ${rel(noticePath)} revoked ${moverCert.serial}; ${moverCert.caId}'s CRL is now #${movedCrl.number}:`,
            `  ${check(moverCert)}`,
            `      → certificate revoked (error 23)`,
            `  $ openssl crl -inform DER -in ${rel(movedCrl.path)} -noout -text`,
            ...crlText.trimEnd().split("\n").map((l) => `  ${l}`),
            "",
            "Or with jpki itself:",
            `  npx jpki inspect ${certPem(kept.serial)}`,
            `  npx jpki --workspace ${rel(dir)} ca list`,
            `  JPKI_PASSPHRASE=$(cat ${rel(join(dir, "passphrase.txt"))}) npx jpki --workspace ${rel(dir)} crl generate --prefecture 13`,
          ].join("\n"),
        );
      } finally {
        await ws.close();
      }
    });
}
