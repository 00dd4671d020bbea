//! What `fetch` keeps of each IMAP folder (UIDVALIDITY and the last UID committed), the moves still
//! to make, and a lease per account so that two `fetch` runs, on one machine or two, never import
//! the same mailbox at once.

use postgres::GenericClient;

use super::PgError;

/// The remembered `(uidvalidity, last_uid)` of an IMAP folder.
pub fn imap_folder(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
) -> Result<Option<(u32, u32)>, PgError> {
    Ok(client
        .query_opt(
            "SELECT uidvalidity, last_uid FROM imap_folders WHERE account = $1 AND folder = $2",
            &[&account, &folder],
        )?
        .map(|r| (uid(r.get(0)), uid(r.get(1)))))
}

fn uid(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Remembers an IMAP folder's state; part of the caller's transaction.
pub fn set_imap_folder(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
    uidvalidity: u32,
    last_uid: u32,
) -> Result<(), PgError> {
    client.execute(
        "INSERT INTO imap_folders (account, folder, uidvalidity, last_uid) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account, folder) DO UPDATE
         SET uidvalidity = EXCLUDED.uidvalidity, last_uid = EXCLUDED.last_uid",
        &[
            &account,
            &folder,
            &i64::from(uidvalidity),
            &i64::from(last_uid),
        ],
    )?;
    Ok(())
}

/// Records that a message is to be moved once this transaction commits.
pub fn add_pending_move(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
    uidvalidity: u32,
    uid: u32,
    destination: &str,
) -> Result<(), PgError> {
    client.execute(
        "INSERT INTO imap_pending_moves (account, folder, uidvalidity, uid, destination)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account, folder, uidvalidity, uid) DO UPDATE
         SET destination = EXCLUDED.destination",
        &[
            &account,
            &folder,
            &i64::from(uidvalidity),
            &i64::from(uid),
            &destination,
        ],
    )?;
    Ok(())
}

/// Forgets the moves recorded for the folder under another UIDVALIDITY: their UIDs no longer
/// name the same messages. Returns how many.
pub fn drop_stale_moves(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
    uidvalidity: u32,
) -> Result<usize, PgError> {
    let dropped = client.execute(
        "DELETE FROM imap_pending_moves WHERE account = $1 AND folder = $2 AND uidvalidity <> $3",
        &[&account, &folder, &i64::from(uidvalidity)],
    )?;
    Ok(usize::try_from(dropped).unwrap_or(usize::MAX))
}

/// Moves recorded but not yet confirmed, as `(uid, destination)` in UID order.
pub fn pending_moves(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
    uidvalidity: u32,
) -> Result<Vec<(u32, String)>, PgError> {
    let v = i64::from(uidvalidity);
    Ok(client
        .query(
            "SELECT uid, destination FROM imap_pending_moves
             WHERE account = $1 AND folder = $2 AND uidvalidity = $3 ORDER BY uid",
            &[&account, &folder, &v],
        )?
        .iter()
        .map(|r| (uid(r.get(0)), r.get(1)))
        .collect())
}

/// Forgets pending moves the server has confirmed.
pub fn clear_pending_moves(
    client: &mut impl GenericClient,
    account: &str,
    folder: &str,
    uidvalidity: u32,
    uids: &[u32],
) -> Result<(), PgError> {
    let uids: Vec<i64> = uids.iter().map(|&u| i64::from(u)).collect();
    client.execute(
        "DELETE FROM imap_pending_moves
         WHERE account = $1 AND folder = $2 AND uidvalidity = $3 AND uid = ANY($4)",
        &[&account, &folder, &i64::from(uidvalidity), &uids],
    )?;
    Ok(())
}

/// Takes the lease on an account (`user@host:port`) for as long as this connection lives, or
/// until [`unlock_account`]: `false` when another connection holds it (another `fetch` is reading
/// that mailbox). A session-level advisory lock: a run that dies, or whose connection drops,
/// leaves no stale lease behind.
pub fn try_lock_account(client: &mut impl GenericClient, account: &str) -> Result<bool, PgError> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended('dmarc-warden fetch ' || $1, 0))",
            &[&account],
        )?
        .get(0))
}

/// Gives the lease back.
pub fn unlock_account(client: &mut impl GenericClient, account: &str) -> Result<(), PgError> {
    client.execute(
        "SELECT pg_advisory_unlock(hashtextextended('dmarc-warden fetch ' || $1, 0))",
        &[&account],
    )?;
    Ok(())
}
