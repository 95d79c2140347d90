//! Key encodings of the trees. Every key sorts bytewise in the order its index is read.

use runner_core::feed::DeliveryKey;
use runner_core::ids::{AccountAlias, ExecutionId, JobId, ScheduleId};
use runner_core::time::Timestamp;

/// A timestamp as 8 bytes that sort like the signed number (big endian, sign bit flipped).
pub(crate) fn time(at: Timestamp) -> [u8; 8] {
    (u64::from_ne_bytes(at.to_ne_bytes()) ^ (1 << 63)).to_be_bytes()
}

/// The alias, length-prefixed so that no alias is a key prefix of another ("AB" vs "ABC").
fn alias(alias: &AccountAlias) -> Vec<u8> {
    let bytes = alias.as_str().as_bytes();
    let mut key = Vec::with_capacity(1 + bytes.len() + 40);
    // An alias has 1 to 32 characters, so its length fits a byte.
    key.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    key.extend_from_slice(bytes);
    key
}

/// `jobs` and the `jobs_by_account` suffix: the job's UUID.
pub(crate) fn job(id: JobId) -> [u8; 16] {
    *id.0.as_bytes()
}

/// `executions`, `pending_position`: the execution's UUID.
pub(crate) fn execution(id: ExecutionId) -> [u8; 16] {
    *id.0.as_bytes()
}

/// The prefix of an account's jobs in `jobs_by_account`.
pub(crate) fn account_jobs(account: &AccountAlias) -> Vec<u8> {
    alias(account)
}

/// `jobs_by_account`: account, creation time, job id (read backwards: newest first).
pub(crate) fn account_job(account: &AccountAlias, created: Timestamp, id: JobId) -> Vec<u8> {
    let mut key = alias(account);
    key.extend_from_slice(&time(created));
    key.extend_from_slice(&job(id));
    key
}

/// The prefix of a job's executions in `executions_by_job`.
pub(crate) fn job_executions(account: &AccountAlias, job_id: JobId) -> Vec<u8> {
    let mut key = alias(account);
    key.extend_from_slice(&job(job_id));
    key
}

/// `executions_by_job`: account, job, creation time, execution id.
pub(crate) fn job_execution(
    account: &AccountAlias,
    job_id: JobId,
    created: Timestamp,
    id: ExecutionId,
) -> Vec<u8> {
    let mut key = job_executions(account, job_id);
    key.extend_from_slice(&time(created));
    key.extend_from_slice(&execution(id));
    key
}

/// `deadlines`: the deadline, then the execution id.
pub(crate) fn deadline(at: Timestamp, id: ExecutionId) -> [u8; 24] {
    let mut key = [0; 24];
    key[..8].copy_from_slice(&time(at));
    key[8..].copy_from_slice(&execution(id));
    key
}

/// `ended`: the end time, then the execution id (the layout of a `deadlines` key, so
/// [`deadline_time`] and [`execution_id_at`] read it back).
pub(crate) fn ended(at: Timestamp, id: ExecutionId) -> [u8; 24] {
    deadline(at, id)
}

/// The deadline a `deadlines` key starts with.
pub(crate) fn deadline_time(key: &[u8]) -> Option<Timestamp> {
    let bytes: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let raw = u64::from_be_bytes(bytes) ^ (1 << 63);
    Some(i64::from_ne_bytes(raw.to_ne_bytes()))
}

