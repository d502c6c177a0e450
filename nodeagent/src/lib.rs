//! graft's node agent: the CRI client, the NodeImage image puller and the ContainerRecreateRequest
//! executor. One agent runs per node (`graft nodeagent`, NODE_NAME from the downward API).

pub mod agent;
pub mod containermeta;
pub mod cri;
pub mod crr;
pub mod error;
pub mod events;
pub mod imagepull;
pub mod options;
