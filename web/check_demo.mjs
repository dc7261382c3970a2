// Drive the browser demo in headless Chromium with a fake camera playing a video file, and write what the page
// segmented: a few {frame, mask (PNG data URLs), foregroundFraction} samples, as JSON, plus a screenshot of each
// effect (SCREENSHOTS/demo_<effect>.png). tests/test_browser_demo.py runs it and compares each sample with the Python
// runtime on the same frame.
//
//   node web/check_demo.mjs --url http://127.0.0.1:8000/ --video clip.y4m --user-data-dir DIR \
//        --out samples.json --screenshots DIR [--samples 3] [--timeout-ms 120000] [--chromium /usr/bin/chromium]
import {writeFileSync} from "node:fs";
import {parseArgs} from "node:util";

import {chromium} from "playwright-core";

const {values: options} = parseArgs({options: {
  url: {type: "string"}, video: {type: "string"}, "user-data-dir": {type: "string"}, out: {type: "string"},
  screenshots: {type: "string"}, samples: {type: "string", default: "3"},
  "timeout-ms": {type: "string", default: "120000"}, chromium: {type: "string", default: "/usr/bin/chromium"},
}});
for (const name of ["url", "video", "user-data-dir", "out", "screenshots"]) {
  if (!options[name]) throw new Error(`--${name} is required`);
}
const timeout = Number(options["timeout-ms"]);
const FRAMES_BETWEEN_SAMPLES = 5;
const EFFECTS = ["blur", "replace", "matte"];

const flags = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  `--use-file-for-fake-video-capture=${options.video}`,
];
const context = await chromium.launchPersistentContext(options["user-data-dir"], {
  executablePath: options.chromium, headless: true, args: flags, viewport: {width: 800, height: 600},
});
const log = [];
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => log.push(`pageerror: ${error}`));
  await page.goto(options.url);
  /** Wait until the page has segmented ``frames`` frames in all; throw the page's error if it fails. */
  const waitForFrames = async (frames) => {
    await page.waitForFunction((min) => window.portraitDemo?.error || window.portraitDemo?.frames >= min, frames,
                               {timeout});
    const error = await page.evaluate(() => window.portraitDemo.error);
    if (error) throw new Error(`the page failed: ${error}`);
  };
  const samples = [];
  let frames = 1;
  while (samples.length < Number(options.samples)) {
    await waitForFrames(frames);
    samples.push(await page.evaluate(() => window.portraitDemo.capture()));
    frames = samples.at(-1).frames + FRAMES_BETWEEN_SAMPLES;
  }
  for (const effect of EFFECTS) {
    await page.selectOption("#effect", effect);
    await waitForFrames(await page.evaluate(() => window.portraitDemo.frames) + 2);
    await page.screenshot({path: `${options.screenshots}/demo_${effect}.png`});
  }
  const browser = context.browser()?.version() ?? "unknown";
  writeFileSync(options.out, JSON.stringify({browser, samples, log}));
} catch (error) {
  console.error(`${error}\npage console:\n${log.join("\n")}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
