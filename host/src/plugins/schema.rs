//! JSON Schema checks of plugin config, selectors and options.

use serde_json::Value;

/// A compiled JSON Schema for one document (a config, selector or options).
pub struct DocumentSchema {
    validator: jsonschema::Validator,
}

/// A document failed its schema.
#[derive(Debug, thiserror::Error)]
#[error("{what} is invalid: {}", problems.join("; "))]
pub struct SchemaViolation {
    /// Which document ("selector", "options", "config").
    pub what: String,
    /// Each problem, starting with the field's JSON pointer.
    pub problems: Vec<String>,
}

impl DocumentSchema {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(|validator| DocumentSchema { validator })
            .map_err(|err| err.to_string())
    }

    /// Checks `document`, naming each failing field.
    pub fn check(&self, what: &str, document: &Value) -> Result<(), SchemaViolation> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(document)
            .take(10)
            .map(|err| {
                let at = err.instance_path().as_str();
                let at = if at.is_empty() { "(top level)" } else { at };
                format!("{at}: {err}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemaViolation {
                what: what.to_owned(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_failing_field() {
        let schema = DocumentSchema::compile(&json!({
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(schema.check("selector", &json!({"path": "a.csv"})).is_ok());
        let err = schema.check("selector", &json!({"path": 5})).unwrap_err();
        assert!(err.to_string().contains("/path"), "{err}");
        let err = schema
            .check("selector", &json!({"path": "a", "pth": 1}))
            .unwrap_err();
        assert!(err.to_string().contains("pth"), "{err}");
    }
}
