//! List settings (`allowlist.namespaces`, `system_users`, …): their entries
//! trimmed, and every empty one reported at its own path, so that a stray
//! `""` never turns into a pattern that matches everything; and their
//! defaults as the JSON text a plugin's description shows.

use crate::settings::Problems;

/// The entries of the list setting at `path`, trimmed, in order; each empty
/// (or all white space) entry is left out and reported as
/// `{path}[i]: must not be empty`.
///
/// The problems are recorded as the iterator is consumed: collect it before
/// calling `problems.into_result()`.
pub fn non_empty<'a>(
    entries: &'a [String],
    path: &'a str,
    problems: &'a mut Problems,
) -> impl Iterator<Item = &'a str> + 'a {
    entries.iter().enumerate().filter_map(move |(i, entry)| {
        let entry = entry.trim();
        if entry.is_empty() {
            problems.push(format!("{path}[{i}]"), "must not be empty");
            None
        } else {
            Some(entry)
        }
    })
}

/// [`non_empty`], collected as owned strings: the usual way to read a list
/// of names (namespaces, users, container names).
#[must_use]
pub fn non_empty_owned(entries: &[String], path: &str, problems: &mut Problems) -> Vec<String> {
    non_empty(entries, path, problems)
        .map(str::to_owned)
        .collect()
}

/// `items` as a JSON list (`["a","b"]`), escaped as JSON requires: the
/// documented default of a list setting (see
/// [`PluginInfoBuilder::setting`](crate::PluginInfoBuilder::setting)).
#[must_use]
pub fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    // By hand rather than with serde_json's serializer, which would add
    // several KiB to every component for a few constant strings.
    let mut json = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        for c in item.as_ref().chars() {
            match c {
                '"' => json.push_str("\\\""),
                '\\' => json.push_str("\\\\"),
                c if u32::from(c) < 0x20 => json.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => json.push(c),
            }
        }
        json.push('"');
    }
    json.push(']');
    json
}

#[cfg(test)]
mod tests;
