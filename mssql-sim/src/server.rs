//! The listener and one thread pair per connection.
//!
//! Each connection has a reader thread (so an ATTENTION can interrupt a
//! running statement) and an executor thread that owns the `Session`. A
//! malformed message closes that connection only; the server goes on.

use crate::engine::{Isolation, Out, Session, Shared};
use crate::error::SqlError;
use crate::tds::login::{parse_login7, parse_prelogin, prelogin_reply, PRODUCT_VERSION};
use crate::tds::packet::{self, read_message, write_message, Message};
use crate::tds::request::{parse_batch, parse_rpc, parse_tm, RpcCall, TmRequest};
use crate::tds::token::{Response, DONE_ATTN, DONE_COUNT, DONE_ERROR, DONE_MORE};
use crate::tls::{self, Mode, Tls, TlsConfig};
use crate::types::{convert, SqlType, Value};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Folder holding one SQLite file per database.
    pub data_dir: PathBuf,
    /// The password of the `sa` login.
    pub password: String,
    /// How long a statement waits for another connection's write lock
    /// before failing with error 1222.
    pub lock_timeout: Duration,
    /// Simulator-only: seconds added to the real clock (GETDATE(), change
    /// tracking commit times and retention), so tests can run "days later".
    pub clock_offset_secs: i64,
    /// A certificate: TLS as SQL Server does it (see `crate::tls`). Without
    /// one, PRELOGIN answers ENCRYPT_NOT_SUP.
    pub tls: Option<TlsConfig>,
    /// Behave as Azure SQL's gateway or a failover partner: every accepted
    /// login is answered with LOGINACK and a routing ENVCHANGE to this
    /// host and port (MS-TDS 2.2.7.9), and the connection is closed.
    pub redirect: Option<(String, u16)>,
    /// The server collation (`--collation`): master's and tempdb's, and
    /// a new database's unless its CREATE DATABASE says COLLATE.
    pub collation: crate::collation::Collation,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, password: impl Into<String>) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.into(),
            password: password.into(),
            lock_timeout: Duration::from_secs(30),
            clock_offset_secs: 0,
            tls: None,
            collation: crate::collation::DEFAULT,
            redirect: None,
        }
    }
}

