//! Where the client finds the server, its token and the account (flags, environment, a private
//! config file), and the HTTP calls it makes: JSON in, JSON out, the server's errors kept whole.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

/// The server `runner serve` listens on by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The command line, a file or the configuration is wrong: nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached, or its answer could not be read.
    #[error("{0}")]
    Transport(String),
    /// The server refused the request: its status and error body, as it gave them.
    #[error("{}", server_error(*.status, .message, .errors))]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The body's `message` (or the body itself when it is not the JSON error shape).
        message: String,
        /// The body's `errors`: (field, message) for a 400.
        errors: Vec<(String, String)>,
    },
}

fn server_error(status: StatusCode, message: &str, errors: &[(String, String)]) -> String {
    let mut text = format!("the server answered {status}: {message}");
    for (field, message) in errors {
        let field = if field.is_empty() {
            "(the body)"
        } else {
            field.as_str()
        };
        text.push_str(&format!("\n  {field}: {message}"));
    }
    text
}

/// The config file: `url`, `token` and `account`, each optional (YAML or JSON).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    url: Option<String>,
    token: Option<String>,
    account: Option<String>,
}

/// `$XDG_CONFIG_HOME/runner/config.yaml`, else `$HOME/.config/runner/config.yaml`.
pub fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("runner").join("config.yaml"))
}

/// Reads the config file. An explicit path must exist; the default one may be absent. Either
/// must be private to its owner (no group or other permission bits), as ssh asks of its keys:
/// it holds a token.
fn read_config(explicit: Option<&Path>) -> Result<ConfigFile, ClientError> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => match default_config_path() {
            Some(path) if path.exists() => path,
            _ => return Ok(ConfigFile::default()),
        },
    };
    let shown = path.display();
    let metadata = std::fs::metadata(&path)
        .map_err(|error| ClientError::Usage(format!("config file {shown}: {error}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ClientError::Usage(format!(
                "config file {shown} is open to other users (mode {mode:04o}); it holds a token: chmod 600 {shown}"
            )));
        }
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|error| ClientError::Usage(format!("config file {shown}: {error}")))?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_norway::from_str(&text)
        .map_err(|error| ClientError::Usage(format!("config file {shown}: {error}")))
}

/// What the command line and the environment gave (clap already applied flag over env).
#[derive(Debug, Default)]
pub struct Given {
    /// `--url` / `RUNNER_URL`.
    pub url: Option<String>,
    /// `--token` / `RUNNER_TOKEN`.
    pub token: Option<String>,
    /// `--account` / `RUNNER_ACCOUNT`.
    pub account: Option<String>,
    /// `--config` / `RUNNER_CONFIG`.
    pub config: Option<PathBuf>,
}

/// The JSON API of one server, under one token, for one account.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// The account alias every path starts with.
    pub account: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// Resolves the connection: flag, else environment, else the config file; the URL defaults
    /// to [`DEFAULT_URL`]. The token and the account are required.
    pub fn resolve(given: Given) -> Result<Self, ClientError> {
        let config = read_config(given.config.as_deref())?;
        let url = given
            .url
            .or(config.url)
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let base = Url::parse(&url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                ClientError::Usage(format!("--url: {url:?} is not an http:// or https:// URL"))
            })?;
        let token = given.token.or(config.token).ok_or_else(|| {
            ClientError::Usage(
                "no token: set RUNNER_TOKEN, put `token:` in the config file (mode 0600), or pass --token"
                    .into(),
            )
        })?;
        let account = given.account.or(config.account).ok_or_else(|| {
            ClientError::Usage(
                "no account: pass --account ALIAS, set RUNNER_ACCOUNT, or put `account:` in the config file"
                    .into(),
            )
        })?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|error| ClientError::Transport(format!("HTTP client: {error}")))?;
        Ok(Self {
            http,
            base,
            token,
            account,
        })
    }

    /// The URL of a path given as segments, each percent-encoded (an ID typed with a `/` or a
    /// `?` cannot reach another route).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(key, value)| (*key, value.as_str())));
        }
        url
    }

    /// A request with the bearer token.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends a JSON request; the answer's JSON (`null` for an empty body), or the server's error.
    pub async fn json(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = send(request).await?;
        let text = response.text().await.map_err(transport)?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|error| {
            ClientError::Transport(format!("the server's answer is not JSON: {error}"))
        })
    }
}

/// Sends a request; a non-2xx answer becomes [`ClientError::Server`].
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let (message, errors) = match serde_json::from_str::<Value>(&text) {
        Ok(body) if body["message"].is_string() => {
            let errors = body["errors"]
                .as_array()
                .map(|errors| {
                    errors
                        .iter()
                        .map(|error| {
                            (
                                error["field"].as_str().unwrap_or_default().to_owned(),
                                error["message"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                body["message"].as_str().unwrap_or_default().to_owned(),
                errors,
            )
        }
        _ => (text.trim().to_owned(), Vec::new()),
    };
    Err(ClientError::Server {
        status,
        message,
        errors,
    })
}

/// A failure to reach the server or read its answer, with the URL (reqwest's text names it).
pub fn transport(error: reqwest::Error) -> ClientError {
    // `without_url` would hide where; the URL never holds the token (it is a header).
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ClientError::Transport(text)
}
