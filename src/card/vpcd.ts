/**
 * The vpcd bridge: puts a card (any CardTerminal) into pcscd's virtual reader, so real middleware (OpenSC,
 * anything PC/SC) talks to it. vsmartcard's vpcd (virtual PCD, 仮想カードリーダ) is a pcscd reader driver that
 * listens on TCP (35963 by default) for a "virtual ICC"; the card connects to it as a client. Protocol
 * (vsmartcard `virtualsmartcard/src/vpcd/vpcd.c`): every message either way is a 2-byte big-endian length and that
 * many bytes. From vpcd, a 1-byte message is a control: 00 power off, 01 power on, 02 reset — no answer — and
 * 04 "ATR?", answered with the ATR; anything longer is a command APDU, answered with the response APDU.
 * vpcd never sends the next message before it has the answer to the last, but TCP may split or join them, so
 * frames are reassembled here and handled strictly one after another.
 *
 * Never logs what passes: a VERIFY carries a PIN. Events report connection state only.
 */
import net from "node:net";
import type { CardTerminal } from "./terminal.js";

/** vpcd's default port (CHANNELID 0x8C7B in Debian's /etc/reader.conf.d/vpcd). */
export const VPCD_DEFAULT_PORT = 35963;
/**
 * An IPv4 literal, not "localhost": vpcd binds INADDR_ANY (IPv4 only), and "localhost" may resolve to ::1 first.
 */
export const VPCD_DEFAULT_HOST = "127.0.0.1";

/** The one-byte control messages vpcd sends (vpcd.h VPCD_CTRL_*). */
export const VPCD_CONTROL = { powerOff: 0x00, powerOn: 0x01, reset: 0x02, atr: 0x04 } as const;

/** Status word 6F00 (no precise diagnosis): the answer if the card breaks its promise never to throw. */
const SW_NO_PRECISE_DIAGNOSIS = Uint8Array.of(0x6f, 0x00);

/** Encodes one message: 2-byte big-endian length, then the payload (at most 65535 bytes, the field's range). */
export function encodeVpcdFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > 0xffff) throw new RangeError(`a vpcd frame carries at most 65535 bytes, not ${payload.length}`);
  const out = new Uint8Array(2 + payload.length);
  out[0] = payload.length >> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, 2);
  return out;
}

/**
 * Reassembles frames from TCP chunks cut anywhere (inside the length field, inside a payload, several frames in
 * one chunk). Memory is bounded by the protocol: a length field cannot announce more than 65535 bytes, so an
 * incomplete frame never holds more than that; complete frames are handed out at once.
 */
export class VpcdFrameReader {
  private pending: Uint8Array = new Uint8Array(0);

  /** Adds a chunk; returns every frame it completes, in order (copies, safe to keep). */
  push(chunk: Uint8Array): Uint8Array[] {
    const data = this.pending.length === 0 ? chunk : concat(this.pending, chunk);
    const frames: Uint8Array[] = [];
    let at = 0;
    while (data.length - at >= 2) {
      const length = (data[at]! << 8) | data[at + 1]!;
      if (data.length - at - 2 < length) break;
      frames.push(data.slice(at + 2, at + 2 + length));
      at += 2 + length;
    }
    this.pending = data.slice(at);
    return frames;
  }

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * What one frame from vpcd does to the card, and the answer to send (undefined: none). Pure apart from the card:
 * the bridge and the tests share it.
 */
export async function answerVpcdFrame(terminal: CardTerminal, payload: Uint8Array): Promise<Uint8Array | undefined> {
  if (payload.length === 0) return undefined; // vpcd never sends one; nothing to do, nothing to answer
  if (payload.length === 1) {
    try {
      switch (payload[0]) {
        case VPCD_CONTROL.powerOff:
          terminal.powerOff();
          return undefined;
        case VPCD_CONTROL.powerOn:
          terminal.powerOn();
          return undefined;
        case VPCD_CONTROL.reset:
          terminal.reset();
          return undefined;
        case VPCD_CONTROL.atr:
          return terminal.atr();
        default:
          // Unknown control: vsmartcard's own virtual card ignores it too, and vpcd does not wait for an answer.
          return undefined;
      }
    } catch {
      // A card that cannot say its ATR is no card: an empty answer makes vpcd treat the slot as empty.
      return payload[0] === VPCD_CONTROL.atr ? new Uint8Array(0) : undefined;
    }
  }
  // 2 and 3 bytes are too short for an APDU header: the card says so with a status word (6700), like any garbage.
  try {
    return await terminal.transmit(payload);
  } catch {
    return SW_NO_PRECISE_DIAGNOSIS;
  }
}

/** What the bridge reports: connection state only, never frame contents. */
export type VpcdEvent =
  | { type: "connected"; host: string; port: number }
  | { type: "disconnected"; host: string; port: number; frames: number }
  | { type: "waiting"; host: string; port: number; retryInMs: number; reason: string };

export interface VpcdBridgeOptions {
  terminal: CardTerminal;
  host?: string;
  port?: number;
  /** Stops the bridge: the connection closes, the card is powered off, serveVpcd resolves. */
  signal?: AbortSignal;
  /** First reconnect delay; doubles up to maxRetryMs, back to the first after a connection that worked. */
  retryMs?: number;
  maxRetryMs?: number;
  onEvent?: (event: VpcdEvent) => void;
}

/**
 * Serves the card to vpcd until the signal aborts. While vpcd is not up (pcscd not started, restarting), it
 * retries with backoff; when the connection drops, the card loses power (a card pulled from a reader forgets its
 * session: verified PINs, selected files) and the bridge reconnects. Never rejects for anything vpcd sends.
 */
export async function serveVpcd(options: VpcdBridgeOptions): Promise<void> {
  const host = options.host ?? VPCD_DEFAULT_HOST;
  const port = options.port ?? VPCD_DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`vpcd port ${port}: give 1–65535`);
  const firstRetry = options.retryMs ?? 200;
  const maxRetry = Math.max(firstRetry, options.maxRetryMs ?? 5_000);
  const signal = options.signal;
  const onEvent = options.onEvent;
  // A listener that throws (a closed log stream) must not take the bridge down from inside a socket callback.
  const emit = (e: VpcdEvent) => {
    try {
      onEvent?.(e);
    } catch {
      // the event is lost; the card keeps serving
    }
  };
  let retry = firstRetry;
  while (!signal?.aborted) {
    const outcome = await connectOnce(options.terminal, host, port, signal, emit);
    if (signal?.aborted) break;
    if (outcome.served) retry = firstRetry;
    emit({ type: "waiting", host, port, retryInMs: retry, reason: outcome.reason });
    await sleep(retry, signal);
    retry = Math.min(maxRetry, retry * 2);
  }
}

