// Checks the service's own explorer (GraphiQL at `/`) works with no internet:
// every request to another origin is aborted and recorded, and any such
// request fails the run. Then, as a person would: put a token in the Headers
// tab, run a query over HTTP and a subscription over the WebSocket, reload
// the page and check the token, the docs and the socket again.
//
//   ITSM_URL=http://127.0.0.1:8080 TOKEN=… node explorer.mjs
//
// stdout: one JSON object per line (see README.md); logs on stderr.
import { chromium } from 'playwright-core';

const API = (process.env.ITSM_URL ?? '').replace(/\/+$/, '');
const TOKEN = process.env.TOKEN;
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? '60000');
const STRICT = process.env.STRICT !== '0'; // warnings fail the run too (STRICT=0: report only)
if (!API || !TOKEN) {
  console.error('explorer: set ITSM_URL and TOKEN');
  process.exit(2);
}
const ORIGIN = new URL(API).origin;

const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const since = (start) => Math.round(performance.now() - start);
const deadline = setTimeout(() => {
  console.error(`explorer: FAILED: not done after ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);

const blocked = []; // requests beyond the service: fail the run
const failures = []; // page errors, failed requests, refused sockets: fail the run
const warnings = []; // what works but should not happen: reported (and fatal unless STRICT=0)

// GraphiQL 3's editors are CodeMirror 5 instances, reachable from their DOM
// node as `.CodeMirror`; setting a value through it fires the same change
// events as typing (so GraphiQL saves the headers, as it does for a person).
const EDITOR = {
  query: '.graphiql-query-editor .CodeMirror',
  // Variables and Headers share one pane; the one shown lacks `.hidden`.
  headers: 'section.graphiql-editor-tool[aria-label=Headers] .graphiql-editor:not(.hidden) .CodeMirror',
  result: '.graphiql-response .CodeMirror',
};
const getEditor = (page, name) => page.$eval(EDITOR[name], (node) => node.CodeMirror.getValue());
const setEditor = (page, name, text) => page.$eval(EDITOR[name], (node, text) => node.CodeMirror.setValue(text), text);

/** Runs `text` with the Execute button and waits until the result pane holds
 *  a new result for which `accept(json)` is true (checked here, in Node). */
async function execute(page, text, accept, what) {
  await setEditor(page, 'query', text);
  // GraphiQL parses the query 100 ms after an edit and picks HTTP or the
  // WebSocket from that parse: run only once it has parsed this text.
  await page.waitForFunction(
    ([selector, text]) => document.querySelector(selector).CodeMirror.documentAST?.loc?.source.body === text,
    [EDITOR.query, text],
  );
  let shown = await getEditor(page, 'result');
  await page.click('.graphiql-execute-button');
  for (;;) {
    // Wait for the result pane to change, then look at it.
    await page.waitForFunction(
      ([selector, before]) => document.querySelector(selector).CodeMirror.getValue() !== before,
      [EDITOR.result, shown],
      { timeout: TIMEOUT_MS / 2 },
    );
    shown = await getEditor(page, 'result');
    let json = null;
    try {
      json = JSON.parse(shown);
    } catch {
      continue; // not a whole result yet
    }
    if (json.errors || !json.data) {
      throw new Error(`${what}: ${JSON.stringify(json.errors ?? json)} ${failures.join('; ')}`);
    }
    if (accept(json)) return json;
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Playwright gives every launch a fresh, temporary user data directory.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const context = await browser.newContext();
  // No internet: anything not from the service itself is aborted, and noted.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === ORIGIN) return route.continue();
    blocked.push(url);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (!blocked.includes(r.url())) failures.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('console', (m) => m.type() === 'error' && warnings.push(`console error: ${m.text()}`));
  page.on('response', (r) => r.status() >= 400 && warnings.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`));
  // WebSockets are not routed: note where each goes and what its connection_init carried.
  const sockets = [];
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), init: null };
    sockets.push(socket);
    if (new URL(ws.url().replace(/^ws/, 'http')).origin !== ORIGIN) blocked.push(ws.url());
    // A refused upgrade (403 when ITSM_CORS_ORIGINS is set) shows here.
    ws.on('socketerror', (error) =>
      failures.push(`websocket ${ws.url()}: ${error}${/403/.test(error) ? ` (does ITSM_CORS_ORIGINS list ${ORIGIN}?)` : ''}`));
    ws.on('framesent', ({ payload }) => {
      const message = JSON.parse(String(payload));
      if (message.type === 'connection_init') socket.init = message.payload ?? {};
    });
  });
  /** Runs a heartbeat subscription until `beats` arrived, stops it, and tells
   *  whether its socket's connection_init carried the token. */
  async function heartbeat(beats) {
    const before = sockets.length;
    const json = await execute(
      page,
      'subscription { heartbeat(intervalSeconds: 1) { seq at } }',
      (json) => json.data.heartbeat?.seq >= beats,
      'the subscription',
    );
    await page.click('.graphiql-execute-button'); // now the Stop button
    const socket = sockets.slice(before).at(-1) ?? sockets.at(-1);
    return { data: json.data, socket: socket?.url, token: JSON.stringify(socket?.init ?? {}).includes(TOKEN) };
  }

  let start = performance.now();
  await page.goto(`${API}/`);
  await page.waitForSelector(EDITOR.query, { timeout: TIMEOUT_MS / 2 });
  await page.waitForSelector(EDITOR.result);
  emit({ step: 'explorer-rendered', ms: since(start) });

  // The Headers tab (shown by default on this explorer), as a person fills it.
  await page.click('.graphiql-editor-tools button:has-text("Headers")');
  await setEditor(page, 'headers', JSON.stringify({ Authorization: `Bearer ${TOKEN}` }, null, 2));
  // GraphiQL saves the headers (shouldPersistHeaders) a moment after an edit;
  // the explorer reads the WebSocket's connection_init payload from there.
  await page.waitForFunction((token) => (localStorage.getItem('graphiql:headers') ?? '').includes(token), TOKEN);

  start = performance.now();
  const query = await execute(page, '{ viewer { subject } }', (json) => json.data.viewer, 'the query');
  emit({ step: 'query', data: query.data, ms: since(start) });
  if (!query.data.viewer.subject) throw new Error('the query answered no subject');

  start = performance.now();
  const live = await heartbeat(2); // two beats: it streams
  emit({ step: 'subscription', ...live, ms: since(start) });
  if (!live.token) throw new Error('the WebSocket connection_init did not carry the token from the Headers tab');

  // Reload, as a person does the next day: the token must still be in the
  // Headers tab, the docs must load (introspection with it), and the socket
  // must carry it.
  start = performance.now();
  await page.reload();
  await page.waitForSelector(EDITOR.headers, { timeout: TIMEOUT_MS / 2 });
  if (!(await getEditor(page, 'headers')).includes(TOKEN)) throw new Error('the Headers tab lost the token on reload');
  await page.click('button[aria-label="Show Documentation Explorer"]');
  const docs = await page.waitForSelector('.graphiql-doc-explorer-root-type, .graphiql-doc-explorer-error', { timeout: TIMEOUT_MS / 2 });
  const docsText = (await docs.textContent()).trim();
  if ((await docs.getAttribute('class')).includes('error')) throw new Error(`the docs show: ${docsText}`);
  const again = await heartbeat(1);
  emit({ step: 'reloaded', docs: docsText, socketToken: again.token, ms: since(start) });
  if (!again.token) {
    warnings.push('after a reload the WebSocket connection_init carries no token (subscriptions run anonymously)');
  }

  emit({ step: 'offline-ok', blocked });
  if (blocked.length) throw new Error(`the explorer reached beyond ${ORIGIN}: ${blocked.join(', ')}`);
  if (failures.length) throw new Error(`the page had problems:\n  ${failures.join('\n  ')}`);
  if (warnings.length) {
    emit({ step: 'warnings', items: warnings });
    if (STRICT) throw new Error(`warnings (STRICT=0 only reports them):\n  ${warnings.join('\n  ')}`);
  }
  emit({ step: 'done' });
} catch (error) {
  console.error(`explorer: FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  clearTimeout(deadline);
}
