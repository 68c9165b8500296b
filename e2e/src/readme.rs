//! The commands the README shows, read from the README itself so the tests run exactly what a
//! user is told to type and the two cannot drift apart.
//!
//! A command block is marked with an HTML comment naming it, directly above the fence:
//!
//! ````markdown
//! <!-- command: invoke-order-processor -->
//! ```bash
//! dapr run --app-port 5001 ... -- cargo run -p order-processor
//! ```
//! ````
//! and the answer a command prints, where the README shows one, with `<!-- output: NAME -->`.

use std::fs;

use crate::repo_root;

/// The text of the fenced block under `<!-- {kind}: {name} -->` in README.md, with `\`
/// line continuations joined.
fn block(kind: &str, name: &str) -> String {
    block_in("README.md", kind, name)
}

/// [`block`] in `file` (relative to the repository root).
fn block_in(file: &str, kind: &str, name: &str) -> String {
    let readme = fs::read_to_string(repo_root().join(file))
        .unwrap_or_else(|e| panic!("{file} is not readable: {e}"));
    let marker = format!("<!-- {kind}: {name} -->");
    let mut lines = readme.lines().skip_while(|l| l.trim() != marker).skip(1);
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.trim_start().starts_with("```"),
        "{file} has no fenced block under {marker}"
    );
    let body: Vec<&str> = lines
        .take_while(|l| !l.trim_start().starts_with("```"))
        .collect();
    body.join("\n").replace("\\\n", " ")
}

/// The command named `name`.
pub fn command(name: &str) -> String {
    lines_of_command(&block("command", name))
}

fn lines_of_command(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The output shown for `name`.
pub fn output(name: &str) -> String {
    block("output", name)
}

/// The Azure guide (`docs/deploy-azure.md`): its commands and outputs, marked the same way.
pub mod guide {
    /// The guide's file, relative to the repository root.
    pub const FILE: &str = "docs/deploy-azure.md";

    /// The command named `name` in the guide.
    pub fn command(name: &str) -> String {
        super::lines_of_command(&super::block_in(FILE, "command", name))
    }

    /// The output the guide shows for `name`.
    pub fn output(name: &str) -> String {
        super::block_in(FILE, "output", name)
    }

    /// Whether JSON `actual` matches the guide's output `name` (see [`super::matches_json_output`]).
    pub fn matches_json_output(name: &str, actual: &str) -> Result<(), String> {
        super::matches_json(name, &output(name), actual)
    }

    /// Every fenced `bash` block of the guide that is marked neither `command:` (run by the
    /// tests) nor `azure:` (needs Azure itself), by line number: each must be one or the other.
    pub fn unmarked_bash_blocks() -> Vec<usize> {
        let text =
            std::fs::read_to_string(crate::repo_root().join(FILE)).expect("guide is readable");
        let lines: Vec<&str> = text.lines().collect();
        let mut unmarked = Vec::new();
        let mut in_block = false;
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if t.starts_with("```") {
                if !in_block && t.trim() == "```bash" {
                    let marker = i
                        .checked_sub(1)
                        .map(|j| lines[j].trim())
                        .unwrap_or_default();
                    if !(marker.starts_with("<!-- command: ") || marker.starts_with("<!-- azure: "))
                    {
                        unmarked.push(i + 1);
                    }
                }
                in_block = !in_block;
            }
        }
        unmarked
    }

    /// Every command name marked in the guide, in order.
    pub fn command_names() -> Vec<String> {
        let text =
            std::fs::read_to_string(crate::repo_root().join(FILE)).expect("guide is readable");
        text.lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix("<!-- command: ")?
                    .strip_suffix(" -->")
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Whether JSON `actual` matches the README's JSON output `name`, where a string written as
/// `"<...>"` (an id that differs on every run) matches any string.
pub fn matches_json_output(name: &str, actual: &str) -> Result<(), String> {
    matches_json(name, &output(name), actual)
}

fn matches_json(name: &str, shown: &str, actual: &str) -> Result<(), String> {
    let shown: serde_json::Value = serde_json::from_str(shown)
        .map_err(|e| format!("README output {name} is not JSON: {e}"))?;
    let got: serde_json::Value = serde_json::from_str(actual.trim())
        .map_err(|e| format!("{name} printed something that is not JSON ({e}): {actual}"))?;
    if json_matches(&shown, &got) {
        Ok(())
    } else {
        Err(format!(
            "{name}: the README shows {shown} but the command printed {got}"
        ))
    }
}

fn json_matches(shown: &serde_json::Value, got: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (shown, got) {
        (Value::String(s), Value::String(_)) if s.starts_with('<') && s.ends_with('>') => true,
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| json_matches(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| json_matches(v, w))
        }
        (a, b) => a == b,
    }
}
