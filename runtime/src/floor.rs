//! The built-in safety floor: what the runtime itself knows, whatever a bundle says.
//!
//! OS updates, Xcode Command Line Tools, Rosetta and firmware are guarded actions: every
//! mutating action on them needs explicit confirmation, in every mode (DESIGN §3). A bundle is
//! data signed by a key, and a key can be stolen or misused; so this list is code, not data. A
//! bundle whose manager table calls one of these managers unguarded is rejected at load, and
//! authorization consults this list as well as the bundle.

/// Manager ids whose actions are always guarded.
pub const GUARDED_MANAGERS: &[&str] = &[
    "softwareupdate",
    "xcode_command_line_tools",
    "rosetta2",
    "firmware_updates",
];

/// Whether the runtime's own floor guards this manager.
pub fn is_guarded(manager_id: &str) -> bool {
    GUARDED_MANAGERS.contains(&manager_id)
}
