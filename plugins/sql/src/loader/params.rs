//! Query parameters: the check that turns a request's JSON values, of the
//! types the configuration declares, into typed values ready to bind.
//!
//! A value is only ever bound as a parameter of a prepared statement, so
//! whatever text it holds cannot change the SQL.

use crate::config::{ParamDef, ParamSource, ParamType};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use export_plugin_api::{Caller, PluginError, Result};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// A checked parameter value, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// SQL `NULL` of the parameter's type.
    Null(ParamType),
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A point in time.
    Timestamp(DateTime<Utc>),
    /// A calendar date.
    Date(NaiveDate),
    /// A list of strings.
    TextArray(Vec<String>),
    /// A list of integers.
    IntegerArray(Vec<i64>),
    /// A list of doubles.
    NumberArray(Vec<f64>),
}

impl ParamValue {
    /// The value as SQLite receives it: a timestamp as fixed-width UTC text
    /// (so text comparisons with stored values of that shape order
    /// correctly), a list as JSON text.
    pub fn sqlite_text(&self) -> Option<String> {
        match self {
            ParamValue::Timestamp(time) => Some(sqlite_timestamp(time)),
            ParamValue::Date(date) => Some(date.format("%Y-%m-%d").to_string()),
            ParamValue::TextArray(list) => Some(Json::from(list.clone()).to_string()),
            ParamValue::IntegerArray(list) => Some(Json::from(list.clone()).to_string()),
            ParamValue::NumberArray(list) => Some(Json::from(list.clone()).to_string()),
            _ => None,
        }
    }
}

