//! One typed configuration: built-in defaults, then an optional TOML file, then `STRONGBOX_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `STRONGBOX_RATE_LIMITS__GENERAL__PER_MINUTE`). Validated before anything listens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};
use url::Url;
use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

pub const ENV_PREFIX: &str = "STRONGBOX_";

/// Keys whose environment values are strings exactly as written (see `Config::load`).
const VERBATIM_ENV_KEYS: &[&str] = &["email.smtp.username", "email.smtp.password"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    FileMissing(PathBuf),
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
#[validate(schema(function = "validate_cross_fields"))]
pub struct Config {
    /// Holds the control database, the workspaces and (unless given elsewhere) the master key.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds; keep it on loopback behind nginx.
    pub listen: SocketAddr,
    /// The URL people and clients use to reach the server; `https` turns on HSTS.
    pub public_url: Url,
    /// Read the master key from this file instead of the systemd credential or the data dir.
    pub master_key_file: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` header is believed (the reverse proxy). Empty: none.
    pub trusted_proxies: Vec<IpNet>,
    #[validate(nested)]
    pub limits: Limits,
    #[validate(nested)]
    pub storage: Storage,
    #[validate(nested)]
    pub rate_limits: RateLimits,
    #[validate(nested)]
    pub email: Email,
    #[validate(nested)]
    pub sessions: Sessions,
    pub accounts: Accounts,
    #[validate(nested)]
    pub records: Records,
    #[validate(nested)]
    pub agents: Agents,
    #[validate(nested)]
    pub audit: Audit,
    #[validate(nested)]
    pub oauth: OAuth,
    #[validate(nested)]
    pub security_txt: SecurityTxt,
    #[validate(nested)]
    pub backup: Backup,
    #[validate(nested)]
    pub jobs: Jobs,
    #[validate(nested)]
    pub log: Log,
    /// OpenID Connect providers people may sign in with, by name (`[oidc.google]`); the
    /// name appears in the sign-in URLs.
    #[validate(nested)]
    pub oidc: BTreeMap<String, OidcProvider>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://localhost:8080").expect("static URL parses"),
            master_key_file: None,
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            storage: Storage::default(),
            rate_limits: RateLimits::default(),
            email: Email::default(),
            sessions: Sessions::default(),
            accounts: Accounts::default(),
            records: Records::default(),
            agents: Agents::default(),
            audit: Audit::default(),
            oauth: OAuth::default(),
            security_txt: SecurityTxt::default(),
            oidc: BTreeMap::new(),
            backup: Backup::default(),
            jobs: Jobs::default(),
            log: Log::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON request body accepted, in bytes.
    #[validate(range(min = 1024, max = 67_108_864))]
    pub json_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json_body_bytes: 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// How many workspace databases stay open at once (least recently used are closed).
    #[validate(range(min = 1, max = 100_000))]
    pub workspace_cache_size: usize,
    /// Read-only connections kept per open database.
    #[validate(range(min = 1, max = 64))]
    pub read_connections_per_db: usize,
    /// Upper bound on database jobs running at once on the blocking pool.
    #[validate(range(min = 1, max = 512))]
    pub db_threads: usize,
    /// How long a connection waits on a locked database before failing, in milliseconds.
    #[validate(range(min = 100, max = 600_000))]
    pub busy_timeout_ms: u32,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            workspace_cache_size: 256,
            read_connections_per_db: 4,
            db_threads: 16,
            busy_timeout_ms: 5_000,
        }
    }
}

/// Per-IP request budgets, one per endpoint class.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Health checks and anything without a stricter class.
    #[validate(nested)]
    pub general: RateLimit,
    /// Browser-sent reports such as CSP violations.
    #[validate(nested)]
    pub reports: RateLimit,
    /// Sign-in, sign-up, password reset, magic links, second factors and agent pairing.
    #[validate(nested)]
    pub auth: RateLimit,
    /// Machine token endpoints: OAuth token and registration, agent token rotation. Their
    /// secrets are 256-bit random values, so budget here only bounds load; it is sized for
    /// an office of AI clients and agents behind one address (see RUNBOOK.md).
    #[validate(nested)]
    pub tokens: RateLimit,
    /// Attempts on one account (sign-in, codes, links), whatever the client IP.
    #[validate(nested)]
    pub account: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            general: RateLimit {
                per_minute: 600,
                burst: 120,
            },
            reports: RateLimit {
                per_minute: 30,
                burst: 10,
            },
            auth: RateLimit {
                per_minute: 20,
                burst: 10,
            },
            tokens: RateLimit {
                per_minute: 120,
                burst: 120,
            },
            account: RateLimit {
                per_minute: 1,
                burst: 5,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per minute per client IP.
    #[validate(range(min = 1, max = 1_000_000))]
    pub per_minute: u32,
    /// Requests a client may make at once before the sustained rate applies.
    #[validate(range(min = 1, max = 1_000_000))]
    pub burst: u32,
}

impl RateLimit {
    /// The budget as a governor quota. Validation guarantees both numbers are at least 1.
    pub fn quota(&self) -> governor::Quota {
        let per_minute = NonZeroU32::new(self.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        governor::Quota::per_minute(per_minute).allow_burst(burst)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
#[validate(schema(function = "validate_email_transport"))]
pub struct Email {
    /// The `From` address on every message.
    #[validate(length(min = 3, max = 320))]
    pub from: String,
    pub transport: EmailTransport,
    /// Where the file transport writes messages; defaults to `<data_dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    #[validate(nested)]
    pub smtp: Option<Smtp>,
}

impl Default for Email {
    fn default() -> Self {
        Self {
            from: "Strongbox <strongbox@localhost>".into(),
            transport: EmailTransport::File,
            outbox_dir: None,
            smtp: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    File,
    Smtp,
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    #[validate(length(min = 1, max = 253))]
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    #[serde(serialize_with = "redact", default)]
    pub password: Option<SecretString>,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

/// Browser session lifetimes.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// A session unused this long ends.
    #[validate(range(min = 5, max = 1440))]
    pub idle_timeout_minutes: u32,
    /// A session ends this long after sign-in, however active.
    #[validate(range(min = 1, max = 720))]
    pub absolute_timeout_hours: u32,
    /// A session in use gets a new id this often.
    #[validate(range(min = 1, max = 1440))]
    pub rotate_after_minutes: u32,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
            rotate_after_minutes: 15,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounts {
    /// Who may create an account once the first owner exists.
    pub signup: SignupMode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Only people holding an invitation.
    #[default]
    Invite,
    /// Anyone who can reach the sign-up page.
    Open,
}

/// What a record may be, wherever it comes from (agent sync, REST API).
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Records {
    /// Largest record, as compact JSON, in bytes.
    #[validate(range(min = 256, max = 4_194_304))]
    pub max_record_bytes: usize,
    /// Most fields in one record, counted at every depth.
    #[validate(range(min = 1, max = 10_000))]
    pub max_fields: usize,
    /// The pattern every collection name must match in full (a regular expression). Names
    /// are also always 1 to 64 characters of letters, digits, `_` and `-`.
    #[validate(custom(function = "validate_collection_pattern"))]
    pub collection_name_pattern: String,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            max_record_bytes: 64 * 1024,
            max_fields: 200,
            collection_name_pattern: "[a-z][a-z0-9_]{0,63}".into(),
        }
    }
}

/// Paired desktop agents and their sync batches.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Agents {
    /// Most changes in one sync batch.
    #[validate(range(min = 1, max = 100_000))]
    pub max_batch_records: usize,
    /// Largest sync batch request body, in bytes.
    #[validate(range(min = 4096, max = 268_435_456))]
    pub max_batch_bytes: usize,
    /// How long a pairing code stays usable.
    #[validate(range(min = 1, max = 90))]
    pub pairing_code_days: u32,
}

impl Default for Agents {
    fn default() -> Self {
        Self {
            max_batch_records: 1000,
            max_batch_bytes: 8 * 1024 * 1024,
            pairing_code_days: 30,
        }
    }
}

/// What `/.well-known/security.txt` (RFC 9116) says. Without a contact it is not served.
#[derive(Clone, Debug, Default, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityTxt {
    /// Where to report a vulnerability, most preferred first: `mailto:`, `https:` or `tel:`.
    #[validate(length(max = 10), custom(function = "validate_security_contacts"))]
    pub contact: Vec<Url>,
    /// The vulnerability disclosure policy, such as a published SECURITY.md.
    #[validate(custom(function = "validate_https"))]
    pub policy: Option<Url>,
    /// Languages reports may be written in, as language tags: `en, de`.
    #[validate(
        length(min = 2, max = 100),
        custom(function = "validate_language_tags")
    )]
    pub preferred_languages: Option<String>,
}

