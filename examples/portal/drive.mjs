// Drives the portal page in headless Chromium, as a requester would use it,
// while a staff member changes the new ticket from here: the change must reach
// the page live. The page is served from its own origin (not the API's), so
// this also proves CORS and the WebSocket origin check let it through.
//
//   ITSM_URL=http://127.0.0.1:8080 REQUESTER_TOKEN=… STAFF_TOKEN=… PAGE_PORT=8000 node drive.mjs
//
// The server must list the page's origin: --cors-origins http://127.0.0.1:$PAGE_PORT.
// stdout: one JSON object per line (see README.md); logs on stderr.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
};
const API = env('ITSM_URL').replace(/\/+$/, '');
const REQUESTER_TOKEN = env('REQUESTER_TOKEN');
const STAFF_TOKEN = env('STAFF_TOKEN');
const PAGE_PORT = Number(env('PAGE_PORT', '0'));
const TIMEOUT_MS = Number(env('TIMEOUT_MS', '60000'));
const FOREIGN_CHECK = env('FOREIGN_CHECK', '1') !== '0';
const SCREENSHOT = process.env.SCREENSHOT; // a .png path: the page at the end

const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const log = (...args) => console.error('[drive]', ...args);
const since = (start) => Math.round(performance.now() - start);

// The whole run has one deadline; nothing waits on a fixed sleep.
const deadline = setTimeout(() => {
  console.error(`drive: FAILED: not done after ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);

// ---- a tiny static server for this directory, on its own origin ----

const HERE = dirname(fileURLToPath(import.meta.url));
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

function serve(port) {
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://page');
    const name = pathname === '/' ? 'index.html' : pathname.slice(1);
    // Only the page's own files: no subdirectories, no drivers, no node_modules.
    if (!/^[\w-]+\.(html|js)$/.test(name)) return res.writeHead(404).end();
    try {
      const body = await readFile(join(HERE, name));
      res.writeHead(200, { 'Content-Type': TYPES[extname(name)], 'Cache-Control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const originOf = (server) => `http://127.0.0.1:${server.address().port}`;

// ---- the staff side: plain fetch from Node ----

async function staff(query, variables) {
  const response = await fetch(`${API}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json, application/json', Authorization: `Bearer ${STAFF_TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) {
    const [e] = body.errors;
    throw new Error(`staff request failed: ${e.extensions?.code}: ${e.message} (HTTP ${response.status})`);
  }
  return body.data;
}

// ---- waiting on the page ----
//
// `find` runs IN THE PAGE (it is sent as source text, so it can use only its
// argument): it returns what it found, or a falsy value to keep waiting.

/** The page-side waiter: resolves with {found, at} once `find` holds, or with
 *  {error} once the page shows one in #error. Uses a MutationObserver, so it
 *  notices a change as soon as the DOM has it (no polling interval). */
function waiter([source, arg]) {
  const find = new Function('arg', `return (${source})(arg)`);
  return new Promise((resolve) => {
    const check = () => {
      const error = document.querySelector('#error[data-code]');
      const found = error ? null : find(arg);
      if (error || found) {
        observer.disconnect();
        resolve(error ? { error: error.textContent } : { found, at: Date.now() });
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    check();
  });
}

/**
 * Starts waiting for `find` in the page and returns a promise of
 * {found, at: the page's clock when it first held}; fails on a page error or
 * after half the run's timeout. Start it BEFORE an action and await it after:
 * `at` minus the action's start is the latency.
 */
function waitFor(page, what, find, arg) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS / 2);
  });
  const seen = page.evaluate(waiter, [find.toString(), arg]).then((result) => {
    if (result.error) throw new Error(`${what}: the page shows ${result.error}`);
    return result;
  });
  const result = Promise.race([seen, timeout]).finally(() => clearTimeout(timer));
  result.catch(() => {}); // rejections reach whoever awaits it; none is left unhandled
  return result;
}

// Everything that goes wrong in a page, for the final verdict.
function recordProblems(page) {
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`));
  page.on('websocket', (ws) => ws.on('socketerror', (e) => problems.push(`websocket error: ${ws.url()}: ${e}`)));
  return problems;
}

// ---- the run ----

const pageServer = await serve(PAGE_PORT);
const foreignServer = FOREIGN_CHECK ? await serve(0) : null;
const ORIGIN = originOf(pageServer);
log(`page served at ${ORIGIN}; the API (${API}) must allow it: --cors-origins ${ORIGIN}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Playwright gives every launch a fresh, temporary user data directory.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = recordProblems(page);

  let start = performance.now();
  await page.goto(`${ORIGIN}/?api=${encodeURIComponent(API)}`);
  await page.waitForSelector('body[data-ready=true]');
  emit({ step: 'page-loaded', origin: ORIGIN, browser: browser.version(), ms: since(start) });

  // Sign in: paste the token, wait for the viewer's name, then for the list.
  await page.fill('#token', REQUESTER_TOKEN);
  start = performance.now();
  await page.click('#signin-button');
  const viewer = await waitFor(page, 'signing in', () => document.querySelector('#viewer').dataset.displayName);
  emit({ step: 'signed-in', viewer: viewer.found, ms: since(start) });
  const listed = await waitFor(page, 'my tickets', () =>
    document.querySelector('#tickets').dataset.loaded && { rows: document.querySelectorAll('#tickets tr').length });
  emit({ step: 'listed', tickets: listed.found.rows, ms: since(start) });
  await waitFor(page, 'the live feed', () => document.querySelector('#status').dataset.state === 'live');
  emit({ step: 'subscribed', ms: since(start) });

  // Report an incident; the mutation's answer adds the row.
  const title = `Printer on floor 3 jams (portal drive ${Date.now().toString(36)})`;
  await page.fill('#title', title);
  await page.fill('#description', 'Reported by examples/portal/drive.mjs');
  await page.selectOption('#urgency', 'HIGH');
  start = performance.now();
  const reported = waitFor(page, 'the reported incident in the list', (title) => {
    const row = [...document.querySelectorAll('#tickets tr')].find((tr) => tr.querySelector('.title').textContent === title);
    return row && { id: row.dataset.ticketId, number: row.dataset.number, status: row.dataset.status };
  }, title);
  await page.click('#report-button');
  const ticket = (await reported).found;
  emit({ step: 'reported', ...ticket, ms: since(start) });

  // Staff act from here; each change must show in the page: an event in the
  // Live panel and, for the status, the row updated in place.
  const reply = `We are looking at it (${Date.now().toString(36)})`;
  const changes = [
    {
      kind: 'COMMENT_ADDED',
      run: () => staff(
        `mutation Reply($input: AddCommentInput!) { addComment(input: $input) { comment { id } } }`,
        { input: { ticketId: ticket.id, body: reply, visibility: 'PUBLIC' } },
      ),
      seen: ({ number, reply }) =>
        [...document.querySelectorAll(`#events li[data-kind=COMMENT_ADDED][data-ticket-number="${number}"]`)]
          .some((li) => li.textContent.includes(reply)),
    },
    {
      kind: 'STATUS_CHANGED',
      run: () => staff(
        `mutation Take($input: TransitionTicketInput!) { transitionTicket(input: $input) { ticket { status } } }`,
        { input: { id: ticket.id, to: 'IN_PROGRESS' } },
      ),
      seen: ({ id, number }) =>
        document.querySelector(`#events li[data-kind=STATUS_CHANGED][data-ticket-number="${number}"]`) &&
        document.querySelector(`#tickets tr[data-ticket-id="${id}"]`)?.dataset.status === 'IN_PROGRESS',
    },
  ];
  for (const change of changes) {
    const seen = waitFor(page, `${change.kind} on ${ticket.number} in the page`, change.seen, { ...ticket, reply });
    const sent = Date.now();
    await change.run();
    const mutationMs = Date.now() - sent;
    const { at } = await seen;
    emit({ step: 'live', kind: change.kind, number: ticket.number, ms: at - sent, mutationMs });
  }
  const rowStatus = await page.getAttribute(`#tickets tr[data-ticket-id="${ticket.id}"]`, 'data-status');
  if (rowStatus !== 'IN_PROGRESS') throw new Error(`the row shows ${rowStatus}, not IN_PROGRESS`);

  // No event twice (the feed resumes from cursors, never repeats).
  const seqs = await page.locator('#events li').evaluateAll((items) => items.map((li) => li.dataset.seq));
  if (new Set(seqs).size !== seqs.length) throw new Error(`an event was shown twice: seqs ${seqs}`);
  const error = await page.textContent('#error');
  if (error) throw new Error(`the page shows an error: ${error}`);
  if (problems.length) throw new Error(`the page had problems:\n  ${problems.join('\n  ')}`);
  emit({ step: 'events', count: seqs.length });
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // The same page from an origin the server does not list: the browser must
  // refuse the API's answers (CORS) and the server the WebSocket (403).
  if (foreignServer) {
    const foreign = originOf(foreignServer);
    const other = await context.newPage(); // its errors are expected: not recorded
    await other.goto(`${foreign}/?api=${encodeURIComponent(API)}`);
    await other.fill('#token', REQUESTER_TOKEN);
    await other.click('#signin-button');
    const code = await (await other.waitForSelector('#error[data-code]')).getAttribute('data-code');
    const socket = await other.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url, 'graphql-transport-ws');
          ws.onopen = () => resolve('opened');
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        }),
      API.replace(/^http/, 'ws') + '/graphql',
    );
    emit({ step: 'foreign-origin', origin: foreign, http: code, websocket: socket });
    if (code !== 'NETWORK' || socket === 'opened') {
      throw new Error(`a page from ${foreign} was let through (is --cors-origins '*'?): http ${code}, websocket ${socket}`);
    }
  }

  emit({ step: 'done' });
} catch (error) {
  console.error(`drive: FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  pageServer.close();
  foreignServer?.close();
  clearTimeout(deadline);
}
