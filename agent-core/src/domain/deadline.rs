//! Deadline math (电子监察): due date, pauses, remaining working days, lights and stage
//! overruns, independent of how tickets store their events.
//!
//! The caller gathers the legal dates (from server-stamped events) into a [`ClockInput`];
//! [`compute`] turns them, a [`Calendar`] and today's date into a [`Deadline`]. Pure: no clock
//! reads, no I/O, no panics. A date in a year the calendar does not cover never produces a
//! guess: the result carries the [`CalendarGap`] instead.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::calendar::{Calendar, CalendarGap};

/// A stage of a ticket with its own budget from the catalog item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// From `received` at the township to its first decision.
    TownshipReview,
    /// From `forwarded` to `completed` at the district window.
    WindowHandling,
    /// From `completed` to delivery at the village point.
    ReturnToVillage,
}

/// A pause of the clock after acceptance: waiting for a supplement (补正) or a special
/// procedure (hearing, testing, expert review).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Legal day of the request (supplement requested / special procedure started).
    pub requested: NaiveDate,
    /// Legal day the supplement or result arrived; None = still paused.
    pub resumed: Option<NaiveDate>,
}

/// One stage as it happened (or is happening).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSpan {
    pub stage: Stage,
    pub start: NaiveDate,
    /// None = the stage is still open (counted up to today).
    pub end: Option<NaiveDate>,
    /// Working days allowed; 0 = no budget.
    pub budget: u32,
}

/// The legal dates of one ticket, as the lifecycle fold gathers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClockInput {
    /// Acceptance day; None: the clock has not started.
    pub accepted: Option<NaiveDate>,
    /// Promised working days (承诺时限) of the catalog item.
    pub promised_days: u32,
    /// Only pauses after acceptance (supplements, special procedures).
    pub pauses: Vec<Pause>,
    /// Completed (or otherwise closed) day; None = still running.
    pub finished: Option<NaiveDate>,
    pub stages: Vec<StageSpan>,
}

/// Supervision light (电子监察红黄绿灯).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    Green,
    Yellow,
    Red,
}

/// Where the clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ClockState {
    /// Not accepted yet: no deadline.
    NotStarted,
    Running,
    /// Waiting for a supplement or a special procedure; the due date moves with every
    /// working day paused, so `remaining` stays put.
    Paused,
    /// Completed or closed; `on_time` = finished on or before the due date.
    Finished {
        on_time: bool,
    },
    /// The calendar does not cover `gap_year`, which the deadline needs.
    Unknown {
        gap_year: i32,
    },
}

/// How long one stage took against its budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: Stage,
    /// Working days after the start up to and including the end (or today while open).
    pub taken: u32,
    pub budget: u32,
    /// Over its own budget (flagged even when the whole ticket is on time).
    pub over: bool,
    /// Still running.
    pub open: bool,
}

/// The deadline of one ticket as of a given day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub state: ClockState,
    /// The due date (promised days plus paused days after acceptance); None unless the state
    /// is Running, Paused or Finished.
    pub due: Option<NaiveDate>,
    /// Working days the clock was paused (0 when not started or unknown).
    pub paused_days: u32,
    /// Working days after `today` up to and including `due`; negative when overdue (minus the
    /// working days after `due` up to and including today, and at least −1 as soon as today is
    /// past `due`, so a weekend right after the due date is already overdue).
    /// Only while Running or Paused.
    pub remaining: Option<i64>,
    /// Only while Running or Paused.
    pub light: Option<Light>,
    /// One report per stage span whose working days could be counted.
    pub stages: Vec<StageReport>,
    /// Set whenever any computation (clock or stage) hit an uncovered year.
    pub warning: Option<CalendarGap>,
}

/// Working days of "remaining" at or below which the light turns yellow.
pub const DEFAULT_MARGIN: u32 = 1;

