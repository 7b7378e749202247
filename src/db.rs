//! Database connections with per-backend settings.
//!
//! PostgreSQL gets one sized pool with an acquire timeout. SQLite gets WAL mode,
//! a busy timeout and foreign keys, and two pools: a single-connection writer and
//! a pool of read-only readers. SQLite allows one writer at a time; funnelling
//! every write through one connection queues writers inside the process instead
//! of letting them collide in SQLite, so a client never sees "database is
//! locked" (the busy timeout covers other processes, such as `itsm migrate`).
//! In WAL mode readers never block the writer, nor the writer them. Write
//! transactions queued for the writer commit in groups ([`Batches`]).

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, ExecResult, QueryResult, Statement,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

use tracing::Instrument as _;

use crate::{config::DatabaseSettings, memo::Memo};

/// The service's database: where to read and where to write.
///
/// On PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    reader: Reader,
    writer: DatabaseConnection,
    metrics: Arc<Metrics>,
    signals: Arc<Signals>,
    /// Whether reads have a pool of their own (SQLite files) or share the
    /// writer's (PostgreSQL, in-memory SQLite).
    separate_reader: bool,
    /// Copies a SQLite file's write-ahead log back into the file, off the
    /// writer's path; stopped when the last handle is dropped.
    checkpointer: Option<Arc<Checkpointer>>,
    /// Commits a SQLite file's write transactions in groups (see
    /// [`Batches`]); `None` on PostgreSQL and in-memory SQLite.
    batches: Option<Arc<Batches>>,
    /// Counts the statements of this handle's write transactions when they
    /// run in a group, whose shared connection counts none.
    observe: Observer,
}

/// Counts one statement: how long it took, and whether it failed.
#[derive(Clone)]
struct Observer(Arc<dyn Fn(Duration, bool) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// SQLite's group commit: write transactions take turns on the one write
/// connection inside a shared outer transaction, each in a savepoint of its
/// own, and the outer transaction commits once for the whole group.
///
/// A transaction's commit releases its savepoint, then waits for the
/// group's commit: it returns only once its writes are durable, and fails
/// if the group's commit fails. The group commits as soon as no other
/// transaction is waiting for its turn; while some are, a commit is queued
/// behind them (turns are first come, first served), so under load a group
/// holds every transaction that was waiting. A transaction that ends any
/// other way (rolled back, failed, dropped) rolls back to its savepoint and
/// commits the group before the next turn, so no one builds on a group a
/// failed statement may have rolled back.
///
/// Under light load (no one waiting, and no one waited when the last turn
/// ended) a transaction runs alone, as an ordinary transaction: a group of
/// one would only add a savepoint and a hand-off to its commit.
///
/// One commit per group instead of one per transaction appends the pages
/// that every transaction touches (index roots, the last page of the event
/// log) to the write-ahead log once per group, and skips the pool's
/// hand-over of the connection between transactions.
struct Batches {
    /// The write connection, counting nothing: turns count their own.
    writer: DatabaseConnection,
    open: Arc<tokio::sync::Mutex<Batch>>,
    /// Transactions waiting for their turn.
    waiting: AtomicUsize,
    /// Whether the last turn ended with no one waiting: then a transaction
    /// that finds no one waiting either runs alone (light load; under load
    /// a group forms even from a turn that found the queue empty, since
    /// others arrive while it runs).
    light: AtomicBool,
    /// How long a transaction waits for its turn, as it would for the pool.
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The group being written, if any.
#[derive(Debug, Default)]
struct Batch {
    txn: Option<DatabaseTransaction>,
    /// Tells the group's transactions how its commit went.
    outcome: Option<tokio::sync::watch::Sender<Option<Result<(), String>>>>,
    /// Whether a commit waits for its turn.
    commit_queued: bool,
    /// Groups committed so far, and the transactions they held.
    #[cfg_attr(not(test), allow(dead_code))]
    committed: (u64, u64),
    /// Transactions in the open group.
    members: u64,
}

/// The savepoint a group opens before any member's: it is gone if anything
/// rolled the whole group back (SQLite's own rollback on a full disk or an
/// I/O error, or the driver's on a member cancelled while it started its
/// savepoint), and the driver would then commit nothing and call it done.
const GROUP_SAVEPOINT: &str = "itsm_group";

impl Batch {
    /// Commits the group, if one is open, and tells its transactions.
    async fn commit(&mut self) {
        self.commit_queued = false;
        let Some(txn) = self.txn.take() else { return };
        let outcome = Outcome(self.outcome.take());
        self.committed.0 += 1;
        self.committed.1 += std::mem::take(&mut self.members);
        let result = match txn
            .execute_unprepared(&format!("RELEASE {GROUP_SAVEPOINT}"))
            .await
        {
            Ok(_) => txn.commit().await.map_err(|error| error.to_string()),
            // Dropping `txn` rolls back whatever is left.
            Err(error) => Err(format!("the group was rolled back: {error}")),
        };
        outcome.send(result);
    }
}

/// Tells a group's transactions how its commit went; dropped unsent (the
/// commit's task failed), it tells them the commit failed, so none waits
/// for ever.
struct Outcome(Option<tokio::sync::watch::Sender<Option<Result<(), String>>>>);

impl Outcome {
    fn send(mut self, result: Result<(), String>) {
        if let Some(outcome) = self.0.take() {
            outcome.send_replace(Some(result));
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if let Some(outcome) = self.0.take() {
            outcome.send_replace(Some(Err("the group's commit did not finish".into())));
        }
    }
}

/// Commits the group in a task of its own, holding `turn` until done: a
/// commit is never cut off halfway by a caller that stops waiting.
async fn commit_group(turn: tokio::sync::OwnedMutexGuard<Batch>) {
    let mut turn = turn;
    let done = tokio::spawn(async move { turn.commit().await }).await;
    if let Err(error) = done {
        tracing::error!(%error, "the group commit's task failed");
    }
}

/// Waits for a decrement on drop: a waiter that gives up still stops
/// counting.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One transaction's turn in the group.
#[derive(Debug)]
struct Turn {
    guard: Option<tokio::sync::OwnedMutexGuard<Batch>>,
    batches: Arc<Batches>,
    /// An ordinary transaction, not a savepoint: no one waited when it
    /// began, so it forms no group.
    alone: bool,
}

impl Drop for Turn {
    /// A turn that did not release its savepoint: the group is committed
    /// before the next turn (see [`Batches`]).
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        if guard.txn.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(commit_group(guard));
        }
    }
}

impl Batches {
    /// Waits for a turn and starts a savepoint in the group, opening the
    /// group if none is.
    async fn begin(
        self: &Arc<Self>,
        metrics: &Metrics,
    ) -> Result<(DatabaseTransaction, Turn), DbErr> {
        let guard = match self.open.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                metrics.write_waits.fetch_add(1, Ordering::Relaxed);
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _waiting = Waiting(&self.waiting);
                tokio::time::timeout(self.acquire_timeout, self.open.clone().lock_owned())
                    .await
                    .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))?
            }
        };
        let mut turn = Turn {
            guard: Some(guard),
            batches: self.clone(),
            alone: false,
        };
        let batch = turn.guard.as_mut().expect("a new turn holds its guard");
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        if batch.txn.is_none()
            && self.waiting.load(Ordering::Relaxed) == 0
            && self.light.load(Ordering::Relaxed)
        {
            // No one to group with: an ordinary transaction (no savepoint
            // to start and release, no commit handed to a task).
            turn.alone = true;
            let txn = sea_orm::TransactionTrait::begin_with_options(&self.writer, options).await?;
            return Ok((txn, turn));
        }
        // In a task of its own: the driver answers a savepoint cut off
        // halfway (its caller gone) by rolling back the whole group, which
        // would fail every other transaction in it.
        let writer = self.writer.clone();
        let (savepoint, turn) = tokio::spawn(async move {
            let savepoint = Self::join(&writer, &mut turn, options).await;
            (savepoint, turn)
        })
        .await
        .map_err(|error| DbErr::Custom(format!("could not start a savepoint: {error}")))?;
        Ok((savepoint?, turn))
    }

    /// Opens the group if none is, and starts a savepoint in it.
    async fn join(
        writer: &DatabaseConnection,
        turn: &mut Turn,
        options: sea_orm::TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        let batch = turn.guard.as_mut().expect("a new turn holds its guard");
        if batch.txn.is_none() {
            let group = sea_orm::TransactionTrait::begin_with_options(writer, options).await?;
            group
                .execute_unprepared(&format!("SAVEPOINT {GROUP_SAVEPOINT}"))
                .await?;
            batch.txn = Some(group);
            batch.outcome = Some(tokio::sync::watch::channel(None).0);
        }
        let group = batch.txn.as_ref().expect("the group was just opened");
        let savepoint = sea_orm::TransactionTrait::begin(group).await?;
        batch.members += 1;
        Ok(savepoint)
    }
}

