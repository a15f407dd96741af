//! What every call of one connector shares: its name, its settings, the
//! origins it may reach, and its cache.

use super::connector_cache::ConnectorCache;
use crate::origin::Origin;
use std::sync::Arc;

pub struct Scope {
    pub name: Arc<str>,
    /// `[connectors.config]` with secrets resolved; never logged.
    pub settings: Vec<(String, String)>,
    pub allowed_hosts: Vec<Origin>,
    pub cache: ConnectorCache,
}
