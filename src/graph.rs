//! The dependency graph of a stack's workers: a client depends on a host when
//! it binds a namespace the host hosts or service-binds it. Topological levels
//! order apply (hosts first) and destroy (clients first); cycles are errors.

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::GraphFormat;
use crate::manifest::{BindingKind, Manifest, Problem, ScriptRef};

/// Why a client depends on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub client: String,
    pub host: String,
    /// The client's binding that makes the dependency.
    pub binding: String,
    pub span: std::ops::Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Graph {
    /// Worker keys by level: level 0 depends on nothing in the stack.
    pub levels: Vec<Vec<String>>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Builds the graph; a cycle is a problem that spells the whole cycle out.
    pub fn new(manifest: &Manifest) -> Result<Graph, Problem> {
        let mut edges = Vec::new();
        for worker in &manifest.workers {
            for binding in &worker.bindings {
                let host = match &binding.kind {
                    BindingKind::DurableObject { namespace } => {
                        match manifest.namespace(namespace).map(|n| &n.host) {
                            Some(ScriptRef::Worker(host)) => Some(host.clone()),
                            _ => None,
                        }
                    }
                    BindingKind::Service {
                        target: ScriptRef::Worker(host),
                    } => Some(host.clone()),
                    _ => None,
                };
                if let Some(host) =
                    host.filter(|h| h != &worker.key && manifest.worker(h).is_some())
                {
                    edges.push(Edge {
                        client: worker.key.clone(),
                        host,
                        binding: binding.name.clone(),
                        span: binding.span.clone(),
                    });
                }
            }
        }
        edges.sort_by(|a, b| {
            (&a.client, &a.host, &a.binding).cmp(&(&b.client, &b.host, &b.binding))
        });

        let mut pending: BTreeMap<&str, BTreeSet<&str>> = manifest
            .workers
            .iter()
            .map(|w| (w.key.as_str(), BTreeSet::new()))
            .collect();
        for edge in &edges {
            if let Some(hosts) = pending.get_mut(edge.client.as_str()) {
                hosts.insert(edge.host.as_str());
            }
        }
        let mut levels = Vec::new();
        while !pending.is_empty() {
            let ready: Vec<&str> = pending
                .iter()
                .filter(|(_, hosts)| hosts.is_empty())
                .map(|(k, _)| *k)
                .collect();
            if ready.is_empty() {
                return Err(cycle_problem(&pending, &edges));
            }
            for key in &ready {
                pending.remove(key);
            }
            for hosts in pending.values_mut() {
                for key in &ready {
                    hosts.remove(key);
                }
            }
            levels.push(ready.into_iter().map(str::to_string).collect());
        }
        Ok(Graph { levels, edges })
    }

    /// The level a worker is in.
    pub fn level_of(&self, key: &str) -> Option<usize> {
        self.levels
            .iter()
            .position(|level| level.iter().any(|k| k == key))
    }

    /// Renders the graph as text, Graphviz dot or Mermaid.
    pub fn render(&self, manifest: &Manifest, format: GraphFormat) -> String {
        let script = |key: &str| {
            manifest
                .worker(key)
                .map(|w| w.script.clone())
                .unwrap_or_else(|| key.to_string())
        };
        let mut out = String::new();
        match format {
            GraphFormat::Text => {
                let (workers, levels) = (manifest.workers.len(), self.levels.len());
                out.push_str(&format!(
                    "stack {}: {workers} worker{} in {levels} level{}\n",
                    manifest.stack,
                    if workers == 1 { "" } else { "s" },
                    if levels == 1 { "" } else { "s" }
                ));
                for (i, level) in self.levels.iter().enumerate() {
                    out.push_str(&format!("level {i}:\n"));
                    for key in level {
                        let needs: Vec<String> = self
                            .edges
                            .iter()
                            .filter(|e| &e.client == key)
                            .map(|e| format!("{} ({})", e.host, e.binding))
                            .collect();
                        if needs.is_empty() {
                            out.push_str(&format!("  {key} [{}]\n", script(key)));
                        } else {
                            out.push_str(&format!(
                                "  {key} [{}] <- needs {}\n",
                                script(key),
                                needs.join(", ")
                            ));
                        }
                    }
                }
            }
            GraphFormat::Dot => {
                // Quoted dot strings: backslash and double quote escaped.
                let q = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
                out.push_str(&format!(
                    "digraph \"{}\" {{\n  rankdir=BT;\n",
                    q(&manifest.stack)
                ));
                for level in &self.levels {
                    for key in level {
                        out.push_str(&format!(
                            "  \"{}\" [label=\"{}\\n{}\"];\n",
                            q(key),
                            q(key),
                            q(&script(key))
                        ));
                    }
                }
                for e in &self.edges {
                    out.push_str(&format!(
                        "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
                        q(&e.client),
                        q(&e.host),
                        q(&e.binding)
                    ));
                }
                out.push_str("}\n");
            }
            GraphFormat::Mermaid => {
                out.push_str("graph BT\n");
                // Node ids by position (keys such as `a-b` and `a_b` stay
                // apart); labels with Mermaid's entity for a double quote.
                let keys: Vec<&String> = self.levels.iter().flatten().collect();
                let id = |key: &str| {
                    keys.iter()
                        .position(|k| k.as_str() == key)
                        .map_or_else(|| "unknown".to_string(), |i| format!("w{i}"))
                };
                let label = |text: &str| text.replace('"', "#quot;");
                for key in &keys {
                    out.push_str(&format!(
                        "  {}[\"{} ({})\"]\n",
                        id(key),
                        label(key),
                        label(&script(key))
                    ));
                }
                for e in &self.edges {
                    out.push_str(&format!(
                        "  {} -->|\"{}\"| {}\n",
                        id(&e.client),
                        label(&e.binding),
                        id(&e.host)
                    ));
                }
            }
        }
        out
    }
}

/// Finds one cycle among the workers that could not be levelled and spells it out.
fn cycle_problem(pending: &BTreeMap<&str, BTreeSet<&str>>, edges: &[Edge]) -> Problem {
    let Some(start) = pending.keys().next().copied() else {
        return Problem::new("dependency cycle", 0..0, "cycle");
    };
    // Walk host links from `start` until a worker repeats: that repeat closes a cycle.
    let mut path: Vec<&str> = vec![start];
    let mut current = start;
    loop {
        let Some(next) = pending
            .get(current)
            .and_then(|hosts| hosts.iter().next().copied())
        else {
            return Problem::new("dependency cycle", 0..0, "cycle");
        };
        if let Some(pos) = path.iter().position(|k| *k == next) {
            let mut cycle: Vec<&str> = path[pos..].to_vec();
            cycle.push(next);
            let first = edges
                .iter()
                .find(|e| e.client == cycle[0] && e.host == cycle[1]);
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let binding = edges
                        .iter()
                        .find(|e| e.client == pair[0] && e.host == pair[1])
                        .map(|e| e.binding.as_str())
                        .unwrap_or("?");
                    format!("{} needs {} (binding {binding})", pair[0], pair[1])
                })
                .collect();
            return Problem::new(
                format!("dependency cycle: {}", cycle.join(" -> ")),
                first.map(|e| e.span.clone()).unwrap_or(0..0),
                "this binding closes the cycle",
            )
            .help(format!(
                "{}; no order can deploy each host before its clients. Remove one of these bindings",
                steps.join(", ")
            ));
        }
        path.push(next);
        current = next;
    }
}
