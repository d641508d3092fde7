//! The consent form's answer (OIDC Core §3.1.2.4), and the stored authorization requests
//! ("interactions") that the login and consent forms continue.

use std::net::IpAddr;
use std::sync::Arc;

use crate::core::Core;
use crate::core::audit::{AuditKind, audit};
use crate::core::authorize::{self, AuthorizationRequest};
use crate::crypto::secret::hash_token;
use crate::model::{Client, Session, User};
use crate::oauth::error::{OAuthError, OAuthResult};
use crate::oauth::redirect::Delivery;

/// A pending authorization request named by a login or consent form.
pub struct Pending {
    /// The interaction id as the form carried it.
    pub id: String,
    pub request: AuthorizationRequest,
    pub client: Arc<Client>,
}

/// The request a form's `interaction` names, while it is unexpired and its client still
/// enabled. Reading it does not use it up: a login form that fails is shown again.
pub async fn pending(core: &Core, id: &str, now: i64) -> OAuthResult<Option<Pending>> {
    let Some(json) = core.store.get_interaction(&hash_token(id), now).await? else {
        return Ok(None);
    };
    let request: AuthorizationRequest =
        serde_json::from_str(&json).map_err(OAuthError::internal)?;
    let Some(client) = core
        .clients
        .get(&request.client_id)
        .await?
        .filter(|c| c.enabled)
    else {
        return Ok(None);
    };
    Ok(Some(Pending {
        id: id.to_owned(),
        request,
        client,
    }))
}

/// What the consent form came to.
pub enum Answered {
    /// The form was already answered, or its interaction expired: nothing happened.
    Expired,
    /// Send the browser back to the client with this: the code or tokens, `access_denied`
    /// for a refusal, or any error met while issuing (after the form is used up, errors go
    /// to the client, RFC 6749 §4.1.2.1).
    Return(OAuthResult<Delivery>),
}

/// The signed-in `user` allowed (`allow`) or denied the request `p` in `session`. The
/// interaction is used up first, so a replayed form finds nothing; an allowed request's
/// scopes are remembered for this client, then issued.
pub async fn answer(
    core: &Core,
    p: &Pending,
    session: &Session,
    user: &User,
    allow: bool,
    ip: IpAddr,
    now: i64,
) -> OAuthResult<Answered> {
    if core
        .store
        .take_interaction(&hash_token(&p.id), now)
        .await?
        .is_none()
    {
        return Ok(Answered::Expired);
    }
    let (req, client) = (&p.request, &p.client);
    let kind = if allow {
        AuditKind::ConsentGranted
    } else {
        AuditKind::ConsentDenied
    };
    audit(core, kind, Some(&user.id), Some(&client.id), Some(ip), now).await;
    if !allow {
        let ret = req.return_to(core.tokens.issuer());
        return Ok(Answered::Return(Ok(ret.error(&OAuthError::access_denied(
            "the user denied the request",
        )))));
    }
    Ok(Answered::Return(grant(core, p, session, user, now).await))
}

