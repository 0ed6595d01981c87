//! Annotation templates: `'{{service}}: {{errors}} errors in 1m'`.

/// A parsed template: literal text and `{{name}}` holes.
#[derive(Clone, Debug, PartialEq)]
pub struct Template(Vec<Part>);

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    /// Names every rule can use besides its own result columns.
    pub const BUILTINS: [&'static str; 5] =
        ["rule", "severity", "window_start", "window_end", "value"];

    /// Parses `text`; an unclosed `{{` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_string()));
            }
            let after = &rest[i + 2..];
            let Some(j) = after.find("}}") else {
                return Err(format!("unclosed `{{{{` in template '{text}'"));
            };
            let name = after[..j].trim();
            if name.is_empty() {
                return Err(format!("empty `{{{{}}}}` in template '{text}'"));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &after[j + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    /// The names it uses.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills the holes; an unknown name renders as empty.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&lookup(v).unwrap_or_default()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_rejects_unclosed() {
        let t = Template::parse("{{service}}: {{ errors }} errors in 1m").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["service", "errors"]);
        let s = t.render(|v| {
            Some(if v == "service" {
                "db".into()
            } else {
                "27".into()
            })
        });
        assert_eq!(s, "db: 27 errors in 1m");
        assert!(Template::parse("{{service").is_err());
        assert!(Template::parse("{{}}").is_err());
    }
}
