//! Where each key is in its life: published ahead (next), signing (active), published for
//! what it signed (retired), or gone (expired). Every node computes the same states from the
//! same rows and the same clock, so a rotation needs no coordination.

use super::KeyRecord;

/// The key states shown by `latchkey keys list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// Classify every key of one store snapshot at `now`. `retire_after` is how long a superseded
/// key stays published: the longest lifetime of anything it signed.
pub fn classify(
    records: &[KeyRecord],
    now: i64,
    retire_after: i64,
) -> Vec<(KeyState, Option<i64>)> {
    records
        .iter()
        .map(|r| {
            if r.activates_at > now {
                return (KeyState::Next, None);
            }
            // Superseded when a newer key of the same alg has activated.
            let superseded_at = records
                .iter()
                .filter(|o| {
                    o.alg == r.alg && o.activates_at > r.activates_at && o.activates_at <= now
                })
                .map(|o| o.activates_at)
                .min();
            match superseded_at {
                None => (KeyState::Active, None),
                Some(t) if t + retire_after > now => (KeyState::Retired, Some(t + retire_after)),
                Some(t) => (KeyState::Expired, Some(t + retire_after)),
            }
        })
        .collect()
}
