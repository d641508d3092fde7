//! The command line, run as the built binary against a test server's store.

use std::process::Output;

use latchkey::model::Source;

use crate::common::{Backend, TestApp, database_for, json};
use crate::flows::latchkey;

/// `client add svc`: a client_credentials client registered through the CLI.
async fn add_svc(app: &TestApp) -> Output {
    latchkey(
        app,
        &[
            "client",
            "add",
            "svc",
            "--grant-type",
            "client_credentials",
            "--scope",
            "api.read",
        ],
    )
    .await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `client add` runs the config file's client validator: what a [[clients]] entry may not be,
/// the CLI does not register either, and says why.
async fn client_add_refuses_what_the_config_refuses(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "js",
            &["--redirect-uri", "javascript:alert(document.cookie)"],
            &["client js.redirect_uris[0]", "can run script"],
        ),
        (
            "frag",
            &["--redirect-uri", "http://evil.example/cb#frag"],
            &["fragment", "loopback"],
        ),
        (
            "noredirect",
            &[],
            &["client noredirect.redirect_uris", "needs at least one"],
        ),
        (
            "public-cc",
            &[
                "--public",
                "--grant-type",
                "client_credentials",
                "--scope",
                "api.read",
            ],
            &["client public-cc.grant_types", "confidential"],
        ),
        (
            "bcl",
            &[
                "--redirect-uri",
                "https://app.example/cb",
                "--backchannel-logout-uri",
                "http://app.example/bcl",
            ],
            &["client bcl.backchannel_logout_uri", "loopback"],
        ),
    ];
    for (id, flags, says) in cases {
        let mut args = vec!["client", "add", id];
        args.extend_from_slice(flags);
        let out = latchkey(&app, &args).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{id}: {err}");
        for s in says {
            assert!(err.contains(s), "{id}: expected {s:?} in:\n{err}");
        }
        assert!(!text(&out.stdout).contains("client_secret"), "{id}");
        assert!(
            app.state
                .core
                .store
                .get_client(id)
                .await
                .expect("store")
                .is_none(),
            "{id} was registered"
        );
        // Nothing was registered, so the server knows no such client.
        let r = app
            .http
            .get(app.url("/authorize"))
            .query(&[("response_type", "code"), ("client_id", id)])
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 400, "{id}");
        assert!(r.headers().get("location").is_none(), "{id}");
        assert!(
            r.text()
                .await
                .expect("html")
                .contains("No app is registered"),
            "{id}"
        );
    }
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "public-cc"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);

    // What the validator accepts is registered, and works.
    let out = add_svc(&app).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed once");
    let r = app
        .token_basic(
            "svc",
            secret,
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["scope"], "api.read");
    let stored = app
        .state
        .core
        .store
        .get_client("svc")
        .await
        .expect("store")
        .expect("registered");
    assert_eq!(stored.source, Source::Cli);
}

