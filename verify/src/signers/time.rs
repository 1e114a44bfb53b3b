//! Validity windows: the `valid-after` and `valid-before` times, read as OpenSSH reads them, and
//! why a time is outside a line's window ([`Validity`]).

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

use super::SignersError;

/// Why a key is outside its validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// The time is before `valid-after`.
    NotYetValid {
        /// The first moment the key is valid.
        valid_after: Timestamp,
    },
    /// The time is after `valid-before`.
    Expired {
        /// The last moment the key was valid.
        valid_before: Timestamp,
    },
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validity::NotYetValid { valid_after } => {
                write!(f, "not yet valid (valid-after {valid_after})")
            }
            Validity::Expired { valid_before } => {
                write!(f, "expired (valid-before {valid_before})")
            }
        }
    }
}

impl std::error::Error for Validity {}

/// Parses a `valid-after`/`valid-before` time as `parse_absolute_time` (`misc.c`) does.
///
/// A trailing `Z` or `UTC`, in any case, means UTC. Unlike `strptime(3)` and `mktime(3)`,
/// which accept blanks inside the fields and silently normalise February 30 to March 1 or
/// second 60 to the next minute, every field must be digits and the date and time must exist.
pub(super) fn parse_time(
    line: usize,
    option: &'static str,
    value: &str,
    tz: &TimeZone,
) -> Result<Timestamp, SignersError> {
    let bad = || SignersError::BadTime {
        line,
        option,
        value: value.to_owned(),
    };
    let bytes = value.as_bytes();
    let l = bytes.len();
    let (digits, utc) = if l > 1 && bytes[l - 1].eq_ignore_ascii_case(&b'z') {
        (&bytes[..l - 1], true)
    } else if l > 3 && bytes[l - 3..].eq_ignore_ascii_case(b"utc") {
        (&bytes[..l - 3], true)
    } else {
        (bytes, false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let field = |at: usize, len: usize| -> i16 {
        digits.get(at..at + len).map_or(0, |d| {
            d.iter().fold(0, |n, &b| n * 10 + i16::from(b - b'0'))
        })
    };
    // Fields past the given length are zero, as after `memset(&tm, 0, ...)`. The numbers fit
    // the narrower types: two decimal digits are at most 99.
    let narrow = |n: i16| i8::try_from(n).map_err(|_| bad());
    let dt = DateTime::new(
        field(0, 4),
        narrow(field(4, 2))?,
        narrow(field(6, 2))?,
        narrow(field(8, 2))?,
        narrow(field(10, 2))?,
        narrow(field(12, 2))?,
        0,
    )
    .map_err(|_| bad())?;
    let t = if utc {
        Offset::UTC.to_timestamp(dt).ok()
    } else {
        local_standard_time(dt, tz)
    };
    // A real date that is still out of range can only be at the very end of year 9999, past
    // `Timestamp::MAX` (9999-12-30T22:00:00Z), as in the "forever" of valid-before="99991231Z".
    // `Timestamp::MAX` is as good: no time to check against can be later.
    let t = match t {
        Some(t) => t,
        None if dt.year() == 9999 => Timestamp::MAX,
        None => return Err(bad()),
    };
    // OpenSSH refuses 0 (`sshsigopt_parse`) and, in every release to date, negative times
    // (`parse_absolute_time`).
    if t.as_second() <= 0 {
        return Err(SignersError::TimeBeforeEpoch {
            line,
            option,
            value: value.to_owned(),
        });
    }
    Ok(t)
}

/// Converts a local date and time to a timestamp as OpenSSH's `mktime(3)` call does.
///
/// `parse_absolute_time` zeroes its `struct tm`, so `tm_isdst` is 0: the time is read as
/// standard time even while daylight saving time is in force. In a zone observing DST, a
/// summer `valid-before="20240701"` therefore means 00:00 standard time, which is 01:00 on
/// the wall clock. glibc's `mktime` (`__mktime_internal`) finds the standard offset by looking
/// at times a week (601200 s) apart, alternately earlier and later, up to about 8.5 years
/// away, and uses the first non-DST offset it finds; if there is none it keeps the DST one.
/// This function does the same, so tally and `ssh-keygen -Y verify` agree on the same host.
fn local_standard_time(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    const STRIDE: i64 = 601_200;
    const DELTA_BOUND: i64 = 536_454_000 / 2 + STRIDE;
    let is_dst = |t: Timestamp| tz.to_offset_info(t).dst().is_dst();
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    let candidates = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => vec![offset],
        AmbiguousOffset::Gap { before, after } | AmbiguousOffset::Fold { before, after } => {
            vec![before, after]
        }
    };
    // A wall time in standard time (in a fold: its standard-time reading) is taken as is.
    for offset in candidates {
        if let Ok(t) = offset.to_timestamp(dt)
            && tz.to_offset(t) == offset
            && !is_dst(t)
        {
            return Some(t);
        }
    }
    let t = ambiguous.compatible().ok()?;
    let mut delta = STRIDE;
    while delta < DELTA_BOUND {
        for probe in [t.as_second() - delta, t.as_second() + delta] {
            if let Ok(probe) = Timestamp::from_second(probe)
                && !is_dst(probe)
            {
                return tz.to_offset(probe).to_timestamp(dt).ok();
            }
        }
        delta += STRIDE;
    }
    Some(t)
}
