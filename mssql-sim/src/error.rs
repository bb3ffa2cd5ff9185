//! SQL Server errors as the simulator raises them: number, class (severity),
//! state and message, sent to the client as an ERROR token.
//!
//! Errors raised inside SQLite user functions travel through SQLite as text;
//! `encode`/`decode` carry them across without losing the number.

use std::fmt;

/// One SQL Server error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub number: i32,
    pub class: u8,
    pub state: u8,
    pub message: String,
    pub line: i32,
}

/// The prefix that marks an encoded error inside a SQLite error message.
const MARK: &str = "\u{1}MSSQLSIM:";

impl SqlError {
    pub fn new(number: i32, class: u8, message: impl Into<String>) -> SqlError {
        SqlError {
            number,
            class,
            state: 1,
            message: message.into(),
            line: 1,
        }
    }

    pub fn with_state(mut self, state: u8) -> SqlError {
        self.state = state;
        self
    }

    /// What the simulator does not implement: class 16, number 50000-range
    /// would be user errors, so this uses 40000 ("not supported") and says so.
    pub fn unsupported(what: impl fmt::Display) -> SqlError {
        SqlError::new(40000, 16, format!("mssql-sim does not support {what}."))
    }

    /// Syntax error near a token (102).
    pub fn syntax_near(token: &str) -> SqlError {
        SqlError::new(102, 15, format!("Incorrect syntax near '{token}'."))
    }

    /// Invalid object name (208).
    pub fn invalid_object(name: &str) -> SqlError {
        SqlError::new(208, 16, format!("Invalid object name '{name}'."))
    }

    /// Invalid column name (207).
    pub fn invalid_column(name: &str) -> SqlError {
        SqlError::new(207, 16, format!("Invalid column name '{name}'."))
    }

    /// The text form that survives a trip through SQLite's error message.
    pub fn encode(&self) -> String {
        format!(
            "{MARK}{}|{}|{}|{}",
            self.number, self.class, self.state, self.message
        )
    }

    /// Recovers an error encoded by `encode` from anywhere in `text`.
    pub fn decode(text: &str) -> Option<SqlError> {
        let rest = &text[text.find(MARK)? + MARK.len()..];
        let mut parts = rest.splitn(4, '|');
        let number = parts.next()?.parse().ok()?;
        let class = parts.next()?.parse().ok()?;
        let state = parts.next()?.parse().ok()?;
        let message = parts.next()?.to_string();
        Some(SqlError {
            number,
            class,
            state,
            message,
            line: 1,
        })
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Msg {}, Level {}, State {}: {}",
            self.number, self.class, self.state, self.message
        )
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trip() {
        let e = SqlError::new(2628, 16, "a|b 'c'");
        assert_eq!(
            SqlError::decode(&format!("prefix {}", e.encode())).unwrap(),
            e
        );
        assert!(SqlError::decode("plain").is_none());
    }
}