impl Turn {
    /// After the savepoint was released: commits the group, or leaves it to
    /// the transactions waiting for their turn, then waits for its commit.
    /// After an ordinary transaction committed: ends its turn.
    async fn finish(mut self) -> Result<(), DbErr> {
        let mut guard = self
            .guard
            .take()
            .expect("a turn holds its guard until done");
        let waiting = self.batches.waiting.load(Ordering::Relaxed);
        self.batches.light.store(waiting == 0, Ordering::Relaxed);
        if self.alone {
            guard.committed.0 += 1;
            guard.committed.1 += 1;
            return Ok(());
        }
        let mut outcome = guard
            .outcome
            .as_ref()
            .expect("an open group has an outcome")
            .subscribe();
        if waiting == 0 {
            commit_group(guard).await;
        } else {
            if !guard.commit_queued {
                guard.commit_queued = true;
                let open = self.batches.open.clone();
                tokio::spawn(async move { open.lock_owned().await.commit().await });
            }
            drop(guard);
        }
        let committed = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DbErr::Custom("the group commit ended without an outcome".into()))?
            .clone();
        match committed {
            Some(Err(error)) => Err(DbErr::Custom(format!("could not commit: {error}"))),
            _ => Ok(()),
        }
    }
}

/// How often the checkpointer copies the write-ahead log back into a SQLite
/// file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// The log's length (in pages) at which a SQLite commit copies the log back
/// itself: the checkpointer's fallback, should it fall behind. SQLite's
/// default is 1,000 pages, which a busy writer fills in well under the
/// checkpointer's interval.
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// Copies a SQLite file's write-ahead log back into the database file, on a
/// connection of its own, every [`CHECKPOINT_INTERVAL`].
///
/// Left to SQLite, the commit that grows the log past 1,000 pages copies it
/// back and syncs the file twice, and every other writer waits for that
/// commit. A passive checkpoint here runs beside the writer instead (it
/// takes no write lock), so commits only append to the log. Should this
/// task fall behind, a commit still copies the log back at
/// [`WRITER_CHECKPOINT_PAGES`]: the log cannot grow without bound.
#[derive(Debug)]
struct Checkpointer {
    task: tokio::task::AbortHandle,
    /// The last checkpoint's pages: in the log, and copied back.
    #[cfg_attr(not(test), allow(dead_code))]
    last: tokio::sync::watch::Receiver<Option<(i64, i64)>>,
}

impl Checkpointer {
    fn start(conn: DatabaseConnection) -> Self {
        let (report, last) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match checkpoint(&conn).await {
                    Ok(pages) => {
                        report.send_replace(Some(pages));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not checkpoint the write-ahead log");
                    }
                }
            }
        });
        Self {
            task: task.abort_handle(),
            last,
        }
    }
}

/// One passive checkpoint: the pages in the log, and those copied back.
async fn checkpoint(conn: &DatabaseConnection) -> Result<(i64, i64), DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("wal_checkpoint returned no row".into()))?;
    Ok((
        row.try_get_by_index::<i64>(1)?,
        row.try_get_by_index::<i64>(2)?,
    ))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one request may take from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    /// Most statements it runs at once: its share of the pool.
    pub max_concurrent: usize,
    /// Most statements its reads run in all (statements in its transactions
    /// are counted in `extensions.cost`, not refused).
    pub max_statements: u64,
    /// Most rows it reads in all.
    pub max_rows: u64,
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            max_statements: 100,
            max_rows: 10_000,
        }
    }
}

