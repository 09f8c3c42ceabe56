//! Masking of personal data for lists, receipts shown on screen and the public board.
//!
//! Pure and panic-free; works on characters (not bytes), so Chinese names mask correctly.
//! A masked value keeps the length of the original, one `*` per hidden character.

const MASK: char = '*';

/// Keep the first `head` and last `tail` characters of `chars`, masking the rest.
/// The caller guarantees `head + tail <= chars.len()`; if not, everything is masked.
fn keep_ends(chars: &[char], head: usize, tail: usize) -> String {
    let n = chars.len();
    if head.saturating_add(tail) > n {
        return std::iter::repeat_n(MASK, n).collect();
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= n.saturating_sub(tail) {
                *c
            } else {
                MASK
            }
        })
        .collect()
}

/// Mask a person's name.
///
/// Chinese (and any non-ASCII) names keep their first and last character:
/// 张三→张*, 张三丰→张*丰, 欧阳娜娜→欧**娜; a single character becomes "*".
/// ASCII names keep their first letter only: "Smith" → "S****".
/// Surrounding whitespace is ignored; an empty name stays empty.
#[must_use]
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => MASK.to_string(),
        2 => keep_ends(&chars, 1, 0),
        _ if chars.iter().all(char::is_ascii) => keep_ends(&chars, 1, 0),
        _ => keep_ends(&chars, 1, 1),
    }
}

/// Mask an ID number: keep the first 4 and last 4 characters
/// (`4310**********2220`; 18 characters stay 18). Numbers shorter than 9 characters keep only
/// their last 2 (and numbers of 1–2 characters are masked completely).
#[must_use]
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n <= 2 => keep_ends(&chars, 0, 0),
        n if n < 9 => keep_ends(&chars, 0, 2),
        _ => keep_ends(&chars, 4, 4),
    }
}

/// Mask a phone number: 11 characters keep the first 3 and last 4 (`138****8000`); other
/// lengths keep the first 3 and last 2 when at least one character is left to mask, else only
/// the last 2 (and 1–2 characters are masked completely).
#[must_use]
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    match chars.len() {
        0 => String::new(),
        11 => keep_ends(&chars, 3, 4),
        n if n <= 2 => keep_ends(&chars, 0, 0),
        n if n < 6 => keep_ends(&chars, 0, 2),
        _ => keep_ends(&chars, 3, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张三丰"), "张*丰");
        assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_name("阿依古丽·买买提"), "阿******提");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name(" 王小红 "), "王*红");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("   "), "");
    }

    #[test]
    fn ascii_names() {
        assert_eq!(mask_name("Smith"), "S****");
        assert_eq!(mask_name("Li"), "L*");
        assert_eq!(mask_name("A"), "*");
        assert_eq!(mask_name("John Smith"), "J*********");
    }

    #[test]
    fn ids() {
        let masked = mask_id("431023199003072220");
        assert_eq!(masked, "4310**********2220");
        assert_eq!(masked.chars().count(), 18);
        assert_eq!(mask_id("11010519491231002X"), "1101**********002X");
        assert_eq!(mask_id("430102710101123"), "4301*******1123");
        assert_eq!(mask_id("E12345678"), "E123*5678");
        assert_eq!(mask_id("H1234567"), "******67");
        assert_eq!(mask_id("123"), "*23");
        assert_eq!(mask_id("12"), "**");
        assert_eq!(mask_id(""), "");
        // Character-aware even for unexpected input.
        assert_eq!(mask_id("身份证号码一二三四五"), "身份证号**二三四五");
    }

    #[test]
    fn phones() {
        assert_eq!(mask_phone("13812348000"), "138****8000");
        assert_eq!(mask_phone("073188886666"), "073*******66");
        assert_eq!(mask_phone("8888666"), "888**66");
        assert_eq!(mask_phone("123456"), "123*56");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone("12"), "**");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("１３８１２３４８０００"), "１３８****８０００");
    }

    #[test]
    fn masking_never_reveals_the_middle_and_keeps_length() {
        let samples = [
            "",
            "a",
            "ab",
            "张三",
            "12345678901",
            "43102319900307222X",
            "😀😀😀😀😀",
        ];
        for s in samples {
            for masked in [mask_name(s), mask_id(s), mask_phone(s)] {
                assert_eq!(masked.chars().count(), s.trim().chars().count(), "{s:?}");
                if s.chars().count() >= 3 {
                    assert!(masked.contains(MASK), "{s:?} -> {masked:?}");
                    assert_ne!(masked, s);
                }
            }
        }
    }
}
