import net from "node:net";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CardTerminal } from "./terminal.js";
import { VPCD_CONTROL, VPCD_KEEPALIVE_MS, VpcdFrameReader, answerVpcdFrame, encodeVpcdFrame, serveVpcd, type VpcdEvent } from "./vpcd.js";

const ATR = Uint8Array.from([0x3b, 0xe0, 0x00, 0xff, 0x81, 0x31, 0xfe, 0x45, 0x14]);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));

/** A card that records what reaches it and echoes each APDU's INS back with 9000 (answers are distinguishable). */
class RecordingCard implements CardTerminal {
  readonly calls: string[] = [];
  throwOnTransmit = false;
  atr(): Uint8Array {
    this.calls.push("atr");
    return ATR;
  }
  powerOff(): void {
    this.calls.push("off");
  }
  powerOn(): void {
    this.calls.push("on");
  }
  reset(): void {
    this.calls.push("reset");
  }
  async transmit(command: Uint8Array): Promise<Uint8Array> {
    this.calls.push(`apdu ${hex(command)}`);
    if (this.throwOnTransmit) throw new Error("card bug");
    // An answer that takes a turn of the event loop, as signing does, so ordering is really exercised.
    await new Promise((r) => setImmediate(r));
    return command.length < 4 ? bytes("6700") : Uint8Array.of(command[1]!, 0x90, 0x00);
  }
}

/** vpcd's side: a TCP server that accepts the card and lets the test send raw bytes and read whole frames. */
class FakeVpcd {
  private server = net.createServer();
  private sockets: net.Socket[] = [];
  private readers = new Map<net.Socket, { reader: VpcdFrameReader; frames: Uint8Array[]; waiters: Array<() => void> }>();
  private connectionWaiters: Array<(s: net.Socket) => void> = [];
  port = 0;

  async listen(port = 0): Promise<this> {
    this.server.on("connection", (s) => {
      this.sockets.push(s);
      const state = { reader: new VpcdFrameReader(), frames: [] as Uint8Array[], waiters: [] as Array<() => void> };
      this.readers.set(s, state);
      s.on("data", (d) => {
        state.frames.push(...state.reader.push(d));
        state.waiters.splice(0).forEach((w) => w());
      });
      s.on("error", () => undefined);
      this.connectionWaiters.splice(0).forEach((w) => w(s));
    });
    await new Promise<void>((r) => this.server.listen(port, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  nextConnection(): Promise<net.Socket> {
    const open = this.sockets.find((s) => !s.destroyed && !this.taken.has(s));
    if (open) {
      this.taken.add(open);
      return Promise.resolve(open);
    }
    return new Promise((r) =>
      this.connectionWaiters.push((s) => {
        this.taken.add(s);
        r(s);
      }),
    );
  }
  private taken = new Set<net.Socket>();

  /** The next n frames the card sent on this connection. */
  async frames(s: net.Socket, n: number): Promise<string[]> {
    const state = this.readers.get(s)!;
    while (state.frames.length < n) await new Promise<void>((r) => state.waiters.push(r));
    return state.frames.splice(0, n).map(hex);
  }

  async close(): Promise<void> {
    this.sockets.forEach((s) => s.destroy());
    await new Promise((r) => this.server.close(r));
  }
}

const stops: AbortController[] = [];
const vpcds: FakeVpcd[] = [];
afterEach(async () => {
  stops.splice(0).forEach((c) => c.abort());
  await Promise.all(vpcds.splice(0).map((v) => v.close()));
});

function bridge(card: CardTerminal, port: number, events: VpcdEvent[] = []) {
  const stop = new AbortController();
  stops.push(stop);
  const done = serveVpcd({ terminal: card, port, signal: stop.signal, retryMs: 5, maxRetryMs: 20, onEvent: (e) => events.push(e) });
  return { stop, done };
}

describe("vpcd framing", () => {
  it("encodes a 2-byte big-endian length before the payload, up to 65535 bytes", () => {
    expect(hex(encodeVpcdFrame(bytes("04")))).toBe("000104");
    expect(hex(encodeVpcdFrame(new Uint8Array(0x1234)).subarray(0, 2))).toBe("1234");
    expect(() => encodeVpcdFrame(new Uint8Array(0x10000))).toThrow(RangeError);
  });

  it("reassembles frames cut anywhere, and several frames in one chunk", () => {
    const stream = Buffer.concat([encodeVpcdFrame(bytes("01")), encodeVpcdFrame(bytes("00a4040c0ad392f000260100000001")), encodeVpcdFrame(bytes("04"))]);
    const whole = new VpcdFrameReader().push(stream).map(hex);
    expect(whole).toEqual(["01", "00a4040c0ad392f000260100000001", "04"]);
    // Every way of cutting the stream in two, and byte by byte, gives the same frames.
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new VpcdFrameReader();
      expect([...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))].map(hex)).toEqual(whole);
    }
    const r = new VpcdFrameReader();
    const got: string[] = [];
    for (const b of stream) got.push(...r.push(Uint8Array.of(b)).map(hex));
    expect(got).toEqual(whole);
    expect(r.buffered).toBe(0);
  });

  it("holds an incomplete frame, however large it announces itself, without handing out anything", () => {
    const r = new VpcdFrameReader();
    expect(r.push(bytes("ffff00a4"))).toEqual([]);
    expect(r.buffered).toBe(4);
    expect(r.push(new Uint8Array(0xffff - 2)).map((f) => f.length)).toEqual([0xffff]);
    expect(r.buffered).toBe(0);
  });
});

