//! The client subcommands of the `runner` binary: jobs, executions, run logs, schedules and
//! service accounts of a Runner server, over its HTTP API only (the same routes any client
//! uses; nothing reads a store).
//!
//! The server URL, the token and the account come from `--url`/`--token`/`--account`, else
//! `RUNNER_URL`/`RUNNER_TOKEN`/`RUNNER_ACCOUNT`, else a config file (`--config`, `RUNNER_CONFIG`,
//! default `~/.config/runner/config.yaml`) with `url:`, `token:` and `account:`, which must be
//! private to its owner (mode 0600). The URL defaults to `http://127.0.0.1:8080`.
//!
//! An execution is named `JOB/EXECUTION` (its job's ID, a slash, its own ID), as `runner start`
//! and `runner executions` print it, or by its ID with `--job JOB`.
//!
//! Exit status: 0 on success; 1 when the server refused (its status, message and every field
//! it named are printed to stderr as it gave them) or could not be reached, and for
//! `start --follow` and `logs --follow` when the run ended other than SUCCESS; 2 for a usage
//! error.

pub mod connection;
pub mod follow;
pub mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use connection::{Api, ClientError, Given};
use output::Output;

/// How to reach the server, shared by every client subcommand.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// The server's base URL [default: the config file's `url`, else http://127.0.0.1:8080].
    #[arg(long, env = "RUNNER_URL", global = true)]
    pub url: Option<String>,
    /// The bearer token. Prefer RUNNER_TOKEN or the config file: a flag shows in process
    /// listings.
    #[arg(long, env = "RUNNER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The account alias.
    #[arg(long, short = 'a', env = "RUNNER_ACCOUNT", global = true)]
    pub account: Option<String>,
    /// The config file (YAML with `url`, `token`, `account`; mode 0600)
    /// [default: ~/.config/runner/config.yaml when it exists].
    #[arg(long, env = "RUNNER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// How to print what the server answered.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// The client subcommands (flattened into `runner`'s own).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Jobs: create, list, get, update, delete.
    Job(JobArgs),
    /// Starts a job; with --follow, prints the run's output as it happens and exits 0 only
    /// when the run ends in SUCCESS.
    Start(StartArgs),
    /// Lists a job's executions, newest first.
    Executions(ExecutionsArgs),
    /// Shows one execution, with its per-host recap.
    Status(ExecutionArgs),
    /// Prints an execution's run log (ansible-playbook's output); --follow until the run ends.
    Logs(LogsArgs),
    /// Stops an execution gracefully.
    Stop(ExpiryArgs),
    /// Kills an execution.
    Kill(ExpiryArgs),
    /// Runs a FAILURE execution again.
    Restart(RestartArgs),
    /// A job's schedules: create, list, get, update, delete.
    Schedule(ScheduleArgs),
    /// Service accounts (the identities schedules run under): create, list, get, delete.
    ServiceAccount(ServiceAccountArgs),
    /// The account's inventory hosts (what useDynamicInventory jobs run on): add, list, get,
    /// update, delete.
    Host(HostArgs),
}

/// `runner job ...`.
#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: JobCommand,
}

/// The job subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Creates a job from a YAML or JSON file.
    Create(JobFileArgs),
    /// Lists the account's jobs, newest first.
    List(PageArgs),
    /// Shows a job.
    Get {
        /// The job's ID.
        job: String,
    },
    /// Replaces a job's definition with a file's (`"********"` keeps a stored secret).
    Update {
        /// The job's ID.
        job: String,
        /// The new definition.
        #[command(flatten)]
        file: JobFileArgs,
    },
    /// Deletes a job (refused while an execution is active).
    Delete {
        /// The job's ID.
        job: String,
    },
}

/// A job definition file.
#[derive(Debug, Args)]
pub struct JobFileArgs {
    /// The definition, YAML or JSON, as the API takes it; `playbookFile: PATH` (relative to the
    /// file) is read and sent base64-encoded as `playbook`.
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// A playbook file to send as the job's inline `playbook` (base64-encoded for you).
    #[arg(long)]
    playbook: Option<PathBuf>,
    /// Also start an execution at once.
    #[arg(long)]
    immediate: bool,
}

/// `--page` and `--size`.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The page, from 0.
    #[arg(long)]
    page: Option<u32>,
    /// Items a page, 1 to 100.
    #[arg(long)]
    size: Option<u32>,
}

