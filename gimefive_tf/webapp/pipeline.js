// The on-device face pipeline in the browser: gimefive_tf/ondevice/pipeline.py (and the library
// functions it calls) step for step, reading only the bundle: pipeline.json, the face detector and
// the emotion model, both run by LiteRT.js. Every number comes from pipeline.json.
//
// A picture is {width, height, data}: RGB bytes, row by row (`fromImageData` makes one from a
// canvas). Coordinates are picture pixels; a box is {x, y, w, h, score, landmarks, angle}.

import {Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

// ------------------------------------------------------------------------------ numbers

/** x rounded half to even, as numpy and Python round. */
export function rint(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const f32 = Math.fround;
const clipByte = (v) => Math.min(255, Math.max(0, rint(v)));

// ------------------------------------------------------------------------------ pictures

/** A canvas's ImageData as an RGB picture. */
export function fromImageData(imageData) {
  const {width, height, data} = imageData;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    rgb[j] = data[i]; rgb[j + 1] = data[i + 1]; rgb[j + 2] = data[i + 2];
  }
  return {width, height, data: rgb};
}

/** An RGB picture as ImageData (to draw a crop). */
export function toImageData(picture) {
  const rgba = new Uint8ClampedArray(picture.width * picture.height * 4);
  for (let i = 0, j = 0; j < picture.data.length; i += 4, j += 3) {
    rgba[i] = picture.data[j]; rgba[i + 1] = picture.data[j + 1];
    rgba[i + 2] = picture.data[j + 2]; rgba[i + 3] = 255;
  }
  return new ImageData(rgba, picture.width, picture.height);
}

// Per output pixel, the source pixels and weights along one axis: exact area averaging when
// shrinking (`cell` source pixels per output pixel), bilinear with pixel centres at +0.5 when
// enlarging (OpenCV's INTER_AREA and INTER_LINEAR rules).
function axisTaps(length, size, cell) {
  const taps = [];
  if (size < length) {
    cell = cell ?? length / size;
    for (let i = 0; i < size; i++) {
      const a = Math.min(i * cell, length), b = Math.min((i + 1) * cell, length);
      const list = [];
      for (let k = Math.floor(a); k < Math.min(Math.ceil(b), length); k++) {
        const overlap = Math.min(k + 1, b) - Math.max(k, a);
        if (overlap > 0) list.push([k, overlap / (b - a)]);
      }
      taps.push(list);
    }
  } else if (size > length) {
    for (let i = 0; i < size; i++) {
      const centre = Math.min(Math.max((i + 0.5) * (length / size) - 0.5, 0), length - 1);
      const low = Math.floor(centre), high = Math.min(low + 1, length - 1), w = centre - low;
      taps.push([[low, 1 - w], [high, w]]);
    }
  } else {
    for (let i = 0; i < size; i++) taps.push([[i, 1]]);
  }
  return taps;
}

/** The picture resized (rows first, then columns; each result rounded once). */
export function resized(picture, width, height, cell) {
  if (width === picture.width && height === picture.height) return picture;
  const w = picture.width, src = picture.data;
  const rows = axisTaps(picture.height, height, cell), columns = axisTaps(w, width, cell);
  const tall = new Float64Array(height * w * 3);
  for (let y = 0; y < height; y++) {
    for (const [k, weight] of rows[y]) {
      const from = k * w * 3, to = y * w * 3;
      for (let i = 0; i < w * 3; i++) tall[to + i] += weight * src[from + i];
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (const [k, weight] of columns[x]) {
        const at = (y * w + k) * 3;
        r += weight * tall[at]; g += weight * tall[at + 1]; b += weight * tall[at + 2];
      }
      const to = (y * width + x) * 3;
      out[to] = clipByte(r); out[to + 1] = clipByte(g); out[to + 2] = clipByte(b);
    }
  }
  return {width, height, data: out};
}

/** numpy.rot90: the picture turned counter-clockwise by `turns` quarter turns. */
export function rot90(picture, turns) {
  const {width: w, height: h, data} = picture;
  const sideways = turns % 2 === 1;
  const width = sideways ? h : w, height = sideways ? w : h;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      let y, x;
      if (turns === 1) [y, x] = [j, w - 1 - i];
      else if (turns === 2) [y, x] = [h - 1 - i, w - 1 - j];
      else [y, x] = [h - 1 - j, i];
      const from = (y * w + x) * 3, to = (i * width + j) * 3;
      out[to] = data[from]; out[to + 1] = data[from + 1]; out[to + 2] = data[from + 2];
    }
  }
  return {width, height, data: out};
}

