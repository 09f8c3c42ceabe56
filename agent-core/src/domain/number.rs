//! Ticket numbers (办件编号): digits only, at most 12, made offline, unique in the county and
//! easy to type on a keypad phone. Layout: point (4) + device (2) + sequence (5) + Damm check (1).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::validate::normalize;

/// Digits of the point number in a ticket number.
pub const POINT_DIGITS: usize = 4;
/// Digits of the device number.
pub const DEVICE_DIGITS: usize = 2;
/// Digits of the per-device sequence: a village registers a handful a day, so 99,999
/// lasts a device decades.
pub const SEQ_DIGITS: usize = 5;
/// Total length of a ticket number.
pub const NUMBER_LEN: usize = POINT_DIGITS + DEVICE_DIGITS + SEQ_DIGITS + 1;

/// Highest point number.
pub const MAX_POINT: u32 = 9_999;
const MAX_DEVICE: u32 = 99;
const MAX_SEQ: u32 = 99_999;

/// Damm's totally anti-symmetric quasigroup of order 10: the check digit catches every
/// single-digit error and every adjacent transposition.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm interim digit of a string of ASCII digits (non-digits are skipped by callers).
fn damm(digits: &str) -> u8 {
    digits.bytes().fold(0u8, |interim, b| {
        let d = b.wrapping_sub(b'0');
        DAMM.get(usize::from(interim))
            .and_then(|row| row.get(usize::from(d)))
            .copied()
            .unwrap_or(interim)
    })
}

/// Why a typed or received ticket number is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    #[error("办件编号应为{NUMBER_LEN}位数字")]
    WrongLength,
    #[error("办件编号只能包含数字")]
    NotDigits,
    #[error("办件编号校验位不正确，请核对编号")]
    BadCheckDigit,
    #[error("代办点编号超出范围（1–{MAX_POINT}）")]
    PointOutOfRange,
    #[error("设备编号超出范围（1–{MAX_DEVICE}）")]
    DeviceOutOfRange,
    #[error("本设备的办件序号已用完，请联系乡镇中心重新登记设备")]
    SequenceExhausted,
}

/// A checked ticket number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNumber(String);

impl TicketNumber {
    /// The number for the `seq`-th ticket of a device (sequence starts at 1).
    pub fn new(point: u32, device: u32, seq: u32) -> Result<Self, NumberError> {
        if point == 0 || point > MAX_POINT {
            return Err(NumberError::PointOutOfRange);
        }
        if device == 0 || device > MAX_DEVICE {
            return Err(NumberError::DeviceOutOfRange);
        }
        if seq == 0 || seq > MAX_SEQ {
            return Err(NumberError::SequenceExhausted);
        }
        let body = format!("{point:04}{device:02}{seq:05}");
        let check = damm(&body);
        Ok(Self(format!("{body}{check}")))
    }

    /// Parse what a person typed (full-width digits, spaces and dashes allowed).
    pub fn parse(input: &str) -> Result<Self, NumberError> {
        let text: String = normalize(input)
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if !text.chars().all(|c| c.is_ascii_digit()) {
            return Err(NumberError::NotDigits);
        }
        if text.len() != NUMBER_LEN {
            return Err(NumberError::WrongLength);
        }
        if damm(&text) != 0 {
            return Err(NumberError::BadCheckDigit);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The point number encoded in the ticket number.
    pub fn point(&self) -> u32 {
        self.0
            .get(..POINT_DIGITS)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The device number encoded in the ticket number.
    pub fn device(&self) -> u32 {
        self.0
            .get(POINT_DIGITS..POINT_DIGITS + DEVICE_DIGITS)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TicketNumber {
    type Error = NumberError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TicketNumber> for String {
    fn from(n: TicketNumber) -> String {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damm_known_value() {
        // Worked example from the literature: 572 → check digit 4.
        assert_eq!(damm("572"), 4);
        assert_eq!(damm("5724"), 0);
    }

    #[test]
    fn layout_and_roundtrip() {
        let n = TicketNumber::new(123, 4, 56).unwrap();
        assert_eq!(n.as_str().len(), NUMBER_LEN);
        assert!(n.as_str().starts_with("01230400056"));
        assert_eq!(n.point(), 123);
        assert_eq!(n.device(), 4);
        assert_eq!(TicketNumber::parse(n.as_str()).unwrap(), n);
        let spaced = format!("{} {}", &n.as_str()[..6], &n.as_str()[6..]);
        assert_eq!(TicketNumber::parse(&spaced).unwrap(), n);
        let full_width: String = n
            .as_str()
            .chars()
            .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
            .collect();
        assert_eq!(TicketNumber::parse(&full_width).unwrap(), n);
    }

    #[test]
    fn catches_every_single_digit_error_and_adjacent_transposition() {
        for seq in [1, 2, 77, 4096, 99_999] {
            let n = TicketNumber::new(8765, 12, seq).unwrap();
            let digits: Vec<u8> = n.as_str().bytes().collect();
            for i in 0..digits.len() {
                for d in b'0'..=b'9' {
                    if d == digits[i] {
                        continue;
                    }
                    let mut wrong = digits.clone();
                    wrong[i] = d;
                    let s = String::from_utf8(wrong).unwrap();
                    assert_eq!(
                        TicketNumber::parse(&s),
                        Err(NumberError::BadCheckDigit),
                        "{s}"
                    );
                }
                if i + 1 < digits.len() && digits[i] != digits[i + 1] {
                    let mut swapped = digits.clone();
                    swapped.swap(i, i + 1);
                    let s = String::from_utf8(swapped).unwrap();
                    assert_eq!(
                        TicketNumber::parse(&s),
                        Err(NumberError::BadCheckDigit),
                        "{s}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        assert_eq!(
            TicketNumber::new(0, 1, 1),
            Err(NumberError::PointOutOfRange)
        );
        assert_eq!(
            TicketNumber::new(10_000, 1, 1),
            Err(NumberError::PointOutOfRange)
        );
        assert_eq!(
            TicketNumber::new(1, 100, 1),
            Err(NumberError::DeviceOutOfRange)
        );
        assert_eq!(
            TicketNumber::new(1, 1, 100_000),
            Err(NumberError::SequenceExhausted)
        );
        assert_eq!(TicketNumber::parse("12345"), Err(NumberError::WrongLength));
        assert_eq!(
            TicketNumber::parse("1234567890ab"),
            Err(NumberError::NotDigits)
        );
        assert_eq!(TicketNumber::parse(""), Err(NumberError::WrongLength));
    }
}
