// An integrator that follows one queue live over `graphql-transport-ws` and
// survives server restarts, deploys and its own restarts WITHOUT losing or
// repeating an event.
//
// The one rule: every (re)subscription passes the cursor of the LAST event
// this process handled as `after`. The server then replays what was missed
// from its durable log and carries on live, with no gap and no repeat.
//
// Why not graphql-ws's built-in `retryAttempts`? Its reconnects resend the
// subscription exactly as it was first issued, with the ORIGINAL variables:
// `after` would still be the cursor we started from (the server replays
// everything since then again: repeats) or null (the server starts from
// "now": losses). So here graphql-ws never retries on its own; the loop in
// `follow()` owns reconnection: one client, one socket and one subscription
// per attempt, back-off with jitter between attempts, and a fresh `after`
// every time.
//
//   ITSM_URL=http://127.0.0.1:8080 ITSM_TOKEN=… QUEUE_ID=UXVldWU6Mg \
//   STATE_FILE=./queue.cursor node integrator.mjs
//
// stdout: one JSON object per line (connected, event, disconnected, stopped);
// logs go to stderr.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const log = (message) => console.error(`[integrator] ${message}`);
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
function fail(message) {
  log(`error: ${message}`);
  process.exit(1);
}
function env(name, fallback) {
  const value = process.env[name] || fallback;
  if (value === undefined) fail(`${name} is required`);
  return value;
}

const HTTP_URL = env('ITSM_URL').replace(/\/+$/, '');
const WS_URL = `${HTTP_URL.replace(/^http/, 'ws')}/graphql`; // http→ws, https→wss
const TOKEN = env('ITSM_TOKEN');
const QUEUE_ID = env('QUEUE_ID');
const STATE_FILE = env('STATE_FILE');
const STOP_AFTER = Number(env('STOP_AFTER', '0')); // 0: run until SIGTERM / SIGINT
const BACKOFF_MIN_MS = Number(env('BACKOFF_MIN_MS', '100'));
const BACKOFF_MAX_MS = Number(env('BACKOFF_MAX_MS', '2000'));

const SUBSCRIPTION = /* GraphQL */ `
  subscription QueueFeed($queueId: ID!, $after: String) {
    queueUpdates(queueId: $queueId, after: $after) {
      cursor
      seq
      kind
      occurredAt
      ticket { id number status }
      changes { field from to }
    }
  }
`;

// Close codes after which reconnecting cannot help: 4403, a refused or
// expired token (this example has no way to get a fresh one), and protocol
// errors that mean a bug in the client. Everything else is retried: 1000
// (the server ended the socket), 1001 (the server is shutting down: a deploy),
// 1006 (connection lost), 1011-1013, 4429 (too many sockets for this viewer) …
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 4400, 4401, 4403, 4406, 4409]);
// GraphQL error codes that retrying will not cure. Others (CONFLICT: this
// subscriber fell too far behind; RATE_LIMITED; SERVICE_UNAVAILABLE) are retried.
const FATAL_ERROR_CODES = new Set([
  'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED',
]);

// ---- the cursor, kept across restarts of this process ----------------------

function loadCursor() {
  try {
    return readFileSync(STATE_FILE, 'utf8').trim() || null;
  } catch (error) {
    if (error.code === 'ENOENT') return null; // first run: follow from "now"
    throw error;
  }
}

// Write a temporary file and rename it over the old one: a crash leaves the
// old cursor or the new one, never half of one.
function saveCursor(cursor) {
  const temporary = `${STATE_FILE}.${process.pid}.tmp`;
  writeFileSync(temporary, cursor);
  renameSync(temporary, STATE_FILE);
}

// What one event means to this integrator: here, a line on stdout. Then, and
// only then, its cursor is saved: a crash in between repeats at most this one
// event on the next start (at-least-once delivery), and never loses one.
function handle(event) {
  emit({
    type: 'event',
    cursor: event.cursor,
    seq: event.seq,
    kind: event.kind,
    ticketId: event.ticket?.id ?? null, // null once the viewer may no longer see it
    ticketNumber: event.ticket?.number ?? null,
  });
  saveCursor(event.cursor);
}

// ---- one attempt: one socket, one subscription ----------------------------

let stopping = false;
let stopAttempt = () => {}; // ends the running attempt (SIGTERM, STOP_AFTER)

/**
 * Connects, subscribes after `after` and hands each event to `onEvent` until
 * the socket or the subscription ends. Resolves with how it ended.
 */
