//! Where a problem is, and how it reads: `Problem`, `ConfigError`, and the spans of the TOML
//! document that give each problem its line.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub field: String,
    pub message: String,
    /// The line of the config file it is about, when it is about one.
    pub line: Option<usize>,
}

impl Problem {
    pub(super) fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    /// Allowed, but against the OAuth 2.0 Security BCP (RFC 9700).
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.line {
            Some(line) => write!(f, "{tag}: line {line}: {}: {}", self.field, self.message),
            None => write!(f, "{tag}: {}: {}", self.field, self.message),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A mistake in a LATCHKEY_* variable is not the file's.
        if !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|p| p.line.is_none() && p.field.starts_with("LATCHKEY_"))
        {
            writeln!(
                f,
                "the LATCHKEY_* environment overrides of {} are not valid:",
                self.path.display()
            )?;
        } else {
            writeln!(f, "{} is not a valid Latchkey config:", self.path.display())?;
        }
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn error(field: &str, message: String) -> Problem {
    Problem {
        severity: Severity::Error,
        field: field.to_owned(),
        message,
        line: None,
    }
}

pub(super) fn warning(field: &str, message: String) -> Problem {
    Problem {
        severity: Severity::Warning,
        field: field.to_owned(),
        message,
        line: None,
    }
}

/// Byte offsets to 1-based line numbers.
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self(starts)
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// Take out the innermost entry whose key or value holds `span`; its path, e.g.
/// `clients[1].colour`. None when no single entry holds it (e.g. a missing top-level key).
/// Every entry is looked into: an array of tables has the span of its first header only.
pub(super) fn remove_at(
    table: &mut toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
) -> Option<String> {
    let mut hit = None;
    for (k, v) in table.iter_mut() {
        let name = k.get_ref().to_string();
        let deeper = match v.get_mut() {
            toml::de::DeValue::Table(t) => remove_at(t, span).map(|p| format!("{name}.{p}")),
            toml::de::DeValue::Array(a) => {
                let mut found = None;
                let mut drop = None;
                for (i, e) in a.as_mut().iter_mut().enumerate() {
                    let inner = match e.get_mut() {
                        toml::de::DeValue::Table(t) => remove_at(t, span),
                        _ => None,
                    };
                    if let Some(p) = inner {
                        found = Some(format!("{name}[{i}].{p}"));
                        break;
                    }
                    if contains(&e.span(), span) {
                        drop = Some(i);
                        found = Some(format!("{name}[{i}]"));
                        break;
                    }
                }
                if let Some(i) = drop {
                    *a = a
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, v)| v.clone())
                        .collect();
                }
                found
            }
            _ => None,
        };
        if deeper.is_some() {
            return deeper;
        }
        if hit.is_none() && (contains(&k.span(), span) || contains(&v.span(), span)) {
            hit = Some(name);
        }
    }
    let name = hit?;
    table.remove(name.as_str());
    Some(name)
}

/// The span of the entry a validation field names, e.g. `clients[0] (web).redirect_uris[1]`:
/// the deepest part of the path that is in the document.
pub(super) fn span_of(
    table: &toml::de::DeTable<'_>,
    field: &str,
) -> Option<std::ops::Range<usize>> {
    let mut span = None;
    let mut here: Option<&toml::de::DeValue<'_>> = None;
    for part in field.split('.') {
        let part = part.split(" (").next().unwrap_or(part);
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let t = match here {
            None => table,
            Some(toml::de::DeValue::Table(t)) => t,
            Some(_) => break,
        };
        let Some((k, v)) = t.get_key_value(name) else {
            break;
        };
        span = Some(k.span());
        let mut v = v;
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let Some(next) = index
                .parse::<usize>()
                .ok()
                .and_then(|i| v.get_ref().as_array()?.get(i))
            else {
                break;
            };
            v = next;
            span = Some(v.span());
        }
        here = Some(v.get_ref());
    }
    span
}

/// `path` as `validate` names a place: an entry of `[[clients]]` or `[[users]]` with its
/// id, e.g. `clients[0].grant_types[2]` as `clients[0] (web).grant_types[2]`.
pub(super) fn named(table: &toml::de::DeTable<'_>, path: &str) -> String {
    let (entry, rest) = path.split_once('.').unwrap_or((path, ""));
    let Some((list, index)) = entry.strip_suffix(']').and_then(|e| e.split_once('[')) else {
        return path.to_owned();
    };
    let id_key = match list {
        "clients" => "client_id",
        "users" => "username",
        _ => return path.to_owned(),
    };
    let id = index
        .parse::<usize>()
        .ok()
        .and_then(|i| table.get(list)?.get_ref().as_array()?.get(i))
        .and_then(|e| e.get_ref().get(id_key)?.get_ref().as_str());
    match (id, rest) {
        (Some(id), "") => format!("{entry} ({id})"),
        (Some(id), rest) => format!("{entry} ({id}).{rest}"),
        (None, _) => path.to_owned(),
    }
}

/// Put `value` at `path` (as `remove_at` names it: `issuer`, `clients[0].client_secret_hash`)
/// where `remove_at` took the refused one out.
pub(super) fn put_back<'i>(
    table: &mut toml::de::DeTable<'i>,
    path: &str,
    value: toml::Spanned<toml::de::DeValue<'i>>,
) {
    let mut here = table;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            here.insert(
                toml::Spanned::new(value.span(), part.to_owned().into()),
                value,
            );
            return;
        }
        let (name, index) = match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            Some((name, i)) => (name, i.parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(entry) = here.get_mut(name) else {
            return;
        };
        let entry = match (entry.get_mut(), index) {
            (toml::de::DeValue::Array(a), Some(i)) => match a.as_mut().get_mut(i) {
                Some(e) => e.get_mut(),
                None => return,
            },
            (v, None) => v,
            _ => return,
        };
        let toml::de::DeValue::Table(t) = entry else {
            return;
        };
        here = t;
    }
}

/// serde's message, with the place named and a likely spelling for an unknown field.
pub(super) fn schema_message(message: &str, field: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let parent = match field.rsplit_once('.') {
        Some((p, _)) => p.to_owned(),
        None => "the config".to_owned(),
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let close = known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match close {
        Some((_, k)) => format!("{parent} has no field {name} (did you mean {k}?)"),
        None if known.is_empty() => format!("{parent} has no field {name}"),
        None => format!("{parent} has no field {name} (it has {})", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}
