//! The repository cache with real git and the real ansible-playbook: later runs fetch only what
//! is new, parallel runs on a moving branch each run the commit they resolved, the cap evicts the
//! mirror used least recently, and a mirror keeps no remote and no credential.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use common::*;
use runner_core::execution::Outcome;
use runner_core::job::{JobSpec, Repository};
use runner_exec_ansible::{AnsibleConfig, AnsibleExecutor, RepositoryCacheConfig};

/// A playbook that writes `token` into `{{ out }}/<name>.txt`, the name an extra var of the run.
fn site(token: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy:\n        dest: \"{{{{ out }}}}/{{{{ name }}}}.txt\"\n        content: \"{token}\"\n"
    )
}

/// A bare origin with one commit on main (token `0`); returns its URL and a work clone that
/// pushes to it.
fn origin(dir: &Path, name: &str) -> (String, PathBuf) {
    let bare = dir.join(format!("{name}.git"));
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    commit(&work, "0");
    (format!("file://{}", bare.display()), work)
}

/// Commits `site.yml` writing `token` and pushes it; returns the commit.
fn commit(work: &Path, token: &str) -> String {
    std::fs::write(work.join("site.yml"), site(token)).unwrap();
    git(work, &["add", "."]);
    git(work, &["commit", "-q", "-m", &format!("token {token}")]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

fn spec(scene: &Scene, url: &str, name: &str) -> JobSpec {
    let mut spec = inline_spec(scene, "-", vec![local_host("h1")]);
    spec.playbook = None;
    spec.properties.insert("name".into(), name.into());
    spec.repository = Some(Repository {
        url: url.into(),
        branch: Some("main".into()),
        default_playbook: "site.yml".into(),
        credentials: None,
    });
    spec
}

fn cached(scene: &Scene, max_bytes: u64) -> (AnsibleExecutor, PathBuf) {
    let dir = scene.dir.path().join("cache");
    let executor = AnsibleExecutor::new(AnsibleConfig {
        repository_cache: Some(RepositoryCacheConfig {
            dir: dir.clone(),
            max_bytes,
        }),
        ..scene.config()
    });
    (executor, dir)
}

/// The mirrors in the cache.
fn mirrors(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    found.sort();
    found
}

/// The objects of each pack of `mirror`, as `git verify-pack` counts them, smallest first.
fn pack_sizes(mirror: &Path) -> Vec<usize> {
    let pack_dir = mirror.join("objects/pack");
    let mut sizes: Vec<usize> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .map(|idx| {
            let out = git(&pack_dir, &["verify-pack", "-v", idx.to_str().unwrap()]);
            out.lines()
                .filter(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .is_some_and(|kind| ["commit", "tree", "blob", "tag"].contains(&kind))
                })
                .count()
        })
        .collect();
    sizes.sort();
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_run_fetches_only_what_is_new() {
    let scene = Scene::new();
    let (url, work) = origin(scene.dir.path(), "site");
    // History for the first fetch to carry: twenty commits of other files.
    for n in 0..20 {
        std::fs::write(work.join(format!("file-{n}.txt")), format!("{n}\n")).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", &format!("file {n}")]);
    }
    let first_commit = commit(&work, "first");
    let (executor, cache) = cached(&scene, RepositoryCacheConfig::DEFAULT_MAX_BYTES);

    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &url, "one"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(
        report.repository_log.unwrap().recent_commit[0].commit,
        first_commit
    );
    let [mirror] = &mirrors(&cache)[..] else {
        panic!("one mirror: {:?}", mirrors(&cache));
    };
    let config = std::fs::read_to_string(mirror.join("config")).unwrap();
    assert!(
        !config.contains("[remote") && !config.contains(&url),
        "the mirror remembers no remote: {config}"
    );
    let first_packs = pack_sizes(mirror);
    assert_eq!(first_packs.len(), 1, "{first_packs:?}");
    assert!(first_packs[0] > 40, "the whole history: {first_packs:?}");

    let second_commit = commit(&work, "second");
    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &url, "two"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(
        report.repository_log.unwrap().recent_commit[0].commit,
        second_commit
    );
    assert_eq!(
        std::fs::read_to_string(scene.marker("two.txt")).unwrap(),
        "second"
    );
    assert_eq!(
        mirrors(&cache),
        std::slice::from_ref(mirror),
        "the same mirror"
    );
    // The second fetch brought the new commit, its tree and its site.yml (and, where git sent
    // the two as deltas, their bases, which it copies into the new pack from the mirror): three
    // to five objects, not the history.
    let packs = pack_sizes(mirror);
    assert_eq!(packs.len(), 2, "{packs:?}");
    assert!((3..=5).contains(&packs[0]), "{packs:?}");
    assert_eq!(packs[1], first_packs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_runs_on_a_moving_branch_each_run_the_commit_they_resolved() {
    let scene = Scene::new();
    let (url, work) = origin(scene.dir.path(), "moving");
    let (executor, _cache) = cached(&scene, RepositoryCacheConfig::DEFAULT_MAX_BYTES);

    // Four runs at once while the branch moves under them, one push per run.
    let runs: Vec<_> = (0..4)
        .map(|n| {
            let executor = executor.clone();
            let run = run_of(spec(&scene, &url, &format!("run-{n}")));
            tokio::spawn(async move { run_to_end(&executor, run).await.0 })
        })
        .collect();
    let mut pushed = std::collections::HashMap::new();
    for n in 1..=4 {
        let token = format!("push-{n}");
        let sha = tokio::task::spawn_blocking({
            let work = work.clone();
            let token = token.clone();
            move || commit(&work, &token)
        })
        .await
        .unwrap();
        pushed.insert(sha, token);
    }
    pushed.insert(git(&work, &["rev-parse", "HEAD~4"]), "0".into());

    for (n, run) in runs.into_iter().enumerate() {
        let report = run.await.unwrap();
        assert_eq!(report.outcome, Outcome::Succeeded, "run {n}: {report:?}");
        let resolved = &report.repository_log.unwrap().recent_commit[0].commit;
        let token = pushed
            .get(resolved)
            .unwrap_or_else(|| panic!("run {n} resolved {resolved}, not a pushed commit"));
        assert_eq!(
            &std::fs::read_to_string(scene.marker(&format!("run-{n}.txt"))).unwrap(),
            token,
            "run {n} ran the commit it reported"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_removes_the_mirror_used_least_recently() {
    let scene = Scene::new();
    let (first_url, _) = origin(scene.dir.path(), "first");
    let (second_url, _) = origin(scene.dir.path(), "second");
    // Room for about one mirror: each holds a few kilobytes of git's own files.
    let (executor, cache) = cached(&scene, 1);

    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &first_url, "a"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let first = mirrors(&cache);
    assert_eq!(first.len(), 1, "a mirror larger than the cap is still used");

    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &second_url, "b"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let second = mirrors(&cache);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(
        first, second,
        "the older mirror went, the one just used stayed"
    );

    // The evicted repository still runs: its mirror is made again.
    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &first_url, "c"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(mirrors(&cache), first);
    assert_eq!(std::fs::read_to_string(scene.marker("c.txt")).unwrap(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_that_would_be_a_refspec_pattern_is_refused() {
    let scene = Scene::new();
    let (url, _) = origin(scene.dir.path(), "site");
    let (executor, _cache) = cached(&scene, RepositoryCacheConfig::DEFAULT_MAX_BYTES);
    for branch in ["*", "main:refs/heads/other", "main^"] {
        let mut job = spec(&scene, &url, "never");
        job.repository.as_mut().unwrap().branch = Some(branch.into());
        let (report, _) = run_to_end(&executor, run_of(job)).await;
        assert_eq!(report.outcome, Outcome::Failed, "{branch}: {report:?}");
        assert_eq!(
            report.message.as_deref(),
            Some("repository.branch is not a name git takes for a branch or a tag"),
            "{branch}"
        );
        assert!(!scene.marker("never.txt").exists());
    }
}

/// A run waiting for a mirror that another holds (here another process, through the mirror's
/// `flock`) ends at once when it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_ends_the_wait_for_a_mirror_in_use() {
    let scene = Scene::new();
    let (url, _) = origin(scene.dir.path(), "site");
    let (executor, cache) = cached(&scene, RepositoryCacheConfig::DEFAULT_MAX_BYTES);
    let (report, _) = run_to_end(&executor, run_of(spec(&scene, &url, "first"))).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let lock = std::fs::read_dir(&cache)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "lock"))
        .expect("the mirror's lock file");
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&lock).unwrap());
    // Another server's long fetch: holds the lock until killed (`-o`: the lock is flock's own,
    // not shared with its child, so that killing flock frees it). In a process group of its
    // own, ended whole at the end, and with no stdio of the test's: a `sleep` left behind
    // would hold the test runner's output open.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "600"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let held = |waiting: bool| {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks
            .lines()
            .any(|line| line.contains(&format!(":{inode} ")) && line.contains("->") == waiting)
    };
    while !held(false) {
        tokio::task::yield_now().await;
    }

    let waiting = start(&executor, run_of(spec(&scene, &url, "second")));
    // The kernel lists the run's wait for the lock: it is blocked on the mirror now.
    while !held(true) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    waiting
        .handle
        .request(runner_core::executor::CancelMode::Kill);
    let report = waiting.report().await;
    assert_eq!(report.outcome, Outcome::Killed, "{report:?}");
    assert!(!scene.marker("second.txt").exists());
    let group = format!("-{}", holder.id());
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .unwrap();
    assert!(killed.success(), "the holder's group is ended");
    holder.wait().unwrap();
}
