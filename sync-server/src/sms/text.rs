//! What a villager's inbound SMS asks: a status query, a 好差评 rating, 退订, or nothing we
//! understand.
//!
//! Villagers type on keypad phones, in Chinese or ASCII mode, with full-width digits, extra
//! words, greetings, emoji and numbers split into groups. [`parse`] is tolerant of all that,
//! but it never guesses a ticket: a number is either one whose Damm check digit holds, or the
//! reply asks to check it.
//!
//! # How a text is read
//!
//! The text is cleaned (control characters become spaces; bidi controls, variation selectors,
//! the emoji keycap mark and tag characters are dropped), NFKC-normalised and its whitespace
//! collapsed ([`normalize`]): `１２３` is `123`, `ＣＸ` is `CX`, `⑤` is `5`. Keywords are
//! matched without regard to ASCII case.
//!
//! **Numbers.** Runs of ASCII digits joined by 1–3 separator characters (space, `-`, `.`, `_`,
//! `·`, `。`, dashes) form a chain. Inside a chain, consecutive whole groups of exactly 12
//! digits whose check digit holds are a ticket number (so `1234 5678 9012 5` is a number and a
//! rating digit); a group is never split. What is left of a chain is *number-like* when it has
//! 8 digits or more, except that an 11-digit mainland mobile number (`1[3-9]…`, any grouping)
//! is only *weakly* number-like and a separated date (`2024-05-01`, `2024.5.01`) is not
//! number-like at all.
//!
//! **Precedence**, first that applies:
//!
//! 1. `退订` (or `退訂`, spaces inside ignored) anywhere, or a text whose letters and digits
//!    are exactly `TD` (any case, any spacing or punctuation: `T D`, `td!`) →
//!    [`Asked::Unsubscribe`]. An opt-out is honoured even next to a number or a rating. `TD`
//!    is not read out of words (`LTD`, `TD手机`) nor out of a longer text (`td 谢谢`).
//! 2. No valid ticket number, and a number-like chain that is not a mobile number or a date →
//!    [`Asked::BadNumber`], even with a rating: a rating aimed at a number we cannot read must
//!    not land on some other ticket.
//! 3. A rating → [`Asked::Rating`], with the distinct valid numbers in the text (two or more:
//!    the server asks which one). Level words
//!    beat digits:
//!    - a level word anywhere: 非常满意 5, 满意 4, 基本满意 3, 不满意 2, 非常不满意 1; the
//!      longest label at the leftmost position wins (`非常不满意` is 1, never 满意 or 不满意),
//!      spaces inside a label are ignored (`非常 满意`), and the first label in the text wins
//!      over later ones. A label directly after a negation (`不太满意`, `不是很满意`, `没有`,
//!      `并不`, …) is not read at all (its level would be a guess);
//!    - otherwise the first *score-shaped* digit, if it is 1–5 (a score-shaped 0 or 6–9 means
//!      no rating). A lone digit (not part of a longer run or a chain) is score-shaped when
//!      followed by `分` (not `分钟`/`分之`/`分钱`), `星` or `颗星`; or preceded by `给`, `打`,
//!      `评`, `价` (`我给5`, `评价：5`); or when it is the first or last word of the text or
//!      stands next to the ticket number — unless a unit follows it (`3天`, `5月`, `2个`,
//!      `5km`, `5%`) or `第` or a query keyword precedes it (`第5`, `CX 5`). The Chinese
//!      numerals 一–五 count only directly before `分` or `星` and then only when nothing but
//!      punctuation, the end, `好评`, `评价` or `谢谢` follows (`五星好评`, but not
//!      `三星手机` nor `一分钟`).
//!
//!    The comment is the rest of the text: without the rating token (the label, or the digit
//!    with its `分`/`星` and a `我给`/`打`/`评价` before it), without the ticket numbers and a
//!    query keyword right before them, whitespace collapsed, punctuation and whitespace
//!    trimmed at both ends, cut to [`COMMENT_CHARS`] characters.
//! 4. A valid ticket number → [`Asked::Query`] of the first one. Query keywords (`查询`, `查`,
//!    `CX`, `办件`, `进度`, …) and greetings are neither needed nor harmful.
//! 5. Only a mobile-number-like chain (no valid number, no rating) → [`Asked::BadNumber`].
//! 6. Anything else → [`Asked::Unknown`] (the empty text, emoji, `查询` without a number, a
//!    lone `6`, text with no number or rating).
//!
//! [`parse`] never panics and does not index out of range on any input.

use agent_core::domain::number::{TicketNumber, NUMBER_LEN};
use agent_core::domain::validate::normalize;