fn validate_security_contacts(contacts: &[Url]) -> Result<(), ValidationError> {
    match contacts
        .iter()
        .all(|url| matches!(url.scheme(), "mailto" | "https" | "tel"))
    {
        true => Ok(()),
        false => Err(field_error(
            "contact",
            "must be mailto:, https: or tel: URIs",
        )),
    }
}

fn validate_https(url: &Url) -> Result<(), ValidationError> {
    match url.scheme() {
        "https" => Ok(()),
        _ => Err(field_error("policy", "must be an https: URL")),
    }
}

fn validate_language_tags(tags: &str) -> Result<(), ValidationError> {
    let tag = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match tags.split(',').map(str::trim).all(tag) {
        true => Ok(()),
        false => Err(field_error(
            "preferred_languages",
            "must be language tags: `en, de`",
        )),
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// How many months audit rows are kept before the `audit-sweep` job removes them.
    #[validate(range(min = 12, max = 13))]
    pub retention_months: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            retention_months: 13,
        }
    }
}

/// The authorization server for AI clients.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth {
    /// Days a dynamically registered client is kept while no one has granted it anything;
    /// `expired-cleanup` removes it then. Anyone may register, so this bounds what
    /// abandoned or abusive registrations can hold.
    #[validate(range(min = 1, max = 365))]
    pub unused_client_days: u32,
    /// Networks a client's metadata document may be fetched from although they are private,
    /// loopback or link-local. None by default: this is for tests and closed networks.
    pub client_metadata_allowed_networks: Vec<IpNet>,
    /// A PEM certificate trusted, besides the system's roots, when fetching client metadata
    /// documents (a test's own document server).
    pub client_metadata_trusted_certificate: Option<PathBuf>,
}

