//! A left-to-right layered layout of the DAG, computed on the server so
//! that the page only draws: each stage's layer is the longest path to it
//! from a source (Sugiyama's layering), and the stages of a layer are
//! ordered by the mean position of their upstream stages (the barycenter
//! heuristic of Sugiyama, Tagawa and Toda, 1981), with the instances of a
//! `matrix:` stage kept together.

/// Where each stage is drawn, in layout units (one per column and row).
pub struct Layout {
    /// (column, row) per stage.
    pub at: Vec<(u32, u32)>,
    pub columns: u32,
    pub rows: u32,
}

/// Lays out `n` stages given in a topological `order`, with `upstream[i]`
/// the stages `i` reads from and `group[i]` the declared name of a matrix
/// instance (its own id otherwise).
pub fn layout(n: usize, order: &[usize], upstream: &[Vec<usize>], group: &[&str]) -> Layout {
    let mut layer = vec![0u32; n];
    for &i in order {
        layer[i] = upstream[i].iter().map(|&u| layer[u] + 1).max().unwrap_or(0);
    }
    let columns = layer.iter().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); columns as usize];
    for &i in order {
        by_layer[layer[i] as usize].push(i);
    }
    let mut row = vec![0f64; n];
    for stages in &mut by_layer {
        // The barycenter of the upstream rows (already placed: they are
        // in earlier layers); a source keeps its order in the file.
        let key = |i: usize| -> f64 {
            let up = &upstream[i];
            if up.is_empty() {
                f64::NAN
            } else {
                up.iter().map(|&u| row[u]).sum::<f64>() / up.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize, usize)> = stages
            .iter()
            .enumerate()
            .map(|(pos, &i)| (key(i), pos, i))
            .collect();
        // A group sorts by its first member's key, so instances stay
        // adjacent and in their own order.
        let mut group_key: std::collections::HashMap<&str, f64> = Default::default();
        for &(k, pos, i) in &keyed {
            group_key
                .entry(group[i])
                .or_insert(if k.is_nan() { pos as f64 } else { k });
        }
        keyed.sort_by(|a, b| {
            let (ga, gb) = (group_key[group[a.2]], group_key[group[b.2]]);
            ga.total_cmp(&gb)
                .then_with(|| group[a.2].cmp(group[b.2]))
                .then_with(|| a.1.cmp(&b.1))
        });
        for (r, &(_, _, i)) in keyed.iter().enumerate() {
            row[i] = r as f64;
        }
        *stages = keyed.into_iter().map(|(_, _, i)| i).collect();
    }
    let rows = by_layer.iter().map(Vec::len).max().unwrap_or(0) as u32;
    Layout {
        at: (0..n).map(|i| (layer[i], row[i] as u32)).collect(),
        columns,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diamond_takes_three_columns_and_two_rows() {
        // a -> b, a -> c, b -> d, c -> d
        let up = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let l = layout(4, &[0, 1, 2, 3], &up, &["a", "b", "c", "d"]);
        assert_eq!(l.columns, 3);
        assert_eq!(l.rows, 2);
        assert_eq!(l.at[0], (0, 0));
        assert_eq!(l.at[3].0, 2);
        assert_ne!(l.at[1], l.at[2]);
    }

    #[test]
    fn matrix_instances_stay_together() {
        // two sources, then t@1, u, t@2 in one layer: the t's are adjacent.
        let up = vec![vec![], vec![0], vec![0], vec![0]];
        let l = layout(4, &[0, 1, 2, 3], &up, &["s", "t", "u", "t"]);
        let (r1, r3) = (l.at[1].1 as i64, l.at[3].1 as i64);
        assert_eq!((r1 - r3).abs(), 1, "{:?}", l.at);
    }
}
