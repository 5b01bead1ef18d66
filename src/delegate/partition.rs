//! Splitting an execution plan into groups that run on a delegate and groups that stay on
//! the CPU, in an order that respects every data dependency (TFLite's
//! `PartitionGraphIntoIndependentNodeSubsets`).

/// The tensors one node reads and writes.
#[derive(Debug, Clone, Default)]
pub struct NodeDeps {
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// A run of nodes of one kind, in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Whether the delegate runs the group (else the CPU kernels run it node by node).
    pub delegated: bool,
    /// Indices into the node list given to [`partition`], ascending.
    pub nodes: Vec<usize>,
}

/// Groups `nodes` (given in a valid execution order) into maximal runs of delegated and CPU
/// nodes. Concatenating the groups gives a valid execution order again; each delegated group
/// depends on the CPU only through its inputs, so it can run as one step.
///
/// CPU nodes keep their relative order: they may touch state that no tensor shows (resource
/// variables), so reordering them could change results. Delegated nodes have no such state.
pub fn partition(nodes: &[NodeDeps], supported: &[bool]) -> Vec<Group> {
    let n = nodes.len().min(supported.len());
    // The node that writes each tensor (the last writer, as the plan is in order).
    let mut writer = std::collections::HashMap::new();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut last_cpu: Option<usize> = None;
    for (i, node) in nodes.iter().take(n).enumerate() {
        for t in &node.inputs {
            if let Some(&w) = writer.get(t) {
                preds[i].push(w);
            }
        }
        if !supported[i] {
            if let Some(prev) = last_cpu {
                preds[i].push(prev);
            }
            last_cpu = Some(i);
        }
        preds[i].sort_unstable();
        preds[i].dedup();
        for &t in &node.outputs {
            writer.insert(t, i);
        }
    }
    let mut waiting: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in preds.iter().enumerate() {
        for &w in p {
            succs[w].push(i);
        }
    }
    let mut done = vec![false; n];
    let mut left = n;
    let mut groups = Vec::new();
    while left > 0 {
        // The earliest ready node picks the kind of the next group.
        let Some(first) = (0..n).find(|&i| !done[i] && waiting[i] == 0) else {
            break; // unreachable for a valid order: every node's writers come before it
        };
        let kind = supported[first];
        let mut group = Vec::new();
        // Take every node of this kind that is or becomes ready, earliest first.
        while let Some(i) = (0..n).find(|&i| !done[i] && waiting[i] == 0 && supported[i] == kind) {
            done[i] = true;
            left -= 1;
            group.push(i);
            for &s in &succs[i] {
                waiting[s] -= 1;
            }
        }
        groups.push(Group {
            delegated: kind,
            nodes: group,
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(inputs: &[usize], outputs: &[usize]) -> NodeDeps {
        NodeDeps {
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        }
    }

    fn groups(nodes: &[NodeDeps], supported: &[bool]) -> Vec<(bool, Vec<usize>)> {
        partition(nodes, supported)
            .into_iter()
            .map(|g| (g.delegated, g.nodes))
            .collect()
    }

    #[test]
    fn a_chain_splits_where_support_changes() {
        // t0 -a-> t1 -b-> t2 -c-> t3 -d-> t4
        let nodes = [
            node(&[0], &[1]),
            node(&[1], &[2]),
            node(&[2], &[3]),
            node(&[3], &[4]),
        ];
        assert_eq!(
            groups(&nodes, &[true, true, false, true]),
            vec![(true, vec![0, 1]), (false, vec![2]), (true, vec![3])]
        );
        assert_eq!(groups(&nodes, &[true; 4]), vec![(true, vec![0, 1, 2, 3])]);
        assert_eq!(groups(&nodes, &[false; 4]), vec![(false, vec![0, 1, 2, 3])]);
    }

    #[test]
    fn independent_branches_merge_across_a_cpu_node() {
        // a: t0->t1 (gpu), b: t1->t2 (cpu), c: t0->t3 (gpu), d: t2,t3->t4 (gpu)
        // c does not depend on b, so it joins a; d must wait for b.
        let nodes = [
            node(&[0], &[1]),
            node(&[1], &[2]),
            node(&[0], &[3]),
            node(&[2, 3], &[4]),
        ];
        assert_eq!(
            groups(&nodes, &[true, false, true, true]),
            vec![(true, vec![0, 2]), (false, vec![1]), (true, vec![3])]
        );
    }

    #[test]
    fn cpu_nodes_keep_their_order() {
        // Two CPU nodes with no data between them (state only) and a delegated one between.
        let nodes = [node(&[], &[1]), node(&[0], &[2]), node(&[], &[3])];
        let g = groups(&nodes, &[false, true, false]);
        assert_eq!(g, vec![(false, vec![0, 2]), (true, vec![1])]);
        // The CPU order 0 before 2 holds even when 2 is listed first of its kind elsewhere.
        let flat: Vec<usize> = g.iter().flat_map(|(_, n)| n.clone()).collect();
        assert!(flat.iter().position(|&i| i == 0) < flat.iter().position(|&i| i == 2));
    }

    #[test]
    fn every_node_once_and_dependencies_hold() {
        // A diamond with a CPU node on one side, checked exhaustively over all support masks.
        let nodes = [
            node(&[0], &[1]),
            node(&[1], &[2]),
            node(&[1], &[3]),
            node(&[2, 3], &[4]),
            node(&[4], &[5]),
        ];
        for mask in 0..32u32 {
            let supported: Vec<bool> = (0..5).map(|i| mask >> i & 1 == 1).collect();
            let g = partition(&nodes, &supported);
            let order: Vec<usize> = g.iter().flat_map(|g| g.nodes.clone()).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4], "mask {mask:05b}");
            let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
            for (b, nb) in nodes.iter().enumerate() {
                for (a, na) in nodes.iter().enumerate() {
                    if na.outputs.iter().any(|t| nb.inputs.contains(t)) {
                        assert!(pos(a) < pos(b), "mask {mask:05b}: {a} must run before {b}");
                    }
                }
            }
            for grp in &g {
                assert!(grp.nodes.iter().all(|&i| supported[i] == grp.delegated));
            }
            // Neighbouring groups differ in kind, else they would have been one.
            for w in g.windows(2) {
                assert_ne!(w[0].delegated, w[1].delegated, "mask {mask:05b}");
            }
        }
    }
}
