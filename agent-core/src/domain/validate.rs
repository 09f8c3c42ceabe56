//! Input validation for what an agent types on the tablet (or an applicant sends by SMS):
//! ID numbers, mobile numbers and required free-text fields.
//!
//! Everything here is pure: no I/O, no clock (the caller passes `today`), no panics on any
//! input. Error messages are in Simplified Chinese because village agents read them, and they
//! never contain the value that was typed (an ID number, phone or name must not leak into
//! logs through an error).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Invisible characters that creep in through copy and paste and carry no meaning in any
/// field we collect (zero-width space/non-joiner/joiner, word joiner, byte-order mark).
/// They are removed so that "张\u{200B}三" and "张三" are the same name.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// NFKC-normalise a text input, trim it and collapse runs of whitespace (incl. U+3000) into one
/// ASCII space.
///
/// NFKC turns full-width digits and letters (`１２３`, `ＡＢＣ`) into ASCII and the ideographic
/// space U+3000 into U+0020. Zero-width characters (U+200B–U+200D, U+2060, U+FEFF) are removed.
#[must_use]
pub fn normalize(input: &str) -> String {
    let nfkc: String = input.nfkc().filter(|c| !is_invisible(*c)).collect();
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// NFKC-normalise and drop every whitespace and invisible character (for numbers, where
/// agents type spaces to group digits).
fn compact(input: &str) -> String {
    input
        .nfkc()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .collect()
}

/// The kind of identity document an applicant presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// 居民身份证 (GB 11643-1999, 18 characters; legacy cards 15 digits).
    ResidentId,
    /// 护照.
    Passport,
    /// 港澳居民来往内地通行证.
    HkMacaoPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanPermit,
    /// 外国人永久居留身份证.
    ForeignPermanentId,
    /// 其他证件.
    Other,
}

impl IdKind {
    /// The Chinese name of the document, as agents know it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            IdKind::ResidentId => "居民身份证",
            IdKind::Passport => "护照",
            IdKind::HkMacaoPermit => "港澳居民来往内地通行证",
            IdKind::TaiwanPermit => "台湾居民来往大陆通行证",
            IdKind::ForeignPermanentId => "外国人永久居留身份证",
            IdKind::Other => "其他证件",
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A checked ID number. `stored` is the number as given (normalised: NFKC, spaces removed,
/// x→X); `search_key` is the 18-digit form for legacy 15-digit resident IDs (upgraded: insert
/// "19" after the 6-digit region code, compute the check char), else equal to `stored`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdNumber {
    pub kind: IdKind,
    pub stored: String,
    pub search_key: String,
    pub legacy: bool,
}

impl fmt::Debug for IdNumber {
    /// Never prints the number itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdNumber")
            .field("kind", &self.kind)
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

/// A free-text field of a ticket or a form, named in messages by its Chinese label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ApplicantName,
    Village,
    Group,
    Address,
    ItemCode,
    ItemName,
    AgentName,
    ReceiptNo,
    Remarks,
    MaterialName,
    Reason,
}

impl Field {
    /// The Chinese label shown to agents.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Field::ApplicantName => "申请人姓名",
            Field::Village => "村",
            Field::Group => "组",
            Field::Address => "住址",
            Field::ItemCode => "事项编码",
            Field::ItemName => "事项名称",
            Field::AgentName => "代理员",
            Field::ReceiptNo => "收据号",
            Field::Remarks => "备注",
            Field::MaterialName => "材料名称",
            Field::Reason => "理由",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why an input was refused. Messages are shown to village agents as they are: they say what
/// is wrong and what to do, and never repeat the value typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required text field is empty (or only whitespace).
    #[error("请填写{0}")]
    Empty(Field),
    /// A text field is longer than allowed (counted in characters, not bytes).
    #[error("{field}过长：最多{max}个字，现有{actual}个字，请精简后重新输入")]
    TooLong {
        field: Field,
        max: usize,
        actual: usize,
    },
    /// A text field contains control characters.
    #[error("{0}中含有无法识别的字符，请删除后重新输入")]
    BadText(Field),

