//! The GUI-free part of the `otafleet` command, as a library so the desktop shell reuses it
//! instead of copying it: [`serve`] holds the settings (flags and env vars), the data-directory and
//! admin-token rules, and the way the server is started and stopped.

pub mod mqtt;
pub mod serve;

/// An error and its causes on one line, each said once: `what failed: why: why that`.
///
/// Many error types put their cause's text in their own message *and* return that cause from
/// `source()`, so printing the chain naively (`{:#}`) repeats the innermost reason two or three
/// times. A cause whose text the line already ends with is left out.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.ends_with(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("storage error: {0}")]
        Io(#[from] std::io::Error),
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let e = anyhow::Error::new(Inner::from(io)).context("cannot open the data directory /x");
        assert_eq!(
            error_chain(&e),
            "cannot open the data directory /x: storage error: Permission denied"
        );
        let e = anyhow::anyhow!("plain").context("outer");
        assert_eq!(error_chain(&e), "outer: plain");
    }
}
