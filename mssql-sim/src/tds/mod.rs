//! The TDS protocol, server side: framing, PRELOGIN/LOGIN7, requests,
//! tokens and typed values. Nothing here touches storage.

pub mod login;
pub mod packet;
pub mod request;
pub mod token;
pub mod wire;
