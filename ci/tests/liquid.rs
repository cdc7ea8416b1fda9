//! The fast check: every template file parses as Liquid and uses only known
//! variables, before the slow render-and-build tests.

use std::path::Path;

use template_ci::liquid_lint::Template;
use template_ci::repo_root;

#[test]
fn every_template_file_is_valid_liquid_with_known_variables() {
    let template = Template::load(&repo_root()).unwrap();
    let files = template.rendered_files();
    assert!(files.len() > 20, "found the template files: {files:?}");
    let problems: Vec<String> = files.iter().flat_map(|file| template.check(file)).collect();
    assert!(
        problems.is_empty(),
        "Liquid problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_lint_catches_syntax_errors_and_unknown_variables() {
    let dir = template_ci::run_dir().join("liquid-lint");
    let root = dir.join("template");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    std::fs::write(
        dir.join("hooks/pre.rhai"),
        r#"variable::set("derived", "x");"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("cargo-generate.toml"),
        "[template]\nexclude = [\"raw.rs\", \"verbatim/**\"]\n[placeholders.port]\nprompt = \"p\"\ndefault = \"1\"\n\
         [placeholders.flag]\ntype = \"bool\"\nprompt = \"f\"\ndefault = true\n",
    )
    .unwrap();
    std::fs::write(
        root.join("ok.rs"),
        "{{port}} {{derived}} {{project-name}} {% if flag %}x{% endif %}",
    )
    .unwrap();
    std::fs::write(
        root.join("broken.rs"),
        "fn main() {\n    let x = \"{{\";\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("unknown.yaml"), "a: 1\nport: {{ prot }}\n").unwrap();
    std::fs::write(
        root.join("branch.md"),
        "{% if flag %}{{ only_when_on }}{% endif %}",
    )
    .unwrap();
    std::fs::write(root.join("raw.rs"), "{{{ not liquid").unwrap();
    std::fs::create_dir_all(root.join("verbatim/src")).unwrap();
    std::fs::write(root.join("verbatim/src/lib.rs"), "{{{ not liquid").unwrap();

    let template = Template::load(&dir).unwrap();
    let check = |file: &str| template.check(Path::new(file)).join("\n");
    assert_eq!(check("ok.rs"), "");
    assert!(
        check("broken.rs").starts_with("broken.rs: "),
        "{}",
        check("broken.rs")
    );
    assert_eq!(
        check("unknown.yaml"),
        "unknown.yaml: line 2: unknown variable `prot` (not a placeholder, hook value or built-in)"
    );
    assert!(
        check("branch.md").contains("only_when_on"),
        "{}",
        check("branch.md")
    );
    let files = template.rendered_files();
    assert!(
        !files.contains(&"raw.rs".into()) && !files.contains(&"verbatim/src/lib.rs".into()),
        "excluded files are not linted: {files:?}"
    );
}
