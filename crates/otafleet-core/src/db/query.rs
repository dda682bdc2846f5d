//! One query text, either backend: [`query`], [`query_as`] and [`query_scalar`] build a statement
//! the way sqlx's functions of the same names do (`.bind(v)` in order, then `fetch_*` or
//! `execute` on a target), but the statement is only tied to a database when it runs, on
//! whichever backend the target ([`Db`], a transaction, a connection) belongs to.
//!
//! Why not `sqlx::Any`: it cannot decode SQLite's booleans (stored as integers) and has no JSON
//! type. Here the rows decode through each backend's own driver, so a `#[derive(sqlx::FromRow)]`
//! struct serves both as long as every field type decodes from both (the PostgreSQL schema is
//! typed for that: BIGINT for integers, BOOLEAN for flags, TEXT for text and JSON — see
//! [`Json`]).
//!
//! Placeholders are written `$1 … $n` (or `?`, which only SQLite understands: a statement that
//! must also run on PostgreSQL uses `$n`).

use std::marker::PhantomData;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Arguments, Decode, Encode, FromRow, Postgres, Sqlite, Type};

use super::{Db, Exec, Raw};
use crate::error::Result;

/// A value bound to a statement: anything both drivers can encode.
pub(crate) trait Bind<'q>: Send + 'q {
    fn sqlite(
        self: Box<Self>,
        args: &mut SqliteArguments<'q>,
    ) -> std::result::Result<(), BoxDynError>;
    fn pg(self: Box<Self>, args: &mut PgArguments) -> std::result::Result<(), BoxDynError>;
}

impl<'q, T> Bind<'q> for T
where
    T: Send + 'q + Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres>,
{
    fn sqlite(
        self: Box<Self>,
        args: &mut SqliteArguments<'q>,
    ) -> std::result::Result<(), BoxDynError> {
        args.add(*self)
    }
    fn pg(self: Box<Self>, args: &mut PgArguments) -> std::result::Result<(), BoxDynError> {
        args.add(*self)
    }
}

/// What a statement runs on: the pool (a connection taken for the one statement) or a
/// connection the caller holds (inside its transaction, if any).
pub(crate) enum Target<'e> {
    Pool(&'e Db),
    Conn(&'e mut (dyn Exec + 'static)),
}

impl<'e> From<&'e Db> for Target<'e> {
    fn from(db: &'e Db) -> Self {
        Target::Pool(db)
    }
}
impl<'e> From<&'e mut (dyn Exec + 'static)> for Target<'e> {
    fn from(c: &'e mut (dyn Exec + 'static)) -> Self {
        Target::Conn(c)
    }
}
impl<'e> From<&'e mut super::Tx> for Target<'e> {
    fn from(c: &'e mut super::Tx) -> Self {
        Target::Conn(c)
    }
}
impl<'e> From<&'e mut super::PoolConn> for Target<'e> {
    fn from(c: &'e mut super::PoolConn) -> Self {
        Target::Conn(c)
    }
}
impl<'e> From<&'e mut SqliteConnection> for Target<'e> {
    fn from(c: &'e mut SqliteConnection) -> Self {
        Target::Conn(c)
    }
}
impl<'e> From<&'e mut PgConnection> for Target<'e> {
    fn from(c: &'e mut PgConnection) -> Self {
        Target::Conn(c)
    }
}

/// What an `execute` did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows
    }
}

/// The statement text and its bound values, not yet tied to a backend.
pub(crate) struct Statement<'q> {
    sql: &'q str,
    binds: Vec<Box<dyn Bind<'q> + 'q>>,
}

impl<'q> Statement<'q> {
    fn new(sql: &'q str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    fn sqlite_args(self) -> Result<(&'q str, SqliteArguments<'q>)> {
        let mut args = SqliteArguments::default();
        for b in self.binds {
            b.sqlite(&mut args).map_err(sqlx::Error::Encode)?;
        }
        Ok((self.sql, args))
    }

