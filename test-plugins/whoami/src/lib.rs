//! Test fixture: loader `whoami` yields one row describing the caller the
//! host passed to `open_for` (`user`, `admin`, `credential`, `claims`), or
//! `credential = "none"` when it passed none. Its `validate` refuses a
//! selector `{"refuse": true}` and a caller named `mallory`, so tests can
//! see the check run at submission.

use export_plugin_api::arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema};
use export_plugin_api::{
    export_plugin, BatchReader, Caller, Credential, IterReader, JsonSchema, Limits, Loader,
    NoConfig, PluginBuilder, PluginError, Result,
};
use serde::Deserialize;
use std::sync::Arc;

/// Nothing to choose, but a way to be refused.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Selector {
    /// Have `validate` refuse the request.
    refuse: bool,
}

struct Whoami;

impl Loader for Whoami {
    type Config = NoConfig;
    type Selector = Selector;
    const NAME: &'static str = "whoami";
    const DESCRIPTION: &'static str = "One row: the caller the host passed";

    fn open(
        &self,
        config: NoConfig,
        selector: Selector,
        limits: &Limits,
    ) -> Result<Box<dyn BatchReader>> {
        self.open_for(config, selector, limits, None)
    }

    fn open_for(
        &self,
        _: NoConfig,
        _: Selector,
        _: &Limits,
        caller: Option<&Caller>,
    ) -> Result<Box<dyn BatchReader>> {
        let (user, admin, credential, claims) = match caller {
            None => (None, None, "none".to_owned(), None),
            Some(caller) => (
                Some(caller.user.clone()),
                Some(caller.admin),
                match &caller.credential {
                    Credential::Token { id } => format!("token {id}"),
                    Credential::Jwt {
                        issuer, subject, ..
                    } => format!(
                        "jwt {} {}",
                        issuer.as_deref().unwrap_or("-"),
                        subject.as_deref().unwrap_or("-")
                    ),
                    Credential::Operator => "operator".to_owned(),
                },
                caller
                    .claims()
                    .map(|claims| serde_json::Value::Object(claims.clone()).to_string()),
            ),
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, true),
            Field::new("admin", DataType::Boolean, true),
            Field::new("credential", DataType::Utf8, false),
            Field::new("claims", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![user])),
            Arc::new(BooleanArray::from(vec![admin])),
            Arc::new(StringArray::from(vec![credential])),
            Arc::new(StringArray::from(vec![claims])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Box::new(IterReader::new(
            schema,
            std::iter::once(Ok(batch)),
        )))
    }

    fn validate(&self, _: NoConfig, selector: Selector, caller: Option<&Caller>) -> Result<()> {
        if selector.refuse {
            return Err(PluginError::invalid_input(
                "refused as asked: selector.refuse is true",
            ));
        }
        if caller.is_some_and(|caller| caller.user == "mallory") {
            return Err(PluginError::permission_denied(
                "mallory may not ask who she is",
            ));
        }
        Ok(())
    }
}

export_plugin!(PluginBuilder::new("whoami", env!("CARGO_PKG_VERSION"))
    .description("Yields the caller the host passed")
    .loader(Whoami)
    .build());