impl Default for OAuth {
    fn default() -> Self {
        Self {
            unused_client_days: 7,
            client_metadata_allowed_networks: Vec::new(),
            client_metadata_trusted_certificate: None,
        }
    }
}

/// Where backups go and who can read them. Each backup is encrypted with `age` to every
/// recipient; the matching identities are kept off the server.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// The local backup directory; keep it outside the data dir.
    pub dir: PathBuf,
    /// age X25519 public keys (`age1…`). Backups refuse to run without one.
    #[validate(length(max = 32), custom(function = "validate_age_recipients"))]
    pub recipients: Vec<String>,
    /// Backups older than this are pruned after a successful run; the newest good backup
    /// is always kept.
    #[validate(range(min = 1, max = 3650))]
    pub retention_days: u32,
    /// A second copy of every backup, off this machine.
    #[validate(nested)]
    pub offsite: Option<OffsiteTarget>,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./backups"),
            recipients: Vec::new(),
            retention_days: 30,
            offsite: None,
        }
    }
}

/// The off-site target: a directory (a mounted volume) or an S3-compatible bucket.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OffsiteTarget {
    Dir {
        path: PathBuf,
    },
    S3 {
        bucket: String,
        /// Keys go under this prefix (`strongbox/` by default).
        #[serde(default = "default_s3_prefix")]
        prefix: String,
        #[serde(default = "default_s3_region")]
        region: String,
        /// For S3-compatible services; AWS itself needs none.
        endpoint: Option<Url>,
        access_key_id: Option<String>,
        #[serde(serialize_with = "redact")]
        secret_access_key: Option<SecretString>,
        /// Allow a plain-http endpoint (a local service on loopback only).
        #[serde(default)]
        allow_http: bool,
    },
}

impl Validate for OffsiteTarget {
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Self::S3 {
            bucket,
            endpoint,
            allow_http,
            ..
        } = self
        {
            if bucket.is_empty() || bucket.len() > 63 {
                errors.add("bucket", field_error("bucket", "must be 1-63 characters"));
            }
            let plain = endpoint.as_ref().is_some_and(|u| u.scheme() == "http");
            if plain && !allow_http {
                let message =
                    "is plain http; allow_http = true permits it (for a loopback service)";
                errors.add("endpoint", field_error("endpoint", message));
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors),
        }
    }
}

