//! # export-json
//!
//! The first-party `json` plugin for export-host:
//!
//! - loader `jsonl` ([`JsonlLoader`]): streams a newline-delimited JSON file
//!   under the configured [`JsonConfig::root`]. Columns whose values are all
//!   strings are `Utf8`; every other column holds each value's JSON text
//!   verbatim (`arrow.json`), so `1.50` or `12345678901234567890123` come
//!   back exactly as written. Selector: [`JsonlSelector`].
//! - formatter `json` ([`JsonFormatter`]): one JSON array of objects.
//!   Options: [`JsonOptions`].
//! - formatter `jsonl` ([`JsonlFormatter`]): one JSON object per line.
//!   Options: [`JsonlOptions`].
//!
//! Text is written as a JSON number only when it is exactly how that number
//! is spelled (`42`, `-1.5`), so `007`, `1.50` and `NaN` stay strings.
//!
//! ```toml
//! [plugins.json]
//! library = "libexport_json.so"
//!
//! [plugins.json.config]
//! root = "examples/data"   # only the jsonl loader needs it; "/srv/exports/{user}": a folder per caller
//! max_line_bytes = 67108864 # the default: a longer line fails the export
//! ```

mod config;
mod encode;
mod formatter;
mod loader;

pub use config::JsonConfig;
pub use encode::EXACT_TEXT_KEY;
pub use formatter::{JsonFormatter, JsonOptions, JsonlFormatter, JsonlOptions};
pub use loader::{JsonlLoader, JsonlSelector};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: loader `jsonl`, formatters `json` and `jsonl`, configured by [`JsonConfig`].
pub fn plugin() -> Plugin {
    PluginBuilder::new("json", env!("CARGO_PKG_VERSION"))
        .description(
            "Reads newline-delimited JSON files under a configured folder and writes JSON exports",
        )
        .config::<JsonConfig>()
        .loader(JsonlLoader)
        .formatter(JsonFormatter)
        .formatter(JsonlFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::Limits;
    use serde_json::{json, Value};
    use std::fs;

    /// Loads `file` with the `jsonl` loader and formats it with `format`.
    fn convert(file: &str, batch_size: usize, format: &str, options: Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("in.jsonl"), file).unwrap();
        let plugin = plugin();
        let config = json!({ "root": dir.path() }).to_string();
        let limits = Limits {
            batch_size,
            ..Limits::default()
        };
        let mut reader = plugin
            .open_loader("jsonl", &config, r#"{"path":"in.jsonl"}"#, &limits)
            .unwrap();
        let mut writer = plugin
            .start_formatter(format, &config, &options.to_string(), reader.schema())
            .unwrap();
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            writer.write(&batch, &mut out).unwrap();
        }
        writer.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    const CANONICAL: &str = concat!(
        r#"{"id":"007","amount":1.50,"big":12345678901234567890123,"obj":{"a": [1, 2.0]},"flag":true,"s":"42","none":null}"#,
        "\n",
        r#"{"id":"","amount":-0,"big":1e5,"obj":[],"flag":null,"s":"multi\nline \"q\" \\ tab\there \u0001","none":null}"#,
        "\n",
        r#"{"id":"=SUM(A1)","amount":"1.50","big":false,"obj":"x","flag":false,"s":"héllo 🌍 NaN","none":null}"#,
        "\n",
        r#"{"id":"2024-05-01T10:00:00+02:00","amount":null,"big":-1.5,"obj":null,"flag":1,"s":null,"none":null}"#,
        "\n",
    );

    #[test]
    fn jsonl_to_jsonl_is_byte_for_byte() {
        for batch_size in [1, 3, 8192] {
            for infer in [true, false] {
                let out = convert(
                    CANONICAL,
                    batch_size,
                    "jsonl",
                    json!({ "infer_numbers": infer }),
                );
                assert_eq!(out, CANONICAL, "batch_size {batch_size}, infer {infer}");
            }
        }
    }

    #[test]
    fn jsonl_to_json_keeps_every_value() {
        let out = convert(CANONICAL, 2, "json", json!({}));
        let lines: Vec<&str> = CANONICAL.lines().collect();
        assert_eq!(out, format!("[{}]", lines.join(",")));
        let pretty = convert(CANONICAL, 2, "json", json!({ "pretty": true }));
        let pretty: Vec<Value> = serde_json::from_str(&pretty).unwrap();
        let compact: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(pretty, compact);
        assert_eq!(pretty[0]["s"], json!("42"));
    }

    #[test]
    fn missing_keys_come_back_as_nulls() {
        let out = convert(
            "{\"a\":\"x\",\"b\":1}\n{\"b\":2}\n{\"a\":\"y\"}\n",
            8192,
            "jsonl",
            json!({}),
        );
        assert_eq!(
            out,
            "{\"a\":\"x\",\"b\":1}\n{\"a\":null,\"b\":2}\n{\"a\":\"y\",\"b\":null}\n"
        );
    }
}
