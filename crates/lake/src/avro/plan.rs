//! Which events-table column each field of a writer schema lands in, per the stream's
//! [`Layout`].
//!
//! The seed fields have their own columns (the layout's seed paths: for the clickstream
//! stream [`super::SEED_PATHS`]). Every other field of the top-level record and of the
//! layout's flattened record (`event`; Segment's `context`) becomes a top-level column
//! named by the field, with the flattened record's prefix (`context_locale`); deeper
//! records stay structs. A name taken already (by a column of the layout's table or by
//! another path) becomes the path joined with `__` (`event__session_id`,
//! `context__locale`, or `raw__<name>` at the top level).
//!
//! **Which name and type win** is a pure function of the table's committed columns, the
//! raw subject's versions and the writer schema, so a replay after a crash decides exactly
//! as the first attempt did, whatever records shared its batch:
//! 1. a column already in the table (found by the Avro path in its metadata) keeps its
//!    name and its leaf types;
//! 2. otherwise the earliest subject version that has the path decides, versions taken in
//!    order and fields in schema order (a writer id outside the subject comes last);
//! 3. records grow: a version adding fields inside a record (at any depth, through arrays
//!    and maps) widens the struct with them, children in order of first appearance;
//! 4. a writer whose type for a path does not fit the column's (a leaf of another type)
//!    is a conflict: its records are dead letters with the reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::Value;
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, Schema as ArrowSchema};

use super::check::check;
use super::layout::Layout;
use super::mapping::{Names, Scope, collect_names, holds, merge_types};

/// Field metadata key holding the Avro path a user column comes from.
pub const AVRO_PATH_KEY: &str = "clickstream.avro.path";
/// Field metadata key holding the id of the schema version that added the column.
pub const SCHEMA_ID_KEY: &str = "clickstream.schema_id";

/// One version of the raw subject.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    /// Version number within the subject.
    pub version: u32,
    /// Registry id of its schema.
    pub id: u32,
    /// The schema.
    pub schema: Arc<Schema>,
}

/// Where a user field's value sits in a decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// A field of the top-level record.
    Top(usize),
    /// A field of a top-level record field (the flattened record).
    Nested { parent: usize, field: usize },
}

/// A field of a schema that is not one of the seed's.
#[derive(Debug, Clone)]
struct UserField {
    path: String,
    name: String,
    top_level: bool,
    access: Access,
    schema: Schema,
}

/// One column a writer schema fills.
#[derive(Debug, Clone)]
pub struct PlannedColumn {
    /// The column, with its Avro path and origin in the metadata.
    pub field: FieldRef,
    /// Avro path of the field (`event.price`).
    pub path: String,
    access: Access,
    schema: Schema,
    /// Whether a value can be refused (timestamps, decimals).
    fallible: bool,
}

/// How the records of one writer schema fill the user columns of `events`.
#[derive(Debug, Clone)]
pub struct WriterPlan {
    schema_id: u32,
    columns: Vec<PlannedColumn>,
    names: Names,
}

impl WriterPlan {
    /// Plans the columns of writer schema `writer_id` of the clickstream stream
    /// ([`Layout::CLICKSTREAM`]) against the `events` table's columns and the subject's
    /// versions (in any order). `Err` is the reason its records cannot land.
    pub fn new(
        table: &ArrowSchema,
        history: &[SubjectVersion],
        writer_id: u32,
        writer: &Schema,
    ) -> Result<WriterPlan, String> {
        WriterPlan::for_layout(&Layout::CLICKSTREAM, table, history, writer_id, writer)
    }

    /// Plans the columns of writer schema `writer_id` of a stream laid out as `layout`
    /// against its table's columns (`table`, as committed) and the subject's versions (in
    /// any order). `Err` is the reason its records cannot land.
    pub fn for_layout(
        layout: &Layout,
        table: &ArrowSchema,
        history: &[SubjectVersion],
        writer_id: u32,
        writer: &Schema,
    ) -> Result<WriterPlan, String> {
        let assigned = assign_columns(layout, table, history, writer_id, writer)?;
        let mut names = Names::new();
        collect_names(writer, &mut names);
        let scope = Scope { names: &names };
        let mut columns = Vec::new();
        for user in user_fields(layout, writer, &names)? {
            let Some(data_type) = scope.data_type(&user.schema) else {
                continue;
            };
            let Some(field) = assigned.get(&user.path) else {
                continue;
            };
            if !holds(field.data_type(), &data_type) {
                return Err(conflict(&user.path, field, writer_id, &data_type));
            }
            columns.push(PlannedColumn {
                field: field.clone(),
                fallible: fallible(&scope, &user.schema, &mut Vec::new()),
                path: user.path,
                access: user.access,
                schema: user.schema,
            });
        }
        Ok(WriterPlan {
            schema_id: writer_id,
            columns,
            names,
        })
    }

