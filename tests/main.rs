//! Integration tests, linked into one binary: they drive the real app over HTTP, the real
//! `strongbox` binary, and real SQLCipher files in temporary data dirs.

mod common;

mod accounts;
mod agent_e2e;
mod agents;
mod audit;
mod backups;
mod backups_s3;
mod client_metadata;
mod edge;
mod http_edge;
mod install;
mod jobs;
mod keys;
mod mail;
mod mcp;
mod mcp_clients;
mod mcp_stateless;
mod memberships;
mod mfa;
mod oauth;
mod oidc;
mod pre_commit;
mod privacy;
mod records;
mod release;
mod rest_api;
mod restore_drill;
mod startup;
mod storage;
mod workspaces;
