//! A query's result and its renderings: a text table, CSV, JSON rows.
//!
//! In the text table and CSV a nested value (struct, list, map, union: a site's own
//! fields in `events`) is one cell holding its JSON text, as `to_json_rows` writes it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::json::writer::{EncoderOptions, make_encoder};
use deltalake::arrow::json::{ArrayWriter, WriterBuilder};
use deltalake::arrow::util::pretty::pretty_format_batches_with_schema;
use serde::{Deserialize, Serialize};

use crate::QueryError;

/// One JSON row: column name to value.
pub type JsonRow = serde_json::Map<String, serde_json::Value>;

/// The result of one statement, fully collected in memory.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Names and types of the result columns (present even when there are no rows).
    pub schema: SchemaRef,
    /// The rows, in the order the statement produced them.
    pub batches: Vec<RecordBatch>,
    /// Wall time from receiving the statement to having every row.
    pub elapsed: Duration,
}

impl QueryOutput {
    /// Number of result rows.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// A boxed text table, header included even when there are no rows; nested values as
    /// JSON text.
    pub fn to_table_string(&self) -> String {
        let flat = nested_as_json(&self.schema, &self.batches).and_then(|(schema, batches)| {
            pretty_format_batches_with_schema(schema, &batches).map(|table| table.to_string())
        });
        match flat {
            Ok(table) => table,
            // Only an unsupported column type gets here; say so rather than print nothing.
            Err(e) => format!("could not format the result as a table: {e}"),
        }
    }

    /// RFC 4180 CSV with a header line; nulls are empty fields, timestamps RFC 3339,
    /// nested values (which CSV has no form for) their JSON text.
    pub fn to_csv(&self) -> Result<String, QueryError> {
        let format_error = |e: &dyn fmt::Display| QueryError::Format {
            format: "csv",
            message: e.to_string(),
        };
        let (schema, batches) =
            nested_as_json(&self.schema, &self.batches).map_err(|e| format_error(&e))?;
        let mut buffer = Vec::new();
        {
            let mut writer = deltalake::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buffer);
            if batches.is_empty() {
                // The writer prints the header with the first batch; give it an empty one.
                writer
                    .write(&RecordBatch::new_empty(schema))
                    .map_err(|e| format_error(&e))?;
            }
            for batch in &batches {
                writer.write(batch).map_err(|e| format_error(&e))?;
            }
        }
        String::from_utf8(buffer).map_err(|e| format_error(&e))
    }

    /// One JSON object per row, every column present (null when null). Integers are
    /// numbers, timestamps RFC 3339 strings, dates `YYYY-MM-DD`, binary hex strings.
    pub fn to_json_rows(&self) -> Result<Vec<JsonRow>, QueryError> {
        serde_json::from_slice(&self.json_rows_text()?).map_err(|e| json_error(&e))
    }

    /// The rows of [`Self::to_json_rows`] as arrow writes them: one JSON array's text,
    /// objects keyed in the columns' order (callers check that it parses).
    fn json_rows_text(&self) -> Result<Vec<u8>, QueryError> {
        if self.row_count() == 0 {
            return Ok(b"[]".to_vec());
        }
        let mut writer: ArrayWriter<Vec<u8>> = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build(Vec::new());
        for batch in &self.batches {
            writer.write(batch).map_err(|e| json_error(&e))?;
        }
        writer.finish().map_err(|e| json_error(&e))?;
        Ok(writer.into_inner())
    }

    /// The body of `POST /api/sql` ([`QueryResponse`]'s shape), with the rows written
    /// once: as arrow writes them, not parsed into maps and written again (for a result
    /// of 1,555 rows that round trip was as long as the statement). Objects keep the
    /// columns' order.
    pub fn to_response_json(&self) -> Result<Vec<u8>, QueryError> {
        let rows = self.json_rows_text()?;
        // Checked, not trusted: a value arrow writes that JSON has no form for fails here.
        let rows: &serde_json::value::RawValue =
            serde_json::from_slice(&rows).map_err(|e| json_error(&e))?;
        let body = ResponseBody {
            columns: self.columns(),
            rows,
            row_count: self.row_count(),
            elapsed_ms: self.elapsed_ms(),
        };
        serde_json::to_vec(&body).map_err(|e| json_error(&e))
    }

    fn columns(&self) -> Vec<Column> {
        self.schema
            .fields()
            .iter()
            .map(|field| Column {
                name: field.name().clone(),
                data_type: field.data_type().to_string(),
            })
            .collect()
    }

    /// [`Self::elapsed`] in milliseconds.
    pub fn elapsed_ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1000.0
    }

    /// The JSON document of `POST /api/sql`, its rows parsed (what `--format json` prints;
    /// the API writes the same document with [`Self::to_response_json`]).
    pub fn to_response(&self) -> Result<QueryResponse, QueryError> {
        Ok(QueryResponse {
            columns: self.columns(),
            rows: self.to_json_rows()?,
            row_count: self.row_count(),
            elapsed_ms: self.elapsed_ms(),
        })
    }

    /// The result rendered in `format`, ending with a newline.
    pub fn render(&self, format: OutputFormat) -> Result<String, QueryError> {
        match format {
            OutputFormat::Table => Ok(self.to_table_string() + "\n"),
            OutputFormat::Csv => self.to_csv(),
            OutputFormat::Json => {
                let response = self.to_response()?;
                let mut text =
                    serde_json::to_string_pretty(&response).map_err(|e| QueryError::Format {
                        format: "json",
                        message: e.to_string(),
                    })?;
                text.push('\n');
                Ok(text)
            }
        }
    }
}

