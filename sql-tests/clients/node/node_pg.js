// Real-client test: node-postgres (parameterised queries, types, transactions, errors)
// against a running henge. Usage: node node_pg.js PORT
const { Client } = require('pg');

const port = Number(process.argv[2]);

function check(description, wanted, got) {
  const w = JSON.stringify(wanted);
  const g = JSON.stringify(got);
  if (w !== g) {
    console.log(`FAIL: ${description}\n  wanted: ${w}\n  got:    ${g}`);
    process.exit(1);
  }
  console.log(`ok: ${description}`);
}

(async () => {
  // drivers.sh runs the server with SCRAM-SHA-256 logins: the password from the environment.
  const password = process.env.HENGE_TEST_PASSWORD || undefined;
  const client = new Client({ host: '127.0.0.1', port, user: 'henge', database: 'henge', password });
  await client.connect();
  await client.query(
    "CREATE TABLE node_events (ts TIMESTAMPTZ NOT NULL, page TEXT, views BIGINT, ratio DOUBLE PRECISION) WITH (time_column = 'ts')",
  );
  for (let i = 0; i < 10; i++) {
    await client.query('INSERT INTO node_events VALUES ($1, $2, $3, $4)', [
      new Date(Date.UTC(2024, 0, 1, i)),
      i % 2 === 0 ? 'home' : 'about',
      i * 10,
      i / 4,
    ]);
  }
  const grouped = await client.query(
    'SELECT page, count(*), sum(views) AS views FROM node_events WHERE ts >= $1 GROUP BY page ORDER BY page',
    [new Date(Date.UTC(2024, 0, 1, 2))],
  );
  check('parameterised GROUP BY', [
    { page: 'about', count: '4', views: '240' },
    { page: 'home', count: '4', views: '200' },
  ], grouped.rows);
  check('column names', ['page', 'count', 'views'], grouped.fields.map((f) => f.name));
  // (sum(bigint) is bigint here, numeric in PostgreSQL.)
  check('column types (text, int8)', [25, 20], grouped.fields.slice(0, 2).map((f) => f.dataTypeID));
  const one = await client.query({ text: 'SELECT ts, ratio FROM node_events WHERE views = $1', values: [30] });
  check('timestamptz and double decode', [new Date(Date.UTC(2024, 0, 1, 3)).toISOString(), 0.75],
    [one.rows[0].ts.toISOString(), one.rows[0].ratio]);
  const named = await client.query({ name: 'by-page', text: 'SELECT count(*)::int AS n FROM node_events WHERE page = $1', values: ['home'] });
  const again = await client.query({ name: 'by-page', values: ['about'] });
  check('named prepared statement reused', [5, 5], [named.rows[0].n, again.rows[0].n]);
  await client.query('BEGIN');
  try {
    await client.query('SELECT * FROM no_such_table');
  } catch (e) {
    check('errors carry SQLSTATE', '42P01', e.code);
  }
  try {
    await client.query('SELECT 1');
  } catch (e) {
    check('a failed block refuses statements', '25P02', e.code);
  }
  await client.query('ROLLBACK');
  const after = await client.query('SELECT 1::int AS one');
  check('usable after ROLLBACK', 1, after.rows[0].one);

  // LISTEN/NOTIFY: the listener, idle, gets 'notification' events.
  const listener = new Client({ host: '127.0.0.1', port, user: 'henge', database: 'henge', password });
  await listener.connect();
  const heard = [];
  const both = new Promise((resolve) => {
    listener.on('notification', (m) => {
      heard.push([m.channel, m.payload]);
      if (heard.length === 2) resolve();
    });
  });
  await listener.query('LISTEN node_jobs');
  await client.query("NOTIFY node_jobs, 'one'");
  await client.query("SELECT pg_notify('node_jobs', 'two')");
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no notification within 10 s')), 10000));
  await Promise.race([both, timeout]);
  check("node-postgres 'notification' events", [['node_jobs', 'one'], ['node_jobs', 'two']], heard);
  await listener.end();
  await client.end();
  console.log('node-postgres client tests passed');
})().catch((e) => {
  console.log(`FAIL: ${e.stack}`);
  process.exit(1);
});
