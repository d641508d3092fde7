//! One real browser end to end: headless Chromium, driven over chromedriver, walks one
//! session through what the HTTP-level walker cannot show as a browser applies it (cookies,
//! CSP, form posts, redirects):
//! - sign in, allow consent, land on the client's redirect URI with a code it exchanges;
//! - authorize again: the session and remembered consent redirect at once;
//! - RP-initiated logout with the id_token as hint redirects straight back, and the next
//!   /authorize asks for a password again;
//! - approve a device (RFC 8628) from `verification_uri_complete`, signing in on the way,
//!   while the test polls /token as the device;
//! - logout without a hint asks first, and signing out there ends the session.
//!
//! Screenshots of the login, consent, device confirmation and logout confirmation pages (and
//! of the page a failed walk stopped on) go to `<target dir>/browser-artifacts`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use openidconnect::{PkceCodeChallenge, PkceCodeVerifier};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::common::{Backend, PASSWORD, TestApp, WEB_SECRET, json as body_json, param};
use crate::flows::{decode_jwt, poll as device_poll, start as device_start};

/// How long any one step (a page to appear, the redirect to arrive) may take.
const STEP: Duration = Duration::from_secs(15);
/// The whole browser walk; a hung browser fails the test instead of hanging the suite.
const WALK: Duration = Duration::from_secs(90);

/// Paths on the stand-in client: the redirect URI, and where it wants to land after logout.
const CALLBACK: &str = "/callback";
const SIGNED_OUT: &str = "/signed-out";

const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    // Tall enough for the longest page, device confirmation, to fit in one screenshot.
    "--window-size=1280,1100",
];

pub fn find_chromedriver() -> Option<PathBuf> {
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
            // At INFO chromedriver logs every command with its arguments, typed passwords
            // included; warnings and errors are what a failed run needs.
            .arg("--log-level=WARNING")
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

/// Wait for an element that marks a page; `what` names the page in the failure.
async fn page(c: &Client, locator: Locator<'_>, what: &str) -> Element {
    match c.wait().at_most(STEP).for_element(locator).await {
        Ok(e) => e,
        Err(e) => panic!(
            "{what} did not appear within {STEP:?} ({e}); {}",
            shown(c).await
        ),
    }
}

/// Wait for a page by its exact heading. A heading locator rather than any `h1`, because the
/// previous page's `h1` is still there until the form post has navigated.
async fn page_titled(c: &Client, heading: &str) -> Element {
    let xpath = format!("//h1[normalize-space()='{heading}']");
    page(c, Locator::XPath(&xpath), &format!("the {heading:?} page")).await
}

/// What the browser shows, for failure messages.
async fn shown(c: &Client) -> String {
    let url = match c.current_url().await {
        Ok(u) => u.to_string(),
        Err(e) => format!("an unknown URL ({e})"),
    };
    let heading = match c.find(Locator::Css("h1")).await {
        Ok(h) => h.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!("the browser shows {heading:?} at {url}")
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} ({e})"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} ({e})"))
        .text()
        .await
        .expect("text")
}

/// Fill in and submit the login form that posts to `action`, as alice.
async fn sign_in(c: &Client, action: &str, shot: Option<&Path>) {
    let form = format!("form[action='{action}']");
    page(
        c,
        Locator::Css(&format!("{form} #username")),
        &format!("the login page posting to {action}"),
    )
    .await
    .send_keys("alice")
    .await
    .expect("type username");
    c.find(Locator::Css(&format!("{form} #password")))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    if let Some(path) = shot {
        screenshot(c, path).await;
    }
    click(c, &format!("{form} button[type='submit']")).await;
}

/// Wait until the browser requests `path` on the client and return that request's URL.
async fn back_at_client(
    c: &Client,
    callbacks: &mut mpsc::UnboundedReceiver<String>,
    client_base: &str,
    path: &str,
) -> url::Url {
    let arrived = tokio::time::timeout(STEP, async {
        loop {
            let t = callbacks.recv().await.expect("callback server runs");
            // Chromium may also ask the client for /favicon.ico.
            if t.split('?').next() == Some(path) {
                return t;
            }
        }
    })
    .await;
    match arrived {
        Ok(t) => url::Url::parse(&format!("{client_base}{t}")).expect("client url"),
        Err(_) => panic!(
            "no redirect to the client's {path} within {STEP:?}; {}",
            shown(c).await
        ),
    }
}

