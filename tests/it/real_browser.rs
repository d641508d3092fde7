//! One real browser end to end: headless Chromium, driven over chromedriver, signs in, allows
//! consent and lands on the client's redirect URI with a code that the test then exchanges.
//! It catches what the HTTP-level walker cannot: cookies, CSP and form posts as a browser
//! applies them.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::Uri;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use openidconnect::PkceCodeChallenge;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::common::{Backend, PASSWORD, TestApp, WEB_SECRET, json as body_json, param};

/// How long any one step (a page to appear, the redirect to arrive) may take.
const STEP: Duration = Duration::from_secs(15);
/// The whole browser walk; a hung browser fails the test instead of hanging the suite.
const WALK: Duration = Duration::from_secs(60);

const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
];

fn find_chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|f| f.is_file())
}

/// Where screenshots go: `<target dir>/browser-artifacts`, so CI can keep them.
fn artifacts_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    manifest.join(target).join("browser-artifacts")
}

/// A chromedriver child process; dropping it ends chromedriver and every browser it started.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start(bin: &Path, log: &Path) -> Chromedriver {
        // Port 0 and reading the chosen port back avoids racing other tests for a free port.
        let mut child = Command::new(bin)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so Drop can take Chromium down with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep draining after the port line so chromedriver never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let mut driver = Chromedriver {
            child,
            url: String::new(),
        };
        let port = match tokio::time::timeout(STEP, rx).await {
            Ok(Ok(port)) => port,
            _ => panic!(
                "chromedriver did not report a port within {STEP:?}; see {}",
                log.display()
            ),
        };
        driver.url = format!("http://127.0.0.1:{port}");
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Chromium shares chromedriver's process group; killing chromedriver alone would
        // leave the browser running.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stand-in for the client's redirect endpoint: answers every request with a page and
/// reports each request target.
async fn callback_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind callback listener");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(uri.to_string());
            axum::response::Html("<!doctype html><title>Client</title><p>Back at the client.")
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, rx)
}

async fn screenshot(c: &Client, path: &Path) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Drive the browser from /authorize to the redirect back; returns the callback's request
/// target (path and query) as the client received it.
async fn walk(
    c: Client,
    authorize: String,
    mut callbacks: mpsc::UnboundedReceiver<String>,
    artifacts: PathBuf,
) -> String {
    c.goto(&authorize).await.expect("open /authorize");

    let username = c
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("username"))
        .await
        .expect("the login page");
    let lead = c
        .find(Locator::Css("p.lead"))
        .await
        .expect("login lead")
        .text()
        .await
        .expect("text");
    assert!(lead.contains("Test Web App"), "login names the app: {lead}");
    username.send_keys("alice").await.expect("type username");
    c.find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    screenshot(&c, &artifacts.join("login.png")).await;
    c.find(Locator::Css("form[action='/login'] button[type='submit']"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");

    let scopes = c
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css("ul.scopes"))
        .await
        .expect("the consent page after signing in");
    let heading = c
        .find(Locator::Css("h1"))
        .await
        .expect("heading")
        .text()
        .await
        .expect("text");
    assert!(
        heading.contains("Test Web App"),
        "consent names the app: {heading}"
    );
    let listed = scopes.text().await.expect("scope list text");
    for words in [
        "Know who you are",
        "See your name and basic profile",
        "Read your email address",
    ] {
        assert!(listed.contains(words), "consent says {words:?}: {listed}");
    }
    screenshot(&c, &artifacts.join("consent.png")).await;
    c.find(Locator::Css("button[name='decision'][value='allow']"))
        .await
        .expect("Allow button")
        .click()
        .await
        .expect("allow");

    tokio::time::timeout(STEP, async {
        loop {
            let t = callbacks.recv().await.expect("callback server runs");
            // Chromium may also ask the client for /favicon.ico.
            if t.starts_with("/callback") {
                return t;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no redirect to the client within {STEP:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_consent_and_code_exchange_in_chromium() {
    let Some(bin) = find_chromedriver() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "chromedriver is not on PATH and CI=true: apt-get install chromium chromium-driver"
            );
        }
        eprintln!(
            "\n!!! SKIPPED real_browser: chromedriver is not on PATH; \
             apt-get install chromium chromium-driver !!!\n"
        );
        return;
    };
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");

    let (client_base, callbacks) = callback_server().await;
    let redirect = format!("{client_base}/callback");
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config
            .clients
            .iter_mut()
            .find(|c| c.client_id == "web")
            .expect("web client")
            .redirect_uris
            .push(redirect.clone());
    })
    .await
    .expect("SQLite app");

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut authorize = url::Url::parse(&app.url("/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");

    let driver = Chromedriver::start(&bin, &artifacts.join("chromedriver.log")).await;
    let caps = match json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "args": CHROME_ARGS },
        "timeouts": { "pageLoad": STEP.as_millis() as u64, "script": 5000 },
    }) {
        Value::Object(caps) => caps,
        other => panic!("capabilities are an object: {other}"),
    };
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromedriver session");
    let walked = tokio::time::timeout(
        WALK,
        tokio::spawn(walk(
            browser.clone(),
            authorize.to_string(),
            callbacks,
            artifacts.clone(),
        )),
    )
    .await;
    // Ending the session lets chromedriver close Chromium cleanly, pass or fail.
    let _ = browser.close().await;
    drop(driver);
    let target = match walked {
        Ok(Ok(target)) => target,
        Ok(Err(e)) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("browser walk did not finish: {e}"),
        },
        Err(_) => panic!(
            "browser walk took longer than {WALK:?}; screenshots and chromedriver.log are in {}",
            artifacts.display()
        ),
    };

    let back = url::Url::parse(&format!("{client_base}{target}")).expect("callback url");
    let params: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(param(&params, "error"), None, "{back}");
    assert_eq!(param(&params, "state"), Some(state.as_str()));
    assert_eq!(param(&params, "iss"), Some(app.base.as_str()));
    let code = param(&params, "code").expect("a code in the redirect");

    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect),
                ("code_verifier", verifier.secret()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let tokens = body_json(r).await;
    let access = tokens["access_token"].as_str().expect("access_token");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let payload = id_token.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
            .expect("JSON claims");
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["nonce"], nonce.as_str());
    let aud_is_web = claims["aud"] == "web"
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("web")));
    assert!(aud_is_web, "aud: {}", claims["aud"]);
    let sub = claims["sub"].as_str().expect("sub");
    assert!(!sub.is_empty());

    // The access token works for the same user the browser signed in as.
    let info = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(info.status(), 200);
    let info = body_json(info).await;
    assert_eq!(info["sub"], sub);
    assert_eq!(info["email"], "alice@example.com");
}
