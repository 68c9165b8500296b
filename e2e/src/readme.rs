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
    let readme = fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable");
    let marker = format!("<!-- {kind}: {name} -->");
    let mut lines = readme.lines().skip_while(|l| l.trim() != marker).skip(1);
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.trim_start().starts_with("```"),
        "README.md has no fenced block under {marker}"
    );
    let body: Vec<&str> = lines
        .take_while(|l| !l.trim_start().starts_with("```"))
        .collect();
    body.join("\n").replace("\\\n", " ")
}

/// The command named `name`.
pub fn command(name: &str) -> String {
    let text = block("command", name);
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The output shown for `name`.
pub fn output(name: &str) -> String {
    block("output", name)
}

/// Whether JSON `actual` matches the README's JSON output `name`, where a string written as
/// `"<...>"` (an id that differs on every run) matches any string.
pub fn matches_json_output(name: &str, actual: &str) -> Result<(), String> {
    let shown: serde_json::Value = serde_json::from_str(&output(name))
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
