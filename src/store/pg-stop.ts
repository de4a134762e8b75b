/**
 * Ending a wait on the PostgreSQL server when the caller stops (a daemon's SIGTERM while its store opens).
 *
 * node-postgres takes no AbortSignal. A connection still being made is ended by closing its socket, as its own
 * connect timeout does. A statement waiting on a lock is ended on both sides: the server is sent a CancelRequest
 * (the frontend/backend protocol's "Canceling Requests in Progress": a new connection carrying the backend's process id
 * and secret key, no login) — a backend waiting on a lock never reads its socket, so closing ours alone left it
 * waiting, holding a connection slot, until lock_timeout — and our socket is closed, so the caller's promise
 * settles at once whether or not the cancel arrives.
 */
import { connect, type Socket } from "node:net";
import type { Client } from "pg";

/** The CancelRequest code (the protocol's "Message Formats": 1234 in the high 16 bits, 5678 in the low). */
const CANCEL_REQUEST_CODE = 80877102;
/** How long a CancelRequest may take to be sent before it is given up (it is best effort: our socket closes anyway). */
const CANCEL_SEND_MS = 2_000;

/** What node-postgres keeps of the server's BackendKeyData; not in its type declarations. */
interface BackendKey {
  readonly processID: number | null;
  readonly secretKey: number | null;
}

/**
 * Asks the server to cancel what `client`'s backend runs (a lock wait), best effort: resolves once the request is
 * sent or could not be (never rejects). Does nothing for a client that has no backend yet.
 */
export function sendCancelRequest(client: Client): Promise<void> {
  const { processID, secretKey } = client as unknown as BackendKey;
  if (processID === null || secretKey === null || processID === undefined || secretKey === undefined) return Promise.resolve();
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  message.writeInt32BE(processID, 8);
  message.writeInt32BE(secretKey, 12);
  // The same address the client reached: a Unix socket directory (host starting with /) or host and port.
  const socket: Socket = client.host?.startsWith("/") ? connect(`${client.host}/.s.PGSQL.${client.port}`) : connect(client.port, client.host);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, CANCEL_SEND_MS);
    timer.unref();
    socket.once("error", done);
    socket.once("close", done);
    // the server reads the request and closes the connection without a reply
    socket.once("connect", () => socket.end(message));
  });
}

/** Closes `client`'s socket, as node-postgres's connect timeout does: what it was waiting for fails at once. */
export function dropConnection(client: Client): void {
  client.connection.stream.destroy();
}
