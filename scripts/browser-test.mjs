// The web page in a real headless Chromium (Debian's), driven by playwright-core. Run by scripts/browser.sh,
// which starts `sluice serve` and passes, in the environment:
//   SLUICE_URL, CHROMIUM_BIN, PLAYWRIGHT_DIR (where playwright-core is installed), BROWSER_PROFILE (an empty
//   folder), OUTPUT (screenshots), SAMPLES (the repository's samples folder), TIMEOUT_SECS, and API_TOKEN when
//   the server wants one (then only the token prompt and an upload after it are checked).
// Prints one `ok    ...` or `FAIL  ...` line per check; exits non-zero when a check failed.
import { createRequire } from "node:module";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("SLUICE_URL");
const OUTPUT = env("OUTPUT");
const SAMPLES = env("SAMPLES");
const TOKEN = process.env.API_TOKEN || "";
const TIMEOUT = Number(process.env.TIMEOUT_SECS || 120) * 1000;
const require = createRequire(path.join(env("PLAYWRIGHT_DIR"), "package.json"));
const { chromium } = require("playwright-core");

const PHOTOS = ["forest-stream.jpg", "fig-bowl-vignette-alpha.png"];

let failed = 0;
function ok(description) {
  console.log(`ok    ${description}`);
}
function fail(description, why) {
  failed += 1;
  console.log(`FAIL  ${description}`);
  if (why) console.log(`      ${String(why).split("\n").join("\n      ")}`);
}
/** One counted check: `run` throws (or times out) when the check fails. */
async function check(description, run) {
  try {
    await run();
    ok(description);
    return true;
  } catch (error) {
    fail(description, error && error.message ? error.message : error);
    return false;
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** The whole page against an open server. */
async function everyFeature(page, pageErrors) {
  const response = await page.goto(`${BASE}/`, { waitUntil: "load" });
  await check("GET / serves the page with a strict policy", async () => {
    assert(response && response.status() === 200, `status ${response && response.status()}`);
    const headers = response.headers();
    assert(headers["content-type"].startsWith("text/html"), `content-type ${headers["content-type"]}`);
    const policy = headers["content-security-policy"] || "";
    assert(policy.includes("default-src 'self'") && !policy.includes("unsafe-inline"), `policy ${policy}`);
    assert(headers["x-content-type-options"] === "nosniff", "no nosniff");
    assert(/^"[0-9a-f]+"$/.test(headers.etag || ""), `etag ${headers.etag}`);
  });

  await check("the configured variants are offered, all chosen", async () => {
    await page.waitForSelector("#variants input[type=checkbox]");
    const boxes = await page.$$eval("#variants input[type=checkbox]", (all) =>
      all.map((box) => ({ name: box.value, checked: box.checked, labelled: Boolean(box.labels && box.labels.length) })),
    );
    const names = boxes.map((box) => box.name).sort();
    assert(names.join(",") === "large,medium,thumb", `variants ${names}`);
    assert(boxes.every((box) => box.checked && box.labelled), JSON.stringify(boxes));
  });

  await check("every form control has a label", async () => {
    const unlabelled = await page.$$eval("input, select, textarea", (all) =>
      all.filter((input) => !(input.labels && input.labels.length)).map((input) => input.id || input.name),
    );
    assert(unlabelled.length === 0, `unlabelled: ${unlabelled}`);
  });

  await check("the file picker is reachable with the keyboard", async () => {
    for (let presses = 0; presses < 10; presses++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(() => document.activeElement && document.activeElement.id === "files")) return;
    }
    throw new Error("Tab never reached the file picker");
  });

  // Two photos in one upload: progress bars to the end, then both files converted with their thumbnails.
  await page.fill("#notify", "web@example.com");
  await page.setInputFiles(
    "#files",
    PHOTOS.map((name) => path.join(SAMPLES, name)),
  );
  const first = '#uploads li.upload[data-upload="1"]';
  await check("the upload's progress bars reach the size of each file", async () => {
    await page.waitForFunction(
      (selector) => {
        const bars = document.querySelectorAll(`${selector} progress`);
        return bars.length === 2 && Array.from(bars).every((bar) => bar.max > 1 && bar.value === bar.max);
      },
      first,
      { timeout: TIMEOUT },
    );
  });
  await check("both photos are converted (live state over server-sent events)", async () => {
    await page.waitForFunction(
      (selector) => document.querySelectorAll(`${selector} .file-state [data-state="converted"]`).length === 2,
      first,
      { timeout: TIMEOUT },
    );
    const job = await page.$eval(first, (card) => card.dataset.job || "");
    assert(/^[0-9a-f-]{36}$/.test(job), `job id ${job}`);
    const state = await page.$eval(`${first} .job-state [data-state]`, (node) => node.dataset.state);
    assert(state === "completed", `job state ${state}`);
  });
  await check("both thumbnails load (natural width > 0) and every variant is linked", async () => {
    await page.waitForFunction(
      (selector) => {
        const images = document.querySelectorAll(`${selector} img.thumb`);
        return images.length === 2 && Array.from(images).every((img) => img.complete && img.naturalWidth > 0);
      },
      first,
      { timeout: TIMEOUT },
    );
    const links = await page.$$eval(`${first} .links a`, (all) => all.map((a) => a.textContent));
    assert(links.length === 6, `links ${links}`);
  });

  // The page stays usable while an upload runs: the upload request is held (not timed: released below) while
  // an earlier job is opened and the form is used; then the held upload goes through and converts.
  let releaseUpload;
  const uploadHeld = new Promise((resolve) => {
    releaseUpload = resolve;
  });
  await page.route(
    "**/v1/uploads",
    async (route) => {
      await uploadHeld;
      await route.continue();
    },
    { times: 1 },
  );
  await page.setInputFiles("#files", path.join(SAMPLES, "dragonfly-on-branch.jpg"));
  const held = '#uploads li.upload[data-upload="2"]';
  await check("while an upload runs, an earlier job opens and the form answers", async () => {
    await page.waitForSelector(`${held} .job-state [data-state="uploading"]`, { timeout: TIMEOUT });
    await page.click("#refresh");
    const firstJob = await page.$eval(first, (card) => card.dataset.job);
    await page.click(`#jobs button.job[data-job="${firstJob}"]`, { timeout: TIMEOUT });
    await page.waitForFunction(
      () => {
        const images = document.querySelectorAll("#job-detail img.thumb");
        return images.length === 2 && Array.from(images).every((img) => img.complete && img.naturalWidth > 0);
      },
      null,
      { timeout: TIMEOUT },
    );
    await page.fill("#notify", "");
    await page.uncheck("#variant-large");
    const still = await page.$eval(`${held} .job-state [data-state]`, (node) => node.dataset.state);
    assert(still === "uploading", `the held upload is ${still}`);
  });
  releaseUpload();
  await check("the held upload then converts", async () => {
    await page.waitForSelector(`${held} .file-state [data-state="converted"]`, { timeout: TIMEOUT });
  });
  await page.check("#variant-large");

  // A file sluice does not convert, alone: the upload is refused (415) and the reason shows.
  await page.setInputFiles("#files", {
    name: "notes.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("just some text, not an image\n"),
  });
  const second = '#uploads li.upload[data-upload="3"]';
  await check("a refused upload shows its reason", async () => {
    await page.waitForSelector(`${second} .job-state [data-state="refused"]`, { timeout: TIMEOUT });
    const reason = await page.$eval(`${second} > .reason`, (node) => node.textContent);
    assert(reason.includes("unsupported_media_type") && reason.includes("notes.txt"), `reason ${reason}`);
  });

  // A photo and a bad file dropped together: the photo converts, the other is rejected with its reason.
  await page.evaluate(async () => {
    const transfer = new DataTransfer();
    const drawing = await (await fetch("/assets/icon.svg")).blob();
    // A real PNG made in the page, and an SVG, which sluice does not convert.
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const paint = canvas.getContext("2d");
    const gradient = paint.createLinearGradient(0, 0, 320, 240);
    gradient.addColorStop(0, "#0f5f8c");
    gradient.addColorStop(1, "#ffbf47");
    paint.fillStyle = gradient;
    paint.fillRect(0, 0, 320, 240);
    const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    transfer.items.add(new File([png], "square.png", { type: "image/png" }));
    transfer.items.add(new File([drawing], "drawing.svg", { type: "image/svg+xml" }));
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
  });
  const third = '#uploads li.upload[data-upload="4"]';
  await check("a dropped mixed upload converts the image and shows the other file's reason", async () => {
    await page.waitForSelector(`${third} .job-state [data-state="completed"]`, { timeout: TIMEOUT });
    const states = await page.$$eval(`${third} .file-state [data-state]`, (all) => all.map((n) => n.dataset.state));
    assert(states.join(",") === "converted,rejected", `states ${states}`);
    const reason = await page.$eval(`${third} .file:nth-child(2) .reason`, (node) => node.textContent);
    assert(reason.includes("type_mismatch") && reason.includes("SVG"), `reason ${reason}`);
  });

  // Recent jobs: both accepted jobs are listed; opening one shows its results without leaving the page.
  await check("recent jobs list the accepted jobs; one opens in place", async () => {
    await page.click("#refresh");
    await page.waitForFunction(() => document.querySelectorAll("#jobs button.job").length >= 3, null, {
      timeout: TIMEOUT,
    });
    const firstJob = await page.$eval(first, (card) => card.dataset.job);
    await page.click(`#jobs button.job[data-job="${firstJob}"]`);
    await page.waitForFunction(
      () => {
        const images = document.querySelectorAll("#job-detail img.thumb");
        return images.length === 2 && Array.from(images).every((img) => img.complete && img.naturalWidth > 0);
      },
      null,
      { timeout: TIMEOUT },
    );
    const url = page.url();
    assert(url === `${BASE}/`, `the page navigated to ${url}`);
  });

  await check("no script errors and no policy violations", async () => {
    // The refused upload's 415 is logged by the browser as a failed resource; it is expected.
    const unexpected = pageErrors.filter((text) => !/status of 415/.test(text));
    assert(unexpected.length === 0, unexpected.join("\n"));
  });

  await check("screenshots at desktop and phone widths", async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(OUTPUT, "web-page.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `the phone layout scrolls sideways by ${overflow}px`);
    await page.screenshot({ path: path.join(OUTPUT, "web-page-phone.png"), fullPage: true });
  });
}

/** Against a server with an API token: the prompt, an upload after it, thumbnails through signed links. */
async function tokenPrompt(page, pageErrors) {
  await page.goto(`${BASE}/`, { waitUntil: "load" });
  await check("the page asks for the token when the API answers 401", async () => {
    await page.waitForSelector("#token-box:not([hidden])", { timeout: TIMEOUT });
  });
  await page.fill("#token", TOKEN);
  await page.click("#token-form button[type=submit]");
  await page.setInputFiles("#files", path.join(SAMPLES, PHOTOS[0]));
  const card = '#uploads li.upload[data-upload="1"]';
  await check("with the token given, an upload converts and its thumbnail loads via a signed link", async () => {
    await page.waitForSelector(`${card} .job-state [data-state="completed"]`, { timeout: TIMEOUT });
    await page.waitForFunction(
      (selector) => {
        const image = document.querySelector(`${selector} img.thumb`);
        return image && image.complete && image.naturalWidth > 0;
      },
      card,
      { timeout: TIMEOUT },
    );
    const source = await page.$eval(`${card} img.thumb`, (image) => image.src);
    assert(/[?&]sig=[0-9a-f]+/.test(source) && /[?&]expires=\d+/.test(source), `thumbnail ${source}`);
  });
  await check("the token is kept for the tab only, and no other errors", async () => {
    const kept = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
    assert(kept[0] === 1 && kept[1] === 0, `sessionStorage ${kept[0]}, localStorage ${kept[1]}`);
    // The first, tokenless calls are logged by the browser as failed resources; they are expected.
    const unexpected = pageErrors.filter((text) => !/status of 401/.test(text));
    assert(unexpected.length === 0, unexpected.join("\n"));
  });
}

const context = await chromium.launchPersistentContext(env("BROWSER_PROFILE"), {
  executablePath: env("CHROMIUM_BIN"),
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
  timeout: 60_000,
});
context.setDefaultTimeout(TIMEOUT);

try {
  const page = context.pages()[0] || (await context.newPage());
  // Script errors and Content-Security-Policy violations (reported on the console) fail the run.
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(`page error: ${error.message}`));
  page.on("console", (entry) => {
    if (entry.type() === "error") pageErrors.push(`console: ${entry.text()}`);
  });

  if (TOKEN) await tokenPrompt(page, pageErrors);
  else await everyFeature(page, pageErrors);
} catch (error) {
  fail("the browser test ran to the end", error && error.stack ? error.stack : error);
} finally {
  await context.close();
}
process.exit(failed > 0 ? 1 : 0);
