/**
 * Liveness checks (現況確認) and old/new certificate links (新旧証明書の紐付け), issue 11 point 4, over real HTTP
 * against a real `jpki serve` on the demo's workspace. The demo's mover had a signature certificate revoked
 * by a relocation notice (affiliationChanged); the counter issues a new one, then renews it (superseded), so the
 * line is old → renewed-away → current. A government body (行政機関) sees the link to the current certificate;
 * a private provider (民間認証事業者) sees only "revoked" until the resident's consent is recorded in the
 * registry, and again after it is withdrawn; another private provider never. The history is each caller's
 * own; every answer about our certificates is in `jpki disclosure --resident`; malformed items get their own
 * errors; no credential is 401; an oversized batch a typed 400. `jpki verify --status-of` asks the same.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardKey, cli, openWorkspace, runDemo, startServe, tempDir, unrevoked, type DemoRun, type RunningServe } from "./helpers.js";

let dir: string;
let demo: DemoRun;
let serve: RunningServe;
let passphrase: string;
let gov: { id: string; token: string };
let priv: { id: string; token: string };
let other: { id: string; token: string };
let gone: { id: string; token: string };
/** the mover's three signature certificates: revoked by the move, issued after it and renewed away, current */
let moved: { caId: string; serial: string };
let between: { caId: string; serial: string };
let current: { caId: string; serial: string; certificateId: string };
let movedResident: string;
let goodPem: string;
let goodId: string;
let goodResident: string;

const sha256 = (der: Buffer) => createHash("sha256").update(der).digest("hex");
const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");

