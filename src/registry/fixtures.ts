/**
 * Deterministic synthetic population for demos, tests and benchmarks, shared/spec/JPKI.md "The four basic
 * items" and "Resident code". Nobody here is real: names are drawn from common family and given names,
 * addresses from generic town names (町名) in real municipalities, dates and codes at random.
 *
 * Same seed, same output, on every platform: all randomness comes from one small seeded PRNG (mulberry32),
 * never from Math.random or the clock. A small share of family names uses characters outside JIS X 0208
 * (髙, 𠮷, 﨑 …) so that the substitute-character path (代替文字) is exercised downstream.
 *
 * The pools and helpers are shared by every generator in this module: residents (`generateResidents`) and
 * change notices (異動等情報, `generateNotices`) over such a population, with the same kind of seed.
 */
import { JpkiError } from "../errors.js";
import { PREFECTURES, prefecture, type Prefecture } from "../ca/prefectures.js";
import { IDEOGRAPHIC_SPACE, SUBSTITUTES } from "../profile/four-items.js";
import type { FourItems, Gender } from "../profile/types.js";
import { municipalitiesOf, type ListedMunicipality } from "./municipality.js";
import { isIsoDate, type ChangeNoticeInput, type NoticeKind } from "./notice.js";
import { makeResidentCode } from "./resident-code.js";
import { parseResidentRecord, type ResidentInput } from "./resident.js";

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

// ---------------------------------------------------------------------------------------------------------
// Change notices (異動等情報の通知)

export interface GenerateNoticesOptions {
  /** the population, in the import format (e.g. from generateResidents); deceased/removed ones get no notice */
  readonly residents: readonly ResidentInput[];
  /** how many notices; fewer come out only when every resident has died or been removed */
  readonly count: number;
  /** same seed (and residents), same notices */
  readonly seed: number | string;
  /** effective date of the first notice, ISO YYYY-MM-DD (default 2024-04-01) */
  readonly startDate?: string;
}

/** The notice mix (ours, roughly what a municipality sees): cumulative weights in table order. */
export const NOTICE_MIX: Readonly<Record<NoticeKind, number>> = Object.freeze({
  relocation: 0.35,
  "move-out": 0.15,
  "move-in": 0.1,
  "name-change": 0.1,
  correction: 0.1,
  death: 0.1,
  removal: 0.05,
  "resident-code-change": 0.05,
});
const MIX = Object.entries(NOTICE_MIX) as Array<[NoticeKind, number]>;

/** The feed spans about a year whatever its length: the date moves on by a day with this probability. */
const FEED_DAYS = 365;
const DEFAULT_NOTICE_START = "2024-04-01";
/** Residents are validated with a `now` far enough ahead that any real birth date passes. */
const FAR_FUTURE = new Date(Date.UTC(9999, 11, 31));
/** Standard form → one variant (異体字) of it, from the substitute table read backwards. */
const VARIANT_OF: ReadonlyMap<string, string> = new Map(
  Object.entries(SUBSTITUTES).reverse().map(([variant, standard]) => [standard, variant]),
);
const MUNICIPALITY_BY_CODE: ReadonlyMap<string, ListedMunicipality> = new Map(
  PREFECTURES.flatMap((p) => municipalitiesOf(p.code)).map((m) => [m.code, m]),
);

/** The registry's current view of one resident while the feed is generated. */
interface Life {
  code: string;
  municipalityCode: string;
  items: FourItems;
  /** last sequence number used for this resident (continues across a resident-code change) */
  seq: number;
}

function drawKind(rng: Random): NoticeKind {
  let x = rng.next();
  for (const [kind, w] of MIX) {
    if (x < w) return kind;
    x -= w;
  }
  return MIX[0]![0];
}