impl PageArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(page) = self.page {
            query.push(("page", page.to_string()));
        }
        if let Some(size) = self.size {
            query.push(("size", size.to_string()));
        }
        query
    }
}

/// `runner start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The job's ID.
    job: String,
    /// Run on this host only (repeatable): a host of the job keeps its variables, another
    /// name is sent bare.
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Print the run's output as it happens; exit 0 only when it ends in SUCCESS.
    #[arg(long)]
    follow: bool,
}

/// `runner executions`.
#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The job's ID.
    job: String,
    #[command(flatten)]
    page: PageArgs,
}

/// An execution on the command line.
#[derive(Debug, Args)]
pub struct ExecutionArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The execution: `JOB/EXECUTION`, or its ID with --job.
    execution: String,
    /// The execution's job, when EXECUTION is the execution's ID alone.
    #[arg(long)]
    job: Option<String>,
}

impl ExecutionArgs {
    /// The API path segments of the execution.
    fn segments<'a>(&'a self, account: &'a str) -> Result<Vec<&'a str>, ClientError> {
        let (job, execution) = match (self.execution.split_once('/'), &self.job) {
            (Some((job, execution)), None) => (job, execution),
            (None, Some(job)) => (job.as_str(), self.execution.as_str()),
            (Some(_), Some(_)) => {
                return Err(ClientError::Usage(
                    "give the execution as JOB/EXECUTION or as EXECUTION with --job, not both"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(ClientError::Usage(format!(
                    "which job's execution is {:?}? Give JOB/EXECUTION, or --job JOB",
                    self.execution
                )));
            }
        };
        Ok(vec!["jobs", account, job, "executions", execution])
    }
}

/// `runner logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    execution: ExecutionArgs,
    /// Keep printing until the run ends; exit 0 only when it ends in SUCCESS.
    #[arg(long)]
    follow: bool,
    /// The attempt (a restart is a new attempt) [default: the latest].
    #[arg(long)]
    attempt: Option<u32>,
}

/// `runner stop` and `runner kill`.
#[derive(Debug, Args)]
pub struct ExpiryArgs {
    #[command(flatten)]
    execution: ExecutionArgs,
    /// Seconds (0 to 604800). Stop: escalate to a kill when not stopped by then. Kill: mark
    /// KILLED when no node confirmed by then.
    #[arg(long)]
    expiry: Option<f64>,
}

/// `runner restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    execution: ExecutionArgs,
    /// Run on this host instead of the failed ones (repeatable).
    #[arg(long = "host")]
    hosts: Vec<String>,
}

/// `runner schedule ...`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: ScheduleCommand,
}

/// The schedule subcommands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Creates a schedule of a job.
    Create {
        /// The job's ID.
        job: String,
        /// The trigger, service account and description.
        #[command(flatten)]
        spec: ScheduleSpecArgs,
    },
    /// Lists a job's schedules.
    List {
        /// The job's ID.
        job: String,
        /// The page.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Shows a schedule.
    Get {
        /// The job's ID.
        job: String,
        /// The schedule's ID.
        schedule: String,
    },
    /// Replaces a schedule (its next fire time is planned anew).
    Update {
        /// The job's ID.
        job: String,
        /// The schedule's ID.
        schedule: String,
        /// The trigger, service account and description.
        #[command(flatten)]
        spec: ScheduleSpecArgs,
    },
    /// Deletes a schedule.
    Delete {
        /// The job's ID.
        job: String,
        /// The schedule's ID.
        schedule: String,
    },
}

/// A schedule definition on the command line.
#[derive(Debug, Args)]
pub struct ScheduleSpecArgs {
    /// Fire on this 5-field Unix cron expression (UTC).
    #[arg(long, conflicts_with = "at", required_unless_present = "at")]
    cron: Option<String>,
    /// Fire once at this ISO-8601 instant.
    #[arg(long)]
    at: Option<String>,
    /// The service account it runs under.
    #[arg(long)]
    service_account: String,
    /// Free text.
    #[arg(long, default_value = "")]
    description: String,
}

impl ScheduleSpecArgs {
    fn body(&self) -> Value {
        let (kind, expression) = match (&self.cron, &self.at) {
            (Some(cron), _) => ("cron", cron),
            (None, Some(at)) => ("date", at),
            // clap requires one of them.
            (None, None) => ("cron", &String::new()),
        };
        json!({
            "description": self.description,
            "serviceAccountAlias": self.service_account,
            "trigger": {"type": kind, "expression": expression},
        })
    }
}

