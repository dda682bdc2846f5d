//! Schema parity of the two backends (docs/database.md): `migrations/` brings SQLite and
//! `migrations_pg/` brings PostgreSQL to the same schema, version by version.
//!
//! A fresh SQLite database and a fresh PostgreSQL database are migrated, read back from their
//! catalogues and compared: tables; per table the columns (name, order, type under the mapping
//! below, NOT NULL, default), the primary key, unique constraints, foreign keys (columns, target,
//! ON DELETE), indexes (name, columns, unique, partial) and triggers (name); and both migration
//! sets must have the same versions with the same descriptions. A difference fails the test with
//! one readable line per difference.
//!
//! The PostgreSQL server is `OTAFLEET_TEST_DATABASE_URL` (a server URL such as
//! `postgres://otafleet@127.0.0.1:PORT/postgres`; `scripts/pg start DIR` prints one, and
//! `scripts/test` sets it). The test creates its own database there and drops it afterwards.
//! Without it the comparison prints SKIPPED, and fails when `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::str::FromStr;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor, Row};

static SQLITE: Migrator = sqlx::migrate!("./migrations");
static POSTGRES: Migrator = sqlx::migrate!("./migrations_pg");

/// The SQLite INTEGER columns the code reads and writes as `bool`: BOOLEAN in PostgreSQL, and no
/// other column is (checked at every version, for the columns that exist then). A new boolean
/// column is added here, in migrations_pg/0001_init.sql's list and in docs/database.md.
const BOOLEAN_COLUMNS: &[(&str, &str)] = &[
    ("deployments", "active"), // 0001 to 0012
    ("deployments", "allow_other_project"),
    ("deployments", "rollback"),
    ("devices", "tls"),
    ("devices", "weak_auth"),
    ("rollout_members", "late"),
    ("updates", "retry"),
    ("watch_folders", "auto_deploy"),
];

const URL_VAR: &str = "OTAFLEET_TEST_DATABASE_URL";

#[derive(Debug, Clone, PartialEq, Eq)]
enum DefaultValue {
    None,
    /// Assigned by the database when absent: SQLite's INTEGER PRIMARY KEY (AUTOINCREMENT), an
    /// identity column (or serial) in PostgreSQL.
    Generated,
    /// The default's value, normalised: casts dropped, booleans as 1/0.
    Value(String),
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// In SQLite's vocabulary: INTEGER, TEXT, BLOB, REAL (PostgreSQL's types mapped back).
    ty: String,
    /// As the backend spells it, for the messages.
    native: String,
    not_null: bool,
    default: DefaultValue,
}

impl Column {
    fn same(&self, other: &Column) -> bool {
        self.ty == other.ty && self.not_null == other.not_null && self.default == other.default
    }

    fn describe(&self) -> String {
        let mut s = if self.native == self.ty {
            self.ty.clone()
        } else if self.ty.starts_with("not mapped") {
            format!("{} ({})", self.native, self.ty)
        } else {
            format!("{} (as {})", self.native, self.ty)
        };
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        match &self.default {
            DefaultValue::None => {}
            DefaultValue::Generated => s.push_str(" generated id"),
            DefaultValue::Value(v) => {
                let _ = write!(s, " DEFAULT {v}");
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    columns: Vec<String>,
    table: String,
    references: Vec<String>,
    on_delete: String,
}

impl std::fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({}) REFERENCES {} ({}) ON DELETE {}",
            self.columns.join(", "),
            self.table,
            self.references.join(", "),
            self.on_delete
        )
    }
}

#[derive(Debug, Clone)]
struct Index {
    columns: Vec<String>,
    unique: bool,
    /// The WHERE clause of a partial index, as the backend gives it back (shown, not compared:
    /// PostgreSQL rewrites predicates, e.g. `NOT IN (…)` as `<> ALL (ARRAY[…])`).
    predicate: Option<String>,
}