/// Remember the consent (so the page is not shown again for these scopes), then issue.
async fn grant(
    core: &Core,
    p: &Pending,
    session: &Session,
    user: &User,
    now: i64,
) -> OAuthResult<Delivery> {
    core.store
        .add_consent(&user.id, &p.client.id, &p.request.scope, now)
        .await?;
    authorize::issue(core, &p.request, &p.client, session, user, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;
    use crate::oauth::types::ScopeSet;
    use crate::testing::{Fixture, NOW, WEB_REDIRECT, delivered};

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn form() -> String {
        format!(
            "client_id=web&response_type=code&redirect_uri={WEB_REDIRECT}&scope=openid+email&state=st-1"
        )
    }

    /// A stored interaction for `form()`, as the authorization endpoint leaves it before the
    /// consent page; its id.
    async fn interaction(f: &Fixture) -> String {
        let (req, client) = f.request(&form()).await;
        let id = crate::crypto::secret::new_token();
        f.core
            .store
            .insert_interaction(
                &hash_token(&id),
                &client.id,
                &serde_json::to_string(&req).unwrap_or_else(|e| panic!("{e}")),
                NOW,
                f.core.config.sessions.interaction_ttl,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        id
    }

    async fn pending_at(f: &Fixture, id: &str, at: i64) -> Pending {
        pending(&f.core, id, at)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("no pending interaction {id}"))
    }

    /// The delivery of an answer that must go back to the client.
    fn returned(a: Answered) -> Delivery {
        match a {
            Answered::Return(Ok(d)) => d,
            Answered::Return(Err(e)) => panic!("error {e:?}"),
            Answered::Expired => panic!("expired"),
        }
    }

    #[tokio::test]
    async fn allowing_issues_a_code_and_remembers_the_consent() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let id = interaction(&f).await;
        let p = pending_at(&f, &id, NOW + 1).await;
        let d = returned(
            answer(&f.core, &p, &session, &alice, true, IP, NOW + 2)
                .await
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert_eq!(delivered(&d, "state").as_deref(), Some("st-1"));
        assert_eq!(delivered(&d, "error"), None, "{d:?}");
        let code = delivered(&d, "code").unwrap_or_else(|| panic!("no code in {d:?}"));
        let consent = f
            .core
            .store
            .get_consent(&alice.id, "web")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(consent, ScopeSet::parse("openid email").unwrap_or_default());
        // The code is a real one.
        let t = f
            .token(
                "web",
                &format!("grant_type=authorization_code&code={code}&redirect_uri={WEB_REDIRECT}"),
                NOW + 3,
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.scope.as_deref(), Some("email openid"));
    }

    #[tokio::test]
    async fn denying_delivers_access_denied_and_remembers_nothing() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let id = interaction(&f).await;
        let p = pending_at(&f, &id, NOW + 1).await;
        let d = returned(
            answer(&f.core, &p, &session, &alice, false, IP, NOW + 2)
                .await
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert_eq!(
            delivered(&d, "error").as_deref(),
            Some(ErrorCode::AccessDenied.as_str())
        );
        assert_eq!(delivered(&d, "state").as_deref(), Some("st-1"));
        assert_eq!(delivered(&d, "code"), None);
        assert!(
            matches!(&d, Delivery::Redirect(url) if url.starts_with(WEB_REDIRECT)),
            "{d:?}"
        );
        let consent = f
            .core
            .store
            .get_consent(&alice.id, "web")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(consent.is_empty(), "{consent:?}");
    }

    #[tokio::test]
    async fn an_interaction_answers_once() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let id = interaction(&f).await;
        let p = pending_at(&f, &id, NOW + 1).await;
        // Reading it does not use it up.
        pending_at(&f, &id, NOW + 1).await;
        returned(
            answer(&f.core, &p, &session, &alice, true, IP, NOW + 2)
                .await
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        // A replayed form (or a second tab) changes nothing, not even to a refusal.
        for allow in [true, false] {
            let again = answer(&f.core, &p, &session, &alice, allow, IP, NOW + 3)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert!(matches!(again, Answered::Expired));
        }
        let gone = pending(&f.core, &id, NOW + 3)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(gone.is_none());
    }

    #[tokio::test]
    async fn an_expired_interaction_or_disabled_client_is_not_pending() {
        let f = Fixture::new().await;
        let alice = f.user("alice").await;
        let session = f.session(&alice, NOW).await;
        let id = interaction(&f).await;
        let p = pending_at(&f, &id, NOW + 1).await;
        let ttl = f.core.config.sessions.interaction_ttl;
        let late = pending(&f.core, &id, NOW + ttl)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(late.is_none());
        // A form kept open past the expiry is not answered.
        let a = answer(&f.core, &p, &session, &alice, true, IP, NOW + ttl)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(a, Answered::Expired));

        let id = interaction(&f).await;
        f.set_client_enabled("web", false).await;
        let gone = pending(&f.core, &id, NOW + 1)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(gone.is_none());
        assert!(
            pending(&f.core, "no-such-interaction", NOW)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"))
                .is_none()
        );
    }
}
