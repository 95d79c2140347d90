//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.
//!
//! It is generated with utoipa from the handlers and the types they take and answer: each
//! handler carries its own `#[utoipa::path]` operation, and the router serves it at that path and
//! those methods (a test holds the document to the routes the router serves); the request and
//! response types derive `ToSchema` (in `runner-core` with its `utoipa` feature). No schema is
//! written out by hand here. What this module adds are the rules that hold for the API as a
//! whole, which a derive cannot see on one type ([`document`] lists them).

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use runner_core::engine::DistributeRequest;
use runner_core::engine::{RestartRequest, StartRequest};
use runner_core::inventory::InventoryHostSpec;
use runner_core::job::{Callback, JobSpec};
use runner_core::key_pair::KeyPairSpec;
use runner_core::schedule::{ScheduleSpec, ServiceAccountSpec};
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::{
    self, ExpiryRequest, deliveries, events, inventory, key_pairs, operations, run_log, schedules,
    service_accounts,
};
use crate::console;
use crate::error::ErrorBody;
use crate::extract::RequestBody;
use crate::response::JobResponse;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from the token file, or a JWT (HS256/RS256) with the account \
                         aliases in its scope claim",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Runner Job Service",
          description = "Create, run, control and schedule Ansible jobs.

**Webhooks (callbacks).** For each callback of a job, the server POSTs every event of an \
execution at or above the callback's level (DEBUG: every event; ERROR: errors, failed tasks, \
unreachable hosts, and the RESULT events; RESULT: status changes and the final per-host summary). \
The body is one `Event` (see the schema) as JSON. Headers: `Content-Type: application/json`; \
`Idempotency-Key: <executionId>:<callback index>:<sequence>` (the same on every attempt of one \
delivery: drop repeats); `X-Runner-Attempt: <n>` (from 1); and, when the server has a signing \
secret, `X-Runner-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under the secret>`. \
Any 2xx acknowledges the event; anything else (or no answer within the timeout) is retried with \
exponential backoff, up to a limit. Delivery is at least once, and in order per execution and \
callback: an event is sent only after the previous one was acknowledged (or given up). Redirects \
are not followed. Callback URLs that are or resolve to loopback, private or link-local addresses \
are refused (400 naming `callbacks[i].url`) unless the server allows them."),
    paths(api::create_job, api::list_jobs, api::get_job, api::update_job, api::delete_job,
          api::start_job, api::list_executions, api::find_executions, api::get_execution, events::list_events,
          run_log::get_log, deliveries::list_given_up_deliveries,
          api::restart_execution, api::stop_execution, api::kill_execution,
          service_accounts::create_service_account, service_accounts::list_service_accounts,
          service_accounts::get_service_account, service_accounts::delete_service_account,
          schedules::create_schedule, schedules::list_schedules, schedules::get_schedule,
          schedules::update_schedule, schedules::delete_schedule,
          key_pairs::create_key_pair, key_pairs::list_key_pairs, key_pairs::get_key_pair,
          key_pairs::delete_key_pair, key_pairs::distribute_key_pair,
          inventory::create_inventory_host, inventory::list_inventory_hosts,
          inventory::get_inventory_host, inventory::update_inventory_host,
          inventory::delete_inventory_host, api::healthz,
          operations::readyz, operations::metrics, serve_document,
          console::serve_page, console::serve_asset),
    // A job response's callbacks (see `show_job_as_serialized`); no derive refers to it.
    components(schemas(Callback, run_log::LogEnd)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "jobs", description = "Job definitions"),
         (name = "executions", description = "Runs of jobs and their control"),
         (name = "schedules", description = "Job schedules and the service accounts they run under"),
         (name = "keyPairs", description = "SSH key pairs per account: generated or imported, named by jobs, distributed to hosts"),
         (name = "inventory", description = "Each account's inventory hosts, in their groups: what `useDynamicInventory` jobs run on"),
                  (name = "operations", description = "Probes, metrics and this document"),
         (name = "console", description = "The web console (HTML, script and style; no token needed to load it)")),
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the API, as served.
///
/// On top of what utoipa generates, it applies the rules that hold for the API as a whole:
///
/// - A page's schema is named after what it holds (`JobPage`), and refers to the item's schema;
///   utoipa names generic schemas `Page_Job` and copies the item in.
/// - A flattened struct (`#[serde(flatten)]`, as a job response is) is one object, not an
///   `allOf`, so that it can refuse undocumented fields.
/// - A job response shows its definition as it serializes: every field an empty definition
///   writes is required, and callbacks are objects. (`JobInput`, the request body, requires
///   only `hosts` and also takes bare callback URLs.)
/// - The rules of fields that many bodies share (a private key is base64; a tag, a skipped tag
///   and a host pattern are one word; a key-pair name) are stated wherever such a field is, and
///   the rules between fields of a body (exactly one of `playbook` and `repository`; a key or a
///   key pair, not both) as `oneOf` and `not`.
/// - Every operation on an account documents the 400 of a malformed alias; parameters are
///   never `null`; a creating operation's 201 links to the operations that take what it made.
/// - Every object refuses undocumented fields (`additionalProperties: false`): request bodies
///   are read that way, nested objects included, and responses carry nothing else, so a test
///   that validates real responses catches a field the document lacks. A request body that takes
///   a response's read-only fields back lists them, marked `readOnly` (they are ignored).
pub fn document() -> Value {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document always serializes");
    name_pages(&mut document);
    visit_schemas(&mut document, &mut merge_flattened);
    refer_to_components(&mut document);
    show_job_as_serialized(&mut document);
    take_read_only_fields(&mut document);
    visit_schemas(&mut document, &mut refuse_undocumented_fields);
    visit_schemas(&mut document, &mut state_field_rules);
    state_rules_between_fields(&mut document);
    state_value_rules(&mut document);
    document_bad_aliases(&mut document);
    parameters_are_never_null(&mut document);
    link_created_resources(&mut document);
    document
}

