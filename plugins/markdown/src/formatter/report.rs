//! Reports: Markdown around the table, written by minijinja templates.
//!
//! A report is two templates, `before` (rendered once, before the table) and
//! `after` (rendered once, after the last row). The table between them is
//! written row by row by the formatter, so a report of any size holds no rows
//! in memory and every cell is escaped the same way as in a bare table.
//!
//! Both templates see:
//! - `title`: the `title` option, or `"Export"`;
//! - `columns`: a list of `{name, data_type}` (the Arrow type, e.g. `Utf8`).
//!
//! `after` also sees `row_count`, the number of rows in the table.
//!
//! Every `{{ value }}` is escaped for Markdown (a title `*draft*` shows the
//! stars); `{{ value | safe }}` writes Markdown as it is. Undefined names are
//! errors, so a typo is refused before any output exists, and each render has
//! a fixed work budget (minijinja's fuel).

use export_plugin_api::arrow_schema::Schema;
use export_plugin_api::escape::markdown::escape_inline;
use export_plugin_api::{JsonSchema, PluginError, Result};
use minijinja::value::Value;
use minijinja::{context, AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

/// The title a report gets when the request names none.
pub const DEFAULT_TITLE: &str = "Export";

/// Instructions one render may run; far more than any sensible report needs,
/// far less than a runaway loop.
const FUEL_PER_RENDER: u64 = 1_000_000;

/// The built-in report: a title and the columns above the table, the row
/// count below it.
const REPORT_BEFORE: &str = "# {{ title }}\n\n\
    {{ columns | length }} column{% if columns | length != 1 %}s{% endif %}\
    {% for column in columns %}{% if loop.first %}: {% else %}, {% endif %}\
    {% if column.name %}{{ column.name }}{% else %}(unnamed){% endif %}{% endfor %}\n";
const REPORT_AFTER: &str = "{{ row_count }} row{% if row_count != 1 %}s{% endif %}.\n";

/// The `template` option: which report to write around the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum TemplateOption {
    /// A built-in report by name.
    Builtin(BuiltinTemplate),
    /// Your own templates.
    Custom(CustomTemplate),
}

/// The built-in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum BuiltinTemplate {
    /// `# title`, a line naming the columns, the table, then `N rows.`
    Report,
}

/// A report of your own: minijinja templates for the text before and after
/// the table (see the crate docs for what they can use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct CustomTemplate {
    /// Rendered once before the table, with `title` and `columns`.
    /// Default: empty.
    #[serde(default)]
    pub before: String,
    /// Rendered once after the last row, with `title`, `columns` and
    /// `row_count`. Default: empty.
    #[serde(default)]
    pub after: String,
}

/// A compiled report for one export.
pub struct Report {
    env: Environment<'static>,
    title: String,
    columns: Value,
}

const BEFORE: &str = "template.before";
const AFTER: &str = "template.after";

impl Report {
    /// Compiles the templates and tries `after` once, so that a mistake in
    /// either is refused before any output exists.
    pub fn new(template: &TemplateOption, title: Option<String>, schema: &Schema) -> Result<Self> {
        let (before, after) = match template {
            TemplateOption::Builtin(BuiltinTemplate::Report) => {
                (REPORT_BEFORE.to_owned(), REPORT_AFTER.to_owned())
            }
            TemplateOption::Custom(custom) => (custom.before.clone(), custom.after.clone()),
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL_PER_RENDER));
        env.set_auto_escape_callback(|_| AutoEscape::Custom("markdown".into()));
        env.set_formatter(|out, _state, value| {
            if value.is_safe() {
                out.write_str(value.as_str().unwrap_or_default())
                    .map_err(minijinja::Error::from)
            } else {
                let mut text = String::new();
                escape_inline(&value.to_string(), &mut text);
                out.write_str(&text).map_err(minijinja::Error::from)
            }
        });
        env.add_template_owned(BEFORE, before)
            .map_err(template_error)?;
        env.add_template_owned(AFTER, after)
            .map_err(template_error)?;
        let columns = Value::from(
            schema
                .fields()
                .iter()
                .map(|field| {
                    context! {
                        name => field.name().as_str(),
                        data_type => field.data_type().to_string(),
                    }
                })
                .collect::<Vec<Value>>(),
        );
        let report = Report {
            env,
            title: title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()),
            columns,
        };
        report.render_after(0)?;
        Ok(report)
    }

    /// The text before the table.
    pub fn render_before(&self) -> Result<String> {
        self.render(
            BEFORE,
            context! { title => &self.title, columns => &self.columns },
        )
    }

    /// The text after the table, which had `row_count` rows.
    pub fn render_after(&self, row_count: u64) -> Result<String> {
        self.render(
            AFTER,
            context! { title => &self.title, columns => &self.columns, row_count => row_count },
        )
    }

    fn render(&self, name: &str, context: Value) -> Result<String> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(template_error)
    }
}

