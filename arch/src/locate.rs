//! Locating a field of a TOML document: turns a field path such as `levels[2].fanout` into the
//! line and column where it is written, so semantic errors found after deserialisation point at
//! the source as parse errors do.

use toml::de::{DeTable, DeValue};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Parses `a.b[3].c` into segments. Keys may not contain `.` or `[`.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else {
                    break;
                };
                if let Ok(n) = stripped[..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &stripped[end + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

/// Byte offset of the deepest prefix of `path` that exists in `text` (the key of the last
/// table entry found, or the array element's value), or `None` if `text` does not parse or
/// the first segment is absent.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let segs = parse_path(path);
    let mut table: &DeTable = doc.get_ref();
    let mut value: Option<&DeValue> = None;
    let mut best: Option<usize> = None;
    for seg in segs {
        match (seg, value) {
            (Seg::Key(k), None) => {
                let (key, v) = table.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                best = Some(key.span().start);
                value = Some(v.get_ref());
            }
            (Seg::Key(k), Some(DeValue::Table(t))) => {
                let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k) else {
                    break;
                };
                best = Some(key.span().start);
                table = t;
                value = Some(v.get_ref());
            }
            (Seg::Index(i), Some(DeValue::Array(a))) => {
                let Some(v) = a.get(i) else {
                    break;
                };
                best = Some(v.span().start);
                value = Some(v.get_ref());
            }
            _ => break,
        }
    }
    best
}

/// The field path of the value written at byte `offset` (`levels[2] (glb).energy.read`: array
/// elements that are tables with a `name` show it), or `None` when `text` does not parse or
/// no scalar value spans the offset (e.g. the offset is at a key).
pub fn path_at(text: &str, offset: usize) -> Option<String> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<(usize, String)> = None;
    walk_table(doc.get_ref(), "", offset, &mut best);
    best.map(|(_, p)| p)
}

fn walk_table(t: &DeTable, prefix: &str, offset: usize, best: &mut Option<(usize, String)>) {
    for (k, v) in t.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        walk_value(v.get_ref(), v.span(), path, offset, best);
    }
}

fn walk_value(
    v: &DeValue,
    span: std::ops::Range<usize>,
    path: String,
    offset: usize,
    best: &mut Option<(usize, String)>,
) {
    match v {
        DeValue::Table(t) => walk_table(t, &path, offset, best),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let name = match e.get_ref() {
                    DeValue::Table(t) => t
                        .iter()
                        .find(|(k, _)| k.get_ref().as_ref() == "name")
                        .and_then(|(_, n)| match n.get_ref() {
                            DeValue::String(s) => Some(format!(" ({s})")),
                            _ => None,
                        })
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                walk_value(
                    e.get_ref(),
                    e.span(),
                    format!("{path}[{i}]{name}"),
                    offset,
                    best,
                );
            }
        }
        _ => {
            if span.start <= offset && offset < span.end.max(span.start + 1) {
                let len = span.end - span.start;
                if best.as_ref().is_none_or(|(l, _)| len < *l) {
                    *best = Some((len, path));
                }
            }
        }
    }
}

/// 1-based (line, column in characters) of a byte offset, and the line's text.
pub fn line_col(text: &str, offset: usize) -> (usize, usize, String) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("").trim_end();
    (line, col, line_text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name = \"x\"\n[[levels]]\nname = \"a\"\n[[levels]]\nname = \"b\"\nfanout = [4, 0]\n[levels.energy]\nread = \"1 pJ\"\n";

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("levels[1].fanout[0]"),
            vec![
                Seg::Key("levels".into()),
                Seg::Index(1),
                Seg::Key("fanout".into()),
                Seg::Index(0)
            ]
        );
    }

    #[test]
    fn fields_are_found() {
        let at = |p| line_col(DOC, locate(DOC, p).unwrap());
        assert_eq!(at("name").0, 1);
        assert_eq!(at("levels[1].name").0, 5);
        let (line, col, text) = at("levels[1].fanout[1]");
        assert_eq!((line, col), (6, 14));
        assert_eq!(text, "fanout = [4, 0]");
        assert_eq!(at("levels[1].energy.read").0, 8);
        // A missing leaf falls back to the deepest prefix found.
        assert_eq!(at("levels[1].capacity").0, 4);
        assert_eq!(locate(DOC, "nothing"), None);
        assert_eq!(locate("= broken", "name"), None);
    }

    #[test]
    fn values_name_their_field() {
        let at = |needle: &str| path_at(DOC, DOC.find(needle).unwrap());
        assert_eq!(at("\"1 pJ\"").as_deref(), Some("levels[1] (b).energy.read"));
        assert_eq!(at("0]").as_deref(), Some("levels[1] (b).fanout[1]"));
        assert_eq!(at("\"x\"").as_deref(), Some("name"));
        assert_eq!(at("fanout"), None); // a key, not a value
        assert_eq!(path_at("= broken", 0), None);
    }
}