/** The width x height part of the picture at (x0, y0), black beyond its right and bottom. */
function cut(picture, x0, y0, width, height) {
  const out = new Uint8Array(width * height * 3);
  const rows = Math.min(height, picture.height - y0), columns = Math.min(width, picture.width - x0);
  for (let y = 0; y < rows; y++) {
    const from = ((y0 + y) * picture.width + x0) * 3;
    out.set(picture.data.subarray(from, from + columns * 3), y * width * 3);
  }
  return {width, height, data: out};
}

// ------------------------------------------------------------------------------ boxes

const area = (box) => box.w * box.h;

function intersection(a, b) {
  const x0 = Math.max(a.x, b.x), y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w), y1 = Math.min(a.y + a.h, b.y + b.h);
  return Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
}

export function iou(a, b) {
  const shared = intersection(a, b), union = area(a) + area(b) - shared;
  return union ? shared / union : 0;
}

/** The box from a view scaled by `factor` back in the picture. */
function moved(box, factor) {
  return {...box, x: rint(box.x * factor), y: rint(box.y * factor), w: rint(box.w * factor),
          h: rint(box.h * factor),
          landmarks: box.landmarks && box.landmarks.map(([x, y]) => [x * factor, y * factor])};
}

/** The part of the box inside a picture of (height, width) times factor. */
function visiblePart(box, height, width, factor) {
  const insideW = Math.min(width * factor, box.x + box.w) - Math.max(0, box.x);
  const insideH = Math.min(height * factor, box.y + box.h) - Math.max(0, box.y);
  return area(box) ? Math.max(0, insideW) * Math.max(0, insideH) / area(box) : 0;
}

/** A box found in rot90(picture, turns) in the picture's own pixels, with its angle. */
function unturned(box, turns, height, width) {
  const back = ([x, y]) => turns === 1 ? [width - y, x]
    : turns === 2 ? [width - x, height - y] : [y, height - x];
  const corners = [back([box.x, box.y]), back([box.x + box.w, box.y + box.h])];
  const x0 = Math.min(corners[0][0], corners[1][0]), x1 = Math.max(corners[0][0], corners[1][0]);
  const y0 = Math.min(corners[0][1], corners[1][1]), y1 = Math.max(corners[0][1], corners[1][1]);
  let angle = (((box.angle - 90 * turns + 180) % 360) + 360) % 360 - 180;
  if (angle === -180) angle = 180;
  return {x: rint(x0), y: rint(y0), w: rint(x1 - x0), h: rint(y1 - y0), score: box.score,
          landmarks: box.landmarks && box.landmarks.map(back), angle};
}

/** The boxes without any that a surer one already is (faces.duplicates). */
function suppressDuplicates(boxes, {min_iou: minIou, min_cover: minCover}) {
  const kept = [];
  for (const box of [...boxes].sort((a, b) => b.score - a.score)) {
    if (!kept.some((other) => iou(box, other) > minIou ||
        intersection(box, other) > minCover * Math.min(area(box), area(other)))) kept.push(box);
  }
  return boxes.filter((box) => kept.includes(box));
}

// ------------------------------------------------------------------------------ detector