/// Files the CLI creates are the owner's alone even under `umask 000`: the modes are given
/// to each open and mkdir, not left to the umask.
async fn state_files_are_owner_only_whatever_the_umask(b: Backend) {
    let Some((url, dir, pg_db)) = database_for(b).await else {
        return;
    };
    let root = dir.path();
    let (database_url, master_key) = match b {
        Backend::Sqlite => (
            format!("sqlite://{}/store/latchkey.db", root.display()),
            String::new(),
        ),
        Backend::Postgres => (
            url,
            "master_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"".to_owned(),
        ),
    };
    let config = root.join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:8080\"\ndatabase_url = \"{database_url}\"\ndata_dir = \"{}/state\"\n{master_key}\n",
            root.display()
        ),
    )
    .expect("config");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_latchkey"))
            .arg("--config")
            .arg(&config)
            .args(["keys", "list"])
            .env("LATCHKEY_LOG", "warn")
            .output()
            .expect("run latchkey")
    })
    .await
    .expect("join");
    if let Some(db) = pg_db {
        crate::common::drop_pg_database(db);
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut created = Vec::new();
    for (p, m) in crate::common::modes_under(root) {
        let name = p
            .strip_prefix(root)
            .expect("under root")
            .display()
            .to_string();
        if name == "cli.toml" {
            continue;
        }
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m, want, "{name} is {m:o}");
        created.push(name);
    }
    match b {
        Backend::Sqlite => {
            for f in ["state", "state/master.key", "store", "store/latchkey.db"] {
                assert!(created.iter().any(|c| c == f), "no {f} in {created:?}");
            }
        }
        Backend::Postgres => assert!(created.is_empty(), "{created:?}"),
    }
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `latchkey serve` on an address others can reach keeps `/metrics` off it and serves it on
/// `[metrics] bind`; SIGTERM stops both listeners and the process exits cleanly.
async fn serve_puts_metrics_on_their_own_listener(b: Backend) {
    use std::io::BufRead;

    let Some((url, dir, pg_db)) = database_for(b).await else {
        return;
    };
    let (main, metrics) = (free_port("0.0.0.0"), free_port("127.0.0.1"));
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:{main}\"\nbind = \"0.0.0.0:{main}\"\ndatabase_url = \"{url}\"\ndata_dir = \"{}\"\nmaster_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n[metrics]\nbind = \"127.0.0.1:{metrics}\"\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("LATCHKEY_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start latchkey serve");
    let stderr = child.stderr.take().expect("stderr");
    let (ready, serving) = std::sync::mpsc::channel();
    // Drains the log so the child never blocks on a full pipe; the text is kept for failures.
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("latchkey is serving") {
                let _ = ready.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let up = tokio::task::spawn_blocking(move || {
        serving.recv_timeout(std::time::Duration::from_secs(60))
    })
    .await
    .expect("join");
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid")).expect("pid");
    let result = if up.is_ok() {
        let http = crate::common::http_client();
        let get = |port: u16, path: &str| http.get(format!("http://127.0.0.1:{port}{path}")).send();
        let health = get(main, "/healthz").await.expect("healthz").status();
        let on_main = get(main, "/metrics").await.expect("metrics").status();
        let own = get(metrics, "/metrics").await.expect("metrics");
        Some((
            health,
            on_main,
            own.status(),
            own.text().await.expect("body"),
        ))
    } else {
        None
    };
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let log = log.join().expect("log");
    if let Some(db) = pg_db {
        crate::common::drop_pg_database(db);
    }
    let (health, on_main, own, body) = result.unwrap_or_else(|| panic!("never served:\n{log}"));
    assert_eq!(health, 200, "{log}");
    assert_eq!(on_main, 404, "{log}");
    assert_eq!(own, 200, "{log}");
    assert!(body.contains("latchkey_http_requests_total"), "{body}");
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(
        log.contains("serving /metrics on its own listener"),
        "{log}"
    );
}

/// `latchkey help <command...>` for the program and every subcommand, however deep.
fn help(path: &[String]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("help")
        .args(path)
        .output()
        .expect("run latchkey");
    assert!(out.status.success(), "help {path:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The items (commands, arguments, options) a help page lists, each with its description:
/// on the item's line after a gap, or on the more indented line below (clap's long layout).
fn help_items(page: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = page.lines().collect();
    let mut items = Vec::new();
    let mut in_list = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            in_list = matches!(*line, "Commands:" | "Arguments:" | "Options:");
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if !in_list || indent > 6 {
            continue;
        }
        let item = line.trim();
        // "--config <CONFIG>  Config file": the description follows the first gap of two spaces
        // that is not inside the item ("-h, --help" has single spaces only).
        let (name, same_line) = match item.find("  ") {
            Some(at) => (item[..at].to_owned(), item[at..].trim().to_owned()),
            None => (item.to_owned(), String::new()),
        };
        let below = lines
            .get(i + 1)
            .filter(|l| l.len() - l.trim_start().len() > 6)
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
        let description = if same_line.is_empty() {
            below
        } else {
            same_line
        };
        // Clap appends "[default: ...]" and "[env: ...]" even to an item with no help text.
        let description = if description.starts_with('[') {
            String::new()
        } else {
            description
        };
        items.push((name, description));
    }
    items
}

/// Every command and option has a description in `--help`: an operator never meets a bare
/// `--email-verified` or `list` and has to read the source.
fn every_command_and_option_has_help_text() {
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut pages = 0;
    while let Some(path) = todo.pop() {
        let page = help(&path);
        pages += 1;
        let mut in_commands = false;
        for line in page.lines() {
            if !line.starts_with(' ') {
                in_commands = line == "Commands:";
            } else if in_commands && line.len() - line.trim_start().len() == 2 {
                let name = line.split_whitespace().next().expect("a command");
                if name != "help" {
                    let mut sub = path.clone();
                    sub.push(name.to_owned());
                    todo.push(sub);
                }
            }
        }
        let items = help_items(&page);
        assert!(!items.is_empty(), "help {path:?} lists nothing:\n{page}");
        for (name, description) in items {
            assert!(
                !description.is_empty(),
                "`latchkey help {}`: {name} has no description:\n{page}",
                path.join(" ")
            );
        }
    }
    // The program, its seven commands and their subcommands.
    assert!(pages > 20, "only {pages} help pages");
}

/// A config file that is not there: every command (here `user list`, which loads it the way
/// `user add` does, and `config check`) names the path it tried, absolute as well when it was
/// relative, and says how to point at the right file. Both for the default path (what a
/// `docker exec` in the data directory met) and for LATCHKEY_CONFIG.
fn a_missing_config_names_the_path_and_the_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |env: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        cmd.current_dir(dir.path())
            .env_remove("LATCHKEY_CONFIG")
            .env("LATCHKEY_LOG", "warn")
            .args(args);
        if let Some(v) = env {
            cmd.env("LATCHKEY_CONFIG", v);
        }
        cmd.output().expect("run latchkey")
    };
    let missing = dir.path().join("etc/latchkey.toml");
    let missing = missing.to_str().expect("utf-8 path");
    let cases: [(Option<&str>, &[&str], String); 3] = [
        (
            None,
            &["user", "list"],
            dir.path()
                .join("config/latchkey.toml")
                .display()
                .to_string(),
        ),
        (Some(missing), &["user", "list"], missing.to_owned()),
        (Some(missing), &["config", "check"], missing.to_owned()),
    ];
    for (env, args, path) in cases {
        let out = run(env, args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {err}");
        for want in [
            "cannot read the config file",
            path.as_str(),
            "No such file or directory",
            "--config PATH",
            "LATCHKEY_CONFIG",
        ] {
            assert!(
                err.contains(want),
                "{env:?} {args:?}: no {want:?} in:\n{err}"
            );
        }
    }
}

/// `user add` with no terminal to prompt on (stdin is not one) and no --password-stdin says
/// what to do instead of failing with the tty's "No such device or address".
async fn user_add_without_a_terminal_says_to_use_password_stdin(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // `output()` gives the child a null stdin.
    let out = latchkey(&app, &["user", "add", "dave"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
    assert!(err.contains("not a terminal"), "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert!(
        app.state
            .core
            .store
            .find_user_by_login("dave")
            .await
            .expect("store")
            .is_none()
    );
}

/// `keys list` is a table: a header, columns that line up, each key's state, and times a
/// person reads (`2026-11-26 01:55:00 UTC`), not Unix seconds.
async fn keys_list_is_an_aligned_table_with_utc_times(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let out = latchkey(&app, &["keys", "rotate", "--alg", "ES256"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = latchkey(&app, &["keys", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header = lines.next().expect("a header");
    let columns = [
        "KID",
        "ALG",
        "STATE",
        "CREATED",
        "SIGNS FROM",
        "UNPUBLISHED",
    ];
    let starts: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .find(c)
                .unwrap_or_else(|| panic!("no {c} in {header:?}"))
        })
        .collect();
    let rows: Vec<&str> = lines.collect();
    let records = app.state.core.store.list_keys().await.expect("keys");
    assert_eq!(rows.len(), records.len(), "{stdout}");
    let mut states = Vec::new();
    for row in &rows {
        // Every cell starts under its column's header.
        for (c, &at) in columns.iter().zip(&starts).skip(1) {
            assert!(
                at > 0
                    && row.as_bytes().get(at - 1) == Some(&b' ')
                    && row.as_bytes().get(at).is_some_and(|b| *b != b' '),
                "{c} is not aligned in:\n{stdout}"
            );
        }
        let cell = |i: usize| {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or(row.len())
                .min(row.len());
            row[starts[i]..end].trim()
        };
        for i in [3, 4] {
            let t = cell(i);
            assert_eq!(
                t.len(),
                "2026-11-26 01:55:00 UTC".len(),
                "{t:?} in:\n{stdout}"
            );
            assert!(t.ends_with(" UTC") && t.as_bytes()[4] == b'-', "{t:?}");
        }
        states.push(cell(2).to_owned());
    }
    // The server's first keys sign now; the one just rotated in waits its prepublish time.
    assert_eq!(
        states.iter().filter(|s| *s == "next").count(),
        1,
        "{stdout}"
    );
    assert!(states.iter().any(|s| s == "active"), "{stdout}");
    assert!(
        states
            .iter()
            .all(|s| ["next", "active", "retired"].contains(&s.as_str())),
        "{stdout}"
    );
    let created = latchkey::cli::utc(records[0].created_at);
    assert!(stdout.contains(&created), "{created} not in:\n{stdout}");
}

/// The config's warnings (the test config's `legacy` client has the password grant, which
/// RFC 9700 says MUST NOT be used) are for `config check` and `serve`, not every command.
async fn only_config_check_shows_config_warnings(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let out = latchkey(&app, &["user", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("RFC 9700"), "{all}");
    assert!(!all.contains("warning"), "{all}");
    assert!(all.contains("alice"), "{all}");
    let out = latchkey(&app, &["config", "check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("RFC 9700 §2.4"),
        "{}",
        text(&out.stdout)
    );
}

/// `user show` prints what an admin looks a user up for, claims without the empty ones.
async fn user_show_prints_the_account(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let alice = app
        .state
        .core
        .store
        .find_user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    // By username or by email, as the other user commands.
    for login in ["alice", "alice@example.com"] {
        let out = latchkey(&app, &["user", "show", login]).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        for line in [
            "username: alice".to_owned(),
            format!("sub: {}", alice.id),
            "state: active".to_owned(),
            "source: config".to_owned(),
            format!("updated: {}", latchkey::cli::utc(alice.updated_at)),
            "  email: \"alice@example.com\"".to_owned(),
        ] {
            assert!(
                stdout.lines().any(|l| l == line),
                "no {line:?} in:\n{stdout}"
            );
        }
        assert!(stdout.contains("created: 20"), "{stdout}");
        assert!(!stdout.contains("null"), "{stdout}");
    }
    let out = latchkey(&app, &["user", "show", "nobody"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no user nobody"));
}

/// `client disable` shuts a CLI-registered client out of running nodes (here through the
/// Postgres notification, or the periodic reload on SQLite: an hour, so the test forces it),
/// `client enable` lets it back in, `client update` changes it under the validator of
/// `client add`, and none of them touches a client the config file owns.
async fn client_disable_enable_update(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| c.cache.clients_seconds = 3600).await else {
        return;
    };
    let watch = latchkey::app::watch_client_changes(&app.state);
    let out = add_svc(&app).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("secret")
        .to_owned();
    let cc = || async {
        app.token_basic("svc", &secret, &[("grant_type", "client_credentials")])
            .await
            .status()
            .as_u16()
    };
    assert_eq!(cc().await, 200, "the node has svc cached");

    let out = latchkey(&app, &["client", "disable", "svc"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("client svc disabled"));
    if b == Backend::Sqlite {
        latchkey::app::refresh_clients(&app.state)
            .await
            .expect("reload");
    }
    let mut status = 200;
    for _ in 0..100 {
        status = cc().await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 401, "a disabled client is refused at /token");
    let out = latchkey(&app, &["client", "list"]).await;
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("svc ") && l.contains("disabled")),
        "{}",
        text(&out.stdout)
    );

    let out = latchkey(&app, &["client", "enable", "svc"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(cc().await, 200, "re-enabled at once");

    // Update: what the validator refuses changes nothing; what it accepts is stored.
    let out = latchkey(
        &app,
        &[
            "client",
            "update",
            "svc",
            "--redirect-uri",
            "javascript:alert(1)",
        ],
    )
    .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("client svc.redirect_uris[0]"), "{err}");
    assert!(err.contains("client svc not updated"), "{err}");
    let stored = app
        .state
        .core
        .store
        .get_client("svc")
        .await
        .expect("store")
        .expect("svc");
    assert!(stored.settings.redirect_uris.is_empty());
    let out = latchkey(
        &app,
        &[
            "client",
            "update",
            "svc",
            "--name",
            "Service Two",
            "--scope",
            "api.read",
            "--scope",
            "api.write",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stored = app
        .state
        .core
        .store
        .get_client("svc")
        .await
        .expect("store")
        .expect("svc");
    assert_eq!(stored.name(), "Service Two");
    assert_eq!(stored.settings.scopes, ["api.read", "api.write"]);
    assert!(stored.enabled);
    assert_eq!(stored.source, Source::Cli);
    let out = latchkey(&app, &["client", "show", "svc"]).await;
    assert!(text(&out.stdout).contains("Service Two"));

    // The config file owns `web`: each command says where to change it.
    for args in [
        &["client", "disable", "web"][..],
        &["client", "enable", "web"],
        &["client", "update", "web", "--name", "x"],
        &["client", "remove", "web"],
    ] {
        let out = latchkey(&app, args).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cli.toml ([[clients]])"), "{args:?}: {err}");
    }
    let web = app
        .state
        .core
        .store
        .get_client("web")
        .await
        .expect("store")
        .expect("web");
    assert!(web.enabled);
    assert_eq!(web.name(), "Test Web App");
    if let Some(w) = watch {
        w.abort();
    }
}

/// A master key rotation: with the new key as `master_key` and the old as
/// `previous_master_key`, `keys reseal` re-seals every signing key, all or nothing, and
/// every authenticator-app secret, after which the new key alone opens them and the old one
/// opens none.
async fn the_master_key_rotates_without_losing_a_signing_key(b: Backend) {
    use latchkey::crypto::aead::MasterKey;
    use latchkey::crypto::keys::KeyRing;
    use latchkey::crypto::totp::{STEP_SECONDS, TotpSecret};
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let old = app
        .state
        .config
        .master_key
        .clone()
        .expect("the test config sets one");
    let out = latchkey(&app, &["keys", "new-master-key"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let new = MasterKey::from_base64(&text(&out.stdout)).expect("base64 of 32 bytes");
    let run = |previous: String| {
        let config = app.state.config.data_dir.join("cli.toml");
        std::fs::write(
            &config,
            crate::common::config_toml(
                &app.state.config.database_url,
                &app.state.config.data_dir.display().to_string(),
            ),
        )
        .expect("config");
        let env = [
            ("LATCHKEY_MASTER_KEY", new.to_base64()),
            ("LATCHKEY_PREVIOUS_MASTER_KEY", previous),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_with(&config, &["keys", "reseal"], &env)
    };
    let opens = |key: &MasterKey, records: &[latchkey::model::KeyRecord]| {
        KeyRing::default()
            .load(key, records, app.clock.now(), 86_400)
            .is_ok()
    };
    let before = app.state.core.store.list_keys().await.expect("keys");
    assert!(!before.is_empty());
    // Alice's authenticator app, set up under the old key: after the rotation the codes her
    // app shows must still be accepted, or she is locked out of her account.
    let core = &app.state.core;
    let now = app.clock.now();
    let alice = core
        .store
        .find_user_by_login("alice")
        .await
        .expect("find")
        .expect("alice");
    let enrolment = latchkey::core::mfa::start_totp(core, &alice, now)
        .await
        .expect("start")
        .expect("alice has no app yet");
    let step = now / STEP_SECONDS;
    let confirmed = latchkey::core::mfa::confirm_totp(
        core,
        &alice,
        &enrolment.factor_id,
        &enrolment.secret.code_at(step),
        latchkey::core::mfa::Where {
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
            client_id: None,
        },
        now,
    )
    .await
    .expect("confirm");
    assert_eq!(confirmed, Ok(()));
    let (store, alice_id) = (&core.store, alice.id.as_str());
    let sealed_secret = move || async move {
        store
            .confirmed_totp(alice_id)
            .await
            .expect("store")
            .expect("confirmed")
            .secret_enc
    };
    let secret_before = sealed_secret().await;
    // A wrong previous key opens nothing: refused, and nothing is written.
    let out = run(MasterKey::generate().to_base64());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("opens with neither"),
        "{}",
        text(&out.stderr)
    );
    let same = app.state.core.store.list_keys().await.expect("keys");
    assert!(
        same.iter()
            .zip(&before)
            .all(|(a, b)| a.private_enc == b.private_enc)
    );
    assert_eq!(sealed_secret().await, secret_before);
    // With the old key as the previous one, every key and secret is re-sealed.
    let out = run(old.to_base64());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "{n} of {n} signing keys and 1 of 1 authenticator-app secrets re-sealed",
            n = before.len()
        )),
        "{}",
        text(&out.stdout)
    );
    let after = app.state.core.store.list_keys().await.expect("keys");
    assert!(opens(&new, &after), "the new key alone opens every key");
    assert!(!opens(&old, &after), "the old key opens none");
    assert!(opens(&old, &before) && !opens(&new, &before));
    let secret_after = sealed_secret().await;
    assert!(
        new.decrypt_bound_telling(&secret_after, enrolment.factor_id.as_bytes())
            .is_ok(),
        "the new key alone opens it"
    );
    assert!(
        old.decrypt_bound_telling(&secret_after, enrolment.factor_id.as_bytes())
            .is_err(),
        "the old key does not"
    );
    // The same secret inside: the app's next code is accepted.
    let next = step + 1;
    assert_eq!(
        TotpSecret::open(&new, &secret_after, &enrolment.factor_id)
            .expect("open")
            .matching_step(&enrolment.secret.code_at(next), next * STEP_SECONDS),
        Some(next)
    );
    // Run again, nothing is left to re-seal.
    let out = run(old.to_base64());
    assert!(
        text(&out.stdout).starts_with(&format!(
            "0 of {} signing keys and 0 of 1 authenticator-app secrets",
            before.len()
        )),
        "{}",
        text(&out.stdout)
    );
}

crate::both_stores!(
    user_show_prints_the_account,
    client_disable_enable_update,
    only_config_check_shows_config_warnings,
    keys_list_is_an_aligned_table_with_utc_times,
    user_add_without_a_terminal_says_to_use_password_stdin,
    client_add_refuses_what_the_config_refuses,
    state_files_are_owner_only_whatever_the_umask,
    serve_puts_metrics_on_their_own_listener,
    the_master_key_rotates_without_losing_a_signing_key,
);

/// Run the binary with `--config <config> args...` and extra environment, no store needed.
fn run_with(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.arg("--config").arg(config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("LATCHKEY_LOG", "warn")
        .output()
        .expect("run latchkey")
}

/// `config check` reports every mistake of a file in one run, in file order, each with its
/// line: a semantic one (line 63), an unknown key (line 90) and a wrong type (line 150).
fn config_check_reports_every_mistake_in_file_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines: Vec<String> = (0..200).map(|i| format!("# filler {i}")).collect();
    lines[0] = "issuer = \"http://127.0.0.1:8080\"".into();
    lines[59] = "[[clients]]".into();
    lines[60] = "client_id = \"web\"".into();
    lines[61] = "name = \"Web\"".into();
    lines[62] = "redirect_uris = [\"http://app.example.com/cb\"]".into();
    lines[63] = "grant_types = [\"authorization_code\"]".into();
    lines[89] = "colour = \"red\"".into();
    lines[139] = "[tokens]".into();
    lines[149] = "code_ttl = \"sixty\"".into();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(&config, lines.join("\n")).expect("config");
    let out = run_with(&config, &["config", "check"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let at: Vec<usize> = [
        "line 63: clients[0] (web).redirect_uris[0]",
        "line 90: clients[0].colour",
        "line 150: tokens.code_ttl",
    ]
    .iter()
    .map(|s| err.find(s).unwrap_or_else(|| panic!("no {s:?} in:\n{err}")))
    .collect();
    assert!(at[0] < at[1] && at[1] < at[2], "{err}");
    assert!(err.contains("3 error(s)"), "{err}");
}

/// A mistaken `LATCHKEY_*` override is blamed on the variable, with the likely spelling,
/// not on the file.
fn config_check_names_a_mistaken_environment_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(&config, "issuer = \"http://127.0.0.1:8080\"\n").expect("config");
    let out = run_with(
        &config,
        &["config", "check"],
        &[("LATCHKEY_TOKENS__CODE_TTLL", "30")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "LATCHKEY_TOKENS__CODE_TTLL: tokens has no field code_ttll (did you mean code_ttl?)"
        ),
        "{err}"
    );
    assert!(!err.contains("is not a valid Latchkey config"), "{err}");
    assert!(err.contains("environment overrides"), "{err}");
}

/// A second server on a taken port stops at once, names the address and the setting, and
/// touches nothing: the store it is configured with is never created.
fn serve_on_a_taken_port_names_the_address_and_writes_nothing() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://{addr}\"\nbind = \"{addr}\"\ndatabase_url = \"sqlite://{0}/store/latchkey.db\"\ndata_dir = \"{0}/state\"\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let started = std::time::Instant::now();
    let out = run_with(&config, &["serve"], &[]);
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "cannot listen on {addr}: address already in use (another Latchkey or program is using it; set bind or LATCHKEY_BIND)"
        )),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    for never in ["store", "state"] {
        assert!(
            !dir.path().join(never).exists(),
            "{never} was created:\n{err}"
        );
    }
}

fn migrate_with(database_url: &str) -> (Output, std::time::Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:8080\"\ndatabase_url = \"{database_url}\"\ndata_dir = \"{}\"\nmaster_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let started = std::time::Instant::now();
    let out = run_with(&config, &["migrate"], &[]);
    (out, started.elapsed())
}

/// Nothing listening at the database's address fails at once (not after the pool's 10 s),
/// naming host, port and database, never the password, and saying what to do, once.
fn migrate_with_nothing_listening_fails_fast_and_says_where() {
    let (out, took) = migrate_with("postgres://latchkey:s3cret@127.0.0.1:1/idp");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}: {err}");
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:1, database \"idp\"")
            && err.contains("connection refused")
            && err.contains("start PostgreSQL")
            && err.contains("LATCHKEY_DATABASE_URL"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A database that does not exist on a running PostgreSQL is named, with `createdb`, once,
/// and without the line of PostgreSQL's source the error came from.
fn migrate_into_a_missing_database_says_createdb() {
    let admin = crate::common::pg_admin_url();
    let Some(base) = admin.rsplit_once('/').map(|(b, _)| b.to_owned()) else {
        return;
    };
    let name = format!("latchkey_missing_{}", uuid::Uuid::new_v4().simple());
    let (out, _) = migrate_with(&format!("{base}/{name}"));
    let err = text(&out.stderr);
    if err.contains("connection refused") {
        crate::common::skip("Postgres", &err);
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("database \"{name}\" does not exist"))
            && err.contains(&format!("createdb {name}")),
        "{err}"
    );
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
    assert!(!err.contains("at line"), "{err}");
}

crate::tests!(
    every_command_and_option_has_help_text,
    a_missing_config_names_the_path_and_the_fix,
    config_check_reports_every_mistake_in_file_order,
    config_check_names_a_mistaken_environment_variable,
    serve_on_a_taken_port_names_the_address_and_writes_nothing,
    migrate_with_nothing_listening_fails_fast_and_says_where,
);

crate::tests!(
    needs Postgres:
    migrate_into_a_missing_database_says_createdb,
);