    /// The writer schema's id.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// The user columns this writer fills, in its field order.
    pub fn columns(&self) -> &[PlannedColumn] {
        &self.columns
    }

    /// The named types of the writer schema.
    pub(crate) fn scope(&self) -> Scope<'_> {
        Scope { names: &self.names }
    }

    /// Column `index`'s value in `record` (`None`: absent or under a null parent).
    pub(crate) fn value<'v>(&self, index: usize, record: &'v Value) -> Option<&'v Value> {
        let Value::Record(top) = record else {
            return None;
        };
        match self.columns.get(index)?.access {
            Access::Top(i) => top.get(i).map(|(_, v)| v),
            Access::Nested { parent, field } => {
                let mut parent = &top.get(parent)?.1;
                if let Value::Union(_, inner) = parent {
                    parent = inner;
                }
                let Value::Record(fields) = parent else {
                    return None;
                };
                fields.get(field).map(|(_, v)| v)
            }
        }
    }

    /// Why `record` cannot land in the user columns (a value out of its column's range),
    /// naming the field; `Ok` when it can.
    pub fn check(&self, record: &Value) -> Result<(), String> {
        let scope = self.scope();
        for (index, column) in self.columns.iter().enumerate() {
            if !column.fallible {
                continue;
            }
            if let Some(value) = self.value(index, record) {
                check(
                    &scope,
                    &column.schema,
                    value,
                    column.field.data_type(),
                    &column.path,
                )?;
            }
        }
        Ok(())
    }

    /// Column `index`'s writer schema.
    pub(crate) fn column_schema(&self, index: usize) -> Option<&Schema> {
        self.columns.get(index).map(|c| &c.schema)
    }
}

fn conflict(path: &str, column: &Field, writer_id: u32, writes: &DataType) -> String {
    let origin = column
        .metadata()
        .get(SCHEMA_ID_KEY)
        .map_or(String::new(), |id| format!(" (from schema {id})"));
    format!(
        "field '{path}': column {} is {}{origin}; schema {writer_id} writes {writes}, which Delta cannot store in it",
        column.name(),
        column.data_type()
    )
}

/// The column of every user path, per the rules of this module.
fn assign_columns(
    layout: &Layout,
    table: &ArrowSchema,
    history: &[SubjectVersion],
    writer_id: u32,
    writer: &Schema,
) -> Result<HashMap<String, FieldRef>, String> {
    let mut taken: HashSet<String> = layout
        .table()
        .arrow_schema()
        .fields()
        .iter()
        .chain(table.fields().iter())
        .map(|f| f.name().to_lowercase())
        .collect();
    let mut assigned: HashMap<String, FieldRef> = table
        .fields()
        .iter()
        .filter_map(|f| Some((f.metadata().get(AVRO_PATH_KEY)?.clone(), f.clone())))
        .collect();
    let mut versions: Vec<&SubjectVersion> = history.iter().collect();
    versions.sort_by_key(|v| v.version);
    let mut sources: Vec<(u32, &Schema)> = versions.iter().map(|v| (v.id, &*v.schema)).collect();
    if !history.iter().any(|v| v.id == writer_id) {
        sources.push((writer_id, writer));
    }
    for (id, schema) in sources {
        let mut names = Names::new();
        collect_names(schema, &mut names);
        let scope = Scope { names: &names };
        let Ok(fields) = user_fields(layout, schema, &names) else {
            // A version that is not a record has no columns to give; the writer's own
            // shape is checked below.
            continue;
        };
        for user in fields {
            let Some(data_type) = scope.data_type(&user.schema) else {
                continue;
            };
            if let Some(field) = assigned.get(&user.path) {
                // A later version adding fields inside a record grows the struct; a leaf
                // of another type is left for the writer check to refuse.
                if let Some(merged) = merge_types(field.data_type(), &data_type)
                    && merged != *field.data_type()
                {
                    let grown = field.as_ref().clone().with_data_type(merged);
                    assigned.insert(user.path.clone(), Arc::new(grown));
                }
                continue;
            }
            let name = column_name(&user, &mut taken);
            let field = Field::new(name, data_type, true).with_metadata(HashMap::from([
                (AVRO_PATH_KEY.to_string(), user.path.clone()),
                (SCHEMA_ID_KEY.to_string(), id.to_string()),
            ]));
            assigned.insert(user.path, Arc::new(field));
        }
    }
    Ok(assigned)
}

