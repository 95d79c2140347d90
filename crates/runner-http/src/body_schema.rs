//! Request bodies checked against the served document before they are read.
//!
//! Every JSON request body is validated against its own component schema in the OpenAPI
//! document the server serves ([`crate::openapi::document`]), so that what the document says a
//! body may be is what the server takes, by construction, and so that every structural error is
//! reported at once: missing fields, wrong types, unknown fields and the value rules the document
//! states (ranges, patterns, lengths), each with the field's path as a client wrote it
//! (`hosts[2].id`). The typed read and the domain's own checks (rules that relate fields to each
//! other or to stored state) come after, once the body has the documented shape.
//!
//! Messages never quote the value they refuse: a refused value may be a key or a password.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError, Validator};
use runner_core::validation::ValidationErrors;
use serde_json::{Value, json};

use crate::openapi;

/// The message of a value that matches none of the forms the document allows for it.
const NO_FORM: &str = "matches none of the documented forms";

/// The validators of the request bodies, by component name, built once from the document.
fn validators() -> &'static HashMap<String, Validator> {
    static VALIDATORS: OnceLock<HashMap<String, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let mut document = openapi::document();
        dispatch_by_type(&mut document["components"]);
        openapi::request_body_names()
            .into_iter()
            .map(|name| {
                // The components are under the root as in the document, so that
                // "#/components/schemas/..." resolves; the paths are left out, as no body
                // schema refers to them and each validator would compile them again.
                let schema = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$ref": format!("#/components/schemas/{name}"),
                    "components": document["components"],
                });
                let validator = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("the document's request bodies are valid JSON Schemas");
                (name.into_owned(), validator)
            })
            .collect()
    })
}

/// Rewrites, in the validator's copy of the document, each `oneOf` of two forms told apart by
/// their type (`null` or an object, as utoipa writes an optional field; a URL string or an
/// object, as a callback is) into `if`/`then`/`else` on that type: the same values pass, and a
/// value of the second form hears what is wrong inside it, field by field, rather than that it
/// matches neither form.
fn dispatch_by_type(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                dispatch_by_type(child);
            }
            let forms = match object.get("oneOf") {
                Some(Value::Array(forms)) if forms.len() == 2 => forms.clone(),
                _ => return,
            };
            let Some(Value::String(first_type)) = forms[0].get("type") else {
                return;
            };
            if forms[1].get("type") == Some(&Value::String(first_type.clone())) {
                return;
            }
            object.remove("oneOf");
            object.insert("if".into(), json!({ "type": first_type }));
            object.insert("then".into(), forms[0].clone());
            object.insert("else".into(), forms[1].clone());
        }
        Value::Array(items) => items.iter_mut().for_each(dispatch_by_type),
        _ => {}
    }
}

/// Every way `body` departs from the component schema `component`, as field errors.
///
/// The document states the rules between the fields of a record (exactly one of `playbook`
/// and `repository`, a key or a key pair) under the record's `allOf`; the domain checks those
/// with messages that say what to do, so they are left to it here.
pub fn check(component: &str, body: &Value) -> Result<(), ValidationErrors> {
    let validator = validators()
        .get(component)
        .unwrap_or_else(|| panic!("{component} is not a request body of the document"));
    let mut errors = ValidationErrors::default();
    for error in validator.iter_errors(body) {
        let path = field_path(&error);
        // One word per field: the first thing wrong with it.
        if is_between_fields(&error) || errors.errors.iter().any(|named| named.field == path) {
            continue;
        }
        match &error.kind {
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default();
                errors.add(join(&path, property), "is required");
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for property in unexpected {
                    errors.add(join(&path, property), "unknown field");
                }
            }
            kind => errors.add(path, message(kind)),
        }
    }
    errors.into_result()
}

fn is_between_fields(error: &ValidationError<'_>) -> bool {
    let under_all_of = (&error.schema_path)
        .into_iter()
        .any(|segment| segment == LocationSegment::Property("allOf"));
    under_all_of
        && matches!(
            error.kind,
            ValidationErrorKind::OneOfNotValid
                | ValidationErrorKind::OneOfMultipleValid
                | ValidationErrorKind::AnyOf
                | ValidationErrorKind::Not { .. }
        )
}

/// `/hosts/2/id` as `hosts[2].id`.
fn field_path(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in &error.instance_path {
        match segment {
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
            LocationSegment::Property(name) => {
                let name = name.replace("~1", "/").replace("~0", "~");
                path = join(&path, &name);
            }
        }
    }
    path
}

fn join(parent: &str, property: &str) -> String {
    if parent.is_empty() {
        property.to_owned()
    } else {
        format!("{parent}.{property}")
    }
}

fn type_name(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Array => "an array",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

fn message(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type {
            kind: TypeKind::Single(expected),
        } => format!("must be {}", type_name(*expected)),
        ValidationErrorKind::Type {
            kind: TypeKind::Multiple(expected),
        } => {
            let names: Vec<&str> = expected.iter().map(type_name).collect();
            format!("must be {}", names.join(" or "))
        }
        ValidationErrorKind::Enum { options } => format!("must be one of {}", list(options)),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be above {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be below {limit}"),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} character(s) long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
        // A long pattern says less in a message than the field's description does.
        ValidationErrorKind::Pattern { pattern } if pattern.len() <= 64 => {
            format!("must match {pattern}")
        }
        ValidationErrorKind::Pattern { .. } => {
            "is not in the form the document gives (see the field's pattern and description)"
                .to_owned()
        }
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        ValidationErrorKind::UniqueItems => "must not list an item twice".to_owned(),
        ValidationErrorKind::OneOfNotValid | ValidationErrorKind::AnyOf => NO_FORM.to_owned(),
        ValidationErrorKind::OneOfMultipleValid => {
            "matches more than one of the documented forms".to_owned()
        }
        _ => "does not match the documented schema".to_owned(),
    }
}

fn list(options: &Value) -> String {
    match options {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(component: &str, body: Value) -> Vec<(String, String)> {
        check(component, &body)
            .err()
            .map(|errors| {
                errors
                    .errors
                    .into_iter()
                    .map(|error| (error.field, error.message))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_structural_error_of_a_job_comes_at_once() {
        let errors = fields(
            "JobInput",
            json!({
                "playbook": "LSBob3N0czogYWxs",
                "executionTtl": 0,
                "hosts": [{"id": "a"}, {"id": "b"}, {"hostVars": {}}],
                "bogus": 1,
            }),
        );
        let paths: Vec<&str> = errors.iter().map(|(field, _)| field.as_str()).collect();
        assert!(paths.contains(&"hosts[2].id"), "{errors:?}");
        assert!(paths.contains(&"executionTtl"), "{errors:?}");
        assert!(paths.contains(&"bogus"), "{errors:?}");
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn wrong_types_are_named_with_what_was_expected() {
        let errors = fields("JobInput", json!({"hosts": [{"id": 7}], "description": []}));
        assert!(
            errors.contains(&("hosts[0].id".into(), "must be a string".into())),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|(field, message)| field == "description" && message.contains("a string")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_refused_secret_is_not_quoted() {
        let secret = "not base64 at all: s3cr3t!";
        let errors = fields("JobInput", json!({"hosts": [], "sshPrivateKey": secret}));
        assert!(!errors.is_empty());
        assert!(
            errors.iter().all(|(_, message)| !message.contains(secret)),
            "{errors:?}"
        );
    }

    #[test]
    fn a_valid_body_passes() {
        assert!(
            fields(
                "JobInput",
                json!({"playbook": "LSBob3N0czogYWxs", "hosts": []})
            )
            .is_empty()
        );
    }
}
