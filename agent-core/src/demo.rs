//! Deterministic demo data: a township with village points, and registration forms with
//! valid-looking (check-digit correct) ID numbers and mobiles. Used by the scripted village
//! day, the tests and the demo servers; never by production paths.

use chrono::{Datelike, NaiveDate};

use crate::domain::catalog::{Catalog, Item};
use crate::domain::directory::{DirectoryPart, Point, Township};
use crate::domain::ticket::{MaterialInput, NewTicket};
use crate::domain::validate::{id_check_char, IdKind};

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢";
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红梅建国志永福德胜春花冬海燕金凤长生守仁";
const VILLAGES: [&str; 6] = [
    "东坪村",
    "石桥村",
    "桃李湾村",
    "青竹岭村",
    "新塘村",
    "柳树坝村",
];

/// The demo township.
pub fn township() -> Township {
    Township {
        code: "431023101".into(),
        name: "柏林镇".into(),
        server: None,
        phone: Some("13807310101".into()),
    }
}

/// Demo village points of the demo township, with distance and fare to the county seat.
pub fn points() -> Vec<Point> {
    VILLAGES
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            number: 101 + i as u32,
            name: format!("{v}代办点"),
            township: township().code,
            distance_km: 18.0 + 7.5 * i as f64,
            fare_fen: 1_000 + 400 * i as i64,
            agent_phone: Some(format!("1390731{:04}", 101 + i)),
        })
        .collect()
}

/// A second demo township, so scope between townships can be shown.
pub fn second_township() -> Township {
    Township {
        code: "431023102".into(),
        name: "龙潭镇".into(),
        server: None,
        phone: Some("13807310102".into()),
    }
}

/// The demo district's directory part: both townships, the demo points (101–106) in the
/// first and two points (201, 202) in the second.
pub fn district_directory() -> DirectoryPart {
    let second = second_township();
    let mut points = points();
    points.extend(["龙潭村", "白沙村"].iter().enumerate().map(|(i, v)| Point {
        number: 201 + i as u32,
        name: format!("{v}代办点"),
        township: second.code.clone(),
        distance_km: 25.0 + 9.0 * i as f64,
        fare_fen: 1_200 + 500 * i as i64,
        agent_phone: Some(format!("1390731{:04}", 201 + i)),
    }));
    DirectoryPart {
        townships: vec![township(), second],
        points,
        ..DirectoryPart::default()
    }
}

/// A small deterministic generator (xorshift64*), so demo data is identical on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick(&mut self, s: &str) -> char {
        let chars: Vec<char> = s.chars().collect();
        chars
            .get(self.below(chars.len() as u64) as usize)
            .copied()
            .unwrap_or('王')
    }
}

/// A Chinese name.
pub fn name(r: &mut Rng) -> String {
    let mut n = String::new();
    n.push(r.pick(SURNAMES));
    for _ in 0..=r.below(2) {
        n.push(r.pick(GIVEN));
    }
    n
}

/// An 18-digit resident ID number with a correct check character, born 1940–2004.
pub fn id_number(r: &mut Rng) -> String {
    let start = NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default();
    let birth = start + chrono::Days::new(r.below(365 * 65));
    let first17 = format!(
        "431023{:04}{:02}{:02}{:03}",
        birth.year(),
        birth.month(),
        birth.day(),
        r.below(999) + 1
    );
    let mut digits = [0u8; 17];
    for (d, b) in digits.iter_mut().zip(first17.bytes()) {
        *d = b;
    }
    format!("{first17}{}", id_check_char(&digits))
}

/// A mainland mobile number.
pub fn mobile(r: &mut Rng) -> String {
    format!("1{}{:09}", 3 + r.below(7), r.below(1_000_000_000))
}

/// `n` registration forms over the catalog's items; materials mostly complete, some missing.
pub fn forms(seed: u64, n: usize, catalog: &Catalog) -> Vec<NewTicket> {
    let mut r = Rng::new(seed);
    (0..n)
        .filter_map(|i| {
            let item = catalog
                .items
                .get(r.below(catalog.items.len() as u64) as usize)?;
            let complete = r.below(4) != 0;
            Some(form(&mut r, item, i, complete))
        })
        .collect()
}

/// One registration form for `item`; `serial` makes the fee receipt number. When not
/// `complete`, the first material is missing.
pub fn form(r: &mut Rng, item: &Item, serial: usize, complete: bool) -> NewTicket {
    let village = VILLAGES
        .get(r.below(VILLAGES.len() as u64) as usize)
        .copied()
        .unwrap_or("东坪村");
    let materials = item
        .materials
        .iter()
        .enumerate()
        .map(|(j, m)| MaterialInput {
            name: m.name.clone(),
            received: complete || j != 0,
            copies: None,
        })
        .collect();
    let group = format!("{}组", r.below(12) + 1);
    NewTicket {
        item_code: item.code.clone(),
        applicant_name: name(r),
        id_kind: IdKind::ResidentId,
        id_number: id_number(r),
        phone: Some(mobile(r)),
        village: village.to_owned(),
        address: format!("{village}{group}{}号", r.below(80) + 1),
        group,
        materials,
        fee_fen: item.fee_fen,
        receipt_no: (item.fee_fen > 0).then(|| format!("SJ{:06}", serial + 1)),
        remarks: String::new(),
    }
}
