//! argon2id for passwords and human-chosen client secrets, on a small pool of dedicated
//! threads.
//!
//! Each hash costs `argon2_memory_kib` of memory and tens of milliseconds of CPU. So:
//! - `max_concurrent_hashes` threads (default: one per core) do all the hashing, and a login
//!   burst queues for them
//!   instead of occupying the async workers that serve the token endpoint;
//! - each thread keeps its argon2 memory and reuses it, so a burst neither churns the
//!   allocator nor leaves one retained 19 MiB arena per short-lived blocking thread
//!   (the benchmark saw RSS reach 800 MB that way);
//! - the threads run at a lower scheduling priority (`login.hash_priority`, by default Linux
//!   SCHED_IDLE), so when the CPU is contended the token endpoint wins and logins wait. On an
//!   idle machine they still get a full core;
//! - the queue in front of them is bounded (`login.max_queued_hashes`): a flood is turned
//!   away as busy at once instead of growing memory and making every login wait behind it,
//!   and a job whose caller has gone is dropped unhashed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use serde::Deserialize;

/// How password hashing shares the CPU with token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashPriority {
    /// Linux SCHED_IDLE: hashing uses only CPU time nothing else wants, and any request
    /// that wakes up preempts it at once. Token latency stays flat during a login burst;
    /// logins slow down, to a crawl if token traffic alone saturates the CPU.
    Idle,
    /// nice 10: hashing gets about a tenth of a contended core and runs in whole time
    /// slices, so logins keep moving under token load and token p99 pays a few ms.
    Low,
    /// The same priority as everything else.
    Normal,
}

/// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
pub const OWASP_MEMORY_KIB: u32 = 19_456;
pub const OWASP_ITERATIONS: u32 = 2;

/// The pool's shape: the argon2 cost, how many hash at once, how many may wait, and at what
/// priority. Config's `[login]` section fills it in.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub threads: usize,
    /// Checks waiting for a thread before new ones are turned away as busy.
    pub queue: usize,
    pub priority: HashPriority,
}

impl Default for PoolSettings {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        PoolSettings {
            memory_kib: OWASP_MEMORY_KIB,
            iterations: OWASP_ITERATIONS,
            threads,
            queue: 8 * threads,
            priority: HashPriority::Idle,
        }
    }
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasherPool {
    params: Params,
    jobs: SyncSender<Job>,
    /// Jobs sent and not yet taken by a thread, and how many may wait.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// Verified against when the user does not exist, so that an unknown username costs
    /// the same time as a wrong password (no user enumeration by timing).
    dummy_hash: Arc<str>,
}

impl PasswordHasherPool {
    pub fn new(settings: &PoolSettings) -> anyhow::Result<Self> {
        let params = Params::new(settings.memory_kib, settings.iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = dummy_hash(&params);
        let capacity = settings.queue;
        let (jobs, rx) = sync_channel::<Job>(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..settings.threads {
            let rx = rx.clone();
            let queued = queued.clone();
            let priority = settings.priority;
            std::thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || worker(&rx, &queued, priority))?;
        }
        Ok(Self {
            params,
            jobs,
            queued,
            capacity,
            dummy_hash: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The request was dropped (its client hung up, or it timed out) while queued:
            // nobody would read the answer, so the CPU goes to someone who is waiting.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(f(memory));
        });
        self.queued.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.jobs.try_send(job) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(match e {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => HashError::Stopped,
            });
        }
        rx.await.map_err(|_| HashError::Stopped)
    }

    /// Whether new work would be turned away right now: callers check this before doing
    /// any other work for a request that needs a hash, so a flood is answered for nothing.
    pub fn is_full(&self) -> bool {
        self.queued.load(Ordering::SeqCst) >= self.capacity
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let params = self.params.clone();
        self.run(move |_| hash_with(&params, &password)).await?
    }

    /// Verify `password` against `hash`, or against the dummy hash when there is no user.
    /// Returns false for a malformed stored hash rather than failing the request.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy_hash.to_string(), false),
        };
        let ok = self
            .run(move |memory| verify_with_memory(&password, &hash, memory))
            .await?;
        Ok(ok && real)
    }
}

/// Why a hash was not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The queue is full: retry in a few seconds.
    #[error("every password hashing slot is taken")]
    Busy,
    #[error("the password hashing threads have stopped")]
    Stopped,
}