async function attempt(after, onEvent) {
  const outcome = { acknowledged: false, close: null, errors: null, error: null };
  let subscription;
  let socketClosed;
  const closed = new Promise((resolve) => { socketClosed = resolve; });
  const client = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    // A function: read afresh for each socket (a real integrator would
    // return a token that is still valid here).
    connectionParams: () => ({ Authorization: `Bearer ${TOKEN}` }),
    retryAttempts: 0, // no retries behind our back: follow() decides
    on: {
      connected: () => {
        outcome.acknowledged = true;
        emit({ type: 'connected' });
      },
      closed: (event) => {
        outcome.close ??= { code: event?.code ?? 1006, reason: event?.reason ?? '' };
        // Even with retryAttempts: 0, graphql-ws resubscribes AT ONCE after
        // a 1000 close (which the server sends when it ends a socket
        // normally), with the original variables. Ending the subscription
        // here, before graphql-ws sees the close, leaves nothing to resend.
        subscription?.return();
        socketClosed();
      },
    },
  });
  subscription = client.iterate({ query: SUBSCRIPTION, variables: { queueId: QUEUE_ID, after } });
  stopAttempt = () => subscription.return();
  try {
    for await (const result of subscription) {
      if (result.errors?.length) {
        // An error of the operation, not of the socket: the subscription is over.
        outcome.errors = result.errors;
        break;
      }
      if (!onEvent(result.data.queueUpdates)) break;
    }
  } catch (error) {
    // An `error` message (a list of GraphQL errors), a close event, or a
    // socket error such as ECONNREFUSED.
    if (Array.isArray(error)) outcome.errors = error;
    else if (!isCloseEvent(error)) outcome.error = error;
  }
  stopAttempt = () => {};
  // Events already received were handled above; now close our end (1000)
  // and wait for the socket to be closed, so a "connected" line is always
  // followed by its "disconnected" line.
  await client.dispose();
  if (outcome.acknowledged) {
    await closed;
    emit({ type: 'disconnected', code: outcome.close.code });
  }
  return outcome;
}

function isCloseEvent(value) {
  return typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;
}

// ---- the loop that owns reconnection ---------------------------------------

const stopWaiting = new AbortController(); // cuts a back-off wait short
const sleep = (ms) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  stopWaiting.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

async function follow() {
  let cursor = loadCursor();
  let handled = 0;
  let failures = 0; // attempts in a row that failed: the back-off grows with them
  log(`following queue ${QUEUE_ID} at ${WS_URL}, after ${cursor ?? '(now)'}`);
  while (!stopping) {
    const outcome = await attempt(cursor, (event) => {
      handle(event);
      cursor = event.cursor; // the next attempt resumes after this event
      handled += 1;
      if (STOP_AFTER && handled >= STOP_AFTER) stopping = true;
      return !stopping;
    });
    if (stopping) break;

    // Decide whether to go again.
    const { close, errors, error } = outcome;
    if (errors) {
      const { message, extensions } = errors[0] ?? {};
      if (FATAL_ERROR_CODES.has(extensions?.code)) fail(`subscription refused: ${extensions.code}: ${message}`);
      log(`subscription ended: ${extensions?.code ?? 'error'}: ${message}`);
    } else if (close && FATAL_CLOSE_CODES.has(close.code)) {
      fail(close.code === 4403
        ? 'the server refused the token (4403): it is invalid or expired; start again with a fresh one'
        : `the server closed the socket with ${close.code} ${close.reason}: reconnecting cannot help`);
    } else if (error) {
      log(`connection failed: ${error.message ?? error}`);
    } else if (close) {
      log(`socket closed: ${close.code} ${close.reason}`);
    }
    // Full jitter: a random wait below 100 ms, 200 ms, 400 ms … capped at
    // 2 s; back to the shortest once a connection was acknowledged.
    failures = outcome.acknowledged ? 0 : failures + 1;
    const wait = Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** failures);
    log(`resubscribing after ${cursor ?? '(now)'} in ${Math.round(wait)} ms`);
    await sleep(wait);
  }
  return { handled, cursor };
}

// SIGTERM / SIGINT: finish the event in hand, close the socket and exit 0.
// The cursor on disk is that of the last event handled.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    stopping = true;
    stopWaiting.abort();
    stopAttempt();
  });
}

const { handled, cursor } = await follow();
emit({ type: 'stopped', events: handled, cursor });
process.exit(0);
