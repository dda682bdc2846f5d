//! The topic rules for devices, as pure functions (the hooks apply them; the tests below pin them).

/// Whether `id` can be a device's client id here: non-empty, and without the characters that would
/// turn `device/<id>/…` into a different or wildcard topic (`/`, `+`, `#`) or that MQTT forbids
/// in topics (NUL).
pub(crate) fn valid_device_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['/', '+', '#', '\0'])
}

/// One topic level that names something: non-empty, no separator, no wildcard.
fn one_level_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0'])
}

/// A device may subscribe to `device/<id>/command/+` or `device/<id>/command/<name>`.
pub(crate) fn may_subscribe(id: &str, filter: &str) -> bool {
    let Some(rest) = filter
        .strip_prefix("device/")
        .and_then(|r| r.strip_prefix(id))
        .and_then(|r| r.strip_prefix("/command/"))
    else {
        return false;
    };
    valid_device_id(id) && (rest == "+" || one_level_name(rest))
}

/// A device may publish to `device/<id>/report/<name>` and `device/<id>/logs/<name>`.
pub(crate) fn may_publish(id: &str, topic: &str) -> bool {
    let Some(rest) = topic
        .strip_prefix("device/")
        .and_then(|r| r.strip_prefix(id))
    else {
        return false;
    };
    let Some(name) = rest
        .strip_prefix("/report/")
        .or_else(|| rest.strip_prefix("/logs/"))
    else {
        return false;
    };
    valid_device_id(id) && one_level_name(name)
}

/// The one last-will topic a device may set.
pub(crate) fn will_topic(id: &str) -> String {
    format!("device/{id}/report/status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_only_own_commands() {
        assert!(may_subscribe("A", "device/A/command/+"));
        assert!(may_subscribe("A", "device/A/command/config"));
        for bad in [
            "device/B/command/+",
            "device/+/command/+",
            "device/A/command/#",
            "device/A/command/x/y",
            "device/A/command/",
            "device/A/report/+",
            "device/AB/command/+",
            "device/A/#",
            "#",
            "$SYS/#",
            "$share/g/device/A/command/+",
        ] {
            assert!(!may_subscribe("A", bad), "{bad}");
        }
        // An id that is itself a wildcard does not open other devices' topics.
        assert!(!may_subscribe("+", "device/+/command/+"));
        assert!(!may_subscribe("#", "device/#/command/+"));
    }

    #[test]
    fn publish_only_own_reports_and_logs() {
        assert!(may_publish("A", "device/A/report/status"));
        assert!(may_publish("A", "device/A/report/custom"));
        assert!(may_publish("A", "device/A/logs/info"));
        for bad in [
            "device/B/report/status",
            "device/A/command/restart",
            "device/A/report/",
            "device/A/report/x/y",
            "device/A/logs",
            "device/AB/report/status",
            "devices/A/report/status",
        ] {
            assert!(!may_publish("A", bad), "{bad}");
        }
    }

    #[test]
    fn device_ids() {
        assert!(valid_device_id("esp32-0a1b2c"));
        for bad in ["", "a/b", "+", "a#", "a\0"] {
            assert!(!valid_device_id(bad), "{bad:?}");
        }
        assert_eq!(will_topic("A"), "device/A/report/status");
    }
}