impl From<HashError> for crate::oauth::error::OAuthError {
    fn from(e: HashError) -> Self {
        match e {
            // RFC 6749 section 5.2 has no busy code for the token endpoint; 503 with
            // Retry-After (RFC 9110 section 10.2.3) is what HTTP says, and
            // temporarily_unavailable is the OAuth name for it (section 4.1.2.1).
            HashError::Busy => crate::oauth::error::OAuthError::busy(
                "The server is checking too many passwords right now; retry in a few seconds.",
                BUSY_RETRY_SECONDS,
            ),
            HashError::Stopped => crate::oauth::error::OAuthError::internal(e),
        }
    }
}

/// What a caller turned away as busy is told to wait.
pub const BUSY_RETRY_SECONDS: u64 = 2;

fn worker(rx: &Mutex<Receiver<Job>>, queued: &AtomicUsize, priority: HashPriority) {
    set_priority(priority);
    let mut memory = Vec::new();
    loop {
        // The lock is held only while waiting for a job, never while hashing.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                queued.fetch_sub(1, Ordering::SeqCst);
                job(&mut memory)
            }
            // The pool was dropped: no more work will come.
            Err(_) => return,
        }
    }
}

/// Applies to the calling thread only: Linux schedules threads, and both the policy and the
/// nice value are per thread. Lowering one's own priority needs no privilege; if it fails
/// anyway, hashing keeps the default priority.
fn set_priority(priority: HashPriority) {
    let result = match priority {
        HashPriority::Normal => return,
        // A SCHED_IDLE thread is preempted as soon as a normal one wakes up (the token
        // endpoint's worker); nice 10 only lowers its share, and under EEVDF a picked thread
        // keeps the core for its time slice, which showed as 3-4x the idle token p99.
        #[cfg(target_os = "linux")]
        HashPriority::Idle => {
            use thread_priority::{
                NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
                set_thread_priority_and_policy, thread_native_id,
            };
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            )
            .map_err(|e| format!("{e:?}"))
        }
        #[cfg(not(target_os = "linux"))]
        HashPriority::Idle => nice(10),
        HashPriority::Low => nice(10),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, ?priority, "could not lower the priority of a password hashing thread; it runs at normal priority");
    }
}

fn nice(n: i32) -> Result<(), String> {
    rustix::process::setpriority_process(None, n).map_err(|e| e.to_string())
}

/// A PHC string with these parameters that no password matches: random salt, random output.
/// Verifying against it costs exactly what verifying a real hash does, which is all it is
/// for (an unknown user takes as long as a wrong password). Made up rather than computed,
/// so start-up runs no argon2 and holds no argon2 memory.
fn dummy_hash(params: &Params) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut salt = [0u8; 16];
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    rand::fill(&mut salt);
    rand::fill(&mut output[..]);
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(&output)
    )
}

/// `verify_sync`, computing into the caller's reusable memory.
fn verify_with_memory(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.as_bytes().len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        )
        .is_ok()
        && super::secret::ct_eq(&out, expected.as_bytes())
}

