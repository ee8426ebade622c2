//! "Did you mean" suggestions.

/// The candidate closest to `input` by Jaro-Winkler similarity, if it is
/// close enough to be a plausible typo.
pub fn closest<'a, S: AsRef<str> + 'a>(
    input: &str,
    candidates: impl IntoIterator<Item = S>,
) -> Option<S> {
    let mut best: Option<(f64, S)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(input, c.as_ref());
        if score >= 0.8 && best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub fn did_you_mean<S: AsRef<str>>(input: &str, candidates: impl IntoIterator<Item = S>) -> String {
    closest(input, candidates)
        .map(|c| format!("did you mean `{}`?", c.as_ref()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_close_names_only() {
        assert_eq!(super::closest("trian", ["train", "split"]), Some("train"));
        assert_eq!(super::closest("zzz", ["train", "split"]), None);
    }
}