/** BlazeFace's anchor centres in fractions of its input (detector.anchors). */
export function anchorCenters(size, strides, perStride) {
  const centres = [];
  for (const stride of [...new Set(strides)].sort((a, b) => a - b)) {
    const repeats = perStride * strides.filter((s) => s === stride).length;
    const cells = Math.floor(size / stride);
    for (let row = 0; row < cells; row++) {
      for (let column = 0; column < cells; column++) {
        for (let r = 0; r < repeats; r++) {
          centres.push([f32((column + 0.5) / cells), f32((row + 0.5) / cells)]);
        }
      }
    }
  }
  return centres;
}

/** The views of the pyramid: [x0, y0, side] (detector.pyramid). */
export function pyramidTiles(width, height, levels, minTile) {
  const side = Math.max(width, height);
  const tiles = [[0, 0, side]];
  let tile = Math.floor(side / 2);
  for (let level = 1; level < levels && tile >= minTile; level++) {
    const stride = Math.floor(tile / 2);
    for (let y = 0; y < Math.max(1, height - tile + stride); y += stride) {
      for (let x = 0; x < Math.max(1, width - tile + stride); x += stride) tiles.push([x, y, tile]);
    }
    tile = Math.floor(tile / 2);
  }
  return tiles;
}

/** MediaPipe's weighted suppression over all views' detections (detector.blend). */
function blend(found, {min_iou: minIou, min_score: minBlend, min_cover: minCover}) {
  found = [...found].sort((a, b) => b.score - a.score);
  const areas = found.map(({box}) => (box[2] - box[0]) * (box[3] - box[1]));
  const remaining = found.map(() => true);
  const clusters = [];
  for (let top = 0; top < found.length; top++) {
    if (!remaining[top]) continue;
    const members = [], lowest = Math.min(found[top].score, minBlend);
    const [a0, b0, a1, b1] = found[top].box;
    found.forEach(({box, score}, j) => {
      const shared = Math.max(0, Math.min(a1, box[2]) - Math.max(a0, box[0])) *
        Math.max(0, Math.min(b1, box[3]) - Math.max(b0, box[1]));
      const overlap = shared / (areas[top] + areas[j] - shared + 1e-9);
      const member = remaining[j] && overlap > minIou;
      if (member && score >= lowest) members.push(j);
      if (member || shared / Math.min(areas[top], areas[j]) > minCover) remaining[j] = false;
    });
    const total = members.reduce((sum, j) => sum + found[j].score, 0);
    const box = [0, 0, 0, 0], points = found[top].points.map(() => [0, 0]);
    for (const j of members) {
      const weight = found[j].score / total;
      found[j].box.forEach((v, i) => { box[i] += weight * v; });
      found[j].points.forEach(([x, y], i) => { points[i][0] += weight * x; points[i][1] += weight * y; });
    }
    clusters.push({box, points, score: found[top].score});
  }
  return clusters;
}

async function loadModel(url) {
  return loadAndCompile(url, {accelerator: 'wasm'});
}

/** The model's outputs for one input tensor, which is freed whatever happens. */
async function run(model, tensor) {
  try {
    return await model.run(tensor);
  } finally {
    tensor.delete();
  }
}

/** BlazeFace over the pyramid of views pipeline.json describes (its `detector`). */
export class FaceDetector {
  static async load(base, spec) {
    return new FaceDetector(spec.detector, await loadModel(base + spec.detector.file));
  }

  constructor(rules, model) {
    this.rules = rules;
    this.model = model;
    this.size = rules.input_size;
    this.anchors = anchorCenters(this.size, rules.anchors.strides, rules.anchors.per_stride);
    // the regressors and the scores, told apart by their last dimension
    const details = model.getOutputDetails();
    this.boxOutput = details.findIndex((d) => d.shape[d.shape.length - 1] > 1);
    this.scoreOutput = 1 - this.boxOutput;
  }