/// What an inbound text asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// A status query for a ticket number whose check digit holds.
    Query(TicketNumber),
    /// Something that looks like a ticket number but is not one (wrong check digit, wrong
    /// length): the reply asks to check the number; never looked up, never guessed at.
    BadNumber,
    /// A 好差评 rating 1–5, for the tickets named in the same text (each distinct number once;
    /// none, one, or several for the server to ask which), with the rest of the text as the
    /// applicant's comment (trimmed, at most [`COMMENT_CHARS`] characters).
    Rating {
        score: u8,
        numbers: Vec<TicketNumber>,
        comment: String,
    },
    /// 退订 / TD: stop invitations and notifications.
    Unsubscribe,
    /// Nothing we understand (the reply explains how to query).
    Unknown,
}

/// Longest comment kept with a rating, in characters.
pub const COMMENT_CHARS: usize = 200;

/// Fewest digits in a chain that make it look like an attempt at a ticket number.
const NUMBER_LIKE_DIGITS: usize = 8;

/// Most separator characters between two digit groups of one chain (`1234 - 5678`).
const MAX_GAP: usize = 3;

/// The five 好差评 levels (agent-core's `evaluation_label`), longest first so that the longest
/// label at a position wins.
const LEVELS: [(&str, u8); 5] = [
    ("非常不满意", 1),
    ("非常满意", 5),
    ("基本满意", 3),
    ("不满意", 2),
    ("满意", 4),
];

/// Endings that negate a level label right after them (`不太满意`): such a label is not read.
const NEGATIONS: [&str; 24] = [
    "不太",
    "不很",
    "不大",
    "不够",
    "不算",
    "不甚",
    "不是",
    "不怎么",
    "不那么",
    "不十分",
    "不特别",
    "不是很",
    "不是太",
    "不是特别",
    "不是非常",
    "不是那么",
    "没",
    "没有",
    "没有很",
    "没那么",
    "没有那么",
    "并不",
    "无",
    "未",
];

/// Words before a rating digit that belong to the rating (removed from the comment), longest
/// first.
const RATING_PREFIXES: [&str; 8] = ["我给", "我打", "评分", "评价", "打分", "给", "打", "评"];

/// Query keywords, lower-case, longest first (removed from a rating's comment when they stand
/// right before the ticket number).
const QUERY_KEYWORDS: [&str; 9] = [
    "办件编号",
    "查一下",
    "查询",
    "查进度",
    "进度",
    "办件",
    "编号",
    "查",
    "cx",
];

/// Characters that may follow a lone digit without it being a score: units of time, money,
/// quantity and order.
const UNITS: &str =
    "月日号天点时个次年元块岁周位人楼组栋层户斤亩米里千万百十角毛小趟遍张份页件本项条台辆头只";

/// Chinese numerals read as a score before `分` / `星`.
const CHINESE_SCORES: [(char, u8); 5] = [('一', 1), ('二', 2), ('三', 3), ('四', 4), ('五', 5)];

/// What an inbound text asks. See the module documentation for the rules and their order.
pub fn parse(text: &str) -> Asked {
    let chars = prepare(text);
    let lower: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
    if unsubscribes(&lower) {
        return Asked::Unsubscribe;
    }
    let items = numbers(&chars);
    let tickets: Vec<&TicketNumber> = items
        .iter()
        .filter_map(|item| match &item.kind {
            Kind::Ticket(number) => Some(number),
            _ => None,
        })
        .collect();
    let first_ticket = tickets.first().copied();
    if first_ticket.is_none()
        && items
            .iter()
            .any(|item| matches!(item.kind, Kind::Long { weak: false }))
    {
        return Asked::BadNumber;
    }
    // A score-shaped digit outside 1–5 (and no level word) is not a rating.
    let rating = level_word(&chars)
        .or_else(|| digit_rating(&chars, &lower, &items))
        .filter(|found| (1..=5).contains(&found.score));
    if let Some(found) = rating {
        let mut numbers: Vec<TicketNumber> = Vec::new();
        for t in &tickets {
            if !numbers.contains(t) {
                numbers.push((*t).clone());
            }
        }
        return Asked::Rating {
            score: found.score,
            numbers,
            comment: comment(&chars, &lower, &items, found.span),
        };
    }
    if let Some(number) = first_ticket {
        return Asked::Query(number.clone());
    }
    if items
        .iter()
        .any(|item| matches!(item.kind, Kind::Long { weak: true }))
    {
        return Asked::BadNumber;
    }
    Asked::Unknown
}

