/**
 * `jpki demo`: the main job end to end on the embedded store, in a fresh directory — prefecture CAs,
 * synthetic residents, card key pairs, issuance, a revocation, CRLs — and how to check each artefact.
 * With JPKI_STORE set, the records go to that PostgreSQL database instead (it must not hold the demo's CAs yet).
 */
import { randomBytes, randomInt } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { Command } from "commander";
import { execFileSync } from "node:child_process";
import type { IssuedCertificate, PublishedCrl } from "../../index.js";
import { JpkiError, checkOutputDir, childEnv, library } from "../lib.js";
import { Context } from "../context.js";
import { caNamed, type Io } from "../output.js";

const DEMO_PREFECTURES = ["13", "27", "01"];

/** A PIN for a demo card: the signature PIN 8 of A–Z0–9, the authentication PIN 4 digits (written to cards/pins.json). */
function demoPin(kind: "signature" | "authentication"): string {
  const alphabet = kind === "signature" ? "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" : "0123456789";
  return Array.from({ length: kind === "signature" ? 8 : 4 }, () => alphabet[randomInt(alphabet.length)]).join("");
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
      const { CertificationAuthority, CrlPublisher, CrlUpdater, IssuanceService, Workspace, generateResidents, getCaRecord, initCas } = lib;
      const { parseResidentRecord, prefecture, revokeCertificate, toPem, writeFileAtomic } = lib;
      const { buildServer, enrolCustomer, followPublicCrls, initProvider, registerVerifier, signApplication } = lib;
      const { EmulatedCard, deliverOutbox, fileCardStorage, issueCard, noticesJsonl, openCardSigner, relocate, verifySignedData } = lib;
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
      // The in-process HTTP server of the provider's steps, closed however the demo ends (a listening socket would
      // keep the process alive).
      let closeServer: (() => Promise<void>) | undefined;
      try {
        writeFileAtomic(join(dir, "passphrase.txt"), passphrase + "\n", 0o600);
        say(`[1/10] workspace ${dir} (CA passphrase generated into passphrase.txt: demo only)`);

        const prefs = DEMO_PREFECTURES.map((c) => prefecture(c));
        const cas = await initCas(ws, { prefectures: prefs, purposes: ["signature", "authentication"], passphrase });
        say(`[2/10] created ${cas.created.length} CAs: ${cas.created.map((c) => `${c.id} ${c.prefecture}`).join(", ")}`);

        const inputs = [...generateResidents({ count: n, seed: "jpki-demo", prefectures: DEMO_PREFECTURES })];
        writeFileAtomic(join(dir, "residents.jsonl"), inputs.map((r) => JSON.stringify(r)).join("\n") + "\n");
        const residents = inputs.map((r) => parseResidentRecord(r, { now: ws.clock.now() }));
        await ws.store.upsertResidents(residents);
        say(`[3/10] imported ${residents.length} residents from residents.jsonl`);

        // Each resident gets an IC card at the counter (市町村窓口): both key pairs are generated on the card, the CA of
        // the resident's prefecture certifies them, and the certificates go onto the card. The chip secret the card
        // files are encrypted under, the municipality's administrative key and the PINs stay in the demo directory:
        // a demo convenience, like the passphrase.
        const service = new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase });
        const cardDir = join(dir, "cards");
        mkdirSync(cardDir, { recursive: true, mode: 0o700 });
        const chipKeyFile = join(dir, "card-chip.key");
        const adminKey = randomBytes(32);
        writeFileAtomic(join(dir, "counter-admin.key"), adminKey.toString("hex") + "\n", 0o600);
        const issued: IssuedCertificate[] = [];
        const cards = new Map<string, { path: string; signaturePin: string; authenticationPin: string }>();
        for (const r of residents) {
          const c = { path: join(cardDir, `${r.residentCode}.card`), signaturePin: demoPin("signature"), authenticationPin: demoPin("authentication") };
          const made = await issueCard({
            issuance: service,
            store: ws.store,
            adminKey,
            storage: fileCardStorage(c.path, { chipKeyFile, createChipKey: true }),
            cardId: `DEMO-${r.residentCode}`,
            residentCode: r.residentCode,
            signaturePin: c.signaturePin,
            authenticationPin: c.authenticationPin,
          });
          cards.set(r.residentCode, c);
          for (const cert of [made.signature, made.authentication]) {
            writeFileAtomic(join(ws.paths.certDir, `${cert.serial}.pem`), toPem(cert.der, "CERTIFICATE"));
            issued.push(cert);
          }
        }
        writeFileAtomic(join(cardDir, "pins.json"), JSON.stringify(Object.fromEntries([...cards].map(([code, c]) => [code, { signature: c.signaturePin, authentication: c.authenticationPin }])), null, 2) + "\n", 0o600);
        say(`[4/10] issued ${residents.length} IC cards at the counter (cards/): keys generated on each card, ${issued.length} certificates (a signature and an authentication certificate per resident) written to the cards and into certs/`);

        const revoked = issued.find((c) => c.type === "signature")!;
        await revokeCertificate(ws.store, { serial: revoked.serial, reason: "loss", at: ws.clock.now() });
        const kept = issued.find((c) => c.type === "signature" && c.caId === revoked.caId && c.serial !== revoked.serial) ?? issued.find((c) => c.type === "signature" && c.serial !== revoked.serial)!;
        say(`[5/10] revoked ${revoked.serial} (${revoked.caId}, card reported lost → keyCompromise)`);

        const publisher = new CrlPublisher({ store: ws.store, config: ws.config, clock: ws.clock, crlDir: ws.paths.crlDir, workspaceRoot: ws.paths.root });
        const crls: PublishedCrl[] = [];
        for (const c of cas.created) crls.push(await publisher.publish(CertificationAuthority.open(await getCaRecord(ws, c.id), passphrase, ws.config)));
        say(`[6/10] published ${crls.length} CRLs into crl/`);

        // A private certification provider (民間認証事業者) on JPKI, the seed's slide 3(4): it reaches the public side
        // only over HTTP, as a registered verifier, through `jpki serve`'s routes (in-process here, on loopback).
        const moverCert = issued.find((c) => c.type === "signature" && c.serial !== revoked.serial && c.serial !== kept.serial)!;
        const verifier = await registerVerifier(ws, { name: "Demo Bank", kind: "private" });
        const { app } = await buildServer(ws, {});
        closeServer = () => app.close();
        const providerDir = join(dir, "provider");
        await app.listen({ host: "127.0.0.1", port: 0 });
        const endpoint = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
        const sigCas = await Promise.all(cas.created.filter((c) => c.id.endsWith("-sig")).map(async (c) => (await getCaRecord(ws, c.id)).certificateDer));
        const provider = await initProvider({ dir: providerDir, name: "Demo Bank", endpoint, trustAnchors: sigCas, passphrase, clock: ws.clock });
        // ② the customer signs an application with the card (its PIN, then the card's sign instruction, over APDUs);
        // ③–⑤ the provider checks the public certificate against the public CRL it fetches and issues its own, with a
        // key it makes and hands back.
        const moverCard = cards.get(moverCert.residentCode)!;
        const card = EmulatedCard.open(fileCardStorage(moverCard.path, { chipKeyFile }));
        card.powerOn();
        const cardSigner = await openCardSigner({ terminal: card, key: "signature", pin: moverCard.signaturePin });
        const application = await signApplication({
          content: Buffer.from("口座開設申込書 (account application): please certify me\n"),
          certificate: cardSigner.certificate,
          signer: cardSigner,
          signingTime: ws.clock.now(),
        });
        card.powerOff();
        const applicationPath = join(dir, "application.p7s");
        writeFileAtomic(applicationPath, application); // owner-only: the signer's certificate carries the four items
        const moverCaDer = (await getCaRecord(ws, moverCert.caId)).certificateDer;
        const crlBefore = readFileSync(crls.find((c) => c.caId === moverCert.caId)!.derPath);
        const accepted = verifySignedData({ signature: application, trustAnchors: [moverCaDer], crls: [crlBefore], revocation: "hard-fail", purpose: "signature" });
        if (accepted.status !== "valid") throw new JpkiError("ERR_INTERNAL", `the demo's card signature is ${accepted.status}: please report this`);
        const enrolled = await enrolCustomer({ dir: providerDir, passphrase, clock: ws.clock, request: application, generateKey: true, customerId: "demo-customer", bearerToken: verifier.token! });
        writeFileAtomic(join(providerDir, "customer.key.pem"), enrolled.privateKeyPem!, 0o600);
        say(`[7/10] the resident signed an application with the card (application.p7s: ${accepted.status}); provider Demo Bank (民間認証事業者) in provider/ accepted it on public certificate ${moverCert.serial} (valid on CRL #${enrolled.publicCrl.number}) and issued ${enrolled.serial}`);

        // The resident moves (転居) at the counter: the registry record changes, the registry side finds the registered
        // signature certificate whose certified address no longer holds and sends the CA side a change notice; its
        // ingestion revokes that certificate and regenerates the CA's CRL.
        const mover = residents.find((r) => r.residentCode === moverCert.residentCode)!;
        const a = mover.fourItems.address;
        const newAddress = /[０-９]+番/.test(a) ? a.replace(/([０-９]+)番/, (_m, d: string) => `${d === "９" ? "８" : "９"}番`) : `${a}１番地`;
        const procedure = await relocate(ws.store, mover.residentCode, newAddress, { now: ws.clock.now() });
        if (!procedure.notice) throw new JpkiError("ERR_INTERNAL", "the demo's relocation sent no notice to the CA side: please report this");
        const noticePath = join(dir, "notices.jsonl");
        writeFileAtomic(noticePath, noticesJsonl([procedure.notice]));
        const updater = new CrlUpdater(ws, passphrase);
        // The counter's notices wait in the registry's outbox until delivered (a crash in between loses none).
        const delivery = await deliverOutbox(ws, { ingest: true, updater });
        const ingest = delivery.ingested[0];
        const movedCrl = ingest?.crls.find((c) => c.caId === moverCert.caId);
        if (ingest?.revocations !== 1 || !movedCrl) throw new JpkiError("ERR_INTERNAL", "the demo's relocation notice did not revoke exactly one certificate: please report this");
        say(`[8/10] the counter recorded a relocation (転居): its notice ${procedure.notice.noticeId} revoked ${moverCert.serial} (affiliationChanged); CRL ${moverCert.caId} regenerated (#${movedCrl.number})`);
        let crlText = "";
        try {
          crlText = execFileSync("openssl", ["crl", "-inform", "DER", "-in", movedCrl.path, "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: childEnv() }); // not the JPKI_* a user exported
        } catch {
          crlText = "(openssl not found: run the command above to see the CRL)";
        }
        // The same signed application, checked again against the republished CRL: the signer's certificate is revoked.
        const recheck = verifySignedData({ signature: application, trustAnchors: [moverCaDer], crls: [readFileSync(movedCrl.path)], revocation: "hard-fail", purpose: "signature" });
        if (recheck.status !== "revoked") throw new JpkiError("ERR_INTERNAL", `the demo's signed application is ${recheck.status} after the move, not revoked: please report this`);
        say(`[9/10] the signed application (application.p7s), accepted before the move, is now rejected: ${recheck.status} (${recheck.message})`);

        // The provider follows the public CRL (conditional GET): it sees the revocation and revokes its own certificate.
        // The server re-reads a CRL file's metadata within 250 ms, so a pass right after the notice may still get a 304.
        let followed;
        for (let i = 0; i < 50; i++) {
          followed = await followPublicCrls({ dir: providerDir, passphrase, clock: ws.clock, bearerToken: verifier.token! });
          if (followed.revoked.length || followed.crls.some((c) => c.error)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await closeServer();
        closeServer = undefined;
        if (!followed?.revoked.length || !followed.crl) throw new JpkiError("ERR_INTERNAL", `the demo's provider did not see the relocation on the public CRL (${JSON.stringify(followed?.crls)}): please report this`);
        say(`[10/10] provider followed ${moverCert.caId}'s CRL (${followed.crls[0]!.status}): revoked its certificate ${followed.revoked[0]!.serial} (${followed.revoked[0]!.reason}); provider CRL #${followed.crl.number}`);

        const rel = (p: string) => relative(io.cwd, p) || ".";
        const caPem = (id: string) => rel(join(ws.paths.caDir, `${id}.pem`));
        const crlPem = (id: string) => rel(join(ws.paths.crlDir, `${id}.crl.pem`));
        const certPem = (s: string) => rel(join(ws.paths.certDir, `${s}.pem`));
        const check = (c: IssuedCertificate) => `openssl verify -crl_check -CAfile ${caPem(c.caId)} -CRLfile ${crlPem(c.caId)} ${certPem(c.serial)}`;
        const pp = { provider, enrolled };
        const signatureCheck = `npx jpki verify-signature --attached ${rel(applicationPath)} --trust ${caPem(moverCert.caId)} --crl ${crlPem(moverCert.caId)} --purpose signature`;
        const customerPem = rel(pp.enrolled.certificatePath);
        const providerCheck = `openssl verify -crl_check -CAfile ${rel(pp.provider.certificatePath)} -CRLfile ${rel(join(providerDir, "crl", "provider.crl.pem"))} ${customerPem}`;
        const result = {
          workspace: dir,
          passphraseFile: join(dir, "passphrase.txt"),
          cas: cas.created.map((c) => ({ id: c.id, certificate: c.certificatePath })),
          residents: residents.length,
          certificates: issued.map((c) => ({ serial: c.serial, ...caNamed(c.caId), type: c.type, path: join(ws.paths.certDir, `${c.serial}.pem`) })),
          revoked: { serial: revoked.serial, ...caNamed(revoked.caId), reason: "keyCompromise" },
          crls: crls.map((c) => ({ ...caNamed(c.caId), number: c.number.toString(), entries: c.entries, der: c.derPath, pem: c.pemPath })),
          notice: { file: noticePath, noticeId: procedure.notice.noticeId, revokedByMove: moverCert.serial, ...caNamed(moverCert.caId), crl: movedCrl },
          cards: { dir: cardDir, pins: join(cardDir, "pins.json"), chipKeyFile, mover: moverCard.path },
          application: { path: applicationPath, beforeMove: accepted.status, afterMove: recheck.status },
          checks: { valid: check(kept), revoked: check(revoked), movedAway: check(moverCert), providerRevoked: providerCheck, applicationRevoked: signatureCheck },
          provider: {
            dir: providerDir,
            certificate: pp.provider.certificatePath,
            customer: { serial: pp.enrolled.serial, certificate: pp.enrolled.certificatePath, public: moverCert.serial },
            followed: followed.crls,
            revoked: followed.revoked.map((r) => ({ serial: r.serial, reason: r.reason })),
            crl: { number: followed.crl.number.toString(), path: followed.crl.path },
          },
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
            `The counter's relocation notice (${rel(noticePath)}) revoked ${moverCert.serial}; ${moverCert.caId}'s CRL is now #${movedCrl.number}:`,
            `  ${check(moverCert)}`,
            `      → certificate revoked (error 23)`,
            `  $ openssl crl -inform DER -in ${rel(movedCrl.path)} -noout -text`,
            ...crlText.trimEnd().split("\n").map((l) => `  ${l}`),
            "",
            `The application the resident signed with the card before moving (${rel(applicationPath)}) is now rejected:`,
            `  ${signatureCheck}`,
            `      → revoked`,
            `  openssl cms -verify -inform DER -in ${rel(applicationPath)} -CAfile ${caPem(moverCert.caId)} -purpose any -out /dev/null`,
            `      → Verification successful: the signature itself holds. With the CRL (openssl cms reads CRLs from the -CAfile bundle):`,
            `  cat ${caPem(moverCert.caId)} ${crlPem(moverCert.caId)} > ca-and-crl.pem`,
            `  openssl cms -verify -inform DER -in ${rel(applicationPath)} -CAfile ca-and-crl.pem -crl_check -purpose any -out /dev/null`,
            `      → certificate revoked`,
            "",
            `The cards are in ${rel(cardDir)}/ (PINs in pins.json, demo only). Sign with one:`,
            `  export JPKI_CARD_CHIP_KEY_FILE=${rel(chipKeyFile)} JPKI_CARD_SIGNATURE_PIN=<the signature PIN from pins.json>`,
            `  npx jpki card sign --card ${rel(cards.get(kept.residentCode)!.path)} ${rel(join(dir, "residents.jsonl"))}`,
            "",
            `Demo Bank, a private certification provider (provider/), certified the resident who moved, on their public`,
            `certificate; following ${moverCert.caId}'s CRL it revoked its own certificate too:`,
            `  ${providerCheck}`,
            `      → certificate revoked (error 23)`,
            "",
            "Or with jpki itself:",
            `  npx jpki inspect ${certPem(kept.serial)}`,
            `  npx jpki --workspace ${rel(dir)} ca list`,
            `  JPKI_PASSPHRASE=$(cat ${rel(join(dir, "passphrase.txt"))}) npx jpki --workspace ${rel(dir)} crl generate --prefecture 13`,
          ].join("\n"),
        );
      } finally {
        await closeServer?.();
        await ws.close();
      }
    });
}
