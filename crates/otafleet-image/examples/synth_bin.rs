//! Write a synthetic firmware file, for tests outside Rust (the desktop window's WebDriver test
//! drops it on the app). Usage:
//!
//! ```text
//! cargo run -p otafleet-image --example synth_bin -- app OUT CHIP PROJECT VERSION
//! cargo run -p otafleet-image --example synth_bin -- bootloader OUT CHIP
//! ```

use otafleet_image::{synth, Chip};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let chip = |name: &str| Chip::from_name(name).unwrap_or_else(|| panic!("unknown chip {name}"));
    let (out, bytes) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["app", out, chip_name, project, version] => (
            out,
            synth::AppImage::new(chip(chip_name))
                .project(project)
                .version(version)
                .payload_len(20_000)
                .build(),
        ),
        ["bootloader", out, chip_name] => (out, synth::bootloader(chip(chip_name))),
        _ => {
            eprintln!(
                "usage: synth_bin app OUT CHIP PROJECT VERSION | synth_bin bootloader OUT CHIP"
            );
            std::process::exit(2);
        }
    };
    std::fs::write(out, bytes).unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
}
