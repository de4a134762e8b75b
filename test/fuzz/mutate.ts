/**
 * Generators of hostile inputs. For DER: real objects (corpus.ts) mutated in their structure (a value's tag
 * swapped, a child dropped, doubled or swapped with a sibling, a primitive's content replaced, a subtree of
 * another object grafted in, with every enclosing length re-encoded so the damage sits deep inside a well-framed
 * object) or in their bytes (bit flips, truncations, length fields set to indefinite, too long, too short, 5-byte
 * or 0xffffffff), stacked up to four deep, besides plain random bytes. For text records: valid rows of the sample
 * files with hostile fields (huge, NUL, control characters, invalid UTF-8, BOMs, stray quotes, lone surrogate
 * escapes, wrong column counts, CR-only line ends). All of it from fast-check integers, so a finding shrinks.
 */
import fc from "fast-check";
import { encodeLength } from "../../src/pki/der.js";

/** A DER value as a tree: constructed values hold their children, primitives their content. */
interface Node {
  tag: number;
  children?: Node[];
  content: Buffer;
}

/** Parses well-framed DER (low tags, definite lengths) into a tree, or undefined. Depth-limited. */
function parseTree(b: Buffer, depth = 0): Node[] | undefined {
  const out: Node[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 2 > b.length) return undefined;
    const tag = b[off]!;
    let len = b[off + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || off + 2 + n > b.length) return undefined;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i]!;
      hdr += n;
    }
    if (off + hdr + len > b.length) return undefined;
    const content = b.subarray(off + hdr, off + hdr + len);
    const node: Node = { tag, content };
    if (tag & 0x20 && depth < 24) {
      const kids = parseTree(content, depth + 1);
      if (kids) node.children = kids;
    }
    out.push(node);
    off += hdr + len;
  }
  return out;
}

function encode(n: Node): Buffer {
  const content = n.children ? Buffer.concat(n.children.map(encode)) : n.content;
  return Buffer.concat([Buffer.from([n.tag]), encodeLength(content.length), content]);
}

/** Every node of a forest, depth first, with its parent's child list. */
function nodes(forest: Node[]): Array<{ node: Node; siblings: Node[]; index: number }> {
  const out: Array<{ node: Node; siblings: Node[]; index: number }> = [];
  const walk = (list: Node[]) =>
    list.forEach((node, index) => {
      out.push({ node, siblings: list, index });
      if (node.children) walk(node.children);
    });
  walk(forest);
  return out;
}

/** Offsets of every header in well-framed DER, for byte-level length corruption. */
function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  const walk = (off: number, end: number, depth: number) => {
    while (off + 2 <= end) {
      out.push(off);
      let len = b[off + 1]!;
      let hdr = 2;
      if (len & 0x80) {
        const n = len & 0x7f;
        if (n === 0 || n > 4 || off + 2 + n > end) return;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i]!;
        hdr += n;
      }
      if (off + hdr + len > end) return;
      if (b[off]! & 0x20 && depth < 24) walk(off + hdr, off + hdr + len, depth + 1);
      off += hdr + len;
    }
  };
  walk(0, b.length, 0);
  return out;
}

/** One mutation: `kind` picks the operation, `a`/`b` pick places, `bytes` is material. */
export interface Op {
  readonly kind: number;
  readonly a: number;
  readonly b: number;
  readonly bytes: Uint8Array;
}

const TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31, 0x80, 0x81, 0x82, 0x86, 0x88, 0xa0, 0xa1, 0xa2, 0xa3, 0x1f, 0x24, 0x23, 0x00, 0xff];
const LENGTHS: readonly Buffer[] = [[0x80], [0x81, 0x00], [0x81, 0x7f], [0x82, 0x00, 0x00], [0x84, 0xff, 0xff, 0xff, 0xff], [0x84, 0x7f, 0xff, 0xff, 0xff], [0x85, 1, 0, 0, 0, 0], [0x88, 0, 0, 0, 0, 0, 0, 0, 1], [0xff], [0x00], [0x01], [0x7f]].map((a) => Buffer.from(a));
const CONTENTS: readonly Buffer[] = [[], [0], [0xff], [0x80], [0x00, 0x00], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x07], [0x08, 0xff], [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x80], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]].map((a) => Buffer.from(a));

