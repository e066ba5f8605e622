//! The shared engine: a PostgreSQL server reached through a small pool of connections (the
//! `postgres` crate, blocking, with `r2d2`), each keeping its prepared statements.
//!
//! Transactions run at `READ COMMITTED`; the SQL that reads a row to decide how to change it
//! locks it (`FOR UPDATE`), and claims skip rows another station holds (`FOR UPDATE SKIP
//! LOCKED`). A transaction the server aborts for a serialization failure or a deadlock runs
//! again, a few times, with a short pause.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{GenericClient, NoTls, Statement};

use super::{dialect, Backend, DbError, Row, Tx, Value};

/// How a station connects to the line's database.
#[derive(Clone, Default)]
pub struct PgOptions {
    /// The password (from [`super::Credentials`]); `None`: trust or peer authentication.
    pub password: Option<String>,
    /// Connections kept open (default 4).
    pub pool_size: Option<u32>,
    /// How long a connection attempt or a wait for a pooled connection may take (default 5 s).
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// How many times a transaction aborted by the server runs again.
const RETRIES: u32 = 8;

pub(super) struct Pg {
    pool: r2d2::Pool<Manager>,
    describe: String,
}

struct Manager {
    config: postgres::Config,
}

pub(super) struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        let text = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        match e.code() {
            None => DbError::Unavailable(text),
            Some(c) if c.code().starts_with("23") => DbError::Constraint(text),
            // Admin shutdown, crash shutdown, cannot connect now, connection exceptions.
            Some(c) if c.code().starts_with("57P") || c.code().starts_with("08") => {
                DbError::Unavailable(text)
            }
            Some(_) => DbError::Other(text),
        }
    }
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn column(row: &postgres::Row, i: usize) -> Result<Value, DbError> {
    let ty = row.columns()[i].type_();
    let bad = |e: postgres::Error| DbError::Other(format!("column {i}: {e}"));
    Ok(match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(bad)?.into(),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(i64::from)
            .into(),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map(i64::from)
            .into(),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(bad)?.into(),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(i).map_err(bad)?.into()
        }
        Type::BYTEA => match row.try_get::<_, Option<Vec<u8>>>(i).map_err(bad)? {
            Some(b) => Value::Blob(b),
            None => Value::Null,
        },
        Type::VOID => Value::Null,
        _ => {
            return Err(DbError::Other(format!(
                "column {i} has type {ty}, not read"
            )))
        }
    })
}

struct PgTx<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
    /// The server aborted the transaction in a way that a new attempt may pass.
    retry: bool,
}

impl<C: GenericClient> PgTx<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self
            .client
            .prepare(&dialect(Backend::Postgres, sql))
            .map_err(|e| self.failed(e))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn failed(&mut self, e: postgres::Error) -> DbError {
        self.retry |= retryable(&e);
        e.into()
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient> Tx for PgTx<'_, C> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let s = self.statement(sql)?;
        self.client
            .execute(&s, &refs(params))
            .map_err(|e| self.failed(e))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let s = self.statement(sql)?;
        let rows = self
            .client
            .query(&s, &refs(params))
            .map_err(|e| self.failed(e))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| column(r, i))
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        // Schema text: cached statements may describe tables it changes.
        self.statements.clear();
        self.client.batch_execute(sql).map_err(|e| self.failed(e))
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }
}

impl Pg {
    pub(super) fn connect(url: &str, options: PgOptions) -> Result<Pg, DbError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| DbError::Other(format!("journal URL: {e}")))?;
        if config.get_password().is_some() {
            return Err(DbError::Other(
                "the journal URL carries a password: give it in journal_password (a file or \
                 an environment variable), never in the URL"
                    .into(),
            ));
        }
        if let Some(p) = &options.password {
            config.password(p.as_bytes());
        }
        let timeout = options.connect_timeout.unwrap_or(Duration::from_secs(5));
        config.connect_timeout(timeout);
        config.application_name("idcardd");
        let describe = format!(
            "postgres://{}@{}/{}",
            config.get_user().unwrap_or(""),
            config
                .get_hosts()
                .iter()
                .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
                .map(|(h, p)| match h {
                    postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                    postgres::config::Host::Unix(path) => format!("{}:{p}", path.display()),
                })
                .collect::<Vec<_>>()
                .join(","),
            config.get_dbname().unwrap_or("")
        );
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.unwrap_or(4).max(1))
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager { config });
        Ok(Pg { pool, describe })
    }

    pub(super) fn describe(&self) -> String {
        self.describe.clone()
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(format!("{}: {e}", self.describe)))
    }

    pub(super) fn write<T, E: From<DbError>>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn()?;
            let PgConn { client, statements } = &mut *conn;
            let mut tx = client.transaction().map_err(DbError::from)?;
            let mut ptx = PgTx {
                client: &mut tx,
                statements,
                retry: false,
            };
            let out = f(&mut ptx);
            let retry = ptx.retry;
            match out {
                Ok(v) => match tx.commit() {
                    Ok(()) => return Ok(v),
                    Err(e) if retryable(&e) && attempt < RETRIES => {}
                    Err(e) => return Err(DbError::from(e).into()),
                },
                Err(e) if retry && attempt < RETRIES => drop((e, tx)),
                Err(e) => return Err(e),
            }
            std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
        }
    }

    pub(super) fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn()?;
        let PgConn { client, statements } = &mut *conn;
        f(&mut PgTx {
            client,
            statements,
            retry: false,
        })
    }
}