  /** One square view's detections scored above minScore, in fractions of the view. */
  async view(view, minScore) {
    const pixels = resized(view, this.size, this.size);
    const {scale, offset} = this.rules.normalization;
    const input = new Float32Array(pixels.data.length);
    for (let i = 0; i < input.length; i++) input[i] = pixels.data[i] * scale + offset;
    const outputs = await run(this.model, new Tensor(input, [1, this.size, this.size, 3]));
    const raw = outputs[this.boxOutput].toTypedArray();
    const logits = outputs[this.scoreOutput].toTypedArray();
    outputs.forEach((t) => t.delete());
    const clip = this.rules.logit_clip, keypoints = this.rules.keypoints.length;
    const width = 4 + 2 * keypoints, found = [];
    for (let i = 0; i < logits.length; i++) {
      const score = f32(1 / (1 + Math.exp(-Math.min(clip, Math.max(-clip, logits[i])))));
      if (!(score > minScore)) continue;
      const [ax, ay] = this.anchors[i], at = i * width;
      const cx = f32(f32(raw[at] / this.size) + ax), cy = f32(f32(raw[at + 1] / this.size) + ay);
      const w = f32(raw[at + 2] / this.size), h = f32(raw[at + 3] / this.size);
      const points = [];
      for (let k = 0; k < keypoints; k++) {
        points.push([f32(f32(raw[at + 4 + 2 * k] / this.size) + ax),
                     f32(f32(raw[at + 5 + 2 * k] / this.size) + ay)]);
      }
      found.push({box: [f32(cx - f32(w / 2)), f32(cy - f32(h / 2)), f32(cx + f32(w / 2)),
                        f32(cy + f32(h / 2))], points, score});
    }
    return found;
  }

  /** The faces (boxes) of an RGB picture, surest first. */
  async faces(picture, minScore) {
    minScore = minScore ?? this.rules.min_score;
    const {levels, min_tile: minTile} = this.rules.pyramid;
    const found = [];
    for (const [x0, y0, side] of pyramidTiles(picture.width, picture.height, levels, minTile)) {
      for (const detection of await this.view(cut(picture, x0, y0, side, side), minScore)) {
        detection.box = detection.box.map((v, i) => f32(v * side) + (i % 2 ? y0 : x0));
        detection.points = detection.points.map(([x, y]) => [f32(x * side) + x0, f32(y * side) + y0]);
        found.push(detection);
      }
    }
    const kept = this.rules.keypoints_kept;
    return blend(found, this.rules.blend).map(({box: [x0, y0, x1, y1], points, score}) => ({
      x: rint(x0), y: rint(y0), w: rint(x1 - x0), h: rint(y1 - y0), score,
      landmarks: points.slice(0, kept).map(([x, y]) => [rint(x * 10) / 10, rint(y * 10) / 10]),
      angle: 0,
    }));
  }
}

/** Every face of an RGB picture, largest first (pipeline.json's `picture` and `faces`). */
export async function findFaces(detector, picture, spec, maxSide, turned = true) {
  const rules = spec.faces;
  maxSide = maxSide ?? spec.picture.max_side;
  const {width, height} = picture;
  const scale = Math.min(1, maxSide / Math.max(width, height));
  let search = picture;
  if (scale < 1) search = resized(picture, rint(width * scale), rint(height * scale), 1 / scale);
  let faces = await detector.faces(search);
  if (turned && !faces.length) {
    let best = null, bestKey = null;
    for (const turns of rules.turned.quarter_turns) {
      const found = (await detector.faces(rot90(search, turns))).map(
        (face) => unturned(face, turns, search.height, search.width));
      const key = [Math.max(0, ...found.map((f) => f.score)), found.length];
      if (best === null || key[0] > bestKey[0] || (key[0] === bestKey[0] && key[1] > bestKey[1])) {
        best = found; bestKey = key;
      }
    }
    faces = best;
  }
  if (scale < 1) faces = faces.map((face) => moved(face, 1 / scale));
  faces = faces.filter((face) => Math.min(face.w, face.h) >= rules.min_side &&
    visiblePart(face, search.height, search.width, 1 / scale) >= rules.min_visible);
  faces = suppressDuplicates(faces, rules.duplicates);
  return faces.sort((a, b) => area(b) - area(a));
}

