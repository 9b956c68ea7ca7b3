"""srlab's web app: upscale a photo with a deployed network, and rate networks blind.

    streamlit run srlab/app.py            # deploy root: $SRLAB_DEPLOY_DIR or ./deploy

Pages (sidebar): **Upscale** -- the photo (yours, or scikit-image's ``chelsea``) upscaled by the chosen
deployed model next to the original, a zoomed crop compared with bicubic, and the result as a PNG;
**Rate** -- the same photo upscaled by two deployed models shown side by side without names, a vote for
the better one (SQLite: ``$SRLAB_VOTES_DB`` or ``<deploy root>/votes.sqlite``), the Bradley-Terry
ranking of all votes and the expert coefficients (10, 9, ...) it gives, written as the YAML
``python select_best.py select.expert=FILE`` reads.

All logic lives in :mod:`srlab.app_support`; this file only draws.
"""

from __future__ import annotations

import random
from pathlib import Path

import streamlit as st
from PIL import Image

from srlab import app_support as sup

BICUBIC = "bicubic"
DISPLAY_SIDE = 320  # crops are shown enlarged to this many pixels (nearest, so pixels stay visible)


# ------------------------------------------------------------------------------------------ cached


@st.cache_resource(show_spinner=False, max_entries=8)
def load_upscaler(path: str, scale: int):
    from srlab.inference import Upscaler

    return Upscaler.load(path, scale=scale)


@st.cache_resource(show_spinner=False)
def result_cache() -> sup.ResultCache:
    return sup.ResultCache(max_entries=12)


@st.cache_resource(show_spinner=False)
def demo_photo() -> Image.Image:
    return sup.demo_image()


@st.cache_data(show_spinner=False, ttl=30)
def deployed_models(root: str) -> list[dict]:
    from srlab.inference import list_deployed

    return list_deployed(root)


@st.cache_data(show_spinner=False, max_entries=4)
def decode_upload(data: bytes, name: str) -> Image.Image:
    return sup.read_upload(data, name)


# ------------------------------------------------------------------------------------------ helpers


def upscaled(choice: dict, image: Image.Image, digest: str) -> tuple[Image.Image, bytes] | None:
    """The cached result, or a bounded run with a wait state and a per-tile progress bar."""
    key = (choice["path"], int(choice["scale"]), digest)
    cache = result_cache()
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        upscaler = load_upscaler(str(choice["path"]), int(choice["scale"]))
    except Exception as err:  # a broken deploy folder must not take the page down
        st.error(f"Cannot load model {choice['name']}: {err}")
        return None
    wait = st.empty()
    bar = st.progress(0.0, text=f"Upscaling with {choice['name']}...")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{choice['name']}: tile {done}/{total}")

    try:
        with st.spinner("Upscaling..."):
            out = sup.bounded_upscale(upscaler, image, progress=progress,
                                      on_wait=lambda: wait.info("Waiting for a free slot..."))
    except sup.BusyError as err:
        st.warning(f"The server is busy: {err}")
        return None
    except (ValueError, MemoryError) as err:  # ImageReadError is a ValueError; so is the pixel limit
        st.error(f"Cannot upscale this image: {err}")
        return None
    finally:
        wait.empty()
        bar.empty()
    value = (out, sup.png_bytes(out))
    cache.put(key, value)
    return value


def bicubic_choice(scale: int) -> dict:
    return {"name": BICUBIC, "path": BICUBIC, "scale": scale, "psnr": None, "time_color_s": None}


def enlarge(im: Image.Image, side: int = DISPLAY_SIDE, resample=Image.Resampling.NEAREST) -> Image.Image:
    w, h = im.size
    f = side / max(w, h)
    return im.resize((max(1, round(w * f)), max(1, round(h * f))), resample)


# ------------------------------------------------------------------------------------------ pages