pub fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = argon
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Verification reads the parameters from the PHC string itself.
pub fn verify_sync(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// argon2id at the OWASP parameters, for CLI use (`hash-secret`, `user add`).
pub fn hash_default(password: &str) -> anyhow::Result<String> {
    let params = Params::new(OWASP_MEMORY_KIB, OWASP_ITERATIONS, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    hash_with(&params, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_phc_string_with_our_parameters() {
        let params = Params::new(1024, 2, 1, None).expect("params");
        let dummy = dummy_hash(&params);
        let parsed = PasswordHash::new(&dummy).expect("parses");
        let read = Params::try_from(&parsed).expect("params");
        assert_eq!(
            (
                read.m_cost(),
                read.t_cost(),
                read.p_cost(),
                read.output_len()
            ),
            (1024, 2, 1, Some(Params::DEFAULT_OUTPUT_LEN))
        );
        assert_ne!(dummy, dummy_hash(&params), "random each time");
        let mut memory = Vec::new();
        assert!(!verify_with_memory("anything", &dummy, &mut memory));
        assert_eq!(
            memory.len(),
            params.block_count(),
            "a full argon2 run was made"
        );
    }

    #[tokio::test]
    async fn verifies_right_and_rejects_wrong_and_missing() {
        let pool = PasswordHasherPool::new(&PoolSettings::default()).expect("params");
        let h = pool.hash("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            pool.verify("correct horse".into(), Some(h.clone()))
                .await
                .expect("verify")
        );
        assert!(!pool.verify("wrong".into(), Some(h)).await.expect("verify"));
        assert!(!pool.verify("x".into(), None).await.expect("verify"));
        // The pooled path agrees with the crate's own verifier, including for hashes made
        // with other parameters (memory grows as needed and is reused).
        let other = hash_with(&Params::new(8192, 1, 1, None).expect("params"), "pw").expect("hash");
        let mut memory = Vec::new();
        assert!(verify_with_memory("pw", &other, &mut memory));
        assert!(verify_sync("pw", &other));
        assert!(!verify_with_memory("pW", &other, &mut memory));
        assert!(
            !pool
                .verify("x".into(), Some("garbage".into()))
                .await
                .expect("verify")
        );
    }

    /// A full queue turns new work away at once, and a job whose caller has gone is dropped
    /// without running.
    #[tokio::test]
    async fn the_queue_is_bounded_and_abandoned_jobs_are_dropped() {
        use std::sync::atomic::AtomicBool;
        let settings = PoolSettings {
            threads: 1,
            queue: 1,
            priority: HashPriority::Normal,
            ..PoolSettings::default()
        };
        let pool = PasswordHasherPool::new(&settings).expect("params");
        // Occupy the one thread until told to go on.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |_| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await
            }
        });
        started.await.expect("the thread took the first job");
        // One job fits in the queue; its caller gives up while it waits.
        let ran = Arc::new(AtomicBool::new(false));
        let queued = tokio::spawn({
            let (pool, ran) = (pool.clone(), ran.clone());
            async move { pool.run(move |_| ran.store(true, Ordering::SeqCst)).await }
        });
        for _ in 0..500 {
            if pool.is_full() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(
            pool.is_full(),
            "a queue of one with one job waiting is full"
        );
        assert_eq!(pool.run(|_| ()).await, Err(HashError::Busy));
        queued.abort();
        let _ = queued.await;
        go.send(()).expect("release");
        blocker.await.expect("join").expect("blocker ran");
        // The queue drains (the thread skips the abandoned job): new work runs again, and
        // the abandoned job never did.
        let mut ran_again = false;
        for _ in 0..500 {
            if pool.run(|_| ()).await.is_ok() {
                ran_again = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(ran_again);
        assert!(!ran.load(Ordering::SeqCst), "an abandoned job was hashed");
    }

    /// Only the hashing threads are deprioritised, not the process (the token endpoint):
    /// SCHED_IDLE by default, nice 10 with `hash_priority = "low"`.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn only_hashing_threads_run_at_lower_priority() {
        const SCHED_OTHER: i64 = 0;
        const SCHED_IDLE: i64 = 5;
        for (priority, want) in [
            (HashPriority::Idle, (SCHED_IDLE, 0)),
            (HashPriority::Low, (SCHED_OTHER, 10)),
        ] {
            let settings = PoolSettings {
                priority,
                threads: 2,
                ..PoolSettings::default()
            };
            let pool = PasswordHasherPool::new(&settings).expect("params");
            // Once a job has run, every worker has started; wait for all to say so.
            let _ = pool.verify("x".into(), None).await.expect("verify");
            let mut seen = Vec::new();
            for _ in 0..50 {
                seen = thread_priorities("latchkey-argon2");
                if seen.len() >= 2 && seen.iter().all(|p| *p == want) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(seen.contains(&want), "{priority:?}: {seen:?}");
            drop(pool);
        }
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        assert_eq!(
            priority_of(&stat),
            Some((SCHED_OTHER, 0)),
            "the calling thread keeps its priority"
        );
    }

    /// (scheduling policy, nice) of a thread, from its /proc stat line.
    #[cfg(target_os = "linux")]
    fn priority_of(stat: &str) -> Option<(i64, i64)> {
        // Fields after the parenthesised command name start at field 3: nice is field 19,
        // policy field 41.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
        Some((fields.get(38)?.parse().ok()?, fields.get(16)?.parse().ok()?))
    }

    #[cfg(target_os = "linux")]
    fn thread_priorities(name_prefix: &str) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
        {
            let dir = entry.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim().starts_with(name_prefix)
                && let Ok(stat) = std::fs::read_to_string(dir.join("stat"))
                && let Some(p) = priority_of(&stat)
            {
                out.push(p);
            }
        }
        out
    }
}