/// The text SQLite receives for a timestamp: `2024-05-01T10:00:00.000Z`.
pub fn sqlite_timestamp(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Checks a request's `params` against the query's declarations and returns
/// a value for every declared parameter: the request's, the default, or NULL;
/// for a caller-bound one, what [`caller_value`] allows `caller`.
pub fn resolve(
    query: &str,
    declared: &BTreeMap<String, ParamDef>,
    given: &serde_json::Map<String, Json>,
    caller: Option<&Caller>,
) -> Result<BTreeMap<String, ParamValue>> {
    if let Some(unknown) = given.keys().find(|name| !declared.contains_key(*name)) {
        return Err(PluginError::invalid_input(format!(
            "query {query:?} has no parameter {unknown:?}; {}",
            list_declared(declared)
        )));
    }
    let mut values = BTreeMap::new();
    for (name, def) in declared {
        if def.from == ParamSource::Caller {
            let value = caller_value(query, name, def, given.get(name), caller)?;
            values.insert(name.clone(), value);
            continue;
        }
        let value = match given.get(name).filter(|value| !value.is_null()) {
            Some(value) => parse(def.kind, value).map_err(|why| {
                PluginError::invalid_input(format!(
                    "parameter {name:?} of query {query:?} must be {}: {why}",
                    def.kind.expected()
                ))
            })?,
            None if def.required => {
                return Err(PluginError::invalid_input(format!(
                    "parameter {name:?} of query {query:?} is required ({}): add it to the \
                     selector's params",
                    def.kind.name()
                )))
            }
            None => match &def.default {
                Some(default) => parse(def.kind, default).map_err(|why| {
                    PluginError::invalid_input(format!(
                        "the default of parameter {name:?} of query {query:?} in plugins.toml \
                         must be {}: {why}",
                        def.kind.expected()
                    ))
                })?,
                None => ParamValue::Null(def.kind),
            },
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// The value of caller-bound parameter `name`, given `given` by the
/// selector (absent and `null` are the same).
///
/// - No caller (a host older than plugin-api 1.2): refused, whatever the
///   selector says; nobody is not everybody.
/// - A non-admin caller: always their own user id. A selector may repeat
///   that exact id; any other value (another id, another spelling of the
///   same one, a number, an array) is refused, naming the parameter.
/// - An admin: the selector's value (a string) to act for one user;
///   left out, NULL (everyone, where the SQL allows it), or the admin's
///   own id when the parameter is `required`.
fn caller_value(
    query: &str,
    name: &str,
    def: &ParamDef,
    given: Option<&Json>,
    caller: Option<&Caller>,
) -> Result<ParamValue> {
    let Some(caller) = caller else {
        return Err(PluginError::permission_denied(format!(
            "parameter {name:?} of query {query:?} is bound to the caller, but the host \
             passed no caller (a host older than plugin-api 1.2); upgrade export-host, \
             or declare the parameter without `from = \"caller\"`"
        )));
    };
    let given = given.filter(|value| !value.is_null());
    if !caller.admin {
        return match given {
            None => Ok(ParamValue::Text(caller.user.clone())),
            Some(Json::String(value)) if *value == caller.user => {
                Ok(ParamValue::Text(caller.user.clone()))
            }
            Some(other) => Err(PluginError::permission_denied(format!(
                "parameter {name:?} of query {query:?} is bound to the caller: it is always \
                 your own user id, so you may not set it to {}; leave it out of the \
                 selector's params",
                shorten(other)
            ))),
        };
    }
    match given {
        Some(value) => parse(def.kind, value).map_err(|why| {
            PluginError::invalid_input(format!(
                "parameter {name:?} of query {query:?} must be {}: {why}",
                def.kind.expected()
            ))
        }),
        None if def.required => Ok(ParamValue::Text(caller.user.clone())),
        None => Ok(ParamValue::Null(def.kind)),
    }
}

/// Checks the declarations themselves: names usable as `:name`, required
/// parameters without a default, defaults of the right type.
pub fn check_declarations(query: &str, declared: &BTreeMap<String, ParamDef>) -> Result<()> {
    for (name, def) in declared {
        if !is_param_name(name) {
            return Err(PluginError::invalid_input(format!(
                "parameter {name:?} of query {query:?} in plugins.toml has an unusable name: \
                 use letters, digits and underscores, starting with a letter or underscore"
            )));
        }
        if def.from == ParamSource::Caller {
            if def.kind != ParamType::Text {
                return Err(PluginError::invalid_input(format!(
                    "parameter {name:?} of query {query:?} in plugins.toml is bound to the \
                     caller, whose user id is text: declare it type = \"text\""
                )));
            }
            if def.default.is_some() {
                return Err(PluginError::invalid_input(format!(
                    "parameter {name:?} of query {query:?} in plugins.toml is bound to the \
                     caller and has a default: drop the default (the caller's id is the value)"
                )));
            }
        }
        if def.required && def.default.is_some() {
            return Err(PluginError::invalid_input(format!(
                "parameter {name:?} of query {query:?} in plugins.toml is required and has a \
                 default: drop one of the two"
            )));
        }
        if let Some(default) = &def.default {
            parse(def.kind, default).map_err(|why| {
                PluginError::invalid_input(format!(
                    "the default of parameter {name:?} of query {query:?} in plugins.toml must \
                     be {}: {why}",
                    def.kind.expected()
                ))
            })?;
        }
    }
    Ok(())
}

/// Whether `name` can follow a colon in SQL: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn list_declared(declared: &BTreeMap<String, ParamDef>) -> String {
    if declared.is_empty() {
        return "it takes no parameters".to_owned();
    }
    let names: Vec<String> = declared
        .iter()
        .map(|(name, def)| {
            let required = if def.required { ", required" } else { "" };
            let from = match def.from {
                ParamSource::Caller => ", from the caller",
                ParamSource::Request => "",
            };
            format!("{name} ({}{required}{from})", def.kind.name())
        })
        .collect();
    format!("it takes: {}", names.join(", "))
}

/// A JSON value as `kind`, or why it is not one.
fn parse(kind: ParamType, value: &Json) -> std::result::Result<ParamValue, String> {
    let got = || format!("got {}", shorten(value));
    Ok(match kind {
        ParamType::Text => ParamValue::Text(value.as_str().ok_or_else(got)?.to_owned()),
        ParamType::Integer => ParamValue::Integer(integer(value).ok_or_else(got)?),
        ParamType::Number => ParamValue::Number(value.as_f64().ok_or_else(got)?),
        ParamType::Boolean => ParamValue::Boolean(value.as_bool().ok_or_else(got)?),
        ParamType::Timestamp => {
            let text = value.as_str().ok_or_else(got)?;
            ParamValue::Timestamp(timestamp(text).ok_or_else(got)?)
        }
        ParamType::Date => {
            let text = value.as_str().ok_or_else(got)?;
            ParamValue::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| got())?)
        }
        ParamType::TextArray => {
            ParamValue::TextArray(list(value, |item| item.as_str().map(str::to_owned))?)
        }
        ParamType::IntegerArray => ParamValue::IntegerArray(list(value, integer)?),
        ParamType::NumberArray => ParamValue::NumberArray(list(value, Json::as_f64)?),
    })
}

/// A whole number: `42`, also `42.0` (JSON does not tell them apart), never `4.2`.
fn integer(value: &Json) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
            .map(|float| float as i64)
    })
}

