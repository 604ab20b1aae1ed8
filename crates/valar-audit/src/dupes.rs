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

/// How strongly two items are tied, strongest first: the same bytes, the same face, a
/// near duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Exact,
    SameFace,
    Near,
}

impl Rank {
    fn kind(self) -> AuditKind {
        match self {
            Rank::Exact => AuditKind::ExactDuplicate,
            Rank::SameFace => AuditKind::SameFace,
            Rank::Near => AuditKind::NearDuplicate,
        }
    }
}

/// The ties found so far: a union-find over the items (the smaller index is a set's
/// root) and each item's strongest tie as (rank, distance).
struct Ties {
    parent: Vec<usize>,
    best: Vec<Option<(Rank, f64)>>,
}

impl Ties {
    fn new(n: usize) -> Self {
        Ties {
            parent: (0..n).collect(),
            best: vec![None; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Ties `a` and `b` with `rank` at distance `d`: one set, and each keeps the
    /// strongest (lowest rank, then shortest) tie it has.
    fn tie(&mut self, a: usize, b: usize, rank: Rank, d: f64) {
        for i in [a, b] {
            let best = &mut self.best[i];
            if best.is_none_or(|(r, s)| (rank, d) < (r, s)) {
                *best = Some((rank, d));
            }
        }
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }

    /// The sets of two or more, each in item order, in order of their first item.
    fn sets(&mut self) -> Vec<Vec<usize>> {
        let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.parent.len() {
            let root = self.find(i);
            components.entry(root).or_default().push(i);
        }
        components.into_values().filter(|m| m.len() > 1).collect()
    }

    /// Item `i` as a group member, by its strongest tie.
    fn member(&self, i: usize) -> Member {
        let (rank, score) = self.best[i].unwrap_or((Rank::Near, 0.0));
        Member {
            item: i,
            kind: rank.kind(),
            score,
        }
    }
}

/// Groups the items: the same SHA-256, then perceptual-hash neighbours within
/// `near_bits` whose colour layouts agree within `near_layout`, told apart into same face (thumbnails within `same_face_mad`) and
/// near duplicates; connected components of two or more become groups.
pub(crate) fn groups(items: &[Item], t: &Thresholds) -> Vec<Group> {
    let mut ties = Ties::new(items.len());
    tie_exact(items, &mut ties);
    for (i, j, bits) in near_pairs(items, t) {
        let mad = thumb_distance(&items[i].measures.thumb, &items[j].measures.thumb);
        let (rank, d) = if mad <= t.same_face_mad {
            (Rank::SameFace, mad)
        } else {
            (Rank::Near, f64::from(bits))
        };
        ties.tie(i, j, rank, d);
    }
    let mut out: Vec<Group> = ties
        .sets()
        .into_iter()
        .map(|members| {
            let first = &items[members[0]];
            let leak = members
                .iter()
                .any(|&i| items[i].dataset != first.dataset || items[i].split != first.split);
            Group {
                id: 0,
                leak,
                members: members.iter().map(|&i| ties.member(i)).collect(),
            }
        })
        .collect();
    out.sort_by_key(|g| g.members[0].item);
    for (k, g) in out.iter_mut().enumerate() {
        g.id = k as u64 + 1;
    }
    out
}

/// Ties every item to the first item with the same SHA-256.
fn tie_exact(items: &[Item], ties: &mut Ties) {
    let mut by_sha: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        by_sha.entry(item.sha256.as_str()).or_default().push(i);
    }
    for members in by_sha.values().filter(|m| m.len() > 1) {
        for &i in members {
            ties.tie(members[0], i, Rank::Exact, 0.0);
        }
    }
}

/// Pairs (i, j, hash bits apart), i < j, of different bytes whose perceptual hashes lie
/// within `near_bits` and whose colour layouts agree within `near_layout`, in order.
fn near_pairs(items: &[Item], t: &Thresholds) -> Vec<(usize, usize, u32)> {
    let tree = BkTree::new(
        items
            .iter()
            .enumerate()
            .map(|(i, it)| (i, it.measures.phash)),
    );
    let pairs: Vec<Vec<(usize, usize, u32)>> = (0..items.len())
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
    pairs.into_iter().flatten().collect()
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

    #[test]
    fn ties_join_sets_under_the_lowest_item_and_keep_each_items_strongest_tie() {
        let mut ties = Ties::new(6);
        ties.tie(4, 2, Rank::Near, 9.0);
        ties.tie(2, 1, Rank::SameFace, 2.0);
        ties.tie(4, 5, Rank::Near, 3.0);
        ties.tie(3, 3, Rank::Exact, 0.0);
        assert_eq!(ties.sets(), [vec![1, 2, 4, 5]]);
        let kinds: Vec<(AuditKind, f64)> = [1, 2, 4, 5]
            .map(|i| ties.member(i))
            .iter()
            .map(|m| (m.kind, m.score))
            .collect();
        assert_eq!(
            kinds,
            [
                (AuditKind::SameFace, 2.0),
                (AuditKind::SameFace, 2.0),
                (AuditKind::NearDuplicate, 3.0),
                (AuditKind::NearDuplicate, 3.0)
            ]
        );
        assert_eq!(ties.member(3).kind, AuditKind::ExactDuplicate);
    }
}
