//! Node agent: CRI client, NodeImage puller and ContainerRecreateRequest executor. Lands with its issue.
