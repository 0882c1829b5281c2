"""Recurrent modules: sequence mode == a hand-written step loop with resets; state carried through envs."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

from rlbench.collectors import Collector
from rlbench.envs import CartPoleEnv, TransformedEnv, check_env_specs
from rlbench.envs.transforms import Compose, InitTracker
from rlbench.modules import MLP, GRUModule, LSTMModule, QValueModule, RecurrentStatePrimer


def _reference(rnn: nn.RNNBase, x, is_init, h0, c0=None):
    """Per-step loop over a [B, T, F] batch with plain torch: zero the state where is_init is True."""
    B, T, _ = x.shape
    h = h0.transpose(0, 1).contiguous()
    c = None if c0 is None else c0.transpose(0, 1).contiguous()
    ys, hs, cs = [], [], []
    for t in range(T):
        keep = (~is_init[:, t]).float().view(1, B, 1)
        h = h * keep
        if c is not None:
            c = c * keep
            y, (h, c) = rnn(x[:, t : t + 1], (h, c))
            cs.append(c.transpose(0, 1))
        else:
            y, h = rnn(x[:, t : t + 1], h)
        ys.append(y[:, 0])
        hs.append(h.transpose(0, 1))
    return torch.stack(ys, 1), torch.stack(hs, 1), (torch.stack(cs, 1) if cs else None)


def _seq_td(B=3, T=7, F=4, L=2, H=5, lstm=True, resets=True):
    is_init = torch.zeros(B, T, dtype=torch.bool)
    if resets:
        is_init[0, 3] = True
        is_init[1, 0] = True
        is_init[2, 5] = True
    td = TensorDict(observation=torch.randn(B, T, F), is_init=is_init.unsqueeze(-1), batch_size=[B, T])
    td["recurrent_state_h" if lstm else "recurrent_state"] = torch.randn(B, T, L, H)
    if lstm:
        td["recurrent_state_c"] = torch.randn(B, T, L, H)
    return td


def test_lstm_sequence_matches_step_loop_with_resets():
    mod = LSTMModule(4, 5, num_layers=2)
    td = _seq_td()
    out = mod.set_recurrent_mode(True)(td.clone())
    y, h, c = _reference(mod.rnn, td["observation"], td["is_init"][..., 0], td["recurrent_state_h"][:, 0],
                         td["recurrent_state_c"][:, 0])
    torch.testing.assert_close(out["features"], y)
    torch.testing.assert_close(out["next", "recurrent_state_h"], h)
    torch.testing.assert_close(out["next", "recurrent_state_c"], c)
    # step mode, fed its own ("next", state) as the next root state, gives the same numbers
    step = mod  # recurrent_mode is False on the original
    assert not step.recurrent_mode
    h_t, c_t = td["recurrent_state_h"][:, 0], td["recurrent_state_c"][:, 0]
    for t in range(td.shape[1]):
        s = TensorDict(observation=td["observation"][:, t], is_init=td["is_init"][:, t], recurrent_state_h=h_t,
                       recurrent_state_c=c_t, batch_size=[3])
        s = step(s)
        torch.testing.assert_close(s["features"], y[:, t])
        h_t, c_t = s["next", "recurrent_state_h"], s["next", "recurrent_state_c"]


@pytest.mark.parametrize("resets", [False, True])
def test_gru_sequence_matches_step_loop(resets):
    mod = GRUModule(4, 5, num_layers=1).set_recurrent_mode(True)
    td = _seq_td(L=1, lstm=False, resets=resets)
    out = mod(td.clone())
    y, h, _ = _reference(mod.rnn, td["observation"], td["is_init"][..., 0], td["recurrent_state"][:, 0])
    torch.testing.assert_close(out["features"], y)
    torch.testing.assert_close(out["next", "recurrent_state"], h)


def test_missing_state_means_zeros_and_errors():
    mod = GRUModule(3, 4)
    x = torch.randn(2, 3)
    out = mod(TensorDict(observation=x, batch_size=[2]))
    ref, _ = mod.rnn(x[:, None], torch.zeros(1, 2, 4))
    torch.testing.assert_close(out["features"], ref[:, 0])
    with pytest.raises(ValueError, match="time dim"):
        mod.set_recurrent_mode(True)(TensorDict(observation=torch.randn(3), batch_size=[]))
    with pytest.raises(ValueError, match="input_size and hidden_size"):
        LSTMModule(hidden_size=3)
    with pytest.raises(ValueError, match="batch_first"):
        GRUModule(gru=nn.GRU(3, 4))
    # set_recurrent_mode shares parameters
    seq = mod.set_recurrent_mode(True)
    assert seq.rnn is mod.rnn and not mod.recurrent_mode and seq.recurrent_mode


def _recurrent_policy(env):
    lstm = LSTMModule(4, 8, in_key="observation", out_key="features")
    head = TensorDictModule(MLP(in_features=8, out_features=2, num_cells=[]), ["features"], ["action_value"])
    return lstm, TensorDictSequential(lstm, head, QValueModule(spec=env.action_spec))


def test_state_flows_through_env_rollout():
    base = CartPoleEnv(batch_size=[2], max_episode_steps=6)
    lstm0 = LSTMModule(4, 8)
    env = TransformedEnv(base, Compose(InitTracker(), lstm0.make_tensordict_primer()))
    check_env_specs(env)
    lstm, policy = _recurrent_policy(env)
    lstm.load_state_dict(lstm0.state_dict())
    roll = env.rollout(14, policy, break_when_any_done=False)
    h, h_next = roll["recurrent_state_h"], roll["next", "recurrent_state_h"]
    is_init = roll["is_init"][..., 0]
    assert h.shape == (2, 14, 1, 8)
    # episode starts begin from zeros; elsewhere each step starts from the previous step's output state
    assert bool((h[is_init] == 0).all()) and bool(is_init[:, 0].all()) and bool(is_init[:, 1:].any())
    cont = ~is_init[:, 1:]
    torch.testing.assert_close(h[:, 1:][cont], h_next[:, :-1][cont])
    assert bool((h_next.abs().sum((-1, -2)) > 0).all())
    # replaying the stored rollout in recurrent mode reproduces the features the policy saw
    replay = lstm.set_recurrent_mode(True)(roll.select("observation", "is_init", "recurrent_state_h",
                                                        "recurrent_state_c").clone())
    torch.testing.assert_close(replay["features"], roll["features"])
    torch.testing.assert_close(replay["next", "recurrent_state_c"], roll["next", "recurrent_state_c"])


def test_recurrent_policy_in_collector():
    env = TransformedEnv(CartPoleEnv(batch_size=[2], max_episode_steps=5),
                         Compose(InitTracker(), RecurrentStatePrimer({"recurrent_state_h": (1, 8),
                                                                      "recurrent_state_c": (1, 8)})))
    _, policy = _recurrent_policy(env)
    collector = Collector(env, policy, frames_per_batch=24, total_frames=48)
    batches = list(collector)
    collector.shutdown()
    b = batches[1]
    h, h_next, is_init = b["recurrent_state_h"], b["next", "recurrent_state_h"], b["is_init"][..., 0]
    cont = ~is_init[:, 1:]
    torch.testing.assert_close(h[:, 1:][cont], h_next[:, :-1][cont])
    assert bool((h[is_init] == 0).all())
    # the state crosses the batch boundary: batch 2 starts where batch 1 ended (unless an episode starts)
    first = batches[0]["next", "recurrent_state_h"][:, -1]
    keep = ~is_init[:, 0]
    torch.testing.assert_close(h[:, 0][keep], first[keep])


def test_primer_forward_fills_missing_state():
    primer = RecurrentStatePrimer({"recurrent_state": (2, 3)})
    td = primer(TensorDict(observation=torch.zeros(4, 5, 1), batch_size=[4, 5]))
    assert td["recurrent_state"].shape == (4, 5, 2, 3) and not td["recurrent_state"].any()
    with pytest.raises(ValueError, match="already has an observation"):
        TransformedEnv(CartPoleEnv(), RecurrentStatePrimer({"observation": (1,)}))


def test_primer_outside_a_serial_env_carries_state():
    from rlbench.envs import GymEnv, SerialEnv

    lstm0 = LSTMModule(4, 8)
    env = TransformedEnv(SerialEnv(2, lambda: GymEnv("CartPole-v1")),
                         Compose(InitTracker(), lstm0.make_tensordict_primer()))
    lstm, policy = _recurrent_policy(env)
    roll = env.rollout(10, policy, break_when_any_done=False)
    env.close()
    h, h_next, is_init = roll["recurrent_state_h"], roll["next", "recurrent_state_h"], roll["is_init"][..., 0]
    cont = ~is_init[:, 1:]
    assert bool(cont.any())
    torch.testing.assert_close(h[:, 1:][cont], h_next[:, :-1][cont])
    assert bool((h[:, 1:][cont].abs().sum(-1) > 0).all())


def test_set_recurrent_mode_context_manager_and_torchrl_keys():
    """``with set_recurrent_mode(True)`` switches every module inside to sequences, then restores."""
    from rlbench.modules import recurrent_mode, set_recurrent_mode

    torch.manual_seed(0)
    lstm = LSTMModule(3, 8, in_keys=["obs", "h", "c"], out_keys=["feat", ("next", "h"), ("next", "c")])
    assert lstm.in_keys[:3] == ["obs", "h", "c"] and lstm.out_keys == ["feat", ("next", "h"), ("next", "c")]
    seq = TensorDict(obs=torch.randn(2, 5, 3), batch_size=[2, 5])
    reference = lstm.set_recurrent_mode(True)(seq.clone())["feat"]
    with set_recurrent_mode(True):
        assert recurrent_mode() is True
        with set_recurrent_mode(False):  # blocks nest
            step = lstm(TensorDict(obs=torch.randn(4, 3), batch_size=[4]))
            assert step["feat"].shape == (4, 8)
        torch.testing.assert_close(lstm(seq.clone())["feat"], reference)
    assert recurrent_mode() is None and lstm.recurrent_mode is False

    @set_recurrent_mode(True)
    def train_step(td):
        return lstm(td)["feat"]

    torch.testing.assert_close(train_step(seq.clone()), reference)
    gru = GRUModule(3, 4, in_keys=["obs", "hidden"], out_keys=["y", ("next", "hidden")])
    assert gru.state_keys == ["hidden"] and gru.out_key == "y"
    with pytest.raises(ValueError, match=r"out_keys\[1:\] must be the state keys under 'next'"):
        LSTMModule(3, 8, in_keys=["obs", "h", "c"], out_keys=["feat", "h", "c"])
    with pytest.raises(ValueError, match="in_keys needs the input and 1 state key"):
        GRUModule(3, 4, in_keys=["obs"], out_keys=["y"])
