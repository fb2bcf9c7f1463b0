//! The lake's tables as a DataFusion schema, each pinned to a Delta version until refreshed.
//!
//! DataFusion looks tables up while planning; this schema answers from providers built for
//! the version last loaded, and [`LakeSchema::refresh`] moves a table to its newest version
//! before a statement is planned. A custom schema (rather than re-registering tables in a
//! `MemorySchemaProvider`) swaps providers atomically under concurrent queries, and refuses
//! `register_table`, so nothing can be added next to the lake's tables.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use clickstream_lake::{Lake, LakeTable, TableKind};
use deltalake::datafusion::catalog::{SchemaProvider, TableProvider};
use deltalake::datafusion::error::DataFusionError;
use tokio::sync::Mutex;

use crate::QueryError;
use crate::scan::LakeScan;

/// The four lake tables, by name.
#[derive(Debug)]
pub(crate) struct LakeSchema {
    slots: BTreeMap<&'static str, TableSlot>,
}

/// One table: the handle that loads new versions, and the provider of the loaded one.
struct TableSlot {
    kind: TableKind,
    /// Held while loading, so concurrent refreshes of one table do the work once.
    table: Mutex<LakeTable>,
    current: RwLock<Pinned>,
}

/// A provider pinned to one Delta version.
#[derive(Clone)]
struct Pinned {
    version: i64,
    provider: Arc<dyn TableProvider>,
}

impl std::fmt::Debug for TableSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSlot")
            .field("kind", &self.kind)
            .field("version", &self.pinned().version)
            .finish_non_exhaustive()
    }
}

impl TableSlot {
    fn pinned(&self) -> Pinned {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads commits made since the last refresh; builds a new provider only if there were any.
    async fn refresh(&self) -> Result<(), QueryError> {
        let mut table = self.table.lock().await;
        table.refresh().await?;
        let version = table.version();
        if version == self.pinned().version {
            return Ok(());
        }
        let provider = provider(self.kind, &table).await?;
        drop(table);
        tracing::debug!(
            table = self.kind.name(),
            version,
            "query sees a new table version"
        );
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        // Another refresh may have pinned an even newer version meanwhile: never go back.
        if version > current.version {
            *current = Pinned { version, provider };
        }
        Ok(())
    }
}

/// A DataFusion provider reading `table` at its loaded version: a Parquet scan of its files
/// when the version needs nothing more of a reader, else delta-rs's provider.
async fn provider(
    kind: TableKind,
    table: &LakeTable,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    if table.reads_as_plain_parquet()? {
        return Ok(Arc::new(LakeScan::of(kind, table)?));
    }
    tracing::debug!(
        table = kind.name(),
        "table needs reader features: read through delta-rs"
    );
    table
        .delta_table()
        .table_provider()
        .await
        .map_err(|e| QueryError::Execution(format!("table {}: {e}", kind.name())))
}

impl LakeSchema {
    /// Opens every lake table at its latest version.
    pub(crate) async fn open(lake: &Lake) -> Result<Self, QueryError> {
        let mut slots = BTreeMap::new();
        for kind in TableKind::ALL {
            let table = lake.table(kind).await?;
            let pinned = Pinned {
                version: table.version(),
                provider: provider(kind, &table).await?,
            };
            let slot = TableSlot {
                kind,
                table: Mutex::new(table),
                current: RwLock::new(pinned),
            };
            slots.insert(kind.name(), slot);
        }
        Ok(Self { slots })
    }

    /// Moves the named lake tables to their latest versions; other names are ignored (they
    /// are CTEs, `information_schema` views or unknown tables the planner will report).
    pub(crate) async fn refresh<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), QueryError> {
        let mut wanted: Vec<&TableSlot> = names
            .into_iter()
            .filter_map(|name| self.slots.get(name))
            .collect();
        wanted.sort_by_key(|slot| slot.kind.name());
        wanted.dedup_by_key(|slot| slot.kind.name());
        futures::future::try_join_all(wanted.into_iter().map(TableSlot::refresh)).await?;
        Ok(())
    }

    /// The Delta version each table is pinned to, by name.
    pub(crate) fn versions(&self) -> BTreeMap<&'static str, i64> {
        self.slots
            .iter()
            .map(|(name, slot)| (*name, slot.pinned().version))
            .collect()
    }
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.slots.keys().map(|name| name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.slots.get(name).map(|slot| slot.pinned().provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }
}
