// A requester's portal: sign in with a token, list my tickets, report an
// incident, and follow my tickets live. Served from any origin the API lists
// in ITSM_CORS_ORIGINS; it talks to the API at the "API URL".
import { endpoints, request, subscribe } from './graphql.js';

// What a row shows; the list, the mutation and the live events all ask for it.
const ROW = /* GraphQL */ `
  fragment Row on Ticket { id number title status priority updatedAt }
`;

const VIEWER = /* GraphQL */ `
  query Viewer { viewer { id displayName role } }
`;

// A requester sees only their own tickets anyway; the filter makes the page
// mean "mine" for staff too. `newest` gives where the event feed stands: the
// latest event of the ticket changed last. The subscription starts after it,
// so whatever happens between this query and the socket is replayed, not lost.
const MY_TICKETS = /* GraphQL */ `
  query MyTickets($me: ID!) {
    tickets(filter: {requesterId: $me}, orderBy: {field: UPDATED_AT, direction: DESC}, first: 50) {
      totalCount
      nodes { ...Row }
    }
    newest: tickets(filter: {requesterId: $me}, orderBy: {field: UPDATED_AT, direction: DESC}, first: 1) {
      nodes { history(last: 1) { nodes { cursor } } }
    }
  }
  ${ROW}
`;

const REPORT = /* GraphQL */ `
  mutation Report($input: CreateIncidentInput!) {
    createIncident(input: $input) { ticket { ...Row } }
  }
  ${ROW}
`;

// Everything on my tickets (work notes never reach requesters). `cursor` is
// what a reconnect resumes after.
const MY_UPDATES = /* GraphQL */ `
  subscription MyUpdates($after: String) {
    myTicketUpdates(after: $after) {
      cursor seq kind occurredAt
      changes { field from to }
      actor { displayName }
      ticket { ...Row latestComment { body author { displayName } } }
    }
  }
  ${ROW}
`;

const $ = (selector) => document.querySelector(selector);
const session = { api: '', token: '', viewer: null, live: null };

// ---- rendering (textContent only: titles and comments are user input) ----

function showError(error) {
  const box = $('#error');
  if (!error) {
    box.textContent = '';
    delete box.dataset.code;
    return;
  }
  box.dataset.code = error.code ?? 'UNKNOWN';
  box.textContent = `${box.dataset.code}: ${error.message}`;
  console.warn('API error', error.code, error.message);
}

function setStatus(state, detail) {
  const el = $('#status');
  el.dataset.state = state;
  el.textContent = detail ? `${state} (${detail})` : state;
}

/** Adds or updates a ticket's row; new ones go on top. */
function upsertRow(ticket, { flash = false } = {}) {
  let row = document.querySelector(`#tickets tr[data-ticket-id="${CSS.escape(ticket.id)}"]`);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.ticketId = ticket.id;
    for (const name of ['number', 'title', 'status', 'priority']) {
      const cell = document.createElement('td');
      cell.className = name;
      row.append(cell);
    }
    $('#tickets').prepend(row);
  }
  row.dataset.number = ticket.number;
  row.dataset.status = ticket.status;
  for (const name of ['number', 'title', 'status', 'priority']) {
    row.querySelector(`.${name}`).textContent = ticket[name];
  }
  if (flash) {
    row.classList.remove('flash');
    void row.offsetWidth; // restart the animation
    row.classList.add('flash');
  }
}

function describe(event) {
  const number = event.ticket?.number ?? '(no longer visible)';
  const changes = event.changes
    .filter((c) => c.field !== 'comment') // a comment's change holds only its number
    .map((c) => `${c.field}: ${c.from ?? '∅'} → ${c.to ?? '∅'}`);
  if (event.kind === 'COMMENT_ADDED' && event.ticket?.latestComment) {
    // `ticket` is the ticket as it is NOW: for an event replayed after a
    // reconnect, the latest comment may be a newer one than this event's.
    const { body, author } = event.ticket.latestComment;
    changes.push(`latest comment by ${author?.displayName ?? 'someone'}: “${body}”`);
  }
  const by = event.actor ? ` by ${event.actor.displayName}` : '';
  return `${new Date(event.occurredAt).toLocaleTimeString()} ${event.kind} ${number}${by}${changes.length ? ' — ' + changes.join('; ') : ''}`;
}