/// A running simulator. Dropping it shuts it down.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Server {
    /// Binds, creates `master` if the data folder is new, and starts accepting.
    pub fn start(config: Config) -> io::Result<Server> {
        std::fs::create_dir_all(&config.data_dir)?;
        let front = Arc::new(Front {
            tls: config.tls.as_ref().map(Tls::load).transpose()?,
            redirect: config.redirect.clone(),
        });
        let shared = Arc::new(Shared::new(
            config.data_dir.clone(),
            config.password.clone(),
            config.lock_timeout,
            config.collation,
        ));
        shared.clock.advance(config.clock_offset_secs);
        shared
            .ensure_master()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let listener = TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let shared = shared.clone();
            let stop = stop.clone();
            let conns = conns.clone();
            let front = front.clone();
            std::thread::Builder::new()
                .name("mssql-sim-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        if let Ok(c) = stream.try_clone() {
                            let mut list = conns.lock().unwrap_or_else(|p| p.into_inner());
                            list.retain(|s| s.peer_addr().is_ok());
                            list.push(c);
                        }
                        let shared = shared.clone();
                        let front = front.clone();
                        let _ = std::thread::Builder::new()
                            .name("mssql-sim-conn".into())
                            .spawn(move || {
                                let _ = handle_connection(stream, shared, &front);
                            });
                    }
                })?
        };
        Ok(Server {
            addr,
            shared,
            stop,
            accept: Some(accept),
            conns,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An ADO.NET connection string for tiberius, plaintext (for a server
    /// started without a certificate).
    pub fn ado_string(&self, database: &str) -> String {
        format!(
            "server=tcp:{},{};database={};user id=sa;password={};encrypt=DANGER_PLAINTEXT;TrustServerCertificate=true",
            self.addr.ip(),
            self.addr.port(),
            database,
            self.shared.sa_password
        )
    }

    /// Moves the simulator's clock forward (simulator-only; for tests of
    /// time-based behaviour such as change-tracking retention).
    pub fn advance_clock(&self, seconds: i64) {
        self.shared.clock.advance(seconds);
    }

    /// Stops accepting, closes every connection and waits for the listener.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for c in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn protocol_error(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

enum Event {
    Message(Message),
    Attention,
}

/// What a connection needs of the server's configuration before login.
struct Front {
    tls: Option<Tls>,
    redirect: Option<(String, u16)>,
}

fn handle_connection(stream: TcpStream, shared: Arc<Shared>, front: &Front) -> io::Result<()> {
    // The server keeps a clone of every stream (to close it at shutdown), so
    // dropping ours does not close the socket: shut it down explicitly.
    struct Closer(TcpStream);
    impl Drop for Closer {
        fn drop(&mut self) {
            let _ = self.0.shutdown(Shutdown::Both);
        }
    }
    let _closer = Closer(stream.try_clone()?);
    serve_connection(stream, shared, front)
}

/// The connection's two directions, plaintext or TLS.
type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);

fn plain_halves(stream: &TcpStream) -> io::Result<Halves> {
    Ok((Box::new(stream.try_clone()?), Box::new(stream.try_clone()?)))
}

fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>, front: &Front) -> io::Result<()> {
    let tls = front.tls.as_ref();
    stream.set_nodelay(true)?;
    // PRELOGIN
    let Some(msg) = read_message(&mut stream)? else {
        return Ok(());
    };
    if msg.packet_type != packet::PT_PRELOGIN {
        return Err(protocol_error("expected PRELOGIN"));
    }
    let client_encryption = parse_prelogin(&msg.payload).map_err(|e| protocol_error(e.0))?;
    let (answer, mode) = tls::negotiate(client_encryption, tls);
    write_message(
        &mut stream,
        packet::PT_RESPONSE,
        &prelogin_reply(answer),
        packet::DEFAULT_PACKET_SIZE,
        0,
    )?;
    // LOGIN7, through TLS when negotiated; then the connection's halves.
    let (msg, (mut reader, mut writer)) = match (mode, tls) {
        (Mode::Refuse, _) => return Ok(()), // the client cannot encrypt: disconnect
        (Mode::LoginOnly | Mode::Full, Some(t)) => {
            let conn = tls::handshake(t, &mut stream)?;
            let (mut r, w) = tls::split(&stream, conn)?;
            let msg = read_message(&mut r)?;
            if mode == Mode::Full {
                let halves: Halves = (Box::new(r), Box::new(w));
                (msg, halves)
            } else {
                // Login-only: the client drops TLS right after LOGIN7.
                (msg, plain_halves(&stream)?)
            }
        }
        _ => {
            let (mut r, w) = plain_halves(&stream)?;
            (read_message(&mut r)?, (r, w))
        }
    };
    let Some(msg) = msg else {
        return Ok(());
    };
    if msg.packet_type != packet::PT_LOGIN7 {
        return Err(protocol_error(if msg.packet_type == packet::PT_PRELOGIN {
            "expected LOGIN7, got PRELOGIN: a TLS handshake to a server started without a certificate (--tls-cert)"
        } else {
            "expected LOGIN7"
        }));
    }
    let login = parse_login7(&msg.payload).map_err(|e| protocol_error(e.0))?;
    let mut resp = Response::new();
    // A refused login: the cause (if any), then 18456, then DONE with ERROR; no LOGINACK.
    let refuse = |writer: &mut Box<dyn Write + Send>, cause: Option<SqlError>| -> io::Result<()> {
        let mut resp = Response::new();
        if let Some(e) = cause {
            resp.error(&e);
        }
        resp.error(&SqlError::new(
            18456,
            14,
            format!("Login failed for user '{}'.", login.user),
        ));
        resp.done(DONE_ERROR, 0, 0);
        write_message(
            writer,
            packet::PT_RESPONSE,
            &resp.buf,
            packet::DEFAULT_PACKET_SIZE,
            0,
        )
    };
    // Windows authentication (SSPI): the simulator has SQL Server logins
    // only, so it answers as SQL Server does when it cannot accept the
    // client's Windows identity (18452, alone).
    if login.integrated {
        let mut resp = Response::new();
        resp.error(&SqlError::new(
            18452,
            14,
            "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.",
        ));
        resp.done(DONE_ERROR, 0, 0);
        return write_message(
            &mut writer,
            packet::PT_RESPONSE,
            &resp.buf,
            packet::DEFAULT_PACKET_SIZE,
            0,
        );
    }
    let (principal, sysadmin) = match shared.authenticate(&login.user, &login.password) {
        Ok(Some(found)) => found,
        Ok(None) => return refuse(&mut writer, None),
        Err(e) => return refuse(&mut writer, Some(e)),
    };
    let database = if login.database.is_empty() {
        principal.default_database.clone()
    } else {
        login.database.clone()
    };
    let mut session = match Session::open(shared.clone(), &database, &principal.name, sysadmin) {
        Ok(s) => s,
        Err(e) => return refuse(&mut writer, Some(e)),
    };
    let spid = session.spid;
    let packet_size = match login.packet_size {
        0 => packet::DEFAULT_PACKET_SIZE,
        n => (n as usize).clamp(512, packet::MAX_PACKET_SIZE),
    };
    let tds_version = match login.tds_version {
        v if v >= 0x7400_0004 => 0x7400_0004,
        v if v >= 0x730B_0003 => 0x730B_0003,
        v if v >= 0x730A_0003 => 0x730A_0003,
        _ => 0x7209_0002,
    };
    // The database name must equal what the client asked for, or pytds issues USE.
    let db_name = if login.database.is_empty() {
        session.database.clone()
    } else {
        login.database.clone()
    };
    resp.env_change_str(1, &db_name, "master");
    resp.info(
        5701,
        &format!("Changed database context to '{}'.", session.database),
    );
    resp.env_change_bytes(7, &session.collation.tds_bytes(), &[]);
    resp.env_change_str(2, "us_english", "");
    resp.info(5703, "Changed language setting to us_english.");
    resp.login_ack(tds_version, PRODUCT_VERSION);
    resp.env_change_str(4, &packet_size.to_string(), "4096");
    if let Some((host, port)) = &front.redirect {
        // A gateway: the client is to log in again over there.
        resp.env_change_routing(host, *port);
        resp.done(0, 0, 0);
        return write_message(
            &mut writer,
            packet::PT_RESPONSE,
            &resp.buf,
            packet::DEFAULT_PACKET_SIZE,
            spid,
        );
    }
    resp.done(0, 0, 0);
    write_message(
        &mut writer,
        packet::PT_RESPONSE,
        &resp.buf,
        packet::DEFAULT_PACKET_SIZE,
        spid,
    )?;

    // Reader thread: forwards messages; an ATTENTION interrupts at once.
    let (tx, rx) = mpsc::channel::<Event>();
    let attention = Arc::new(AtomicBool::new(false));
    let interrupt = session.interrupt.clone();
    let attn = attention.clone();
    let reader_thread = std::thread::Builder::new()
        .name("mssql-sim-read".into())
        .spawn(move || loop {
            match read_message(&mut reader) {
                Ok(Some(m)) if m.packet_type == packet::PT_ATTENTION => {
                    attn.store(true, Ordering::SeqCst);
                    if let Some(h) = interrupt.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                        h.interrupt();
                    }
                    if tx.send(Event::Attention).is_err() {
                        break;
                    }
                }
                Ok(Some(m)) => {
                    if tx.send(Event::Message(m)).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        })?;

    let result = (|| -> io::Result<()> {
        while let Ok(ev) = rx.recv() {
            match ev {
                Event::Attention => {
                    let mut r = Response::new();
                    r.done(DONE_ATTN, 0, 0);
                    write_message(&mut writer, packet::PT_RESPONSE, &r.buf, packet_size, spid)?;
                    attention.store(false, Ordering::SeqCst);
                }
                Event::Message(m) => {
                    if m.status & packet::ST_IGNORE != 0 {
                        continue;
                    }
                    let mut outs = Vec::new();
                    if m.reset_connection() {
                        session.reset(&mut outs);
                        outs.clear();
                    }
                    let r = handle_request(&mut session, &m)?;
                    if attention.load(Ordering::SeqCst) {
                        // The client cancelled: it discards everything up to the attention ack.
                        continue;
                    }
                    write_message(&mut writer, packet::PT_RESPONSE, &r.buf, packet_size, spid)?;
                }
            }
        }
        Ok(())
    })();
    let _ = writer.flush();
    let _ = stream.shutdown(Shutdown::Both);
    drop(rx);
    let _ = reader_thread.join();
    // Leaving the session rolls back any open transaction (SQLite does it on close).
    result
}

/// Renders engine output as tokens. `in_proc` uses DONEINPROC for statement
/// ends (RPC); otherwise DONE, with MORE on all but the last.
fn render(outs: &[Out], resp: &mut Response, in_proc: bool) -> bool {
    let last_done = outs.iter().rposition(|o| matches!(o, Out::Done { .. }));
    let mut any_error = false;
    for (i, o) in outs.iter().enumerate() {
        match o {
            Out::Rows { columns, rows } => {
                resp.col_metadata(columns);
                for r in rows {
                    resp.row(columns, r);
                }
            }
            Out::Done { cmd, count, error } => {
                let mut status = 0u16;
                if count.is_some() {
                    status |= DONE_COUNT;
                }
                if *error {
                    status |= DONE_ERROR;
                    any_error = true;
                }
                if in_proc {
                    resp.done_in_proc(status | DONE_MORE, *cmd, count.unwrap_or(0));
                } else {
                    if Some(i) != last_done {
                        status |= DONE_MORE;
                    }
                    resp.done(status, *cmd, count.unwrap_or(0));
                }
            }
            Out::Error(e) => {
                any_error = true;
                resp.error(e)
            }
            Out::Info(n, t) => resp.info(*n, t),
            Out::EnvDatabase {
                new,
                old,
                collation,
            } => {
                resp.env_change_str(1, new, old);
                if let Some(c) = collation {
                    resp.env_change_bytes(7, &c.tds_bytes(), &[]);
                }
                resp.info(5701, &format!("Changed database context to '{new}'."));
            }
            Out::BeginTran(d) => resp.begin_transaction(*d),
            Out::CommitTran(d) => resp.commit_transaction(*d),
            Out::RollbackTran(d) => resp.rollback_transaction(*d),
        }
    }
    if last_done.is_none() && !in_proc {
        resp.done(if any_error { DONE_ERROR } else { 0 }, 0, 0);
    }
    any_error
}

fn handle_request(session: &mut Session, m: &Message) -> io::Result<Response> {
    let mut resp = Response::new();
    match m.packet_type {
        packet::PT_BATCH => {
            let sql = parse_batch(&m.payload).map_err(|e| protocol_error(e.0))?;
            let outs = session.execute(&sql, vec![]);
            render(&outs, &mut resp, false);
        }
        packet::PT_RPC => {
            let calls = parse_rpc(&m.payload).map_err(|e| protocol_error(e.0))?;
            let n = calls.len();
            for (i, call) in calls.into_iter().enumerate() {
                let outs = run_rpc(session, call);
                let err = render(&outs, &mut resp, true);
                resp.return_status(if err { 1 } else { 0 });
                let mut status = if i + 1 < n { DONE_MORE } else { 0 };
                if err {
                    status |= DONE_ERROR;
                }
                resp.done_proc(status, 0, 0);
            }
        }
        packet::PT_TRANSACTION_MANAGER => {
            let req = parse_tm(&m.payload).map_err(|e| protocol_error(e.0))?;
            let mut outs = Vec::new();
            let r = run_tm(session, req, &mut outs);
            if let Err(e) = r {
                outs.push(Out::Error(e));
                outs.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: true,
                });
            } else {
                outs.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            render(&outs, &mut resp, false);
        }
        packet::PT_BULK => {
            let bulk =
                crate::tds::request::parse_bulk(&m.payload).map_err(|e| protocol_error(e.0))?;
            let columns = bulk.columns.into_iter().map(|(n, w)| (n, w.ty)).collect();
            let outs = session.bulk_load(columns, bulk.rows);
            render(&outs, &mut resp, false);
        }
        other => {
            return Err(protocol_error(format!(
                "unexpected packet type {other:#04x}"
            )))
        }
    }
    Ok(resp)
}

fn run_tm(session: &mut Session, req: TmRequest, outs: &mut Vec<Out>) -> Result<(), SqlError> {
    let begin = |session: &mut Session, iso: u8, outs: &mut Vec<Out>| -> Result<(), SqlError> {
        if let Some(i) = Isolation::from_tm(iso) {
            session.set_isolation(i);
        }
        session.begin(outs)
    };
    match req {
        TmRequest::Begin { isolation, .. } => begin(session, isolation, outs),
        TmRequest::Commit { begin_new, .. } => {
            // A TM commit ends the whole transaction, whatever its nesting.
            while session.trancount() > 1 {
                session.commit(outs)?;
            }
            session.commit(outs)?;
            if let Some((iso, _)) = begin_new {
                begin(session, iso, outs)?;
            }
            Ok(())
        }
        TmRequest::Rollback { name, begin_new } => {
            session.rollback(if name.is_empty() { None } else { Some(&name) }, outs)?;
            if let Some((iso, _)) = begin_new {
                begin(session, iso, outs)?;
            }
            Ok(())
        }
        TmRequest::Save { name } => session.save(&name),
        TmRequest::Other(k) => Err(SqlError::unsupported(format!(
            "transaction manager request {k}"
        ))),
    }
}

/// Splits "@P1 int,@P2 nvarchar(4000) OUTPUT" into (name, type) pairs.
fn parse_declarations(decl: &str) -> Vec<(String, Option<SqlType>)> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in decl.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch)
            }
            ')' => {
                depth -= 1;
                cur.push(ch)
            }
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(ch),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|d| {
            let d = d.trim();
            let (name, rest) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
            let rest = rest.trim();
            let rest = rest
                .strip_suffix("OUTPUT")
                .or_else(|| rest.strip_suffix("output"))
                .or_else(|| rest.strip_suffix("OUT"))
                .unwrap_or(rest)
                .trim();
            (name.to_string(), SqlType::parse(rest).ok())
        })
        .collect()
}