/// A free column name for `user`, marked taken.
fn column_name(user: &UserField, taken: &mut HashSet<String>) -> String {
    let mut name = user.name.clone();
    if taken.contains(&name.to_lowercase()) {
        name = if user.top_level {
            format!("raw__{}", user.name)
        } else {
            user.path.replace('.', "__")
        };
    }
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name.to_lowercase()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    taken.insert(name.to_lowercase());
    name
}

/// The fields of `schema` that are not the seed's, top level and flattened record.
fn user_fields(layout: &Layout, schema: &Schema, names: &Names) -> Result<Vec<UserField>, String> {
    let scope = Scope { names };
    let Some(Schema::Record(top)) = scope.resolve(schema) else {
        return Err("the writer schema is not a record".to_string());
    };
    let mut out = Vec::new();
    for (i, field) in top.fields.iter().enumerate() {
        if layout.is_seed_top(&field.name) {
            continue;
        }
        if let Some(flattened) = layout.flattened()
            && field.name == flattened.record
            && let Some(record) = flattened_record(&scope, &field.schema)
        {
            out.extend(flattened_fields(layout, i, record));
            continue;
        }
        out.push(UserField {
            path: field.name.clone(),
            name: field.name.clone(),
            top_level: true,
            access: Access::Top(i),
            schema: field.schema.clone(),
        });
    }
    Ok(out)
}

/// The user fields of the flattened record, the top level's field `parent`.
fn flattened_fields(
    layout: &Layout,
    parent: usize,
    record: &apache_avro::schema::RecordSchema,
) -> Vec<UserField> {
    let Some(flattened) = layout.flattened() else {
        return Vec::new();
    };
    record
        .fields
        .iter()
        .enumerate()
        .filter(|(_, inner)| !layout.is_seed_flattened(&inner.name))
        .map(|(j, inner)| UserField {
            path: format!("{}.{}", flattened.record, inner.name),
            name: format!("{}{}", flattened.prefix, inner.name),
            top_level: false,
            access: Access::Nested { parent, field: j },
            schema: inner.schema.clone(),
        })
        .collect()
}

/// The flattened record, directly or as the one non-null branch of a union.
fn flattened_record<'s>(
    scope: &Scope<'s>,
    schema: &'s Schema,
) -> Option<&'s apache_avro::schema::RecordSchema> {
    match scope.resolve(schema)? {
        Schema::Record(record) => Some(record),
        Schema::Union(union) => match super::mapping::non_null_branches(union).as_slice() {
            [(_, only)] => match scope.resolve(only)? {
                Schema::Record(record) => Some(record),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// Whether a value of `schema` can be refused by [`check`].
fn fallible(scope: &Scope<'_>, schema: &Schema, seen: &mut Vec<String>) -> bool {
    match schema {
        Schema::TimestampMillis | Schema::Decimal(_) => true,
        Schema::Ref { name } => {
            if seen.contains(&name.fullname(None)) {
                return false;
            }
            seen.push(name.fullname(None));
            scope
                .names
                .get(name)
                .is_some_and(|s| fallible(scope, s, seen))
        }
        Schema::Record(r) => {
            seen.push(r.name.fullname(None));
            r.fields.iter().any(|f| fallible(scope, &f.schema, seen))
        }
        Schema::Array(a) => fallible(scope, &a.items, seen),
        Schema::Map(m) => fallible(scope, &m.types, seen),
        Schema::Union(u) => u.variants().iter().any(|v| fallible(scope, v, seen)),
        _ => false,
    }
}
