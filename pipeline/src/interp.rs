//! `${params.a.b}`, `${inputs.x}` and `${outputs.y}` in stage commands,
//! environment values and `with:` strings. `$${` writes a literal `${`.

/// What a `${...}` refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Params,
    Inputs,
    Outputs,
}

impl Namespace {
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Params => "params",
            Namespace::Inputs => "inputs",
            Namespace::Outputs => "outputs",
        }
    }
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Ref(Namespace, String),
}

/// A template as written: literal text (`$${` already read as `${`) and
/// the inside of each `${…}`, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'s> {
    Lit(String),
    Ref(&'s str),
}

/// Splits a template into literal text and the insides of its `${…}`,
/// whatever they name (the one scanner of templates: [`parse`] and
/// `matrix:` expansion both read its tokens).
pub fn tokens(s: &str) -> Result<Vec<Token<'_>>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| {
                format!("`${{` is not closed in `{s}`; add `}}` or write `$${{` for a literal")
            })?;
            if !lit.is_empty() {
                out.push(Token::Lit(std::mem::take(&mut lit)));
            }
            out.push(Token::Ref(tail[..end].trim()));
            rest = &tail[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    Ok(out)
}

/// Literal text written back as a template: `${` escaped as `$${`.
pub fn escape(lit: &str) -> String {
    lit.replace("${", "$${")
}

/// Splits a template into literal text and references.
pub fn parse(s: &str) -> Result<Vec<Piece>, String> {
    tokens(s)?
        .into_iter()
        .map(|t| match t {
            Token::Lit(l) => Ok(Piece::Lit(l)),
            Token::Ref(inner) => reference(inner),
        })
        .collect()
}

/// The reference `${inner}` names.
fn reference(inner: &str) -> Result<Piece, String> {
    if inner == "item" || inner == "key" {
        return Err(format!(
            "`${{{inner}}}` is given only in a stage with `matrix:` or `foreach:`"
        ));
    }
    let (ns, name) = inner.split_once('.').ok_or_else(|| {
        format!("`${{{inner}}}` must name `params.KEY`, `inputs.NAME` or `outputs.NAME`")
    })?;
    let ns = match ns {
        "params" => Namespace::Params,
        "inputs" => Namespace::Inputs,
        "outputs" => Namespace::Outputs,
        "item" | "key" => {
            return Err(format!(
                "`${{{inner}}}` is given only in a stage with `matrix:` or `foreach:`"
            ))
        }
        other => {
            return Err(format!(
                "unknown namespace `{other}` in `${{{inner}}}`; use `params`, `inputs` or `outputs`"
            ))
        }
    };
    if name.is_empty() {
        return Err(format!("`${{{inner}}}` has an empty name"));
    }
    Ok(Piece::Ref(ns, name.to_string()))
}

/// Joins pieces back into a string, resolving each reference with `f`.
pub fn render(pieces: &[Piece], mut f: impl FnMut(Namespace, &str) -> String) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Lit(l) => s.push_str(l),
            Piece::Ref(ns, name) => s.push_str(&f(*ns, name)),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_and_literals() {
        let p = parse("python train.py --lr ${params.train.lr} > ${outputs.log}").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Lit("python train.py --lr ".into()),
                Piece::Ref(Namespace::Params, "train.lr".into()),
                Piece::Lit(" > ".into()),
                Piece::Ref(Namespace::Outputs, "log".into()),
            ]
        );
    }

    #[test]
    fn escapes_and_plain_dollars() {
        assert_eq!(
            parse("echo $$${HOME} $HOME $${x}").unwrap(),
            vec![Piece::Lit("echo $${HOME} $HOME ${x}".into())]
        );
    }

    #[test]
    fn errors_are_explained() {
        assert!(parse("${params.x").unwrap_err().contains("not closed"));
        assert!(parse("${env.X}").unwrap_err().contains("unknown namespace"));
        assert!(parse("${lr}").unwrap_err().contains("must name"));
    }
}
