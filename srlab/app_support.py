"""The app's logic without the UI (``srlab/app.py`` only draws): where things live, reading an upload
safely, one bounded inference slot, the blind-vote database, the ranking fitted from the votes and its
conversion to the expert coefficients ``select_best.py`` reads.

Everything here is plain Python, importable and testable without Streamlit.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from srlab.selection import EXPERT_MAX, EXPERT_MIN, write_expert

#: Extensions the uploader accepts (the browser filters by them; the content is checked anyway).
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]
#: Largest upload read, in bytes (Streamlit's own limit is server.maxUploadSize, 200 MB by default).
MAX_UPLOAD_BYTES = int(os.environ.get("SRLAB_MAX_UPLOAD_MB", "25")) * 1024 * 1024
#: Largest input image, in pixels, before upscaling (the output has scale**2 times as many).
MAX_INPUT_PIXELS = int(os.environ.get("SRLAB_MAX_PIXELS", str(4_000_000)))
#: Smallest side of an input image: a network needs some context around each pixel.
MIN_SIDE = 4
DEMO_NAME = "chelsea"


class InputError(ValueError):
    """An upload the app cannot use; the message is shown to the user as is."""


class BusyError(RuntimeError):
    """No inference slot became free in time."""


# ------------------------------------------------------------------------------------------ places


def deploy_root() -> Path:
    """``$SRLAB_DEPLOY_DIR`` or ``deploy`` (relative to the working directory)."""
    return Path(os.environ.get("SRLAB_DEPLOY_DIR") or "deploy")


def votes_db_path() -> Path:
    """``$SRLAB_VOTES_DB`` or ``<deploy root>/votes.sqlite``."""
    env = os.environ.get("SRLAB_VOTES_DB")
    return Path(env) if env else deploy_root() / "votes.sqlite"


def cache_dir() -> Path:
    return Path(os.environ.get("SRLAB_CACHE_DIR") or "cache")


def demo_image() -> Image.Image:
    """scikit-image's ``chelsea`` (written once as PNG under the cache folder), RGB."""
    from srlab.data.sources import SampleSource

    record = SampleSource([DEMO_NAME], cache_dir(), folder="samples").records()[0]
    with Image.open(record.hr) as im:
        return im.convert("RGB")


# ------------------------------------------------------------------------------------------ uploads


