//! The hybrid flow (OIDC Core section 3.3), driven by the `openidconnect` crate as the
//! relying party: it builds the request, checks the ID tokens' signatures, nonce, c_hash and
//! at_hash, and redeems the code. Plain HTTP for every error path.

use std::str::FromStr;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, AuthorizationCodeHash, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, ResponseTypes, Scope, TokenResponse,
};
use reqwest::StatusCode;

use crate::browser::{form_fields, fragment_params, through_pages};
use crate::common::{Backend, HYBRID_SECRET, TestApp, WEB_REDIRECT, param};

const REDIRECT: &str = "http://localhost:3000/hybrid";
const PUBLIC_REDIRECT: &str = "http://localhost:3000/hybrid-public";

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The `hybrid` client, configured from discovery.
async fn relying_party(app: &TestApp) -> (Rp, CoreProviderMetadata) {
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.base.clone()).expect("issuer"),
        &crate::common::http_client(),
    )
    .await
    .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new("hybrid".into()),
        Some(ClientSecret::new(HYBRID_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    (rp, meta)
}

fn pairs(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn borrowed(q: &[(String, String)]) -> Vec<(&str, &str)> {
    q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Verify a front-channel ID token (signature, iss, aud, exp, nonce) and check its c_hash and
/// at_hash against what came with it, with the crate's own hash for the token's `alg`.
fn front_channel_claims(
    verifier: &CoreIdTokenVerifier<'_>,
    raw: &str,
    nonce: &Nonce,
    code: &str,
    access_token: Option<&str>,
) -> CoreIdTokenClaims {
    let id = CoreIdToken::from_str(raw).expect("an ID token");
    let claims = id
        .claims(verifier, nonce)
        .expect("signature, iss, aud, exp and nonce")
        .clone();
    let alg = id.signing_alg().expect("alg");
    let key = id.signing_key(verifier).expect("key");
    // OIDC Core section 3.3.2.11: c_hash is REQUIRED with a code.
    assert_eq!(
        claims.code_hash(),
        Some(
            &AuthorizationCodeHash::from_code(&AuthorizationCode::new(code.into()), alg, key)
                .expect("hash")
        ),
        "c_hash"
    );
    // ... and at_hash with an access token.
    match access_token {
        Some(at) => assert_eq!(
            claims.access_token_hash(),
            Some(
                &AccessTokenHash::from_token(&AccessToken::new(at.into()), alg, key).expect("hash")
            ),
            "at_hash"
        ),
        None => assert!(claims.access_token_hash().is_none()),
    }
    claims
}

/// `code id_token` with form_post and PKCE: the code and the ID token arrive in the POST
/// body; the code redeems for the same user's tokens, with a refresh token as in the code
/// flow.
async fn code_id_token_form_post(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (rp, meta) = relying_party(&app).await;
    // Discovery lists what /authorize accepts (OIDC Discovery section 3).
    let listed: Vec<ResponseTypes<CoreResponseType>> = meta.response_types_supported().clone();
    for hybrid in [
        vec![CoreResponseType::Code, CoreResponseType::IdToken],
        vec![CoreResponseType::Code, CoreResponseType::Token],
        vec![
            CoreResponseType::Code,
            CoreResponseType::IdToken,
            CoreResponseType::Token,
        ],
    ] {
        assert!(
            listed.contains(&ResponseTypes::new(hybrid.clone())),
            "{hybrid:?}"
        );
    }
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("response_mode", "form_post")
        .set_pkce_challenge(challenge)
        .url();
    let query = pairs(&url);
    assert_eq!(param(&query, "response_type"), Some("code id_token"));
    let done = through_pages(&app, &borrowed(&query), "alice").await;
    // Consent and login as in the code flow (they share authorize::proceed).
    assert_eq!(done.pages, ["login", "consent"]);
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains(&format!("action=\"{REDIRECT}\"")),
        "{}",
        done.body
    );
    let fields = form_fields(&done.body);
    assert_eq!(param(&fields, "state"), Some(csrf.secret().as_str()));
    assert_eq!(param(&fields, "iss"), Some(app.base.as_str()));
    assert!(param(&fields, "access_token").is_none(), "{fields:?}");
    let code = param(&fields, "code").expect("code").to_owned();
    let verifier = rp.id_token_verifier();
    let front = front_channel_claims(
        &verifier,
        param(&fields, "id_token").expect("id_token"),
        &nonce,
        &code,
        None,
    );

    let token = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(pkce_verifier)
        .request_async(&crate::common::http_client())
        .await
        .expect("the code redeems");
    let back = token
        .id_token()
        .expect("id_token")
        .claims(&verifier, &nonce)
        .expect("valid, same nonce");
    // OIDC Core section 3.3.3.6: iss and sub identical; the authentication event too.
    assert_eq!(back.issuer(), front.issuer());
    assert_eq!(back.subject(), front.subject());
    assert_eq!(back.auth_time(), front.auth_time());
    assert!(
        back.access_token_hash().is_some(),
        "at_hash as in the code flow"
    );
    assert!(token.refresh_token().is_some(), "offline_access");
    let info: CoreUserInfoClaims = rp
        .user_info(token.access_token().to_owned(), None)
        .expect("userinfo endpoint")
        .request_async(&crate::common::http_client())
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), front.subject());
}

