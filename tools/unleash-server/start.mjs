// Starts the real Unleash server for flagsync's tests, on loopback only.
//
// Configuration comes from the environment (set by internal/unleash/unleashtest):
//   FLAGSYNC_UNLEASH_PORT          TCP port on 127.0.0.1 (required)
//   FLAGSYNC_UNLEASH_ADMIN_TOKEN   admin API token, of the form "*:*.<random>" (required)
//   FLAGSYNC_UNLEASH_DB_HOST       PostgreSQL host name, or its Unix socket's directory (required)
//   FLAGSYNC_UNLEASH_DB_PORT       PostgreSQL port (default 5432)
//   FLAGSYNC_UNLEASH_DB_NAME       database (required)
//   FLAGSYNC_UNLEASH_DB_USER       database user (required)
//   FLAGSYNC_UNLEASH_DB_PASSWORD   database password (optional: trust or peer authentication)
//   FLAGSYNC_UNLEASH_LOG_LEVEL     Unleash's log level: debug, info, warn (default), error
//   FLAGSYNC_UNLEASH_EXIT_ON_STDIN_EOF=1
//                                  stop when standard input closes: the test harness holds a
//                                  pipe open, so the server ends with the test process
//
// When the server listens it prints one line, "unleash-server ready on http://127.0.0.1:<port>",
// then keeps running until SIGTERM or SIGINT.
//
// unleash-server 8 is an ES module, which Node.js 20 cannot require(): this file is .mjs and
// imports it dynamically, after the environment that switches off everything that reaches the
// internet is in place (some of Unleash's defaults are read when its modules load).

const required = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`unleash-server start: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number.parseInt(required('FLAGSYNC_UNLEASH_PORT'), 10);
const adminToken = required('FLAGSYNC_UNLEASH_ADMIN_TOKEN');
const db = {
  host: required('FLAGSYNC_UNLEASH_DB_HOST'),
  port: Number.parseInt(process.env.FLAGSYNC_UNLEASH_DB_PORT || '5432', 10),
  database: required('FLAGSYNC_UNLEASH_DB_NAME'),
  user: required('FLAGSYNC_UNLEASH_DB_USER'),
  password: process.env.FLAGSYNC_UNLEASH_DB_PASSWORD || undefined,
  ssl: false,
  pool: { min: 0, max: 4 },
};

// No version check, no telemetry: the server must never reach outside the machine. Unleash
// reads both from the environment as well as from its options (telemetry: false in the options
// alone is overridden by the environment's default of true).
process.env.CHECK_VERSION = 'false';
process.env.SEND_TELEMETRY = 'false';
process.env.SCARF_ANALYTICS = 'false';
delete process.env.DATABASE_URL;
delete process.env.DATABASE_URL_FILE;

const { start, LogLevel } = await import('unleash-server');

let unleash;
try {
  unleash = await start({
    db,
    server: {
      host: '127.0.0.1',
      port,
      unleashUrl: `http://127.0.0.1:${port}`,
      enableRequestLogger: false,
      gracefulShutdownEnable: true,
    },
    authentication: {
      initApiTokens: [
        { type: 'admin', environment: '*', project: '*', secret: adminToken, tokenName: 'flagsync-tests' },
      ],
    },
    versionCheck: { enable: false },
    telemetry: false,
    logLevel: LogLevel[process.env.FLAGSYNC_UNLEASH_LOG_LEVEL || 'warn'] ?? LogLevel.warn,
  });
} catch (err) {
  console.error('unleash-server start: failed:', err);
  process.exit(1);
}

console.log(`unleash-server ready on http://127.0.0.1:${port}`);

let stopping = false;
const stop = async (signal) => {
  if (stopping) return;
  stopping = true;
  console.log(`unleash-server stopping on ${signal}`);
  try {
    await unleash.stop();
  } catch (err) {
    console.error('unleash-server stop:', err);
  }
  process.exit(0);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (process.env.FLAGSYNC_UNLEASH_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => stop('end of standard input'));
  process.stdin.on('error', () => stop('standard input error'));
  process.stdin.resume();
}
