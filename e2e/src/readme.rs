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

/// Whether what a command printed, `actual`, is the README's output `name` as text (surrounding
/// whitespace aside), where each `<...>` in the README (an id that differs on every run) stands
/// for any text on one line. Text, not JSON: a user compares what they see with what the README
/// shows, field order included.
pub fn matches_output(name: &str, actual: &str) -> Result<(), String> {
    matches_text(name, &output(name), actual)
}

fn matches_text(name: &str, shown: &str, actual: &str) -> Result<(), String> {
    let pattern = output_pattern(shown.trim());
    if pattern.is_match(actual.trim()) {
        Ok(())
    } else {
        Err(format!(
            "{name}: the documentation shows\n{}\nbut the command printed\n{}",
            shown.trim(),
            actual.trim()
        ))
    }
}

/// The Azure guide (`docs/deploy-azure.md`): its commands and outputs, marked the same way, and
/// `<!-- azure: NAME -->` on the commands that need Azure itself (which no test can run).
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

    /// Whether `actual` is the guide's output `name` as text (see [`super::matches_output`]).
    pub fn matches_output(name: &str, actual: &str) -> Result<(), String> {
        super::matches_text(name, &output(name), actual)
    }

    fn text() -> String {
        std::fs::read_to_string(crate::repo_root().join(FILE)).expect("the guide is readable")
    }

    /// Every fenced `bash` block of the guide that is marked neither `command:` (run by the
    /// tests) nor `azure:` (needs Azure itself), by line number: each must be one or the other.
    pub fn unmarked_bash_blocks() -> Vec<usize> {
        let text = text();
        let lines: Vec<&str> = text.lines().collect();
        let mut unmarked = Vec::new();
        let mut in_block = false;
        for (i, line) in lines.iter().enumerate() {
            let fence = line.trim();
            if !fence.starts_with("```") {
                continue;
            }
            if !in_block && fence == "```bash" {
                let marker = i
                    .checked_sub(1)
                    .map(|j| lines[j].trim())
                    .unwrap_or_default();
                if !(marker.starts_with("<!-- command: ") || marker.starts_with("<!-- azure: ")) {
                    unmarked.push(i + 1);
                }
            }
            in_block = !in_block;
        }
        unmarked
    }

    /// Every command name marked in the guide, in order.
    pub fn command_names() -> Vec<String> {
        text()
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix("<!-- command: ")?
                    .strip_suffix(" -->")
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// The README's output `shown` as an anchored regular expression: literal text, with each
/// `<...>` placeholder matching one or more characters other than a line break.
fn output_pattern(shown: &str) -> regex::Regex {
    let placeholder = regex::Regex::new(r"<[^<>\n]+>").expect("a valid pattern");
    let mut pattern = String::from("^");
    let mut last = 0;
    for m in placeholder.find_iter(shown) {
        pattern.push_str(&regex::escape(&shown[last..m.start()]));
        pattern.push_str(r"[^\n]+?");
        last = m.end();
    }
    pattern.push_str(&regex::escape(&shown[last..]));
    pattern.push('$');
    regex::Regex::new(&pattern).expect("an escaped pattern is valid")
}

#[cfg(test)]
mod tests {
    use super::output_pattern;

    #[test]
    fn outputs_match_as_text_with_placeholders_for_run_specific_values() {
        let shown = r#"{"orderId":"o-1","eventId":"<the CloudEvent id>"}"#;
        let pattern = output_pattern(shown);
        assert!(pattern.is_match(r#"{"orderId":"o-1","eventId":"2f1c-77"}"#));
        // Same JSON, other field order: not what the README shows.
        assert!(!pattern.is_match(r#"{"eventId":"2f1c-77","orderId":"o-1"}"#));
        // A placeholder stands for something, on one line.
        assert!(!pattern.is_match(r#"{"orderId":"o-1","eventId":""}"#));
        assert!(!pattern.is_match("{\"orderId\":\"o-1\",\"eventId\":\"a\nb\"}"));
        // Literal text is literal, regex characters included.
        assert!(output_pattern("a.b (1)").is_match("a.b (1)"));
        assert!(!output_pattern("a.b").is_match("axb"));
    }
}