def photo_from_sidebar() -> tuple[Image.Image, str, str] | None:
    """(image, display name, digest) of the upload, or of the demo photo when nothing is uploaded."""
    up = st.sidebar.file_uploader("Photo to upscale", type=sup.UPLOAD_TYPES,
                                  help="PNG, JPEG, WebP, BMP or TIFF. Nothing uploaded: a demo photo.")
    if up is None:
        image = demo_photo()
        st.sidebar.caption(f"No upload: showing the demo photo ({sup.DEMO_NAME}, scikit-image).")
        return image, sup.DEMO_NAME, "demo-" + sup.image_digest(image)
    try:
        image = decode_upload(up.getvalue(), up.name)
    except sup.InputError as err:
        st.error(str(err))
        return None
    return image, Path(up.name).stem, sup.image_digest(image)


def upscale_page(root: Path, models: list[dict], photo: tuple[Image.Image, str, str]) -> None:
    image, name, digest = photo
    st.title("Super-resolution")
    if not any(not m.get("shipped") for m in models):
        st.info(f"No deployed model in `{root}/`. Make one with `python evaluate.py ...` and then "
                f"`python select_best.py` (it exports the winner to `{root}/best`), or point "
                f"`SRLAB_DEPLOY_DIR` at a deploy folder. Meanwhile "
                + ("the weights that ship with srlab upscale." if models else "the bicubic baseline upscales."))
    if models:
        options = models + [bicubic_choice(4)]
        # 'best', else the first of the user's own, else the shipped default (list_deployed puts it first)
        best = next((i for i, m in enumerate(models) if m.get("name") == "best"), 0)
        choice = st.selectbox("Model", options, index=best, format_func=sup.model_label,
                              help="Deployed models (PSNR and time on a colour photo from their evaluation); "
                                   "'best' is the one select_best.py chose; '(shipped)' ones come with srlab.")
    else:
        scale = st.selectbox("Scale (bicubic baseline)", [2, 3, 4], index=2)
        choice = bicubic_choice(scale)
    scale = int(choice["scale"])
    st.caption(f"{name}: {image.width}x{image.height} -> {image.width * scale}x{image.height * scale} "
               f"with {choice['name']} (x{scale})")

    result = upscaled(choice, image, digest)
    if result is None:
        return
    out, png = result
    left, right = st.columns(2)
    shown = sup.display_size(out.size)  # full-size pixels are in the crop below and the download
    left.image(image.convert("RGB").resize(shown, Image.Resampling.NEAREST),
               caption=f"Original {image.width}x{image.height} (nearest, for display)", width="stretch")
    right.image(out if shown == out.size else out.resize(shown, Image.Resampling.LANCZOS), caption=f"{choice['name']} x{scale}: {out.width}x{out.height}", width="stretch")
    st.download_button("Download PNG", data=png, file_name=f"{name}_x{scale}_{choice['name']}.png",
                       mime="image/png", on_click="ignore", type="primary")

    st.subheader("Zoomed crop")
    c1, c2, c3 = st.columns(3)
    cx = c1.slider("Horizontal position (%)", 0, 100, 50) / 100
    cy = c2.slider("Vertical position (%)", 0, 100, 50) / 100
    frac = c3.slider("Crop size (% of the shorter side)", 5, 100, 20) / 100
    box = sup.crop_box(image.size, cx, cy, frac)
    big = sup.scale_box(box, scale)
    bicubic = sup.bicubic_crop(image, box, scale)
    z1, z2, z3 = st.columns(3)
    z1.image(enlarge(image.convert("RGB").crop(box)), caption="Original (nearest)", width="stretch")
    z2.image(enlarge(bicubic), caption=f"Bicubic x{scale}", width="stretch")
    z3.image(enlarge(out.crop(big)), caption=f"{choice['name']} x{scale}", width="stretch")


def _vote(db_path: str, winner: str, loser: str, image: str) -> None:
    sup.VotesDB(db_path).record(winner, loser, image)
    st.session_state.pop("pair", None)  # next pair
    st.session_state["last_vote"] = (winner, loser)


