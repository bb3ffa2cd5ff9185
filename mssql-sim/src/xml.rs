//! The `xml` data type's text as SQL Server keeps and returns it: parsed
//! when a string becomes xml (malformed XML is an error), then serialized
//! by the rules of "Define the Serialization of XML Data"
//! (learn.microsoft.com/sql/relational-databases/xml/define-the-serialization-of-xml-data):
//!
//! - the XML declaration is dropped; a DOCTYPE is refused;
//! - whitespace-only text is dropped (untyped XML's default) unless the
//!   conversion is CONVERT style 1 or the element says `xml:space="preserve"`;
//!   kept, one of its characters (the last) is written as a character
//!   reference so that reparsing keeps it;
//! - an element without content is written `<a/>`; attribute values are
//!   enclosed in `"`;
//! - `&`, `<` and `>` are always written as `&amp;`, `&lt;`, `&gt;`; `"` in an
//!   attribute as `&quot;`; TAB and LF in an attribute as `&#x9;` and `&#xA;`;
//!   CR anywhere as `&#xD;`; CDATA sections become text;
//! - comments and processing instructions are kept; a fragment (several
//!   top-level nodes, or text) is allowed, as untyped xml allows it.

use crate::error::SqlError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// The xml value `input` becomes, or SQL Server's XML parsing error.
pub fn normalize(input: &str, preserve_whitespace: bool) -> Result<String, SqlError> {
    let mut reader = Reader::from_str(input);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.trim_text(false);
    let mut out = String::with_capacity(input.len());
    // Open elements: (name, whether content was written, xml:space preserve).
    let mut open: Vec<(String, bool, bool)> = Vec::new();
    let fail = |reader: &Reader<&[u8]>, what: &str, number: i32| {
        let pos = reader.buffer_position() as usize;
        let before = &input[..pos.min(input.len())];
        let line = before.matches('\n').count() + 1;
        let character = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        SqlError::new(
            number,
            16,
            format!("XML parsing: line {line}, character {character}, {what}"),
        )
    };
    loop {
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(quick_xml::Error::IllFormed(
                quick_xml::errors::IllFormedError::MismatchedEndTag { .. },
            )) => return Err(fail(&reader, "end tag does not match start tag", 9436)),
            Err(e) => return Err(fail(&reader, &format!("{e}"), 9400)),
        };
        // Content inside an element closes its start tag first (dropped
        // whitespace is not content).
        let dropped = match &ev {
            Event::Text(t) => {
                let blank = t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                blank && !open.last().map(|o| o.2).unwrap_or(preserve_whitespace)
            }
            _ => false,
        };
        let opens_content = !dropped && !matches!(ev, Event::End(_) | Event::Eof | Event::Decl(_));
        if opens_content {
            if let Some(top) = open.last_mut() {
                if !top.1 {
                    out.push('>');
                    top.1 = true;
                }
            }
        }
        match ev {
            Event::Decl(_) => {}
            Event::DocType(_) => {
                return Err(SqlError::new(
                    6359,
                    16,
                    "Parsing XML with internal subset DTDs not allowed. Use CONVERT with style option 2 to enable limited internal subset DTD support.",
                ))
            }
            Event::Start(s) => {
                let preserve = start_tag(&mut out, &s, &reader)?
                    .unwrap_or_else(|| open.last().map(|o| o.2).unwrap_or(preserve_whitespace));
                open.push((name_of(&s), false, preserve));
            }
            Event::Empty(s) => {
                start_tag(&mut out, &s, &reader)?;
                out.push_str("/>");
            }
            Event::End(_) => {
                let (name, content, _) = open.pop().ok_or_else(|| {
                    fail(&reader, "end tag does not match start tag", 9436)
                })?;
                if content {
                    out.push_str("</");
                    out.push_str(&name);
                    out.push('>');
                } else {
                    out.push_str("/>");
                }
            }
            Event::Text(t) => {
                // Only literal whitespace is insignificant: a character
                // reference is content, so serialized text reparses the same.
                let literal_blank = t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                let text = t
                    .unescape()
                    .map_err(|e| fail(&reader, &e.to_string(), 9400))?;
                let preserve = open.last().map(|o| o.2).unwrap_or(preserve_whitespace);
                if !literal_blank || preserve {
                    text_node(&mut out, &text);
                }
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c.into_inner()).into_owned();
                text_node(&mut out, &text);
            }
            Event::Comment(c) => {
                out.push_str("<!--");
                out.push_str(&String::from_utf8_lossy(&c.into_inner()));
                out.push_str("-->");
            }
            Event::PI(p) => {
                out.push_str("<?");
                out.push_str(&String::from_utf8_lossy(&p.into_inner()));
                out.push_str("?>");
            }
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(fail(&reader, "unexpected end of input", 9400));
    }
    Ok(out)
}