/// `schema` and `batches` with every nested column (struct, list, map, union) replaced by
/// a string column of each value's JSON text (null stays null); unchanged when none is
/// nested. arrow's CSV writer refuses nested columns, and its table prints them in a form
/// of its own.
fn nested_as_json(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let flat: SchemaRef = Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|field| -> FieldRef {
                if field.data_type().is_nested() {
                    Arc::new(Field::new(field.name(), DataType::Utf8, true))
                } else {
                    field.clone()
                }
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    // Same encoding as `to_json_rows`: a struct member that is null is written as null.
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let batches = batches
        .iter()
        .map(|batch| {
            let columns = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| {
                    if field.data_type().is_nested() {
                        json_text(field, column, &options)
                    } else {
                        Ok(column.clone())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(flat.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((flat, batches))
}

/// Each value of `column` as JSON text.
fn json_text(
    field: &FieldRef,
    column: &ArrayRef,
    options: &EncoderOptions,
) -> Result<ArrayRef, ArrowError> {
    let mut encoder = make_encoder(field, column.as_ref(), options)?;
    let mut texts = StringBuilder::with_capacity(column.len(), column.len() * 16);
    let mut buffer = Vec::new();
    for row in 0..column.len() {
        if encoder.is_null(row) {
            texts.append_null();
            continue;
        }
        buffer.clear();
        encoder.encode(row, &mut buffer);
        let text = std::str::from_utf8(&buffer)
            .map_err(|e| ArrowError::JsonError(format!("column {}: {e}", field.name())))?;
        texts.append_value(text);
    }
    Ok(Arc::new(texts.finish()))
}

/// A result column as described to API clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Arrow data type, as Arrow prints it (`Int64`, `Utf8View`, `Date32`, …).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The success body of `POST /api/sql`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// Result columns in order (JSON objects do not keep it).
    pub columns: Vec<Column>,
    /// One object per row.
    pub rows: Vec<JsonRow>,
    /// `rows.len()`.
    pub row_count: usize,
    /// Time spent on the statement, in milliseconds.
    pub elapsed_ms: f64,
}

/// [`QueryResponse`] as written, its rows as arrow's JSON writer wrote them.
#[derive(Serialize)]
struct ResponseBody<'a> {
    columns: Vec<Column>,
    rows: &'a serde_json::value::RawValue,
    row_count: usize,
    elapsed_ms: f64,
}

/// A result that could not be written as JSON.
fn json_error(error: &dyn fmt::Display) -> QueryError {
    QueryError::Format {
        format: "json",
        message: error.to_string(),
    }
}

/// How the CLI prints a result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A boxed text table.
    #[default]
    Table,
    /// The same JSON document as the HTTP API.
    Json,
    /// CSV with a header line.
    Csv,
}

impl OutputFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Table, OutputFormat::Json, OutputFormat::Csv];

    /// The lowercase name used on the command line and in config.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An output format name that is not `table`, `json` or `csv`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?}: expected table, json or csv")]
pub struct UnknownOutputFormat(pub String);

impl FromStr for OutputFormat {
    type Err = UnknownOutputFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownOutputFormat(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{
        ArrayRef, BinaryArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn sample() -> QueryOutput {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d", DataType::Date32, true),
            Field::new("b", DataType::Binary, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(9_007_199_254_740_993), None])),
            Arc::new(StringArray::from(vec![Some("a,b"), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_653_457_293_648_681), None])
                    .with_timezone("UTC"),
            ),
            Arc::new(Date32Array::from(vec![Some(19_137), None])),
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("valid batch");
        QueryOutput {
            schema,
            batches: vec![batch],
            elapsed: Duration::from_millis(3),
        }
    }

    #[test]
    fn json_rows_use_numbers_rfc3339_dates_and_hex() {
        let rows = sample().to_json_rows().expect("json");
        let first = serde_json::Value::Object(rows[0].clone());
        assert_eq!(
            first,
            serde_json::json!({
                "n": 9_007_199_254_740_993_i64,
                "s": "a,b",
                "t": "2022-05-25T05:41:33.648681Z",
                "d": "2022-05-25",
                "b": "00ff",
            })
        );
        let second = serde_json::Value::Object(rows[1].clone());
        assert_eq!(
            second,
            serde_json::json!({"n": null, "s": null, "t": null, "d": null, "b": null})
        );
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let csv = sample().to_csv().expect("csv");
        assert_eq!(
            csv,
            "n,s,t,d,b\n9007199254740993,\"a,b\",2022-05-25T05:41:33.648681Z,2022-05-25,00ff\n,,,,\n"
        );
    }

    #[test]
    fn empty_results_keep_their_header() {
        let mut output = sample();
        output.batches.clear();
        assert_eq!(output.row_count(), 0);
        assert_eq!(output.to_csv().expect("csv"), "n,s,t,d,b\n");
        assert!(output.to_table_string().contains("| n | s | t | d | b |"));
        assert!(output.to_json_rows().expect("json").is_empty());
    }

    /// A struct, a list and a map column, as a site's own fields land in `events`, with a
    /// null row and a struct member that is null.
    fn nested() -> QueryOutput {
        use deltalake::arrow::array::{
            Float64Array, Int64Builder, ListBuilder, MapBuilder, StringBuilder, StructArray,
        };
        use deltalake::arrow::buffer::NullBuffer;
        let experiment = StructArray::try_new(
            vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("variant", DataType::Int64, true),
            ]
            .into(),
            vec![
                Arc::new(StringArray::from(vec![Some("a,b"), None])) as ArrayRef,
                Arc::new(Int64Array::from(vec![None, Some(0)])),
            ],
            Some(NullBuffer::from(vec![true, false])),
        )
        .expect("struct");
        let mut cart = ListBuilder::new(Int64Builder::new());
        cart.values().append_value(1);
        cart.values().append_value(2);
        cart.append(true);
        cart.append(false);
        let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        labels.keys().append_value("channel");
        labels.values().append_value("web \"x\"");
        labels.append(true).expect("map row");
        labels.append(false).expect("map row");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![Some(1.25), None])),
            Arc::new(experiment),
            Arc::new(cart.finish()),
            Arc::new(labels.finish()),
        ];
        let schema = Arc::new(Schema::new(
            ["price", "experiment", "cart", "labels"]
                .iter()
                .zip(&columns)
                .map(|(name, column)| Field::new(*name, column.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("valid batch");
        QueryOutput {
            schema,
            batches: vec![batch],
            elapsed: Duration::from_millis(1),
        }
    }

    #[test]
    fn csv_writes_nested_values_as_their_json_text() {
        let csv = nested().to_csv().expect("csv");
        assert_eq!(
            csv,
            "price,experiment,cart,labels\n\
             1.25,\"{\"\"name\"\":\"\"a,b\"\",\"\"variant\"\":null}\",\"[1,2]\",\"{\"\"channel\"\":\"\"web \\\"\"x\\\"\"\"\"}\"\n\
             ,,,\n"
        );
        // Each cell is the value as the JSON rows give it.
        let rows = nested().to_json_rows().expect("json");
        let cell: serde_json::Value =
            serde_json::from_str(r#"{"name":"a,b","variant":null}"#).expect("json");
        assert_eq!(rows[0]["experiment"], cell);
    }

    #[test]
    fn the_table_shows_nested_values_as_json_and_empty_results_keep_nested_headers() {
        let table = nested().to_table_string();
        assert!(
            table.contains(r#"{"name":"a,b","variant":null}"#),
            "{table}"
        );
        assert!(table.contains("[1,2]"), "{table}");
        assert!(table.contains(r#"{"channel":"web \"x\""}"#), "{table}");
        let mut empty = nested();
        empty.batches.clear();
        assert_eq!(
            empty.to_csv().expect("csv"),
            "price,experiment,cart,labels\n"
        );
    }

    #[test]
    fn the_api_body_is_the_response_with_rows_keyed_in_column_order() {
        for output in [
            sample(),
            nested(),
            QueryOutput {
                batches: Vec::new(),
                ..sample()
            },
        ] {
            let body = output.to_response_json().expect("body");
            let parsed: QueryResponse =
                serde_json::from_slice(&body).expect("the response's shape");
            assert_eq!(parsed, output.to_response().expect("response"));
            let text = String::from_utf8(body).expect("utf-8");
            if let Some(first) = output.batches.first() {
                let at: Vec<usize> = first
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| text.rfind(&format!("\"{}\":", f.name())).expect("key"))
                    .collect();
                assert!(at.is_sorted(), "{text}");
            }
        }
        let mut nan = sample();
        nan.schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        nan.batches = vec![
            RecordBatch::try_new(
                nan.schema.clone(),
                vec![Arc::new(Float64Array::from(vec![f64::NAN])) as ArrayRef],
            )
            .expect("batch"),
        ];
        // Whatever arrow makes of it, the body is JSON or an error, never invalid JSON.
        if let Ok(body) = nan.to_response_json() {
            serde_json::from_slice::<serde_json::Value>(&body).expect("JSON");
        }
    }

    #[test]
    fn output_format_parses_its_names() {
        for format in OutputFormat::ALL {
            assert_eq!(format.name().parse::<OutputFormat>(), Ok(format));
        }
        assert_eq!("JSON".parse::<OutputFormat>(), Ok(OutputFormat::Json));
        assert!("yaml".parse::<OutputFormat>().is_err());
    }
}
