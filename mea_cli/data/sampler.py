"""Length-bucketed batches: similar lengths share a batch, so per-batch padding stays small.

Unaligned benchmark sequences vary a lot in length (MOSI vision: a few to 500 frames). Padding
each batch to its own longest sequence (see :func:`mea_cli.data.dataset.collate`) only pays off
when a batch holds sequences of similar length; :class:`BucketBatchSampler` arranges that while
keeping the order random enough for SGD.

Each epoch, deterministically from ``(seed, epoch)``:

1. the indices are permuted (``shuffle=True``) or kept in order;
2. like :class:`torch.utils.data.DistributedSampler`, the list is padded by repeating its start
   (or, with ``drop_last``, cut) to a multiple of ``num_replicas`` and rank ``r`` takes every
   ``num_replicas``-th index from ``r`` on: ranks get disjoint, equal-count shares;
3. the rank's share is cut into pools of ``pool_batches * batch_size`` indices, each pool is
   sorted by length (ties keep the permuted order) and cut into batches;
4. the order of the batches is shuffled (``shuffle=True``).

Every rank thus yields the same number of batches, as DistributedDataParallel requires.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Yield lists of dataset indices whose lengths are close (see the module docstring).

    Args:
        lengths: one length per dataset item (the padding cost proxy to bucket by).
        batch_size: items per batch (the last batch of a rank may be smaller unless
            ``drop_last``).
        shuffle: permute items and batch order each epoch.
        seed: base seed; the permutation depends only on ``(seed, epoch)``.
        num_replicas, rank: distributed share, as in ``DistributedSampler``.
        drop_last: cut the data tail instead of padding by repetition, and drop a rank's
            incomplete last batch.
        pool_batches: how many batches' worth of items are sorted together; larger means less
            padding, smaller means more random batch composition.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_batches: int = 50,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        if pool_batches < 1:
            raise ValueError(f"pool_batches must be at least 1, got {pool_batches}")
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = drop_last
        self.pool_batches = int(pool_batches)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation the next ``iter()`` uses."""
        self.epoch = int(epoch)

    @property
    def num_samples(self) -> int:
        """Items per rank per epoch (after padding or cutting)."""
        n = len(self.lengths)
        if self.drop_last:
            return n // self.num_replicas
        return -(-n // self.num_replicas)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def _share(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        total = self.num_samples * self.num_replicas
        # pad by repetition (np.resize wraps as often as tiny data need), or cut the tail
        order = np.resize(order, total) if total > n else order[:total]
        return order[self.rank :: self.num_replicas]

    def batches(self) -> list[list[int]]:
        """This epoch's batches for this rank (what ``iter()`` yields)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        share = self._share(rng)
        pool = self.pool_batches * self.batch_size
        out: list[list[int]] = []
        for a in range(0, len(share), pool):
            chunk = share[a : a + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            out.extend(
                chunk[b : b + self.batch_size].tolist()
                for b in range(0, len(chunk), self.batch_size)
            )
        if self.drop_last:
            out = [b for b in out if len(b) == self.batch_size]
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())