describe("what a frame does to the card", () => {
  it("maps the control bytes to power off, on, reset and ATR; only the ATR is answered", async () => {
    const card = new RecordingCard();
    expect(await answerVpcdFrame(card, Uint8Array.of(VPCD_CONTROL.powerOn))).toBeUndefined();
    expect(await answerVpcdFrame(card, Uint8Array.of(VPCD_CONTROL.reset))).toBeUndefined();
    expect(hex((await answerVpcdFrame(card, Uint8Array.of(VPCD_CONTROL.atr)))!)).toBe(hex(ATR));
    expect(await answerVpcdFrame(card, Uint8Array.of(VPCD_CONTROL.powerOff))).toBeUndefined();
    expect(await answerVpcdFrame(card, Uint8Array.of(0x03))).toBeUndefined();
    expect(await answerVpcdFrame(card, new Uint8Array(0))).toBeUndefined();
    expect(card.calls).toEqual(["on", "reset", "atr", "off"]);
  });

  it("passes anything longer to the card as an APDU, garbage included, and answers 6F00 if the card throws", async () => {
    const card = new RecordingCard();
    expect(hex((await answerVpcdFrame(card, bytes("00b0")))!)).toBe("6700");
    expect(hex((await answerVpcdFrame(card, bytes("0020008004313233")))!)).toBe("209000");
    card.throwOnTransmit = true;
    expect(hex((await answerVpcdFrame(card, bytes("802a0080")))!)).toBe("6f00");
  });
});

