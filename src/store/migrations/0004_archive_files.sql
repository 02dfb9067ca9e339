-- 0004: new reports keep their archive in a file beside the database (DB-archives/, see
-- archive_files.rs), named here; rows stored before keep theirs in `archives`.
ALTER TABLE reports ADD COLUMN archive_file TEXT;
CREATE INDEX reports_by_archive_file ON reports (archive_file) WHERE archive_file IS NOT NULL;
