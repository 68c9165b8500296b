//! Reading one trace back from the Zipkin that `scripts/run.sh` starts, through its query API
//! (`GET /api/v2/trace/{traceId}`), and walking its spans' parents.

use std::collections::HashMap;
use std::time::Duration;

use e2e::wait_until;
use serde_json::Value;

use crate::support::get_json;

/// Zipkin's query API, as `scripts/run.sh` starts it.
const ZIPKIN: &str = "http://127.0.0.1:9411";

/// One span as Zipkin returns it (names are lower-cased by Zipkin).
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) id: String,
    pub(crate) parent: Option<String>,
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) kind: String,
    /// Made by a service (its instrumentation scope is `service-kit`), not by a sidecar
    /// (`dapr-diagnostics`).
    pub(crate) app: bool,
    pub(crate) tags: HashMap<String, String>,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.app { "app" } else { "sidecar" };
        write!(f, "{} {who} {} {:?}", self.service, self.kind, self.name)
    }
}

/// Which spans a check is about.
pub(crate) type Pick<'a> = dyn Fn(&Span) -> bool + 'a;

/// The spans of one trace.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) id: String,
    pub(crate) spans: Vec<Span>,
}

impl Trace {
    /// Trace `id`, once `complete` holds for it: the sidecars and services send spans in
    /// batches, seconds apart. Panics with what arrived after 30 s.
    pub(crate) fn fetch(id: &str, complete: impl Fn(&Trace) -> bool) -> Trace {
        let mut last = None;
        let done = wait_until(Duration::from_secs(30), || {
            let (status, body) = get_json(&format!("{ZIPKIN}/api/v2/trace/{id}"));
            if status != 200 {
                return false;
            }
            let trace = Trace::parse(id, &body);
            let ok = complete(&trace);
            last = Some(trace);
            ok
        });
        let trace = last.unwrap_or_else(|| panic!("Zipkin has no trace {id}"));
        assert!(done, "trace {id} is incomplete:\n{}", trace.tree());
        trace
    }

    fn parse(id: &str, body: &Value) -> Trace {
        let text = |span: &Value, key: &str| span[key].as_str().unwrap_or_default().to_owned();
        let spans = body
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|span| {
                assert_eq!(span["traceId"], id, "{span}");
                let tags: HashMap<String, String> = span["tags"]
                    .as_object()
                    .map(|tags| {
                        tags.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                Span {
                    id: text(span, "id"),
                    parent: span["parentId"].as_str().map(str::to_owned),
                    name: text(span, "name"),
                    service: span["localEndpoint"]["serviceName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kind: text(span, "kind"),
                    app: tags.get("otel.library.name").map(String::as_str) == Some("service-kit"),
                    tags,
                }
            })
            .collect();
        Trace {
            id: id.to_owned(),
            spans,
        }
    }

    /// The spans for which `pick` holds.
    pub(crate) fn all(&self, pick: impl Fn(&Span) -> bool) -> Vec<&Span> {
        self.spans.iter().filter(|s| pick(s)).collect()
    }

    /// The one span for which `pick` holds.
    pub(crate) fn one(&self, what: &str, pick: impl Fn(&Span) -> bool) -> &Span {
        let found = self.all(pick);
        assert_eq!(
            found.len(),
            1,
            "{what} in trace {}:\n{}",
            self.id,
            self.tree()
        );
        found[0]
    }

    /// `span`'s parent, its parent's parent, and so on up to the root.
    pub(crate) fn ancestors<'a>(&'a self, span: &Span) -> Vec<&'a Span> {
        let mut chain = Vec::new();
        let mut parent = span.parent.clone();
        while let Some(id) = parent {
            let Some(next) = self.spans.iter().find(|s| s.id == id) else {
                break;
            };
            chain.push(next);
            parent = next.parent.clone();
        }
        chain
    }

    /// The spans under `span`, directly.
    pub(crate) fn children<'a>(&'a self, span: &Span) -> Vec<&'a Span> {
        self.all(|s| s.parent.as_deref() == Some(span.id.as_str()))
    }

    /// Asserts that walking up from `span` meets spans matching `path`, in that order (nearest
    /// first), with any other spans between them.
    pub(crate) fn assert_ancestry(&self, span: &Span, path: &[(&str, &Pick<'_>)]) {
        let ancestors = self.ancestors(span);
        let mut rest = ancestors.iter();
        for (what, matches) in path {
            assert!(
                rest.any(|s| matches(s)),
                "above {span} there is no {what} (in order {:?}):\n{}",
                path.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
                self.tree()
            );
        }
    }

    /// The trace as an indented tree, for failure messages and the record.
    pub(crate) fn tree(&self) -> String {
        let mut out = String::new();
        let ids: Vec<&str> = self.spans.iter().map(|s| s.id.as_str()).collect();
        let roots = self
            .spans
            .iter()
            .filter(|s| s.parent.as_deref().is_none_or(|p| !ids.contains(&p)));
        for root in roots {
            self.write_tree(root, 0, &mut out);
        }
        out
    }

    fn write_tree(&self, span: &Span, depth: usize, out: &mut String) {
        out.push_str(&format!("{}{span}\n", "  ".repeat(depth)));
        for child in self.children(span) {
            self.write_tree(child, depth + 1, out);
        }
    }
}
