//! The store contract, run on both backends: atomic single use, expiry by the passed `now`,
//! hashes only, revocation through grant families.

use latchkey::core::login::throttle_policy;
use latchkey::crypto::secret::{hash_token, new_token};
use latchkey::model::{
    CodeData, CodeLookup, CodeRedemption, CodeRefusal, DeviceStatus, FactorKind, GrantData,
    PendingLogin, PendingPurpose, Session,
};
use latchkey::oauth::pkce;
use latchkey::oauth::types::ScopeSet;
use latchkey::store::Store;
use latchkey::store::backchannel::Finish;
use latchkey::store::device::NewDevice;
use latchkey::store::factors::{NewFactor, Removal};
use latchkey::store::grants::{NewFamily, NewGrant, NewRefresh};
use latchkey::store::passkeys::{Ceremony, CeremonyKind, MAX_CEREMONIES_PER_USER, NewPasskey};
use latchkey::store::throttle::{Admission, Outcome};

use crate::common::{Backend, TestStore};

fn code_data() -> CodeData {
    CodeData {
        redirect_uri: "http://localhost/cb".into(),
        redirect_uri_sent: true,
        code_challenge: None,
        code_challenge_method: None,
        nonce: None,
        grant: GrantData {
            scope: ScopeSet::from_scopes(["openid"]),
            ..GrantData::default()
        },
    }
}

async fn codes_are_single_use_and_expire(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let code = new_token();
    store
        .insert_code(
            &hash_token(&code),
            "g1",
            "web",
            "u1",
            &code_data(),
            now,
            now + 60,
        )
        .await
        .expect("insert");
    // Concurrent redemptions: exactly one wins.
    let h = hash_token(&code);
    assert!(matches!(
        store.peek_code(&h, now + 1).await.expect("peek"),
        CodeLookup::Redeemable(row) if row.grant_id == "g1"
    ));
    let (a, b2) = tokio::join!(store.burn_code(&h, now + 1), store.burn_code(&h, now + 1));
    let wins = [a.expect("a"), b2.expect("b")]
        .iter()
        .filter(|won| **won)
        .count();
    assert_eq!(wins, 1);
    assert!(
        matches!(store.peek_code(&hash_token(&code), now + 2).await.expect("c"), CodeLookup::Refused(CodeRefusal::AlreadyUsed { grant_id, issued: false }) if grant_id == "g1")
    );
    assert!(!store.burn_code(&h, now + 2).await.expect("again"));
    let code2 = new_token();
    store
        .insert_code(
            &hash_token(&code2),
            "g2",
            "web",
            "u1",
            &code_data(),
            now,
            now + 60,
        )
        .await
        .expect("insert");
    assert!(matches!(
        store
            .peek_code(&hash_token(&code2), now + 60)
            .await
            .expect("d"),
        CodeLookup::Refused(CodeRefusal::Expired)
    ));
    assert!(
        !store
            .burn_code(&hash_token(&code2), now + 60)
            .await
            .expect("expired")
    );
    assert!(matches!(
        store.peek_code("nope", now).await.expect("e"),
        CodeLookup::Refused(CodeRefusal::Unknown)
    ));
}

/// A grant family as a redemption records it, with `refresh` as its first refresh token.
fn family<'a>(grant_id: &'a str, refresh: &'a str, data: &'a GrantData, now: i64) -> NewFamily<'a> {
    NewFamily {
        grant: NewGrant {
            id: grant_id,
            client_id: "web",
            user_id: Some("u1"),
            sid: None,
            expires_at: now + 100,
            offline_access: false,
        },
        refresh: NewRefresh {
            token_hash: refresh,
            grant_id,
            client_id: "web",
            user_id: Some("u1"),
            data,
            expires_at: now + 50,
            family_expires_at: now + 100,
        },
    }
}

async fn insert_code(store: &Store, grant_id: &str, data: &CodeData, now: i64) -> String {
    let hash = hash_token(&new_token());
    store
        .insert_code(&hash, grant_id, "web", "u1", data, now, now + 60)
        .await
        .expect("insert code");
    hash
}

async fn refresh_stored(store: &Store, hash: &str) -> bool {
    store.get_refresh(hash).await.expect("get").is_some()
}