/// The document as JSON text.
pub fn document_json() -> String {
    document().to_string()
}

/// The OpenAPI document of the API: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "This document", content_type = "application/json"),
        (status = 401, body = ErrorBody)))]
pub async fn serve_document() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(document_json).as_str();
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// The component names of the request bodies (what [`crate::body_schema`] checks bodies
/// against).
pub(crate) fn request_body_names() -> Vec<Cow<'static, str>> {
    request_bodies().into_iter().map(|(name, _)| name).collect()
}

/// The request bodies, each with the read-only fields of a response it takes back.
fn request_bodies() -> [(Cow<'static, str>, &'static [&'static str]); 9] {
    fn body<T: ToSchema + RequestBody>() -> (Cow<'static, str>, &'static [&'static str]) {
        (T::name(), T::READ_ONLY)
    }
    [
        body::<JobSpec>(),
        body::<StartRequest>(),
        body::<RestartRequest>(),
        body::<ExpiryRequest>(),
        body::<ScheduleSpec>(),
        body::<ServiceAccountSpec>(),
        body::<KeyPairSpec>(),
        body::<DistributeRequest>(),
        body::<InventoryHostSpec>(),
    ]
}

const SCHEMAS: &str = "#/components/schemas/";

/// Whether `schema` is an object with named properties (not a map, and not the `properties` of
/// a schema, which may well have a property called `properties`).
fn is_record(schema: &Map<String, Value>) -> bool {
    schema.get("type") == Some(&json!("object")) && schema.contains_key("properties")
}

fn component_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

fn components(document: &mut Value) -> &mut Map<String, Value> {
    document["components"]["schemas"]
        .as_object_mut()
        .expect("the document has component schemas")
}

/// Calls `visit` on every JSON object of the document, children first. Schemas are the objects
/// with `type`, `properties`, `allOf`, ...; the rules only touch those.
fn visit_schemas(value: &mut Value, visit: &mut impl FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                visit_schemas(child, visit);
            }
            visit(object);
        }
        Value::Array(items) => {
            for item in items {
                visit_schemas(item, visit);
            }
        }
        _ => {}
    }
}

/// `Page_Job` becomes `JobPage`, and every reference follows.
fn name_pages(document: &mut Value) {
    let schemas = std::mem::take(components(document));
    *components(document) = schemas
        .into_iter()
        .map(|(name, schema)| match name.strip_prefix("Page_") {
            Some(item) => (format!("{item}Page"), schema),
            None => (name, schema),
        })
        .collect();
    visit_schemas(document, &mut |schema| {
        if let Some(Value::String(target)) = schema.get_mut("$ref") {
            if let Some(item) = target.strip_prefix(&format!("{SCHEMAS}Page_")) {
                *target = format!("{SCHEMAS}{item}Page");
            }
        }
    });
}