fn query(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One authorization request for `web`, with what the client keeps to check the answer.
struct Authorization {
    url: String,
    state: String,
    nonce: String,
    verifier: PkceCodeVerifier,
}

fn authorization(app: &TestApp, redirect: &str) -> Authorization {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut url = url::Url::parse(&format!("{}/authorize", app.issuer())).expect("url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    Authorization {
        url: url.into(),
        state,
        nonce,
        verifier,
    }
}

/// Check the redirect back and exchange its code; returns the token response.
async fn redeem(app: &TestApp, redirect: &str, auth: &Authorization, back: &url::Url) -> Value {
    let params = query(back);
    assert_eq!(param(&params, "error"), None, "{back}");
    assert_eq!(param(&params, "state"), Some(auth.state.as_str()));
    assert_eq!(param(&params, "iss"), Some(app.issuer().as_str()));
    let code = param(&params, "code").expect("a code in the redirect");
    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", auth.verifier.secret()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let tokens = body_json(r).await;
    let claims = decode_jwt(tokens["id_token"].as_str().expect("id_token")).1;
    assert_eq!(claims["iss"], app.issuer().as_str());
    assert_eq!(claims["nonce"], auth.nonce.as_str());
    let aud_is_web = claims["aud"] == "web"
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("web")));
    assert!(aud_is_web, "aud: {}", claims["aud"]);
    tokens
}

/// Everything the browser walk needs; the walk runs in its own task so a panic or a hang
/// still lets the test end the browser session.
struct Walk {
    c: Client,
    app: Arc<TestApp>,
    callbacks: mpsc::UnboundedReceiver<String>,
    client_base: String,
    artifacts: PathBuf,
}

impl Walk {
    fn redirect(&self) -> String {
        format!("{}{CALLBACK}", self.client_base)
    }

    async fn back_at_client(&mut self, path: &str) -> url::Url {
        back_at_client(&self.c, &mut self.callbacks, &self.client_base, path).await
    }
}