/// The marker of a statement refused because its request spent its budget.
pub const OVER_BUDGET: &str = "request over budget";

/// One request's meter and share of the pool: every read it makes passes
/// here, so a request can neither hold more than its share of connections
/// nor run more statements or read more rows than its budget.
#[derive(Debug)]
pub struct Gate {
    budget: RequestBudget,
    permits: tokio::sync::Semaphore,
    statements: AtomicU64,
    writes: AtomicU64,
    rows: AtomicU64,
    active: AtomicU64,
    peak: AtomicU64,
}

/// A statement under way: holds its share of the pool until dropped.
struct Entered<'a> {
    gate: &'a Gate,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.gate.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// A fresh gate for one request.
    pub fn new(budget: RequestBudget) -> Self {
        Self {
            budget,
            permits: tokio::sync::Semaphore::new(budget.max_concurrent.max(1)),
            statements: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            active: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Statements under way now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// The most statements this request ran at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Statements run so far: reads, and those in the request's transactions.
    pub fn statements(&self) -> u64 {
        self.statements
            .load(Ordering::Relaxed)
            .saturating_add(self.writes.load(Ordering::Relaxed))
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Starts counting afresh (each event of a subscription is a request of its own).
    pub fn reset(&self) {
        self.statements.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
    }

    /// Waits for a share of the pool and counts the statement, or refuses it
    /// once the budget is spent.
    async fn enter(&self) -> Result<Entered<'_>, DbErr> {
        let over = |what: &str, limit: u64| {
            Err(DbErr::Custom(format!(
                "{OVER_BUDGET}: more than {limit} {what} in one request"
            )))
        };
        if self.rows() > self.budget.max_rows {
            return over("rows", self.budget.max_rows);
        }
        // Only reads are refused: a mutation's own transaction is bounded by
        // its inputs, and refusing its payload after it committed would
        // report a failure for a write that happened.
        if self.statements.fetch_add(1, Ordering::Relaxed) >= self.budget.max_statements {
            return over("SQL statements", self.budget.max_statements);
        }
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DbErr::Custom("request gate closed".into()))?;
        let active = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(active, Ordering::Relaxed);
        Ok(Entered {
            gate: self,
            _permit: permit,
        })
    }

    /// Counts a statement run inside one of the request's transactions (for
    /// `extensions.cost`; the budget refuses reads only).
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, rows: usize) -> Result<(), DbErr> {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let total = self
            .rows
            .fetch_add(rows, Ordering::Relaxed)
            .saturating_add(rows);
        if total > self.budget.max_rows {
            return Err(DbErr::Custom(format!(
                "{OVER_BUDGET}: more than {} rows in one request",
                self.budget.max_rows
            )));
        }
        Ok(())
    }
}

/// A span for one SQL statement, for traces only (off the logs' default level).
fn statement_span(backend: DbBackend, sql: &str) -> tracing::Span {
    // Statements of background work (the event pump, the SLA sweep) would
    // each start a trace of their own: only those inside a traced span count.
    // The level check reads one global; `tracing::enabled!` is avoided, as a
    // check not followed by a span leaves per-layer filter state behind that
    // hides the thread's next span from the log.
    if tracing::Level::DEBUG > tracing::level_filters::LevelFilter::current()
        || tracing::Span::current().is_none()
    {
        return tracing::Span::none();
    }
    let operation = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    tracing::debug_span!(
        target: "itsm::trace",
        "sql",
        otel.name = %operation,
        otel.kind = "client",
        db.system.name = match backend {
            DbBackend::Postgres => "postgresql",
            _ => "sqlite",
        },
        db.operation.name = %operation,
        db.query.text = %sql,
    )
}

/// The pool reads go through; metered by a request's [`Gate`] when it has one.
#[derive(Clone, Debug)]
pub struct Reader {
    conn: DatabaseConnection,
    gate: Option<Arc<Gate>>,
    metrics: Arc<Metrics>,
}

impl Reader {
    async fn enter(&self) -> Result<Option<Entered<'_>>, DbErr> {
        let entered = match &self.gate {
            Some(gate) => gate.enter().await.map(Some),
            None => Ok(None),
        };
        if exhausted(&self.conn) {
            self.metrics.read_waits.fetch_add(1, Ordering::Relaxed);
        }
        entered
    }

    fn read(&self, rows: usize) -> Result<(), DbErr> {
        self.gate.as_ref().map_or(Ok(()), |gate| gate.read(rows))
    }
}

#[async_graphql::async_trait::async_trait]
impl ConnectionTrait for Reader {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let _permit = self.enter().await?;
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        self.conn.execute_raw(stmt).instrument(span).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let _permit = self.enter().await?;
        self.conn
            .execute_unprepared(sql)
            .instrument(statement_span(self.get_database_backend(), sql))
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let _permit = self.enter().await?;
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        let row = self.conn.query_one_raw(stmt).instrument(span).await?;
        self.read(usize::from(row.is_some()))?;
        Ok(row)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let _permit = self.enter().await?;
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        let rows = self.conn.query_all_raw(stmt).instrument(span).await?;
        self.read(rows.len())?;
        Ok(rows)
    }

    fn support_returning(&self) -> bool {
        self.conn.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        false
    }
}

/// A write transaction. The only way to commit it is [`Txn::commit`], which
/// wakes this process's event pump when the transaction wrote ticket events
/// (other replicas hear of them through `NOTIFY`), so no commit can forget
/// to. Dropped uncommitted, it rolls back.
#[derive(Debug)]
pub struct Txn {
    /// Dropped before `turn`: a savepoint rolls back before its group
    /// commits.
    inner: DatabaseTransaction,
    /// Its turn in a SQLite group commit, if it runs in one.
    turn: Option<Turn>,
    /// Counts its statements, when the connection does not (in a group).
    observe: Option<Observer>,
    signals: Arc<Signals>,
    wrote_events: AtomicBool,
    /// The highest `ord` of the events it queued (PostgreSQL), or -1.
    queued: AtomicI64,
    /// Tickets whose row it has written or locked.
    held: std::sync::Mutex<Vec<i64>>,
}