/// Redeeming a code uses it up and records its grant family in one step: of concurrent
/// redemptions exactly one wins and only its family is stored; a second redemption is told
/// the grant (to revoke it); an expired or unknown code records nothing; a code burnt by a
/// failed check says nothing was issued.
async fn code_redemption_is_atomic_and_reports_the_grant(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let data = GrantData::default();

    // Eight at once, each with its own minted refresh token: one wins.
    let code = insert_code(store, "g1", &code_data(), now).await;
    let refreshes: Vec<String> = (0..8).map(|_| hash_token(&new_token())).collect();
    let tasks: Vec<_> = refreshes
        .iter()
        .cloned()
        .map(|refresh| {
            let (store, code, data) = (store.clone(), code.clone(), data.clone());
            tokio::spawn(async move {
                let f = family("g1", &refresh, &data, now);
                store.redeem_code(&code, now + 1, Some(&f)).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("join").expect("redeem"));
    }
    let wins = outcomes
        .iter()
        .filter(|o| **o == CodeRedemption::Redeemed)
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    let used = CodeRedemption::Refused(CodeRefusal::AlreadyUsed {
        grant_id: "g1".into(),
        issued: true,
    });
    assert!(
        outcomes
            .iter()
            .all(|o| *o == CodeRedemption::Redeemed || *o == used),
        "{outcomes:?}"
    );
    // Only the winner's family was written.
    let mut stored = 0;
    for (refresh, outcome) in refreshes.iter().zip(&outcomes) {
        let is_stored = refresh_stored(store, refresh).await;
        assert_eq!(is_stored, *outcome == CodeRedemption::Redeemed);
        stored += usize::from(is_stored);
    }
    assert_eq!(stored, 1);

    // A second redemption, later: refused, with the grant to revoke; nothing written.
    let late = hash_token(&new_token());
    let f = family("g1", &late, &data, now);
    assert_eq!(
        store
            .redeem_code(&code, now + 2, Some(&f))
            .await
            .expect("again"),
        used
    );
    assert!(!refresh_stored(store, &late).await);
    assert!(!store.burn_code(&code, now + 2).await.expect("burn"));

    // Expiry is judged by the `now` passed in.
    let expiring = insert_code(store, "g2", &code_data(), now).await;
    let f = family("g2", &late, &data, now);
    assert_eq!(
        store
            .redeem_code(&expiring, now + 60, Some(&f))
            .await
            .expect("expired"),
        CodeRedemption::Refused(CodeRefusal::Expired)
    );
    assert!(!refresh_stored(store, &late).await);
    assert_eq!(
        store
            .redeem_code(&expiring, now + 59, None)
            .await
            .expect("in time"),
        CodeRedemption::Redeemed,
        "a code without a refresh token is redeemed with no family"
    );
    assert!(matches!(
        store.peek_code(&expiring, now + 59).await.expect("peek"),
        CodeLookup::Refused(CodeRefusal::AlreadyUsed { grant_id, issued: true }) if grant_id == "g2"
    ));

    assert_eq!(
        store
            .redeem_code("nope", now, Some(&f))
            .await
            .expect("unknown"),
        CodeRedemption::Refused(CodeRefusal::Unknown)
    );
    assert!(!refresh_stored(store, &late).await);

    // Burnt by a failed check: nothing was issued, so there is no grant to revoke.
    let burnt = insert_code(store, "g3", &code_data(), now).await;
    assert!(store.burn_code(&burnt, now + 1).await.expect("burn"));
    assert_eq!(
        store
            .redeem_code(&burnt, now + 2, Some(&f))
            .await
            .expect("burnt"),
        CodeRedemption::Refused(CodeRefusal::AlreadyUsed {
            grant_id: "g3".into(),
            issued: false
        })
    );
    assert!(!refresh_stored(store, &late).await);

    // The PKCE method reads back as stored.
    let pkce_data = CodeData {
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some(pkce::Method::S256),
        ..code_data()
    };
    let with_pkce = insert_code(store, "g4", &pkce_data, now).await;
    assert!(matches!(
        store.peek_code(&with_pkce, now + 1).await.expect("peek"),
        CodeLookup::Redeemable(row) if row.data.code_challenge_method == Some(pkce::Method::S256)
    ));
}

/// Redeeming an approved device authorization: exactly one of concurrent polls wins and only
/// its family is stored; a pending, denied, redeemed or unknown one records nothing.
async fn device_redemption_is_atomic(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let data = GrantData::default();
    let scope = ScopeSet::from_scopes(["openid"]);
    let device = |hash: &'static str, user_code: &'static str| NewDevice {
        device_code_hash: hash,
        user_code,
        client_id: "web",
        scope: &scope,
        scope_order: &[],
        interval_secs: 5,
        expires_at: now + 600,
    };
    for (hash, user_code) in [
        ("d1", "AAAA-BBBB"),
        ("d2", "CCCC-DDDD"),
        ("d3", "EEEE-FFFF"),
    ] {
        assert!(
            store
                .insert_device(&device(hash, user_code), now)
                .await
                .expect("insert")
        );
    }
    let refresh = hash_token(&new_token());
    let f = family("gd", &refresh, &data, now);
    // Pending: nothing to redeem yet.
    assert!(
        !store
            .redeem_device("d1", now + 1, Some(&f))
            .await
            .expect("pending")
    );
    assert!(!refresh_stored(store, &refresh).await);
    // Denied: never.
    assert!(
        store
            .decide_device("CCCC-DDDD", "u1", None, now + 1)
            .await
            .expect("deny")
    );
    assert!(
        !store
            .redeem_device("d2", now + 2, Some(&f))
            .await
            .expect("denied")
    );
    assert!(!refresh_stored(store, &refresh).await);
    assert!(
        !store
            .redeem_device("nope", now + 2, Some(&f))
            .await
            .expect("unknown")
    );

    assert!(
        store
            .decide_device("AAAA-BBBB", "u1", Some(&data), now + 1)
            .await
            .expect("approve")
    );
    let refreshes: Vec<String> = (0..8).map(|_| hash_token(&new_token())).collect();
    let tasks: Vec<_> = refreshes
        .iter()
        .cloned()
        .map(|refresh| {
            let (store, data) = (store.clone(), data.clone());
            tokio::spawn(async move {
                let f = family("gd", &refresh, &data, now);
                store.redeem_device("d1", now + 2, Some(&f)).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.push(t.await.expect("join").expect("redeem"));
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    for (refresh, won) in refreshes.iter().zip(&won) {
        assert_eq!(refresh_stored(store, refresh).await, *won);
    }
    assert_eq!(
        store
            .device_by_code_hash("d1")
            .await
            .expect("get")
            .expect("row")
            .status,
        DeviceStatus::Consumed
    );
    assert!(
        !store
            .redeem_device("d1", now + 3, Some(&f))
            .await
            .expect("again")
    );
    assert!(!refresh_stored(store, &refresh).await);

    // Approved, and redeemed without a refresh token: consumed, no family.
    assert!(
        store
            .decide_device("EEEE-FFFF", "u1", Some(&data), now + 1)
            .await
            .expect("approve")
    );
    assert!(
        store
            .redeem_device("d3", now + 2, None)
            .await
            .expect("no family")
    );
    assert!(
        !store
            .redeem_device("d3", now + 2, None)
            .await
            .expect("again")
    );
}

async fn revoked(store: &Store, jti: &str, grant_id: &str) -> bool {
    store
        .access_token_state(jti, grant_id, None)
        .await
        .expect("check")
        .0
}

async fn grant_revocation_reaches_refresh_and_access_tokens(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let data = GrantData::default();
    let hash = hash_token(&new_token());
    store
        .record_grant(
            &NewFamily {
                grant: NewGrant {
                    id: "g",
                    client_id: "web",
                    user_id: Some("u"),
                    sid: Some("s"),
                    expires_at: now + 100,
                    offline_access: false,
                },
                refresh: NewRefresh {
                    token_hash: &hash,
                    grant_id: "g",
                    client_id: "web",
                    user_id: Some("u"),
                    data: &data,
                    expires_at: now + 50,
                    family_expires_at: now + 100,
                },
            },
            now,
        )
        .await
        .expect("insert");
    assert!(
        !store
            .get_refresh(&hash)
            .await
            .expect("get")
            .expect("row")
            .grant_revoked
    );
    assert!(!revoked(store, "jti", "g").await);
    assert_eq!(
        store
            .revoke_grants_of_session("s", now)
            .await
            .expect("revoke"),
        1
    );
    assert!(
        store
            .get_refresh(&hash)
            .await
            .expect("get")
            .expect("row")
            .grant_revoked
    );
    assert!(revoked(store, "jti", "g").await);
    // A grant never recorded (no refresh token) can still be revoked, idempotently.
    store
        .revoke_grant("other", "web", now, now + 10)
        .await
        .expect("revoke");
    store
        .revoke_grant("other", "web", now, now + 10)
        .await
        .expect("again");
    assert!(revoked(store, "x", "other").await);
    store.revoke_jti("j2", now + 10).await.expect("jti");
    assert!(revoked(store, "j2", "none").await);
    // The janitor purges what has expired, in batches.
    let purged = store.purge_expired(now + 1000, 1, 0).await.expect("purge");
    assert!(purged.deleted.iter().map(|(_, n)| n).sum::<u64>() >= 3);
    assert!(store.get_refresh(&hash).await.expect("get").is_none());
}

async fn throttles_admit_exactly_the_limit(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let p = throttle_policy(&app.config.login, 3, 1);
    let lockout = app.config.login.lockout_seconds;
    let now = 5_000;
    let failed = |attempt, strikes| Outcome::Failed { attempt, strikes };
    let first = store.throttle_begin("k", now, &p, 30).await.expect("1");
    assert_eq!(
        first,
        Admission::Admitted {
            attempt: 1,
            strikes: 0
        }
    );
    // One in flight per key: a second attempt is refused while the first is checked, and
    // is not counted.
    assert_eq!(
        store.throttle_begin("k", now, &p, 30).await.expect("busy"),
        Admission::Busy
    );
    assert_eq!(
        store
            .throttle_end("k", now, &p, failed(1, 0))
            .await
            .expect("end"),
        None
    );
    for n in 2..=3 {
        let a = store.throttle_begin("k", now, &p, 30).await.expect("begin");
        assert_eq!(
            a,
            Admission::Admitted {
                attempt: n,
                strikes: 0
            }
        );
        let lock = store
            .throttle_end("k", now, &p, failed(n, 0))
            .await
            .expect("end");
        assert_eq!(lock, (n == 3).then_some(now + lockout));
    }
    let until = now + lockout;
    assert_eq!(
        store
            .throttle_begin("k", now, &p, 30)
            .await
            .expect("locked"),
        Admission::Locked { until }
    );
    // When the lockout ends, one more attempt; its failure locks for twice as long.
    let a = store
        .throttle_begin("k", until, &p, 30)
        .await
        .expect("after");
    assert_eq!(
        a,
        Admission::Admitted {
            attempt: 3,
            strikes: 1
        }
    );
    assert_eq!(
        store
            .throttle_end("k", until, &p, failed(3, 1))
            .await
            .expect("end"),
        Some(until + 2 * lockout)
    );
    // A success clears the key.
    let later = until + 2 * lockout;
    assert!(matches!(
        store
            .throttle_begin("k", later, &p, 30)
            .await
            .expect("begin"),
        Admission::Admitted { .. }
    ));
    store
        .throttle_end("k", later, &p, Outcome::Clear)
        .await
        .expect("clear");
    assert_eq!(
        store
            .throttle_begin("k", later, &p, 30)
            .await
            .expect("fresh"),
        Admission::Admitted {
            attempt: 1,
            strikes: 0
        }
    );

    // 100 attempts at once, with room for all of them in flight: exactly the limit is
    // admitted, on any backend.
    let wide = latchkey::store::ThrottlePolicy {
        max_in_flight: 1000,
        ..throttle_policy(&app.config.login, 5, 1)
    };
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.throttle_begin("wide", now, &wide, 30).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if matches!(
            t.await.expect("join").expect("begin"),
            Admission::Admitted { .. }
        ) {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
}

/// Introspection and userinfo read revocation and the user in one query.
async fn access_token_state_reads_revocation_and_user_together(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("find")
        .expect("alice");
    let (revoked, user) = store
        .access_token_state("j", "g", Some(&alice.id))
        .await
        .expect("state");
    assert!(!revoked);
    let user = user.expect("the user comes back with the revocation check");
    assert_eq!(user.username, "alice");
    assert_eq!(user.claims, alice.claims);
    store.revoke_jti("j", 10_000_000).await.expect("revoke");
    let (revoked, user) = store
        .access_token_state("j", "g", Some("no-such-user"))
        .await
        .expect("state");
    assert!(revoked);
    assert!(user.is_none(), "an unknown user is None, and still one row");
    let (revoked, user) = store
        .access_token_state("other", "g", None)
        .await
        .expect("state");
    assert!(!revoked && user.is_none());
}

/// Back-channel logouts: armed only in a live session, queued by the end of the session,
/// claimed by exactly one of two concurrent claimers, finished only by the latest claim, and
/// purged only once finished.
async fn backchannel_logouts_are_claimed_once(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = latchkey::clock::Clock::System.now();
    let alice = store
        .find_user_by_login("alice")
        .await
        .expect("user")
        .expect("alice");
    store
        .insert_session(&Session {
            id_hash: "h1".into(),
            sid: "s1".into(),
            user_id: alice.id.clone(),
            auth_time: now,
            amr: vec!["pwd".into()],
            created_at: now,
            last_seen_at: now,
            expires_at: now + 3600,
            mfa_at: None,
            ip: None,
            user_agent: None,
        })
        .await
        .expect("session");
    for client in ["web", "web", "spa"] {
        assert!(
            store
                .remember_logged_in_client("s1", client, now)
                .await
                .expect("arm")
        );
    }
    let armed = store
        .backchannel_logout_state("s1", "web")
        .await
        .expect("state")
        .expect("armed once");
    assert_eq!((armed.due_at, armed.next_attempt_at), (None, None));
    // Nothing is due while the session lives.
    assert!(
        store
            .claim_backchannel_logouts(now, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    assert_eq!(
        store
            .end_session("h1", now, false)
            .await
            .expect("end")
            .as_deref(),
        Some("s1")
    );
    assert!(
        !store
            .remember_logged_in_client("s1", "first-party", now)
            .await
            .expect("arm"),
        "an ended session signs no one in"
    );
    let (x, y) = tokio::join!(
        store.claim_backchannel_logouts(now, 60, 10),
        store.claim_backchannel_logouts(now, 60, 10)
    );
    let (x, y) = (x.expect("x"), y.expect("y"));
    assert_eq!(x.len() + y.len(), 2, "{x:?} {y:?}");
    let mut all: Vec<_> = x.into_iter().chain(y).collect();
    all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    assert_eq!(all[0].client_id, "spa");
    assert_eq!(all[1].client_id, "web");
    assert!(
        all.iter()
            .all(|d| d.attempt == 1 && d.user_id == alice.id && d.sid == "s1")
    );
    // Held for the lease; after it, claimed again, and the first holder can no longer
    // finish it.
    assert!(
        store
            .claim_backchannel_logouts(now + 59, 60, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let again = store
        .claim_backchannel_logouts(now + 60, 60, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 2);
    let web = all.pop().expect("web");
    assert!(
        !store
            .finish_backchannel_logout(&web, Finish::Delivered, now + 61, 100)
            .await
            .expect("finish")
    );
    let web2 = again.iter().find(|d| d.client_id == "web").expect("web");
    assert_eq!(web2.attempt, 2);
    assert!(
        store
            .finish_backchannel_logout(web2, Finish::Delivered, now + 61, 100)
            .await
            .expect("finish")
    );
    // Past the session's end and the retention, the janitor purges the finished delivery and
    // keeps the one still pending.
    app.store
        .purge_expired(now + 4000, 1000, 0)
        .await
        .expect("purge");
    assert!(
        store
            .backchannel_logout_state("s1", "web")
            .await
            .expect("state")
            .is_none()
    );
    assert!(
        store
            .backchannel_logout_state("s1", "spa")
            .await
            .expect("state")
            .is_some_and(|s| s.next_attempt_at.is_some())
    );
}

/// An authenticator app enrolled for `user_id` (unconfirmed until `expires_at`). The store
/// never opens the secret, so any text stands in for a sealed one.
async fn enrol(store: &Store, id: &str, user_id: &str, now: i64, expires_at: i64) {
    store
        .insert_factor(&NewFactor {
            id,
            user_id,
            kind: FactorKind::Totp,
            name: "Authenticator app",
            secret_enc: Some("sealed"),
            created_at: now,
            expires_at,
        })
        .await
        .expect("insert factor");
}

/// Enrolled and confirmed by a code of `step`.
async fn confirmed(store: &Store, id: &str, user_id: &str, step: i64, now: i64) {
    enrol(store, id, user_id, now, now + 600).await;
    assert!(
        store
            .confirm_totp(id, user_id, step, now)
            .await
            .expect("confirm")
    );
}

/// A TOTP step is accepted once, and never after a later one (RFC 6238 section 5.2): the
/// `UPDATE` that records it is the check, so of two concurrent uses of one code one wins.
async fn totp_steps_are_accepted_once_and_in_order(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    enrol(store, "f1", "u1", now, now + 600).await;
    assert!(
        !store.accept_totp_step("f1", 5, now).await.expect("accept"),
        "an enrolment signs no one in before its first code"
    );
    assert!(
        store
            .confirm_totp("f1", "u1", 10, now)
            .await
            .expect("confirm")
    );
    // The confirming code is used up by the confirmation.
    assert!(!store.accept_totp_step("f1", 10, now).await.expect("again"));
    assert!(
        store
            .accept_totp_step("f1", 11, now + 1)
            .await
            .expect("next")
    );
    assert!(
        !store
            .accept_totp_step("f1", 11, now + 2)
            .await
            .expect("replay")
    );
    assert!(
        !store
            .accept_totp_step("f1", 10, now + 2)
            .await
            .expect("older")
    );
    assert!(
        store
            .accept_totp_step("f1", 12, now + 3)
            .await
            .expect("later")
    );
    let row = store.confirmed_totp("u1").await.expect("row").expect("f1");
    assert_eq!(row.last_step, 12);
    let listed = store.factors("u1").await.expect("factors");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(now + 3));
    assert!(
        !store
            .accept_totp_step("nope", 13, now)
            .await
            .expect("unknown")
    );

    // One code typed in two browsers at once: one sign-in.
    for step in 100..120 {
        let (x, y) = tokio::join!(
            tokio::spawn({
                let store = store.clone();
                async move { store.accept_totp_step("f1", step, now).await }
            }),
            tokio::spawn({
                let store = store.clone();
                async move { store.accept_totp_step("f1", step, now).await }
            })
        );
        let won = [x.expect("join").expect("x"), y.expect("join").expect("y")];
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "step {step}: {won:?}"
        );
    }
}

/// Confirming an enrolment: once, in time, by its own user, and only while the account has
/// no authenticator app (one per account, also when two confirmations race).
async fn totp_confirmation_is_single_and_one_per_account(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    enrol(store, "f1", "u1", now, now + 600).await;
    assert!(
        !store
            .confirm_totp("f1", "u2", 1, now)
            .await
            .expect("other user"),
        "a user cannot confirm someone else's enrolment"
    );
    assert!(
        !store
            .confirm_totp("f1", "u1", 1, now + 600)
            .await
            .expect("lapsed"),
        "expiry is at expires_at"
    );
    assert!(
        store
            .confirm_totp("f1", "u1", 1, now + 599)
            .await
            .expect("in time")
    );
    assert!(
        !store
            .confirm_totp("f1", "u1", 2, now + 599)
            .await
            .expect("again")
    );
    assert!(
        store
            .unconfirmed_totp("f1", "u1", now)
            .await
            .expect("get")
            .is_none()
    );

    // A second app for the same account stays an enrolment.
    enrol(store, "f2", "u1", now, now + 600).await;
    assert!(
        !store
            .confirm_totp("f2", "u1", 3, now)
            .await
            .expect("second app")
    );
    assert!(
        store
            .unconfirmed_totp("f2", "u1", now)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store
            .confirmed_totp("u1")
            .await
            .expect("row")
            .expect("f1")
            .id,
        "f1"
    );
    assert_eq!(store.factors("u1").await.expect("factors").len(), 1);

    // Two enrolments confirmed at once: both can pass the NOT EXISTS check before either
    // writes, and then the unique index decides; the loser is told false, not an error.
    for round in 0..20 {
        let user = format!("racer{round}");
        let (a, z) = (format!("{user}-a"), format!("{user}-z"));
        enrol(store, &a, &user, now, now + 600).await;
        enrol(store, &z, &user, now, now + 600).await;
        let confirm = |id: String| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.confirm_totp(&id, &user, 1, now).await })
        };
        let (x, y) = tokio::join!(confirm(a.clone()), confirm(z.clone()));
        let won = [x.expect("join").expect("x"), y.expect("join").expect("y")];
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
        let winner = if won[0] { &a } else { &z };
        assert_eq!(
            &store
                .confirmed_totp(&user)
                .await
                .expect("row")
                .expect("one")
                .id,
            winner
        );
    }
}

/// Recovery codes are stored as hashes, each good once, and a new set voids the old one.
async fn recovery_codes_are_single_use_and_replaced_whole(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let codes: Vec<String> = (0..4).map(|_| new_token()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| hash_token(c)).collect();
    store
        .replace_recovery_codes("u1", &hashes, now)
        .await
        .expect("replace");
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 4);
    assert!(
        store
            .use_recovery_code("u1", &hashes[0], now)
            .await
            .expect("use")
    );
    assert!(
        !store
            .use_recovery_code("u1", &hashes[0], now)
            .await
            .expect("reuse")
    );
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 3);
    // What the user types is not what is stored.
    assert!(
        !store
            .use_recovery_code("u1", &codes[1], now)
            .await
            .expect("plain")
    );
    assert!(
        !store
            .use_recovery_code("u2", &hashes[1], now)
            .await
            .expect("other user"),
        "a code is good for its own account only"
    );
    assert_eq!(store.recovery_codes_left("u2").await.expect("left"), 0);

    let fresh: Vec<String> = (0..2).map(|_| hash_token(&new_token())).collect();
    store
        .replace_recovery_codes("u1", &fresh, now + 1)
        .await
        .expect("replace");
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 2);
    assert!(
        !store
            .use_recovery_code("u1", &hashes[1], now + 1)
            .await
            .expect("old")
    );
    assert!(
        store
            .use_recovery_code("u1", &fresh[1], now + 1)
            .await
            .expect("new")
    );
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 1);

    // Used from two browsers at once: once.
    let (x, y) = tokio::join!(
        store.use_recovery_code("u1", &fresh[0], now + 2),
        store.use_recovery_code("u1", &fresh[0], now + 2)
    );
    assert_ne!(x.expect("x"), y.expect("y"));
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 0);
}

/// Removing factors: only the user's own; recovery codes go with the last confirmed factor
/// (they would be a second factor for an account without one); an admin's reset clears
/// factors, codes and sign-ins waiting for a code, of that user only.
async fn removing_factors_takes_their_recovery_codes(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let codes = |n: usize| -> Vec<String> { (0..n).map(|_| hash_token(&new_token())).collect() };
    confirmed(store, "f1", "u1", 1, now).await;
    enrol(store, "f2", "u1", now, now + 600).await;
    store
        .replace_recovery_codes("u1", &codes(3), now)
        .await
        .expect("codes");
    assert_eq!(
        store
            .remove_factor("u2", "f1", false)
            .await
            .expect("other user"),
        Removal::Gone,
        "someone else's factor is not removed"
    );
    assert!(store.has_factor("u1").await.expect("has"));
    // An enrolment goes alone while a confirmed factor remains.
    assert_eq!(
        store
            .remove_factor("u1", "f2", true)
            .await
            .expect("enrolment"),
        Removal::Removed
    );
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 3);
    // Where the server requires a second factor, the last one stays, with its codes.
    assert_eq!(
        store.remove_factor("u1", "f1", true).await.expect("kept"),
        Removal::LastOne
    );
    assert!(store.has_factor("u1").await.expect("has"));
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 3);
    assert_eq!(
        store.remove_factor("u1", "f1", false).await.expect("last"),
        Removal::Removed
    );
    assert!(!store.has_factor("u1").await.expect("has"));
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 0);
    assert_eq!(
        store.remove_factor("u1", "f1", false).await.expect("again"),
        Removal::Gone
    );

    // Reset: u1 with everything, u2 alongside to be left alone.
    confirmed(store, "f3", "u1", 1, now).await;
    enrol(store, "f4", "u1", now, now + 600).await;
    confirmed(store, "f5", "u2", 1, now).await;
    store
        .replace_recovery_codes("u1", &codes(2), now)
        .await
        .expect("codes");
    store
        .replace_recovery_codes("u2", &codes(2), now)
        .await
        .expect("codes");
    store
        .insert_pending_login("p1", &pending("u1", now + 300), now)
        .await
        .expect("pending");
    store
        .insert_pending_login("p2", &pending("u2", now + 300), now)
        .await
        .expect("pending");
    assert_eq!(store.reset_factors("u1").await.expect("reset"), 1);
    assert!(store.factors("u1").await.expect("factors").is_empty());
    assert!(
        store
            .unconfirmed_totp("f4", "u1", now)
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(store.recovery_codes_left("u1").await.expect("left"), 0);
    assert!(
        store
            .get_pending_login("p1", now)
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.has_factor("u2").await.expect("has"));
    assert_eq!(store.recovery_codes_left("u2").await.expect("left"), 2);
    assert!(
        store
            .get_pending_login("p2", now)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(store.reset_factors("u1").await.expect("again"), 0);
}

fn pending(user_id: &str, expires_at: i64) -> PendingLogin {
    PendingLogin {
        user_id: user_id.into(),
        purpose: PendingPurpose::Authorize,
        interaction: Some("i1".into()),
        sid: Some("s1".into()),
        amr: vec!["pwd".into()],
        auth_time: expires_at - 300,
        expires_at,
    }
}

/// A sign-in waiting for its second factor is read as often as a wrong code is typed, taken
/// by the first right one only, and neither read nor taken from its expiry on.
async fn pending_logins_are_taken_once_before_expiry(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    store
        .insert_pending_login("p1", &pending("u1", now + 300), now)
        .await
        .expect("insert");
    for _ in 0..2 {
        let p = store
            .get_pending_login("p1", now)
            .await
            .expect("get")
            .expect("live");
        assert_eq!(p.user_id, "u1");
        assert_eq!(p.purpose, PendingPurpose::Authorize);
        assert_eq!(p.interaction.as_deref(), Some("i1"));
        assert_eq!(p.sid.as_deref(), Some("s1"));
        assert_eq!(p.amr, ["pwd"]);
        assert_eq!((p.auth_time, p.expires_at), (now, now + 300));
    }
    let taken = store.take_pending_login("p1", now + 1).await.expect("take");
    assert_eq!(taken.expect("first take").user_id, "u1");
    assert!(
        store
            .take_pending_login("p1", now + 1)
            .await
            .expect("again")
            .is_none()
    );
    assert!(
        store
            .get_pending_login("p1", now + 1)
            .await
            .expect("get")
            .is_none()
    );

    for round in 0..10 {
        let id = format!("race{round}");
        store
            .insert_pending_login(&id, &pending("u1", now + 300), now)
            .await
            .expect("insert");
        let take = || {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.take_pending_login(&id, now).await })
        };
        let (x, y) = tokio::join!(take(), take());
        let (x, y) = (x.expect("join").expect("x"), y.expect("join").expect("y"));
        assert_eq!(
            usize::from(x.is_some()) + usize::from(y.is_some()),
            1,
            "round {round}"
        );
    }

    store
        .insert_pending_login("p2", &pending("u1", now + 10), now)
        .await
        .expect("insert");
    assert!(
        store
            .get_pending_login("p2", now + 10)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .take_pending_login("p2", now + 10)
            .await
            .expect("take")
            .is_none()
    );
    assert!(
        store
            .take_pending_login("p2", now + 11)
            .await
            .expect("take")
            .is_none()
    );
    // Refused at expiry, not consumed: it was there all along.
    assert!(
        store
            .take_pending_login("p2", now + 9)
            .await
            .expect("take")
            .is_some()
    );
}