/** A different municipality: in the same prefecture 40% of the time (when it has another), else elsewhere. */
function drawDestination(rng: Random, fromCode: string): { pref: Prefecture; muni: ListedMunicipality } {
  const here = municipalitiesOf(fromCode.slice(0, 2)).filter((m) => m.code !== fromCode);
  if (here.length > 0 && rng.next() < 0.4) return { pref: prefecture(fromCode.slice(0, 2)), muni: rng.pick(here) };
  const others = PREFECTURES.filter((p) => p.code !== fromCode.slice(0, 2));
  const pref = rng.pick(others);
  return { pref, muni: rng.pick(municipalitiesOf(pref.code)) };
}

function withFamilyName(name: string, family: string): string {
  return `${family}${IDEOGRAPHIC_SPACE}${name.split(IDEOGRAPHIC_SPACE)[1]}`;
}

/** Swaps one character of the name for its variant (or back): the certified text stays the same. */
function swapVariant(name: string): string | undefined {
  const chars = [...name];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const other = SUBSTITUTES[ch] ?? VARIANT_OF.get(ch);
    if (other !== undefined) {
      chars[i] = other;
      return chars.join("");
    }
  }
  return undefined;
}

function shiftDays(iso: string, days: number): string {
  return new Date(Date.parse(`${iso}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Yields `count` change notices in the canonical JSON Lines form over `residents`, each valid for
 * `parseNotice` (with any `now` from the last effective date on). Deterministic for the same seed and
 * residents. The mix follows NOTICE_MIX; moves go to another municipality (40% in the same prefecture)
 * with a new address; name changes are marriages (the family name changes); half the corrections leave the
 * certified text as it was (a variant character swapped, or the same items re-stated) and half really
 * change an item. `after` is the resident's cumulative state and `before` the state before the notice;
 * sequence numbers run from 1 per resident, without gaps, and continue under the new code after a
 * resident-code change; effective dates never decrease and span about a year; nobody gets a notice
 * after death or removal. Notice ids are `N<8 hex of the seed>-<counter>`, unique within the feed.
 */
export function* generateNotices(opts: GenerateNoticesOptions): Generator<ChangeNoticeInput, void, undefined> {
  const { residents, count } = opts;
  if (!Number.isSafeInteger(count) || count < 0) throw new JpkiError("ERR_CONFIG_INVALID", "count must be a non-negative integer");
  const startDate = opts.startDate ?? DEFAULT_NOTICE_START;
  if (!isIsoDate(startDate)) throw new JpkiError("ERR_CONFIG_INVALID", "startDate must be a real calendar date written YYYY-MM-DD");

  const rng = createRandom(`notices:${String(opts.seed)}`);
  const prefix = `N${seedBits(opts.seed).toString(16).padStart(8, "0")}-`;
  const advance = Math.min(1, FEED_DAYS / Math.max(count, 1));

  // Indices of residents still alive; swap-remove keeps this O(1) and deterministic.
  const alive: number[] = [];
  residents.forEach((r, i) => {
    if (r.status === undefined || r.status === "" || r.status === "active") alive.push(i);
  });
  const lives = new Map<number, Life>();
  const lifeOf = (i: number): Life => {
    let life = lives.get(i);
    if (!life) {
      const r = parseResidentRecord(residents[i], { now: FAR_FUTURE, where: `residents[${i}]` });
      life = { code: r.residentCode, municipalityCode: r.municipalityCode, items: r.fourItems, seq: 0 };
      lives.set(i, life);
    }
    return life;
  };
  let usedCodes: Set<string> | undefined; // built on the first resident-code change only
  const freshCode = (): string => {
    usedCodes ??= new Set(residents.map((r) => r.residentCode));
    for (;;) {
      const code = makeResidentCode(String(rng.int(CODE_SPACE)).padStart(10, "0"));
      if (!usedCodes.has(code)) {
        usedCodes.add(code);
        return code;
      }
    }
  };

  let date = startDate;
  for (let n = 0; n < count && alive.length > 0; n++) {
    if (n > 0 && rng.next() < advance) date = shiftDays(date, 1);
    const slot = rng.int(alive.length);
    const idx = alive[slot]!;
    const life = lifeOf(idx);
    const before = life.items;
    let kind = drawKind(rng);
    const here = MUNICIPALITY_BY_CODE.get(life.municipalityCode);
    // A relocation or an address correction needs the municipality's name; for one we do not list, move.
    if (kind === "relocation" && !here) kind = "move-in";

    let issuer = life.municipalityCode;
    let newMunicipalityCode: string | undefined;
    let newResidentCode: string | undefined;
    let after: FourItems | undefined;
    let ends = false;
    switch (kind) {
      case "relocation": {
        const pref = prefecture(life.municipalityCode.slice(0, 2));
        let address = drawAddress(rng, pref, here!);
        for (let tries = 0; address === before.address && tries < 10; tries++) address = drawAddress(rng, pref, here!);
        after = { ...before, address };
        break;
      }
      case "move-out":
      case "move-in": {
        const dest = drawDestination(rng, life.municipalityCode);
        newMunicipalityCode = dest.muni.code;
        if (kind === "move-in") issuer = dest.muni.code; // 転入: the new municipality reports it
        after = { ...before, address: drawAddress(rng, dest.pref, dest.muni) };
        break;
      }
      case "name-change": {
        const current = before.name.split(IDEOGRAPHIC_SPACE)[0];
        let family = rng.next() < VARIANT_SHARE ? rng.pick(VARIANT_FAMILY_NAMES) : rng.pick(FAMILY_NAMES);
        while (family === current) family = rng.pick(FAMILY_NAMES);
        after = { ...before, name: withFamilyName(before.name, family) };
        break;
      }
      case "correction": {
        if (rng.next() < 0.5) {
          // The certified text stays: a variant character swapped, or the same items re-stated.
          after = { ...before, name: swapVariant(before.name) ?? before.name };
          break;
        }
        const what = rng.int(here ? 4 : 3);
        if (what === 0) {
          const pool = before.gender === "male" ? MALE_GIVEN_NAMES : FEMALE_GIVEN_NAMES;
          const given = before.name.split(IDEOGRAPHIC_SPACE)[1];
          let g = rng.pick(pool);
          while (g === given) g = rng.pick(pool);
          after = { ...before, name: `${before.name.split(IDEOGRAPHIC_SPACE)[0]}${IDEOGRAPHIC_SPACE}${g}` };
        } else if (what === 1) {
          after = { ...before, birthDate: shiftDays(before.birthDate, -(1 + rng.int(400))) };
        } else if (what === 2) {
          const gender: Gender = before.gender === "unknown" ? (rng.next() < 0.5 ? "male" : "female") : before.gender === "male" ? "female" : "male";
          after = { ...before, gender };
        } else {
          const pref = prefecture(life.municipalityCode.slice(0, 2));
          let address = drawAddress(rng, pref, here!);
          for (let tries = 0; address === before.address && tries < 10; tries++) address = drawAddress(rng, pref, here!);
          after = { ...before, address };
        }
        break;
      }
      case "death":
      case "removal":
        ends = true;
        break;
      case "resident-code-change":
        newResidentCode = freshCode();
        break;
    }

    life.seq++;
    yield {
      noticeId: `${prefix}${String(n + 1).padStart(7, "0")}`,
      residentCode: life.code,
      kind,
      effectiveDate: date,
      sequence: life.seq,
      municipalityCode: issuer,
      ...(newMunicipalityCode !== undefined ? { newMunicipalityCode } : {}),
      ...(newResidentCode !== undefined ? { newResidentCode } : {}),
      ...(after ? { after } : {}),
      before,
    };

    if (after) life.items = after;
    if (newMunicipalityCode !== undefined) life.municipalityCode = newMunicipalityCode;
    if (newResidentCode !== undefined) life.code = newResidentCode;
    if (ends) {
      alive[slot] = alive[alive.length - 1]!;
      alive.pop();
    }
  }
}
