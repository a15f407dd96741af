//! The console's sessions in the shared database (the SQL is `store::sessions`').

use super::{PostgresStore, Sql};
use crate::store::Result;
use crate::store::sessions::{ConsoleSession, END, LIVE, START, SessionStore, scope};
use async_trait::async_trait;

#[async_trait]
impl SessionStore for PostgresStore {
    async fn start_session(&self, s: ConsoleSession) -> Result<()> {
        self.client()
            .await?
            .exec(
                START,
                &[
                    &s.id,
                    &s.key_name,
                    &scope(s.admin),
                    &s.csrf,
                    &s.created_at,
                    &s.expires_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn session(&self, id: &str, now: i64) -> Result<Option<ConsoleSession>> {
        Ok(self
            .client()
            .await?
            .opt(LIVE, &[&id, &now])
            .await?
            .map(|r| ConsoleSession {
                id: r.get(0),
                key_name: r.get(1),
                admin: r.get::<_, &str>(2) == "admin",
                csrf: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
            }))
    }

    async fn end_session(&self, id: &str, now: i64) -> Result<bool> {
        Ok(self.client().await?.exec(END, &[&now, &id]).await? > 0)
    }
}
