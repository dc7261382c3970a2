// The browser demo: the service's .tflite files run on the camera by MediaPipe Tasks Vision's ImageSegmenter, with
// the blur / replace / matte effects drawn on a canvas. Everything (this script, the Tasks bundle and its wasm, the
// models) comes from the service itself: nothing from a CDN.
//
// MediaPipe stretches its input to the model's size, but our cards may say "letterbox" (the Python runtime pads the
// frame to the model's aspect ratio with grey 128). So each frame is letterboxed into a canvas of the model's input
// size first, which MediaPipe then takes as it is, and the mask is cropped back to the frame: the browser sees what
// portrait_sdk.runtime.Segmenter sees.
import {FilesetResolver, ImageSegmenter} from "/vendor/tasks-vision/vision_bundle.mjs";

const FOREGROUND_THRESHOLD = 0.5;  // portrait_sdk.serve.app.FOREGROUND_THRESHOLD
const LETTERBOX_GREY = "rgb(128, 128, 128)";  // portrait_sdk.preprocess.GREY
const BLUR_SIGMA = 0.5 / 24;  // of the shorter side: portrait_sdk.effects.blur_background at its default strength

const $ = (id) => document.getElementById(id);
const ui = {model: $("model"), effect: $("effect"), background: $("background"), status: $("status"),
            output: $("output"), video: $("camera")};
const canvas = (width = 1, height = 1) => Object.assign(document.createElement("canvas"), {width, height});
const layers = {frame: canvas(), input: canvas(), mask: canvas(), person: canvas(), background: null};

// What the page did last, for people (the status line) and for tests (tests/test_browser_demo.py).
const demo = window.portraitDemo = {
  ready: false, frames: 0, model: null, foregroundFraction: null, error: null,
  /** The last frame segmented and its mask (PNG data URLs; the mask's alpha is the foreground probability, at the
   * model's resolution, letterbox cropped away) with the mask's foreground fraction. */
  capture() {
    return {frame: layers.frame.toDataURL("image/png"), mask: layers.mask.toDataURL("image/png"),
            foregroundFraction: this.foregroundFraction, model: this.model, frames: this.frames};
  },
};

let segmenter = null;  // {tasks: ImageSegmenter, card, maskIndex}
let lastVideoTime = -1;

/** Set a canvas's size only when it changes (setting it clears the canvas and its state). */
function fit(layer, width, height) {
  if (layer.width !== width || layer.height !== height) Object.assign(layer, {width, height});
}

function status(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", isError);
}

/** Where the frame lands in the model's input (as _box in portrait_sdk/runtime/segmenter.py). */
function placement(frameW, frameH, card) {
  const {width: modelW, height: modelH, resize} = card.input;
  if (resize !== "letterbox") return {top: 0, left: 0, w: modelW, h: modelH};
  const scale = Math.min(modelH / frameH, modelW / frameW);
  const h = Math.min(modelH, Math.max(1, Math.round(frameH * scale)));
  const w = Math.min(modelW, Math.max(1, Math.round(frameW * scale)));
  return {top: Math.floor((modelH - h) / 2), left: Math.floor((modelW - w) / 2), w, h};
}

async function openModel(fileset, entry) {
  const {card} = entry;
  if (card.input.channels !== 3) throw new Error(`${entry.name}: 4-channel models need their previous mask as ` +
                                                 "input, which MediaPipe Tasks cannot feed");
  const tasks = await ImageSegmenter.createFromOptions(fileset, {
    baseOptions: {modelAssetPath: entry.url, delegate: "CPU"},
    runningMode: "VIDEO", outputConfidenceMasks: true, outputCategoryMask: false,
  });
  // A sigmoid model has one mask, the foreground; a softmax model one per label.
  return {tasks, card, maskIndex: card.output.kind === "sigmoid" ? 0 : card.output.foreground_channel};
}

/** Segment the video's current frame: updates layers.frame, layers.mask and the foreground fraction. */
function segmentFrame() {
  const {videoWidth: width, videoHeight: height} = ui.video;
  const {card, tasks, maskIndex} = segmenter;
  fit(layers.frame, width, height);
  layers.frame.getContext("2d").drawImage(ui.video, 0, 0, width, height);

  fit(layers.input, card.input.width, card.input.height);
  const input = layers.input.getContext("2d");
  input.fillStyle = LETTERBOX_GREY;
  input.fillRect(0, 0, card.input.width, card.input.height);
  input.imageSmoothingQuality = "high";
  const box = placement(width, height, card);
  input.drawImage(layers.frame, box.left, box.top, box.w, box.h);

  const result = tasks.segmentForVideo(layers.input, performance.now());
  try {
    const masks = result.confidenceMasks ?? [];
    if (!masks[maskIndex]) throw new Error(`the model gave ${masks.length} masks, none at index ${maskIndex}`);
    const probability = masks[maskIndex].getAsFloat32Array();
    fit(layers.mask, box.w, box.h);
    const alpha = new ImageData(box.w, box.h);
    let foreground = 0;
    for (let y = 0; y < box.h; y++) {
      for (let x = 0; x < box.w; x++) {
        const p = probability[(box.top + y) * card.input.width + box.left + x];
        const i = 4 * (y * box.w + x);
        alpha.data.fill(255, i, i + 3);
        alpha.data[i + 3] = Math.round(255 * Math.min(1, Math.max(0, p)));
        foreground += p >= FOREGROUND_THRESHOLD;
      }
    }
    layers.mask.getContext("2d").putImageData(alpha, 0, 0);
    demo.foregroundFraction = foreground / (box.w * box.h);
    demo.frames += 1;
  } finally {
    result.close();
  }
}

