//! Shell-like word splitting (Python's `shlex.split`, as Ansible uses it for INI host lines
//! and `ansible_ssh_common_args`): whitespace separates words, `'…'` and `"…"` quote,
//! a backslash escapes the next character outside single quotes.

/// One word and the byte offset where it starts in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) text: String,
    pub(crate) start: usize,
}

/// The words of `text`, or the offset of an unclosed quote.
pub(crate) fn split(text: &str) -> Result<Vec<Word>, usize> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_whitespace() {
            words.extend(current.take());
            continue;
        }
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            start: at,
        });
        match c {
            '\'' => loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, c)) => word.text.push(c),
                    None => return Err(at),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\' | '$' | '`'))) => word.text.push(c),
                        Some((_, c)) => {
                            word.text.push('\\');
                            word.text.push(c);
                        }
                        None => return Err(at),
                    },
                    Some((_, c)) => word.text.push(c),
                    None => return Err(at),
                }
            },
            '\\' => match chars.next() {
                Some((_, c)) => word.text.push(c),
                None => word.text.push('\\'),
            },
            c => word.text.push(c),
        }
    }
    words.extend(current);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        split(text).unwrap().into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_like_shlex() {
        assert_eq!(
            texts(r#"node1 ansible_host=10.0.0.1  ip="10.1.0.1" a='b c'"#),
            ["node1", "ansible_host=10.0.0.1", "ip=10.1.0.1", "a=b c"]
        );
        assert_eq!(
            texts(r#"-o ProxyCommand="ssh -W %h:%p -q root@10.0.0.9""#),
            ["-o", "ProxyCommand=ssh -W %h:%p -q root@10.0.0.9"]
        );
        assert_eq!(texts(r"a\ b 'it''s'"), ["a b", "its"]);
        assert_eq!(split("x 'open").unwrap_err(), 2);
        assert_eq!(split("ab  cd").unwrap()[1].start, 4);
    }
}
