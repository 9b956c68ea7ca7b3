"""Choose the network to deploy: the seed study's points rule, an expert's coefficients, the export.

The rule (``conf/select.yaml``): rank the N candidate models by each criterion -- PSNR (higher is
better), time on a colour photo and on a grey photo (lower is better). In each criterion the best
model gets N points and the worst 1; tied models share the average of the points of the places they
occupy. The weighted sum of the points (0.5 / 0.3 / 0.2 by default) is multiplied by the model's expert
coefficient -- an integer 2..10, each value given to at most one model, chosen by a person (a YAML
file ``model: coefficient``, or the app's rating page) -- and the highest score wins. Without an expert
file every coefficient is 1, and the output says so.

Inputs: ``evaluate.py``'s results (``results/results.csv``, or a folder of ``<label>/metrics.json``; one
scale and protocol at a time), or a
plain CSV table with the columns ``model`` and one per criterion (results from elsewhere). The
``bicubic`` baseline row is shown for reference but not ranked unless asked to.

Outputs: ``ranking.csv`` (best first) and, for the winner, a deploy folder (:mod:`srlab.deploy`).

Library use::

    rows, source = load_results("results")           # or load_table("table.csv")
    ranking = rank_models(rows, parse_criteria(DEFAULT_CRITERIA), expert=None)
    print(format_ranking(ranking))
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BICUBIC = "bicubic"
EXPERT_MIN, EXPERT_MAX = 2, 10
DEFAULT_CRITERIA: dict[str, dict[str, Any]] = {
    "psnr": {"weight": 0.5, "higher_is_better": True},
    "time_color": {"weight": 0.3, "higher_is_better": False},
    "time_gray": {"weight": 0.2, "higher_is_better": False},
}
#: metrics.json keys under the names results.csv (and the criteria) use.
METRICS_ALIASES = {"time_color": "time_color_s", "time_gray": "time_gray_s"}
RANKING_FILE = "ranking.csv"


class SelectionError(ValueError):
    """Bad selection input: the message says what to fix."""


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float
    higher_is_better: bool

    def describe(self) -> str:
        return f"{self.name} (weight {self.weight:g}, {'higher' if self.higher_is_better else 'lower'} is better)"


@dataclass
class Entry:
    """One ranked (or reference) model."""

    model: str
    row: dict[str, Any]                       # everything known about it (results.csv row / metrics.json)
    values: dict[str, float] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    weighted: float | None = None
    expert: int = 1
    score: float | None = None
    rank: int | None = None

    @property
    def checkpoint(self) -> str | None:
        ckpt = self.row.get("checkpoint")
        return str(ckpt) if ckpt not in (None, "", "None", "null") else None


@dataclass
class Ranking:
    criteria: list[Criterion]
    ranked: list[Entry]                       # best first
    reference: list[Entry]                    # shown, not ranked (bicubic by default)
    expert_given: bool
    source: str = ""

    @property
    def winner(self) -> Entry:
        return self.ranked[0]


# ----------------------------------------------------------------------------------------- the rule


def parse_criteria(cfg: Mapping[str, Any] | None) -> list[Criterion]:
    """``{name: {weight, higher_is_better}}`` -> criteria; anything missing or odd is an error."""
    if not cfg:
        raise SelectionError("select.criteria is empty: give at least one criterion {name: {weight, higher_is_better}}")
    criteria = []
    for name, spec in cfg.items():
        if not isinstance(spec, Mapping):
            raise SelectionError(f"criterion {name!r}: expected {{weight: <number>, higher_is_better: <bool>}}, got {spec!r}")
        unknown = set(spec) - {"weight", "higher_is_better"}
        if unknown:
            raise SelectionError(f"criterion {name!r}: unknown key(s) {sorted(unknown)} (allowed: weight, higher_is_better)")
        if "weight" not in spec or "higher_is_better" not in spec:
            raise SelectionError(f"criterion {name!r}: both weight and higher_is_better are required, got {dict(spec)}")
        weight, hib = spec["weight"], spec["higher_is_better"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise SelectionError(f"criterion {name!r}: weight must be a number >= 0, got {weight!r}")
        if not isinstance(hib, bool):
            raise SelectionError(f"criterion {name!r}: higher_is_better must be true or false, got {hib!r}")
        criteria.append(Criterion(str(name), float(weight), hib))
    if sum(c.weight for c in criteria) <= 0:
        raise SelectionError("all criterion weights are 0: nothing would be ranked")
    return criteria


def rank_points(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Points per value: the best of N gets N, the worst 1; ties share the mean of their places' points.

    A value's points are ``(#strictly worse) + (#equal, itself included, + 1) / 2``, which is the mean of
    the points of the places the tied values occupy. Values compare exactly (as read).
    """
    points = []
    for v in values:
        worse = sum(1 for w in values if (w < v if higher_is_better else w > v))
        equal = sum(1 for w in values if w == v)
        points.append(worse + (equal + 1) / 2)
    return points


