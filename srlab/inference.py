"""Upscale whole photos with a trained network: the engine behind the app, ``python -m srlab.upscale``
and ``evaluate.py``.

:class:`Upscaler` wraps a network loaded from a deploy folder (:mod:`srlab.deploy`), a ``.ckpt`` or
``"bicubic"`` (the baseline), and turns a ``PIL.Image`` into one ``scale`` times larger:

* **colour**: RGB networks see RGB; Y networks (SRCNN, FSRCNN, ESPCN, VDSR) see the BT.601 Y channel
  and their Y replaces that of the bicubic (Pillow) upscale, i.e. Cb/Cr are bicubic, per tile. Grayscale stays
  grayscale (``L`` -> ``L``, 16-bit ``I;16`` -> ``I;16``, computed in float from the 16-bit values,
  ``F`` -> ``F``); an alpha channel is upscaled bicubically on its own and put back (``RGBA``, ``LA``);
  palette, CMYK, YCbCr, ... are converted to RGB. Pillow decodes 16-bit *RGB* files to 8-bit RGB, so
  those come out as 8-bit RGB. EXIF orientation is applied (paths through
  :func:`srlab.imageio.open_image`, images given directly through ``ImageOps.exif_transpose``).
* **tiling**: the LR image is cut into ``tile x tile`` cores, each run with ``overlap`` pixels of
  context on every side (default: the network's ``receptive_field``, an upper bound of how far an
  output pixel looks), one tile at a time, and only the core of each result is pasted into a
  preallocated output array of the output's own dtype (``uint8`` / ``uint16``). With the overlap at
  least the receptive field, every output pixel sees exactly the input it would see untiled, so the
  tiled image equals the untiled one (to float rounding: at most 1/255): no seams, and memory bounded
  by the tile size whatever the photo size.
* **limits**: a file larger than ``max_input_pixels`` is refused from its header, before it is
  decoded (:class:`ImageTooLargeError`); unreadable files raise :class:`srlab.imageio.ImageReadError`.
  Tiny images (down to 1x1) just work: every registered network accepts them.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from srlab.imageio import ImageReadError, open_image
from srlab.resize import bicubic_upscale
from srlab.color import rgb_to_y
from srlab.sr import replace_y

DEFAULT_TILE = 256
PRECISIONS = ("fp32", "bf16")
#: Inputs above this many pixels are refused (50 MP: a x4 result is then 800 MP, 2.4 GB of RGB).
DEFAULT_MAX_INPUT_PIXELS = 50_000_000
BICUBIC = "bicubic"

Progress = Callable[[int, int], None]

# BT.601 luma: an RGB network's output for a gray input is brought back to one channel with it.
_LUMA = (0.299, 0.587, 0.114)
_Y_LO, _Y_RANGE = 16.0 / 255.0, 219.0 / 255.0  # studio-swing Y of MATLAB's rgb2ycbcr

_torch_configured = False


class ImageTooLargeError(ImageReadError):
    """An input image over the upscaler's pixel limit (refused before it is decoded)."""


def _check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{what}: {width}x{height} = {width * height / 1e6:.1f} MP is over the limit of "
            f"{max_pixels / 1e6:.1f} MP (max_input_pixels); downscale or crop it first")


def open_input(source: str | Path | BinaryIO, max_pixels: int | None = DEFAULT_MAX_INPUT_PIXELS) -> Image.Image:
    """Open an image (a path, or a binary file object such as an upload's ``BytesIO``) for upscaling:
    its size is checked from the header first, then it is decoded fully with EXIF orientation applied.
    Raises :class:`ImageTooLargeError` / :class:`ImageReadError`."""
    is_path = isinstance(source, (str, Path))
    what = str(source) if is_path else getattr(source, "name", None) or "uploaded image"
    if is_path and not Path(source).is_file():
        raise ImageReadError(f"{source}: no such image file")
    with warnings.catch_warnings():
        # The pixel limit here is ours; Pillow's own bomb check (89 MP warning, 179 MP error) is only
        # a backstop for limits set above it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(source)
        except Image.DecompressionBombError as err:
            raise ImageTooLargeError(f"{what}: refused, larger than Pillow's decompression-bomb limit ({err})") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ImageReadError(f"{what}: cannot read image ({err})") from err
        try:
            _check_pixels(*im.size, max_pixels, what)
            if is_path:
                im.close()
                return open_image(source)
            try:
                im.load()
                return ImageOps.exif_transpose(im)
            except (OSError, SyntaxError, ValueError) as err:
                raise ImageReadError(f"{what}: cannot read image ({err})") from err
        finally:
            if is_path:
                im.close()


