/** The stable `code` a call fails with, or "accepted" when it does not fail: what the input tests assert on. */
export function errorCodeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return "accepted";
}
