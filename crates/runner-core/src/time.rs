//! Time: the [`Clock`] trait, the system clock and a mock clock for tests that travel in time.
//!
//! Every time the engine and the state machine look at is a [`Timestamp`]: milliseconds since the
//! Unix epoch, UTC, the unit the API shows. Nothing in `runner-core` reads the wall clock directly,
//! so a test can drive TTLs, leases and stop escalations with [`MockClock::advance`] instead of sleeping.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

/// Milliseconds since the Unix epoch (UTC), as the API renders every time.
pub type Timestamp = i64;

/// Adds a duration to a timestamp, saturating instead of overflowing.
pub fn after(at: Timestamp, duration: Duration) -> Timestamp {
    at.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// A source of time that can also wait.
///
/// The engine only sleeps through its clock, so a [`MockClock`] controls every timer in a test.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Resolves once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> impl Future<Output = ()> + Send;
}

impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Timestamp) -> impl Future<Output = ()> + Send {
        (**self).sleep_until(deadline)
    }
}

/// The wall clock, with tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let wait = deadline.saturating_sub(self.now());
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
    }
}

/// A clock that only moves when a test moves it.
///
/// Cloning gives another handle to the same time, so a test keeps one handle and hands another to
/// the engine.
///
/// ```
/// use runner_core::time::{Clock, MockClock};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = MockClock::at(1_000);
/// let sleeper = tokio::spawn({
///     let clock = clock.clone();
///     async move { clock.sleep_until(6_000).await }
/// });
/// clock.advance(Duration::from_secs(5));
/// sleeper.await.unwrap();
/// assert_eq!(clock.now(), 6_000);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MockClock {
    inner: Arc<MockInner>,
}

#[derive(Debug, Default)]
struct MockInner {
    now: AtomicI64,
    next_sleeper: AtomicU64,
    sleepers: Mutex<BTreeMap<(Timestamp, u64), oneshot::Sender<()>>>,
    /// Told each time a task starts to sleep, for the `wait_for_*` methods.
    armed: tokio::sync::Notify,
}

impl MockClock {
    /// A mock clock that reads `now`.
    pub fn at(now: Timestamp) -> Self {
        let clock = Self::default();
        clock.inner.now.store(now, Ordering::SeqCst);
        clock
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    pub fn advance(&self, by: Duration) {
        let now = after(self.inner.now.load(Ordering::SeqCst), by);
        self.set(now);
    }

    /// Sets the time (never backwards) and wakes every sleeper whose deadline has come.
    pub fn set(&self, now: Timestamp) {
        self.inner.now.fetch_max(now, Ordering::SeqCst);
        let now = self.inner.now.load(Ordering::SeqCst);
        let mut sleepers = self.inner.sleepers.lock().expect("mock clock poisoned");
        let later = sleepers.split_off(&(now.saturating_add(1), 0));
        for (_, wake) in std::mem::replace(&mut *sleepers, later) {
            let _ = wake.send(());
        }
    }

    /// Whether a task is waiting on this clock for exactly `deadline` (sleeps whose future was
    /// dropped do not count): lets a test wait until a particular timer is armed before it moves
    /// time past it.
    pub fn is_sleeping_until(&self, deadline: Timestamp) -> bool {
        self.inner
            .sleepers
            .lock()
            .expect("mock clock poisoned")
            .range((deadline, 0)..=(deadline, u64::MAX))
            .any(|(_, wake)| !wake.is_closed())
    }

    /// Waits until [`MockClock::is_sleeping_until`] `deadline`: a test signal, so a test waits
    /// for a timer to be armed instead of polling.
    pub async fn wait_for_sleep_until(&self, deadline: Timestamp) {
        self.wait_for(|clock| clock.is_sleeping_until(deadline))
            .await;
    }

    /// Waits until at least `count` tasks sleep on this clock (see [`MockClock::sleepers`]).
    pub async fn wait_for_sleepers(&self, count: usize) {
        self.wait_for(|clock| clock.sleepers() >= count).await;
    }

    async fn wait_for(&self, armed: impl Fn(&Self) -> bool) {
        loop {
            // Registered before the check, so a sleep that starts in between still wakes us.
            let told = self.inner.armed.notified();
            tokio::pin!(told);
            told.as_mut().enable();
            if armed(self) {
                return;
            }
            told.await;
        }
    }

    /// How many tasks are waiting on this clock; lets a test wait until the engine is parked.
    /// Counts sleeps whose future was dropped until time passes their deadline.
    pub fn sleepers(&self) -> usize {
        self.inner
            .sleepers
            .lock()
            .expect("mock clock poisoned")
            .len()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        self.inner.now.load(Ordering::SeqCst)
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let woken = {
            let mut sleepers = self.inner.sleepers.lock().expect("mock clock poisoned");
            if deadline <= self.now() {
                return;
            }
            let (wake, woken) = oneshot::channel();
            let ticket = self.inner.next_sleeper.fetch_add(1, Ordering::Relaxed);
            sleepers.insert((deadline, ticket), wake);
            woken
        };
        self.inner.armed.notify_waiters();
        let _ = woken.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mock_clock_wakes_only_due_sleepers() {
        let clock = MockClock::at(0);
        let early = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(10).await }
        });
        let late = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(100).await }
        });
        clock.wait_for_sleepers(2).await;
        clock.advance(Duration::from_millis(10));
        early.await.unwrap();
        assert!(!late.is_finished());
        assert_eq!(clock.sleepers(), 1);
        clock.set(100);
        late.await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_sleep_is_not_a_sleeper_until_its_deadline() {
        let clock = MockClock::at(0);
        assert!(!clock.is_sleeping_until(10));
        let armed = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(10).await }
        });
        clock.wait_for_sleep_until(10).await;
        assert!(!clock.is_sleeping_until(11));
        armed.abort();
        let _ = armed.await;
        assert!(
            !clock.is_sleeping_until(10),
            "an abandoned sleep counts as none"
        );
    }

    #[tokio::test]
    async fn sleeping_until_the_past_returns_at_once() {
        let clock = MockClock::at(50);
        clock.sleep_until(10).await;
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn mock_clock_never_goes_back() {
        let clock = MockClock::at(50);
        clock.set(10);
        assert_eq!(clock.now(), 50);
    }
}
