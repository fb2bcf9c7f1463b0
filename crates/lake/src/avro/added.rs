//! Which `events` columns each version of the raw subject adds, as the schemas page shows
//! them: the columns [`WriterPlan`] gives the version whose Avro path no earlier version
//! has.

use super::plan::{PlannedColumn, SCHEMA_ID_KEY, SubjectVersion, WriterPlan};
use crate::TableKind;

/// The `events` columns version `version` of the subject adds, named and typed as the
/// processor plans them on a table with this build's columns (`history` in any order,
/// versions after `version` ignored). A path an earlier version already has adds nothing,
/// even when a version in between dropped it: the column stays in the table.
///
/// `Err` when `version` is not in `history`, or when its records cannot land (a field
/// whose type conflicts with an earlier version's column): the reason their dead letters
/// carry.
pub fn columns_added(
    history: &[SubjectVersion],
    version: u32,
) -> Result<Vec<PlannedColumn>, String> {
    let Some(this) = history.iter().find(|v| v.version == version) else {
        return Err(format!(
            "version {version} is not among the subject's versions"
        ));
    };
    let up_to: Vec<SubjectVersion> = history
        .iter()
        .filter(|v| v.version <= version)
        .cloned()
        .collect();
    let plan = WriterPlan::new(
        &TableKind::Events.arrow_schema(),
        &up_to,
        this.id,
        &this.schema,
    )?;
    // A column carries the id of the earliest version with its path (ids are unique
    // within a subject: registering a schema again returns its existing version).
    let own_id = this.id.to_string();
    Ok(plan
        .columns()
        .iter()
        .filter(|c| c.field.metadata().get(SCHEMA_ID_KEY) == Some(&own_id))
        .cloned()
        .collect())
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

    /// `(column, path, type)` of what `version` adds.
    fn added(history: &[SubjectVersion], version: u32) -> Vec<(String, String, DataType)> {
        columns_added(history, version)
            .expect("plans")
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
        let reason = columns_added(&history, 3).expect_err("conflict");
        assert!(reason.contains("field 'event.price'"), "{reason}");
        let missing = columns_added(&history, 5).expect_err("no such version");
        assert!(missing.contains("version 5"), "{missing}");
    }
}
