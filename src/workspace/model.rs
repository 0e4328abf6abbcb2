//! Workspaces, roles and the permission table.

use std::str::FromStr;

use crate::auth::{Email, UserId};
use crate::ids::{MembershipId, WorkspaceId};

/// Roles, weakest first, so `>=` reads as "at least".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

/// What a member may try to do to a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    View,
    Rename,
    ManageMembers,
    Export,
    Close,
    WriteRecords,
    ManageMasking,
    ManageAgents,
    /// Read the audit log and AI client usage.
    ViewActivity,
}

impl Role {
    /// The permission table:
    ///
    /// | action          | owner | admin | member | viewer |
    /// |-----------------|-------|-------|--------|--------|
    /// | view            | yes   | yes   | yes    | yes    |
    /// | rename          | yes   | yes   |        |        |
    /// | manage members  | yes   | yes*  |        |        |
    /// | export          | yes   | yes   |        |        |
    /// | close           | yes   |       |        |        |
    /// | write records   | yes   | yes   | yes    |        |
    /// | manage masking  | yes   | yes   |        |        |
    /// | manage agents   | yes   | yes   |        |        |
    /// | view activity   | yes   | yes   |        |        |
    ///
    /// *Admins cannot grant, change or remove the owner role.
    pub fn may(self, action: Action) -> bool {
        match action {
            Action::View => true,
            Action::WriteRecords => self >= Role::Member,
            Action::Rename
            | Action::ManageMembers
            | Action::Export
            | Action::ManageMasking
            | Action::ManageAgents
            | Action::ViewActivity => self >= Role::Admin,
            Action::Close => self == Role::Owner,
        }
    }

    /// Whether this role may set `target`'s role from `from` to `to`.
    pub fn may_change(self, from: Role, to: Role) -> bool {
        self.may(Action::ManageMembers)
            && (self == Role::Owner || (from < Role::Owner && to < Role::Owner))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err(()),
        }
    }
}

pub const MAX_NAME_CHARS: usize = 100;

/// A workspace name: trimmed, 1–100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    pub fn parse(raw: &str) -> Option<Self> {
        crate::text::label(raw, MAX_NAME_CHARS).map(|name| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workspace as one member sees it.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub role: Role,
    pub closes_at: Option<i64>,
    /// The person's current membership. Credentials carry the membership they were made in
    /// and are honoured only while it is this one: one made in an earlier membership, even
    /// one that ended in this same second, never is.
    pub membership: MembershipId,
    /// When the current membership began; shown to the person, never used to judge a
    /// credential (seconds cannot tell two memberships apart).
    pub member_since: i64,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: UserId,
    pub email: Email,
    pub role: Role,
}

/// A pending invitation, as its link shows it.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub workspace: WorkspaceId,
    pub workspace_name: String,
    pub email: Email,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table_holds() {
        use Action::*;
        use Role::*;
        for role in [Owner, Admin, Member, Viewer] {
            assert!(role.may(View));
        }
        assert!(
            Admin.may(ManageMembers) && !Member.may(ManageMembers) && !Viewer.may(ManageMembers)
        );
        assert!(Owner.may(Close) && !Admin.may(Close));
        assert!(Admin.may_change(Viewer, Admin));
        assert!(
            !Admin.may_change(Viewer, Owner),
            "admins cannot make owners"
        );
        assert!(!Admin.may_change(Owner, Viewer), "nor demote them");
        assert!(Owner.may_change(Owner, Admin));
        assert!(!Viewer.may_change(Viewer, Member));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(WorkspaceName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(WorkspaceName::parse("   ").is_none());
        assert!(WorkspaceName::parse(&"x".repeat(101)).is_none());
        assert!(WorkspaceName::parse("tab\there").is_none());
    }
}
