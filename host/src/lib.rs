//! # export-host
//!
//! Turns data from pluggable sources (loaders) into files in pluggable
//! formats (formatters). Plugins are shared libraries built against
//! `export-plugin-api`; this crate vets and loads them ([`plugins`]), and
//! streams an export through them ([`pipeline`]).
//!
//! Data flows one way: request -> [`pipeline::prepare`] (resolve and validate)
//! -> [`pipeline::stream_export`] (loader thread -> formatter -> [`pipeline::Sink`]).
//!
//! Exports with a lifecycle go through [`service::ExportService`]: requests
//! become [`records`] (SQLite or PostgreSQL), runs write to [`storage`], and
//! a cleanup pass expires and purges them. [`config`] resolves the host
//! settings. [`server`] is the daemon: the HTTP API, tokens, signed download
//! links and the worker pool.
//!
//! docs/architecture.md describes the layers, the path of an export with the
//! file that owns each step, and what each module may import.

pub mod config;
pub mod conformance;
pub mod isolation;
pub mod library;
pub mod pipeline;
pub mod plugins;
pub mod records;
pub mod scaffold;
pub mod server;
pub mod service;
pub mod storage;
pub mod webhooks;
