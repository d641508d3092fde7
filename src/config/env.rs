//! `LATCHKEY_*` environment overrides, laid over the file's document before it is parsed.

use std::collections::BTreeSet;

/// Environment variables with the `LATCHKEY_` prefix that are not config overrides.
const NON_CONFIG_ENV: &[&str] = &[
    "LATCHKEY_LOG",
    "LATCHKEY_LOG_FORMAT",
    "LATCHKEY_CONFIG",
    "LATCHKEY_TEST_DATABASE_URL",
];

/// `LATCHKEY_*` variables that are config overrides (not our own knobs, not client secrets).
pub(super) fn env_overrides<'a>(
    env: &'a [(String, String)],
    doc: &toml::de::DeTable<'_>,
) -> Vec<(&'a str, &'a str)> {
    let secret_vars: BTreeSet<&str> = doc
        .get("clients")
        .and_then(|c| c.get_ref().as_array())
        .map(|arr| {
            arr.iter()
                .filter_map(|c| c.get_ref().get("secret_env")?.get_ref().as_str())
                .collect()
        })
        .unwrap_or_default();
    env.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("LATCHKEY_")?, k.as_str(), v.as_str())))
        .filter(|(_, full, _)| !NON_CONFIG_ENV.contains(full) && !secret_vars.contains(full))
        .map(|(rest, _, v)| (rest, v))
        .collect()
}

type DeEntry<'i> = toml::Spanned<toml::de::DeValue<'i>>;

/// Set `path` in nested tables, creating them; Err names a segment that is not a table.
pub(super) fn set_path<'i>(
    table: &mut toml::de::DeTable<'i>,
    path: &[String],
    value: DeEntry<'i>,
) -> Result<(), String> {
    let key = |name: &str, v: &DeEntry<'_>| toml::Spanned::new(v.span(), name.to_owned().into());
    match path {
        [] => Ok(()),
        [last] => {
            // An existing key keeps its own span: a wrong value is the variable's, but
            // an unknown key would be too (it has no other place).
            let k = key(last, &value);
            table.insert(k, value);
            Ok(())
        }
        [first, rest @ ..] => {
            let k = key(first, &value);
            let span = value.span();
            let entry = table.entry(k).or_insert_with(|| {
                toml::Spanned::new(span, toml::de::DeValue::Table(Default::default()))
            });
            match entry.get_mut() {
                toml::de::DeValue::Table(t) => set_path(t, rest, value),
                _ => Err(first.clone()),
            }
        }
    }
}

/// Numbers and booleans keep their type; anything else is a string.
pub(super) fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_owned()),
    }
}