async fn walk(mut w: Walk) {
    let app = w.app.clone();
    let c = w.c.clone();
    let redirect = w.redirect();

    // First visit: sign in, allow, and the code works.
    let first = authorization(&app, &redirect);
    c.goto(&first.url).await.expect("open /authorize");
    page(
        &c,
        Locator::Css("form[action='/login'] #username"),
        "the login page",
    )
    .await;
    let lead = text(&c, "p.lead").await;
    assert!(lead.contains("Test Web App"), "login names the app: {lead}");
    sign_in(&c, "/login", Some(&w.artifacts.join("login.png"))).await;
    let scopes = page(
        &c,
        Locator::Css("ul.scopes"),
        "the consent page after signing in",
    )
    .await
    .text()
    .await
    .expect("scope list text");
    let heading = text(&c, "h1").await;
    assert!(
        heading.contains("Test Web App"),
        "consent names the app: {heading}"
    );
    for words in [
        "Know who you are",
        "See your name and basic profile",
        "Read your email address",
    ] {
        assert!(scopes.contains(words), "consent says {words:?}: {scopes}");
    }
    screenshot(&c, &w.artifacts.join("consent.png")).await;
    click(&c, "button[name='decision'][value='allow']").await;
    let back = w.back_at_client(CALLBACK).await;
    let tokens = redeem(&app, &redirect, &first, &back).await;
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let sub = decode_jwt(id_token).1["sub"]
        .as_str()
        .expect("sub")
        .to_owned();
    assert!(!sub.is_empty());
    // The access token works for the same user the browser signed in as.
    let info = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(info.status(), 200);
    let info = body_json(info).await;
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "alice@example.com");

    // Same app, same scopes: the session and the remembered consent answer at once. Had a
    // login or consent page been shown, no redirect would arrive and the wait would fail.
    let again = authorization(&app, &redirect);
    c.goto(&again.url).await.expect("open /authorize again");
    let back = w.back_at_client(CALLBACK).await;
    let tokens = redeem(&app, &redirect, &again, &back).await;
    assert_eq!(
        decode_jwt(tokens["id_token"].as_str().expect("id_token")).1["sub"],
        sub.as_str()
    );

    // RP-initiated logout with the app's id_token as the hint: no question, straight back.
    let mut logout = url::Url::parse(&app.url("/logout")).expect("url");
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}{SIGNED_OUT}", w.client_base),
        )
        .append_pair("state", "xyz");
    c.goto(logout.as_str()).await.expect("open /logout");
    let back = w.back_at_client(SIGNED_OUT).await;
    assert_eq!(param(&query(&back), "state"), Some("xyz"), "{back}");
    let after = authorization(&app, &redirect);
    c.goto(&after.url)
        .await
        .expect("open /authorize after logout");
    page(
        &c,
        Locator::Css("form[action='/login'] #username"),
        "the login page after logout (the session must be gone)",
    )
    .await;

    // Device flow: the TV asks for a code, the person approves it in this browser.
    let d = device_start(&app, "openid profile email offline_access").await;
    let device_code = d["device_code"].as_str().expect("device_code");
    let user_code = d["user_code"].as_str().expect("user_code");
    let interval = d["interval"].as_i64().expect("interval");
    let pending = device_poll(&app, device_code).await;
    assert_eq!(pending.0, 400, "{pending:?}");
    assert_eq!(pending.1["error"], "authorization_pending");
    c.goto(
        d["verification_uri_complete"]
            .as_str()
            .expect("complete uri"),
    )
    .await
    .expect("open verification_uri_complete");
    let typed = page(&c, Locator::Id("user_code"), "the device code entry page")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(typed.as_deref(), Some(user_code), "the code is pre-filled");
    click(&c, "form[action='/device'] button[type='submit']").await;
    // Signed out above, so the device path has its own sign-in.
    sign_in(&c, "/device/login", None).await;
    let shown_code = page(
        &c,
        Locator::Css("p.device-code"),
        "the device confirmation page",
    )
    .await
    .text()
    .await
    .expect("text");
    assert_eq!(shown_code, user_code, "the page shows the device's code");
    let heading = text(&c, "h1").await;
    assert!(
        heading.contains("Living Room TV"),
        "confirmation names the app: {heading}"
    );
    let scopes = text(&c, "ul.scopes").await;
    assert!(scopes.contains("offline_access"), "{scopes}");
    screenshot(&c, &w.artifacts.join("device-confirm.png")).await;
    click(&c, "button[name='decision'][value='allow']").await;
    page_titled(&c, "Device connected").await;
    // The server's clock is manual: a poll before the interval has passed gets slow_down.
    app.clock.advance(interval);
    let (status, t) = device_poll(&app, device_code).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["access_token"].is_string(), "{t}");
    assert!(t["refresh_token"].is_string(), "{t}");
    let claims = decode_jwt(t["id_token"].as_str().expect("id_token")).1;
    assert_eq!(claims["sub"], sub.as_str(), "the device acts for alice");
    assert_eq!(claims["aud"], "tv");

    // Logout without a hint: anyone can plant such a link, so the person is asked first.
    let mut logout = url::Url::parse(&app.url("/logout")).expect("url");
    logout.query_pairs_mut().append_pair("client_id", "web");
    c.goto(logout.as_str())
        .await
        .expect("open /logout without a hint");
    page_titled(&c, "Sign out?").await;
    let lead = text(&c, "p.lead").await;
    assert!(
        lead.contains("alice") && lead.contains("Test Web App"),
        "names the user and the app: {lead}"
    );
    screenshot(&c, &w.artifacts.join("logout-confirm.png")).await;
    click(&c, "button[name='decision'][value='logout']").await;
    page_titled(&c, "Signed out").await;
    let after = authorization(&app, &redirect);
    c.goto(&after.url)
        .await
        .expect("open /authorize after confirmed logout");
    page(
        &c,
        Locator::Css("form[action='/login'] #username"),
        "the login page after the confirmed logout",
    )
    .await;
}

