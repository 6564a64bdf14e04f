//! Checks a YAML document against its JSON Schema and turns every violation into a friendly
//! diagnostic at the right line and column.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError};
use serde_json::Value;

use super::source_map::{pointer_join, SourceMap};
use super::suggest::closest;
use super::{formats, patterns};
use crate::diagnostic::Diagnostic;

/// Every schema violation of `instance`, described for humans, plus the pointers of the
/// offending values (removing them leaves a value that may still deserialize).
pub(crate) fn check(
    schema: &Value,
    instance: &Value,
    map: &SourceMap,
) -> (Vec<Diagnostic>, Vec<String>) {
    // kprov's formats are `pattern`s in the schema (see `patterns`), so that any validator
    // checks them; a mismatch is described by the format's name.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema);
    let validator = match validator {
        Ok(validator) => validator,
        Err(error) => {
            // A bug in kprov's own schema, not in the user's file.
            let message = format!("internal error: invalid schema: {error}");
            return (vec![map.at_value("", message, None)], Vec::new());
        }
    };
    let describer = Describer { schema, map };
    let mut diagnostics = Vec::new();
    let mut offending = Vec::new();
    for error in validator.iter_errors(instance) {
        offending.extend(describer.offending(&error));
        diagnostics.extend(describer.describe(&error));
    }
    (diagnostics, offending)
}

/// Of the branches of a failed `oneOf`/`anyOf`, the errors of the one the value was most
/// likely meant to match: one that failed deeper than the value's own shape, with the fewest
/// errors. `None` when every branch rejected the shape itself.
fn likely_branch<'e>(
    pointer: &str,
    branches: &'e [Vec<ValidationError<'static>>],
) -> Option<&'e Vec<ValidationError<'static>>> {
    let shallow = |e: &ValidationError<'_>| {
        e.instance_path().as_str() == pointer
            && matches!(
                e.kind(),
                ValidationErrorKind::Type { .. }
                    | ValidationErrorKind::Constant { .. }
                    | ValidationErrorKind::Enum { .. }
            )
    };
    branches
        .iter()
        .filter(|errors| !errors.iter().all(shallow))
        .min_by_key(|errors| errors.len())
}

struct Describer<'a> {
    schema: &'a Value,
    map: &'a SourceMap,
}