def read_upload(data: bytes, name: str = "upload") -> Image.Image:
    """Decode uploaded bytes into a loaded, EXIF-oriented Pillow image, or raise :class:`InputError`
    with a message for the user: empty/oversized file, not an image, truncated or corrupt, too many
    pixels (checked from the header, before anything is decoded), too small."""
    if not data:
        raise InputError(f"{name}: the file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name}: the file is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_INPUT_PIXELS:
                raise InputError(f"{name}: {w}x{h} = {w * h / 1e6:.1f} megapixels is more than this app "
                                 f"upscales ({MAX_INPUT_PIXELS / 1e6:.1f} MP); crop or shrink it first.")
            im.load()
            im = ImageOps.exif_transpose(im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(f"{name}: refused as a possible decompression bomb ({err}).") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image Pillow can read (PNG, JPEG, WebP, BMP, TIFF).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InputError(f"{name}: the image is truncated or corrupt ({err}).") from None
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        raise InputError(f"{name}: {w}x{h} is too small; the image needs at least {MIN_SIDE} pixels on each side.")
    return im


def image_digest(im: Image.Image) -> str:
    """A content key for caching (mode, size and pixels)."""
    h = hashlib.sha256(f"{im.mode}{im.size}".encode())
    h.update(im.tobytes())
    return h.hexdigest()[:32]


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def crop_box(size: tuple[int, int], cx: float, cy: float, frac: float) -> tuple[int, int, int, int]:
    """A square-ish crop of ``frac`` of the shorter side, centred at the relative point (cx, cy) in
    0..1 and kept inside the image. Returns PIL's (left, top, right, bottom)."""
    w, h = size
    side = max(1, min(w, h, round(min(w, h) * frac)))
    left = min(max(0, round(cx * w - side / 2)), w - side)
    top = min(max(0, round(cy * h - side / 2)), h - side)
    return left, top, left + side, top + side


def bicubic_crop(image: Image.Image, box: tuple[int, int, int, int], scale: int, margin: int = 4) -> Image.Image:
    """The bicubic upscale of ``box`` (computed with a margin of context, so its borders match a
    full-image bicubic upscale), as RGB."""
    w, h = image.size
    l, t, r, b = box
    ml, mt, mr, mb = max(0, l - margin), max(0, t - margin), min(w, r + margin), min(h, b + margin)
    part = image.convert("RGB").crop((ml, mt, mr, mb))
    big = part.resize(((mr - ml) * scale, (mb - mt) * scale), Image.Resampling.BICUBIC)
    return big.crop(((l - ml) * scale, (t - mt) * scale, (r - ml) * scale, (b - mt) * scale))


def display_size(size: tuple[int, int], max_side: int = 1600) -> tuple[int, int]:
    """``size`` shrunk (aspect kept) so that its longer side is at most ``max_side``."""
    w, h = size
    f = min(1.0, max_side / max(w, h))
    return max(1, round(w * f)), max(1, round(h * f))


def scale_box(box: tuple[int, int, int, int], factor: int) -> tuple[int, int, int, int]:
    return tuple(v * factor for v in box)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ inference


def _slots_from_env() -> int:
    try:
        return max(1, int(os.environ.get("SRLAB_INFERENCE_SLOTS", "1")))
    except ValueError:
        return 1


#: Process-wide bound on concurrent upscaling jobs (every session of the app shares it).
INFERENCE_SLOTS = threading.BoundedSemaphore(_slots_from_env())
#: Longest wait for a slot before the user is told to retry.
SLOT_TIMEOUT_S = float(os.environ.get("SRLAB_SLOT_TIMEOUT_S", "600"))


def bounded_upscale(upscaler: Any, image: Image.Image, *, tile: int = 256,
                    progress: Callable[[int, int], None] | None = None,
                    on_wait: Callable[[], Any] | None = None,
                    slots: threading.Semaphore | None = None,
                    timeout: float | None = None) -> Image.Image:
    """``upscaler.upscale(image)`` while holding one inference slot. If none is free, ``on_wait()`` is
    called first (the page shows its wait state) and the call blocks up to ``timeout`` seconds, then
    raises :class:`BusyError`."""
    slots = slots or INFERENCE_SLOTS
    timeout = SLOT_TIMEOUT_S if timeout is None else timeout
    if not slots.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        if not slots.acquire(timeout=timeout):
            raise BusyError(f"every inference slot stayed busy for {timeout:g} s; please try again")
    try:
        return upscaler.upscale(image, tile=tile, progress=progress)
    finally:
        slots.release()


class ResultCache:
    """A small thread-safe LRU of upscaled results (PIL images), keyed by (model, image digest)."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Image.Image | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: Image.Image) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


# ------------------------------------------------------------------------------------------ models


def model_label(info: dict[str, Any]) -> str:
    """``name - x4, PSNR 30.12 dB, 0.21 s/photo`` for the picker."""
    parts = [f"x{info.get('scale')}"]
    psnr = info.get("psnr")
    if isinstance(psnr, (int, float)) and math.isfinite(psnr):
        parts.append(f"PSNR {psnr:.2f} dB")
    t = info.get("time_color_s")
    if isinstance(t, (int, float)) and math.isfinite(t):
        parts.append(f"{t:.3g} s/photo")
    return f"{info.get('name')} - " + ", ".join(parts)


def rating_name(info: dict[str, Any]) -> str:
    """The name a deployed model is rated (and written to the expert file) under: the model name its
    metrics were recorded with (what ``select_best.py`` ranks), else the folder's name."""
    return str(info.get("model") or info.get("name"))


def distinct_for_rating(models: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per rating name (``best`` is usually a copy of another deployed model)."""
    seen: dict[str, dict[str, Any]] = {}
    for m in models:
        seen.setdefault(rating_name(m), m)
    return list(seen.values())


def random_pair(names: Sequence[str], rng: random.Random | None = None) -> tuple[str, str]:
    """Two different names in random order (the left/right placement is random too)."""
    if len(set(names)) < 2:
        raise ValueError("a pair needs at least two different models")
    rng = rng or random.Random()
    a, b = rng.sample(sorted(set(names)), 2)
    return a, b


# ------------------------------------------------------------------------------------------ votes


class VotesDB:
    """Blind pairwise votes in SQLite: one row per vote (winner, loser, time). Each call opens its own
    connection, so sessions on different threads never share one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute("CREATE TABLE IF NOT EXISTS votes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "winner TEXT NOT NULL, loser TEXT NOT NULL, image TEXT, created REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, winner: str, loser: str, image: str | None = None) -> None:
        if winner == loser:
            raise ValueError("a vote needs two different models")
        with closing(self._connect()) as con, con:
            con.execute("INSERT INTO votes (winner, loser, image, created) VALUES (?, ?, ?, ?)",
                        (winner, loser, image, time.time()))

    def pairs(self) -> list[tuple[str, str]]:
        with closing(self._connect()) as con:
            return [(w, l) for w, l in con.execute("SELECT winner, loser FROM votes ORDER BY id")]

    def count(self) -> int:
        with closing(self._connect()) as con:
            return con.execute("SELECT COUNT(*) FROM votes").fetchone()[0]


# ------------------------------------------------------------------------------------------ ranking


def bradley_terry(pairs: Iterable[tuple[str, str]], models: Iterable[str] | None = None, *,
                  prior: float = 0.0, iters: int = 1000, tol: float = 1e-10) -> dict[str, float]:
    """Bradley-Terry strengths from ``(winner, loser)`` votes by Hunter's (2004) MM iterations:

        p_i <- W_i / sum_j n_ij / (p_i + p_j),   then normalised to sum 1,

    where ``W_i`` is i's wins and ``n_ij`` the games between i and j. ``prior`` adds that many virtual
    wins for each side of every pair of models (0 = the plain maximum-likelihood fit; a positive value
    keeps strengths finite and non-zero when a model has won or lost every game, as in a fresh rating).
    Models with no games get the mean strength when ``prior`` is 0.
    """
    pairs = list(pairs)
    names = sorted(set(models or ()) | {m for p in pairs for m in p})
    if not names:
        return {}
    idx = {m: i for i, m in enumerate(names)}
    n = len(names)
    games = [[0.0] * n for _ in range(n)]
    wins = [0.0] * n
    for w, l in pairs:
        if w == l:
            continue
        i, j = idx[w], idx[l]
        games[i][j] += 1
        games[j][i] += 1
        wins[i] += 1
    if prior > 0:
        for i in range(n):
            for j in range(n):
                if i != j:
                    games[i][j] += 2 * prior
            wins[i] += prior * (n - 1)
    played = [sum(row) > 0 for row in games]
    p = [1.0 / n] * n
    for _ in range(iters):
        new = p[:]
        for i in range(n):
            if not played[i]:
                continue
            denom = sum(games[i][j] / (p[i] + p[j]) for j in range(n) if j != i and games[i][j])
            new[i] = wins[i] / denom if denom > 0 else p[i]
        total = sum(new[i] for i in range(n) if played[i])
        k = sum(played)
        if total > 0:  # the played models share their part of the mass; unplayed ones keep 1/n
            new = [new[i] * k / n / total if played[i] else 1.0 / n for i in range(n)]
        delta = max(abs(a - b) for a, b in zip(new, p))
        p = new
        if delta < tol:
            break
    total = sum(p)
    return {m: p[idx[m]] / total for m in names}


@dataclass
class Rated:
    model: str
    strength: float
    wins: int
    losses: int
    coefficient: int | None = None

    @property
    def games(self) -> int:
        return self.wins + self.losses


def rank_votes(pairs: Sequence[tuple[str, str]], models: Iterable[str] | None = None,
               prior: float = 0.5) -> list[Rated]:
    """The models ordered by Bradley-Terry strength (best first; ties by wins, then name), with their
    win/loss counts and, when there are at most 9, their expert coefficients."""
    pairs = list(pairs)
    strength = bradley_terry(pairs, models, prior=prior)
    wins = {m: 0 for m in strength}
    losses = {m: 0 for m in strength}
    for w, l in pairs:
        if w != l:
            wins[w] += 1
            losses[l] += 1
    rows = [Rated(m, s, wins[m], losses[m]) for m, s in strength.items()]
    rows.sort(key=lambda r: (-round(r.strength, 12), -r.wins, r.model))
    if len(rows) <= EXPERT_MAX - EXPERT_MIN + 1:
        for r, c in zip(rows, coefficients_from_ranking([r.model for r in rows]).values()):
            r.coefficient = c
    return rows


def coefficients_from_ranking(ranked: Sequence[str]) -> dict[str, int]:
    """Best first -> expert coefficients 10, 9, 8, ... (integers 2..10, each used once)."""
    ranked = list(ranked)
    if len(set(ranked)) != len(ranked):
        raise ValueError(f"duplicate model names in the ranking: {ranked}")
    room = EXPERT_MAX - EXPERT_MIN + 1
    if len(ranked) > room:
        raise ValueError(f"{len(ranked)} models ranked, but only {room} distinct expert coefficients "
                         f"({EXPERT_MIN}..{EXPERT_MAX}) exist: rate at most {room} models")
    return {m: EXPERT_MAX - i for i, m in enumerate(ranked)}


def expert_yaml(coefficients: dict[str, int]) -> str:
    """The text ``write_expert`` writes (for a download button)."""
    import json

    return "".join(f"{json.dumps(str(m))}: {int(v)}\n" for m, v in coefficients.items())


def save_expert(path: str | Path, coefficients: dict[str, int]) -> Path:
    """Write the coefficients as the YAML ``select_best.py select.expert=PATH`` reads (validated)."""
    return write_expert(path, coefficients, models=list(coefficients))