    /// No ID number given.
    #[error("请填写{0}号码")]
    IdEmpty(IdKind),
    /// The ID number has the wrong number of characters.
    #[error("{}", id_length_message(*.kind, *.len))]
    IdWrongLength { kind: IdKind, len: usize },
    /// The ID number contains characters it may not contain.
    #[error("{}", id_chars_message(*.0))]
    IdBadCharacters(IdKind),
    /// The first digit of the region code (first 6 digits) is 0.
    #[error("身份证号前6位地区码不正确，请核对后重新输入")]
    IdBadRegion,
    /// The birth date inside a resident ID is not a real date, or is before 1900.
    #[error("身份证号中的出生日期不是有效日期，请核对后重新输入")]
    IdBadBirthDate,
    /// The birth date inside a resident ID is after today.
    #[error("身份证号中的出生日期晚于今天，请核对后重新输入；如号码无误，请检查平板的日期设置")]
    IdBirthDateInFuture,
    /// The 18th character does not match the ISO 7064 MOD 11-2 check.
    #[error("身份证号校验位不正确，请核对后重新输入")]
    IdBadCheckChar,

    /// No mobile number given.
    #[error("请填写手机号码")]
    MobileEmpty,
    /// The mobile number contains something other than digits and separators.
    #[error("手机号码只能包含数字（可带+86），请核对后重新输入")]
    MobileBadCharacters,
    /// The mobile number does not have 11 digits.
    #[error("手机号码应为11位数字，现为{len}位，请核对后重新输入")]
    MobileWrongLength { len: usize },
    /// 11 digits, but not a mainland mobile number (must start with 13–19).
    #[error("手机号码应以13至19开头，请核对后重新输入；座机或境外号码请写在备注中")]
    MobileNotMainland,
}

fn id_length_message(kind: IdKind, len: usize) -> String {
    match kind {
        IdKind::ResidentId => {
            format!("身份证号应为18位（旧版证件为15位），现为{len}位，请核对后重新输入")
        }
        other => format!(
            "{other}号码应为{ID_OTHER_MIN}至{ID_OTHER_MAX}位字母或数字，现为{len}位，请核对后重新输入"
        ),
    }
}

fn id_chars_message(kind: IdKind) -> String {
    match kind {
        IdKind::ResidentId => {
            "身份证号只能由数字组成（18位号码最后一位可以是X），请核对后重新输入".to_string()
        }
        other => format!("{other}号码只能包含英文字母和数字，请核对后重新输入"),
    }
}

/// Shortest accepted number for kinds other than resident IDs.
const ID_OTHER_MIN: usize = 5;
/// Longest accepted number for kinds other than resident IDs.
const ID_OTHER_MAX: usize = 20;
/// Longest ID number of any kind as stored (resident IDs have 18 characters).
pub const MAX_ID_NUMBER_CHARS: usize = ID_OTHER_MAX;
/// Digits of a mainland mobile number as stored.
pub const MOBILE_DIGITS: usize = 11;

/// GB 11643-1999 weights for the first 17 characters.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder mod 11.
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The GB 11643-1999 check character (ISO 7064 MOD 11-2) for the first 17 characters of a
/// resident ID given as ASCII digits (`b"43102319900307123"` → `'1'`).
///
/// Callers check that all 17 bytes are ASCII digits first; a byte that is not one counts as 0
/// (never a panic).
#[must_use]
pub fn id_check_char(first17: &[u8; 17]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| match b {
            b'0'..=b'9' => u32::from(b - b'0') * w,
            _ => 0,
        })
        .sum();
    usize::try_from(sum % 11)
        .ok()
        .and_then(|i| ID_CHECK.get(i))
        .copied()
        .unwrap_or('X')
}

