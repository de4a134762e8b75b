/**
 * Municipalities by local government code (全国地方公共団体コード), shared/spec/JPKI.md "Resident code"
 * ("Municipality codes: the 6-digit local government code, e.g. 131016 千代田区").
 *
 * Six digits: the JIS X 0401 prefecture code (2), the municipality within it (3, from JIS X 0402), and a
 * check digit (検査数字) the Ministry of Internal Affairs defines: multiply the first five digits by 6, 5, 4,
 * 3, 2, take the sum modulo 11 and keep the last digit of 11 − remainder. The signature certificate's
 * subject carries the municipality's romaji (L=Chiyoda-ku) and CRLs are partitioned by municipality, so the
 * table below is what the CA side names things with.
 */
import { JpkiError } from "../errors.js";
import { prefecture, type Prefecture } from "../ca/prefectures.js";

/** A municipality (市区町村) as the registry and the certificate DNs name it. */
export interface Municipality {
  /** 6-digit local government code with check digit, e.g. "131016" */
  readonly code: string;
  /** official name in kanji without the prefecture, e.g. 千代田区; undefined for a valid code we do not list */
  readonly kanji: string | undefined;
  /** romaji as used in certificate DNs, e.g. Chiyoda-ku; the code itself for a code we do not list */
  readonly romaji: string;
}

/** A municipality from our table: its names are known. */
export interface ListedMunicipality extends Municipality {
  readonly kanji: string;
}

const SIX_DIGITS = /^\d{6}$/;
const WEIGHTS = [6, 5, 4, 3, 2] as const;

/** Check digit of a local government code from its first five digits (the JIS X 0402 code). */
export function municipalityCheckDigit(five: string): string {
  if (typeof five !== "string" || !/^\d{5}$/.test(five)) {
    throw new JpkiError("ERR_MUNICIPALITY_INVALID", "a local government code check digit needs exactly 5 ASCII digits");
  }
  let sum = 0;
  for (let i = 0; i < 5; i++) sum += Number(five[i]) * WEIGHTS[i]!;
  // "the last digit of 11 − remainder": remainder 1 gives 0 and remainder 0 gives 1.
  return String((11 - (sum % 11)) % 10);
}

/**
 * Throws ERR_MUNICIPALITY_INVALID unless `s` is a 6-digit local government code of a municipality: a
 * prefecture 01–47, not the prefecture's own code (middle digits 000), and the right check digit.
 */
export function assertMunicipalityCode(s: unknown, where?: string): asserts s is string {
  const at = where ? `${where}: ` : "";
  const fail = (problem: string, msg: string): never => {
    throw new JpkiError("ERR_MUNICIPALITY_INVALID", `${at}field "municipalityCode" ${msg}`, {
      details: { field: "municipalityCode", problem, ...(where ? { where } : {}) },
    });
  };
  if (typeof s !== "string" || !SIX_DIGITS.test(s)) {
    return fail("format", "is not 6 ASCII digits: give the local government code with its check digit, e.g. 131016 for 千代田区");
  }
  const pref = Number(s.slice(0, 2));
  if (pref < 1 || pref > 47) return fail("prefecture", "does not start with a prefecture code 01–47");
  if (s.slice(2, 5) === "000") return fail("prefecture-itself", "names a prefecture, not a municipality (digits 3–5 are 000)");
  if (municipalityCheckDigit(s.slice(0, 5)) !== s[5]) {
    return fail("check-digit", "fails its check digit: look for a mistyped digit, or a 5-digit code missing its sixth digit");
  }
}

/** True when `s` is a valid municipality code (see assertMunicipalityCode). */
export function isValidMunicipalityCode(s: unknown): s is string {
  try {
    assertMunicipalityCode(s);
    return true;
  } catch {
    return false;
  }
}

