// The page: a picture or the camera -> faces -> six emotion scores and a heatmap each, all
// computed here from the bundle (pipeline.js); no frame leaves the device.
//
// For tests and the benchmark, window.gimefive holds what the page computed: `ready`, the
// records of every picture (`pictures`) and camera frame (`frames`; with ?record=N the first N
// frames also as lossless PNG data URLs, `frame.png`), and the camera's frames per second (`fps`).
// ?camera=1 starts the camera at once.

import {FaceTracker, Pipeline, fromImageData, toImageData} from './pipeline.js';

const params = new URLSearchParams(location.search);
const keepFrames = Number(params.get('record') || 0);
const state = window.gimefive = {ready: false, error: null, pictures: [], frames: [], fps: null,
                                 offline: null};
const $ = (id) => document.getElementById(id);
let pipeline = null;
let camera = null;  // {stream, running}

function setStatus(text) { $('status').textContent = text; }

/** A 64 x 64 heatmap in [0, 1] as a translucent jet-coloured picture. */
function heatmapImage(heatmap, size) {
  const rgba = new Uint8ClampedArray(size * size * 4);
  heatmap.forEach((v, i) => {
    const ramp = (centre) => Math.max(0, Math.min(1, 1.5 - Math.abs(4 * v - centre)));
    rgba[4 * i] = 255 * ramp(3); rgba[4 * i + 1] = 255 * ramp(2); rgba[4 * i + 2] = 255 * ramp(1);
    rgba[4 * i + 3] = 110;
  });
  const canvas = new OffscreenCanvas(size, size);
  canvas.getContext('2d').putImageData(new ImageData(rgba, size, size), 0, 0);
  return canvas;
}

/** The picture on the view canvas, each face's crop outlined and (optionally) its heatmap. */
function draw(source, faces) {
  const view = $('view'), context = view.getContext('2d');
  view.width = source.width;
  view.height = source.height;
  context.drawImage(source, 0, 0);
  const size = pipeline.spec.framing.size;
  let overlays = 0;
  for (const face of faces) {
    const [c0, c1, , c3] = face.corners;
    context.save();
    context.setTransform((c1[0] - c0[0]) / size, (c1[1] - c0[1]) / size,
                         (c3[0] - c0[0]) / size, (c3[1] - c0[1]) / size, c0[0], c0[1]);
    if ($('overlay').checked) {
      context.imageSmoothingEnabled = true;
      context.drawImage(heatmapImage(face.heatmap, size), 0, 0);
      overlays++;
    }
    context.lineWidth = 1.5;
    context.strokeStyle = '#ffd400';
    context.strokeRect(0, 0, size, size);
    context.restore();
    const label = pipeline.labels[face.best] + (face.id ? ` #${face.id}` : '');
    context.font = `${Math.max(14, Math.round(source.width / 45))}px sans-serif`;
    context.fillStyle = '#ffd400';
    context.fillText(label, Math.min(c0[0], c3[0]), Math.min(c0[1], c1[1]) - 6);
  }
  view.dataset.faces = String(faces.length);
  view.dataset.overlays = String(overlays);
}

/** One row per face: its crop, its emotion and the six scores as bars. */
function list(faces) {
  const rows = $('faces');
  rows.replaceChildren();
  faces.forEach((face, index) => {
    const row = document.createElement('li');
    const crop = document.createElement('canvas');
    crop.width = crop.height = face.crop.width;
    crop.getContext('2d').putImageData(toImageData(face.crop), 0, 0);
    const emotion = document.createElement('span');
    emotion.className = 'emotion';
    emotion.textContent = pipeline.labels[face.best];
    const bars = document.createElement('dl');
    const scores = face.smoothed ?? face.probabilities;
    pipeline.labels.forEach((label, i) => {
      const name = document.createElement('dt');
      name.textContent = label;
      const bar = document.createElement('dd');
      bar.style.setProperty('--score', scores[i].toFixed(3));
      bar.textContent = scores[i].toFixed(2);
      bars.append(name, bar);
    });
    row.append(crop, emotion, bars);
    row.dataset.face = String(index);
    rows.append(row);
  });
}

const best = (scores) => scores.indexOf(Math.max(...scores));

let shown = 0;  // the newest picture or camera session: an older one's result is dropped