/// The numeric value of a run of ASCII digits (`None` if empty, non-digit or too long).
fn digits_value(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    s.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Check the birth date `yyyymmdd` (8 ASCII digits): a real date, not before 1900-01-01,
/// not after `today`.
fn check_birth_date(yyyymmdd: &[u8], today: NaiveDate) -> Result<NaiveDate, ValidationError> {
    let (y, m, d) = match (
        yyyymmdd.get(0..4).and_then(digits_value),
        yyyymmdd.get(4..6).and_then(digits_value),
        yyyymmdd.get(6..8).and_then(digits_value),
    ) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(ValidationError::IdBadBirthDate),
    };
    let year = i32::try_from(y).map_err(|_| ValidationError::IdBadBirthDate)?;
    let date = NaiveDate::from_ymd_opt(year, m, d).ok_or(ValidationError::IdBadBirthDate)?;
    if date.year() < 1900 {
        return Err(ValidationError::IdBadBirthDate);
    }
    if date > today {
        return Err(ValidationError::IdBirthDateInFuture);
    }
    Ok(date)
}

fn check_region(id: &[u8]) -> Result<(), ValidationError> {
    match id.first() {
        Some(b'1'..=b'9') => Ok(()),
        _ => Err(ValidationError::IdBadRegion),
    }
}

/// Check an ID number of the given kind.
///
/// Resident IDs (GB 11643-1999): 18 characters, 17 digits and a check character (digit or X,
/// lowercase x accepted), region code not starting with 0, a real birth date between
/// 1900-01-01 and `today`; or a legacy 15-digit number (birth date YYMMDD read as 19YYMMDD),
/// accepted with `legacy = true` and an upgraded 18-character `search_key`.
///
/// Other kinds: 5–20 ASCII letters or digits, uppercased; no check digit.
///
/// In both cases NFKC comes first (full-width digits count) and all whitespace is removed.
pub fn check_id_number(
    kind: IdKind,
    input: &str,
    today: NaiveDate,
) -> Result<IdNumber, ValidationError> {
    let text = compact(input);
    if text.is_empty() {
        return Err(ValidationError::IdEmpty(kind));
    }
    if !text.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::IdBadCharacters(kind));
    }
    let text = text.to_ascii_uppercase();
    match kind {
        IdKind::ResidentId => check_resident_id(text, today),
        other => {
            let len = text.len();
            if !(ID_OTHER_MIN..=ID_OTHER_MAX).contains(&len) {
                return Err(ValidationError::IdWrongLength { kind: other, len });
            }
            Ok(IdNumber {
                kind: other,
                search_key: text.clone(),
                stored: text,
                legacy: false,
            })
        }
    }
}

/// `text` is non-empty, ASCII alphanumeric and uppercased.
fn check_resident_id(text: String, today: NaiveDate) -> Result<IdNumber, ValidationError> {
    let kind = IdKind::ResidentId;
    let bytes = text.as_bytes();
    match bytes.len() {
        18 => {
            let (body, last) = bytes
                .split_at_checked(17)
                .ok_or(ValidationError::IdWrongLength { kind, len: 18 })?;
            let check = match last {
                [c @ (b'0'..=b'9' | b'X')] => char::from(*c),
                _ => return Err(ValidationError::IdBadCharacters(kind)),
            };
            let first17: &[u8; 17] = body
                .try_into()
                .map_err(|_| ValidationError::IdWrongLength { kind, len: 18 })?;
            if !first17.iter().all(u8::is_ascii_digit) {
                return Err(ValidationError::IdBadCharacters(kind));
            }
            check_region(first17)?;
            check_birth_date(first17.get(6..14).unwrap_or_default(), today)?;
            if id_check_char(first17) != check {
                return Err(ValidationError::IdBadCheckChar);
            }
            Ok(IdNumber {
                kind,
                search_key: text.clone(),
                stored: text,
                legacy: false,
            })
        }
        15 => {
            if !bytes.iter().all(u8::is_ascii_digit) {
                return Err(ValidationError::IdBadCharacters(kind));
            }
            check_region(bytes)?;
            let (region, rest) = bytes
                .split_at_checked(6)
                .ok_or(ValidationError::IdWrongLength { kind, len: 15 })?;
            let mut birth = Vec::with_capacity(8);
            birth.extend_from_slice(b"19");
            birth.extend_from_slice(rest.get(0..6).unwrap_or_default());
            check_birth_date(&birth, today)?;

            let mut first17 = [0u8; 17];
            for (slot, b) in first17
                .iter_mut()
                .zip(region.iter().chain(b"19").chain(rest))
            {
                *slot = *b;
            }
            let check = id_check_char(&first17);
            let mut search_key: String = first17.iter().map(|b| char::from(*b)).collect();
            search_key.push(check);
            Ok(IdNumber {
                kind,
                stored: text,
                search_key,
                legacy: true,
            })
        }
        len => Err(ValidationError::IdWrongLength { kind, len }),
    }
}