/// `code id_token token` in the default fragment, with an EdDSA-signed ID token (whose
/// hashes use SHA-512): the front-channel access token works, belongs to the code's grant,
/// and stops working when the code is replayed (RFC 6749 section 4.1.2).
async fn code_id_token_token_in_fragment(b: Backend) {
    let Some(app) = TestApp::spawn_with(b, |c| {
        for client in c.clients.iter_mut().filter(|c| c.client_id == "hybrid") {
            client.id_token_signed_response_alg = Some(latchkey::oauth::types::SigningAlg::EdDsa);
        }
    })
    .await
    else {
        return;
    };
    let (rp, _) = relying_party(&app).await;
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![
                CoreResponseType::Token,
                CoreResponseType::IdToken,
                CoreResponseType::Code,
            ]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .url();
    let query = pairs(&url);
    // Any order of the values (Multiple Response Type Encoding Practices section 2).
    assert_eq!(param(&query, "response_type"), Some("token id_token code"));
    let done = through_pages(&app, &borrowed(&query), "alice").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let location = done.headers["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with(&format!("{REDIRECT}#")), "{location}");
    let frag = fragment_params(&done.headers);
    assert_eq!(param(&frag, "state"), Some(csrf.secret().as_str()));
    assert_eq!(param(&frag, "token_type"), Some("Bearer"));
    assert!(param(&frag, "expires_in").is_some());
    let code = param(&frag, "code").expect("code").to_owned();
    let at = param(&frag, "access_token")
        .expect("access_token")
        .to_owned();
    let verifier = rp.id_token_verifier();
    let raw_id = param(&frag, "id_token").expect("id_token");
    let front = front_channel_claims(&verifier, raw_id, &nonce, &code, Some(&at));
    assert_eq!(
        CoreIdToken::from_str(raw_id)
            .expect("id token")
            .signing_alg()
            .expect("alg"),
        &CoreJwsSigningAlgorithm::EdDsa
    );

    let info = |token: String| {
        let rp = &rp;
        async move {
            rp.user_info(AccessToken::new(token), None)
                .expect("userinfo endpoint")
                .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(
                    &crate::common::http_client(),
                )
                .await
        }
    };
    let me = info(at.clone()).await.expect("front-channel token works");
    assert_eq!(me.subject(), front.subject());

    let token = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .expect("token endpoint")
        .request_async(&crate::common::http_client())
        .await
        .expect("a confidential client without require_pkce may skip PKCE");
    let back = token
        .id_token()
        .expect("id_token")
        .claims(&verifier, &nonce)
        .expect("valid");
    assert_eq!(back.subject(), front.subject());
    assert_ne!(token.access_token().secret(), &at, "a new access token");

    // Replaying the code revokes its grant, the front-channel access token included.
    let replay = app
        .http
        .post(app.url("/token"))
        .basic_auth("hybrid", Some(HYBRID_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(crate::common::json(replay).await["error"], "invalid_grant");
    assert!(info(at).await.is_err(), "revoked with the code's grant");
}

/// `code token`: nonce is OPTIONAL (OIDC Core section 3.3.2.1) and no ID token comes from
/// the authorization endpoint; the one from the token endpoint names the same user as the
/// front-channel access token.
async fn code_token_needs_no_nonce(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let (rp, _) = relying_party(&app).await;
    let done = through_pages(
        &app,
        &[
            ("response_type", "code token"),
            ("client_id", "hybrid"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s-ct"),
        ],
        "alice",
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let frag = fragment_params(&done.headers);
    assert_eq!(param(&frag, "state"), Some("s-ct"));
    assert!(param(&frag, "id_token").is_none(), "{frag:?}");
    let at = param(&frag, "access_token")
        .expect("access_token")
        .to_owned();
    let code = param(&frag, "code").expect("code").to_owned();
    let token = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .request_async(&crate::common::http_client())
        .await
        .expect("redeemed");
    let verifier = rp.id_token_verifier();
    let back = token
        .id_token()
        .expect("id_token")
        .claims(&verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("no nonce was sent".to_owned()),
        })
        .expect("valid, without nonce");
    let me: CoreUserInfoClaims = rp
        .user_info(AccessToken::new(at), None)
        .expect("userinfo endpoint")
        .request_async(&crate::common::http_client())
        .await
        .expect("front-channel token works");
    assert_eq!(me.subject(), back.subject());
}

/// The error for `query` (with the given extra parameters) as the client would see it: the
/// parameters of its redirect in `where_` ("?" or "#").
async fn refused(
    app: &TestApp,
    query: &[(&str, &str)],
    where_: char,
) -> (String, String, Vec<(String, String)>) {
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(query)
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().expect("ascii").to_owned();
    let (_, rest) = loc
        .split_once(where_)
        .unwrap_or_else(|| panic!("no {where_} in {loc}"));
    let params: Vec<(String, String)> = url::form_urlencoded::parse(rest.as_bytes())
        .into_owned()
        .collect();
    assert!(param(&params, "code").is_none(), "{loc}");
    assert!(param(&params, "id_token").is_none(), "{loc}");
    assert!(param(&params, "access_token").is_none(), "{loc}");
    let error = param(&params, "error").expect("error").to_owned();
    let description = param(&params, "error_description")
        .unwrap_or_default()
        .to_owned();
    (error, description, params)
}

async fn hybrid_errors(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let with = |rt: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut q = vec![
            ("response_type", rt),
            ("client_id", "hybrid"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ];
        q.extend_from_slice(extra);
        q
    };
    // nonce is REQUIRED with a front-channel ID token (OIDC Core section 3.3.2.1); the
    // error goes in the fragment, the default mode.
    for rt in ["code id_token", "code id_token token"] {
        let (e, d, p) = refused(&app, &with(rt, &[]), '#').await;
        assert_eq!(e, "invalid_request");
        assert!(d.contains("nonce") && d.contains("3.3.2.1"), "{d}");
        assert_eq!(param(&p, "state"), Some("s"));
        assert_eq!(param(&p, "iss"), Some(app.base.as_str()));
    }
    // Tokens never travel in the query: refused with the RFC error, in the query asked for.
    for rt in ["code id_token", "code token", "code id_token token"] {
        let (e, d, _) = refused(
            &app,
            &with(rt, &[("nonce", "n"), ("response_mode", "query")]),
            '?',
        )
        .await;
        assert_eq!(e, "invalid_request", "{rt}");
        assert!(d.contains("response_mode=query"), "{d}");
    }
    // Missing nonce through form_post: the error is posted back.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&with("code id_token", &[("response_mode", "form_post")]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::OK);
    let fields = form_fields(&r.text().await.expect("html"));
    assert_eq!(param(&fields, "error"), Some("invalid_request"));
    assert_eq!(param(&fields, "state"), Some("s"));
    // The hybrid types are OpenID Connect: no `openid`, no front-channel token.
    let (e, _, _) = refused(
        &app,
        &[
            ("response_type", "code token"),
            ("client_id", "hybrid"),
            ("redirect_uri", REDIRECT),
            ("scope", "email"),
        ],
        '#',
    )
    .await;
    assert_eq!(e, "invalid_scope");
    // An unknown combination is unsupported_response_type.
    let (e, _, _) = refused(&app, &with("code id_token none", &[("nonce", "n")]), '?').await;
    assert_eq!(e, "unsupported_response_type");
    // prompt=none without a session: login_required, as in the code flow.
    let (e, _, _) = refused(
        &app,
        &with("code id_token", &[("nonce", "n"), ("prompt", "none")]),
        '#',
    )
    .await;
    assert_eq!(e, "login_required");

    // Clients not registered for the response type: `web` has only authorization_code,
    // `implicit` only implicit, and `hybrid-public` lists `code id_token` alone.
    for (client, redirect, rt) in [
        ("web", WEB_REDIRECT, "code id_token"),
        (
            "implicit",
            "http://localhost:3000/implicit",
            "code id_token",
        ),
        ("hybrid-public", PUBLIC_REDIRECT, "code id_token token"),
        ("hybrid-public", PUBLIC_REDIRECT, "code token"),
    ] {
        let (e, d, _) = refused(
            &app,
            &[
                ("response_type", rt),
                ("client_id", client),
                ("redirect_uri", redirect),
                ("scope", "openid"),
                ("nonce", "n"),
                ("code_challenge", crate::flows::CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
            '#',
        )
        .await;
        assert_eq!(e, "unauthorized_client", "{client} {rt}");
        assert!(d.contains(rt), "{d}");
    }

    // A public client with require_pkce needs a code_challenge for its hybrid code.
    let public = |extra: &[(&'static str, &'static str)]| {
        let mut q = vec![
            ("response_type", "id_token code"),
            ("client_id", "hybrid-public"),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("scope", "openid"),
            ("nonce", "n"),
        ];
        q.extend_from_slice(extra);
        q
    };
    let (e, d, _) = refused(&app, &public(&[]), '#').await;
    assert_eq!(e, "invalid_request");
    assert!(d.contains("PKCE"), "{d}");
    let (e, _, _) = refused(
        &app,
        &public(&[
            ("code_challenge", crate::flows::VERIFIER),
            ("code_challenge_method", "plain"),
        ]),
        '#',
    )
    .await;
    assert_eq!(e, "invalid_request", "plain is not allowed for this client");
    // With S256 the request goes on to the login page.
    let r = app
        .http
        .get(app.url("/authorize"))
        .query(&public(&[
            ("code_challenge", crate::flows::CHALLENGE),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("html").contains("action=\"/login\""));
}

/// The code from a public client's hybrid request redeems only with its PKCE verifier, as
/// in the code flow (RFC 7636 section 4.6).
async fn public_hybrid_code_needs_its_verifier(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else {
        return;
    };
    let code = || async {
        let done = through_pages(
            &app,
            &[
                ("response_type", "code id_token"),
                ("response_mode", "form_post"),
                ("client_id", "hybrid-public"),
                ("redirect_uri", PUBLIC_REDIRECT),
                ("scope", "openid profile"),
                ("nonce", "n-pub"),
                ("code_challenge", crate::flows::CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
            "alice",
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        let fields = form_fields(&done.body);
        let id = param(&fields, "id_token").expect("id_token").to_owned();
        (param(&fields, "code").expect("code").to_owned(), id)
    };
    let redeem = |code: String, verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", "hybrid-public"),
            ("redirect_uri", PUBLIC_REDIRECT),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let app = &app;
        async move {
            let mut form: Vec<(&str, &str)> = form;
            form.push(("code", &code));
            crate::common::json(
                app.http
                    .post(app.url("/token"))
                    .form(&form)
                    .send()
                    .await
                    .expect("token"),
            )
            .await
        }
    };
    let (first, _) = code().await;
    let body = redeem(first, None).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("code_verifier")),
        "{body}"
    );
    // The session and consent are remembered: no pages the second time.
    let (second, front) = code().await;
    let body = redeem(second, Some(crate::flows::VERIFIER)).await;
    let back = body["id_token"].as_str().expect("id_token");
    let sub = |t: &str| {
        use base64::Engine;
        let payload = t.split('.').nth(1).expect("payload");
        let v: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("b64"),
        )
        .expect("json");
        v["sub"].as_str().expect("sub").to_owned()
    };
    assert_eq!(sub(back), sub(&front));
    assert!(body["access_token"].is_string());
}

crate::both_stores!(
    code_id_token_form_post,
    code_id_token_token_in_fragment,
    code_token_needs_no_nonce,
    hybrid_errors,
    public_hybrid_code_needs_its_verifier,
);
