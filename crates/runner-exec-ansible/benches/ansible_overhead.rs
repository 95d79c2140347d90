//! Overhead of the executor over a bare `ansible-playbook` on the same trivial localhost playbook,
//! without and with the bubblewrap sandbox (as `nobody` when run as root, as the server does).
//!
//! Run with `cargo bench -p runner-exec-ansible --bench ansible_overhead` (bwrap from
//! `RUNNER_BWRAP` or `PATH`; the ansible-playbook must be one the sandbox user can run). Prints,
//! for one run at a time (median of `BENCH_ITERATIONS`, default 7, interleaved) and for 16 runs
//! started at once, the wall time of bare ansible-playbook, through the executor, and through the
//! sandboxed executor, and the ratios to bare.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use runner_core::execution::{Execution, Outcome};
use runner_core::executor::{Cancellation, EventSink, Executor, Run};
use runner_core::job::{Host, Job, JobSpec};
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor, SandboxConfig, SandboxUser};

const PLAYBOOK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: hello\n      debug:\n        msg: hello\n";
const CONCURRENT: usize = 16;

fn ansible_playbook() -> PathBuf {
    if let Some(path) = std::env::var_os("RUNNER_ANSIBLE_PLAYBOOK") {
        return PathBuf::from(path);
    }
    runner_exec_ansible::find_on_path("ansible-playbook").unwrap_or_else(|| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/ansible-playbook");
        assert!(
            venv.is_file(),
            "ansible-playbook not found: run scripts/ensure-ansible.sh"
        );
        venv
    })
}

fn host() -> Host {
    let mut host = Host::named("h1");
    for (key, value) in [
        ("ansible_connection", "local"),
        (
            "ansible_python_interpreter",
            "{{ ansible_playbook_python }}",
        ),
    ] {
        host.host_vars.insert(key.into(), value.into());
    }
    host
}

fn run() -> Run {
    let spec = JobSpec {
        playbook: Some(base64::engine::general_purpose::STANDARD.encode(PLAYBOOK)),
        hosts: Some(vec![host()]),
        ..JobSpec::default()
    };
    let job = Job::new("BENCH".parse().expect("alias"), spec, 0);
    let execution = Execution::new(&job, None, None, 0);
    Run { job, execution }
}

async fn through_executor(executor: &AnsibleExecutor) {
    let report = executor
        .run(run(), EventSink::discard(), Cancellation::never())
        .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
}

async fn bare(ansible: &Path, dir: &Path) {
    let status = tokio::process::Command::new(ansible)
        .arg("-i")
        .arg(dir.join("inventory.json"))
        .arg(dir.join("playbook.yml"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("ansible-playbook runs");
    assert!(status.success());
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn sandbox() -> SandboxConfig {
    SandboxConfig {
        bwrap: std::env::var_os("RUNNER_BWRAP")
            .map_or_else(|| PathBuf::from("bwrap"), PathBuf::from),
        user: SandboxUser::server_default().expect("the sandbox user"),
        hidden: Vec::new(),
    }
}

/// Wall time of `CONCURRENT` runs of `one` started at once, until all ended.
async fn concurrently<F, Fut>(one: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        set.spawn(one());
    }
    set.join_all().await;
    start.elapsed()
}

fn main() {
    use std::os::unix::fs::PermissionsExt;
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let ansible = ansible_playbook();
    // Not under /tmp (private to each sandboxed run), and passable for the sandbox user.
    let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::write(dir.path().join("playbook.yml"), PLAYBOOK).unwrap();
    let inventory = serde_json::json!({"all": {"hosts": {"h1": host().host_vars}}});
    std::fs::write(dir.path().join("inventory.json"), inventory.to_string()).unwrap();
    let executor = AnsibleExecutor::new(AnsibleConfig {
        ansible_playbook: ansible.clone(),
        work_root: dir.path().join("work"),
        ..AnsibleConfig::default()
    });
    let (sandboxed, _) = AnsibleExecutor::claim_work_root(AnsibleConfig {
        ansible_playbook: ansible.clone(),
        work_root: dir.path().join("sandboxed"),
        sandbox: Some(sandbox()),
        ..AnsibleConfig::default()
    })
    .expect("a work root");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let check = sandboxed.config().sandbox.as_ref().unwrap();
        check
            .check(&sandboxed.config().work_root)
            .await
            .expect("the sandbox can be made");
        // Warm-up: python bytecode caches, page cache.
        bare(&ansible, dir.path()).await;
        through_executor(&executor).await;
        through_executor(&sandboxed).await;

        let (mut plain, mut boxed, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..iterations {
            let start = Instant::now();
            bare(&ansible, dir.path()).await;
            theirs.push(start.elapsed());
            let start = Instant::now();
            through_executor(&executor).await;
            plain.push(start.elapsed());
            let start = Instant::now();
            through_executor(&sandboxed).await;
            boxed.push(start.elapsed());
        }
        let (plain, boxed, theirs) = (median(plain), median(boxed), median(theirs));
        report(
            &format!("single run (median of {iterations})"),
            theirs,
            plain,
            boxed,
        );

        let theirs = concurrently(|| {
            let (ansible, dir) = (ansible.clone(), dir.path().to_path_buf());
            async move { bare(&ansible, &dir).await }
        })
        .await;
        let plain = concurrently(|| {
            let executor = executor.clone();
            async move { through_executor(&executor).await }
        })
        .await;
        let boxed = concurrently(|| {
            let executor = sandboxed.clone();
            async move { through_executor(&executor).await }
        })
        .await;
        report(
            &format!("{CONCURRENT} runs at once (until all ended)"),
            theirs,
            plain,
            boxed,
        );
    });
}

fn report(what: &str, bare: Duration, executor: Duration, sandboxed: Duration) {
    let ratio = |ours: Duration| ours.as_secs_f64() / bare.as_secs_f64();
    println!(
        "{what}: bare ansible-playbook {:.3} s, executor {:.3} s (ratio {:.3}), sandboxed executor {:.3} s (ratio {:.3})",
        bare.as_secs_f64(),
        executor.as_secs_f64(),
        ratio(executor),
        sandboxed.as_secs_f64(),
        ratio(sandboxed)
    );
}
