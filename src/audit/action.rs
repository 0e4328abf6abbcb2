//! What an audit row can say happened, and who did it: closed sets, stored as stable strings.

use std::fmt;

/// Declares the action enum, its stored names and the list of every action together, so
/// the three cannot drift apart.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// Every security-relevant event the audit log records.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The stored name, `area.event`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)+
                }
            }
        }
    };
}

actions! {
    // Accounts and sessions: the system log.
    AccountCreated => "account.created",
    EmailVerified => "account.email_verified",
    SignInSucceeded => "sign_in.succeeded",
    /// The password (or link) was right; the second factor is still to come.
    SignInAwaitingSecondFactor => "sign_in.awaiting_second_factor",
    SignInFailed => "sign_in.failed",
    SignedOut => "session.signed_out",
    SignedOutEverywhere => "session.signed_out_everywhere",
    PasswordChanged => "account.password_changed",
    PasswordReset => "account.password_reset",
    MfaEnabled => "mfa.enabled",
    MfaDisabled => "mfa.disabled",
    BackupCodesRegenerated => "mfa.backup_codes_regenerated",
    AccountClosureRequested => "account.closure_requested",
    AccountClosureCancelled => "account.closure_cancelled",
    /// A provider identity was linked to the account, so it can sign in with it.
    SignInMethodLinked => "account.sign_in_method_linked",
    SignInMethodUnlinked => "account.sign_in_method_unlinked",
    /// The person downloaded the archive of everything held about them.
    PersonalDataDownloaded => "account.data_downloaded",
    /// The closure hold passed and the account was deleted by the purge job.
    AccountPurged => "account.purged",
    /// The closure hold passed and the workspace, with its own log, was deleted.
    WorkspacePurged => "workspace.purged",
    OAuthClientRegistered => "oauth.client_registered",
    /// A backup was made (and copied off-site, and old ones pruned).
    BackupCompleted => "backup.completed",
    /// Written into the restored install's own system log.
    BackupRestored => "backup.restored",
    // Either log.
    AuditSwept => "audit.swept",
    AuditExported => "audit.exported",
    /// `strongbox keys rotate` moved the database to its next key version (the system log's
    /// row is for the control database and the install).
    KeysRotated => "keys.rotated",
    // Workspaces: the workspace's own log.
    WorkspaceCreated => "workspace.created",
    WorkspaceRenamed => "workspace.renamed",
    WorkspaceClosureRequested => "workspace.closure_requested",
    WorkspaceClosureCancelled => "workspace.closure_cancelled",
    DataExported => "workspace.exported",
    MemberInvited => "member.invited",
    InvitationRevoked => "member.invitation_revoked",
    MemberJoined => "member.joined",
    MemberRoleChanged => "member.role_changed",
    MemberRemoved => "member.removed",
    MemberLeft => "member.left",
    PairingCodeIssued => "agent.pairing_code_issued",
    PairingCodeWithdrawn => "agent.pairing_code_withdrawn",
    AgentPaired => "agent.paired",
    AgentRevoked => "agent.revoked",
    /// A rotated-away refresh secret came back: the agent is revoked.
    AgentRefreshReused => "agent.refresh_reused",
    OAuthGrantApproved => "oauth.grant_approved",
    OAuthTokensIssued => "oauth.tokens_issued",
    OAuthTokensRefreshed => "oauth.tokens_refreshed",
    OAuthGrantRevoked => "oauth.grant_revoked",
    /// A used authorization code came back: its grant is revoked.
    OAuthCodeReplayed => "oauth.code_replayed",
    /// A refresh token came back after its grace: its grant is revoked.
    OAuthRefreshReused => "oauth.refresh_reused",
    TokenCreated => "token.created",
    TokenRevoked => "token.revoked",
    /// A record deleted by a person or through a personal token (agents' sync is not
    /// audited row by row).
    RecordDeleted => "record.deleted",
    MaskingRuleSet => "masking.rule_set",
    MaskingRuleRemoved => "masking.rule_removed",
    RedactionRequirementChanged => "masking.redaction_requirement_changed",
}

impl std::str::FromStr for Action {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownName)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not in the closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a known name")]
pub struct UnknownName;

/// The kinds of actor an audit row names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    Agent,
    OAuthClient,
    /// A personal MCP token.
    Token,
    /// The server itself: jobs and the operator's CLI.
    System,
    /// Someone not (yet) identified, such as a failed sign-in.
    Anonymous,
}

impl ActorKind {
    pub const ALL: &'static [ActorKind] = &[
        Self::User,
        Self::Agent,
        Self::OAuthClient,
        Self::Token,
        Self::System,
        Self::Anonymous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Agent => "agent",
            Self::OAuthClient => "oauth_client",
            Self::Token => "token",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }
}

impl std::str::FromStr for ActorKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownName)
    }
}

/// Who did it: a kind and, except for the system and anonymous callers, an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn user(id: impl fmt::Display) -> Self {
        Self::with_id(ActorKind::User, id)
    }

    pub fn agent(id: impl fmt::Display) -> Self {
        Self::with_id(ActorKind::Agent, id)
    }

    pub fn oauth_client(id: impl fmt::Display) -> Self {
        Self::with_id(ActorKind::OAuthClient, id)
    }

    pub fn token(id: impl fmt::Display) -> Self {
        Self::with_id(ActorKind::Token, id)
    }

    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
        }
    }

    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
        }
    }

    fn with_id(kind: ActorKind, id: impl fmt::Display) -> Self {
        Self {
            kind,
            id: Some(id.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for action in Action::ALL {
            assert!(seen.insert(action.as_str()), "{action} twice");
            assert_eq!(action.as_str().parse::<Action>(), Ok(*action));
        }
        for kind in ActorKind::ALL {
            assert_eq!(kind.as_str().parse::<ActorKind>(), Ok(*kind));
        }
        assert!("account.deleted_everything".parse::<Action>().is_err());
    }
}
