"""TorchRL's names and arguments for the objectives, where the concept is the same (issue 13, item 21).

``MultiStep(gamma, n_steps)``, ``entropy_coeff`` / ``critic_coeff``, ``action_space=<spec>``, the
``vec_*`` value functionals in TorchRL's positional order, and what to run for lazy layers. Each
spelling gives exactly what rlbench's own gives.
"""
import pytest
import torch
from tensordict import TensorDict

from rlbench.objectives import (
    A2CLoss,
    ClipPPOLoss,
    DiscreteSACLoss,
    DistributionalDQNLoss,
    DQNLoss,
    KLPENPPOLoss,
    MultiStep,
    PPOLoss,
)
from rlbench.objectives.value import functional as vf
from rlbench.specs import Categorical, Composite, MultiOneHot, OneHot, Unbounded
from rlbench.testing import action_value_critic, categorical_actor, value_critic

OBS, B = 3, 8


# ----------------------------------------------------------------------------- MultiStep(gamma, n_steps)
def _rollout(t=7):
    done = torch.zeros(t, 1, dtype=torch.bool)
    done[3] = True
    return TensorDict({"observation": torch.randn(t, OBS), "next": {
        "observation": torch.randn(t, OBS), "reward": torch.randn(t, 1), "done": done}}, batch_size=[t])


@pytest.mark.parametrize("torchrl_style", [
    lambda: MultiStep(gamma=0.9, n_steps=3),
    lambda: MultiStep(0.9, 3),  # TorchRL's positional order
    lambda: MultiStep(0.9, n_steps=3),
    lambda: MultiStep(n_steps=3, gamma=0.9),
])
def test_multistep_takes_torchrl_spellings(torchrl_style):
    td = _rollout()
    ours, theirs = MultiStep(3, 0.9), torchrl_style()
    assert (theirs.n, theirs.gamma, theirs.n_steps) == (3, 0.9, 3)
    a, b = ours(td.clone()), theirs(td.clone())
    assert (a == b).all()


def test_multistep_refuses_ambiguous_or_doubled_arguments():
    with pytest.raises(TypeError, match="both n=2 and n_steps=3"):
        MultiStep(2, 0.9, n_steps=3)
    with pytest.raises(ValueError, match="gamma must be in"):
        MultiStep(3, 2)  # neither order makes sense: n=3 with gamma=2, or gamma=3 with n=2
    with pytest.raises(ValueError, match="MultiStep: n must be >= 1"):
        MultiStep(0, 0.9)
    assert MultiStep(1, 1).n == 1 and MultiStep(1, 1).gamma == 1.0  # the one pair both orders read alike


# ----------------------------------------------------------------------------- entropy_coeff / critic_coeff
def _ppo_batch(actor):
    td = actor(TensorDict(observation=torch.randn(B, OBS), batch_size=[B])).detach()
    td["advantage"], td["value_target"] = torch.randn(B, 1), torch.randn(B, 1)
    return td


@pytest.mark.parametrize("make", [ClipPPOLoss, KLPENPPOLoss, PPOLoss, A2CLoss])
def test_coeff_spellings_are_the_same_hyperparameters(make):
    actor = categorical_actor(OBS, 2, return_log_prob=True)
    critic = value_critic(OBS)
    td = _ppo_batch(actor)
    ours = make(actor, critic, entropy_coef=0.3, critic_coef=2.0)
    theirs = make(actor, critic, entropy_coeff=0.3, critic_coeff=2.0)
    assert (theirs.entropy_coef, theirs.critic_coef) == (0.3, 2.0)
    a, b = ours(td.clone()), theirs(td.clone())
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    with pytest.raises(TypeError, match="both entropy_coef=0.3 and entropy_coeff=0.3"):
        make(actor, critic, entropy_coef=0.3, entropy_coeff=0.3)
    with pytest.raises(TypeError, match="both critic_coef=1.0 and critic_coeff=2.0"):
        make(actor, critic, critic_coef=1.0, critic_coeff=2.0)


