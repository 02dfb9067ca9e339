-- 0003: the archive total grows by one update per commit, made by the writer, instead of a
-- trigger on every inserted report: a trigger makes each insert keep a copy of every page it
-- shares with the rest of its batch (the statement journal), which cost more than the
-- archive itself. Deleting a report still subtracts its size by trigger (reports_remove).
DROP TRIGGER reports_add;
