//! The console's sessions in the file (the SQL is `store::sessions`').

use super::SqliteStore;
use crate::store::Result;
use crate::store::sessions::{ConsoleSession, END, LIVE, START, SessionStore, scope};
use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, params};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn start_session(&self, s: ConsoleSession) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(START)?.execute(params![
                s.id,
                s.key_name,
                scope(s.admin),
                s.csrf,
                s.created_at,
                s.expires_at
            ])?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id: &str, now: i64) -> Result<Option<ConsoleSession>> {
        let id = id.to_owned();
        self.read_small(move |conn| {
            Ok(conn
                .prepare_cached(LIVE)?
                .query_row(params![id, now], |r| {
                    Ok(ConsoleSession {
                        id: r.get(0)?,
                        key_name: r.get(1)?,
                        admin: r.get::<_, String>(2)? == "admin",
                        csrf: r.get(3)?,
                        created_at: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn end_session(&self, id: &str, now: i64) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| Ok(conn.prepare_cached(END)?.execute(params![now, id])? > 0))
            .await
    }
}
