//! The journal's schema: one definition of the current tables for every engine
//! ([`CURRENT`], spelt for each by [`crate::db::Db::schema_sql`]), and the steps that bring an
//! older journal to it. Only SQLite journals are older than issue 17 ([`SQLITE_V1`],
//! [`SQLITE_V2`]); [`V3`] is written for both engines.
//!
//! Versions: 1 (no version recorded; issue 18 added `biometrics_removed_at`), 2 (issue 16: card
//! history, dispatches), 3 (issue 17: stations and their leases, the station of every
//! transition).

/// The stations of a line and their leases (version 3), in [`CURRENT`] and [`V3`] alike.
macro_rules! stations_table {
    () => {
        "CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY,
    lease_until BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
"
    };
}

/// The journal's schema version (SQLite `PRAGMA user_version`, PostgreSQL table
/// `schema_version`). A journal of a newer version is refused; an older one is migrated in
/// place when opened.
pub const SCHEMA_VERSION: i64 = 3;

/// Every table and index of a new journal, at [`SCHEMA_VERSION`].
pub(super) const CURRENT: &str = concat!(
    "
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    readers TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    station TEXT
);
CREATE TABLE records (
    seq {id},
    batch_id TEXT NOT NULL REFERENCES batches(id),
    tracking_code TEXT NOT NULL,
    record_json TEXT NOT NULL,
    base_dir TEXT NOT NULL,
    national_code TEXT,
    birth_certificate_serial TEXT,
    birth_date TEXT,
    state TEXT NOT NULL,
    owner TEXT,
    reader TEXT,
    card_serial TEXT,
    reason TEXT,
    qc_issues TEXT,
    document_number TEXT,
    date_of_issue TEXT,
    sod {blob},
    attempts BIGINT NOT NULL DEFAULT 0,
    apdus BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    biometrics_removed_at BIGINT,
    station TEXT
);
CREATE INDEX records_batch_state ON records(batch_id, state, seq);
CREATE INDEX records_tracking ON records(tracking_code);
CREATE INDEX records_national ON records(national_code);
-- Records without a tracking code (rejected by QC) are not identities: two may be checked at once.
CREATE UNIQUE INDEX records_once_by_code ON records(tracking_code)
    WHERE state IN ('checking', 'writing', 'personalized') AND tracking_code != '';
CREATE INDEX records_biometrics_kept ON records(state, updated_at)
    WHERE biometrics_removed_at IS NULL;
CREATE TABLE cards (
    serial TEXT PRIMARY KEY,
    tracking_code TEXT NOT NULL,
    record_seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    updated_at BIGINT NOT NULL,
    person TEXT,
    kind TEXT,
    document_number TEXT,
    date_of_expiry TEXT,
    superseded_by TEXT,
    dispatch_id TEXT,
    office TEXT,
    household TEXT,
    household_head BIGINT NOT NULL DEFAULT 0,
    station TEXT
);
CREATE INDEX cards_household ON cards(household, kind);
CREATE INDEX cards_person ON cards(person, kind);
CREATE INDEX cards_document ON cards(document_number);
CREATE INDEX cards_record ON cards(record_seq);
CREATE TABLE dispatches (
    id TEXT PRIMARY KEY,
    office TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    received_at BIGINT
);
CREATE TABLE card_events (
    id {id},
    serial TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at_ms BIGINT NOT NULL,
    station TEXT
);
CREATE INDEX card_events_serial ON card_events(serial, id);
",
    stations_table!()
);