fn run_rpc(session: &mut Session, call: RpcCall) -> Vec<Out> {
    let name = call.proc_name.to_ascii_lowercase();
    let name = name
        .trim_start_matches("sys.")
        .trim_start_matches("[sys].")
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let fail = |e: SqlError| {
        vec![
            Out::Error(e),
            Out::Done {
                cmd: 0,
                count: None,
                error: true,
            },
        ]
    };
    match name.as_str() {
        "sp_executesql" => {
            let mut params = call.params.into_iter();
            let sql =
                match params.next().map(|p| p.value) {
                    Some(Value::Str(s)) => s,
                    _ => return fail(SqlError::new(
                        214,
                        16,
                        "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'.",
                    )),
                };
            let rest: Vec<_> = params.collect();
            let (decls, values) = match rest.first() {
                Some(p) if p.name.is_empty() || p.name.eq_ignore_ascii_case("@params") => {
                    match &p.value {
                        Value::Str(s) => (parse_declarations(s), rest[1..].to_vec()),
                        Value::Null => (vec![], rest[1..].to_vec()),
                        _ => return fail(SqlError::new(
                            214,
                            16,
                            "Procedure expects parameter '@params' of type 'ntext/nchar/nvarchar'.",
                        )),
                    }
                }
                _ => (vec![], rest),
            };
            let mut bound = Vec::new();
            for (i, p) in values.into_iter().enumerate() {
                if p.output {
                    return fail(SqlError::unsupported("OUTPUT parameters"));
                }
                let decl = decls.get(i).cloned();
                let name = if p.name.is_empty() {
                    decl.as_ref()
                        .map(|d| d.0.clone())
                        .unwrap_or_else(|| format!("@P{}", i + 1))
                } else {
                    p.name.clone()
                };
                let ty = decl.and_then(|d| d.1).unwrap_or_else(|| p.wire.ty);
                let v = match convert(&p.value, &ty, None) {
                    Ok(v) => v,
                    Err(e) => return fail(e),
                };
                bound.push((name, ty, v));
            }
            session.execute(&sql, bound)
        }
        "sp_prepare" | "sp_execute" | "sp_prepexec" | "sp_unprepare" | "sp_cursoropen"
        | "sp_cursor" | "sp_cursorfetch" | "sp_cursorclose" => fail(SqlError::unsupported(
            format!("the procedure {name} (use sp_executesql)"),
        )),
        "" => fail(SqlError::unsupported(format!(
            "RPC procedure id {:?}",
            call.proc_id
        ))),
        _ => fail(SqlError::new(
            2812,
            16,
            format!("Could not find stored procedure '{}'.", call.proc_name),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations() {
        let d = parse_declarations("@P1 int,@P2 nvarchar(4000),@P3 decimal(10, 2) OUTPUT");
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].1, Some(SqlType::NVarChar(crate::types::Len::N(4000))));
        assert_eq!(d[2].1, Some(SqlType::Decimal { p: 10, s: 2 }));
    }
}