impl Index {
    fn same(&self, other: &Index) -> bool {
        self.columns == other.columns
            && self.unique == other.unique
            && self.predicate.is_some() == other.predicate.is_some()
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{}({})",
            if self.unique { "UNIQUE " } else { "" },
            self.columns.join(", ")
        );
        match &self.predicate {
            Some(p) => {
                let _ = write!(s, " partial: WHERE {p}");
            }
            None => s.push_str(" not partial"),
        }
        s
    }
}

#[derive(Debug, Default)]
struct Table {
    columns: Vec<Column>,
    primary_key: Vec<String>,
    uniques: BTreeSet<Vec<String>>,
    foreign_keys: BTreeSet<ForeignKey>,
    indexes: BTreeMap<String, Index>,
    triggers: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
    /// (table, column) of every BOOLEAN column (PostgreSQL only).
    booleans: BTreeSet<(String, String)>,
    /// (version, description) of the applied migrations.
    applied: Vec<(i64, String)>,
}

/// `'x'::text` → `'x'`, `'-1'::integer` → `-1`, `true` → `1`, `(0)` → `0`.
fn normalise_default(expr: &str, numeric: bool) -> String {
    let mut s = expr.trim().to_string();
    loop {
        let t = s.trim();
        if t.starts_with('(') && t.ends_with(')') {
            s = t[1..t.len() - 1].to_string();
            continue;
        }
        // A trailing cast, outside any quoted text.
        if let Some(i) = t.rfind("::") {
            if !t[i..].contains('\'') {
                s = t[..i].to_string();
                continue;
            }
        }
        s = t.to_string();
        break;
    }
    match s.to_ascii_lowercase().as_str() {
        "true" => return "1".into(),
        "false" => return "0".into(),
        _ => {}
    }
    if numeric && s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        let inner = &s[1..s.len() - 1];
        if inner.parse::<f64>().is_ok() {
            return inner.to_string();
        }
    }
    s
}

async fn sqlite_schema(conn: &mut SqliteConnection) -> sqlx::Result<Schema> {
    let mut schema = Schema::default();
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, _sql) in tables {
        let mut t = Table::default();
        let cols = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        for c in &cols {
            let col: String = c.get(0);
            let ty: String = c.get::<String, _>(1).to_ascii_uppercase();
            let in_pk: i64 = c.get(4);
            if in_pk > 0 {
                pk.push((in_pk, col.clone()));
            }
            let dflt: Option<String> = c.get(3);
            let numeric = ty == "INTEGER" || ty == "REAL";
            t.columns.push(Column {
                name: col,
                native: ty.clone(),
                ty,
                // A primary key column is NOT NULL in PostgreSQL whatever it says; SQLite lets a
                // non-INTEGER one hold NULL unless it says NOT NULL (docs/database.md).
                not_null: c.get::<i64, _>(2) != 0 || in_pk > 0,
                default: dflt.map_or(DefaultValue::None, |d| {
                    DefaultValue::Value(normalise_default(&d, numeric))
                }),
            });
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        // An INTEGER PRIMARY KEY (with or without AUTOINCREMENT) is the rowid: generated.
        if t.primary_key.len() == 1 {
            if let Some(c) = t
                .columns
                .iter_mut()
                .find(|c| c.name == t.primary_key[0] && c.ty == "INTEGER")
            {
                c.default = DefaultValue::Generated;
            }
        }
        let indexes: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?) ORDER BY name",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for (index, unique, origin, partial) in indexes {
            let columns: Vec<(Option<String>,)> =
                sqlx::query_as("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut *conn)
                    .await?;
            let columns: Vec<String> = columns
                .into_iter()
                .map(|(c,)| c.unwrap_or_else(|| "<expression>".into()))
                .collect();
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    t.uniques.insert(columns);
                }
                _ => {
                    let predicate = if partial != 0 {
                        let sql: Option<String> =
                            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = ?")
                                .bind(&index)
                                .fetch_one(&mut *conn)
                                .await?;
                        let sql = sql.unwrap_or_default();
                        let at = sql.to_ascii_uppercase().rfind(" WHERE ");
                        Some(at.map_or("?".to_string(), |i| {
                            sql[i + 7..]
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        }))
                    } else {
                        None
                    };
                    t.indexes.insert(
                        index,
                        Index {
                            columns,
                            unique: unique != 0,
                            predicate,
                        },
                    );
                }
            }
        }
        let fks = sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?) \
             ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for f in &fks {
            let fk = by_id.entry(f.get(0)).or_insert_with(|| ForeignKey {
                columns: Vec::new(),
                table: f.get(1),
                references: Vec::new(),
                on_delete: f.get::<String, _>(4).to_ascii_uppercase(),
            });
            fk.columns.push(f.get(2));
            // A missing "to" means the target's primary key.
            fk.references.push(
                f.get::<Option<String>, _>(3)
                    .unwrap_or_else(|| "<pk>".into()),
            );
        }
        t.foreign_keys = by_id.into_values().collect();
        let triggers: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        t.triggers = triggers.into_iter().map(|(n,)| n).collect();
        schema.tables.insert(name, t);
    }
    schema.applied = sqlx::query_as(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(schema)
}

