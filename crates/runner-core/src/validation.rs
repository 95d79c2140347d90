//! Field errors, reported all at once with each field's path (`hosts[2].id`).

use serde::Serialize;

/// One thing wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The path of the field, as a client wrote it: `repository.url`, `hosts[2].id`.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every field error of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("invalid request: {}", summary(.errors))]
pub struct ValidationErrors {
    /// The errors, in the order the fields were checked.
    pub errors: Vec<FieldError>,
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    /// Records an error on `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records `error` unless the condition holds.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(field, message);
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Self> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }
}

/// Reads a JSON request body into `T`, turning every serde failure into a [`FieldError`] that names
/// the field (`hosts[0].id: invalid type: integer, expected a string`).
///
/// Keys `T` does not know are refused (a misspelt `executionTTL` must not be dropped in silence),
/// except the top-level keys in `read_only`: the fields a client may send back from a response it
/// got (`id`, `createdTime`, ...), which are ignored.
///
/// ```
/// use runner_core::job::JobSpec;
/// use runner_core::validation::parse_json;
///
/// let errors = parse_json::<JobSpec>(br#"{"hosts": [{"id": 7}]}"#, &[]).unwrap_err();
/// assert_eq!(errors.errors[0].field, "hosts[0].id");
/// ```
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    read_only: &[&str],
) -> Result<T, ValidationErrors> {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let mut json = serde_json::Deserializer::from_slice(body);
    let parsed = {
        let tracked = serde_path_to_error::Deserializer::new(&mut json, &mut track);
        let mut on_ignored = |path: serde_ignored::Path<'_>| {
            let field = path_text(&path);
            if !read_only.contains(&field.as_str()) {
                unknown.push(field);
            }
        };
        T::deserialize(serde_ignored::Deserializer::new(tracked, &mut on_ignored))
    };
    let value = match parsed.and_then(|value| json.end().map(|()| value)) {
        Ok(value) => value,
        Err(error) => {
            let field = track.path().to_string();
            let field = if field == "." { String::new() } else { field };
            return Err(FieldError::new(field, error.to_string()).into());
        }
    };
    if unknown.is_empty() {
        return Ok(value);
    }
    let mut errors = ValidationErrors::default();
    for field in unknown {
        errors.add(field, "unknown field");
    }
    Err(errors)
}

fn path_text(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_text(parent)),
        Path::Map { parent, key } => {
            let parent = path_text(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_text(parent),
    }
}
