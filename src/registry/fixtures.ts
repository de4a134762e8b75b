/**
 * Deterministic synthetic population for demos, tests and benchmarks, shared/spec/JPKI.md "The four basic
 * items" and "Resident code". Nobody here is real: names are drawn from common family and given names,
 * addresses from generic town names (町名) in real municipalities, dates and codes at random.
 *
 * Same seed, same output, on every platform: all randomness comes from one small seeded PRNG (mulberry32),
 * never from Math.random or the clock. A small share of family names uses characters outside JIS X 0208
 * (髙, 𠮷, 﨑 …) so that the substitute-character path (代替文字) is exercised downstream.
 *
 * The pools and helpers are shared by every generator in this module; change notices (異動等情報) will be
 * generated next to `generateResidents`, from the same population and the same kind of seed.
 */
import { JpkiError } from "../errors.js";
import { PREFECTURES, prefecture, type Prefecture } from "../ca/prefectures.js";
import type { Gender } from "../profile/types.js";
import { municipalitiesOf, type ListedMunicipality } from "./municipality.js";
import { makeResidentCode } from "./resident-code.js";
import type { ResidentInput } from "./resident.js";

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness

/** A seeded source of randomness; the state lives inside, so share one per generated stream. */
export interface Random {
  /** uniform in [0, 1) */
  next(): number;
  /** uniform integer in [0, n) */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

/** Hashes a string seed to 32 bits (FNV-1a over UTF-16 code units): stable across platforms. */
function seedBits(seed: number | string): number {
  if (typeof seed === "number") {
    if (!Number.isFinite(seed)) throw new JpkiError("ERR_CONFIG_INVALID", "a fixture seed must be a finite number or a string");
    seed = String(seed);
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 (Tommy Ettinger, public domain): 32-bit state, good enough for fixtures, trivially portable. */
export function createRandom(seed: number | string): Random {
  let a = seedBits(seed);
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: <T>(items: readonly T[]): T => items[int(items.length)]! };
}

// ---------------------------------------------------------------------------------------------------------
// Pools

/** Common family names (姓), all within JIS X 0208. */
const FAMILY_NAMES: readonly string[] = [
  "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木", "山口",
  "松本", "井上", "木村", "林", "斎藤", "清水", "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島",
  "石井", "小川", "前田", "岡田", "長谷川", "藤田", "後藤", "近藤", "村上", "遠藤", "青木", "坂本", "福田", "太田",
  "西村", "藤井", "金子", "岡本", "藤原", "中野", "三浦", "原田", "中川", "松田", "竹内", "小野", "田村", "中山",
  "和田", "石田", "上田", "森田", "原", "内田", "柴田", "酒井", "宮崎", "横山", "高木", "安藤", "宮本", "大野",
];

/**
 * Variant forms outside JIS X 0208 (異体字) that registries really hold: 髙 (U+9AD9), 𠮷 (U+20BB7, outside
 * the BMP), 﨑 (U+FA11), 濵 (U+6FF5), 德 (U+5FB7), 邊 is in 0208 so is not used.
 */
const VARIANT_FAMILY_NAMES: readonly string[] = ["髙橋", "𠮷田", "山﨑", "髙木", "濵田", "德永", "宮﨑", "𠮷川"];
/** Share of residents whose family name is a variant form. */
const VARIANT_SHARE = 0.01;

const MALE_GIVEN_NAMES: readonly string[] = [
  "太郎", "一郎", "健太", "翔太", "大輔", "拓也", "直樹", "達也", "和也", "誠", "隆", "浩", "修", "実", "茂", "勇",
  "清", "博", "正人", "健一", "雄一", "大輝", "蓮", "湊", "陽翔", "悠真", "樹", "大和", "颯太", "陸", "翔", "悠斗",
  "拓海", "健", "勝", "進", "明", "昭", "稔", "和夫",
];

const FEMALE_GIVEN_NAMES: readonly string[] = [
  "花子", "陽子", "恵子", "幸子", "洋子", "京子", "裕子", "直美", "由美子", "久美子", "智子", "美穂", "愛", "彩",
  "舞", "恵", "真由美", "陽菜", "結衣", "葵", "さくら", "美咲", "凛", "芽依", "結菜", "莉子", "美羽", "七海",
  "明美", "和子", "節子", "文子", "静香", "千尋", "麻衣", "香織", "沙織", "優子", "春香", "真理",
];

/** Generic town names (町名) found in many municipalities; none tied to a real address. */
const TOWNS: readonly string[] = [
  "本町", "中央", "栄町", "緑町", "旭町", "幸町", "若葉", "桜ケ丘", "東町", "西町", "南町", "北町", "青葉", "宮前",
  "大手町", "新町", "元町", "松原", "富士見", "日の出町", "寿町", "錦町", "末広町", "昭和町", "平和町", "弥生町",
  "春日", "白山", "八幡町", "天神",
];

const BUILDINGS: readonly string[] = ["ハイツ", "コーポ", "メゾン", "レジデンス", "荘"];

/** Only share of "unknown" gender (性別 3), which exists on the register but is rare. */
const UNKNOWN_GENDER_SHARE = 0.01;

const BIRTH_FROM = Date.UTC(1925, 0, 1);
const BIRTH_TO = Date.UTC(2008, 11, 31);
const DAY_MS = 86_400_000;

/** Addresses carry full-width digits (the certificate profile's form). */
function fullWidth(n: number): string {
  return String(n).replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d)));
}

