//! The texts: one Simplified Chinese template per [`Template`], filled with named
//! parameters. The modem sends the text as written here (with the sign name in 【】 first, as
//! carriers require); a cloud provider gets the template's code and the same parameters.
//!
//! Each text fits one SMS (70 characters) wherever its parameters allow; a longer one (a long
//! list of missing materials) is one message that the gateway splits. No text ever holds an
//! ID number: no template has a parameter for one.

use super::Template;

/// A message before it is stored: the template and its named parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub template: Template,
    pub params: Vec<(String, String)>,
}

impl Message {
    pub fn new(template: Template, params: &[(&str, &str)]) -> Message {
        Message {
            template,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The whole text, `sign` (e.g. 示范县便民服务) in 【】 first.
    pub fn text(&self, sign: &str) -> String {
        let p = |name: &str| self.get(name);
        let body = match self.template {
            Template::Status => format!(
                "办件{}（{}）{}。{}",
                p("number"),
                p("item"),
                p("stage"),
                p("next")
            ),
            Template::CheckNumber => "办件编号有误，请核对后发送：查询+12位办件编号。".to_owned(),
            Template::Help => "查询办件请发送：查询+12位办件编号；评价请回复1至5。".to_owned(),
            Template::Unknown => format!(
                "未查到本手机号登记的办件{}，请核对编号，或到代办点咨询。",
                p("number")
            ),
            Template::Supplement => format!(
                "您的{}（{}）需补交：{}。请交到{}。",
                p("item"),
                p("number"),
                p("missing"),
                p("point")
            ),
            Template::ResultReady => format!(
                "您的{}（{}）已办结，结果已送到{}，请本人持身份证领取。",
                p("item"),
                p("number"),
                p("point")
            ),
            Template::Overdue => format!(
                "办件{}（{}，{}）已过承诺期限{}，请督办。",
                p("number"),
                p("item"),
                p("point"),
                p("due")
            ),
            Template::RateInvite => format!(
                "{}已送达，请评价：回复5非常满意4满意3基本满意2不满意1非常不满意。退订回TD",
                p("number")
            ),
            Template::Rated => format!(
                "已记录您对{}的评价：{}。{}",
                p("number"),
                p("level"),
                p("more")
            ),
            Template::WhichTicket => {
                format!("请回复“办件编号 分数”以评价其中一件：{}。", p("numbers"))
            }
            Template::Unsubscribed => {
                "已退订办件通知和评价邀请。查询进度仍可发送：查询+办件编号。".to_owned()
            }
        };
        format!("【{sign}】{body}")
    }
}

/// Characters in one SMS of UCS2 text.
pub const SINGLE_SMS_CHARS: usize = 70;

#[cfg(test)]
mod tests {
    use super::*;

    /// As long as a real one (the README's example).
    const SIGN: &str = "示范县便民服务";

    #[test]
    fn the_usual_texts_fit_one_sms() {
        let number = "010101000123";
        let cases = [
            Message::new(
                Template::Status,
                &[
                    ("number", number),
                    ("item", "养老保险参保登记"),
                    ("stage", "已受理，承诺2026-06-08前办结"),
                    ("next", "请等候通知"),
                ],
            ),
            Message::new(Template::CheckNumber, &[]),
            Message::new(Template::Unknown, &[("number", number)]),
            Message::new(Template::Help, &[]),
            Message::new(
                Template::Supplement,
                &[
                    ("number", number),
                    ("item", "失业证办理"),
                    ("missing", "户口簿"),
                    ("point", "东坪村代办点"),
                ],
            ),
            Message::new(
                Template::ResultReady,
                &[
                    ("number", number),
                    ("item", "失业证办理"),
                    ("point", "东坪村代办点"),
                ],
            ),
            Message::new(
                Template::Overdue,
                &[
                    ("number", number),
                    ("item", "失业证办理"),
                    ("point", "东坪村代办点"),
                    ("due", "2026-06-08"),
                ],
            ),
            Message::new(Template::RateInvite, &[("number", number)]),
            Message::new(
                Template::Rated,
                &[
                    ("number", number),
                    ("level", "非常满意"),
                    ("more", "谢谢！"),
                ],
            ),
            Message::new(
                Template::WhichTicket,
                &[("numbers", "010101000123、010101000131")],
            ),
            Message::new(Template::Unsubscribed, &[]),
        ];
        for m in cases {
            let text = m.text(SIGN);
            assert!(
                text.chars().count() <= SINGLE_SMS_CHARS,
                "{:?}: {} characters: {text}",
                m.template,
                text.chars().count()
            );
            assert!(text.starts_with("【示范县便民服务】"));
        }
    }
}
