// An XML formatter: `<rows><row><cell name="id">1</cell>…</row>…</rows>`.
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::escape::Xml;
use export_plugin_api::rows::{Row, RowFormat, RowWriter};
use export_plugin_api::{export_plugin, FormatWriter, Formatter, NoConfig, NoOptions};
use export_plugin_api::{PluginBuilder, Result};
use std::io::Write;

struct XmlRows;

impl Formatter for XmlRows {
    type Config = NoConfig;
    type Options = NoOptions;
    const NAME: &'static str = "xml";
    const DESCRIPTION: &'static str = "XML, one <row> element per row";
    const MIME_TYPE: &'static str = "application/xml";
    const EXTENSION: &'static str = "xml";
    fn start(&self, _: NoConfig, _: NoOptions, schema: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        RowWriter::boxed(schema, XmlRows)
    }
}

impl RowFormat for XmlRows {
    const HEADER: &'static [u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n";
    const FOOTER: &'static [u8] = b"</rows>\n";
    fn row(&mut self, row: Row<'_, '_>, out: &mut Vec<u8>) -> Result<()> {
        out.write_all(b"<row>")?;
        for (name, cell) in row.named_cells() {
            write!(out, "<cell name=\"{}\">{}</cell>", Xml(name), Xml(cell))?;
        }
        Ok(out.write_all(b"</row>\n")?)
    }
}

export_plugin!(PluginBuilder::new("xml-rows", "0.1.0")
    .formatter(XmlRows)
    .build());
