"""n-step transitions against a per-transition Python reference, across episode ends and batch ends."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.objectives import MultiStep, nstep_return


def _batch(B, T, p_done=0.2):
    term = torch.rand(B, T, 1) < p_done / 2
    trunc = (torch.rand(B, T, 1) < p_done / 2) & ~term
    return TensorDict({
        "observation": torch.randn(B, T, 3),
        "next": {"observation": torch.randn(B, T, 3), "reward": torch.randn(B, T, 1, dtype=torch.float64),
                 "done": term | trunc, "terminated": term, "truncated": trunc},
    }, batch_size=[B, T])


def _reference(td, n, gamma):
    """Loop over every transition and window step."""
    B, T = td.batch_size
    out = {"reward": torch.zeros(B, T, 1, dtype=torch.float64), "steps": torch.zeros(B, T, 1, dtype=torch.int64),
           "last": torch.zeros(B, T, dtype=torch.int64)}
    r, d = td["next", "reward"], td["next", "done"]
    for b in range(B):
        for t in range(T):
            total, m = 0.0, 0
            for k in range(n):
                if t + k >= T:
                    break
                total += gamma ** k * r[b, t + k, 0].item()
                m += 1
                if d[b, t + k, 0]:
                    break
            out["reward"][b, t, 0], out["steps"][b, t, 0], out["last"][b, t] = total, m, t + m - 1
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_matches_reference_across_episode_ends(n):
    td = _batch(4, 23)
    ref = _reference(td, n, 0.9)
    out = nstep_return(td.clone(), n, 0.9)
    torch.testing.assert_close(out["next", "reward"], ref["reward"])
    assert torch.equal(out["steps_to_next_obs"], ref["steps"])
    idx = ref["last"]
    for key in ("observation", "done", "terminated", "truncated"):
        expected = torch.stack([td["next", key][b, idx[b]] for b in range(4)])
        assert torch.equal(out["next", key], expected), key
    assert torch.equal(out["next", "original_reward"], td["next", "reward"])
    assert torch.equal(out["observation"], td["observation"])  # the root is untouched
    # a window shorter than n that the batch end did not cut ends exactly at an episode end
    steps = out["steps_to_next_obs"].squeeze(-1)
    t = torch.arange(23)
    short = (steps < n) & (t + steps < 23)
    assert out["next", "done"].squeeze(-1)[short].all()
    # and no window contains a done step before its last step
    d = td["next", "done"].squeeze(-1)
    for k in range(1, n):
        inside = (steps > k) & (t + k - 1 < 23)
        prior = torch.nn.functional.pad(d[:, k - 1:], (0, k - 1))
        assert not (prior & inside).any()


def test_n1_is_identity_on_rewards_and_unbatched_time():
    td = _batch(1, 9)[0]  # [T]
    out = nstep_return(td.clone(), 1, 0.5)
    assert torch.equal(out["next", "reward"], td["next", "reward"])
    assert (out["steps_to_next_obs"] == 1).all()
    assert torch.equal(out["next", "observation"], td["next", "observation"])
    ref = _reference(td.unsqueeze(0), 3, 0.5)
    out3 = MultiStep(3, 0.5)(td.clone())
    torch.testing.assert_close(out3["next", "reward"], ref["reward"][0])


def test_time_first_layout():
    td = _batch(3, 11)
    ref = nstep_return(td.clone(), 3, 0.9)
    out = nstep_return(td.clone().transpose(0, 1), 3, 0.9, time_dim=0)
    torch.testing.assert_close(out["next", "reward"], ref["next", "reward"].transpose(0, 1))
    assert torch.equal(out["next", "observation"], ref["next", "observation"].transpose(0, 1))


def test_errors():
    td = _batch(2, 5)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        nstep_return(td, 0, 0.9)
    with pytest.raises(KeyError, match=r"no \('next', 'rew'\) entry"):
        nstep_return(td, 2, 0.9, reward_key="rew")
    with pytest.raises(KeyError, match="no 'next' entry"):
        nstep_return(td.exclude("next"), 2, 0.9)
    with pytest.raises(ValueError, match="MultiStep: n must be >= 1"):
        MultiStep(0, 0.9)
