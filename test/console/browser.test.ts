import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { startServer, type TestServer } from "../server/helpers.js";

/**
 * The console in a real browser: Debian's chromium, driven by playwright-core (no browser is ever
 * downloaded). Login, the lists filling under real traffic, a draft run with its data and then a
 * marked error, a session expiring. The screenshots of the README are taken here: with
 * CALLSCRIPT_SCREENSHOTS=1 they are written to docs/, otherwise to a temporary folder.
 */

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "browser-test-token-0123456789";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** CI installs chromium (.ci/run); elsewhere the suite says why it did not run. */
const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`);
if (!available) console.warn(`test/console/browser.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const examples = path.join(packageRoot, "examples");
const example = (name: string) => readFileSync(path.join(examples, name), "utf8");
const payloadFiles = ["need_registration.incoming-missed.json", "need_registration.incoming-answered.json", "process_client_phone.incoming-8-format.json"];

/** A script that does not compile: the Scripts page shows where, with a code frame. */
const VIP_ROUTING = `import { defineScript } from "callscript";

export default defineScript({
  settings: { vip: ["79001234567"] },
  hooks: {
    customize_autodistribution({ call_full }, { settings }) {
      if (settings.vip.includes(call_full.channel.from.base) {
        return { responsible: "manager" };
      }
    },
  },
});
`;

/** A script with a credential among its settings: the page shows the setting, never its value. */
const CRM_LOOKUP = `import { defineScript } from "callscript";

export default defineScript({
  settings: { crmToken: "" },
  hooks: {
    process_client_phone(_input, { settings, log }) {
      if (settings.crmToken === "") log.warn("no CRM token in the configuration");
      return undefined;
    },
  },
});
`;

const shots = process.env.CALLSCRIPT_SCREENSHOTS ? path.join(packageRoot, "docs") : mkdtempSync(path.join(tmpdir(), "callscript-shots-"));

let now = Date.now();
let server: TestServer;
let base: string;
let profile: string;
let context: BrowserContext;
let page: Page;