fn template_error(err: minijinja::Error) -> PluginError {
    PluginError::invalid_input(format!(
        "the report template cannot be used: {err}; the templates may use title, columns \
         (each with name and data_type) and, after the table, row_count"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::arrow_schema::{DataType, Field};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("*note*", DataType::Utf8, true),
            Field::new("", DataType::Utf8, true),
        ])
    }

    fn custom(before: &str, after: &str) -> TemplateOption {
        TemplateOption::Custom(CustomTemplate {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    #[test]
    fn the_builtin_report_names_title_columns_and_rows() {
        let report = Report::new(
            &TemplateOption::Builtin(BuiltinTemplate::Report),
            Some("Q3 | *draft*".into()),
            &schema(),
        )
        .unwrap();
        assert_eq!(
            report.render_before().unwrap(),
            "# Q3 \\| \\*draft\\*\n\n3 columns: id, \\*note\\*, (unnamed)"
        );
        // minijinja drops the template's final newline; the formatter ends the document.
        assert_eq!(report.render_after(1).unwrap(), "1 row.");
        assert_eq!(report.render_after(21).unwrap(), "21 rows.");
        let one = Schema::new(vec![Field::new("a", DataType::Utf8, true)]);
        let report = Report::new(
            &TemplateOption::Builtin(BuiltinTemplate::Report),
            None,
            &one,
        )
        .unwrap();
        assert_eq!(report.render_before().unwrap(), "# Export\n\n1 column: a");
    }

    #[test]
    fn custom_templates_see_the_context_and_escape_by_default() {
        let report = Report::new(
            &custom(
                "{{ title }}/{% for c in columns %}{{ c.name }}:{{ c.data_type }};{% endfor %}",
                "{{ row_count * 2 }} {{ '**bold**' | safe }} {{ '**x**' }}",
            ),
            Some("T".into()),
            &schema(),
        )
        .unwrap();
        assert_eq!(
            report.render_before().unwrap(),
            "T/id:Int64;\\*note\\*:Utf8;:Utf8;"
        );
        assert_eq!(report.render_after(5).unwrap(), "10 **bold** \\*\\*x\\*\\*");
    }

    #[test]
    fn mistakes_are_refused_up_front() {
        for (before, after, needle) in [
            ("{% if %}", "", "syntax error"),
            ("", "{{ row_count ", "syntax error"),
            ("", "{{ rows }}", "undefined"),
            ("", "{{ title | no_such_filter }}", "no_such_filter"),
            (
                "",
                "{% for i in range(100000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
                "fuel",
            ),
        ] {
            let err = match Report::new(&custom(before, after), None, &schema()) {
                Ok(_) => panic!("{before:?} / {after:?} was accepted"),
                Err(err) => err,
            };
            assert_eq!(err.kind, export_plugin_api::ErrorKind::InvalidInput);
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
        // `row_count` is unknown before the table: using it there is an error when rendered.
        let report = Report::new(&custom("{{ row_count }}", ""), None, &schema()).unwrap();
        assert!(report.render_before().is_err());
    }
}