/// Separators people type inside phone numbers: dashes of every width, dots, brackets.
/// (Spaces are removed separately; full-width forms are already ASCII after NFKC.)
fn is_phone_separator(c: char) -> bool {
    const WIDE: [char; 7] = [
        '\u{2212}', // minus sign
        '\u{30FC}', // katakana prolonged sound mark, typed as a dash by some IMEs
        '\u{3010}', // 【
        '\u{3011}', // 】
        '\u{3014}', // 〔
        '\u{3015}', // 〕
        '\u{00B7}', // middle dot
    ];
    matches!(c, '-' | '.' | '(' | ')' | '[' | ']' | '{' | '}')
        || ('\u{2010}'..='\u{2015}').contains(&c) // hyphen … horizontal bar
        || WIDE.contains(&c)
}

/// A mainland mobile number reduced to its 11 digits: remove spaces, dashes, dots, brackets;
/// strip a leading +86, 0086 or 86 (only when what remains is 11 digits); must then match
/// 1[3-9] + 9 digits.
pub fn check_mobile(input: &str) -> Result<String, ValidationError> {
    let text: String = compact(input)
        .chars()
        .filter(|c| !is_phone_separator(*c))
        .collect();
    if text.is_empty() {
        return Err(ValidationError::MobileEmpty);
    }
    let (plus, digits) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::MobileBadCharacters);
    }
    let local = if plus {
        // An international form must be +86 followed by the 11 digits.
        match digits.strip_prefix("86") {
            Some(rest) if rest.len() == MOBILE_DIGITS => rest,
            Some(rest) => return Err(ValidationError::MobileWrongLength { len: rest.len() }),
            None => return Err(ValidationError::MobileNotMainland),
        }
    } else {
        match (digits.strip_prefix("0086"), digits.strip_prefix("86")) {
            (Some(rest), _) if rest.len() == MOBILE_DIGITS => rest,
            (_, Some(rest)) if rest.len() == MOBILE_DIGITS => rest,
            _ => digits,
        }
    };
    if local.len() != MOBILE_DIGITS {
        return Err(ValidationError::MobileWrongLength { len: local.len() });
    }
    match local.as_bytes() {
        [b'1', b'3'..=b'9', ..] => Ok(local.to_string()),
        _ => Err(ValidationError::MobileNotMainland),
    }
}