/// Characters dropped before normalisation: bidi controls, soft hyphen, variation selectors,
/// the combining keycap (`5️⃣`), tag characters.
fn is_dropped(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{20E3}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// The text as read: cleaned, NFKC, whitespace collapsed to single spaces and trimmed.
fn prepare(text: &str) -> Vec<char> {
    let cleaned: String = text
        .chars()
        .filter(|c| !is_dropped(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    normalize(&cleaned)
        .chars()
        .filter(|c| !is_dropped(*c) && !c.is_control())
        .collect()
}

/// Whether `chars[at..]` starts with `word`.
fn starts_with_at(chars: &[char], at: usize, word: &str) -> bool {
    (at..)
        .zip(word.chars())
        .all(|(i, w)| chars.get(i) == Some(&w))
}

/// Whether `chars[..end]` ends with `word`.
fn ends_with_at(chars: &[char], end: usize, word: &str) -> bool {
    let n = word.chars().count();
    end >= n && starts_with_at(chars, end - n, word)
}

fn contains(chars: &[char], word: &str) -> bool {
    (0..chars.len()).any(|at| starts_with_at(chars, at, word))
}

/// 退订 anywhere (spaces inside ignored), or a text that is `TD` and nothing else but spacing,
/// punctuation and emoji.
fn unsubscribes(lower: &[char]) -> bool {
    let dense: Vec<char> = lower
        .iter()
        .copied()
        .filter(|c| !c.is_whitespace())
        .collect();
    if contains(&dense, "退订") || contains(&dense, "退訂") {
        return true;
    }
    let mut letters = lower.iter().filter(|c| c.is_alphanumeric());
    letters.next() == Some(&'t') && letters.next() == Some(&'d') && letters.next().is_none()
}

/// A number found in the text, by character span.
#[derive(Debug)]
struct Item {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A valid ticket number.
    Ticket(TicketNumber),
    /// 8 digits or more that are not a ticket number; `weak` for a mobile number.
    Long { weak: bool },
    /// Fewer digits (or a separated date); `lone` is the digit of a single one-digit group.
    Short { lone: Option<u8> },
}

/// Characters that may join digit groups into one chain.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '.' | '_' | '·' | '・' | '。' | '\u{2010}'..='\u{2015}' | '\u{2212}'
    )
}

/// The numbers of the text, in order.
fn numbers(chars: &[char]) -> Vec<Item> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars.get(i).is_some_and(char::is_ascii_digit) {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            groups.push((start, i));
        } else {
            i += 1;
        }
    }
    let mut items = Vec::new();
    let mut chain_start = 0;
    for k in 0..groups.len() {
        let linked = match (groups.get(k), groups.get(k + 1)) {
            (Some(&(_, end)), Some(&(next, _))) => {
                next - end <= MAX_GAP
                    && chars
                        .get(end..next)
                        .is_some_and(|gap| gap.iter().all(|c| is_separator(*c)))
            }
            _ => false,
        };
        if !linked {
            if let Some(chain) = groups.get(chain_start..=k) {
                read_chain(chars, chain, &mut items);
            }
            chain_start = k + 1;
        }
    }
    items
}

/// The digits of a group.
fn digits_of(chars: &[char], (start, end): (usize, usize)) -> &[char] {
    chars.get(start..end).unwrap_or(&[])
}

/// Split one chain into ticket numbers and what is left between them.
fn read_chain(chars: &[char], chain: &[(usize, usize)], items: &mut Vec<Item>) {
    let mut k = 0;
    let mut rest = 0;
    while k < chain.len() {
        match chain.get(k..).and_then(|tail| ticket_from(chars, tail)) {
            Some((last, number)) => {
                if let Some(left) = chain.get(rest..k) {
                    leftover(chars, left, items);
                }
                if let (Some(first), Some(end)) = (chain.get(k), chain.get(k + last)) {
                    items.push(Item {
                        start: first.0,
                        end: end.1,
                        kind: Kind::Ticket(number),
                    });
                }
                k += last + 1;
                rest = k;
            }
            None => k += 1,
        }
    }
    if let Some(left) = chain.get(rest..) {
        leftover(chars, left, items);
    }
}

/// A ticket number made of the first whole groups of `groups`, and the index of its last group.
fn ticket_from(chars: &[char], groups: &[(usize, usize)]) -> Option<(usize, TicketNumber)> {
    let mut digits = String::with_capacity(NUMBER_LEN);
    for (j, group) in groups.iter().enumerate() {
        let part = digits_of(chars, *group);
        if digits.len() + part.len() > NUMBER_LEN {
            return None;
        }
        digits.extend(part);
        if digits.len() == NUMBER_LEN {
            return TicketNumber::parse(&digits).ok().map(|number| (j, number));
        }
    }
    None
}