// ------------------------------------------------------------------------------ framing

function invert(m) {  // the 2x3 map back of a 2x3 affine map
  const det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
  const a = m[1][1] / det, b = -m[0][1] / det, c = -m[1][0] / det, d = m[0][0] / det;
  return [[a, b, -(a * m[0][2] + b * m[1][2])], [c, d, -(c * m[0][2] + d * m[1][2])]];
}

const asFloat32 = (m) => m.map((row) => row.map(f32));

/** The similarity carrying `points` onto `template` x size by least squares (two points: exactly). */
export function alignMatrix(points, template, size) {
  const n = points.length;
  const target = template.slice(0, n).map(([x, y]) => [x * size, y * size]);
  const mean = (list, i) => list.reduce((s, p) => s + p[i], 0) / n;
  const [sx, sy, tx, ty] = [mean(points, 0), mean(points, 1), mean(target, 0), mean(target, 1)];
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const [px, py] = [points[i][0] - sx, points[i][1] - sy];
    const [qx, qy] = [target[i][0] - tx, target[i][1] - ty];
    dot += px * qx + py * qy; cross += px * qy - py * qx; norm += px * px + py * py;
  }
  const a = dot / norm, b = cross / norm;
  return asFloat32([[a, -b, tx - (a * sx - b * sy)], [b, a, ty - (b * sx + a * sy)]]);
}

/** The 2x3 map from the picture onto the face's crop (pipeline.json's `framing`). */
export function frameMatrix(box, spec) {
  const rules = spec.framing, size = rules.size;
  if (rules.how !== 'box' && box.landmarks && rules.template) {
    const n = rules.how === 'eyes' ? 2 : box.landmarks.length;
    return alignMatrix(box.landmarks.slice(0, n), rules.template, size);
  }
  const {scale, dx, dy} = rules.square;
  const side = Math.max(box.w, box.h);
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
  const frame = scale * side, x0 = cx + dx * side - frame / 2, y0 = cy + dy * side - frame / 2;
  const s = f32(size / frame);
  let m = [[s, 0, f32(-x0 * (size / frame))], [0, s, f32(-y0 * (size / frame))]];
  if (box.angle) {  // a face found turned: the square lies upright about the box's centre
    const angle = -box.angle * Math.PI / 180, alpha = Math.cos(angle), beta = Math.sin(angle);
    const u = [[alpha, beta, (1 - alpha) * cx - beta * cy], [-beta, alpha, beta * cx + (1 - alpha) * cy]];
    m = m.map((row) => [row[0] * u[0][0] + row[1] * u[1][0], row[0] * u[0][1] + row[1] * u[1][1],
                        row[0] * u[0][2] + row[1] * u[1][2] + row[2]]);
  }
  return asFloat32(m);
}

/** The crop's corners (top-left, top-right, bottom-right, bottom-left) in the picture. */
export function cropCorners(m, size) {
  const back = invert(m);
  return [[0, 0], [size, 0], [size, size], [0, size]].map(([x, y]) =>
    [f32(back[0][0] * x + back[0][1] * y + back[0][2]), f32(back[1][0] * x + back[1][1] * y + back[1][2])]);
}

/** The picture mapped by m into a size x size crop: bilinear, edges replicated; the part the
 * crop sees is area-averaged first when one crop pixel spans many picture pixels. */
