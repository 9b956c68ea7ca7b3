"""Rank evaluated networks by the seed study's rule and export the winner for the app.

    python select_best.py [select.results=results] [select.table=FILE.csv] [select.expert=expert.yaml]

See conf/select.yaml for the options and srlab/selection.py for the rule.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from srlab.checkpoint import CheckpointError
from srlab.deploy import DeployError
from srlab.selection import SelectionError, run


@hydra.main(config_path="conf", config_name="select", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run(OmegaConf.to_container(cfg.select, resolve=True), echo=lambda line: print(line, flush=True))
    except (SelectionError, CheckpointError, DeployError) as err:
        raise SystemExit(f"select_best: error: {err}") from None


if __name__ == "__main__":
    main()