impl Describer<'_> {
    /// Pointers of the values `error` rejects.
    fn offending(&self, error: &ValidationError<'_>) -> Vec<String> {
        let pointer = error.instance_path().as_str();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                .iter()
                .map(|key| pointer_join(pointer, key))
                .collect(),
            ValidationErrorKind::Required { .. } => Vec::new(),
            ValidationErrorKind::Pattern { pattern }
                if patterns::format_of(pattern).is_some_and(|f| {
                    formats::accepts(f, error.instance().as_str().unwrap_or_default())
                }) =>
            {
                Vec::new()
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => match likely_branch(pointer, context) {
                Some(errors) => errors.iter().flat_map(|e| self.offending(e)).collect(),
                None => vec![pointer.to_string()],
            },
            _ => vec![pointer.to_string()],
        }
    }

    fn describe(&self, error: &ValidationError<'_>) -> Vec<Diagnostic> {
        let pointer = error.instance_path().as_str().to_string();
        let instance = error.instance().as_ref();
        let map = self.map;
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = self.allowed_keys(error.schema_path().as_str());
                unexpected
                    .iter()
                    .map(|key| {
                        let names = allowed.iter().map(String::as_str);
                        let message = match closest(key, names) {
                            Some(best) => format!("unknown key `{key}` — did you mean `{best}`?"),
                            None => format!("unknown key `{key}`"),
                        };
                        let hint = (!allowed.is_empty())
                            .then(|| format!("allowed keys here: {}", allowed.join(", ")));
                        map.at_key(&pointer_join(&pointer, key), message, hint)
                    })
                    .collect()
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let at = map.key_position(&pointer);
                vec![Diagnostic {
                    file: map.file().to_path_buf(),
                    line: at.line,
                    column: at.column,
                    key: map.dotted(&pointer_join(&pointer, name)),
                    message: format!("missing required key `{name}`"),
                    hint: Some(self.required_hint(error.schema_path().as_str(), name)),
                }]
            }
            ValidationErrorKind::Type { kind } => {
                let expected: Vec<JsonType> = match kind {
                    TypeKind::Single(t) => vec![*t],
                    TypeKind::Multiple(set) => set.iter().collect(),
                };
                vec![self.type_mismatch(&pointer, instance, &expected)]
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<Value> = options.as_array().cloned().unwrap_or_default();
                vec![self.not_one_of(&pointer, instance, &options)]
            }
            ValidationErrorKind::Constant { expected_value } => {
                vec![self.not_one_of(&pointer, instance, std::slice::from_ref(expected_value))]
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                self.no_branch_matched(&pointer, instance, context)
            }
            ValidationErrorKind::Format { format } => {
                vec![self.bad_format(&pointer, instance, format)]
            }
            ValidationErrorKind::Pattern { pattern } => {
                let text = instance.as_str().unwrap_or_default();
                if let Some(format) = patterns::format_of(pattern) {
                    // Stricter than kprov's own check (e.g. an unsupported version): that
                    // check reports it, with a better message.
                    if formats::accepts(format, text) {
                        return Vec::new();
                    }
                    return vec![self.bad_format(&pointer, instance, format)];
                }
                vec![map.at_value(
                    &pointer,
                    format!("`{text}` is not {}", formats::describe_pattern(pattern)),
                    None,
                )]
            }
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit } => {
                vec![map.at_value(
                    &pointer,
                    format!(
                        "{} is too small (the minimum is {limit})",
                        self.show(&pointer, instance)
                    ),
                    self.port_hint(&pointer),
                )]
            }
            ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                vec![map.at_value(
                    &pointer,
                    format!(
                        "{} is too large (the maximum is {limit})",
                        self.show(&pointer, instance)
                    ),
                    self.port_hint(&pointer),
                )]
            }
            ValidationErrorKind::MinItems { limit } => vec![map.at_value(
                &pointer,
                format!("the list needs at least {limit} item(s)"),
                None,
            )],
            ValidationErrorKind::MinLength { limit } => vec![map.at_value(
                &pointer,
                format!("the value needs at least {limit} character(s)"),
                None,
            )],
            _ => vec![map.at_value(&pointer, error.to_string(), None)],
        }
    }

    /// The value for a message, unless it is a secret.
    fn show(&self, pointer: &str, instance: &Value) -> String {
        if is_secret(pointer) {
            return "a hidden value".into();
        }
        show(instance, self.map.raw(pointer))
    }

    /// The value in backticks for a message, unless it is a secret.
    fn verbatim(&self, pointer: &str, instance: &Value) -> String {
        if is_secret(pointer) {
            return "the hidden value".into();
        }
        verbatim(instance, self.map.raw(pointer))
    }

    fn port_hint(&self, pointer: &str) -> Option<String> {
        (pointer.ends_with("port") || pointer.ends_with("ansible_port"))
            .then(|| "a TCP port is a number from 1 to 65535".to_string())
    }

    fn type_mismatch(&self, pointer: &str, instance: &Value, expected: &[JsonType]) -> Diagnostic {
        let raw = self.map.raw(pointer);
        let mut names: Vec<&str> = expected
            .iter()
            .filter(|t| **t != JsonType::Null || expected.len() == 1)
            .map(|t| type_name(*t))
            .collect();
        names.dedup();
        let message = format!(
            "expected {}, found {}",
            names.join(" or "),
            self.show(pointer, instance)
        );
        let wants_string = expected.contains(&JsonType::String);
        let hint = if pointer == "/kubernetes_version" && !instance.is_string() {
            Some(format!(
                "quote the version and give all three parts: kubernetes_version: \"{}\"",
                full_version(raw.unwrap_or("1.28.2"))
            ))
        } else if wants_string
            && (instance.is_number() || instance.is_boolean())
            && is_secret(pointer)
        {
            Some("put the value in quotes".into())
        } else if wants_string && (instance.is_number() || instance.is_boolean()) {
            Some(format!(
                "put the value in quotes: \"{}\"",
                raw.map(str::to_string)
                    .unwrap_or_else(|| instance.to_string())
            ))
        } else if expected.contains(&JsonType::Boolean) && instance.is_string() {
            Some("write true or false, without quotes".into())
        } else if instance.is_null() && expected.contains(&JsonType::Object) {
            Some("give the section its entries, or remove the key to use the defaults".into())
        } else if expected.contains(&JsonType::Object)
            && !expected.contains(&JsonType::Array)
            && instance.is_array()
        {
            Some("write `name: value` entries (a mapping), not `- item` lines".into())
        } else if expected.contains(&JsonType::Array) && !instance.is_array() {
            Some("write a list: `[a, b]` or one `- item` per line".into())
        } else {
            None
        };
        self.map.at_value(pointer, message, hint)
    }

    fn not_one_of(&self, pointer: &str, instance: &Value, options: &[Value]) -> Diagnostic {
        let names: Vec<String> = options
            .iter()
            .map(|o| {
                o.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| o.to_string())
            })
            .collect();
        let listed = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = instance
            .as_str()
            .and_then(|s| closest(s, names.iter().map(String::as_str)))
            .map(|best| format!("did you mean `{best}`?"));
        self.map.at_value(
            pointer,
            format!(
                "{} is not a valid value; expected one of {listed}",
                self.verbatim(pointer, instance)
            ),
            hint,
        )
    }

    fn bad_format(&self, pointer: &str, instance: &Value, format: &str) -> Diagnostic {
        let text = instance.as_str().unwrap_or_default();
        let hint = match format {
            formats::DNS_LABEL => {
                let fixed = text.to_lowercase().replace(['_', '.', ' '], "-");
                formats::is_dns_label(&fixed).then(|| format!("did you mean `{fixed}`?"))
            }
            formats::KUBERNETES_VERSION => Some(format!(
                "write kubernetes_version: \"{}\"",
                full_version(text)
            )),
            formats::CIDR => {
                Some("write the network address and prefix length, e.g. 10.244.0.0/16".into())
            }
            _ => None,
        };
        self.map.at_value(
            pointer,
            format!("`{text}` is not {}", formats::describe(format)),
            hint,
        )
    }

    fn no_branch_matched(
        &self,
        pointer: &str,
        instance: &Value,
        branches: &[Vec<ValidationError<'static>>],
    ) -> Vec<Diagnostic> {
        if let Some(best) = likely_branch(pointer, branches) {
            return best.iter().flat_map(|e| self.describe(e)).collect();
        }
        // Every branch rejected the value's shape: list what would have been accepted.
        let mut constants = Vec::new();
        let mut types = Vec::new();
        for error in branches.iter().flatten() {
            match error.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    constants.push((**expected_value).clone())
                }
                ValidationErrorKind::Enum { options } => {
                    constants.extend(options.as_array().cloned().unwrap_or_default())
                }
                ValidationErrorKind::Type { kind } => match kind {
                    TypeKind::Single(t) => types.push(*t),
                    TypeKind::Multiple(set) => types.extend(set.iter()),
                },
                _ => {}
            }
        }
        if types.contains(&JsonType::Boolean) {
            // Ansible's booleans: true/false plus yes/no, on/off.
            return vec![self.map.at_value(
                pointer,
                format!(
                    "expected true or false, found {}",
                    self.verbatim(pointer, instance)
                ),
                Some("write true or false (yes/no and on/off are accepted too)".into()),
            )];
        }
        if !constants.is_empty() {
            return vec![self.not_one_of(pointer, instance, &constants)];
        }
        types.sort_by_key(|t| type_name(*t));
        types.dedup();
        vec![self.type_mismatch(pointer, instance, &types)]
    }

    /// The property names the object schema at `schema_path`'s parent allows.
    fn allowed_keys(&self, schema_path: &str) -> Vec<String> {
        let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
        let Some(object) = self.resolve(parent) else {
            return Vec::new();
        };
        object
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn required_hint(&self, schema_path: &str, name: &str) -> String {
        let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
        let example = self
            .resolve(parent)
            .and_then(|o| o.pointer(&format!("/properties/{name}")))
            .map(|p| self.deref(p))
            .and_then(|p| p.pointer("/examples/0"))
            .map(|e| e.to_string());
        match example {
            Some(example) => format!("add `{name}: {example}`"),
            None => format!("add `{name}:` here"),
        }
    }

    /// The schema node at a keyword location, following `$ref`s on the way.
    fn resolve(&self, path: &str) -> Option<&Value> {
        let mut current = self.schema;
        for segment in path.split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            if segment == "$ref" {
                current = self.deref(current);
                continue;
            }
            current = self.deref(current);
            current = match current {
                Value::Object(map) => map.get(&segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(self.deref(current))
    }

    fn deref<'v>(&'v self, mut node: &'v Value) -> &'v Value {
        for _ in 0..16 {
            match node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
            {
                Some(target) => match self.schema.pointer(target) {
                    Some(next) => node = next,
                    None => break,
                },
                None => break,
            }
        }
        node
    }
}

/// Values never repeated in messages (passwords, tokens).
fn is_secret(pointer: &str) -> bool {
    let last = pointer
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    ["password", "token", "secret", "auth"]
        .iter()
        .any(|word| last.contains(word))
}

fn type_name(t: JsonType) -> &'static str {
    match t {
        JsonType::Object => "a mapping",
        JsonType::Array => "a list",
        JsonType::String => "a string",
        JsonType::Integer => "a whole number",
        JsonType::Number => "a number",
        JsonType::Boolean => "true or false",
        JsonType::Null => "no value",
    }
}

/// The value as the user wrote it, for messages.
fn show(value: &Value, raw: Option<&str>) -> String {
    match value {
        Value::Null => "an empty value".into(),
        Value::Object(_) => "a mapping".into(),
        Value::Array(_) => "a list".into(),
        Value::String(s) => format!("the string `{s}`"),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!(
            "the number `{}`",
            raw.map(str::to_string).unwrap_or_else(|| n.to_string())
        ),
    }
}

/// The value in backticks, as written.
fn verbatim(value: &Value, raw: Option<&str>) -> String {
    match (value, raw) {
        (_, Some(raw)) => format!("`{raw}`"),
        (Value::String(s), None) => format!("`{s}`"),
        (Value::Null, None) => "an empty value".into(),
        (other, None) => format!("`{other}`"),
    }
}

/// `1.28` → `1.28.0`; anything else unchanged.
/// The full version to suggest for `text`: `1.30` → `1.30.0`; an unsupported release
/// (`1.27`, `1.32`) → the nearest supported one, so the hint never suggests a version
/// that is refused next.
fn full_version(text: &str) -> String {
    use crate::spec::values::{MAX_MINOR, MIN_MINOR};
    let bare = text.trim_start_matches('v');
    let mut parts = bare.split('.');
    let (major, minor) = (parts.next(), parts.next().map(str::parse::<u32>));
    match (major, minor) {
        (Some("1"), Some(Ok(minor))) if (MIN_MINOR..=MAX_MINOR).contains(&minor) => {
            if bare.split('.').count() == 2 {
                format!("{bare}.0")
            } else {
                bare.to_string()
            }
        }
        (Some("1"), Some(Ok(minor))) if minor < MIN_MINOR => format!("1.{MIN_MINOR}.0"),
        _ => format!("1.{MAX_MINOR}.0"),
    }
}