/** Scale ``image`` to cover width x height, centred (as portrait_sdk.effects.fit_cover). */
function drawCover(ctx, image, width, height) {
  const scale = Math.max(width / image.width, height / image.height);
  const w = image.width * scale, h = image.height * scale;
  ctx.drawImage(image, (width - w) / 2, (height - h) / 2, w, h);
}

function defaultBackground() {
  const layer = canvas(640, 480);
  const ctx = layer.getContext("2d");
  const gradient = ctx.createLinearGradient(0, 0, 640, 480);
  gradient.addColorStop(0, "#1a73e8");
  gradient.addColorStop(1, "#34a853");
  ctx.fillStyle = gradient;
  ctx.fillRect(0, 0, 640, 480);
  return layer;
}

/** The chosen effect of the last frame and mask onto the visible canvas. */
function drawEffect(effect) {
  const {width, height} = layers.frame;
  fit(ui.output, width, height);
  const ctx = ui.output.getContext("2d");
  if (effect === "none") {
    ctx.drawImage(layers.frame, 0, 0);
    return;
  }
  if (effect === "matte") {
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, width, height);
    ctx.drawImage(layers.mask, 0, 0, width, height);
    return;
  }
  fit(layers.person, width, height);
  const person = layers.person.getContext("2d");
  person.drawImage(layers.frame, 0, 0);
  person.globalCompositeOperation = "destination-in";  // keep the frame where the mask is
  person.drawImage(layers.mask, 0, 0, width, height);
  person.globalCompositeOperation = "source-over";
  if (effect === "blur") {
    ctx.drawImage(layers.frame, 0, 0);  // under the blur, whose edges fade out
    ctx.filter = `blur(${BLUR_SIGMA * Math.min(width, height)}px)`;
    ctx.drawImage(layers.frame, 0, 0);
    ctx.filter = "none";
  } else {
    drawCover(ctx, layers.background ??= defaultBackground(), width, height);
  }
  ctx.drawImage(layers.person, 0, 0);
}

function loop() {
  try {
    if (segmenter && ui.video.readyState >= 2 && ui.video.currentTime !== lastVideoTime) {
      lastVideoTime = ui.video.currentTime;
      segmentFrame();
      drawEffect(ui.effect.value);
      status(`${demo.model}: ${(100 * demo.foregroundFraction).toFixed(1)} % foreground, frame ${demo.frames}`);
    }
  } catch (error) {
    fail(error);
    return;
  }
  requestAnimationFrame(loop);
}

function fail(error) {
  demo.error = String(error?.message ?? error);
  status(demo.error, true);
  console.error(error);
}

async function main() {
  const params = new URLSearchParams(location.search);
  const listing = await (await fetch("/v1/models")).json();
  const entries = new Map(listing.models.map((entry) => [entry.name, entry]));
  if (!entries.size) throw new Error("the service has no models (start it with --models DIR)");
  for (const name of entries.keys()) ui.model.add(new Option(name, name));
  ui.model.value = params.get("model") ?? listing.default;
  ui.effect.value = params.get("effect") ?? "blur";

  status("loading MediaPipe Tasks Vision…");
  const fileset = await FilesetResolver.forVisionTasks("/vendor/tasks-vision/wasm");
  const choose = async () => {
    const entry = entries.get(ui.model.value);
    if (!entry) throw new Error(`unknown model ${ui.model.value}`);
    status(`loading ${entry.name}…`);
    const previous = segmenter;
    segmenter = null;
    previous?.tasks.close();
    segmenter = await openModel(fileset, entry);
    demo.model = entry.name;
  };
  await choose();
  ui.model.addEventListener("change", () => choose().catch(fail));
  ui.background.addEventListener("change", async () => {
    const file = ui.background.files[0];
    if (file) layers.background = await createImageBitmap(file);
  });

  status("opening the camera…");
  ui.video.srcObject = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  await ui.video.play();
  demo.ready = true;
  requestAnimationFrame(loop);
}

main().catch(fail);
