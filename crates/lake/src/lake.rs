//! The lake: a root URL under which every table lives, created on open.

use std::sync::Arc;

use clickstream_secret::Settings;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use url::Url;

use crate::avro::AVRO_PATH_KEY;
use crate::schema::TABLE_PROPERTIES;
use crate::table::LakeTable;
use crate::{LakeError, TableKind};

/// Directory under the root that holds the tables (the original system's lake path).
pub const LAKE_PREFIX: &str = "clickstream-data";

/// The lake: a root URL and the object-store options to reach it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: Arc<Settings>,
}

impl Lake {
    /// Opens the lake at `root_url` (`file://`, or `s3://` with the endpoint and credentials
    /// in `storage_options`) and creates every table that does not exist yet, with its
    /// schema and partitioning. Idempotent, and safe when several processes open a new lake
    /// at once: losing the race to create a table is not an error. An existing table whose
    /// schema differs from this build's is a [`LakeError::SchemaMismatch`].
    pub async fn open(root_url: &str, storage_options: &Settings) -> Result<Lake, LakeError> {
        let root = parse_root(root_url)?;
        let lake = Lake {
            root,
            storage_options: Arc::new(storage_options.clone()),
        };
        if lake.root.scheme() == "file" {
            lake.create_local_dirs().await?;
        }
        futures::future::try_join_all(TableKind::ALL.map(|kind| lake.ensure_table(kind))).await?;
        tracing::debug!(root = %lake.root, "lake opened");
        Ok(lake)
    }

    /// The lake's root URL (always ending in `/`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The URL of a table: `<root>/clickstream-data/<table>/`.
    pub fn table_url(&self, kind: TableKind) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push(LAKE_PREFIX)
                .push(kind.name())
                .push("");
        }
        url
    }

    /// A table, loaded at its latest version.
    pub async fn table(&self, kind: TableKind) -> Result<LakeTable, LakeError> {
        let mut table = self.delta_table(kind)?;
        table
            .load()
            .await
            .map_err(|err| LakeError::op(kind.name(), "load", err))?;
        Ok(LakeTable::new(kind, table, self.storage_options.clone()))
    }

    /// An unloaded handle on a table's location.
    fn delta_table(&self, kind: TableKind) -> Result<DeltaTable, LakeError> {
        DeltaTableBuilder::from_url(self.table_url(kind))
            .and_then(|builder| {
                let options = self
                    .storage_options
                    .exposed()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                builder.with_storage_options(options).build()
            })
            .map_err(|err| LakeError::op(kind.name(), "open", err))
    }

    async fn create_local_dirs(&self) -> Result<(), LakeError> {
        for kind in TableKind::ALL {
            let url = self.table_url(kind);
            let path = url.to_file_path().map_err(|()| LakeError::InvalidRoot {
                url: self.root.to_string(),
                reason: "not a local path".to_string(),
            })?;
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|source| LakeError::CreateDir {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Creates `kind`'s table unless it exists, then checks its schema, adding the columns
    /// this build appends to it (see [`check_layout`]).
    async fn ensure_table(&self, kind: TableKind) -> Result<(), LakeError> {
        let name = kind.name();
        let schema: StructType = kind
            .arrow_schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|err| LakeError::SchemaMismatch {
                table: name,
                detail: format!("cannot express the arrow schema in delta: {err}"),
            })?;
        let handle = self.delta_table(kind)?;
        let created = handle
            .create()
            .with_save_mode(SaveMode::Ignore)
            .with_table_name(name)
            .with_comment(kind.description())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(kind.partition_columns().iter().copied())
            .with_configuration(
                TABLE_PROPERTIES
                    .iter()
                    .map(|(key, value)| (*key, Some(*value))),
            )
            // Without this, a process that loses the race to write version 0 "resolves the
            // conflict" and commits its create again as version 1 (new table id, metadata
            // and protocol rewritten). With no retries it fails, and the load below succeeds.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        let table = match created {
            Ok(table) => table,
            Err(create_err) => {
                // Another process may have created the table between our existence check and
                // our commit of version 0: then the table loads, and that is success.
                let mut table = self.delta_table(kind)?;
                match table.load().await {
                    Ok(()) => {
                        tracing::debug!(table = name, error = %create_err, "table created concurrently");
                        table
                    }
                    Err(_) => return Err(LakeError::op(name, "create", create_err)),
                }
            }
        };
        let missing = check_layout(kind, &table)?;
        if missing.is_empty() {
            return Ok(());
        }
        self.add_columns(kind, table, missing).await
    }

    /// Schema evolution: adds nullable columns at the end of a table written by an older
    /// build (a Delta metadata commit; existing files read the new columns as null).
    async fn add_columns(
        &self,
        kind: TableKind,
        table: DeltaTable,
        missing: Vec<deltalake::arrow::datatypes::FieldRef>,
    ) -> Result<(), LakeError> {
        let name = kind.name();
        let names: Vec<String> = missing.iter().map(|f| f.name().clone()).collect();
        let fields: StructType = (&deltalake::arrow::datatypes::Schema::new(missing))
            .try_into_kernel()
            .map_err(|err| LakeError::SchemaMismatch {
                table: name,
                detail: format!("cannot express the new columns in delta: {err}"),
            })?;
        match table
            .add_columns()
            .with_fields(fields.fields().cloned().collect::<Vec<_>>())
            .await
        {
            Ok(_) => {
                tracing::info!(table = name, columns = ?names, "table schema evolved: columns added");
                Ok(())
            }
            Err(add_err) => {
                // Another process may have evolved it first: then it now checks out.
                let mut table = self.delta_table(kind)?;
                table
                    .load()
                    .await
                    .map_err(|err| LakeError::op(name, "load", err))?;
                if check_layout(kind, &table)?.is_empty() {
                    Ok(())
                } else {
                    Err(LakeError::op(name, "add columns", add_err))
                }
            }
        }
    }
}

