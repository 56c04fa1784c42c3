//! The inputs of components that take none.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// `Options` of a formatter (or `Selector` of a loader) that takes none: an
/// empty object, or none at all (`null`), is accepted; any key is refused,
/// by name, so a request that expects an option to do something learns that
/// it does not. Its JSON Schema is an object with no properties, so the host
/// refuses such a request before the plugin sees it.
///
/// ```
/// use export_plugin_api::NoOptions;
/// assert_eq!(serde_json::from_str::<NoOptions>("{}").unwrap(), NoOptions);
/// assert_eq!(serde_json::from_str::<NoOptions>("null").unwrap(), NoOptions);
/// let err = serde_json::from_str::<NoOptions>(r#"{"pretty":true}"#).unwrap_err();
/// assert!(err.to_string().contains("\"pretty\""), "{err}");
/// ```
///
/// (A component's `Config` is different: the plugin's config table is shared
/// by all its components, so one that reads none must ignore what the
/// others read; that is [`NoConfig`](crate::NoConfig).)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NoOptions;

impl<'de> Deserialize<'de> for NoOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NoOptions, D::Error> {
        deserializer.deserialize_any(NoOptionsVisitor)
    }
}

struct NoOptionsVisitor;

impl<'de> Visitor<'de> for NoOptionsVisitor {
    type Value = NoOptions;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an empty object: this component takes no options")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NoOptions, E> {
        Ok(NoOptions)
    }

    fn visit_none<E: de::Error>(self) -> Result<NoOptions, E> {
        Ok(NoOptions)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoOptions, A::Error> {
        match map.next_key::<Cow<'de, str>>()? {
            None => Ok(NoOptions),
            Some(key) => Err(de::Error::custom(format!(
                "unknown option {key:?}: this component takes no options; remove it"
            ))),
        }
    }
}

impl JsonSchema for NoOptions {
    fn schema_name() -> Cow<'static, str> {
        "NoOptions".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "This component takes no options.",
            "type": "object",
            "additionalProperties": false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_but_an_empty_object_or_null_is_refused() {
        for refused in ["[]", "1", "\"x\"", r#"{"a":1,"b":2}"#] {
            assert!(
                serde_json::from_str::<NoOptions>(refused).is_err(),
                "{refused}"
            );
        }
        let schema = schemars::schema_for!(NoOptions).to_value();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["type"], "object");
    }
}
