//! Issuing at the authorization endpoint: the code (RFC 6749 §4.1.2), the implicit tokens
//! (OIDC Core §3.2.2.5) or both (the hybrid flow, OIDC Core §3.3.2.5).

use crate::core::Core;
use crate::core::mfa;
use crate::core::tokens::FrontChannel;
use crate::crypto::secret::{hash_token, new_token};
use crate::model::{Client, CodeData, GrantData, Session, User};
use crate::oauth::acr::{Level, Requested};
use crate::oauth::error::{ErrorCode, OAuthError, OAuthResult};
use crate::oauth::redirect::Delivery;

use super::request::AuthorizationRequest;

/// Issue the code (RFC 6749 §4.1.2), the implicit tokens (OIDC Core §3.2.2.5), or both
/// (the hybrid flow, OIDC Core §3.3.2.5).
///
/// The code, and any access token issued here, belong to one grant id: a reused code
/// revokes that grant, and with it the front-channel access token too (RFC 6749 §4.1.2).
/// As in the code flow, nothing else is recorded: the grant family is written when the
/// code is redeemed for a refresh token.
///
/// For a form that continues a request (consent): the session is checked first against what
/// the request needs, since the decision showed the factor or setup page for a session that
/// falls short, and a form posted around that page must not issue anyway.
pub async fn issue(
    core: &Core,
    req: &AuthorizationRequest,
    client: &Client,
    session: &Session,
    user: &User,
    now: i64,
) -> OAuthResult<Delivery> {
    let ret = req.return_to(core.tokens.issuer());
    let requested = Requested::of(req.acr_values.as_deref(), req.claims.as_ref());
    match mfa::shortfall(core, client, &requested, session, user) {
        Ok(None) => issue_checked(core, req, client, &requested, session, user, now).await,
        Ok(Some(_)) => Ok(ret.error(&OAuthError::new(
            ErrorCode::InteractionRequired,
            "the request needs a second factor this session has not given",
        ))),
        Err(mfa::Unmet) => Ok(ret.error(&mfa::Unmet.error())),
    }
}