describe("the bridge over TCP", () => {
  it("answers in order over one connection, with frames split and joined by TCP", async () => {
    const vpcd = await new FakeVpcd().listen();
    vpcds.push(vpcd);
    const card = new RecordingCard();
    bridge(card, vpcd.port);
    const s = await vpcd.nextConnection();
    const stream = Buffer.concat([
      encodeVpcdFrame(bytes("01")),
      encodeVpcdFrame(bytes("04")),
      encodeVpcdFrame(bytes("00a4040c0ad392f000260100000001")),
      encodeVpcdFrame(bytes("00b0000004")),
      encodeVpcdFrame(bytes("02")),
      encodeVpcdFrame(bytes("04")),
    ]);
    // Byte by byte, then the rest in one write: the card sees each frame once, whole.
    for (const b of stream.subarray(0, 9)) s.write(Uint8Array.of(b));
    s.write(stream.subarray(9));
    expect(await vpcd.frames(s, 4)).toEqual([hex(ATR), "a49000", "b09000", hex(ATR)]);
    expect(card.calls).toEqual(["on", "atr", "apdu 00a4040c0ad392f000260100000001", "apdu 00b0000004", "reset", "atr"]);
  });

  // A vpcd host gone without a FIN or RST (powered off, unplugged) left the connection waited on for ever: vpcd
  // only sends, and sends nothing while no application uses the reader.
  it("sets TCP keepalive on its connection to vpcd, so a peer gone silently is found out", async () => {
    const spy = vi.spyOn(net.Socket.prototype, "setKeepAlive");
    try {
      const vpcd = await new FakeVpcd().listen();
      vpcds.push(vpcd);
      bridge(new RecordingCard(), vpcd.port);
      await vpcd.nextConnection();
      expect(spy).toHaveBeenCalledWith(true, VPCD_KEEPALIVE_MS);
    } finally {
      spy.mockRestore();
    }
  });

  it("waits for vpcd to come up, powers the card off when it goes away, and reconnects", async () => {
    // A port nobody listens on yet: take one, release it, start vpcd there later.
    const probe = await new FakeVpcd().listen();
    const port = probe.port;
    await probe.close();
    const card = new RecordingCard();
    const events: VpcdEvent[] = [];
    const { stop, done } = bridge(card, port, events);
    // The bridge retries until vpcd listens; wait for at least one refusal so the retry path really ran.
    while (!events.some((e) => e.type === "waiting")) await new Promise((r) => setTimeout(r, 5));
    const vpcd = await new FakeVpcd().listen(port);
    vpcds.push(vpcd);
    const first = await vpcd.nextConnection();
    first.write(Buffer.concat([encodeVpcdFrame(bytes("01")), encodeVpcdFrame(bytes("04"))]));
    expect(await vpcd.frames(first, 1)).toEqual([hex(ATR)]);
    first.destroy(); // pcscd restarts
    const second = await vpcd.nextConnection();
    second.write(encodeVpcdFrame(bytes("04")));
    expect(await vpcd.frames(second, 1)).toEqual([hex(ATR)]);
    expect(card.calls).toEqual(["on", "atr", "off", "atr"]);
    stop.abort();
    await done;
    expect(card.calls.at(-1)).toBe("off");
    expect(events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1])).toEqual(["waiting", "connected", "disconnected", "waiting", "connected", "disconnected"]);
  });

  it("survives random bytes from vpcd and a card that throws, and still answers afterwards", async () => {
    const vpcd = await new FakeVpcd().listen();
    vpcds.push(vpcd);
    const card = new RecordingCard();
    card.throwOnTransmit = true;
    bridge(card, vpcd.port);
    const s = await vpcd.nextConnection();
    // Garbage that parses as frames of odd sizes (2, 3, 300 bytes), then a well-formed ATR request.
    s.write(Buffer.concat([encodeVpcdFrame(bytes("ffff")), encodeVpcdFrame(bytes("deadbe")), encodeVpcdFrame(new Uint8Array(300).fill(0xa5)), encodeVpcdFrame(bytes("04"))]));
    expect(await vpcd.frames(s, 4)).toEqual(["6f00", "6f00", "6f00", hex(ATR)]);
  });

  it("a peer that sends commands but reads no answers is not answered further until it reads: memory stays bounded", async () => {
    // More answers than the kernel's socket buffers can take on both sides (the most they may grow to), twice over:
    // what goes beyond that is held in this process unless the bridge waits.
    const maxOf = (f: string) => Number(readFileSync(f, "utf8").trim().split(/\s+/).pop());
    let kernel = 64 << 20;
    try {
      kernel = maxOf("/proc/sys/net/ipv4/tcp_wmem") + maxOf("/proc/sys/net/ipv4/tcp_rmem");
    } catch {
      // not Linux: 64 MiB is more than either side keeps by default
    }
    const big = new Uint8Array(60_000).fill(0x41);
    const n = 2 * Math.ceil(kernel / big.length) + 100;
    let answered = 0;
    const card: CardTerminal = { atr: () => ATR, powerOff() {}, powerOn() {}, reset() {}, transmit: async () => (answered++, big) };
    const server = net.createServer();
    const peer = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    let s: net.Socket | undefined;
    try {
      bridge(card, (server.address() as net.AddressInfo).port);
      s = await peer;
      s.on("error", () => undefined);
      s.pause(); // reads nothing
      s.write(Buffer.concat(Array.from({ length: n }, () => encodeVpcdFrame(bytes("00b0000000")))));
      // Until the answers stop coming: the socket buffers fill, then the bridge must wait.
      for (let last = -1; answered !== last; ) {
        last = answered;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(answered).toBeLessThan(n / 2); // it answered all n (n × 60 kB held in this process) before
      s.on("data", () => undefined).resume(); // reads (and drops) from now on: every command is answered
      while (answered < n) await new Promise((r) => setTimeout(r, 20));
      expect(answered).toBe(n);
    } finally {
      s?.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("keeps serving when the event listener throws", async () => {
    const vpcd = await new FakeVpcd().listen();
    vpcds.push(vpcd);
    const stop = new AbortController();
    stops.push(stop);
    void serveVpcd({ terminal: new RecordingCard(), port: vpcd.port, signal: stop.signal, onEvent: () => { throw new Error("log closed"); } });
    const s = await vpcd.nextConnection();
    s.write(encodeVpcdFrame(bytes("04")));
    expect(await vpcd.frames(s, 1)).toEqual([hex(ATR)]);
  });

  it("stops on abort even while vpcd is unreachable", async () => {
    const probe = await new FakeVpcd().listen();
    const port = probe.port;
    await probe.close();
    const events: VpcdEvent[] = [];
    const { stop, done } = bridge(new RecordingCard(), port, events);
    while (!events.some((e) => e.type === "waiting")) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    await done;
    expect(events.every((e) => e.type === "waiting")).toBe(true);
  });
});
