//! The public pages over real HTTP: no sign-in, the disclosure board with every ticket the
//! server holds and the applicant's name masked — never an ID number, phone, full name or
//! street address — and the service catalog as the district published it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use agent_core::domain::catalog::Catalog;
use agent_core::domain::mask::mask_name;
use agent_core::domain::number::TicketNumber;
use agent_core::sync::client::sync_now;
use serde_json::json;

use support::console::get;
use support::{cli, district_and_township, staff_ok, sync_upward, tablet};

#[test]
fn anyone_reads_the_disclosure_board_and_the_catalog_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let (district, township) = district_and_township(dir.path());
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, serde_json::to_string(&Catalog::demo()).unwrap()).unwrap();
    cli(
        &["import-catalog", catalog.to_str().unwrap()],
        &district.data,
    );
    sync_upward(&township);

    // Three applicants at a village point; the township accepts one and rejects another.
    let mut a = tablet(dir.path(), &township, 101, 1);
    let forms = agent_core::demo::forms(11, 3, &Catalog::demo());
    let numbers: Vec<TicketNumber> = forms
        .iter()
        .map(|f| a.register(f).unwrap().view.ticket.number)
        .collect();
    sync_now(&mut a, township.url.as_str()).unwrap();
    staff_ok(&township, "township", &numbers[0], "accepted", json!({}));
    staff_ok(&township, "township", &numbers[1], "rejected", json!({}));
    sync_upward(&township);

    for server in [&township, &district] {
        let (status, board) = get(server, "/public/disclosure", "");
        assert_eq!(status, 200, "{board}");
        for (form, number) in forms.iter().zip(&numbers) {
            assert!(board.contains(number.as_str()), "{number} missing");
            assert!(board.contains(&mask_name(&form.applicant_name)));
            for secret in [
                form.applicant_name.as_str(),
                form.id_number.as_str(),
                form.phone.as_deref().unwrap(),
                form.address.as_str(),
            ] {
                assert!(!board.contains(secret), "{secret} on the public board");
            }
        }
        assert!(board.contains("不予受理") && board.contains("办理中"));
        let today = sync_server::now().format("%Y-%m-%d").to_string();
        assert!(board.contains(&today));
    }

    let (status, page) = get(&township, "/public/catalog", "");
    assert_eq!(status, 200);
    for item in &Catalog::demo().items {
        assert!(page.contains(&item.name), "{} missing", item.name);
        assert!(page.contains(&item.legal_basis));
    }
    assert!(page.contains("个工作日") && page.contains("所需材料"));
}