async function hook(name: string, file: string): Promise<unknown> {
  const response = await fetch(`${base}/hooks/${name}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: example(`payloads/${file}`),
  });
  return response.json();
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, `console-${name}.png`), fullPage: true });
}

describe.skipIf(!available)("the console in chromium", () => {
  beforeAll(async () => {
    server = await startServer(
      {
        "blacklist-extensions.ts": example("blacklist-extensions.ts"),
        "client-phone-format.ts": example("client-phone-format.ts"),
        "lib/numbers.ts": example("lib/numbers.ts"),
        "vip-routing.ts": VIP_ROUTING,
        "crm-lookup.ts": CRM_LOOKUP,
        ...Object.fromEntries(payloadFiles.map((file) => [`payloads/${file}`, example(`payloads/${file}`)])),
      },
      {
        token: TOKEN,
        console: { saveCases: true },
        scripts: { "blacklist-extensions": { settings: { extensions: ["101", "102"] } }, "crm-lookup": { settings: { crmToken: "hidden-from-the-page" } } },
      },
      { consoleClock: () => now, docs: true },
    );
    await server.app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
    profile = mkdtempSync(path.join(tmpdir(), "callscript-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1180, height: 760 },
      deviceScaleFactor: 1,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterEach(async (test) => {
    if (test.task.result?.state === "fail") await page?.screenshot({ path: path.join(tmpdir(), "callscript-console-failure.png") }).catch(() => undefined);
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (!process.env.CALLSCRIPT_SCREENSHOTS) rmSync(shots, { recursive: true, force: true });
  });

  it("asks for the token once, then shows the scripts with their state; /docs opens with the same session", async () => {
    await page.goto(`${base}/console`);
    await expect.poll(() => page.url()).toContain("/console/login?next=%2Fconsole");
    await page.fill('input[name="token"]', "not-the-token-000000000");
    await page.click('button[type="submit"]');
    await page.getByText("That is not the server's token.").waitFor();
    await page.fill('input[name="token"]', TOKEN);
    await page.click('button[type="submit"]');
    await page.locator('article.script[data-script="blacklist-extensions"]').waitFor();
    await page.locator('article.script[data-script="client-phone-format"]').waitFor();
    const text = await page.locator("main").innerText();
    expect(text).toContain("need_registration");
    expect(text).not.toContain("hidden-from-the-page");
    await page.locator('article.script[data-script="crm-lookup"]').waitFor();
    expect(await page.locator('article.script[data-script="crm-lookup"]').innerText()).toContain("crmToken");
    const cookies = await context.cookies(base);
    expect(cookies.map(({ name, httpOnly, sameSite }) => ({ name, httpOnly, sameSite }))).toEqual([
      { name: "callscript_session", httpOnly: true, sameSite: "Strict" },
    ]);

    const docs = await page.request.get(`${base}/docs/json`);
    expect(docs.status()).toBe(200);
  });

  it("fills the Calls list as hook requests arrive, and opens a call with its answer and log lines", async () => {
    await page.goto(`${base}/console#/calls`);
    await page.locator("h2", { hasText: "Calls" }).waitFor();
    await page.getByText("No calls yet").waitFor();
    for (let i = 0; i < 3; i++) {
      expect(await hook("need_registration", "need_registration.incoming-missed.json")).toEqual({ state: "success", data: { result: false } });
      await hook("process_client_phone", "process_client_phone.incoming-8-format.json");
    }
    await hook("need_registration", "need_registration.incoming-answered.json");
    // Polled in: no reload.
    await expect.poll(() => page.locator("table.calls tbody tr[data-seq]").count(), { timeout: 20_000 }).toBe(7);

    await page.selectOption('select[name="hook"]', "need_registration");
    await expect.poll(() => page.locator("table.calls tbody tr[data-seq]").count(), { timeout: 20_000 }).toBe(4);
    await page.locator("table.calls tbody tr[data-seq]").last().click();
    const detail = page.locator('[aria-label="call detail"]');
    await detail.getByText("not registering: extension 102 took part").waitFor();
    expect(await detail.locator('[aria-label="answer"]').innerText()).toContain('"result": false');
    await shot("calls");
  });

  it("runs a draft in a sandbox: its data and logs, then an error marked on its line", async () => {
    await page.goto(`${base}/console#/try`);
    await page.locator("h2", { hasText: "Try" }).waitFor();
    await page.selectOption('select[name="hook"]', "need_registration");
    await page.locator('select[name="payload"] option', { hasText: "payloads/need_registration.incoming-missed.json" }).waitFor({ state: "attached" });
    await page.selectOption('select[name="payload"]', "payloads/need_registration.incoming-missed.json");
    await expect.poll(() => page.inputValue('textarea[name="input"]')).toContain("call_full");
    await page.check('input[name="mode"] >> nth=1');
    await page.fill('input[name="script"]', "blacklist-extensions");
    await page.locator('input[name="script"]').dispatchEvent("change");
    await page.locator(".cm-content").getByText("not registering").waitFor();

    const draft = example("blacklist-extensions.ts").replace("log.info(", 'log.warn("draft: " + blocked.length);\n      log.info(');
    await page.click(".cm-content");
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(draft);
    await page.click("button.primary");
    const result = page.locator('[aria-label="result"]');
    await result.getByText("draft: 1").waitFor();
    expect(await result.locator('[aria-label="answer"]').innerText()).toContain('"result": false');
    expect(await result.locator(".limits-used").first().innerText()).toMatch(/time [\d.]+ ms\s*\/ 250 ms/);

    // Line 12 now reads a property of undefined: the run fails there, and the editor marks it.
    const broken = draft.replace("const blocked = participants(call_full)", "const blocked = (undefined as any).x ?? participants(call_full)");
    await page.click(".cm-content");
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(broken);
    await page.click("button.primary");
    await result.getByText("exception").first().waitFor();
    await page.locator('.cs-error-line[data-error-line="12"]').waitFor();
    expect(await result.innerText()).toContain("blacklist-extensions.ts:12:");
    // The live script is as it was.
    expect(readFileSync(path.join(server.dir, "blacklist-extensions.ts"), "utf8")).toBe(example("blacklist-extensions.ts"));
    await shot("try");
  });

  it("shows the scripts page with counters, a latency chart, and where a script that does not compile breaks", async () => {
    await page.goto(`${base}/console#/scripts`);
    // The chart is sampled every 5 s: wait for the interval that saw both scripts' calls.
    for (const script of ["blacklist-extensions", "client-phone-format"]) {
      await page.locator(`article.script[data-script="${script}"] .sparkline svg`).waitFor({ timeout: 30_000 });
    }
    const broken = page.locator('article.script[data-script="vip-routing"]');
    expect(await broken.locator(".location").innerText()).toBe("vip-routing.ts:7:62");
    expect(await broken.locator(".frame .hit").innerText()).toContain("if (settings.vip.includes(call_full.channel.from.base) {");
    await shot("scripts");
  });

  it("a session that expires shows the login again, and nothing more is fetched", async () => {
    await page.goto(`${base}/console#/calls`);
    await page.locator("table.calls").waitFor();
    now += 61 * 60_000;
    try {
      await page.getByText("Your console session has ended").waitFor();
      await page.getByText("Log in again").click();
      await page.locator('input[name="token"]').waitFor();
      expect(page.url()).toContain("/console/login?next=");
      await page.fill('input[name="token"]', TOKEN);
      await page.click('button[type="submit"]');
      await page.locator("table.calls").waitFor();
    } finally {
      now = Date.now();
    }
  });
});
