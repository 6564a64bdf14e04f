//! The arguments of `template`: those of `copy`, with `src` (a template) in place of the
//! content. Derived from `copy`'s schema so the two never drift apart.

use schemars::Schema;
use serde_json::{json, Value};

/// `template`'s argument schema.
pub(super) fn schema() -> Schema {
    let mut value = kprov_modules::arg_schema("copy")
        .map(Schema::to_value)
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Value::Object(root) = &mut value {
        root.insert(
            "description".into(),
            "Arguments of `template`: those of `copy`, with the rendered `src` as content.".into(),
        );
        let properties = root
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(properties) = properties {
            properties.remove("content");
            properties.remove("content_base64");
            properties.insert(
                "src".into(),
                json!({
                    "type": "string",
                    "description": "Jinja2 template rendered with the host's variables: a file \
                                    in the role's (or the playbook's) `templates/`, or an \
                                    absolute path.",
                }),
            );
            properties.insert(
                "dest".into(),
                json!({
                    "type": "string",
                    "description": "Absolute path of the file on the host (Ansible's name for \
                                    `path`; give one of them).",
                }),
            );
        }
        root.insert("required".into(), json!(["src"]));
    }
    Schema::try_from(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_arguments_with_src_for_content() {
        let schema = super::schema();
        let props = &schema.as_value()["properties"];
        for name in ["src", "dest", "path", "mode", "owner", "group", "sensitive"] {
            assert!(props.get(name).is_some(), "{name}: {props}");
        }
        assert!(props.get("content").is_none());
        assert_eq!(schema.as_value()["required"], serde_json::json!(["src"]));
    }
}
