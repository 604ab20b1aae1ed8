use crate::Thresholds;
use crate::features::{layout_similarity, thumb_distance};
use crate::load::Item;
use rayon::prelude::*;
use std::collections::BTreeMap;
use valar_core::AuditKind;

/// A BK-tree over 64-bit hashes under the Hamming distance: a query within radius r
/// visits only the children whose edge distance lies within r of the query's, which
/// is what makes near-duplicate search sub-quadratic.
struct BkTree {
    nodes: Vec<Node>,
}

/// A BK-tree node: a hash, its item, and its children as (distance, node).
type Node = (u64, usize, Vec<(u32, usize)>);

impl BkTree {
    fn new(hashes: impl Iterator<Item = (usize, u64)>) -> Self {
        let mut tree = BkTree { nodes: Vec::new() };
        for (item, hash) in hashes {
            tree.insert(item, hash);
        }
        tree
    }

    fn insert(&mut self, item: usize, hash: u64) {
        if self.nodes.is_empty() {
            self.nodes.push((hash, item, Vec::new()));
            return;
        }
        let mut at = 0;
        loop {
            let d = (self.nodes[at].0 ^ hash).count_ones();
            match self.nodes[at].2.iter().find(|(e, _)| *e == d) {
                Some(&(_, child)) => at = child,
                None => {
                    let new = self.nodes.len();
                    self.nodes.push((hash, item, Vec::new()));
                    self.nodes[at].2.push((d, new));
                    return;
                }
            }
        }
    }

    /// Items within `radius` of `hash`, with their distances, in no particular order.
    fn within(&self, hash: u64, radius: u32) -> Vec<(usize, u32)> {
        let mut found = Vec::new();
        let mut stack = if self.nodes.is_empty() {
            vec![]
        } else {
            vec![0]
        };
        while let Some(at) = stack.pop() {
            let (h, item, children) = &self.nodes[at];
            let d = (h ^ hash).count_ones();
            if d <= radius {
                found.push((*item, d));
            }
            for &(e, child) in children {
                if e + radius >= d && e <= d + radius {
                    stack.push(child);
                }
            }
        }
        found
    }
}

/// A duplicate group's member: which item, its strongest tie to another member, and
/// the distance of that tie (0 for the same bytes, gray levels for the same face,
/// hash bits for a near duplicate).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub item: usize,
    pub kind: AuditKind,
    pub score: f64,
}

/// A set of faces tied by exact, same-face or near-duplicate links.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    /// 1, 2, … in order of each group's first item.
    pub id: u64,
    /// Members in item order.
    pub members: Vec<Member>,
    /// Whether the group spans datasets or splits.
    pub leak: bool,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Groups the items: the same SHA-256, then perceptual-hash neighbours within
/// `near_bits` whose colour layouts agree within `near_layout`, told apart into same face (thumbnails within `same_face_mad`) and
/// near duplicates; connected components of two or more become groups.
pub(crate) fn groups(items: &[Item], t: &Thresholds) -> Vec<Group> {
    let n = items.len();
    // The strongest tie seen per item: (rank, distance), rank 0 exact, 1 same face, 2 near.
    let mut best: Vec<Option<(u8, f64)>> = vec![None; n];
    let tie = |best: &mut Vec<Option<(u8, f64)>>, i: usize, rank: u8, d: f64| {
        let b = &mut best[i];
        if b.is_none_or(|(r, s)| (rank, d) < (r, s)) {
            *b = Some((rank, d));
        }
    };
    let mut parent: Vec<usize> = (0..n).collect();
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };

    let mut by_sha: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        by_sha.entry(item.sha256.as_str()).or_default().push(i);
    }
    for members in by_sha.values().filter(|m| m.len() > 1) {
        for &i in members {
            tie(&mut best, i, 0, 0.0);
            union(&mut parent, members[0], i);
        }
    }

    let tree = BkTree::new(
        items
            .iter()
            .enumerate()
            .map(|(i, it)| (i, it.measures.phash)),
    );
    let pairs: Vec<Vec<(usize, usize, u32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut near: Vec<(usize, usize, u32)> = tree
                .within(items[i].measures.phash, t.near_bits)
                .into_iter()
                .filter(|&(j, _)| j > i && items[j].sha256 != items[i].sha256)
                .filter(|&(j, _)| {
                    layout_similarity(&items[i].measures.layout, &items[j].measures.layout)
                        >= t.near_layout
                })
                .map(|(j, d)| (i, j, d))
                .collect();
            near.sort_unstable();
            near
        })
        .collect();
    for (i, j, bits) in pairs.into_iter().flatten() {
        let mad = thumb_distance(&items[i].measures.thumb, &items[j].measures.thumb);
        let (rank, d) = if mad <= t.same_face_mad {
            (1, mad)
        } else {
            (2, f64::from(bits))
        };
        tie(&mut best, i, rank, d);
        tie(&mut best, j, rank, d);
        union(&mut parent, i, j);
    }

    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        components.entry(root).or_default().push(i);
    }
    let mut out: Vec<Group> = components
        .into_values()
        .filter(|m| m.len() > 1)
        .map(|members| {
            let first = &items[members[0]];
            let leak = members
                .iter()
                .any(|&i| items[i].dataset != first.dataset || items[i].split != first.split);
            Group {
                id: 0,
                leak,
                members: members
                    .iter()
                    .map(|&i| {
                        let (rank, score) = best[i].unwrap_or((2, 0.0));
                        let kind = match rank {
                            0 => AuditKind::ExactDuplicate,
                            1 => AuditKind::SameFace,
                            _ => AuditKind::NearDuplicate,
                        };
                        Member {
                            item: i,
                            kind,
                            score,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by_key(|g| g.members[0].item);
    for (k, g) in out.iter_mut().enumerate() {
        g.id = k as u64 + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bk_tree_finds_exactly_the_hashes_within_the_radius() {
        let hashes: Vec<u64> = (0..500u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let tree = BkTree::new(hashes.iter().copied().enumerate());
        for (q, &h) in hashes.iter().enumerate().step_by(37) {
            let mut got: Vec<usize> = tree.within(h, 24).into_iter().map(|(i, _)| i).collect();
            got.sort_unstable();
            let want: Vec<usize> = (0..hashes.len())
                .filter(|&i| (hashes[i] ^ h).count_ones() <= 24)
                .collect();
            assert_eq!(got, want, "query {q}");
        }
    }
}
