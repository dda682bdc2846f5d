//! Chip identities: the `chip_id` field of the ESP32-family image header,
//! stable names for them, and the address windows each chip maps onto flash.

use std::fmt;

/// The chip an image was built for.
///
/// ESP32-family ids are the `esp_chip_id_t` values written at header offset
/// 0x0C (ESP-IDF `esp_app_format.h`, esptool `IMAGE_CHIP_ID`). ESP8266 images
/// have no chip id at all; the format itself identifies them. An id this
/// crate does not know is kept as [`Chip::Unknown`] instead of being an error,
/// because new silicon appears faster than parsers are updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chip {
    Esp32,
    Esp32s2,
    Esp32s3,
    Esp32c2,
    Esp32c3,
    Esp32c5,
    Esp32c6,
    Esp32c61,
    Esp32h2,
    Esp32p4,
    Esp32h21,
    Esp32h4,
    Esp8266,
    /// A chip id outside the table above (e.g. 0x001F ESP32-E22, 0xFFFF "invalid").
    Unknown(u16),
}

/// (chip, header id, name) for every ESP32-family chip with a known id.
const KNOWN: [(Chip, u16, &str); 12] = [
    (Chip::Esp32, 0x0000, "esp32"),
    (Chip::Esp32s2, 0x0002, "esp32s2"),
    (Chip::Esp32c3, 0x0005, "esp32c3"),
    (Chip::Esp32s3, 0x0009, "esp32s3"),
    (Chip::Esp32c2, 0x000C, "esp32c2"),
    (Chip::Esp32c6, 0x000D, "esp32c6"),
    (Chip::Esp32h2, 0x0010, "esp32h2"),
    (Chip::Esp32p4, 0x0012, "esp32p4"),
    (Chip::Esp32c61, 0x0014, "esp32c61"),
    (Chip::Esp32c5, 0x0017, "esp32c5"),
    (Chip::Esp32h21, 0x0019, "esp32h21"),
    (Chip::Esp32h4, 0x001C, "esp32h4"),
];

/// A half-open address range `[lo, hi)`.
pub(crate) type Window = (u32, u32);

/// Windows used for chips without an entry of their own (S3, C2, C3, C5, C6,
/// C61, H2, H21, H4 and unknown ids): DROM at 0x3C00_0000, IROM at 0x4200_0000.
const DEFAULT_FLASH_WINDOWS: &[Window] = &[(0x3C00_0000, 0x3E00_0000), (0x4200_0000, 0x4400_0000)];
const ESP32_FLASH_WINDOWS: &[Window] = &[(0x3F40_0000, 0x3F80_0000), (0x400C_2000, 0x40C0_0000)];
const ESP32S2_FLASH_WINDOWS: &[Window] = &[(0x3F00_0000, 0x3FF8_0000), (0x4008_0000, 0x4080_0000)];
const ESP32P4_FLASH_WINDOWS: &[Window] = &[(0x4000_0000, 0x4C00_0000)];

/// ESP8266 load addresses that make sense at all: DRAM, IRAM, flash-mapped IROM.
pub(crate) const ESP8266_DRAM: Window = (0x3FFE_8000, 0x4000_0000);
pub(crate) const ESP8266_IRAM: Window = (0x4010_0000, 0x4011_0000);
pub(crate) const ESP8266_IROM: Window = (0x4020_0000, 0x4030_0000);

pub(crate) fn in_window(addr: u32, (lo, hi): Window) -> bool {
    lo <= addr && addr < hi
}

/// True when `addr` is a plausible ESP8266 load address (DRAM, IRAM or IROM).
pub(crate) fn esp8266_plausible(addr: u32) -> bool {
    [ESP8266_DRAM, ESP8266_IRAM, ESP8266_IROM]
        .iter()
        .any(|w| in_window(addr, *w))
}

impl Chip {
    /// The chip for a header `chip_id`; ids not in the table give [`Chip::Unknown`].
    pub fn from_id(id: u16) -> Chip {
        KNOWN
            .iter()
            .find(|(_, known, _)| *known == id)
            .map(|(chip, _, _)| *chip)
            .unwrap_or(Chip::Unknown(id))
    }

    /// The header `chip_id`, or `None` for ESP8266 (its images carry no id).
    pub fn id(&self) -> Option<u16> {
        match self {
            Chip::Esp8266 => None,
            Chip::Unknown(id) => Some(*id),
            known => KNOWN
                .iter()
                .find(|(chip, _, _)| chip == known)
                .map(|(_, id, _)| *id),
        }
    }

    /// Stable lowercase name: `"esp32"`, `"esp32s3"`, …, `"esp8266"`, or
    /// `"unknown-0x001f"` for an unknown id.
    pub fn name(&self) -> String {
        match self {
            Chip::Esp8266 => "esp8266".to_string(),
            Chip::Unknown(id) => format!("unknown-0x{id:04x}"),
            known => KNOWN
                .iter()
                .find(|(chip, _, _)| chip == known)
                .map(|(_, _, name)| name.to_string())
                .unwrap_or_default(),
        }
    }

