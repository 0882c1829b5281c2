"""The key checkpoint property: a resumed run continues exactly as the uninterrupted run does."""
import pytest
import torch
from _setups import dqn, ppo

from rlbench.testing import ListLogger

N, K = 7, 3  # batches in all; batches before the checkpoint


def _record(trainer):
    losses = []
    trainer.register_op("post_loss", lambda td: losses.append(
        torch.stack([v.detach() for k, v in sorted(td.items()) if k.startswith("loss_")])))
    return losses


@pytest.mark.parametrize("setup", [dqn, ppo], ids=["dqn_offpolicy", "ppo_onpolicy"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, setup):
    full = setup(N, logger=ListLogger())
    full_losses = _record(full)
    full.train()
    assert full.batches == N and len(full_losses) >= N

    first = setup(N, logger=ListLogger())
    first_losses = _record(first)
    first.train(batches=K)
    assert first.batches == K
    first.save(tmp_path / "ckpt.pt")
    torch.manual_seed(1234)  # disturb every RNG the checkpoint must restore

    resumed = setup(N, logger=ListLogger())  # fresh objects, built exactly as before
    resumed_losses = _record(resumed)
    resumed.load(tmp_path / "ckpt.pt")
    assert (resumed.frames, resumed.batches, resumed.updates) == (first.frames, K, first.updates)
    resumed.train()
    assert resumed.batches == N

    assert len(first_losses) + len(resumed_losses) == len(full_losses)
    expected = torch.stack(full_losses[len(first_losses):])
    assert torch.equal(torch.stack(resumed_losses), expected)  # exact, not approximately
    assert torch.equal(torch.stack(first_losses), torch.stack(full_losses[:len(first_losses)]))
    for a, b in zip(full.loss.state_dict().values(), resumed.loss.state_dict().values()):
        assert torch.equal(a, b)  # same final weights (and target weights)
    # the logged metrics after the checkpoint match too (including intervals that straddle it)
    assert resumed.logger.rows == full.logger.rows[len(first.logger.rows):]


def test_load_into_a_trainer_built_differently_fails_clearly(tmp_path):
    trainer = dqn(2)
    trainer.train(batches=1)
    trainer.save(tmp_path / "ckpt.pt")
    other = ppo(2)
    name = type(other.loss).__name__  # the clipped PPO loss, whatever its class is called
    with pytest.raises(RuntimeError, match=rf"cannot load 'loss' \(saved from a DQNLoss\) into this {name}"):
        other.load(tmp_path / "ckpt.pt")


class _StatelessCollector:
    """A collector without state_dict (like the multi-process ones): wraps a real one, hiding its state."""

    def __init__(self, inner):
        self.inner, self.policy, self.total_frames = inner, inner.policy, inner.total_frames

    @property
    def frames(self):
        return self.inner.frames

    @frames.setter
    def frames(self, value):
        self.inner.frames = value

    def __iter__(self):
        return iter(self.inner)

    def update_policy_weights_(self, weights=None):
        pass


def test_collector_without_state_keeps_its_frame_count(tmp_path):
    trainer = ppo(4)
    trainer.collector = _StatelessCollector(trainer.collector)
    trainer.train(batches=2)
    trainer.save(tmp_path / "ckpt.pt")
    fresh = ppo(4)
    fresh.collector = _StatelessCollector(fresh.collector)
    fresh.load(tmp_path / "ckpt.pt")
    assert fresh.frames == trainer.frames == 64 and fresh.batches == 2
    fresh.train()
    assert fresh.batches == 4 and fresh.frames == 128  # the run ends at total_frames, as if never stopped