# ---------------------------------------------------------------------------------------------------
# Image <-> arrays


class _Source:
    """An image split into what gets upscaled: ``color`` (``H x W x C``, C = 1 or 3, native dtype,
    ``top`` maps to 1.0) and an optional ``alpha`` (``H x W``, same dtype)."""

    def __init__(self, color: np.ndarray, top: float, alpha: np.ndarray | None = None) -> None:
        self.color, self.top, self.alpha = color, top, alpha


def _to_source(im: Image.Image) -> _Source:
    mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    elif mode == "P":
        mode = "RGBA" if "transparency" in im.info else "RGB"
        im = im.convert(mode)
    elif mode in ("PA", "RGBa", "La"):
        mode = "LA" if mode == "La" else "RGBA"
        im = im.convert(mode)

    if mode == "L":
        return _Source(np.asarray(im)[..., None], 255.0)
    if mode == "LA":
        arr = np.asarray(im)
        return _Source(arr[..., :1], 255.0, np.ascontiguousarray(arr[..., 1]))
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        if mode == "I":
            arr = np.clip(arr, 0, 65535)
        arr = arr.astype(np.uint16, copy=False)  # I;16B is big-endian: make it native
        # 32-bit "I" images holding 8-bit values keep their 0..255 range (as srlab.imageio does).
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return _Source(arr[..., None], top)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        top = 1.0 if arr.size == 0 or float(arr.max()) <= 1.0 else 255.0
        return _Source(arr[..., None], top)
    if mode == "RGBA":
        arr = np.asarray(im)
        return _Source(np.ascontiguousarray(arr[..., :3]), 255.0, np.ascontiguousarray(arr[..., 3]))
    if mode != "RGB":
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    return _Source(np.asarray(im), 255.0)


def _to_tensor(arr: np.ndarray, top: float, device: torch.device) -> torch.Tensor:
    """``H x W x C`` array -> ``1 x C x H x W`` float32 in [0, 1] on ``device``."""
    return torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1).unsqueeze(0).to(device) / top


def _quantize(x: torch.Tensor, top: float, dtype: np.dtype) -> np.ndarray:
    """Float ``C x H x W`` in [0, 1] -> ``H x W x C`` in the output dtype's range (rounded and clipped for
    integer types). 8-bit, the common case, is done in torch: vectorised and threaded, unlike numpy."""
    if dtype == np.uint8:
        return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    x = x.permute(1, 2, 0).numpy()
    if np.issubdtype(dtype, np.floating):
        return (x * top).astype(dtype, copy=False)
    return np.clip(np.rint(x * top), 0, top).astype(dtype)


