//! The printed ticket summary (承办单回执) an agent hands the applicant, in Chinese.

use std::fmt::Write;

use crate::domain::deadline::{ClockState, Light};
use crate::domain::mask::{mask_id, mask_phone};
use crate::domain::ticket::{MaterialState, TicketView};

/// Fen as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Chinese label of a deadline light.
pub fn light_label(light: Light) -> &'static str {
    match light {
        Light::Green => "绿灯（正常）",
        Light::Yellow => "黄灯（临近期限）",
        Light::Red => "红灯（已超期）",
    }
}

/// Plain-text receipt for printing on the point's printer or showing on screen. The ID
/// number and phone are masked; the applicant's own name is shown.
pub fn receipt_text(v: &TicketView) -> String {
    let t = &v.ticket;
    let mut s = String::new();
    let line = "—".repeat(24);
    let _ = writeln!(s, "为民服务全程代理承办单（回执）");
    let _ = writeln!(s, "{line}");
    let _ = writeln!(s, "办件编号：{}", t.number);
    let _ = writeln!(s, "办理事项：{}（{}）", t.item.name, t.item.code);
    let _ = writeln!(s, "申 请 人：{}", t.applicant.name);
    let _ = writeln!(s, "证件号码：{}", mask_id(&t.applicant.id.stored));
    if let Some(p) = &t.applicant.phone {
        let _ = writeln!(s, "联系电话：{}", mask_phone(p));
    }
    let _ = writeln!(s, "住    址：{}{}", t.applicant.village, t.applicant.group);
    let _ = writeln!(s, "登记时间：{}", t.registered_at.format("%Y-%m-%d %H:%M"));
    let _ = writeln!(s, "代 理 员：{}（代办点{:04}）", t.agent, t.point);
    let _ = writeln!(s, "材料清单：");
    for m in &t.materials {
        let _ = writeln!(s, "  [{}] {} ×{}", m.state.label(), m.name, m.copies);
    }
    let missing: Vec<&str> = t
        .materials
        .iter()
        .filter(|m| m.state == MaterialState::Missing)
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(s, "尚缺材料：{}（补齐后方可受理）", missing.join("、"));
    }
    match &t.fee.receipt_no {
        Some(r) => {
            let _ = writeln!(s, "收    费：{} 元（收据号 {}）", yuan(t.fee.amount_fen), r);
        }
        None => {
            let _ = writeln!(s, "收    费：{} 元", yuan(t.fee.amount_fen));
        }
    }
    let _ = writeln!(s, "承诺时限：自受理之日起{}个工作日", t.item.promised_days);
    let _ = writeln!(s, "当前状态：{}", v.life.status.label());
    match (v.deadline.state, v.deadline.due) {
        (ClockState::Finished { on_time }, _) => {
            let _ = writeln!(
                s,
                "办理时限：{}",
                if on_time {
                    "按期办结"
                } else {
                    "超期办结"
                }
            );
        }
        (ClockState::Unknown { gap_year }, _) => {
            let _ = writeln!(s, "办理时限：{gap_year}年节假日日历未导入，暂无法计算");
        }
        (_, Some(due)) => {
            let light = v.deadline.light.map(light_label).unwrap_or("");
            let _ = writeln!(s, "预计办结：{due} 前 {light}");
        }
        _ => {
            let _ = writeln!(s, "预计办结：受理后计算");
        }
    }
    if v.life.needs_review {
        let _ = writeln!(s, "提    示：本件记录有冲突，需乡镇中心核对");
    }
    let _ = writeln!(s, "{line}");
    let _ = writeln!(
        s,
        "查询进度：用登记的手机发送“查询{}”到本乡镇便民服务短信号",
        t.number
    );
    let _ = writeln!(s, "申请人签字：__________    代理员签字：__________");
    s
}