/// Run `walk` in a fresh Chromium session against `app`, within `WALK`; on failure the page
/// it stopped on is saved as `failure.png`. None when chromedriver is missing (skipped).
async fn in_chromium<Fut>(
    app: TestApp,
    client_base: String,
    callbacks: mpsc::UnboundedReceiver<String>,
    walk: impl FnOnce(Walk) -> Fut,
) where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(bin) = find_chromedriver() else {
        crate::common::skip(
            "chromedriver is not on PATH",
            "apt-get install chromium chromium-driver",
        );
        return;
    };
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    // A failure.png left by an earlier run would point at a failure that is not this one.
    let _ = std::fs::remove_file(artifacts.join("failure.png"));
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
    let mut task = tokio::spawn(walk(Walk {
        c: browser.clone(),
        app: Arc::new(app),
        callbacks,
        client_base,
        artifacts: artifacts.clone(),
    }));
    let walked = tokio::time::timeout(WALK, &mut task).await;
    if !matches!(walked, Ok(Ok(()))) {
        task.abort();
        // The page the walk stopped on, unless the browser itself is what hangs.
        if let Ok(Ok(png)) = tokio::time::timeout(STEP, browser.screenshot()).await {
            let _ = std::fs::write(artifacts.join("failure.png"), png);
        }
    }
    // Ending the session lets chromedriver close Chromium cleanly, pass or fail.
    let _ = browser.close().await;
    drop(driver);
    match walked {
        Ok(Ok(())) => {}
        Ok(Err(e)) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("browser walk did not finish: {e}"),
        },
        Err(_) => panic!(
            "browser walk took longer than {WALK:?}; screenshots and chromedriver.log are in {}",
            artifacts.display()
        ),
    }
}

