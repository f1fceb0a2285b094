//! Roles and permissions: the one permission matrix (docs/rbac.md) and the one function that
//! applies it. Every HTTP endpoint declares the [`Permission`] it needs
//! ([`crate::http::ENDPOINTS`]); the guard in front of them calls [`authorize`], and so do
//! the `hpl-server` administration commands. Nothing else decides who may do what.

use crate::error::ServerError;
use crate::Principal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An operator's role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including who has which role and how many approvals a change needs.
    Owner,
    /// Runs the rollout: configures rings and the gate, approves, and acts in emergencies.
    Admin,
    /// Reads everything, the audit trail included; changes nothing.
    Auditor,
    /// Publishes releases, requests promotions, pauses and rolls back.
    Operator,
    /// Reads rings, releases, metrics and devices.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Auditor,
        Role::Operator,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Rings, releases, health figures, thresholds and metrics.
    ViewRollout,
    /// Devices and their newest records.
    ViewDevices,
    /// The audit trail and its export.
    ViewAudit,
    /// Who has which role (the SSO role mapping and the operators seen).
    ViewAccess,
    /// Upload a signed bundle as a release.
    Publish,
    /// Ask for a release to go onto a ring (it waits for approval).
    RequestPromotion,
    /// Approve or reject someone else's request.
    Approve,
    /// Pause, resume and roll back a ring at once (flagged in the audit trail).
    Emergency,
    /// Ring membership and the health gate's thresholds.
    Configure,
    /// The tenant's SSO configuration, role mapping and required approvals.
    ManageAccess,
    /// Server-wide: every tenant's audit trail, adding tenants. Only the server owner.
    ServerAdmin,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::ViewRollout,
        Permission::ViewDevices,
        Permission::ViewAudit,
        Permission::ViewAccess,
        Permission::Publish,
        Permission::RequestPromotion,
        Permission::Approve,
        Permission::Emergency,
        Permission::Configure,
        Permission::ManageAccess,
        Permission::ServerAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewRollout => "view_rollout",
            Permission::ViewDevices => "view_devices",
            Permission::ViewAudit => "view_audit",
            Permission::ViewAccess => "view_access",
            Permission::Publish => "publish",
            Permission::RequestPromotion => "request_promotion",
            Permission::Approve => "approve",
            Permission::Emergency => "emergency",
            Permission::Configure => "configure",
            Permission::ManageAccess => "manage_access",
            Permission::ServerAdmin => "server_admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The matrix: whether `role` has `permission` in its tenant. docs/rbac.md shows this table
/// and a test holds the two equal.
pub fn grants(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        ViewRollout | ViewDevices => true,
        ViewAudit | ViewAccess => matches!(role, Owner | Admin | Auditor),
        Publish | RequestPromotion | Emergency => matches!(role, Owner | Admin | Operator),
        Approve | Configure => matches!(role, Owner | Admin),
        ManageAccess => role == Owner,
        // No tenant role reaches across tenants.
        ServerAdmin => false,
    }
}

/// The matrix as rows: each permission with the roles that have it (the access view, and
/// docs/rbac.md).
pub fn matrix() -> Vec<(Permission, Vec<Role>)> {
    Permission::ALL
        .into_iter()
        .map(|p| (p, Role::ALL.into_iter().filter(|r| grants(*r, p)).collect()))
        .collect()
}

/// Whether `who` may do what `permission` names in `tenant` (`None`: a server-wide action).
/// The server owner (the bootstrap credential) may do everything everywhere; everyone else
/// acts only in their own tenant and only with a role that grants the permission.
pub fn authorize(
    who: &Principal,
    tenant: Option<&str>,
    permission: Permission,
) -> Result<(), ServerError> {
    let Some(own) = who.tenant.as_deref() else {
        return Ok(());
    };
    match tenant {
        Some(t) if t == own => {}
        Some(t) => {
            return Err(ServerError::Forbidden(format!(
                "`{}` belongs to tenant `{own}`, not `{t}`",
                who.id
            )))
        }
        None => {
            return Err(ServerError::Forbidden(format!(
                "`{permission}` is for the server owner, not a tenant's operator"
            )))
        }
    }
    if who.roles.iter().any(|r| grants(*r, permission)) {
        return Ok(());
    }
    let needed: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|r| grants(*r, permission))
        .map(Role::as_str)
        .collect();
    let has = if who.roles.is_empty() {
        "no role".to_string()
    } else {
        who.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(ServerError::Forbidden(format!(
        "`{permission}` needs the role {} in tenant `{own}`; `{}` has {has}",
        needed.join(" or "),
        who.id
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_permissions_have_distinct_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_tenant_operator_is_held_to_the_tenant_and_the_matrix() {
        let viewer = Principal::operator("oidc:acme:u1", "acme", vec![Role::Viewer]);
        assert!(authorize(&viewer, Some("acme"), Permission::ViewRollout).is_ok());
        assert!(authorize(&viewer, Some("acme"), Permission::Publish).is_err());
        assert!(authorize(&viewer, Some("globex"), Permission::ViewRollout).is_err());
        assert!(authorize(&viewer, None, Permission::ServerAdmin).is_err());
        let owner = Principal::operator("oidc:acme:u2", "acme", vec![Role::Owner]);
        assert!(authorize(&owner, None, Permission::ServerAdmin).is_err());
        let nobody = Principal::operator("oidc:acme:u3", "acme", vec![]);
        let e = authorize(&nobody, Some("acme"), Permission::ViewRollout).unwrap_err();
        assert!(e.to_string().contains("has no role"), "{e}");
    }
}
