// The Runner console: plain JavaScript over the server's own JSON API, no build step.
//
// Rules it keeps:
// - The token lives in sessionStorage only: never in a URL (routes are in the fragment and hold
//   only IDs), never in a log line (nothing here logs).
// - Text from the server (playbooks, output, descriptions, messages) is set with textContent, never
//   parsed as HTML, so a playbook that prints <script> shows it as text.
// - The run log is followed with fetch() and a stream reader rather than EventSource, which
//   cannot send an Authorization header (the token would have to go in the URL).
'use strict';

const TOKEN_KEY = 'runner.token';
const ACCOUNT_KEY = 'runner.account';
const FINAL = ['SUCCESS', 'FAILURE', 'STOPPED', 'KILLED'];

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
let leaving = new AbortController(); // aborted when the page changes: ends its streams.

/** An element with attributes and children; strings become text nodes. */
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'onclick' || key === 'onsubmit') {
      element.addEventListener(key.slice(2), value);
    } else if (value !== false && value !== null && value !== undefined) {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }
function account() { return sessionStorage.getItem(ACCOUNT_KEY); }

/** An API error: the status, the server's message and every field it named. */
class ApiError extends Error {
  constructor(status, statusText, message, errors) {
    super(message);
    this.status = status;
    this.statusText = statusText;
    this.errors = errors || [];
  }
}

async function apiError(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  const message = body && typeof body.message === 'string' ? body.message : response.statusText;
  return new ApiError(response.status, response.statusText, message, body && body.errors);
}

