//! `kprov schema spec|inventory`: the JSON Schema of a file format.

use crate::exit::Exit;

use kprov_engine::schema;

use crate::cli::SchemaKind;

pub fn run(kind: SchemaKind) -> anyhow::Result<Exit> {
    let value = match kind {
        SchemaKind::Spec => schema::spec_schema(),
        SchemaKind::Inventory => schema::inventory_schema(),
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(Exit::OK)
}
