//! `hpl-runtime`: the part of hpl that ships inside the Helm agent on every device.
//!
//! It depends on neither the compiler nor the language server; the compiler depends on it
//! (it uses the same version schemes and the same device-facts schema, so what the compiler
//! accepts is exactly what the runtime can evaluate).
//!
//! Today this crate holds:
//! - [`version`]: the per-manager version schemes and version constraints;
//! - [`facts`]: the schema of the device facts that `when` conditions can read;
//! - [`package`]: package identity (name normalization per scheme).
//!
//! Bundle loading, verification and evaluation arrive with the bundle format.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod config;
pub mod device;
pub mod enforce;
pub mod eval;
pub mod events;
pub mod facts;
pub mod inventory;
pub mod load;
pub mod package;
pub mod precedence;
pub mod record;
pub mod store;
pub mod version;
pub mod vm;
pub mod vocab;
pub mod window;

#[cfg(test)]
mod tests {
    /// The agent shares a loaded bundle and inventories across threads.
    #[test]
    fn bundles_inventories_and_records_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::load::VerifiedBundle>();
        send_sync::<crate::inventory::Inventory>();
        send_sync::<crate::record::ComplianceRecord>();
        send_sync::<crate::load::LoadError>();
    }
}