/// The execution id a `deadlines` key ends with, or a `pending` value holds.
pub(crate) fn execution_id_at(bytes: &[u8]) -> Option<ExecutionId> {
    let raw: [u8; 16] = bytes.get(bytes.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(ExecutionId(uuid_from(raw)))
}

/// The prefix of every execution of an account in `executions_by_job` (all its jobs).
pub(crate) fn account_executions(account: &AccountAlias) -> Vec<u8> {
    alias(account)
}

/// The job, creation time and execution id at the end of an `executions_by_job` key, so a
/// search can filter on them without reading the execution.
pub(crate) fn job_execution_at(bytes: &[u8]) -> Option<(JobId, Timestamp, ExecutionId)> {
    let start = bytes.len().checked_sub(40)?;
    let job: [u8; 16] = bytes.get(start..start + 16)?.try_into().ok()?;
    let created = deadline_time(bytes.get(start + 16..)?)?;
    Some((JobId(uuid_from(job)), created, execution_id_at(bytes)?))
}

/// The job id a `jobs_by_account` key ends with.
pub(crate) fn job_id_at(bytes: &[u8]) -> Option<JobId> {
    let raw: [u8; 16] = bytes.get(bytes.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(JobId(uuid_from(raw)))
}

fn uuid_from(raw: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(raw)
}

/// `service_accounts`: account, then the service account's name.
pub(crate) fn service_account(account: &AccountAlias, name: &str) -> Vec<u8> {
    let mut key = alias(account);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `key_pairs` and `inventory` (see `named.rs`): account, then the record's name (so an
/// account's records list by name).
pub(crate) fn named(account: &AccountAlias, name: &str) -> Vec<u8> {
    service_account(account, name)
}

/// The prefix of an account's records in a tree of [`named`] keys.
pub(crate) fn account_named(account: &AccountAlias) -> Vec<u8> {
    alias(account)
}

/// The prefix of an account's service accounts in `service_accounts_by_account`.
pub(crate) fn account_service_accounts(account: &AccountAlias) -> Vec<u8> {
    alias(account)
}

/// `service_accounts_by_account`: account, creation time, name (read backwards: newest first).
pub(crate) fn account_service_account(
    account: &AccountAlias,
    created: Timestamp,
    name: &str,
) -> Vec<u8> {
    let mut key = alias(account);
    key.extend_from_slice(&time(created));
    key.extend_from_slice(name.as_bytes());
    key
}

/// The name a `service_accounts_by_account` key of `account` ends with.
pub(crate) fn service_account_name_at(account: &AccountAlias, key: &[u8]) -> Option<String> {
    let name = key.get(alias(account).len() + 8..)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `schedules`: the schedule's UUID.
pub(crate) fn schedule(id: ScheduleId) -> [u8; 16] {
    *id.0.as_bytes()
}

/// `job_schedules`, and the prefix of a job's schedules in `schedules_by_job`: account, job.
pub(crate) fn job_schedules(account: &AccountAlias, job_id: JobId) -> Vec<u8> {
    job_executions(account, job_id)
}

/// `schedules_by_job`: account, job, creation time, schedule id (read backwards: newest first).
pub(crate) fn job_schedule(
    account: &AccountAlias,
    job_id: JobId,
    created: Timestamp,
    id: ScheduleId,
) -> Vec<u8> {
    let mut key = job_schedules(account, job_id);
    key.extend_from_slice(&time(created));
    key.extend_from_slice(&schedule(id));
    key
}

/// The schedule id a `schedules_by_job` or `fire_times` key ends with.
pub(crate) fn schedule_id_at(bytes: &[u8]) -> Option<ScheduleId> {
    let raw: [u8; 16] = bytes.get(bytes.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(ScheduleId(uuid_from(raw)))
}

/// The schedule ids of a `job_schedules` value (16 bytes each).
pub(crate) fn schedule_ids(value: &[u8]) -> impl Iterator<Item = ScheduleId> + '_ {
    value
        .chunks_exact(16)
        .filter_map(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(|raw| ScheduleId(uuid_from(raw)))
}

/// `fire_times`: the next fire time, then the schedule id.
pub(crate) fn fire_time(at: Timestamp, id: ScheduleId) -> [u8; 24] {
    let mut key = [0; 24];
    key[..8].copy_from_slice(&time(at));
    key[8..].copy_from_slice(&schedule(id));
    key
}

/// The fire time a `fire_times` key starts with.
pub(crate) fn fire_time_at(key: &[u8]) -> Option<Timestamp> {
    deadline_time(key)
}

/// `fired`: the schedule id, then the due time it created an execution for.
pub(crate) fn fired(id: ScheduleId, due: Timestamp) -> [u8; 24] {
    let mut key = [0; 24];
    key[..16].copy_from_slice(&schedule(id));
    key[16..].copy_from_slice(&time(due));
    key
}

/// `meta`: how many jobs an account has.
pub(crate) fn job_count(account: &AccountAlias) -> Vec<u8> {
    let mut key = vec![b'j'];
    key.extend_from_slice(&alias(account));
    key
}

/// `meta`: how many executions a job has (under its account).
pub(crate) fn execution_count(account: &AccountAlias, job_id: JobId) -> Vec<u8> {
    let mut key = vec![b'e'];
    key.extend_from_slice(&job_executions(account, job_id));
    key
}

/// `meta`: how many executions of a job have not ended (a job is deletable at zero).
pub(crate) fn active_count(job_id: JobId) -> Vec<u8> {
    let mut key = vec![b'a'];
    key.extend_from_slice(&job(job_id));
    key
}

/// `meta`: the one-at-a-time executions of a job that have not ended (see
/// `runner_core::overlap`), 16 bytes each: what the claim and start rules read.
pub(crate) fn one_at_a_time(job_id: JobId) -> Vec<u8> {
    let mut key = vec![b'o'];
    key.extend_from_slice(&job(job_id));
    key
}

/// The execution ids of a list value (16 bytes each), as [`one_at_a_time`] keeps them.
pub(crate) fn execution_ids(value: &[u8]) -> impl Iterator<Item = ExecutionId> + '_ {
    value
        .chunks_exact(16)
        .filter_map(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(|raw| ExecutionId(uuid_from(raw)))
}

/// A `pending` value: the execution id, after a marker byte for a one-at-a-time execution, so
/// that a claim reads only those records before its transaction (see `writer.rs`).
pub(crate) fn pending_entry(id: ExecutionId, one_at_a_time: bool) -> Vec<u8> {
    let mut value = Vec::with_capacity(17);
    if one_at_a_time {
        value.push(1);
    }
    value.extend_from_slice(&execution(id));
    value
}

/// Whether a `pending` value marks a one-at-a-time execution ([`pending_entry`]).
pub(crate) fn pending_is_one_at_a_time(value: &[u8]) -> bool {
    value.len() == 17 && value[0] == 1
}

/// `meta`: how many service accounts an account has.
pub(crate) fn service_account_count(account: &AccountAlias) -> Vec<u8> {
    let mut key = vec![b's'];
    key.extend_from_slice(&alias(account));
    key
}

/// `meta`: how many schedules run under a service account (it is deletable at zero).
pub(crate) fn service_account_users(account: &AccountAlias, name: &str) -> Vec<u8> {
    let mut key = vec![b'u'];
    key.extend_from_slice(&service_account(account, name));
    key
}

/// `events`: the execution, then the event's sequence number (big endian): an execution's feed
/// is one contiguous range, in order.
pub(crate) fn event(id: ExecutionId, sequence: u64) -> [u8; 24] {
    let mut key = [0; 24];
    key[..16].copy_from_slice(&execution(id));
    key[16..].copy_from_slice(&sequence.to_be_bytes());
    key
}

/// The length of a delivery queue's prefix in `outbox` and `outbox_failed`: execution, callback.
pub(crate) const QUEUE_LEN: usize = 20;

/// `outbox`, `outbox_failed`: the execution, the callback's index, the event's sequence number
/// (big endian): each (execution, callback) queue is one contiguous range, its head first.
pub(crate) fn delivery(key: &DeliveryKey) -> [u8; 28] {
    let mut bytes = [0; 28];
    bytes[..16].copy_from_slice(&execution(key.execution_id));
    bytes[16..QUEUE_LEN].copy_from_slice(&key.callback.to_be_bytes());
    bytes[QUEUE_LEN..].copy_from_slice(&key.sequence.to_be_bytes());
    bytes
}

/// The [`DeliveryKey`] an `outbox` key encodes.
pub(crate) fn delivery_key_at(bytes: &[u8]) -> Option<DeliveryKey> {
    let bytes: &[u8; 28] = bytes.try_into().ok()?;
    let (id, rest) = bytes.split_at(16);
    let (callback, sequence) = rest.split_at(4);
    Some(DeliveryKey {
        execution_id: ExecutionId(uuid_from(id.try_into().ok()?)),
        callback: u32::from_be_bytes(callback.try_into().ok()?),
        sequence: u64::from_be_bytes(sequence.try_into().ok()?),
    })
}

/// The first key after every key of the delivery queue `outbox_key` belongs to (the queue
/// prefix plus one, big endian); `None` after the last possible queue.
pub(crate) fn next_queue(outbox_key: &[u8]) -> Option<Vec<u8>> {
    let mut queue = outbox_key.get(..QUEUE_LEN)?.to_vec();
    for byte in queue.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(queue);
        }
    }
    None
}

/// `meta`: the next position in the claim queue.
pub(crate) const QUEUE_TAIL: &[u8] = b"q";

/// `meta`: the on-disk format of this store.
pub(crate) const FORMAT: &[u8] = b"format";

/// In `meta`: a value sealed with the key the store's secrets are sealed with (see
/// [`runner_core::seal::Keyring::canary`]); absent while the store keeps secrets in clear.
pub(crate) const SECRET_CANARY: &[u8] = b"secret_canary";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_like_numbers() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in times.windows(2) {
            assert!(time(pair[0]) < time(pair[1]), "{pair:?}");
        }
        for at in times {
            assert_eq!(deadline_time(&deadline(at, ExecutionId::new())), Some(at));
        }
    }

    #[test]
    fn aliases_do_not_prefix_each_other() {
        let short: AccountAlias = "AB".parse().unwrap();
        let long: AccountAlias = "ABC".parse().unwrap();
        let key = account_job(&long, 0, JobId::new());
        assert!(!key.starts_with(&account_jobs(&short)));
        assert!(key.starts_with(&account_jobs(&long)));
    }

    #[test]
    fn schedule_keys_read_back() {
        let account: AccountAlias = "ACME".parse().unwrap();
        let key = account_service_account(&account, 7, "svc.a");
        assert!(key.starts_with(&account_service_accounts(&account)));
        assert_eq!(
            service_account_name_at(&account, &key).as_deref(),
            Some("svc.a")
        );
        let id = ScheduleId::new();
        assert_eq!(fire_time_at(&fire_time(-3, id)), Some(-3));
        assert_eq!(schedule_id_at(&fire_time(-3, id)), Some(id));
        let job_id = JobId::new();
        let listed = job_schedule(&account, job_id, 5, id);
        assert!(listed.starts_with(&job_schedules(&account, job_id)));
        assert_eq!(schedule_id_at(&listed), Some(id));
        let other = ScheduleId::new();
        let value = [schedule(id), schedule(other)].concat();
        assert_eq!(schedule_ids(&value).collect::<Vec<_>>(), [id, other]);
    }

    #[test]
    fn feed_keys_sort_by_queue_then_sequence() {
        let id = ExecutionId::new();
        let key = |callback, sequence| DeliveryKey {
            execution_id: id,
            callback,
            sequence,
        };
        // Sequence 256 after 255 (big endian), and every delivery of callback 0 before callback 1.
        assert!(delivery(&key(0, 255)) < delivery(&key(0, 256)));
        assert!(delivery(&key(0, u64::MAX)) < delivery(&key(1, 1)));
        assert!(event(id, 255) < event(id, 256));
        assert_eq!(delivery_key_at(&delivery(&key(7, 300))), Some(key(7, 300)));
        assert_eq!(delivery_key_at(&event(id, 1)), None);

        let next = next_queue(&delivery(&key(0, u64::MAX))).unwrap();
        assert!(delivery(&key(0, u64::MAX))[..] < next[..]);
        assert_eq!(next[..], delivery(&key(1, 0))[..QUEUE_LEN]);
        // A carry across the callback's bytes into the execution id.
        let carried = next_queue(&delivery(&key(u32::MAX, 9))).unwrap();
        assert!(delivery(&key(u32::MAX, u64::MAX))[..] < carried[..]);
        assert_eq!(&carried[16..], &[0, 0, 0, 0]);
        assert_eq!(next_queue(&[u8::MAX; 28]), None);
    }

    #[test]
    fn ids_read_back() {
        let id = ExecutionId::new();
        assert_eq!(execution_id_at(&deadline(5, id)), Some(id));
        let job_id = JobId::new();
        assert_eq!(
            job_id_at(&account_job(&"A".parse().unwrap(), 1, job_id)),
            Some(job_id)
        );
    }
}
