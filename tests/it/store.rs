//! The store contract, run on both backends: atomic single use, expiry by the passed `now`,
//! hashes only, revocation through grant families.

use latchkey::core::login::throttle_policy;
use latchkey::crypto::secret::{hash_token, new_token};
use latchkey::model::{
    CodeData, CodeLookup, CodeRedemption, CodeRefusal, DeviceStatus, GrantData, Session,
};
use latchkey::oauth::pkce;
use latchkey::oauth::types::ScopeSet;
use latchkey::store::Store;
use latchkey::store::backchannel::Finish;
use latchkey::store::device::NewDevice;
use latchkey::store::grants::{NewFamily, NewGrant, NewRefresh};
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

crate::both_stores!(
    backchannel_logouts_are_claimed_once,
    access_token_state_reads_revocation_and_user_together,
    codes_are_single_use_and_expire,
    code_redemption_is_atomic_and_reports_the_grant,
    device_redemption_is_atomic,
    grant_revocation_reaches_refresh_and_access_tokens,
    throttles_admit_exactly_the_limit
);
