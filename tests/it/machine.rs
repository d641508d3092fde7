//! Client credentials, password, revocation and introspection, through the `oauth2` crate and
//! plain HTTP for the error paths.

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, ClientId, ClientSecret, IntrospectionUrl, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};

use latchkey::crypto::secret::SecretHash;
use latchkey::model::Client;

use crate::common::{
    Backend, LEGACY_SECRET, PASSWORD, POST_SECRET, RS_SECRET, SERVICE_SECRET, TestApp, http_client,
    json,
};

async fn client_credentials_revoke_introspect_with_oauth2_crate(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let http = http_client();
    let service = BasicClient::new(ClientId::new("service".into()))
        .set_client_secret(ClientSecret::new(SERVICE_SECRET.into()))
        .set_token_uri(TokenUrl::new(app.url("/token")).expect("url"));
    let t = service
        .exchange_client_credentials()
        .add_scope(Scope::new("api.write".into()))
        .request_async(&http)
        .await
        .expect("client_credentials");
    assert!(t.refresh_token().is_none());
    assert_eq!(
        t.scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
        Some(vec!["api.write".to_owned()])
    );

    let rs = BasicClient::new(ClientId::new("rs".into()))
        .set_client_secret(ClientSecret::new(RS_SECRET.into()))
        .set_introspection_url(IntrospectionUrl::new(app.url("/introspect")).expect("url"));
    let info = rs
        .introspect(t.access_token())
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("service"));
    assert_eq!(info.sub(), Some("service"));
    assert_eq!(
        info.aud().cloned(),
        Some(vec!["https://api.example.com".to_owned()])
    );

    // The oauth2 crate refuses revocation over plain http (RFC 7009 §2 requires TLS), so
    // revoke with a plain request here.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("service", Some(SERVICE_SECRET))
        .form(&[("token", t.access_token().secret().as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 200);
    let info = rs
        .introspect(t.access_token())
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(!info.active());
    // Unknown tokens introspect as inactive and nothing else; revoking them is a 200.
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token", "garbage")])
        .send()
        .await
        .expect("req");
    assert_eq!(json(r).await, serde_json::json!({"active": false}));
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("service", Some(SERVICE_SECRET))
        .form(&[("token", "garbage")])
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("service", Some(SERVICE_SECRET))
        .form(&[("token", "garbage"), ("token_type_hint", "id_token")])
        .send()
        .await
        .expect("req");
    assert_eq!(json(r).await["error"], "unsupported_token_type");
}

async fn client_credentials_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let r = app
        .token_basic(
            "service",
            "wrong-secret",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = app
        .token_basic(
            "service",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials"), ("scope", "api.admin")],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_scope");
    let r = app
        .token_basic(
            "service",
            SERVICE_SECRET,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://other.example"),
            ],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_target");
    // A public client cannot use client_credentials.
    let r = app
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "spa")],
        )
        .await;
    assert_eq!(json(r).await["error"], "unauthorized_client");
    // Defaults apply when scope is omitted; ES256 per client.
    let t = json(
        app.token_basic(
            "service-es",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    let (header, _) = crate::flows::decode_jwt(t["access_token"].as_str().expect("at"));
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    // An argon2-hashed secret works (and the second call is served from the verified cache).
    for _ in 0..2 {
        let r = app
            .token_basic(
                "human",
                crate::common::HUMAN_SECRET,
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = app
        .token_basic("human", "not it", &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 401);
    // Introspection needs an authenticated client (RFC 7662 section 2.1).
    let r = app.post_form("/introspect", &[("token", "x")]).await;
    assert_eq!(r.status(), 401);
    let r = app
        .post_form("/introspect", &[("token", "x"), ("client_id", "spa")])
        .await;
    assert_eq!(json(r).await["error"], "unauthorized_client");
    // A confidential client without `introspection` may introspect the tokens issued to it,
    // and learns nothing of other clients' tokens.
    let introspect_as = |id: &'static str, secret: &'static str, token: String| {
        let app = &app;
        async move {
            json(
                app.http
                    .post(app.url("/introspect"))
                    .basic_auth(id, Some(secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .expect("req"),
            )
            .await
        }
    };
    let own = json(
        app.token_basic(
            "service",
            SERVICE_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let v = introspect_as("service", SERVICE_SECRET, own.clone()).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "service");
    let v = introspect_as("service-es", SERVICE_SECRET, own.clone()).await;
    assert_eq!(v, serde_json::json!({"active": false}));
    assert_eq!(
        introspect_as("service", SERVICE_SECRET, "x".into()).await,
        serde_json::json!({"active": false})
    );
    // A resource server registered with `introspection = true` sees every token.
    assert_eq!(
        introspect_as("rs", crate::common::RS_SECRET, own).await["active"],
        true
    );
}

async fn password_grant_and_refresh_revocation(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let http = http_client();
    let legacy = BasicClient::new(ClientId::new("legacy".into()))
        .set_client_secret(ClientSecret::new(LEGACY_SECRET.into()))
        .set_token_uri(TokenUrl::new(app.url("/token")).expect("url"));
    let t = legacy
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(PASSWORD.into()),
        )
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("password grant");
    let refresh = t.refresh_token().expect("refresh").secret().clone();
    let access = t.access_token().secret().clone();
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token", &access)])
        .send()
        .await
        .expect("req");
    let info = json(r).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice");
    // Revoke the refresh token: the refresh fails and its access tokens go inactive.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("legacy", Some(LEGACY_SECRET))
        .form(&[
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let r = app
        .token_basic(
            "legacy",
            LEGACY_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token", &access)])
        .send()
        .await
        .expect("req");
    assert_eq!(json(r).await, serde_json::json!({"active": false}));
    let _ = AccessToken::new(access);
}

async fn password_grant_errors_and_lockout(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let pw = |user: &'static str, pass: &'static str| {
        let app = &app;
        async move {
            json(
                app.token_basic(
                    "legacy",
                    LEGACY_SECRET,
                    &[
                        ("grant_type", "password"),
                        ("username", user),
                        ("password", pass),
                    ],
                )
                .await,
            )
            .await
        }
    };
    // Not registered for the grant.
    let r = app
        .token_basic(
            "web",
            crate::common::WEB_SECRET,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(json(r).await["error"], "unauthorized_client");
    assert_eq!(pw("nobody", "x").await["error"], "invalid_grant");
    assert_eq!(
        pw("bob", PASSWORD).await["error"],
        "invalid_grant",
        "disabled user"
    );
    // Three failures lock the account (test config: max_failures = 3) ...
    for _ in 0..3 {
        assert_eq!(pw("alice", "wrong").await["error"], "invalid_grant");
    }
    // ... and the right password no longer helps until the lock ends.
    let locked = pw("alice", PASSWORD).await;
    assert_eq!(locked["error"], "invalid_grant");
    assert!(
        locked["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("try again"),
        "{locked}"
    );
    app.clock.advance(61);
    assert!(pw("alice", PASSWORD).await["access_token"].is_string());
}

/// More concurrent refreshes than the store has pooled connections (8 on SQLite, 16 on
/// Postgres): a request must never hold one connection while waiting for another, or the
/// pool deadlocks until its acquire timeout.
async fn refresh_under_more_concurrency_than_pooled_connections(b: Backend) {
    use latchkey::crypto::secret::{hash_token, new_token};
    use latchkey::model::GrantData;
    use latchkey::oauth::types::ScopeSet;
    use latchkey::store::grants::{NewFamily, NewGrant, NewRefresh};

    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let store = &app.state.core.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("lookup")
        .expect("alice");
    let now = app.clock.now();
    let data = GrantData {
        scope: ScopeSet::parse("openid offline_access").expect("scope"),
        ..GrantData::default()
    };
    let mut tokens = Vec::new();
    for i in 0..40 {
        let token = new_token();
        let grant_id = format!("grant-{i}");
        let family = NewFamily {
            grant: NewGrant {
                id: &grant_id,
                client_id: "legacy",
                user_id: Some(&alice.id),
                sid: None,
                expires_at: now + 3600,
                offline_access: false,
            },
            refresh: NewRefresh {
                token_hash: &hash_token(&token),
                grant_id: &grant_id,
                client_id: "legacy",
                user_id: Some(&alice.id),
                data: &data,
                expires_at: now + 3600,
                family_expires_at: now + 3600,
            },
        };
        store.record_grant(&family, now).await.expect("insert");
        tokens.push(token);
    }
    let started = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in tokens {
        let (http, url) = (app.http.clone(), app.url("/token"));
        set.spawn(async move {
            http.post(url)
                .basic_auth("legacy", Some(LEGACY_SECRET))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &t)])
                .send()
                .await
                .expect("refresh")
        });
    }
    while let Some(r) = set.join_next().await {
        let r = r.expect("task");
        assert_eq!(r.status(), 200, "{}", r.text().await.expect("body"));
    }
    // Not a speed target: a deadlocked pool would take the 10 s acquire timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
}

/// A server whose client cache reloads only every `clients_seconds` (tests spawn no
/// background tasks, so only when the test says), and its `service` client, checked to work.
async fn with_service_client(b: Backend, clients_seconds: u64) -> Option<(TestApp, Client)> {
    let app = TestApp::spawn_with(b, |c| c.cache.clients_seconds = clients_seconds).await?;
    let client = app
        .state
        .core
        .store
        .get_client("service")
        .await
        .expect("get")
        .expect("service");
    assert_eq!(cc_status(&app, "service", SERVICE_SECRET).await, 200);
    Some((app, client))
}

async fn cc_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.token_basic(id, secret, &[("grant_type", "client_credentials")])
        .await
        .status()
        .as_u16()
}

/// The client cache (`client_cache`): changes made to the store behind a node's back (by the
/// CLI, or by another node) that let a client in work at once; those that shut one out take
/// effect on the next reload, and at once with the cache off.
async fn client_cache_lets_changes_in_at_once_and_shuts_out_on_reload(b: Backend) {
    let Some((app, mut client)) = with_service_client(b, 3600).await else {
        return;
    };
    let store = &app.state.core.store;
    let now = app.state.now();

    // A client registered after start is found in the store on first use.
    client.id = "late".into();
    store.upsert_client(&client, now).await.expect("add");
    assert_eq!(cc_status(&app, "late", SERVICE_SECRET).await, 200);

    // A rotated secret works at once: a refusal is checked again against the store.
    let new_secret = "rotated-secret-0123456789abcdefghijklmnopqrstu";
    store
        .set_client_secret("late", &SecretHash::fast(new_secret), now)
        .await
        .expect("rotate");
    assert_eq!(cc_status(&app, "late", new_secret).await, 200);
    // ...and that re-read also retired the old one on this node.
    assert_eq!(cc_status(&app, "late", SERVICE_SECRET).await, 401);

    // Disabling lags until the node reloads its copy of the table, and then bites.
    client.enabled = false;
    client.secret_hash = Some(SecretHash::fast(new_secret));
    store.upsert_client(&client, now).await.expect("disable");
    assert_eq!(
        cc_status(&app, "late", new_secret).await,
        200,
        "within cache.clients_seconds the cached copy still answers"
    );
    latchkey::app::refresh_clients(&app.state)
        .await
        .expect("reload");
    let r = app
        .token_basic("late", new_secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");

    // Re-enabling works at once, without a reload.
    client.enabled = true;
    store.upsert_client(&client, now).await.expect("enable");
    assert_eq!(cc_status(&app, "late", new_secret).await, 200);

    // Removal, like disabling, bites on reload.
    assert!(store.delete_client("late").await.expect("delete"));
    latchkey::app::refresh_clients(&app.state)
        .await
        .expect("reload");
    assert_eq!(cc_status(&app, "late", new_secret).await, 401);
}

async fn client_cache_off_means_every_change_bites_at_once(b: Backend) {
    let Some((app, mut client)) = with_service_client(b, 0).await else {
        return;
    };
    let store = &app.state.core.store;
    client.enabled = false;
    store
        .upsert_client(&client, app.state.now())
        .await
        .expect("disable");
    assert_eq!(cc_status(&app, "service", SERVICE_SECRET).await, 401);
}

/// An unknown client, a wrong secret (generated or chosen) and a wrong authentication method
/// get byte-identical answers: nothing tells a caller which client ids exist or how each
/// authenticates. The 401 and its Basic challenge stay.
async fn invalid_client_reveals_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    enum Cred {
        Basic(&'static str, &'static str),
        Body(&'static str, Option<&'static str>),
    }
    let cases = [
        ("unknown client, Basic", Cred::Basic("nobody", "whatever")),
        ("unknown client, id only", Cred::Body("nobody", None)),
        (
            "unknown client, post",
            Cred::Body("nobody", Some("whatever")),
        ),
        (
            "wrong generated secret",
            Cred::Basic("service", "wrong-secret"),
        ),
        (
            "wrong chosen secret",
            Cred::Basic("human", "not the secret"),
        ),
        (
            "right secret, Basic client in the body",
            Cred::Body("service", Some(SERVICE_SECRET)),
        ),
        (
            "right secret, post client with Basic",
            Cred::Basic("first-party", POST_SECRET),
        ),
        ("public client with Basic", Cred::Basic("spa", "anything")),
        (
            "confidential client without a secret",
            Cred::Body("service", None),
        ),
    ];
    for path in ["/token", "/introspect"] {
        let mut seen: Option<(String, String)> = None;
        for (what, cred) in &cases {
            let mut form = vec![("grant_type", "client_credentials"), ("token", "x")];
            let req = app.http.post(app.url(path));
            let req = match cred {
                Cred::Basic(id, secret) => req.basic_auth(id, Some(secret)),
                Cred::Body(id, secret) => {
                    form.push(("client_id", id));
                    if let Some(s) = secret {
                        form.push(("client_secret", s));
                    }
                    req
                }
            };
            let r = req.form(&form).send().await.expect("request");
            assert_eq!(r.status(), 401, "{path} {what}");
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii").to_owned())
                .expect("a 401 carries a challenge");
            assert_eq!(challenge, "Basic realm=\"latchkey\"", "{path} {what}");
            let body = r.text().await.expect("body");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["error"], "invalid_client", "{path} {what}");
            assert_eq!(
                v["error_description"],
                latchkey::core::client_auth::AUTH_FAILED,
                "{path} {what}"
            );
            match &seen {
                None => seen = Some((what.to_string(), body)),
                Some((first, b)) => assert_eq!(&body, b, "{path}: {what} differs from {first}"),
            }
        }
    }
}

/// RFC 6749 §5.1: the response names the scope granted. Without `scope` a client gets its
/// default_scopes and is told so; a client with none is granted nothing, and the member is
/// left out rather than sent as `""`.
async fn client_credentials_answers_the_scope_granted(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let cases: [(&str, Option<&str>, Option<&str>); 4] = [
        ("service", None, Some("api.read")),
        ("service", Some("api.write"), Some("api.write")),
        (
            "service",
            Some("api.read api.write"),
            Some("api.read api.write"),
        ),
        ("service-es", None, None),
    ];
    for (client, asked, granted) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = asked {
            form.push(("scope", s));
        }
        let r = app.token_basic(client, SERVICE_SECRET, &form).await;
        assert_eq!(r.status(), 200, "{client} {asked:?}");
        let t = json(r).await;
        match granted {
            Some(g) => assert_eq!(t["scope"], g, "{client} {asked:?}: {t}"),
            None => assert!(t.get("scope").is_none(), "{client} {asked:?}: {t}"),
        }
        // Introspection says the same (RFC 7662 section 2.2): the scopes, or no member.
        let token = t["access_token"].as_str().expect("token");
        let i = json(
            app.http
                .post(app.url("/introspect"))
                .basic_auth("rs", Some(RS_SECRET))
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send()
                .await
                .expect("introspect"),
        )
        .await;
        assert_eq!(i["active"], true, "{i}");
        match granted {
            Some(g) => assert_eq!(i["scope"], g, "{client} {asked:?}: {i}"),
            None => assert!(i.get("scope").is_none(), "{client} {asked:?}: {i}"),
        }
    }
}

crate::both_stores!(
    client_credentials_answers_the_scope_granted,
    client_cache_lets_changes_in_at_once_and_shuts_out_on_reload,
    client_cache_off_means_every_change_bites_at_once,
    refresh_under_more_concurrency_than_pooled_connections,
    client_credentials_revoke_introspect_with_oauth2_crate,
    client_credentials_errors,
    invalid_client_reveals_nothing,
    password_grant_and_refresh_revocation,
    password_grant_errors_and_lockout,
);
