//! Validity windows: reading times in UTC and local zones, and checking a time against them.

use super::*;

#[test]
fn every_time_format_in_utc() {
    for (value, expected) in [
        ("20240229Z", "2024-02-29T00:00:00Z"),
        ("202402291234Z", "2024-02-29T12:34:00Z"),
        ("20240229123456Z", "2024-02-29T12:34:56Z"),
        ("20240229123456z", "2024-02-29T12:34:56Z"),
        ("20240229123456UTC", "2024-02-29T12:34:56Z"),
        ("20240229123456utc", "2024-02-29T12:34:56Z"),
        // Past Timestamp::MAX, which stands in for it.
        ("99991231235959Z", "9999-12-30T22:00:00.999999999Z"),
        ("99991231Z", "9999-12-30T22:00:00.999999999Z"),
        ("19700101000001Z", "1970-01-01T00:00:01Z"),
    ] {
        assert_eq!(valid_before(value, &berlin()), ts(expected), "{value}");
    }
}

#[test]
fn every_time_format_in_a_fixed_local_zone() {
    let tz = TimeZone::fixed(jiff::tz::offset(5)); // +05:00
    assert_eq!(valid_before("20240101", &tz), ts("2023-12-31T19:00:00Z"));
    assert_eq!(
        valid_before("202401011230", &tz),
        ts("2024-01-01T07:30:00Z")
    );
    assert_eq!(
        valid_before("20240101123045", &tz),
        ts("2024-01-01T07:30:45Z")
    );
    let tz = TimeZone::fixed(jiff::tz::Offset::from_seconds(-(3 * 3600 + 30 * 60)).unwrap());
    assert_eq!(
        valid_before("202401011230", &tz),
        ts("2024-01-01T16:00:00Z")
    );
}

#[test]
fn local_winter_time_is_read_on_the_wall_clock() {
    assert_eq!(
        valid_before("202401011000", &berlin()),
        ts("2024-01-01T09:00:00Z")
    );
    assert_eq!(
        valid_before("20240101", &new_york()),
        ts("2024-01-01T05:00:00Z")
    );
}

#[test]
fn local_summer_time_is_read_as_standard_time_as_openssh_does() {
    // parse_absolute_time calls mktime(3) with tm_isdst = 0. Observed with OpenSSH 9.2
    // on glibc, TZ=Europe/Berlin: valid-before="202407011000" admits 09:00:00Z and
    // refuses 09:00:01Z, that is 11:00 on the summer wall clock; in New York
    // valid-before="20240701" ends at 05:00:00Z.
    assert_eq!(
        valid_before("202407011000", &berlin()),
        ts("2024-07-01T09:00:00Z")
    );
    assert_eq!(
        valid_before("20240701", &berlin()),
        ts("2024-06-30T23:00:00Z")
    );
    assert_eq!(
        valid_before("20240701", &new_york()),
        ts("2024-07-01T05:00:00Z")
    );
}

#[test]
fn local_time_in_the_spring_gap_is_read_as_standard_time() {
    // 02:30 does not exist on 2024-03-31 in Berlin; OpenSSH 9.2 reads it as 01:30:00Z.
    assert_eq!(
        valid_before("202403310230", &berlin()),
        ts("2024-03-31T01:30:00Z")
    );
}

#[test]
fn local_time_in_the_autumn_fold_is_read_as_standard_time() {
    // 02:30 happens twice on 2024-10-27 in Berlin; OpenSSH 9.2 takes the second.
    assert_eq!(
        valid_before("202410270230", &berlin()),
        ts("2024-10-27T01:30:00Z")
    );
}

#[test]
fn local_time_without_any_standard_time_keeps_the_dst_offset() {
    // DST all year round (the POSIX idiom for permanent DST): mktime finds no standard
    // offset nearby and keeps the one in force.
    let tz = TimeZone::posix("XST-1XDT,0/0,J365/25").unwrap();
    let t = valid_before("202407011000", &tz);
    assert_eq!(t, ts("2024-07-01T08:00:00Z"));
}

#[test]
fn z_time_ignores_the_local_zone() {
    assert_eq!(
        valid_before("202407011000Z", &new_york()),
        ts("2024-07-01T10:00:00Z")
    );
}

#[test]
fn parse_uses_the_system_zone_only_for_local_times() {
    let text = format!("a valid-after=\"20240101Z\" {ED25519}");
    let signers = AllowedSigners::parse(&text).unwrap();
    assert_eq!(
        signers.entries()[0].valid_after,
        Some(ts("2024-01-01T00:00:00Z"))
    );
}

