/**
 * The table of fuzz targets: every parser that takes outside input (issue 13 point 3). Each `run` calls the
 * parser the way its production caller does (the CLI command, the server route), so a finding is a finding
 * of the product, not of a test-only path.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { verifyCsr, readSpki } from "../../src/ca/csr.js";
import { readBatches } from "../../src/ca/notices.js";
import { parseCommandApdu, parseResponse } from "../../src/card/apdu.js";
import { memoryCardStorage, stateStoreOf, type CardState } from "../../src/card/card-state.js";
import { EmulatedCard, newAdminKey } from "../../src/card/card.js";
import { formatCertificate, writeCrl } from "../../src/cli/inspect-format.js";
import { parseOcspRequest } from "../../src/ocsp/request.js";
import { FixedClock } from "../../src/pki/clock.js";
import { children, readHeader } from "../../src/pki/der.js";
import { assertDer } from "../../src/pki/der-strict.js";
import { requireRsa2048 } from "../../src/pki/keys.js";
import { describeCertificate, openForInspection } from "../../src/profile/describe.js";
import { readRecords, type ImportFormat } from "../../src/registry/import.js";
import { verifySignedData } from "../../src/validation/cms.js";
import { validatePath } from "../../src/validation/validate.js";
import { parseResidentRecord } from "../../src/registry/resident.js";
import { CLOCK_START, type Corpus } from "./corpus.js";
import { isOurs, PropertyViolation, type FuzzTarget } from "./harness.js";
import { derInputs, recordFiles } from "./mutate.js";

/** The repository: two levels up from test/fuzz, three from dist/test/fuzz (npm run fuzz runs the compiled harness). */
const ROOT = [join(import.meta.dirname, "..", ".."), join(import.meta.dirname, "..", "..", "..")].find((d) => existsSync(join(d, "fixtures", "registry")))!;
const bytes = (b: Buffer) => b;

/** The two DER walkers document a RangeError naming the broken rule as their refusal; their callers wrap it. */
const rangeError = (e: unknown) => e instanceof RangeError && /DER|INTEGER|BOOLEAN|BIT STRING|NULL|length|tag|nested|SEQUENCE|truncated|empty/i.test(e.message);

/** Walks every constructed value with children(), checking that the children tile their parent exactly. */
function walk(b: Buffer, depth: number): void {
  const h = readHeader(b);
  if (!(h.tag & 0x20) || depth > 30) return;
  const kids = children(b);
  const total = kids.reduce((n, k) => n + k.length, 0);
  if (total !== h.length) throw new PropertyViolation("children do not tile their parent", `${total} of ${h.length} content bytes`);
  for (const k of kids) walk(k, depth + 1);
}

function sampleLines(file: string): string[] {
  return readFileSync(join(ROOT, file), "utf8").split("\n").filter((l) => l.length);
}

/** Reads every record the way `jpki registry import` does; records are checked, nothing is stored. */
async function importResidents(input: Buffer, format: ImportFormat): Promise<string[]> {
  const now = new Date(CLOCK_START);
  const refused: string[] = [];
  for await (const item of readRecords(Readable.from([input]), { format })) {
    if ("error" in item) {
      if (!isOurs(item.error)) throw item.error;
      refused.push(`record ${item.error.code}`);
      continue;
    }
    try {
      parseResidentRecord(item.value, { now });
    } catch (e) {
      // our error is the refusal of one record (the command reports it and goes on); anything else is a finding
      if (!isOurs(e)) throw e;
      refused.push(`record ${e.code}`);
    }
  }
  return refused;
}

/** Reads notices the way `jpki notices ingest` does (its read stage, which a reader thread runs for big files). */
async function readNotices(input: Buffer, format: ImportFormat): Promise<string[]> {
  const clock = new FixedClock(CLOCK_START);
  const refused: string[] = [];
  for await (const batch of readBatches(readRecords(Readable.from([input]), { format }), clock, 7)) {
    for (const r of batch.rejects) {
      if (!r.code.startsWith("ERR_") || r.code === "ERR_INTERNAL") throw new PropertyViolation("a reject without one of our codes", r.code);
      refused.push(`record ${r.code}`);
    }
  }
  return refused;
}

/** A personalised card (two RSA-2048 keys), opened fresh for each APDU. */
async function personalisedCard(): Promise<CardState> {
  const storage = memoryCardStorage();
  const admin = newAdminKey();
  const card = EmulatedCard.create({ storage, cardId: "card-fuzz", adminKey: admin, signaturePin: "SIGPIN2026", authenticationPin: "4321", libraryPin: "2468" });
  await card.generateKeyPair(admin, "signature");
  await card.generateKeyPair(admin, "authentication");
  return stateStoreOf(storage).load();
}

