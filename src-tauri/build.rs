//! tauri-build, told that the configuration sits at the repository root (`../tauri.conf.json`).
//!
//! The window embeds the UI's build output, `ui/dist`, which only exists after
//! `npm --prefix ui run build`. So that `cargo build --workspace` (and clippy, and the tests)
//! work on a fresh checkout, a missing `ui/dist/index.html` switches the embedded assets to the
//! committed one-page fallback `src-tauri/fallback/` (with a cargo warning saying so). An explicit
//! `TAURI_CONFIG` merge patch always wins.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=fallback");
    println!("cargo:rerun-if-env-changed=TAURI_CONFIG");
    let ui_built = Path::new("../ui/dist/index.html").exists();
    // Never name a missing path: cargo treats it as changed and would rerun this script (and
    // relink the app) on every build. Watching `ui/` notices when `npm run build` creates dist/.
    if ui_built {
        println!("cargo:rerun-if-changed=../ui/dist/index.html");
    } else if Path::new("../ui").is_dir() {
        println!("cargo:rerun-if-changed=../ui");
    }
    if std::env::var_os("TAURI_CONFIG").is_none() && !ui_built {
        let patch = r#"{"build":{"frontendDist":"src-tauri/fallback"}}"#;
        println!(
            "cargo:warning=ui/dist is not built (npm --prefix ui ci && npm --prefix ui run build): \
             the window embeds the fallback page src-tauri/fallback/index.html"
        );
        // tauri-build reads the patch from its own process environment; the codegen in
        // `generate_context!` reads it from rustc's, which `rustc-env` sets.
        std::env::set_var("TAURI_CONFIG", patch);
        println!("cargo:rustc-env=TAURI_CONFIG={patch}");
    }
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("failed to run tauri-build");
}