function applyOp(input: Buffer, op: Op, donors: readonly Buffer[]): Buffer {
  const kind = op.kind % 12;
  if (kind <= 4) {
    // structural: parse, change, re-encode every enclosing length
    const forest = parseTree(input);
    if (!forest?.length) return flip(input, op);
    const all = nodes(forest);
    const at = all[op.a % all.length]!;
    switch (kind) {
      case 0: // swap the tag (universal for context-specific, primitive for constructed and back)
        at.node.tag = TAGS[op.b % TAGS.length]!;
        if (!(at.node.tag & 0x20)) delete at.node.children;
        break;
      case 1: // drop or double a value
        if (op.b % 2) at.siblings.splice(at.index, 1);
        else at.siblings.splice(at.index, 0, structuredClone(at.node));
        break;
      case 2: { // swap with a sibling
        const j = op.b % at.siblings.length;
        [at.siblings[at.index], at.siblings[j]] = [at.siblings[j]!, at.siblings[at.index]!];
        break;
      }
      case 3: // replace a primitive's content (or a constructed value's children) with edge material
        delete at.node.children;
        at.node.content = op.bytes.length && op.b % 3 === 0 ? Buffer.from(op.bytes) : CONTENTS[op.b % CONTENTS.length]!;
        break;
      case 4: { // graft a subtree of another object
        const donor = donors.length ? parseTree(donors[op.b % donors.length]!) : undefined;
        const pool = donor ? nodes(donor) : [];
        if (pool.length) at.siblings[at.index] = pool[(op.b >>> 8) % pool.length]!.node;
        break;
      }
    }
    return Buffer.concat(forest.map(encode));
  }
  switch (kind) {
    case 5:
    case 6:
      return flip(input, op);
    case 7: // truncate
      return input.subarray(0, input.length ? op.a % input.length : 0);
    case 8: { // corrupt a length field (header kept, lengths of the parents not fixed)
      const offs = headerOffsets(input);
      if (!offs.length) return flip(input, op);
      const off = offs[op.a % offs.length]!;
      const first = input[off + 1]!;
      const n = first & 0x80 ? 1 + (first & 0x7f) : 1;
      return Buffer.concat([input.subarray(0, off + 1), LENGTHS[op.b % LENGTHS.length]!, input.subarray(Math.min(input.length, off + 1 + n))]);
    }
    case 9: { // a length one off
      const offs = headerOffsets(input);
      if (!offs.length) return flip(input, op);
      const off = offs[op.a % offs.length]!;
      const out = Buffer.from(input);
      const last = off + 1 + (out[off + 1]! & 0x80 ? out[off + 1]! & 0x7f : 0);
      if (last < out.length) out[last] = (out[last]! + (op.b % 2 ? 1 : 255)) & 0xff;
      return out;
    }
    case 10: // insert bytes
      return Buffer.concat([input.subarray(0, op.a % (input.length + 1)), Buffer.from(op.bytes), input.subarray(op.a % (input.length + 1))]);
    default: // append or prepend
      return op.b % 2 ? Buffer.concat([input, Buffer.from(op.bytes)]) : Buffer.concat([Buffer.from(op.bytes), input]);
  }
}

function flip(input: Buffer, op: Op): Buffer {
  if (!input.length) return Buffer.from(op.bytes);
  const out = Buffer.from(input);
  out[op.a % out.length]! ^= 1 << (op.b % 8);
  return out;
}

const op: fc.Arbitrary<Op> = fc.record({ kind: fc.nat(11), a: fc.nat(), b: fc.nat(), bytes: fc.uint8Array({ maxLength: 12 }) });

/** Mutated seeds (most inputs), plus random bytes and a few raw seeds. */
export function derInputs(seeds: readonly Buffer[], o: { maxRandom?: number } = {}): fc.Arbitrary<Buffer> {
  const mutated = fc.record({ seed: fc.nat(seeds.length - 1), ops: fc.array(op, { minLength: 1, maxLength: 4 }) }).map(({ seed, ops }) => ops.reduce((b, o) => applyOp(b, o, seeds), seeds[seed]!));
  return fc.oneof(
    { weight: 16, arbitrary: mutated },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: o.maxRandom ?? 300 }).map((u) => Buffer.from(u)) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Text records: JSON Lines and CSV

const HOSTILE_STRINGS = [
  "", " ", "\u0000", "a\u0000b", "\uFEFF", "\"", "\"\"", "a\"b", ",", "\r", "\n", "\r\n", "\\", "\\u", "\\ud800", "\\udc00x", "\u2028", "null", "{}", "[]",
  "0", "-1", "1e309", "9".repeat(40), "𠮷野家", "\uD800", "\uDFFF", "=cmd|' /C calc'!A0", "__proto__", "constructor", "x".repeat(5000), "あ".repeat(2000),
];
const HOSTILE_BYTES: readonly Buffer[] = [[0xff], [0xc3], [0xc3, 0x28], [0xe3, 0x81], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xef, 0xbb, 0xbf], [0x00], [0x0d], [0xc0, 0xaf]].map((a) => Buffer.from(a));

