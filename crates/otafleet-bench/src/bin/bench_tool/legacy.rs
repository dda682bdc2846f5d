//! `bench-tool legacy-setup`: prepare the "ESP32 OTA Update Server" device check for wrk, on
//! otafleet (`--legacy-device-secret`) or on that server itself (seed 1), through the admin API
//! both speak (`X-Admin-API-Key`; docs/protocols.md §4): upload the image the devices run
//! (`POST /admin/api/firmware`, multipart field `file`), add N devices whose target is that very
//! version (`POST /admin/api/devices`), so each check is answered `update_available: false`,
//! and write `{mac, token, device_id}` as a Lua table for `bench/legacy.lua`. The token is the
//! deployed firmware's: djb2 with seed 0 over the MAC without colons, upper case, followed by the
//! shared secret, in lower-case hexadecimal without padding.

use std::io::Write;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

pub struct Args {
    pub server: String,
    pub admin_key: String,
    pub secret: String,
    pub image: String,
    pub filename: String,
    pub version: String,
    pub devices: u32,
    pub lua: String,
}

/// The `X-Device-Auth` value the deployed firmware sends for `mac`.
pub fn token(mac: &str, secret: &str) -> String {
    let mut h: u32 = 0;
    for b in mac
        .replace(':', "")
        .to_uppercase()
        .bytes()
        .chain(secret.bytes())
    {
        h = h.wrapping_mul(33).wrapping_add(u32::from(b));
    }
    format!("{h:x}")
}

pub async fn run(a: Args) -> Result<(), String> {
    let client = reqwest::Client::new();
    let bytes = std::fs::read(&a.image).map_err(|e| format!("{}: {e}", a.image))?;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(a.filename.clone()),
    );
    let r = client
        .post(format!("{}/admin/api/firmware", a.server))
        .header("X-Admin-API-Key", &a.admin_key)
        .multipart(form)
        .send()
        .await
        .map_err(|e| format!("firmware upload: {e}"))?;
    let status = r.status();
    let up: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("firmware upload: HTTP {status}: {up}"));
    }
    let (url, checksum) = (up["url"].clone(), up["checksum"].clone());
    let url_devices = format!("{}/admin/api/devices", a.server);
    let macs: Vec<String> = (0..a.devices)
        .map(|i| {
            format!(
                "24:6F:28:{:02X}:{:02X}:{:02X}",
                0xB0,
                (i >> 8) as u8,
                i as u8
            )
        })
        .collect();
    let results: Vec<Result<(), String>> = stream::iter(macs.clone())
        .map(|mac| {
            let (client, url_devices) = (client.clone(), url_devices.clone());
            let body = json!({
                "mac_address": mac,
                "device_id": device_id(&mac),
                "hardware_version": "1.0",
                "target_version": a.version,
                "firmware_url": url,
                "checksum": checksum,
            });
            let key = a.admin_key.clone();
            async move {
                let r = client
                    .post(&url_devices)
                    .header("X-Admin-API-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| format!("add {mac}: {e}"))?;
                let status = r.status();
                // 409: already there (a repeated run).
                if status.is_success() || status.as_u16() == 409 {
                    Ok(())
                } else {
                    Err(format!(
                        "add {mac}: HTTP {status}: {}",
                        r.text().await.unwrap_or_default()
                    ))
                }
            }
        })
        // The seed-1 server rewrites one JSON file per change: one at a time.
        .buffer_unordered(1)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let mut f = std::fs::File::create(&a.lua).map_err(|e| format!("{}: {e}", a.lua))?;
    writeln!(f, "devices = {{").unwrap();
    for mac in &macs {
        writeln!(
            f,
            "  {{\"{mac}\", \"{}\", \"{}\"}},",
            token(mac, &a.secret),
            device_id(mac)
        )
        .unwrap();
    }
    writeln!(f, "}}").unwrap();
    println!(
        "legacy devices: {} added to {} with target {} (their running version), image {}",
        macs.len(),
        a.server,
        a.version,
        a.filename
    );
    Ok(())
}

/// `PanicAlarm_` and the MAC's last two bytes, as the sketch names itself.
fn device_id(mac: &str) -> String {
    let hex: String = mac.replace(':', "");
    format!("PanicAlarm_{}", &hex[8..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_is_the_deployed_firmwares() {
        // docs/protocols.md §4 and the compat notes: secret `bench-secret`.
        assert_eq!(
            super::token("24:6F:28:AA:BB:CC", "bench-secret"),
            "fa4c71ab"
        );
    }
}
