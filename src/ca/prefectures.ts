/**
 * The 47 prefectures (都道府県) by JIS X 0401 code, each of which runs its own certification authority
 * (都道府県単位認証局) in the 2004–2015 design. Romaji carries the -to/-do/-fu/-ken suffix as the DN uses it.
 */
import { JpkiError } from "../errors.js";

export interface Prefecture {
  /** JIS X 0401 two-digit code, "01".."47" */
  readonly code: string;
  /** official name in kanji, e.g. 東京都 */
  readonly kanji: string;
  /** romaji as used in the CA DN, e.g. Tokyo-to */
  readonly romaji: string;
}

const TABLE: ReadonlyArray<readonly [string, string]> = [
  ["北海道", "Hokkaido"], ["青森県", "Aomori-ken"], ["岩手県", "Iwate-ken"], ["宮城県", "Miyagi-ken"],
  ["秋田県", "Akita-ken"], ["山形県", "Yamagata-ken"], ["福島県", "Fukushima-ken"], ["茨城県", "Ibaraki-ken"],
  ["栃木県", "Tochigi-ken"], ["群馬県", "Gunma-ken"], ["埼玉県", "Saitama-ken"], ["千葉県", "Chiba-ken"],
  ["東京都", "Tokyo-to"], ["神奈川県", "Kanagawa-ken"], ["新潟県", "Niigata-ken"], ["富山県", "Toyama-ken"],
  ["石川県", "Ishikawa-ken"], ["福井県", "Fukui-ken"], ["山梨県", "Yamanashi-ken"], ["長野県", "Nagano-ken"],
  ["岐阜県", "Gifu-ken"], ["静岡県", "Shizuoka-ken"], ["愛知県", "Aichi-ken"], ["三重県", "Mie-ken"],
  ["滋賀県", "Shiga-ken"], ["京都府", "Kyoto-fu"], ["大阪府", "Osaka-fu"], ["兵庫県", "Hyogo-ken"],
  ["奈良県", "Nara-ken"], ["和歌山県", "Wakayama-ken"], ["鳥取県", "Tottori-ken"], ["島根県", "Shimane-ken"],
  ["岡山県", "Okayama-ken"], ["広島県", "Hiroshima-ken"], ["山口県", "Yamaguchi-ken"], ["徳島県", "Tokushima-ken"],
  ["香川県", "Kagawa-ken"], ["愛媛県", "Ehime-ken"], ["高知県", "Kochi-ken"], ["福岡県", "Fukuoka-ken"],
  ["佐賀県", "Saga-ken"], ["長崎県", "Nagasaki-ken"], ["熊本県", "Kumamoto-ken"], ["大分県", "Oita-ken"],
  ["宮崎県", "Miyazaki-ken"], ["鹿児島県", "Kagoshima-ken"], ["沖縄県", "Okinawa-ken"],
];

export const PREFECTURES: readonly Prefecture[] = Object.freeze(
  TABLE.map(([kanji, romaji], i) => Object.freeze({ code: String(i + 1).padStart(2, "0"), kanji, romaji })),
);

const BY_CODE = new Map(PREFECTURES.map((p) => [p.code, p]));

/** Looks a prefecture up by code ("13", "1", 13) or by kanji/romaji name; throws ERR_PREFECTURE_UNKNOWN. */
export function prefecture(key: string | number): Prefecture {
  const s = String(key).trim();
  const byCode = /^\d{1,2}$/.test(s) ? BY_CODE.get(s.padStart(2, "0")) : undefined;
  const found = byCode ?? PREFECTURES.find((p) => p.kanji === s || p.romaji.toLowerCase() === s.toLowerCase());
  if (!found) {
    throw new JpkiError("ERR_PREFECTURE_UNKNOWN", `unknown prefecture ${JSON.stringify(s)}: use a JIS X 0401 code 01–47 (e.g. 13 for 東京都) or its name`);
  }
  return found;
}

/** Parses a list such as "13", "13,27", "01-47" or "all". */
export function prefectureList(spec: string): Prefecture[] {
  if (spec.trim().toLowerCase() === "all") return [...PREFECTURES];
  const out = new Map<string, Prefecture>();
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const range = /^(\d{1,2})-(\d{1,2})$/.exec(part);
    if (range) {
      const a = prefecture(range[1]!), b = prefecture(range[2]!);
      for (let i = Number(a.code); i <= Number(b.code); i++) out.set(String(i).padStart(2, "0"), prefecture(i));
    } else {
      const p = prefecture(part);
      out.set(p.code, p);
    }
  }
  if (out.size === 0) throw new JpkiError("ERR_PREFECTURE_UNKNOWN", "no prefecture given: use codes like 13, 01-47 or all");
  return [...out.values()];
}