def _number(value: Any, model: str, column: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        raise SelectionError(f"model {model!r} has no usable {column!r} value ({value!r}); every ranked model needs one")
    return x


def check_expert(coefficients: Mapping[str, Any], models: Iterable[str]) -> dict[str, int]:
    """Validate expert coefficients for the ranked ``models``: every model has exactly one, each an
    integer in 2..10, no value used twice, no unknown model."""
    models = list(models)
    coeffs: dict[str, int] = {}
    for model, value in coefficients.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise SelectionError(f"expert coefficient of {model!r} must be an integer {EXPERT_MIN}..{EXPERT_MAX}, got {value!r}")
        if not EXPERT_MIN <= value <= EXPERT_MAX:
            raise SelectionError(f"expert coefficient of {model!r} is {value}, outside {EXPERT_MIN}..{EXPERT_MAX}")
        coeffs[str(model)] = value
    unknown = [m for m in coeffs if m not in models]
    if unknown:
        hint = (f" ({BICUBIC} is not ranked: set select.include_bicubic=true to rank it)" if BICUBIC in unknown else "")
        raise SelectionError(f"expert coefficients for unknown model(s) {unknown}{hint}; the ranked models are {models}")
    by_value: dict[int, list[str]] = {}
    for model, value in coeffs.items():
        by_value.setdefault(value, []).append(model)
    dup = {v: ms for v, ms in by_value.items() if len(ms) > 1}
    if dup:
        desc = "; ".join(f"{v} given to {', '.join(ms)}" for v, ms in sorted(dup.items()))
        raise SelectionError(f"each expert coefficient may be used once: {desc}")
    missing = [m for m in models if m not in coeffs]
    if missing:
        extra = (f"; only {EXPERT_MAX - EXPERT_MIN + 1} distinct coefficients exist, so rank at most that many "
                 f"models with an expert file" if len(models) > EXPERT_MAX - EXPERT_MIN + 1 else "")
        raise SelectionError(f"no expert coefficient for model(s) {missing}: give every ranked model one "
                             f"({EXPERT_MIN}..{EXPERT_MAX}) or run without select.expert{extra}")
    return coeffs


def rank_models(rows: Sequence[Mapping[str, Any]], criteria: Sequence[Criterion],
                expert: Mapping[str, Any] | None = None, include_bicubic: bool = False,
                source: str = "") -> Ranking:
    """Apply the rule to ``rows`` (each with ``model`` and one column per criterion)."""
    if not rows:
        raise SelectionError(f"no models to rank{f' in {source}' if source else ''} (empty table)")
    columns = set().union(*(r.keys() for r in rows))
    missing = [c.name for c in criteria if c.name not in columns]
    if missing:
        raise SelectionError(f"criterion column(s) {missing} not found{f' in {source}' if source else ''}; "
                             f"columns there: {sorted(columns)}")
    seen: set[str] = set()
    ranked, reference = [], []
    for row in rows:
        model = str(row.get("model") or "").strip()
        if not model:
            raise SelectionError(f"a row without a model name{f' in {source}' if source else ''}: {dict(row)}")
        if model in seen:
            raise SelectionError(f"model {model!r} appears twice{f' in {source}' if source else ''}; labels must be unique")
        seen.add(model)
        entry = Entry(model, dict(row))
        (reference if model == BICUBIC and not include_bicubic else ranked).append(entry)
    if not ranked:
        raise SelectionError(f"nothing to rank{f' in {source}' if source else ''}: only the {BICUBIC} baseline "
                             f"(set select.include_bicubic=true to rank it)")
    for entry in ranked:
        entry.values = {c.name: _number(entry.row.get(c.name), entry.model, c.name) for c in criteria}
    for entry in reference:  # shown as-is; a missing value is no error here
        for c in criteria:
            try:
                entry.values[c.name] = float(entry.row.get(c.name))
            except (TypeError, ValueError):
                pass
    coeffs = check_expert(expert, [e.model for e in ranked]) if expert is not None else {}
    for c in criteria:
        for entry, pts in zip(ranked, rank_points([e.values[c.name] for e in ranked], c.higher_is_better)):
            entry.points[c.name] = pts
    for entry in ranked:
        entry.weighted = sum(c.weight * entry.points[c.name] for c in criteria)
        entry.expert = coeffs.get(entry.model, 1)
        entry.score = entry.weighted * entry.expert
    # Equal scores: the larger weighted sum, then the most important criterion's points, then the name.
    by_weight = sorted(criteria, key=lambda c: -c.weight)
    ranked.sort(key=lambda e: (-round(e.score, 9), -round(e.weighted, 9),
                               *(-e.points[c.name] for c in by_weight), e.model))
    for i, entry in enumerate(ranked, 1):
        entry.rank = i
    return Ranking(list(criteria), ranked, reference, expert is not None, source)


# ------------------------------------------------------------------------------------------- inputs


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise SelectionError(f"{path}: empty file (no header row)")
        rows = [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
                for row in reader]
    if not rows:
        raise SelectionError(f"{path}: empty table (a header and no rows)")
    return rows


def metrics_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics.json dict flattened into results.csv's column names (``time_color``, ``psnr_Set5``, ...);
    the original stays under ``"metrics"``."""
    row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    for name, key in METRICS_ALIASES.items():
        if name not in row and key in metrics:
            row[name] = metrics[key]
    for set_name, set_metrics in (metrics.get("sets") or {}).items():
        for key in ("psnr", "ssim"):
            if isinstance(set_metrics, Mapping) and key in set_metrics:
                row.setdefault(f"{key}_{set_name}", set_metrics[key])
    row["metrics"] = dict(metrics)
    return row


def _read_metrics_dir(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.glob("*/metrics.json"))
    rows = []
    for path in files:
        try:
            metrics = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise SelectionError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(metrics, dict) or "model" not in metrics:
            raise SelectionError(f"{path}: not an evaluate.py metrics.json (no 'model' key)")
        row = metrics_row(metrics)
        row["_metrics_path"] = str(path)
        rows.append(row)
    return rows


def _key(row: Mapping[str, Any]) -> tuple[str, int | None, str | None]:
    scale = row.get("scale")
    try:
        scale = int(float(scale))
    except (TypeError, ValueError):
        scale = None
    protocol = row.get("protocol")
    return str(row.get("model")), scale, (str(protocol) if protocol not in (None, "") else None)


def filter_results(rows: list[dict[str, Any]], scale: int | None = None, protocol: str | None = None,
                   source: str = "") -> list[dict[str, Any]]:
    """Keep the rows of one scale and protocol. Without a filter the rows must already agree: a ranking
    across scales or protocols compares numbers that mean different things."""
    where = f" in {source}" if source else ""
    if scale is not None:
        rows = [r for r in rows if _key(r)[1] == int(scale)]
    if protocol is not None:
        rows = [r for r in rows if _key(r)[2] == str(protocol)]
    if not rows and (scale is not None or protocol is not None):
        raise SelectionError(f"no results{where} with scale={scale} protocol={protocol}")
    combos = sorted({_key(r)[1:] for r in rows}, key=str)
    if len(combos) > 1:
        desc = ", ".join(f"x{s} {p}" for s, p in combos)
        raise SelectionError(f"results{where} mix scales/protocols ({desc}); choose one with "
                             f"scale=<2|3|4> and/or protocol=<y|rgb> (select.scale, select.protocol)")
    return rows


def load_results(path: str | Path, scale: int | None = None, protocol: str | None = None) -> tuple[list[dict[str, Any]], Path]:
    """evaluate.py's results: ``results.csv`` (or a folder holding it: the latest evaluation), or a folder
    of ``<label>/metrics.json`` only. Returns the rows of one scale/protocol (:func:`filter_results`) and
    the folder they came from.

    Rows from results.csv get their model's full metrics.json (same label, scale and protocol, when it
    sits beside it) under ``"metrics"``, for the deploy export."""
    path = Path(path)
    if path.is_dir():
        if (path / "results.csv").is_file():
            path = path / "results.csv"
        else:
            rows = _read_metrics_dir(path)
            if not rows:
                raise SelectionError(f"{path}: no results.csv and no */metrics.json inside; run evaluate.py first, "
                                     f"or give select.table=FILE.csv")
            return filter_results(rows, scale, protocol, str(path)), path
    if not path.is_file():
        raise SelectionError(f"no results at {path}: run evaluate.py first, or give select.results=DIR|FILE.csv "
                             f"or select.table=FILE.csv")
    rows = _read_csv(path)
    if "model" not in rows[0]:
        raise SelectionError(f"{path}: no 'model' column; columns: {sorted(rows[0])}")
    rows = filter_results(rows, scale, protocol, str(path))
    full = {_key(r): r for r in _read_metrics_dir(path.parent)}
    for row in rows:
        match = full.get(_key(row))
        if match is not None:
            row["metrics"] = match["metrics"]
            row["_metrics_path"] = match["_metrics_path"]
    return rows, path.parent


def load_table(path: str | Path) -> tuple[list[dict[str, Any]], Path]:
    """A plain CSV table (results from elsewhere): ``model`` plus one column per criterion
    (``psnr, time_color, time_gray`` by default); an optional ``checkpoint`` column enables the export."""
    path = Path(path)
    if not path.is_file():
        raise SelectionError(f"select.table: no such file {path}")
    rows = _read_csv(path)
    if "model" not in rows[0]:
        raise SelectionError(f"{path}: no 'model' column; columns: {sorted(rows[0])}")
    return rows, path.parent


def load_expert(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Expert coefficients from a YAML/JSON file ``{model: coefficient}`` (or an already-parsed mapping).
    Duplicated keys in the file are an error; values are validated by :func:`check_expert`."""
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        import yaml
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        path = Path(source)
        if not path.is_file():
            raise SelectionError(f"select.expert: no such file {path}")
        try:
            data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # rejects duplicate keys
        except (yaml.YAMLError, OmegaConfBaseException, ValueError, OSError) as err:
            raise SelectionError(f"{path}: not a YAML mapping of model: coefficient ({err})") from None
    if not isinstance(data, dict) or not data:
        raise SelectionError(f"expert coefficients must be a non-empty mapping model: coefficient, got {data!r}")
    return {str(k): v for k, v in data.items()}


