//! The stage graph: edges from each input to its consumer, a deterministic topological order,
//! cycle detection, and the `cairn dag` renderings.

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::spec::resolve::{InputRef, StageSpec};

pub struct Dag {
    graph: DiGraph<usize, ()>,
}

impl Dag {
    /// Node `i` is stage `i` in declaration order.
    pub fn build(stages: &[StageSpec]) -> Dag {
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
        for (i, s) in stages.iter().enumerate() {
            for input in &s.inputs {
                if let Some(j) = stages.iter().position(|u| u.id == input.stage) {
                    graph.update_edge(nodes[j], nodes[i], ());
                }
            }
        }
        Dag { graph }
    }

    pub fn upstream(&self, i: usize) -> Vec<usize> {
        self.neighbors(i, Direction::Incoming)
    }

    pub fn downstream(&self, i: usize) -> Vec<usize> {
        self.neighbors(i, Direction::Outgoing)
    }

    fn neighbors(&self, i: usize, dir: Direction) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), dir)
            .map(|n| n.index())
            .collect();
        v.sort_unstable();
        v
    }

    /// Kahn's algorithm, ties broken by declaration order, so runs and reports are stable.
    pub fn topological_order(&self) -> Vec<usize> {
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..n).map(|i| self.upstream(i).len()).collect();
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for j in self.downstream(i) {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        order
    }

    /// One cycle, as stage indices in edge order, if the graph has any.
    pub fn find_cycle(&self) -> Option<Vec<usize>> {
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let start = *scc.iter().min()?;
            let self_loop = self.graph.contains_edge(start, start);
            if scc.len() == 1 && !self_loop {
                continue;
            }
            if self_loop {
                return Some(vec![start.index()]);
            }
            // Shortest path start → … → start inside the component (breadth-first).
            let inside = |n: NodeIndex| scc.contains(&n);
            let mut parent: std::collections::HashMap<NodeIndex, NodeIndex> =
                std::collections::HashMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(n) = queue.pop_front() {
                for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                    if m == start {
                        let mut path = vec![n.index()];
                        let mut cur = n;
                        while let Some(&p) = parent.get(&cur) {
                            path.push(p.index());
                            cur = p;
                        }
                        path.reverse();
                        return Some(path);
                    }
                    if inside(m) && !parent.contains_key(&m) && m != start {
                        parent.insert(m, n);
                        queue.push_back(m);
                    }
                }
            }
        }
        None
    }

    /// `targets` plus, with `downstream`, everything after them, plus every ancestor of those
    /// (a stage needs its inputs).
    pub fn select(&self, targets: &[usize], downstream: bool) -> Vec<bool> {
        let n = self.graph.node_count();
        let mut chosen = vec![false; n];
        let mut stack: Vec<usize> = targets.to_vec();
        if downstream {
            let mut down = targets.to_vec();
            while let Some(i) = down.pop() {
                for j in self.downstream(i) {
                    if !stack.contains(&j) {
                        stack.push(j);
                        down.push(j);
                    }
                }
            }
        }
        while let Some(i) = stack.pop() {
            if !chosen[i] {
                chosen[i] = true;
                stack.extend(self.upstream(i));
            }
        }
        chosen
    }
}

/// `cairn dag`: one line per stage in run order (a sweep's cells each on their own), its kind,
/// `[device]` for device stages, and `← inputs` (`name=stage` for named inputs).
pub fn render_text(stages: &[StageSpec], dag: &Dag) -> String {
    let width = stages.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for i in dag.topological_order() {
        let s = &stages[i];
        let inputs: Vec<String> = s.inputs.iter().map(|x| x.to_string()).collect();
        let device = if s.kind.uses_device { " [device]" } else { "" };
        let arrow = if inputs.is_empty() {
            String::new()
        } else {
            format!(" ← {}", inputs.join(", "))
        };
        out.push_str(&format!(
            "{:width$}  {}{device}{arrow}\n",
            s.id, s.kind.name
        ));
    }
    out
}

/// An edge's label: the named input it fills and the split it takes, when there are.
fn edge_label(input: &InputRef) -> Option<String> {
    match (input.slot, input.split.as_deref()) {
        (None, split) => split.map(str::to_string),
        (Some(slot), None) => Some(slot.to_string()),
        (Some(slot), Some(split)) => Some(format!("{slot}: {split}")),
    }
}

/// `cairn dag --format mermaid`: a Mermaid flowchart, edges labelled with the named input they
/// fill and the split they take.
pub fn render_mermaid(stages: &[StageSpec], dag: &Dag) -> String {
    let order = dag.topological_order();
    let mut out = String::from("graph TD\n");
    for &i in &order {
        let s = &stages[i];
        out.push_str(&format!(
            "  {}[\"{}<br/><i>{}</i>\"]\n",
            s.id, s.id, s.kind.name
        ));
    }
    for &i in &order {
        for input in &stages[i].inputs {
            let label = edge_label(input)
                .map(|s| format!("|{s}|"))
                .unwrap_or_default();
            out.push_str(&format!("  {} -->{label} {}\n", input.stage, stages[i].id));
        }
    }
    out
}

