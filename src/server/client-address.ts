/**
 * The client address of a request behind reverse proxies: X-Forwarded-For (the de facto header; RFC 7239's
 * Forwarded "for=" standardises the same idea) believed only from the proxies the workspace lists in
 * `trustedProxies`.
 *
 * Each proxy appends the address it was connected from, so the list is read from the right: the last entry was
 * written by the proxy that is our TCP peer, and every entry left of the first address not of a listed proxy was
 * written by that client or by proxies it chose, so it may say anything. The client is therefore the rightmost
 * entry that is not a listed proxy. A header that does not parse (an entry that is no IP address, such as
 * "unknown" or one with a port), or that names only listed proxies, gives the peer address instead: the proxy
 * itself is then the client, as without this setting. A peer that is not listed is its own client whatever it
 * sends: anyone can write the header.
 *
 * Computed only where it is needed (a refusal counted against its client, an access-log line), never on the
 * 304 path; with no trusted proxies it is `req.socket.remoteAddress` and costs nothing more.
 */
import type { IncomingMessage } from "node:http";
import { BlockList, isIP } from "node:net";

/** The address a request is counted and logged under ("" when the socket no longer knows its peer). */
export type ClientAddress = (req: IncomingMessage) => string;

const peerAddress: ClientAddress = (req) => req.socket.remoteAddress ?? "";

/**
 * The client address of requests, given the trusted proxies (`trustedProxies`, already validated by
 * parseConfig: addresses and CIDR ranges).
 */
export function clientAddressOf(trustedProxies: readonly string[]): ClientAddress {
  if (trustedProxies.length === 0) return peerAddress;
  const isTrusted = trustedProxyOf(trustedProxies);
  return (req) => {
    const peer = req.socket.remoteAddress ?? "";
    if (!isTrusted(peer)) return peer;
    // Node joins repeated X-Forwarded-For headers with ", ", which is how the list reads as one (RFC 9110 §5.3).
    const forwarded = req.headers["x-forwarded-for"];
    return typeof forwarded === "string" ? forwardedClient(forwarded, isTrusted) ?? peer : peer;
  };
}

/**
 * Whether an address is one of the trusted proxies (`trustedProxies`, already validated by parseConfig): the peers
 * whose X-Forwarded-For is believed. With none listed, no address is.
 */
export function trustedProxyOf(trustedProxies: readonly string[]): (address: string) => boolean {
  if (trustedProxies.length === 0) return () => false;
  const trusted = new BlockList();
  for (const range of trustedProxies) {
    const slash = range.indexOf("/");
    const address = slash < 0 ? range : range.slice(0, slash);
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (slash < 0) trusted.addAddress(address, family);
    else trusted.addSubnet(address, Number(range.slice(slash + 1)), family);
  }
  // BlockList compares an IPv4-mapped IPv6 address ("::ffff:127.0.0.1", a dual-stack socket's IPv4 peer) with IPv4 ranges as its IPv4 address.
  return (address) => {
    const family = isIP(address);
    return family !== 0 && trusted.check(address, family === 6 ? "ipv6" : "ipv4");
  };
}

/**
 * The client an X-Forwarded-For value names: its rightmost entry that `isTrusted` does not hold, or undefined when
 * an entry read on the way is not an IP address or when every entry is trusted.
 */
export function forwardedClient(header: string, isTrusted: (address: string) => boolean): string | undefined {
  let end = header.length;
  while (end > 0) {
    const comma = header.lastIndexOf(",", end - 1);
    const entry = header.slice(comma + 1, end).trim();
    if (isIP(entry) === 0) return undefined;
    if (!isTrusted(entry)) return entry;
    end = comma < 0 ? 0 : comma;
  }
  return undefined;
}
