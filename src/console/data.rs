//! What the console reads and changes, as one trait over the reports store and the reports
//! service: the pages and the JSON API are written against [`ConsoleData`] and the plain
//! view types here, which say exactly which fields support sees.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why the store could not answer; shown to the user as a 500 and logged.
#[derive(Debug, thiserror::Error)]
#[error("reports store: {0}")]
pub struct DataError(pub String);

/// How support has marked a group; `Known` makes getInfo answer with the note and spares
/// the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MarkState {
    /// Not marked (or the mark was cleared).
    #[default]
    None,
    /// Known problem: clients are told the note and need not send reports.
    Known,
    /// Fixed: reports are welcome again (a recurrence shows up in the counts).
    Fixed,
}

impl MarkState {
    /// The form/API value: `none`, `known`, `fixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkState::None => "none",
            MarkState::Known => "known",
            MarkState::Fixed => "fixed",
        }
    }

    /// Parses a form/API value.
    pub fn parse(value: &str) -> Option<MarkState> {
        match value {
            "none" => Some(MarkState::None),
            "known" => Some(MarkState::Known),
            "fixed" => Some(MarkState::Fixed),
            _ => None,
        }
    }
}

/// A group's mark and who set it when.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MarkView {
    /// known, fixed or none.
    pub state: MarkState,
    /// The note shown to clients (known) and to support.
    pub note: String,
    /// The console user who set it.
    pub by: String,
    /// When it was set.
    pub at: Option<DateTime<Utc>>,
}

/// One group of alike reports, as the groups page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// The store's id of the group.
    pub id: i64,
    /// The error text (first application error, else the system error).
    pub error_text: String,
    /// Configuration names seen (usually one).
    pub config_names: Vec<String>,
    /// Configuration versions seen.
    pub config_versions: Vec<String>,
    /// Platform versions seen.
    pub platform_versions: Vec<String>,
    /// Reports in the group.
    pub count: u64,
    /// Distinct user names.
    pub users: u64,
    /// Distinct machines (client ids).
    pub machines: u64,
    /// The first report's time.
    pub first_seen: DateTime<Utc>,
    /// The last report's time.
    pub last_seen: DateTime<Utc>,
    /// Reports in each of the last 24 hours, oldest first (24 numbers).
    pub per_hour: Vec<u32>,
    /// How support marked it.
    pub mark: MarkView,
}

/// An attached file of a report.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    /// Its position in the report, the download URL's last segment.
    pub index: usize,
    /// The name inside the archive (untrusted).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// One report, as a group's page and the report page show it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// The store's id of the report.
    pub id: i64,
    /// The group it belongs to.
    pub group_id: i64,
    /// When the client says the error happened (else when it arrived).
    pub time: DateTime<Utc>,
    /// The infobase user.
    pub user: String,
    /// The machine (client id, or processor and RAM when there is none).
    pub machine: String,
    /// OS version.
    pub os: String,
    /// Platform type and application version.
    pub platform: String,
    /// What the user typed about the error.
    pub description: String,
    /// The error text.
    pub error_text: String,
    /// Whether there is a screenshot.
    pub has_screenshot: bool,
    /// Attached files (the screenshot and report.json included).
    pub files: Vec<FileView>,
    /// Size of the original archive, in bytes.
    pub archive_size: u64,
}

/// A file taken out of a report: its name in the archive and its bytes.
#[derive(Debug, Clone)]
pub struct FileBytes {
    /// The name inside the archive (untrusted; sanitized before it reaches a header).
    pub name: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// What the console needs from the reports store and service.
pub trait ConsoleData: Send + Sync + 'static {
    /// Every group, most recently seen first, with hourly counts for the 24 h before `now`.
    fn groups(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<GroupView>, DataError>> + Send;
    /// One group and its reports (newest first), or `None`.
    fn group(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<(GroupView, Vec<ReportView>)>, DataError>> + Send;
    /// One report, or `None`.
    fn report(&self, id: i64) -> impl Future<Output = Result<Option<ReportView>, DataError>> + Send;
    /// A report's screenshot bytes, or `None`.
    fn screenshot(&self, id: i64) -> impl Future<Output = Result<Option<Vec<u8>>, DataError>> + Send;
    /// A report's attached file by index, or `None`.
    fn file(&self, id: i64, index: usize) -> impl Future<Output = Result<Option<FileBytes>, DataError>> + Send;
    /// A report's original archive, byte for byte, or `None`.
    fn archive(&self, id: i64) -> impl Future<Output = Result<Option<Vec<u8>>, DataError>> + Send;
    /// Login-failure events in each minute of the 24 h before `now`, oldest first (1440 numbers).
    fn login_failures(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<u32>, DataError>> + Send;
    /// Marks a group (durably, and in what getInfo answers from at once); `false` when there
    /// is no such group.
    fn mark(
        &self,
        id: i64,
        state: MarkState,
        note: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, DataError>> + Send;
    /// Stores a new session under the hash of its token.
    fn create_session(
        &self,
        key: &str,
        user: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DataError>> + Send;
    /// The user of the session stored under `key`, if it has not expired at `now`.
    fn session(&self, key: &str, now: DateTime<Utc>) -> impl Future<Output = Result<Option<String>, DataError>> + Send;
    /// Ends the session stored under `key`.
    fn delete_session(&self, key: &str) -> impl Future<Output = Result<(), DataError>> + Send;
}