/// Classify the part of a chain that is not a ticket number.
fn leftover(chars: &[char], groups: &[(usize, usize)], items: &mut Vec<Item>) {
    let (Some(first), Some(last)) = (groups.first(), groups.last()) else {
        return;
    };
    let digits: Vec<char> = groups
        .iter()
        .flat_map(|g| digits_of(chars, *g).iter().copied())
        .collect();
    let kind = if digits.len() >= NUMBER_LIKE_DIGITS && !is_date(chars, groups) {
        let mobile = digits.len() == 11
            && digits.first() == Some(&'1')
            && digits.get(1).is_some_and(|c| ('3'..='9').contains(c));
        Kind::Long { weak: mobile }
    } else {
        let lone = match (groups.len(), digits.as_slice()) {
            (1, [d]) => d.to_digit(10).and_then(|d| u8::try_from(d).ok()),
            _ => None,
        };
        Kind::Short { lone }
    };
    items.push(Item {
        start: first.0,
        end: last.1,
        kind,
    });
}

/// A separated calendar date: year 19xx/20xx, month 1–12, day 1–31.
fn is_date(chars: &[char], groups: &[(usize, usize)]) -> bool {
    let value = |g: &(usize, usize)| -> Option<(usize, u32)> {
        let digits: String = digits_of(chars, *g).iter().collect();
        Some((digits.len(), digits.parse().ok()?))
    };
    match groups {
        [y, m, d] => matches!(
            (value(y), value(m), value(d)),
            (Some((4, year)), Some((1..=2, month)), Some((1..=2, day)))
                if (1900..2100).contains(&year)
                    && (1..=12).contains(&month)
                    && (1..=31).contains(&day)
        ),
        _ => false,
    }
}

/// A rating found in the text: its score (possibly out of range for a digit) and the span of
/// characters that said it.
#[derive(Debug)]
struct Found {
    score: u8,
    span: (usize, usize),
}

/// The first level label in the text that is not negated, spaces inside labels ignored.
fn level_word(chars: &[char]) -> Option<Found> {
    // The text without whitespace, with each character's index in `chars`.
    let (dense, index): (Vec<char>, Vec<usize>) = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(i, c)| (*c, i))
        .unzip();
    let mut p = 0;
    while p < dense.len() {
        let hit = LEVELS
            .iter()
            .find(|(label, _)| starts_with_at(&dense, p, label));
        match hit {
            Some((label, score)) => {
                let n = label.chars().count();
                let negated = NEGATIONS.iter().any(|neg| ends_with_at(&dense, p, neg));
                if !negated {
                    let start = index.get(p).copied()?;
                    let end = index.get(p + n - 1).copied()? + 1;
                    return Some(Found {
                        score: *score,
                        span: (start, end),
                    });
                }
                p += n;
            }
            None => p += 1,
        }
    }
    None
}