export function warp(picture, m, size, areaShrink) {
  const corners = cropCorners(m, size);
  const xs = corners.map((c) => c[0]), ys = corners.map((c) => c[1]);
  const clamp = (v, low, high) => Math.min(high, Math.max(low, v));
  const x0 = clamp(Math.floor(Math.min(...xs)) - 2, 0, picture.width - 1);
  const y0 = clamp(Math.floor(Math.min(...ys)) - 2, 0, picture.height - 1);
  const x1 = clamp(Math.ceil(Math.max(...xs)) + 2, x0 + 1, picture.width);
  const y1 = clamp(Math.ceil(Math.max(...ys)) + 2, y0 + 1, picture.height);
  let shrink = 1 / Math.hypot(m[0][0], m[1][0]);
  shrink = shrink > areaShrink ? shrink : 1;
  let region = cut(picture, x0, y0, x1 - x0, y1 - y0);
  let fx = 1, fy = 1;
  if (shrink > 1) {
    const newW = Math.max(1, rint((x1 - x0) / shrink)), newH = Math.max(1, rint((y1 - y0) / shrink));
    fx = newW / (x1 - x0); fy = newH / (y1 - y0);
    region = resized(region, newW, newH);
  }
  const local = [[m[0][0] / fx, m[0][1] / fy, m[0][2] + m[0][0] * x0 + m[0][1] * y0],
                 [m[1][0] / fx, m[1][1] / fy, m[1][2] + m[1][0] * x0 + m[1][1] * y0]];
  const back = invert(local), {width, height, data} = region;
  const out = new Uint8Array(size * size * 3);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const sx = back[0][0] * u + back[0][1] * v + back[0][2];
      const sy = back[1][0] * u + back[1][1] * v + back[1][2];
      const left = Math.floor(sx), top = Math.floor(sy), ax = sx - left, ay = sy - top;
      const xa = clamp(left, 0, width - 1), xb = clamp(left + 1, 0, width - 1);
      const ya = clamp(top, 0, height - 1), yb = clamp(top + 1, 0, height - 1);
      for (let c = 0; c < 3; c++) {
        const upper = data[(ya * width + xa) * 3 + c] * (1 - ax) + data[(ya * width + xb) * 3 + c] * ax;
        const lower = data[(yb * width + xa) * 3 + c] * (1 - ax) + data[(yb * width + xb) * 3 + c] * ax;
        out[(v * size + u) * 3 + c] = clipByte(upper * (1 - ay) + lower * ay);
      }
    }
  }
  return {width: size, height: size, data: out};
}

/** The crop lit like the training faces (pipeline.json's `lighting`). */
export function lit(crop, {mean, std, epsilon}) {
  if (mean === null || std === null) return crop;
  const n = crop.data.length;
  let sum = 0;
  for (const v of crop.data) sum += v;
  const average = sum / n;
  let squares = 0;
  for (const v of crop.data) squares += (v - average) ** 2;
  const gain = std / (Math.sqrt(squares / n) + epsilon);
  return {...crop, data: crop.data.map((v) => clipByte((v - average) * gain + mean))};
}

// ------------------------------------------------------------------------------ the pipeline

/** Picture -> faces -> crops -> six emotion scores and a heatmap each, from a bundle. */
export class Pipeline {
  /** The pipeline of the bundle at `base` (a URL ending in /); LiteRT's WebAssembly from `wasm`. */
  static async load(base, wasm) {
    if (!Pipeline.runtime) Pipeline.runtime = loadLiteRt(wasm);
    await Pipeline.runtime;
    const response = await fetch(base + 'pipeline.json');
    if (!response.ok) throw new Error(`${base}pipeline.json: ${response.status} ${response.statusText}`);
    const spec = await response.json();
    if (spec.format !== 'gimefive-ondevice' || spec.version !== 1) {
      throw new Error(`${base}pipeline.json is not a version 1 gimefive-ondevice specification`);
    }
    const [detector, classifier] = await Promise.all([
      FaceDetector.load(base, spec), loadModel(base + spec.classifier.file)]);
    return new Pipeline(spec, detector, classifier);
  }

