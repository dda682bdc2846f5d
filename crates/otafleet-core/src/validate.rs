//! Strict parsing of everything that arrives from the network: MAC addresses, versions, project and
//! file names, hashes. Every function returns a [`CoreError::Invalid`] whose message says what was
//! wrong and what is accepted, so a person can fix the request.

use std::cmp::Ordering;

use crate::error::{CoreError, Result};

/// Normalise a MAC address to upper case with colons (`24:0A:C4:A3:15:3C`). Accepts colons,
/// hyphens or 12 bare hex digits; anything else is refused.
/// A list's row limit: `given`, else `default`; 1 to `max`, else 422 `invalid_limit` saying so.
pub fn limit(given: Option<i64>, default: i64, max: i64) -> Result<i64> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(CoreError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {max}, not {limit}"),
        ));
    }
    Ok(limit)
}

pub fn mac(input: &str) -> Result<String> {
    let s = input.trim();
    let hex: String = if s.len() == 17 {
        let sep = s.as_bytes()[2];
        if sep != b':' && sep != b'-' {
            return Err(bad_mac(input));
        }
        let parts: Vec<&str> = s.split(sep as char).collect();
        if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
            return Err(bad_mac(input));
        }
        parts.concat()
    } else if s.len() == 12 {
        s.to_string()
    } else {
        return Err(bad_mac(input));
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_mac(input));
    }
    let up = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..6).map(|i| &up[i * 2..i * 2 + 2]).collect();
    let normal = pairs.join(":");
    // No device has one of these as its own address; each is a typo, a placeholder or an attempt
    // to address many devices at once, and would merge unrelated callers into one record.
    let not_a_device = if up.bytes().all(|b| b == b'F') {
        Some("the broadcast address")
    } else if up.bytes().all(|b| b == b'0') {
        Some("the all-zero address (a placeholder, not a device's own)")
    } else if u8::from_str_radix(&up[..2], 16).is_ok_and(|first| first & 1 == 1) {
        Some("a multicast address (the lowest bit of its first byte is set)")
    } else {
        None
    };
    if let Some(what) = not_a_device {
        return Err(CoreError::invalid(
            "invalid_mac",
            format!(
                "{normal} is {what}; give the device's own station MAC, as the device prints it (WiFi.macAddress(), esp_read_mac)"
            ),
        ));
    }
    Ok(normal)
}

fn bad_mac(input: &str) -> CoreError {
    CoreError::invalid(
        "invalid_mac",
        format!(
            "'{}' is not a MAC address; write it as AA:BB:CC:DD:EE:FF (colons or hyphens) or as 12 hex digits",
            printable(input, 40)
        ),
    )
}

/// A version string as devices and images carry it: 1–31 printable ASCII characters without
/// spaces (the app descriptor's field holds 31). Semver, `v1.2`, git-describe output all pass.
pub fn version(input: &str) -> Result<String> {
    let s = input.trim();
    if s.is_empty() || s.len() > 31 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CoreError::invalid(
            "invalid_version",
            format!(
                "'{}' is not a usable version: use 1 to 31 printable characters without spaces, such as 1.4.2 or v2.0.0-rc1",
                printable(input, 40)
            ),
        ));
    }
    Ok(s.to_string())
}

/// A project name: 1–64 characters from letters, digits, `.`, `_` and `-`.
pub fn project(input: &str) -> Result<String> {
    let s = input.trim();
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(CoreError::invalid(
            "invalid_project",
            format!(
                "'{}' is not a usable project name: use 1 to 64 letters, digits, '.', '_' or '-'",
                printable(input, 40)
            ),
        ));
    }
    Ok(s.to_string())
}

/// A free-text device name for people: up to 64 characters, none of them a control, an invisible
/// or a text-direction character ([`hidden_char`]).
pub fn name(input: &str) -> Result<String> {
    let s = input.trim();
    if s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "invalid_name",
            "a device name has at most 64 characters and no control characters",
        ));
    }
    if let Some((at, c)) = hidden_char(s) {
        return Err(CoreError::invalid(
            "invalid_name",
            format!(
                "the device name '{}' contains {} at character {at}; remove it: names may not hold invisible or text-direction characters, which make a name look like another",
                printable(s, 40),
                describe_char(c)
            ),
        ));
    }
    Ok(s.to_string())
}

