//! What each version of a stream's subject does to its events table's columns, as the
//! schemas page shows it: the columns [`WriterPlan`] gives the version whose Avro path no
//! earlier version has, and the struct columns it grows with fields inside a record.

use deltalake::arrow::datatypes::DataType;

use super::layout::Layout;
use super::plan::{PlannedColumn, SCHEMA_ID_KEY, SubjectVersion, WriterPlan};

/// What one version of the subject does to its events table's columns.
#[derive(Debug, Clone)]
pub struct VersionColumns {
    /// Version number within the subject.
    pub version: u32,
    /// Registry id of its schema.
    pub id: u32,
    /// The columns it adds and grows, or why its records cannot land (a field whose type
    /// conflicts with an earlier version's column: the reason their dead letters carry).
    pub changes: Result<ColumnChanges, String>,
}

/// The columns one version adds and grows.
#[derive(Debug, Clone)]
pub struct ColumnChanges {
    /// Columns for the paths no earlier version has, in field order.
    pub added: Vec<PlannedColumn>,
    /// Struct columns it gives new children (fields added inside a record), with their
    /// type before it.
    pub widened: Vec<(PlannedColumn, DataType)>,
}

/// What each version in `history` (any order) of the raw subject does to the `events`
/// columns: [`columns_by_version_for`] with [`Layout::CLICKSTREAM`].
pub fn columns_by_version(history: &[SubjectVersion]) -> Vec<VersionColumns> {
    columns_by_version_for(&Layout::CLICKSTREAM, history)
}

/// What each version in `history` (any order) does to the columns of `layout`'s table
/// with this build's columns, oldest version first: each planned as the processor plans
/// it against the versions up to it. A path an earlier version already has adds nothing,
/// even when a version in between dropped it: the column stays in the table.
pub fn columns_by_version_for(layout: &Layout, history: &[SubjectVersion]) -> Vec<VersionColumns> {
    let mut versions: Vec<&SubjectVersion> = history.iter().collect();
    versions.sort_by_key(|v| v.version);
    let table = layout.table().arrow_schema();
    let plans: Vec<Result<WriterPlan, String>> = versions
        .iter()
        .map(|this| {
            let up_to: Vec<SubjectVersion> = versions
                .iter()
                .filter(|v| v.version <= this.version)
                .map(|v| (*v).clone())
                .collect();
            WriterPlan::for_layout(layout, &table, &up_to, this.id, &this.schema)
        })
        .collect();
    versions
        .iter()
        .enumerate()
        .map(|(index, this)| VersionColumns {
            version: this.version,
            id: this.id,
            changes: plans[index]
                .as_ref()
                .map(|plan| changes(plan, this.id, &plans[..index]))
                .map_err(Clone::clone),
        })
        .collect()
}