/// `cairn dag --format dot`: a Graphviz digraph named after the pipeline, device stages bold.
pub fn render_dot(stages: &[StageSpec], dag: &Dag, name: &str) -> String {
    let order = dag.topological_order();
    let mut out = format!("digraph \"{name}\" {{\n  rankdir=TB;\n  node [shape=box];\n");
    for &i in &order {
        let s = &stages[i];
        let style = if s.kind.uses_device {
            ", style=bold"
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\\n{}\"{style}];\n",
            s.id, s.id, s.kind.name
        ));
    }
    for &i in &order {
        for input in &stages[i].inputs {
            let label = edge_label(input)
                .map(|s| format!(" [label=\"{s}\"]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  \"{}\" -> \"{}\"{label};\n",
                input.stage, stages[i].id
            ));
        }
    }
    out.push_str("}\n");
    out
}

/// The stage graph as an SVG, for `cairn report`: a layered drawing, left to right (a stage's
/// column is one past its deepest input; within a column, stages sit near the mean height of
/// their inputs), each box linking to `#stage-<id>` and carrying `class_of(i)` as its CSS class.
pub fn render_svg(stages: &[StageSpec], dag: &Dag, class_of: &dyn Fn(usize) -> String) -> String {
    const ROW: f64 = 52.0;
    const BOX_H: f64 = 36.0;
    const GAP: f64 = 56.0;
    let order = dag.topological_order();
    let mut column = vec![0usize; stages.len()];
    for &i in &order {
        column[i] = dag
            .upstream(i)
            .iter()
            .map(|&u| column[u] + 1)
            .max()
            .unwrap_or(0);
    }
    let columns = column.iter().max().map_or(0, |c| c + 1);
    // Rows: each column's stages ordered by the mean row of their inputs (fewer crossings).
    let mut row = vec![0.0f64; stages.len()];
    for c in 0..columns {
        let mut members: Vec<usize> = order.iter().copied().filter(|&i| column[i] == c).collect();
        let anchor = |i: usize| {
            let ups = dag.upstream(i);
            match ups.is_empty() {
                true => i as f64,
                false => ups.iter().map(|&u| row[u]).sum::<f64>() / ups.len() as f64,
            }
        };
        members.sort_by(|&a, &b| anchor(a).total_cmp(&anchor(b)).then(a.cmp(&b)));
        for (k, &i) in members.iter().enumerate() {
            row[i] = k as f64;
        }
    }
    let text_width = |s: &str| s.chars().count() as f64 * 7.2;
    let mut col_width = vec![0.0f64; columns];
    for (i, s) in stages.iter().enumerate() {
        let w = text_width(&s.id).max(text_width(s.kind.name) * 0.85) + 24.0;
        col_width[column[i]] = col_width[column[i]].max(w);
    }
    let col_x: Vec<f64> = col_width
        .iter()
        .scan(10.0, |x, w| {
            let at = *x;
            *x += w + GAP;
            Some(at)
        })
        .collect();
    let rows = row.iter().fold(0.0f64, |m, &r| m.max(r + 1.0));
    let width = col_x
        .last()
        .zip(col_width.last())
        .map_or(20.0, |(x, w)| x + w + 10.0);
    let height = rows * ROW + 20.0;
    let (x_of, y_of) = (|i: usize| col_x[column[i]], |i: usize| 10.0 + row[i] * ROW);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"dag\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n"
    );
    for &i in &order {
        for u in dag.upstream(i) {
            let (x1, y1) = (x_of(u) + col_width[column[u]], y_of(u) + BOX_H / 2.0);
            let (x2, y2) = (x_of(i), y_of(i) + BOX_H / 2.0);
            let mid = (x1 + x2) / 2.0;
            out.push_str(&format!(
                "<path class=\"edge\" d=\"M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} \
                 {x2:.1},{y2:.1}\" marker-end=\"url(#arrow)\"/>\n"
            ));
        }
    }
    for &i in &order {
        let s = &stages[i];
        let (x, y, w) = (x_of(i), y_of(i), col_width[column[i]]);
        out.push_str(&format!(
            "<a href=\"#stage-{id}\"><g class=\"node {class}\"><title>{id} ({kind})</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"5\"/>\
             <text x=\"{tx:.1}\" y=\"{ty1:.1}\">{id}</text>\
             <text class=\"kind\" x=\"{tx:.1}\" y=\"{ty2:.1}\">{kind}</text></g></a>\n",
            id = xml_escape(&s.id),
            kind = xml_escape(s.kind.name),
            class = class_of(i),
            tx = x + 10.0,
            ty1 = y + 15.0,
            ty2 = y + 29.0,
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// Text safe inside XML/HTML elements and attribute values.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
