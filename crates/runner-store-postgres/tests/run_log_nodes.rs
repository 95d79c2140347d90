//! The run log across nodes: output one node's worker appends is read, and announced
//! (`Signal::Log` through LISTEN/NOTIFY), through another node's store on the same database.

mod common;

use std::time::Duration;

use runner_core::execution::{Execution, Outcome, RunReport};
use runner_core::machine::Command;
use runner_core::run_log::LogCap;
use runner_core::store::prelude::*;
use runner_core::store::{LogRead, Signal};
use runner_core::testkit::fixtures::job;
use runner_core::time::Clock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_on_one_node_is_read_and_followed_on_another() {
    let options = common::fresh_options();
    let writer = common::connect(options.clone()).await;
    let reader = common::connect(options.clone()).await;
    let mut signals = reader.subscribe();

    let job = job("ACME", 1);
    writer.insert_job(&job).await.unwrap();
    let execution = Execution::new(&job, None, None, 1);
    writer.insert_execution(&execution).await.unwrap();
    let id = execution.execution_id;
    let now = runner_core::time::SystemClock.now();
    let claimed = writer
        .claim(&"node-a".to_owned(), 1, now + 60_000, now)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let output = [
        "PLAY [all] ***\n",
        "ok: [localhost] => {\n",
        "    \"msg\": \"hello\"\n}\n",
    ];
    for line in output {
        writer
            .append_log(id, 1, line.as_bytes(), LogCap::default(), now + 1)
            .await
            .unwrap();
    }

    // The other node hears of it through the database, then reads it.
    let heard = async {
        loop {
            match signals.recv().await {
                Ok(Signal::Log(of)) if of == id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("signals: {error}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), heard)
        .await
        .expect("the other node is told of the output");
    let read = LogRead {
        attempt: None,
        offset: 0,
        limit: 1 << 20,
    };
    let page = reader
        .read_log(&job.account_alias, job.id, id, read)
        .await
        .unwrap();
    assert_eq!(String::from_utf8(page.data).unwrap(), output.concat());
    assert_eq!((page.attempt, page.complete), (1, false));

    // The run ends on the first node: the second sees the log complete.
    writer
        .transition(
            id,
            &Command::Finish {
                attempt: 1,
                report: RunReport::new(Outcome::Succeeded),
            },
            now + 2,
        )
        .await
        .unwrap();
    let page = reader
        .read_log(&job.account_alias, job.id, id, read)
        .await
        .unwrap();
    assert!(page.complete);
    assert_eq!(page.next_offset, output.concat().len() as u64);

    if let Some(schema) = &options.schema {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(writer.pool())
            .await
            .expect("drop the test schema");
    }
}