def test_coeff_defaults_are_unchanged():
    actor = categorical_actor(OBS, 2, return_log_prob=True)
    assert (ClipPPOLoss(actor).entropy_coef, ClipPPOLoss(actor).critic_coef) == (0.01, 1.0)
    assert (A2CLoss(actor).entropy_coef, A2CLoss(actor).critic_coef) == (0.01, 0.5)


# ----------------------------------------------------------------------------- action_space=<spec>
def _q_batch(one_hot: bool, n=3):
    idx = torch.randint(n, (B,))
    action = torch.nn.functional.one_hot(idx, n).bool() if one_hot else idx
    return TensorDict({"observation": torch.randn(B, OBS), "action": action,
                       "next": {"observation": torch.randn(B, OBS), "reward": torch.randn(B, 1),
                                "terminated": torch.zeros(B, 1, dtype=torch.bool)}}, batch_size=[B])


@pytest.mark.parametrize("spec, name", [(Categorical(3), "categorical"), (OneHot(3), "one_hot"),
                                        (Composite(action=OneHot(3)), "one_hot")])
def test_dqn_takes_an_action_spec(spec, name):
    net = action_value_critic(OBS, 3)
    loss = DQNLoss(net, action_space=spec)
    assert loss.action_space == name
    td = _q_batch(name == "one_hot")
    torch.testing.assert_close(loss(td.clone())["loss_value"],
                               DQNLoss(net, action_space=name)(td.clone())["loss_value"], rtol=0, atol=0)
    assert DQNLoss(net, action_space="one-hot").action_space == "one_hot"


def test_c51_and_discrete_sac_take_an_action_spec():
    lin = torch.nn.Sequential(torch.nn.Linear(OBS, 5 * 3), torch.nn.Unflatten(-1, (5, 3)))
    from tensordict.nn import TensorDictModule

    net = TensorDictModule(lin, ["observation"], ["action_value"])
    assert DistributionalDQNLoss(net, 0.9, support=torch.linspace(-1, 1, 5),
                                 action_space=OneHot(3)).action_space == "one_hot"
    loss = DiscreteSACLoss(categorical_actor(OBS, 4), action_value_critic(OBS, 4), action_space=Categorical(4))
    assert (loss.action_space, loss.num_actions) == ("categorical", 4)  # num_actions read from the spec
    with pytest.raises(ValueError, match="num_actions=3 but the action spec has 4 actions"):
        DiscreteSACLoss(categorical_actor(OBS, 4), action_value_critic(OBS, 4), Categorical(4), 3)
    with pytest.raises(ValueError, match="pass num_actions="):
        DiscreteSACLoss(categorical_actor(OBS, 4), action_value_critic(OBS, 4), "categorical")


@pytest.mark.parametrize("bad", [MultiOneHot([2, 3]), Unbounded(shape=(2,)), "discrete"])
def test_an_action_space_that_is_not_one_discrete_action_is_refused(bad):
    with pytest.raises(ValueError, match="action_space must be 'one_hot'.*'categorical'"):
        DQNLoss(action_value_critic(OBS, 3), action_space=bad)


# ----------------------------------------------------------------------------- lazy layers
def test_lazy_layers_get_an_error_that_says_what_to_run_and_that_works():
    from rlbench.envs import CartPoleEnv
    from rlbench.modules import MLP, QValueActor

    env = CartPoleEnv()
    net = QValueActor(MLP(out_features=2, num_cells=[8]), in_keys=["observation"], spec=env.action_spec)
    with pytest.raises(ValueError, match=r"value_network has uninitialized lazy layers .*"
                                         r"`value_network\(env\.fake_tensordict\(\)\)`.*\['observation'\]"):
        DQNLoss(net, action_space=env.action_spec)
    net(env.fake_tensordict())  # what the message says to run
    loss = DQNLoss(net, action_space=env.action_spec)
    td = env.rollout(5, net)
    assert torch.isfinite(loss(td.reshape(-1))["loss_value"])