/// An `allOf` of inline objects becomes one object with all their properties; the outer
/// description stays.
fn merge_flattened(schema: &mut Map<String, Value>) {
    let Some(Value::Array(parts)) = schema.get_mut("allOf") else {
        return;
    };
    let Some(objects) = parts
        .iter_mut()
        .map(inline_object)
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    for object in objects {
        if let Some(Value::Object(more)) = object.get_mut("properties").map(Value::take) {
            properties.extend(more);
        }
        if let Some(Value::Array(more)) = object.get_mut("required").map(Value::take) {
            required.extend(more);
        }
    }
    schema.remove("allOf");
    schema.insert("type".into(), json!("object"));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("properties".into(), Value::Object(properties));
}

/// The object a part of an `allOf` is: the part itself, or the one item of the `oneOf` that
/// utoipa wraps an inline schema in to give it a description.
fn inline_object(part: &mut Value) -> Option<&mut Value> {
    let object = match part.get("oneOf").and_then(Value::as_array) {
        Some(items) if items.len() == 1 => &mut part["oneOf"][0],
        _ => part,
    };
    (object.get("type") == Some(&json!("object"))).then_some(object)
}

/// An object schema written out where a component has exactly that schema (utoipa copies a
/// generic type's argument in) becomes a reference to the component.
fn refer_to_components(document: &mut Value) {
    let named: Vec<(String, Value)> = components(document)
        .iter()
        .filter(|(_, schema)| schema.as_object().is_some_and(is_record))
        .map(|(name, schema)| (name.clone(), schema.clone()))
        .collect();
    let mut refer = |schema: &mut Map<String, Value>| {
        for child in schema.values_mut() {
            refer_child(child, &named);
        }
    };
    // The components themselves stay; what they contain, and the operations, are visited.
    for schema in components(document).values_mut() {
        visit_schemas(schema, &mut refer);
    }
    if let Some(paths) = document.get_mut("paths") {
        visit_schemas(paths, &mut refer);
    }
}

fn refer_child(child: &mut Value, named: &[(String, Value)]) {
    let children: Vec<&mut Value> = match child {
        Value::Array(items) => items.iter_mut().collect(),
        other => vec![other],
    };
    for child in children {
        if let Some((name, _)) = named.iter().find(|(_, schema)| schema == child) {
            *child = component_ref(name);
        }
    }
}

/// [`JobSpec`] is the request body (`JobInput`): a client may leave out every field but `hosts`.
/// A job response shows the definition as it serializes: every field that an empty definition
/// writes is always there, and callbacks are objects (a request may also give bare URLs).
fn show_job_as_serialized(document: &mut Value) {
    let always_written: Vec<Value> = serde_json::to_value(JobSpec::default())
        .expect("a job definition serializes")
        .as_object()
        .expect("a job definition is an object")
        .keys()
        .map(|key| json!(key))
        .collect();
    let job = &mut components(document)[JobResponse::name().as_ref()];
    let required = job["required"]
        .as_array_mut()
        .expect("a job response has required fields");
    for key in always_written {
        if !required.contains(&key) {
            required.push(key);
        }
    }
    job["properties"]["callbacks"]["items"] = component_ref(&Callback::name());
}

/// Each request body that takes a response's read-only fields back lists them.
fn take_read_only_fields(document: &mut Value) {
    for (name, read_only) in request_bodies() {
        let properties = components(document)[name.as_ref()]["properties"]
            .as_object_mut()
            .expect("a request body has properties");
        for field in read_only {
            properties.insert(
                (*field).to_owned(),
                json!({
                    "readOnly": true,
                    "description": "A read-only field of the response, sent back: ignored."
                }),
            );
        }
    }
}

/// An IPv6 address (the text between the brackets): the full and the compressed forms, and
/// those that end in an IPv4 address, as the URL parsers read them. A macro, so that the URL patterns can `concat!` it.
macro_rules! ipv6_pattern {
    () => {
        concat!(
            r"(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}",
            r"|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}",
            r"|:(?:(?::[0-9A-Fa-f]{1,4}){1,7}|:)",
            // With an IPv4 address in its last 32 bits (`::ffff:127.0.0.1`).
            r"|(?:(?:[0-9A-Fa-f]{1,4}:){6}|::(?:[0-9A-Fa-f]{1,4}:){0,5}",
            r"|[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){0,4})",
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})",
        )
    };
}