/// `runner host ...`.
#[derive(Debug, Args)]
pub struct HostArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: HostCommand,
}

/// The inventory host subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Adds a host to the account's inventory, from flags or from a YAML or JSON file (-f).
    Add(HostDefinitionArgs),
    /// Lists the account's inventory hosts, by id.
    List(PageArgs),
    /// Shows a host.
    Get {
        /// The host's id.
        id: String,
    },
    /// Replaces a host with the flags' or the file's definition (`"********"` keeps a stored
    /// secret).
    Update(HostDefinitionArgs),
    /// Removes a host from the inventory.
    Delete {
        /// The host's id.
        id: String,
    },
}

/// A host as flags, or as a file.
#[derive(Debug, Args)]
pub struct HostDefinitionArgs {
    /// The host's id (the name plays run against).
    id: String,
    /// A group the host is in (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A host variable, `NAME=VALUE`; VALUE is read as YAML (`2222` is a number, `true` a
    /// boolean) (repeatable).
    #[arg(long = "var", value_parser = parse_host_var)]
    vars: Vec<(String, Value)>,
    /// The name of the account's key pair the host logs in with.
    #[arg(long)]
    key_pair: Option<String>,
    /// The whole definition, YAML or JSON, as the API takes it (`hostVars`, `groups`,
    /// `sshPrivateKey`, ...); the flags above are added to it.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
}

impl HostDefinitionArgs {
    /// The request body.
    fn body(&self) -> Result<Value, ClientError> {
        let mut host = match &self.file {
            Some(file) => {
                let shown = file.display();
                let text = std::fs::read_to_string(file)
                    .map_err(|error| ClientError::Usage(format!("{shown}: {error}")))?;
                let value: Value = serde_norway::from_str(&text)
                    .map_err(|error| ClientError::Usage(format!("{shown}: {error}")))?;
                match value {
                    Value::Object(host) => host,
                    _ => {
                        return Err(ClientError::Usage(format!(
                            "{shown}: a host is a mapping (of hostVars, groups, ...)"
                        )));
                    }
                }
            }
            None => serde_json::Map::new(),
        };
        host.insert("id".into(), json!(self.id));
        if !self.groups.is_empty() {
            let groups = host.entry("groups").or_insert_with(|| json!([]));
            if let Value::Array(groups) = groups {
                groups.extend(self.groups.iter().map(|group| json!(group)));
            }
        }
        if !self.vars.is_empty() {
            let vars = host.entry("hostVars").or_insert_with(|| json!({}));
            if let Value::Object(vars) = vars {
                vars.extend(self.vars.iter().cloned());
            }
        }
        if let Some(key_pair) = &self.key_pair {
            host.insert("sshKeyPair".into(), json!(key_pair));
        }
        Ok(Value::Object(host))
    }
}

/// `NAME=VALUE` of `--var`, VALUE read as YAML.
fn parse_host_var(text: &str) -> Result<(String, Value), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let value = serde_norway::from_str(value).unwrap_or_else(|_| json!(value));
    Ok((name.to_owned(), value))
}

/// `runner service-account ...`.
#[derive(Debug, Args)]
pub struct ServiceAccountArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(subcommand)]
    command: ServiceAccountCommand,
}

/// The service account subcommands.
#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Creates a service account.
    Create {
        /// Its name: 1 to 64 of A-Z a-z 0-9 - _ .
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Lists the account's service accounts.
    List(PageArgs),
    /// Shows a service account.
    Get {
        /// Its name.
        name: String,
    },
    /// Deletes a service account (refused while a schedule uses it).
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs a client subcommand; prints its result to stdout and any failure to stderr.
pub async fn run(command: ClientCommand) -> ExitCode {
    let mut stdout = std::io::stdout();
    match dispatch(command, &mut stdout).await {
        Ok(code) => code,
        Err(ClientError::Usage(message)) => {
            eprintln!("runner: {message}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("runner: {error}");
            ExitCode::FAILURE
        }
    }
}

fn connect(connection: &ConnectionArgs) -> Result<(Api, Output), ClientError> {
    let api = Api::resolve(Given {
        url: connection.url.clone(),
        token: connection.token.clone(),
        account: connection.account.clone(),
        config: connection.config.clone(),
    })?;
    Ok((api, connection.output))
}

fn print(out: &mut impl std::io::Write, text: &str) -> Result<(), ClientError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|error| ClientError::Transport(format!("writing the output: {error}")))
}

