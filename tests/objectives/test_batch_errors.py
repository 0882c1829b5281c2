"""Bad batches get errors that name the problem, from LossModule's shared batch-reading methods (issue 13, item 9).

A missing entry says which key, where it was looked for and where such a batch comes from; a
wrongly shaped reward says ``[*B, 1]``; a non-finite reward (or stored advantage) and an empty batch
raise instead of returning a NaN loss; a float action for an index action space is refused, naming
the dtype expected.
"""
import pytest
import torch
from tensordict import TensorDict

from rlbench.objectives import (
    A2CLoss,
    ClipPPOLoss,
    DDPGLoss,
    DiscreteSACLoss,
    DistributionalDQNLoss,
    DQNLoss,
    LossModule,
    PPOLoss,
    REDQLoss,
    SACLoss,
    TD3Loss,
)
from rlbench.testing import (
    action_value_critic,
    categorical_actor,
    check_loss_contract,
    deterministic_actor,
    gaussian_actor,
    qvalue_critic,
    value_critic,
)

OBS, B = 3, 8


def _next(b):
    return TensorDict(observation=torch.randn(b, OBS), reward=torch.randn(b, 1),
                      done=torch.zeros(b, 1, dtype=torch.bool), terminated=torch.zeros(b, 1, dtype=torch.bool),
                      batch_size=[b])


def _transitions(action):
    b = action.shape[0]
    return TensorDict(observation=torch.randn(b, OBS), action=action, next=_next(b), batch_size=[b])


def _on_policy(actor, b=B):
    td = actor(TensorDict(observation=torch.randn(b, OBS), batch_size=[b])).detach()
    td["next"] = _next(b)
    return td


def _dqn():
    return DQNLoss(action_value_critic(OBS, 2), action_space="categorical"), _transitions(torch.randint(2, (B,)))


def _c51():
    net = torch.nn.Sequential(torch.nn.Linear(OBS, 5 * 2), torch.nn.Unflatten(-1, (5, 2)))
    from tensordict.nn import TensorDictModule

    loss = DistributionalDQNLoss(TensorDictModule(net, ["observation"], ["action_value"]), gamma=0.9,
                                 support=torch.linspace(-1, 1, 5), action_space="categorical")
    return loss, _transitions(torch.randint(2, (B,)))


def _ppo():
    actor = categorical_actor(OBS, 2, return_log_prob=True)
    return ClipPPOLoss(actor, value_critic(OBS)), _on_policy(actor)


def _a2c():
    actor = categorical_actor(OBS, 2)
    return A2CLoss(actor, value_critic(OBS)), _on_policy(actor)


def _sac():
    return SACLoss(gaussian_actor(OBS, 1), qvalue_critic(OBS, 1)), _transitions(torch.randn(B, 1))


def _redq():
    return REDQLoss(gaussian_actor(OBS, 1), qvalue_critic(OBS, 1), num_qvalue_nets=3), _transitions(torch.randn(B, 1))


def _ddpg():
    return DDPGLoss(deterministic_actor(OBS, 1), qvalue_critic(OBS, 1)), _transitions(torch.randn(B, 1))


def _td3():
    return TD3Loss(deterministic_actor(OBS, 1), qvalue_critic(OBS, 1)), _transitions(torch.randn(B, 1))


def _dsac():
    loss = DiscreteSACLoss(categorical_actor(OBS, 2), action_value_critic(OBS, 2), action_space="categorical",
                           num_actions=2)
    return loss, _transitions(torch.randint(2, (B,)))


ALL = [_dqn, _c51, _ppo, _a2c, _sac, _redq, _ddpg, _td3, _dsac]
NAMES = [f.__name__[1:] for f in ALL]


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_missing_action_names_key_place_and_source(make):
    loss, td = make()
    with pytest.raises(KeyError) as err:
        loss(td.exclude("action"))
    msg = err.value.args[0]
    assert loss._get_name() in msg and "'action'" in msg
    assert "root" in msg  # where it was looked for
    assert "set_keys(action=" in msg and "rollout" in msg and "Collector" in msg  # how to fix it
    assert "NoneType" not in msg