/// Base64 as the server decodes it: the standard alphabet, padded, canonical, not empty.
const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$";

/// A private key: base64, or the mask a response shows (sent back, it keeps the stored key).
fn private_key_pattern() -> String {
    format!(
        "^(?:\\*{{8}}|{})$",
        BASE64_PATTERN.trim_start_matches('^').trim_end_matches('$')
    )
}

/// One word: no whitespace, control character or comma (`runner_core::job::is_plain_word`).
const WORD_PATTERN: &str = "^[^\\s,\\x00-\\x1f\\x7f-\\x9f]+$";

/// A key-pair name (`runner_core::schedule::is_service_account_alias`).
const NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// A login password: not empty, no control character (`runner_core::job::check_password`).
const PASSWORD_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]+$";

/// A clone URL as the executor takes it (`runner_exec_ansible`'s `check_url`): `https://host`
/// without credentials, `ssh://[user@]host`, or scp-like `user@host:path`; no space or control
/// character. `http://` and `file://` only where the operator allows local repositories, and
/// whether the host resolves to a public address (unless so allowed) is the network's answer:
/// the server checks those when the job is saved.
const REPOSITORY_URL_PATTERN: &str = concat!(
    r"^(?:[Ff][Ii][Ll][Ee]://[^\s\x00-\x1f\x7f-\x9f]+",
    r"|(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ss][Ss][Hh]://(?:[^\s\x00-\x1f\x7f-\x9f:@/?#]*@)?)",
    r"(?:\[",
    ipv6_pattern!(),
    r"\]|[^\s\x00-\x1f\x7f-\x9f/?#@:\[\]-][^\s\x00-\x1f\x7f-\x9f/?#@:\[\]]*)",
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?)?",
    r"(?:[/?#][^\s\x00-\x1f\x7f-\x9f]*)?",
    r"|[A-Za-z0-9._][A-Za-z0-9._-]*@[A-Za-z0-9._][A-Za-z0-9._-]*:",
    r"(?:/[^\s\x00-\x1f\x7f-\x9f:/]|[^\s\x00-\x1f\x7f-\x9f:/])[^\s\x00-\x1f\x7f-\x9f:]*)$",
);

/// A callback: an `http://` or `https://` URL (`JobSpec::validate`). Where it leads is checked
/// when the job is saved (`runner_core::net`), unless the operator allows private callbacks.
/// The host is a DNS name whose last label starts with a letter, a dotted IPv4 address or an
/// IPv6 address in brackets, as the WHATWG URL parser takes them; a port, when given, is a port; the rest is RFC 3986.
const CALLBACK_URL_PATTERN: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"(?:(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?|\[",
    ipv6_pattern!(),
    r"\]",
    // Octets without a leading zero, which the parser would read as octal.
    r"|(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})",
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    // Path, query and fragment in RFC 3986 characters.
    r"(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?",
    r"(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?",
    r"(?:#(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
);

/// The shape of a cron expression: five fields (the server parses them).
const CRON_SHAPE_PATTERN: &str = r"^\s*\S+(?:\s+\S+){4}\s*$";

/// The shape of an ISO-8601 instant: a date, then a time (the server parses it).
const DATE_SHAPE_PATTERN: &str = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}";

/// A branch or tag: one word, not starting with `-`.
const BRANCH_PATTERN: &str = r"^[^\s,\x00-\x1f\x7f-\x9f-][^\s,\x00-\x1f\x7f-\x9f]*$";

/// A playbook path inside the repository: not blank or absolute, no `..` segment, no NUL
/// (`Repository::validate`): the first segment starts with neither a space nor a separator,
/// and no segment is exactly `..`.
const PLAYBOOK_PATH_PATTERN: &str = concat!(
    r"^(?:[^\s/\\\x00.][^/\\\x00]*|\.[^/\\\x00.][^/\\\x00]*|\.|\.\.[^/\\\x00]+)",
    r"(?:[/\\](?:[^/\\\x00.][^/\\\x00]*|\.[^/\\\x00.][^/\\\x00]*|\.|\.\.[^/\\\x00]+)?)*$",
);

