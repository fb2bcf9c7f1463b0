//! Indents compact JSON text without reordering object keys (Avro schemas are read in
//! field order; a `serde_json::Value` round trip would sort their keys).

/// `text` indented by two spaces per level. Expects valid JSON; other text comes back
/// reflowed but unchanged in content.
pub(crate) fn indent_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                // Keep empty containers on one line.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_and_keeps_key_order() {
        let text = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}],"doc":"a, \"b\" {c}","x":{}}"#;
        let expected = r#"{
  "type": "record",
  "name": "E",
  "fields": [
    {
      "name": "id",
      "type": "long"
    }
  ],
  "doc": "a, \"b\" {c}",
  "x": {}
}"#;
        assert_eq!(indent_json(text), expected);
    }

    #[test]
    fn already_indented_text_comes_out_the_same() {
        let once = indent_json(r#"{"a":[1,2,{"b":null}]}"#);
        assert_eq!(indent_json(&once), once);
    }
}