def _resize_plane(plane: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic (MATLAB-style, Pillow) upscaling of one ``H x W`` plane, at full precision."""
    if plane.dtype == np.uint8:
        return bicubic_upscale(plane, scale)
    h, w = plane.shape
    f = Image.fromarray(plane.astype(np.float32)).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    out = np.asarray(f)
    if np.issubdtype(plane.dtype, np.integer):
        info = np.iinfo(plane.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(plane.dtype)
    return out.astype(plane.dtype, copy=False)


def _resize_image(arr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscaling of an ``H x W x C`` array (8-bit RGB in one Pillow call, else plane by plane)."""
    if arr.dtype == np.uint8 and arr.shape[2] == 3:
        return bicubic_upscale(arr, scale)
    return np.stack([_resize_plane(arr[..., c], scale) for c in range(arr.shape[2])], axis=2)


def _to_image(color: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    if color.shape[2] == 1:
        gray = Image.fromarray(np.ascontiguousarray(color[..., 0]))  # L, I;16 or F from the dtype
        if alpha is None:
            return gray
        return Image.merge("LA", [gray, Image.fromarray(alpha)])
    if alpha is None:
        return Image.fromarray(color)
    return Image.fromarray(np.concatenate([color, alpha[..., None]], axis=2))  # RGBA


# ---------------------------------------------------------------------------------------------------
# Tiling


def _spans(length: int, tile: int) -> list[int]:
    """Start offsets of ``ceil(length / tile)`` cores of (nearly) equal size covering ``length``."""
    n = max(1, math.ceil(length / tile))
    step = math.ceil(length / n)
    return list(range(0, length, step))


def tile_grid(height: int, width: int, tile: int | None, overlap: int
              ) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """``((y0, y1, x0, x1) core, (py0, py1, px0, px1) core + overlap clipped to the image)`` per tile,
    row by row. ``tile=None`` (or one at least the image size) is a single tile: the whole image."""
    tile = max(height, width, 1) if tile is None else tile
    ys, xs = _spans(height, tile), _spans(width, tile)
    step_y, step_x = (ys[1] if len(ys) > 1 else height), (xs[1] if len(xs) > 1 else width)
    for y0 in ys:
        y1 = min(y0 + step_y, height)
        for x0 in xs:
            x1 = min(x0 + step_x, width)
            yield (y0, y1, x0, x1), (max(0, y0 - overlap), min(height, y1 + overlap),
                                     max(0, x0 - overlap), min(width, x1 + overlap))


def count_tiles(height: int, width: int, tile: int | None) -> int:
    if tile is None:
        return 1
    return len(_spans(height, tile)) * len(_spans(width, tile))


# ---------------------------------------------------------------------------------------------------
# The upscaler


class Upscaler:
    """A network (or the bicubic baseline) ready to upscale photos. Build with :meth:`load` or
    :meth:`from_network`. Attributes: ``scale``, ``name``, ``color`` ("y" | "rgb"), ``metrics``
    (metrics.json of a deploy folder, else {}), ``config`` (config.json / checkpoint hparams),
    ``receptive_field`` (LR px; the default overlap), ``max_input_pixels``, ``net`` (None for bicubic)."""

    def __init__(self, net: nn.Module | None, scale: int, name: str, color: str = "rgb",
                 receptive_field: int = 0, metrics: dict[str, Any] | None = None,
                 config: dict[str, Any] | None = None, path: str | Path | None = None,
                 max_input_pixels: int | None = DEFAULT_MAX_INPUT_PIXELS, channels_last: bool = True,
                 precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.net = net
        self.scale = int(scale)
        self.name = name
        self.color = color
        self.receptive_field = int(receptive_field)
        self.metrics = metrics or {}
        self.config = config or {}
        self.path = Path(path) if path is not None else None
        self.max_input_pixels = max_input_pixels
        # channels_last: oneDNN's convolutions run 1.3-3x faster in NHWC on CPUs (the default here).
        # bf16: autocast, twice the FMA rate on CPUs with AVX-512 BF16 / AMX, at a small PSNR cost
        # (benchmarks/inference_speed.py measures both), so it is opt-in.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.precision = precision
        if net is not None:
            net.eval().to(memory_format=self.memory_format)
            for p in net.parameters():
                p.requires_grad_(False)

    def __repr__(self) -> str:
        return f"Upscaler(name={self.name!r}, scale={self.scale}, color={self.color!r})"

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_network(cls, net: nn.Module, name: str | None = None, **kwargs: Any) -> Upscaler:
        """Wrap an ``nn.Module`` of :mod:`srlab.models` (it needs ``scale`` and ``in_channels``)."""
        color = getattr(net, "color", "y" if net.in_channels == 1 else "rgb")
        rf = getattr(net, "receptive_field", None)
        if rf is None:
            rf = 16
            warnings.warn(f"{type(net).__name__} has no receptive_field; tiling with an overlap of {rf}", stacklevel=2)
        return cls(net, net.scale, name or type(net).__name__.lower(), color, rf, **kwargs)

    @classmethod
    def load(cls, path: str | Path, *, scale: int | None = None, threads: int | None = None,
             max_input_pixels: int | None = DEFAULT_MAX_INPUT_PIXELS, precision: str = "fp32") -> Upscaler:
        """From a deploy folder (or its config.json), a srlab ``.ckpt``, ``"bicubic"`` (with ``scale``), or
        the name of a folder that ships with srlab (``"fsrcnn_x4"``: ``srlab/weights/fsrcnn_x4``) when no
        such path exists here.

        The first load in a process sets torch's threads (:func:`srlab.runtime.configure_torch`);
        later loads leave them alone unless ``threads`` is given.
        """
        global _torch_configured
        if threads is not None or not _torch_configured:
            from srlab.runtime import configure_torch

            configure_torch(threads)
            _torch_configured = True

        if str(path).lower() == BICUBIC:
            if scale is None:
                raise ValueError("the bicubic upscaler needs scale= (2, 3 or 4)")
            if int(scale) < 1:
                raise ValueError(f"scale must be a positive integer, got {scale}")
            return cls(None, int(scale), BICUBIC, "rgb", 0, max_input_pixels=max_input_pixels)

        from srlab.deploy import CONFIG_FILE, METRICS_FILE, load_deployed, network_from_checkpoint

        path = Path(path)
        if not path.exists() and len(path.parts) == 1 and (SHIPPED_WEIGHTS / path / CONFIG_FILE).is_file():
            path = SHIPPED_WEIGHTS / path
        if path.is_dir() or path.name == CONFIG_FILE:
            net, config = load_deployed(path)
            folder = path if path.is_dir() else path.parent
            metrics: dict[str, Any] = {}
            try:
                loaded = json.loads((folder / METRICS_FILE).read_text())
                metrics = loaded if isinstance(loaded, dict) else {}
            except (OSError, json.JSONDecodeError):
                pass
            name = config.get("model") or folder.resolve().name
            up = cls.from_network(net, name, metrics=metrics, config=config, path=folder,
                                  max_input_pixels=max_input_pixels, precision=precision)
        elif path.is_file():
            # Restricted to srlab.models targets, weights_only load, pruning masks folded.
            net, hparams = network_from_checkpoint(path)
            up = cls.from_network(net, hparams.get("name") or path.stem, config=hparams, path=path,
                                  max_input_pixels=max_input_pixels, precision=precision)
        else:
            raise FileNotFoundError(f"{path}: no such deploy folder or checkpoint (or use 'bicubic', or a "
                                    f"shipped folder's name: {', '.join(shipped_names()) or 'none ship'})")
        if scale is not None and int(scale) != up.scale:
            raise ValueError(f"{path} is a x{up.scale} network; x{scale} was asked for")
        return up

    # -- running -----------------------------------------------------------------------------------

    def open(self, source: str | Path | BinaryIO) -> Image.Image:
        """Open an image file under this upscaler's pixel limit (see :func:`open_input`)."""
        return open_input(source, self.max_input_pixels)

    def upscale(self, image: Image.Image | str | Path | BinaryIO, tile: int | None = DEFAULT_TILE,
                overlap: int | None = None, progress: Progress | None = None) -> Image.Image:
        """``image`` (or an image file) upscaled ``scale`` times; see the module docstring.

        ``tile``: LR core size of each tile (None: the whole image at once); ``overlap``: LR context
        per side (default ``receptive_field``: seamless); ``progress(done, total)`` after each tile.
        """
        if tile is not None and tile < 1:
            raise ValueError(f"tile must be a positive number of pixels or None, got {tile}")
        overlap = self.receptive_field if overlap is None else overlap
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        if not isinstance(image, Image.Image):
            if not isinstance(image, (str, Path)) and not hasattr(image, "read"):
                raise TypeError(f"expected a PIL image, a path or a binary file, got {type(image).__name__}")
            image = self.open(image)
        else:
            _check_pixels(*image.size, self.max_input_pixels, "input image")
        width, height = image.size
        if width == 0 or height == 0:
            raise ImageReadError(f"input image is empty ({width}x{height})")
        try:  # an Image.open()ed image is decoded here, lazily: truncation shows up now
            if image.getexif().get(0x0112, 1) != 1:  # avoid exif_transpose's copy when upright
                image = ImageOps.exif_transpose(image)
            src = _to_source(image)
        except (OSError, SyntaxError) as err:
            raise ImageReadError(f"input image: cannot decode ({err})") from err
        alpha = _resize_plane(src.alpha, self.scale) if src.alpha is not None else None
        return _to_image(self._upscale_source(src, tile, overlap, progress), alpha)

    def upscale_array(self, arr: np.ndarray, tile: int | None = DEFAULT_TILE, overlap: int | None = None,
                      progress: Progress | None = None) -> np.ndarray:
        """The array form (e.g. for evaluation): ``H x W`` or ``H x W x 3`` (or ``x 1``), ``uint8``
        (0..255), ``uint16`` (0..65535) or float (0..1) -> the same layout and dtype, ``scale`` x larger."""
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
            raise ValueError(f"expected an H x W or H x W x 3 array, got shape {arr.shape}")
        if arr.dtype == np.uint8:
            top = 255.0
        elif arr.dtype == np.uint16:
            top = 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            top, arr = 1.0, arr.astype(np.float32, copy=False)
        else:
            raise ValueError(f"unsupported dtype {arr.dtype}: use uint8, uint16 or float")
        overlap = self.receptive_field if overlap is None else overlap
        out = self._upscale_source(_Source(arr if arr.ndim == 3 else arr[..., None], top), tile, overlap, progress)
        return out if arr.ndim == 3 else out[..., 0]

    def _upscale_source(self, src: _Source, tile: int | None, overlap: int, progress: Progress | None) -> np.ndarray:
        if self.net is not None:
            return self._run_tiled(src, tile, overlap, progress)
        color = _resize_image(src.color, self.scale)
        if progress is not None:
            progress(1, 1)
        return color

    def _forward(self, x: torch.Tensor, bicubic: torch.Tensor | None = None) -> torch.Tensor:
        """LR tile ``1 x C x h x w`` in [0, 1] (C = 1 gray, 3 RGB) -> SR tile, clamped to [0, 1].
        ``bicubic``: the tile upscaled bicubically (``1 x 3 x sh x sw``), given for (and only for) a Y
        network on colour."""
        if self.precision == "fp32":
            return self._forward_fp32(x, bicubic)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self._forward_fp32(x, bicubic).float()

    def _forward_fp32(self, x: torch.Tensor, bicubic: torch.Tensor | None) -> torch.Tensor:
        net = self.net
        assert net is not None
        x = x.contiguous(memory_format=self.memory_format)
        if bicubic is not None:
            # A Y network on colour: its Y on the chroma of Pillow's (MATLAB-style) bicubic RGB, the image
            # super_resolve's YCbCr round trip makes, without the two colour conversions and the float
            # bicubic of Cb and Cr at the output size (together more than ESPCN's own time).
            y_sr = net(rgb_to_y(x).contiguous(memory_format=self.memory_format)).float()
            return replace_y(bicubic, y_sr).clamp_(0, 1)
        if net.in_channels == 3:
            if x.shape[1] == 3:
                return net(x).clamp(0, 1)
            rgb = net(x.expand(-1, 3, -1, -1).contiguous(memory_format=self.memory_format)).clamp(0, 1)
            weights = torch.tensor(_LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
            return (rgb * weights).sum(dim=1, keepdim=True).clamp(0, 1)
        # Gray through a Y network: what super_resolve does for R = G = B (Cb = Cr = 128), directly.
        return ((net(x * _Y_RANGE + _Y_LO) - _Y_LO) / _Y_RANGE).clamp(0, 1)

    def _run_tiled(self, src: _Source, tile: int | None, overlap: int, progress: Progress | None) -> np.ndarray:
        arr, s = src.color, self.scale
        height, width, channels = arr.shape
        out = np.empty((height * s, width * s, channels), dtype=arr.dtype)
        total = count_tiles(height, width, tile)
        param = next(self.net.parameters(), None)  # tiles go to the network's device (CPU or GPU)
        device = param.device if param is not None else torch.device("cpu")
        y_on_color = self.net.in_channels == 1 and channels == 3
        with torch.inference_mode():
            for done, ((y0, y1, x0, x1), (py0, py1, px0, px1)) in enumerate(
                    tile_grid(height, width, tile, overlap), start=1):
                patch = np.ascontiguousarray(arr[py0:py1, px0:px1])
                x = _to_tensor(patch, src.top, device)
                bicubic = None
                if y_on_color:
                    bicubic = _to_tensor(_resize_image(patch, s), src.top, device)
                sr = self._forward(x, bicubic)[0].float().cpu()
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                core = sr[:, oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                out[y0 * s:y1 * s, x0 * s:x1 * s] = _quantize(core, src.top, arr.dtype)
                if progress is not None:
                    progress(done, total)
        return out


# ---------------------------------------------------------------------------------------------------
# Deploy folders


#: Trained weights that ship inside the package (deploy folders), so a fresh install upscales for real.
SHIPPED_WEIGHTS = Path(__file__).with_name("weights")


def shipped_names() -> list[str]:
    """The folders that ship with srlab (``Upscaler.load`` takes these names)."""
    return [e["name"] for e in _deploy_entries(SHIPPED_WEIGHTS)]


def shipped_default() -> Path | None:
    """The shipped network a fresh install uses (see ``srlab/weights/README.md``): the x4 folder with the
    highest mean PSNR in its metrics.json (``psnr``: the mean over the test sets), ties to the first
    name; None when no weights ship."""
    return _default_of(_deploy_entries(SHIPPED_WEIGHTS))


def _default_of(entries: list[dict[str, Any]]) -> Path | None:
    def rank(entry: dict[str, Any]) -> tuple[bool, float]:
        psnr = entry.get("psnr")
        ok = isinstance(psnr, (int, float)) and math.isfinite(psnr)
        return entry.get("scale") == 4, float(psnr) if ok else float("-inf")

    # max keeps the first of equals, and _deploy_entries lists folders by name
    return Path(max(entries, key=rank)["path"]) if entries else None


def default_model(root: str | Path = "deploy") -> Path:
    """``root/best`` when select_best.py exported one, else the shipped default (:func:`shipped_default`);
    ``root/best`` also when nothing ships (loading it then says it is missing)."""
    best = Path(root) / "best"
    if (best / "config.json").is_file():
        return best
    return shipped_default() or best


def list_deployed(root: str | Path = "deploy", shipped: bool = True) -> list[dict[str, Any]]:
    """Every deploy folder directly under ``root`` (the app's model picker), ``best`` first, then by
    name, then (``shipped``) the weights that ship with the package, named ``<folder> (shipped)``, the
    shipped default (:func:`shipped_default`) first. Keys: ``name``, ``path``, ``model``,
    ``architecture``, ``scale``, ``color``, ``params``, ``psnr``, ``ssim``, ``time_color_s`` (None where
    metrics.json lacks them), ``shipped``, ``default`` (True on the shipped default only). Unreadable
    folders are skipped."""
    entries = _deploy_entries(Path(root))
    entries.sort(key=lambda e: (e["name"] != "best", e["name"]))
    if shipped:
        ours = _deploy_entries(SHIPPED_WEIGHTS)
        default = _default_of(ours)
        ours = [{**e, "name": f"{e['name']} (shipped)", "shipped": True, "default": Path(e["path"]) == default}
                for e in ours]
        entries += sorted(ours, key=lambda e: not e["default"])  # stable: the rest stay by name
    return entries


def _deploy_entries(root: Path) -> list[dict[str, Any]]:
    from srlab.deploy import CONFIG_FILE, FORMAT, METRICS_FILE

    if not root.is_dir():
        return []
    entries = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or not (folder / CONFIG_FILE).is_file():
            continue
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            continue
        try:
            metrics = json.loads((folder / METRICS_FILE).read_text())
            metrics = metrics if isinstance(metrics, dict) else {}
        except (OSError, json.JSONDecodeError):
            metrics = {}
        entries.append({
            "name": folder.name,
            "path": str(folder),
            "model": config.get("model"),
            "architecture": config.get("architecture"),
            "scale": config.get("scale"),
            "color": config.get("color"),
            "params": config.get("params"),
            "psnr": metrics.get("psnr"),
            "ssim": metrics.get("ssim"),
            "time_color_s": metrics.get("time_color_s"),
            "shipped": False,
            "default": False,
        })
    return entries
