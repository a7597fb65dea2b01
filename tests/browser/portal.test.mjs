// The member portal in real headless Chromium (Debian's), driven by playwright-core, against
// a real trust seeded by tests/end_to_end/portal.rs, which runs this script and passes:
//   PORTAL_URL   the trust's HTTP address
//   KEY_FILE     the member's key file
//   EXPECTED     JSON: { releases, uses, shares: [minor units...], earned, purpose_to_switch }
//   SCREENSHOTS  where to keep a screenshot of each page
//   CHROMIUM     the browser executable
// Any request that leaves the trust is blocked and fails the test. Exit status 0 means every
// check passed; failures are printed one per line.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

const url = process.env.PORTAL_URL;
const expected = JSON.parse(process.env.EXPECTED);
const screenshots = process.env.SCREENSHOTS;
mkdirSync(screenshots, { recursive: true });
const failures = [];
const check = (condition, message) => {
  if (!condition) failures.push(message);
  else console.log(`ok - ${message}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
const outside = [];
await context.route("**/*", (route) => {
  if (new URL(route.request().url()).origin !== new URL(url).origin) {
    outside.push(route.request().url());
    return route.abort();
  }
  return route.continue();
});
const page = await context.newPage();
// Generous: CI runs this beside the rest of the suite on two cores, in a debug build.
page.setDefaultTimeout(120_000);
const consoleErrors = [];
page.on("pageerror", (error) => consoleErrors.push(String(error)));
const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
// Every page is checked with axe-core (WCAG 2.1 A and AA rules) as its screenshot is taken;
// serious and critical findings fail the test.
const audit = async (target, name) => {
  await target.evaluate(axeSource);
  const result = await target.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
  const serious = result.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  check(result.passes.length > 0, `${name}: axe ran ${result.passes.length} passing rules`);
  check(serious.length === 0, `${name}: no serious accessibility findings${serious.length ? ": " +
    serious.map((violation) => `${violation.id} (${violation.nodes.map((node) => node.target.join(" ")).join(", ")})`).join("; ") : ""}`);
};
const shot = async (name) => {
  await audit(page, name);
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
};
const heading = (text) => page.getByRole("heading", { level: 1, name: text }).waitFor();

try {
  // The public page, without signing in.
  await page.goto(`${url}/transparency`);
  await heading("Public report");
  const licenses = await page.locator("#licenses-table tbody tr").count();
  check(licenses >= 1, `the public report lists licenses (${licenses})`);
  check(await page.getByText("Acme Automation").count() > 0, "the public report names the licensee");
  await page.locator("[data-verified]").last().waitFor();
  check(await page.locator("[data-verified=yes]").count() === 1, "the public checkpoint verifies against the pinned key");
  check((await page.locator("[data-testid=pinned-log-vkey]").textContent()).includes("log: "), "the pinned keys are shown");
  check(!(await page.locator("#nav").isVisible()), "no member navigation before signing in");
  await shot("public");

  // Sign in with the key file.
  await page.goto(url);
  await heading("Sign in");
  await shot("sign-in");
  await page.locator("#key-file").setInputFiles(process.env.KEY_FILE);
  await heading("My data");
  check(await page.locator("svg.chart rect").count() > 0, "the data chart has bars");
  const rows = await page.locator("#data-table tbody tr").count();
  check(rows > 0, `the data table has rows (${rows})`);
  await shot("my-data");

  // Export: the download holds every record.
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export").click()]);
  const exported = (await readFile(await download.path(), "utf8")).trim().split("\n");
  check(exported.length === expected.records, `the export holds ${expected.records} records (${exported.length})`);
  check(download.suggestedFilename().endsWith(".jsonl"), "the export is a JSON Lines file");

  // Consent: switch one on, see it recorded, and still on after coming back.
  await page.goto(`${url}/#consent`);
  await heading("My consent");
  const toggle = page.locator(`#consent-${expected.purpose_to_switch}`);
  check(!(await toggle.isChecked()), "the purpose starts switched off");
  await toggle.check();
  await page.locator("#consent-status").filter({ hasText: "Switched on" }).waitFor();
  check((await page.locator("#consent-status").textContent()).includes("public log"), "the change says it is logged");
  await page.goto(`${url}/#data`);
  await heading("My data");
  await page.goto(`${url}/#consent`);
  await heading("My consent");
  check(await page.locator(`#consent-${expected.purpose_to_switch}`).isChecked(), "the switch is still on when the page comes back");
  await shot("consent");

  // Where my data went: every release verified in the browser.
  await page.goto(`${url}/#uses`);
  await heading("Where my data went");
  await page.locator("[data-testid=release] [data-verified]").first().waitFor();
  const releases = await page.locator("[data-testid=release]").count();
  check(releases === expected.releases, `the timeline shows ${expected.releases} releases (${releases})`);
  check(await page.locator("[data-testid=release] [data-verified=yes]").count() === expected.releases, "every release is verified");
  check(await page.locator("[data-testid=use]").count() === expected.uses, `the timeline shows ${expected.uses} training uses`);
  await shot("where-my-data-went");

  // Earnings: the same shares as the statement, each verified.
  await page.goto(`${url}/#earnings`);
  await heading("My earnings");
  await page.locator("[data-testid=share] [data-verified]").first().waitFor();
  const amounts = await page.locator("[data-testid=share]").evaluateAll((rows) => rows.map((row) => Number(row.dataset.amount)));
  check(JSON.stringify([...amounts].sort((a, b) => a - b)) === JSON.stringify([...expected.shares].sort((a, b) => a - b)),
    `the shares match the statement (${amounts} vs ${expected.shares})`);
  check(await page.locator("[data-testid=share] [data-verified=yes]").count() === expected.shares.length, "every share is verified");
  const earned = await page.locator("[data-testid=earned]").first().textContent();
  check(earned.replace(/[^0-9]/g, "") === String(expected.earned), `the earned total is ${expected.earned} minor units (${earned})`);
  await shot("earnings");

  // The agreement: read it, and vote on the open proposal.
  await page.goto(`${url}/#agreement`);
  await heading("The agreement");
  check(await page.getByText("In force:").count() > 0, "the agreement in force is shown");
  check((await page.locator("#changes").textContent()).includes("How long your data may be kept (days): 730 \u2192 365"),
    "the proposal's changes are said in words");
  check((await page.locator("[data-testid=vote-deadline]").textContent()).includes("The vote closes on"),
    "the vote's deadline is shown");
  await page.getByRole("button", { name: "Vote yes" }).click();
  await page.locator("#ballot-status").filter({ hasText: "Your vote: yes" }).waitFor();
  check(true, "a ballot was cast from the page");
  await shot("agreement");

  // A phone-sized screen.
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto(`${url}/#earnings`);
  await heading("My earnings");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `nothing overflows a phone-sized screen (${overflow}px)`);
  await shot("earnings-phone");
  await page.setViewportSize({ width: 1100, height: 900 });

  // Keyboard: the skip link comes first in tab order, and takes the focus to the content.
  check(await page.evaluate(() =>
    document.querySelector("a[href], button:not([hidden]), input, [tabindex]:not([tabindex='-1'])")?.className === "skip"),
  "the skip link is the first stop for the keyboard");
  await page.locator("a.skip").focus();
  await page.keyboard.press("Enter");
  check(await page.evaluate(() => document.activeElement?.id === "main"), "the skip link moves the focus to the content");
  await page.getByRole("link", { name: "My consent" }).focus();
  await page.keyboard.press("Enter");
  await heading("My consent");
  check(true, "the sections are reachable with the keyboard");

  // A test double serves tampered proofs: the page must say so, never "verified".
  await page.route("**/api/MemberDataService/GetMyAudit", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    for (const entry of body.entries) {
      if (entry.proof.length) entry.proof[0][0] ^= 1;
      else entry.my_records += 1;
    }
    await route.fulfill({ response, json: body });
  });
  await page.route("**/api/LedgerService/GetMyStatement", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    for (const line of body.lines) line.my_amount += 1;
    await route.fulfill({ response, json: body });
  });
  await page.goto(`${url}/#uses`);
  await heading("Where my data went");
  await page.locator("[data-testid=release] [data-verified]").first().waitFor();
  check(await page.locator("[data-testid=release] [data-verified=yes]").count() === 0, "no tampered release is shown as verified");
  check(await page.locator("[data-testid=release] [data-verified=no]").count() === expected.releases, "every tampered release is shown as failed");
  await shot("where-my-data-went-tampered");
  await page.goto(`${url}/#earnings`);
  await heading("My earnings");
  await page.locator("[data-testid=share] [data-verified]").first().waitFor();
  check(await page.locator("[data-testid=share] [data-verified=yes]").count() === 0, "no tampered share is shown as verified");
  check(await page.locator("[data-testid=share] [data-verified=no]").count() === expected.shares.length, "every tampered share is shown as failed");
  await shot("earnings-tampered");

  // A new member: a key made in this browser (never leaves it), an invitation code, then
  // erasure of everything, confirmed in words.
  const newcomer = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await newcomer.route("**/*", (route) => {
    if (new URL(route.request().url()).origin !== new URL(url).origin) {
      outside.push(route.request().url());
      return route.abort();
    }
    return route.continue();
  });
  const fresh = await newcomer.newPage();
  fresh.setDefaultTimeout(120_000);
  fresh.on("pageerror", (error) => consoleErrors.push(String(error)));
  await fresh.goto(url);
  await fresh.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  await fresh.getByRole("button", { name: "Make a new key on this device" }).click();
  await fresh.locator("#invitation-code").waitFor();
  const extractable = await fresh.evaluate(async () => {
    const db = await new Promise((resolve) => { const open = indexedDB.open("datatrust", 1); open.onsuccess = () => resolve(open.result); });
    const record = await new Promise((resolve) => { const get = db.transaction("keys").objectStore("keys").get("member"); get.onsuccess = () => resolve(get.result); });
    return record.privateKey.extractable;
  });
  check(extractable === false, "the key made in the browser cannot be extracted");
  check((await fresh.getByText("lives only in this browser").count()) === 1, "the portal warns that a browser-made key lives only there");
  const [saved] = await Promise.all([fresh.waitForEvent("download"), fresh.locator("#save-key").click()]);
  const keyFile = await new Promise((resolve, reject) => {
    saved.createReadStream().then((stream) => {
      let text = "";
      stream.on("data", (chunk) => { text += chunk; });
      stream.on("end", () => resolve(text));
      stream.on("error", reject);
    }, reject);
  });
  check(keyFile.startsWith("PRIVATE+KEY+datatrust+"), "the member can save a copy of the key she made, as a key file");
  await fresh.locator("#invitation-code").fill(expected.invitation_code);
  await fresh.screenshot({ path: join(screenshots, "join-with-invitation.png"), fullPage: true });
  await fresh.getByRole("button", { name: "Join the trust" }).click();
  await fresh.getByRole("heading", { level: 1, name: "My data" }).waitFor();
  check(true, "a new member joins with a browser-made key and an invitation code");
  await fresh.locator("#erase-confirm").fill("erase all");
  await fresh.getByRole("button", { name: "Erase all my data" }).click();
  await fresh.getByText("Type the words exactly").waitFor();
  check(true, "erasure needs the exact words");
  await fresh.locator("#erase-confirm").fill("erase all my data");
  await fresh.getByRole("button", { name: "Erase all my data" }).click();
  await fresh.locator("#banner").filter({ hasText: "is erased" }).waitFor();
  check((await fresh.locator("#banner").textContent()).includes("public log"), "erasure says where it is logged");
  await fresh.screenshot({ path: join(screenshots, "erased.png"), fullPage: true });
  await newcomer.close();
} catch (error) {
  failures.push(`the walk-through stopped: ${error.stack || error}`);
  await page.screenshot({ path: join(screenshots, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

check(outside.length === 0, `no request left the trust (${outside.join(", ")})`);
check(consoleErrors.length === 0, `no script errors (${consoleErrors.join("; ")})`);
for (const failure of failures) console.log(`FAILED - ${failure}`);
process.exit(failures.length ? 1 : 0);