#[test]
fn malformed_times_are_refused() {
    for value in [
        "",
        "Z",
        "2024010",
        "202401011",
        "2024010112",
        "2024010112345",
        "202401011234567",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "20240101T",
        "20240101ZZ",
        "20240101 Z",
        "2024 1 1",
        " 2024010",
        "+2024010",
        "-2024010",
        "20240101+0100",
        "20240101GMT",
        "２０２４０１０１",
        "0x240101",
        "now",
    ] {
        assert_refused!(
            format!("a valid-after=\"{value}\" {ED25519}"),
            SignersError::BadTime { option: "valid-after", value: ref v, .. } if v == value,
            1
        );
    }
}

#[test]
fn impossible_dates_are_refused_not_normalised() {
    // mktime(3) would move these to a real date; tally refuses them.
    for value in [
        "20240230",
        "20230229Z",
        "20241301",
        "20240001",
        "20240100",
        "20240431",
        "202401012400",
        "202401011260",
        "20240101235960Z",
        "20240101235961Z",
    ] {
        assert_refused!(
            format!("a valid-before=\"{value}\" {ED25519}"),
            SignersError::BadTime {
                option: "valid-before",
                ..
            },
            1
        );
    }
}

#[test]
fn times_not_after_the_epoch_are_refused() {
    for value in ["19700101Z", "19700101000000Z", "19691231Z", "00000101Z"] {
        assert_refused!(
            format!("a valid-after=\"{value}\" {ED25519}"),
            SignersError::TimeBeforeEpoch { .. },
            1
        );
    }
    // Local midnight in a zone east of UTC is before the epoch.
    let text = format!("a valid-before=\"19700101\" {ED25519}");
    let e = AllowedSigners::parse_in(&text, &berlin()).unwrap_err();
    assert!(matches!(e, SignersError::TimeBeforeEpoch { .. }), "{e:?}");
}

// ---- validity -----------------------------------------------------------------------------

fn window() -> SignerEntry {
    one(&format!(
        "a valid-after=\"20240101Z\",valid-before=\"20241231Z\" {ED25519}"
    ))
}

#[test]
fn validity_bounds_are_inclusive() {
    let e = window();
    assert_eq!(e.check_validity(ts("2024-01-01T00:00:00Z")), Ok(()));
    assert_eq!(e.check_validity(ts("2024-12-31T00:00:00Z")), Ok(()));
    assert_eq!(e.check_validity(ts("2024-06-15T12:00:00Z")), Ok(()));
}

#[test]
fn one_second_outside_the_window_is_refused() {
    let e = window();
    assert_eq!(
        e.check_validity(ts("2023-12-31T23:59:59Z")),
        Err(Validity::NotYetValid {
            valid_after: ts("2024-01-01T00:00:00Z")
        })
    );
    assert_eq!(
        e.check_validity(ts("2024-12-31T00:00:01Z")),
        Err(Validity::Expired {
            valid_before: ts("2024-12-31T00:00:00Z")
        })
    );
}

#[test]
fn validity_compares_whole_seconds_as_openssh_does() {
    let e = window();
    let end = ts("2024-12-31T00:00:00Z");
    assert_eq!(
        e.check_validity(end + SignedDuration::from_millis(999)),
        Ok(())
    );
    let start = ts("2024-01-01T00:00:00Z");
    assert!(matches!(
        e.check_validity(start - SignedDuration::from_millis(1)),
        Err(Validity::NotYetValid { .. })
    ));
}

#[test]
fn open_ended_windows() {
    let e = one(&format!("a valid-after=\"20240101Z\" {ED25519}"));
    assert_eq!(e.check_validity(ts("9999-01-01T00:00:00Z")), Ok(()));
    assert!(e.check_validity(ts("1969-01-01T00:00:00Z")).is_err());
    let e = one(&format!("a valid-before=\"20240101Z\" {ED25519}"));
    assert_eq!(e.check_validity(ts("1969-01-01T00:00:00Z")), Ok(()));
    assert!(e.check_validity(ts("2024-01-01T00:00:01Z")).is_err());
    let e = one(&format!("a {ED25519}"));
    assert_eq!(e.check_validity(Timestamp::MIN), Ok(()));
    assert_eq!(e.check_validity(Timestamp::MAX), Ok(()));
}

#[test]
fn validity_messages() {
    let t = ts("2024-01-01T00:00:00Z");
    assert_eq!(
        Validity::NotYetValid { valid_after: t }.to_string(),
        "not yet valid (valid-after 2024-01-01T00:00:00Z)"
    );
    assert_eq!(
        Validity::Expired { valid_before: t }.to_string(),
        "expired (valid-before 2024-01-01T00:00:00Z)"
    );
}