/// How long a commit that queued events waits for the event pump to number
/// them before it returns anyway (they are numbered later): a long
/// transaction elsewhere on the server can hold them back.
const SETTLE_WAIT: Duration = Duration::from_secs(1);

impl Txn {
    /// Marks the transaction as one that wrote ticket events (the event log
    /// calls this as it appends).
    pub fn wrote_events(&self) {
        self.wrote_events.store(true, Ordering::Relaxed);
    }

    /// Notes an event queued with order key `ord` (PostgreSQL).
    pub fn queued(&self, ord: i64) {
        self.queued.fetch_max(ord, Ordering::Relaxed);
    }

    /// Notes that it has written (or locked) ticket `id`'s row, which it
    /// then holds until it ends.
    pub fn hold_ticket(&self, id: i64) {
        if let Ok(mut held) = self.held.lock()
            && !held.contains(&id)
        {
            held.push(id);
        }
    }

    /// Whether an event pump runs in this process: it is woken by the
    /// commit, numbers the events, and tells the other replicas.
    pub fn has_pump(&self) -> bool {
        self.signals.pumping.load(Ordering::Relaxed)
    }

    /// Whether it holds ticket `id`'s row.
    pub fn holds_ticket(&self, id: i64) -> bool {
        self.held
            .lock()
            .map(|held| held.contains(&id))
            .unwrap_or(false)
    }

    /// Runs a statement, counting it if the connection does not.
    async fn observed<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let Some(observe) = &self.observe else {
            return statement.await;
        };
        let started = Instant::now();
        let result = statement.await;
        (observe.0)(started.elapsed(), result.is_err());
        result
    }

    /// Rolls back (as dropping it would, but waiting for the database).
    pub async fn rollback(self) -> Result<(), DbErr> {
        let rolled_back = self.inner.rollback().await;
        if let Some(mut turn) = self.turn
            && let Some(guard) = turn.guard.take()
            && guard.txn.is_some()
        {
            commit_group(guard).await;
        }
        rolled_back
    }

    /// Commits, then wakes the event pump if events were written. Events
    /// queued on PostgreSQL are waited for until this process's pump has
    /// numbered them (at most [`SETTLE_WAIT`]), so what the caller reads
    /// next includes them.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.finish(true).await
    }

    /// Commits and wakes the event pump, without waiting for the events to
    /// be numbered: for background work, which reads nothing after.
    pub async fn commit_in_background(self) -> Result<(), DbErr> {
        self.finish(false).await
    }

    async fn finish(self, wait: bool) -> Result<(), DbErr> {
        let wake = self.wrote_events.load(Ordering::Relaxed);
        let queued = self.queued.load(Ordering::Relaxed);
        let signals = self.signals;
        self.inner.commit().await?;
        if let Some(turn) = self.turn {
            turn.finish().await?;
        }
        if wake {
            signals.events.notify_one();
        }
        if wait && queued >= 0 && signals.pumping.load(Ordering::Relaxed) {
            let mut settled = signals.settled.subscribe();
            let numbered =
                tokio::time::timeout(SETTLE_WAIT, settled.wait_for(|horizon| *horizon > queued))
                    .await;
            if numbered.is_err() {
                tracing::debug!(
                    ord = queued,
                    "events not numbered yet: a transaction holds them back"
                );
            }
        }
        Ok(())
    }
}

#[async_graphql::async_trait::async_trait]
impl ConnectionTrait for Txn {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        self.observed(self.inner.execute_raw(stmt).instrument(span))
            .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.inner
            .execute_unprepared(sql)
            .instrument(statement_span(self.get_database_backend(), sql))
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        self.observed(self.inner.query_one_raw(stmt).instrument(span))
            .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        self.observed(self.inner.query_all_raw(stmt).instrument(span))
            .await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        false
    }
}

/// The channel that wakes other replicas' event pumps (PostgreSQL `NOTIFY`).
pub const EVENTS_CHANNEL: &str = "itsm_events";
/// The channel that tells other replicas the desk's setup changed: team
/// membership, queues, routing rules or SLA policies.
pub const SETUP_CHANNEL: &str = "itsm_setup";

/// In-process signals about committed changes.
#[derive(Debug, Default)]
pub struct Signals {
    /// Woken after a transaction that wrote ticket events commits.
    pub events: tokio::sync::Notify,
    /// Set while an event pump runs in this process.
    pub pumping: AtomicBool,
    /// The horizon of the pump's last settling (PostgreSQL): every event
    /// queued with an `ord` below it is numbered.
    pub settled: tokio::sync::watch::Sender<i64>,
    generation: AtomicU64,
    /// What was read from the setup (the routing and SLA setup new tickets
    /// read), as read at a setup generation.
    pub setup: SetupMemo,
    /// Agents' team queues, as loaded at a setup generation.
    pub(crate) reach: ReachCache,
    /// Queues found to exist. Queues are never deleted (tickets refer to
    /// them), so a queue found once stays found.
    pub(crate) queues: Mutex<HashSet<i64>>,
}

