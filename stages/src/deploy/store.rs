//! The one place the deployment side opens SQLite: the model registry's
//! tables in the workspace database (`.mlcycle/mlcycle.db`, beside the
//! engine's run history) and the prediction log (`.mlcycle/serve.db`).
//! Every connection gets the same settings.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Opens (creating) the database at `path`: busy timeout 30 s, WAL, and
/// `synchronous=FULL`, so a commit is on disk before it returns (a
/// prediction is acknowledged, a champion event reported, only then).
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Now, as the run history writes times (RFC 3339, UTC, seconds).
pub(crate) fn now_rfc3339() -> String {
    mlcycle_pipeline::history::now_rfc3339()
}
