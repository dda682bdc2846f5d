//! The GUI-free part of the `otafleet` command, as a library so the desktop shell reuses it
//! instead of copying it: [`serve`] holds the settings (flags and env vars), the data-directory and
//! admin-token rules, and the way the server is started and stopped.

pub mod serve;