impl Signals {
    /// The setup changed somewhere: what was read from it (reach, the
    /// routing and SLA setup) must be read again.
    pub fn bump_setup(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes whenever team membership, a queue, a routing rule or an SLA
    /// policy changes.
    pub fn setup_generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

/// Agents' team queues by user, kept across requests until team membership
/// or a queue's team changes anywhere (the setup generation: bumped by this
/// process, and by other replicas' `NOTIFY`), and at most 30 seconds: the
/// bound for another process writing the same SQLite file, which sends none.
#[derive(Debug)]
pub struct ReachCache(Memo<i64, (u64, Vec<i64>)>);

/// How long an agent's team queues are trusted without a change notice.
const REACH_FOR: Duration = Duration::from_secs(30);
/// Agents remembered at most; the memory starts afresh when full.
const REACH_MAX: usize = 10_000;

impl Default for ReachCache {
    fn default() -> Self {
        Self(Memo::new(REACH_FOR, REACH_MAX))
    }
}

impl ReachCache {
    /// The team queues of `user_id` as loaded at `generation`.
    pub(crate) fn get(&self, user_id: i64, generation: u64) -> Option<Vec<i64>> {
        self.0
            .get(&user_id, |(loaded_at, _)| *loaded_at == generation)
            .map(|(_, queue_ids)| queue_ids)
    }

    pub(crate) fn put(&self, user_id: i64, generation: u64, queue_ids: Vec<i64>) {
        self.0.put(user_id, (generation, queue_ids));
    }
}

/// Values read from the setup, each kept by its type as read at a setup
/// generation, until the setup changes anywhere and at most 30 seconds: the
/// bound for another process writing the same SQLite file, which sends no
/// notice.
#[derive(Debug)]
pub struct SetupMemo {
    kept: Memo<std::any::TypeId, (u64, Arc<dyn std::any::Any + Send + Sync>)>,
    reads: AtomicU64,
}

/// How long a value read from the setup is trusted without a change notice.
const SETUP_FOR: Duration = Duration::from_secs(30);

impl Default for SetupMemo {
    fn default() -> Self {
        Self {
            kept: Memo::new(SETUP_FOR, 16),
            reads: AtomicU64::new(0),
        }
    }
}

impl SetupMemo {
    /// The `T` kept as read at `generation`.
    pub fn get<T: std::any::Any + Send + Sync>(&self, generation: u64) -> Option<Arc<T>> {
        self.kept
            .get(&std::any::TypeId::of::<T>(), |(at, _)| *at == generation)
            .and_then(|(_, value)| value.downcast::<T>().ok())
    }

    /// Keeps `value`, read at `generation`.
    pub fn put<T: std::any::Any + Send + Sync>(&self, generation: u64, value: Arc<T>) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.kept
            .put(std::any::TypeId::of::<T>(), (generation, value));
    }

    /// How many times a value was read from the database.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// Counters over every SQL statement the service runs: on behalf of requests,
/// and in background tasks (the event pump, timers).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Statements run while serving requests.
    pub requests: Counters,
    /// Statements run by background tasks.
    pub background: Counters,
    /// Reads that found the read pool exhausted, and so waited for a connection.
    read_waits: AtomicU64,
    /// Transactions that found the write pool exhausted.
    write_waits: AtomicU64,
}

/// Whether a statement on `conn` now has to wait for a connection: none is
/// idle and the pool is at its maximum.
fn exhausted(conn: &DatabaseConnection) -> bool {
    let (size, idle, max) = pool_usage(conn);
    idle == 0 && size >= max
}

/// A pool's connections: open, idle, most allowed.
fn pool_usage(conn: &DatabaseConnection) -> (u32, u32, u32) {
    let usage = |size: u32, idle: usize, max: u32| (size, u32::try_from(idle).unwrap_or(size), max);
    match conn.get_database_backend() {
        DbBackend::Postgres => {
            let pool = conn.get_postgres_connection_pool();
            usage(
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => {
            let pool = conn.get_sqlite_connection_pool();
            usage(
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
    }
}

/// One pool's label sets.
struct PoolLabels {
    pool: [(&'static str, &'static str); 1],
    in_use: [(&'static str, &'static str); 2],
    idle: [(&'static str, &'static str); 2],
}

impl PoolLabels {
    fn new(pool: &'static str) -> Self {
        Self {
            pool: [("pool", pool)],
            in_use: [("pool", pool), ("state", "in_use")],
            idle: [("pool", pool), ("state", "idle")],
        }
    }
}

/// The database's figures for `/metrics`, read at each scrape: statements by
/// source, and each pool's connections in use and idle, its maximum and how
/// often it was found exhausted.
#[derive(Debug)]
pub struct Collector(Db);

impl prometheus_client::collector::Collector for Collector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use prometheus_client::registry::Unit;

        use crate::metrics::{write_counters, write_gauges};
        let db = &self.0;
        let metrics = &db.metrics;
        const REQUESTS: &[(&str, &str)] = &[("source", "requests")];
        const BACKGROUND: &[(&str, &str)] = &[("source", "background")];
        let (requests, background) = (&metrics.requests, &metrics.background);
        write_counters(
            &mut encoder,
            (
                "db_statements",
                "SQL statements executed, by source (requests or background work).",
                None,
            ),
            &[
                (REQUESTS, requests.statements()),
                (BACKGROUND, background.statements()),
            ],
        )?;
        write_counters(
            &mut encoder,
            (
                "db_statement_errors",
                "SQL statements that failed, by source.",
                None,
            ),
            &[
                (REQUESTS, requests.failures()),
                (BACKGROUND, background.failures()),
            ],
        )?;
        write_counters(
            &mut encoder,
            (
                "db_statement",
                "Time spent running SQL statements, by source.",
                Some(&Unit::Seconds),
            ),
            &[
                (REQUESTS, requests.seconds()),
                (BACKGROUND, background.seconds()),
            ],
        )?;

        let reads = metrics.read_waits.load(Ordering::Relaxed);
        let writes = metrics.write_waits.load(Ordering::Relaxed);
        let pools: Vec<(PoolLabels, &DatabaseConnection, u64)> = if db.separate_reader {
            vec![
                (PoolLabels::new("read"), &db.reader.conn, reads),
                (PoolLabels::new("write"), &db.writer, writes),
            ]
        } else {
            vec![(
                PoolLabels::new("shared"),
                &db.writer,
                reads.saturating_add(writes),
            )]
        };
        let mut connections = Vec::new();
        let mut maximum = Vec::new();
        let mut waits = Vec::new();
        for (labels, conn, waited) in &pools {
            let (size, free, max) = pool_usage(conn);
            connections.push((&labels.in_use[..], i64::from(size.saturating_sub(free))));
            connections.push((&labels.idle[..], i64::from(free)));
            maximum.push((&labels.pool[..], i64::from(max)));
            waits.push((&labels.pool[..], *waited));
        }
        write_gauges(
            &mut encoder,
            (
                "db_pool_connections",
                "Connections in a pool (read, write, or shared on PostgreSQL), by state (in_use or idle).",
                None,
            ),
            &connections,
        )?;
        write_gauges(
            &mut encoder,
            (
                "db_pool_max_connections",
                "Most connections a pool opens.",
                None,
            ),
            &maximum,
        )?;
        write_counters(
            &mut encoder,
            (
                "db_pool_waits",
                "Statements and transactions that found their pool exhausted (no idle connection, the pool at its maximum) and waited for a connection.",
                None,
            ),
            &waits,
        )?;
        write_counters(
            &mut encoder,
            (
                "db_setup_reads",
                "Times the setup new tickets depend on (default queue, routing rules, SLA policies) was read from the database: once, then again after each change to it.",
                None,
            ),
            &[(&[], db.signals.setup.reads())],
        )?;
        Ok(())
    }
}

/// Statement counters of one kind of work.
#[derive(Debug, Default)]
pub struct Counters {
    statements: AtomicU64,
    failures: AtomicU64,
    micros: AtomicU64,
}

impl Counters {
    fn observe(&self, elapsed: Duration, failed: bool) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Statements run so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Statements that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Seconds spent in statements so far.
    pub fn seconds(&self) -> f64 {
        // Precision loss only past 2^53 microseconds (285 years).
        #[allow(clippy::cast_precision_loss)]
        let micros = self.micros.load(Ordering::Relaxed) as f64;
        micros / 1_000_000.0
    }
}

/// Counts statements as the requests' or as background work.
fn counter(metrics: &Arc<Metrics>, background: bool) -> Observer {
    let metrics = metrics.clone();
    Observer(Arc::new(move |elapsed, failed| {
        if background {
            metrics.background.observe(elapsed, failed);
        } else {
            metrics.requests.observe(elapsed, failed);
        }
    }))
}

/// `conn`, counting its statements with `observe`.
fn observed(mut conn: DatabaseConnection, observe: &Observer) -> DatabaseConnection {
    let observe = observe.0.clone();
    conn.set_metric_callback(move |info| observe(info.elapsed, info.failed));
    conn
}

impl Db {
    /// Connects with the settings' backend-specific options.
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        if settings.is_postgres() {
            tracing::Span::current().record("backend", "postgres");
            let pool = Database::connect(postgres_options(settings))
                .await
                .context("could not connect to PostgreSQL")?;
            let metrics = Arc::default();
            let observe = counter(&metrics, false);
            let pool = observed(pool, &observe);
            return Ok(Self {
                reader: Reader {
                    conn: pool.clone(),
                    gate: None,
                    metrics: metrics.clone(),
                },
                writer: pool,
                metrics,
                signals: Arc::default(),
                separate_reader: false,
                checkpointer: None,
                batches: None,
                observe,
            });
        }
        tracing::Span::current().record("backend", "sqlite");
        if !settings.database_url.starts_with("sqlite:") {
            anyhow::bail!(
                "unsupported database URL: use sqlite://path/to/file.db or postgres://user@host/db"
            );
        }
        let busy = settings.sqlite_busy_timeout;
        let metrics = Arc::default();
        let raw_writer = Database::connect(sqlite_options(settings, 1, busy, false))
            .await
            .with_context(|| format!("could not open {}", settings.database_url))?;
        let observe = counter(&metrics, false);
        let writer = observed(raw_writer.clone(), &observe);
        if settings.sqlite_path().is_none() {
            // Every connection to an in-memory database is a database of its own.
            return Ok(Self {
                reader: Reader {
                    conn: writer.clone(),
                    gate: None,
                    metrics: metrics.clone(),
                },
                writer,
                metrics,
                signals: Arc::default(),
                separate_reader: false,
                checkpointer: None,
                batches: None,
                observe,
            });
        }
        let reader = Database::connect(sqlite_options(
            settings,
            settings.db_max_connections.max(1),
            busy,
            true,
        ))
        .await
        .with_context(|| format!("could not open {} for reading", settings.database_url))?;
        let reader = observed(reader, &observe);
        let checkpointer = Database::connect(sqlite_options(settings, 1, busy, false))
            .await
            .with_context(|| format!("could not open {} to checkpoint", settings.database_url))?;
        let checkpointer = Some(Arc::new(Checkpointer::start(checkpointer)));
        Ok(Self {
            reader: Reader {
                conn: reader,
                gate: None,
                metrics: metrics.clone(),
            },
            writer,
            metrics,
            signals: Arc::default(),
            separate_reader: true,
            checkpointer,
            batches: (!settings.sqlite_no_group_commit).then(|| {
                Arc::new(Batches {
                    writer: raw_writer,
                    open: Arc::default(),
                    waiting: AtomicUsize::new(0),
                    light: AtomicBool::new(true),
                    acquire_timeout: settings.db_acquire_timeout.max(busy),
                })
            }),
            observe,
        })
    }

    /// The same database, with statements counted as background work.
    pub fn background(&self) -> Self {
        let observe = counter(&self.metrics, true);
        Self {
            reader: Reader {
                conn: observed(self.reader.conn.clone(), &observe),
                gate: None,
                metrics: self.metrics.clone(),
            },
            writer: observed(self.writer.clone(), &observe),
            observe,
            ..self.clone()
        }
    }

    /// The same database, metered by `gate`: reads pass it, and statements
    /// in transactions are counted against it.
    pub fn gated(&self, gate: Arc<Gate>) -> Self {
        let metrics = self.metrics.clone();
        let counted = gate.clone();
        let observe = Observer(Arc::new(move |elapsed, failed| {
            metrics.requests.observe(elapsed, failed);
            counted.wrote();
        }));
        let writer = observed(self.writer.clone(), &observe);
        Self {
            reader: Reader {
                gate: Some(gate),
                ..self.reader.clone()
            },
            writer,
            observe,
            ..self.clone()
        }
    }

    /// The same database without a request's gate: for the work a
    /// subscription's feed does on its own (replaying and following the
    /// log), which is not the subscriber's request.
    pub fn ungated(&self) -> Self {
        let observe = counter(&self.metrics, false);
        Self {
            reader: Reader {
                gate: None,
                ..self.reader.clone()
            },
            writer: observed(self.writer.clone(), &observe),
            observe,
            ..self.clone()
        }
    }

    /// The gate metering this handle's reads, if any.
    pub fn gate(&self) -> Option<&Arc<Gate>> {
        self.reader.gate.as_ref()
    }

    /// Signals about committed changes.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Starts a write transaction. It is committed with [`Txn::commit`],
    /// which wakes the event pump when the transaction wrote ticket events.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// transaction that read first and wrote later would otherwise fail
    /// with `SQLITE_BUSY_SNAPSHOT` whenever another process (a second
    /// server, `itsm seed`) wrote to the file in between, which the busy
    /// timeout does not wait out.
    pub async fn begin(&self) -> Result<Txn, DbErr> {
        if let Some(batches) = &self.batches {
            let (inner, turn) = batches.begin(&self.metrics).await?;
            return Ok(Txn {
                inner,
                turn: Some(turn),
                observe: Some(self.observe.clone()),
                signals: self.signals.clone(),
                wrote_events: AtomicBool::new(false),
                queued: AtomicI64::new(-1),
                held: std::sync::Mutex::default(),
            });
        }
        if exhausted(&self.writer) {
            self.metrics.write_waits.fetch_add(1, Ordering::Relaxed);
        }
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite)
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(Txn {
            inner: sea_orm::TransactionTrait::begin_with_options(&self.writer, options).await?,
            turn: None,
            observe: None,
            signals: self.signals.clone(),
            wrote_events: AtomicBool::new(false),
            queued: AtomicI64::new(-1),
            held: std::sync::Mutex::default(),
        })
    }

    /// Tells every replica that the setup changed (team membership, a
    /// queue, a routing rule, an SLA policy).
    pub async fn setup_changed(&self) -> Result<(), DbErr> {
        if self.backend() == DbBackend::Postgres {
            self.writer
                .execute_unprepared(&format!("NOTIFY {}", SETUP_CHANNEL))
                .await?;
        }
        self.signals.bump_setup();
        Ok(())
    }

    /// Statement counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The database's figures for `/metrics`.
    pub fn collector(&self) -> Collector {
        Collector(self.clone())
    }

    /// For queries. Read-only on SQLite; metered per request.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// For writes and for transactions that write.
    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    /// Which SQL dialect this is.
    pub fn backend(&self) -> DbBackend {
        self.writer.get_database_backend()
    }

    /// Applies pending migrations.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.writer, None)
            .await
            .context("could not apply database migrations")
    }

