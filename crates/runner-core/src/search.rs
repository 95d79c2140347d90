//! Finding executions: the filters of `GET /executions/{alias}` and of a job's executions list.
//!
//! One rule, used by every store (the memory and sled stores test it row by row, PostgreSQL turns
//! it into a `WHERE` clause): an execution matches when its status is one of `statuses` (any
//! status when empty), its job is `job_id` (when set), and its creation time is in
//! `since <= created_time < until` (either bound optional). Creation time, not the start of a
//! run, because every execution has one, it never changes, and listings are ordered by it.
//!
//! A search counts its matches only up to [`COUNT_AHEAD`] past the page ([`count_limit`]): an
//! exact count of a million matches reads a million index entries (300 ms and more on
//! PostgreSQL), while the page itself reads `offset + size`. Past the limit the page says
//! `totalSizeExact: false` and `totalSize` is the limit, so a client knows that at least that
//! many (and at least one more page) exist. Every store applies the same limit ([`counted`]), so
//! the answer does not depend on the store.

use std::cmp::Reverse;

use crate::execution::{Execution, Status};
use crate::ids::{ExecutionId, JobId};
use crate::page::{Page, PageRequest};
use crate::time::Timestamp;
use crate::validation::ValidationErrors;

/// Which executions a listing returns. The default matches every execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Executions in one of these statuses; every status when empty. Sorted, without repeats.
    pub statuses: Vec<Status>,
    /// Only the executions of this job.
    pub job_id: Option<JobId>,
    /// Executions created at or after this time (epoch ms).
    pub since: Option<Timestamp>,
    /// Executions created before this time (epoch ms).
    pub until: Option<Timestamp>,
}

impl ExecutionFilter {
    /// True when the filter lets every execution through (so a store can take its plain listing).
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
            && self.job_id.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// Whether `execution` passes the filter (the rule in the [module docs](self)).
    pub fn matches(&self, execution: &Execution) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&execution.status))
            && self.job_id.is_none_or(|job| job == execution.job_id)
            && self
                .since
                .is_none_or(|since| execution.created_time >= since)
            && self
                .until
                .is_none_or(|until| execution.created_time < until)
    }

    /// Reads the query parameters `status`, `jobId`, `since` and `until` from `pairs` (the
    /// decoded query string, in order), reporting every bad one at once with its name.
    ///
    /// `status` takes one status or several separated by commas, and may be repeated
    /// (`status=FAILURE,STOPPED` and `status=FAILURE&status=STOPPED` are the same filter).
    /// `since` and `until` are epoch milliseconds; an empty range (`until` at or below `since`)
    /// matches nothing.
    ///
    /// ```
    /// use runner_core::execution::Status;
    /// use runner_core::search::ExecutionFilter;
    /// let pairs = [("status", "FAILURE,STOPPED"), ("since", "1000")];
    /// let filter = ExecutionFilter::parse(pairs.iter().map(|(k, v)| (*k, *v))).unwrap();
    /// assert_eq!(filter.statuses, vec![Status::Failure, Status::Stopped]);
    /// assert_eq!(filter.since, Some(1000));
    /// let bad = [("status", "LOST"), ("until", "soon")];
    /// let errors = ExecutionFilter::parse(bad.iter().map(|(k, v)| (*k, *v))).unwrap_err();
    /// assert_eq!(errors.errors.len(), 2);
    /// ```
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut filter = Self::default();
        for (name, value) in pairs {
            match name {
                "status" => {
                    for raw in value.split(',').map(str::trim) {
                        match Status::ALL.iter().find(|status| status.as_str() == raw) {
                            Some(status) => filter.statuses.push(*status),
                            None => errors.add(
                                "status",
                                format!(
                                    "{raw:?} is not a status; use one or more of {}",
                                    Status::ALL.map(Status::as_str).join(", ")
                                ),
                            ),
                        }
                    }
                }
                "jobId" => match value.trim().parse::<JobId>() {
                    Ok(job) => filter.job_id = Some(job),
                    Err(_) => errors.add("jobId", "must be a job id (a UUID)"),
                },
                "since" | "until" => match value.trim().parse::<Timestamp>() {
                    Ok(at) if at >= 0 => {
                        let bound = if name == "since" {
                            &mut filter.since
                        } else {
                            &mut filter.until
                        };
                        *bound = Some(at);
                    }
                    _ => errors.add(name, "must be a time in epoch milliseconds (0 or more)"),
                },
                _ => {}
            }
        }
        filter.statuses.sort();
        filter.statuses.dedup();
        errors.into_result().map(|()| filter)
    }
}

/// The order of a search, as a sort key: newest first by creation time, then by id, both
/// descending (ids compare as their bytes, as PostgreSQL compares `uuid`s).
pub fn newest_first(created_time: Timestamp, id: ExecutionId) -> Reverse<(Timestamp, ExecutionId)> {
    Reverse((created_time, id))
}

/// How many matches past the end of the page a search counts exactly.
pub const COUNT_AHEAD: u64 = 1_000;

/// How far a search counts for `page`: `offset + size + COUNT_AHEAD` matches. A store may stop
/// counting there and pass what it counted to [`counted`].
pub fn count_limit(page: PageRequest) -> u64 {
    page.offset()
        .saturating_add(u64::from(page.size))
        .saturating_add(COUNT_AHEAD)
}

/// The page of a search that counted `matches` (exactly, or up to [`count_limit`]): the total is
/// exact below the limit, and the limit, flagged as a lower bound, from there on.
///
/// ```
/// use runner_core::page::PageRequest;
/// use runner_core::search::{COUNT_AHEAD, count_limit, counted};
/// let page = PageRequest { page: 2, size: 10 };
/// assert_eq!(count_limit(page), 30 + COUNT_AHEAD);
/// let few = counted(page, 25, vec![20, 21, 22, 23, 24]);
/// assert_eq!((few.total_size, few.total_size_exact), (25, true));
/// let many = counted(page, 1_000_000, vec![0; 10]);
/// assert_eq!((many.total_size, many.total_size_exact), (30 + COUNT_AHEAD, false));
/// ```
pub fn counted<T>(page: PageRequest, matches: u64, results: Vec<T>) -> Page<T> {
    let limit = count_limit(page);
    let mut found = Page::new(page, matches.min(limit), results);
    found.total_size_exact = matches < limit;
    found
}