/// [`issue`] for the decision (`decide::proceed`), which has just checked the session
/// against what the request needs: the check is not made a second time on the hot path.
pub(super) async fn issue_checked(
    core: &Core,
    req: &AuthorizationRequest,
    client: &Client,
    requested: &Requested,
    session: &Session,
    user: &User,
    now: i64,
) -> OAuthResult<Delivery> {
    let ret = req.return_to(core.tokens.issuer());
    // Back-Channel Logout 1.0 section 2.3: the client is remembered before it gets anything
    // from this session, so a session that ends at any moment after still reaches it.
    if client.settings.backchannel_logout_uri.is_some()
        && !core
            .store
            .remember_logged_in_client(&session.sid, &client.id, now)
            .await?
    {
        return Ok(ret.error(&OAuthError::new(
            ErrorCode::LoginRequired,
            "the session ended while this request was being handled; sign in again",
        )));
    }
    let rt = req.response_type;
    let mut grant = GrantData::from_session(
        session,
        &req.scope,
        req.claims.clone(),
        req.acr_values.clone(),
    );
    // OIDC Core section 5.5.1.1: with an essential acr, the claim is one of its values.
    grant.acr = Some(
        requested
            .claim(Level::of_amr(&session.amr))
            .as_str()
            .to_owned(),
    );
    let grant_id = uuid::Uuid::new_v4().to_string();
    // Tokens are signed before the code is stored, so a signing failure leaves no code
    // behind that nobody received.
    let code = rt.has_code().then(new_token);
    let tokens = core.tokens.front_channel(
        &FrontChannel {
            client,
            user,
            grant_id: &grant_id,
            grant: &grant,
            nonce: req.nonce.as_deref(),
            code: code.as_deref(),
            access_token: rt.has_access_token(),
            id_token: rt.has_id_token(),
        },
        now,
    )?;
    let mut out = Vec::new();
    if let Some(code) = code {
        let data = CodeData {
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_sent: req.redirect_uri_sent,
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method,
            // OIDC Core §3.3.3.6: the token endpoint's ID token carries the same nonce.
            nonce: req.nonce.clone(),
            grant: grant.clone(),
        };
        core.store
            .insert_code(
                &hash_token(&code),
                &grant_id,
                &client.id,
                &user.id,
                &data,
                now,
                now + core.tokens.lifetimes().code_ttl,
            )
            .await?;
        out.push(("code".to_owned(), code));
    }
    out.extend(tokens);
    Ok(ret.success(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::jwt;
    use crate::oauth::types::SigningAlg;
    use crate::testing::{Fixture, NOW, WEB_REDIRECT, delivered, jwt_claims};

    /// What `issue` delivers at NOW for request `form`, in a session alice began at NOW - 10.
    async fn issued(f: &Fixture, form: &str) -> (Delivery, User, Session) {
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW - 10).await;
        let (req, client) = f.request(form).await;
        let d = issue(&f.core, &req, &client, &session, &alice, NOW)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        (d, alice, session)
    }

    fn param(d: &Delivery, name: &str) -> String {
        delivered(d, name).unwrap_or_else(|| panic!("no {name} in {d:?}"))
    }

    #[tokio::test]
    async fn code_is_stored_and_redeems() {
        let f = Fixture::new().await;
        let form = format!(
            "client_id=web&response_type=code&redirect_uri={WEB_REDIRECT}&scope=openid+email&state=st&nonce=nn"
        );
        let (d, alice, session) = issued(&f, &form).await;
        let Delivery::Redirect(url) = &d else {
            panic!("{d:?}")
        };
        assert!(url.starts_with(&format!("{WEB_REDIRECT}?code=")), "{url}");
        assert_eq!(param(&d, "state"), "st");
        assert_eq!(param(&d, "iss"), f.core.tokens.issuer());
        assert!(delivered(&d, "access_token").is_none() && delivered(&d, "id_token").is_none());
        let code = param(&d, "code");
        let resp = f
            .token(
                "web",
                &format!("grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}"),
                NOW + 1,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let id = jwt_claims(resp.id_token.as_deref().unwrap_or_default());
        assert_eq!(id["sub"], alice.id.as_str());
        assert_eq!(id["nonce"], "nn");
        assert_eq!(id["sid"], session.sid.as_str());
        assert_eq!(id["auth_time"], NOW - 10);
        assert_eq!(resp.scope.as_deref(), Some("email openid"));
        // Issued at NOW, so it lives code_ttl from then.
        let ttl = f.core.tokens.lifetimes().code_ttl;
        let (d, ..) = issued(&f, &form).await;
        let e = f
            .token_error(
                "web",
                &format!(
                    "grant_type=authorization_code&code={}&redirect_uri={WEB_REDIRECT}",
                    param(&d, "code")
                ),
                NOW + ttl,
            )
            .await;
        assert_eq!(e.code, crate::oauth::error::ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn id_token_token_delivers_both_bound_together_in_the_fragment() {
        let f = Fixture::new().await;
        let form = "client_id=implicit&response_type=id_token+token&scope=openid+profile&nonce=nn&state=st";
        let (d, alice, _) = issued(&f, form).await;
        let Delivery::Redirect(url) = &d else {
            panic!("{d:?}")
        };
        assert!(url.starts_with("http://localhost:3000/implicit#"), "{url}");
        assert!(delivered(&d, "code").is_none());
        let at = param(&d, "access_token");
        assert_eq!(param(&d, "token_type"), "Bearer");
        assert_eq!(
            param(&d, "expires_in"),
            f.core.tokens.lifetimes().access_token_ttl.to_string()
        );
        assert_eq!(param(&d, "scope"), "openid profile");
        assert_eq!(param(&d, "state"), "st");
        let access = jwt_claims(&at);
        assert_eq!(access["sub"], alice.id.as_str());
        assert_eq!(access["client_id"], "implicit");
        assert_eq!(
            access["exp"],
            NOW + f.core.tokens.lifetimes().access_token_ttl
        );
        let id = jwt_claims(&param(&d, "id_token"));
        assert_eq!(id["nonce"], "nn");
        assert_eq!(id["aud"], "implicit");
        assert_eq!(id["at_hash"], jwt::half_hash(SigningAlg::Rs256, &at));
        assert!(id.get("c_hash").is_none());
    }

    #[tokio::test]
    async fn a_bare_id_token_carries_the_scope_claims() {
        // OIDC Core §5.4: no access token to call userinfo with.
        let f = Fixture::with(|c| c.tokens.id_token_scope_claims = false).await;
        let form = "client_id=implicit&response_type=id_token&scope=openid+email&nonce=nn";
        let (d, ..) = issued(&f, form).await;
        assert!(delivered(&d, "access_token").is_none());
        let id = jwt_claims(&param(&d, "id_token"));
        assert_eq!(id["email"], "alice@example.com");
        assert!(id.get("at_hash").is_none());
        // With an access token, the server's setting (here: off) decides.
        let form = "client_id=implicit&response_type=id_token+token&scope=openid+email&nonce=nn";
        let (d, ..) = issued(&f, form).await;
        let id = jwt_claims(&param(&d, "id_token"));
        assert!(id.get("email").is_none(), "{id}");
    }

    #[tokio::test]
    async fn a_session_that_ended_gets_nothing_for_a_back_channel_client() {
        let f = Fixture::new().await;
        let mut web = (*f.client("web").await).clone();
        web.settings.backchannel_logout_uri = Some("https://app.example/logout".into());
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        f.core
            .store
            .end_session(&session.id_hash, NOW + 1, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (req, _) = f
            .request("client_id=web&response_type=code&scope=openid&state=st")
            .await;
        let d = issue(&f.core, &req, &web, &session, &alice, NOW + 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(param(&d, "error"), "login_required");
        assert!(delivered(&d, "code").is_none());
    }
}