    /// Checks that the database answers, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, self.reader.conn.ping())
            .await
            .context("database ping timed out")?
            .context("database ping failed")
    }

    /// Closes both pools.
    pub async fn close(self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.task.abort();
        }
        // Errors on close only mean the pool was already gone.
        let _ = self.reader.conn.close_by_ref().await;
        let _ = self.writer.close_by_ref().await;
    }
}

fn postgres_options(settings: &DatabaseSettings) -> ConnectOptions {
    let mut options = ConnectOptions::new(&settings.database_url);
    options
        .max_connections(settings.db_max_connections.max(1))
        .min_connections(1)
        .acquire_timeout(settings.db_acquire_timeout)
        .connect_timeout(settings.db_acquire_timeout)
        .idle_timeout(Duration::from_secs(600))
        .set_application_name("itsm")
        .sqlx_logging(false);
    options
}

fn sqlite_options(
    settings: &DatabaseSettings,
    connections: u32,
    busy_timeout: Duration,
    read_only: bool,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(&settings.database_url);
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(settings.db_acquire_timeout.max(busy_timeout))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts: SqliteConnectOptions| {
            opts.create_if_missing(!read_only)
                .read_only(read_only)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
        });
    options
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_commit_wakes_the_event_pump_only_when_events_were_written() {
        let settings = crate::config::Settings::from_args(["--database-url", "sqlite::memory:"])
            .expect("settings");
        let db = Db::connect(&settings.database).await.expect("connect");
        let woken = |db: &Db| db.signals().events.notified().now_or_never().is_some();

        db.begin()
            .await
            .expect("begin")
            .commit()
            .await
            .expect("commit");
        assert!(!woken(&db), "nothing written: the pump sleeps on");

        let txn = db.begin().await.expect("begin");
        txn.wrote_events();
        txn.rollback().await.expect("rollback");
        assert!(!woken(&db), "rolled back: nothing to read");

        let txn = db.begin().await.expect("begin");
        txn.wrote_events();
        txn.commit().await.expect("commit");
        assert!(woken(&db), "events committed: the pump reads the log");
    }

    #[tokio::test]
    async fn commits_leave_a_sqlite_files_log_to_the_checkpointer() {
        let (db, path) = sqlite_file("checkpoint").await;
        let pages = db
            .writer()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA wal_autocheckpoint",
            ))
            .await
            .expect("pragma")
            .expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("pages");
        assert_eq!(pages, i64::from(WRITER_CHECKPOINT_PAGES));

        for n in 0..50 {
            db.writer()
                .execute_unprepared(&format!("INSERT INTO t VALUES ('{}')", "x".repeat(n * 100)))
                .await
                .expect("insert");
        }
        let mut last = db
            .checkpointer
            .as_ref()
            .expect("a SQLite file has a checkpointer")
            .last
            .clone();
        tokio::time::timeout(
            Duration::from_secs(30),
            last.wait_for(
                |pages| matches!(pages, Some((log, copied)) if *log > 0 && copied == log),
            ),
        )
        .await
        .expect("a checkpoint within 30 s")
        .expect("the checkpointer runs");
        db.close().await;
        remove(&path);
    }

    /// A SQLite file's database in a fresh temporary file, with table `t`.
    async fn sqlite_file(name: &str) -> (Db, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "itsm-{name}-{}-{}.db",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let settings =
            crate::config::Settings::from_args(["--database-url", &url]).expect("settings");
        let db = Db::connect(&settings.database).await.expect("connect");
        db.writer()
            .execute_unprepared("CREATE TABLE t (x TEXT NOT NULL UNIQUE)")
            .await
            .expect("create");
        (db, path)
    }

    async fn insert(txn: &Txn, x: &str) -> Result<ExecResult, DbErr> {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO t (x) VALUES (?)",
            [x.into()],
        ))
        .await
    }

    /// Starts a write transaction in a task of its own, once `waiting`
    /// others wait for their turn; `end` decides how it ends.
    async fn queue<F, Fut>(db: &Db, end: F) -> tokio::task::JoinHandle<Result<(), DbErr>>
    where
        F: FnOnce(Txn) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), DbErr>> + Send + 'static,
    {
        let batches = db.batches.clone().expect("a SQLite file commits in groups");
        let before = batches.waiting.load(Ordering::Relaxed);
        let db = db.clone();
        let task = tokio::spawn(async move { end(db.begin().await?).await });
        while batches.waiting.load(Ordering::Relaxed) == before {
            tokio::task::yield_now().await;
        }
        task
    }

    /// [`queue`]s a transaction that inserts `x` and commits.
    async fn queue_insert(db: &Db, x: &str) -> tokio::task::JoinHandle<Result<(), DbErr>> {
        let x = x.to_owned();
        queue(db, move |txn| async move {
            insert(&txn, &x).await?;
            txn.commit().await
        })
        .await
    }

    async fn rows(db: &Db) -> Vec<String> {
        db.reader()
            .conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT x FROM t ORDER BY x",
            ))
            .await
            .expect("select")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("x"))
            .collect()
    }

    async fn committed(db: &Db) -> (u64, u64) {
        let batches = db.batches.as_ref().expect("groups");
        batches.open.lock().await.committed
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn write_transactions_waiting_for_their_turn_commit_as_one_group() {
        let (db, path) = sqlite_file("group").await;
        let first = db.begin().await.expect("begin");
        insert(&first, "a").await.expect("insert a");
        let second = queue_insert(&db, "b").await;
        let third = queue_insert(&db, "c").await;
        first.commit().await.expect("a commits");
        second.await.expect("task").expect("b commits");
        third.await.expect("task").expect("c commits");
        assert_eq!(rows(&db).await, ["a", "b", "c"]);
        assert_eq!(
            committed(&db).await,
            (2, 3),
            "a began alone and committed alone; b and c waited, and committed together"
        );

        let alone = db.begin().await.expect("begin");
        insert(&alone, "d").await.expect("insert d");
        alone.commit().await.expect("commit");
        assert_eq!(rows(&db).await, ["a", "b", "c", "d"]);
        assert_eq!(committed(&db).await, (3, 4));
        db.close().await;
        remove(&path);
    }

    #[tokio::test]
    async fn a_failed_dropped_or_rolled_back_transaction_leaves_its_group_intact() {
        let (db, path) = sqlite_file("group-failure").await;
        let first = db.begin().await.expect("begin");
        insert(&first, "a").await.expect("insert a");
        let early = queue_insert(&db, "e").await;
        let duplicate = queue(&db, |txn| async move {
            insert(&txn, "x").await?;
            // A unique violation: the transaction fails and is dropped.
            insert(&txn, "e").await?;
            txn.commit().await
        })
        .await;
        let dropped = queue(&db, |txn| async move {
            insert(&txn, "y").await?;
            drop(txn);
            Ok(())
        })
        .await;
        let rolled_back = queue(&db, |txn| async move {
            insert(&txn, "z").await?;
            txn.rollback().await
        })
        .await;
        let last = queue_insert(&db, "b").await;
        first.commit().await.expect("a commits");
        early
            .await
            .expect("task")
            .expect("e commits with the group the duplicate fails in");
        let failed = duplicate.await.expect("task");
        assert!(failed.is_err(), "the duplicate fails: {failed:?}");
        dropped.await.expect("task").expect("dropped");
        rolled_back.await.expect("task").expect("rolled back");
        last.await.expect("task").expect("b commits");
        assert_eq!(
            rows(&db).await,
            ["a", "b", "e"],
            "only what committed is kept"
        );
        let (groups, members) = committed(&db).await;
        assert_eq!(members, 6, "every transaction had its turn");
        assert!(groups >= 2, "a turn that failed ends its group: {groups}");
        db.close().await;
        remove(&path);
    }

    #[tokio::test]
    async fn a_commit_succeeds_only_when_its_writes_were_kept() {
        // A transaction dropped while it starts its savepoint in a group (a
        // client gone) would make the driver roll back the whole group. It
        // must cost the transaction before it in that group nothing; and
        // whatever happens, a commit succeeds only if its writes were kept.
        let (db, path) = sqlite_file("group-cancel").await;
        let batches = db.batches.clone().expect("groups");
        for n in 0..20 {
            batches.light.store(true, Ordering::Relaxed);
            let first = db.begin().await.expect("begin");
            let row = format!("e{n}");
            let early = queue_insert(&db, &row).await;
            let mut joiner = Box::pin(db.begin());
            assert!(
                futures_util::poll!(&mut joiner).is_pending(),
                "the first transaction holds the turn"
            );
            first.commit().await.expect("the first commits, alone");
            // Turns pass in order: the early one's, then the joiner's, which
            // is dropped as soon as it has its turn.
            while futures_util::poll!(&mut joiner).is_pending()
                && batches.waiting.load(Ordering::Relaxed) > 0
            {
                tokio::task::yield_now().await;
            }
            drop(joiner);
            let committed = early.await.expect("task");
            let kept = rows(&db).await.contains(&row);
            assert_eq!(
                committed.is_ok(),
                kept,
                "round {n}: the commit said {committed:?}, the row kept: {kept}"
            );
            assert!(kept, "round {n}: a client gone cost another its commit");
        }
        db.close().await;
        remove(&path);
    }
}