def rate_page(root: Path, models: list[dict], photo: tuple[Image.Image, str, str]) -> None:
    image, name, digest = photo
    st.title("Blind rating")
    db_path = sup.votes_db_path()
    db = sup.VotesDB(db_path)
    candidates = {sup.rating_name(m): m for m in sup.distinct_for_rating(models)}
    if len(candidates) < 2:
        st.info(f"Rating needs at least two deployed models in `{root}/` (found {len(candidates)}). Export "
                f"more with `srlab.deploy.export_deploy(checkpoint, metrics, '{root}/<name>')`.")
    else:
        pair = st.session_state.get("pair")
        if not pair or any(p not in candidates for p in pair):
            pair = sup.random_pair(list(candidates), random.Random())
            st.session_state["pair"] = pair
        st.write("Which upscaled photo looks better? The models are hidden and their order is random.")
        results = [upscaled(candidates[m], image, digest) for m in pair]
        if all(r is not None for r in results):
            cols = st.columns(2)
            for col, r, side in zip(cols, results, ("Left", "Right")):
                shown = sup.display_size(r[0].size)
                col.image(r[0] if shown == r[0].size else r[0].resize(shown, Image.Resampling.LANCZOS),
                          caption=side, width="stretch")
            b1, b2 = st.columns(2)
            b1.button("Left is better", on_click=_vote, args=(str(db_path), pair[0], pair[1], digest),
                      width="stretch")
            b2.button("Right is better", on_click=_vote, args=(str(db_path), pair[1], pair[0], digest),
                      width="stretch")
        if "last_vote" in st.session_state:
            w, l = st.session_state["last_vote"]
            st.success(f"Vote recorded: {w} beat {l}. Here is a new pair.")

    st.subheader("Ranking from the votes")
    pairs = db.pairs()
    ranking = sup.rank_votes(pairs, list(candidates))
    st.caption(f"{len(pairs)} vote(s) in `{db_path}`. Bradley-Terry strengths (MM iterations, half a "
               f"virtual win each way per pair so unbeaten models stay finite).")
    if not ranking:
        return
    st.dataframe([{"rank": i + 1, "model": r.model, "strength": round(r.strength, 4), "wins": r.wins,
                   "losses": r.losses, "expert coefficient": r.coefficient} for i, r in enumerate(ranking)],
                 hide_index=True)
    if any(r.coefficient is None for r in ranking):
        st.warning("More than 9 models: only 9 distinct expert coefficients (2..10) exist, so no file is offered.")
        return
    coeffs = {r.model: r.coefficient for r in ranking}
    st.code(sup.expert_yaml(coeffs), language="yaml")
    target = st.text_input("Expert file", str(root / "expert.yaml"))
    c1, c2 = st.columns(2)
    if c1.button("Write expert coefficients"):
        try:
            path = sup.save_expert(target, coeffs)
        except (ValueError, OSError) as err:
            st.error(f"Cannot write {target}: {err}")
        else:
            st.success(f"Wrote {path}. Use it: `python select_best.py select.expert={path}` "
                       f"(select_best.py needs a coefficient for every model it ranks).")
    c2.download_button("Download expert.yaml", data=sup.expert_yaml(coeffs), file_name="expert.yaml",
                       mime="text/yaml", on_click="ignore")


def main() -> None:
    st.set_page_config(page_title="srlab super-resolution", layout="wide")
    page = st.sidebar.radio("Page", ["Upscale", "Rate"])
    root = sup.deploy_root()
    try:
        models = deployed_models(str(root))
    except Exception as err:
        st.error(f"Cannot list deployed models in {root}: {err}")
        models = []
    photo = photo_from_sidebar()
    if photo is None:
        return
    if page == "Upscale":
        upscale_page(root, models, photo)
    else:
        # only the user's own deployed models: the expert file must name models select_best.py ranks
        rate_page(root, [m for m in models if not m.get("shipped")], photo)


main()
