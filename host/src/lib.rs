//! # export-host
//!
//! Turns data from pluggable sources (loaders) into files in pluggable
//! formats (formatters). Plugins are shared libraries built against
//! `export-plugin-api`; this crate vets and loads them ([`plugins`]), and
//! streams an export through them ([`pipeline`]).
//!
//! Data flows one way: request -> [`pipeline::prepare`] (resolve and validate)
//! -> [`pipeline::run`] (loader thread -> formatter -> [`pipeline::Sink`]).

pub mod config;
pub mod pipeline;
pub mod plugins;
pub mod records;
pub mod settings;
pub mod storage;