/// An ansible group name (`runner_core::job::is_group_name`).
const GROUP_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// The rules of fields by name, wherever a record has such a field.
fn state_field_rules(schema: &mut Map<String, Value>) {
    if !is_record(schema) {
        return;
    }
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        let Value::Object(property) = property else {
            continue;
        };
        if property.get("readOnly") == Some(&Value::Bool(true)) {
            continue;
        }
        match name.as_str() {
            "sshPrivateKey" => {
                property.insert("pattern".into(), json!(private_key_pattern()));
            }
            "sshKeyPair" => {
                property.insert("pattern".into(), json!(NAME_PATTERN));
            }
            "sshPassword" => {
                property.insert("pattern".into(), json!(PASSWORD_PATTERN));
            }
            "groups" => {
                if let Some(Value::Object(items)) = property.get_mut("items") {
                    items.insert("pattern".into(), json!(GROUP_PATTERN));
                }
                property.insert("uniqueItems".into(), json!(true));
            }
            "playbookTags" | "skipTags" | "limit" => {
                if let Some(Value::Object(items)) = property.get_mut("items") {
                    items.insert("pattern".into(), json!(WORD_PATTERN));
                }
                if name == "limit" {
                    property.insert("minItems".into(), json!(1));
                }
            }
            _ => {}
        }
    }
}

/// Adds a rule between the fields of a record, under its `allOf`: where
/// [`crate::body_schema`] finds the rules it leaves to the domain's wording.
fn add_rule(record: &mut Map<String, Value>, rule: Value) {
    match record
        .entry("allOf")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(rules) => rules.push(rule),
        _ => unreachable!("allOf is an array"),
    }
}

/// A field that is there and not `null` (what the domain reads as given).
fn given(field: &str) -> Value {
    json!({ "required": [field], "properties": { field: { "not": { "type": "null" } } } })
}

/// Exactly one of several ways, each a set of fields given together, the fields of the other
/// ways absent or `null`.
fn one_way_of(ways: &[&[&str]]) -> Value {
    let branches: Vec<Value> = ways
        .iter()
        .map(|way| {
            let mut parts: Vec<Value> = way.iter().map(|field| given(field)).collect();
            for other in ways.iter().flat_map(|other| other.iter()) {
                if !way.contains(other) {
                    parts.push(json!({ "not": given(other) }));
                }
            }
            json!({ "allOf": parts })
        })
        .collect();
    json!({ "oneOf": branches })
}

/// `not` both of two fields, as a JSON Schema: both given and neither `null`.
fn not_both(first: &str, second: &str) -> Value {
    json!({ "not": {
        "required": [first, second],
        "properties": { first: { "not": { "type": "null" } }, second: { "not": { "type": "null" } } }
    }})
}

/// The rules between the fields of one body, where the domain checks them too
/// (`JobSpec::validate`, `validate_hosts`); the server leaves their wording to the domain.
fn state_rules_between_fields(document: &mut Value) {
    let schemas = components(document);
    let job = schemas[JobSpec::name().as_ref()]
        .as_object_mut()
        .expect("a job definition is a record");
    add_rule(job, one_way_of(&[&["playbook"], &["repository"]]));
    for component in [
        JobSpec::name(),
        "Host".into(),
        InventoryHostSpec::name(),
        StartRequest::name(),
        RestartRequest::name(),
    ] {
        let record = schemas[component.as_ref()]
            .as_object_mut()
            .expect("a record");
        add_rule(record, not_both("sshPrivateKey", "sshKeyPair"));
    }
}

