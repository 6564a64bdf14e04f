//! Templates and expressions (minijinja, Jinja2 syntax) with strict undefined variables.
//!
//! An undefined variable is an error that names where the template came from
//! (`file:line`) and the variable, instead of silently rendering nothing.

mod filters;

pub use filters::toml_value;

use std::collections::HashSet;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde_json::Value;

/// A template or expression failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct TemplateError {
    /// `file:line` of the template (or of the task holding the expression).
    pub origin: String,
    pub message: String,
}

/// Renders strings, values and files against a variable context.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer with strict undefined handling, no auto-escaping and kprov's filters
    /// (`toml`, `toml_key`, `dict2items`, `urlsplit`).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        filters::register(&mut env);
        Renderer { env }
    }

    /// Renders one template string; `origin` (`file:line`) says where it was written.
    pub fn render_str(
        &self,
        source: &str,
        origin: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        self.render(source, origin, ctx, false)
    }

    fn render(
        &self,
        source: &str,
        origin: &str,
        ctx: &Value,
        file: bool,
    ) -> Result<String, TemplateError> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_string());
        }
        let fail = |e: &minijinja::Error, refs: Option<&HashSet<String>>| {
            let line = e.line().unwrap_or(1);
            let (origin, place) = if file {
                (format!("{origin}:{line}"), String::new())
            } else {
                (origin.to_string(), format!(" in `{source}`"))
            };
            TemplateError {
                origin,
                message: describe(e, ctx, refs) + &place,
            }
        };
        let tmpl = self
            .env
            .template_from_named_str(origin, source)
            .map_err(|e| fail(&e, None))?;
        tmpl.render(to_jinja(ctx))
            .map_err(|e| fail(&e, Some(&tmpl.undeclared_variables(true))))
    }

    /// Renders every string inside `value`. A string that is exactly one `{{ expr }}`
    /// keeps the expression's type (a list stays a list), as Ansible does.
    pub fn render_value(
        &self,
        value: &Value,
        origin: &str,
        ctx: &Value,
    ) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => {
                // Only a string that is nothing but one expression keeps its type: any text
                // around it (even a newline) makes the result a string.
                if let Some(expr) = whole_expression(s) {
                    self.eval(expr, origin, ctx)?
                } else {
                    Value::String(self.render_str(s, origin, ctx)?)
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, origin, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            self.render_str(k, origin, ctx)?,
                            self.render_value(v, origin, ctx)?,
                        ))
                    })
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluates an expression (as in `when:`) to a JSON value.
    pub fn eval(&self, expr: &str, origin: &str, ctx: &Value) -> Result<Value, TemplateError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| expr_error(origin, expr, &e, ctx, None))?;
        let value = compiled.eval(to_jinja(ctx)).map_err(|e| {
            expr_error(
                origin,
                expr,
                &e,
                ctx,
                Some(&compiled.undeclared_variables(true)),
            )
        })?;
        if value.is_undefined() {
            return Err(TemplateError {
                origin: origin.to_string(),
                message: format!("`{expr}` is undefined"),
            });
        }
        serde_json::to_value(&value).map_err(|e| TemplateError {
            origin: origin.to_string(),
            message: format!("`{expr}` gave a value that is not data: {e}"),
        })
    }

    /// Evaluates a condition; Jinja truthiness (empty string/list, 0, none are false).
    pub fn truthy(&self, expr: &str, origin: &str, ctx: &Value) -> Result<bool, TemplateError> {
        let value = self.eval(expr, origin, ctx)?;
        Ok(to_jinja(&value).is_true())
    }

    /// Renders a template file; errors name `file:line`.
    pub fn render_file(&self, path: &Path, ctx: &Value) -> Result<String, TemplateError> {
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| TemplateError {
            origin: origin.clone(),
            message: format!("cannot read the template: {e}"),
        })?;
        self.render(&source, &origin, ctx, true)
    }

    /// Variable paths a template string mentions (`a.b.c` for attribute chains).
    pub fn references(&self, source: &str) -> HashSet<String> {
        match self.env.template_from_str(source) {
            Ok(t) => t.undeclared_variables(true),
            Err(_) => HashSet::new(),
        }
    }
}

fn to_jinja(value: &Value) -> JValue {
    JValue::from(minijinja::value::Serde(value))
}

/// `{{ expr }}` with nothing around it → `expr`.
fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

fn expr_error(
    origin: &str,
    expr: &str,
    err: &minijinja::Error,
    ctx: &Value,
    refs: Option<&HashSet<String>>,
) -> TemplateError {
    TemplateError {
        origin: origin.to_string(),
        message: format!("{} in `{expr}`", describe(err, ctx, refs)),
    }
}

/// What went wrong; for undefined values, which variable it was.
fn describe(err: &minijinja::Error, ctx: &Value, refs: Option<&HashSet<String>>) -> String {
    if err.kind() != minijinja::ErrorKind::UndefinedError {
        return err.detail().unwrap_or("template error").to_string();
    }
    let missing = refs.and_then(|refs| {
        let mut refs: Vec<&String> = refs.iter().collect();
        refs.sort();
        refs.into_iter().find(|path| !defined(ctx, path)).cloned()
    });
    match missing {
        Some(var) => format!("undefined variable `{var}`"),
        None => "undefined variable".to_string(),
    }
}

/// Whether a dotted path resolves in the context.
fn defined(ctx: &Value, path: &str) -> bool {
    let mut cur = ctx;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undefined_variable_is_named() {
        let r = Renderer::new();
        let ctx = json!({"a": {"b": 1}});
        let err = r
            .render_str("x {{ a.b }} {{ nope }}", "roles/x/tasks.yaml:4", &ctx)
            .unwrap_err();
        assert_eq!(err.origin, "roles/x/tasks.yaml:4");
        assert!(
            err.message.contains("undefined variable `nope`"),
            "{}",
            err.message
        );
        let err = r.render_str("{{ a.c }}", "t.yaml:1", &ctx).unwrap_err();
        assert!(err.message.contains("`a.c`"), "{}", err.message);
    }

    #[test]
    fn template_file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k8s.conf.j2");
        std::fs::write(&path, "first\nsecond {{ missing_var }}\n").unwrap();
        let err = Renderer::new().render_file(&path, &json!({})).unwrap_err();
        assert_eq!(err.origin, format!("{}:2", path.display()));
        assert!(err.message.contains("`missing_var`"), "{}", err.message);
    }

    #[test]
    fn whole_expressions_keep_their_type() {
        let r = Renderer::new();
        let ctx = json!({"mods": ["overlay", "br_netfilter"], "n": 3});
        let v = r
            .render_value(&json!({"names": "{{ mods }}", "s": "n={{ n }}"}), "x", &ctx)
            .unwrap();
        assert_eq!(v, json!({"names": ["overlay", "br_netfilter"], "s": "n=3"}));
        let v = r.render_value(&json!("{{ n }}\n"), "x", &ctx).unwrap();
        assert_eq!(v, json!("3\n"));
        assert!(r.truthy("n > 2 and 'overlay' in mods", "x", &ctx).unwrap());
        assert!(!r.truthy("mods | length == 0", "x", &ctx).unwrap());
    }

    #[test]
    fn hostile_values_render_verbatim() {
        let r = Renderer::new();
        let hostile = "it's $(touch /tmp/x) `id` \"q\"\nline2 ünï";
        let ctx = json!({"v": hostile});
        assert_eq!(r.render_str("{{ v }}", "x", &ctx).unwrap(), hostile);
    }
}
