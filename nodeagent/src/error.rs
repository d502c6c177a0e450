//! The node agent's error: what stops the agent or one of its tasks.

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Startup input is unusable.
    #[error("invalid node agent configuration: {0}")]
    Config(String),
    /// A task of the agent ended with an error.
    #[error("node agent task {task} failed: {reason}")]
    Task {
        /// Which task.
        task: &'static str,
        /// Why.
        reason: String,
    },
}
