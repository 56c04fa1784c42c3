//! Documents a component must refuse, built from its JSON Schema.

use serde_json::{json, Map, Value};

/// A key no component declares.
pub const UNKNOWN_KEY: &str = "conformance-check-unknown-key";

/// `base` (or `{}`) with a key that no schema should accept: a typo in a
/// request must be refused, not silently ignored.
pub fn with_unknown_key(base: Option<&Value>) -> Value {
    let mut object = match base {
        Some(Value::Object(object)) => object.clone(),
        _ => Map::new(),
    };
    object.insert(UNKNOWN_KEY.to_owned(), json!(true));
    Value::Object(object)
}

/// `base` (or `{}`) with the first property `schema` declares a type for set
/// to a value of another JSON type; `None` when no property declares a type.
/// Returns the property's name too.
pub fn with_wrong_type(schema: &Value, base: Option<&Value>) -> Option<(String, Value)> {
    let properties = schema.get("properties")?.as_object()?;
    let (name, wrong) = properties.iter().find_map(|(name, property)| {
        let allowed = declared_types(property)?;
        wrong_value(&allowed).map(|value| (name.clone(), value))
    })?;
    let mut object = match base {
        Some(Value::Object(object)) => object.clone(),
        _ => Map::new(),
    };
    object.insert(name.clone(), wrong);
    Some((name, Value::Object(object)))
}

fn declared_types(property: &Value) -> Option<Vec<String>> {
    match property.get("type")? {
        Value::String(kind) => Some(vec![kind.clone()]),
        Value::Array(kinds) => Some(
            kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// A value whose JSON type is none of `allowed`.
fn wrong_value(allowed: &[String]) -> Option<Value> {
    let has = |kind: &str| allowed.iter().any(|a| a == kind);
    [
        ("array", json!(["conformance-wrong-type"])),
        ("object", json!({ "conformance": "wrong-type" })),
        ("string", json!("conformance-wrong-type")),
        ("boolean", json!(true)),
    ]
    .into_iter()
    .find(|(kind, _)| !has(kind))
    .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_keeps_the_base() {
        let doc = with_unknown_key(Some(&json!({"path": "a.csv"})));
        assert_eq!(doc["path"], "a.csv");
        assert_eq!(doc[UNKNOWN_KEY], true);
        assert_eq!(with_unknown_key(None), json!({ UNKNOWN_KEY: true }));
    }

    #[test]
    fn wrong_type_picks_a_typed_property() {
        let schema = json!({"properties": {
            "free": {"description": "no type"},
            "delimiter": {"type": "string"},
            "header": {"type": ["boolean", "null"]},
        }});
        let (name, doc) = with_wrong_type(&schema, Some(&json!({"header": true}))).unwrap();
        assert_eq!(name, "delimiter");
        assert!(doc["delimiter"].is_array());
        assert_eq!(doc["header"], true);
        let list = json!({"properties": {"items": {"type": "array"}}});
        assert!(with_wrong_type(&list, None).unwrap().1["items"].is_object());
        assert!(with_wrong_type(&json!({"type": "object"}), None).is_none());
    }
}
