//! What answering one request takes, as data: a [`Plan`].
//!
//! Some tools need time, write notifications before their answer, ask the
//! client a question first, or kill the process instead of answering. Handlers
//! describe that as a plan rather than doing it, so they stay pure and unit
//! tests can inspect every step; `server` and `conversation` carry plans out.

use serde_json::Value;
use std::time::Duration;

/// A JSON-RPC error object's code, message and data.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

/// The outcome of a request: its `result`, or its `error`.
pub type Answer = Result<Value, RpcError>;

/// Steps to carry out in order, then how the request ends.
#[derive(Debug)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub finish: Finish,
}

/// Something done before the request ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write this complete JSON-RPC notification.
    Notify(Value),
    /// Wait, holding the request in flight.
    Sleep(Duration),
}

/// How a request ends.
#[derive(Debug)]
pub enum Finish {
    /// Answer with this result or error.
    Answer(Answer),
    /// Ask the client this question, then answer with what it makes of the reply.
    Ask(Question),
    /// Exit the process with this status at once, leaving the request unanswered.
    Exit(i32),
    /// Ask the client questions, round after round (each round's questions at once), until the
    /// script answers.
    Converse(Script),
}

/// What a conversation does next, given the replies of every round so far (each reply the
/// client's `result` (Ok) or `error` object (Err)).
pub type Script = fn(&[Vec<Result<Value, Value>>]) -> Turn;

/// A conversation's next turn.
#[derive(Debug)]
pub enum Turn {
    /// Ask these at once, then run the script again with their replies.
    Ask(Vec<Asked>),
    /// Answer the request.
    Done(Answer),
}

/// One question of a round: its key (sent in `_meta` as `io.tether/inputKey`, so that a
/// gateway turning questions into a 2026-07-28 `InputRequiredResult` can name them), method and
/// params.
#[derive(Debug, Clone)]
pub struct Asked {
    pub key: &'static str,
    pub method: &'static str,
    pub params: Value,
}

/// A request from the fixture to the client, and how its reply becomes the answer.
#[derive(Debug)]
pub struct Question {
    pub method: &'static str,
    pub params: Value,
    /// Turns the client's `result` (Ok) or `error` object (Err) into the answer's result.
    pub then: fn(Result<&Value, &Value>) -> Value,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl Plan {
    /// A plan with no steps that answers with `result` at once.
    pub fn answer(result: Value) -> Self {
        Plan {
            steps: Vec::new(),
            finish: Finish::Answer(Ok(result)),
        }
    }

    /// A plan with no steps that answers with an error at once.
    pub fn fail(error: RpcError) -> Self {
        Plan {
            steps: Vec::new(),
            finish: Finish::Answer(Err(error)),
        }
    }

    /// The answer, for plans that end by answering.
    #[cfg(test)]
    pub fn answered(&self) -> Option<&Answer> {
        match &self.finish {
            Finish::Answer(answer) => Some(answer),
            Finish::Ask(_) | Finish::Exit(_) | Finish::Converse(_) => None,
        }
    }
}
