// Apollo Client 4 in Node (no React) against the itsm GraphQL service.
//
// Shows, and checks (exit code 1, with the reason on stderr, when a check fails):
//   1. a cache normalised by the service's global ids, `node(id:)` answered from the cache;
//   2. relayStylePagination: 3 tickets, then fetchMore for 3 more, merged in the cache;
//   3. GraphQLWsLink split from the HTTP link: a ticket subscription whose events update the
//      cached list with no refetch;
//   4. resuming that subscription from its last cursor after the socket drops: nothing missed,
//      nothing repeated;
//   5. automatic persisted queries (APQ=0 turns them off).
//
// env: ITSM_URL (http://127.0.0.1:8080), AGENT_TOKEN (an agent of the queue), QUEUE_ID (a queue
// with at least 6 open tickets), APQ (1 by default), TIMEOUT_MS (60000 by default).
// stdout: one JSON object per line, one per step; logs go to stderr.

import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  ApolloClient,
  ApolloLink,
  HttpLink,
  InMemoryCache,
  defaultDataIdFromObject,
  gql,
} from '@apollo/client';
import { relayStylePagination } from '@apollo/client/utilities';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import { filter as rxFilter, firstValueFrom, tap } from 'rxjs';
import WebSocket from 'ws';

const { ITSM_URL, AGENT_TOKEN, QUEUE_ID } = process.env;
const APQ = (process.env.APQ ?? '1') !== '0';
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? 60_000);

