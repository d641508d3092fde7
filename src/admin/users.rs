//! Users: added with a password hashed here; the ones the config file owns ([[users]]) can be
//! looked at and signed out, not changed.

use super::{Admin, AdminError, AdminResult};
use crate::core::audit::AuditKind;
use crate::crypto::password::hash_default;
use crate::model::{AuditEvent, Factor, Source, User, UserClaims};
use crate::store::users::NewUser;

/// The shortest password accepted, here and on the account page.
pub use crate::core::account::MIN_PASSWORD_LEN;

/// One user, when the account was created (Unix seconds; 0 when unknown), and its second
/// factors (never their secrets).
#[derive(Debug)]
pub struct UserDetails {
    pub user: User,
    pub created_at: i64,
    pub factors: Vec<Factor>,
}

fn hash_password(password: &str) -> AdminResult<String> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(AdminError::ShortPassword);
    }
    Ok(hash_default(password)?)
}

impl Admin<'_> {
    /// Add a user; returns its `sub`.
    pub async fn add_user(
        &self,
        username: &str,
        password: &str,
        claims: &UserClaims,
    ) -> AdminResult<String> {
        let hash = hash_password(password)?;
        self.store
            .insert_user(
                NewUser {
                    username,
                    password_hash: &hash,
                    claims,
                    source: Source::Cli,
                },
                self.now(),
            )
            .await?
            .ok_or_else(|| AdminError::UserExists(username.to_owned()))
    }

    pub async fn users(&self) -> AdminResult<Vec<User>> {
        Ok(self.store.list_users().await?)
    }

    /// The user an admin named, by username or email.
    pub async fn user(&self, login: &str) -> AdminResult<User> {
        self.store
            .find_user_by_login(login)
            .await?
            .ok_or_else(|| AdminError::NoUser(login.to_owned()))
    }

    pub async fn user_details(&self, login: &str) -> AdminResult<UserDetails> {
        let user = self.user(login).await?;
        let created_at = self
            .store
            .user_created_at(&user.id)
            .await?
            .unwrap_or_default();
        let factors = self.store.factors(&user.id).await?;
        Ok(UserDetails {
            user,
            created_at,
            factors,
        })
    }

    /// The named user, unless the config file owns it: the file is applied at every start,
    /// so a change made here would be silently undone at the next one. Callers check this
    /// before asking for a password that would be refused.
    pub async fn user_to_change(&self, login: &str) -> AdminResult<User> {
        let user = self.user(login).await?;
        if user.source == Source::Config {
            return Err(AdminError::ConfigUser {
                username: user.username,
                config_path: self.config_path.to_owned(),
            });
        }
        Ok(user)
    }

    /// Set a new password. Unless `keep_sessions`, the user is signed out everywhere and
    /// every token they hold is revoked: a changed password is how an account is taken back.
    pub async fn set_password(
        &self,
        login: &str,
        password: &str,
        keep_sessions: bool,
    ) -> AdminResult<()> {
        let user = self.user_to_change(login).await?;
        let hash = hash_password(password)?;
        self.store
            .set_user_password(&user.id, &hash, !keep_sessions, self.now())
            .await?;
        Ok(())
    }

    /// Disabling revokes every session and token now; enabling brings none of them back.
    pub async fn set_user_disabled(&self, login: &str, disabled: bool) -> AdminResult<()> {
        let user = self.user_to_change(login).await?;
        self.store
            .set_user_disabled(&user.id, disabled, self.now())
            .await?;
        Ok(())
    }

    /// Sign the user out everywhere and revoke every grant and token (config users too:
    /// this changes no account).
    pub async fn revoke_sessions(&self, login: &str) -> AdminResult<()> {
        let user = self.user(login).await?;
        self.store.revoke_user(&user.id, self.now()).await?;
        Ok(())
    }

    /// Revoke everything the user holds, then delete it and its consents. Returns the
    /// removed user (its `sub` is never reused).
    pub async fn remove_user(&self, login: &str) -> AdminResult<User> {
        let user = self.user_to_change(login).await?;
        self.store.remove_user(&user.id, self.now()).await?;
        Ok(user)
    }

    /// Remove every second factor and recovery code of the user (config users too: a lost
    /// phone is not the config's business), so they sign in with the password alone and can
    /// set up a new app. Their sessions stay. How many factors were removed.
    pub async fn reset_mfa(&self, login: &str) -> AdminResult<(User, u64)> {
        let user = self.user(login).await?;
        let removed = self.store.reset_factors(&user.id).await?;
        if removed > 0 {
            self.store
                .audit(
                    &AuditEvent {
                        kind: AuditKind::MfaRemoved.as_str(),
                        user_id: Some(&user.id),
                        client_id: None,
                        ip: None,
                        detail: serde_json::json!({"by": "admin", "factors": removed}),
                    },
                    self.now(),
                )
                .await?;
        }
        Ok((user, removed))
    }
}
