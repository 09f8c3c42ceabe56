//! Property: random concurrent event histories, merged in different orders, fold to the same
//! status, 需核对 flag, anomalies and legal dates on every replica.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agent_core::demo;
use agent_core::doc::TicketDoc;
use agent_core::domain::catalog::Catalog;
use agent_core::domain::event::{may_append, Event, EventKind, Role};
use agent_core::domain::lifecycle::Lifecycle;
use agent_core::domain::number::TicketNumber;
use agent_core::domain::ticket::Ticket;
use agent_core::store::china_offset;
use automerge::ActorId;
use chrono::{Days, NaiveDate, TimeZone};
use proptest::prelude::*;

const ROLES: [Role; 4] = [Role::Agent, Role::Township, Role::Window, Role::Server];

#[derive(Debug, Clone)]
enum Step {
    /// Replica appends the `k`-th kind its role may append, `d` days after registration.
    Append {
        replica: usize,
        k: usize,
        d: u64,
        score: u64,
    },
    /// Replica `to` merges everything `from` has.
    Sync { from: usize, to: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..4usize, 0..16usize, 0..30u64, 0..6u64)
            .prop_map(|(replica, k, d, score)| Step::Append { replica, k, d, score }),
        1 => (0..4usize, 0..4usize).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

fn base_ticket() -> Ticket {
    let catalog = Catalog::demo();
    let form = demo::forms(7, 1, &catalog).remove(0);
    let today = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let c = form.check(&catalog, today).unwrap();
    let at = china_offset()
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .unwrap();
    Ticket {
        number: TicketNumber::new(101, 1, 1).unwrap(),
        item: c.item,
        applicant: c.applicant,
        materials: c.materials,
        fee: c.fee,
        agent: "agent-1".into(),
        point: 101,
        device: 1,
        remarks: String::new(),
        registered_at: at,
        events: vec![Event {
            id: "reg".into(),
            kind: EventKind::Registered,
            at,
            actor: "agent-1".into(),
            role: Role::Agent,
            note: String::new(),
            payload: serde_json::json!({}),
        }],
    }
}

fn life(doc: &TicketDoc) -> Lifecycle {
    doc.read().unwrap().lifecycle()
}

fn run(steps: &[Step], orders: &[Vec<usize>]) -> Vec<Lifecycle> {
    let ticket = base_ticket();
    let actors: Vec<ActorId> = (0..4u8).map(|i| ActorId::from(vec![i + 1; 16])).collect();
    let mut base = TicketDoc::create(&ticket, &actors[0]).unwrap();
    let mut replicas: Vec<TicketDoc> = actors.iter().map(|a| base.fork_as(a)).collect();
    for (n, s) in steps.iter().enumerate() {
        match *s {
            Step::Append {
                replica,
                k,
                d,
                score,
            } => {
                let role = ROLES[replica];
                let kinds: Vec<EventKind> = EventKind::ALL
                    .into_iter()
                    .filter(|k| may_append(role, *k))
                    .collect();
                let kind = kinds[k % kinds.len()];
                let at = ticket.registered_at + Days::new(d);
                let payload = match kind {
                    EventKind::Evaluated => serde_json::json!({ "score": score }),
                    EventKind::SupplementRequested => serde_json::json!({ "missing": ["户口本"] }),
                    EventKind::Completed => serde_json::json!({ "outcome": "approved" }),
                    // A decision names the anomalies it resolves (maybe none that exist).
                    EventKind::Reviewed => {
                        serde_json::json!({ "resolves": [format!("e{}", n / 2)] })
                    }
                    // Arrival stamps refer to some earlier event id (maybe unknown).
                    EventKind::Arrived => serde_json::json!({ "of": format!("e{}", n / 2) }),
                    _ => serde_json::json!({}),
                };
                let ev = Event {
                    id: format!("e{n}"),
                    kind,
                    at,
                    actor: format!("{role:?}"),
                    role,
                    note: String::new(),
                    payload,
                };
                replicas[replica].append(&ev).unwrap();
                replicas[replica].commit();
            }
            Step::Sync { from, to } if from != to => {
                let mut src = replicas[from].fork_as(&actors[from]);
                replicas[to].merge(&mut src).unwrap();
            }
            Step::Sync { .. } => {}
        }
    }
    // Every replica finally receives everything, in the given orders.
    orders
        .iter()
        .map(|order| {
            let first = order[0];
            let mut acc = replicas[first].fork_as(&actors[first]);
            for &i in &order[1..] {
                let mut other = replicas[i].fork_as(&actors[i]);
                acc.merge(&mut other).unwrap();
            }
            life(&acc)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_on_status_and_flags(
        steps in prop::collection::vec(step(), 1..40),
        orders in prop::collection::vec(Just(vec![0usize, 1, 2, 3]).prop_shuffle(), 2..5),
    ) {
        let lives = run(&steps, &orders);
        for l in &lives[1..] {
            prop_assert_eq!(l, &lives[0]);
        }
    }
}

#[test]
fn withdraw_while_completed_elsewhere_is_flagged_the_same_everywhere() {
    // The village withdraws offline while the township completes: both kept, 需核对.
    let steps = vec![
        Step::Append {
            replica: 3,
            k: 0,
            d: 1,
            score: 0,
        }, // server: received
        Step::Sync { from: 3, to: 1 },
        Step::Append {
            replica: 1,
            k: 0,
            d: 2,
            score: 0,
        }, // township: accepted
        Step::Sync { from: 1, to: 0 },
        Step::Append {
            replica: 1,
            k: 8,
            d: 3,
            score: 0,
        }, // township: completed
        Step::Append {
            replica: 0,
            k: 4,
            d: 3,
            score: 0,
        }, // agent: withdrawn
    ];
    // Check the kinds the indexes pick, so the scenario means what it says.
    let kinds = |r: Role| -> Vec<EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(|k| may_append(r, *k))
            .collect()
    };
    assert_eq!(kinds(Role::Server)[0], EventKind::Received);
    assert_eq!(kinds(Role::Township)[0], EventKind::Accepted);
    assert_eq!(kinds(Role::Township)[8], EventKind::Completed);
    assert_eq!(kinds(Role::Agent)[4], EventKind::Withdrawn);
    let lives = run(
        &steps,
        &[vec![0, 1, 2, 3], vec![3, 2, 1, 0], vec![1, 0, 3, 2]],
    );
    assert!(
        lives[0].needs_review,
        "conflict must be flagged: {:?}",
        lives[0]
    );
    assert_eq!(lives[0].anomalies.len(), 1);
    assert_eq!(lives[0], lives[1]);
    assert_eq!(lives[0], lives[2]);
}
