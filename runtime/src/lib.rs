//! `hpl-runtime`: the part of hpl that ships inside the Helm agent on every device.
//!
//! It depends on neither the compiler nor the language server; the compiler depends on it
//! (it uses the same version schemes and the same device-facts schema, so what the compiler
//! accepts is exactly what the runtime can evaluate).
//!
//! The agent asks everything through [`device::Device`]: it applies the MDM configuration
//! ([`config`]) and the no-valid-snapshot rule, then evaluates ([`eval`]) or authorizes
//! ([`enforce`]). Both ask [`precedence`] who wins — the one implementation of DESIGN §3 that
//! the compiler's conflict analysis and the language server's hover use too. The rest:
//!
//! - [`vocab`]: the closed sets of names records, requests and bundles share (action, mode,
//!   phase, level, rule kind, pin kind, unknown reason…), with explicit wire values;
//! - [`bundle`] (the format), [`load`] (envelope, signatures, verifier: only it makes a
//!   [`load::VerifiedBundle`]), [`vm`] (the condition bytecode: opcode table, verifier,
//!   interpreter, disassembler);
//! - [`inventory`] (`hpl.inventory.v1`), [`record`] (`hpl.record.v1`), [`events`];
//! - [`store`] (the offline snapshot store), [`window`] (upgrade windows);
//! - [`protocol`]: the digest devices sign for control-plane requests;
//! - [`summary`]: the fleet aggregate of records that `hpl report` and `hpl-server report` share;
//! - [`version`], [`package`], [`facts`]: version schemes, package names, device facts —
//!   shared with the compiler, so what it accepts is what the runtime evaluates.
#![forbid(unsafe_code)]

pub mod audit_chain;
pub mod bundle;
pub mod config;
pub mod device;
pub mod enforce;
pub mod eval;
pub mod events;
pub mod facts;
pub mod floor;
pub mod inventory;
pub mod load;
pub mod manifest;
pub mod package;
pub mod precedence;
pub mod protocol;
pub mod record;
pub mod store;
pub mod summary;
pub mod trace;
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
        send_sync::<crate::device::Device>();
    }
}
