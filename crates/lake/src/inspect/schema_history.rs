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
    /// Columns the commit added, in the table's order (every column for the creation),
    /// with their Delta types then.
    pub columns_added: Vec<(String, String)>,
    /// Columns whose type the commit changed (struct columns that grew children), with
    /// their Delta types after it.
    pub columns_widened: Vec<(String, String)>,
    /// Columns the commit dropped (none of the lake's own writers does).
    pub columns_removed: Vec<String>,
}

/// The commits that changed a table's columns, followed through the log in version order
/// ([`Self::extend`]), so a reader keeps it and reads only the commits since.
///
/// A change is the difference between a commit's `metaData` schema and the previous one:
/// names new to it, names gone, names whose type differs. When the previous one was never
/// read (the history starts after the table's creation, or the log was cleaned up before
/// it), the commit's own word is taken ([`crate::SchemaUpdate::declared_added`] and
/// `declared_widened`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaHistory {
    read_to: i64,
    read_from: Option<i64>,
    /// The latest schema read: column names and Delta types.
    columns: Option<Vec<(String, String)>>,
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
        let type_in = |columns: &[(String, String)], name: &str| {
            columns
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
        };
        let select = |columns: &[(String, String)], keep: &dyn Fn(&str, &str) -> bool| {
            columns
                .iter()
                .filter(|(name, data_type)| keep(name, data_type))
                .cloned()
                .collect::<Vec<_>>()
        };
        let now = &update.columns;
        let declared = |names: &Option<Vec<String>>| {
            let names = names.as_deref().unwrap_or_default();
            select(now, &|name, _| names.iter().any(|n| n == name))
        };
        let (columns_added, columns_widened) = match (&self.columns, created) {
            (_, true) => (now.clone(), Vec::new()),
            (Some(before), false) => (
                select(now, &|name, _| type_in(before, name).is_none()),
                select(now, &|name, data_type| {
                    type_in(before, name).is_some_and(|was| was != data_type)
                }),
            ),
            (None, false) => (
                declared(&update.declared_added),
                declared(&update.declared_widened),
            ),
        };
        let columns_removed = self.columns.as_deref().map_or_else(Vec::new, |before| {
            select(before, &|name, _| type_in(now, name).is_none())
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        });
        self.columns = Some(now.clone());
        if columns_added.is_empty() && columns_widened.is_empty() && columns_removed.is_empty() {
            return;
        }
        self.changes.push(SchemaChange {
            version: commit.version,
            timestamp_ms: commit.timestamp_ms,
            operation: commit.operation.clone(),
            columns_added,
            columns_widened,
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

    /// A commit; with `columns` (`name` or `name:type`, `long` by default) it sets the
    /// schema, saying it added `declared` when given.
    fn commit(
        version: i64,
        operation: &str,
        columns: Option<&str>,
        declared: &[&str],
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
            schema: columns.map(|columns| SchemaUpdate {
                columns: columns
                    .split_whitespace()
                    .map(|c| {
                        let (name, data_type) = c.split_once(':').unwrap_or((c, "long"));
                        (name.to_string(), data_type.to_string())
                    })
                    .collect(),
                declared_added: (!declared.is_empty()).then(|| owned(declared)),
                declared_widened: None,
            }),
        }
    }

    /// `(version, added, widened)` of each change, columns as `name:type`.
    fn changes(history: &SchemaHistory) -> Vec<(i64, String, String)> {
        let text = |columns: &[(String, String)]| {
            columns
                .iter()
                .map(|(name, data_type)| format!("{name}:{data_type}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        history
            .changes()
            .iter()
            .map(|c| (c.version, text(&c.columns_added), text(&c.columns_widened)))
            .collect()
    }

    #[test]
    fn the_history_holds_the_creation_and_each_commit_that_added_or_grew_columns() {
        let mut history = SchemaHistory::new();
        history.extend(
            &[
                commit(0, "CREATE TABLE", Some("id type"), &[]),
                commit(1, "WRITE", None, &[]),
            ],
            1,
        );
        // Read on later: a commit read already is ignored; version 4 was cleaned up.
        history.extend(
            &[
                commit(1, "WRITE", Some("id"), &[]),
                commit(2, "ADD COLUMN", Some("id type bot"), &[]),
                commit(3, "SET TBLPROPERTIES", Some("id type bot"), &[]),
                commit(5, "WRITE", Some("id type bot e:struct<a>"), &["x"]),
                commit(6, "WRITE", Some("id type bot e:struct<a,b>"), &[]),
            ],
            7,
        );
        let (none, one) = (String::new, |s: &str| s.to_string());
        assert_eq!(
            changes(&history),
            vec![
                (0, one("id:long type:long"), none()),
                (2, one("bot:long"), none()),
                (5, one("e:struct<a>"), none()),
                (6, none(), one("e:struct<a,b>")),
            ],
            "the schema read before wins over what a commit says"
        );
        assert_eq!((history.read_from(), history.read_to()), (Some(0), 7));
        assert_eq!(history.changes()[2].timestamp_ms, Some(5000));
    }

    #[test]
    fn a_history_that_starts_late_takes_each_commits_word_then_the_difference() {
        let mut history = SchemaHistory::new();
        let mut widening = commit(40, "WRITE", Some("id price e:struct<a,b>"), &["price"]);
        if let Some(schema) = &mut widening.schema {
            schema.declared_widened = Some(vec!["e".to_string()]);
        }
        history.extend(
            &[
                widening,
                commit(41, "WRITE", Some("id price e:struct<a,b> tier"), &["tier"]),
                commit(42, "OVERWRITE", Some("id e:struct<a,b> tier"), &[]),
            ],
            42,
        );
        let (none, one) = (String::new, |s: &str| s.to_string());
        assert_eq!(
            changes(&history),
            vec![
                (40, one("price:long"), one("e:struct<a,b>")),
                (41, one("tier:long"), none()),
                (42, none(), none()),
            ]
        );
        assert_eq!(
            history.changes()[2].columns_removed,
            vec!["price".to_string()]
        );
        assert_eq!(history.read_from(), Some(40));
    }
}
