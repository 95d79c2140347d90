//! Trying a database request again after a failure: [`retry`] is the one retry loop of the
//! store. The callers differ in what is worth a retry, for how long, and how long to pause; each
//! passes that in (a [`RetryPolicy`], a deadline, a test of the error) rather than writing its
//! own loop.
//!
//! The clock is tokio's, so that tests with paused time see the pauses and the deadline without
//! waiting (outside a paused test it is the system's monotonic clock).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The pauses between attempts: `first_pause` after the first failure, doubled after each
/// further one, but never longer than `max_pause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub(crate) first_pause: Duration,
    pub(crate) max_pause: Duration,
}

/// The pauses of the store's requests: reads, transactions, write batches and claims. Short at
/// first (a deadlock retried after 20 ms) and at most a second apart while the server restarts.
pub(crate) const REQUEST_RETRY: RetryPolicy = RetryPolicy {
    first_pause: Duration::from_millis(20),
    max_pause: Duration::from_secs(1),
};

/// When [`retry`] stops trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// After the first failure at or past this instant.
    At(Instant),
    /// Never: only an error not worth a retry ends the attempts.
    Never,
}

impl GiveUp {
    /// The deadline `retry_for` from now.
    pub(crate) fn after(retry_for: Duration) -> Self {
        GiveUp::At(Instant::now() + retry_for)
    }

    fn reached(self) -> bool {
        match self {
            GiveUp::At(deadline) => Instant::now() >= deadline,
            GiveUp::Never => false,
        }
    }
}

/// Runs `attempt` until it succeeds, and returns its value; or returns the error of the first
/// failure that comes once `give_up` is reached or that `worth_retrying` refuses. Between
/// attempts it pauses as `policy` says.
///
/// `worth_retrying` is asked only while there is time left, just before the pause: it may log
/// the retry it allows.
pub(crate) async fn retry<T, E, Attempt>(
    policy: RetryPolicy,
    give_up: GiveUp,
    mut attempt: impl FnMut() -> Attempt,
    worth_retrying: impl FnMut(&E) -> bool,
) -> Result<T, E>
where
    Attempt: Future<Output = Result<T, E>>,
{
    let attempt_without_state = |()| {
        let attempt = attempt();
        async move { ((), attempt.await) }
    };
    let ((), outcome) =
        retry_with_state(policy, give_up, (), attempt_without_state, worth_retrying).await;
    outcome
}

/// [`retry`] for an attempt that keeps state from one try to the next (what a write batch has
/// settled already, say): each attempt takes `state` and hands it back with its outcome, and the
/// last attempt's state is returned with the outcome. The state travels by value because the
/// store's futures must be `Send`, which the compiler cannot yet prove of a closure whose
/// futures borrow from it (an async closure).
pub(crate) async fn retry_with_state<S, T, E, Attempt>(
    policy: RetryPolicy,
    give_up: GiveUp,
    mut state: S,
    mut attempt: impl FnMut(S) -> Attempt,
    mut worth_retrying: impl FnMut(&E) -> bool,
) -> (S, Result<T, E>)
where
    Attempt: Future<Output = (S, Result<T, E>)>,
{
    let mut pause = policy.first_pause;
    loop {
        let error = match attempt(state).await {
            (state, Ok(value)) => return (state, Ok(value)),
            (returned, Err(error)) => {
                state = returned;
                error
            }
        };
        if give_up.reached() || !worth_retrying(&error) {
            return (state, Err(error));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(policy.max_pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        first_pause: Duration::from_millis(10),
        max_pause: Duration::from_millis(40),
    };

    /// An error naming the attempt (counted from 1) that failed, and whether it is worth a retry.
    #[derive(Debug, PartialEq, Eq)]
    struct Failure {
        attempt: usize,
        transient: bool,
    }

    /// Runs [`retry`] on an attempt that fails with `failures(attempt)` (or succeeds when that is
    /// `None`), and returns its result with the times since the start at which each attempt ran.
    async fn run(
        give_up: GiveUp,
        failures: impl Fn(usize) -> Option<bool>,
    ) -> (Result<usize, Failure>, Vec<Duration>) {
        let start = Instant::now();
        let mut times = Vec::new();
        let result = retry(
            POLICY,
            give_up,
            || {
                times.push(start.elapsed());
                let attempt = times.len();
                let outcome = match failures(attempt) {
                    None => Ok(attempt),
                    Some(transient) => Err(Failure { attempt, transient }),
                };
                std::future::ready(outcome)
            },
            |failure| failure.transient,
        )
        .await;
        (result, times)
    }

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_returns_at_once() {
        let (result, times) = run(GiveUp::Never, |_| None).await;
        assert_eq!(result, Ok(1));
        assert_eq!(times, millis(&[0]));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_worth_retrying_is_tried_again_until_it_succeeds() {
        let (result, times) = run(GiveUp::after(Duration::from_secs(1)), |attempt| {
            (attempt < 3).then_some(true)
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(times, millis(&[0, 10, 30]));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_not_worth_retrying_is_returned_at_once() {
        // A helper that retried it anyway would get the success of the third attempt.
        let (result, times) = run(GiveUp::Never, |attempt| match attempt {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        })
        .await;
        assert_eq!(
            result,
            Err(Failure {
                attempt: 2,
                transient: false
            })
        );
        assert_eq!(
            times,
            millis(&[0, 10]),
            "one retry, for the transient error"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_pause_doubles_up_to_its_maximum() {
        let (result, times) = run(GiveUp::Never, |attempt| (attempt < 6).then_some(true)).await;
        assert_eq!(result, Ok(6));
        // Pauses of 10, 20, 40, 40 and 40 ms.
        assert_eq!(times, millis(&[0, 10, 30, 70, 110, 150]));
    }

    #[tokio::test(start_paused = true)]
    async fn it_gives_up_with_the_first_failure_past_the_deadline() {
        let mut asked = 0;
        let start = Instant::now();
        let mut attempts = 0;
        // Fails with the time of the attempt, in milliseconds since the start; a helper that
        // missed the deadline would get the success of the tenth attempt.
        let result: Result<(), u128> = retry(
            POLICY,
            GiveUp::after(Duration::from_millis(30)),
            || {
                attempts += 1;
                let outcome = if attempts < 10 {
                    Err(start.elapsed().as_millis())
                } else {
                    Ok(())
                };
                std::future::ready(outcome)
            },
            |_| {
                asked += 1;
                true
            },
        )
        .await;
        // Attempts at 0, 10 and 30 ms: the third fails at the deadline and is not retried.
        assert_eq!(result, Err(30));
        assert_eq!(
            asked, 2,
            "the test of the error is not asked once time is up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_allows_one_attempt() {
        let (result, times) = run(GiveUp::after(Duration::ZERO), |attempt| {
            (attempt < 10).then_some(true)
        })
        .await;
        assert_eq!(
            result,
            Err(Failure {
                attempt: 1,
                transient: true
            })
        );
        assert_eq!(times, millis(&[0]));
    }

    #[tokio::test(start_paused = true)]
    async fn the_state_goes_from_each_attempt_to_the_next_and_back() {
        let (tries, result) = retry_with_state(
            POLICY,
            GiveUp::Never,
            Vec::new(),
            |mut tries: Vec<usize>| async move {
                tries.push(tries.len() + 1);
                let outcome = if tries.len() < 3 { Err(()) } else { Ok(()) };
                (tries, outcome)
            },
            |_| true,
        )
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(tries, [1, 2, 3]);
    }
}
