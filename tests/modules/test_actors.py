"""Actor / critic wrappers: keys, spec projection, exploration types, Q-value argmax, shared trunks."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import distributions as D
from torch import nn

from rlbench.modules import (
    MLP,
    Actor,
    ActorCriticWrapper,
    ActorValueOperator,
    ExplorationType,
    OneHotCategorical,
    ProbabilisticActor,
    QValueActor,
    QValueModule,
    TanhNormal,
    ValueOperator,
    set_exploration_type,
)
from rlbench.specs import Bounded, Categorical, Composite, OneHot


def _gauss_actor(obs_dim=3, act_dim=2, shift=0.0, **kwargs):
    net = nn.Sequential(MLP(in_features=obs_dim, out_features=2 * act_dim, num_cells=[16]), NormalParamExtractor())

    class Shift(nn.Module):
        def forward(self, loc, scale):
            return loc + shift, scale

    body = TensorDictModule(nn.Sequential(net), ["observation"], ["loc", "scale"])
    shifted = TensorDictModule(Shift(), ["loc", "scale"], ["loc", "scale"])
    from tensordict.nn import TensorDictSequential

    return ProbabilisticActor(TensorDictSequential(body, shifted), in_keys=["loc", "scale"], **kwargs)


def _obs(n=8, d=3):
    return TensorDict(observation=torch.randn(n, d), batch_size=[n])


def test_exploration_aliases_are_tensordicts_and_collectors():
    import tensordict.nn as tdnn

    from rlbench.collectors import utils

    assert ExplorationType is tdnn.InteractionType is utils.ExplorationType
    assert set_exploration_type is tdnn.set_interaction_type is utils.set_exploration_type


def test_probabilistic_actor_writes_sample_log_prob_and_matches_dist():
    actor = _gauss_actor(distribution_class=TanhNormal, distribution_kwargs={"low": -2.0, "high": 2.0},
                         return_log_prob=True)
    with set_exploration_type(ExplorationType.RANDOM):
        td = actor(_obs())
    assert td["action"].shape == (8, 2) and td["sample_log_prob"].shape == (8,)
    assert "action_log_prob" not in td.keys()
    dist = actor.get_dist(td)
    torch.testing.assert_close(dist.log_prob(td["action"]), td["sample_log_prob"])
    # DETERMINISTIC plays the squashed mode: 2 * tanh(loc)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        td2 = actor(_obs())
    torch.testing.assert_close(td2["action"], 2 * torch.tanh(td2["loc"]))


def test_probabilistic_actor_log_prob_key_configurable():
    actor = _gauss_actor(distribution_class=D.Normal, return_log_prob=True, log_prob_key="lp")
    with set_exploration_type(ExplorationType.RANDOM):
        td = actor(_obs())
    assert "lp" in td.keys() and "sample_log_prob" not in td.keys()


def test_probabilistic_actor_safe_projects_into_spec():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    actor = _gauss_actor(shift=50.0, distribution_class=D.Normal, spec=spec, safe=True)
    unsafe = _gauss_actor(shift=50.0, distribution_class=D.Normal, spec=spec, safe=False)
    unsafe.load_state_dict(actor.state_dict())
    with set_exploration_type(ExplorationType.RANDOM):
        a = actor(_obs())["action"]
        b = unsafe(_obs())["action"]
    assert spec.is_in(a) and torch.allclose(a, torch.ones_like(a))
    assert not spec.is_in(b)
    # a Composite spec keyed by the action key works too
    comp = Composite(action=spec)
    actor_c = _gauss_actor(shift=-50.0, distribution_class=D.Normal, spec=comp, safe=True)
    with set_exploration_type(ExplorationType.MEAN):
        assert torch.equal(actor_c(_obs())["action"], -torch.ones(8, 2))


def test_actor_errors_name_the_problem():
    with pytest.raises(ValueError, match="safe=True needs a spec"):
        Actor(nn.Linear(3, 1), safe=True)
    with pytest.raises(ValueError, match="safe=True needs a spec"):
        _gauss_actor(safe=True)
    with pytest.raises(TypeError, match="tensordict module"):
        ProbabilisticActor(nn.Linear(3, 2), in_keys=["loc", "scale"])
    with pytest.raises(TypeError, match="Spec or Composite"):
        Actor(nn.Linear(3, 1), spec="box", safe=True)


def test_actor_safe_and_keys():
    spec = Bounded(0.0, 0.5, shape=(1,))
    lin = nn.Linear(3, 1)
    actor = Actor(lin, spec=spec, safe=True)
    td = _obs()
    out = actor(td)["action"]
    torch.testing.assert_close(out, lin(td["observation"]).clamp(0.0, 0.5))
    assert actor.in_keys == ["observation"] and actor.out_keys == ["action"]


def test_value_operator_default_keys_and_concat():
    v = ValueOperator(MLP(in_features=3, out_features=1, num_cells=[4]))
    assert v.out_keys == ["state_value"]
    q = ValueOperator(MLP(in_features=5, out_features=1, num_cells=[4]), in_keys=["observation", "action"])
    assert q.out_keys == ["state_action_value"]
    td = TensorDict(observation=torch.randn(4, 3), action=torch.randn(4, 2), batch_size=[4])
    out = q(td)["state_action_value"]
    torch.testing.assert_close(out, q.module(torch.cat([td["observation"], td["action"]], -1)))


@pytest.mark.parametrize("space", ["categorical", "one_hot"])
def test_qvalue_actor_matches_manual_argmax(space):
    net = MLP(in_features=3, out_features=4, num_cells=[8])
    spec = Categorical(4) if space == "categorical" else OneHot(4)
    actor = QValueActor(net, spec=spec)
    td = actor(_obs(16))
    q = net(td["observation"])
    idx = q.argmax(-1)
    torch.testing.assert_close(td["action_value"], q)
    torch.testing.assert_close(td["chosen_action_value"], q.gather(-1, idx[:, None]))
    if space == "categorical":
        assert td["action"].dtype == torch.int64 and torch.equal(td["action"], idx)
    else:
        assert td["action"].dtype == torch.bool and torch.equal(td["action"].long().argmax(-1), idx)
    assert spec.is_in(td["action"])


def test_qvalue_module_mask_and_errors():
    q = QValueModule(action_space="categorical", action_mask_key="mask")
    values = torch.tensor([[1.0, 9.0, 3.0], [5.0, 1.0, 2.0]])
    mask = torch.tensor([[True, False, True], [False, True, True]])
    td = q(TensorDict(action_value=values, mask=mask, batch_size=[2]))
    assert td["action"].tolist() == [2, 2]
    assert td["chosen_action_value"].tolist() == [[3.0], [2.0]]
    with pytest.raises(ValueError, match="action_space"):
        QValueModule()
    with pytest.raises(ValueError, match="'one_hot' or 'categorical'"):
        QValueModule(action_space="box")


def test_actor_value_operator_shares_trunk():
    common = TensorDictModule(MLP(in_features=3, out_features=8, num_cells=[]), ["observation"], ["hidden"])
    head = TensorDictModule(nn.Sequential(nn.Linear(8, 4), NormalParamExtractor()), ["hidden"], ["loc", "scale"])
    policy = ProbabilisticActor(head, in_keys=["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True)
    value = ValueOperator(nn.Linear(8, 1), in_keys=["hidden"])
    op = ActorValueOperator(common, policy, value)
    td = op(_obs())
    assert {"hidden", "action", "sample_log_prob", "state_value"} <= set(td.keys())
    pol, val = op.get_policy_operator(), op.get_value_operator()
    assert isinstance(pol, ProbabilisticActor)
    fresh = _obs()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        a = pol(fresh.clone())["action"]
    h = common.module(fresh["observation"])
    loc = head.module(h)[0]
    torch.testing.assert_close(a, torch.tanh(loc))
    torch.testing.assert_close(val(fresh.clone())["state_value"], value.module(h))
    assert pol.get_dist(pol(fresh.clone())) is not None
    # trunk parameters are shared, not copied
    trunk_ids = {id(p) for p in common.parameters()}
    assert trunk_ids <= {id(p) for p in pol.parameters()} and trunk_ids <= {id(p) for p in val.parameters()}
    # tensordict's select_subsequence is available on the sequences
    sub = op.select_subsequence(out_keys=["hidden"])
    assert "state_value" not in sub(_obs()).keys()


def test_actor_critic_wrapper():
    policy = QValueActor(MLP(in_features=3, out_features=2, num_cells=[4]), spec=Categorical(2))
    value = ValueOperator(MLP(in_features=3, out_features=1, num_cells=[4]))
    ac = ActorCriticWrapper(policy, value)
    td = ac(_obs())
    assert {"action", "state_value"} <= set(td.keys())
    assert ac.get_policy_operator() is policy and ac.get_value_operator() is value


def test_one_hot_categorical_actor():
    net = TensorDictModule(MLP(in_features=3, out_features=3, num_cells=[4]), ["observation"], ["logits"])
    actor = ProbabilisticActor(net, in_keys=["logits"], distribution_class=OneHotCategorical,
                               spec=OneHot(3), return_log_prob=True)
    with set_exploration_type(ExplorationType.RANDOM):
        td = actor(_obs())
    assert td["action"].shape == (8, 3) and bool((td["action"].sum(-1) == 1).all())
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        td = actor(_obs())
    assert torch.equal(td["action"].argmax(-1), td["logits"].argmax(-1))


def test_masked_categorical_actor_reads_mask_from_tensordict():
    from rlbench.modules import MaskedCategorical

    net = TensorDictModule(MLP(in_features=3, out_features=4, num_cells=[8]), ["observation"], ["logits"])
    actor = ProbabilisticActor(net, in_keys={"logits": "logits", "mask": "action_mask"},
                               distribution_class=MaskedCategorical, return_log_prob=True)
    td = _obs(500)
    td["action_mask"] = torch.tensor([True, False, True, False]).expand(500, 4)
    with set_exploration_type(ExplorationType.RANDOM):
        out = actor(td)
    assert set(out["action"].unique().tolist()) <= {0, 2}
    assert torch.isfinite(out["sample_log_prob"]).all()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        greedy = actor(td.clone())["action"]
    masked = out["logits"].masked_fill(~td["action_mask"], -float("inf"))
    assert torch.equal(greedy, masked.argmax(-1))


def test_select_subsequence_on_our_sequences():
    actor = _gauss_actor(distribution_class=TanhNormal)
    sub = actor.select_subsequence(out_keys=["loc", "scale"])
    td = sub(_obs())
    assert "action" not in td.keys() and {"loc", "scale"} <= set(td.keys())
    q = QValueActor(MLP(in_features=3, out_features=2, num_cells=[4]), spec=Categorical(2))
    td = q.select_subsequence(out_keys=["action_value"])(_obs())
    assert "action_value" in td.keys() and "action" not in td.keys()