/// PostgreSQL's type in SQLite's vocabulary (the mapping of docs/database.md).
fn pg_type_as_sqlite(native: &str) -> String {
    match native {
        "bigint" | "boolean" => "INTEGER".into(),
        "text" => "TEXT".into(),
        "bytea" => "BLOB".into(),
        "double precision" => "REAL".into(),
        "integer" | "smallint" => "not mapped: use BIGINT, sqlx decodes i64 only from INT8".into(),
        _ => "not mapped to a SQLite type".into(),
    }
}

fn pg_on_delete(code: &str) -> String {
    match code {
        "a" => "NO ACTION",
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        other => other,
    }
    .into()
}

async fn pg_schema(conn: &mut PgConnection) -> sqlx::Result<Schema> {
    let mut schema = Schema::default();
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.oid::int8 FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
           AND c.relname <> '_sqlx_migrations' ORDER BY c.relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name, oid) in tables {
        let mut t = Table::default();
        let cols = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
             FROM pg_attribute a \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?;
        for c in &cols {
            let col: String = c.get(0);
            let native: String = c.get(1);
            let dflt: Option<String> = c.get(3);
            let identity: String = c.get(4);
            if native == "boolean" {
                schema.booleans.insert((name.clone(), col.clone()));
            }
            let ty = pg_type_as_sqlite(&native);
            let numeric = ty == "INTEGER" || ty == "REAL";
            let default = if !identity.is_empty()
                || dflt.as_deref().is_some_and(|d| d.starts_with("nextval("))
            {
                DefaultValue::Generated
            } else {
                dflt.map_or(DefaultValue::None, |d| {
                    DefaultValue::Value(normalise_default(&d, numeric))
                })
            };
            t.columns.push(Column {
                name: col,
                ty,
                native: native.to_ascii_uppercase(),
                not_null: c.get(2),
                default,
            });
        }
        let constraints = sqlx::query(
            "SELECT con.contype::text, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) \
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n \
                      ORDER BY k.i), \
                ft.relname::text, \
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i) \
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n \
                      ORDER BY k.i), \
                con.confdeltype::text \
             FROM pg_constraint con LEFT JOIN pg_class ft ON ft.oid = con.confrelid \
             WHERE con.conrelid = $1::int8::oid AND con.contype IN ('p', 'u', 'f')",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?;
        for c in &constraints {
            let kind: String = c.get(0);
            let columns: Vec<String> = c.get(1);
            match kind.as_str() {
                "p" => t.primary_key = columns,
                "u" => {
                    t.uniques.insert(columns);
                }
                _ => {
                    t.foreign_keys.insert(ForeignKey {
                        columns,
                        table: c.get::<Option<String>, _>(2).unwrap_or_default(),
                        references: c.get(3),
                        on_delete: pg_on_delete(&c.get::<String, _>(4)),
                    });
                }
            }
        }
        // Indexes of their own: not the ones that back the primary key or a UNIQUE constraint.
        let indexes = sqlx::query(
            "SELECT ic.relname::text, i.indisunique, \
                ARRAY(SELECT COALESCE(a.attname::text, '<expression>') \
                      FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                      LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n \
                      ORDER BY k.o), \
                pg_get_expr(i.indpred, i.indrelid) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::int8::oid AND NOT EXISTS ( \
                SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid \
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?;
        for i in &indexes {
            t.indexes.insert(
                i.get(0),
                Index {
                    unique: i.get(1),
                    columns: i.get(2),
                    predicate: i.get(3),
                },
            );
        }
        let triggers: Vec<(String,)> = sqlx::query_as(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1::int8::oid AND NOT tgisinternal",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?;
        t.triggers = triggers.into_iter().map(|(n,)| n).collect();
        schema.tables.insert(name, t);
    }
    schema.applied = sqlx::query_as(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(schema)
}

/// One line per difference; empty when the schemas agree.
fn differences(sqlite: &Schema, pg: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    if sqlite.applied != pg.applied {
        out.push(format!(
            "applied migrations differ: SQLite {:?}, PostgreSQL {:?}",
            sqlite.applied, pg.applied
        ));
    }
    let names: BTreeSet<&String> = sqlite.tables.keys().chain(pg.tables.keys()).collect();
    for name in names {
        let (s, p) = match (sqlite.tables.get(name), pg.tables.get(name)) {
            (Some(s), Some(p)) => (s, p),
            (Some(_), None) => {
                out.push(format!("table {name}: only in SQLite"));
                continue;
            }
            (None, Some(_)) => {
                out.push(format!("table {name}: only in PostgreSQL"));
                continue;
            }
            (None, None) => unreachable!(),
        };
        table_differences(name, s, p, &mut out);
    }
    // The listed columns that exist at this version.
    let expected: BTreeSet<(String, String)> = BOOLEAN_COLUMNS
        .iter()
        .filter(|(t, c)| {
            sqlite
                .tables
                .get(*t)
                .is_some_and(|t| t.columns.iter().any(|col| col.name == *c))
        })
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    for (t, c) in pg.booleans.difference(&expected) {
        out.push(format!(
            "{t}.{c}: BOOLEAN in PostgreSQL but not in this test's BOOLEAN_COLUMNS (is it read as bool?)"
        ));
    }
    for (t, c) in expected.difference(&pg.booleans) {
        let pg_type = pg
            .tables
            .get(t)
            .and_then(|table| table.columns.iter().find(|col| col.name == *c))
            .map_or("missing".to_string(), |col| col.native.clone());
        out.push(format!(
            "{t}.{c}: listed in BOOLEAN_COLUMNS (the code reads it as bool) but {pg_type} in PostgreSQL, not BOOLEAN"
        ));
    }
    out
}

fn table_differences(name: &str, s: &Table, p: &Table, out: &mut Vec<String>) {
    for sc in &s.columns {
        match p.columns.iter().find(|c| c.name == sc.name) {
            None => out.push(format!(
                "column {name}.{}: only in SQLite ({})",
                sc.name,
                sc.describe()
            )),
            Some(pc) if !sc.same(pc) => out.push(format!(
                "column {name}.{}: SQLite {} | PostgreSQL {}",
                sc.name,
                sc.describe(),
                pc.describe()
            )),
            Some(_) => {}
        }
    }
    for pc in &p.columns {
        if !s.columns.iter().any(|c| c.name == pc.name) {
            out.push(format!(
                "column {name}.{}: only in PostgreSQL ({})",
                pc.name,
                pc.describe()
            ));
        }
    }
    let order = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let (so, po) = (order(s), order(p));
    if so != po && so.iter().collect::<BTreeSet<_>>() == po.iter().collect::<BTreeSet<_>>() {
        out.push(format!(
            "table {name}: column order differs: SQLite ({}) | PostgreSQL ({})",
            so.join(", "),
            po.join(", ")
        ));
    }
    if s.primary_key != p.primary_key {
        out.push(format!(
            "table {name}: primary key SQLite ({}) | PostgreSQL ({})",
            s.primary_key.join(", "),
            p.primary_key.join(", ")
        ));
    }
    for u in s.uniques.difference(&p.uniques) {
        out.push(format!(
            "table {name}: UNIQUE ({}) only in SQLite",
            u.join(", ")
        ));
    }
    for u in p.uniques.difference(&s.uniques) {
        out.push(format!(
            "table {name}: UNIQUE ({}) only in PostgreSQL",
            u.join(", ")
        ));
    }
    for f in s.foreign_keys.difference(&p.foreign_keys) {
        out.push(format!("table {name}: foreign key {f} only in SQLite"));
    }
    for f in p.foreign_keys.difference(&s.foreign_keys) {
        out.push(format!("table {name}: foreign key {f} only in PostgreSQL"));
    }
    let index_names: BTreeSet<&String> = s.indexes.keys().chain(p.indexes.keys()).collect();
    for i in index_names {
        match (s.indexes.get(i), p.indexes.get(i)) {
            (Some(si), Some(pi)) if !si.same(pi) => out.push(format!(
                "index {i} on {name}: SQLite {} | PostgreSQL {}",
                si.describe(),
                pi.describe()
            )),
            (Some(si), None) => out.push(format!(
                "index {i} on {name}: only in SQLite ({})",
                si.describe()
            )),
            (None, Some(pi)) => out.push(format!(
                "index {i} on {name}: only in PostgreSQL ({})",
                pi.describe()
            )),
            _ => {}
        }
    }
    for t in s.triggers.difference(&p.triggers) {
        out.push(format!("trigger {t} on {name}: only in SQLite"));
    }
    for t in p.triggers.difference(&s.triggers) {
        out.push(format!("trigger {t} on {name}: only in PostgreSQL"));
    }
}

fn versions(m: &Migrator) -> Vec<(i64, String)> {
    m.iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

/// Needs no server: both directories hold the same versions, each with the same description
/// (the file name after the version).
#[test]
fn same_migration_versions_and_descriptions() {
    let (s, p) = (versions(&SQLITE), versions(&POSTGRES));
    let mut out = Vec::new();
    let all: BTreeSet<i64> = s.iter().chain(p.iter()).map(|(v, _)| *v).collect();
    for v in all {
        let sd = s.iter().find(|(sv, _)| *sv == v).map(|(_, d)| d);
        let pd = p.iter().find(|(pv, _)| *pv == v).map(|(_, d)| d);
        match (sd, pd) {
            (Some(a), Some(b)) if a != b => out.push(format!(
                "version {v:04}: migrations/ says {a:?}, migrations_pg/ says {b:?}"
            )),
            (Some(a), None) => out.push(format!(
                "version {v:04} ({a}): in migrations/ but not in migrations_pg/"
            )),
            (None, Some(b)) => out.push(format!(
                "version {v:04} ({b}): in migrations_pg/ but not in migrations/"
            )),
            _ => {}
        }
    }
    assert!(
        out.is_empty(),
        "migrations/ and migrations_pg/ must have the same versions and names:\n  {}",
        out.join("\n  ")
    );
}

/// The first `n` migrations of `all`, as a source a `Migrator` can be made from: migrating with
/// it applies only those of them not applied yet.
#[derive(Debug)]
struct FirstN(Vec<Migration>);

impl MigrationSource<'static> for FirstN {
    fn resolve(self) -> BoxFuture<Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

async fn first(all: &Migrator, n: usize) -> Migrator {
    Migrator::new(FirstN(all.iter().take(n).cloned().collect()))
        .await
        .expect("a migrator of the first migrations")
}

/// Migrates both databases one version at a time and compares their schemas after each: a
/// difference is reported once, at the first version that shows it.
async fn compare_each_version(
    sqlite: &mut SqliteConnection,
    pg: &mut PgConnection,
) -> Result<(usize, usize, Vec<String>), String> {
    let steps: Vec<(i64, String)> = versions(&SQLITE);
    let mut reported: Vec<String> = Vec::new();
    let mut shown_before: BTreeSet<String> = BTreeSet::new();
    let mut tables = 0;
    for (n, (version, description)) in steps.iter().enumerate() {
        // The file name: sqlx's description has spaces for its underscores.
        let label = format!("{version:04}_{}", description.replace(' ', "_"));
        first(&SQLITE, n + 1)
            .await
            .run(&mut *sqlite)
            .await
            .map_err(|e| format!("migrations/{label}.sql failed on SQLite: {e}"))?;
        first(&POSTGRES, n + 1)
            .await
            .run(&mut *pg)
            .await
            .map_err(|e| format!("migrations_pg/{label}.sql failed on PostgreSQL: {e}"))?;
        let s = sqlite_schema(sqlite)
            .await
            .map_err(|e| format!("read SQLite's schema after {label}: {e}"))?;
        let p = pg_schema(pg)
            .await
            .map_err(|e| format!("read PostgreSQL's schema after {label}: {e}"))?;
        tables = s.tables.len();
        let now: BTreeSet<String> = differences(&s, &p).into_iter().collect();
        for d in now.difference(&shown_before) {
            reported.push(format!("after {label}: {d}"));
        }
        shown_before = now;
    }
    if !shown_before.is_empty() {
        reported.push(format!(
            "({} of these remain after the last migration)",
            shown_before.len()
        ));
    }
    Ok((steps.len(), tables, reported))
}

#[tokio::test]
async fn postgres_schema_matches_sqlite_at_every_version() {
    let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) else {
        println!("SKIPPED: {URL_VAR} is not set");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{URL_VAR} is not set, and CI=true: the PostgreSQL schema was not checked \
                 (scripts/test starts a server with scripts/pg)"
            );
        }
        return;
    };

    let server = PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{URL_VAR}={url} is not a PostgreSQL URL: {e}"));
    let mut admin = PgConnection::connect_with(&server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}={url}: {e}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let db = format!("otafleet_parity_{}_{nanos}", std::process::id());
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {db}: {e}"));

    // Everything that may fail runs before the database is dropped; the result is judged after.
    let result = async {
        let mut sqlite = SqliteConnection::connect("sqlite::memory:")
            .await
            .map_err(|e| format!("in-memory SQLite: {e}"))?;
        let mut pg = PgConnection::connect_with(&server.clone().database(&db))
            .await
            .map_err(|e| format!("connect to {db}: {e}"))?;
        let result = compare_each_version(&mut sqlite, &mut pg).await;
        let _ = pg.close().await;
        result
    }
    .await;
    if let Err(e) = admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
    {
        eprintln!("note: could not drop the test database {db}: {e}");
    }
    let (migrations, tables, diff) = result.unwrap_or_else(|e| panic!("{e}"));

    assert!(tables > 0, "no tables read from SQLite");
    assert!(
        diff.is_empty(),
        "the PostgreSQL schema (migrations_pg/) differs from the SQLite schema (migrations/); \
         each difference at the first version that shows it:\n  {}\n\
         (docs/database.md: the type mapping and the boolean columns)",
        diff.join("\n  ")
    );
    println!(
        "{migrations} migrations, {tables} tables: same schema on SQLite and PostgreSQL after each"
    );
}