/// The rules of one value that a derive cannot state: the fields of a repository, the
/// expression of a trigger by its type, and an imported key. Formats the document names itself
/// (`cron`, `future-date-time`, `openssh-private-key`) are described where they are used; the
/// server checks them (`runner_core::schedule::parse_cron`, `parse_date`,
/// `runner_core::key_pair`).
fn state_value_rules(document: &mut Value) {
    let schemas = components(document);
    let repository = &mut schemas["Repository"]["properties"];
    repository["url"]["pattern"] = json!(REPOSITORY_URL_PATTERN);
    repository["url"]["maxLength"] = json!(2048);
    repository["branch"]["pattern"] = json!(BRANCH_PATTERN);
    repository["defaultPlaybook"]["pattern"] = json!(PLAYBOOK_PATH_PATTERN);

    let callback = &mut schemas["CallbackInput"]["oneOf"];
    callback[0]["pattern"] = json!(CALLBACK_URL_PATTERN);
    callback[1]["properties"]["url"]["pattern"] = json!(CALLBACK_URL_PATTERN);

    let trigger = schemas["Trigger"]
        .as_object_mut()
        .expect("a trigger is a record");
    add_rule(
        trigger,
        json!({ "oneOf": [
            { "properties": {
                "type": { "const": "cron" },
                "expression": { "format": "cron", "pattern": CRON_SHAPE_PATTERN, "description":
                    "5-field Unix cron (minute hour day-of-month month day-of-week), in UTC" } } },
            { "properties": {
                "type": { "const": "date" },
                "expression": { "format": "future-date-time", "pattern": DATE_SHAPE_PATTERN, "description":
                    "An ISO-8601 instant (UTC when no offset is given) after the request" } } },
        ]}),
    );

    // Under "trigger" or under "type", not both (`ScheduleSpec::validate`).
    let schedule = schemas[ScheduleSpec::name().as_ref()]
        .as_object_mut()
        .expect("a schedule request is a record");
    add_rule(schedule, one_way_of(&[&["trigger"], &["type"]]));
    // A repository's credentials: a username with its password, a key, or a key pair.
    let credentials = schemas["Credentials"]
        .as_object_mut()
        .expect("credentials are a record");
    add_rule(
        credentials,
        one_way_of(&[
            &["username", "password"],
            &["sshPrivateKey"],
            &["sshKeyPair"],
        ]),
    );
    // At most one way in for the distribution run (`DistributeRequest`).
    let distribute = schemas[DistributeRequest::name().as_ref()]
        .as_object_mut()
        .expect("a distribution request is a record");
    for (first, second) in [
        ("sshPrivateKey", "sshKeyPair"),
        ("sshPrivateKey", "sshPassword"),
        ("sshKeyPair", "sshPassword"),
    ] {
        add_rule(distribute, not_both(first, second));
    }

    // An imported key: an OpenSSH private key file, whose own type is its type.
    let key_pair = schemas[KeyPairSpec::name().as_ref()]
        .as_object_mut()
        .expect("a key-pair request is a record");
    key_pair["properties"]["privateKey"]["format"] = json!("openssh-private-key");
    key_pair["properties"]["privateKey"]["description"] = json!(
        "Base64 of an existing unencrypted OpenSSH private key file (ed25519, or RSA of at least \
         3072 bits) to import instead of generating one; write-only. Not with `type`."
    );
    add_rule(key_pair, not_both("privateKey", "type"));
}

/// Where the identity a created resource answers with is used next: (the creating operation, the
/// operations that take it, the path parameter, where it is in the response). Every operation
/// keeps the account and the job of its own path.
const LINKS: &[(&str, &[&str], &str, &str)] = &[
    (
        "createJob",
        &[
            "getJob",
            "updateJob",
            "deleteJob",
            "startJob",
            "listExecutions",
            "createSchedule",
            "listSchedules",
        ],
        "jobId",
        "$response.body#/id",
    ),
    (
        "startJob",
        &[
            "getExecution",
            "stopExecution",
            "killExecution",
            "restartExecution",
            "listExecutionEvents",
            "getExecutionLog",
            "listGivenUpDeliveries",
        ],
        "executionId",
        "$response.body#/id",
    ),
    (
        "createSchedule",
        &["getSchedule", "updateSchedule", "deleteSchedule"],
        "scheduleId",
        "$response.body#/id",
    ),
    (
        "createServiceAccount",
        &["getServiceAccount", "deleteServiceAccount"],
        "serviceAccountAlias",
        "$response.body#/alias",
    ),
    (
        "createKeyPair",
        &["getKeyPair", "deleteKeyPair", "distributeKeyPair"],
        "keyPairName",
        "$response.body#/name",
    ),
];