// Real municipalities: the 23 special wards of Tokyo (特別区), the seat of every prefecture (都道府県庁所在地;
// Tokyo's is Shinjuku-ku, among the wards), every designated city (政令指定都市), and a few more so that
// most prefectures have more than one. Codes are the published ones; a test recomputes every check digit.
const TABLE: ReadonlyArray<readonly [code: string, kanji: string, romaji: string]> = [
  ["011002", "札幌市", "Sapporo-shi"],
  ["012025", "函館市", "Hakodate-shi"],
  ["012041", "旭川市", "Asahikawa-shi"],
  ["022012", "青森市", "Aomori-shi"],
  ["022039", "八戸市", "Hachinohe-shi"],
  ["032018", "盛岡市", "Morioka-shi"],
  ["041009", "仙台市", "Sendai-shi"],
  ["052019", "秋田市", "Akita-shi"],
  ["062014", "山形市", "Yamagata-shi"],
  ["072010", "福島市", "Fukushima-shi"],
  ["072036", "郡山市", "Koriyama-shi"],
  ["072044", "いわき市", "Iwaki-shi"],
  ["082015", "水戸市", "Mito-shi"],
  ["082201", "つくば市", "Tsukuba-shi"],
  ["092011", "宇都宮市", "Utsunomiya-shi"],
  ["102016", "前橋市", "Maebashi-shi"],
  ["102024", "高崎市", "Takasaki-shi"],
  ["111007", "さいたま市", "Saitama-shi"],
  ["112011", "川越市", "Kawagoe-shi"],
  ["112038", "川口市", "Kawaguchi-shi"],
  ["121002", "千葉市", "Chiba-shi"],
  ["122041", "船橋市", "Funabashi-shi"],
  ["122271", "浦安市", "Urayasu-shi"],
  ["131016", "千代田区", "Chiyoda-ku"],
  ["131024", "中央区", "Chuo-ku"],
  ["131032", "港区", "Minato-ku"],
  ["131041", "新宿区", "Shinjuku-ku"],
  ["131059", "文京区", "Bunkyo-ku"],
  ["131067", "台東区", "Taito-ku"],
  ["131075", "墨田区", "Sumida-ku"],
  ["131083", "江東区", "Koto-ku"],
  ["131091", "品川区", "Shinagawa-ku"],
  ["131105", "目黒区", "Meguro-ku"],
  ["131113", "大田区", "Ota-ku"],
  ["131121", "世田谷区", "Setagaya-ku"],
  ["131130", "渋谷区", "Shibuya-ku"],
  ["131148", "中野区", "Nakano-ku"],
  ["131156", "杉並区", "Suginami-ku"],
  ["131164", "豊島区", "Toshima-ku"],
  ["131172", "北区", "Kita-ku"],
  ["131181", "荒川区", "Arakawa-ku"],
  ["131199", "板橋区", "Itabashi-ku"],
  ["131202", "練馬区", "Nerima-ku"],
  ["131211", "足立区", "Adachi-ku"],
  ["131229", "葛飾区", "Katsushika-ku"],
  ["131237", "江戸川区", "Edogawa-ku"],
  ["132012", "八王子市", "Hachioji-shi"],
  ["132039", "武蔵野市", "Musashino-shi"],
  ["132063", "府中市", "Fuchu-shi"],
  ["132098", "町田市", "Machida-shi"],
  ["141003", "横浜市", "Yokohama-shi"],
  ["141305", "川崎市", "Kawasaki-shi"],
  ["141500", "相模原市", "Sagamihara-shi"],
  ["151009", "新潟市", "Niigata-shi"],
  ["162019", "富山市", "Toyama-shi"],
  ["172014", "金沢市", "Kanazawa-shi"],
  ["182010", "福井市", "Fukui-shi"],
  ["192015", "甲府市", "Kofu-shi"],
  ["202011", "長野市", "Nagano-shi"],
  ["202029", "松本市", "Matsumoto-shi"],
  ["212016", "岐阜市", "Gifu-shi"],
  ["221007", "静岡市", "Shizuoka-shi"],
  ["221309", "浜松市", "Hamamatsu-shi"],
  ["231002", "名古屋市", "Nagoya-shi"],
  ["232017", "豊橋市", "Toyohashi-shi"],
  ["232025", "岡崎市", "Okazaki-shi"],
  ["242012", "津市", "Tsu-shi"],
  ["252018", "大津市", "Otsu-shi"],
  ["261009", "京都市", "Kyoto-shi"],
  ["262048", "宇治市", "Uji-shi"],
  ["271004", "大阪市", "Osaka-shi"],
  ["271403", "堺市", "Sakai-shi"],
  ["272035", "豊中市", "Toyonaka-shi"],
  ["272051", "吹田市", "Suita-shi"],
  ["281000", "神戸市", "Kobe-shi"],
  ["282014", "姫路市", "Himeji-shi"],
  ["282022", "尼崎市", "Amagasaki-shi"],
  ["282049", "西宮市", "Nishinomiya-shi"],
  ["292010", "奈良市", "Nara-shi"],
  ["302015", "和歌山市", "Wakayama-shi"],
  ["312011", "鳥取市", "Tottori-shi"],
  ["322016", "松江市", "Matsue-shi"],
  ["331007", "岡山市", "Okayama-shi"],
  ["332020", "倉敷市", "Kurashiki-shi"],
  ["341002", "広島市", "Hiroshima-shi"],
  ["342076", "福山市", "Fukuyama-shi"],
  ["352012", "下関市", "Shimonoseki-shi"],
  ["352039", "山口市", "Yamaguchi-shi"],
  ["362018", "徳島市", "Tokushima-shi"],
  ["372013", "高松市", "Takamatsu-shi"],
  ["382019", "松山市", "Matsuyama-shi"],
  ["392014", "高知市", "Kochi-shi"],
  ["401005", "北九州市", "Kitakyushu-shi"],
  ["401307", "福岡市", "Fukuoka-shi"],
  ["402036", "久留米市", "Kurume-shi"],
  ["412015", "佐賀市", "Saga-shi"],
  ["422011", "長崎市", "Nagasaki-shi"],
  ["422029", "佐世保市", "Sasebo-shi"],
  ["431001", "熊本市", "Kumamoto-shi"],
  ["442011", "大分市", "Oita-shi"],
  ["442020", "別府市", "Beppu-shi"],
  ["452017", "宮崎市", "Miyazaki-shi"],
  ["462012", "鹿児島市", "Kagoshima-shi"],
  ["472018", "那覇市", "Naha-shi"],
  ["472077", "石垣市", "Ishigaki-shi"],
  ["472115", "沖縄市", "Okinawa-shi"],
];

export const MUNICIPALITIES: readonly ListedMunicipality[] = Object.freeze(
  TABLE.map(([code, kanji, romaji]) => Object.freeze({ code, kanji, romaji })),
);

const BY_CODE = new Map(MUNICIPALITIES.map((m) => [m.code, m]));

/**
 * Looks up a municipality by its 6-digit code. A valid code we do not list still names a municipality:
 * it comes back as `{ code, kanji: undefined, romaji: code }`, so a DN can carry the code. Throws
 * ERR_MUNICIPALITY_INVALID for an invalid code.
 */
export function municipality(code: string): Municipality {
  assertMunicipalityCode(code);
  return BY_CODE.get(code) ?? Object.freeze({ code, kanji: undefined, romaji: code });
}

/** The prefecture a municipality belongs to: its code's first two digits. */
export function prefectureOfMunicipality(code: string): Prefecture {
  assertMunicipalityCode(code);
  return prefecture(code.slice(0, 2));
}

/** Listed municipalities of one prefecture (JIS X 0401 code "01".."47"), in code order. */
export function municipalitiesOf(prefectureCode: string): readonly ListedMunicipality[] {
  const p = prefecture(prefectureCode);
  return MUNICIPALITIES.filter((m) => m.code.startsWith(p.code));
}
