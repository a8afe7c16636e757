// Two players in two browser contexts (separate cookies and storage, like two phones) open the
// demo Mini App served by `surge dev` and tap. Each must see their own balance rise through the
// live stream, without a reload, and both must appear on the live leaderboard and see their
// own places. Prints the measured click-to-balance latencies as JSON and keeps a screenshot of
// each player.
//
// Environment: DEMO_URL (the demo's address), USER_BASE (first user id; the test's own),
// CHROMIUM (default /usr/bin/chromium, Debian's), SCREENSHOTS (a directory), DEADLINE_MS (how
// long any one wait may take before the test fails; generous, so a loaded machine passes: the
// latencies are reported, not asserted).

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const url = required("DEMO_URL");
const base = Number(required("USER_BASE"));
const screenshots = required("SCREENSHOTS");
const deadline = Number(process.env.DEADLINE_MS ?? 20_000);
const TAPS_PER_ROUND = 5;
const ROUNDS = 3;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const failures = [];
const players = [];
try {
  for (const [offset, name] of ["Ada", "Bob"].entries()) {
    const context = await browser.newContext({ viewport: { width: 420, height: 1100 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => failures.push(`${name}: page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") failures.push(`${name}: console: ${message.text()}`);
    });
    const id = base + offset;
    await page.goto(`${url}/?user=${id}&name=${name}`);
    await page.waitForSelector('[data-testid=status][data-state=open]', { timeout: deadline });
    // Gone if the page reloads: every later check reads it.
    await page.evaluate(() => {
      window.loadedOnce = true;
    });
    players.push({ name, id, page, taps: 0, latencies: [] });
  }

  for (let round = 0; round < ROUNDS; round++) {
    for (const player of players) {
      const { page } = player;
      for (let i = 0; i < TAPS_PER_ROUND; i++) await page.click("[data-testid=tap]");
      const clicked = Date.now();
      player.taps += TAPS_PER_ROUND;
      // One coin per tap; the session earns nothing, so the balance is exactly the taps.
      await page.waitForFunction(
        (expected) => document.querySelector("[data-testid=balance]")?.textContent === String(expected),
        player.taps,
        { timeout: deadline, polling: "raf" },
      );
      player.latencies.push(Date.now() - clicked);
    }
  }

  // Both players on both pages' leaderboards, with their scores.
  for (const { page } of players) {
    await page.waitForFunction(
      (expected) =>
        expected.every(({ id, taps }) =>
          document
            .querySelector(`[data-testid=leaderboard] li[data-user="${id}"]`)
            ?.textContent?.endsWith(`: ${taps}`),
        ),
      players.map(({ id, taps }) => ({ id, taps })),
      { timeout: deadline },
    );
  }

  // Each sees their own place, and the two places are the two ranks (equal scores still rank
  // apart). Rank events are throttled to a couple of seconds and a place moves when the other
  // player scores, so a page may show a place that is one round old: wait until both pages
  // show the settled pair, or report the last places seen.
  const readRanks = () =>
    Promise.all(
      players.map(async ({ page }) => ((await page.textContent("[data-testid=rank]")) ?? "").split(" ")[0]),
    );
  const settleBy = Date.now() + deadline;
  let ranks = await readRanks();
  while (ranks.slice().sort().join() !== "#1,#2" && Date.now() < settleBy) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    ranks = await readRanks();
  }
  if (ranks.slice().sort().join() !== "#1,#2") failures.push(`the players' places are ${ranks}`);

  mkdirSync(screenshots, { recursive: true });
  for (const player of players) {
    if (!(await player.page.evaluate(() => window.loadedOnce === true))) {
      failures.push(`${player.name}'s page reloaded`);
    }
    const shown = await player.page.textContent("[data-testid=balance]");
    if (shown !== String(player.taps)) {
      failures.push(`${player.name} sees a balance of ${shown}, not their own ${player.taps}`);
    }
    await player.page.screenshot({ path: `${screenshots}/${player.name.toLowerCase()}.png`, fullPage: true });
  }
  const all = players.flatMap((player) => player.latencies).sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      click_to_live_balance_ms: Object.fromEntries(players.map((p) => [p.name, p.latencies])),
      median_ms: all[Math.floor(all.length / 2)],
      max_ms: all[all.length - 1],
      screenshots,
    }),
  );
} catch (error) {
  failures.push(String(error?.stack ?? error));
  for (const player of players) {
    const shown = await player.page
      .evaluate(() =>
        Object.fromEntries(
          ["status", "balance", "notice", "pending", "leaderboard", "feed"].map((id) => [
            id,
            document.getElementById(id)?.innerText,
          ]),
        ),
      )
      .catch((reason) => String(reason));
    failures.push(`${player.name} expected ${player.taps} and shows ${JSON.stringify(shown)}`);
  }
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