/** Idle time before the first TCP keepalive probe of the connection to vpcd (the kernel's count and interval follow). */
export const VPCD_KEEPALIVE_MS = 30_000;

/** One TCP connection's life: resolves when it ends, with whether any frame was served and why it ended. */
function connectOnce(
  terminal: CardTerminal,
  host: string,
  port: number,
  signal: AbortSignal | undefined,
  emit: (e: VpcdEvent) => void,
): Promise<{ served: boolean; reason: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const reader = new VpcdFrameReader();
    const queue: Uint8Array[] = [];
    let connected = false;
    let frames = 0;
    let working = false;
    let reason = "connection closed";
    let finished = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener("abort", onAbort);
      if (connected) {
        try {
          terminal.powerOff();
        } catch {
          // The card's own failure to power down must not stop the bridge from reconnecting.
        }
        emit({ type: "disconnected", host, port, frames });
      }
      resolve({ served: frames > 0, reason });
    };
    const onAbort = () => {
      reason = "stopped";
      socket.destroy();
    };
    signal?.addEventListener("abort", onAbort, { once: true });

    // One frame at a time, in arrival order: answers must go back in the order vpcd asked.
    const drain = async () => {
      if (working) return;
      working = true;
      try {
        for (let payload = queue.shift(); payload; payload = queue.shift()) {
          const answer = await answerVpcdFrame(terminal, payload);
          frames++;
          if (socket.destroyed) return;
          if (answer && !socket.write(encodeVpcdFrame(answer.length > 0xffff ? SW_NO_PRECISE_DIAGNOSIS : answer))) {
            // The peer does not read its answers (vpcd reads each before it sends the next command): neither read
            // nor answer more until it does. Carrying on buffered every answer in memory — a peer sending 9-byte
            // READ BINARYs it never reads grew this process by a kilobyte or more each, without bound.
            socket.pause();
            await new Promise<void>((resolve) => {
              const done = () => {
                socket.off("drain", done);
                socket.off("close", done);
                resolve();
              };
              socket.on("drain", done);
              socket.on("close", done);
            });
            if (socket.destroyed) return;
          }
          // vpcd waits for each answer, so a backlog means a misbehaving peer: stop reading until it is worked off.
          if (queue.length < 16 && socket.isPaused()) socket.resume();
        }
      } finally {
        working = false;
      }
    };

    socket.setNoDelay(true);
    // vpcd only ever sends (a command) and jpki only answers: a vpcd host that died or dropped off the network
    // without a FIN or RST left this connection waited on for ever, the bridge never reconnecting to the vpcd that
    // came back. TCP keepalive probes an idle connection and ends it when the peer is gone (found by a helper).
    socket.setKeepAlive(true, VPCD_KEEPALIVE_MS);
    socket.on("connect", () => {
      connected = true;
      emit({ type: "connected", host, port });
    });
    socket.on("data", (chunk: Buffer) => {
      queue.push(...reader.push(chunk));
      if (queue.length >= 16) socket.pause();
      void drain();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      reason = e.code ?? e.message;
    });
    socket.on("close", finish);
    if (signal?.aborted) onAbort();
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