    fn pg_args(self) -> Result<(String, PgArguments)> {
        let mut args = PgArguments::default();
        for b in self.binds {
            b.pg(&mut args).map_err(sqlx::Error::Encode)?;
        }
        Ok((for_postgres(self.sql), args))
    }
}

/// A statement whose rows are not read (or read by [`Query::fetch_all_rows`]).
pub(crate) struct Query<'q>(Statement<'q>);

/// A statement whose rows decode into `T` (`#[derive(sqlx::FromRow)]`).
pub(crate) struct QueryAs<'q, T>(Statement<'q>, PhantomData<fn() -> T>);

/// A statement whose rows' first column decodes into `T`.
pub(crate) struct QueryScalar<'q, T>(Statement<'q>, PhantomData<fn() -> T>);

pub(crate) fn query(sql: &str) -> Query<'_> {
    Query(Statement::new(sql))
}

pub(crate) fn query_as<T>(sql: &str) -> QueryAs<'_, T> {
    QueryAs(Statement::new(sql), PhantomData)
}

pub(crate) fn query_scalar<T>(sql: &str) -> QueryScalar<'_, T> {
    QueryScalar(Statement::new(sql), PhantomData)
}

/// Runs `$body` with `$q` built for the backend of `$target` and `$on` the executor: a pool
/// or a connection of that backend.
macro_rules! on_backend {
    ($stmt:expr, $target:expr, |$q:ident, $on:ident| $sqlite:expr, $pg:expr) => {{
        let stmt = $stmt;
        match $target.into() {
            Target::Pool(Db::Sqlite(pool)) => {
                let (sql, args) = stmt.sqlite_args()?;
                let $on = pool;
                let $q = (sql, args);
                $sqlite
            }
            Target::Pool(Db::Postgres(pool)) => {
                let (sql, args) = stmt.pg_args()?;
                let $on = pool;
                let $q = (sql.as_str(), args);
                $pg
            }
            Target::Conn(c) => match c.raw() {
                Raw::Sqlite(conn) => {
                    let (sql, args) = stmt.sqlite_args()?;
                    let $on = conn;
                    let $q = (sql, args);
                    $sqlite
                }
                Raw::Postgres(conn) => {
                    let (sql, args) = stmt.pg_args()?;
                    let $on = conn;
                    let $q = (sql.as_str(), args);
                    $pg
                }
            },
        }
    }};
}

impl<'q> Query<'q> {
    pub(crate) fn bind<T: Bind<'q>>(mut self, value: T) -> Self {
        self.0.binds.push(Box::new(value));
        self
    }

    pub(crate) async fn execute<'e>(self, target: impl Into<Target<'e>>) -> Result<Done> {
        let rows = on_backend!(
            self.0,
            target,
            |q, on| sqlx::query_with::<Sqlite, _>(q.0, q.1)
                .execute(on)
                .await?
                .rows_affected(),
            sqlx::query_with::<Postgres, _>(q.0, q.1)
                .execute(on)
                .await?
                .rows_affected()
        );
        Ok(Done { rows })
    }
}

/// What a row type needs to be read from either backend.
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// What a scalar needs to be read from either backend.
pub(crate) trait Scalar:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
{
}
impl<T> Scalar for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + Send
        + Unpin
{
}

