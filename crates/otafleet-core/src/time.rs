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

pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("fixed format always formats")
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
}