/// Longest notes the admin may keep on a device, in characters.
pub const MAX_NOTES_CHARS: usize = 4000;
/// Most tags one device may carry.
pub const MAX_TAGS: usize = 16;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;

/// The admin's free-form notes on a device: trimmed, at most [`MAX_NOTES_CHARS`] characters;
/// line breaks and tabs are fine, other controls and invisible or text-direction characters are
/// refused as in [`name`]. `None` for notes that are empty once trimmed (clearing them).
pub fn notes(input: &str) -> Result<Option<String>> {
    let s = input.trim();
    let n = s.chars().count();
    if n > MAX_NOTES_CHARS {
        return Err(CoreError::invalid(
            "invalid_notes",
            format!(
                "the notes are {n} characters long; keep them to {MAX_NOTES_CHARS} (link to a longer document instead)"
            ),
        ));
    }
    let hidden = s
        .chars()
        .enumerate()
        .find(|(_, c)| !matches!(c, '\n' | '\r' | '\t') && is_hidden(*c));
    if let Some((at, c)) = hidden {
        return Err(CoreError::invalid(
            "invalid_notes",
            format!(
                "the notes contain {} at character {}; remove it: notes may hold line breaks and tabs, but no other control, invisible or text-direction characters",
                describe_char(c),
                at + 1
            ),
        ));
    }
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// The admin's tags on a device: at most [`MAX_TAGS`], each trimmed, 1 to [`MAX_TAG_CHARS`]
/// characters, no comma (lists of tags are written comma-separated) and no control, invisible
/// or text-direction character. A tag repeated (ignoring case) is kept once, where it first
/// appears; anything else wrong refuses the whole list, naming the tag.
pub fn tags(input: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in input.iter().enumerate() {
        let t = raw.trim();
        let which = format!("tag {} ('{}')", i + 1, printable(t, 40));
        let problem = if t.is_empty() {
            Some("is empty; remove it".to_string())
        } else if t.chars().count() > MAX_TAG_CHARS {
            Some(format!(
                "is longer than {MAX_TAG_CHARS} characters; keep tags short (bench-2, rack 4, owner: ana) and put longer text in the notes"
            ))
        } else if t.contains(',') {
            Some("contains a comma; give each tag as its own list item".to_string())
        } else {
            hidden_char(t).map(|(at, c)| {
                format!(
                    "contains {} at character {at}; remove it: tags may not hold invisible or text-direction characters",
                    describe_char(c)
                )
            })
        };
        if let Some(problem) = problem {
            return Err(CoreError::invalid(
                "invalid_tags",
                format!("{which} {problem}"),
            ));
        }
        if !out.iter().any(|o| o.to_lowercase() == t.to_lowercase()) {
            out.push(t.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(CoreError::invalid(
            "invalid_tags",
            format!(
                "{} tags given; a device carries at most {MAX_TAGS}: merge some, or put the rest in the notes",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// The first character (1-based position) that shows nothing or changes how the text around it
/// is shown: controls (Cc), format characters (Cf: the bidi overrides, embeddings and isolates
/// U+202A–U+202E and U+2066–U+2069, the marks U+200E/U+200F/U+061C, zero-width space, joiners
/// and U+FEFF, soft hyphen), line and paragraph separators (Zl, Zp) and the Hangul fillers that
/// render as blank. Such names are refused rather than cleaned: a silently changed name is
/// a surprise, and refusing says exactly what to fix.
pub fn hidden_char(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find_map(|(i, c)| is_hidden(c).then_some((i + 1, c)))
}

fn is_hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

fn describe_char(c: char) -> String {
    let kind = match c {
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}' => "a text-direction control",
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => "a zero-width character",
        _ if c.is_control() => "a control character",
        _ => "an invisible character",
    };
    format!("U+{:04X} ({kind})", c as u32)
}

/// An uploaded file's name must be one plain path component: no directories, no `..`, no control
/// characters. We never use it as a path (blobs are stored by hash), but it is shown to people and
/// handed to devices in URLs, so a name that tries to climb out of a folder is refused outright.
pub fn filename(input: &str) -> Result<String> {
    let s = input.trim();
    let bad = s.is_empty()
        || s.len() > 128
        || s == "."
        || s == ".."
        || s.contains(['/', '\\'])
        || s.chars().any(char::is_control);
    if bad {
        return Err(CoreError::invalid(
            "invalid_filename",
            format!(
                "'{}' is not a plain file name: give just the name, such as blink_v1.2.3.bin, without folders or '..'",
                printable(input, 60)
            ),
        ));
    }
    if let Some((at, c)) = hidden_char(s) {
        return Err(CoreError::invalid(
            "invalid_filename",
            format!(
                "the file name '{}' contains {} at character {at}; rename the file without it: file names may not hold invisible or text-direction characters, which make a name look like another",
                printable(s, 60),
                describe_char(c)
            ),
        ));
    }
    Ok(s.to_string())
}

/// A SHA-256 in hex (either case) → lower-case hex.
pub fn sha256(input: &str) -> Result<String> {
    let s = input.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CoreError::invalid(
            "invalid_sha256",
            "sha256 must be 64 hexadecimal characters",
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// Cut a user-supplied string for an error message: printable, bounded.
pub fn printable(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if is_hidden(c) { '?' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// Words that build tools give every output file whatever it holds (PlatformIO and ESPHome
/// `firmware.bin`, `firmware.ota.bin`, `firmware.factory.bin`; `app.bin`, `image.bin`, `ota.bin`,
/// `update.bin`, `sketch.bin`, Arduino's `sketch.ino.bin`, ...): a file name made only of these
/// (split at `.`, `_`, `-`) names no project. Chip and board family names count too
/// (`esp32.bin`), as they name the target, not the firmware. docs/input.md lists them.
pub const GENERIC_NAME_WORDS: &[&str] = &[
    "firmware",
    "fw",
    "app",
    "application",
    "image",
    "img",
    "ota",
    "update",
    "upgrade",
    "sketch",
    "ino",
    "main",
    "program",
    "build",
    "output",
    "out",
    "bin",
    "binary",
    "flash",
    "factory",
    "merged",
    "release",
    "debug",
    "default",
    "new",
    "latest",
    "test",
    "esp",
    "esp32",
    "esp32s2",
    "esp32s3",
    "esp32c2",
    "esp32c3",
    "esp32c5",
    "esp32c6",
    "esp32c61",
    "esp32h2",
    "esp32p4",
    "esp8266",
    "esp32dev",
    "nodemcu",
    "d1",
    "mini",
];

/// Whether `stem` (a file name without `.bin` and version) is only generic build-output words
/// ([`GENERIC_NAME_WORDS`]), so it says nothing about which firmware it is.
pub fn is_generic_name(stem: &str) -> bool {
    let mut words = stem
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some()
        && words.all(|w| GENERIC_NAME_WORDS.iter().any(|g| g.eq_ignore_ascii_case(w)))
}

/// Split `blink_v1.2.3.bin` or `blink-1.2.3.bin` into (`blink`, `1.2.3`). Returns the stem as the
/// project and no version when the name carries none. A generic build-output name
/// ([`is_generic_name`]: `firmware.bin`, `app_v1.2.bin`) gives no project (its version, if it
/// carries one, is kept): guessing project `firmware` would group unrelated images.
///
/// What surrounds the name is not part of it: trailing spaces and dots (which Windows drops
/// anyway: `blink_v1.0.4.bin. ` is `blink_v1.0.4.bin`) and the `.bin` extension in any case,
/// repeated or not (`blink_v1.0.4.bin.bin`, `BLINK_V1.0.4.BIN`).
pub fn split_filename(filename: &str) -> (Option<String>, Option<String>) {
    let mut stem = filename.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    loop {
        let n = stem.len();
        if n >= 4 && stem.is_char_boundary(n - 4) && stem[n - 4..].eq_ignore_ascii_case(".bin") {
            stem = stem[..n - 4].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
        } else {
            break;
        }
    }
    // The Arduino IDE exports `<sketch>.ino.bin` (1.x: `<sketch>.ino.<board>.bin`): the sketch's
    // name is the part before `.ino`.
    if let Some(at) = stem
        .to_ascii_lowercase()
        .find(".ino.")
        .or_else(|| stem.to_ascii_lowercase().strip_suffix(".ino").map(str::len))
    {
        stem = &stem[..at];
    }
    // The version starts at the last separator ('_' or '-') followed by an optional 'v' and a digit.
    let bytes = stem.as_bytes();
    for i in (1..bytes.len()).rev() {
        if bytes[i - 1] == b'_' || bytes[i - 1] == b'-' {
            let rest = &stem[i..];
            let digits = rest
                .strip_prefix('v')
                .or_else(|| rest.strip_prefix('V'))
                .unwrap_or(rest);
            if digits.starts_with(|c: char| c.is_ascii_digit()) && digits.contains('.') {
                let project = &stem[..i - 1];
                let project = project.trim_end_matches(['_', '-']);
                let project = Some(project).filter(|p| !is_generic_name(p));
                return (
                    project.and_then(|p| self::project(p).ok()),
                    self::version(digits).ok(),
                );
            }
        }
    }
    if is_generic_name(stem) {
        return (None, None);
    }
    (self::project(stem).ok(), None)
}

/// Order two versions by the rule in `docs/versions.md`: semver 2.0.0 precedence, widened to what
/// devices send (a leading `v`, 1 to 5 numeric fields, ESP-IDF's `git describe` output). `None`
/// when either is not a version under that rule (a bare git hash, a branch name): callers then
/// decide by image hash alone.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let a = ParsedVersion::parse(a)?;
    let b = ParsedVersion::parse(b)?;
    Some(a.cmp(&b))
}

/// A version split for ordering. Build metadata (`+…`), a trailing `-dirty` and the commit hash
/// of a `git describe` tail are read and dropped: they never decide the order.
#[derive(Debug)]
struct ParsedVersion<'a> {
    /// Numeric fields, as digit strings (any length; compared as numbers).
    core: Vec<&'a str>,
    /// Semver pre-release identifiers; empty: a release.
    pre: Vec<&'a str>,
    /// Commits after the tag, from a `-N-g<hash>` tail; `None`: the tag itself.
    after: Option<&'a str>,
}

impl<'a> ParsedVersion<'a> {
    fn parse(input: &'a str) -> Option<Self> {
        let s = input.trim();
        let s = match s.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => s,
        };
        let s = s.split_once('+').map_or(s, |(version, _build)| version);
        let (s, dirty) = match s.strip_suffix("-dirty") {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let (core, tail) = match s.split_once('-') {
            Some((core, tail)) => (core, Some(tail)),
            None => (s, None),
        };
        let core: Vec<&str> = core.split('.').collect();
        if core.len() > 5 || !core.iter().all(|f| is_number(f)) {
            return None;
        }
        // A lone number with a suffix ("9036908-dirty") is far more likely a git hash than a version.
        if core.len() == 1 && (tail.is_some() || dirty) {
            return None;
        }
        let (pre, after) = match tail {
            None => (None, None),
            Some(tail) => split_describe(tail),
        };
        let pre: Vec<&str> = match pre {
            None => Vec::new(),
            Some(pre) => pre.split('.').collect(),
        };
        let ident_ok = |id: &&str| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !pre.iter().all(ident_ok) {
            return None;
        }
        Some(Self { core, pre, after })
    }
}

impl Ord for ParsedVersion<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let fields = self.core.len().max(other.core.len());
        let field = |v: &Self, i: usize| v.core.get(i).copied().unwrap_or("0");
        (0..fields)
            .map(|i| cmp_numbers(field(self, i), field(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| cmp_pre_release(&self.pre, &other.pre))
            .then_with(|| cmp_numbers(self.after.unwrap_or("0"), other.after.unwrap_or("0")))
    }
}

impl PartialOrd for ParsedVersion<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ParsedVersion<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for ParsedVersion<'_> {}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Two digit strings as numbers of any length (leading zeros do not count).
fn cmp_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Semver 2.0.0 §11: a release is above its pre-releases; identifiers left to right, numeric ones
/// as numbers and below alphanumeric ones, alphanumeric ones in ASCII order; when all shared
/// identifiers are equal, the longer list is higher.
fn cmp_pre_release(a: &[&str], b: &[&str]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (is_number(x), is_number(y)) {
            (true, true) => cmp_numbers(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Split what follows the numeric core at its first `-` into the pre-release and the commit count
/// of a `git describe` tail `N-g<4 to 40 hex digits>` at its end.
fn split_describe(tail: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = tail.rsplitn(3, '-');
    let (Some(hash), Some(count)) = (parts.next(), parts.next()) else {
        return (Some(tail), None);
    };
    let is_describe = hash
        .strip_prefix('g')
        .is_some_and(|h| (4..=40).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        && is_number(count);
    if !is_describe {
        return (Some(tail), None);
    }
    (parts.next(), Some(count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise_and_reject() {
        assert_eq!(mac("24:0a:c4:a3:15:3c").unwrap(), "24:0A:C4:A3:15:3C");
        assert_eq!(mac("24-0A-C4-A3-15-3C").unwrap(), "24:0A:C4:A3:15:3C");
        assert_eq!(mac("240ac4a3153c").unwrap(), "24:0A:C4:A3:15:3C");
        for bad in [
            "",
            "24:0A:C4:A3:15",
            "24:0A:C4:A3:15:3G",
            "24:0A-C4:A3:15:3C",
            "24.0A.C4.A3.15.3C",
            "zzzzzzzzzzzz",
            "24:0A:C4:A3:15:3C:00",
        ] {
            assert!(mac(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn versions_and_names() {
        assert!(version("1.2.3").is_ok());
        assert!(version("qa-test-v5.0-20220830-4-g4532e6").is_ok());
        for bad in [
            "",
            "1 2",
            "a-version-string-that-is-far-too-long-to-fit",
            "1.0\n",
        ] {
            assert!(version(bad).is_err() || bad.trim() != bad, "{bad:?}");
        }
        assert!(version("1.0\u{7}").is_err());
        assert!(filename("../etc/passwd").is_err());
        assert!(filename("..").is_err());
        assert!(filename("a\\b.bin").is_err());
        assert!(filename("blink.bin").is_ok());
        assert!(project("hello world").is_err());
    }

    #[test]
    fn filename_split() {
        assert_eq!(
            split_filename("blink_v1.2.3.bin"),
            (Some("blink".into()), Some("1.2.3".into()))
        );
        assert_eq!(
            split_filename("blink-1.2.3.bin"),
            (Some("blink".into()), Some("1.2.3".into()))
        );
        assert_eq!(
            split_filename("my-app_2.0.bin"),
            (Some("my-app".into()), Some("2.0".into()))
        );
        // Generic build-output names name no project; a version they carry is kept.
        for generic in [
            "firmware.bin",
            "FIRMWARE.BIN",
            "app.bin",
            "image.bin",
            "ota.bin",
            "update.bin",
            "sketch.bin",
            "sketch.ino.bin",
            "firmware.ota.bin",
            "firmware.factory.bin",
            "esp32.bin",
        ] {
            assert_eq!(split_filename(generic), (None, None), "{generic}");
        }
        assert_eq!(
            split_filename("firmware_v1.2.3.bin"),
            (None, Some("1.2.3".into()))
        );
        assert_eq!(split_filename("app-2.0.bin"), (None, Some("2.0".into())));
        // A project name that merely contains such a word is a project name.
        assert_eq!(
            split_filename("doorbell-firmware_v1.0.bin"),
            (Some("doorbell-firmware".into()), Some("1.0".into()))
        );
        assert_eq!(
            split_filename("otaserver.bin"),
            (Some("otaserver".into()), None)
        );
        // The Arduino IDE's exports are named after the sketch.
        assert_eq!(
            split_filename("Blink.ino.bin"),
            (Some("Blink".into()), None)
        );
        assert_eq!(
            split_filename("doorbell_v1.1.ino.esp32.bin"),
            (Some("doorbell".into()), Some("1.1".into()))
        );
    }

    #[test]
    fn notes_and_tags() {
        assert_eq!(
            notes("  on bench 2\n\tUSB hub port 3 ").unwrap().as_deref(),
            Some("on bench 2\n\tUSB hub port 3")
        );
        assert_eq!(notes("   ").unwrap(), None, "blank notes clear them");
        assert!(notes(&"x".repeat(MAX_NOTES_CHARS + 1)).is_err());
        assert!(notes("a\u{202E}b")
            .unwrap_err()
            .to_string()
            .contains("U+202E"));
        assert!(notes("bell\u{7}").is_err());
        let t = |v: &[&str]| tags(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            t(&[" bench-2 ", "Rack 4", "bench-2", "BENCH-2"]).unwrap(),
            ["bench-2", "Rack 4"]
        );
        assert_eq!(t(&[]).unwrap(), Vec::<String>::new());
        for (bad, why) in [
            (vec![" "], "empty"),
            (vec!["a,b"], "comma"),
            (vec!["x\u{200B}y"], "U+200B"),
            (vec!["a-very-long-tag-that-goes-on-and-on"], "32 characters"),
        ] {
            let e = t(&bad).unwrap_err();
            assert_eq!(e.code(), "invalid_tags");
            assert!(e.to_string().contains(why), "{e}");
            assert!(e.to_string().contains("tag 1"), "{e}");
        }
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(tags(&many).unwrap_err().to_string().contains("at most 16"));
    }

    #[test]
    fn version_order() {
        assert_eq!(compare_versions("1.2.3", "1.10.0"), Some(Ordering::Less));
        assert_eq!(compare_versions("v2.0", "2.0.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("2.0.0-rc1", "2.0.0"), Some(Ordering::Less));
        assert_eq!(compare_versions("9036908-dirty", "1.0"), None);
    }

    /// Every list is strictly ascending; every pair is checked both ways.
    fn ascending(list: &[&str]) {
        for (i, a) in list.iter().enumerate() {
            for (j, b) in list.iter().enumerate() {
                assert_eq!(
                    compare_versions(a, b),
                    Some(i.cmp(&j)),
                    "compare_versions({a:?}, {b:?})"
                );
            }
        }
    }

    #[test]
    fn versions_follow_semver_precedence() {
        // The example of semver 2.0.0 §11, then cores.
        ascending(&[
            "0.9.9",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
            "10.0.0",
        ]);
        // Red team: rc.10 came before rc.9.
        ascending(&[
            "1.0.0-rc.2",
            "1.0.0-rc.9",
            "1.0.0-rc.10",
            "1.0.0-rc.100",
            "1.0.0",
        ]);
        // Red team: `+build` was read as a pre-release, so rc.1 looked newer than the release.
        ascending(&["1.2.4-rc.1", "1.2.4+build.7", "1.2.5-rc.1+build.1"]);
        // Numeric identifiers below alphanumeric ones; alphanumeric in ASCII order (so an
        // unnumbered `rc10` is below `rc9`: write `rc.10`); more identifiers win a tie.
        ascending(&[
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-RC",
            "1.0.0-a",
            "1.0.0-a.1",
            "1.0.0-a.1.0",
            "1.0.0-a-b",
            "1.0.0-rc10",
            "1.0.0-rc9",
        ]);
        // Numbers of any length, no overflow.
        ascending(&[
            "18446744073709551615.0",
            "18446744073709551616.0",
            "99999999999999999999999.0",
        ]);
    }

    #[test]
    fn git_describe_versions_sit_between_their_tag_and_the_next() {
        ascending(&[
            "v1.2.3-rc.1",
            "v1.2.3-rc.1-3-g1a2b3c4",
            "1.2.3",
            "v1.2.3-1-gdeadbee",
            "v1.2.3-4-gabc1234",
            "v1.2.3-10-g0123abc-dirty",
            "1.2.3.4",
            "1.2.3.4.1",
            "1.2.4-rc.1",
            "1.2.4",
        ]);
    }

    #[test]
    fn equal_versions() {
        for (a, b) in [
            ("1.2", "1.2.0"),
            ("1.2.3", "1.2.3.0"),
            ("v1.2.3", "1.2.3"),
            ("V1.2.3", "1.2.3"),
            ("1.2.3+build.5", "1.2.3"),
            ("1.2.3+build.5", "1.2.3+build.6"),
            ("1.2.3-rc.1+x", "1.2.3-rc.1"),
            ("1.2.3-dirty", "1.2.3"),
            ("v1.2.3-4-gabc1234-dirty", "1.2.3-4-gabc1234"),
            ("v1.2.3-4-gabc1234", "v1.2.3-4-g9999999"),
            ("01.002.3", "1.2.3"),
            (" 1.2.3 ", "1.2.3"),
            ("1.0.0-rc.01", "1.0.0-rc.1"),
        ] {
            assert_eq!(compare_versions(a, b), Some(Ordering::Equal), "{a} = {b}");
            assert_eq!(compare_versions(b, a), Some(Ordering::Equal), "{b} = {a}");
        }
    }

    #[test]
    fn what_is_not_a_version_is_not_ordered() {
        for odd in [
            "9036908-dirty",
            "d4572",
            "heads/idf-release/v4.4-0-gd4572",
            "qa-test-v5.0",
            "1.2.3.4.5.6",
            "1.0.",
            "1..0",
            "1.0.0-",
            "1.0.0-rc..1",
            "1.0.0-rc_1",
            "",
            "v",
        ] {
            assert_eq!(compare_versions(odd, "1.0.0"), None, "{odd:?}");
            assert_eq!(compare_versions("1.0.0", odd), None, "{odd:?}");
        }
    }

    #[test]
    fn non_device_macs_are_refused() {
        for bad in [
            "FF:FF:FF:FF:FF:FF",
            "ff-ff-ff-ff-ff-ff",
            "ffffffffffff",
            "00:00:00:00:00:00",
            "000000000000",
            "01:00:5E:00:00:FB",
            "33:33:00:00:00:01",
            "01:80:C2:00:00:00",
            "25:0A:C4:A3:15:3C",
        ] {
            let err = mac(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_mac", "{bad}");
            assert!(err.to_string().contains("station MAC"), "{bad}: {err}");
        }
        // Unicast, also locally administered (second-lowest bit), is a device.
        assert_eq!(mac("02:BE:00:00:00:01").unwrap(), "02:BE:00:00:00:01");
        assert_eq!(mac("00:00:00:00:00:01").unwrap(), "00:00:00:00:00:01");
        assert_eq!(mac("FE:FF:FF:FF:FF:FF").unwrap(), "FE:FF:FF:FF:FF:FF");
    }

    #[test]
    fn invisible_and_direction_characters_are_refused_in_names() {
        for bad in [
            "kitchen\u{202E}nib.exe",
            "\u{202D}porch",
            "hall\u{2066}way\u{2069}",
            "garage\u{200F}",
            "attic\u{061C}",
            "zero\u{200B}width",
            "join\u{200D}er",
            "non\u{200C}joiner",
            "word\u{2060}joiner",
            "\u{FEFF}bom",
            "soft\u{AD}hyphen",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "\u{3164}",
            "tag\u{E0041}",
        ] {
            let err = name(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_name", "{bad:?}");
            assert!(err.to_string().contains("U+"), "{bad:?}: {err}");
            assert!(
                !err.to_string().chars().any(is_hidden),
                "the message must not carry the character itself: {err}"
            );
            let file = format!("{bad}.bin");
            assert_eq!(
                filename(&file).unwrap_err().code(),
                "invalid_filename",
                "{file:?}"
            );
        }
        for good in [
            "Küche",
            "温室 2",
            "Living room 🌡️",
            "Ольга's lamp",
            "café-01",
            "",
        ] {
            assert_eq!(name(good).unwrap(), good, "{good:?}");
        }
        assert!(filename("温室_v1.0.bin").is_ok());
        assert!(project("porch\u{202E}").is_err());
    }

    #[test]
    fn odd_file_names_give_the_version_without_the_extension() {
        let blink = (Some("blink".to_string()), Some("1.0.4".to_string()));
        for name in [
            "blink_v1.0.4.bin",
            "blink_v1.0.4.bin. ",
            "blink_v1.0.4.bin.",
            "blink_v1.0.4.bin  ",
            "blink_v1.0.4.bin...",
            "blink_v1.0.4.BIN",
            "blink_v1.0.4.Bin",
            "blink_v1.0.4.bin.bin",
            "blink_v1.0.4.bin .bin",
            "blink-1.0.4.bin",
            "blink_V1.0.4.bin",
        ] {
            assert_eq!(split_filename(name), blink, "{name:?}");
        }
        assert_eq!(split_filename("blink.BIN. "), (Some("blink".into()), None));
        assert_eq!(split_filename(".bin"), (None, None));
        assert_eq!(split_filename("é.bin"), (None, None));
        assert_eq!(split_filename("xé"), (None, None));
    }
}
