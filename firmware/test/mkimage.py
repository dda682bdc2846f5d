#!/usr/bin/env python3
"""mkimage.py - write a small but valid ESP32-family application image.

Why it exists: the integration test needs firmware that `otafleet serve`
accepts (it inspects every upload) with a version of our choosing, without an
ESP32 toolchain. The layout follows ESP-IDF's esp_image_header_t and
esp_app_desc_t (the same layout crates/otafleet-image reads: header.rs and app_desc.rs; the
integration test also checks the output with the firmware corpus's inspect.py when
the corpus is there):

  24-byte header: magic 0xE9, segment count, SPI mode/speed/size, entry,
      wp_pin 0xEE, chip id at 12, chip revisions, hash_appended=1 at 23
  one DROM segment loaded at 0x3F400020 (flash-mapped) whose data starts with
      the 256-byte esp_app_desc_t (magic 0xABCD5432 at file offset 32)
  zero padding so the checksum byte (XOR of segment data, seeded 0xEF) ends a
      16-byte block, then the SHA-256 of everything before it.

Usage: mkimage.py --version 2.0.0 [--project NAME] [--chip-id 0]
                  [--payload BYTES] [--seed N] -o OUT.bin
Standard library only.
"""
import argparse
import hashlib
import random
import struct
import sys

APP_DESC_MAGIC = 0xABCD5432
DROM_ADDR = 0x3F400020  # ESP32 DROM window (0x3F400000..0x3F800000), +0x20 as IDF links it


def cfield(text, size):
    raw = text.encode("utf-8")
    if len(raw) >= size:
        raise SystemExit("%r is too long for a %d-byte field" % (text, size))
    return raw + b"\0" * (size - len(raw))


def app_desc(version, project, idf_ver, rng):
    desc = struct.pack("<III", APP_DESC_MAGIC, 0, 0) + b"\0" * 4  # magic, secure_version, reserv1[2]
    desc += cfield(version, 32) + cfield(project, 32)
    desc += cfield("12:00:00", 16) + cfield("Jan  1 2025", 16) + cfield(idf_ver, 32)
    desc += bytes(rng.getrandbits(8) for _ in range(32))  # app_elf_sha256
    desc += struct.pack("<HHBB", 0, 0, 16, 0)  # efuse blk revs, mmu_page_size log2(64K), flash mode
    desc += b"\0" * (256 - len(desc))
    assert len(desc) == 256
    return desc


def build(version, project, chip_id, payload_len, seed, idf_ver="v5.2.2"):
    rng = random.Random("%s/%s/%d" % (seed, version, payload_len))
    data = app_desc(version, project, idf_ver, rng)
    data += bytes(rng.getrandbits(8) for _ in range(payload_len))
    data += b"\0" * (-len(data) % 4)  # segment lengths are word-aligned
    header = struct.pack(
        "<BBBBIB3sHBHH4sB",
        0xE9, 1, 2, 0x20,       # magic, 1 segment, DIO, 4 MB / 40 MHz
        0x40081000,             # entry point (IRAM)
        0xEE, b"\0\0\0",        # wp pin disabled, SPI drive
        chip_id, 0, 0, 399,     # chip, min rev (legacy), min rev full, max rev full (v3.99)
        b"\0" * 4, 1)           # reserved, hash_appended
    assert len(header) == 24
    image = bytearray(header + struct.pack("<II", DROM_ADDR, len(data)) + data)
    checksum = 0xEF
    for b in data:
        checksum ^= b
    image += b"\0" * ((-(len(image) + 1)) % 16)
    image.append(checksum)
    assert len(image) % 16 == 0
    image += hashlib.sha256(image).digest()
    return bytes(image)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", required=True)
    ap.add_argument("--project", default="otafleet-hostdevice")
    ap.add_argument("--chip-id", type=int, default=0)
    ap.add_argument("--payload", type=int, default=40000, help="bytes of filler after the descriptor")
    ap.add_argument("--seed", default="otafleet")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    image = build(args.version, args.project, args.chip_id, args.payload, args.seed)
    with open(args.output, "wb") as f:
        f.write(image)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