const sink = { write: (_s: string) => true };

/** RFC 5280 §6 outcomes validatePath may give (src/validation/types.ts PathStatus). */
const PATH_STATUSES: ReadonlySet<string> = new Set(["valid", "revoked", "expired", "not-yet-valid", "untrusted", "profile-violation", "revocation-unknown"]);

export async function parserTargets(c: Corpus): Promise<FuzzTarget<any>[]> {
  // in the corpus's directory, which goes with it
  const inspected = join(c.ws.paths.root, "inspect-input");
  const allDer = [...c.certificates, ...c.crls, ...c.csrs.filter((b) => b[0] === 0x30), ...c.spkis, ...c.ocspRequests];
  const card = await personalisedCard();
  const sigCa = c.certificates[4]!; // 13-sig's certificate (corpus.ts puts the CA certificates after the four issued)
  const at = new Date(Date.parse(CLOCK_START) + 86_400_000);
  let open: EmulatedCard | undefined;
  let sent = 0;
  const residentsJsonl = sampleLines("fixtures/registry/residents.sample.jsonl");
  const residentsCsv = sampleLines("fixtures/registry/residents.sample.csv");
  const noticesJsonl = sampleLines("fixtures/notices/notices.sample.jsonl");
  const noticesCsv = sampleLines("fixtures/notices/notices.sample.csv");
  const targets: FuzzTarget<any>[] = [
    {
      name: "der-reader",
      parser: "src/pki/der.ts readHeader/children (the DER walker every reader builds on)",
      arbitrary: derInputs(allDer),
      run: (b: Buffer) => walk(b, 0),
      expected: rangeError,
      toVector: bytes,
      testRuns: 500,
    },
    {
      name: "der-strict",
      parser: "src/pki/der-strict.ts assertDer (X.690 §10)",
      arbitrary: derInputs(allDer),
      run: (b: Buffer) => {
        assertDer(b);
        // what the strict check accepts, the walker must read without complaint
        walk(b, 0);
      },
      expected: rangeError,
      toVector: bytes,
      testRuns: 500,
    },
    {
      name: "spki",
      parser: "src/ca/csr.ts readSpki + src/pki/keys.ts requireRsa2048 (a card's public key for `jpki issue --public-key`)",
      arbitrary: derInputs(c.spkis),
      run: (b: Buffer) => void requireRsa2048(readSpki(b)),
      toVector: bytes,
      testRuns: 500,
    },
    {
      name: "pkcs10",
      parser: "src/ca/csr.ts verifyCsr (RFC 2986)",
      arbitrary: fc.oneof({ weight: 9, arbitrary: derInputs(c.csrs.filter((b) => b[0] === 0x30)) }, { weight: 1, arbitrary: derInputs(c.csrs.filter((b) => b[0] !== 0x30)) }),
      run: (b: Buffer) => void verifyCsr(b),
      toVector: bytes,
    },
    {
      name: "inspect-certificate",
      parser: "src/profile/describe.ts openForInspection + describeCertificate + src/cli/inspect-format.ts (`jpki inspect`)",
      arbitrary: derInputs(c.certificates),
      run: (b: Buffer) => inspect(b),
      toVector: bytes,
      testRuns: 150,
    },
    {
      name: "inspect-crl",
      parser: "src/profile/crl-reader.ts + describe.ts openForInspection, the streaming CRL reader of `jpki inspect` (text and --json)",
      arbitrary: derInputs(c.crls),
      run: (b: Buffer) => inspect(b),
      toVector: bytes,
      testRuns: 150,
    },
    {
      name: "ocsp-request",
      parser: "src/ocsp/request.ts parseOcspRequest (RFC 6960 §4.1.1)",
      arbitrary: derInputs(c.ocspRequests),
      run: (b: Buffer) => void parseOcspRequest(b),
      toVector: bytes,
      testRuns: 500,
    },
    {
      name: "residents-jsonl",
      parser: "src/registry/import.ts readRecords + resident.ts parseResidentRecord (`jpki registry import x.jsonl`)",
      arbitrary: recordFiles({ lines: residentsJsonl, csv: false }),
      run: (b: Buffer) => importResidents(b, "jsonl"),
      toVector: bytes,
      testRuns: 200,
    },
    {
      name: "residents-csv",
      parser: "src/registry/import.ts readRecords + resident.ts parseResidentRecord (`jpki registry import x.csv`)",
      arbitrary: recordFiles({ lines: residentsCsv, csv: true }),
      run: (b: Buffer) => importResidents(b, "csv"),
      toVector: bytes,
      testRuns: 200,
    },
    {
      name: "notices-jsonl",
      parser: "src/registry/import.ts + src/ca/notices.ts readBatches (`jpki notices ingest`, the spool)",
      arbitrary: recordFiles({ lines: noticesJsonl, csv: false }),
      run: (b: Buffer) => readNotices(b, "jsonl"),
      toVector: bytes,
      testRuns: 200,
    },
    {
      name: "notices-csv",
      parser: "src/registry/import.ts + src/ca/notices.ts readBatches (`jpki notices ingest`, the spool)",
      arbitrary: recordFiles({ lines: noticesCsv, csv: true }),
      run: (b: Buffer) => readNotices(b, "csv"),
      toVector: bytes,
      testRuns: 200,
    },
    {
      name: "apdu",
      parser: "src/card/apdu.ts parseCommandApdu/parseResponse and one command to a personalised EmulatedCard (sequences: src/card/card.property.test.ts)",
      arbitrary: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
      run: async (b: Buffer) => {
        const parsed = parseCommandApdu(b);
        if (parsed.ok && !Buffer.from(parsed.apdu.encode()).equals(b)) throw new PropertyViolation("a parsed command does not encode back to its bytes");
        // a card opened afresh every 64 commands, reset between them: opening costs more than a command, and
        // sequences of commands are card.property.test.ts's subject
        if (sent++ % 64 === 0) open = EmulatedCard.open(memoryCardStorage(card));
        else open!.reset();
        const answer = await open!.transmit(b);
        const r = parseResponse(answer);
        if (!r || r.sw === 0x6f00) throw new PropertyViolation("the card answered no status word or 6F00", Buffer.from(answer).toString("hex"));
      },
      toVector: bytes,
      testRuns: 500,
    },
    {
      name: "validate-path",
      parser: "src/validation/validate.ts validatePath (RFC 5280 §6): a mutated end-entity certificate or CRL, the real CA as anchor",
      arbitrary: fc.oneof(derInputs(c.certificates.slice(0, 4)).map((ee) => ({ ee, crl: c.crls[0]! })), derInputs(c.crls).map((crl) => ({ ee: c.certificates[0]!, crl }))),
      run: (x: { ee: Buffer; crl: Buffer }) => {
        const r = validatePath({ trustAnchors: [sigCa], chain: [x.ee], crls: [x.crl], at });
        if (!PATH_STATUSES.has(r.status)) throw new PropertyViolation("a path status not in the table", String(r.status));
        return r.status;
      },
      toVector: (x: { ee: Buffer; crl: Buffer }) => (x.ee === c.certificates[0] ? x.crl : x.ee),
      testRuns: 200,
    },
    {
      name: "cms",
      parser: "src/validation/cms.ts verifySignedData (RFC 5652), as `jpki verify-signature` and POST /v1/verify-signature call it",
      arbitrary: derInputs(c.signedData),
      run: (b: Buffer) => {
        const r = verifySignedData({ signature: b, content: c.signedContent, trustAnchors: [sigCa], crls: [c.crls[0]!], at, purpose: "signature" });
        if (typeof r.status !== "string" || typeof r.message !== "string") throw new PropertyViolation("a result without status and message");
        return r.status;
      },
      toVector: bytes,
      testRuns: 200,
    },
  ];

  /** `jpki inspect FILE` in-process: the file opened as the CLI opens it, described, formatted as text and JSON. */
  async function inspect(b: Buffer): Promise<void> {
    writeFileSync(inspected, b, { mode: 0o600 });
    const input = openForInspection(inspected, "input file");
    if (input.kind === "certificate") {
      const d = describeCertificate(input.der);
      formatCertificate(d);
      JSON.stringify(d);
      return;
    }
    try {
      await writeCrl(input.crl, { json: false, summary: false, maxEntries: 20 }, sink);
    } finally {
      input.crl.close();
    }
    // a second open for the JSON form: a CrlStream's entries are read once
    const again = openForInspection(inspected, "input file");
    if (again.kind !== "crl") throw new PropertyViolation("the same bytes inspected as another kind");
    try {
      await writeCrl(again.crl, { json: true, summary: false, maxEntries: Infinity }, sink);
    } finally {
      again.crl.close();
    }
  }
  return targets;
}
