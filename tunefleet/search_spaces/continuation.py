"""A restored study's searcher that adds trials: Ray restores a search algorithm's saved state
(its trial count and total) on resume and never reads the new ``num_samples``, so the new total
is applied right after Ray restores that state.

Searchers (HyperOpt, the hypermodel searcher) continue from their own restored state: new
suggestions follow the old ones and trial seeds continue the index. Grid and random search
(Ray's ``BasicVariantGenerator``) draw the new samples from the study's restored random stream,
where the old ones stopped: deterministic for a study and seed, the same configurations as a
study started with the larger ``num_samples``, and new ones (never the old ones again).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

__all__ = ["continued"]


# _forget_live_trials: trials that the study stopped all at once (its time budget spent) never
# reach the searcher's on_trial_complete, so a concurrency limit restored with them would
# count them as running forever and suggest nothing. A continued searcher starts its count
# afresh; trials that resume unfinished then run beside the new ones (the cluster's resources
# still bound how many run at once; their results reach a model-guided searcher only if they
# were suggested after the resume).


def continued(search_alg: Any, num_samples: int, reopen: bool) -> Any:
    """``search_alg`` (a Ray ``Searcher`` or ``BasicVariantGenerator``, built from the spec the
    study continues with) as a Ray search algorithm that, once Ray has restored the study's
    saved state into it, goes on until the study holds ``num_samples`` (Ray's: trials for a
    searcher, repetitions of the space for grid and random search). ``reopen``: also start the
    trials a finished searcher did not (a study whose time budget ran out before it had
    created them all)."""
    from ray.tune.search import SearchGenerator
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if isinstance(search_alg, BasicVariantGenerator):
        return _variants(search_alg, num_samples, reopen)

    class ContinuedGenerator(SearchGenerator):
        def set_state(self, state: dict) -> None:
            super().set_state(state)
            if num_samples > self._total_samples or (reopen and self._counter < num_samples):
                self._total_samples = max(num_samples, self._total_samples)
                self._finished = False  # Ray marks a searcher finished when a study ends
                wrapper: Any = self.searcher
                while hasattr(wrapper, "searcher"):
                    if isinstance(getattr(wrapper, "live_trials", None), set):
                        wrapper.live_trials = set()  # see _forget_live_trials
                        wrapper.num_unfinished_live_trials = 0
                    wrapper = wrapper.searcher

    return ContinuedGenerator(search_alg)


def _variants(generator: Any, num_samples: int, reopen: bool) -> Any:
    """A ``BasicVariantGenerator`` whose restored state gains an iterator for the repetitions
    beyond the ones it was started with, numbered after them, on the restored random stream."""
    from ray.tune.search.basic_variant import BasicVariantGenerator, _TrialIterator
    from ray.tune.search.variant_generator import _count_variants

    class ContinuedVariants(BasicVariantGenerator):
        def set_state(self, state: dict) -> None:
            super().set_state(state)
            done = sum(it.num_samples for it in self._iterators)
            if num_samples > done and self._iterators:
                spec = {**copy.deepcopy(self._iterators[-1].unresolved_spec),
                        "num_samples": num_samples - done}
                start = self._total_samples
                self._total_samples += _count_variants(spec, [])
                self._iterators.append(_TrialIterator(
                    uuid_prefix=self._uuid_prefix, num_samples=num_samples - done,
                    unresolved_spec=spec, constant_grid_search=self._constant_grid_search,
                    start=start, random_state=self._random_state))  # type: ignore[arg-type]
                self._trial_generator = itertools.chain(*self._iterators)  # type: ignore[assignment]
                self._finished, self._live_trials = False, set()
            elif reopen and any(it.num_samples_left or (it.variants and it.variants.has_next())
                                for it in self._iterators):
                self._finished, self._live_trials = False, set()

    out = ContinuedVariants.__new__(ContinuedVariants)
    out.__dict__.update(generator.__dict__)
    return out