fn default_s3_prefix() -> String {
    "strongbox/".into()
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

/// When the scheduled jobs run while `strongbox serve` is up. Each job can also be run by
/// hand with `strongbox jobs run NAME`, scheduled or not.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Jobs {
    /// Deletes ended sessions, spent links, invitations and pairing codes, expired OAuth
    /// codes and access tokens, ended grants, OAuth clients never granted anything within
    /// `[oauth] unused_client_days`, MCP sessions and revoked tokens.
    #[validate(nested)]
    pub expired_cleanup: JobSchedule,
    /// Deletes AI usage rows older than 90 days from every workspace.
    #[validate(nested)]
    pub usage_sweep: JobSchedule,
    /// Deletes workspaces and accounts whose 30-day closure hold has passed.
    #[validate(nested)]
    pub closure_purge: JobSchedule,
    /// Removes audit rows older than `[audit] retention_months`, leaving signed anchors.
    #[validate(nested)]
    pub audit_sweep: JobSchedule,
    /// Backs up every database, copies it off-site and prunes old backups.
    #[validate(nested)]
    pub backup: JobSchedule,
}

impl Default for Jobs {
    /// Nightly, spread out so the jobs do not compete with each other.
    fn default() -> Self {
        Self {
            expired_cleanup: JobSchedule::daily_at(1, 15),
            usage_sweep: JobSchedule::daily_at(1, 45),
            closure_purge: JobSchedule::daily_at(2, 15),
            audit_sweep: JobSchedule::daily_at(2, 45),
            backup: JobSchedule::daily_at(3, 15),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct JobSchedule {
    /// A cron expression in UTC with a seconds field first:
    /// `sec min hour day-of-month month day-of-week`, e.g. `0 30 2 * * *` for 02:30 daily.
    #[validate(custom(function = "validate_cron"))]
    pub schedule: String,
    /// `false` keeps the job off the schedule; `strongbox jobs run` still runs it.
    pub enabled: bool,
}

impl JobSchedule {
    fn daily_at(hour: u32, minute: u32) -> Self {
        Self {
            schedule: format!("0 {minute} {hour} * * *"),
            enabled: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `strongbox=debug,actix_web=info`.
    #[validate(length(min = 1, max = 512))]
    pub filter: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Secrets serialize as a marker, so printing the config can never leak them.
fn redact<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

/// An OpenID Connect provider: its issuer (discovery is read from
/// `{issuer}/.well-known/openid-configuration`) and this server's client registration there.
#[derive(Clone, Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Shown on the button: "Sign in with {label}".
    #[validate(length(min = 1, max = 40))]
    pub label: String,
    pub issuer: Url,
    #[validate(length(min = 1, max = 255))]
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    #[serde(serialize_with = "redact", default)]
    pub client_secret: Option<SecretString>,
}

/// Provider names go into URL paths: short, lowercase, no punctuation but `-`.
fn valid_provider_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// HTTPS, or plain HTTP to a provider on this machine's loopback address.
fn valid_issuer(issuer: &Url) -> bool {
    match issuer.scheme() {
        "https" => issuer.host_str().is_some(),
        "http" => matches!(issuer.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback()),
        _ => false,
    }
}

fn validate_cross_fields(config: &Config) -> Result<(), ValidationError> {
    if !matches!(config.public_url.scheme(), "http" | "https") {
        return Err(field_error("public_url", "must be an http or https URL"));
    }
    if config.public_url.host_str().is_none() {
        return Err(field_error("public_url", "must name a host"));
    }
    if config
        .log
        .filter
        .parse::<tracing_subscriber::EnvFilter>()
        .is_err()
    {
        return Err(field_error("log.filter", "is not a valid tracing filter"));
    }
    for (name, provider) in &config.oidc {
        if !valid_provider_name(name) {
            return Err(field_error(
                "oidc",
                "provider names are lowercase letters, digits and '-', 32 at most",
            ));
        }
        if !valid_issuer(&provider.issuer) {
            return Err(field_error(
                "oidc.issuer",
                "must be an https URL (or http on a loopback address)",
            ));
        }
    }
    Ok(())
}

fn validate_collection_pattern(pattern: &str) -> Result<(), ValidationError> {
    match pattern.len() <= 512 && regex::Regex::new(&format!("^(?:{pattern})$")).is_ok() {
        true => Ok(()),
        false => Err(field_error(
            "collection_name_pattern",
            "is not a valid regular expression",
        )),
    }
}

/// Parsed exactly as the scheduler will parse it, so a schedule that passes here runs.
fn validate_age_recipients(recipients: &[String]) -> Result<(), ValidationError> {
    match recipients
        .iter()
        .all(|r| r.parse::<age::x25519::Recipient>().is_ok())
    {
        true => Ok(()),
        false => Err(ValidationError::new("age_recipient")
            .with_message("must be age X25519 public keys (age1…)".into())),
    }
}

fn validate_cron(schedule: &str) -> Result<(), ValidationError> {
    let parses = schedule.len() <= 256
        && tokio_cron_scheduler::Job::new_async(schedule, |_, _| Box::pin(async {})).is_ok();
    match parses {
        true => Ok(()),
        false => Err(field_error(
            "schedule",
            "is not a valid cron expression (six fields, seconds first: `0 30 2 * * *`)",
        )),
    }
}

fn validate_email_transport(email: &Email) -> Result<(), ValidationError> {
    if email.transport == EmailTransport::Smtp && email.smtp.is_none() {
        return Err(field_error(
            "smtp",
            "is required when email.transport is smtp",
        ));
    }
    Ok(())
}

fn field_error(field: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(field).with_message(message.into())
}

impl Config {
    /// Builds the config from defaults, the file (if any) and the environment, then validates it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // Defaults enter as values, so a file or variable can override a single nested key.
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // STRONGBOX_CONFIG names the file itself and is read by the CLI, not here.
        let env = Env::prefixed(ENV_PREFIX).split("__").ignore(&["CONFIG"]);
        figment = figment.merge(env.clone().ignore(VERBATIM_ENV_KEYS));
        // Figment parses variable values as numbers, booleans or lists where it can, which
        // would turn a password such as `007123` into 7123; these keys are taken as written.
        for (key, value) in env.only(VERBATIM_ENV_KEYS).iter() {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(describe_load_error(e)))?;
        config
            .validate()
            .map_err(|e| ConfigError::Invalid(describe(&e)))?;
        Ok(config)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.email
            .outbox_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("outbox"))
    }

    /// The effective config as TOML, with every secret replaced by a marker.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Names the field and the kind of problem for each load error, never the value found:
/// a mistyped value may be a secret in the wrong place.
fn describe_load_error(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = match e.path.is_empty() {
                true => "the configuration".to_string(),
                false => e.path.join("."),
            };
            let problem = match &e.kind {
                Kind::InvalidType(_, expected) => {
                    format!("has the wrong type (expected {expected})")
                }
                Kind::InvalidValue(_, expected) => format!("is not valid (expected {expected})"),
                Kind::InvalidLength(_, expected) => {
                    format!("has the wrong length (expected {expected})")
                }
                Kind::UnknownVariant(_, allowed) => {
                    format!("must be one of: {}", allowed.join(", "))
                }
                Kind::UnknownField(field, _) => format!("has an unknown field `{field}`"),
                Kind::MissingField(field) => format!("is missing the field `{field}`"),
                Kind::DuplicateField(field) => format!("has the field `{field}` twice"),
                Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "is out of range".into(),
                Kind::Unsupported(_) | Kind::UnsupportedKey(..) => "has an unsupported type".into(),
                // A file that does not parse: its parser quotes the offending line, so only
                // the first line of the message (the position) is kept.
                Kind::Message(message) if e.path.is_empty() => message
                    .lines()
                    .next()
                    .unwrap_or("cannot be parsed")
                    .to_string(),
                // Messages of typed values (addresses, URLs, networks) name the syntax only.
                Kind::Message(message) => format!("is not valid: {message}"),
            };
            match &e.metadata {
                Some(source) => format!("{key} {problem} (in {})", describe_source(source)),
                None => format!("{key} {problem}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_source(metadata: &figment::Metadata) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ => metadata.name.to_string(),
    }
}

/// Flattens validation errors into `field.path message` phrases, naming each bad field.
fn describe(errors: &ValidationErrors) -> String {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out.join("; ")
}

fn collect(errors: &ValidationErrors, prefix: &str, out: &mut Vec<String>) {
    let qualify = |name: &str| match prefix {
        "" => name.to_string(),
        _ => format!("{prefix}.{name}"),
    };
    for (field, kind) in errors.errors() {
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    // Schema-level checks file under `__all__` and carry the field in their code.
                    let name = match field.as_ref() {
                        "__all__" => qualify(&error.code),
                        f => qualify(f),
                    };
                    out.push(format!("{name} {}", explain(error)));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, &qualify(field), out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &qualify(&format!("{field}[{index}]")), out);
                }
            }
        }
    }
}

fn explain(error: &ValidationError) -> String {
    match (
        &error.message,
        error.params.get("min"),
        error.params.get("max"),
    ) {
        (Some(message), _, _) => message.to_string(),
        (None, Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (None, _, _) => format!("failed the {} check", error.code),
    }
}

#[cfg(test)]
// figment::Jail fixes the closures' error type to figment::Error, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    /// Loads from a TOML file inside a figment Jail, which serialises every test that
    /// touches the process environment.
    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file("strongbox.toml", text)?;
            result = Some(Config::load(Some(Path::new("strongbox.toml"))));
            Ok(())
        });
        result.expect("the jail ran the closure")
    }

    #[test]
    fn defaults_work_out_of_the_box() {
        let config = load_toml("").unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url.as_str(), "http://localhost:8080/");
        assert_eq!(config.email.transport, EmailTransport::File);
        assert_eq!(config.outbox_dir(), PathBuf::from("./data/outbox"));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = load_toml("data_dri = \"/tmp\"").unwrap_err().to_string();
        assert!(err.contains("data_dri"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let err = load_toml("[rate_limits.general]\nper_minute = 0\nburst = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_limits.general.per_minute"), "{err}");
    }

    #[test]
    fn smtp_transport_requires_smtp_settings() {
        let err = load_toml("[email]\ntransport = \"smtp\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("email.smtp"), "{err}");
    }

    #[test]
    fn security_txt_takes_only_reporting_uris_and_language_tags() {
        let good = "[security_txt]\ncontact = [\"mailto:security@example.com\", \"tel:+1-555-0100\"]\n\
                    policy = \"https://example.com/SECURITY.md\"\npreferred_languages = \"en, de-AT\"\n";
        assert_eq!(load_toml(good).unwrap().security_txt.contact.len(), 2);
        for (bad, field) in [
            ("contact = [\"http://example.com/report\"]", "contact"),
            ("contact = [\"ftp://example.com\"]", "contact"),
            ("policy = \"http://example.com/policy\"", "policy"),
            ("preferred_languages = \"en;q=1\"", "preferred_languages"),
        ] {
            let err = load_toml(&format!("[security_txt]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("security_txt.{field}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn public_url_must_be_http_or_https() {
        let err = load_toml("public_url = \"ftp://example.com\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("public_url"), "{err}");
    }

    #[test]
    fn load_errors_name_the_field_but_never_the_value() {
        let err = load_toml("[limits]\njson_body_bytes = \"secret-looking-value\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.json_body_bytes"), "{err}");
        assert!(!err.contains("secret-looking-value"), "{err}");
        let err = load_toml("[email.smtp]\nhost = \"h\"\npassword = 12345678\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("email.smtp.password"), "{err}");
        assert!(!err.contains("12345678"), "{err}");
        let err = load_toml("[email.smtp]\npassword = \"unterminated-secret\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("unterminated-secret"), "{err}");
    }

    #[test]
    fn smtp_credentials_from_the_environment_are_taken_verbatim() {
        use secrecy::ExposeSecret;
        figment::Jail::expect_with(|jail| {
            jail.set_env("STRONGBOX_EMAIL__TRANSPORT", "smtp");
            jail.set_env("STRONGBOX_EMAIL__SMTP__HOST", "mail.example.com");
            jail.set_env("STRONGBOX_EMAIL__SMTP__USERNAME", "true");
            jail.set_env("STRONGBOX_EMAIL__SMTP__PASSWORD", "007123");
            jail.set_env("STRONGBOX_RATE_LIMITS__GENERAL__BURST", "7");
            let config = Config::load(None).expect("loads");
            let smtp = config.email.smtp.as_ref().expect("smtp section");
            assert_eq!(smtp.username.as_deref(), Some("true"));
            assert_eq!(
                smtp.password.as_ref().map(|p| p.expose_secret()),
                Some("007123")
            );
            assert_eq!(config.rate_limits.general.burst, 7);
            assert_eq!(
                config.rate_limits.general.per_minute, 600,
                "siblings keep defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn job_schedules_default_to_nightly_and_bad_ones_name_the_setting() {
        let config = load_toml("").unwrap();
        assert_eq!(config.jobs.usage_sweep.schedule, "0 45 1 * * *");
        assert!(config.jobs.closure_purge.enabled);
        let config = load_toml("[jobs.usage_sweep]\nenabled = false\n").unwrap();
        assert!(!config.jobs.usage_sweep.enabled);
        assert_eq!(
            config.jobs.usage_sweep.schedule, "0 45 1 * * *",
            "the schedule keeps its default"
        );
        for bad in ["every night", "0 30 2 * *", "0 61 2 * * *", ""] {
            let err = load_toml(&format!("[jobs.closure_purge]\nschedule = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("jobs.closure_purge.schedule"), "{bad}: {err}");
            assert!(err.contains("cron"), "{bad}: {err}");
        }
    }

    #[test]
    fn audit_retention_is_thirteen_months_and_only_twelve_or_thirteen_are_accepted() {
        assert_eq!(load_toml("").unwrap().audit.retention_months, 13);
        let config = load_toml("[audit]\nretention_months = 12\n").unwrap();
        assert_eq!(config.audit.retention_months, 12);
        for bad in [0, 11, 14, 120] {
            let err = load_toml(&format!("[audit]\nretention_months = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("audit.retention_months"), "{bad}: {err}");
        }
    }

    #[test]
    fn backup_settings_take_only_age_keys_and_an_s3_endpoint_in_the_clear_only_when_allowed() {
        let config = load_toml("").unwrap();
        assert_eq!(config.backup.retention_days, 30);
        assert!(config.backup.recipients.is_empty() && config.backup.offsite.is_none());
        let err = load_toml("[backup]\nrecipients = [\"ssh-ed25519 AAAA\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("backup.recipients"), "{err}");
        let s3 = "[backup.offsite]\nkind = \"s3\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9000\"\nsecret_access_key = \"s3-secret-value\"\n";
        let err = load_toml(s3).unwrap_err().to_string();
        assert!(err.contains("endpoint"), "{err}");
        let config = load_toml(&format!("{s3}allow_http = true\n")).unwrap();
        assert!(!config.to_redacted_toml().contains("s3-secret-value"));
    }

    #[test]
    fn oidc_providers_are_named_for_urls_and_served_over_https_with_secrets_redacted() {
        let config = load_toml(
            "[oidc.google]\nlabel = \"Google\"\nissuer = \"https://accounts.google.com\"\n\
             client_id = \"id-1\"\nclient_secret = \"oidc-secret-value\"\n\
             [oidc.local-idp]\nlabel = \"Local\"\nissuer = \"http://127.0.0.1:9000/realm\"\n\
             client_id = \"id-2\"\n",
        )
        .unwrap();
        assert_eq!(config.oidc.len(), 2);
        assert_eq!(config.oidc["google"].client_id, "id-1");
        assert!(config.oidc["local-idp"].client_secret.is_none());
        assert!(!config.to_redacted_toml().contains("oidc-secret-value"));
        for (toml, field) in [
            (
                "[oidc.Bad_Name]\nlabel = \"x\"\nissuer = \"https://id.example.com\"\nclient_id = \"i\"\n",
                "oidc",
            ),
            (
                "[oidc.plain]\nlabel = \"x\"\nissuer = \"http://id.example.com\"\nclient_id = \"i\"\n",
                "oidc.issuer",
            ),
            (
                "[oidc.nolabel]\nlabel = \"\"\nissuer = \"https://id.example.com\"\nclient_id = \"i\"\n",
                "label",
            ),
        ] {
            let err = load_toml(toml).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn redacted_rendering_hides_the_smtp_password() {
        let config = load_toml(
            "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"mail.example.com\"\npassword = \"hunter2-very-secret\"\n",
        )
        .unwrap();
        let rendered = config.to_redacted_toml();
        assert!(!rendered.contains("hunter2-very-secret"), "{rendered}");
        assert!(rendered.contains("[redacted]"), "{rendered}");
        assert!(!format!("{config:?}").contains("hunter2-very-secret"));
    }
}
