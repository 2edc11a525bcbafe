// The dashboard in a real browser (headless Debian chromium, driven by playwright-core): run by
// tests/integration/gateway/dashboard.rs, which talks to it a line at a time.
//
//   node dashboard.mjs LOGIN_URL SCREENSHOT      (TETHER_BROWSER_MODULES: the node_modules
//                                                 holding playwright-core)
//   out `ready`           logged in (the token gone from the address bar, the cookie HttpOnly
//                         and SameSite=Strict), the page shows 0 sessions
//   in  `session KEY`     the test opened a session and made a call
//   out `pids P1 P2 …`    the page shows that session, its instance and these pids in its tree
//   in  `end`             a screenshot to SCREENSHOT, then End and "Really end?" on the session
//   out `ended`           the session and every pid of it are gone from the page
//
// Anything else, or an error on the page: `error: …` on stdout and exit status 1.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const WAIT = 20_000;
const [url, screenshot] = process.argv.slice(2);
const modules = process.env.TETHER_BROWSER_MODULES;
if (!url || !screenshot || !modules) {
  console.log('error: usage: TETHER_BROWSER_MODULES=DIR node dashboard.mjs LOGIN_URL SCREENSHOT');
  process.exit(1);
}
const { chromium } = createRequire(`${modules}/`)('playwright-core');

const say = (line) => process.stdout.write(`${line}\n`);
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expectLine(prefix) {
  const { value, done } = await input.next();
  if (done) throw new Error(`stdin closed while waiting for "${prefix}"`);
  if (!value.startsWith(prefix)) throw new Error(`expected "${prefix}…", got ${JSON.stringify(value)}`);
  return value.slice(prefix.length).trim();
}

let browser;
try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox'],
    headless: true,
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  const check = () => {
    if (problems.length) throw new Error(problems.join('; '));
  };
  const counted = (n) => page.locator('#session-count').filter({ hasText: new RegExp(`^${n}$`) });

  const response = await page.goto(url);
  if (!response || response.status() !== 200) throw new Error(`the login answered ${response && response.status()}`);
  const landed = new URL(page.url());
  if (landed.search !== '' || landed.pathname !== '/') throw new Error(`the login left ${page.url()} in the address bar`);
  const cookies = await page.context().cookies();
  if (cookies.length !== 1 || !cookies[0].httpOnly || cookies[0].sameSite !== 'Strict') {
    throw new Error(`the login cookie: ${JSON.stringify(cookies.map(({ value, ...rest }) => rest))}`);
  }
  await counted(0).waitFor({ timeout: WAIT });
  check();
  say('ready');

  const key = await expectLine('session ');
  const session = page.locator(`[data-session="${key}"]`);
  await session.locator('[data-instance] [data-pid]').first().waitFor({ timeout: WAIT });
  await counted(1).waitFor({ timeout: WAIT });
  const pids = await session.locator('[data-pid]').evaluateAll((rows) => rows.map((r) => r.dataset.pid));
  check();
  say(`pids ${pids.join(' ')}`);

  await expectLine('end');
  await page.screenshot({ path: screenshot });
  const end = session.locator('button[data-end="session"]');
  await end.click();
  await end.filter({ hasText: 'Really end?' }).waitFor({ timeout: WAIT });
  await end.click();
  await session.waitFor({ state: 'detached', timeout: WAIT });
  for (const pid of pids) await page.locator(`[data-pid="${pid}"]`).waitFor({ state: 'detached', timeout: WAIT });
  await counted(0).waitFor({ timeout: WAIT });
  // The end is in the recent teardowns, with the reason the admin API gives.
  await page.locator('#teardowns tr', { hasText: 'admin API' }).first().waitFor({ timeout: WAIT });
  check();
  say('ended');
  await browser.close();
  process.exit(0); // stdin, still open, would keep node waiting
} catch (e) {
  say(`error: ${String(e && e.message ? e.message : e).split('\n')[0]}`);
  console.error(e);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