/// The config tweak that lets `web` redirect to the stand-in client at `client_base`.
fn web_to(client_base: &str) -> impl FnOnce(&mut latchkey::config::Config) + use<> {
    let base = client_base.to_owned();
    move |config| {
        let web = config
            .clients
            .iter_mut()
            .find(|c| c.client_id == "web")
            .expect("web client");
        web.redirect_uris.push(format!("{base}{CALLBACK}"));
        web.post_logout_redirect_uris
            .push(format!("{base}{SIGNED_OUT}"));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_consent_logout_and_device_in_chromium() {
    let (client_base, callbacks) = callback_server().await;
    let app = TestApp::spawn_with(Backend::Sqlite, web_to(&client_base))
        .await
        .expect("SQLite app");
    in_chromium(app, client_base, callbacks, walk).await;
}

/// A WebDriver command of the W3C WebAuthn "Virtual Authenticators" extension (WebAuthn
/// Level 2 section 11), which chromedriver implements: `path` under the session.
#[derive(Debug)]
struct VirtualAuthenticatorCmd {
    method: axum::http::Method,
    path: String,
    body: Option<Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for VirtualAuthenticatorCmd {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

async fn authenticator_cmd(
    c: &Client,
    method: axum::http::Method,
    path: String,
    body: Option<Value>,
) -> Value {
    let what = format!("{method} {path}");
    c.issue_cmd(VirtualAuthenticatorCmd { method, path, body })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Add a platform authenticator that keeps discoverable credentials and verifies its user
/// (as a laptop's fingerprint reader would); its id.
async fn add_virtual_authenticator(c: &Client) -> String {
    let id = authenticator_cmd(
        c,
        axum::http::Method::POST,
        "webauthn/authenticator".into(),
        Some(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        })),
    )
    .await;
    id.as_str().expect("an authenticator id").to_owned()
}

/// Whether the virtual authenticator verifies its user from now on.
async fn set_user_verified(c: &Client, authenticator: &str, verified: bool) {
    authenticator_cmd(
        c,
        axum::http::Method::POST,
        format!("webauthn/authenticator/{authenticator}/uv"),
        Some(json!({ "isUserVerified": verified })),
    )
    .await;
}

/// The ID token claims after the browser arrived back at the client for `auth`.
async fn id_token_after(w: &mut Walk, auth: &Authorization) -> Value {
    let app = w.app.clone();
    let redirect = w.redirect();
    let back = w.back_at_client(CALLBACK).await;
    let tokens = redeem(&app, &redirect, auth, &back).await;
    decode_jwt(tokens["id_token"].as_str().expect("id_token")).1
}

/// Forget the server's cookies (its session): WebDriver deletes the cookies of the page
/// shown, so the browser goes to the server first.
async fn sign_out(c: &Client, issuer: &str) {
    c.goto(&format!("{issuer}/healthz"))
        .await
        .expect("open the server");
    c.delete_all_cookies().await.expect("delete cookies");
}

fn amr_of(claims: &Value) -> Vec<&str> {
    claims["amr"]
        .as_array()
        .expect("amr")
        .iter()
        .map(|v| v.as_str().expect("text"))
        .collect()
}

async fn passkey_walk(mut w: Walk) {
    let app = w.app.clone();
    let c = w.c.clone();
    let redirect = w.redirect();
    let issuer = app.issuer();
    let authenticator = add_virtual_authenticator(&c).await;

    // Signed in to /account with the password, alice adds a passkey.
    c.goto(&format!("{issuer}/account"))
        .await
        .expect("open /account");
    sign_in(&c, "/account/login", None).await;
    page(&c, Locator::Id("passkey-name"), "the account page")
        .await
        .send_keys("Laptop")
        .await
        .expect("type the name");
    c.find(Locator::Id("passkey-password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    click(&c, "form[action='/account/passkey'] button[type='submit']").await;
    page_titled(&c, "Add a passkey").await;
    screenshot(&c, &w.artifacts.join("passkey-add.png")).await;
    click(&c, "#webauthn-start").await;
    // Her first second factor: recovery codes.
    page_titled(&c, "Save your recovery codes").await;
    let held = authenticator_cmd(
        &c,
        axum::http::Method::GET,
        format!("webauthn/authenticator/{authenticator}/credentials"),
        None,
    )
    .await;
    let held = held.as_array().expect("credentials");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost", "{held:?}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "discoverable: {held:?}"
    );
    c.goto(&format!("{issuer}/account"))
        .await
        .expect("open /account");
    let listed = page(&c, Locator::Css("ul.factors"), "the factor list")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        listed.contains("Laptop") && listed.contains("signs in without a password"),
        "{listed}"
    );

    // Signed out, an app's sign-in: the password, then the passkey.
    sign_out(&c, &issuer).await;
    let first = authorization(&app, &redirect);
    c.goto(&first.url).await.expect("open /authorize");
    sign_in(&c, "/login", None).await;
    page_titled(&c, "Two-step sign-in").await;
    screenshot(&c, &w.artifacts.join("passkey-second-factor.png")).await;
    click(&c, "#webauthn-start").await;
    page(&c, Locator::Css("ul.scopes"), "the consent page").await;
    click(&c, "button[name='decision'][value='allow']").await;
    let claims = id_token_after(&mut w, &first).await;
    assert_eq!(amr_of(&claims), ["pwd", "swk", "user", "mfa"], "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");

    // Signed out again: the passkey alone, no password.
    sign_out(&c, &issuer).await;
    let second = authorization(&app, &redirect);
    c.goto(&second.url).await.expect("open /authorize");
    page(
        &c,
        Locator::Css("form[action='/login/passkey'] button"),
        "the login page's passkey button",
    )
    .await
    .click()
    .await
    .expect("click");
    page_titled(&c, "Sign in with a passkey").await;
    click(&c, "#webauthn-start").await;
    // The consent is remembered: straight back to the client.
    let claims = id_token_after(&mut w, &second).await;
    assert_eq!(amr_of(&claims), ["swk", "user", "mfa"], "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");

    // The authenticator no longer verifies its user: no sign-in, and the page says so.
    set_user_verified(&c, &authenticator, false).await;
    sign_out(&c, &issuer).await;
    let third = authorization(&app, &redirect);
    c.goto(&third.url).await.expect("open /authorize");
    click(&c, "form[action='/login/passkey'] button").await;
    page_titled(&c, "Sign in with a passkey").await;
    click(&c, "#webauthn-start").await;
    // Chromium either refuses to answer without user verification, or answers and the
    // server refuses: the person is told either way.
    let said = page(
        &c,
        Locator::Css("#webauthn-status:not([hidden]), #login-error"),
        "a message that the passkey was refused",
    )
    .await
    .text()
    .await
    .expect("text");
    assert!(!said.is_empty());
    screenshot(&c, &w.artifacts.join("passkey-refused.png")).await;
    // Chromium may have asked the client for a favicon meanwhile; never for the callback.
    while let Ok(t) = w.callbacks.try_recv() {
        assert_ne!(
            t.split('?').next(),
            Some(CALLBACK),
            "nothing reached the client"
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_in_chromium() {
    let (client_base, callbacks) = callback_server().await;
    // WebAuthn needs a domain name: the issuer is http://localhost:{port}.
    let app = TestApp::spawn_on_localhost(Backend::Sqlite, web_to(&client_base))
        .await
        .expect("SQLite app");
    in_chromium(app, client_base, callbacks, passkey_walk).await;
}

/// Run a flow from the explorer's index: the flow's form, with `breaks` ticked.
async fn run_from_index(c: &Client, base: &str, flow: &str, breaks: &[&str]) {
    c.goto(&format!("{base}/explore"))
        .await
        .expect("open /explore");
    page(
        c,
        Locator::Id(&format!("flow-{flow}")),
        "the explorer's index",
    )
    .await;
    for b in breaks {
        click(c, &format!("#flow-{flow} input[name='break-{b}']")).await;
    }
    click(c, &format!("#flow-{flow} button[type='submit']")).await;
    page(c, Locator::Id("step-1"), "the run's first step").await;
}

/// A step of the run page, once it is there: its text.
async fn step_text(c: &Client, n: usize) -> String {
    page(
        c,
        Locator::Id(&format!("step-{n}")),
        &format!("step {n} of the run"),
    )
    .await
    .text()
    .await
    .expect("text")
}

async fn explorer_walk(w: Walk) {
    let app = w.app.clone();
    let c = w.c.clone();
    let base = app.base.clone();

    // Code with PKCE: the first step shows the request and why each parameter is there.
    run_from_index(&c, &base, "code-pkce", &[]).await;
    page_titled(&c, "Authorization code with PKCE").await;
    let first = step_text(&c, 1).await;
    assert!(
        first.contains("GET /authorize?response_type=code"),
        "{first}"
    );
    assert!(
        first.contains("code_challenge = BASE64URL(SHA-256(code_verifier))"),
        "{first}"
    );
    screenshot(&c, &w.artifacts.join("explorer-start.png")).await;
    // The learner signs in and allows in the real page, and lands back on the run.
    click(&c, "a.button.primary").await;
    sign_in(&c, "/login", None).await;
    page(&c, Locator::Css("ul.scopes"), "the consent page").await;
    click(&c, "button[name='decision'][value='allow']").await;
    let back = step_text(&c, 4).await;
    assert!(back.contains("state matches"), "{back}");
    let token = step_text(&c, 5).await;
    for shown in [
        "POST /token HTTP/1.1",
        "code_verifier=",
        "HTTP/1.1 200 OK",
        "Signature: valid",
        "at_hash recomputed",
    ] {
        assert!(token.contains(shown), "step 5 shows {shown:?}: {token}");
    }
    let diagram = text(&c, "figure.sequence").await;
    assert!(diagram.contains("POST /token"), "{diagram}");
    screenshot(&c, &w.artifacts.join("explorer-run.png")).await;

    // Break it: a wrong verifier; the server's refusal is shown, with why.
    run_from_index(&c, &base, "code-pkce", &["wrong-verifier"]).await;
    click(&c, "a.button.primary").await;
    // Signed in, and allowed before: straight back.
    let refused = page(&c, Locator::Css("li.step.refused"), "the refused step")
        .await
        .text()
        .await
        .expect("text");
    assert!(refused.contains("invalid_grant"), "{refused}");
    let why = text(&c, "p.alert.warn").await;
    assert!(why.contains("RFC 7636"), "{why}");

    // The device flow: the code on the run page, the verification page as the user.
    run_from_index(&c, &base, "device", &[]).await;
    let code = page(&c, Locator::Css("p.device-code"), "the user code")
        .await
        .text()
        .await
        .expect("text");
    let verify = c
        .find(Locator::Css("a.button.primary"))
        .await
        .expect("the verification link")
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    assert!(
        verify.contains(&code.replace('-', "")) || verify.contains(&code),
        "{verify} {code}"
    );
    c.goto(&verify).await.expect("open the verification page");
    click(&c, "form[action='/device'] button[type='submit']").await;
    page(&c, Locator::Css("p.device-code"), "the confirmation page").await;
    click(&c, "button[name='decision'][value='allow']").await;
    page_titled(&c, "Device connected").await;
    c.goto(&format!("{base}/explore/run"))
        .await
        .expect("back to the run");
    app.clock.advance(10);
    click(&c, "form[action='/explore/act'] button").await;
    let polled = step_text(&c, 2).await;
    assert!(polled.contains("HTTP/1.1 200 OK"), "{polled}");
    assert!(polled.contains("ID token"), "{polled}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_in_chromium() {
    let (client_base, callbacks) = callback_server().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.explorer.enabled = true)
        .await
        .expect("SQLite app");
    in_chromium(app, client_base, callbacks, explorer_walk).await;
}

crate::tests!(
    needs Chromedriver:
    the_explorer_in_chromium,
    sign_in_consent_logout_and_device_in_chromium,
    passkeys_in_chromium,
);
