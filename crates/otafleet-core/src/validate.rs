//! Strict parsing of everything that arrives from the network: MAC addresses, versions, project and
//! file names, hashes. Every function returns a [`CoreError::Invalid`] whose message says what was
//! wrong and what is accepted, so a person can fix the request.

use std::cmp::Ordering;

use crate::error::{CoreError, Result};

/// Normalise a MAC address to upper case with colons (`24:0A:C4:A3:15:3C`). Accepts colons,
/// hyphens or 12 bare hex digits; anything else is refused.
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
    Ok(pairs.join(":"))
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

/// A free-text device name for people: up to 64 printable characters.
pub fn name(input: &str) -> Result<String> {
    let s = input.trim();
    if s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "invalid_name",
            "a device name has at most 64 characters and no control characters",
        ));
    }
    Ok(s.to_string())
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
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// Split `blink_v1.2.3.bin` or `blink-1.2.3.bin` into (`blink`, `1.2.3`). Returns the stem as the
/// project and no version when the name carries none.
pub fn split_filename(filename: &str) -> (Option<String>, Option<String>) {
    let stem = filename
        .strip_suffix(".bin")
        .or_else(|| filename.strip_suffix(".BIN"))
        .unwrap_or(filename);
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
                return (self::project(project).ok(), self::version(digits).ok());
            }
        }
    }
    (self::project(stem).ok(), None)
}

/// Compare two versions numerically where both look like `[v]N(.N)*[-pre]`. `None` when either
/// does not (a git describe string, say): callers then decide by image hash alone.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (an, ap) = numeric_version(a)?;
    let (bn, bp) = numeric_version(b)?;
    let len = an.len().max(bn.len());
    for i in 0..len {
        let x = an.get(i).copied().unwrap_or(0);
        let y = bn.get(i).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => continue,
            other => return Some(other),
        }
    }
    // Semver: a pre-release sorts before the release it precedes.
    Some(match (ap, bp) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    })
}

fn numeric_version(s: &str) -> Option<(Vec<u64>, Option<&str>)> {
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let (core, pre) = match s.split_once(['-', '+']) {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    let parts = parts?;
    // A lone number with a suffix ("9036908-dirty") is far more likely a git hash than a version.
    if parts.is_empty() || parts.len() > 4 || (parts.len() == 1 && pre.is_some()) {
        return None;
    }
    Some((parts, pre))
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
        assert_eq!(
            split_filename("firmware.bin"),
            (Some("firmware".into()), None)
        );
    }

    #[test]
    fn version_order() {
        assert_eq!(compare_versions("1.2.3", "1.10.0"), Some(Ordering::Less));
        assert_eq!(compare_versions("v2.0", "2.0.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("2.0.0-rc1", "2.0.0"), Some(Ordering::Less));
        assert_eq!(compare_versions("9036908-dirty", "1.0"), None);
    }
}