/// Version 1 as SQLite journals before issue 16 have it (idempotent).
pub(super) const SQLITE_V1: &str = "
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    readers TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL REFERENCES batches(id),
    tracking_code TEXT NOT NULL,
    record_json TEXT NOT NULL,
    base_dir TEXT NOT NULL,
    national_code TEXT,
    birth_certificate_serial TEXT,
    birth_date TEXT,
    state TEXT NOT NULL,
    owner TEXT,
    reader TEXT,
    card_serial TEXT,
    reason TEXT,
    qc_issues TEXT,
    document_number TEXT,
    date_of_issue TEXT,
    sod BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    apdus INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    biometrics_removed_at INTEGER
);
CREATE INDEX IF NOT EXISTS records_batch_state ON records(batch_id, state, seq);
CREATE INDEX IF NOT EXISTS records_tracking ON records(tracking_code);
CREATE INDEX IF NOT EXISTS records_national ON records(national_code);
DROP INDEX IF EXISTS records_once;
-- Records without a tracking code (rejected by QC) are not identities: two may be checked at once.
CREATE UNIQUE INDEX IF NOT EXISTS records_once_by_code ON records(tracking_code)
    WHERE state IN ('checking', 'writing', 'personalized') AND tracking_code != '';
CREATE TABLE IF NOT EXISTS cards (
    serial TEXT PRIMARY KEY,
    tracking_code TEXT NOT NULL,
    record_seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    updated_at INTEGER NOT NULL
);
";

/// Run after [`SQLITE_V1`] once the column exists (journals before issue 18 lack it).
pub(super) const SQLITE_RETENTION_INDEX: &str = "
CREATE INDEX IF NOT EXISTS records_biometrics_kept ON records(state, updated_at)
    WHERE biometrics_removed_at IS NULL;
";

/// Version 2 (issue 16): whose card each card is (person and kind), its document number and
/// expiry, what superseded it, and every state it went through.
pub(super) const SQLITE_V2: &str = "
ALTER TABLE cards ADD COLUMN person TEXT;
ALTER TABLE cards ADD COLUMN kind TEXT;
ALTER TABLE cards ADD COLUMN document_number TEXT;
ALTER TABLE cards ADD COLUMN date_of_expiry TEXT;
ALTER TABLE cards ADD COLUMN superseded_by TEXT;
ALTER TABLE cards ADD COLUMN dispatch_id TEXT;
ALTER TABLE cards ADD COLUMN office TEXT;
ALTER TABLE cards ADD COLUMN household TEXT;
ALTER TABLE cards ADD COLUMN household_head INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS cards_household ON cards(household, kind);
CREATE TABLE IF NOT EXISTS dispatches (
    id TEXT PRIMARY KEY,
    office TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    received_at INTEGER
);
CREATE TABLE IF NOT EXISTS card_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS card_events_serial ON card_events(serial, id);
CREATE INDEX IF NOT EXISTS cards_person ON cards(person, kind);
CREATE INDEX IF NOT EXISTS cards_document ON cards(document_number);
-- Cards journaled by an earlier version: whose they are, from their records.
UPDATE cards SET
    person = (SELECT COALESCE(NULLIF(r.national_code, ''),
                  'FR:' || json_extract(r.record_json, '$.foreign_resident.residence_permit_number')
                  || ':' || r.birth_date || ':' || json_extract(r.record_json, '$.gender'))
              FROM records r WHERE r.seq = cards.record_seq),
    kind = (SELECT json_extract(r.record_json, '$.profile') FROM records r WHERE r.seq = cards.record_seq),
    document_number = (SELECT r.document_number FROM records r WHERE r.seq = cards.record_seq);
INSERT INTO card_events (serial, state, reason, at_ms)
    SELECT serial, state, reason, updated_at FROM cards;
";

/// Version 3 (issue 17): stations and their leases; the station of every record, card,
/// batch and card event.
pub(super) const V3: &str = concat!(
    "
ALTER TABLE records ADD COLUMN station TEXT;
ALTER TABLE cards ADD COLUMN station TEXT;
ALTER TABLE batches ADD COLUMN station TEXT;
ALTER TABLE card_events ADD COLUMN station TEXT;
CREATE INDEX IF NOT EXISTS cards_record ON cards(record_seq);
",
    stations_table!()
);
