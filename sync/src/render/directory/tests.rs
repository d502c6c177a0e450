//! Table tests of the directory renderer.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_string(),
        content: text.as_bytes().to_vec(),
    }
}

fn errors(files: &[SourceFile]) -> Vec<String> {
    Directory
        .render(files)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn reads_yaml_and_json_recursively_with_locations() {
    let files = [
        file(
            "deploy/a.yaml",
            "# comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: demo}\ndata:\n  mode: 0644\n",
        ),
        file("deploy/README.md", "not: [valid"),
        file(
            "deploy/sub/b.json",
            "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\",\n \"metadata\": {\"name\": \"web\", \"namespace\": \"demo\"}}\n",
        ),
        file(
            "deploy/sub/c.YML",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web, namespace: demo}\n",
        ),
    ];
    let objs = Directory.render(&files).unwrap();
    let summary: Vec<(String, usize, usize, String)> = objs
        .iter()
        .map(|o| {
            (
                o.location.file.clone(),
                o.location.document,
                o.location.line,
                o.reference.to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("deploy/a.yaml".into(), 0, 3, "Namespace demo".into()),
            ("deploy/a.yaml".into(), 2, 9, "ConfigMap demo/cfg".into()),
            (
                "deploy/sub/b.json".into(),
                0,
                1,
                "Deployment.apps demo/web".into()
            ),
            ("deploy/sub/c.YML".into(), 0, 1, "Service demo/web".into()),
        ]
    );
    // kubectl reads 0644 as octal.
    assert_eq!(objs[1].object["data"]["mode"], json!(420));
    assert!(Directory.accepts("x/y.yaml") && Directory.accepts("x/y.json"));
    assert!(!Directory.accepts("x/y.md") && !Directory.accepts("Makefile"));
}

#[test]
fn merge_keys_are_expanded() {
    let files = [file(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\nbase: &b {x: '1', y: '2'}\ndata:\n  <<: *b\n  y: '3'\n",
    )];
    let objs = Directory.render(&files).unwrap();
    assert_eq!(objs[0].object["data"], json!({"x": "1", "y": "3"}));
}

#[test]
fn every_error_of_a_commit_is_reported_with_file_document_and_line() {
    let files = [
        // Truncated YAML in document 1; documents 0 and 2 are fine.
        file(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: [b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        ),
        // Duplicate key on line 4.
        file(
            "b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata: {}\nkind: Secret\n",
        ),
        // Missing fields.
        file("c.yaml", "kind: ConfigMap\nmetadata: {}\n"),
        file(
            "d.json",
            "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n \"kind\": \"x\"}",
        ),
        file("e.yaml", "- just\n- a list\n"),
        file("f.yaml", "\u{0}\u{fffe}"),
    ];
    let errs = errors(&files);
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert_eq!(errs[0], "a.yaml, document 1, line 7: unclosed bracket '['");
    assert!(
        errs[1].starts_with("b.yaml, document 0, line 6: "),
        "{}",
        errs[1]
    );
    assert_eq!(
        errs[1],
        "b.yaml, document 0, line 6: duplicate mapping key: kind"
    );
    assert_eq!(
        errs[2],
        "c.yaml, document 0, line 1: apiVersion is missing, metadata.name is missing"
    );
    assert!(
        errs[3].starts_with("d.json, document 0, line 2: duplicate key \"kind\""),
        "{}",
        errs[3]
    );
    assert_eq!(
        errs[4],
        "e.yaml, document 0, line 1: expected a Kubernetes object (a mapping), found a list"
    );
    assert!(errs[5].starts_with("f.yaml"), "{}", errs[5]);

    let e = crate::render::render(&Directory, &files).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("6 manifest errors: a.yaml, document 1"),
        "{e}"
    );
}

#[test]
fn duplicates_across_files_name_both_files() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n";
    let files = [
        file("one.yaml", cm),
        file("two/two.yaml", &format!("---\n{cm}")),
        // Another version of the same group and kind is the same object.
        file(
            "three.yaml",
            "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: w}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\n",
        ),
        // Same name in another namespace or kind is fine.
        file(
            "four.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: z}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: x}\n",
        ),
    ];
    let errs = errors(&files);
    assert_eq!(
        errs,
        vec![
            "three.yaml, document 1, line 5: Deployment.apps w is defined twice: also in three.yaml, document 0, line 1".to_string(),
            "two/two.yaml, document 0, line 2: ConfigMap x/a is defined twice: also in one.yaml, document 0, line 1".to_string(),
        ]
    );
}

#[test]
fn empty_files_and_documents_are_skipped() {
    let files = [
        file("a.yaml", ""),
        file("b.yaml", "---\n# nothing\n---\n...\n"),
        file("c.yaml", "--- null\n"),
        file("d.json", "  \n"),
    ];
    assert_eq!(Directory.render(&files).unwrap(), vec![]);
}

#[test]
fn field_types_are_checked() {
    let files = [file(
        "a.yaml",
        "apiVersion: 1\nkind: ConfigMap\nmetadata: {name: a, namespace: 3}\n",
    )];
    assert_eq!(
        errors(&files),
        vec!["a.yaml, document 0, line 1: apiVersion must be a string, found a number, metadata.namespace must be a string, found a number".to_string()]
    );
}