/// A required free-text field: normalized, non-empty, at most `max_chars` chars.
/// Control characters (other than whitespace, which is collapsed) are refused.
pub fn check_required(
    field: Field,
    input: &str,
    max_chars: usize,
) -> Result<String, ValidationError> {
    let text = normalize(input);
    if text.is_empty() {
        return Err(ValidationError::Empty(field));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::BadText(field));
    }
    let actual = text.chars().count();
    if actual > max_chars {
        return Err(ValidationError::TooLong {
            field,
            max: max_chars,
            actual,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), ValidationError>;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn today() -> NaiveDate {
        date(2026, 3, 2)
    }

    /// Build a valid 18-character resident ID from its first 17 digits.
    fn with_check(first17: &str) -> String {
        let mut arr = [0u8; 17];
        for (slot, b) in arr.iter_mut().zip(first17.bytes()) {
            *slot = b;
        }
        let c = id_check_char(&arr);
        format!("{first17}{c}")
    }

    #[test]
    fn check_char_matches_the_standard_examples() {
        // The two worked examples printed in GB 11643-1999.
        assert_eq!(id_check_char(b"11010519491231002"), 'X');
        assert_eq!(id_check_char(b"44052418800101001"), '4');
        assert_eq!(id_check_char(b"43102319900307123"), '1');
        assert_eq!(id_check_char(b"43010219710101123"), '6');
        // A stray non-digit counts as 0 rather than panicking.
        assert_eq!(
            id_check_char(b"4310231990030712a"),
            id_check_char(b"43102319900307120")
        );
    }

    #[test]
    fn normalize_folds_width_and_whitespace() {
        assert_eq!(normalize("  张\u{3000}\u{3000}三 \t\n丰  "), "张 三 丰");
        assert_eq!(normalize("ＡＢＣ１２３"), "ABC123");
        assert_eq!(normalize("张\u{200B}三\u{FEFF}"), "张三");
        assert_eq!(normalize(" \u{3000} "), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn accepts_a_constructed_valid_id() -> TestResult {
        let id = with_check("43102319900307123");
        assert_eq!(id, "431023199003071231");
        let checked = check_id_number(IdKind::ResidentId, &id, today())?;
        assert_eq!(checked.kind, IdKind::ResidentId);
        assert_eq!(checked.stored, id);
        assert_eq!(checked.search_key, id);
        assert!(!checked.legacy);
        Ok(())
    }

    #[test]
    fn accepts_lowercase_x_spaces_and_full_width() -> TestResult {
        let checked = check_id_number(IdKind::ResidentId, "110105 19491231 002x", today())?;
        assert_eq!(checked.stored, "11010519491231002X");
        assert_eq!(checked.search_key, "11010519491231002X");
        let full = check_id_number(
            IdKind::ResidentId,
            "４３１０２３　１９９００３０７１２３１",
            today(),
        )?;
        assert_eq!(full.stored, "431023199003071231");
        let full_x = check_id_number(IdKind::ResidentId, "11010519491231002ｘ", today())?;
        assert_eq!(full_x.stored, "11010519491231002X");
        Ok(())
    }

    #[test]
    fn legacy_fifteen_digit_id_gets_an_upgraded_search_key() -> TestResult {
        let checked = check_id_number(IdKind::ResidentId, "430102710101123", today())?;
        assert!(checked.legacy);
        assert_eq!(checked.stored, "430102710101123");
        assert_eq!(checked.search_key, "430102197101011236");
        // The upgraded key is itself a valid 18-character ID.
        let upgraded = check_id_number(IdKind::ResidentId, &checked.search_key, today())?;
        assert!(!upgraded.legacy);
        // Feb 29 1988 is a real date.
        let leap = check_id_number(IdKind::ResidentId, "510921880229051", today())?;
        assert_eq!(leap.search_key, "510921198802290511");
        Ok(())
    }

    #[test]
    fn legacy_id_errors() {
        let t = today();
        // 1971-02-30 does not exist.
        assert_eq!(
            check_id_number(IdKind::ResidentId, "430102710230123", t),
            Err(ValidationError::IdBadBirthDate)
        );
        // 1989-02-29 does not exist.
        assert_eq!(
            check_id_number(IdKind::ResidentId, "430102890229123", t),
            Err(ValidationError::IdBadBirthDate)
        );
        assert_eq!(
            check_id_number(IdKind::ResidentId, "43010271010112X", t),
            Err(ValidationError::IdBadCharacters(IdKind::ResidentId))
        );
        assert_eq!(
            check_id_number(IdKind::ResidentId, "030102710101123", t),
            Err(ValidationError::IdBadRegion)
        );
    }

    #[test]
    fn empty_id_is_refused() {
        assert_eq!(
            check_id_number(IdKind::ResidentId, " \u{3000} ", today()),
            Err(ValidationError::IdEmpty(IdKind::ResidentId))
        );
        assert_eq!(
            check_id_number(IdKind::Passport, "", today()),
            Err(ValidationError::IdEmpty(IdKind::Passport))
        );
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(
            check_id_number(IdKind::ResidentId, "43102319900307123", today()),
            Err(ValidationError::IdWrongLength {
                kind: IdKind::ResidentId,
                len: 17
            })
        );
        assert_eq!(
            check_id_number(IdKind::ResidentId, "4310231990030712311", today()),
            Err(ValidationError::IdWrongLength {
                kind: IdKind::ResidentId,
                len: 19
            })
        );
    }

    #[test]
    fn bad_characters_are_refused() {
        let t = today();
        for input in [
            "43102319900307123-",
            "4310231990030X1231",
            "43102319900307123Y",
            "张三",
        ] {
            assert_eq!(
                check_id_number(IdKind::ResidentId, input, t),
                Err(ValidationError::IdBadCharacters(IdKind::ResidentId)),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_check_char_is_refused() {
        // Last digit of a valid ID changed.
        assert_eq!(
            check_id_number(IdKind::ResidentId, "431023199003071232", today()),
            Err(ValidationError::IdBadCheckChar)
        );
        // Two digits swapped.
        assert_eq!(
            check_id_number(IdKind::ResidentId, "431023199003071321", today()),
            Err(ValidationError::IdBadCheckChar)
        );
    }

    #[test]
    fn bad_region_is_refused() {
        let id = with_check("03102319900307123");
        assert_eq!(
            check_id_number(IdKind::ResidentId, &id, today()),
            Err(ValidationError::IdBadRegion)
        );
    }

    #[test]
    fn bad_birth_dates_are_refused() -> TestResult {
        let t = today();
        // Feb 29 on a non-leap year (1999), with a correct check character.
        assert_eq!(
            check_id_number(IdKind::ResidentId, &with_check("43102319990229123"), t),
            Err(ValidationError::IdBadBirthDate)
        );
        // Feb 29 on a leap year (2000) is fine; Feb 28 1999 is fine.
        check_id_number(IdKind::ResidentId, &with_check("43102320000229123"), t)?;
        check_id_number(IdKind::ResidentId, &with_check("43102319990228123"), t)?;
        // Month 13, day 00, day 32.
        for first17 in [
            "43102319901301123",
            "43102319900100123",
            "43102319900132123",
        ] {
            assert_eq!(
                check_id_number(IdKind::ResidentId, &with_check(first17), t),
                Err(ValidationError::IdBadBirthDate),
                "{first17}"
            );
        }
        // Before 1900: the standard's own example (born 1880) is refused.
        assert_eq!(
            check_id_number(IdKind::ResidentId, "440524188001010014", t),
            Err(ValidationError::IdBadBirthDate)
        );
        assert_eq!(
            check_id_number(IdKind::ResidentId, &with_check("43102318991231123"), t),
            Err(ValidationError::IdBadBirthDate)
        );
        check_id_number(IdKind::ResidentId, &with_check("43102319000101123"), t)?;
        Ok(())
    }

    #[test]
    fn future_birth_date_is_refused() -> TestResult {
        let t = today();
        assert_eq!(
            check_id_number(IdKind::ResidentId, &with_check("43102320260303123"), t),
            Err(ValidationError::IdBirthDateInFuture)
        );
        // Born today is accepted.
        check_id_number(IdKind::ResidentId, &with_check("43102320260302123"), t)?;
        Ok(())
    }

    #[test]
    fn other_kinds_are_uppercased_alphanumerics() -> TestResult {
        let t = today();
        let p = check_id_number(IdKind::Passport, " e1234 5678 ", t)?;
        assert_eq!(p.stored, "E12345678");
        assert_eq!(p.search_key, "E12345678");
        assert_eq!(p.kind, IdKind::Passport);
        assert!(!p.legacy);
        let hk = check_id_number(IdKind::HkMacaoPermit, "Ｈ１２３４５６７８", t)?;
        assert_eq!(hk.stored, "H12345678");
        assert_eq!(
            check_id_number(IdKind::TaiwanPermit, "1234", t),
            Err(ValidationError::IdWrongLength {
                kind: IdKind::TaiwanPermit,
                len: 4
            })
        );
        assert_eq!(
            check_id_number(IdKind::Other, "123456789012345678901", t),
            Err(ValidationError::IdWrongLength {
                kind: IdKind::Other,
                len: 21
            })
        );
        assert_eq!(
            check_id_number(IdKind::ForeignPermanentId, "USA-123456", t),
            Err(ValidationError::IdBadCharacters(IdKind::ForeignPermanentId))
        );
        assert_eq!(
            check_id_number(IdKind::Passport, "É1234567", t),
            Err(ValidationError::IdBadCharacters(IdKind::Passport))
        );
        Ok(())
    }

    #[test]
    fn id_debug_and_errors_do_not_leak_the_number() -> TestResult {
        let id = "11010519491231002X";
        let checked = check_id_number(IdKind::ResidentId, id, today())?;
        let debug = format!("{checked:?}");
        assert!(debug.contains("ResidentId"), "{debug}");
        assert!(!debug.contains("1101"), "{debug}");
        assert!(!debug.contains("002X"), "{debug}");
        for bad in [
            "11010519491231002Y",
            "110105194912310021",
            "1101051949123100",
            "11010519491331002X",
        ] {
            match check_id_number(IdKind::ResidentId, bad, today()) {
                Ok(_) => panic!("accepted a bad number"),
                Err(e) => {
                    let shown = format!("{e} {e:?}");
                    assert!(!shown.contains("110105"), "{shown}");
                    assert!(!shown.contains("1949"), "{shown}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn serde_names_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&IdKind::HkMacaoPermit).unwrap_or_default(),
            "\"hk_macao_permit\""
        );
        assert_eq!(
            serde_json::from_str::<IdKind>("\"foreign_permanent_id\"").ok(),
            Some(IdKind::ForeignPermanentId)
        );
    }

    #[test]
    fn mobile_forms_are_accepted() -> TestResult {
        for input in [
            "13800138000",
            "１３８ ００１３ ８０００",
            "+86 138-0013-8000",
            "＋８６ １３８００１３８０００",
            "0086 138 0013 8000",
            "008613800138000",
            "8613800138000",
            "(+86) 138.0013.8000",
            "138—0013—8000",
            "【138】0013 8000",
            "\u{3000}138 0013 8000\u{3000}",
        ] {
            assert_eq!(check_mobile(input)?, "13800138000", "{input}");
        }
        assert_eq!(check_mobile("19912345678")?, "19912345678");
        Ok(())
    }

    #[test]
    fn mobile_errors() {
        assert_eq!(check_mobile(""), Err(ValidationError::MobileEmpty));
        assert_eq!(check_mobile(" - . "), Err(ValidationError::MobileEmpty));
        assert_eq!(
            check_mobile("138OO138OOO"),
            Err(ValidationError::MobileBadCharacters)
        );
        assert_eq!(
            check_mobile("138+00138000"),
            Err(ValidationError::MobileBadCharacters)
        );
        assert_eq!(check_mobile("+"), Err(ValidationError::MobileBadCharacters));
        assert_eq!(
            check_mobile("1380013800"),
            Err(ValidationError::MobileWrongLength { len: 10 })
        );
        assert_eq!(
            check_mobile("138001380001"),
            Err(ValidationError::MobileWrongLength { len: 12 })
        );
        assert_eq!(
            check_mobile("+86 1380013800"),
            Err(ValidationError::MobileWrongLength { len: 10 })
        );
        // 86 is only stripped when 11 digits remain.
        assert_eq!(
            check_mobile("861380013800"),
            Err(ValidationError::MobileWrongLength { len: 12 })
        );
        // 0086 likewise; 11 digits that happen to start with 86 are not stripped.
        assert_eq!(
            check_mobile("00861380013800"),
            Err(ValidationError::MobileWrongLength { len: 14 })
        );
        assert_eq!(
            check_mobile("86138001380"),
            Err(ValidationError::MobileNotMainland)
        );
        // Hong Kong number, landline, 12x prefix.
        assert_eq!(
            check_mobile("+852 9123 4567"),
            Err(ValidationError::MobileNotMainland)
        );
        assert_eq!(
            check_mobile("0731-8888888"),
            Err(ValidationError::MobileNotMainland)
        );
        assert_eq!(
            check_mobile("12800138000"),
            Err(ValidationError::MobileNotMainland)
        );
        assert_eq!(
            check_mobile("23800138000"),
            Err(ValidationError::MobileNotMainland)
        );
        let shown = format!("{}", ValidationError::MobileWrongLength { len: 10 });
        assert!(shown.contains("10位"), "{shown}");
    }

    #[test]
    fn required_fields() -> TestResult {
        assert_eq!(
            check_required(Field::ApplicantName, "  张　三 ", 20)?,
            "张 三"
        );
        assert_eq!(check_required(Field::Village, "东湾村", 3)?, "东湾村");
        assert_eq!(
            check_required(Field::Village, "东湾村村", 3),
            Err(ValidationError::TooLong {
                field: Field::Village,
                max: 3,
                actual: 4
            })
        );
        assert_eq!(
            check_required(Field::Reason, " \u{3000}\t", 100),
            Err(ValidationError::Empty(Field::Reason))
        );
        assert_eq!(
            check_required(Field::Remarks, "abc\u{0007}", 100),
            Err(ValidationError::BadText(Field::Remarks))
        );
        assert_eq!(check_required(Field::ItemCode, "ＳＢ００１", 5)?, "SB001");
        Ok(())
    }

    #[test]
    fn messages_are_chinese_and_name_the_field() {
        assert_eq!(
            ValidationError::Empty(Field::ApplicantName).to_string(),
            "请填写申请人姓名"
        );
        assert_eq!(
            ValidationError::IdBadCheckChar.to_string(),
            "身份证号校验位不正确，请核对后重新输入"
        );
        let too_long = ValidationError::TooLong {
            field: Field::Address,
            max: 50,
            actual: 61,
        }
        .to_string();
        assert!(too_long.starts_with("住址过长"), "{too_long}");
        assert!(
            too_long.contains("50") && too_long.contains("61"),
            "{too_long}"
        );
        let len = ValidationError::IdWrongLength {
            kind: IdKind::Passport,
            len: 3,
        }
        .to_string();
        assert!(len.starts_with("护照号码应为5至20位"), "{len}");
        let labels = [
            (Field::ApplicantName, "申请人姓名"),
            (Field::Village, "村"),
            (Field::Group, "组"),
            (Field::Address, "住址"),
            (Field::ItemCode, "事项编码"),
            (Field::ItemName, "事项名称"),
            (Field::AgentName, "代理员"),
            (Field::ReceiptNo, "收据号"),
            (Field::Remarks, "备注"),
            (Field::MaterialName, "材料名称"),
            (Field::Reason, "理由"),
        ];
        for (field, label) in labels {
            assert_eq!(field.label(), label);
            assert_eq!(
                ValidationError::Empty(field).to_string(),
                format!("请填写{label}")
            );
        }
    }

    /// A deterministic sweep over awkward inputs: nothing may panic.
    #[test]
    fn no_panics_on_arbitrary_input() {
        let alphabet: Vec<char> =
            "0123456789xX+-. ()　１２３ｘ８６张三\u{200B}\u{0}\u{FEFF}é\u{301}ﬀ😀"
                .chars()
                .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 24).unwrap_or(0);
            let s: String = (0..len)
                .filter_map(|_| {
                    let i = usize::try_from(next()).unwrap_or(0) % alphabet.len().max(1);
                    alphabet.get(i).copied()
                })
                .collect();
            let _ = normalize(&s);
            if check_mobile(&s).is_ok() {
                accepted += 1;
            }
            for kind in [IdKind::ResidentId, IdKind::Passport, IdKind::Other] {
                if let Ok(id) = check_id_number(kind, &s, today()) {
                    assert!(id.stored.is_ascii() && id.search_key.is_ascii());
                }
            }
            let _ = check_required(Field::Remarks, &s, 10);
        }
        // Sanity: the sweep ran (the count itself is not meaningful).
        assert!(accepted < 20_000);
    }
}
