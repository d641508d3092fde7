//! Implicit flow with form_post (OIDC Core §3.2, OAuth 2.0 Form Post Response Mode).

use serde_json::Value;

use crate::browser::{form_fields, through_pages};
use crate::common::{Backend, TestApp, param};
use crate::flows::decode_jwt;

async fn implicit_form_post_end_to_end(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let r = through_pages(
        &app,
        &[
            ("response_type", "id_token token"),
            ("response_mode", "form_post"),
            ("client_id", "implicit"),
            ("redirect_uri", "http://localhost:3000/implicit"),
            ("scope", "openid profile"),
            ("nonce", "n-123"),
            ("state", "s-1"),
        ],
        "alice",
    )
    .await;
    assert_eq!(r.pages, ["login", "consent"]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("no-store")
    );
    let csp = r
        .headers
        .get("content-security-policy")
        .expect("csp")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let html = r.body;
    assert!(
        html.contains("action=\"http://localhost:3000/implicit\""),
        "{html}"
    );
    assert!(html.contains("<noscript>"));
    let fields = form_fields(&html);
    assert_eq!(param(&fields, "state"), Some("s-1"));
    assert_eq!(param(&fields, "iss"), Some(app.base.as_str()));
    let at = param(&fields, "access_token")
        .expect("access_token")
        .to_owned();
    let id = param(&fields, "id_token").expect("id_token").to_owned();
    // Verify the id_token's signature with the published JWKS, then nonce and at_hash.
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .http
        .get(app.url("/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let header = jsonwebtoken::decode_header(&id).expect("header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("key in jwks");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&["implicit"]);
    v.set_issuer(&[app.base.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        &id,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &v,
    )
    .expect("valid id_token")
    .claims;
    assert_eq!(claims["nonce"], "n-123");
    assert_eq!(
        claims["at_hash"],
        latchkey::crypto::jwt::half_hash(latchkey::oauth::types::SigningAlg::Rs256, &at)
    );
    // With an access token the scope's claims are in userinfo, and by default
    // (tokens.id_token_scope_claims) in the ID token too.
    assert_eq!(claims["name"], "Alice Example");
    assert!(param(&fields, "refresh_token").is_none());
}

async fn implicit_id_token_only_in_fragment_carries_claims(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let r = through_pages(
        &app,
        &[
            ("response_type", "id_token"),
            ("client_id", "implicit"),
            ("redirect_uri", "http://localhost:3000/implicit"),
            ("scope", "openid profile email"),
            ("nonce", "n-9"),
        ],
        "alice",
    )
    .await;
    assert_eq!(r.pages, ["login", "consent"]);
    assert_eq!(r.status, 303);
    let loc = r
        .headers
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    let frag = loc.split_once('#').expect("fragment").1.to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(frag.as_bytes())
        .into_owned()
        .collect();
    let (_, claims) = decode_jwt(param(&params, "id_token").expect("id_token"));
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims.get("at_hash").is_none());
}

async fn implicit_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let base = [
        ("client_id", "implicit"),
        ("redirect_uri", "http://localhost:3000/implicit"),
        ("scope", "openid"),
        ("state", "s"),
    ];
    let go = |extra: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let q: Vec<(&str, &str)> = base.iter().cloned().chain(extra).collect();
        async move {
            app.http
                .get(app.url("/authorize"))
                .query(&q)
                .send()
                .await
                .expect("authorize")
        }
    };
    // Missing nonce: invalid_request, delivered in the fragment (the implicit default).
    let r = go(vec![("response_type", "id_token")]).await;
    let loc = r
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(loc.contains("#error=invalid_request"), "{loc}");
    // token alone: refused, with the reason.
    let r = go(vec![("response_type", "token"), ("nonce", "n")]).await;
    let loc = r
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        loc.contains("error=unsupported_response_type") && loc.contains("RFC+9700"),
        "{loc}"
    );
    // query cannot carry tokens.
    let r = go(vec![
        ("response_type", "id_token"),
        ("nonce", "n"),
        ("response_mode", "query"),
    ])
    .await;
    let loc = r
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(loc.contains("error=invalid_request"), "{loc}");
    // Errors through form_post.
    let r = go(vec![
        ("response_type", "id_token"),
        ("response_mode", "form_post"),
    ])
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    assert!(
        html.contains("name=\"error\" value=\"invalid_request\""),
        "{html}"
    );
    assert!(html.contains("name=\"state\" value=\"s\""), "{html}");
    // A client not registered for implicit.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "id_token"),
            ("client_id", "web"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
            ("scope", "openid"),
            ("nonce", "n"),
        ])
        .send()
        .await
        .expect("authorize");
    let loc = r
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(loc.contains("error=unauthorized_client"), "{loc}");
}

async fn code_flow_with_form_post(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    crate::flows::get_code(&app, "openid").await;
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("response_mode", "form_post"),
            ("client_id", "web"),
            ("redirect_uri", crate::common::WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "fp"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    let fields = form_fields(&html);
    assert!(param(&fields, "code").is_some(), "{html}");
    assert_eq!(param(&fields, "state"), Some("fp"));
}

/// Two posts of one login form, racing: both signed in, but only the one that takes the
/// stored request issues (the race itself is too narrow to hit reliably over HTTP).
async fn front_channel_tokens_are_issued_once_per_request(b: Backend) {
    use latchkey::core::authorize::{self, Next, Validated};
    use latchkey::model::Session;
    use latchkey::oauth::params::Params;
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let state = &app.state;
    let raw = "response_type=id_token%20token&client_id=implicit&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fimplicit&scope=openid&nonce=n";
    let (params, _) =
        Params::parse_authorization(raw.as_bytes(), state.config.limits.params()).expect("params");
    let Ok(Validated::Ok(req, client)) = authorize::validate(&state.core, &params).await else {
        panic!("valid request");
    };
    let Ok(Next::Login { interaction }) =
        authorize::proceed(&state.core, &req, &client, None, None, false, state.now()).await
    else {
        panic!("login first");
    };
    let user = state
        .core
        .store
        .find_user_by_login("alice")
        .await
        .expect("store")
        .expect("alice");
    let now = state.now();
    state
        .core
        .store
        .add_consent(&user.id, &client.id, &req.scope, now)
        .await
        .expect("consent");
    let session = Session {
        id_hash: "h".into(),
        sid: "sid".into(),
        user_id: user.id.clone(),
        auth_time: now,
        amr: vec!["pwd".into()],
        created_at: now,
        last_seen_at: now,
        expires_at: now + 3600,
        mfa_at: None,
        ip: None,
        user_agent: None,
    };
    let mut issued = 0;
    for _ in 0..2 {
        match authorize::proceed(
            &state.core,
            &req,
            &client,
            Some((session.clone(), user.clone())),
            Some(interaction.clone()),
            true,
            state.now(),
        )
        .await
        {
            Ok(Next::Deliver(_)) => issued += 1,
            Ok(Next::AlreadyUsed) => {}
            _ => panic!("neither issued nor already used"),
        }
    }
    assert_eq!(issued, 1);
}

crate::both_stores!(
    implicit_form_post_end_to_end,
    implicit_id_token_only_in_fragment_carries_claims,
    implicit_errors,
    code_flow_with_form_post,
    front_channel_tokens_are_issued_once_per_request,
);
