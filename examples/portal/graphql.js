// A small GraphQL client for the browser, with no dependencies:
//
// - `request()` sends queries and mutations as an HTTP POST;
// - `subscribe()` runs one subscription over the `graphql-transport-ws`
//   WebSocket protocol, reconnecting and resuming from the last cursor seen.
//
// It is written out by hand to show the protocol; an application would
// usually take `graphql-ws` (see the main README, "Overload") for the socket.

/** An error with the server's `extensions.code` (or `NETWORK`, `HTTP_<status>`). */
export class ApiError extends Error {
  constructor(message, { code, status, errors } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code ?? 'UNKNOWN';
    this.status = status;
    this.errors = errors ?? [];
  }
}

/** `http://host:port` (or `…/graphql`) → the HTTP and WebSocket endpoints. */
export function endpoints(apiUrl) {
  const base = new URL(apiUrl.trim().replace(/\/+$/, '').replace(/\/graphql$/, '') + '/graphql');
  const ws = new URL(base);
  ws.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return { http: base.href, ws: ws.href };
}

/**
 * POSTs one operation and returns its `data`; throws an `ApiError` carrying
 * `errors[0].extensions.code` when the answer has errors. The server answers
 * every failure (401, 413, 429, 503 …) with a GraphQL body, so the code is read
 * from the body whatever the status.
 */
export async function request(apiUrl, token, query, variables = {}) {
  let response;
  try {
    response = await fetch(endpoints(apiUrl).http, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        // The GraphQL-over-HTTP media type first; plain JSON as a fallback.
        Accept: 'application/graphql-response+json, application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (cause) {
    // The browser hides why: server down, wrong URL, or a CORS refusal (this
    // page's origin is not in the server's ITSM_CORS_ORIGINS).
    throw new ApiError(`cannot reach ${apiUrl} (is it running, and does it allow this origin?)`, {
      code: 'NETWORK',
    });
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP ${response.status} without a GraphQL body`, {
      code: `HTTP_${response.status}`,
      status: response.status,
    });
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new ApiError(first.message, {
      code: first.extensions?.code ?? `HTTP_${response.status}`,
      status: response.status,
      errors: body.errors,
    });
  }
  if (!response.ok || !body.data) {
    throw new ApiError(`HTTP ${response.status}`, { code: `HTTP_${response.status}`, status: response.status });
  }
  return body.data;
}

// Close codes after which reconnecting cannot help (see the README, "Live updates").
const FATAL_CLOSE = {
  4400: 'the server could not read a message',
  4401: 'an operation was sent before the handshake',
  4403: 'the token was refused or has expired: sign in again',
  4409: 'an operation id was used twice',
  4429: 'too many sockets are open for this person',
};

/**
 * Runs one subscription and keeps it running across dropped connections.
 *
 * The events must carry a cursor (`cursorOf(data)` finds it). The client keeps
 * the last one and, on every (re)subscribe, sends it as the `after` variable:
 * the server replays what was missed from its durable log, then continues
 * live, so no event is lost or delivered twice. Pass `after` to start from a
 * known point (say, the moment a list was loaded); without it the feed starts
 * at "now".
 *
 * Callbacks: `onNext(data)` for each event, `onStatus(status, detail)` with
 * `connecting`, `live`, `reconnecting`, `closed`, `error`, and
 * `onError(ApiError)` for GraphQL errors.
 * Returns `{ close() }`.
 */
export function subscribe({ url, token, query, variables = {}, after = null, cursorOf, onNext, onStatus, onError }) {
  const wsUrl = endpoints(url).ws;
  const status = onStatus ?? (() => {});
  const fail = onError ?? (() => {});
  let cursor = after;
  let socket = null;
  let attempt = 0; // failed connections in a row, for the backoff
  let timer = null;
  let stopped = false;
  let operation = 0; // ids must be unique per socket; a counter is enough

  function connect() {
    status('connecting');
    // The subprotocol names the protocol; the server also speaks the legacy
    // `graphql-ws`, but chooses this one when offered.
    socket = new WebSocket(wsUrl, 'graphql-transport-ws');
    const ws = socket;
    const send = (message) => ws.send(JSON.stringify(message));

    ws.onopen = () => {
      // 1. The first message: connection_init. Browsers cannot set headers on a
      //    WebSocket, so the token travels in the payload. The server answers
      //    connection_ack, or closes with 4403 for a bad token.
      send({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } });
    };

    ws.onmessage = ({ data }) => {
      if (stopped) return;
      let message;
      try {
        message = JSON.parse(data);
      } catch {
        return;
      }
      switch (message.type) {
        case 'connection_ack': {
          // 2. Accepted: start the operation. Its variables carry the cursor of
          //    the last event seen, so a reconnect resumes exactly there.
          attempt = 0;
          operation += 1;
          send({
            id: String(operation),
            type: 'subscribe',
            payload: { query, variables: { ...variables, after: cursor } },
          });
          // The protocol has no per-operation acknowledgement; since the
          // operation resumes from a cursor, nothing committed from here on
          // (or since `after`) can be missed, so the feed is live.
          status('live');
          break;
        }
        case 'next': {
          // 3. One result per event: { data, errors? }.
          const { data: result, errors } = message.payload;
          if (errors?.length) {
            fail(new ApiError(errors[0].message, { code: errors[0].extensions?.code, errors }));
          }
          if (result) {
            const next = cursorOf(result);
            if (next) cursor = next;
            onNext(result);
          }
          break;
        }
        case 'error': {
          // The operation was refused (bad query, forbidden, bad cursor, too
          // many operations); retrying the same one would be refused again.
          const errors = message.payload ?? [];
          fail(new ApiError(errors[0]?.message ?? 'subscription refused', { code: errors[0]?.extensions?.code, errors }));
          stop('error', errors[0]?.extensions?.code);
          break;
        }
        case 'complete':
          // The server ended the operation (after an error it reported with
          // `next`, say, such as a subscriber too slow to keep up): resubscribe
          // on a fresh connection from the last cursor.
          ws.close(1000, 'completed');
          break;
        case 'ping':
          // Keep-alive: the server pings every ITSM_WS_KEEPALIVE; answer pong.
          send({ type: 'pong' });
          break;
        default:
          break; // `pong` and anything newer
      }
    };

    ws.onclose = ({ code, reason }) => {
      if (ws !== socket || stopped) return;
      if (FATAL_CLOSE[code]) {
        fail(new ApiError(`${FATAL_CLOSE[code]} (${code}${reason ? `: ${reason}` : ''})`, { code: `WS_${code}` }));
        stop('closed', code);
        return;
      }
      // Anything else (1006 network drop, 1001 server restart, 4408 …):
      // reconnect after a random wait up to 1 s, 2 s, 4 s … capped at 30 s
      // ("full jitter"), so that many clients do not return all at once.
      const wait = Math.round(Math.random() * Math.min(30_000, 1_000 * 2 ** attempt));
      attempt += 1;
      status('reconnecting', `${code}, retrying in ${(wait / 1000).toFixed(1)} s`);
      timer = setTimeout(connect, wait);
    };
  }

  function stop(final, detail) {
    stopped = true;
    clearTimeout(timer);
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'bye');
    status(final, detail);
  }

  connect();
  return { close: () => stop('closed') };
}
