//! Authorization code + PKCE, driven by the `openidconnect` crate as an independent relying
//! party, plus plain-HTTP tests of every error path.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::browser::authorize;
use crate::common::{Backend, PASSWORD, TestApp, WEB_REDIRECT, WEB_SECRET, hidden, json, param};
use crate::flows::{CHALLENGE, Issued, VERIFIER, exchange, get_code};

async fn code_flow_with_openidconnect_crate(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let http = crate::common::http_client();
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.base.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new("web".into()),
        Some(ClientSecret::new(WEB_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(WEB_REDIRECT.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let q: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let done = authorize(&app, &q, "alice").await;
    assert!(done.location.starts_with(WEB_REDIRECT), "{}", done.location);
    assert_eq!(param(&done.params, "state"), Some(csrf.secret().as_str()));
    // RFC 9207: the issuer is in the response.
    assert_eq!(param(&done.params, "iss"), Some(app.base.as_str()));
    let code = param(&done.params, "code").expect("code").to_owned();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = token.id_token().expect("id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("id_token validates: signature, issuer, audience, nonce");
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(*expected, actual, "at_hash");
    let sub = claims.subject().as_str().to_owned();
    let auth_time = claims.auth_time().expect("auth_time");
    assert!(
        token.refresh_token().is_some(),
        "offline_access gives a refresh token"
    );

    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().to_owned(), None)
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.email_verified(), Some(true));
    assert!(info.name().is_some());
    assert!(info.phone_number().is_none(), "phone scope was not granted");

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().expect("refresh"))
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().map(|r| r.secret()),
        token.refresh_token().map(|r| r.secret()),
        "rotated"
    );
    let id2 = refreshed.id_token().expect("refreshed id_token");
    // OIDC Core §12.2: same auth_time, no nonce.
    let c2 = id2
        .claims(&verifier, |n: Option<&Nonce>| {
            if n.is_none() {
                Ok(())
            } else {
                Err("nonce".to_owned())
            }
        })
        .expect("valid");
    assert_eq!(c2.auth_time(), Some(auth_time));
    assert_eq!(c2.subject().as_str(), sub);
}

async fn assert_oauth_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("no-store")
    );
    assert_eq!(
        r.headers()
            .get("pragma")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("no-cache")
    );
    let body = json(r).await;
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    body
}

async fn code_reuse_revokes_tokens(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let i = get_code(&app, "openid offline_access").await;
    let first = json(exchange(&app, &i).await).await;
    let access = first["access_token"].as_str().expect("access").to_owned();
    let refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
    let v = assert_oauth_error(exchange(&app, &i).await, 400, "invalid_grant").await;
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used") && d.contains("has been revoked")),
        "{v}"
    );
    // Every token from that code is now dead.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
    let r = app.refresh_web(&refresh).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

/// The token endpoint signs before it claims the code, so racing redemptions all get as far
/// as minting; exactly one may claim the code and record its grant, and the rest are reuse.
async fn racing_redemptions_of_one_code_issue_once(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let i = get_code(&app, "openid offline_access").await;
    let mut racers = Vec::new();
    for _ in 0..6 {
        let (http, url) = (app.http.clone(), app.url("/token"));
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", i.code.clone()),
            ("redirect_uri", WEB_REDIRECT.to_owned()),
            ("code_verifier", i.verifier.clone()),
        ];
        racers.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth("web", Some(WEB_SECRET))
                .form(&form)
                .send()
                .await
                .expect("request")
        }));
    }
    let mut won = Vec::new();
    for r in racers {
        let r = r.await.expect("task");
        if r.status() == 200 {
            won.push(json(r).await);
        } else {
            assert_oauth_error(r, 400, "invalid_grant").await;
        }
    }
    assert_eq!(won.len(), 1, "exactly one redemption succeeds");
    // The losers were reuse, so the winner's grant is revoked (RFC 6749 §4.1.2).
    let refresh = won[0]["refresh_token"].as_str().expect("refresh");
    let r = app.refresh_web(refresh).await;
    assert_oauth_error(r, 400, "invalid_grant").await;

    // A failed redemption uses the code up too: no second try at the verifier. The retry is
    // told so, and not that tokens were revoked: none was issued from that code.
    let i = get_code(&app, "openid").await;
    let wrong = Issued {
        code: i.code.clone(),
        verifier: "y".repeat(43),
    };
    assert_oauth_error(exchange(&app, &wrong).await, 400, "invalid_grant").await;
    let v = assert_oauth_error(exchange(&app, &i).await, 400, "invalid_grant").await;
    assert_eq!(
        v["error_description"],
        "this authorization code was already used (or a failed attempt used it up); start the sign-in again",
        "{v}"
    );
}

