//! [`forward_store!`](crate::forward_store): one way to hand a store's methods to another store.

/// Implements store roles for a wrapper by handing every method to an inner store.
///
/// The macro writes every method of each role it names, the provided ones
/// ([`ExecutionStore::start_execution`](crate::store::ExecutionStore::start_execution),
/// [`ClaimStore::job_to_run`](crate::store::ClaimStore::job_to_run)) included, so a wrapper
/// cannot miss one and silently run the trait's default instead of its inner store's. Two forms:
///
/// - One inner store, reached by an expression of the wrapper: `impl[GENERICS] for WRAPPER =>
///   INNER, |this| EXPR; ROLES`. Each role is implemented where `INNER` implements it, and each
///   method returns the inner store's future as it is.
/// - A dispatch macro, for enums of stores: `impl[GENERICS] for WRAPPER => dispatch MACRO;
///   ROLES`, where `MACRO!(self, store => CALL)` evaluates `CALL` with `store` bound to the
///   inner store of whichever variant `self` is. Async methods await the call inside one `async`
///   block.
///
/// ```
/// use std::sync::Arc;
/// use runner_core::store::prelude::*;
/// # use runner_core::testkit::fixtures::{alias, job};
///
/// /// A store that lives as long as some other resource.
/// struct Scoped<S> {
///     store: S,
///     _lease: Arc<()>,
/// }
///
/// runner_core::forward_store!(impl[S] for Scoped<S> => S, |this| &this.store;
///     JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore, InventoryStore,
///     RetentionStore, SignalSource, ScheduleStore);
///
/// enum Either<A, B> {
///     Left(A),
///     Right(B),
/// }
///
/// macro_rules! either {
///     ($self:ident, $store:ident => $call:expr) => {
///         match $self {
///             Either::Left($store) => $call,
///             Either::Right($store) => $call,
///         }
///     };
/// }
///
/// runner_core::forward_store!(impl[A: Store, B: Store] for Either<A, B> => dispatch either;
///     JobStore, ExecutionStore, ClaimStore, FeedStore, OutboxStore, RunLogStore, KeyPairStore, InventoryStore,
///     RetentionStore, SignalSource);
///
/// fn is_a_store(_: &impl Store) {}
/// # async fn demo() {
/// let scoped = Scoped { store: runner_store_memory::MemoryStore::new(), _lease: Arc::new(()) };
/// is_a_store(&scoped);
/// let job = job("ACME", 0);
/// scoped.insert_job(&job).await.unwrap();
/// assert!(scoped.get_job(&alias("ACME"), job.id).await.unwrap().is_some());
/// let either: Either<_, runner_store_memory::MemoryStore> = Either::Left(scoped);
/// assert!(either.get_job(&alias("ACME"), job.id).await.unwrap().is_some());
/// # }
/// ```
#[macro_export]
macro_rules! forward_store {
    (impl $generics:tt for $wrapper:ty => $inner:ty, |$this:ident| $get:expr;
        $($role:ident),+ $(,)?) => {
        $(
            $crate::forward_store!(@role $role $generics [$wrapper]
                [where $inner: $crate::store::$role] (inner |$this| $get));
        )+
    };
    (impl $generics:tt for $wrapper:ty => dispatch $dispatch:ident;
        $($role:ident),+ $(,)?) => {
        $(
            $crate::forward_store!(@role $role $generics [$wrapper] [] (dispatch $dispatch));
        )+
    };

    // How a method reaches the inner store.
    // (Calls name the role, so the caller need not have it in scope.)
    (@async $self:ident (inner |$this:ident| $get:expr)
        $role:ident::$method:ident($($arg:expr),*)) => {{
        let $this = $self;
        $crate::store::$role::$method($get, $($arg),*)
    }};
    (@async $self:ident (dispatch $dispatch:ident) $role:ident::$method:ident($($arg:expr),*)) => {
        async move { $dispatch!($self, store => $crate::store::$role::$method(store, $($arg),*).await) }
    };
    (@sync $self:ident (inner |$this:ident| $get:expr) $role:ident::$method:ident($($arg:expr),*)) => {{
        let $this = $self;
        $crate::store::$role::$method($get, $($arg),*)
    }};
    (@sync $self:ident (dispatch $dispatch:ident) $role:ident::$method:ident($($arg:expr),*)) => {
        $dispatch!($self, store => $crate::store::$role::$method(store, $($arg),*))
    };

    // The roles, each method once. A method added to a role must be added here too, or every
    // forwarding impl of that role fails to compile (provided methods excepted: list them here).
    (@role JobStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::JobStore for $wrapper $($bounds)* {
            fn insert_job(
                &self,
                job: &$crate::job::Job,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how JobStore::insert_job(job))
            }
            fn get_job(
                &self,
                alias: &$crate::ids::AccountAlias,
                id: $crate::ids::JobId,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::job::Job>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how JobStore::get_job(alias, id))
            }
            fn update_job(
                &self,
                job: &$crate::job::Job,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how JobStore::update_job(job))
            }
            fn delete_job(
                &self,
                alias: &$crate::ids::AccountAlias,
                id: $crate::ids::JobId,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how JobStore::delete_job(alias, id))
            }
            fn list_jobs(
                &self,
                alias: &$crate::ids::AccountAlias,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<$crate::page::Page<$crate::job::Job>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how JobStore::list_jobs(alias, page))
            }
        }
    };
    (@role ExecutionStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::ExecutionStore for $wrapper $($bounds)* {
            fn insert_execution(
                &self,
                execution: &$crate::execution::Execution,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ExecutionStore::insert_execution(execution))
            }
            fn start_execution<F>(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                make: F,
            ) -> impl ::core::future::Future<
                Output = Result<$crate::execution::Execution, $crate::store::StoreError>,
            > + Send
            where
                F: FnMut(&$crate::job::Job) -> $crate::execution::Execution + Send,
            {
                $crate::forward_store!(@async self $how ExecutionStore::start_execution(alias, job_id, make))
            }
            fn get_execution(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                id: $crate::ids::ExecutionId,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::execution::Execution>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ExecutionStore::get_execution(alias, job_id, id))
            }
            fn list_executions(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::execution::Execution>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how ExecutionStore::list_executions(alias, job_id, page))
            }
            fn find_executions(
                &self,
                alias: &$crate::ids::AccountAlias,
                filter: &$crate::search::ExecutionFilter,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::execution::Execution>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how ExecutionStore::find_executions(alias, filter, page))
            }
            fn count_live(
                &self,
            ) -> impl ::core::future::Future<
                Output = Result<
                    Vec<($crate::execution::Status, u64)>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how ExecutionStore::count_live())
            }
            fn transition(
                &self,
                id: $crate::ids::ExecutionId,
                command: &$crate::machine::Command,
                now: $crate::time::Timestamp,
            ) -> impl ::core::future::Future<
                Output = Result<$crate::execution::Execution, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ExecutionStore::transition(id, command, now))
            }
        }
    };
    (@role ClaimStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::ClaimStore for $wrapper $($bounds)* {
            fn claim(
                &self,
                node: &$crate::ids::NodeId,
                limit: usize,
                lease_until: $crate::time::Timestamp,
                now: $crate::time::Timestamp,
            ) -> impl ::core::future::Future<
                Output = Result<Vec<$crate::execution::Execution>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ClaimStore::claim(node, limit, lease_until, now))
            }
            fn job_to_run(
                &self,
                execution: &$crate::execution::Execution,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::job::Job>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ClaimStore::job_to_run(execution))
            }
            fn due(
                &self,
                now: $crate::time::Timestamp,
                limit: usize,
            ) -> impl ::core::future::Future<
                Output = Result<Vec<$crate::execution::Execution>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ClaimStore::due(now, limit))
            }
            fn next_deadline(
                &self,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::time::Timestamp>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ClaimStore::next_deadline())
            }
        }
    };
    (@role FeedStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::FeedStore for $wrapper $($bounds)* {
            fn append_events(
                &self,
                id: $crate::ids::ExecutionId,
                attempt: u32,
                events: &[$crate::executor::ExecutorEvent],
                now: $crate::time::Timestamp,
            ) -> impl ::core::future::Future<Output = Result<u64, $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how FeedStore::append_events(id, attempt, events, now))
            }
            fn list_events(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                id: $crate::ids::ExecutionId,
                after: u64,
                limit: usize,
            ) -> impl ::core::future::Future<
                Output = Result<Vec<$crate::feed::Event>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how FeedStore::list_events(alias, job_id, id, after, limit))
            }
        }
    };
    (@role OutboxStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::OutboxStore for $wrapper $($bounds)* {
            fn claim_deliveries(
                &self,
                now: $crate::time::Timestamp,
                hold_until: $crate::time::Timestamp,
                limit: usize,
            ) -> impl ::core::future::Future<
                Output = Result<Vec<$crate::feed::Delivery>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how OutboxStore::claim_deliveries(now, hold_until, limit))
            }
            fn settle_delivery(
                &self,
                key: &$crate::feed::DeliveryKey,
                settlement: &$crate::feed::Settlement,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how OutboxStore::settle_delivery(key, settlement))
            }
            fn next_delivery_at(
                &self,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::time::Timestamp>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how OutboxStore::next_delivery_at())
            }
            fn backlog(
                &self,
            ) -> impl ::core::future::Future<Output = Result<u64, $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how OutboxStore::backlog())
            }
            fn given_up_deliveries(
                &self,
                id: $crate::ids::ExecutionId,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::feed::GivenUpDelivery>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how OutboxStore::given_up_deliveries(id, page))
            }
        }
    };
    (@role RetentionStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::RetentionStore for $wrapper $($bounds)* {
            fn purge_ended(
                &self,
                before: $crate::time::Timestamp,
                limit: usize,
            ) -> impl ::core::future::Future<Output = Result<usize, $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how RetentionStore::purge_ended(before, limit))
            }
        }
    };
    (@role RunLogStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::RunLogStore for $wrapper $($bounds)* {
            fn append_log(
                &self,
                id: $crate::ids::ExecutionId,
                attempt: u32,
                chunk: &[u8],
                cap: $crate::run_log::LogCap,
                now: $crate::time::Timestamp,
            ) -> impl ::core::future::Future<Output = Result<u64, $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how RunLogStore::append_log(id, attempt, chunk, cap, now))
            }
            fn read_log(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                id: $crate::ids::ExecutionId,
                read: $crate::store::LogRead,
            ) -> impl ::core::future::Future<
                Output = Result<$crate::run_log::LogPage, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how RunLogStore::read_log(alias, job_id, id, read))
            }
        }
    };
    (@role KeyPairStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::KeyPairStore for $wrapper $($bounds)* {
            fn insert_key_pair(
                &self,
                pair: &$crate::key_pair::KeyPair,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how KeyPairStore::insert_key_pair(pair))
            }
            fn get_key_pair(
                &self,
                alias: &$crate::ids::AccountAlias,
                name: &str,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::key_pair::KeyPair>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how KeyPairStore::get_key_pair(alias, name))
            }
            fn list_key_pairs(
                &self,
                alias: &$crate::ids::AccountAlias,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::key_pair::KeyPair>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how KeyPairStore::list_key_pairs(alias, page))
            }
            fn delete_key_pair(
                &self,
                alias: &$crate::ids::AccountAlias,
                name: &str,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how KeyPairStore::delete_key_pair(alias, name))
            }
        }
    };
    (@role InventoryStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::InventoryStore for $wrapper $($bounds)* {
            fn insert_inventory_host(
                &self,
                host: &$crate::inventory::InventoryHost,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how InventoryStore::insert_inventory_host(host))
            }
            fn get_inventory_host(
                &self,
                alias: &$crate::ids::AccountAlias,
                id: &str,
            ) -> impl ::core::future::Future<
                Output = Result<
                    Option<$crate::inventory::InventoryHost>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how InventoryStore::get_inventory_host(alias, id))
            }
            fn replace_inventory_host(
                &self,
                host: &$crate::inventory::InventoryHost,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how InventoryStore::replace_inventory_host(host))
            }
            fn list_inventory_hosts(
                &self,
                alias: &$crate::ids::AccountAlias,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::inventory::InventoryHost>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how InventoryStore::list_inventory_hosts(alias, page))
            }
            fn delete_inventory_host(
                &self,
                alias: &$crate::ids::AccountAlias,
                id: &str,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how InventoryStore::delete_inventory_host(alias, id))
            }
        }
    };
    (@role SignalSource [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::SignalSource for $wrapper $($bounds)* {
            fn subscribe(&self) -> $crate::__private::broadcast::Receiver<$crate::store::Signal> {
                $crate::forward_store!(@sync self $how SignalSource::subscribe())
            }
        }
    };
    (@role ScheduleStore [$($generics:tt)*] [$wrapper:ty] [$($bounds:tt)*] $how:tt) => {
        impl<$($generics)*> $crate::store::ScheduleStore for $wrapper $($bounds)* {
            fn insert_service_account(
                &self,
                account: &$crate::schedule::ServiceAccount,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ScheduleStore::insert_service_account(account))
            }
            fn get_service_account(
                &self,
                alias: &$crate::ids::AccountAlias,
                name: &str,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::schedule::ServiceAccount>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::get_service_account(alias, name))
            }
            fn list_service_accounts(
                &self,
                alias: &$crate::ids::AccountAlias,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::schedule::ServiceAccount>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::list_service_accounts(alias, page))
            }
            fn delete_service_account(
                &self,
                alias: &$crate::ids::AccountAlias,
                name: &str,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ScheduleStore::delete_service_account(alias, name))
            }
            fn insert_schedule(
                &self,
                schedule: &$crate::schedule::Schedule,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ScheduleStore::insert_schedule(schedule))
            }
            fn get_schedule(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                id: $crate::ids::ScheduleId,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::schedule::Schedule>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::get_schedule(alias, job_id, id))
            }
            fn update_schedule(
                &self,
                schedule: &$crate::schedule::Schedule,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ScheduleStore::update_schedule(schedule))
            }
            fn delete_schedule(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                id: $crate::ids::ScheduleId,
            ) -> impl ::core::future::Future<Output = Result<(), $crate::store::StoreError>> + Send {
                $crate::forward_store!(@async self $how ScheduleStore::delete_schedule(alias, job_id, id))
            }
            fn list_schedules(
                &self,
                alias: &$crate::ids::AccountAlias,
                job_id: $crate::ids::JobId,
                page: $crate::page::PageRequest,
            ) -> impl ::core::future::Future<
                Output = Result<
                    $crate::page::Page<$crate::schedule::Schedule>,
                    $crate::store::StoreError,
                >,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::list_schedules(alias, job_id, page))
            }
            fn fire_due_schedules(
                &self,
                now: $crate::time::Timestamp,
                limit: usize,
            ) -> impl ::core::future::Future<
                Output = Result<Vec<$crate::execution::Execution>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::fire_due_schedules(now, limit))
            }
            fn next_fire_time(
                &self,
            ) -> impl ::core::future::Future<
                Output = Result<Option<$crate::time::Timestamp>, $crate::store::StoreError>,
            > + Send {
                $crate::forward_store!(@async self $how ScheduleStore::next_fire_time())
            }
        }
    };
}