/// What `plan` (of schema `id`) changes against the plans of the versions before it.
fn changes(plan: &WriterPlan, id: u32, earlier: &[Result<WriterPlan, String>]) -> ColumnChanges {
    // A column carries the id of the earliest version with its path (ids are unique
    // within a subject: registering a schema again returns its existing version).
    let own_id = id.to_string();
    let mut added = Vec::new();
    let mut widened = Vec::new();
    for column in plan.columns() {
        if column.field.metadata().get(SCHEMA_ID_KEY) == Some(&own_id) {
            added.push(column.clone());
            continue;
        }
        // The column's type so far: the latest earlier version with the path has it
        // merged over every version up to it. Versions whose records cannot land are
        // passed over.
        let before = earlier.iter().rev().find_map(|plan| {
            let plan = plan.as_ref().ok()?;
            let same = plan.columns().iter().find(|c| c.path == column.path)?;
            Some(same.field.data_type().clone())
        });
        if let Some(before) = before
            && before != *column.field.data_type()
        {
            widened.push((column.clone(), before));
        }
    }
    ColumnChanges { added, widened }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use apache_avro::Schema;
    use deltalake::arrow::datatypes::DataType;

    use super::*;
    use crate::avro::AVRO_PATH_KEY;

    const RAW: &str = include_str!("../../../event/schemas/acme.clickstream.raw.events.avsc");

    /// The raw schema with `extra` fields appended to `event`, as version `version`.
    fn version(version: u32, id: u32, extra: &str) -> SubjectVersion {
        let text = if extra.is_empty() {
            RAW.to_string()
        } else {
            RAW.replace(
                r#"{"name": "position", "type": ["null", "long"], "default": null}"#,
                &format!(
                    r#"{{"name": "position", "type": ["null", "long"], "default": null}}, {extra}"#
                ),
            )
        };
        SubjectVersion {
            version,
            id,
            schema: Arc::new(Schema::parse_str(&text).expect("schema parses")),
        }
    }

    const PRICE: &str = r#"{"name": "price", "type": ["null", "double"], "default": null}"#;
    const TIER: &str = r#"{"name": "tier", "type": ["null", "string"], "default": null}"#;

    fn changes(history: &[SubjectVersion], version: u32) -> Result<ColumnChanges, String> {
        columns_by_version(history)
            .into_iter()
            .find(|v| v.version == version)
            .expect("the version")
            .changes
    }

    /// `(column, path, type)` of what `version` adds.
    fn added(history: &[SubjectVersion], version: u32) -> Vec<(String, String, DataType)> {
        changes(history, version)
            .expect("plans")
            .added
            .into_iter()
            .map(|c| {
                assert_eq!(c.field.metadata().get(AVRO_PATH_KEY), Some(&c.path));
                (c.field.name().clone(), c.path, c.field.data_type().clone())
            })
            .collect()
    }

    #[test]
    fn each_version_adds_the_columns_of_the_fields_no_earlier_version_has() {
        let history = [
            version(3, 12, &format!("{PRICE}, {TIER}")),
            version(1, 1, ""),
            version(2, 7, PRICE),
        ];
        assert_eq!(
            added(&history, 1),
            vec![],
            "the seed has columns of its own"
        );
        assert_eq!(
            added(&history, 2),
            vec![("price".into(), "event.price".into(), DataType::Float64)]
        );
        assert_eq!(
            added(&history, 3),
            vec![("tier".into(), "event.tier".into(), DataType::Utf8)]
        );
    }

    #[test]
    fn a_field_dropped_and_brought_back_adds_nothing_the_second_time() {
        let history = [
            version(1, 1, ""),
            version(2, 7, PRICE),
            version(3, 8, ""),
            version(4, 9, PRICE),
        ];
        assert_eq!(added(&history, 3), vec![]);
        assert_eq!(added(&history, 4), vec![]);
    }

    #[test]
    fn a_name_taken_by_a_column_of_the_build_gets_the_path_as_name() {
        let history = [
            version(1, 1, ""),
            version(
                2,
                7,
                r#"{"name": "browser_family", "type": ["null", "string"], "default": null}"#,
            ),
        ];
        assert_eq!(
            added(&history, 2),
            vec![(
                "event__browser_family".into(),
                "event.browser_family".into(),
                DataType::Utf8
            )]
        );
    }

    #[test]
    fn a_version_whose_field_cannot_share_the_column_says_why() {
        let history = [
            version(1, 1, ""),
            version(2, 7, PRICE),
            version(
                3,
                8,
                r#"{"name": "price", "type": ["null", "string"], "default": null}"#,
            ),
        ];
        let reason = changes(&history, 3).expect_err("conflict");
        assert!(reason.contains("field 'event.price'"), "{reason}");
        let versions: Vec<(u32, u32)> = columns_by_version(&history)
            .iter()
            .map(|v| (v.version, v.id))
            .collect();
        assert_eq!(versions, vec![(1, 1), (2, 7), (3, 8)]);
    }

    #[test]
    fn a_field_added_inside_a_record_grows_its_column() {
        let experiment = |extra: &str| {
            format!(
                r#"{{"name": "experiment", "type": ["null", {{"type": "record", "name": "Experiment",
                    "fields": [{{"name": "name", "type": "string"}}{extra}]}}], "default": null}}"#
            )
        };
        let bucket = r#", {"name": "bucket", "type": ["null", "long"], "default": null}"#;
        let history = [
            version(1, 1, ""),
            version(2, 7, &experiment("")),
            version(3, 8, &format!("{}, {PRICE}", experiment(bucket))),
            // Dropping the field again narrows nothing.
            version(4, 9, &experiment("")),
        ];
        let v3 = changes(&history, 3).expect("plans");
        assert_eq!(
            v3.added
                .iter()
                .map(|c| c.field.name().as_str())
                .collect::<Vec<_>>(),
            vec!["price"]
        );
        let [(grown, before)] = v3.widened.as_slice() else {
            panic!("one grown column: {:?}", v3.widened);
        };
        assert_eq!(grown.field.name(), "experiment");
        let names = |t: &DataType| -> Vec<String> {
            match t {
                DataType::Struct(fields) => fields.iter().map(|f| f.name().clone()).collect(),
                other => panic!("a struct: {other}"),
            }
        };
        assert_eq!(names(before), vec!["name".to_string()]);
        assert_eq!(
            names(grown.field.data_type()),
            vec!["name".to_string(), "bucket".to_string()]
        );
        let v4 = changes(&history, 4).expect("plans");
        assert!(v4.added.is_empty() && v4.widened.is_empty(), "{v4:?}");
    }
}