async fn pkce_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let i = get_code(&app, "openid").await;
    let wrong = Issued {
        code: i.code.clone(),
        verifier: "x".repeat(43),
    };
    assert_oauth_error(exchange(&app, &wrong).await, 400, "invalid_grant").await;

    let i = get_code(&app, "openid").await;
    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("redirect_uri", WEB_REDIRECT),
            ],
        )
        .await;
    let body = assert_oauth_error(r, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("code_verifier")
    );

    // Downgrade: a code issued without a challenge, redeemed with a verifier.
    let done = authorize(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
        ],
        "alice",
    )
    .await;
    let code = param(&done.params, "code").expect("code").to_owned();
    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    let body = assert_oauth_error(r, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("downgrade")
    );
}

async fn token_endpoint_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // Wrong redirect_uri at the token endpoint.
    let i = get_code(&app, "openid").await;
    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("redirect_uri", "http://localhost:3000/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;

    // Expired code.
    let i = get_code(&app, "openid").await;
    app.clock.advance(61);
    assert_oauth_error(exchange(&app, &i).await, 400, "invalid_grant").await;

    // A code issued to another client.
    let i = get_code(&app, "openid").await;
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("client_id", "first-party"),
                ("client_secret", crate::common::POST_SECRET),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;

    // Bad secret: 401 with a Basic challenge.
    let r = app
        .token_basic(
            "web",
            "wrong",
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or_default().to_owned()),
        Some("Basic realm=\"latchkey\"".into())
    );
    assert_oauth_error(r, 401, "invalid_client").await;

    // The registered method is the only one accepted.
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "web"),
                ("client_secret", WEB_SECRET),
            ],
        )
        .await;
    assert_oauth_error(r, 401, "invalid_client").await;

    // Duplicate parameters.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some(WEB_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=a&code=b")
        .send()
        .await
        .expect("request");
    assert_oauth_error(r, 400, "invalid_request").await;

    // Not a form.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some(WEB_SECRET))
        .json(&serde_json::json!({"grant_type": "x"}))
        .send()
        .await
        .expect("request");
    assert_oauth_error(r, 400, "invalid_request").await;

    // Missing parameter, unknown and unauthorized grants.
    let r = app
        .token_basic("web", WEB_SECRET, &[("grant_type", "authorization_code")])
        .await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = app
        .token_basic("web", WEB_SECRET, &[("grant_type", "magic")])
        .await;
    assert_oauth_error(r, 400, "unsupported_grant_type").await;
    let r = app
        .token_basic("web", WEB_SECRET, &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(r, 400, "unauthorized_client").await;
}

async fn authorize_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let get = |q: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/authorize"))
                .query(&q)
                .send()
                .await
                .expect("authorize")
        }
    };
    // Never redirect to an unverified redirect_uri, or for an unknown client.
    for q in [
        vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", WEB_REDIRECT),
        ],
        vec![("response_type", "code"), ("client_id", "web")],
        vec![("response_type", "code")],
        // A repeated client_id or redirect_uri leaves no trusted place to send an error.
        vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
        ],
        vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("redirect_uri", WEB_REDIRECT),
        ],
    ] {
        let r = get(q).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        let html = r.text().await.expect("html");
        assert!(html.contains("invalid_request"), "{html}");
    }
    let base = [
        ("client_id", "web"),
        ("redirect_uri", WEB_REDIRECT),
        ("state", "st"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "code"), ("scope", "openid admin")],
            "invalid_scope",
        ),
        // Any other repeated parameter goes back to the client (RFC 6749 section 4.1.2.1).
        (
            vec![
                ("response_type", "code"),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "invalid_request",
        ),
        // No scope, and the client registered no default: RFC 6749 section 3.3 says fail,
        // rather than go past the consent page with nothing to ask and issue a user token.
        (vec![("response_type", "code")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid")], "invalid_request"),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
            ],
            "login_required",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none login"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", "eyJ"),
            ],
            "request_not_supported",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("request_uri", "https://x"),
            ],
            "request_uri_not_supported",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("max_age", "-1"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("scope", "openid"),
                ("claims", "{not json"),
            ],
            "invalid_request",
        ),
    ];
    for (extra, expected) in cases {
        let q: Vec<(&str, &str)> = base.iter().cloned().chain(extra.iter().cloned()).collect();
        let r = app
            .http
            .get(app.url("/authorize"))
            .query(&q)
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 303, "{extra:?}");
        let (loc, params) = crate::common::location_params(&r);
        assert!(loc.starts_with(WEB_REDIRECT), "{loc}");
        assert_eq!(
            param(&params, "error"),
            Some(expected),
            "{extra:?} -> {loc}"
        );
        assert_eq!(param(&params, "state"), Some("st"));
        assert_eq!(param(&params, "iss"), Some(app.base.as_str()));
    }
    // Public clients must use PKCE.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", "http://127.0.0.1/spa-callback"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .expect("authorize");
    let (_, params) = crate::common::location_params(&r);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
}