# ----------------------------------------------------------------------------- vec_* functionals
def _traj(shape=(2, 11, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    v, nv, r = (torch.randn(shape, generator=g) for _ in range(3))
    term = torch.rand(shape, generator=g) < 0.15
    done = term | (torch.rand(shape, generator=g) < 0.1)
    return v, nv, r, done, term


def test_vec_functionals_equal_rlbench_ones_in_torchrl_positional_order():
    v, nv, r, done, term = _traj()
    gamma, lmbda = 0.95, 0.8
    same = dict(rtol=0, atol=0)
    adv, tgt = vf.generalized_advantage_estimate(gamma, lmbda, v, nv, r, done=done, terminated=term)
    vadv, vtgt = vf.vec_generalized_advantage_estimate(gamma, lmbda, v, nv, r, done, term)
    torch.testing.assert_close(vadv, adv, **same)
    torch.testing.assert_close(vtgt, tgt, **same)
    lam = vf.td_lambda_return_estimate(gamma, lmbda, nv, r, done=done, terminated=term)
    torch.testing.assert_close(vf.vec_td_lambda_return_estimate(gamma, lmbda, nv, r, done, term), lam, **same)
    torch.testing.assert_close(vf.vec_td_lambda_advantage_estimate(gamma, lmbda, v, nv, r, done, term), lam - v,
                               **same)
    torch.testing.assert_close(vf.td_lambda_advantage_estimate(gamma, lmbda, v, nv, r, done, term), lam - v, **same)
    one = vf.td1_return_estimate(gamma, nv, r, done=done, terminated=term)
    torch.testing.assert_close(vf.vec_td1_return_estimate(gamma, nv, r, done, term), one, **same)
    torch.testing.assert_close(vf.vec_td1_advantage_estimate(gamma, v, nv, r, done, term), one - v, **same)
    torch.testing.assert_close(vf.td1_advantage_estimate(gamma, v, nv, r, done, term), one - v, **same)
    zero = vf.td0_return_estimate(gamma, nv, r, terminated=term)
    torch.testing.assert_close(vf.td0_advantage_estimate(gamma, v, nv, r, done, term), zero - v, **same)
    # TorchRL: terminated defaults to done
    torch.testing.assert_close(vf.vec_generalized_advantage_estimate(gamma, lmbda, v, nv, r, done)[0],
                               vf.generalized_advantage_estimate(gamma, lmbda, v, nv, r, done=done,
                                                                 terminated=done)[0], **same)


def test_vec_functionals_keyword_and_time_dim_and_per_step_gamma():
    v, nv, r, done, term = _traj((11, 3))  # time first, no trailing dim
    a = vf.vec_td_lambda_advantage_estimate(0.9, 0.7, v, nv, r, done, term, time_dim=0)
    b = vf.td_lambda_return_estimate(0.9, 0.7, nv, r, done=done, terminated=term, time_dim=0) - v
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    v, nv, r, done, term = _traj()
    gamma = torch.rand(2, 11, 1) * 0.5 + 0.5  # per-step discounts multiply along the way (rolling_gamma=True)
    torch.testing.assert_close(vf.vec_td1_return_estimate(gamma, nv, r, done, term, rolling_gamma=True),
                               vf.td1_return_estimate(gamma, nv, r, done=done, terminated=term), rtol=0, atol=0)
    with pytest.raises(ValueError, match="rolling_gamma=False with a per-step gamma is not supported"):
        vf.vec_td_lambda_return_estimate(gamma, 0.9, nv, r, done, term, rolling_gamma=False)
    vf.vec_td1_return_estimate(0.9, nv, r, done, term, rolling_gamma=False)  # a constant gamma: the same either way


def test_vec_names_are_importable_where_torchrl_users_look():
    from rlbench.objectives.value import (  # noqa: F401
        vec_generalized_advantage_estimate,
        vec_td1_advantage_estimate,
        vec_td1_return_estimate,
        vec_td_lambda_advantage_estimate,
        vec_td_lambda_return_estimate,
    )
