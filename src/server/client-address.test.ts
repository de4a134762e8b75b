import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { clientAddressOf, forwardedClient, trustedProxyOf } from "./client-address.js";

const req = (remoteAddress: string | undefined, forwardedFor?: string | string[]) =>
  ({ socket: { remoteAddress }, headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor } }) as unknown as IncomingMessage;

describe("the client address behind trusted proxies (X-Forwarded-For)", () => {
  it("is the peer address when no proxy is trusted, whatever the request says", () => {
    const of = clientAddressOf([]);
    expect(of(req("192.0.2.7", "198.51.100.1"))).toBe("192.0.2.7");
    expect(of(req(undefined, "198.51.100.1"))).toBe("");
  });

  it("ignores X-Forwarded-For from a peer that is not listed (anyone can send it)", () => {
    const of = clientAddressOf(["10.0.0.0/8", "fd00::/8"]);
    expect(of(req("192.0.2.7", "198.51.100.1"))).toBe("192.0.2.7");
    expect(of(req("11.0.0.1", "198.51.100.1"))).toBe("11.0.0.1");
    expect(of(req("fe00::1", "198.51.100.1"))).toBe("fe00::1");
    expect(of(req(undefined, "198.51.100.1"))).toBe("");
  });

  it("takes, from a listed peer, the rightmost entry that is not a listed proxy", () => {
    const of = clientAddressOf(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);
    expect(of(req("10.1.2.3", "198.51.100.1"))).toBe("198.51.100.1");
    // a client's own entries (left) do not hide the address the proxy saw it at
    expect(of(req("10.1.2.3", "203.0.113.66, 198.51.100.1"))).toBe("198.51.100.1");
    // proxies behind proxies are skipped
    expect(of(req("10.1.2.3", "198.51.100.1, 10.9.9.9,127.0.0.1 ,  fd00::5"))).toBe("198.51.100.1");
    expect(of(req("127.0.0.1", "2001:db8::1, 10.0.0.1"))).toBe("2001:db8::1");
    // a dual-stack socket's IPv4 peer, and an IPv6 peer in a listed range
    expect(of(req("::ffff:127.0.0.1", "198.51.100.1"))).toBe("198.51.100.1");
    expect(of(req("fd12::1", "198.51.100.1"))).toBe("198.51.100.1");
    // headers sent twice, which node joins with ", ": read as one list
    expect(of(req("10.1.2.3", "203.0.113.66, 198.51.100.1, 10.0.0.2"))).toBe("198.51.100.1");
  });

  it("falls back to the peer for a header that does not parse, names only trusted proxies, or is missing", () => {
    const of = clientAddressOf(["10.0.0.0/8"]);
    for (const bad of ["", " ", "unknown", "198.51.100.1:4711", "[2001:db8::1]", "198.51.100.1,", "198.51.100.1,,10.0.0.2", "10.0.0.2, 10.0.0.3", "not-an-ip, 10.0.0.2", "198.51.100.1 198.51.100.2"]) {
      expect(of(req("10.1.2.3", bad)), JSON.stringify(bad)).toBe("10.1.2.3");
    }
    expect(of(req("10.1.2.3"))).toBe("10.1.2.3");
    // only the entries read up to the client need to parse: what the client wrote left of it is not looked at
    expect(of(req("10.1.2.3", "whatever, 198.51.100.1"))).toBe("198.51.100.1");
  });

  it("trustedProxyOf holds the listed addresses and ranges (a dual-stack socket's IPv4 peer as its IPv4 address), none with no list", () => {
    const trusted = trustedProxyOf(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);
    expect(["10.1.2.3", "127.0.0.1", "::ffff:127.0.0.1", "fd12::1"].map(trusted)).toEqual([true, true, true, true]);
    expect(["11.0.0.1", "127.0.0.2", "fe00::1", "", "unknown"].map(trusted)).toEqual([false, false, false, false, false]);
    expect(trustedProxyOf([])("127.0.0.1")).toBe(false);
  });

  it("forwardedClient walks the list from the right", () => {
    const trusted = (a: string) => a.startsWith("10.");
    expect(forwardedClient("1.1.1.1, 2.2.2.2, 10.0.0.1", trusted)).toBe("2.2.2.2");
    expect(forwardedClient("10.0.0.1", trusted)).toBeUndefined();
    expect(forwardedClient("", trusted)).toBeUndefined();
  });
});
