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