/// The janitor drops sign-ins and enrolments at their expiry, and never a confirmed factor,
/// however old.
async fn the_janitor_purges_lapsed_enrolments_but_no_confirmed_factor(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    confirmed(store, "kept", "u1", 1, now).await;
    enrol(store, "lapsed", "u2", now, now + 60).await;
    enrol(store, "lapsed2", "u3", now, now + 100).await;
    enrol(store, "live", "u4", now, now + 101).await;
    for (id, expires_at) in [
        ("gone", now + 60),
        ("gone2", now + 100),
        ("alive", now + 101),
    ] {
        store
            .insert_pending_login(id, &pending("u1", expires_at), now)
            .await
            .expect("pending");
    }
    // The reuse grace of codes and tokens does not apply: nothing reads these after expiry.
    let purged = store
        .purge_expired(now + 100, 1, 10_000)
        .await
        .expect("purge");
    let deleted = |table: &str| {
        purged
            .deleted
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, n)| *n)
    };
    assert_eq!(deleted("mfa_factors"), Some(2));
    assert_eq!(deleted("pending_logins"), Some(2));
    assert!(
        store
            .unconfirmed_totp("live", "u4", now)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .get_pending_login("alive", now)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .get_pending_login("gone2", now)
            .await
            .expect("get")
            .is_none()
    );

    let purged = store
        .purge_expired(now + 100_000_000, 1000, 0)
        .await
        .expect("purge");
    assert!(purged.deleted.contains(&("mfa_factors", 1)));
    assert_eq!(
        store
            .confirmed_totp("u1")
            .await
            .expect("row")
            .expect("kept")
            .id,
        "kept"
    );
    assert!(store.has_factor("u1").await.expect("has"));
}

