//! # runner-http
//!
//! The Runner Job Service over HTTP (axum), and the `runner` server binary.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use runner_core::prelude::*;
//! use runner_core::testkit::{Script, ScriptedExecutor};
//! use runner_http::{ApiConfig, TokenFile, router};
//! use runner_store_memory::MemoryStore;
//!
//! let engine = Engine::builder()
//!     .store(MemoryStore::new())
//!     .executor(ScriptedExecutor::new(Script::Succeed))
//!     .build();
//! let tokens = TokenFile::parse("admin-token-0123456789 *").expect("valid token file");
//! let app = router(engine.clone(), ApiConfig::new(Arc::new(tokens)));
//! let running = engine.start().with_scheduler();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Routes
//!
//! Served at the root (see the project's DECISIONS on the specification). `{alias}` is an
//! account alias (1 to 32 of `A-Z a-z 0-9 - _`), IDs are UUIDs.
//!
//! | method and path | success | body in | body out |
//! |---|---|---|---|
//! | `POST /jobs/{alias}?immediate=bool` | 201 + `Location` | job definition | Job |
//! | `GET /jobs/{alias}?page&size` | 200 | | page of Jobs, newest first |
//! | `GET /jobs/{alias}/{jobId}` | 200 | | Job |
//! | `PUT /jobs/{alias}/{jobId}?immediate=bool` | 200 | job definition | Job |
//! | `DELETE /jobs/{alias}/{jobId}` | 204 (409 while an execution is active) | | |
//! | `POST /jobs/{alias}/{jobId}/start` | 201 + `Location` | optional `{hosts, sshPrivateKey, sshKeyPair}` and launch options `{properties, playbookTags, skipTags, limit, check, diff}` | Execution |
//! | `GET /jobs/{alias}/{jobId}/executions?page&size` | 200 | | page of Executions, newest first |
//! | `GET /jobs/{alias}/{jobId}/executions/{executionId}` | 200 | | Execution |
//! | `GET .../executions/{executionId}/events?after&size` | 200 | | `{"events", "lastSequence", "hasMore"}`; with `Accept: text/event-stream`, a live SSE stream (resumes after `Last-Event-ID`) |
//! | `GET .../executions/{executionId}/deliveries?page&size` | 200 | | page of given-up webhook deliveries (`callback`, `url`, `sequence`, `attempts`, `lastError`, `event`) |
//! | `POST .../executions/{executionId}/restart` | 200 (409 unless FAILURE) | optional `{hosts, sshPrivateKey}` | Execution |
//! | `POST .../executions/{executionId}/stop` | 200 | optional `{"expiryDuration": seconds}` | Execution |
//! | `POST .../executions/{executionId}/kill` | 200 | optional `{"expiryDuration": seconds}` | Execution |
//! | `POST /serviceAccounts/{alias}` | 201 + `Location` (409 if the name is taken) | `{alias, description}` | ServiceAccount |
//! | `GET /serviceAccounts/{alias}?page&size` | 200 | | page of ServiceAccounts, newest first |
//! | `GET /serviceAccounts/{alias}/{serviceAccountAlias}` | 200 | | ServiceAccount |
//! | `DELETE /serviceAccounts/{alias}/{serviceAccountAlias}` | 204 (409 while a schedule uses it) | | |
//! | `POST /jobs/{alias}/{jobId}/schedules` | 201 + `Location` | schedule definition | Schedule |
//! | `GET /jobs/{alias}/{jobId}/schedules?page&size` | 200 | | page of Schedules, newest first |
//! | `GET /jobs/{alias}/{jobId}/schedules/{scheduleId}` | 200 | | Schedule |
//! | `PUT /jobs/{alias}/{jobId}/schedules/{scheduleId}` | 200 | schedule definition | Schedule |
//! | `DELETE /jobs/{alias}/{jobId}/schedules/{scheduleId}` | 204 | | |
//! | `POST /keyPairs/{alias}` | 201 + `Location` (409 if the name is taken) | `{name, type, description}` or with `privateKey` (import) | KeyPair (never the private key) |
//! | `GET /keyPairs/{alias}?page&size` | 200 | | page of KeyPairs, by name |
//! | `GET /keyPairs/{alias}/{keyPairName}` | 200 | | KeyPair |
//! | `DELETE /keyPairs/{alias}/{keyPairName}` | 204 (409 naming the jobs that use it) | | |
//! | `POST /keyPairs/{alias}/{keyPairName}/distribute` | 201 + `Location` of the execution | `{hosts, user, remove, authorizedKeysFile, sshPrivateKey \| sshKeyPair}` | Execution |
//! | `GET /openapi.json` | 200 | | the OpenAPI 3.1 document |
//! | `GET /healthz` (no auth) | 200 `{"status":"ok"}`, 503 when the store does not answer | | |
//! | `GET /readyz` (no auth) | 200 ready, 503 with reasons (draining, store, executor) | | `{status, reasons}` |
//! | `GET /metrics` (a token for every account) | 200 Prometheus text; 404 with `--metrics-listen` | | text |
//!
//! A **Job** is the job's own camelCase fields (`id`, `accountAlias`, `description`,
//! `executionTtl`, `repository`, `hosts`, `properties`, `callbacks`, `status`, `createdTime`,
//! `lastUpdatedTime`, ...) plus `links`: `[{"ref": "self", "id", "href": "/jobs/{alias}/{id}",
//! "verbs": ["GET", "PUT", "DELETE"]}]`. With `?immediate=true` a second link, `"ref":
//! "execution"`, points at the execution that was started. An **Execution** has the snake_case
//! fields of the documents (`execution_id`, `job_id`, `account_alias`, `status`, `start`, `end`,
//! `timers`, `repository_log`, `failed_hosts`, `is_vpn_established`, and `message` when there is a
//! reason to give). Pages are `{"totalSize", "page", "size", "results"}`; `page` from 0, `size`
//! 1 to 100 (default 100).
//!
//! **Schedules.** A **ServiceAccount** is `{alias, accountAlias, description, createdTime}`; its
//! name is 1 to 64 of `A-Z a-z 0-9 - _ .`, unique within the account. A schedule definition is
//! `{"description", "serviceAccountAlias", "trigger": {"type": "cron" | "date", "expression"}}`,
//! with the trigger under `"trigger"` or under `"type"` (the documents' example), not both. Cron
//! is 5-field Unix cron in UTC; a date is an ISO-8601 instant in the future. A **Schedule** is
//! `{id, scheduleId, jobId, accountAlias, description, serviceAccountAlias, trigger,
//! nextFireTime, lastFireTime, createdTime, lastUpdatedTime}`; `nextFireTime` is `null` once a
//! date schedule has fired. A bad trigger is 400 naming `trigger.expression` (or
//! `type.expression`); an unknown service account is 400 naming `serviceAccountAlias`.
//! Deleting a job deletes its schedules. `runner serve` fires due schedules on every node; the
//! store makes each due time one execution.
//!
//! **Secrets** (repository password, SSH private keys) are write-only: responses show
//! `"********"` where one is set, and an update that sends `"********"` back keeps the stored
//! value. The trace layer logs method, path, status and latency only: never headers (the
//! `Authorization` header is also marked sensitive) nor bodies.
//!
//! ## Authentication
//!
//! Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>`. An
//! [`Authenticator`] maps the token to a [`Scope`]: every account, or a set of aliases.
//!
//! - [`TokenFile`]: one token a line, `TOKEN *` or `TOKEN ALIAS[,ALIAS...]`; `#` starts a comment
//!   line; tokens of 16 characters at least. Tokens are held and compared as SHA-256 digests.
//! - [`JwtAuthenticator`]: HS256 (shared secret) or RS256 (PEM public key). `exp` is required and
//!   checked (30 s leeway). The scope sits in a claim, `aliases` by default: `"*"`, an alias, or a
//!   list of aliases.
//!
//! Missing or invalid token: 401 (with `WWW-Authenticate: Bearer`). A valid token whose scope does
//! not include the path's alias: 403. A job or execution that exists under another account is 404
//! under this account's path, so a token for one account cannot learn of another's jobs. The same
//! holds for schedules and service accounts.
//!
//! ## Errors
//!
//! Every error is JSON: `{"message": "..."}`, and for 400 also `"errors": [{"field",
//! "message"}]` with every wrong field at once (`hosts[0].id`, `executionTtl`, `size`,
//! `expiryDuration`, `accountAlias`, `trigger.expression`, `serviceAccountAlias`,
//! `callbacks[1].url`, `after`, `Last-Event-ID`, or `""` for the
//! body as a whole, e.g. truncated JSON).
//!
//! | status | when |
//! |---|---|
//! | 400 | invalid body (wrong type, unknown field, broken rule), bad `page`/`size`/`immediate`, malformed alias |
//! | 401 / 403 | see Authentication |
//! | 404 | no such job, execution, schedule or service account in this account, a malformed ID or name, an unknown route |
//! | 405 | known path, wrong method |
//! | 409 | a state conflict: delete with an active execution, restart of a non-FAILURE, stop of an ended one, a service account name taken or still in use |
//! | 413 | body over the limit (1 MiB by default, [`ApiConfig::body_limit`]) |
//! | 415 | a body whose `Content-Type` is not exactly `application/json` (parameters such as `charset` allowed; `application/*+json` refused) |
//! | 503 | the store is unavailable |
//!
//! Bad input never causes a 500; a panic (a bug) is caught and answered with a bare 500.
//!
//! ## Configuration of the `runner` binary
//!
//! `runner serve` takes flags, each with an environment fallback:
//!
//! | flag | env | default |
//! |---|---|---|
//! | `--listen ADDR` | `RUNNER_LISTEN` | `127.0.0.1:8080` |
//! | `--store STORE` | `RUNNER_STORE` | `sled:./runner-data`; also `postgres://...` and `memory` |
//! | `--token-file PATH` | `RUNNER_TOKEN_FILE` | `<data dir>/tokens`, created with a random `TOKEN *` line (mode 0600) when absent |
//! | `--jwt-secret-file PATH` | `RUNNER_JWT_SECRET_FILE` | JWT mode, HS256, with the shared secret read from this file |
//! | `--jwt-public-key PATH` | `RUNNER_JWT_PUBLIC_KEY` | JWT mode, RS256, with this PEM RSA public key |
//! | `--jwt-aliases-claim NAME` | `RUNNER_JWT_ALIASES_CLAIM` | `aliases` |
//! | `--jwt-issuer ISS` / `--jwt-audience AUD` | `RUNNER_JWT_ISSUER` / `RUNNER_JWT_AUDIENCE` | not checked |
//! | `--concurrency N` | `RUNNER_CONCURRENCY` | 4 executions at once on this node |
//! | `--allow-local-repositories` | `RUNNER_ALLOW_LOCAL_REPOSITORIES` | off: `file://` and `http://` repositories, and repository hosts that are not globally reachable, refused |
//! | `--work-root PATH` | `RUNNER_WORK_ROOT` | `./runner-work`: each node a directory of its own in it (removing what nodes that are gone left), each run a workspace in that, removed when the run ends |
//! | `--bwrap PATH` | `RUNNER_BWRAP` | `bwrap` on `PATH`: the sandbox every git and ansible-playbook of a run starts in |
//! | `--sandbox-user NAME` | `RUNNER_SANDBOX_USER` | `nobody` when the server runs as root, else the server's own user |
//! | `--unsafe-no-sandbox` | `RUNNER_UNSAFE_NO_SANDBOX` | off: a server that cannot make the sandbox refuses to start; with it, runs are not sandboxed at all (logged as an error) |
//! | `--log-format json\|text` | `RUNNER_LOG_FORMAT` | `text`, on stderr; filter with `RUST_LOG` (default `info`) |
//! | `--body-limit BYTES` | `RUNNER_BODY_LIMIT` | 1048576 |
//! | `--allow-private-callbacks` | `RUNNER_ALLOW_PRIVATE_CALLBACKS` | off: callbacks to addresses that are not globally reachable (loopback, private, link-local, ...), and to names that do not resolve, refused |
//! | `--callback-signing-secret-file PATH` | `RUNNER_CALLBACK_SIGNING_SECRET_FILE` | webhook POSTs unsigned |
//! | `--callback-max-attempts N` | `RUNNER_CALLBACK_MAX_ATTEMPTS` | 12 |
//! | `--callback-retry-base-ms MS` / `--callback-retry-max-ms MS` | `RUNNER_CALLBACK_RETRY_BASE_MS` / `RUNNER_CALLBACK_RETRY_MAX_MS` | 1000 / 600000 |
//! | `--callback-timeout-ms MS` | `RUNNER_CALLBACK_TIMEOUT_MS` | 10000 |
//!
//! **Live feed.** `runner serve` runs the webhook delivery of `runner-webhook` beside the engine,
//! on the same store (see the project README, "Live feed"). At shutdown the open event streams
//! end first ([`LiveFeeds::close`]), then the engine stops, then the delivery.
//!
//! **Tokens.** Without `--token-file` and without a JWT option, the server uses `tokens` in the
//! sled data directory (`./runner-tokens` for the memory and PostgreSQL stores), creating it on
//! first start with one random 256-bit admin token (`TOKEN *`, mode 0600). Only the file's path
//! is printed, never the token. The JWT options and `--token-file` exclude each other.
//!
//! **JWT mode.** The HS256 secret is read from a file rather than taken on the command line, so
//! that it never shows in a process listing or an environment dump. Tokens must carry `exp`;
//! the claim named by `--jwt-aliases-claim` holds `"*"`, an alias, or a list of aliases.
//!
//! **Executor and stores** are cargo features of this crate, all on by default: `sled`,
//! `postgres` and `ansible`. The executor is `runner_exec_ansible::AnsibleExecutor` (its
//! `ansible-playbook` is found on `PATH`, else `./.venv/bin`); when it is missing the server
//! still starts, logs a warning, and each execution fails saying why. Runs start in a bubblewrap
//! sandbox that hides the data directory, the token file and the secret files named on the
//! command line ([`server::executor::hidden_paths`]); the server checks at start-up that it can
//! make one, and refuses to start when it cannot (unless `--unsafe-no-sandbox`). Built without `ansible`,
//! [`server::executor::NoExecutor`] fails every run with a message naming the feature.
//! Every store of the workspace implements [`runner_core::store::ScheduleStore`], which the
//! router requires.
//!
//! Logs: stdout carries only the operator lines (token file path, listening address); log lines
//! go to stderr. SIGINT or SIGTERM stops accepting connections, lets open requests finish, then
//! shuts the engine down (running executions get the engine's shutdown grace, then are handed
//! back to PENDING).
//!
//! ## Crate layout
//!
//! - [`router()`]: the routes and layers; [`api`]: the handlers (schedules in
//!   [`api::schedules`] and [`api::service_accounts`], the live feed in [`api::events`]); [`extract`]: path, query and body
//!   extractors; [`error`]: [`ApiError`] and its JSON body; [`response`]: job links;
//!   [`auth`]: [`Authenticator`], [`TokenFile`], [`JwtAuthenticator`]; [`openapi`]: the document.
//! - [`server`]: the binary's command line, the run-time store choice
//!   ([`server::AnyStore`]), the token bootstrap and the serve loop.

pub mod api;
pub mod auth;
pub mod body_schema;
pub mod client;
pub mod console;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod response;
mod router;
pub mod server;
pub mod telemetry;

pub use api::events::LiveFeeds;
pub use auth::{Authenticator, JwtAuthenticator, Scope, TokenFile};
pub use error::ApiError;
pub use router::{ApiConfig, STORE_PATIENCE, router};