/** A call of the JSON API under the signed-in token; the answer's JSON, or an ApiError. */
async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  const init = { method, headers, signal: leaving.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await apiError(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;
function jobsPath() { return '/jobs/' + enc(account()); }
function jobPath(job) { return jobsPath() + '/' + enc(job); }
function executionPath(job, execution) { return jobPath(job) + '/executions/' + enc(execution); }

function showError(error) {
  if (error && error.name === 'AbortError') return;
  errorBox.replaceChildren();
  if (error instanceof ApiError) {
    let text = error.message;
    if (error.status === 401) {
      text = 'The server refused this token (401 ' + error.statusText + '): ' + error.message +
        '. Check the token and sign in again.';
    } else if (error.status === 403) {
      text = 'This token has no access to account ' + account() + ' (403): ' + error.message;
    } else {
      text = error.status + ' ' + error.statusText + ': ' + error.message;
    }
    errorBox.append(h('p', { class: 'message' }, text));
    if (error.errors.length) {
      errorBox.append(h('ul', {}, error.errors.map((e) =>
        h('li', {}, h('code', {}, e.field || '(body)'), ': ' + e.message))));
    }
  } else {
    errorBox.append(h('p', { class: 'message' }, 'Could not reach the server: ' + String(error && error.message || error)));
  }
  errorBox.hidden = false;
}

function clearError() { errorBox.hidden = true; errorBox.replaceChildren(); }

function status(value) {
  return h('span', { class: 'status status-' + String(value || 'none').toLowerCase() }, value || '—');
}

function time(ms) {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

/** Output text made safe to show: terminal escapes (colours, cursor moves) dropped. */
function plain(text) {
  return text
    .replace(/\u001b\[[0-9;?]*[ -\/]*[@-~]/g, '')
    .replace(/\u001b[\]P^_][^\u0007\u001b]*(\u0007|\u001b\\)?/g, '')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}

function decodePlaybook(base64) {
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch (_) {
    return base64;
  }
}

// ---- pages ----

function signIn(message) {
  document.getElementById('inventory-link').hidden = true;
  document.getElementById('account-form').hidden = true;
  document.getElementById('sign-out').hidden = true;
  const tokenInput = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const accountInput = h('input', { id: 'account', autocomplete: 'off', required: true, maxlength: 32,
    value: localStorage.getItem(ACCOUNT_KEY) || '' });
  const form = h('form', { id: 'sign-in', onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    sessionStorage.setItem(ACCOUNT_KEY, accountInput.value.trim());
    try {
      // Checks the token and the account with one cheap read.
      await api('GET', jobsPath() + '?size=1');
      localStorage.setItem(ACCOUNT_KEY, account()); // the alias only, never the token
      go('#/jobs');
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError(error);
    }
  } },
  h('h1', {}, 'Sign in'),
  message ? h('p', {}, message) : null,
  h('label', {}, 'Token ', tokenInput),
  h('label', {}, 'Account ', accountInput),
  h('button', { type: 'submit' }, 'Sign in'));
  main.replaceChildren(form);
}

async function jobsPage() {
  const page = await api('GET', jobsPath() + '?size=100');
  const rows = await Promise.all(page.results.map(async (job) => {
    const last = await api('GET', jobPath(job.id) + '/executions?size=1');
    const execution = last.results[0];
    return h('tr', { class: 'job', 'data-job': job.id },
      h('td', {}, h('a', { href: '#/jobs/' + enc(job.id) }, job.description || job.id)),
      h('td', {}, execution
        ? h('a', { href: '#/jobs/' + enc(job.id) + '/executions/' + enc(execution.execution_id) }, status(execution.status))
        : status(null)),
      h('td', {}, execution ? time(execution.start) : '—'),
      h('td', {}, h('button', { type: 'button', class: 'start', onclick: () => start(job.id) }, 'Start')));
  }));
  main.replaceChildren(
    h('h1', {}, 'Jobs of ' + account()),
    page.results.length
      ? h('table', { id: 'jobs' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Last execution'), h('th', {}, 'Started'), h('th', {}, ''))),
        h('tbody', {}, rows))
      : h('p', {}, 'No jobs in this account yet: create one with `runner job create -f job.yaml`.'));
}

async function start(job) {
  try {
    clearError();
    const execution = await api('POST', jobPath(job) + '/start');
    location.hash = '#/jobs/' + enc(job) + '/executions/' + enc(execution.execution_id);
  } catch (error) {
    showError(error);
  }
}

async function jobPage(jobId) {
  const [job, executions, schedules] = await Promise.all([
    api('GET', jobPath(jobId)),
    api('GET', jobPath(jobId) + '/executions?size=50'),
    api('GET', jobPath(jobId) + '/schedules?size=100'),
  ]);
  const source = job.playbook
    ? h('pre', { id: 'playbook', class: 'code' }, decodePlaybook(job.playbook))
    : h('p', {}, 'From ', h('code', {}, (job.repository && job.repository.url) || '?'),
      job.repository && job.repository.playbook ? [' — ', h('code', {}, job.repository.playbook)] : null);
  main.replaceChildren(
    h('h1', {}, job.description || job.id),
    h('p', { class: 'ids' }, 'Job ', h('code', {}, job.id)),
    h('button', { type: 'button', id: 'start', onclick: () => start(jobId) }, 'Start'),
    h('dl', { id: 'job-facts' },
      h('dt', {}, 'Overlapping runs'), h('dd', { id: 'overlap' }, {
        allow: 'allow: runs at once', queue: 'queue: one at a time, in start order',
        skip: 'skip: a start is refused while a run has not ended' }[job.overlap] || job.overlap || 'allow'),
      h('dt', {}, 'Inventory'), h('dd', {}, job.useDynamicInventory
        ? h('a', { href: '#/inventory' }, 'the account\'s inventory, and these hosts')
        : 'these hosts only')),
    h('h2', {}, 'Hosts'),
    h('p', {}, (job.hosts || []).map((host) => host.id).join(', ') || 'none'),
    h('h2', {}, 'Playbook'),
    source,
    h('h2', {}, 'Executions'),
    executions.results.length
      ? h('table', { id: 'executions' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Execution'), h('th', {}, 'Status'), h('th', {}, 'Start'), h('th', {}, 'End'))),
        h('tbody', {}, executions.results.map((execution) => h('tr', {},
          h('td', {}, h('a', { href: '#/jobs/' + enc(jobId) + '/executions/' + enc(execution.execution_id) }, h('code', {}, execution.execution_id))),
          h('td', {}, status(execution.status)),
          h('td', {}, time(execution.start)),
          h('td', {}, time(execution.end))))))
      : h('p', {}, 'Not run yet.'),
    h('h2', {}, 'Schedules'),
    schedules.results.length
      ? h('table', { id: 'schedules' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Description'), h('th', {}, 'Trigger'), h('th', {}, 'Service account'), h('th', {}, 'Next fire'), h('th', {}, 'Last fire'), h('th', {}, 'Last skipped'))),
        h('tbody', {}, schedules.results.map((schedule) => h('tr', {},
          h('td', {}, schedule.description),
          h('td', {}, h('code', {}, schedule.trigger.type + ' ' + schedule.trigger.expression)),
          h('td', {}, schedule.serviceAccountAlias),
          h('td', {}, time(schedule.nextFireTime)),
          h('td', {}, time(schedule.lastFireTime)),
          h('td', {}, schedule.lastSkippedFire
            ? [time(schedule.lastSkippedFire.dueTime), ' (', h('a', { href: '#/jobs/' + enc(jobId) + '/executions/' + enc(schedule.lastSkippedFire.activeExecutionId) }, 'still running'), ')']
            : '—')))))
      : h('p', {}, 'No schedules.'));
}

/** A host's variables as `name=value` lines (values as JSON), for a table cell. */
function hostVars(vars) {
  const entries = Object.entries(vars || {});
  return entries.length
    ? entries.map(([name, value]) => name + '=' + JSON.stringify(value)).join('\n')
    : '—';
}

/** How a host logs in, never the secret itself (the server masks them anyway). */
function login(host) {
  if (host.sshKeyPair) return 'key pair ' + host.sshKeyPair;
  if (host.sshPrivateKey) return 'private key';
  if (host.sshPassword) return 'password';
  return '—';
}

async function inventoryPage() {
  const page = await api('GET', '/inventory/' + enc(account()) + '/hosts?size=100');
  const more = page.totalSize > page.results.length
    ? h('p', {}, 'Showing ' + page.results.length + ' of ' + page.totalSize + ' hosts (`runner host list --page` for the rest).')
    : '';
  main.replaceChildren(
    h('h1', {}, 'Inventory of ' + account()),
    h('p', {}, 'Jobs with useDynamicInventory run on these hosts, in their groups.'),
    page.results.length
      ? h('table', { id: 'inventory' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Host'), h('th', {}, 'Groups'), h('th', {}, 'Variables'), h('th', {}, 'Login'), h('th', {}, 'Updated'))),
        h('tbody', {}, page.results.map((host) => h('tr', { class: 'host', 'data-host': host.id },
          h('td', {}, h('code', {}, host.id)),
          h('td', {}, (host.groups || []).join(', ') || '—'),
          h('td', {}, h('pre', { class: 'vars' }, hostVars(host.hostVars))),
          h('td', {}, login(host)),
          h('td', {}, time(host.lastUpdatedTime))))))
      : h('p', {}, 'No hosts in this account\'s inventory yet: add one with `runner host add`.'),
    more);
}

function summary(execution) {
  const hosts = Object.entries(execution.host_stats || {});
  const counts = ['ok', 'changed', 'failed', 'skipped', 'unreachable', 'rescued', 'ignored'];
  return hosts.length
    ? h('table', { id: 'host-stats' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Host'), counts.map((name) => h('th', {}, name)))),
      h('tbody', {}, hosts.map(([host, stats]) => h('tr', {},
        h('td', {}, host), counts.map((name) => h('td', { class: 'count' }, String(stats[name] ?? 0)))))))
    : h('p', { id: 'host-stats' }, 'No recap yet: it comes when a run ends.');
}

async function executionPage(jobId, executionId) {
  const path = executionPath(jobId, executionId);
  const statusSlot = h('span', { id: 'status' });
  const facts = h('dl', { id: 'facts' });
  const summarySlot = h('div', {});
  const log = h('pre', { id: 'log', class: 'code', 'aria-live': 'polite' });
  const expiry = h('input', { id: 'expiry', type: 'number', min: 0, max: 604800, step: 1, value: 60 });

  const control = (verb, body) => async () => {
    try {
      clearError();
      show(await api('POST', path + '/' + verb, body));
      if (verb === 'restart') follow(); // a new attempt: follow it from its start
    } catch (error) {
      showError(error);
    }
  };
  const show = (execution) => {
    statusSlot.replaceChildren(status(execution.status));
    // replaceChildren would show a null as the text "null": only elements go in.
    facts.replaceChildren(...[
      h('dt', {}, 'Start'), h('dd', {}, time(execution.start)),
      h('dt', {}, 'End'), h('dd', {}, time(execution.end)),
      execution.failed_hosts.length ? [h('dt', {}, 'Failed hosts'), h('dd', {}, execution.failed_hosts.join(', '))] : [],
      execution.message ? [h('dt', {}, 'Message'), h('dd', { id: 'message' }, execution.message)] : [],
    ].flat());
    summarySlot.replaceChildren(summary(execution));
  };
  let refreshing = null;
  const refresh = () => {
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      try { show(await api('GET', path)); } catch (error) { showError(error); }
    }, 300);
  };
  const follow = async () => {
    log.textContent = '';
    try {
      await followLog(path, (text) => { log.append(plain(text)); refresh(); });
    } catch (error) {
      showError(error);
    }
    refresh();
  };

  show(await api('GET', path));
  main.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs/' + enc(jobId) }, 'Job ', h('code', {}, jobId))),
    h('h1', {}, 'Execution ', statusSlot),
    h('p', { class: 'ids' }, h('code', {}, executionId)),
    h('div', { class: 'controls' },
      h('label', {}, 'Expiry (s) ', expiry),
      h('button', { type: 'button', id: 'stop', onclick: () => control('stop', { expiryDuration: Number(expiry.value) || 0 })() }, 'Stop'),
      h('button', { type: 'button', id: 'kill', onclick: () => control('kill', { expiryDuration: Number(expiry.value) || 0 })() }, 'Kill'),
      h('button', { type: 'button', id: 'restart', onclick: control('restart') }, 'Restart')),
    facts,
    h('h2', {}, 'Hosts'),
    summarySlot,
    h('h2', {}, 'Output'),
    log);
  follow();
}

/**
 * Follows the run log's server-sent events with fetch() (for the Authorization header): each
 * `log` event's text goes to onText; returns the `end` event's data. A stream cut before its
 * end is resumed with Last-Event-ID.
 */
async function followLog(path, onText) {
  let lastId = null;
  for (let idle = 0; idle < 3;) {
    const headers = { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const response = await fetch(path + '/log', { headers, signal: leaving.signal });
    if (!response.ok) throw await apiError(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let progressed = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? '' : line.slice(colon + 1);
          if (text.startsWith(' ')) text = text.slice(1);
          if (field === 'id') lastId = text;
          else if (field === 'event') event = text;
          else if (field === 'data') data.push(text);
        }
        if (event === 'log') {
          progressed = true;
          onText(data.join('\n'));
        } else if (event === 'end') {
          return JSON.parse(data.join('\n'));
        }
      }
    }
    idle = progressed ? 0 : idle + 1;
  }
  throw new Error('the run log stream ended before the run did');
}

// ---- routing ----

/** Goes to a route: a new fragment routes through hashchange, the same one is routed again. */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  leaving.abort();
  leaving = new AbortController();
  clearError();
  if (!token() || !account()) {
    signIn();
    return;
  }
  document.getElementById('account-form').hidden = false;
  document.getElementById('sign-out').hidden = false;
  document.getElementById('inventory-link').hidden = false;
  document.getElementById('account-switch').value = account();
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  try {
    if (parts[0] === 'jobs' && parts[1] && parts[2] === 'executions' && parts[3]) {
      await executionPage(parts[1], parts[3]);
    } else if (parts[0] === 'jobs' && parts[1]) {
      await jobPage(parts[1]);
    } else if (parts[0] === 'inventory') {
      await inventoryPage();
    } else {
      await jobsPage();
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      signIn();
    }
    showError(error);
  }
}

document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ACCOUNT_KEY);
  go('#/');
});
document.getElementById('account-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(ACCOUNT_KEY, document.getElementById('account-switch').value.trim());
  localStorage.setItem(ACCOUNT_KEY, account());
  go('#/jobs');
});
window.addEventListener('hashchange', route);
route();