async fn sso_consent_and_prompts(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    get_code(&app, "openid email").await;
    let q = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid email"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    // Session + remembered consent: straight back with a code, even with prompt=none.
    for extra in [None, Some(("prompt", "none"))] {
        let mut q2 = q.to_vec();
        q2.extend(extra);
        let r = app
            .http
            .get(app.url("/authorize"))
            .query(&q2)
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 303);
        let (_, params) = crate::common::location_params(&r);
        assert!(param(&params, "code").is_some(), "{params:?}");
    }
    // New scope: consent again; with prompt=none that is consent_required.
    let mut q3 = q.to_vec();
    q3[3] = ("scope", "openid email phone");
    q3.push(("prompt", "none"));
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&q3)
        .send()
        .await
        .expect("authorize");
    let (_, params) = crate::common::location_params(&r);
    assert_eq!(param(&params, "error"), Some("consent_required"));
    // prompt=login and max_age=0 show the login page despite the session.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        app.clock.advance(1);
        let mut q4 = q.to_vec();
        q4.push(extra);
        let r = app
            .http
            .get(app.url("/authorize"))
            .query(&q4)
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 200, "{extra:?}");
        assert!(r.text().await.expect("html").contains("action=\"/login\""));
    }
}

/// RFC 8252 section 7.3's any-port rule is for native apps, which are public clients
/// (section 8.4): a confidential client's loopback redirect URI matches exactly, port
/// included, and a code never goes to another local port.
async fn confidential_client_loopback_port_is_exact(b: Backend) {
    let registered = "http://127.0.0.1:3000/cb";
    let Some(app) = TestApp::spawn_with(b, |c| {
        let web = c
            .clients
            .iter_mut()
            .find(|c| c.client_id == "web")
            .expect("web");
        web.redirect_uris.push(registered.into());
    })
    .await
    else {
        return;
    };
    let query = |redirect_uri| {
        vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    };
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&query("http://127.0.0.1:4444/cb"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.expect("html");
    assert!(html.contains("invalid_request"), "{html}");
    // Signed in, the other port is still refused before anything is issued.
    let done = authorize(&app, &query(registered), "alice").await;
    assert!(done.location.starts_with(registered), "{}", done.location);
    assert!(param(&done.params, "code").is_some());
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&query("http://127.0.0.1:4444/cb"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

async fn public_client_loopback_port_and_refresh_reuse(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let redirect = "http://127.0.0.1:54321/spa-callback";
    let done = authorize(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", redirect),
            ("scope", "openid offline_access"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "alice",
    )
    .await;
    assert!(
        done.location.starts_with(redirect),
        "RFC 8252 §7.3 port variance: {}",
        done.location
    );
    let code = param(&done.params, "code").expect("code").to_owned();
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "spa"),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t1 = json(r).await;
    let r1 = t1["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = |rt: String| {
        let app = &app;
        async move {
            app.post_form(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", "spa"),
                ],
            )
            .await
        }
    };
    let t2 = json(refresh(r1.clone()).await).await;
    // A racing repeat within the grace window gets the same pair.
    let t2b = json(refresh(r1.clone()).await).await;
    assert_eq!(t2, t2b);
    // Narrowing is fine, widening is not.
    let r2 = t2["refresh_token"].as_str().expect("refresh").to_owned();
    let r = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r2),
                ("client_id", "spa"),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_oauth_error(r, 400, "invalid_scope").await;
    // Reuse after the grace window revokes the whole family.
    app.clock.advance(30);
    assert_oauth_error(refresh(r1).await, 400, "invalid_grant").await;
    assert_oauth_error(refresh(r2).await, 400, "invalid_grant").await;
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(t2["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
}

async fn concurrent_refreshes_never_fail(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let i = get_code(&app, "openid offline_access").await;
    let t = json(exchange(&app, &i).await).await;
    let rt = t["refresh_token"].as_str().expect("refresh").to_owned();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let url = app.url("/token");
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth("web", Some(WEB_SECRET))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .expect("request")
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status(), 200, "every racer gets the pair");
        bodies.push(json(r).await);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "all racers got the same new pair"
    );
}

async fn userinfo_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let r = app
        .http
        .get(app.url("/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .expect("challenge")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
    // A client's own token has no user: insufficient_scope.
    let t = json(
        app.token_basic(
            "service",
            crate::common::SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()
            .get("www-authenticate")
            .expect("challenge")
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    // Expired.
    let i = get_code(&app, "openid").await;
    let t = json(exchange(&app, &i).await).await;
    app.clock.advance(601);
    let r = app
        .http
        .post(app.url("/userinfo"))
        .form(&[("access_token", t["access_token"].as_str().expect("at"))])
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), 401);
}

async fn discovery_and_jwks(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let d = app.discovery().await;
    assert_eq!(d["issuer"], app.base);
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    // plain is refused unless a client allows it, so it is advertised only then.
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let plain = TestApp::spawn_with(b, |c| {
        for client in c.clients.iter_mut().filter(|c| c.client_id == "web") {
            client.allow_plain_pkce = true;
        }
    })
    .await
    .expect("second server");
    assert_eq!(
        plain.discovery().await["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    assert_eq!(
        d["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent", "select_account"])
    );
    let d2 = json(
        app.http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .expect("rfc8414"),
    )
    .await;
    assert_eq!(d, d2);
    let r = app
        .http
        .get(app.url("/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert!(
        r.headers()
            .get("cache-control")
            .expect("cacheable")
            .to_str()
            .expect("ascii")
            .contains("max-age")
    );
    let jwks = json(r).await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["alg"].as_str())
        .collect();
    for a in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&a), "{algs:?}");
    }
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["kid"].is_string() && k["use"] == "sig" && k.get("d").is_none())
    );
}

