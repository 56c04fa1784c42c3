//! The example database of the tests that run the sql plugin, on either
//! backend: a SQLite file in the test's folder, or a PostgreSQL database
//! created for the test and dropped with it; `make-example-db` fills both
//! with the same rows. [`sql_plugin`] has what the tests need to run the
//! sql plugin over it.
#![allow(dead_code)]

pub mod sql_plugin;

use sqlx::{Connection, Executor, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where PostgreSQL is unless `EXPORT_HOST_TEST_POSTGRES` says otherwise.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// Runs each test body on both backends, as `NAME::sqlite` and
/// `NAME::postgres` (the test file imports [`Backend`]).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(super::Backend::Sqlite)
                }

                #[test]
                fn postgres() {
                    super::$name(super::Backend::Postgres)
                }
            }
        )*
    };
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The test's database; a PostgreSQL one is dropped with it.
pub enum Database {
    Sqlite(PathBuf),
    Postgres { name: String },
}

impl Database {
    /// The example database on `backend`; a SQLite file goes in `dir`.
    pub fn example(backend: Backend, dir: &Path) -> Database {
        let database = match backend {
            Backend::Sqlite => Database::Sqlite(dir.join("example.db")),
            Backend::Postgres => Database::new_postgres(),
        };
        let target = match &database {
            Database::Sqlite(path) => path.to_str().expect("UTF-8 temp path").to_owned(),
            Database::Postgres { .. } => database.url(),
        };
        make_example_db(&target);
        database
    }

    /// A fresh, empty PostgreSQL database.
    pub fn new_postgres() -> Database {
        let name = format!("eh_{:032x}", rand::random::<u128>());
        block_on(async {
            admin_connection()
                .await
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
        });
        Database::Postgres { name }
    }

    pub fn url(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres { name } => format!("{}/{name}", postgres_base()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres { .. })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Database::Postgres { name } = self {
            let name = name.clone();
            // A database left behind is harmless; a panic here, while a
            // failing test unwinds, would abort the whole test binary.
            if std::thread::panicking() {
                return;
            }
            block_on(async move {
                admin_connection()
                    .await
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .expect("drop the test database");
            });
        }
    }
}

pub fn postgres_base() -> String {
    std::env::var("EXPORT_HOST_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// A connection to `url`, or a failure saying how to start PostgreSQL.
pub async fn connect(url: &str) -> PgConnection {
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        PgConnection::connect(url),
    )
    .await
    {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => panic!(
            "PostgreSQL is not reachable at {url}: {err}; start it with \
             `pg_ctlcluster <version> main start` (.ci/run does this) or point \
             EXPORT_HOST_TEST_POSTGRES at a server"
        ),
        Err(_) => panic!("PostgreSQL is not reachable at {url}: no answer within 10 s"),
    }
}

/// The server's maintenance database.
pub async fn admin_connection() -> PgConnection {
    connect(&format!("{}/postgres", postgres_base())).await
}

/// Fills `target` (a SQLite path or a PostgreSQL URL) with the example data.
pub fn make_example_db(target: &str) {
    let tool = super::common::target_dir().join("make-example-db");
    assert!(
        tool.is_file(),
        "{} is missing: build it first: cargo build --release --workspace",
        tool.display()
    );
    let output = Command::new(&tool)
        .arg(target)
        .output()
        .expect("running make-example-db");
    assert!(
        output.status.success(),
        "make-example-db {target} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
