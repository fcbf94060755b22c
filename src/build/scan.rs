//! A small JavaScript scanner: it tokenizes a module (skipping comments,
//! strings, template literals and regular expressions) and reads its import
//! specifiers, the classes it declares and the names it exports.

use std::collections::{BTreeMap, BTreeSet};

/// A token, as much of it as the scans need.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword (private names keep their `#`).
    Ident(String),
    /// A string literal, or a template literal without substitutions: its value.
    Str(String),
    /// A punctuator, one character at a time.
    Punct(char),
    /// Numbers, regular expressions, pieces of templates with substitutions.
    Other,
}

/// Keywords after which a `/` starts a regular expression rather than a division.
const REGEX_AFTER_KEYWORD: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
    "export",
    "default",
    "extends",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$' || (c as u32) >= 0x80
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    tokens: Vec<Tok>,
    /// One entry per open `${`: how many `{` are open inside it.
    template_depth: Vec<usize>,
}

impl Lexer {
    fn new(source: &str) -> Self {
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
            tokens: Vec::new(),
            template_depth: Vec::new(),
        }
    }

    fn peek(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn regex_allowed(&self) -> bool {
        match self.tokens.last() {
            None => true,
            Some(Tok::Punct(c)) => !matches!(c, ')' | ']'),
            Some(Tok::Ident(word)) => REGEX_AFTER_KEYWORD.contains(&word.as_str()),
            Some(Tok::Str(_)) | Some(Tok::Other) => false,
        }
    }

    fn run(mut self) -> Vec<Tok> {
        // A hashbang line.
        if self.peek(0) == Some('#') && self.peek(1) == Some('!') {
            self.skip_line();
        }
        while let Some(c) = self.peek(0) {
            match c {
                c if c.is_whitespace() => self.pos += 1,
                '/' if self.peek(1) == Some('/') => self.skip_line(),
                '/' if self.peek(1) == Some('*') => self.skip_block_comment(),
                '/' if self.regex_allowed() => self.regex(),
                '\'' | '"' => self.string(c),
                '`' => {
                    self.pos += 1;
                    self.template_piece(true);
                }
                '{' => {
                    if let Some(depth) = self.template_depth.last_mut() {
                        *depth += 1;
                    }
                    self.pos += 1;
                    self.tokens.push(Tok::Punct('{'));
                }
                '}' => {
                    self.pos += 1;
                    match self.template_depth.last_mut() {
                        Some(0) => {
                            self.template_depth.pop();
                            self.template_piece(false);
                        }
                        Some(depth) => {
                            *depth -= 1;
                            self.tokens.push(Tok::Punct('}'));
                        }
                        None => self.tokens.push(Tok::Punct('}')),
                    }
                }
                '#' if self.peek(1).is_some_and(is_ident_start) => {
                    self.pos += 1;
                    let name = self.ident();
                    self.tokens.push(Tok::Ident(format!("#{name}")));
                }
                c if c.is_ascii_digit() => self.number(),
                '.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
                c if is_ident_start(c) => {
                    let name = self.ident();
                    self.tokens.push(Tok::Ident(name));
                }
                '\\' => {
                    // An identifier with a unicode escape: rare, treat as opaque.
                    self.pos += 1;
                    self.tokens.push(Tok::Other);
                }
                c => {
                    self.pos += 1;
                    self.tokens.push(Tok::Punct(c));
                }
            }
        }
        self.tokens
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' || c == '\r' || c == '\u{2028}' || c == '\u{2029}' {
                break;
            }
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        self.pos += 2;
        while let Some(c) = self.peek(0) {
            if c == '*' && self.peek(1) == Some('/') {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self.peek(0).is_some_and(is_ident_part) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self) {
        while let Some(c) = self.peek(0) {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                let exponent = matches!(c, 'e' | 'E');
                self.pos += 1;
                if exponent && matches!(self.peek(0), Some('+' | '-')) {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        self.tokens.push(Tok::Other);
    }

    /// A quoted string. An unterminated one ends at the line's end.
    fn string(&mut self, quote: char) {
        self.pos += 1;
        let mut value = String::new();
        while let Some(c) = self.peek(0) {
            match c {
                c if c == quote => {
                    self.pos += 1;
                    break;
                }
                '\n' | '\r' => break,
                '\\' => {
                    self.pos += 1;
                    if let Some(escaped) = self.peek(0) {
                        value.push(unescape(escaped));
                        self.pos += 1;
                    }
                }
                c => {
                    value.push(c);
                    self.pos += 1;
                }
            }
        }
        self.tokens.push(Tok::Str(value));
    }

    /// A template literal from just after its opening backtick (`head`) or just
    /// after a substitution's closing brace, up to its end or the next `${`.
    fn template_piece(&mut self, head: bool) {
        let mut value = String::new();
        while let Some(c) = self.peek(0) {
            match c {
                '`' => {
                    self.pos += 1;
                    self.tokens
                        .push(if head { Tok::Str(value) } else { Tok::Other });
                    return;
                }
                '\\' => {
                    self.pos += 1;
                    if let Some(escaped) = self.peek(0) {
                        value.push(unescape(escaped));
                        self.pos += 1;
                    }
                }
                '$' if self.peek(1) == Some('{') => {
                    self.pos += 2;
                    self.tokens.push(Tok::Other);
                    self.template_depth.push(0);
                    return;
                }
                c => {
                    value.push(c);
                    self.pos += 1;
                }
            }
        }
        self.tokens.push(Tok::Other);
    }

    /// A regular expression literal. If the line ends before it closes, the
    /// `/` was a division after all: emit it alone and go on after it.
    fn regex(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut in_class = false;
        while let Some(c) = self.peek(0) {
            match c {
                '\n' | '\r' => break,
                '\\' => self.pos += 2,
                '[' => {
                    in_class = true;
                    self.pos += 1;
                }
                ']' => {
                    in_class = false;
                    self.pos += 1;
                }
                '/' if !in_class => {
                    self.pos += 1;
                    while self.peek(0).is_some_and(is_ident_part) {
                        self.pos += 1;
                    }
                    self.tokens.push(Tok::Other);
                    return;
                }
                _ => self.pos += 1,
            }
        }
        self.pos = start + 1;
        self.tokens.push(Tok::Punct('/'));
    }
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '0' => '\0',
        other => other,
    }
}

/// Where `export { … } from "x"` or `export * from "x"` sends a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReExport {
    /// `export { imported as exported } from "specifier"`.
    Named {
        specifier: String,
        imported: String,
        exported: String,
    },
    /// `export * from "specifier"`.
    Star { specifier: String },
}

/// What the scanner learned about one module.
#[derive(Debug, Default, Clone)]
pub(crate) struct ModuleScan {
    /// Every import specifier: static imports, re-exports, dynamic imports
    /// with a literal argument, in source order, without duplicates.
    pub specifiers: Vec<String>,
    /// Names bound to a class in this module.
    local_classes: BTreeSet<String>,
    /// `var a = b`: a is another name for b.
    aliases: BTreeMap<String, String>,
    /// Local name -> the names it is exported as.
    local_exports: Vec<(String, String)>,
    /// Names exported from other modules.
    pub reexports: Vec<ReExport>,
    /// Local name -> (specifier, imported name) for `import { imported as local } from "specifier"`.
    pub named_imports: BTreeMap<String, (String, String)>,
}

impl ModuleScan {
    /// Whether a local name refers to a class declared in this module.
    pub fn is_local_class(&self, name: &str) -> bool {
        let mut current = name;
        for _ in 0..16 {
            if self.local_classes.contains(current) {
                return true;
            }
            match self.aliases.get(current) {
                Some(next) => current = next,
                None => return false,
            }
        }
        false
    }

    /// The name an alias chain ends at.
    pub fn resolve_alias<'a>(&'a self, name: &'a str) -> &'a str {
        let mut current = name;
        for _ in 0..16 {
            match self.aliases.get(current) {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    /// (local, exported) pairs for names this module itself exports.
    pub fn local_exports(&self) -> &[(String, String)] {
        &self.local_exports
    }

    /// Exported names bound to classes declared in this module (no `default`).
    pub fn exported_local_classes(&self) -> BTreeSet<String> {
        self.local_exports
            .iter()
            .filter(|(local, exported)| exported != "default" && self.is_local_class(local))
            .map(|(_, exported)| exported.clone())
            .collect()
    }
}

fn is_word(tok: Option<&Tok>, word: &str) -> bool {
    matches!(tok, Some(Tok::Ident(w)) if w == word)
}

fn is_punct(tok: Option<&Tok>, c: char) -> bool {
    matches!(tok, Some(Tok::Punct(p)) if *p == c)
}

fn ident(tok: Option<&Tok>) -> Option<&str> {
    match tok {
        Some(Tok::Ident(w)) => Some(w.as_str()),
        _ => None,
    }
}

/// A module export name: an identifier or (ES2022) a string literal.
fn export_name(tok: Option<&Tok>) -> Option<&str> {
    match tok {
        Some(Tok::Ident(w)) | Some(Tok::Str(w)) => Some(w.as_str()),
        _ => None,
    }
}

/// Whether the token at `i` is a keyword in statement position, not a
/// property name (`x.import`, `{ class: 1 }`).
fn keyword_at(tokens: &[Tok], i: usize, word: &str) -> bool {
    is_word(tokens.get(i), word)
        && (i == 0 || !is_punct(tokens.get(i - 1), '.'))
        && !is_punct(tokens.get(i + 1), ':')
}

/// After `var a = b`: is `b` the whole initializer?
fn ends_expression(tok: Option<&Tok>) -> bool {
    match tok {
        None => true,
        Some(Tok::Punct(c)) => matches!(c, ';' | ',' | '}'),
        Some(Tok::Ident(_)) => true, // the next statement, after an automatic semicolon
        _ => false,
    }
}

/// Parses `{ a, b as c, "d" as e }` starting at the `{`: the (left, right)
/// pairs and the index after the `}`.
fn brace_list(tokens: &[Tok], open: usize) -> (Vec<(String, String)>, usize) {
    let mut pairs = Vec::new();
    let mut i = open + 1;
    while i < tokens.len() && !is_punct(tokens.get(i), '}') {
        // TypeScript's inline `type` modifier: `{ type A, B }`.
        if is_word(tokens.get(i), "type")
            && export_name(tokens.get(i + 1)).is_some()
            && !is_word(tokens.get(i + 1), "as")
        {
            i += 1;
        }
        let Some(left) = export_name(tokens.get(i)) else {
            i += 1;
            continue;
        };
        let left = left.to_string();
        let mut right = left.clone();
        i += 1;
        if is_word(tokens.get(i), "as")
            && let Some(name) = export_name(tokens.get(i + 1))
        {
            right = name.to_string();
            i += 2;
        }
        pairs.push((left, right));
        if is_punct(tokens.get(i), ',') {
            i += 1;
        }
    }
    (pairs, i + 1)
}

fn add_specifier(scan: &mut ModuleScan, specifier: &str) {
    if !scan.specifiers.iter().any(|known| known == specifier) {
        scan.specifiers.push(specifier.to_string());
    }
}

/// Scans a module's source.
pub(crate) fn scan_module(source: &str) -> ModuleScan {
    let tokens = Lexer::new(source).run();
    let mut scan = ModuleScan::default();
    let mut i = 0;
    while i < tokens.len() {
        if keyword_at(&tokens, i, "import") {
            match tokens.get(i + 1) {
                Some(Tok::Punct('(')) => {
                    if let Some(Tok::Str(spec)) = tokens.get(i + 2)
                        && (is_punct(tokens.get(i + 3), ')') || is_punct(tokens.get(i + 3), ','))
                    {
                        add_specifier(&mut scan, spec);
                    }
                    i += 2;
                    continue;
                }
                Some(Tok::Punct('.')) => {
                    i += 2;
                    continue;
                }
                Some(Tok::Str(spec)) => {
                    add_specifier(&mut scan, spec);
                    i += 2;
                    continue;
                }
                _ => {
                    i = import_declaration(&tokens, i, &mut scan);
                    continue;
                }
            }
        }
        if keyword_at(&tokens, i, "export") {
            i = export_declaration(&tokens, i, &mut scan);
            continue;
        }
        if keyword_at(&tokens, i, "class")
            && let Some(name) = ident(tokens.get(i + 1))
            && name != "extends"
            && name != "implements"
        {
            scan.local_classes.insert(name.to_string());
        }
        // `name = class …` (also `var name = class …`), not `x.name = class`.
        if let (Some(name), true, true) = (
            ident(tokens.get(i)),
            is_punct(tokens.get(i + 1), '='),
            is_word(tokens.get(i + 2), "class"),
        ) {
            let after_dot = i > 0 && is_punct(tokens.get(i - 1), '.');
            if !after_dot {
                scan.local_classes.insert(name.to_string());
            }
        }
        // `var a = b;` (one name for another, as bundlers write for renamed classes).
        if matches!(ident(tokens.get(i)), Some("var" | "let" | "const"))
            && let (Some(a), true, Some(b)) = (
                ident(tokens.get(i + 1)),
                is_punct(tokens.get(i + 2), '='),
                ident(tokens.get(i + 3)),
            )
            && b != "class"
            && b != "function"
            && ends_expression(tokens.get(i + 4))
        {
            scan.aliases.insert(a.to_string(), b.to_string());
        }
        i += 1;
    }
    scan
}

/// `import … from "x"` starting at `import`: records the specifier and the
/// names it binds; returns where to go on.
fn import_declaration(tokens: &[Tok], start: usize, scan: &mut ModuleScan) -> usize {
    let mut i = start + 1;
    if is_word(tokens.get(i), "type") && !is_word(tokens.get(i + 1), "from") {
        i += 1; // TypeScript `import type …`: still a dependency edge, harmless.
    }
    let mut bindings: Vec<(String, String)> = Vec::new();
    // Bounded walk to `from "x"`: an import clause is short.
    let limit = (i + 4096).min(tokens.len());
    while i < limit {
        match tokens.get(i) {
            Some(Tok::Punct('{')) => {
                let (pairs, next) = brace_list(tokens, i);
                // In an import, the pair is (imported, local).
                bindings.extend(pairs);
                i = next;
            }
            Some(Tok::Punct('*')) => {
                // `* as ns`: a namespace, never a class itself.
                i += 3;
            }
            Some(Tok::Ident(w)) if w == "from" => {
                if let Some(Tok::Str(spec)) = tokens.get(i + 1) {
                    add_specifier(scan, spec);
                    for (imported, local) in bindings {
                        scan.named_imports.insert(local, (spec.clone(), imported));
                    }
                    return i + 2;
                }
                // `import from from "x"`: a default binding named `from`.
                if is_word(tokens.get(i + 1), "from") {
                    bindings.push(("default".into(), "from".into()));
                    i += 1;
                    continue;
                }
                return i + 1;
            }
            Some(Tok::Ident(w)) => {
                bindings.push(("default".into(), w.clone()));
                i += 1;
            }
            Some(Tok::Punct(',')) => i += 1,
            _ => return i,
        }
    }
    i
}

/// An `export …` statement starting at `export`; returns where to go on.
fn export_declaration(tokens: &[Tok], start: usize, scan: &mut ModuleScan) -> usize {
    let i = start + 1;
    match tokens.get(i) {
        Some(Tok::Punct('{')) => {
            let (pairs, next) = brace_list(tokens, i);
            if is_word(tokens.get(next), "from")
                && let Some(Tok::Str(spec)) = tokens.get(next + 1)
            {
                add_specifier(scan, spec);
                for (imported, exported) in pairs {
                    scan.reexports.push(ReExport::Named {
                        specifier: spec.clone(),
                        imported,
                        exported,
                    });
                }
                return next + 2;
            }
            scan.local_exports.extend(pairs);
            next
        }
        Some(Tok::Punct('*')) => {
            if is_word(tokens.get(i + 1), "from")
                && let Some(Tok::Str(spec)) = tokens.get(i + 2)
            {
                add_specifier(scan, spec);
                scan.reexports.push(ReExport::Star {
                    specifier: spec.clone(),
                });
                return i + 3;
            }
            // `export * as ns from "x"`: a namespace object, not a class.
            if is_word(tokens.get(i + 1), "as")
                && is_word(tokens.get(i + 3), "from")
                && let Some(Tok::Str(spec)) = tokens.get(i + 4)
            {
                add_specifier(scan, spec);
                return i + 5;
            }
            i + 1
        }
        Some(Tok::Ident(w)) if w == "class" => {
            if let Some(name) = ident(tokens.get(i + 1))
                && name != "extends"
            {
                scan.local_classes.insert(name.to_string());
                scan.local_exports
                    .push((name.to_string(), name.to_string()));
            }
            i + 1
        }
        Some(Tok::Ident(w)) if w == "abstract" && is_word(tokens.get(i + 1), "class") => {
            if let Some(name) = ident(tokens.get(i + 2)) {
                scan.local_classes.insert(name.to_string());
                scan.local_exports
                    .push((name.to_string(), name.to_string()));
            }
            i + 2
        }
        Some(Tok::Ident(w)) if matches!(w.as_str(), "var" | "let" | "const") => {
            // `export const A = …, B = …`: each declared name is exported.
            // Only the simple top-level names are read; the generic pass sees
            // `A = class` and `A = B` forms.
            let mut j = i + 1;
            let mut expect_name = true;
            let mut depth = 0usize;
            while j < tokens.len() {
                match &tokens[j] {
                    Tok::Punct('(' | '[' | '{') => depth += 1,
                    Tok::Punct(')' | ']' | '}') => {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                    Tok::Punct(';') if depth == 0 => break,
                    Tok::Punct(',') if depth == 0 => expect_name = true,
                    Tok::Ident(name) if expect_name && depth == 0 => {
                        scan.local_exports.push((name.clone(), name.clone()));
                        expect_name = false;
                    }
                    Tok::Ident(kw)
                        if depth == 0
                            && !expect_name
                            && j > 0
                            && !matches!(tokens[j - 1], Tok::Punct('=' | '.'))
                            && matches!(
                                kw.as_str(),
                                "export" | "import" | "var" | "let" | "const" | "function"
                            ) =>
                    {
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            // Resume right after the keyword so the generic pass sees `A = class`.
            i + 1
        }
        _ => i,
    }
}

/// The names of the classes a module exports, read from its source: `export
/// class X`, `export { X }`, `export { Y as X }` (when `Y` is a class declared
/// in the module, directly or as `var Y = class …`, possibly through `var Z =
/// Y` aliases, which is how esbuild writes renamed classes). `export default
/// class` is not a named export and is left out, as are names re-exported from
/// other modules.
pub fn exported_classes(module_source: &str) -> BTreeSet<String> {
    scan_module(module_source).exported_local_classes()
}

/// Whether a module has a default export (`export default …` or `export { x as default }`).
pub fn exports_default(module_source: &str) -> bool {
    let tokens = Lexer::new(module_source).run();
    (0..tokens.len())
        .any(|i| keyword_at(&tokens, i, "export") && is_word(tokens.get(i + 1), "default"))
        || scan_module(module_source)
            .local_exports()
            .iter()
            .any(|(_, e)| e == "default")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn export_class_declaration() {
        assert_eq!(
            exported_classes("export class Counter extends DurableObject { x = 1 }"),
            set(&["Counter"])
        );
    }

    #[test]
    fn default_class_is_not_a_named_export() {
        assert_eq!(exported_classes("export default class { }"), set(&[]));
        assert_eq!(exported_classes("export default class Foo { }"), set(&[]));
    }

    #[test]
    fn export_list_of_classes_only() {
        let src = "class A {}\nfunction f() {}\nconst n = 1;\nexport { A, f, n };";
        assert_eq!(exported_classes(src), set(&["A"]));
    }

    #[test]
    fn export_renamed_class() {
        assert_eq!(
            exported_classes("class Y {}\nexport { Y as X };"),
            set(&["X"])
        );
    }

    #[test]
    fn export_list_spanning_lines() {
        let src = "class A {}\nclass B {}\nexport {\n  A,\n  B as C,\n  // a comment\n  helper\n};\nfunction helper() {}";
        assert_eq!(exported_classes(src), set(&["A", "C"]));
    }

    #[test]
    fn esbuild_output_form() {
        let src = r#"// src/index.ts
import { DurableObject } from "cloudflare:workers";

// src/util.ts
var Counter = class extends DurableObject {
  async fetch() {
    return new Response("c");
  }
};

// src/index.ts
var Counter2 = class extends DurableObject {
  static x = 1;
};
var _Lowered = class _Lowered {
};
var Lowered = _Lowered;
var index_default = {
  async fetch(req) {
    return new Response("hi");
  }
};
export {
  Counter2 as Counter,
  Lowered,
  index_default as default
};
//# sourceMappingURL=index.js.map
"#;
        assert_eq!(exported_classes(src), set(&["Counter", "Lowered"]));
    }

    #[test]
    fn export_const_class_expression() {
        assert_eq!(
            exported_classes("export const Room = class extends Base {};"),
            set(&["Room"])
        );
    }

    #[test]
    fn strings_comments_and_templates_do_not_count() {
        let src = r#"
const s = "export class Fake {}";
// export class Commented {}
/* export { Hidden } */
const t = `export class InTemplate ${1 + 2} {}`;
const r = /export class Re/g;
class Real {}
export { Real };
"#;
        assert_eq!(exported_classes(src), set(&["Real"]));
    }

    #[test]
    fn non_class_exports_are_ignored() {
        let src =
            "export function Counter() {}\nexport const x = 1;\nlet y = 2; export { y as Y };";
        assert_eq!(exported_classes(src), set(&[]));
    }

    #[test]
    fn string_export_names() {
        assert_eq!(
            exported_classes(r#"class A {} export { A as "B" };"#),
            set(&["B"])
        );
    }

    #[test]
    fn reexports_are_recorded_not_counted() {
        let scan = scan_module(r#"export { A as B } from "./a.js"; export * from "./c.js";"#);
        assert!(scan.exported_local_classes().is_empty());
        assert_eq!(
            scan.reexports,
            vec![
                ReExport::Named {
                    specifier: "./a.js".into(),
                    imported: "A".into(),
                    exported: "B".into()
                },
                ReExport::Star {
                    specifier: "./c.js".into()
                }
            ]
        );
    }

    #[test]
    fn import_specifiers_of_every_form() {
        let src = r#"#!/usr/bin/env node
import def from "./a.js";
import * as ns from './b.mjs';
import { x, y as z } from "./c.js";
import def2, { w } from "./d.js";
import "./side-effect.js";
export { q } from "./e.js";
export * from "./f.js";
export * as g from "./g.js";
const lazy = await import("./h.js");
const tpl = import(`./i.js`);
const dynamic = import("./" + name);
const meta = import.meta.url;
obj.import("./not-an-import.js");
const s = 'import "./in-string.js"';
// import "./in-comment.js"
import wasm from "./mod.wasm";
import { DurableObject } from "cloudflare:workers";
"#;
        let scan = scan_module(src);
        assert_eq!(
            scan.specifiers,
            vec![
                "./a.js",
                "./b.mjs",
                "./c.js",
                "./d.js",
                "./side-effect.js",
                "./e.js",
                "./f.js",
                "./g.js",
                "./h.js",
                "./i.js",
                "./mod.wasm",
                "cloudflare:workers",
            ]
        );
        assert_eq!(
            scan.named_imports.get("z"),
            Some(&("./c.js".to_string(), "y".to_string()))
        );
        assert_eq!(
            scan.named_imports.get("def2"),
            Some(&("./d.js".to_string(), "default".to_string()))
        );
    }

    #[test]
    fn division_is_not_a_regex() {
        let src = "const a = b / c; const d = (e) / 2; class K {}\nexport { K };";
        assert_eq!(exported_classes(src), set(&["K"]));
    }

    #[test]
    fn template_with_nested_braces() {
        let src = "const t = `a ${ {x: 1}.x } b ${`inner ${2}`}`;\nexport class After {}";
        assert_eq!(exported_classes(src), set(&["After"]));
    }

    #[test]
    fn class_as_property_name_is_not_a_class() {
        let src = "const o = { class: Foo }; o.class = 1; var Foo = 1; export { Foo };";
        assert_eq!(exported_classes(src), set(&[]));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(source in "\\PC{0,200}") {
            let _ = scan_module(&source);
        }

        #[test]
        fn never_panics_on_javascript_fragments(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "export", "import", "class", "{", "}", "(", ")", "`", "${", "/", "/*",
                    "*/", "//", "\n", "'", "\"", "\\", "as", "from", "X", "=", ",", ";",
                    "default", "*", ".", "#", "1.5e+3", "[", "]", "var", " ",
                ]),
                0..60,
            )
        ) {
            let _ = scan_module(&parts.concat());
        }
    }
}
