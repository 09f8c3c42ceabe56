//! The standard workload (../shared/bench/gen_workload.py) mapped onto the product: shared by
//! the store benchmark and sync-server's sync benchmark (included with `#[path]`).

use agent_core::domain::ticket::{MaterialInput, NewTicket};
use serde_json::Value;

/// The string at `path` in a workload record ("" when absent).
pub fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_default()
}

/// The workload ticket as the agent's form.
pub fn form(t: &Value) -> NewTicket {
    let fee = t["fee_yuan"].as_i64().unwrap_or(0) * 100;
    let address = s(t, &["applicant", "address"]);
    let village = address
        .find('镇')
        .map(|i| &address[i + '镇'.len_utf8()..])
        .and_then(|rest| rest.find('村').map(|j| &rest[..j + '村'.len_utf8()]))
        .unwrap_or("本村")
        .to_owned();
    NewTicket {
        item_code: s(t, &["service", "code"]).to_owned(),
        applicant_name: s(t, &["applicant", "name"]).to_owned(),
        id_kind: agent_core::domain::validate::IdKind::ResidentId,
        id_number: s(t, &["applicant", "id_number"]).to_owned(),
        phone: Some(s(t, &["applicant", "phone"]).to_owned()),
        village,
        group: String::new(),
        address: address.to_owned(),
        materials: t["materials"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| MaterialInput {
                        name: s(m, &["name"]).to_owned(),
                        received: true,
                        copies: m["copies"].as_u64().map(|c| c as u32),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        fee_fen: fee,
        receipt_no: (fee > 0).then(|| format!("R{}", s(t, &["id"]))),
        remarks: s(t, &["remark"]).to_owned(),
    }
}