@pytest.mark.parametrize("make", [_dqn, _c51, _ppo, _sac, _ddpg, _td3, _dsac, _redq], ids=lambda f: f.__name__[1:])
def test_missing_next_observation_says_next(make):
    loss, td = make()
    if "advantage" in td.keys():  # the on-policy losses read ("next", "observation") through their estimator
        td = td.exclude("advantage", "value_target")
    with pytest.raises(KeyError, match=r"\('next', 'observation'\)") as err:
        loss(td.exclude(("next", "observation")))
    assert "rollout" in err.value.args[0]


@pytest.mark.parametrize("make", [_dqn, _ppo, _a2c, _sac, _ddpg], ids=lambda f: f.__name__[1:])
def test_reward_of_wrong_shape_says_expected_shape(make):
    loss, td = make()
    td["next", "reward"] = torch.randn(B, 3)
    expected = r"\('next', 'reward'\) has shape \(8, 3\); expected \(8, 1\), i\.e\. \[\*B, 1\]"
    with pytest.raises(ValueError, match=expected):
        loss(td)


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_non_finite_reward_raises(make):
    loss, td = make()
    td["next", "reward"][2] = float("nan")
    with pytest.raises(ValueError, match=r"\('next', 'reward'\) holds 1 non-finite value.*batch index \(2,\)"):
        loss(td)
    td["next", "reward"][2] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        loss(td)


def test_non_finite_stored_advantage_raises_and_a_diverged_critic_does_not():
    loss, td = _ppo()
    td["advantage"] = torch.randn(B, 1)
    td["value_target"] = torch.randn(B, 1)
    bad = td.clone()
    bad["advantage"][0] = float("nan")
    with pytest.raises(ValueError, match="'advantage' holds 1 non-finite value"):
        loss(bad)
    # finite data, non-finite network: not a data error -- the loss is returned as computed (NaN)
    loss, td = _ppo()
    with torch.no_grad():
        loss.critic_network.module.weight.fill_(float("nan"))
    assert torch.isnan(loss(td)["loss_objective"])


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_empty_batch_raises(make):
    loss, td = make()
    with pytest.raises(ValueError, match=r"empty batch \(batch_size \[0\]\)"):
        loss(td[:0])


@pytest.mark.parametrize("make", [_dqn, _c51, _dsac, _ppo, _a2c], ids=lambda f: f.__name__[1:])
def test_float_index_actions_are_refused_naming_the_dtype(make):
    loss, td = make()
    td["action"] = td["action"].float() + 0.5
    with pytest.raises(TypeError, match=r"'action' has dtype torch\.float32.*integer"):
        loss(td)


def test_dqn_with_inferred_action_space_refuses_float_indices_but_takes_float_one_hot():
    net = action_value_critic(OBS, 3)
    td = _transitions(torch.rand(B) * 2)
    with pytest.raises(TypeError, match=r"torch\.float32"):
        DQNLoss(net)(td)
    one_hot = _transitions(torch.nn.functional.one_hot(torch.randint(3, (B,)), 3).float())
    index = one_hot.clone()
    index["action"] = one_hot["action"].argmax(-1)
    torch.testing.assert_close(DQNLoss(net)(one_hot)["loss_value"], DQNLoss(net)(index)["loss_value"])


class _RawReward(LossModule):
    """V(s) regressed onto the reward read straight from the batch, around the shared readers."""

    default_keys = {"value": "state_value", "reward": "reward"}

    def __init__(self, critic):
        super().__init__()
        self.convert_to_functional(critic, "critic")

    def forward(self, td):
        value = self.network_output("critic", td, self.tensor_keys.value)
        return TensorDict(loss_value=(value - td["next", self.tensor_keys.reward]).pow(2).mean())


def test_the_checklist_catches_a_loss_that_reads_around_the_shared_readers():
    loss, td = _RawReward(value_critic(OBS)), _transitions(torch.randint(2, (B,)))
    with pytest.raises(AssertionError, match=r"_RawReward: a reward shaped \[\*B, 3\] gave a loss without"):
        check_loss_contract(loss, td)


def test_the_checklist_passes_every_loss_on_bad_batches():
    for make in ALL:
        loss, td = make()
        check_loss_contract(loss, td)
    loss, td = _ppo()  # with a PPO batch that already carries its advantage
    td["advantage"], td["value_target"] = torch.randn(B, 1), torch.randn(B, 1)
    check_loss_contract(PPOLoss(loss.actor_network), td)