def write_expert(path: str | Path, coefficients: Mapping[str, int], models: Iterable[str] | None = None) -> Path:
    """Save coefficients (e.g. from the app's rating page) as the YAML ``select.expert`` reads,
    validated against ``models`` when given."""
    if models is not None:
        check_expert(coefficients, models)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{json.dumps(str(m))}: {int(v)}\n" for m, v in coefficients.items()))
    return path


# ------------------------------------------------------------------------------------------ outputs


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        if x == int(x) and abs(x) < 1e6 and digits <= 2:
            return f"{x:.1f}"
        if abs(x) >= 10:
            return f"{x:.2f}"
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


def format_ranking(ranking: Ranking) -> str:
    """The ranking as an aligned text table, plus the reference rows and the expert note."""
    crit = ranking.criteria
    header = ["rank", "model"] + [h for c in crit for h in (c.name, "pts")] + ["weighted", "expert", "score"]
    lines = []
    for e in ranking.ranked:
        lines.append([str(e.rank), e.model] + [s for c in crit for s in (_fmt(e.values[c.name]), _fmt(e.points[c.name], 1))]
                     + [_fmt(e.weighted, 3), str(e.expert), _fmt(e.score, 3)])
    for e in ranking.reference:
        lines.append(["-", e.model] + [s for c in crit for s in (_fmt(e.values.get(c.name)), "-")]
                     + ["-", "-", "-", "(reference, not ranked)"])
    widths = [max(len(r[i]) for r in [header] + lines if i < len(r)) for i in range(len(header))]
    def render(cells: list[str]) -> str:
        out = [c.rjust(w) if i != 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out + cells[len(widths):]).rstrip()
    return "\n".join([render(header)] + [render(r) for r in lines])


