"""The offline web app (`--formats web`): static files a phone's browser runs the whole face job
with, from the on-device bundle, by LiteRT.js (WebAssembly). Any static file server serves it
(`python -m gimefive_tf.serve --app DIR` too); after the first load it works offline.

    index.html, app.js, pipeline.js   the page (pipeline.js: gimefive_tf.ondevice in JavaScript)
    manifest.webmanifest, icon*       what installs it as an app (a PWA)
    sw.js                             the service worker: every file cached, served cache first
    bundle/                           the on-device bundle (`export.bundle`)
    vendor/litertjs/                  LiteRT.js 2.5.3 (Apache-2.0), from the npm packages the
                                      README's first command installs into gimefive_tf/webapp
    LICENSES.md                       where each part comes from and under which licence
"""

import hashlib
import json
import pathlib
import shutil

from gimefive_tf.errors import GiMeFiveError

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "webapp"
RUNTIME = SOURCE / "node_modules" / "@litertjs"
PAGE_FILES = ("index.html", "app.js", "pipeline.js", "manifest.webmanifest", "icon.svg")
RUNTIME_FILES = {  # vendor path -> the npm package's file
    "vendor/litertjs/core/index.js": "core/dist/index.js",
    "vendor/litertjs/wasm-utils/index.js": "wasm-utils/dist/index.js",
    # relaxed-SIMD browsers (Chrome/Edge 114+, recent Firefox) and the rest (Safari)
    "vendor/litertjs/wasm/litert_wasm_internal.js": "core/wasm/litert_wasm_internal.js",
    "vendor/litertjs/wasm/litert_wasm_internal.wasm": "core/wasm/litert_wasm_internal.wasm",
    "vendor/litertjs/wasm/litert_wasm_compat_internal.js":
        "core/wasm/litert_wasm_compat_internal.js",
    "vendor/litertjs/wasm/litert_wasm_compat_internal.wasm":
        "core/wasm/litert_wasm_compat_internal.wasm",
}
ICON_SIZES = (192, 512)

LICENSES = """# Licences of this web app

- `index.html`, `app.js`, `pipeline.js`, `sw.js`, `manifest.webmanifest`, the icons:
  gimefive_tf, MIT licence.
- `bundle/`: see `bundle/LICENSES.md`.
- `vendor/litertjs/`: LiteRT.js ({version}; the npm packages @litertjs/core and
  @litertjs/wasm-utils), Apache License 2.0, Copyright Google LLC; the full text is in
  `vendor/litertjs/LICENSE`.
"""


def write_y4m(path, frames, fps=10):
    """RGB frames (an iterable of one size, even sides) as an uncompressed 4:2:0 Y4M clip: what
    Chromium's fake camera plays (--use-file-for-fake-video-capture), to test the app's camera."""
    import numpy as np
    from PIL import Image

    with open(path, "wb") as clip:
        for index, frame in enumerate(frames):
            height, width = frame.shape[:2]
            if index == 0:
                clip.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            ycbcr = np.asarray(Image.fromarray(frame).convert("YCbCr"), np.float64)
            planes = [ycbcr[..., 0]] + [ycbcr[..., k].reshape(height // 2, 2, width // 2, 2)
                                        .mean((1, 3)) for k in (1, 2)]
            clip.write(b"FRAME\n" + b"".join(np.round(p).astype(np.uint8).tobytes()
                                              for p in planes))


def kept_frame(frame):
    """The RGB pixels of a camera frame the page kept (`window.gimefive.frames[i].png`, with
    ?record=N): what its records were computed on, for a test or benchmark to recompute."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    png = base64.b64decode(frame["png"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def check_runtime():
    """Fail with one line, before any long work, when LiteRT.js is not installed."""
    missing = [name for name in RUNTIME_FILES.values() if not (RUNTIME / name).is_file()]
    if missing:
        raise GiMeFiveError(f"the web app needs LiteRT.js in {SOURCE / 'node_modules'}: run "
                            f"npm ci --prefix {SOURCE} (the README's first command does)")


def runtime_version():
    return json.loads((RUNTIME / "core" / "package.json").read_text())["version"]


def write_icons(folder):
    """The app's icon as PNGs (the sizes an install prompt asks for), drawn like icon.svg."""
    from PIL import Image, ImageDraw

    for size in ICON_SIZES:
        icon = Image.new("RGBA", (size, size))
        draw = ImageDraw.Draw(icon)
        unit = size / 512
        draw.rounded_rectangle([0, 0, size - 1, size - 1], int(96 * unit), fill="#1f2a44")
        draw.ellipse([88 * unit, 88 * unit, 424 * unit, 424 * unit], fill="#ffd400")
        for cx in (196, 316):
            draw.ellipse([(cx - 22) * unit, 194 * unit, (cx + 22) * unit, 238 * unit],
                         fill="#1f2a44")
        draw.arc([168 * unit, 216 * unit, 344 * unit, 384 * unit], 20, 160, fill="#1f2a44",
                 width=max(2, int(24 * unit)))
        icon.save(folder / f"icon-{size}.png")


def export_webapp(folder, bundle=None):
    """Write the app into `folder` and return its path. bundle: the on-device bundle folder to
    copy in as folder/bundle; None: `export_bundle` wrote it there already."""
    check_runtime()
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(SOURCE / name, folder / name)
    for target, source in RUNTIME_FILES.items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RUNTIME / source, folder / target)
    shutil.copyfile(SOURCE / "LICENSE-litertjs.txt", folder / "vendor" / "litertjs" / "LICENSE")
    if bundle is not None:
        shutil.copytree(bundle, folder / "bundle")
    write_icons(folder)
    manifest = json.loads((folder / "manifest.webmanifest").read_text())
    manifest["icons"] += [{"src": f"icon-{size}.png", "sizes": f"{size}x{size}",
                           "type": "image/png"} for size in ICON_SIZES]
    (folder / "manifest.webmanifest").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "LICENSES.md").write_text(LICENSES.format(version=runtime_version()))
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                   if path.is_file())
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + (folder / name).read_bytes())
    worker = (SOURCE / "sw.js").read_text()
    worker = worker.replace("__VERSION__", f"gimefive-{digest.hexdigest()[:16]}")
    worker = worker.replace("__FILES__", json.dumps(["./"] + files))
    (folder / "sw.js").write_text(worker)
    return folder