const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const log = (...args) => console.error('[apollo]', ...args);
function die(message) {
  console.error(`[apollo] FAILED: ${message}`);
  process.exit(1);
}
function check(ok, message, detail) {
  if (!ok) die(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
}
// An Apollo error with the server's codes (CombinedGraphQLErrors carries them in `errors`).
function describe(error) {
  const codes = error.errors?.map((e) => e.extensions?.code) ?? [];
  const hint =
    APQ && codes.includes('GRAPHQL_PARSE_FAILED')
      ? ' (a hash-only request the server could not read: does it take persisted queries? APQ=0)'
      : '';
  return `${error.message} ${JSON.stringify(codes)}${hint}`;
}

if (!ITSM_URL || !AGENT_TOKEN || !QUEUE_ID) die('set ITSM_URL, AGENT_TOKEN and QUEUE_ID');
const timeout = setTimeout(() => die(`not finished after ${TIMEOUT_MS} ms`), TIMEOUT_MS);

const httpUrl = new URL(ITSM_URL);
if (!httpUrl.pathname.endsWith('/graphql')) {
  httpUrl.pathname = `${httpUrl.pathname.replace(/\/$/, '')}/graphql`;
}
const wsUrl = new URL(httpUrl);
wsUrl.protocol = httpUrl.protocol === 'https:' ? 'wss:' : 'ws:';

// ---------------------------------------------------------------------------------------------
// What went over HTTP. The fetch given to HttpLink counts requests, so the APQ step can show
// hash-only requests, registrations (the full query with its hash) and misses.
const sent = { requests: 0, get: 0, post: 0, hashOnly: 0, registrations: 0, misses: 0 };
const missedHashes = [];

async function countingFetch(input, init = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  const params = new URL(String(input)).searchParams;
  const body =
    method === 'GET'
      ? { query: params.get('query'), extensions: JSON.parse(params.get('extensions') ?? 'null') }
      : JSON.parse(init.body);
  sent.requests += 1;
  sent[method === 'GET' ? 'get' : 'post'] += 1;
  if (body.extensions?.persistedQuery) sent[body.query ? 'registrations' : 'hashOnly'] += 1;

  const response = await fetch(input, init);
  const answer = await response.clone().json().catch(() => null);
  if (answer?.errors?.some((e) => e.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND')) {
    sent.misses += 1;
    missedHashes.push(body.extensions.persistedQuery.sha256Hash);
  }
  return response;
}

// ---------------------------------------------------------------------------------------------
// 1. The cache. Every object with an `id` implements `Node`, and its id is globally unique and
// opaque (Relay style: `VGlja2V0OjEyMg`). Key the cache by that id alone instead of Apollo's
// default `Ticket:<id>`: then `node(id:)` and `ticket(id:)` can point straight at the entry.
// possibleTypes lets fragments on the `Node` interface match (generate it from the schema in a
// real build; these are the `implements Node` types of schema.graphql).
const NODE_TYPES = [
  'Approval', 'CatalogItem', 'Comment', 'Queue', 'RoutingRule',
  'Service', 'Task', 'Team', 'Ticket', 'User',
];
// A cache redirect: an object already in the cache is read without a request.
const byId = {
  read: (existing, { args, toReference }) => existing ?? (args?.id ? toReference(args.id) : undefined),
};

const cacheConfig = () => ({
  dataIdFromObject: (o) => (typeof o.id === 'string' ? o.id : defaultDataIdFromObject(o)),
  possibleTypes: { Node: NODE_TYPES },
  typePolicies: {
    Query: {
      fields: {
        // 2. One cached list per filter and order; `first`, `after`, `last` and `before` only
        // page through it, so they are not key arguments.
        tickets: relayStylePagination(['filter', 'orderBy']),
        node: byId,
        ticket: byId,
      },
    },
    // The same for a queue's own list, `queue(id:) { tickets(...) }`.
    Queue: { fields: { tickets: relayStylePagination(['filter', 'orderBy']) } },
  },
});

// HTTP carries queries and mutations. 5. With APQ the persisted-query link goes first: it sends
// only the query's hash (as a GET for queries, which a CDN can cache), and the full query once,
// when the server answers PERSISTED_QUERY_NOT_FOUND.
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
function httpLink() {
  const http = new HttpLink({
    uri: httpUrl.href,
    fetch: countingFetch,
    headers: { Authorization: `Bearer ${AGENT_TOKEN}` },
  });
  if (!APQ) return http;
  return ApolloLink.from([createPersistedQueryLink({ sha256, useGETForHashedQueries: true }), http]);
}

// ---------------------------------------------------------------------------------------------
// 4. Resuming subscriptions. graphql-ws reconnects by itself (retryAttempts) and then re-sends
// every active subscription with the payload it was first given. A fixed `after` is wrong both
// ways: `after: <the cursor we started from>` replays every event since then again (repeats),
// and `after: null` starts live at the reconnect (what was committed while offline is lost).
// This link makes `after` a getter that returns the cursor of the last event delivered. That
// works because GraphQLWsLink hands graphql-ws `operation.variables` by reference and graphql-ws
// serialises the payload afresh on every (re)subscribe: each resubscribe asks for exactly what
// was missed. `context: { resume: false }` opts out.
// (The alternative: `retryAttempts: 0`, and when the subscription errors, call client.subscribe
// again with `after: lastCursor` yourself, with your own backoff.)
const resumeLink = new ApolloLink((operation, forward) => {
  if (!('after' in operation.variables) || operation.getContext().resume === false) {
    return forward(operation);
  }
  let after = operation.variables.after ?? null;
  operation.variables = Object.defineProperty({ ...operation.variables }, 'after', {
    enumerable: true,
    get: () => after,
  });
  return forward(operation).pipe(
    tap((result) => {
      const event = result.data && Object.values(result.data)[0];
      if (event?.cursor) after = event.cursor;
    }),
  );
});

// 3. WebSocket for subscriptions, HTTP for the rest, split on the operation type.
let beforeReconnect = null; // step 4 commits a change while offline; the reconnect waits for it
let currentSocket = null; // kept only to drop it on purpose in step 4

function makeClient({ subscriptions = false } = {}) {
  const cache = new InMemoryCache(cacheConfig());
  if (!subscriptions) return { client: new ApolloClient({ cache, link: httpLink() }) };
  const ws = createClient({
    url: wsUrl.href,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${AGENT_TOKEN}` },
    retryAttempts: Infinity,
    shouldRetry: () => true,
    // "full jitter" backoff: a random wait up to 0.5 s, 1 s, 2 s … capped at 10 s
    retryWait: async (retries) => {
      await beforeReconnect?.catch(() => {});
      const ms = Math.random() * Math.min(10_000, 500 * 2 ** retries);
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    on: { opened: (socket) => (currentSocket = socket) },
  });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    ApolloLink.from([resumeLink, new GraphQLWsLink(ws)]),
    httpLink(),
  );
  return { client: new ApolloClient({ cache, link }), ws };
}

// Resolves on the next graphql-ws event of that name whose arguments pass `test`.
const wsEvent = (ws, name, test = () => true) =>
  new Promise((resolve) => {
    const off = ws.on(name, (...args) => {
      if (!test(...args)) return;
      off();
      resolve(args);
    });
  });

// What a subscription delivered, and a way to wait for an item (already there or still to come).
class Feed {
  items = [];
  #waiters = new Set();
  push(item) {
    this.items.push(item);
    for (const w of this.#waiters) if (w.test(item)) (this.#waiters.delete(w), w.resolve(item));
  }
  waitFor(test, from = 0) {
    const found = this.items.slice(from).find(test);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => this.#waiters.add({ test, resolve }));
  }
}

// ---------------------------------------------------------------------------------------------
// Operations
const TICKET_ROW = gql`
  fragment TicketRow on Ticket {
    id
    number
    title
    status
    priority
    urgency
    version
    updatedAt
    assignee { id displayName }
  }
`;

const BOARD = gql`
  query Board($filter: TicketFilterInput!, $first: Int!, $after: String) {
    tickets(filter: $filter, first: $first, after: $after) {
      edges { cursor node { ...TicketRow } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
  ${TICKET_ROW}
`;

const NODE = gql`
  query NodeById($id: ID!) {
    node(id: $id) { id ... on Ticket { number status priority } }
  }
`;

const ANY_NODE = gql`
  fragment AnyNode on Node { id }
`;

const LAST_EVENT = gql`
  query LastEvent($id: ID!) {
    ticket(id: $id) { id history(last: 1) { edges { cursor } } }
  }
`;

const TICKET_UPDATES = gql`
  subscription TicketUpdates($ticketId: ID!, $after: String) {
    ticketUpdates(ticketId: $ticketId, after: $after) {
      cursor
      seq
      kind
      occurredAt
      changes { field from to }
      ticket { ...TicketRow }
    }
  }
  ${TICKET_ROW}
`;

// The same feed, resubscribed with its first variables: only here to count its repeats.
const TICKET_UPDATES_NAIVE = gql`
  subscription TicketUpdatesNaive($ticketId: ID!, $after: String) {
    ticketUpdates(ticketId: $ticketId, after: $after) { seq }
  }
`;

const EVENTS = gql`
  query Events($ticketId: ID!, $after: String) {
    ticketEvents(ticketId: $ticketId, after: $after, first: 100) { nodes { seq } }
  }
`;

// The mutation asks for the version alone: the new priority reaches the list through the
// subscription and the normalised cache, not through this answer.
const UPDATE_TICKET = gql`
  mutation SetUrgency($input: UpdateTicketInput!) {
    updateTicket(input: $input) { ticket { id version } }
  }
`;

const VERSION = gql`
  fragment Version on Ticket { version urgency priority }
`;

// Sets a ticket's urgency (by default flips it, HIGH <-> LOW, so its priority changes too) from
// the version the normalised cache holds: mutation answers and events keep it current.
async function setUrgency(client, id, to = undefined) {
  const { version, urgency, priority } = client.cache.readFragment({ id, fragment: VERSION });
  to ??= urgency === 'HIGH' ? 'LOW' : 'HIGH';
  const started = performance.now();
  const input = { id, expectedVersion: version, urgency: to };
  await client
    .mutate({ mutation: UPDATE_TICKET, variables: { input } })
    .catch((e) => die(`updateTicket: ${describe(e)}`));
  return { from: urgency, to, priority, started, ms: Math.round(performance.now() - started) };
}

const urgencySetTo = (to) => (event) =>
  event.changes.some((c) => c.field === 'urgency' && c.to === to);

const sameList = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------------------------
// 2. Pagination: 3 tickets, then fetchMore from the end cursor; the cache holds one merged list.
async function paginate(client, filter) {
  const board = client.watchQuery({ query: BOARD, variables: { filter, first: 3 } });
  const watching = board.subscribe({ error: (e) => die(`Board: ${describe(e)}`) });
  const firstResult = await firstValueFrom(board.pipe(rxFilter((r) => !r.loading)));
  if (firstResult.error) die(`Board: ${describe(firstResult.error)}`);
  const page1 = firstResult.data.tickets;
  check(page1.edges.length === 3 && page1.pageInfo.hasNextPage, 'need 6 open tickets', page1.pageInfo);
  const page2 = (await board.fetchMore({ variables: { after: page1.pageInfo.endCursor } })).data.tickets;

  const { tickets } = client.readQuery({ query: BOARD, variables: { filter, first: 3 } });
  const ids = tickets.edges.map((e) => e.node.id);
  const pages = [...page1.edges, ...page2.edges].map((e) => e.node.id);
  const variables = { filter, first: 6 };
  const six = await client.query({ query: BOARD, variables, fetchPolicy: 'no-cache' });
  check(ids.length === 6, 'the cached list should hold 6 edges', ids);
  check(new Set(ids).size === 6, 'the cached list holds duplicates', ids);
  check(sameList(ids, pages), 'the cached list should be page 1 then page 2', { ids, pages });
  check(sameList(ids, six.data.tickets.edges.map((e) => e.node.id)), 'the cache differs from first: 6');
  check(tickets.pageInfo.endCursor === page2.pageInfo.endCursor, 'endCursor not updated');
  check(tickets.pageInfo.hasNextPage === page2.pageInfo.hasNextPage, 'hasNextPage not updated');
  emit({
    step: 'paginate',
    edges: ids.length,
    unique: new Set(ids).size,
    pages: 2,
    hasNextPage: tickets.pageInfo.hasNextPage,
    numbers: tickets.edges.map((e) => e.node.number),
  });
  return { ticket: tickets.edges[0].node, watching };
}

// 1. Normalisation: the cache key is the global id, and node(id:) is answered from the cache.
async function cacheKeys(client, ticket) {
  const cacheKey = client.cache.identify(ticket);
  check(cacheKey === ticket.id, 'the cache should key by global id', { cacheKey, id: ticket.id });
  const before = sent.requests;
  const { node } = (await client.query({ query: NODE, variables: { id: ticket.id } })).data;
  check(sent.requests === before, 'node(id:) should be read from the cache, with no request');
  check(node?.number === ticket.number, 'node(id:) read the wrong object', node);
  const asNode = client.cache.readFragment({ id: ticket.id, fragment: ANY_NODE });
  check(asNode?.id === ticket.id, 'a fragment on Node should match a Ticket (possibleTypes)', asNode);
  emit({ step: 'cache', cacheKey, typename: node.__typename, nodeFromCache: true, requests: 0 });
}

// 3. Live: follow the ticket from its latest event on, change it, and watch the event arrive
// and land in the cached list. Subscribing `after` a cursor (not `after: null`, which starts at
// whatever is newest when the server gets to it) loses nothing committed between this query and
// the subscription. A board that must not miss a change made between reading the list and
// this query reads the cursor first.
async function live(client, ws, filter, ticket) {
  const last = await client.query({
    query: LAST_EVENT,
    variables: { id: ticket.id },
    fetchPolicy: 'network-only',
  });
  const startCursor = last.data.ticket.history.edges.at(-1)?.cursor ?? null;
  const variables = { ticketId: ticket.id, after: startCursor };

  const events = new Feed(); // what the resumed subscription delivered, in order
  const naive = new Feed(); // the seqs the naive one delivered
  const connected = wsEvent(ws, 'connected');
  const subscriptions = [
    client.subscribe({ query: TICKET_UPDATES, variables }).subscribe({
      next: ({ data, error }) => {
        if (error) die(`ticketUpdates: ${describe(error)}`);
        const event = { ...data.ticketUpdates, at: performance.now() };
        log('event', event.seq, event.kind, JSON.stringify(event.changes.map((c) => [c.field, c.to])));
        events.push(event);
      },
      error: (e) => die(`ticketUpdates: ${describe(e)}`),
    }),
    client.subscribe({ query: TICKET_UPDATES_NAIVE, variables, context: { resume: false } }).subscribe({
      next: ({ data, error }) =>
        error ? die(`naive: ${describe(error)}`) : naive.push(data.ticketUpdates.seq),
      error: (e) => die(`naive: ${describe(e)}`),
    }),
  ];
  await connected;

  const from = events.items.length;
  const change = await setUrgency(client, ticket.id);
  const event = await events.waitFor(urgencySetTo(change.to), from);
  const ms = Math.round(event.at - change.started);
  emit({ step: 'live', kind: event.kind, seq: event.seq, ms, mutationMs: change.ms });

  // Normalisation at work: the event's ticket was written to the entry the list points at, so
  // the cached list, read with no request, shows the new priority.
  const before = sent.requests;
  const { tickets } = client.readQuery({ query: BOARD, variables: { filter, first: 3 } });
  const row = tickets.edges.find((e) => e.node.id === ticket.id).node;
  check(sent.requests === before, 'readQuery made a request');
  check(row.urgency === change.to, 'the cached list should show the new urgency', row);
  const priority = { from: change.priority, to: row.priority };
  check(row.priority === event.ticket.priority && row.priority !== change.priority,
    'the cached list should show the event\'s new priority', { ...priority, event: event.ticket.priority });
  emit({ step: 'normalised', ticket: ticket.number, priority, requests: 0 });
  return { events, naive, startCursor, subscriptions };
}

// 4. Resume: drop the socket, commit a change while offline (the reconnect waits for it), and
// one more once reconnected. Each must arrive once, and nothing earlier again.
async function resume(client, ws, ticket, { events, naive, startCursor }) {
  await naive.waitFor((seq) => seq === events.items.at(-1).seq); // both are up to date
  const from = events.items.length;
  const closed = wsEvent(ws, 'closed');
  const reconnected = wsEvent(ws, 'connected', (_socket, _payload, wasRetry) => wasRetry);
  const droppedAt = performance.now();
  beforeReconnect = closed.then(() => setUrgency(client, ticket.id));
  currentSocket.terminate(); // as a network failure would: no close handshake
  const offline = await beforeReconnect;
  const committedAt = performance.now();
  await reconnected;
  const reconnectedAt = performance.now();
  const offlineEvent = await events.waitFor(urgencySetTo(offline.to), from);
  const online = await setUrgency(client, ticket.id);
  const afterOffline = events.items.indexOf(offlineEvent) + 1;
  const onlineEvent = await events.waitFor(urgencySetTo(online.to), afterOffline);
  await naive.waitFor((seq) => seq === onlineEvent.seq); // the naive one has caught up too

  // What the feed holds (the polling query over the same log), against what arrived.
  const feed = await client.query({
    query: EVENTS,
    variables: { ticketId: ticket.id, after: startCursor },
    fetchPolicy: 'network-only',
  });
  const expected = feed.data.ticketEvents.nodes.map((n) => n.seq).filter((s) => s <= onlineEvent.seq);
  const seqs = events.items.map((e) => e.seq);
  const repeated = seqs.length - new Set(seqs).size;
  const missed = expected.filter((s) => !seqs.includes(s)).length;
  const naiveRepeated = naive.items.length - new Set(naive.items).size;
  check(repeated === 0, 'events repeated after the reconnect', seqs);
  check(missed === 0, 'events missed', { seqs, expected });
  check(sameList(seqs, expected), 'events out of order', { seqs, expected });
  check(committedAt < reconnectedAt && offlineEvent.at > reconnectedAt, 'offline change not replayed');
  check(naiveRepeated > 0, 'without resumeLink the resubscribe should have replayed earlier events');
  emit({
    step: 'resume',
    repeated,
    missed,
    events: seqs.length,
    reconnectMs: Math.round(reconnectedAt - droppedAt),
    offline: {
      seq: offlineEvent.seq,
      replayed: true,
      msAfterReconnect: Math.round(offlineEvent.at - reconnectedAt),
    },
    live: { seq: onlineEvent.seq, ms: Math.round(onlineEvent.at - online.started) },
    naiveRepeated,
  });
  return online.to;
}

// 5. APQ: a query never sent before (a fresh hash each run, even on a server that has seen the
// others), from two fresh clients. The first: a hash-only GET, PERSISTED_QUERY_NOT_FOUND, then
// the full query once (POST). The second: the hash-only GET alone gets the data.
async function persistedQueries() {
  const nonce = randomBytes(4).toString('hex');
  const PROBE = gql(`query ApqProbe { viewer { id displayName } run_${nonce}: __typename }`);
  const run = async () => {
    const before = { ...sent };
    const { data } = await makeClient().client.query({ query: PROBE });
    const delta = Object.fromEntries(Object.keys(sent).map((k) => [k, sent[k] - before[k]]));
    return { viewer: data.viewer.id, ...delta };
  };
  const first = await run();
  const second = await run();
  const is = (got, want) => Object.entries(want).every(([k, v]) => got[k] === v);
  if (APQ) {
    check(is(first, { requests: 2, get: 1, hashOnly: 1, misses: 1, post: 1, registrations: 1 }),
      'first client: a hash-only GET, PERSISTED_QUERY_NOT_FOUND, then one registering POST', first);
    check(is(second, { requests: 1, get: 1, hashOnly: 1, misses: 0, registrations: 0 }),
      'second client: one hash-only GET, no miss, no registration', second);
    check(sent.registrations === sent.misses, 'each miss registers its query once, nothing else', sent);
    check(new Set(missedHashes).size === missedHashes.length, 'a hash missed twice', missedHashes);
  } else {
    check(sent.hashOnly === 0 && sent.registrations === 0, 'APQ=0: every request has its query', sent);
  }
  check(first.viewer === second.viewer, 'both clients should read the same viewer');
  const { hashOnly, registrations, get, post, misses, requests } = sent;
  const totals = { hashOnly, registrations, get, post, misses, requests };
  emit({ step: 'apq', enabled: APQ, ...totals, first, second });
}

async function main() {
  const { client, ws } = makeClient({ subscriptions: true });
  const filter = { queueIds: [QUEUE_ID], open: true };

  const { ticket, watching } = await paginate(client, filter);
  await cacheKeys(client, ticket);
  const followed = await live(client, ws, filter, ticket);
  const urgency = await resume(client, ws, ticket, followed);

  for (const subscription of [...followed.subscriptions, watching]) subscription.unsubscribe();
  await ws.dispose();
  if (urgency !== ticket.urgency) await setUrgency(client, ticket.id, ticket.urgency); // as found

  await persistedQueries();
  clearTimeout(timeout);
  emit({ step: 'done' });
}

main().catch((e) => die(e.errors ? describe(e) : (e.stack ?? String(e))));