/// `bind` and the three `fetch_*` of a statement whose rows decode into `T` through sqlx's
/// `$with` function (`query_as_with` or `query_scalar_with`), on either backend.
macro_rules! fetching {
    ($ty:ident, $bound:ident, $with:ident) => {
        impl<'q, T: $bound> $ty<'q, T> {
            pub(crate) fn bind<V: Bind<'q>>(mut self, value: V) -> Self {
                self.0.binds.push(Box::new(value));
                self
            }

            pub(crate) async fn fetch_all<'e>(
                self,
                target: impl Into<Target<'e>>,
            ) -> Result<Vec<T>> {
                Ok(on_backend!(
                    self.0,
                    target,
                    |q, on| sqlx::$with::<Sqlite, T, _>(q.0, q.1).fetch_all(on).await?,
                    sqlx::$with::<Postgres, T, _>(q.0, q.1)
                        .fetch_all(on)
                        .await?
                ))
            }

            pub(crate) async fn fetch_optional<'e>(
                self,
                target: impl Into<Target<'e>>,
            ) -> Result<Option<T>> {
                Ok(on_backend!(
                    self.0,
                    target,
                    |q, on| sqlx::$with::<Sqlite, T, _>(q.0, q.1)
                        .fetch_optional(on)
                        .await?,
                    sqlx::$with::<Postgres, T, _>(q.0, q.1)
                        .fetch_optional(on)
                        .await?
                ))
            }

            pub(crate) async fn fetch_one<'e>(self, target: impl Into<Target<'e>>) -> Result<T> {
                Ok(on_backend!(
                    self.0,
                    target,
                    |q, on| sqlx::$with::<Sqlite, T, _>(q.0, q.1).fetch_one(on).await?,
                    sqlx::$with::<Postgres, T, _>(q.0, q.1)
                        .fetch_one(on)
                        .await?
                ))
            }
        }
    };
}

fetching!(QueryAs, Row, query_as_with);
fetching!(QueryScalar, Scalar, query_scalar_with);

/// A statement's text for PostgreSQL: [`pg_placeholders`], and SQLite's index hints
/// (`INDEXED BY name`, which PostgreSQL's planner neither needs nor parses) left out.
pub(crate) fn for_postgres(sql: &str) -> String {
    let mut text = pg_placeholders(sql);
    while let Some(at) = text.find(" INDEXED BY ") {
        let name_at = at + " INDEXED BY ".len();
        let end = text[name_at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| name_at + n);
        text.replace_range(at..end, "");
    }
    text
}

/// A statement's text for PostgreSQL: SQLite's placeholders (`?NNN`, and bare `?`, which takes
/// the number after the highest used so far — SQLite's own rule) become `$NNN`; quoted strings
/// and identifiers are left alone. `$NNN` passes through, so either style may be written.
pub(crate) fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut highest = 0u32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' | '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    if c == '$' {
                        out.push('$');
                        continue;
                    }
                    highest + 1
                } else {
                    digits.parse::<u32>().unwrap_or(u32::MAX)
                };
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// JSON kept as text in both backends (SQLite has no JSON type; PostgreSQL's `jsonb` would need
/// another text for every statement that compares or builds it). Reads and writes like
/// `sqlx::types::Json`, serialises as the value itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Type<Sqlite> for Json<T> {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}
impl<T> Type<Postgres> for Json<T> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}
impl<'q, T: serde::Serialize> Encode<'q, Sqlite> for Json<T> {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> std::result::Result<sqlx::encode::IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}
impl<T: serde::Serialize> Encode<'_, Postgres> for Json<T> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, BoxDynError> {
        <String as Encode<'_, Postgres>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}
impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Sqlite> for Json<T> {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Json(serde_json::from_str(text)?))
    }
}
impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Postgres> for Json<T> {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Postgres>>::decode(value)?;
        Ok(Json(serde_json::from_str(text)?))
    }
}

#[cfg(test)]
mod tests {
    use super::{for_postgres, pg_placeholders};

    #[test]
    fn index_hints_are_left_out() {
        assert_eq!(
            for_postgres("SELECT 1 FROM updates u INDEXED BY updates_mac WHERE u.mac = ?"),
            "SELECT 1 FROM updates u WHERE u.mac = $1"
        );
    }

    #[test]
    fn placeholders_follow_sqlites_numbering() {
        assert_eq!(pg_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(
            pg_placeholders("a = ?2 AND b = ?1 AND c = ?"),
            "a = $2 AND b = $1 AND c = $3"
        );
        assert_eq!(pg_placeholders("a = $1 OR b = $1"), "a = $1 OR b = $1");
        assert_eq!(
            pg_placeholders("x = '?' AND \"q?\" = ?"),
            "x = '?' AND \"q?\" = $1"
        );
        assert_eq!(
            pg_placeholders("x = 'it''s ?' AND y = ?"),
            "x = 'it''s ?' AND y = $1"
        );
    }
}
