use chrono::{TimeZone, Utc};

use super::*;

fn at(text: &str) -> Timestamp {
    parse_date(text).unwrap()
}

fn cron(expression: &str) -> Trigger {
    Trigger {
        kind: TriggerKind::Cron,
        expression: expression.into(),
    }
}

/// The next due time by a second, independent cron implementation (`cron-parser`). It matches a
/// day when both day fields match; Unix cron matches either when both are restricted, so for such
/// expressions the reference is the earlier of the two single-field expressions.
fn reference_next(expression: &str, after: Timestamp) -> Timestamp {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let start = Utc.timestamp_millis_opt(after).unwrap();
    let next = |expr: &str| cron_parser::parse(expr, &start).unwrap().timestamp_millis();
    if fields[2] != "*" && fields[4] != "*" {
        let by_day_of_month = format!("{} {} {} {} *", fields[0], fields[1], fields[2], fields[3]);
        let by_day_of_week = format!("{} {} * {} {}", fields[0], fields[1], fields[3], fields[4]);
        next(&by_day_of_month).min(next(&by_day_of_week))
    } else {
        next(expression)
    }
}

#[test]
fn cron_edge_cases_agree_with_an_independent_implementation() {
    let cases = [
        // month ends
        ("0 0 31 * *", "2026-04-15T00:00:00Z"),
        ("0 0 30 * *", "2027-02-01T00:00:00Z"),
        ("59 23 28-31 * *", "2026-02-27T12:00:00Z"),
        // 29 February
        ("0 12 29 2 *", "2026-03-01T00:00:00Z"),
        ("0 0 29 2 *", "2027-12-31T23:59:00Z"),
        // steps, ranges, lists
        ("*/15 * * * *", "2026-11-25T10:07:00Z"),
        ("5-50/20 */3 * * *", "2026-11-25T10:07:00Z"),
        ("0 9-17 * * 1-5", "2026-11-27T18:00:00Z"),
        ("0,30 8,20 1,15 * *", "2026-11-25T10:07:00Z"),
        ("10 4 * 1,7 *", "2026-11-25T10:07:00Z"),
        // day-of-month with day-of-week: either matches
        ("0 0 13 * 5", "2026-11-25T00:00:00Z"),
        ("30 6 1 * 1", "2026-11-25T00:00:00Z"),
        // the end of a year
        ("0 0 1 1 *", "2026-12-31T23:59:59Z"),
        ("* * * * *", "2026-12-31T23:59:30Z"),
    ];
    for (expression, after) in cases {
        let mut time = at(after);
        // Walk several due times, each checked against the reference.
        for _ in 0..5 {
            let ours = cron(expression).next_after(time).unwrap();
            let theirs = reference_next(expression, time);
            assert_eq!(
                ours,
                theirs,
                "{expression} after {}: ours {}, reference {}",
                Utc.timestamp_millis_opt(time).unwrap(),
                Utc.timestamp_millis_opt(ours).unwrap(),
                Utc.timestamp_millis_opt(theirs).unwrap()
            );
            time = ours;
        }
    }
}

#[test]
fn leap_day_schedule_skips_to_the_next_leap_year() {
    assert_eq!(
        cron("0 0 29 2 *").next_after(at("2026-03-01T00:00:00Z")),
        Some(at("2028-02-29T00:00:00Z"))
    );
}

#[test]
fn invalid_expressions_say_what_is_wrong() {
    let mut errors = ValidationErrors::default();
    cron("* * * *").validate("trigger", 0, &mut errors);
    cron("61 * * * *").validate("type", 0, &mut errors);
    cron("* * * * * *").validate("trigger", 0, &mut errors);
    Trigger {
        kind: TriggerKind::Date,
        expression: "tomorrow".into(),
    }
    .validate("trigger", 0, &mut errors);
    Trigger {
        kind: TriggerKind::Date,
        expression: "2020-01-01T00:00:00Z".into(),
    }
    .validate("trigger", at("2026-01-01T00:00:00Z"), &mut errors);
    let messages: Vec<String> = errors
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    assert!(messages[0].contains("5 fields"), "{messages:?}");
    assert!(messages[1].starts_with("type.expression"), "{messages:?}");
    assert!(messages[2].contains("found 6"), "{messages:?}");
    assert!(messages[3].contains("ISO-8601"), "{messages:?}");
    assert!(messages[4].contains("past"), "{messages:?}");
}

#[test]
fn dates_parse_with_and_without_offset() {
    assert_eq!(
        parse_date("2030-01-31T12:00:00Z").unwrap(),
        parse_date("2030-01-31T12:00:00").unwrap()
    );
    assert_eq!(
        parse_date("2030-01-31T13:00:00+01:00").unwrap(),
        parse_date("2030-01-31T12:00:00Z").unwrap()
    );
}

#[test]
fn a_date_schedule_fires_once_then_has_no_next_time() {
    let trigger = Trigger {
        kind: TriggerKind::Date,
        expression: "2030-01-01T00:00:00Z".into(),
    };
    let due = at("2030-01-01T00:00:00Z");
    let mut schedule = Schedule::new(
        "A".parse().unwrap(),
        JobId::new(),
        "d".into(),
        "svc".into(),
        trigger,
        due - 1_000,
    );
    assert_eq!(schedule.next_fire_time, Some(due));
    assert_eq!(schedule.fire(due - 1), None);
    assert_eq!(schedule.fire(due + 5_000), Some(due));
    assert_eq!(schedule.next_fire_time, None);
    assert_eq!(schedule.fire(due + 10_000), None);
}

#[test]
fn a_missed_stretch_fires_once_for_the_latest_due_time() {
    let mut schedule = Schedule::new(
        "A".parse().unwrap(),
        JobId::new(),
        "d".into(),
        "svc".into(),
        cron("0 * * * *"),
        at("2026-11-25T00:30:00Z"),
    );
    assert_eq!(
        schedule.fire(at("2026-11-25T05:10:00Z")),
        Some(at("2026-11-25T05:00:00Z"))
    );
    assert_eq!(schedule.next_fire_time, Some(at("2026-11-25T06:00:00Z")));
    assert_eq!(schedule.last_fire_time, Some(at("2026-11-25T05:00:00Z")));
}

#[test]
fn spec_accepts_the_trigger_under_either_key_but_not_both() {
    let both: ScheduleSpec = serde_json::from_value(serde_json::json!({
        "description": "d", "serviceAccountAlias": "svc",
        "trigger": {"type": "cron", "expression": "* * * * *"},
        "type": {"type": "cron", "expression": "* * * * *"}
    }))
    .unwrap();
    assert!(both.validate(0).is_err());
    let example: ScheduleSpec = serde_json::from_value(serde_json::json!({
        "description": "Job Schedule demo.",
        "type": {"type": "cron", "expression": "* 1 * * *"},
        "serviceAccountAlias": "demo-account-service-account1"
    }))
    .unwrap();
    assert_eq!(example.validate(0).unwrap().expression, "* 1 * * *");
    let missing = ScheduleSpec::default().validate(0).unwrap_err();
    let fields: Vec<&str> = missing.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["description", "serviceAccountAlias", "trigger"]);
}
