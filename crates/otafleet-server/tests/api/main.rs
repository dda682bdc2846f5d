//! Integration tests of the HTTP server: the real server on 127.0.0.1:0, real SQLite in a temp
//! dir, spoken to over HTTP the way devices and the UI do. One binary; modules mirror the routes.

mod audit;
mod commands;
mod common;
mod config;
mod connections;
mod deployments;
mod device_names;
mod device_protocol;
mod download;
mod download_ranges;
mod dry_run;
mod events;
mod field_arduino;
mod field_fota;
mod field_hostile;
mod field_idf;
mod field_legacy;
mod field_wire;
mod firmware;
mod firmware_identity;
mod hostile;
mod hostile_http;
mod https;
mod input_hostile;
mod logs;
mod notify;
mod openapi;
mod projects;
mod reports;
mod settings;
mod storage;
mod transport;
mod trust;
mod ui;
mod version_order;
