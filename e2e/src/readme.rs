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