/// Parses a root URL, accepting a bare absolute path as `file://`, and makes it end in `/`.
fn parse_root(root_url: &str) -> Result<Url, LakeError> {
    let invalid = |reason: String| LakeError::InvalidRoot {
        url: root_url.to_string(),
        reason,
    };
    let mut url = match Url::parse(root_url) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let path = std::path::absolute(root_url).map_err(|err| invalid(err.to_string()))?;
            Url::from_directory_path(&path)
                .map_err(|()| invalid("not an absolute local path".to_string()))?
        }
        Err(err) => return Err(invalid(err.to_string())),
    };
    if url.cannot_be_a_base() {
        return Err(invalid("not a hierarchical URL".to_string()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Checks that an existing table has the schema and partitioning this build writes, or
/// an older form of it: every column of this build that the table has, with the same type
/// and nullability; the ones it lacks nullable (they are returned, to add); any other
/// column a site's own field (tagged with its Avro path, see [`crate::avro`]). A nullable
/// column of this build that the table already holds as a site's field of that name (the
/// table was evolved with it before this build added the column) stays the site's: the
/// appends leave this build's values out (see `evolve::plan`), and a warning says so.
fn check_layout(
    kind: TableKind,
    table: &DeltaTable,
) -> Result<Vec<deltalake::arrow::datatypes::FieldRef>, LakeError> {
    let name = kind.name();
    let state = table
        .snapshot()
        .map_err(|err| LakeError::op(name, "load", err))?;
    let expected = kind.arrow_schema();
    let found = state.snapshot().arrow_schema();
    let mismatch = |detail: String| LakeError::SchemaMismatch {
        table: name,
        detail,
    };
    let mut missing = Vec::new();
    for want in expected.fields() {
        match found.field_with_name(want.name()) {
            Ok(have) if want.is_nullable() && have.metadata().contains_key(AVRO_PATH_KEY) => {
                tracing::warn!(
                    table = name,
                    column = want.name(),
                    field = have.metadata().get(AVRO_PATH_KEY).map(String::as_str),
                    "the column holds the site's field of that name, so this build's values \
                     of it are not recorded in this table"
                );
            }
            Ok(have)
                if have.data_type() == want.data_type()
                    && have.is_nullable() == want.is_nullable() => {}
            Ok(have) => {
                return Err(mismatch(format!(
                    "column {} is {}, expected {}",
                    want.name(),
                    describe(have),
                    describe(want)
                )));
            }
            Err(_) if want.is_nullable() => missing.push(want.clone()),
            Err(_) => {
                return Err(mismatch(format!(
                    "column {} is missing and not nullable",
                    describe(want)
                )));
            }
        }
    }
    let foreign: Vec<String> = found
        .fields()
        .iter()
        .filter(|f| {
            expected.field_with_name(f.name()).is_err() && !f.metadata().contains_key(AVRO_PATH_KEY)
        })
        .map(|f| describe(f))
        .collect();
    if !foreign.is_empty() {
        return Err(mismatch(format!(
            "columns [{}] are neither this build's nor a schema field's",
            foreign.join(", ")
        )));
    }
    let partitions = state.metadata().partition_columns();
    if partitions
        .iter()
        .map(String::as_str)
        .ne(kind.partition_columns().iter().copied())
    {
        return Err(mismatch(format!(
            "expected partition columns {:?}, found {partitions:?}",
            kind.partition_columns()
        )));
    }
    Ok(missing)
}

fn describe(field: &deltalake::arrow::datatypes::Field) -> String {
    format!(
        "{}:{}{}",
        field.name(),
        field.data_type(),
        if field.is_nullable() { "?" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_a_trailing_slash_and_tables_live_under_the_prefix() {
        let root = parse_root("file:///tmp/lake").expect("root");
        assert_eq!(root.as_str(), "file:///tmp/lake/");
        let lake = Lake {
            root,
            storage_options: Arc::default(),
        };
        assert_eq!(
            lake.table_url(TableKind::Events).as_str(),
            "file:///tmp/lake/clickstream-data/events/"
        );
        let bucket = Lake {
            root: parse_root("s3://acme.eu-west-1.stg.data.lake").expect("root"),
            storage_options: Arc::default(),
        };
        assert_eq!(
            bucket.table_url(TableKind::UniqueUsersDaily).as_str(),
            "s3://acme.eu-west-1.stg.data.lake/clickstream-data/unique_users_daily/"
        );
    }

    #[test]
    fn accepts_absolute_paths_and_rejects_non_hierarchical_urls() {
        assert_eq!(
            parse_root("/srv/lake").expect("root").as_str(),
            "file:///srv/lake/"
        );
        assert!(parse_root("mailto:someone@example.com").is_err());
    }
}
