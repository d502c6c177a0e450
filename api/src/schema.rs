//! Schema helpers for `#[schemars(schema_with = ...)]`: opaque objects for embedded core types.
//!
//! Pod templates, containers, volumes and PVC templates are typed with k8s-openapi in Rust but are
//! `x-kubernetes-preserve-unknown-fields` objects in the CRD schema, as OpenKruise does
//! (`+kubebuilder:validation:Schemaless`): a full PodTemplateSpec schema makes a ~350 KB CRD.
//! The Rust types and `validate()` functions check them instead.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object whose content the API server keeps as is.
pub fn opaque_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A list of objects whose content the API server keeps as is.
pub fn opaque_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}
