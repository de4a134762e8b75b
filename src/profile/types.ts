/**
 * The four basic items (基本4情報) as the registry holds them: the true form, before any
 * substitute-character mapping. Dates are ISO calendar dates (Gregorian).
 */
export type Gender = "male" | "female" | "unknown";

export interface FourItems {
  /** 氏名: family name and given name separated by U+3000 (full-width space), e.g. "山田　太郎" */
  readonly name: string;
  /** 住所: from the prefecture onward, no postcode, e.g. "東京都千代田区千代田１番１号" */
  readonly address: string;
  /** 生年月日: ISO date "YYYY-MM-DD" (Gregorian) */
  readonly birthDate: string;
  /** 性別 */
  readonly gender: Gender;
}

/** The kinds of end-entity certificate (both issued per prefecture, each by its own CA). */
export type CertificateType = "signature" | "authentication";
