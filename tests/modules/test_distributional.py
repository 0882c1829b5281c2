"""C51 heads (rlbench/modules/distributional.py): expected values over the support, actors, per-atom dueling."""
import pytest
import torch
from tensordict import TensorDict

from rlbench.modules import (
    MLP,
    DistributionalDuelingHead,
    DistributionalQValueActor,
    DistributionalQValueModule,
    NoisyLinear,
)
from rlbench.specs import Categorical, OneHot


def test_c51_expected_value_and_action():
    support = torch.linspace(-2, 2, 5)
    q = DistributionalQValueModule(spec=OneHot(3), support=support)
    logits = torch.randn(7, 5, 3)
    td = q(TensorDict(action_value=logits.clone(), batch_size=[7]))
    probs = torch.softmax(logits, -2)
    expected = torch.einsum("bza,z->ba", probs, support)
    torch.testing.assert_close(td["action_value"].exp().sum(-2), torch.ones(7, 3))
    torch.testing.assert_close(td["action"].long().argmax(-1), expected.argmax(-1))
    torch.testing.assert_close(td["chosen_action_value"], expected.max(-1, keepdim=True).values)
    with pytest.raises(ValueError, match="n_atoms=5"):
        q(TensorDict(action_value=torch.randn(7, 3, 5), batch_size=[7]))
    with pytest.raises(ValueError, match="increasing"):
        DistributionalQValueModule("categorical", support=torch.tensor([1.0, 0.0]))


def test_c51_actor():
    support = torch.linspace(0, 1, 11)
    net = MLP(in_features=4, out_features=(11, 2), num_cells=[8])
    actor = DistributionalQValueActor(net, support, spec=Categorical(2))
    td = actor(TensorDict(observation=torch.randn(6, 4), batch_size=[6]))
    ev = (torch.softmax(net(td["observation"]), -2) * support[:, None]).sum(-2)
    assert torch.equal(td["action"], ev.argmax(-1))
    assert torch.equal(actor.support, support)


def test_distributional_dueling_head_decomposes_per_atom():
    head = DistributionalDuelingHead(out_features=3, n_atoms=5, in_features=6, num_cells=[8])
    f = torch.randn(10, 6)
    logits = head(f)
    assert logits.shape == (10, 5, 3)  # atoms before actions: the C51 layout
    # per atom: the mean over actions is the value stream, the centred logits are the centred advantages
    torch.testing.assert_close(logits.mean(-1, keepdim=True), head.value(f))
    adv = head.advantage(f)
    torch.testing.assert_close(logits - logits.mean(-1, keepdim=True), adv - adv.mean(-1, keepdim=True))
    noisy = DistributionalDuelingHead(2, 4, in_features=6, num_cells=[], layer_class=NoisyLinear)
    assert sum(isinstance(m, NoisyLinear) for m in noisy.modules()) == 2  # one noisy layer per stream
    actor = DistributionalQValueActor(head, torch.linspace(0, 1, 5), spec=Categorical(3))
    assert actor(TensorDict(observation=f, batch_size=[10]))["action"].shape == (10,)