    /// Parses a name as produced by [`Chip::name`]. Case, `-` and `_` are
    /// ignored, so `"ESP32-S3"` and `"esp32_s3"` work too. `"unknown-0x001f"`
    /// round-trips to `Unknown(0x1f)` (or to the known chip if the id is known).
    pub fn from_name(name: &str) -> Option<Chip> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix("unknown-0x") {
            return u16::from_str_radix(hex, 16).ok().map(Chip::from_id);
        }
        let squashed: String = lower.chars().filter(|c| *c != '-' && *c != '_').collect();
        if squashed == "esp8266" {
            return Some(Chip::Esp8266);
        }
        KNOWN
            .iter()
            .find(|(_, _, n)| *n == squashed)
            .map(|(chip, _, _)| *chip)
    }

    /// Every chip this crate knows by name (the ESP32 family in id order, then ESP8266).
    pub fn all_known() -> Vec<Chip> {
        let mut all: Vec<Chip> = KNOWN.iter().map(|(c, _, _)| *c).collect();
        all.push(Chip::Esp8266);
        all
    }

    /// Address windows the cache/MMU maps onto flash for this chip (as in
    /// `inspect.py`). An application has at least one segment in one of them;
    /// a bootloader or a RAM-only app has none.
    pub(crate) fn flash_windows(&self) -> &'static [Window] {
        match self {
            Chip::Esp32 => ESP32_FLASH_WINDOWS,
            Chip::Esp32s2 => ESP32S2_FLASH_WINDOWS,
            Chip::Esp32p4 => ESP32P4_FLASH_WINDOWS,
            Chip::Esp8266 => std::slice::from_ref(&ESP8266_IROM),
            _ => DEFAULT_FLASH_WINDOWS,
        }
    }

    /// True when `addr` lies in one of this chip's flash-mapped windows.
    pub fn is_flash_mapped(&self, addr: u32) -> bool {
        self.flash_windows().iter().any(|w| in_window(addr, *w))
    }

    /// Flash offset of the second-stage bootloader: 0x1000 on ESP32 and
    /// ESP32-S2, 0x0 on the later chips (ESP8266: 0x0, eboot).
    pub fn bootloader_offset(&self) -> u32 {
        match self {
            Chip::Esp32 | Chip::Esp32s2 => 0x1000,
            _ => 0,
        }
    }
}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Chip {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Chip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Chip::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown chip name {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for chip in Chip::all_known() {
            assert_eq!(Chip::from_name(&chip.name()), Some(chip), "{chip:?}");
            if let Some(id) = chip.id() {
                assert_eq!(Chip::from_id(id), chip);
            }
        }
        assert_eq!(Chip::Unknown(0x1f).name(), "unknown-0x001f");
        assert_eq!(Chip::from_name("unknown-0x001f"), Some(Chip::Unknown(0x1f)));
        assert_eq!(Chip::from_name("unknown-0x0009"), Some(Chip::Esp32s3));
        assert_eq!(Chip::from_name("ESP32-C61"), Some(Chip::Esp32c61));
        assert_eq!(Chip::from_name("esp32_h2"), Some(Chip::Esp32h2));
        assert_eq!(Chip::from_name("ESP8266"), Some(Chip::Esp8266));
        assert_eq!(Chip::from_name("esp31"), None);
        assert_eq!(Chip::from_name("unknown-0xzz"), None);
        assert_eq!(Chip::Esp8266.id(), None);
        assert_eq!(Chip::Unknown(0xFFFF).id(), Some(0xFFFF));
    }

    #[test]
    fn documented_ids() {
        let expect = [
            (Chip::Esp32, 0),
            (Chip::Esp32s2, 2),
            (Chip::Esp32c3, 5),
            (Chip::Esp32s3, 9),
            (Chip::Esp32c2, 12),
            (Chip::Esp32c6, 13),
            (Chip::Esp32h2, 16),
            (Chip::Esp32p4, 18),
            (Chip::Esp32c61, 20),
            (Chip::Esp32c5, 23),
            (Chip::Esp32h21, 25),
            (Chip::Esp32h4, 28),
        ];
        for (chip, id) in expect {
            assert_eq!(chip.id(), Some(id), "{chip:?}");
        }
    }

    #[test]
    fn windows_match_inspect_py() {
        assert!(Chip::Esp32.is_flash_mapped(0x3F40_0020));
        assert!(Chip::Esp32.is_flash_mapped(0x400D_0018));
        assert!(!Chip::Esp32.is_flash_mapped(0x4008_0000));
        assert!(!Chip::Esp32.is_flash_mapped(0x3FFB_0000));
        assert!(Chip::Esp32s2.is_flash_mapped(0x4008_0020));
        assert!(!Chip::Esp32s2.is_flash_mapped(0x4002_2000));
        assert!(Chip::Esp32p4.is_flash_mapped(0x4001_0020));
        assert!(!Chip::Esp32p4.is_flash_mapped(0x4FF0_0000));
        assert!(Chip::Esp32c6.is_flash_mapped(0x4200_8020));
        assert!(!Chip::Esp32c6.is_flash_mapped(0x4080_0000));
        assert!(Chip::Unknown(0x1f).is_flash_mapped(0x3C00_0020));
        assert!(!Chip::Esp32s3.is_flash_mapped(0));
    }

    #[test]
    fn serde_uses_names() {
        let json = serde_json::to_string(&Chip::Esp32c3).unwrap();
        assert_eq!(json, "\"esp32c3\"");
        let back: Chip = serde_json::from_str("\"unknown-0x0020\"").unwrap();
        assert_eq!(back, Chip::Unknown(0x20));
        assert!(serde_json::from_str::<Chip>("\"nope\"").is_err());
    }
}