function drawGender(rng: Random): Gender {
  if (rng.next() < UNKNOWN_GENDER_SHARE) return "unknown";
  return rng.next() < 0.5 ? "male" : "female";
}

/** 氏名 with the U+3000 separator. */
function drawName(rng: Random, gender: Gender): string {
  const family = rng.next() < VARIANT_SHARE ? rng.pick(VARIANT_FAMILY_NAMES) : rng.pick(FAMILY_NAMES);
  const pool = gender === "male" ? MALE_GIVEN_NAMES : gender === "female" ? FEMALE_GIVEN_NAMES : rng.next() < 0.5 ? MALE_GIVEN_NAMES : FEMALE_GIVEN_NAMES;
  return `${family}\u3000${rng.pick(pool)}`;
}

/** 住所 from the prefecture: 丁目・番・号, 番地, or with a building and room number. */
function drawAddress(rng: Random, pref: Prefecture, muni: ListedMunicipality): string {
  const town = rng.pick(TOWNS);
  const block = fullWidth(1 + rng.int(30));
  const lot = fullWidth(1 + rng.int(20));
  const style = rng.next();
  let rest: string;
  if (style < 0.6) rest = `${town}${fullWidth(1 + rng.int(9))}丁目${block}番${lot}号`;
  else if (style < 0.85) rest = `${town}${block}番地${lot}`;
  else rest = `${town}${fullWidth(1 + rng.int(9))}丁目${block}番${lot}号${town}${rng.pick(BUILDINGS)}${fullWidth(1 + rng.int(5))}０${fullWidth(1 + rng.int(9))}号室`;
  return `${pref.kanji}${muni.kanji}${rest}`;
}

function drawBirthDate(rng: Random): string {
  const days = Math.floor((BIRTH_TO - BIRTH_FROM) / DAY_MS) + 1;
  return new Date(BIRTH_FROM + rng.int(days) * DAY_MS).toISOString().slice(0, 10);
}

/** Fisher–Yates with the seeded source. */
function shuffled<T>(items: readonly T[], rng: Random): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------------
// Residents

export interface GenerateResidentsOptions {
  /** how many residents; 0 or more */
  readonly count: number;
  /** same seed, same residents */
  readonly seed: number | string;
  /** prefecture codes or names to place residents in (default: all 47) */
  readonly prefectures?: readonly string[];
}

/**
 * A stride coprime with 10^10 (odd, not a multiple of 5): i ↦ offset + i·stride mod 10^10 visits every
 * ten-digit number once, so resident codes are unique without remembering them. Near 10^10/φ, so
 * consecutive residents' codes look unrelated.
 */
const CODE_STRIDE = 6_180_339_887;
const CODE_SPACE = 10_000_000_000;
const MAX_COUNT = CODE_SPACE;

/**
 * Yields `count` residents in the import format (ResidentInput), each valid for `parseResidentRecord` with
 * any `now` after 2008. Every chosen prefecture gets a resident before any gets a second one, so
 * count ≥ number of prefectures covers them all; after that prefectures are drawn uniformly, then a
 * listed municipality within the prefecture.
 */
export function* generateResidents(opts: GenerateResidentsOptions): Generator<ResidentInput, void, undefined> {
  const { count } = opts;
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_COUNT) {
    throw new JpkiError("ERR_CONFIG_INVALID", `count must be an integer from 0 to ${MAX_COUNT}`);
  }
  const prefs = opts.prefectures ? [...new Map(opts.prefectures.map((p) => prefecture(p)).map((p) => [p.code, p])).values()] : [...PREFECTURES];
  if (prefs.length === 0) throw new JpkiError("ERR_CONFIG_INVALID", "prefectures is empty: give at least one, or leave it out for all 47");
  const munis = new Map(prefs.map((p) => [p.code, municipalitiesOf(p.code)]));
  for (const p of prefs) {
    if (munis.get(p.code)!.length === 0) throw new JpkiError("ERR_INTERNAL", `no listed municipality in prefecture ${p.code}`);
  }

  const rng = createRandom(opts.seed);
  const firstRound = shuffled(prefs, rng);

  // Stepping by addition keeps every intermediate below 2·10^10, exact in a double.
  let ten = rng.int(CODE_SPACE);
  for (let i = 0; i < count; i++) {
    const pref = i < firstRound.length ? firstRound[i]! : rng.pick(prefs);
    const muni = rng.pick(munis.get(pref.code)!);
    const gender = drawGender(rng);
    const residentCode = makeResidentCode(String(ten).padStart(10, "0"));
    ten = (ten + CODE_STRIDE) % CODE_SPACE;
    yield {
      residentCode,
      municipalityCode: muni.code,
      name: drawName(rng, gender),
      address: drawAddress(rng, pref, muni),
      birthDate: drawBirthDate(rng),
      gender,
    };
  }
}
