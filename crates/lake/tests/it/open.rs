//! Opening the lake: table creation, idempotence, races, layout checks.

use clickstream_lake::{Lake, LakeError, TableKind};
use clickstream_secret::Settings;

use crate::common::{root_of, temp_lake};

#[tokio::test]
async fn open_creates_every_table_at_version_zero_with_protocol_1_2() {
    let (dir, lake) = temp_lake().await;
    for kind in TableKind::ALL {
        let table = lake.table(kind).await.expect("load");
        assert_eq!(table.version(), 0, "{kind}");
        assert_eq!(table.kind(), kind);
        let protocol = table
            .delta_table()
            .snapshot()
            .expect("state")
            .protocol()
            .clone();
        assert_eq!(protocol.min_reader_version(), 1, "{kind}");
        assert_eq!(protocol.min_writer_version(), 2, "{kind}");
        let log = dir
            .path()
            .join("clickstream-data")
            .join(kind.name())
            .join("_delta_log/00000000000000000000.json");
        assert!(log.is_file(), "{}", log.display());
        assert!(table.files().expect("files").is_empty());
    }
    assert_eq!(
        lake.table_url(TableKind::Events).as_str(),
        format!("{}clickstream-data/events/", root_of(dir.path()))
    );
}

#[tokio::test]
async fn reopening_an_existing_lake_changes_nothing() {
    let (dir, _lake) = temp_lake().await;
    let again = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("reopen");
    for kind in TableKind::ALL {
        assert_eq!(again.table(kind).await.expect("load").version(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_new_root_both_succeed() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = root_of(&dir.path().join("fresh"));
        let options = Settings::new();
        let (a, b) = tokio::join!(Lake::open(&root, &options), Lake::open(&root, &options));
        let a = a.expect("first open");
        b.expect("second open");
        for kind in TableKind::ALL {
            assert_eq!(a.table(kind).await.expect("load").version(), 0, "{kind}");
        }
    }
}

#[tokio::test]
async fn accepts_a_bare_directory_path_as_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plain");
    let lake = Lake::open(path.to_str().expect("utf-8"), &Settings::new())
        .await
        .expect("open");
    assert_eq!(lake.root().scheme(), "file");
    assert!(
        path.join("clickstream-data/dead_letters/_delta_log")
            .is_dir()
    );
}

/// Columns of `events` before the enrichment columns were added.
const EVENTS_COLUMNS_BEFORE_ENRICHMENT: usize = 21;

#[tokio::test]
async fn evolves_an_events_table_written_before_the_enrichment_columns() {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("clickstream-data/events");
    std::fs::create_dir_all(&path).expect("mkdir");
    let old_rows = crate::common::events(0..3, "2022-05-25T05:41:33")
        .project(&(0..EVENTS_COLUMNS_BEFORE_ENRICHMENT).collect::<Vec<_>>())
        .expect("old columns");
    let old_schema: deltalake::kernel::StructType = old_rows
        .schema()
        .as_ref()
        .try_into_kernel()
        .expect("delta schema");
    let table =
        deltalake::DeltaTable::try_from_url(url::Url::from_directory_path(&path).expect("url"))
            .await
            .expect("handle")
            .create()
            .with_columns(old_schema.fields().cloned())
            .with_partition_columns(["event_date"])
            .await
            .expect("create an old-layout table");
    table.write(vec![old_rows]).await.expect("write old rows");

    let lake = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("open evolves the table");
    let mut events = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(events.version(), 2, "create, write, add columns");
    let schema = events
        .delta_table()
        .snapshot()
        .expect("state")
        .snapshot()
        .arrow_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let expected = TableKind::Events.arrow_schema();
    let expected_names: Vec<&str> = expected
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, expected_names);
    // New rows with every column land next to the old ones, which read as null.
    events
        .append(
            vec![crate::common::events(3..5, "2022-05-26T00:00:00")],
            &[],
        )
        .await
        .expect("append after evolution");
    assert_eq!(crate::common::count_and_sum(&events, "id").await, (5, 10));
    // Opening again finds nothing to add.
    Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("reopen");
    assert_eq!(
        lake.table(TableKind::Events).await.expect("load").version(),
        3
    );
}