/** A hostile value for a field: one of the list, random unicode, or a huge run. */
const hostileText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  // past the field limit (4096) often, past the record limit (1 MiB of UTF-16) rarely: a 400 kB line costs a millisecond
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("a", "\"", ",", "{", "[", "\\u0000"), fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 6000 }) }, { weight: 1, arbitrary: fc.integer({ min: 300_000, max: 400_000 }) })).map(([s, n]) => s.repeat(n)) },
);

export interface TextRecordsSeed {
  readonly lines: readonly string[];
  /** the CSV header row (its first line), undefined for JSON Lines */
  readonly csv: boolean;
}

interface LineOp {
  readonly kind: number;
  readonly line: number;
  readonly at: number;
  readonly text: string;
  readonly bytes: number;
}

const lineOp: fc.Arbitrary<LineOp> = fc.record({ kind: fc.nat(9), line: fc.nat(), at: fc.nat(), text: hostileText, bytes: fc.nat(HOSTILE_BYTES.length - 1) });

/** Replaces the value of one field of a JSON line (or one cell of a CSV row) with `text`, kept syntactically valid. */
function replaceField(line: string, csv: boolean, at: number, text: string, quote: boolean): string {
  if (csv) {
    const cells = line.split(",");
    const i = at % cells.length;
    cells[i] = quote ? `"${text.replace(/"/g, "\"\"")}"` : text;
    return cells.join(",");
  }
  try {
    const obj = JSON.parse(line) as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (!keys.length) return line;
    const k = keys[at % keys.length]!;
    const forms: unknown[] = [text, Number(text), text.length, [text], { [text]: text }, null, true];
    obj[k] = forms[at % forms.length];
    return JSON.stringify(obj);
  } catch {
    return line + text;
  }
}

/** Files of records: sample lines with hostile changes, as bytes. */
export function recordFiles(seed: TextRecordsSeed): fc.Arbitrary<Buffer> {
  return fc
    .record({ take: fc.integer({ min: 1, max: seed.lines.length }), ops: fc.array(lineOp, { minLength: 1, maxLength: 5 }), crlf: fc.boolean(), bom: fc.boolean() })
    .map(({ take, ops, crlf, bom }) => {
      const lines: Array<string | Buffer> = seed.lines.slice(0, take);
      for (const o of ops) {
        const i = o.line % lines.length;
        const cur = lines[i]!;
        const text = typeof cur === "string" ? cur : cur.toString("latin1");
        switch (o.kind) {
          case 0:
          case 1:
            lines[i] = replaceField(text, seed.csv, o.at, o.text, o.kind === 1);
            break;
          case 2: // raw bytes (invalid UTF-8) inside the line
            lines[i] = Buffer.concat([Buffer.from(text.slice(0, o.at % (text.length + 1))), HOSTILE_BYTES[o.bytes]!, Buffer.from(text.slice(o.at % (text.length + 1)))]);
            break;
          case 3: // wrong column count / truncated line
            lines[i] = seed.csv ? (o.at % 2 ? `${text},extra` : text.split(",").slice(0, o.at % 5).join(",")) : text.slice(0, o.at % (text.length + 1));
            break;
          case 4: // a stray quote or bracket somewhere
            lines[i] = text.slice(0, o.at % (text.length + 1)) + (seed.csv ? "\"" : "{") + text.slice(o.at % (text.length + 1));
            break;
          case 5: // a whole line of hostile text
            lines.splice(i, 0, o.text);
            break;
          case 6: // CR-only or mixed line ends
            lines[i] = `${text}\r`;
            break;
          case 7: // drop the header (CSV) or a line
            lines.splice(i, 1);
            if (!lines.length) lines.push(o.text);
            break;
          case 8: // a duplicated line
            lines.splice(i, 0, cur);
            break;
          default: // a quoted field with line breaks inside (CSV) / an escape (JSON)
            lines[i] = seed.csv ? `${text},"a\r\nb${o.text.slice(0, 20)}` : text.replace(/"([^"]*)"/, `"\\ud800$1"`);
        }
      }
      const eol = Buffer.from(crlf ? "\r\n" : "\n");
      const parts: Buffer[] = bom ? [Buffer.from([0xef, 0xbb, 0xbf])] : [];
      lines.forEach((l, k) => {
        if (k) parts.push(eol);
        parts.push(typeof l === "string" ? Buffer.from(l) : l);
      });
      return Buffer.concat(parts);
    });
}