fn name_of(s: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(s.name().as_ref()).into_owned()
}

/// Writes `<name attr="..."` (without the closing `>`); returns the
/// element's `xml:space` if it sets one (true: preserve).
fn start_tag(
    out: &mut String,
    s: &BytesStart<'_>,
    reader: &Reader<&[u8]>,
) -> Result<Option<bool>, SqlError> {
    out.push('<');
    out.push_str(&name_of(s));
    let mut space = None;
    for a in s.attributes() {
        let a = a.map_err(|e| {
            SqlError::new(
                9400,
                16,
                format!(
                    "XML parsing: character {}, {e}",
                    reader.buffer_position() + 1
                ),
            )
        })?;
        // Attribute-value normalization: literal whitespace becomes a
        // space; character references keep what they name.
        let raw: Vec<u8> = a
            .value
            .iter()
            .map(|b| {
                if matches!(b, b'\t' | b'\n' | b'\r') {
                    b' '
                } else {
                    *b
                }
            })
            .collect();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let value = quick_xml::escape::unescape(&raw)
            .map_err(|e| SqlError::new(9400, 16, format!("XML parsing: {e}")))?
            .into_owned();
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if key == "xml:space" {
            space = Some(value == "preserve");
        }
        out.push(' ');
        out.push_str(&key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\t' => out.push_str("&#x9;"),
                '\n' => out.push_str("&#xA;"),
                '\r' => out.push_str("&#xD;"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    Ok(space)
}

/// Writes a text node's content by the entitization rules.
fn text_node(out: &mut String, text: &str) {
    let blank = text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let n = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            // A whitespace-only node keeps its last character as a
            // reference, so that reparsing keeps the node.
            c if blank && i + 1 == n => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s, false).unwrap()
    }

    #[test]
    fn serialized_as_sql_server_documents() {
        assert_eq!(n("<Δ/>"), "<Δ/>");
        assert_eq!(n("<?xml version=\"1.0\"?><a></a>"), "<a/>");
        assert_eq!(
            n("<a b='1' c=\"x&amp;y\">t</a>"),
            "<a b=\"1\" c=\"x&amp;y\">t</a>"
        );
        assert_eq!(n("<a>\n  <b>x &lt; y</b>\n</a>"), "<a><b>x &lt; y</b></a>");
        assert_eq!(n("<a><![CDATA[<x>]]></a>"), "<a>&lt;x&gt;</a>");
        assert_eq!(n("<a q='say \"hi\"'/>"), "<a q=\"say &quot;hi&quot;\"/>");
        assert_eq!(n("<a b=\"1&#xA;2\"/>"), "<a b=\"1&#xA;2\"/>");
        assert_eq!(n("<a b=\"1\n2\"/>"), "<a b=\"1 2\"/>");
        assert_eq!(n("<a><!-- c --><?pi x?></a>"), "<a><!-- c --><?pi x?></a>");
        assert_eq!(n("<a/><b/>text"), "<a/><b/>text");
        // Whitespace kept (style 1, or xml:space) keeps its last character as a reference.
        assert_eq!(normalize("<a>   </a>", true).unwrap(), "<a>  &#x20;</a>");
        assert_eq!(
            n("<a xml:space=\"preserve\"> </a>"),
            "<a xml:space=\"preserve\">&#x20;</a>"
        );
        // What it writes reads back the same, kept whitespace included.
        for s in [
            "<a>  &#x20;</a>",
            "<a b=\"1&#xA;2\">x &amp; y&#xD;</a>",
            "<a/><b/>t",
        ] {
            assert_eq!(n(s), s);
        }
    }

    #[test]
    fn malformed_xml_is_sql_servers_error() {
        let e = normalize("<a><b></a>", false).unwrap_err();
        assert_eq!(e.number, 9436, "{}", e.message);
        let e = normalize("<a>", false).unwrap_err();
        assert_eq!(e.number, 9400, "{}", e.message);
        assert!(
            e.message.contains("unexpected end of input"),
            "{}",
            e.message
        );
        assert_eq!(
            normalize("<!DOCTYPE a [<!ENTITY x 'y'>]><a/>", false)
                .unwrap_err()
                .number,
            6359
        );
    }
}