fn list<T>(value: &Json, item: impl Fn(&Json) -> Option<T>) -> std::result::Result<Vec<T>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("got {}", shorten(value)))?;
    items
        .iter()
        .enumerate()
        .map(|(index, element)| {
            item(element).ok_or_else(|| format!("item {index} is {}", shorten(element)))
        })
        .collect()
}

/// An RFC 3339 time in UTC, or midnight UTC of a bare date.
pub fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|date| date.and_time(NaiveTime::MIN).and_utc())
}

/// A JSON value for a message, cut to a readable length.
fn shorten(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::ErrorKind;
    use serde_json::json;

    fn declared(defs: Json) -> BTreeMap<String, ParamDef> {
        serde_json::from_value(defs).unwrap()
    }

    fn given(params: Json) -> serde_json::Map<String, Json> {
        params.as_object().unwrap().clone()
    }

    #[test]
    fn every_type_parses_and_binds_its_value() {
        let defs = declared(json!({
            "t": {"type": "text"}, "i": {"type": "integer"}, "n": {"type": "number"},
            "b": {"type": "boolean"}, "ts": {"type": "timestamp"}, "d": {"type": "date"},
            "ta": {"type": "text[]"}, "ia": {"type": "integer[]"}, "na": {"type": "number[]"},
        }));
        let values = resolve(
            "q",
            &defs,
            &given(json!({
                "t": "x' OR '1'='1", "i": 42, "n": 1.5, "b": true,
                "ts": "2024-05-01T12:00:00+02:00", "d": "2024-05-01",
                "ta": ["a", "b"], "ia": [1, 2.0], "na": [0.5, 3],
            })),
            None,
        )
        .unwrap();
        assert_eq!(values["t"], ParamValue::Text("x' OR '1'='1".into()));
        assert_eq!(values["i"], ParamValue::Integer(42));
        assert_eq!(values["n"], ParamValue::Number(1.5));
        assert_eq!(values["b"], ParamValue::Boolean(true));
        let ts = &values["ts"];
        assert_eq!(ts.sqlite_text().unwrap(), "2024-05-01T10:00:00.000Z");
        assert_eq!(values["d"].sqlite_text().unwrap(), "2024-05-01");
        assert_eq!(values["ta"].sqlite_text().unwrap(), r#"["a","b"]"#);
        assert_eq!(values["ia"], ParamValue::IntegerArray(vec![1, 2]));
        assert_eq!(values["na"], ParamValue::NumberArray(vec![0.5, 3.0]));
    }

    #[test]
    fn a_date_is_midnight_utc_as_a_timestamp() {
        let time = timestamp("2024-05-02").unwrap();
        assert_eq!(sqlite_timestamp(&time), "2024-05-02T00:00:00.000Z");
        assert!(timestamp("2024-05-02 10:00").is_none());
        assert!(timestamp("yesterday").is_none());
    }

    #[test]
    fn mistyped_values_are_refused_naming_the_parameter() {
        let defs = declared(json!({
            "user_id": {"type": "text"}, "limit": {"type": "integer"},
            "from": {"type": "timestamp"}, "ids": {"type": "text[]"}, "flag": {"type": "boolean"},
        }));
        for (params, needles) in [
            (
                json!({"user_id": 7}),
                vec!["\"user_id\"", "a JSON string", "got 7"],
            ),
            (
                json!({"limit": "10"}),
                vec!["\"limit\"", "whole", "got \"10\""],
            ),
            (json!({"limit": 2.5}), vec!["\"limit\"", "got 2.5"]),
            (json!({"from": "last week"}), vec!["\"from\"", "RFC 3339"]),
            (json!({"ids": "c1"}), vec!["\"ids\"", "array of strings"]),
            (json!({"ids": ["c1", 2]}), vec!["\"ids\"", "item 1 is 2"]),
            (json!({"flag": "yes"}), vec!["\"flag\"", "true or false"]),
        ] {
            let err = resolve("q", &defs, &given(params.clone()), None).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{params}");
            for needle in needles {
                assert!(err.message.contains(needle), "{params}: {}", err.message);
            }
        }
    }

    #[test]
    fn unknown_parameters_are_refused_listing_the_declared_ones() {
        let defs = declared(json!({
            "user_id": {"type": "text", "required": true}, "limit": {"type": "integer"},
        }));
        let err = resolve("conversations", &defs, &given(json!({"user": "u1"})), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.contains("no parameter \"user\""),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("it takes: limit (integer), user_id (text, required)"),
            "{}",
            err.message
        );
        let err = resolve("none", &BTreeMap::new(), &given(json!({"x": 1})), None).unwrap_err();
        assert!(
            err.message.contains("takes no parameters"),
            "{}",
            err.message
        );
    }

    #[test]
    fn required_defaults_and_nulls() {
        let defs = declared(json!({
            "user_id": {"type": "text", "required": true},
            "limit": {"type": "integer", "default": 100},
            "from": {"type": "timestamp"},
        }));
        let err = resolve("q", &defs, &given(json!({})), None).unwrap_err();
        assert!(
            err.message.contains("\"user_id\"") && err.message.contains("required"),
            "{}",
            err.message
        );
        // null is the same as leaving it out, also for a required parameter.
        assert!(resolve("q", &defs, &given(json!({"user_id": null})), None).is_err());
        let values = resolve(
            "q",
            &defs,
            &given(json!({"user_id": "u1", "limit": null})),
            None,
        )
        .unwrap();
        assert_eq!(values["limit"], ParamValue::Integer(100));
        assert_eq!(values["from"], ParamValue::Null(ParamType::Timestamp));
        let values = resolve(
            "q",
            &defs,
            &given(json!({"user_id": "u1", "limit": 5})),
            None,
        )
        .unwrap();
        assert_eq!(values["limit"], ParamValue::Integer(5));
    }

    #[test]
    fn declarations_are_checked() {
        for (defs, needle) in [
            (json!({"1x": {"type": "text"}}), "unusable name"),
            (json!({"a-b": {"type": "text"}}), "unusable name"),
            (
                json!({"x": {"type": "text", "required": true, "default": "a"}}),
                "required and has a default",
            ),
            (
                json!({"x": {"type": "integer", "default": "a"}}),
                "default of parameter \"x\"",
            ),
        ] {
            let err = check_declarations("q", &declared(defs.clone())).unwrap_err();
            assert!(err.message.contains(needle), "{defs}: {}", err.message);
        }
        check_declarations(
            "q",
            &declared(json!({"_a1": {"type": "date", "default": "2024-01-31"}})),
        )
        .unwrap();
    }

    #[test]
    fn param_names() {
        for good in ["a", "user_id", "_x", "A9"] {
            assert!(is_param_name(good), "{good}");
        }
        for bad in ["", "9a", "a-b", "é", "a b"] {
            assert!(!is_param_name(bad), "{bad}");
        }
    }
}