/// A table evolved with a site's field `source` before this build added its own `source`
/// column: the site's field keeps the name, and this build's values are left out.
#[tokio::test]
async fn a_site_field_named_like_a_column_of_this_build_keeps_its_column() {
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("clickstream-data/events");
    std::fs::create_dir_all(&path).expect("mkdir");
    let ours = TableKind::Events.arrow_schema();
    let tagged = std::collections::HashMap::from([(
        clickstream_lake::avro::AVRO_PATH_KEY.to_string(),
        "source".to_string(),
    )]);
    let mut fields: Vec<Field> = ours
        .fields()
        .iter()
        .filter(|f| f.name() != "source")
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("source", DataType::Int64, true).with_metadata(tagged));
    let old_schema: deltalake::kernel::StructType = (&Schema::new(fields))
        .try_into_kernel()
        .expect("delta schema");
    deltalake::DeltaTable::try_from_url(url::Url::from_directory_path(&path).expect("url"))
        .await
        .expect("handle")
        .create()
        .with_columns(old_schema.fields().cloned())
        .with_partition_columns(["event_date"])
        .await
        .expect("create a table with the site's field");

    let lake = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect("open accepts the site's column");
    let mut events = lake.table(TableKind::Events).await.expect("load");
    assert_eq!(events.version(), 0, "nothing to add");
    // This build's rows carry `source` = "web": left out, never written into the Int64.
    events
        .append(
            vec![crate::common::events(0..3, "2022-05-26T00:00:00")],
            &[],
        )
        .await
        .expect("append");
    assert_eq!(crate::common::count_and_sum(&events, "id").await, (3, 3));
    assert_eq!(
        crate::common::count_and_sum(&events, "source").await,
        (3, 0)
    );
}

#[tokio::test]
async fn refuses_an_existing_table_with_another_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url =
        url::Url::from_directory_path(dir.path().join("clickstream-data/events")).expect("url");
    std::fs::create_dir_all(dir.path().join("clickstream-data/events")).expect("mkdir");
    deltalake::DeltaTable::try_from_url(url)
        .await
        .expect("handle")
        .create()
        .with_column(
            "something_else",
            deltalake::kernel::DataType::LONG,
            true,
            None,
        )
        .await
        .expect("create foreign table");
    let err = Lake::open(&root_of(dir.path()), &Settings::new())
        .await
        .expect_err("schema mismatch");
    assert!(
        matches!(
            err,
            LakeError::SchemaMismatch {
                table: "events",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn reports_an_unusable_root_as_a_non_transient_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = Lake::open(&root_of(&file), &Settings::new())
        .await
        .expect_err("cannot create under a file");
    assert!(matches!(err, LakeError::CreateDir { .. }), "{err}");
    assert!(!err.is_transient(), "{err}");
    let err = Lake::open("mailto:nobody@example.com", &Settings::new())
        .await
        .expect_err("not hierarchical");
    assert!(matches!(err, LakeError::InvalidRoot { .. }), "{err}");
}

/// Compile-time check: handles and the futures of their methods can move between tasks.
#[allow(dead_code)]
fn handles_and_futures_are_send(lake: Lake, mut table: clickstream_lake::LakeTable) {
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync>() {}
    shared::<Lake>();
    shared::<clickstream_lake::LakeTable>();
    shared::<LakeError>();
    send(Lake::open("file:///x", &Settings::new()));
    send(lake.table(TableKind::Events));
    send(table.refresh());
    send(table.txn_version("a"));
    send(table.append(Vec::new(), &[]));
    send(table.overwrite(clickstream_lake::UniqueUsersBuilder::new().finish(), &[]));
    send(table.optimize(1));
    send(table.vacuum(std::time::Duration::ZERO, true));
    send(table.history(1));
}
