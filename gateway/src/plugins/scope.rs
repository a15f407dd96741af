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
    /// Every whole request and its answer, kept only for
    /// `crossgate plugin run`, which prints them.
    pub transcript: Option<Arc<Transcript>>,
}

/// The exchanges of a connector's calls, in order.
pub type Transcript = std::sync::Mutex<Vec<Exchange>>;

/// One outbound request as the connector made it, and what came of it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What came back, or why nothing did.
    pub answer: Result<Answer, String>,
}

/// A provider's answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