/// The links of [`LINKS`] on each creating operation's 201: a client (and schemathesis) learns
/// from the document how one call's answer feeds the next.
fn link_created_resources(document: &mut Value) {
    let mut parameters_of: std::collections::HashMap<String, Vec<String>> = Default::default();
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            let names = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "path")
                .filter_map(|parameter| parameter["name"].as_str().map(str::to_owned))
                .collect();
            if let Some(id) = operation["operationId"].as_str() {
                parameters_of.insert(id.to_owned(), names);
            }
        }
    }
    for item in document["paths"]
        .as_object_mut()
        .expect("paths")
        .values_mut()
    {
        for operation in item.as_object_mut().expect("a path item").values_mut() {
            let Some(id) = operation["operationId"].as_str().map(str::to_owned) else {
                continue;
            };
            let Some((_, targets, parameter, source)) =
                LINKS.iter().find(|(creator, ..)| *creator == id)
            else {
                continue;
            };
            let own = parameters_of.get(&id).cloned().unwrap_or_default();
            let mut links = Map::new();
            for target in *targets {
                let mut parameters = Map::new();
                for name in parameters_of.get(*target).into_iter().flatten() {
                    let value = if name == parameter {
                        (*source).to_owned()
                    } else if own.contains(name) {
                        format!("$request.path.{name}")
                    } else {
                        continue;
                    };
                    parameters.insert(name.clone(), json!(value));
                }
                links.insert(
                    (*target).to_owned(),
                    json!({ "operationId": target, "parameters": parameters }),
                );
            }
            operation["responses"]["201"]["links"] = Value::Object(links);
        }
    }
}

/// A header or query value is text, never `null`: utoipa writes an optional parameter as
/// nullable.
fn parameters_are_never_null(document: &mut Value) {
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(Value::Array(parameters)) = operation.get_mut("parameters") else {
            continue;
        };
        for parameter in parameters {
            if let Some(Value::Array(types)) = parameter["schema"].get_mut("type") {
                types.retain(|kind| kind != "null");
                if types.len() == 1 {
                    parameter["schema"]["type"] = types[0].clone();
                }
            }
        }
    }
}

/// A malformed account alias is 400 on every operation that names an account.
fn document_bad_aliases(document: &mut Value) {
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    for item in paths.values_mut() {
        let Value::Object(operations) = item else {
            continue;
        };
        for operation in operations.values_mut() {
            let names_account = operation["parameters"]
                .as_array()
                .is_some_and(|parameters| {
                    parameters
                        .iter()
                        .any(|parameter| parameter["name"] == "alias" && parameter["in"] == "path")
                });
            let Some(Value::Object(responses)) = operation.get_mut("responses") else {
                continue;
            };
            if names_account && !responses.contains_key("400") {
                responses.insert(
                    "400".into(),
                    json!({
                        "description": "A malformed account alias, or a bad parameter",
                        "content": { "application/json": { "schema": component_ref(&ErrorBody::name()) } }
                    }),
                );
            }
        }
    }
}

fn refuse_undocumented_fields(schema: &mut Map<String, Value>) {
    if is_record(schema) && !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), Value::Bool(false));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn refs(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(target)) = object.get("$ref") {
                    found.insert(target.clone());
                }
                object.values().for_each(|child| refs(child, found));
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_names_a_component() {
        let mut document = document();
        let mut found = BTreeSet::new();
        refs(&document, &mut found);
        let names: BTreeSet<String> = components(&mut document)
            .keys()
            .map(|name| format!("{SCHEMAS}{name}"))
            .collect();
        let dangling: Vec<&String> = found.difference(&names).collect();
        assert!(dangling.is_empty(), "{dangling:?}");
    }

    #[test]
    fn every_request_body_is_known_with_its_read_only_fields() {
        let document = document();
        let mut bodies = BTreeSet::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                refs(&operation["requestBody"], &mut bodies);
            }
        }
        let known: BTreeSet<String> = request_bodies()
            .iter()
            .map(|(name, _)| format!("{SCHEMAS}{name}"))
            .collect();
        assert_eq!(bodies, known);
    }

    #[test]
    fn no_flattened_struct_is_left_as_all_of() {
        let mut document = document();
        let mut flattened = Vec::new();
        visit_schemas(&mut document, &mut |schema| {
            if let Some(Value::Array(parts)) = schema.get("allOf") {
                flattened.extend(
                    parts
                        .iter()
                        .filter(|part| {
                            part.as_object().is_some_and(is_record)
                                || part["oneOf"][0].as_object().is_some_and(is_record)
                        })
                        .cloned(),
                );
            }
        });
        assert!(flattened.is_empty(), "{flattened:?}");
    }
}
