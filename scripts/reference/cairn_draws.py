"""cairn's random draws in Python, so a reference run can start from cairn's weights and see its
batches: the seeded generator (stages/src/ml/rng.rs), the epoch order of `finetune` without length
grouping (training::epoch_batches) and the initialisation of the parameters a checkpoint lacks
(training::fill_parameters). Used with dropout off, these leave arithmetic as the only difference
between the two stacks."""
import math

import torch


class SplitMix64:
    """cairn's seeded generator, draw for draw."""
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = (seed ^ 0x5851F42D4C957F2D) & self.MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def below(self, n):
        return ((self.next_u64() >> 32) * n) >> 32

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def normal(self):
        u1, u2 = 1.0 - self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class CairnOrder(torch.utils.data.Sampler):
    """finetune's epoch order: one generator seeded once, a Fisher–Yates shuffle per epoch (the
    DataLoader cuts it into batches, as cairn does)."""

    def __init__(self, n, seed):
        self.n, self.rng = n, SplitMix64(seed)

    def __len__(self):
        return self.n

    def __iter__(self):
        order = list(range(self.n))
        for i in range(self.n - 1, 0, -1):
            j = self.rng.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return iter(order)


def init_fresh_as_cairn(model, missing, seed):
    """The parameters the checkpoint lacked (`missing`, HF names), drawn as cairn draws them: in
    name order from one generator, weights N(0, initializer_range), biases 0."""
    rng, std = SplitMix64(seed), model.config.initializer_range
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in sorted(missing):
            p = params[name]
            if name.endswith("bias"):
                p.zero_()
            else:
                draws = [rng.normal() * std for _ in range(p.numel())]
                p.copy_(torch.tensor(draws, dtype=torch.float64).reshape(p.shape))
