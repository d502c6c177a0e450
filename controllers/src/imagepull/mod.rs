//! ImagePullJob: pull an image on a set of nodes ahead of time by writing it into their NodeImages
//! (kruise-api.md §6.1). [`plan`] decides, [`controller`] carries it out.

pub mod controller;
pub mod plan;
