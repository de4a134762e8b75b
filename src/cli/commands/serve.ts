/**
 * `jpki serve`: the publication point verifiers poll (the services are the library's serveHttp and
 * runCrlSchedule, server/serve.ts). One process serves HTTP and runs the CRL schedule; with --workers N the
 * first process runs the schedule and N worker processes share the listening socket.
 */
import cluster, { type Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { JpkiError, checkInputFile, checkOutputFile, serverLibrary } from "../lib.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import type { Io } from "../output.js";
import { entriesText } from "../output.js";
import { sweepLine } from "./registry.js";
import type { RecoveredError } from "../../server/repeated-errors.js";

interface ServeOpts {
  listen: string;
  workers: string;
  tlsCert?: string;
  tlsKey?: string;
  crlInterval: string;
  crlMaxAge: string;
  schedule: boolean;
  accessLog: string;
  ocsp: boolean;
  ocspCertDays: string;
  ocspValidity: string;
  ocspMaxAge: string;
  maxConnections: string;
  verifierListMaxAge: string;
}

/** host:port, [v6]:port or a bare port (loopback then). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s) ?? (/^(\d{1,5})$/.exec(s) ? [s, undefined, "127.0.0.1", s] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) throw new JpkiError("ERR_USAGE", `--listen ${s}: give host:port, [ipv6]:port or a port (e.g. 127.0.0.1:8080)`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

function wholeNumber(v: string, name: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new JpkiError("ERR_USAGE", `${name} must be a whole number from ${min} to ${max}`);
  return n;
}

export function makeServeCommand(io: Io): Command {
  return new Command("serve")
    .description("serve the published CRLs and CA certificates over HTTP to verifiers, and keep the CRLs current")
    .option("--listen <addr>", "host:port to listen on", "127.0.0.1:8080")
    .option("--workers <n>", "HTTP processes sharing the port (one per core at most; one is fastest on 2 cores: see below)", "1")
    .option("--tls-cert <file>", "serve HTTPS with this certificate chain (PEM)")
    .option("--tls-key <file>", "… and this private key (PEM)")
    .option("--crl-interval <seconds>", "longest a revocation waits for its CRL", "30")
    .option("--crl-max-age <seconds>", "longest a cache may keep a CRL (never past its nextUpdate)", "300")
    .option("--no-schedule", "serve only; another process ('jpki watch') keeps the CRLs current")
    .option("--access-log <file>", "JSON access log, one line per request: a file, - for stdout, or off", "-")
    .option("--no-ocsp", "no OCSP responder (and no OCSP signing certificates issued)")
    .option("--ocsp-cert-days <days>", "validity of each CA's OCSP signing certificate, renewed at half-life", "4")
    .option("--ocsp-validity <seconds>", "nextUpdate − thisUpdate of OCSP answers (pre-produced ones are re-signed at half of it)", "3600")
    .option("--ocsp-max-age <seconds>", "longest a cache may keep an OCSP GET answer (never past its nextUpdate)", "300")
    .option("--max-connections <n>", "the most connections each HTTP process holds open at once (see below)", "10000")
    .option("--verifier-list-max-age <seconds>", "past this long without reading the registered verifiers from the store, refuse credentials (503 store-unresponsive) rather than trust the old list", "60")
    .addHelpText(
      "after",
      `
Routes (under the path of the workspace's baseUrl):
  GET/HEAD /crl/<ca>.crl               full CRL          /crl/<ca>/<municipality>.crl  partition
  GET/HEAD /arl/<ca>.crl               ARL               /ca/<ca>.crt                  CA certificate
  GET/HEAD /ca/index.json              the CA key generations: id, sha256, successor (by the rollover records)
  GET      /crl/index.json             every CA's latest CRL: number, thisUpdate, nextUpdate, size, sha256
  GET      /healthz                    200 while the store answers and every CRL is fresh, else 503; verifierList.ageSeconds;
                                       store "stalled": a store call past the bound unsettled, the routes' calls refused
                                       but one probe per bound (200); "degraded" and held: kinds of store calls refused
                                       while the rest answer (200)
  GET      /metrics                    Prometheus text: requests by route and status, CRL ages, OCSP answers
  POST     /ocsp/<ca>                  OCSP (RFC 6960), body application/ocsp-request
  GET      /ocsp/<ca>/<base64 request> OCSP GET (RFC 5019), with caching headers
  POST     /v1/validate                the validation API: {certificate, chain?, purpose, at?, legalBasis?} →
                                       a government body's or a private provider's view; every answer is
                                       in 'jpki disclosure --resident CODE'
  POST     /v1/status                  liveness checks (現況確認), up to 1000 {caId, serial} or {certificateId} per
                                       call: good / revoked / unknown, with link: true the replacing certificate
                                       (government bodies; private providers with the resident's consent)
  GET      /v1/status/history          the caller's own liveness checks (?since=&limit=&cursor=)
  POST     /v1/verify-signature        a signed file (CMS SignedData): the signature and the signer's certificate,
                                       in the caller's view (and in the disclosure log)
  GET      /v1/overview                each CA with its latest CRLs and its revocations per day (?days=, 1–366)
  GET      /                           the status page for verifiers and operators (sign in with a token)
  GET      /openapi.json               the validation API's OpenAPI 3.1 document
Registered verifiers only: every route but those config.json's openRoutes lists (default: /healthz) needs
'Authorization: Bearer <token>' or, over HTTPS, a client certificate from the verifier CA ('jpki verifier
add'); else 401. A verifier revoked with 'jpki verifier revoke' is refused within 1 s. Each verifier gets
verifierRateLimit (config.json; default 100/s, bursts of 1000) per process — with --workers N, up to N
times that over several connections — and 429 with Retry-After past it. Requests refused for the
credential they carry (400, 401, 403; not those with none) count against their client address (an IPv6 /64 as one), as do those node's HTTP
parser refuses (400, 408, 413, 431: against the peer address, never a trusted proxy's): past refusedRateLimit
(config.json; default 10/s, bursts of 100, per process) the address gets 429 "too-many-refusals" with
Retry-After, and a token this process has not admitted yet is not checked from it meanwhile, so guessing
tokens is slowed to that rate; verifiers already admitted from the address are answered as before.
Behind a reverse proxy, list it in trustedProxies (config.json: IP addresses or CIDR ranges): from a listed
peer the client address, for that limit and the access log, is the rightmost X-Forwarded-For entry that is
not a listed proxy; from any other peer X-Forwarded-For is ignored.
What each verifier fetched is recorded in the store (written in batches, at most 1 s behind); the access
log names the verifier id or "anonymous", never a token.
Each HTTP process holds at most --max-connections connections at once (default 10000; keep it under the
process's open-file limit, ulimit -n, with room for files and the store); one more is answered 503
(code "too-many-connections", Retry-After: 1) and closed at once (over HTTPS closed, before the
handshake), and counted in /metrics (jpki_http_connections_refused_total; jpki_http_connections_open).
Files carry strong ETags and Last-Modified: pollers should send If-None-Match and get 304s. Byte ranges
resume broken downloads. Unless --no-schedule, the CA passphrase is needed (JPKI_PASSPHRASE or
--passphrase-file): CRLs with new revocations are published within --crl-interval and every CRL is
republished before its nextUpdate. The schedule also sweeps the registry side's issuance information of
expired and revoked certificates about once a day ('jpki registry sweep --help' says what and why).
SIGTERM or SIGINT stops cleanly (exit 0): answers in flight get 5 s to finish and close their connections;
a request arriving meanwhile on an open connection gets 503 (code "stopping") and its connection closes;
a repeated signal changes nothing; one in its first moments, while it loads, stops it before it listens.
SIGHUP reopens the --access-log file by its name (after logrotate moved it; the primary of --workers N passes
the signal on to its workers, to one still starting once it listens); it does not stop the server, in its
start-up either.
OCSP answers are signed by a delegated certificate per CA (id-kp-OCSPSigning, ocsp-nocheck) that the
schedule issues and renews; its key is stored encrypted under JPKI_OCSP_PASSPHRASE when set (so HTTP
workers need not hold the CA passphrase), else under the CA passphrase; one ending with a line break is
refused (exit 2) unless the keys stored already open with it. Answers without a nonce are
pre-produced; a revocation committed by any process is reflected within about a second.
One process already runs the CRL schedule, the validation engine and the access log on threads of their
own; --workers N adds processes, for machines with more cores. On 2 cores it is slower for every route
(304s ≈ 0.6× of one process; the validation API ≈ 0.85× on SQLite, where every answer commits its disclosure
record before it is sent and the processes take turns at the database's one write lock).

Example:
  JPKI_PASSPHRASE=… jpki --workspace /srv/jpki serve --listen 0.0.0.0:8080
  JPKI_PASSPHRASE=… jpki --workspace /srv/jpki serve --listen 0.0.0.0:8080 --workers 8   # a 16-core host`,
    )
    .action(async (o: ServeOpts, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { host, port } = parseListen(o.listen);
      const workers = wholeNumber(o.workers, "--workers", 1, 256);
      const crlInterval = wholeNumber(o.crlInterval, "--crl-interval", 0, 86_400);
      const crlMaxAge = wholeNumber(o.crlMaxAge, "--crl-max-age", 0, 31 * 86_400);
      const ocspCertDays = wholeNumber(o.ocspCertDays, "--ocsp-cert-days", 1, 90);
      const ocspValidity = wholeNumber(o.ocspValidity, "--ocsp-validity", 60, 7 * 86_400);
      const ocspMaxAge = wholeNumber(o.ocspMaxAge, "--ocsp-max-age", 0, 7 * 86_400);
      const maxConnections = wholeNumber(o.maxConnections, "--max-connections", 1, 1_000_000);
      const verifierListMaxAge = wholeNumber(o.verifierListMaxAge, "--verifier-list-max-age", 2, 86_400);
      if (o.ocsp && ocspValidity * 1000 >= (ocspCertDays * 86_400_000) / 2) {
        throw new JpkiError("ERR_USAGE", "--ocsp-validity must be shorter than half of --ocsp-cert-days: answers must expire before their signer is renewed");
      }
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new JpkiError("ERR_USAGE", "HTTPS needs both --tls-cert and --tls-key");
      const tls = o.tlsCert && o.tlsKey
        ? { cert: readFileSync(checkInputFile(o.tlsCert, "--tls-cert", { cwd: io.cwd })), key: readFileSync(checkInputFile(o.tlsKey, "--tls-key", { cwd: io.cwd })) }
        : undefined;
      const lib = await serverLibrary();
      const serveHere = workers === 1 || cluster.isWorker;
      const scheduleHere = o.schedule && !cluster.isWorker;
      const passphrase = scheduleHere ? await ctx.caPassphrase() : undefined;
      // The OCSP responder keys' passphrase: its own when given, so serving processes need not hold the CA one.
      const ocspPassphrase = await responderPassphrase(ctx, io, { enabled: o.ocsp, caPassphrase: passphrase, serveHere });
      const logTarget = o.accessLog === "off" || o.accessLog === "-" ? o.accessLog : checkOutputFile(o.accessLog, "access log --access-log", { cwd: io.cwd });
      // Each serving process logs for itself (the primary of --workers N serves nothing).
      const accessLog =
        logTarget === "off" || !serveHere
          ? undefined
          : new lib.AccessLog(logTarget, { onError: (e) => ctx.out.info(accessLogFailure(e)) });
      // SIGHUP reopens the access log (logrotate's postrotate: move the file, then signal), in every serving
      // process: the primary of --workers N passes it on to its workers. It no longer ends the process.
      const onHangup = () => {
        if (!serveHere) return passHangup();
        try {
          accessLog?.reopen();
        } catch (e) {
          ctx.out.info(`jpki serve: the access log could not be reopened (${(e as Error).message}); lines go on into the file it had open`);
        }
      };
      process.on("SIGHUP", onHangup);
      try {
        await withStopSignal("serve", (stopSignal) =>
          withWorkspace(ctx, async (ws) => {
            // Seen by 'jpki restore --force' however long it idles (Store.holdPresence): the primary, for its workers too.
            if (!cluster.isWorker) await ws.store.holdPresence("serve");
            // Stopped by SIGTERM/SIGINT, or by the first job that fails (a wrong passphrase, a port in use).
            const stop = new AbortController();
            const signal = stop.signal;
            if (stopSignal.aborted) stop.abort();
            else stopSignal.addEventListener("abort", () => stop.abort(), { once: true });
            const jobs: Array<Promise<void>> = [];
            // The schedule wraps new OCSP signing keys under the responders' passphrase, and the responders (here or in
            // the workers) must open the keys stored: under another passphrase they answered nothing until renewed.
            // Checked once, by the primary, before any port opens (the same check as jpki watch's).
            if (!cluster.isWorker && ocspPassphrase) {
              await lib.checkResponderPassphrase(ws.store, ocspPassphrase, { now: ws.clock.now(), own: Boolean(io.env.JPKI_OCSP_PASSPHRASE), wraps: scheduleHere });
            }
            if (scheduleHere) {
              const onCrl = (p: { caId: string; scope: string; number: bigint; why: string; entries: number; nextUpdate: Date }) =>
                ctx.out.info(`CRL ${p.caId}${p.scope ? `/${p.scope}` : ""} #${p.number} published (${p.why}): ${entriesText(p.entries)}, next update ${p.nextUpdate.toISOString()}`);
              // A rewrap stops the OCSP signer renewal until a restart (its message says so, and it is said hourly): no retry.
              const onError = (e: unknown) => {
                const code = (e as { code?: string }).code;
                ctx.out.info(`jpki serve: CRL schedule: ${code ?? "error"}: ${(e as Error).message}${code === "ERR_KEYS_REWRAPPED" || signal.aborted ? "" : " (retrying)"}`);
              };
              const onRecovered = (r: RecoveredError) => ctx.out.info(`jpki serve: CRL schedule: ${noLonger(r)}`);
              const onIssued = (r: { caId: string; serial: string; notAfter: Date }) =>
                ctx.out.info(`OCSP signing certificate for ${r.caId} issued: serial ${r.serial}, valid until ${r.notAfter.toISOString()}`);
              const onSweep = (e: Parameters<typeof sweepLine>[0]) => ctx.out.info(`jpki serve: ${sweepLine(e)}`);
              const ocsp = ocspPassphrase ? { responderPassphrase: ocspPassphrase, policy: { validityMs: ocspCertDays * 86_400_000 } } : undefined;
              // Every CA key opens before the port does: a wrong passphrase never serves for a moment. Beside a
              // server, the schedule gets a thread of its own (server/schedule-thread.ts says why).
              const common = { passphrase: passphrase!, crlIntervalMs: crlInterval * 1000, signal, onCrl, onError, onRecovered, onSweep };
              const inThread = () => lib.openCrlSchedule(ws, { ...common, ...(ocsp ? { ocsp: { ...ocsp, onIssued } } : {}) });
              const loop =
                serveHere && lib.scheduleThreadAvailable()
                  ? await lib.openCrlScheduleThread({
                      root: ws.paths.root,
                      ...(ws.config.store !== "sqlite" && ctx.storeUrl ? { storeUrl: ctx.storeUrl } : {}),
                      ...common,
                      onIssued,
                      ...(ocsp ? { ocsp } : {}),
                      inThread,
                    })
                  : await inThread();
              jobs.push(loop());
            }
            if (serveHere) {
              jobs.push(
                lib.serveHttp(ws, {
                  host,
                  port,
                  signal,
                  crlMaxAgeSeconds: crlMaxAge,
                  maxConnections,
                  ...(io.testing?.storeWaitMs !== undefined ? { storeWaitMs: io.testing.storeWaitMs } : {}),
                  ...(ocspPassphrase
                    ? {
                        ocsp: {
                          passphrase: ocspPassphrase,
                          responseValidityMs: ocspValidity * 1000,
                          maxAgeSeconds: ocspMaxAge,
                          // said once, then at most every five minutes while it lasts (server/repeated-errors.ts)
                          onError: (e: unknown) => ctx.out.info(`jpki serve: OCSP: ${(e as { code?: string }).code ?? "error"}: ${(e as Error).message} (retrying)`),
                          onRecovered: (r: RecoveredError) => ctx.out.info(`jpki serve: OCSP: ${noLonger(r)}`),
                        },
                      }
                    : {}),
                  ...(tls ? { tls } : {}),
                  ...(accessLog ? { accessLog } : {}),
                  access: {
                    maxListAgeMs: verifierListMaxAge * 1000,
                    onError: (e, what) => ctx.out.info(`jpki serve: ${what}: ${(e as { code?: string }).code ?? "error"}: ${(e as Error).message}`),
                    onRecovered: (r, what) => ctx.out.info(`jpki serve: ${what}: ${noLonger(r)}`),
                  },
                  onListening: (url, pageUrl) => {
                    if (!cluster.isWorker) ctx.out.info(`jpki serve: listening on ${url} (pid ${process.pid}${scheduleHere ? ", CRL schedule running" : ""}); the status page at ${pageUrl}; SIGTERM stops`);
                  },
                }),
              );
            } else {
              jobs.push(runWorkers(ctx, workers, signal, `${host}:${port}`, workerEnv(io.env)));
            }
            await Promise.all(
              jobs.map((j) =>
                j.catch((e: unknown) => {
                  stop.abort();
                  throw e;
                }),
              ),
            );
          }, { signal: stopSignal, stopped: () => ctx.out.info("jpki serve: stopped by a signal while the store was opening: nothing was served") }),
        );
      } finally {
        // Let go once the log is closed, not before: its close may wait on a slow reader (a full pipe, up to its
        // deadline), and a SIGHUP then (logrotate during a stop) met node's default: exit 129, its lines lost.
        // A reopen of a closed log does nothing.
        try {
          await accessLog?.close();
        } finally {
          process.off("SIGHUP", onHangup);
        }
        // A worker's channel to the primary would keep it alive after serving stopped.
        if (cluster.isWorker) process.disconnect?.();
      }
    });
}

/** A repeated failure that stopped (server/repeated-errors.ts), as serve says it. */
function noLonger(r: RecoveredError): string {
  return `${r.code} no longer happens (${r.times} time${r.times === 1 ? "" : "s"} since ${r.since.toISOString()})`;
}

/** What serve says when the access log's thread failed, or could not be made: the server goes on, the log does not. */
function accessLogFailure(e: Error): string {
  if ((e as { code?: string }).code !== "ERR_WORKER_INIT_FAILED") return `jpki serve: the access log's thread failed and stopped (${e.message}); lines are counted as dropped`;
  return (
    `jpki serve: the access log's thread could not be started (ERR_WORKER_INIT_FAILED: the process is at its thread limit, ` +
    `a container's pids.max or systemd's TasksMax); no line is written, each is counted in jpki_access_log_dropped_total. ` +
    `Raise the limit, or pass --access-log off`
  );
}

/**
 * The OCSP responder keys' passphrase: JPKI_OCSP_PASSPHRASE, else the CA passphrase. A serve-only process
 * (--no-schedule, a worker) without either answers no OCSP and says so, rather than refusing to serve CRLs.
 */
async function responderPassphrase(ctx: Context, io: Io, o: { enabled: boolean; caPassphrase: string | undefined; serveHere: boolean }): Promise<string | undefined> {
  if (!o.enabled) return undefined;
  if (io.env.JPKI_OCSP_PASSPHRASE) return io.env.JPKI_OCSP_PASSPHRASE;
  if (o.caPassphrase) return o.caPassphrase;
  if (!o.serveHere) return undefined;
  try {
    return await ctx.caPassphrase();
  } catch (e) {
    if (!(e instanceof JpkiError) || e.code !== "ERR_PASSPHRASE_MISSING") throw e;
    if (!cluster.isWorker) ctx.out.info("jpki serve: no OCSP: set JPKI_OCSP_PASSPHRASE (or the CA passphrase) to answer OCSP requests");
    return undefined;
  }
}

/**
 * The environment of a worker of --workers N: the primary's (cluster.fork adds these to it; undefined removes one),
 * without the CA secrets a worker never reads. Workers only serve: the primary runs the CRL schedule with the CA
 * keys, and a worker opens nothing but the OCSP responder keys, under JPKI_OCSP_PASSPHRASE when it is set. Then
 * neither the CA passphrase nor the token PIN goes to the processes that face the network (README: "so the HTTP
 * processes need not hold the CA passphrase"); they inherited both, readable in /proc/PID/environ and from the
 * memory of any worker an attacker gets into. Without JPKI_OCSP_PASSPHRASE the responder keys are wrapped under the
 * CA passphrase, so a worker needs it, and the PIN keeps it from prompting for one in a token workspace.
 */
export function workerEnv(env: NodeJS.ProcessEnv): Record<string, undefined> {
  return env.JPKI_OCSP_PASSPHRASE ? { JPKI_PASSPHRASE: undefined, JPKI_PKCS11_PIN: undefined } : {};
}

/**
 * The primary of --workers N: forks the HTTP processes (each runs this same command and serves; the listening
 * socket is shared and the kernel spreads connections), restarts one that dies, and stops them all on the
 * signal.
 */
export async function runWorkers(ctx: Context, n: number, signal: AbortSignal, where: string, env: Record<string, undefined>): Promise<void> {
  // Each worker accepts on the shared socket itself, instead of the primary accepting and handing over.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Stopped before the first fork (SIGTERM while the CA keys opened): no worker is started only to be stopped.
  if (signal.aborted) return;
  let stopping = false;
  const killed = new Set<Worker>();
  // Said once every first worker listens, not when they are forked: startServe-like scripts (and operators)
  // take the line for "ready", and a request sent on it was refused while the workers still opened the store.
  let waiting = n;
  // Workers that ended before they listened, in a row since one last did: each waits longer for its successor.
  // At the process limit (a container's pids.max, systemd's TasksMax) a fork fails (EAGAIN), or the new process
  // aborts before any code of ours runs (node cannot make its own threads): replaced at once, that was a fork every
  // few milliseconds, each with a native stack trace on stderr, for as long as the limit held.
  let early = 0;
  const pending = new Set<NodeJS.Timeout>();
  const replace = (what: string, listened: boolean) => {
    const delay = listened ? 0 : Math.min(FORK_RETRY_MAX_MS, FORK_RETRY_MS * 2 ** early++);
    ctx.out.info(`jpki serve: ${what}; starting another${delay ? ` in ${delay / 1000} s` : ""}`);
    if (!delay) return fork();
    const t = setTimeout(() => {
      pending.delete(t);
      if (!stopping) fork();
    }, delay);
    pending.add(t);
  };
  const fork = () => {
    const w = cluster.fork(env);
    // One stopped before it listened served nothing (and its signal handlers may not have been set yet).
    let listened = false;
    w.once("listening", () => {
      listened = true;
      listening.add(w);
      if (owedHangup.delete(w)) w.process.kill("SIGHUP");
      early = 0;
      if (--waiting === 0 && !stopping) ctx.out.info(`jpki serve: ${n} workers listening on ${where} (primary pid ${process.pid}); SIGTERM stops`);
    });
    // A fork that failed emits this and no 'exit' (unheard, it ended the primary with node's stack trace). Any other
    // error of a worker (its channel: EPIPE to one that just died) is followed by its 'exit', which replaces it.
    // node's cluster drops a failed fork from cluster.workers itself: its IPC channel closes right after ('disconnect').
    w.on("error", (e: NodeJS.ErrnoException) => {
      if (stopping || !e.syscall?.startsWith("spawn")) return;
      replace(`a worker could not be started (${e.code ?? e.message}${e.code === "EAGAIN" ? ": the process limit, a container's pids.max or systemd's TasksMax" : ""})`, false);
    });
    w.on("exit", (code, sig) => {
      if (!stopping) {
        replace(`worker ${w.process.pid} exited (${sig ?? code})${listened ? "" : " before it listened"}`, listened);
      } else if ((sig || code) && listened && !killed.has(w)) {
        // A stop that did not end cleanly (killed by a signal, or failed): what it had not yet written is lost.
        ctx.out.info(`jpki serve: worker ${w.process.pid} ended by ${sig ?? `exit code ${code}`} while stopping: its last access-log lines and fetch records may be lost`);
      }
    });
  };
  for (let i = 0; i < n; i++) fork();
  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
  stopping = true;
  for (const t of pending) clearTimeout(t);
  const live = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
  await Promise.all(
    live.map(
      (w) =>
        new Promise<void>((resolve) => {
          // A worker gets STOP_GRACE_MS to finish its responses and close its store; then it is killed, so a
          // worker stuck in shutdown (seen once on PostgreSQL under load) never keeps the service from stopping.
          const deadline = setTimeout(() => {
            ctx.out.info(`jpki serve: worker ${w!.process.pid} did not stop within ${STOP_GRACE_MS / 1000} s; killing it`);
            killed.add(w!);
            w!.process.kill("SIGKILL");
          }, STOP_GRACE_MS);
          w!.once("exit", () => {
            clearTimeout(deadline);
            resolve();
          });
          w!.process.kill("SIGTERM");
        }),
    ),
  );
}

/**
 * The workers whose SIGHUP handler is set: those that listen (a worker sets it before it listens). One still
 * loading has none — in node's own start nothing can catch a signal — and died of the SIGHUP passed on (129), to
 * be replaced a second later. It gets it once it listens instead: it may have opened its access log by the
 * name logrotate just moved away.
 */
const listening = new WeakSet<Worker>();
const owedHangup = new WeakSet<Worker>();

/** The primary's SIGHUP, passed on to each worker: at once to those that listen, to the others when they do. */
function passHangup(): void {
  for (const w of Object.values(cluster.workers ?? {})) {
    if (!w || w.isDead()) continue;
    if (listening.has(w)) w.process.kill("SIGHUP");
    else owedHangup.add(w);
  }
}

const STOP_GRACE_MS = 10_000;
/** The wait before replacing a worker that ended before it listened, doubled for each such worker in a row, up to the max. */
export const FORK_RETRY_MS = 1000;
const FORK_RETRY_MAX_MS = 60_000;
