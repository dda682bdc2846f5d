//! Timestamps as stored and shown: UTC, millisecond precision, one fixed width, so that text order
//! is time order in SQLite and the UI can parse them with `Date`.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now, formatted for storage.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// The stored form of the time `seconds` ago.
pub fn ago(seconds: i64) -> String {
    format(OffsetDateTime::now_utc() - time::Duration::seconds(seconds))
}

pub fn format(t: OffsetDateTime) -> String {
    // Written out by hand: every check-in stamps its time, and this is several times cheaper
    // than interpreting FORMAT or going through `fmt` (the test below holds the two to the same
    // text). Years outside 0..=9999 take the general path.
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format(FORMAT).expect("fixed format always formats");
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, u8::from(t.month()).into());
    put(8, 2, t.day().into());
    put(11, 2, t.hour().into());
    put(14, 2, t.minute().into());
    put(17, 2, t.second().into());
    put(20, 3, t.millisecond().into());
    String::from_utf8(b.to_vec()).expect("ASCII digits")
}

/// Parse a stored timestamp; `None` for anything not written by [`now`].
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s, FORMAT)
        .ok()
        .map(|p| p.assume_utc())
}

/// Seconds elapsed since a stored timestamp (negative if it is in the future).
pub fn age_seconds(s: &str) -> Option<i64> {
    parse(s).map(|t| (OffsetDateTime::now_utc() - t).whole_seconds())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_sorts() {
        let a = super::now();
        assert_eq!(
            a.len(),
            24,
            "fixed width keeps text order equal to time order: {a}"
        );
        assert!(super::parse(&a).is_some());
        assert!(super::age_seconds(&a).unwrap() >= 0);
        assert!(super::parse("yesterday").is_none());
    }

    #[test]
    fn hand_written_format_matches_the_format_description() {
        use time::macros::datetime;
        for t in [
            datetime!(2026-11-22 23:05:07.009 UTC),
            datetime!(1999-01-01 00:00:00 UTC),
            datetime!(2031-12-31 23:59:59.999999 UTC),
            datetime!(2026-03-29 03:30:00.5 +02:00),
        ] {
            let by_description = t
                .to_offset(time::UtcOffset::UTC)
                .format(super::FORMAT)
                .unwrap();
            assert_eq!(super::format(t), by_description);
        }
    }
}
