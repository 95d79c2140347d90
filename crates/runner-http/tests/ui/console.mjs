// The console in headless Chromium (Debian's, driven by playwright-core), against a real server
// that crates/runner-http/tests/console.rs started. It reads what to use from the environment:
// RUNNER_URL, RUNNER_TOKEN, CHROMIUM, SCREENSHOTS (a directory), GREET_JOB and HOLD_JOB (job
// IDs), GREET_GO and HOLD_GO (files whose creation lets each job's held task end), FAIL_JOB.
// It exits non-zero on the first failed check. Every wait is for something on the page; the
// timeouts only bound a broken run.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('RUNNER_URL');
const token = env('RUNNER_TOKEN');
const shots = env('SCREENSHOTS');
mkdirSync(shots, { recursive: true });
const PATIENCE = 150_000;

function check(condition, message) {
  if (!condition) throw new Error('check failed: ' + message);
  console.log('ok: ' + message);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  // Root in a container has no user namespace for Chromium's own sandbox.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const page = await context.newPage();
page.setDefaultTimeout(PATIENCE);
const problems = [];
page.on('pageerror', (error) => problems.push('page error: ' + error.message));
page.on('console', (message) => {
  if (message.type() === 'error' && /Content Security Policy|Refused to/.test(message.text())) {
    problems.push('CSP: ' + message.text());
  }
});
const requests = [];
page.on('request', (request) => requests.push(request.url()));

const textOf = (selector) => page.locator(selector).innerText();
const statusIs = (wanted) => page.waitForFunction(
  (statuses) => statuses.includes(document.querySelector('#status')?.textContent),
  Array.isArray(wanted) ? wanted : [wanted], { timeout: PATIENCE });
const logHas = (text) => page.waitForFunction(
  (needle) => (document.querySelector('#log')?.textContent || '').includes(needle), text,
  { timeout: PATIENCE });
async function apiStatus(jobId) {
  const response = await fetch(`${base}/jobs/ACME/${jobId}/executions?size=1`,
    { headers: { Authorization: 'Bearer ' + token } });
  return (await response.json()).results[0];
}

try {
  // A bad token: a clear message, and still the sign-in form.
  await page.goto(base + '/ui');
  await page.fill('#token', 'not-a-valid-token-0123456789');
  await page.fill('#account', 'ACME');
  await page.click('#sign-in button[type=submit]');
  await page.waitForSelector('#error:not([hidden])');
  const refused = await textOf('#error');
  check(/refused this token \(401/.test(refused), 'a bad token says the server refused it: ' + refused);
  check(await page.locator('#sign-in').isVisible(), 'the sign-in form stays');
  await page.screenshot({ path: join(shots, 'bad-token.png') });

  // Sign in: the jobs with their last execution's status.
  await page.fill('#token', token);
  await page.click('#sign-in button[type=submit]');
  await page.waitForSelector('#jobs');
  check(await page.locator('#error').isHidden(), 'the error is gone once signed in');
  const jobs = await textOf('#jobs');
  check(jobs.includes('greeter') && jobs.includes('holder'), 'the jobs are listed');
  check(await page.evaluate(() => sessionStorage.getItem('runner.token')) === token,
    'the token is in session storage');
  await page.screenshot({ path: join(shots, 'jobs.png') });

  // The inventory: hosts in their groups, variables as text, no secret.
  await page.click('#inventory-link');
  await page.waitForSelector('table#inventory');
  const inventory = await textOf('table#inventory');
  check(inventory.includes('web-1') && inventory.includes('web, eu'), 'the inventory lists its hosts in their groups');
  check(inventory.includes('motd="<b>bold</b>"') && inventory.includes('ansible_port=2222'),
    'host variables show as text');
  check(await page.evaluate(() => document.querySelector('table#inventory b') === null),
    'host variables made no elements');
  check(inventory.includes('password') && !(await page.content()).includes('PASSWORD-canary'),
    'the host logs in with a password, which the page never holds');
  check(!(await textOf('main')).includes('null'), 'the inventory page shows no null');
  await page.screenshot({ path: join(shots, 'inventory.png') });
  await page.click('#home');
  await page.waitForSelector('#jobs');

  // A job that skips overlapping runs says so.
  await page.click(`tr[data-job="${env('FAIL_JOB')}"] a`);
  await page.waitForSelector('#overlap');
  check((await textOf('#overlap')).startsWith('skip'), 'the job page shows its overlap policy');
  await page.click('#home');
  await page.waitForSelector('#jobs');

  // A job: its playbook as text, then Start from the console.
  await page.click(`tr[data-job="${env('GREET_JOB')}"] a`);
  await page.waitForSelector('#playbook');
  const playbook = await page.locator('#playbook').textContent();
  check(playbook.includes('<script>'), 'the playbook text shows <script> as text');
  check(await page.evaluate(() => document.querySelectorAll('script').length) === 1,
    'no script element came from the playbook');
  await page.click('#start');
  await page.waitForSelector('#log');
  await logHas('TASK [greet]');
  await logHas('TASK [hold]');
  const running = await apiStatus(env('GREET_JOB'));
  check(running.status === 'RUNNING', 'task lines showed before the run ended');
  const log = await page.locator('#log').textContent();
  check(log.includes('<script>document.title') && log.includes('</script>'),
    'the output shows <script> as text');
  check(!log.includes('\u001b'), 'no terminal escape reached the page');
  check(await page.evaluate(() => document.querySelector('#log *') === null),
    'the output made no elements');
  check(await page.title() === 'Runner console', 'the output ran no script');
  writeFileSync(env('GREET_GO'), 'go');
  await statusIs('SUCCESS');
  await page.waitForSelector('table#host-stats');
  check((await textOf('table#host-stats')).includes('localhost'), 'the per-host summary shows');
  await logHas('PLAY RECAP');
  check(!(await textOf('#facts')).includes('null'), 'the facts show no null');
  await page.screenshot({ path: join(shots, 'execution.png'), fullPage: true });

  // Stop a running execution (with an expiry) and see STOPPED.
  await page.click('#home');
  await page.waitForSelector('#jobs');
  await page.click(`tr[data-job="${env('HOLD_JOB')}"] button.start`);
  await logHas('TASK [hold]');
  await page.fill('#expiry', '120');
  await page.click('#stop');
  await statusIs(['STOPPING', 'STOPPED']);
  writeFileSync(env('HOLD_GO'), 'go');
  await statusIs('STOPPED');
  check(!(await page.locator('#log').textContent()).includes('TASK [after]'), 'no task started after the stop');
  await page.screenshot({ path: join(shots, 'stopped.png'), fullPage: true });

  // Restart a FAILURE, and kill.
  await page.click('#home');
  await page.waitForSelector('#jobs');
  await page.click(`tr[data-job="${env('FAIL_JOB')}"] button.start`);
  await statusIs('FAILURE');
  await page.click('#restart');
  await statusIs(['PENDING', 'RUNNING']);
  await logHas('TASK [break]');
  await statusIs('FAILURE');
  const restarted = await apiStatus(env('FAIL_JOB'));
  check(restarted.timers.length === 2, 'the restart ran a second attempt');
  await page.click('#kill');
  await page.waitForSelector('#error:not([hidden])');
  check(/409/.test(await textOf('#error')), 'killing an ended execution shows the server\'s 409');

  // The token never went into a URL.
  check(requests.every((url) => !url.includes(token)), 'no request URL holds the token');
  check(!page.url().includes(token), 'the page URL does not hold the token');
  check(problems.length === 0, 'no page errors or CSP violations: ' + problems.join('; '));
  console.log('console browser test: all checks passed');
} catch (error) {
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(error.stack || String(error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
