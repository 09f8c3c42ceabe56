//! Reading what a clerk typed into the district's data forms (catalog, townships, points),
//! with one clear Chinese message per field that cannot be used. Numbers and codes are read
//! after NFKC (full-width digits count); names and texts keep their characters (full-width
//! Chinese punctuation stays as typed), only trimmed with runs of whitespace made one space.

use agent_core::domain::validate::normalize;

/// Text trimmed, each run of whitespace (U+3000 included) one space, zero-width characters
/// removed; no other change.
pub(super) fn tidy(input: &str) -> String {
    let visible: String = input
        .chars()
        .filter(|c| !matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'))
        .collect();
    visible.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A required line of text: tidied, non-empty, at most `max` characters, no control
/// characters.
pub(super) fn text(label: &str, input: &str, max: usize) -> Result<String, String> {
    let text = tidy(input);
    if text.is_empty() {
        return Err(format!("请填写{label}"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{label}中含有无法识别的字符，请删除后重新输入"));
    }
    let n = text.chars().count();
    if n > max {
        return Err(format!("{label}过长：最多{max}个字，现有{n}个字"));
    }
    Ok(text)
}

/// A whole number from 0 to `max`.
pub(super) fn whole(label: &str, input: &str, max: u32) -> Result<u32, String> {
    let text = normalize(input);
    if text.is_empty() {
        return Err(format!("请填写{label}"));
    }
    if text.starts_with('-') {
        return Err(format!("{label}不能为负数"));
    }
    match text.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("{label}不能超过{max}")),
        Err(_) => Err(format!("{label}请填写整数")),
    }
}

/// A decimal with at most two places, not negative, at most `max` (in hundredths): an amount
/// in yuan read as fen, or a distance in km read in hundredths.
pub(super) fn hundredths(label: &str, input: &str, max: i64) -> Result<i64, String> {
    let text = normalize(input);
    let text = text.strip_suffix('元').unwrap_or(&text).trim();
    if text.is_empty() {
        return Err(format!("请填写{label}"));
    }
    if text.starts_with('-') {
        return Err(format!("{label}不能为负数"));
    }
    let (whole, part) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(part) {
        return Err(format!("{label}请填写数字，如 12.50"));
    }
    if part.len() > 2 {
        return Err(format!("{label}最多两位小数"));
    }
    let too_big = || format!("{label}不能超过{}", shown(max));
    let whole: i64 = whole.parse().map_err(|_| too_big())?;
    let part: i64 = format!("{part:0<2}").parse().unwrap_or(0);
    let value = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(part))
        .filter(|v| *v <= max)
        .ok_or_else(too_big)?;
    Ok(value)
}

/// Hundredths as a decimal, two places (`1250` → `12.50`).
pub(super) fn shown(hundredths: i64) -> String {
    agent_core::domain::receipt::yuan(hundredths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_take_two_places_and_refuse_negatives_and_junk() {
        let fen = |s: &str| hundredths("收费金额", s, 100_000_000);
        assert_eq!(fen("12"), Ok(1200));
        assert_eq!(fen("12.5"), Ok(1250));
        assert_eq!(fen("０.０５"), Ok(5));
        assert_eq!(fen(" 3.10元 "), Ok(310));
        assert!(fen("-1").unwrap_err().contains("不能为负数"));
        assert!(fen("1.234").unwrap_err().contains("两位小数"));
        assert!(fen("abc").unwrap_err().contains("请填写数字"));
        assert!(fen(".5").is_err());
        assert!(fen("").unwrap_err().contains("请填写"));
        assert!(fen("99999999999999999999")
            .unwrap_err()
            .contains("不能超过"));
        assert!(fen("1000001").unwrap_err().contains("不能超过1000000.00"));
        assert_eq!(shown(1250), "12.50");
    }

    #[test]
    fn numbers_and_text() {
        assert_eq!(whole("承诺时限", "５", 999), Ok(5));
        assert!(whole("承诺时限", "-1", 999).unwrap_err().contains("负数"));
        assert!(whole("承诺时限", "1000", 999).is_err());
        assert!(whole("承诺时限", "2.5", 999).unwrap_err().contains("整数"));
        assert_eq!(text("名称", "  户口  ", 10), Ok("户口".into()));
        assert_eq!(
            text("依据", "《条例》（第\u{200B}3条）\u{3000} 等", 20),
            Ok("《条例》（第3条） 等".into())
        );
        assert!(text("名称", "", 10).unwrap_err().contains("请填写名称"));
        assert!(text("名称", "一二三四五", 4).unwrap_err().contains("过长"));
    }
}