/// The deadline of `input` as of `today`.
///
/// - due = `promised_days` + paused working days after the acceptance day;
/// - a pause counts the working days after its request day up to and including its resume
///   day (today while still open), never past `finished`; overlapping pauses count a day once;
/// - lights: green while remaining > `margin`, yellow while 0 ≤ remaining ≤ `margin`, red once
///   today is past due;
/// - a [`CalendarGap`] in the clock makes the state `Unknown` (unless the clock has not
///   started); a gap in a stage only drops that stage's report. Either sets `warning`.
pub fn compute(input: &ClockInput, cal: &Calendar, today: NaiveDate, margin: u32) -> Deadline {
    let mut warning: Option<CalendarGap> = None;
    let mut deadline = Deadline {
        state: ClockState::NotStarted,
        due: None,
        paused_days: 0,
        remaining: None,
        light: None,
        stages: Vec::new(),
        warning: None,
    };
    if let Some(accepted) = input.accepted {
        match run_clock(input, accepted, cal, today) {
            Ok(clock) => {
                deadline.state = clock.state;
                deadline.due = Some(clock.due);
                deadline.paused_days = clock.paused_days;
                deadline.remaining = clock.remaining;
                deadline.light = clock.remaining.map(|r| light(r, margin));
            }
            Err(gap) => {
                deadline.state = ClockState::Unknown { gap_year: gap.year };
                warning = Some(gap);
            }
        }
    }
    for span in &input.stages {
        let end = span.end.unwrap_or(today);
        match cal.working_days_between(span.start, end) {
            Ok(taken) => deadline.stages.push(StageReport {
                stage: span.stage,
                taken,
                budget: span.budget,
                over: span.budget > 0 && taken > span.budget,
                open: span.end.is_none(),
            }),
            Err(gap) => {
                warning.get_or_insert(gap);
            }
        }
    }
    deadline.warning = warning;
    deadline
}

/// Working days after `today` up to and including `due`; when today is past `due`, minus
/// the working days after `due` up to and including today, and at least −1.
pub fn remaining(cal: &Calendar, today: NaiveDate, due: NaiveDate) -> Result<i64, CalendarGap> {
    if today <= due {
        Ok(i64::from(cal.working_days_between(today, due)?))
    } else {
        let late = cal.working_days_between(due, today)?.max(1);
        Ok(i64::from(late).saturating_neg())
    }
}

/// The light for a `remaining` value (see [`remaining`]).
pub fn light(remaining: i64, margin: u32) -> Light {
    if remaining < 0 {
        Light::Red
    } else if remaining <= i64::from(margin) {
        Light::Yellow
    } else {
        Light::Green
    }
}

/// What the clock part of [`compute`] found.
struct Clock {
    state: ClockState,
    due: NaiveDate,
    paused_days: u32,
    remaining: Option<i64>,
}

fn run_clock(
    input: &ClockInput,
    accepted: NaiveDate,
    cal: &Calendar,
    today: NaiveDate,
) -> Result<Clock, CalendarGap> {
    let paused_days = paused_days(input, accepted, cal, today)?;
    let due = cal.add_working_days(accepted, input.promised_days.saturating_add(paused_days))?;
    if let Some(finished) = input.finished {
        return Ok(Clock {
            state: ClockState::Finished {
                on_time: finished <= due,
            },
            due,
            paused_days,
            remaining: None,
        });
    }
    let state = if input.pauses.iter().any(|p| p.resumed.is_none()) {
        ClockState::Paused
    } else {
        ClockState::Running
    };
    Ok(Clock {
        state,
        due,
        paused_days,
        remaining: Some(remaining(cal, today, due)?),
    })
}