  constructor(spec, detector, classifier) {
    this.spec = spec;
    this.labels = spec.labels;
    this.detector = detector;
    this.classifier = classifier;
    const details = classifier.getOutputDetails();  // probabilities [1, 6], heatmap [1, 64, 64]
    this.probabilityOutput = details.findIndex((d) => d.shape.length === 2);
    this.heatmapOutput = 1 - this.probabilityOutput;
  }

  /** {crop, corners}: the face framed and lit as pipeline.json says. */
  crop(picture, face) {
    const rules = this.spec.framing;
    const m = frameMatrix(face, this.spec);
    return {crop: lit(warp(picture, m, rules.size, rules.area_shrink), this.spec.lighting),
            corners: cropCorners(m, rules.size)};
  }

  /** {probabilities, heatmap} of one crop. */
  async classify(crop) {
    const outputs = await run(this.classifier, new Tensor(crop.data, [1, crop.height, crop.width, 3]));
    const probabilities = Array.from(outputs[this.probabilityOutput].toTypedArray());
    const heatmap = outputs[this.heatmapOutput].toTypedArray();  // a copy out of the wasm heap
    outputs.forEach((t) => t.delete());
    return {probabilities, heatmap};
  }

  /** [{box, crop, corners, probabilities, heatmap}], largest first. */
  async faces(picture, {maxSide, turned = true} = {}) {
    const found = [];
    for (const box of await findFaces(this.detector, picture, this.spec, maxSide, turned)) {
      const {crop, corners} = this.crop(picture, box);
      found.push({box, crop, corners, ...await this.classify(crop)});
    }
    return found;
  }

  /** The record predict --json prints for one face (or for a picture without one). */
  record(name, index, face) {
    if (!face) {
      return {input: name, face: null, box: null, emotion: null, scores: null,
              reason: 'no face found'};
    }
    const {box, probabilities} = face;
    const best = probabilities.indexOf(Math.max(...probabilities));
    const record = {input: name, face: index, box: [box.x, box.y, box.w, box.h],
                    emotion: this.labels[best],
                    scores: Object.fromEntries(this.labels.map((label, i) =>
                      [label, Number(probabilities[i].toFixed(4))])),
                    landmarks: box.landmarks.map((p) => p.map((v) => Number(v.toFixed(1))))};
    if (box.angle) record.angle = Number(box.angle.toFixed(1));
    return record;
  }
}

/** Faces across video frames (pipeline.json's `video`): ids kept by overlap, scores the mean of
 * each face's last frames. */
export class FaceTracker {
  constructor(rules) {
    this.rules = rules;
    this.tracks = new Map();  // id -> {box, missing, history}
    this.nextId = 1;
  }

  /** The faces of one frame with their ids and smoothed probabilities. */
  update(faces) {
    const pairs = [];
    faces.forEach((face, i) => this.tracks.forEach((track, id) =>
      pairs.push([iou(face.box, track.box), i, id])));
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);
    const ids = faces.map(() => null), used = new Set();
    for (const [overlap, i, id] of pairs) {
      if (overlap < this.rules.same_face_iou || ids[i] !== null || used.has(id)) continue;
      ids[i] = id;
      used.add(id);
    }
    faces.forEach((_, i) => { if (ids[i] === null) ids[i] = this.nextId++; });
    for (const [id, track] of this.tracks) {
      if (ids.includes(id)) continue;
      if (++track.missing > this.rules.max_missing_frames) this.tracks.delete(id);
    }
    return faces.map((face, i) => {
      const track = this.tracks.get(ids[i]) ?? {history: []};
      track.box = face.box;
      track.missing = 0;
      track.history = [...track.history, face.probabilities].slice(-this.rules.smooth_frames);
      this.tracks.set(ids[i], track);
      const smoothed = face.probabilities.map((_, k) =>
        track.history.reduce((sum, p) => sum + p[k], 0) / track.history.length);
      return {...face, id: ids[i], smoothed};
    });
  }
}
