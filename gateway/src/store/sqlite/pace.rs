//! Rate-limited connectors' timelines, in this process (see `store::pace`).

use super::SqliteStore;
use crate::store::Result;
use crate::store::pace::{Ask, PaceStore, Turns};
use async_trait::async_trait;

#[async_trait]
impl PaceStore for SqliteStore {
    async fn take_turns(&self, ask: Ask<'_>) -> Result<Turns> {
        let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
        let (turns, tat) = ask.against(pace.get(ask.connector).copied());
        pace.insert(ask.connector.to_owned(), tat);
        Ok(turns)
    }

    async fn hold_turns(&self, connector: &str, until: i64) -> Result<()> {
        let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
        let tat = pace.entry(connector.to_owned()).or_insert(until);
        *tat = (*tat).max(until);
        Ok(())
    }
}