/// Paused working days: the union of the intervals (requested, resumed-or-today], each
/// clipped to after acceptance and to `finished`.
fn paused_days(
    input: &ClockInput,
    accepted: NaiveDate,
    cal: &Calendar,
    today: NaiveDate,
) -> Result<u32, CalendarGap> {
    let mut spans: Vec<(NaiveDate, NaiveDate)> = input
        .pauses
        .iter()
        .filter_map(|p| {
            let after = p.requested.max(accepted);
            let mut upto = p.resumed.unwrap_or(today);
            if let Some(finished) = input.finished {
                upto = upto.min(finished);
            }
            (upto > after).then_some((after, upto))
        })
        .collect();
    spans.sort_unstable();
    let mut total = 0u32;
    let mut current: Option<(NaiveDate, NaiveDate)> = None;
    for (after, upto) in spans {
        current = match current {
            // (a, b] and (after, upto] touch or overlap: one interval.
            Some((a, b)) if after <= b => Some((a, b.max(upto))),
            Some((a, b)) => {
                total = total.saturating_add(cal.working_days_between(a, b)?);
                Some((after, upto))
            }
            None => Some((after, upto)),
        };
    }
    if let Some((a, b)) = current {
        total = total.saturating_add(cal.working_days_between(a, b)?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or(NaiveDate::MIN)
    }

    fn cn() -> Calendar {
        Calendar::default_cn()
    }

    fn accepted(on: NaiveDate, days: u32) -> ClockInput {
        ClockInput {
            accepted: Some(on),
            promised_days: days,
            ..ClockInput::default()
        }
    }

    fn due_of(input: &ClockInput, today: NaiveDate) -> Option<NaiveDate> {
        compute(input, &cn(), today, DEFAULT_MARGIN).due
    }

    #[test]
    fn due_dates_across_holidays() {
        let cases = [
            // 国庆 2026: Oct 1–7 off, Sat Oct 10 a make-up day.
            (d(2026, 9, 30), 5, d(2026, 10, 13)),
            // 春节 2026: Sat Feb 14 make-up, Feb 15–23 off.
            (d(2026, 2, 13), 3, d(2026, 2, 25)),
            // 春节 2025: Sun Jan 26 make-up, Jan 28–Feb 4 off, Sat Feb 8 make-up.
            (d(2025, 1, 24), 3, d(2025, 2, 5)),
            (d(2025, 1, 24), 6, d(2025, 2, 8)),
            (d(2025, 1, 26), 1, d(2025, 1, 27)),
            // 国庆 2025: Sun Sep 28 make-up, Oct 1–8 off, Sat Oct 11 make-up.
            (d(2025, 9, 26), 4, d(2025, 10, 9)),
            (d(2025, 9, 26), 6, d(2025, 10, 11)),
            (d(2025, 9, 30), 1, d(2025, 10, 9)),
            // 元旦 2026 across the year end.
            (d(2025, 12, 31), 2, d(2026, 1, 5)),
            // Promised 0: due on the acceptance day.
            (d(2026, 3, 2), 0, d(2026, 3, 2)),
        ];
        for (on, days, due) in cases {
            let dl = compute(&accepted(on, days), &cn(), on, DEFAULT_MARGIN);
            assert_eq!(dl.due, Some(due), "{on} + {days}");
            assert_eq!(dl.state, ClockState::Running, "{on} + {days}");
            assert_eq!(dl.warning, None);
            assert_eq!(dl.paused_days, 0);
        }
    }

    #[test]
    fn closed_pause_moves_the_due_date() {
        // Mon 2026-03-02, 5 days → Mon 03-09; supplement 03-04 → 03-06 pauses Thu 05, Fri 06.
        let mut input = accepted(d(2026, 3, 2), 5);
        assert_eq!(due_of(&input, d(2026, 3, 3)), Some(d(2026, 3, 9)));
        input.pauses.push(Pause {
            requested: d(2026, 3, 4),
            resumed: Some(d(2026, 3, 6)),
        });
        let dl = compute(&input, &cn(), d(2026, 3, 9), DEFAULT_MARGIN);
        assert_eq!(dl.paused_days, 2);
        assert_eq!(dl.due, Some(d(2026, 3, 11)));
        assert_eq!(dl.state, ClockState::Running);
        assert_eq!(dl.remaining, Some(2));
        assert_eq!(dl.light, Some(Light::Green));
    }

    #[test]
    fn open_pause_freezes_remaining() {
        let mut input = accepted(d(2026, 3, 2), 5);
        input.pauses.push(Pause {
            requested: d(2026, 3, 4),
            resumed: None,
        });
        // On the request day nothing is paused yet: due 03-09, 3 working days left.
        let dl = compute(&input, &cn(), d(2026, 3, 4), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Paused);
        assert_eq!(
            (dl.paused_days, dl.due, dl.remaining),
            (0, Some(d(2026, 3, 9)), Some(3))
        );
        // Tue 03-10: paused Thu 05, Fri 06, Mon 09, Tue 10 → due 03-13, still 3 left.
        let dl = compute(&input, &cn(), d(2026, 3, 10), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Paused);
        assert_eq!(
            (dl.paused_days, dl.due, dl.remaining),
            (4, Some(d(2026, 3, 13)), Some(3))
        );
        assert_eq!(dl.light, Some(Light::Green));
        // Over the weekend nothing changes.
        let dl = compute(&input, &cn(), d(2026, 3, 8), DEFAULT_MARGIN);
        assert_eq!(
            (dl.paused_days, dl.due, dl.remaining),
            (2, Some(d(2026, 3, 11)), Some(3))
        );
    }

    #[test]
    fn pause_across_a_holiday() {
        // Mon 2026-09-21 + 10: Sep 22–24, (25–27 off), 28–30, (Oct 1–7 off), 8, 9, Sat 10, Mon 12.
        let mut input = accepted(d(2026, 9, 21), 10);
        assert_eq!(due_of(&input, d(2026, 9, 21)), Some(d(2026, 10, 12)));
        // Paused after Tue 09-29 up to Fri 10-09: Sep 30, Oct 8, Oct 9 = 3 working days.
        input.pauses.push(Pause {
            requested: d(2026, 9, 29),
            resumed: Some(d(2026, 10, 9)),
        });
        let dl = compute(&input, &cn(), d(2026, 10, 9), DEFAULT_MARGIN);
        assert_eq!(dl.paused_days, 3);
        assert_eq!(dl.due, Some(d(2026, 10, 15)));
        // Still paused during the holiday: the holiday days do not count.
        input.pauses = vec![Pause {
            requested: d(2026, 9, 29),
            resumed: None,
        }];
        let dl = compute(&input, &cn(), d(2026, 10, 6), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Paused);
        assert_eq!(dl.paused_days, 1);
        assert_eq!(dl.due, Some(d(2026, 10, 13)));
    }

    #[test]
    fn overlapping_pauses_count_each_day_once() {
        let mut input = accepted(d(2026, 3, 2), 5);
        input.pauses = vec![
            Pause {
                requested: d(2026, 3, 5),
                resumed: Some(d(2026, 3, 10)),
            },
            Pause {
                requested: d(2026, 3, 4),
                resumed: Some(d(2026, 3, 6)),
            },
            // Adjacent: (10, 11] continues the merged span.
            Pause {
                requested: d(2026, 3, 10),
                resumed: Some(d(2026, 3, 11)),
            },
            // Inverted dates count nothing.
            Pause {
                requested: d(2026, 3, 20),
                resumed: Some(d(2026, 3, 19)),
            },
        ];
        // (04, 11]: 5, 6, 9, 10, 11.
        let dl = compute(&input, &cn(), d(2026, 3, 12), DEFAULT_MARGIN);
        assert_eq!(dl.paused_days, 5);
        assert_eq!(dl.due, Some(d(2026, 3, 16)));
        // A pause "requested" before acceptance only counts after acceptance.
        let mut input = accepted(d(2026, 3, 4), 1);
        input.pauses = vec![Pause {
            requested: d(2026, 3, 2),
            resumed: Some(d(2026, 3, 5)),
        }];
        let dl = compute(&input, &cn(), d(2026, 3, 5), DEFAULT_MARGIN);
        assert_eq!(dl.paused_days, 1);
        assert_eq!(dl.due, Some(d(2026, 3, 6)));
    }

    #[test]
    fn lights_day_by_day() {
        let cal = cn();
        // Due Mon 2026-03-09.
        let input = accepted(d(2026, 3, 2), 5);
        let expect = [
            (d(2026, 3, 2), 5, Light::Green),
            (d(2026, 3, 5), 2, Light::Green),
            (d(2026, 3, 6), 1, Light::Yellow), // Fri: the working day before due
            (d(2026, 3, 7), 1, Light::Yellow), // weekend between
            (d(2026, 3, 8), 1, Light::Yellow),
            (d(2026, 3, 9), 0, Light::Yellow), // the due date itself
            (d(2026, 3, 10), -1, Light::Red),
            (d(2026, 3, 13), -4, Light::Red),
            (d(2026, 3, 16), -5, Light::Red),
        ];
        for (today, rem, light) in expect {
            let dl = compute(&input, &cal, today, DEFAULT_MARGIN);
            assert_eq!(dl.state, ClockState::Running, "{today}");
            assert_eq!(dl.remaining, Some(rem), "{today}");
            assert_eq!(dl.light, Some(light), "{today}");
            assert_eq!(remaining(&cal, today, d(2026, 3, 9)), Ok(rem));
        }
        // Due Fri 2026-03-06: the weekend right after is already red.
        let input = accepted(d(2026, 3, 2), 4);
        for (today, rem) in [
            (d(2026, 3, 7), -1),
            (d(2026, 3, 8), -1),
            (d(2026, 3, 9), -1),
            (d(2026, 3, 10), -2),
        ] {
            let dl = compute(&input, &cal, today, DEFAULT_MARGIN);
            assert_eq!(
                (dl.remaining, dl.light),
                (Some(rem), Some(Light::Red)),
                "{today}"
            );
        }
        // Other margins.
        let input = accepted(d(2026, 3, 2), 5);
        let at = |today, margin| compute(&input, &cal, today, margin).light;
        assert_eq!(at(d(2026, 3, 6), 0), Some(Light::Green));
        assert_eq!(at(d(2026, 3, 9), 0), Some(Light::Yellow));
        assert_eq!(at(d(2026, 3, 4), 3), Some(Light::Yellow));
        assert_eq!(at(d(2026, 3, 3), 3), Some(Light::Green));
        assert_eq!(light(i64::MAX, u32::MAX), Light::Green);
        assert_eq!(light(i64::MIN, 0), Light::Red);
        // Lights over a long holiday: accepted 2026-09-30 + 5 → due 10-13.
        let input = accepted(d(2026, 9, 30), 5);
        let dl = compute(&input, &cal, d(2026, 10, 2), DEFAULT_MARGIN);
        assert_eq!((dl.remaining, dl.light), (Some(5), Some(Light::Green)));
        let dl = compute(&input, &cal, d(2026, 10, 11), DEFAULT_MARGIN);
        assert_eq!((dl.remaining, dl.light), (Some(2), Some(Light::Green)));
    }

    #[test]
    fn finished_on_time_or_late() {
        let mut input = accepted(d(2026, 3, 2), 5);
        input.finished = Some(d(2026, 3, 9));
        let dl = compute(&input, &cn(), d(2026, 3, 20), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Finished { on_time: true });
        assert_eq!(
            (dl.due, dl.remaining, dl.light),
            (Some(d(2026, 3, 9)), None, None)
        );
        input.finished = Some(d(2026, 3, 10));
        let dl = compute(&input, &cn(), d(2026, 3, 20), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Finished { on_time: false });
        // Closed (e.g. withdrawn) while still paused: the pause stops at the closing day.
        let mut input = accepted(d(2026, 3, 2), 5);
        input.pauses.push(Pause {
            requested: d(2026, 3, 4),
            resumed: None,
        });
        input.finished = Some(d(2026, 3, 6));
        let dl = compute(&input, &cn(), d(2026, 4, 1), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Finished { on_time: true });
        assert_eq!((dl.paused_days, dl.due), (2, Some(d(2026, 3, 11))));
    }

    #[test]
    fn not_started() {
        // Rejected before acceptance: closed, but the clock never ran.
        let input = ClockInput {
            promised_days: 5,
            finished: Some(d(2026, 3, 3)),
            stages: vec![StageSpan {
                stage: Stage::TownshipReview,
                start: d(2026, 3, 2),
                end: None,
                budget: 2,
            }],
            ..ClockInput::default()
        };
        let dl = compute(&input, &cn(), d(2026, 3, 5), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::NotStarted);
        assert_eq!(
            (dl.due, dl.remaining, dl.light, dl.warning),
            (None, None, None, None)
        );
        assert_eq!(
            dl.stages,
            vec![StageReport {
                stage: Stage::TownshipReview,
                taken: 3,
                budget: 2,
                over: true,
                open: true,
            }]
        );
        // Not started and today in an uncovered year: warning, but still NotStarted.
        let dl = compute(&input, &cn(), d(2027, 1, 5), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::NotStarted);
        assert_eq!(dl.warning, Some(CalendarGap { year: 2027 }));
        assert!(dl.stages.is_empty());
        let dl = compute(&ClockInput::default(), &cn(), d(2030, 1, 1), 0);
        assert_eq!(dl.state, ClockState::NotStarted);
        assert_eq!(dl.warning, None);
    }

    #[test]
    fn stage_overrun_within_the_total() {
        // 10 promised days from Mon 2026-03-02 → due Mon 03-16.
        let mut input = accepted(d(2026, 3, 2), 10);
        input.stages = vec![
            StageSpan {
                stage: Stage::TownshipReview,
                start: d(2026, 3, 2),
                end: Some(d(2026, 3, 5)),
                budget: 2,
            },
            StageSpan {
                stage: Stage::WindowHandling,
                start: d(2026, 3, 5),
                end: None,
                budget: 5,
            },
            StageSpan {
                stage: Stage::ReturnToVillage,
                start: d(2026, 3, 5),
                end: Some(d(2026, 3, 6)),
                budget: 0,
            },
        ];
        let dl = compute(&input, &cn(), d(2026, 3, 9), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Running);
        assert_eq!(dl.light, Some(Light::Green));
        assert_eq!(dl.remaining, Some(5));
        assert_eq!(
            dl.stages,
            vec![
                StageReport {
                    stage: Stage::TownshipReview,
                    taken: 3,
                    budget: 2,
                    over: true,
                    open: false,
                },
                StageReport {
                    stage: Stage::WindowHandling,
                    taken: 2,
                    budget: 5,
                    over: false,
                    open: true,
                },
                StageReport {
                    stage: Stage::ReturnToVillage,
                    taken: 1,
                    budget: 0,
                    over: false,
                    open: false,
                },
            ]
        );
        // The stage is exactly on budget: not over.
        input.stages.truncate(1);
        if let Some(s) = input.stages.first_mut() {
            s.end = Some(d(2026, 3, 4));
        }
        let dl = compute(&input, &cn(), d(2026, 3, 9), DEFAULT_MARGIN);
        assert_eq!(
            dl.stages.first().map(|s| (s.taken, s.over)),
            Some((2, false))
        );
    }

    #[test]
    fn calendar_gap_is_unknown_not_a_guess() {
        let cal = cn();
        assert_eq!(
            cal.is_working_day(d(2027, 1, 4)),
            Err(CalendarGap { year: 2027 })
        );
        let mut input = accepted(d(2026, 12, 28), 10);
        input.stages = vec![
            StageSpan {
                stage: Stage::TownshipReview,
                start: d(2026, 12, 21),
                end: Some(d(2026, 12, 24)),
                budget: 3,
            },
            StageSpan {
                stage: Stage::WindowHandling,
                start: d(2026, 12, 28),
                end: None,
                budget: 5,
            },
        ];
        let dl = compute(&input, &cal, d(2026, 12, 30), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Unknown { gap_year: 2027 });
        assert_eq!(dl.warning, Some(CalendarGap { year: 2027 }));
        assert_eq!((dl.due, dl.remaining, dl.light), (None, None, None));
        // Both stages end in 2026, so both are still reported.
        assert_eq!(dl.stages.len(), 2);
        assert_eq!(
            dl.stages.first().map(|s| (s.taken, s.over)),
            Some((3, false))
        );
        // In 2027 the open stage cannot be counted: only the closed one is reported.
        let dl = compute(&input, &cal, d(2027, 1, 5), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Unknown { gap_year: 2027 });
        assert_eq!(dl.stages.len(), 1);
        // Due date known, but today is in 2027: remaining unknown.
        let input = accepted(d(2026, 12, 1), 5);
        let dl = compute(&input, &cal, d(2027, 1, 4), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Unknown { gap_year: 2027 });
        assert_eq!(dl.due, None);
        // Finished in 2026 but the due date would fall in 2027: unknown as well.
        let mut input = accepted(d(2026, 12, 28), 10);
        input.finished = Some(d(2026, 12, 30));
        let dl = compute(&input, &cal, d(2026, 12, 31), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Unknown { gap_year: 2027 });
        // A pause reaching into 2027.
        let mut input = accepted(d(2026, 12, 1), 5);
        input.pauses.push(Pause {
            requested: d(2026, 12, 3),
            resumed: Some(d(2027, 1, 5)),
        });
        let dl = compute(&input, &cal, d(2026, 12, 4), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Unknown { gap_year: 2027 });
    }

    #[test]
    fn stage_gap_alone_keeps_the_clock() {
        // A stage that began in uncovered 2024 cannot be counted; the clock (2025) can.
        let mut input = accepted(d(2025, 1, 2), 3);
        input.stages.push(StageSpan {
            stage: Stage::TownshipReview,
            start: d(2024, 12, 20),
            end: Some(d(2025, 1, 2)),
            budget: 3,
        });
        let dl = compute(&input, &cn(), d(2025, 1, 3), DEFAULT_MARGIN);
        assert_eq!(dl.state, ClockState::Running);
        assert_eq!(dl.due, Some(d(2025, 1, 7)));
        assert_eq!(dl.warning, Some(CalendarGap { year: 2024 }));
        assert!(dl.stages.is_empty());
    }

    #[test]
    fn serde_shapes() {
        let json = |s: &ClockState| serde_json::to_string(s).unwrap_or_default();
        assert_eq!(json(&ClockState::Running), r#"{"state":"running"}"#);
        assert_eq!(json(&ClockState::NotStarted), r#"{"state":"not_started"}"#);
        assert_eq!(
            json(&ClockState::Finished { on_time: true }),
            r#"{"state":"finished","on_time":true}"#
        );
        assert_eq!(
            json(&ClockState::Unknown { gap_year: 2027 }),
            r#"{"state":"unknown","gap_year":2027}"#
        );
        let dl = compute(
            &accepted(d(2026, 3, 2), 5),
            &cn(),
            d(2026, 3, 6),
            DEFAULT_MARGIN,
        );
        let text = serde_json::to_string(&dl).unwrap_or_default();
        assert!(text.contains(r#""light":"yellow""#), "{text}");
        assert!(text.contains(r#""due":"2026-03-09""#), "{text}");
        let back: Result<Deadline, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(dl));
        assert_eq!(
            serde_json::to_string(&Stage::ReturnToVillage).unwrap_or_default(),
            r#""return_to_village""#
        );
    }

    #[test]
    fn never_panics_on_odd_inputs() {
        let cal = cn();
        let dates = [
            NaiveDate::MIN,
            NaiveDate::MAX,
            d(2024, 12, 31),
            d(2025, 1, 1),
            d(2025, 10, 5),
            d(2026, 2, 14),
            d(2026, 12, 31),
            d(2027, 1, 1),
        ];
        let pick = |i: usize| {
            dates
                .get(i % dates.len())
                .copied()
                .unwrap_or(NaiveDate::MIN)
        };
        for (i, &today) in dates.iter().enumerate() {
            for j in 0..dates.len() {
                for days in [0, 1, 60, u32::MAX] {
                    let input = ClockInput {
                        accepted: Some(pick(j)),
                        promised_days: days,
                        pauses: vec![
                            Pause {
                                requested: pick(i.wrapping_add(j)),
                                resumed: None,
                            },
                            Pause {
                                requested: pick(j.wrapping_add(3)),
                                resumed: Some(pick(i.wrapping_add(5))),
                            },
                        ],
                        finished: (days == 1).then(|| pick(i.wrapping_add(1))),
                        stages: vec![StageSpan {
                            stage: Stage::WindowHandling,
                            start: pick(j.wrapping_add(2)),
                            end: None,
                            budget: days,
                        }],
                    };
                    for margin in [0, DEFAULT_MARGIN, u32::MAX] {
                        let dl = compute(&input, &cal, today, margin);
                        if let ClockState::Unknown { gap_year } = dl.state {
                            assert_eq!(dl.warning.map(|g| g.year), Some(gap_year));
                            assert_eq!(dl.due, None);
                        }
                    }
                }
            }
        }
    }
}
