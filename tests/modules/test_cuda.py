"""The modules on a CUDA device (skipped without one): outputs stay on the device, CPU specs included."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule, TensorDictSequential

from rlbench.modules import (
    MLP,
    AdditiveGaussianModule,
    DistributionalQValueActor,
    EGreedyModule,
    ExplorationType,
    GRUModule,
    LSTMModule,
    NoisyLinear,
    OrnsteinUhlenbeckProcessModule,
    ProbabilisticActor,
    QValueActor,
    TanhNormal,
    set_exploration_type,
)
from rlbench.specs import Bounded, Categorical

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEV = torch.device("cuda")


def _td(n=8, d=3):
    return TensorDict(observation=torch.randn(n, d, device=DEV), batch_size=[n], device=DEV)


def test_probabilistic_actor_with_cpu_spec_on_cuda():
    spec = Bounded(-2.0, 2.0, shape=(2,))  # on the CPU, as an env's spec may be
    net = TensorDictModule(torch.nn.Sequential(MLP(in_features=3, out_features=4, num_cells=[8]),
                                               NormalParamExtractor()),
                           ["observation"], ["loc", "scale"]).to(DEV)
    actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal, spec=spec, safe=True,
                               distribution_kwargs={"low": -2.0, "high": 2.0}, return_log_prob=True)
    with set_exploration_type(ExplorationType.RANDOM):
        td = actor(_td())
    assert td["action"].device.type == "cuda" and td["sample_log_prob"].device.type == "cuda"
    assert spec.is_in(td["action"].cpu())


def test_qvalue_egreedy_noise_on_cuda():
    q = QValueActor(MLP(in_features=3, out_features=4, num_cells=[8], device=DEV), spec=Categorical(4))
    policy = TensorDictSequential(q, EGreedyModule(Categorical(4), 1.0, 1.0))
    td = policy(_td(64))
    assert td["action"].device.type == "cuda" and td["action"].dtype == torch.int64
    cont = TensorDict(action=torch.zeros(16, 1, device=DEV), batch_size=[16], device=DEV)
    spec = Bounded(-1.0, 1.0, shape=(1,))
    assert AdditiveGaussianModule(spec)(cont.clone())["action"].device.type == "cuda"
    assert OrnsteinUhlenbeckProcessModule(spec)(cont.clone())["_ou_prev_noise"].device.type == "cuda"


def test_networks_and_recurrent_on_cuda():
    layer = NoisyLinear(3, 2, device=DEV)
    layer.reset_noise()
    assert layer(torch.randn(4, 3, device=DEV)).device.type == "cuda"
    c51 = DistributionalQValueActor(MLP(in_features=3, out_features=(5, 2), num_cells=[8]),
                                    torch.linspace(0, 1, 5), spec=Categorical(2)).to(DEV)
    assert c51(_td())["action"].device.type == "cuda"
    for mod in (LSTMModule(3, 4, device=DEV), GRUModule(3, 4, device=DEV)):
        out = mod(_td())
        assert out["features"].device.type == "cuda"
        seq = TensorDict(observation=torch.randn(2, 5, 3, device=DEV), batch_size=[2, 5], device=DEV)
        assert mod.set_recurrent_mode(True)(seq)["features"].shape == (2, 5, 4)
