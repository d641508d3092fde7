//! The test runner of this binary (`harness = false` in Cargo.toml): `libtest-mimic` with the
//! tests every module registers through `tests!` and `both_stores!`.
//!
//! libtest decides `#[ignore]` at compile time and has no "skipped" outcome, so a test whose
//! Postgres or chromedriver was missing used to return early and count as passed. Here a test
//! declares what it needs; when that is not there (and `CI` is not `true`), the test is not
//! run and shows as `ignored (reason)`, and the result line counts it: `... N ignored`. Under
//! `CI=true` it runs anyway, and fails the way it always did (`common::skip` panics).

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Trial};

/// What a test needs besides this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The Postgres server at `common::pg_admin_url()`.
    Postgres,
    /// `chromedriver` on PATH (Debian's `chromium-driver`).
    Chromedriver,
}

/// One registered test: `run` builds its own runtime (`#[tokio::main(...)]` on the function).
pub struct Test {
    /// `module_path!()` where it was registered.
    pub module: &'static str,
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn(),
}

inventory::collect!(Test);

/// Register tests: `tests!(a, b)`, or `tests!(needs Postgres: a, b)`. Each is a plain `fn()`,
/// usually an `async fn` under `#[tokio::main(flavor = "multi_thread", worker_threads = 2)]`
/// (as `#[tokio::test]` would have been). A test function that is not registered is dead
/// code, which the lints deny.
#[macro_export]
macro_rules! tests {
    (needs $needs:ident: $($name:ident),* $(,)?) => {
        $(
            inventory::submit! {
                $crate::harness::Test {
                    module: module_path!(),
                    name: stringify!($name),
                    needs: $crate::harness::Needs::$needs,
                    run: $name,
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::tests!(needs Nothing: $($name),*);
    };
}

/// Run an async test body against SQLite and Postgres: tests `<name>::sqlite` and
/// `<name>::postgres`, the second needing Postgres.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
                #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
                $crate::tests!(sqlite);
                $crate::tests!(needs Postgres: postgres);
            }
        )*
    };
}

thread_local! {
    static CURRENT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The name of the test running on this thread (for `common::skip`'s message).
pub fn current_test() -> Option<String> {
    CURRENT.with(|c| c.borrow().clone())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Why the test cannot run here, or None when what it needs is there.
fn missing(needs: Needs) -> Option<String> {
    match needs {
        Needs::Nothing => None,
        Needs::Postgres => postgres_missing().clone(),
        Needs::Chromedriver => crate::real_browser::find_chromedriver().is_none().then(|| {
            "needs chromedriver on PATH: apt-get install chromium chromium-driver".to_owned()
        }),
    }
}

/// Whether Postgres answers, asked once per run.
fn postgres_missing() -> &'static Option<String> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING.get_or_init(|| {
        let url = crate::common::pg_admin_url();
        let probe = async {
            use sqlx::Connection;
            let c = sqlx::PgConnection::connect(&url).await?;
            c.close().await
        };
        let answer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), probe).await })
                    .map_err(|_| "no answer in 10 s".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            });
        let e = answer.err()?;
        // The whole error once; each ignored test names only what it needs.
        eprintln!(
            "note: Postgres is unreachable at {url} ({e}): the tests that need it are ignored; \
             start it or set LATCHKEY_TEST_DATABASE_URL (under CI=true they fail instead)"
        );
        Some(format!("needs Postgres at {url}"))
    })
}

pub fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // libtest reads RUST_TEST_THREADS when --test-threads is not given; so does this.
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    let mut tests: Vec<(String, &'static Test)> = inventory::iter::<Test>
        .into_iter()
        .map(|t| {
            // `module_path!()` starts with this crate's name (`it::`), which libtest's names
            // do not have.
            let name = match t.module.split_once("::") {
                Some((_, module)) => format!("{module}::{}", t.name),
                None => t.name.to_owned(),
            };
            (name, t)
        })
        .collect();
    // libtest lists and starts tests in name order.
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    let trials = tests
        .into_iter()
        .map(|(name, t)| {
            let (run, needs) = (t.run, t.needs);
            Trial::ignorable_test(name.clone(), move || {
                if !ci()
                    && let Some(reason) = missing(needs)
                {
                    return Ok(Completion::ignored_with(reason));
                }
                CURRENT.with(|c| *c.borrow_mut() = Some(name));
                run();
                Ok(Completion::Completed)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
