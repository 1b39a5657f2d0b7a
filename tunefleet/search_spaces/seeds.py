"""Trial seeds for model-guided searchers: from the master seed and the trial's index (the order
of suggestions), never from the configuration alone, so that two trials given the same
configuration train with different seeds while the same spec and seed give the same seeds."""

from __future__ import annotations

import zlib
from typing import Any, Optional

from ..spec import TRIAL_SEED_KEY

__all__ = ["indexed_seed", "seeded"]


def indexed_seed(master: int, index: int) -> int:
    """The seed of the ``index``-th suggested trial (0-based) of a study seeded ``master``."""
    return zlib.crc32(f"{int(master)}:trial:{int(index)}".encode()) & 0x7FFFFFFF


def seeded(searcher: Any, master: int) -> Any:
    """``searcher`` (a Ray ``Searcher``) whose every suggestion also carries ``trial_seed``,
    :func:`indexed_seed` of its index; the count is saved and restored with the searcher."""
    from ray.tune.search import Searcher

    class SeededSearcher(Searcher):
        def __init__(self):
            self.searcher, self.index = searcher, 0
            super().__init__(metric=searcher.metric, mode=searcher.mode)

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return self.searcher.set_search_properties(metric, mode, config, **spec)

        def set_max_concurrency(self, max_concurrent: int) -> bool:
            return self.searcher.set_max_concurrency(max_concurrent)

        def suggest(self, trial_id: str) -> Optional[dict]:
            config = self.searcher.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            config = {**config, TRIAL_SEED_KEY: indexed_seed(master, self.index)}
            self.index += 1
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self.searcher.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                              error: bool = False) -> None:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)

        def on_pause(self, trial_id: str) -> None:
            self.searcher.on_pause(trial_id)

        def on_unpause(self, trial_id: str) -> None:
            self.searcher.on_unpause(trial_id)

        # Ray saves a wrapper (anything with ``.searcher``) by get_state, the searcher inside
        # it by save; save and restore here serve a wrapper used on its own.
        def get_state(self) -> dict:
            return {"index": self.index}

        def set_state(self, state: dict) -> None:
            self.index = int(state["index"])

        def save(self, checkpoint_path: str) -> None:
            self.searcher.save(checkpoint_path)

        def restore(self, checkpoint_path: str) -> None:
            self.searcher.restore(checkpoint_path)

    return SeededSearcher()

