"""rlbench.testing.check_loss_contract: it passes a sound loss, leaves what it is given alone, catches broken ones."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.objectives import DQNLoss, LossModule
from rlbench.testing import action_value_critic, check_loss_contract, value_critic


def _transitions(b=8, obs=3):
    return TensorDict({"observation": torch.randn(b, obs), "action": torch.randint(2, (b,)),
                       "next": {"observation": torch.randn(b, obs), "reward": torch.randn(b, 1),
                                "terminated": torch.zeros(b, 1, dtype=torch.bool)}}, batch_size=[b])


class _ValueRegression(LossModule):
    """A small loss to break on purpose: V(s) regressed onto the reward, with a target copy."""

    default_keys = {"value": "state_value", "reward": "reward", "done": "done", "terminated": "terminated"}

    def __init__(self, critic, *, detach_diagnostic=True, hard_coded_reward=False):
        super().__init__()
        self.convert_to_functional(critic, "critic", create_target_params=True)
        self.detach_diagnostic, self.hard_coded_reward = detach_diagnostic, hard_coded_reward

    def forward(self, td):
        value = self.network_output("critic", td, self.tensor_keys.value)
        reward, _ = self.reward_and_terminated(td)  # checked: shape, finite values
        if self.hard_coded_reward:  # the bug to catch: a key read around set_keys
            reward = td["next", "reward"]
        err = value - reward
        mean_value = value.mean() if not self.detach_diagnostic else value.detach().mean()
        return TensorDict(loss_value=err.pow(2).mean(), mean_value=mean_value)


def test_a_sound_loss_passes_and_nothing_given_is_changed():
    loss, td = DQNLoss(action_value_critic(3, 2), action_space="categorical"), _transitions()
    params = {n: p.detach().clone() for n, p in loss.named_parameters()}
    data, rng = td.clone(), torch.random.get_rng_state()
    out = check_loss_contract(loss, td, rename={"reward": "rew", "action": "act"})
    assert sorted(out.keys()) == ["loss_value", "q_value", "td_error"]
    assert all(torch.equal(p, params[n]) for n, p in loss.named_parameters())  # the check ran on a copy
    assert (td == data).all() and "td_error" not in td.keys()
    assert torch.equal(torch.random.get_rng_state(), rng)
    check_loss_contract(_ValueRegression(value_critic(3)), td, rename={"reward": "rew"})


def test_an_attached_diagnostic_is_caught():
    with pytest.raises(AssertionError, match="_ValueRegression: diagnostic 'mean_value' must be detached"):
        check_loss_contract(_ValueRegression(value_critic(3), detach_diagnostic=False), _transitions())


def test_a_key_read_around_set_keys_is_caught():
    loss = _ValueRegression(value_critic(3), hard_coded_reward=True)
    check_loss_contract(loss, _transitions())  # fine as long as nothing is renamed
    with pytest.raises(AssertionError, match=r"set_keys\(reward='rew'\): the loss fails on data whose 'reward' entry"):
        check_loss_contract(loss, _transitions(), rename={"reward": "rew"})
