/**
 * Aligned columns for the CLI's human output. A tab stop aligned nothing once a cell ran past it (a rolled-over
 * CA's id, 13-sig-g2, pushed its row's prefecture a column further than the others), and padEnd counts UTF-16
 * units where a terminal gives a kanji (東京都) two columns: each column is padded to its widest cell as displayed.
 */

/** True for a code point a terminal shows two columns wide (East Asian Wide and Fullwidth, UAX #11). */
function wide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** The columns a terminal gives `s` (wide characters two, every other one). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += wide(ch.codePointAt(0)!) ? 2 : 1;
  return w;
}

/** Rows of cells as lines: every column but the last padded to its widest cell, columns two spaces apart. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell))));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + " ".repeat(widths[i]! - displayWidth(cell)))).join("  "));
}