/// A passkey ceremony is taken once, by its kind, while it lives; an account keeps a few of
/// each kind; a credential is registered to one account only.
async fn passkey_ceremonies_are_taken_once(b: Backend) {
    let Some(app) = TestStore::new(b).await else {
        return;
    };
    let store = &app.store;
    let now = 1_000_000;
    let ceremony = |user: &str, kind: CeremonyKind| Ceremony {
        kind,
        user_id: user.to_owned(),
        bound: hash_token("pending"),
        name: Some("Laptop".into()),
        state: "{}".into(),
        expires_at: now + 600,
    };
    store
        .insert_ceremony("c1", &ceremony("u1", CeremonyKind::Register), now)
        .await
        .expect("insert");
    let take = |id: &'static str, kind, at| async move {
        store.take_ceremony(id, kind, at).await.expect("take")
    };
    assert!(
        take("c1", CeremonyKind::SecondFactor, now).await.is_none(),
        "another kind"
    );
    let taken = take("c1", CeremonyKind::Register, now)
        .await
        .expect("taken");
    assert_eq!(taken.user_id, "u1");
    assert_eq!(taken.name.as_deref(), Some("Laptop"));
    assert!(
        take("c1", CeremonyKind::Register, now).await.is_none(),
        "once"
    );
    // Expired.
    store
        .insert_ceremony("c2", &ceremony("u1", CeremonyKind::SecondFactor), now)
        .await
        .expect("insert");
    assert!(
        take("c2", CeremonyKind::SecondFactor, now + 600)
            .await
            .is_none()
    );
    // Raced: one of two takes wins.
    store
        .insert_ceremony("c3", &ceremony("u3", CeremonyKind::SecondFactor), now)
        .await
        .expect("insert");
    let (x, y) = tokio::join!(
        store.take_ceremony("c3", CeremonyKind::SecondFactor, now),
        store.take_ceremony("c3", CeremonyKind::SecondFactor, now)
    );
    assert_ne!(x.expect("x").is_some(), y.expect("y").is_some());
    // An account keeps the newest few of a kind.
    for i in 0..8 {
        let id = format!("s{i}");
        store
            .insert_ceremony(&id, &ceremony("u2", CeremonyKind::SecondFactor), now + i)
            .await
            .expect("insert");
    }
    let mut left = 0;
    for i in 0..8 {
        let id = format!("s{i}");
        if store
            .take_ceremony(&id, CeremonyKind::SecondFactor, now + 10)
            .await
            .expect("take")
            .is_some()
        {
            left += 1;
            assert!(i >= 3, "an old one stayed: {id}");
        }
    }
    assert_eq!(left, MAX_CEREMONIES_PER_USER);

    let passkey = |id: &'static str, user: &'static str| NewPasskey {
        id,
        user_id: user,
        name: "Laptop",
        credential_id: "cred-1",
        credential: "{}",
        discoverable: true,
        now,
    };
    assert!(
        store
            .insert_passkey(&passkey("p1", "u1"))
            .await
            .expect("insert")
    );
    assert!(
        !store
            .insert_passkey(&passkey("p2", "u2"))
            .await
            .expect("insert"),
        "a credential belongs to one account"
    );
    let found = store
        .passkey_by_credential("cred-1")
        .await
        .expect("find")
        .expect("found");
    assert_eq!((found.id.as_str(), found.user_id.as_str()), ("p1", "u1"));
    assert!(store.has_factor("u1").await.expect("has"));
    assert_eq!(store.passkeys("u1").await.expect("list").len(), 1);
    let listed = store.factors("u1").await.expect("factors");
    assert_eq!(listed[0].kind, FactorKind::Passkey);
    assert!(listed[0].discoverable);
    // A use is written back only over the credential it was checked against.
    let newer = "{\"counter\":2}";
    assert!(
        store
            .passkey_used("p1", "{}", Some(newer), now + 5)
            .await
            .expect("used")
    );
    assert!(
        !store
            .passkey_used("p1", "{}", Some("{\"counter\":1}"), now + 5)
            .await
            .expect("raced"),
        "a use checked against the old credential loses"
    );
    let found = store.passkey_by_credential("cred-1").await.expect("find");
    assert_eq!(found.map(|p| p.credential).as_deref(), Some(newer));
    // An app's setup started before this passkey was added (with the password alone) does
    // not finish after it: adding a factor to an account that has one asks for that one.
    enrol(store, "t-early", "u1", now - 10, now + 600).await;
    assert!(
        !store
            .confirm_totp("t-early", "u1", 1, now + 6)
            .await
            .expect("confirm")
    );
    enrol(store, "t-late", "u1", now + 7, now + 600).await;
    assert!(
        store
            .confirm_totp("t-late", "u1", 1, now + 8)
            .await
            .expect("confirm")
    );
    // A sign-in ceremony is spent once.
    assert!(store.spend_sign_in("t1", now + 600).await.expect("spend"));
    assert!(!store.spend_sign_in("t1", now + 600).await.expect("again"));
}

crate::both_stores!(
    backchannel_logouts_are_claimed_once,
    access_token_state_reads_revocation_and_user_together,
    codes_are_single_use_and_expire,
    code_redemption_is_atomic_and_reports_the_grant,
    device_redemption_is_atomic,
    grant_revocation_reaches_refresh_and_access_tokens,
    throttles_admit_exactly_the_limit,
    totp_steps_are_accepted_once_and_in_order,
    totp_confirmation_is_single_and_one_per_account,
    recovery_codes_are_single_use_and_replaced_whole,
    removing_factors_takes_their_recovery_codes,
    passkey_ceremonies_are_taken_once,
    pending_logins_are_taken_once_before_expiry,
    the_janitor_purges_lapsed_enrolments_but_no_confirmed_factor,
);