async function analysePicture(file) {
  stopCamera();
  const mine = ++shown;
  setStatus(`Looking for faces in ${file.name}…`);
  let bitmap;
  try {
    // the file's own pixels, as a decoder elsewhere reads them: turned upright by its EXIF,
    // no colour-profile conversion, no premultiplied alpha
    bitmap = await createImageBitmap(file, {imageOrientation: 'from-image',
                                            colorSpaceConversion: 'none',
                                            premultiplyAlpha: 'none'});
  } catch {
    setStatus(`${file.name} is not a picture this browser can read.`);
    return;
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d');
    context.drawImage(bitmap, 0, 0);
    const picture = fromImageData(context.getImageData(0, 0, bitmap.width, bitmap.height));
    const started = performance.now();
    const faces = (await pipeline.faces(picture)).map((face) => (
      {...face, best: best(face.probabilities)}));
    const seconds = (performance.now() - started) / 1000;
    if (mine !== shown) return;
    const records = faces.length ? faces.map((face, i) => pipeline.record(file.name, i, face))
      : [pipeline.record(file.name, null, null)];
    state.pictures.push({name: file.name, records, seconds});
    draw(bitmap, faces);
    list(faces);
    setStatus(faces.length ? `${faces.length} face${faces.length > 1 ? 's' : ''} found.`
      : 'No face found in this picture.');
  } catch (error) {
    if (mine === shown) {
      setStatus(`${file.name} (${bitmap.width}x${bitmap.height}) could not be analysed in this ` +
                `browser: ${error.message}`);
    }
  } finally {
    bitmap.close();
  }
}

function stopCamera() {
  if (!camera) return;
  camera.running = false;
  camera.stream?.getTracks().forEach((track) => track.stop());
  camera = null;
  $('camera').textContent = 'Camera';
}

async function startCamera() {
  const session = camera = {stream: null, running: true};  // this loop's own: Stop ends it
  const mine = ++shown;
  $('camera').textContent = 'Stop camera';
  try {
    session.stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'user'},
                                                                audio: false});
  } catch (error) {
    if (session === camera) {
      stopCamera();
      setStatus(`No camera: ${error.message}`);
    }
    return;
  }
  if (!session.running) {  // stopped while the browser was asking
    session.stream.getTracks().forEach((track) => track.stop());
    return;
  }
  const video = $('video');
  video.srcObject = session.stream;
  await video.play();
  const tracker = new FaceTracker(pipeline.spec.video);
  const started = performance.now();
  let frames = 0;
  setStatus('Camera: looking for faces…');
  try {
    while (session.running) {
      // a task boundary per frame: the page paints and answers between frames (LiteRT's
      // awaits resolve at once, and a loop of them alone would never let the page breathe)
      await new Promise((resolve) => setTimeout(resolve, video.videoWidth ? 0 : 30));
      if (!video.videoWidth || !session.running) continue;
      const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
      const context = canvas.getContext('2d');
      context.drawImage(video, 0, 0);
      const picture = fromImageData(context.getImageData(0, 0, canvas.width, canvas.height));
      const found = await pipeline.faces(picture, {maxSide: pipeline.spec.video.max_side,
                                                   turned: false});
      if (!session.running || mine !== shown) break;
      const faces = tracker.update(found).map((face) => ({...face, best: best(face.smoothed)}));
      frames++;
      const frame = {index: frames - 1,
                     records: found.length ? found.map((f, i) => pipeline.record('camera', i, f))
                       : [pipeline.record('camera', null, null)],
                     ids: faces.map((face) => face.id)};
      if (state.frames.length < keepFrames) {
        const still = await canvas.convertToBlob({type: 'image/png'});
        frame.png = await new Promise((resolve) => {
          const reader = new FileReader();
          reader.onload = () => resolve(reader.result);
          reader.readAsDataURL(still);
        });
      }
      if (state.frames.length < Math.max(keepFrames, 1000)) state.frames.push(frame);
      state.fps = frames / ((performance.now() - started) / 1000);
      draw(canvas, faces);
      list(faces);
      setStatus(`Camera: ${faces.length} face${faces.length === 1 ? '' : 's'}, ` +
                `${state.fps.toFixed(1)} frames/s, computed on this device.`);
    }
  } catch (error) {
    setStatus(`The camera stopped: ${error.message}`);
  } finally {
    session.running = false;
    session.stream.getTracks().forEach((track) => track.stop());
    if (session === camera) stopCamera();
  }
}

async function main() {
  $('file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) analysePicture(file);
  });
  $('camera').addEventListener('click', () => (camera ? stopCamera() : startCamera()));
  // Offline after the first load; browsers run service workers on HTTPS and localhost only.
  const offline = 'serviceWorker' in navigator ? navigator.serviceWorker.register('./sw.js')
    .then(() => navigator.serviceWorker.ready).then(() => true, () => false) : Promise.resolve(false);
  setStatus('Loading the models…');
  try {
    pipeline = await Pipeline.load(new URL('bundle/', document.baseURI).href,
                                   new URL('vendor/litertjs/wasm/', document.baseURI).href);
  } catch (error) {
    state.error = String(error);
    setStatus(`The models could not be loaded: ${error.message}`);
    return;
  }
  $('file').disabled = false;
  $('camera').disabled = false;
  state.ready = true;
  setStatus('Ready: choose a picture or start the camera. Nothing leaves this device.');
  offline.then((cached) => {
    state.offline = cached;
    $('offline').textContent = cached ? 'Works offline: every file is kept on this device.'
      : 'Not kept for offline use: this page is not served over HTTPS (or from localhost).';
  });
  if (params.get('camera') === '1') startCamera();
}

main();
