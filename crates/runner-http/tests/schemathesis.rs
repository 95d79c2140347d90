//! schemathesis, a property-based API tester, against the real binary on the embedded store
//! (issue 20): every operation of the served document, its default checks (no server error,
//! status codes, content types, headers and bodies as documented, schema-violating requests
//! refused, schema-valid ones taken), the coverage and fuzzing phases, and the stateful phase
//! that follows the document's links from each created resource. It must find nothing.
//!
//! The server runs in a network namespace with only loopback, so the repositories and webhooks
//! that generated jobs name are unreachable at once, whatever host they name; it allows local
//! repositories and private callbacks because where a generated host name resolves is the
//! network's answer, not the document's. `tests/schemathesis/hooks.py` makes values of the
//! formats the document names itself (cron, an instant in the future, OpenSSH keys) and keeps
//! host ids unique, rules JSON Schema cannot state; `tests/schemathesis/schemathesis.toml`
//! has the stateful phase follow the document's links and Location headers rather than guess
//! links from field names.

mod common;

use std::path::Path;

use common::process::{Runner, admin_token, ansible_path, ensure, sled_dir};

/// Enough examples per operation to find the mismatches the issue lists; fixed, so a failure
/// reproduces with the same seed.
const EXAMPLES: &str = "100";
const SEED: &str = "20261204";

#[test]
fn schemathesis_finds_nothing_between_the_document_and_the_server() {
    let schemathesis = ensure("ensure-schemathesis.sh", "schemathesis");
    let bwrap = ensure("ensure-bwrap.sh", "bubblewrap");
    let dir = tempfile::tempdir().unwrap();
    let (store, tokens) = sled_dir(dir.path());
    let path = ansible_path();
    let runner = Runner::spawn_isolated(
        dir.path(),
        &[
            "--store",
            &store,
            "--concurrency",
            "1",
            "--allow-local-repositories",
            "--allow-private-callbacks",
            "--callback-max-attempts",
            "1",
        ],
        &[
            ("PATH", &path),
            ("RUNNER_BWRAP", &bwrap),
            ("RUST_LOG", "warn"),
        ],
    );
    let token = admin_token(&tokens);
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let report = dir.path().join("report");
    let output = runner
        .in_network(&schemathesis)
        .arg("--config-file")
        .arg(hooks.join("schemathesis.toml"))
        .args([
            "run",
            &format!("{}/openapi.json", runner.base),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--workers",
            "1",
            // A 3072-bit RSA key takes a while to generate in a debug build.
            "--request-timeout",
            "60",
            "--report-dir",
        ])
        .arg(&report)
        // Its caches go to the test's directory, not the source tree.
        .current_dir(dir.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found mismatches:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // It really tested: every operation of the document, in every phase.
    let count = |label: &str| {
        printed
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label} line:\n{printed}"))
    };
    let selected = count("Selected:");
    let (_, operations) = selected.split_once('/').expect("Selected: N/M");
    assert_eq!(selected, format!("{operations}/{operations}"), "{printed}");
    assert_eq!(count("Tested:"), operations, "{printed}");
    assert!(operations.parse::<usize>().unwrap() > 30, "{printed}");
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(
            printed.contains(&format!("✅ {phase}")),
            "the {phase} phase did not pass:\n{printed}"
        );
    }
}