async fn cors_only_for_registered_origins(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let pre = |origin: &'static str| {
        let app = &app;
        async move {
            app.http
                .request(reqwest::Method::OPTIONS, app.url("/token"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .send()
                .await
                .expect("preflight")
        }
    };
    let ok = pre("http://localhost:5173").await;
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("http://localhost:5173")
    );
    let bad = pre("https://evil.example").await;
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

/// The id_token and userinfo of a code flow with this scope and `claims` request.
async fn claims_released(
    app: &TestApp,
    scope: &str,
    claims: &str,
    prompt: Option<&str>,
) -> (Value, Value) {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", scope),
        ("nonce", "n"),
        ("claims", claims),
    ];
    if let Some(p) = prompt {
        query.push(("prompt", p));
    }
    let done = authorize(app, &query, "alice").await;
    let code = param(&done.params, "code").expect("code").to_owned();
    let r = app
        .token_basic(
            "web",
            WEB_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_REDIRECT),
            ],
        )
        .await;
    let t = json(r).await;
    use base64::Engine;
    let payload = t["id_token"]
        .as_str()
        .expect("id_token")
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    let id: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json");
    let info = json(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(t["access_token"].as_str().expect("at"))
            .send()
            .await
            .expect("userinfo"),
    )
    .await;
    (id, info)
}

/// The granted scopes' claims go in the ID token by default (SDKs such as Auth0's
/// express-openid-connect read the user from it), and a client can turn that off.
async fn scope_claims_in_the_id_token(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (id, _) = claims_released(&app, "openid email", "{}", None).await;
    assert_eq!(id["email"], "alice@example.com", "{id}");
    let Some(app) = TestApp::spawn_with(b, |c| {
        for client in c.clients.iter_mut().filter(|c| c.client_id == "web") {
            client.id_token_scope_claims = Some(false);
        }
    })
    .await
    else {
        return;
    };
    let (id, info) = claims_released(&app, "openid email", "{}", None).await;
    assert!(id.get("email").is_none(), "{id}");
    assert_eq!(info["email"], "alice@example.com");
}