/// The index of the first non-whitespace character at or after `i`.
fn skip_space(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

/// The index of the last alphanumeric character before `i`.
fn prev_alnum(chars: &[char], i: usize) -> Option<usize> {
    (0..i)
        .rev()
        .find(|&j| chars.get(j).is_some_and(|c| c.is_alphanumeric()))
}

/// The index of the first alphanumeric character at or after `i`.
fn next_alnum(chars: &[char], i: usize) -> Option<usize> {
    (i..chars.len()).find(|&j| chars.get(j).is_some_and(|c| c.is_alphanumeric()))
}

/// Whether what follows a `分` / `星` ending at `i` leaves it a rating for a Chinese numeral
/// or a `星`: the end, punctuation or emoji, or 好评 / 评价 / 谢谢.
fn quiet_after(chars: &[char], i: usize) -> bool {
    match chars.get(i) {
        None => true,
        Some(c) if !c.is_alphanumeric() => true,
        Some(_) => ["好评", "评价", "谢谢"]
            .iter()
            .any(|w| starts_with_at(chars, i, w)),
    }
}

/// The start of a rating prefix (`我给`, `打`, `评价：`) right before `start`, else `start`.
fn with_prefix(chars: &[char], start: usize) -> usize {
    let mut before = start;
    while before > 0
        && chars
            .get(before - 1)
            .is_some_and(|c| c.is_whitespace() || matches!(c, ':' | '：'))
    {
        before -= 1;
    }
    RATING_PREFIXES
        .iter()
        .find(|p| ends_with_at(chars, before, p))
        .map_or(start, |p| before - p.chars().count())
}

/// The first score-shaped digit (ASCII lone digit or Chinese numeral before 分/星).
fn digit_rating(chars: &[char], lower: &[char], items: &[Item]) -> Option<Found> {
    enum Candidate<'a> {
        Lone(&'a Item, u8),
        Chinese(Found),
    }
    let mut candidates: Vec<(usize, Candidate)> = Vec::new();
    for item in items {
        if let Kind::Short { lone: Some(d) } = item.kind {
            candidates.push((item.start, Candidate::Lone(item, d)));
        }
    }
    for (p, c) in chars.iter().enumerate() {
        let Some(&(_, score)) = CHINESE_SCORES.iter().find(|(n, _)| n == c) else {
            continue;
        };
        let before_ok = p == 0
            || chars
                .get(p - 1)
                .is_some_and(|b| !"一二三四五六七八九十百千零两第".contains(*b));
        let shaped =
            before_ok && matches!(chars.get(p + 1), Some('分' | '星')) && quiet_after(chars, p + 2);
        if shaped {
            let span = (with_prefix(chars, p), p + 2);
            candidates.push((p, Candidate::Chinese(Found { score, span })));
        }
    }
    candidates.sort_by_key(|(p, _)| *p);
    // Evaluated in text order, only as far as the first score-shaped one.
    candidates
        .into_iter()
        .find_map(|(_, candidate)| match candidate {
            Candidate::Lone(item, d) => lone_digit(chars, lower, items, item, d),
            Candidate::Chinese(found) => Some(found),
        })
}

/// A lone ASCII digit as a score, if it is score-shaped where it stands.
fn lone_digit(
    chars: &[char],
    lower: &[char],
    items: &[Item],
    item: &Item,
    digit: u8,
) -> Option<Found> {
    let (s, e) = (item.start, item.end);
    let next_i = skip_space(chars, e);
    let found = |end: usize| {
        Some(Found {
            score: digit,
            span: (with_prefix(chars, s), end),
        })
    };
    match chars.get(next_i) {
        Some('分') => {
            return if matches!(chars.get(next_i + 1), Some('钟' | '之' | '钱')) {
                None
            } else {
                found(next_i + 1)
            };
        }
        Some('星') => {
            return if quiet_after(chars, next_i + 1) {
                found(next_i + 1)
            } else {
                None
            };
        }
        Some('颗') if chars.get(next_i + 1) == Some(&'星') => {
            return if quiet_after(chars, next_i + 2) {
                found(next_i + 2)
            } else {
                None
            };
        }
        Some(c)
            if c.is_ascii_alphabetic() || matches!(c, '%' | ':' | '/') || UNITS.contains(*c) =>
        {
            return None;
        }
        _ => {}
    }
    let before = prev_alnum(chars, s);
    if before.and_then(|b| chars.get(b)) == Some(&'第')
        || before.is_some_and(|b| QUERY_KEYWORDS.iter().any(|k| ends_with_at(lower, b + 1, k)))
    {
        return None;
    }
    let after = next_alnum(chars, e);
    // Items are in text order and do not overlap: their starts and ends both ascend.
    let is_ticket = |found: Result<usize, usize>| {
        found
            .ok()
            .and_then(|i| items.get(i))
            .is_some_and(|it| matches!(it.kind, Kind::Ticket(_)))
    };
    let prefixed = before
        .and_then(|b| chars.get(b))
        .is_some_and(|c| matches!(c, '给' | '打' | '评' | '价'));
    let first = before.is_none();
    let last = after.is_none();
    let after_ticket =
        before.is_some_and(|b| is_ticket(items.binary_search_by_key(&(b + 1), |it| it.end)));
    let before_ticket =
        after.is_some_and(|a| is_ticket(items.binary_search_by_key(&a, |it| it.start)));
    if prefixed || first || last || after_ticket || before_ticket {
        found(e)
    } else {
        None
    }
}

/// Trimmed from both ends of a comment.
fn is_trimmed(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || "，。！？、；：…～·“”‘’（）【】《》「」—".contains(c)
}

/// The rest of the text after the rating token, the ticket numbers and their query keywords.
fn comment(chars: &[char], lower: &[char], items: &[Item], rating: (usize, usize)) -> String {
    let mut removed = vec![false; chars.len()];
    let mut remove = |(start, end): (usize, usize)| {
        for flag in removed.iter_mut().take(end).skip(start) {
            *flag = true;
        }
    };
    remove(rating);
    for item in items {
        if let Kind::Ticket(_) = item.kind {
            let mut start = item.start;
            let mut before = start;
            while before > 0 && lower.get(before - 1).is_some_and(|c| !c.is_alphanumeric()) {
                before -= 1;
            }
            if let Some(keyword) = QUERY_KEYWORDS
                .iter()
                .find(|k| ends_with_at(lower, before, k))
            {
                start = before - keyword.chars().count();
            }
            remove((start, item.end));
        }
    }
    let kept: String = chars
        .iter()
        .zip(&removed)
        .map(|(c, gone)| if *gone { ' ' } else { *c })
        .collect();
    let collapsed = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_matches(is_trimmed)
        .chars()
        .take(COMMENT_CHARS)
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(point: u32, device: u32, seq: u32) -> TicketNumber {
        TicketNumber::new(point, device, seq).unwrap()
    }

    /// The same digits with the check digit changed: a number that does not hold.
    fn wrong_check(n: &TicketNumber) -> String {
        let mut digits: Vec<char> = n.as_str().chars().collect();
        let last = digits.pop().unwrap().to_digit(10).unwrap();
        digits.push(char::from_digit((last + 1) % 10, 10).unwrap());
        digits.into_iter().collect()
    }

    /// Grouped in fours with `sep`, as people write it on paper.
    fn grouped(n: &str, sep: &str) -> String {
        let chars: Vec<char> = n.chars().collect();
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn full_width(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
                _ => c,
            })
            .collect()
    }

    fn rating(score: u8, number: Option<&TicketNumber>, comment: &str) -> Asked {
        Asked::Rating {
            score,
            numbers: number.into_iter().cloned().collect(),
            comment: comment.to_string(),
        }
    }

    #[test]
    fn realistic_inbound_texts() {
        let a = ticket(123, 4, 56);
        let b = ticket(8765, 12, 4096);
        let s = a.as_str();
        let bad = wrong_check(&a);
        let q = Asked::Query(a.clone());
        let cases: Vec<(String, Asked)> = vec![
            // Queries.
            (s.to_string(), q.clone()),
            (format!("查询 {s}"), q.clone()),
            (format!("你好 查询 {} 谢谢", grouped(s, " ")), q.clone()),
            (format!("CX{s}"), q.clone()),
            (format!("cx {s}"), q.clone()),
            (format!("Cx:{s}"), q.clone()),
            (format!("ｃＸ　{}", full_width(s)), q.clone()),
            (grouped(s, "-"), q.clone()),
            (grouped(s, "."), q.clone()),
            (grouped(s, " - "), q.clone()),
            (
                s.chars().map(String::from).collect::<Vec<_>>().join(" "),
                q.clone(),
            ),
            (format!("办件进度{s}🙏🙏"), q.clone()),
            (format!("查尋（typo）{s}！"), q.clone()),
            (format!("我电话13812345678，查一下{s}"), q.clone()),
            (format!("查询 {s}。5月1日交的材料"), q.clone()),
            (format!("查询\u{0}{s}\u{202E}"), q.clone()),
            (format!("{s} {}", b.as_str()), q.clone()),
            (format!("{s} {bad}"), q.clone()),
            // Numbers that are not ours: never looked up.
            (format!("查询 {bad}"), Asked::BadNumber),
            (grouped(&bad, " "), Asked::BadNumber),
            (s[..11].to_string(), Asked::BadNumber),
            (format!("{s}7"), Asked::BadNumber),
            ("13812345678".to_string(), Asked::BadNumber),
            ("查询 138 1234 5678".to_string(), Asked::BadNumber),
            ("12345678".to_string(), Asked::BadNumber),
            (format!("{bad} 5"), Asked::BadNumber),
            (format!("{bad} 非常满意"), Asked::BadNumber),
            ("非常满意 12345678".to_string(), Asked::BadNumber),
            // Digit ratings.
            ("5".to_string(), rating(5, None, "")),
            ("５".to_string(), rating(5, None, "")),
            ("5️⃣".to_string(), rating(5, None, "")),
            ("⑤".to_string(), rating(5, None, "")),
            ("5 服务很好".to_string(), rating(5, None, "服务很好")),
            ("5服务很好".to_string(), rating(5, None, "服务很好")),
            ("4分".to_string(), rating(4, None, "")),
            ("5分 谢谢".to_string(), rating(5, None, "谢谢")),
            ("我给5分".to_string(), rating(5, None, "")),
            ("评价：3".to_string(), rating(3, None, "")),
            ("谢谢，2".to_string(), rating(2, None, "谢谢")),
            ("👍5👍".to_string(), rating(5, None, "👍 👍")),
            ("五星好评".to_string(), rating(5, None, "好评")),
            ("3天前办的，5".to_string(), rating(5, None, "3天前办的")),
            // Level words, longest match, over digits.
            ("非常满意".to_string(), rating(5, None, "")),
            ("非常不满意！！！".to_string(), rating(1, None, "")),
            ("非常 不满意".to_string(), rating(1, None, "")),
            ("不满意，等太久了".to_string(), rating(2, None, "等太久了")),
            ("基本满意".to_string(), rating(3, None, "")),
            ("很不满意".to_string(), rating(2, None, "很")),
            ("满意👍".to_string(), rating(4, None, "👍")),
            ("服务不错 满意".to_string(), rating(4, None, "服务不错")),
            (
                "3月5日办的，非常满意".to_string(),
                rating(5, None, "3月5日办的"),
            ),
            (
                "非常满意 等了3天 2024-05-01去的".to_string(),
                rating(5, None, "等了3天 2024-05-01去的"),
            ),
            (
                "我给5分 3天就办好了 基本满意".to_string(),
                rating(3, None, "我给5分 3天就办好了"),
            ),
            (
                "非常满意 电话13812345678".to_string(),
                rating(5, None, "电话13812345678"),
            ),
            // Rating with the ticket number.
            (format!("{s} 5"), rating(5, Some(&a), "")),
            (format!("{} 5", grouped(s, " ")), rating(5, Some(&a), "")),
            (format!("5 {s}"), rating(5, Some(&a), "")),
            (format!("{s} 非常满意"), rating(5, Some(&a), "")),
            (
                format!("查询{s} 4分 代办员很耐心"),
                rating(4, Some(&a), "代办员很耐心"),
            ),
            (format!("{s} {s} 5"), rating(5, Some(&a), "")),
            (
                format!("{s} {} 5", b.as_str()),
                Asked::Rating {
                    score: 5,
                    numbers: vec![a.clone(), b.clone()],
                    comment: String::new(),
                },
            ),
            // 退订.
            ("退订".to_string(), Asked::Unsubscribe),
            ("TD".to_string(), Asked::Unsubscribe),
            ("td".to_string(), Asked::Unsubscribe),
            ("T D".to_string(), Asked::Unsubscribe),
            ("ＴＤ。".to_string(), Asked::Unsubscribe),
            ("以后别发了，退订谢谢".to_string(), Asked::Unsubscribe),
            ("退 订!".to_string(), Asked::Unsubscribe),
            (format!("{s} 5 退订"), Asked::Unsubscribe),
            ("LTD".to_string(), Asked::Unknown),
            ("TD手机收不到短信".to_string(), Asked::Unknown),
            // Nothing we understand.
            (String::new(), Asked::Unknown),
            ("   \t\n ".to_string(), Asked::Unknown),
            ("😀😀👍".to_string(), Asked::Unknown),
            ("asdf;'[]\\".to_string(), Asked::Unknown),
            ("查询".to_string(), Asked::Unknown),
            ("查询 1234".to_string(), Asked::Unknown),
            ("cx 5".to_string(), Asked::Unknown),
            ("6".to_string(), Asked::Unknown),
            ("0".to_string(), Asked::Unknown),
            ("7分".to_string(), Asked::Unknown),
            ("等了3天才办好".to_string(), Asked::Unknown),
            ("5分钟就办好了".to_string(), Asked::Unknown),
            ("不太满意".to_string(), Asked::Unknown),
            ("我的三星手机收不到".to_string(), Asked::Unknown),
            ("2024-05-01".to_string(), Asked::Unknown),
            ("什么时候能办好啊".repeat(1_250), Asked::Unknown),
        ];
        assert!(cases.len() >= 30);
        let mut failures = Vec::new();
        for (text, expected) in &cases {
            let got = parse(text);
            if &got != expected {
                failures.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn long_comment_is_cut_to_comment_chars() {
        let a = ticket(42, 1, 7);
        let text = format!("{} 非常满意 {}", a.as_str(), "办事效率很高".repeat(500));
        let Asked::Rating {
            score,
            numbers,
            comment,
        } = parse(&text)
        else {
            panic!("not a rating");
        };
        assert_eq!((score, numbers), (5, vec![a]));
        assert_eq!(comment.chars().count(), COMMENT_CHARS);
        assert!(comment.starts_with("办事效率很高"));
    }

    #[test]
    fn every_valid_number_is_a_query_and_every_corruption_is_bad() {
        let mut checked = 0;
        for point in [1, 77, 123, 4096, 9_999] {
            for device in [1, 9, 42, 99] {
                for seq in [1, 12, 345, 6_789, 99_999] {
                    let n = ticket(point, device, seq);
                    assert_eq!(parse(n.as_str()), Asked::Query(n.clone()));
                    for score in 1..=5u8 {
                        assert_eq!(
                            parse(&format!("{} {score}", grouped(n.as_str(), " "))),
                            rating(score, Some(&n), "")
                        );
                    }
                    let digits: Vec<char> = n.as_str().chars().collect();
                    for i in 0..digits.len() {
                        for d in '0'..='9' {
                            if d == digits[i] {
                                continue;
                            }
                            let mut wrong = digits.clone();
                            wrong[i] = d;
                            let wrong: String = wrong.into_iter().collect();
                            assert_eq!(
                                parse(&format!("查询 {wrong}")),
                                Asked::BadNumber,
                                "{wrong}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 100 * 12 * 9);
    }

    /// xorshift64*: a fixed, dependency-free stream of pseudo-random numbers.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_and_keeps_its_promises_on_odd_input() {
        let a = ticket(3141, 59, 26_535);
        let fragments: Vec<String> = vec![
            a.as_str().to_string(),
            wrong_check(&a),
            "1".into(),
            "5".into(),
            "6".into(),
            "0".into(),
            "12".into(),
            "８".into(),
            " ".into(),
            "-".into(),
            ".".into(),
            "。".into(),
            "\u{3000}".into(),
            "\n".into(),
            "非常".into(),
            "不".into(),
            "满意".into(),
            "基本".into(),
            "没有".into(),
            "太".into(),
            "分".into(),
            "星".into(),
            "钟".into(),
            "给".into(),
            "第".into(),
            "天".into(),
            "五".into(),
            "三".into(),
            "查询".into(),
            "CX".into(),
            "T".into(),
            "D".into(),
            "退".into(),
            "订".into(),
            "😀".into(),
            "👍🏽".into(),
            "5\u{FE0F}\u{20E3}".into(),
            "\u{301}".into(),
            "\u{20DD}".into(),
            "\u{202E}".into(),
            "\u{200F}".into(),
            "\u{0}".into(),
            "\u{7F}".into(),
            "\u{FEFF}".into(),
            "\u{200B}".into(),
            "\u{FDFA}".into(),
            "ﷺ".into(),
            "שלום".into(),
            "مرحبا".into(),
            "٥".into(),
            "①".into(),
            "Ⅻ".into(),
            "ﾃﾞ".into(),
            "\u{E0041}".into(),
            "\u{10FFFF}".into(),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..3_000 {
            let len = if round % 100 == 0 {
                4_000
            } else {
                rng.below(40)
            };
            let mut text = String::new();
            for _ in 0..len {
                if rng.below(4) == 0 {
                    // Any scalar value at all.
                    let c = char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('\u{FFFD}');
                    text.push(c);
                } else {
                    text.push_str(&fragments[rng.below(fragments.len())]);
                }
            }
            let asked = parse(&text);
            let digits: String = normalize(&text)
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            match &asked {
                Asked::Query(n) => assert!(digits.contains(n.as_str()), "{text:?}"),
                Asked::Rating {
                    score,
                    numbers,
                    comment,
                } => {
                    assert!((1..=5).contains(score), "{text:?}");
                    assert!(comment.chars().count() <= COMMENT_CHARS, "{text:?}");
                    assert_eq!(comment.trim(), comment, "{text:?}");
                    assert!(!comment.chars().any(char::is_control), "{text:?}");
                    for n in numbers {
                        assert!(digits.contains(n.as_str()), "{text:?}");
                    }
                }
                Asked::BadNumber | Asked::Unsubscribe | Asked::Unknown => {}
            }
            // Parsing is a function of the text.
            assert_eq!(parse(&text), asked);
        }
        // A few extremes.
        for text in [
            "5".repeat(10_000),
            "5 ".repeat(10_000),
            "\u{0}".repeat(10_000),
            "\u{301}".repeat(10_000),
            "\u{FDFA}".repeat(10_000),
            format!("{}{}", "\u{202E}".repeat(5_000), "满意".repeat(5_000)),
            "啊5".repeat(5_000),
            "啊 5 😀".repeat(3_000),
            format!("{} 啊5", ticket(1, 1, 1)).repeat(1_000),
        ] {
            let _ = parse(&text);
        }
        assert_eq!(parse(&"1 ".repeat(10_000)), Asked::BadNumber);
    }
}
