//! Maps between dotted field paths (`nodes[2].weight`) and lines of a TOML text.
//!
//! Serde tells us *what* is wrong with a config; the operator also needs to know *where*. Semantic
//! checks (an unknown region, a duplicate node id) run on deserialized values that no longer carry
//! positions, so they name the offending field by path and this module finds the line with
//! `toml_edit`'s span-preserving [`toml_edit::Document`]. In the other direction, a serde error
//! carries a byte offset and this module names the field at that offset.
//!
//! This module only reads; it never rewrites the text, and it knows nothing about the region
//! schema, so the server can reuse it for its own TOML files.
//!
//! Path syntax: bare keys separated by `.`, each optionally followed by `[index]` for arrays and
//! arrays of tables, e.g. `server.tick_hz`, `nodes[2].weight`, `regions.eu.fallbacks[0]`. Quoted
//! keys containing `.` or `[` are not supported.

use std::ops::Range;

use toml_edit::{Array, Document, Item, Table, TableLike, Value};

/// A parsed TOML text that can answer "which line is this field on" and "which field is at this
/// byte offset".
///
/// ```
/// use ludus_regions::TomlSourceMap;
///
/// let text = "[server]\nport = 7801\n\n[[nodes]]\nid = \"a\"\n\n[[nodes]]\nid = \"b\"\n";
/// let source_map = TomlSourceMap::parse(text).expect("valid toml");
/// assert_eq!(source_map.line_of_field("server.port"), Some(2));
/// assert_eq!(source_map.line_of_field("nodes[1].id"), Some(8));
/// assert_eq!(source_map.field_at_offset(text.find("\"b\"").expect("present")).as_deref(), Some("nodes[1].id"));
/// ```
pub struct TomlSourceMap<'text> {
    document: Document<&'text str>,
}

impl<'text> TomlSourceMap<'text> {
    /// Parses `toml_text`, keeping spans; `None` when the text is not valid TOML (the caller
    /// already has a better error from its own parse in that case).
    pub fn parse(toml_text: &'text str) -> Option<Self> {
        // `toml` checks the syntax first, because `toml_edit` 0.23 panics ("all items have
        // spans") while reporting some syntax errors, e.g. on `==\n.=`; an invalid text gets no
        // source map either way. Fixed upstream in toml_edit 0.25.
        toml_text.parse::<toml::Table>().ok()?;
        Document::parse(toml_text)
            .ok()
            .map(|document| Self { document })
    }

    /// The 1-based line on which `field_path` is written: the line of its key, or of the array
    /// element for a trailing `[index]`. `None` when the path does not exist in the text (for
    /// example a field left to its default).
    pub fn line_of_field(&self, field_path: &str) -> Option<usize> {
        let span = self.span_of_field(field_path)?;
        Some(line_of_offset(self.document.raw(), span.start))
    }

    /// The dotted path of the innermost key or value whose span contains `offset`, as used in error
    /// messages; when the offset falls between fields (e.g. on a table header), the path of the
    /// closest field before it. `None` only for an offset before the first field.
    pub fn field_at_offset(&self, offset: usize) -> Option<String> {
        let mut spans = Vec::new();
        collect_spans(Cursor::Item(self.document.as_item()), "", &mut spans);
        let innermost_containing = spans
            .iter()
            .filter(|(_, span)| span.contains(&offset))
            .min_by_key(|(path, span)| (span.len(), usize::MAX - path.len()));
        let closest_before = || {
            spans
                .iter()
                .filter(|(_, span)| span.start <= offset)
                .max_by_key(|(path, span)| (span.start, path.len()))
        };
        innermost_containing
            .or_else(closest_before)
            .map(|(path, _)| path.clone())
    }

    fn span_of_field(&self, field_path: &str) -> Option<Range<usize>> {
        let mut cursor = Cursor::Item(self.document.as_item());
        let mut span = None;
        for segment in parse_path(field_path)? {
            let (child_span, child) = match (segment, cursor) {
                (Segment::Key(key), cursor) => {
                    let (found_key, found_item) = cursor.as_table_like()?.get_key_value(key)?;
                    (
                        found_key.span().or_else(|| found_item.span()),
                        Cursor::Item(found_item),
                    )
                }
                (Segment::Index(index), Cursor::Item(Item::ArrayOfTables(tables))) => {
                    let table = tables.get(index)?;
                    (table.span(), Cursor::Table(table))
                }
                (Segment::Index(index), cursor) => {
                    let element = cursor.as_array()?.get(index)?;
                    (element.span(), Cursor::Value(element))
                }
            };
            span = child_span;
            cursor = child;
        }
        span
    }
}

