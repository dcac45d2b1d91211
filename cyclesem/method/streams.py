"""The module's own random streams — the image pools' coin flips and the discriminators' instance noise — one set
per DDP rank, and their place in checkpoints.

Each stream is seeded from the run's seed (``torch.initial_seed()`` when the module is built, set by
``seed_everything``) and the rank: rank 0 draws what a single-process run draws, every other rank its own stream
(with one seed for all, every rank would swap the same pool positions and add the same noise). None of them
draws from the process's global generators, which the data loader also draws from (its base seed, each time an
epoch's iterator starts — also right after a resume), so a resumed run continues every stream exactly.

A checkpoint holds, for every rank, its pools, its noise generator's state and its process's global RNG states
(`rng_states`): `gather_from_ranks` collects them on every rank (Lightning builds a checkpoint on all ranks and
writes rank 0's), and a resume on the same number of ranks gives each rank back its own. What is not exact:

- the process's global RNG states are restored, then drawn from before the first resumed batch: Lightning's
  ``fit_loop.setup_data`` starts the training loaders' iterators, and each PyTorch DataLoader without a
  ``generator`` draws its base seed from the global torch generator (one draw per loader, source and target;
  the uninterrupted run drew them at the start of the epoch, before the checkpoint). So a resumed run's global
  stream runs that many draws ahead, on every rank. Nothing in training draws from it (the data order,
  augmentations, pools and noise have their own generators), and a resumed run's weights are bit-identical
  (tests/test_faults.py). Giving the loaders their own generators would make it exact;
- a resume on another number of ranks: rank r takes the saved rank r's streams when there is one; ranks beyond
  the saved count keep fresh streams (the warning says so);
- a checkpoint written before the streams were per rank (one ``pools`` / ``rng`` entry, rank 0's): every rank
  loads rank 0's pools, as those runs did;
- noise drawn on another device type than the checkpoint's (its generator states do not convert): the noise
  stream restarts from the rank's seed.

A DDP checkpoint therefore holds ``world_size`` × 2 pools of up to ``pool_size`` fakes each.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cyclesem.method.image_pool import ImagePool
from cyclesem.method.rng import rng_states, set_rng_states

_POOLS, _NOISE = 0x9001, 0x9002  # one entropy word per kind of stream


def _seeds(seed: int, kind: int, rank: int, count: int) -> list[int]:
    # rank 0 leaves the rank out of the entropy: its streams are those of a single-process run
    words = [seed, kind] + ([rank] if rank else [])
    return [int(s) >> 1 for s in np.random.SeedSequence(words).generate_state(count, dtype=np.uint64)]


class RankStreams:
    """The image pools (``pool_s`` fakes in the source domain, ``pool_t`` in the target domain) and the instance
    noise of one rank; `for_rank` re-seeds them when the module learns its rank (`CycleSemModule.setup`)."""

    def __init__(self, pool_size: int, seed: int) -> None:
        self.pool_size, self.seed, self.rank = pool_size, seed, 0
        self.pool_s = self.pool_t = None  # set by for_rank
        self._noise: torch.Generator | None = None  # created on the first image's device
        self._noise_state: dict[str, Any] | None = None  # restored before that device is known
        self.for_rank(0)

    def for_rank(self, rank: int) -> None:
        """Fresh streams of `rank` (each pool its own coins: one seed for both would swap the same positions)."""
        self.rank = rank
        seed_s, seed_t = _seeds(self.seed, _POOLS, rank, 2)
        self.pool_s, self.pool_t = ImagePool(self.pool_size, seed=seed_s), ImagePool(self.pool_size, seed=seed_t)
        self._noise, self._noise_state = None, None

    def noise_like(self, image: Tensor) -> Tensor:
        """Standard normal noise of `image`'s shape, dtype, device and memory format, from this rank's stream."""
        if self._noise is None or self._noise.device.type != image.device.type:
            self._noise = torch.Generator(device=image.device)
            self._noise.manual_seed(_seeds(self.seed, _NOISE, self.rank, 1)[0])
            saved, self._noise_state = self._noise_state, None
            if saved is not None and saved["device_type"] == image.device.type:
                self._noise.set_state(saved["state"])
            elif saved is not None:
                warnings.warn(f"the instance-noise stream was saved on {saved['device_type']} and is drawn on "
                              f"{image.device.type} now: it restarts from the rank's seed", stacklevel=2)
        return torch.empty_like(image).normal_(generator=self._noise)

    def state_dict(self) -> dict[str, Any]:
        """This rank's streams and its process's global RNG states: CPU tensors and plain values only."""
        noise = self._noise_state
        if self._noise is not None:
            noise = {"device_type": self._noise.device.type, "state": self._noise.get_state()}
        pools = {"source": self.pool_s.state_dict(), "target": self.pool_t.state_dict()}
        for pool in pools.values():
            pool["images"] = pool["images"].cpu()
        return {"rank": self.rank, "pools": pools, "noise": noise, "rng": rng_states()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pool_s.load_state_dict(state["pools"]["source"])
        self.pool_t.load_state_dict(state["pools"]["target"])
        self._noise, self._noise_state = None, state.get("noise")
        if "rng" in state:
            set_rng_states(state["rng"])


def gather_from_ranks(state: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's `state`, in rank order; a collective: every rank calls it."""
    if world_size == 1:
        return [state]
    states: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(states, state)
    return states


def state_of_rank(saved: dict[str, Any], rank: int, world_size: int) -> dict[str, Any] | None:
    """The streams `rank` resumes with from a checkpoint's ``cyclesem`` entry; None: keep its fresh ones."""
    ranks = saved.get("ranks")
    if ranks is None:  # written before the streams were per rank: rank 0's pools and RNG states only
        if world_size > 1 and rank == 0:
            warnings.warn("this checkpoint holds rank 0's image pools and RNG states only (written before each "
                          "rank's were kept): every rank resumes with rank 0's, so the resume is not exact",
                          stacklevel=2)
        return {"pools": saved["pools"], **({"rng": saved["rng"]} if "rng" in saved else {})}
    if len(ranks) != world_size and rank == 0:
        warnings.warn(f"resuming on {world_size} ranks from a checkpoint of {len(ranks)}: rank r takes the saved "
                      f"rank r's image pools and random streams, ranks >= {len(ranks)} start fresh ones, so the "
                      "resume is not exact", stacklevel=2)
    return ranks[rank] if rank < len(ranks) else None