def ranking_rows(ranking: Ranking) -> list[dict[str, Any]]:
    rows = []
    for e in ranking.ranked + ranking.reference:
        ranked = e.rank is not None
        row = {"rank": e.rank if ranked else "", "model": e.model, "score": round(e.score, 6) if ranked else "",
               "weighted": round(e.weighted, 6) if ranked else "", "expert": e.expert if ranked else ""}
        for c in ranking.criteria:
            row[c.name] = e.values.get(c.name, "")
            row[f"{c.name}_points"] = e.points.get(c.name, "") if ranked else ""
        row["architecture"] = e.row.get("architecture", "")
        row["checkpoint"] = e.checkpoint or ""
        row["note"] = "" if ranked else "reference, not ranked"
        rows.append(row)
    return rows


def write_ranking_csv(ranking: Ranking, path: str | Path) -> Path:
    """``ranking.csv``: ranked models best first (rank, model, score, weighted, expert, per-criterion
    value and points, architecture, checkpoint), then reference rows with empty rank and score."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ranking_rows(ranking)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def winner_metrics(ranking: Ranking, entry: Entry | None = None) -> dict[str, Any]:
    """The metrics the deploy folder carries: the model's metrics.json (or its table row) plus its
    selection: score, rank, points, expert coefficient, the criteria."""
    entry = entry or ranking.winner
    metrics = dict(entry.row.get("metrics") or {k: v for k, v in entry.row.items() if not k.startswith("_")})
    metrics.setdefault("model", entry.model)
    metrics["score"] = entry.score
    metrics["selection"] = {
        "rank": entry.rank,
        "score": entry.score,
        "weighted": entry.weighted,
        "expert": entry.expert,
        "expert_given": ranking.expert_given,
        "points": dict(entry.points),
        "values": dict(entry.values),
        "criteria": {c.name: {"weight": c.weight, "higher_is_better": c.higher_is_better} for c in ranking.criteria},
        "candidates": len(ranking.ranked),
        "source": ranking.source,
    }
    return metrics


def resolve_checkpoint(ckpt: str, base: Path) -> Path:
    """A checkpoint path as written in the results: absolute, relative to the working directory, or
    relative to the results folder."""
    path = Path(ckpt)
    if path.is_absolute() or path.exists():
        return path
    beside = base / path
    return beside if beside.exists() else path


# ------------------------------------------------------------------------------------------- the job


def run(cfg: Mapping[str, Any], echo=print) -> dict[str, Any]:
    """The whole ``select_best.py`` job on a plain ``select`` config mapping. Returns the ranking, the
    ranking.csv path and the deploy folder (None when nothing was exported)."""
    criteria = parse_criteria(cfg.get("criteria") or None)
    if cfg.get("table"):
        rows, base = load_table(cfg["table"])
        source = str(cfg["table"])
    else:
        if not cfg.get("results"):
            raise SelectionError("give select.results=DIR|results.csv (evaluate.py's output) or select.table=FILE.csv")
        rows, base = load_results(cfg["results"], cfg.get("scale"), cfg.get("protocol"))
        source = str(cfg["results"])
    expert = load_expert(cfg["expert"]) if cfg.get("expert") else None
    ranking = rank_models(rows, criteria, expert, bool(cfg.get("include_bicubic", False)), source)

    echo(f"Selecting among {len(ranking.ranked)} model(s) from {source}"
         + (f" ({', '.join(e.model for e in ranking.reference)} shown for reference, not ranked)" if ranking.reference else ""))
    echo("Criteria: " + "; ".join(c.describe() for c in criteria)
         + ". Points: best of N gets N, worst 1, ties share the average.")
    if expert is None:
        echo("Expert coefficients: none given (select.expert=null), so every model's coefficient is 1 "
             "and the score is the weighted sum of points.")
    else:
        echo(f"Expert coefficients from {cfg['expert'] if not isinstance(cfg['expert'], Mapping) else 'select.expert'}: "
             + ", ".join(f"{e.model}={e.expert}" for e in ranking.ranked))
    echo(format_ranking(ranking))
    top = ranking.winner
    tied = [e.model for e in ranking.ranked[1:] if math.isclose(e.score, top.score, rel_tol=0, abs_tol=1e-9)]
    echo(f"Winner: {top.model} (score {top.score:.3f})"
         + (f"; tied on score with {', '.join(tied)}, decided by the weighted sum, then the "
            f"highest-weighted criterion, then the name" if tied else ""))

    out_dir = Path(cfg["output"]) if cfg.get("output") else base
    ranking_csv = write_ranking_csv(ranking, out_dir / RANKING_FILE)
    echo(f"Wrote {ranking_csv}")

    deploy_dir = None
    if not cfg.get("deploy_dir"):
        echo("select.deploy_dir=null: no deploy export.")
    elif top.model == BICUBIC:
        echo(f"The winner is the {BICUBIC} baseline: there is no network to export; {cfg['deploy_dir']} left unchanged.")
    elif top.checkpoint is None:
        echo(f"The winner {top.model} has no checkpoint in {source}: nothing to export; "
             f"{cfg['deploy_dir']} left unchanged.")
    else:
        from srlab.deploy import export_deploy

        ckpt = resolve_checkpoint(top.checkpoint, base)
        deploy_dir = export_deploy(ckpt, winner_metrics(ranking), cfg["deploy_dir"])
        echo(f"Exported {top.model} ({ckpt}) to {deploy_dir}/ (weights.safetensors, config.json, metrics.json)")
    return {"ranking": ranking, "ranking_csv": ranking_csv, "deploy_dir": deploy_dir}