/// Where a path walk stands: `toml_edit` stores top-level entries as items, array elements as
/// values and array-of-tables entries as tables.
#[derive(Clone, Copy)]
enum Cursor<'doc> {
    Item(&'doc Item),
    Value(&'doc Value),
    Table(&'doc Table),
}

impl<'doc> Cursor<'doc> {
    fn as_table_like(self) -> Option<&'doc dyn TableLike> {
        match self {
            Cursor::Item(item) => item.as_table_like(),
            Cursor::Value(value) => value.as_inline_table().map(|table| table as &dyn TableLike),
            Cursor::Table(table) => Some(table),
        }
    }

    fn as_array(self) -> Option<&'doc Array> {
        match self {
            Cursor::Item(item) => item.as_array(),
            Cursor::Value(value) => value.as_array(),
            Cursor::Table(_) => None,
        }
    }
}

/// One-shot form of [`TomlSourceMap::line_of_field`]: the 1-based line of `field_path` in
/// `toml_text`, or `None` if the text is not valid TOML or the field is absent.
///
/// ```
/// use ludus_regions::line_of_field;
///
/// let text = "version = 1\n\n[server]\ntick_hz = 20\n";
/// assert_eq!(line_of_field(text, "server.tick_hz"), Some(4));
/// assert_eq!(line_of_field(text, "server.missing"), None);
/// ```
pub fn line_of_field(toml_text: &str, field_path: &str) -> Option<usize> {
    TomlSourceMap::parse(toml_text)?.line_of_field(field_path)
}

/// The 1-based line containing byte `offset` of `text` (offsets past the end give the last line).
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let clamped_offset = offset.min(text.len());
    1 + text.as_bytes()[..clamped_offset]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
}

enum Segment<'path> {
    Key(&'path str),
    Index(usize),
}

/// Splits `nodes[2].weight` into `Key("nodes"), Index(2), Key("weight")`; `None` if malformed.
fn parse_path(field_path: &str) -> Option<Vec<Segment<'_>>> {
    let mut segments = Vec::new();
    for part in field_path.split('.') {
        let (key, mut indexes) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() {
            return None;
        }
        segments.push(Segment::Key(key));
        while let Some(after_open) = indexes.strip_prefix('[') {
            let (index, after_close) = after_open.split_once(']')?;
            segments.push(Segment::Index(index.parse().ok()?));
            indexes = after_close;
        }
        if !indexes.is_empty() {
            return None;
        }
    }
    Some(segments)
}

/// Pushes `(path, span)` for every key, value, array element and array-of-tables entry under
/// `cursor`, depth first.
fn collect_spans(cursor: Cursor<'_>, path: &str, spans: &mut Vec<(String, Range<usize>)>) {
    if let Cursor::Item(Item::ArrayOfTables(tables)) = cursor {
        for (index, table) in tables.iter().enumerate() {
            let element_path = format!("{path}[{index}]");
            push_span(table.span(), &element_path, spans);
            collect_spans(Cursor::Table(table), &element_path, spans);
        }
    } else if let Some(array) = cursor.as_array() {
        for (index, element) in array.iter().enumerate() {
            let element_path = format!("{path}[{index}]");
            push_span(element.span(), &element_path, spans);
            collect_spans(Cursor::Value(element), &element_path, spans);
        }
    } else if let Some(table) = cursor.as_table_like() {
        for (key, child) in table.iter() {
            let child_path = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            };
            let key_span = table
                .get_key_value(key)
                .and_then(|(found_key, _)| found_key.span());
            push_span(key_span, &child_path, spans);
            push_span(child.span(), &child_path, spans);
            collect_spans(Cursor::Item(child), &child_path, spans);
        }
    }
}

fn push_span(span: Option<Range<usize>>, path: &str, spans: &mut Vec<(String, Range<usize>)>) {
    if let Some(span) = span {
        spans.push((path.to_owned(), span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `region_file` fuzz target: `toml_edit` 0.23 panicked on this text, taking
    /// down region-file and server-config loading, which build a source map for their errors.
    #[test]
    fn invalid_text_that_panics_toml_edit_has_no_source_map() {
        assert!(TomlSourceMap::parse("==\n.=").is_none());
        assert_eq!(line_of_field("==\n.=", "a"), None);
    }

    #[test]
    fn valid_text_still_maps_fields_to_lines() {
        let source_map = TomlSourceMap::parse("a = 1\n[b]\nc = 2\n").expect("valid toml");
        assert_eq!(source_map.line_of_field("b.c"), Some(3));
    }
}