async fn claims_request_parameter(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    // A claims request asks; the consented scopes decide (OIDC Core section 5.5). With only
    // `openid` consented, asking for email, phone and address releases none of them.
    let greedy = r#"{"userinfo":{"phone_number":{"essential":true},"address":null,"email":null},"id_token":{"email":null,"phone_number":null}}"#;
    let (id, info) = claims_released(&app, "openid", greedy, None).await;
    for claim in ["email", "phone_number", "address"] {
        assert!(id.get(claim).is_none(), "{claim} in the id_token: {id}");
        assert!(info.get(claim).is_none(), "{claim} from userinfo: {info}");
    }
    // Asking again silently (prompt=none) releases nothing new either.
    let (id, info) = claims_released(&app, "openid", greedy, Some("none")).await;
    assert!(id.get("email").is_none() && info.get("phone_number").is_none());

    // With the email scope consented, the individually requested email goes in the
    // id_token too (section 5.5), though an access token was issued; phone stays out.
    let (id, info) = claims_released(&app, "openid email", greedy, None).await;
    assert_eq!(id["email"], "alice@example.com");
    assert!(id.get("phone_number").is_none(), "{id}");
    assert_eq!(info["email"], "alice@example.com");
    assert!(info.get("phone_number").is_none(), "{info}");
}

async fn key_rotation_is_prepublished(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let state = &app.state;
    let now = app.clock.now();
    let old = state
        .core
        .tokens
        .keys()
        .active(latchkey::oauth::types::SigningAlg::Rs256, now)
        .expect("active key")
        .kid
        .clone();
    let new = latchkey::app::insert_key(
        &state.core.store,
        &state.master,
        latchkey::oauth::types::SigningAlg::Rs256,
        now,
        now + state.config.keys.prepublish_seconds,
    )
    .await
    .expect("rotate");
    latchkey::app::refresh_caches(state).await.expect("reload");
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let published = kids(
        json(
            app.http
                .get(app.url("/jwks.json"))
                .send()
                .await
                .expect("jwks"),
        )
        .await,
    );
    assert!(
        published.contains(&old) && published.contains(&new),
        "next key is published before it signs"
    );
    assert_eq!(
        state
            .core
            .tokens
            .keys()
            .active(latchkey::oauth::types::SigningAlg::Rs256, now)
            .expect("key")
            .kid,
        old
    );
    // After the pre-publish delay the new key signs; the old one stays published.
    app.clock.advance(state.config.keys.prepublish_seconds);
    latchkey::app::refresh_caches(state).await.expect("reload");
    let t = json(
        app.token_basic(
            "service",
            crate::common::SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    let header =
        jsonwebtoken::decode_header(t["access_token"].as_str().expect("at")).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new.as_str()));
    let published = kids(
        json(
            app.http
                .get(app.url("/jwks.json"))
                .send()
                .await
                .expect("jwks"),
        )
        .await,
    );
    assert!(
        published.contains(&old),
        "retired key stays published while its tokens live"
    );
}

/// The consent page lists scopes in the order the client asked for them, and words a
/// deployment's own scope as `[[scopes]]` describes it; discovery lists described scopes.
async fn consent_keeps_the_request_order_and_config_descriptions(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        c.clients[0].scopes.push("orders.read".into());
        c.scopes.push(latchkey::config::ScopeConfig {
            name: "orders.read".into(),
            description: "Read your orders".into(),
        });
    })
    .await
    else {
        return;
    };
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "orders.read openid email orders.read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    let login = r.text().await.expect("login page");
    let consent = app
        .post_form(
            "/login",
            &[
                ("csrf", &hidden(&login, "csrf")),
                ("interaction", &hidden(&login, "interaction")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
        .text()
        .await
        .expect("consent page");
    assert!(consent.contains("action=\"/consent\""), "{consent}");
    let at = |text: &str| {
        consent
            .find(text)
            .unwrap_or_else(|| panic!("{text} is not on the consent page: {consent}"))
    };
    let orders = at("Read your orders");
    let openid = at("Know who you are");
    let email = at("Read your email address");
    assert!(
        orders < openid && openid < email,
        "not in the requested order"
    );
    assert!(!consent.contains("app-specific permission"));
    let discovery = json(
        app.http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    let listed = discovery["scopes_supported"].as_array().expect("scopes");
    assert!(listed.iter().any(|s| s == "orders.read"), "{listed:?}");
    assert!(listed.iter().any(|s| s == "openid"), "{listed:?}");
}

crate::both_stores!(
    scope_claims_in_the_id_token,
    key_rotation_is_prepublished,
    claims_request_parameter,
    code_flow_with_openidconnect_crate,
    code_reuse_revokes_tokens,
    pkce_errors,
    token_endpoint_errors,
    authorize_errors,
    sso_consent_and_prompts,
    public_client_loopback_port_and_refresh_reuse,
    confidential_client_loopback_port_is_exact,
    concurrent_refreshes_never_fail,
    racing_redemptions_of_one_code_issue_once,
    userinfo_errors,
    discovery_and_jwks,
    cors_only_for_registered_origins,
    consent_keeps_the_request_order_and_config_descriptions,
);