function showEvent(event) {
  const li = document.createElement('li');
  li.dataset.seq = event.seq;
  li.dataset.kind = event.kind;
  li.dataset.ticketNumber = event.ticket?.number ?? '';
  li.textContent = describe(event);
  $('#events').prepend(li);
  if (event.ticket) upsertRow(event.ticket, { flash: true });
}

// ---- actions ----

async function signIn(submit) {
  submit.preventDefault();
  showError(null);
  session.live?.close();
  session.api = $('#api').value.trim();
  session.token = $('#token').value.trim().replace(/^Bearer\s+/i, '');
  $('#signin-button').disabled = true;
  $('#viewer').textContent = 'signing in…';
  delete $('#viewer').dataset.displayName;
  delete $('#tickets').dataset.loaded;
  try {
    endpoints(session.api); // a malformed URL fails here, before any request
    const { viewer } = await request(session.api, session.token, VIEWER);
    session.viewer = viewer;
    $('#viewer').textContent = `Signed in as ${viewer.displayName} (${viewer.role.toLowerCase()})`;
    $('#viewer').dataset.displayName = viewer.displayName;

    const { tickets, newest } = await request(session.api, session.token, MY_TICKETS, { me: viewer.id });
    $('#tickets').replaceChildren();
    $('#events').replaceChildren();
    // Rows arrive newest first; prepending each in reverse keeps that order.
    for (const ticket of [...tickets.nodes].reverse()) upsertRow(ticket);
    $('#ticket-count').textContent =
      tickets.totalCount > tickets.nodes.length ? `(the ${tickets.nodes.length} changed last of ${tickets.totalCount})` : `(${tickets.totalCount})`;
    $('#tickets').dataset.loaded = 'true';
    $('#portal').hidden = false;

    session.live = subscribe({
      url: session.api,
      token: session.token,
      query: MY_UPDATES,
      after: newest.nodes[0]?.history.nodes[0]?.cursor ?? null,
      cursorOf: (data) => data.myTicketUpdates.cursor,
      onNext: (data) => showEvent(data.myTicketUpdates),
      onStatus: setStatus,
      onError: showError,
    });
  } catch (error) {
    $('#viewer').textContent = '';
    showError(error);
  } finally {
    $('#signin-button').disabled = false;
  }
}

// One key per report being written: a retry after a network error returns
// the ticket already created instead of creating a second one.
let idempotencyKey = null;

function newKey() {
  // crypto.randomUUID needs a secure context (https, or localhost/127.0.0.1).
  if (crypto.randomUUID) return `portal-${crypto.randomUUID()}`;
  return 'portal-' + Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function report(submit) {
  submit.preventDefault();
  showError(null);
  idempotencyKey ??= newKey();
  $('#report-button').disabled = true;
  try {
    const { createIncident } = await request(session.api, session.token, REPORT, {
      input: {
        title: $('#title').value.trim(),
        description: $('#description').value,
        impact: $('#impact').value,
        urgency: $('#urgency').value,
        idempotencyKey,
      },
    });
    upsertRow(createIncident.ticket, { flash: true });
    $('#report').reset();
    idempotencyKey = null;
  } catch (error) {
    showError(error);
  } finally {
    $('#report-button').disabled = false;
  }
}

// ---- start ----

$('#api').value = new URLSearchParams(location.search).get('api') ?? 'http://127.0.0.1:8080';
$('#signin').addEventListener('submit', signIn);
$('#report').addEventListener('submit', report);
document.body.dataset.ready = 'true';
