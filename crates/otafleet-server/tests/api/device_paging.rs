//! `GET /api/v1/devices` a page at a time: `?limit=` and the `?after=` cursor, the `Link` header
//! of the next page, and 400 for a limit or cursor that is not accepted.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::TestApp;

fn mac(i: u32) -> String {
    format!("24:0A:C4:00:19:{i:02X}")
}

/// One page: its rows and the `next` URL of its `Link` header, if any.
async fn page(app: &TestApp, path: &str) -> (Vec<Value>, Option<String>) {
    let r = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let next = r.headers().get("link").map(|v| {
        let v = v.to_str().unwrap();
        let (url, rel) = v.split_once(">; ").expect("<url>; rel=\"next\"");
        assert_eq!(rel, "rel=\"next\"");
        url.trim_start_matches('<').to_string()
    });
    let rows: Value = r.json().await.unwrap();
    (rows.as_array().unwrap().clone(), next)
}

async fn add(app: &TestApp, mac: &str) {
    let r = app
        .admin(Method::POST, "/api/v1/devices")
        .json(&json!({ "mac": mac }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn pages_follow_the_link_header_and_hold_every_device_once() {
    let app = TestApp::start().await;
    for i in (0..25).rev() {
        add(&app, &mac(i)).await;
    }
    // No parameters: the default page holds them all, and no Link says it is the last.
    let (all, next) = page(&app, "/api/v1/devices").await;
    assert_eq!((all.len(), next), (25, None));

    let mut seen = Vec::new();
    let mut path = "/api/v1/devices?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (rows, next) = page(&app, &path).await;
        assert!(rows.len() <= 10);
        pages += 1;
        seen.extend(rows.iter().map(|r| r["mac"].as_str().unwrap().to_string()));
        match next {
            Some(n) => {
                assert!(n.starts_with("/api/v1/devices?limit=10&after="), "{n}");
                // A device added behind the cursor meanwhile is not listed again on later pages.
                if pages == 1 {
                    add(&app, "24:0A:C4:00:18:FF").await;
                }
                path = n;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(mac).collect();
    assert_eq!(seen, expected, "every device once, in MAC order");
    // The cursor is any notation of a MAC.
    let (rows, _) = page(&app, "/api/v1/devices?limit=2&after=24-0a-c4-00-19-16").await;
    let macs: Vec<&str> = rows.iter().map(|r| r["mac"].as_str().unwrap()).collect();
    assert_eq!(macs, ["24:0A:C4:00:19:17", "24:0A:C4:00:19:18"]);
    app.stop().await;
}

#[tokio::test]
async fn a_limit_or_cursor_that_is_not_accepted_is_400_saying_what_is() {
    let app = TestApp::start().await;
    add(&app, &mac(1)).await;
    for (query, code, says) in [
        ("limit=0", "invalid_limit", "from 1 to 5000"),
        ("limit=5001", "invalid_limit", "from 1 to 5000"),
        ("limit=ten", "invalid_limit", "not 'ten'"),
        ("limit=-3", "invalid_limit", "whole number"),
        ("after=kitchen", "invalid_cursor", "MAC address"),
        (
            "after=",
            "invalid_cursor",
            "leave it out for the first page",
        ),
    ] {
        let r = app
            .admin(Method::GET, &format!("/api/v1/devices?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    // Not the admin: refused before anything is read.
    let r = reqwest::get(app.url("/api/v1/devices?limit=1"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}
