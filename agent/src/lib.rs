//! `hpl-agent`: the device side of the control-plane protocol (DESIGN §1, §8), on the
//! runtime's device facade. Blocking HTTP (ureq), no async runtime.
//!
//! - [`identity`]: the device key (made at enrollment, kept in the store directory, mode 0600)
//!   and what enrollment returned (device id, tenant, ring);
//! - [`client`]: signed requests with timeouts, retries with backoff and full jitter, and a
//!   deadline per sync, so a control-plane failure never hangs the agent;
//! - [`outbox`]: records and events written to disk before they are sent and removed only when
//!   the server has acknowledged them — nothing is lost while offline;
//! - [`sync`]: one sync — fetch the ring manifest (one 304 when up to date) and the bundle it
//!   names, install into the snapshot store (`policy_applied` / `policy_rejected`), evaluate,
//!   queue, upload. With the server down it answers from the active snapshot and says so.
#![forbid(unsafe_code)]

pub mod client;
pub mod identity;
pub mod outbox;
pub mod sync;

pub use client::{Client, ClientError};
pub use identity::Identity;
pub use sync::{enroll, sync, SyncOptions, SyncReport};

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// 16 random bytes as hex (a request nonce).
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    // Without randomness there is no safe nonce; a fixed one would be refused as a replay.
    let _ = getrandom::fill(&mut b);
    hpl_runtime::load::hex(&b)
}