/// The answer in the chosen format: JSON as it came, or `table` of it.
fn show(
    out: &mut impl std::io::Write,
    output: Output,
    value: &Value,
    table: impl FnOnce(&Value) -> String,
) -> Result<(), ClientError> {
    match output {
        Output::Json => print(
            out,
            &format!(
                "{}\n",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
        ),
        Output::Table => print(out, &table(value)),
    }
}

async fn dispatch(
    command: ClientCommand,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, ClientError> {
    match command {
        ClientCommand::Job(args) => job(args, out).await,
        ClientCommand::Start(args) => start(args, out).await,
        ClientCommand::Executions(args) => {
            let (api, output) = connect(&args.connection)?;
            let url = api.url(
                &["jobs", &api.account, &args.job, "executions"],
                &args.page.query(),
            );
            let page = api.json(Method::GET, url, None).await?;
            show(out, output, &page, |page| {
                output::page(page, output::EXECUTION_HEADER, output::execution_row)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Status(args) => {
            let (api, output) = connect(&args.connection)?;
            let url = api.url(&args.segments(&api.account)?, &[]);
            let execution = api.json(Method::GET, url, None).await?;
            show(out, output, &execution, output::execution)?;
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Logs(args) => {
            let (api, _) = connect(&args.execution.connection)?;
            let segments = args.execution.segments(&api.account)?;
            if args.follow {
                let status = follow::follow(&api, &segments, args.attempt, out).await?;
                eprintln!("runner: the run ended {status}");
                return Ok(exit_for(&status));
            }
            follow::print_pages(&api, &segments, args.attempt, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Stop(args) => control(args, "stop", out).await,
        ClientCommand::Kill(args) => control(args, "kill", out).await,
        ClientCommand::Restart(args) => {
            let (api, output) = connect(&args.execution.connection)?;
            let mut segments = args.execution.segments(&api.account)?;
            let body = if args.hosts.is_empty() {
                None
            } else {
                let job = segments[2];
                Some(json!({"hosts": pick_hosts(&api, job, &args.hosts).await?}))
            };
            segments.push("restart");
            let execution = api
                .json(Method::POST, api.url(&segments, &[]), body.as_ref())
                .await?;
            show(out, output, &execution, output::execution)?;
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Schedule(args) => schedule(args, out).await,
        ClientCommand::ServiceAccount(args) => service_account(args, out).await,
        ClientCommand::Host(args) => host(args, out).await,
    }
}

/// 0 for SUCCESS, 1 for any other end.
fn exit_for(status: &str) -> ExitCode {
    if status == "SUCCESS" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn control(
    args: ExpiryArgs,
    verb: &str,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.execution.connection)?;
    let mut segments = args.execution.segments(&api.account)?;
    segments.push(verb);
    let body = args
        .expiry
        .map(|seconds| json!({ "expiryDuration": seconds }));
    let execution = api
        .json(Method::POST, api.url(&segments, &[]), body.as_ref())
        .await?;
    show(out, output, &execution, output::execution)?;
    Ok(ExitCode::SUCCESS)
}

/// The hosts named on the command line: the job's own entry for a name it has (its variables
/// kept), a bare `{"id"}` for another.
async fn pick_hosts(api: &Api, job: &str, names: &[String]) -> Result<Vec<Value>, ClientError> {
    let definition = api
        .json(
            Method::GET,
            api.url(&["jobs", &api.account, job], &[]),
            None,
        )
        .await?;
    let known = definition["hosts"].as_array().cloned().unwrap_or_default();
    Ok(names
        .iter()
        .map(|name| {
            known
                .iter()
                .find(|host| host["id"] == name.as_str())
                .cloned()
                .unwrap_or_else(|| json!({ "id": name }))
        })
        .collect())
}

async fn start(args: StartArgs, out: &mut impl std::io::Write) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.connection)?;
    let body = if args.hosts.is_empty() {
        None
    } else {
        Some(json!({"hosts": pick_hosts(&api, &args.job, &args.hosts).await?}))
    };
    let url = api.url(&["jobs", &api.account, &args.job, "start"], &[]);
    let execution = api.json(Method::POST, url, body.as_ref()).await?;
    if !args.follow {
        show(out, output, &execution, output::execution)?;
        return Ok(ExitCode::SUCCESS);
    }
    // stdout carries the run's output alone; what the client says goes to stderr.
    let handle = output::execution_handle(&execution);
    eprintln!("runner: started execution {handle}");
    let execution_id = execution["execution_id"].as_str().unwrap_or_default();
    let segments = ["jobs", &api.account, &args.job, "executions", execution_id];
    let status = follow::follow(&api, &segments, None, out).await?;
    eprintln!("runner: execution {handle} ended {status}");
    Ok(exit_for(&status))
}

/// A job definition from its file: YAML or JSON, with `playbookFile` (or `--playbook`) read and
/// base64-encoded into `playbook`.
pub fn job_definition(file: &Path, playbook: Option<&Path>) -> Result<Value, ClientError> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|error| ClientError::Usage(format!("{shown}: {error}")))?;
    let value: Value = serde_norway::from_str(&text)
        .map_err(|error| ClientError::Usage(format!("{shown}: {error}")))?;
    let Value::Object(mut definition) = value else {
        return Err(ClientError::Usage(format!(
            "{shown}: a job definition is a mapping (of description, hosts, playbook, ...)"
        )));
    };
    let from_file = match definition.remove("playbookFile") {
        None => None,
        Some(Value::String(path)) => Some(file.parent().unwrap_or(Path::new(".")).join(path)),
        Some(_) => {
            return Err(ClientError::Usage(format!(
                "{shown}: playbookFile must be a path"
            )));
        }
    };
    let playbook = match (playbook, from_file) {
        (Some(_), Some(_)) => {
            return Err(ClientError::Usage(format!(
                "{shown} has a playbookFile and --playbook names another: give one"
            )));
        }
        (Some(path), None) => Some(path.to_owned()),
        (None, path) => path,
    };
    if let Some(path) = playbook {
        if definition.contains_key("playbook") {
            return Err(ClientError::Usage(format!(
                "{shown} has a playbook already; drop it or the playbook file"
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|error| ClientError::Usage(format!("{}: {error}", path.display())))?;
        definition.insert(
            "playbook".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        );
    }
    Ok(Value::Object(definition))
}

fn job_fields(job: &Value) -> String {
    let mut text = output::table(output::JOB_HEADER, &[output::job_row(job)]);
    if let Some(execution) = job["links"]
        .as_array()
        .and_then(|links| links.iter().find(|link| link["ref"] == "execution"))
    {
        text.push_str(&format!(
            "started execution {}/{}\n",
            output::cell(&job["id"]),
            output::cell(&execution["id"])
        ));
    }
    text
}

async fn job(args: JobArgs, out: &mut impl std::io::Write) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.connection)?;
    let account = api.account.clone();
    let immediate = |flag: bool| {
        if flag {
            vec![("immediate", "true".to_owned())]
        } else {
            Vec::new()
        }
    };
    match args.command {
        JobCommand::Create(file) => {
            let body = job_definition(&file.file, file.playbook.as_deref())?;
            let url = api.url(&["jobs", &account], &immediate(file.immediate));
            let job = api.json(Method::POST, url, Some(&body)).await?;
            show(out, output, &job, job_fields)?;
        }
        JobCommand::List(page) => {
            let url = api.url(&["jobs", &account], &page.query());
            let jobs = api.json(Method::GET, url, None).await?;
            show(out, output, &jobs, |jobs| {
                output::page(jobs, output::JOB_HEADER, output::job_row)
            })?;
        }
        JobCommand::Get { job } => {
            let job = api
                .json(Method::GET, api.url(&["jobs", &account, &job], &[]), None)
                .await?;
            show(out, output, &job, job_fields)?;
        }
        JobCommand::Update { job, file } => {
            let body = job_definition(&file.file, file.playbook.as_deref())?;
            let url = api.url(&["jobs", &account, &job], &immediate(file.immediate));
            let job = api.json(Method::PUT, url, Some(&body)).await?;
            show(out, output, &job, job_fields)?;
        }
        JobCommand::Delete { job } => {
            api.json(
                Method::DELETE,
                api.url(&["jobs", &account, &job], &[]),
                None,
            )
            .await?;
            deleted(out, output, &format!("job {job}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A delete answered 204: a line for a person, nothing for a program.
fn deleted(out: &mut impl std::io::Write, output: Output, what: &str) -> Result<(), ClientError> {
    match output {
        Output::Table => print(out, &format!("deleted {}\n", output::cell(&what.into()))),
        Output::Json => Ok(()),
    }
}

async fn schedule(
    args: ScheduleArgs,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.connection)?;
    let account = api.account.clone();
    let one = |schedule: &Value| {
        output::table(output::SCHEDULE_HEADER, &[output::schedule_row(schedule)])
    };
    match args.command {
        ScheduleCommand::Create { job, spec } => {
            let url = api.url(&["jobs", &account, &job, "schedules"], &[]);
            let schedule = api.json(Method::POST, url, Some(&spec.body())).await?;
            show(out, output, &schedule, one)?;
        }
        ScheduleCommand::List { job, page } => {
            let url = api.url(&["jobs", &account, &job, "schedules"], &page.query());
            let schedules = api.json(Method::GET, url, None).await?;
            show(out, output, &schedules, |page| {
                output::page(page, output::SCHEDULE_HEADER, output::schedule_row)
            })?;
        }
        ScheduleCommand::Get { job, schedule } => {
            let url = api.url(&["jobs", &account, &job, "schedules", &schedule], &[]);
            let schedule = api.json(Method::GET, url, None).await?;
            show(out, output, &schedule, one)?;
        }
        ScheduleCommand::Update {
            job,
            schedule,
            spec,
        } => {
            let url = api.url(&["jobs", &account, &job, "schedules", &schedule], &[]);
            let schedule = api.json(Method::PUT, url, Some(&spec.body())).await?;
            show(out, output, &schedule, one)?;
        }
        ScheduleCommand::Delete { job, schedule } => {
            let url = api.url(&["jobs", &account, &job, "schedules", &schedule], &[]);
            api.json(Method::DELETE, url, None).await?;
            deleted(out, output, &format!("schedule {schedule}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn host(args: HostArgs, out: &mut impl std::io::Write) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.connection)?;
    let account = api.account.clone();
    let one = |host: &Value| output::table(output::HOST_HEADER, &[output::host_row(host)]);
    match args.command {
        HostCommand::Add(definition) => {
            let url = api.url(&["inventory", &account, "hosts"], &[]);
            let body = definition.body()?;
            let created = api.json(Method::POST, url, Some(&body)).await?;
            show(out, output, &created, one)?;
        }
        HostCommand::List(page) => {
            let url = api.url(&["inventory", &account, "hosts"], &page.query());
            let hosts = api.json(Method::GET, url, None).await?;
            show(out, output, &hosts, |page| {
                output::page(page, output::HOST_HEADER, output::host_row)
            })?;
        }
        HostCommand::Get { id } => {
            let url = api.url(&["inventory", &account, "hosts", &id], &[]);
            let found = api.json(Method::GET, url, None).await?;
            show(out, output, &found, one)?;
        }
        HostCommand::Update(definition) => {
            let url = api.url(&["inventory", &account, "hosts", &definition.id], &[]);
            let body = definition.body()?;
            let replaced = api.json(Method::PUT, url, Some(&body)).await?;
            show(out, output, &replaced, one)?;
        }
        HostCommand::Delete { id } => {
            let url = api.url(&["inventory", &account, "hosts", &id], &[]);
            api.json(Method::DELETE, url, None).await?;
            deleted(out, output, &format!("host {id}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn service_account(
    args: ServiceAccountArgs,
    out: &mut impl std::io::Write,
) -> Result<ExitCode, ClientError> {
    let (api, output) = connect(&args.connection)?;
    let account = api.account.clone();
    let one = |account: &Value| {
        output::table(
            output::SERVICE_ACCOUNT_HEADER,
            &[output::service_account_row(account)],
        )
    };
    match args.command {
        ServiceAccountCommand::Create { name, description } => {
            let url = api.url(&["serviceAccounts", &account], &[]);
            let body = json!({"alias": name, "description": description});
            let created = api.json(Method::POST, url, Some(&body)).await?;
            show(out, output, &created, one)?;
        }
        ServiceAccountCommand::List(page) => {
            let url = api.url(&["serviceAccounts", &account], &page.query());
            let accounts = api.json(Method::GET, url, None).await?;
            show(out, output, &accounts, |page| {
                output::page(
                    page,
                    output::SERVICE_ACCOUNT_HEADER,
                    output::service_account_row,
                )
            })?;
        }
        ServiceAccountCommand::Get { name } => {
            let url = api.url(&["serviceAccounts", &account, &name], &[]);
            let found = api.json(Method::GET, url, None).await?;
            show(out, output, &found, one)?;
        }
        ServiceAccountCommand::Delete { name } => {
            let url = api.url(&["serviceAccounts", &account, &name], &[]);
            api.json(Method::DELETE, url, None).await?;
            deleted(out, output, &format!("service account {name}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
