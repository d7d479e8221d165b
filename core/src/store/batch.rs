//! Several INSERTs sent as one statement, to cut round trips on a hot write path.
//!
//! On PostgreSQL the inserts become the data-modifying parts of one `WITH` statement (one
//! round trip however many tables), and the job wake-ups it needs are its final `SELECT
//! pg_notify(...)`, delivered at commit like any NOTIFY. The parts cannot see each other's rows,
//! so none may read what another writes; foreign keys between them hold, since PostgreSQL
//! checks them when the whole statement has run. On SQLite the inserts are sent together as one
//! string of statements, run one after the other in order by a single call: SQLite has no
//! network between Berth and its database, but each call is a hop to the connection's worker
//! thread and back while every other writer waits for the one connection, so a signup's eight
//! inserts cost one hop instead of eight.
//!
//! A batch runs on the caller's connection, normally its transaction: it commits or rolls back
//! with everything else the caller does.

use sea_orm::sea_query::{CommonTableExpression, Expr, Func, InsertStatement, Query, WithClause};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use super::jobs::{NOTIFY_CHANNEL, WAKE};

#[derive(Debug, Default)]
pub struct Batch {
    inserts: Vec<InsertStatement>,
    /// Queues whose idle workers are woken when the batch commits.
    queues: Vec<String>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an insert; it runs after those added before it (on SQLite; on PostgreSQL all run
    /// as one statement).
    pub fn insert(&mut self, statement: InsertStatement) -> &mut Self {
        self.inserts.push(statement);
        self
    }

    /// Wakes the workers of `queue` once the batch commits (jobs inserted by the batch).
    pub fn wake(&mut self, queue: &str) -> &mut Self {
        if !self.queues.iter().any(|q| q == queue) {
            self.queues.push(queue.to_owned());
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty()
    }

    pub async fn exec(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let backend = db.get_database_backend();
        if self.inserts.is_empty() {
            return Ok(());
        }
        if backend == DbBackend::Postgres {
            let mut with = WithClause::new();
            for (i, insert) in self.inserts.into_iter().enumerate() {
                with.cte(
                    CommonTableExpression::new()
                        .table_name(sea_orm::sea_query::Alias::new(format!("w{i}")))
                        .query(insert)
                        .to_owned(),
                );
            }
            let mut last = Query::select();
            if self.queues.is_empty() {
                last.expr(Expr::val(1));
            }
            for queue in &self.queues {
                last.expr(
                    Func::cust(sea_orm::sea_query::Alias::new("pg_notify")).arg(NOTIFY_CHANNEL).arg(queue.as_str()),
                );
            }
            db.execute(backend.build(&with.query(last))).await?;
        } else {
            db.execute(joined(backend, &self.inserts)).await?;
        }
        if !self.queues.is_empty() {
            WAKE.notify_waiters();
        }
        Ok(())
    }
}

/// Several statements as one string with their values in order, for SQLite, which runs them one
/// after the other and binds each one's positional `?` parameters from where the previous one's
/// ended (sqlx). A failure stops at the failing statement with its own error.
pub(crate) fn joined<S: sea_orm::StatementBuilder>(backend: DbBackend, statements: &[S]) -> Statement {
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        let built = backend.build(statement);
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&built.sql);
        values.extend(built.values.map(|v| v.0).unwrap_or_default());
    }
    Statement::from_sql_and_values(backend, sql, values)
}
