//! Integration tests of the HTTP server: the real server on 127.0.0.1:0, real SQLite in a temp
//! dir, spoken to over HTTP the way devices and the UI do. One binary; modules mirror the routes.

mod common;
mod device_protocol;
mod download;
mod firmware;
mod hostile;
mod openapi;
mod ui;