async function post(body: unknown, token: string | undefined) {
  const res = await fetch(`${serve.url}/v1/status`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function history(token: string, query = "") {
  const res = await fetch(`${serve.url}/v1/status/history${query}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function consent(verb: "grant" | "withdraw", verifier: string) {
  const r = await cli(["--workspace", demo.workspace, "--json", "registry", "consent", verb, "--resident", movedResident, "--verifier", verifier], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return r.json();
}

async function issueFor(resident: string, name: string): Promise<{ caId: string; serial: string; pem: string }> {
  const k = cardKey(dir, name);
  const out = join(dir, `${name}.pem`);
  const r = await cli(["--workspace", demo.workspace, "--json", "issue", "--resident", resident, "--public-key", k.pub, "-o", out], { cwd: dir, env: { JPKI_PASSPHRASE: passphrase } });
  expect(r.code, r.stderr).toBe(0);
  const w = await openWorkspace(demo.workspace);
  try {
    const row = (await w.store.getCertificate(r.json().serial))!;
    return { caId: row.caId, serial: row.serial, pem: readFileSync(out, "utf8") };
  } finally {
    await w.close();
  }
}

beforeAll(async () => {
  dir = tempDir("jpki-liveness-");
  demo = await runDemo(dir);
  const ws = demo.workspace;
  passphrase = readFileSync(join(ws, "passphrase.txt"), "utf8").trim();
  const add = async (name: string, kind: string) => {
    const r = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", name, "--kind", kind], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return { id: r.json().id as string, token: r.json().token as string };
  };
  gov = await add("デジタル庁", "government");
  priv = await add("Example Bank K.K.", "private");
  other = await add("Other Trust K.K.", "private");
  gone = await add("Revoked Provider", "private");
  expect((await cli(["--workspace", ws, "verifier", "revoke", gone.id], { cwd: dir })).code).toBe(0);

  const w = await openWorkspace(ws);
  try {
    const row = (await w.store.getCertificate(demo.notice.revokedByMove))!;
    expect(row.revocation?.reason).toBe(3); // affiliationChanged: the move
    moved = { caId: row.caId, serial: row.serial };
    movedResident = row.residentCode;
    const sig = unrevoked(demo).find((c) => c.type === "signature")!;
    goodPem = readFileSync(resolve(ws, sig.path), "utf8");
    goodId = sha256(derOf(goodPem));
    goodResident = (await w.store.getCertificate(sig.serial))!.residentCode;
  } finally {
    await w.close();
  }
  // After the move the counter issues a new signature certificate; later it is renewed (the first is superseded).
  const b = await issueFor(movedResident, "after-move");
  between = { caId: b.caId, serial: b.serial };
  const c = await issueFor(movedResident, "renewed");
  current = { caId: c.caId, serial: c.serial, certificateId: sha256(derOf(c.pem)) };
  serve = await startServe(ws, ["--access-log", "off"], { JPKI_PASSPHRASE: passphrase });
  expect(serve.stderr()).toMatch(/listening/);
}, 180_000);

afterAll(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill("SIGTERM");
    await serve.exited;
  }
});

describe("POST /v1/status: liveness in batches, each verifier kind in its view", () => {
  it("good, revoked and unknown items in one batch: a government body also sees reason, time and why unknown; a private provider the status only", async () => {
    const items = [{ certificateId: goodId }, moved, { caId: "13-sig", serial: "7f" + "00".repeat(15) }, { certificateId: "ab".repeat(32) }];
    const g = await post({ items }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ view: "government", checkedAt: expect.any(String) });
    expect(g.json().items).toEqual([
      { index: 0, item: { certificateId: goodId }, status: "good" },
      { index: 1, item: moved, status: "revoked", revocation: { time: expect.any(String), reason: "affiliationChanged" } },
      { index: 2, item: { caId: "13-sig", serial: "7f" + "00".repeat(15) }, status: "unknown", unknownReason: "not-ours" },
      { index: 3, item: { certificateId: "ab".repeat(32) }, status: "unknown", unknownReason: "not-ours" },
    ]);
    const p = await post({ items }, priv.token);
    expect(p.status, p.text).toBe(200);
    expect(p.json().items.map((i: object) => Object.keys(i).sort())).toEqual(Array(4).fill(["index", "item", "status"]));
    expect(p.json().items.map((i: { status: string }) => i.status)).toEqual(["good", "revoked", "unknown", "unknown"]);
    expect(p.text).not.toMatch(/affiliationChanged|revocation|not-ours/);
  });

  it("a serial under the wrong CA is not that certificate: unknown", async () => {
    const wrongCa = moved.caId.endsWith("-sig") ? moved.caId.replace(/-sig$/, "-auth") : moved.caId.replace(/-auth$/, "-sig");
    const r = await post({ items: [{ caId: wrongCa, serial: moved.serial }] }, gov.token);
    expect(r.json().items[0]).toMatchObject({ status: "unknown", unknownReason: "not-ours" });
  });

  it("the link: a government body is told the CURRENT certificate at the end of the chain (move, then renewal)", async () => {
    const r = await post({ items: [moved, between, { caId: current.caId, serial: current.serial }], link: true }, gov.token);
    expect(r.status, r.text).toBe(200);
    const [a, b, c] = r.json().items;
    expect(a).toMatchObject({ status: "revoked", revocation: { reason: "affiliationChanged" }, replacedBy: current });
    expect(b).toMatchObject({ status: "revoked", revocation: { reason: "superseded" }, replacedBy: current });
    expect(c).toEqual({ index: 2, item: { caId: current.caId, serial: current.serial }, status: "good" });
    // not asked for, not given
    expect((await post({ items: [moved] }, gov.token)).json().items[0].replacedBy).toBeUndefined();
  });

  it("a private provider without the resident's consent gets the status only, exactly as without asking for the link", async () => {
    const withLink = await post({ items: [moved, between], link: true }, priv.token);
    const without = await post({ items: [moved, between] }, priv.token);
    expect(withLink.json().items).toEqual(without.json().items);
    expect(withLink.json().items).toEqual([
      { index: 0, item: moved, status: "revoked" },
      { index: 1, item: between, status: "revoked" },
    ]);
    expect(withLink.text).not.toContain(current.serial);
  });

  it("consent recorded in the registry brings that provider the link, no other; withdrawn, nothing again", async () => {
    expect(await consent("grant", priv.id)).toMatchObject({ resident: movedResident, verifier: priv.id, withdrawnAt: null });
    const p = await post({ items: [moved], link: true }, priv.token);
    expect(p.json().items).toEqual([{ index: 0, item: moved, status: "revoked", replacedBy: current }]);
    expect((await post({ items: [moved], link: true }, other.token)).json().items).toEqual([{ index: 0, item: moved, status: "revoked" }]);
    expect((await consent("withdraw", priv.id)).withdrawnAt).toEqual(expect.any(String));
    const after = await post({ items: [moved], link: true }, priv.token);
    expect(after.json().items).toEqual([{ index: 0, item: moved, status: "revoked" }]);
    const list = await cli(["--workspace", demo.workspace, "--json", "registry", "consent", "list", "--resident", movedResident], { cwd: dir });
    expect(list.json().consents).toHaveLength(1);
    // withdrawing what is not live is an error with its code (exit 14)
    const again = await cli(["--workspace", demo.workspace, "--json", "registry", "consent", "withdraw", "--resident", movedResident, "--verifier", priv.id], { cwd: dir });
    expect(again.code).toBe(14);
    expect(again.stderr).toContain("ERR_CONSENT_UNKNOWN");
  });

  it("a malformed item gets its own typed error; the rest of the batch is answered", async () => {
    const r = await post({ items: ["13-sig:0a", { caId: "13-sig" }, { caId: "13-sig", serial: "zz" }, { certificateId: "12" }, { certificateId: goodId }] }, priv.token);
    expect(r.status, r.text).toBe(200);
    expect(r.json().items).toEqual([
      { index: 0, error: "item-invalid", message: expect.any(String) },
      { index: 1, error: "item-invalid", message: expect.any(String) },
      { index: 2, error: "serial-invalid", message: expect.any(String) },
      { index: 3, error: "certificate-id-invalid", message: expect.any(String) },
      { index: 4, item: { certificateId: goodId }, status: "good" },
    ]);
  });
});

describe("POST /v1/status: who may ask, and what it refuses", () => {
  it("no credential, an unknown token, a revoked verifier: 401 (POST and history)", async () => {
    expect((await post({ items: [moved] }, undefined)).status).toBe(401);
    expect((await post({ items: [moved] }, "jpkiv_" + "A".repeat(43))).status).toBe(401);
    expect((await post({ items: [moved] }, gone.token)).status).toBe(401);
    expect((await fetch(`${serve.url}/v1/status/history`)).status).toBe(401);
  });

  it("a batch over 1000 items, an empty batch, unknown fields: typed 400s, nothing recorded", async () => {
    const before = (await history(other.token, "?limit=1000")).json().items.length;
    const cases: Array<[unknown, string]> = [
      [{ items: Array.from({ length: 1001 }, () => moved) }, "batch-too-large"],
      [{ items: [] }, "items-missing"],
      [{ items: [moved], link: "yes" }, "link-invalid"],
      [{ items: [moved], legalBasis: "pension" }, "field-unknown"],
      [[moved], "body-invalid"],
    ];
    for (const [body, code] of cases) {
      const r = await post(body, other.token);
      expect([r.status, r.json().code], r.text).toEqual([400, code]);
    }
    expect((await history(other.token, "?limit=1000")).json().items.length).toBe(before);
  });
});

describe("GET /v1/status/history: each verifier's own checks", () => {
  it("holds every checked item of the caller and nothing of anyone else's, paged by limit and cursor, filtered by since", async () => {
    const g = await history(gov.token, "?limit=1000");
    expect(g.status, g.text).toBe(200);
    const govItems = g.json().items as Array<{ serial?: string; status: string; replacedBy?: object; revocation?: object }>;
    // 4 + 1 + 3 + 1 items asked by the government body above
    expect(govItems.length).toBe(9);
    expect(govItems.filter((i) => i.replacedBy)).toHaveLength(2);
    expect(govItems.find((i) => i.replacedBy)).toMatchObject({ serial: moved.serial, revocation: { reason: "affiliationChanged" }, replacedBy: { caId: current.caId, serial: current.serial } });
    const p = (await history(priv.token, "?limit=1000")).json().items as Array<{ replacedBy?: object; revocation?: object; certificateId?: string }>;
    // 4 + 2 + 2 + 1 + 1 checked items (the malformed ones are not checks)
    expect(p.length).toBe(11);
    // a private provider's history holds what it was told: the one link under consent, no reasons
    expect(p.filter((i) => i.replacedBy)).toHaveLength(1);
    expect(p.some((i) => i.revocation)).toBe(false);
    const o = (await history(other.token, "?limit=1000")).json().items;
    expect(o).toHaveLength(1);
    // paging: two pages of 5 and the rest, in order, without overlap
    const first = (await history(gov.token, "?limit=5")).json();
    expect(first.items).toHaveLength(5);
    const second = (await history(gov.token, `?limit=5&cursor=${first.nextCursor}`)).json();
    expect(second.items).toHaveLength(4);
    expect(second.nextCursor).toBeUndefined();
    expect([...first.items, ...second.items]).toEqual(govItems);
    expect((await history(gov.token, "?since=2999-01-01T00:00:00Z")).json()).toEqual({ items: [] });
    expect((await history(gov.token, "?cursor=12")).json().code).toBe("query-invalid");
    expect((await history(gov.token, "?limit=5000")).json().code).toBe("query-invalid");
  });

  it("hands out cursors that do not show the shared check id, and that only their own verifier can use", async () => {
    const first = (await history(gov.token, "?limit=5")).json();
    const cursor = first.nextCursor as string;
    expect(cursor).toMatch(/^c[A-Za-z0-9_-]{22}$/);
    // the fifth check's id is a small number here: no spelling of it is in the cursor
    const w = await openWorkspace(demo.workspace);
    let fifth: number;
    try {
      fifth = (await w.store.listStatusChecks({ verifierId: gov.id, after: 0, limit: 5 }))[4]!.id;
    } finally {
      await w.close();
    }
    for (const spelt of [fifth.toString(36), fifth.toString(10), fifth.toString(16)]) expect(cursor.slice(1)).not.toBe(spelt);
    // the same page again yields the same cursor (it is the position, sealed), and it pages on
    expect((await history(gov.token, "?limit=5")).json().nextCursor).toBe(cursor);
    expect((await history(gov.token, `?limit=5&cursor=${cursor}`)).json().items).toHaveLength(4);
    // another verifier's cursor, a changed one and an old-form one past everything
    for (const [token, c] of [
      [other.token, cursor],
      [gov.token, `c${cursor.slice(1, 12)}${cursor[12] === "A" ? "B" : "A"}${cursor.slice(13)}`],
    ] as const) {
      expect((await history(token, `?cursor=${c}`)).json().code).toBe("query-invalid");
    }
    // an old-form cursor ("h" and the id in base 36) handed out before is still taken
    expect((await history(gov.token, `?limit=5&cursor=h${fifth.toString(36)}`)).json().items).toHaveLength(4);
  });
});

describe("the disclosure log: every answer about a resident's certificates", () => {
  it("jpki disclosure --resident lists each liveness answer, with +link where the link was given", async () => {
    const r = await cli(["--workspace", demo.workspace, "--json", "disclosure", "--resident", movedResident], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const log = r.json().disclosures as Array<{ verifier: { id: string }; certificate: { serial: string }; answer: string }>;
    const status = log.filter((d) => d.answer.startsWith("status:"));
    const by = (id: string) => status.filter((d) => d.verifier.id === id).map((d) => d.answer);
    expect(by(gov.id).filter((a) => a === "status:revoked+link")).toHaveLength(2);
    expect(by(gov.id)).toHaveLength(5);
    expect(by(priv.id)).toEqual(["status:revoked", "status:revoked", "status:revoked", "status:revoked", "status:revoked", "status:revoked+link", "status:revoked"]);
    expect(by(other.id)).toEqual(["status:revoked"]);
    expect(new Set(status.map((d) => d.certificate.serial))).toEqual(new Set([moved.serial, between.serial, current.serial]));
    const good = await cli(["--workspace", demo.workspace, "--json", "disclosure", "--resident", goodResident], { cwd: dir });
    expect((good.json().disclosures as Array<{ answer: string }>).map((d) => d.answer)).toEqual(["status:good", "status:good", "status:good"]);
    expect(good.json().truncated).toBe(false);
  });

  it("a batch naming one certificate many times is one record, and the newest records are listed: no flood hides a later check", async () => {
    const list = async (limit: number) => {
      const r = await cli(["--workspace", demo.workspace, "--json", "disclosure", "--resident", goodResident, "--limit", String(limit)], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      return r.json() as { disclosures: Array<{ verifier: { id: string }; answer: string }>; truncated: boolean };
    };
    const before = (await list(100_000)).disclosures.length;
    // a private provider names the resident's certificate 500 times in one batch: every item answered, one record
    const flood = await post({ items: Array.from({ length: 500 }, () => ({ certificateId: goodId })) }, priv.token);
    expect(flood.status).toBe(200);
    expect((flood.json().items as unknown[]).length).toBe(500);
    expect((await list(100_000)).disclosures.length).toBe(before + 1);
    // then a government body checks it: the newest record, listed even with a limit of 1, which says older ones exist
    expect((await post({ items: [{ certificateId: goodId }] }, gov.token)).status).toBe(200);
    const newest = await list(1);
    expect(newest.disclosures.map((d) => d.verifier.id)).toEqual([gov.id]);
    expect(newest.truncated).toBe(true);
    const text = await cli(["--workspace", demo.workspace, "disclosure", "--resident", goodResident, "--limit", "1"], { cwd: dir });
    expect(text.stdout.split("\n")[0]).toMatch(/older checks are not shown: these are the newest 1/);
  });
});

describe("jpki verify --status-of", () => {
  it("asks the server about a list file in batches and prints each answer; exit 1 when any is not good, 0 when all are", async () => {
    const token = join(dir, "gov.token");
    writeFileSync(token, gov.token + "\n", { mode: 0o600 });
    const list = join(dir, "customers.txt");
    writeFileSync(list, `# customers at sign-up\n${moved.caId}:${moved.serial}\n\n${goodId}\n${current.caId}:${current.serial.toUpperCase()}\n`);
    const r = await cli(["--json", "verify", "--status-of", list, "--url", serve.url, "--token-file", token, "--link", "--batch-size", "2"], { cwd: dir });
    expect(r.code, r.stderr).toBe(1);
    expect(r.json().items.map((i: { index: number; status: string }) => [i.index, i.status])).toEqual([[0, "revoked"], [1, "good"], [2, "good"]]);
    expect(r.json().items[0].replacedBy).toEqual(current);
    const text = await cli(["verify", "--status-of", list, "--url", serve.url, "--token-file", token, "--link"], { cwd: dir });
    expect(text.stdout).toContain(`replaced by ${current.caId}:${current.serial}`);
    expect(text.stdout).toMatch(/3 checked .*1 revoked/);
    const pems = join(dir, "good.pem");
    writeFileSync(pems, goodPem);
    const ok = await cli(["verify", "--status-of", pems, "--url", serve.url, "--token-file", token], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    const refused = await cli(["verify", "--status-of", pems, "--url", serve.url], { cwd: dir, env: { JPKI_VERIFIER_TOKEN: undefined } });
    expect(refused.code).toBe(17);
    expect(refused.stderr).toContain("ERR_SERVICE_FAILED");
    writeFileSync(list, "13-sig:0a\nnot a certificate\n");
    const bad = await cli(["verify", "--status-of", list, "--url", serve.url, "--token-file", token], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("line 2");
  });
});

describe("GET /openapi.json", () => {
  it("describes POST /v1/status (the certificate id, the link) and GET /v1/status/history", async () => {
    const doc = (await (await fetch(`${serve.url}/openapi.json`, { headers: { authorization: `Bearer ${priv.token}` } })).json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/validate", "/v1/status", "/v1/status/history"]));
    expect(doc.paths["/v1/status"].post.description).toContain("SHA-256");
    expect(doc.components.schemas.StatusRequest.properties.items.maxItems).toBe(1000);
    expect(doc.components.schemas.StatusItemAnswer.oneOf[0].properties.replacedBy.$ref).toBe("#/components/schemas/ReplacedBy");
    expect(doc.components.schemas.Error.properties.code.enum).toEqual(expect.arrayContaining(["batch-too-large", "body-invalid", "certificate-missing"]));
  });
});
