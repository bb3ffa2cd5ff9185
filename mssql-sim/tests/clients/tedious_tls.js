// TLS with tedious (Node's TLS), a TDS client nobody here wrote.
//
// Run by mssql-sim/tests/tls.rs against a simulator started with a test
// certificate:  node tedious_tls.js HOST PORT PASSWORD CA_FILE
//
// tedious with `encrypt: true` sends ENCRYPT_ON in PRELOGIN and runs the TLS
// handshake inside PRELOGIN packets (MS-TDS 2.2.6.5); the certificate is
// checked against the CA and the host name. Logs in, runs a query, prints
// "OK" and exits 0 when everything worked.
const fs = require('fs');
const { Connection, Request } = require('tedious');

const [host, port, password, ca] = process.argv.slice(2);
const connection = new Connection({
  server: host,
  authentication: { type: 'default', options: { userName: 'sa', password } },
  options: {
    port: Number(port),
    database: 'master',
    encrypt: true,
    trustServerCertificate: false,
    cryptoCredentialsDetails: { ca: fs.readFileSync(ca) },
    connectTimeout: 30000,
  },
});

const fail = (what, e) => {
  console.log(`FAIL ${what}: ${e && e.message ? e.message : e}`);
  process.exit(1);
};

connection.on('connect', (err) => {
  if (err) fail('connect', err);
  const values = [];
  const request = new Request(`SELECT 1 AS one, N'${'x'.repeat(20000)}' AS big`, (e, rowCount) => {
    if (e) fail('query', e);
    if (rowCount !== 1 || values[0] !== 1 || values[1].length !== 20000) {
      fail('result', JSON.stringify({ rowCount, one: values[0], big: values[1] && values[1].length }));
    }
    console.log('OK');
    connection.close();
  });
  request.on('row', (columns) => columns.forEach((c) => values.push(c.value)));
  connection.execSql(request);
});
connection.on('error', (e) => fail('connection', e));
connection.connect();
