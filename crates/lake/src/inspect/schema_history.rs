//! A table's schema changes, followed through its log: which commit added which columns.

use super::CommitSummary;

/// One commit that changed a table's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// Table version the commit created.
    pub version: i64,
    /// Commit time, milliseconds since the epoch, if recorded.
    pub timestamp_ms: Option<i64>,
    /// Operation (`CREATE TABLE`, `WRITE`, `ADD COLUMN`...), if recorded.
    pub operation: Option<String>,
    /// Columns the commit added, in the table's order (every column for the creation).
    pub columns_added: Vec<String>,
    /// Columns the commit dropped (none of the lake's own writers does).
    pub columns_removed: Vec<String>,
}

/// The commits that changed a table's columns, followed through the log in version order
/// ([`Self::extend`]), so a reader keeps it and reads only the commits since.
///
/// A change is the difference between a commit's `metaData` schema and the previous one.
/// When the previous one was never read (the history starts after the table's creation,
/// or the log was cleaned up before it), the commit's own word is taken
/// ([`SchemaUpdate::declared_added`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaHistory {
    read_to: i64,
    read_from: Option<i64>,
    columns: Option<Vec<String>>,
    changes: Vec<SchemaChange>,
}

impl Default for SchemaHistory {
    fn default() -> Self {
        SchemaHistory::new()
    }
}

impl SchemaHistory {
    /// A history that has read nothing.
    pub fn new() -> SchemaHistory {
        SchemaHistory {
            read_to: -1,
            read_from: None,
            columns: None,
            changes: Vec::new(),
        }
    }

    /// Takes in `commits` (oldest first) read up to and including version `through`,
    /// which may lie past the last commit when the newest entries were cleaned up. Versions
    /// at or before [`Self::read_to`] are ignored.
    pub fn extend(&mut self, commits: &[CommitSummary], through: i64) {
        for commit in commits {
            self.apply(commit);
        }
        if through > self.read_to {
            self.read_from.get_or_insert(through);
            self.read_to = through;
        }
    }

    fn apply(&mut self, commit: &CommitSummary) {
        if commit.version <= self.read_to {
            return;
        }
        self.read_to = commit.version;
        self.read_from.get_or_insert(commit.version);
        let Some(update) = &commit.schema else {
            return;
        };
        let created = commit.version == 0
            || commit
                .operation
                .as_deref()
                .is_some_and(|op| op.starts_with("CREATE"));
        let missing_from = |have: &[String], wanted: &[String]| -> Vec<String> {
            wanted
                .iter()
                .filter(|c| !have.contains(c))
                .cloned()
                .collect()
        };
        let columns_added = match (&self.columns, created) {
            (_, true) => update.columns.clone(),
            (Some(before), false) => missing_from(before, &update.columns),
            (None, false) => update.declared_added.clone().unwrap_or_default(),
        };
        let columns_removed = self
            .columns
            .as_deref()
            .map_or_else(Vec::new, |before| missing_from(&update.columns, before));
        self.columns = Some(update.columns.clone());
        if columns_added.is_empty() && columns_removed.is_empty() {
            return;
        }
        self.changes.push(SchemaChange {
            version: commit.version,
            timestamp_ms: commit.timestamp_ms,
            operation: commit.operation.clone(),
            columns_added,
            columns_removed,
        });
    }

    /// The newest version read (`-1`: none).
    pub fn read_to(&self) -> i64 {
        self.read_to
    }

    /// The oldest version read, if any: changes before it are unknown.
    pub fn read_from(&self) -> Option<i64> {
        self.read_from
    }

    /// The changes read, oldest first.
    pub fn changes(&self) -> &[SchemaChange] {
        &self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemaUpdate;

    fn summary(
        version: i64,
        operation: &str,
        schema: Option<(&[&str], Option<&[&str]>)>,
    ) -> CommitSummary {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        CommitSummary {
            version,
            timestamp_ms: Some(version * 1000),
            operation: Some(operation.to_string()),
            txns: Vec::new(),
            files_added: 0,
            files_removed: 0,
            bytes_added: 0,
            schema: schema.map(|(columns, declared)| SchemaUpdate {
                columns: owned(columns),
                declared_added: declared.map(owned),
            }),
        }
    }

    fn added(history: &SchemaHistory) -> Vec<(i64, Vec<String>)> {
        history
            .changes()
            .iter()
            .map(|c| (c.version, c.columns_added.clone()))
            .collect()
    }

    #[test]
    fn the_history_holds_the_creation_and_each_commit_that_added_columns() {
        let mut history = SchemaHistory::new();
        history.extend(
            &[
                summary(0, "CREATE TABLE", Some((&["id", "type"], None))),
                summary(1, "WRITE", None),
            ],
            1,
        );
        // Read on later: a commit read already is ignored; version 4 was cleaned up.
        history.extend(
            &[
                summary(1, "WRITE", Some((&["id"], None))),
                summary(2, "ADD COLUMN", Some((&["id", "type", "bot"], None))),
                summary(3, "SET TBLPROPERTIES", Some((&["id", "type", "bot"], None))),
                summary(
                    5,
                    "WRITE",
                    Some((&["id", "type", "bot", "price"], Some(&["x"]))),
                ),
            ],
            6,
        );
        assert_eq!(
            added(&history),
            vec![
                (0, vec!["id".to_string(), "type".to_string()]),
                (2, vec!["bot".to_string()]),
                (5, vec!["price".to_string()]),
            ],
            "the schema read before wins over what a commit says"
        );
        assert_eq!((history.read_from(), history.read_to()), (Some(0), 6));
        assert_eq!(history.changes()[2].timestamp_ms, Some(5000));
    }

    #[test]
    fn a_history_that_starts_late_takes_each_commits_word_then_the_difference() {
        let mut history = SchemaHistory::new();
        history.extend(
            &[
                summary(40, "WRITE", Some((&["id", "price"], Some(&["price"])))),
                summary(
                    41,
                    "WRITE",
                    Some((&["id", "price", "tier"], Some(&["tier"]))),
                ),
                summary(42, "OVERWRITE", Some((&["id", "tier"], None))),
            ],
            42,
        );
        assert_eq!(
            added(&history),
            vec![
                (40, vec!["price".to_string()]),
                (41, vec!["tier".to_string()]),
                (42, vec![]),
            ]
        );
        assert_eq!(
            history.changes()[2].columns_removed,
            vec!["price".to_string()]
        );
        assert_eq!(history.read_from(), Some(40));
    }
}
