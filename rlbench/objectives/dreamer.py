"""Dreamer's three losses: the world model, the actor (through imagination) and the value.

Hafner et al., "Dream to Control: Learning Behaviors by Latent Imagination", ICLR 2020,
arXiv:1912.01603 (Dreamer v1). One refinement of DreamerV2 (Hafner et al. 2021, arXiv:2010.02193) is
available: KL balancing (``kl_balance``). Free nats follow v1: the KL is averaged over batch and
time first, then clamped below at ``free_nats`` (``max(mean KL, free_nats)``), so the model spends
no effort on the KL while the average is below it.

One update, as in the paper's algorithm box::

    model_out, data = model_loss(batch, return_data=True)   # [B, T] real sequences
    actor_out, dream = actor_loss(data, return_imagination=True)  # imagine from every posterior state
    value_out = value_loss(dream)                            # regress V on the detached lambda-returns
    (model_out["loss_model_kl"] + model_out["loss_model_reco"] + model_out["loss_model_reward"]).backward()
    actor_out["loss_actor"].backward(); value_out["loss_value"].backward()

(each loss with its own optimizer: the actor loss holds the world model and the value network out, so
its gradient reaches only the actor's parameters).
"""
from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import InteractionType, set_interaction_type
from torch import nn

from ..modules.dreamer import RSSMRollout, imagine_with_policy
from .common import LossModule
from .utils import hold_out_params
from .value.functional import td_lambda_return_estimate

__all__ = ["DreamerModelLoss", "DreamerActorLoss", "DreamerValueLoss", "gaussian_kl"]


def gaussian_kl(mean_q: torch.Tensor, std_q: torch.Tensor, mean_p: torch.Tensor, std_p: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean_q, std_q) || N(mean_p, std_p))`` of diagonal Gaussians, summed over the last dim.

    Example:
        >>> z, o = torch.zeros(2, 3), torch.ones(2, 3)
        >>> gaussian_kl(z, o, z, o)
        tensor([0., 0.])
        >>> round(float(gaussian_kl(z, o, o, o)[0]), 3)  # 3 dims, each 0.5 * 1^2
        1.5
    """
    var_ratio = (std_q / std_p).pow(2)
    return 0.5 * (var_ratio + ((mean_q - mean_p) / std_p).pow(2) - 1.0 - var_ratio.log()).sum(-1)


class DreamerModelLoss(LossModule):
    """The world model's loss on real ``[B, T]`` sequences: KL, reconstruction, reward.

    Terms (Hafner et al. 2020, eq. 10, Gaussian likelihoods of unit variance):

    * ``loss_model_kl = lambda_kl * max(E[KL(q(s_t | h_t, e_t) || p(s_t | h_t))], free_nats)``; with
      ``kl_balance = a`` (DreamerV2): ``a * max(E[KL(sg(q) || p)], free_nats) + (1 - a) * max(E[KL(q ||
      sg(p))], free_nats)`` (the prior learns faster than the posterior is pulled to it);
    * ``loss_model_reco = lambda_reco * E[0.5 * sum_pixels (x_hat - x)^2]``;
    * ``loss_model_reward = lambda_reward * E[0.5 * (r_hat - r)^2]``.

    Expectations are over batch and time, skipping the RSSM's burn-in steps. Diagnostic: ``kl`` (the
    mean KL before clamping).

    Args:
        world_model: a TensorDict module such as :func:`~rlbench.modules.dreamer_world_model`: reads the
            sequence and writes ``("next", ...)`` ``prior_mean``, ``prior_std``, ``posterior_mean``,
            ``posterior_std``, ``reco_pixels`` and the predicted ``reward``. Its
            :class:`~rlbench.modules.RSSMRollout` (found inside) gives the burn-in.
        lambda_kl, lambda_reco, lambda_reward: the weights (1.0 each).
        free_nats: the KL floor (3.0, as in the paper).
        kl_balance: ``None`` (v1, the default) or the balancing weight in ``(0, 1)`` (0.8 in DreamerV2).

    Keys (``set_keys``): ``action``, ``pixels``, ``reward`` (the true reward, read before the model runs),
    ``predicted_reward``, ``reco_pixels``, ``prior_mean``, ``prior_std``, ``posterior_mean``,
    ``posterior_std``, ``done``, ``terminated`` (all but ``action`` under ``"next"``).

    ``forward(td, return_data=True)`` also returns the world model's output (detached): its posterior
    states start the actor's imagination.

    Example:
        >>> from tensordict import TensorDict
        >>> from rlbench.modules import ObsDecoder, ObsEncoder, RSSMPosterior, RSSMPrior, RSSMRollout
        >>> from rlbench.modules import dreamer_mlp, dreamer_world_model
        >>> wm = dreamer_world_model(ObsEncoder(), RSSMRollout(RSSMPrior(action_dim=1), RSSMPosterior()),
        ...                          ObsDecoder(), dreamer_mlp(230, depth=2))
        >>> td = TensorDict({"pixels": torch.rand(2, 4, 3, 64, 64), "action": torch.rand(2, 4, 1),
        ...                  "next": {"pixels": torch.rand(2, 4, 3, 64, 64), "reward": torch.rand(2, 4, 1),
        ...                           "done": torch.zeros(2, 4, 1, dtype=torch.bool)}}, [2, 4])
        >>> out = DreamerModelLoss(wm)(td)
        >>> sorted(out.keys())
        ['kl', 'loss_model_kl', 'loss_model_reco', 'loss_model_reward']
    """

    default_keys = {"action": "action", "pixels": "pixels", "reward": "reward", "predicted_reward": "reward",
                    "reco_pixels": "reco_pixels", "prior_mean": "prior_mean", "prior_std": "prior_std",
                    "posterior_mean": "posterior_mean", "posterior_std": "posterior_std", "done": "done",
                    "terminated": "terminated"}

    def __init__(self, world_model: nn.Module, *, lambda_kl: float = 1.0, lambda_reco: float = 1.0,
                 lambda_reward: float = 1.0, free_nats: float = 3.0, kl_balance: float | None = None):
        super().__init__(functional=False)
        if kl_balance is not None and not 0.0 < float(kl_balance) < 1.0:
            raise ValueError(f"DreamerModelLoss: kl_balance must be None (v1) or in (0, 1) (0.8 in DreamerV2), "
                             f"got {kl_balance!r}")
        self.convert_to_functional(world_model, "world_model")
        scans = [m for m in world_model.modules() if isinstance(m, RSSMRollout)]
        self.rssm = scans[0] if scans else None
        self.lambda_kl, self.lambda_reco, self.lambda_reward = lambda_kl, lambda_reco, lambda_reward
        self.free_nats, self.kl_balance = float(free_nats), kl_balance

    @property
    def burn_in(self) -> int:
        return self.rssm.burn_in if self.rssm is not None else 0

    def forward(self, td: TensorDictBase, *, return_data: bool = False):
        keys = self.tensor_keys
        self.stored_action(td)  # the action each step took: the RSSM's input
        if td.batch_dims < 1 or (self.rssm is not None and td.batch_dims < 2):
            raise ValueError(f"DreamerModelLoss: expects [B, T] sequences (e.g. a SliceSampler sample reshaped to "
                             f"[num_slices, slice_len]), got batch_size {list(td.batch_size)}")
        if self.rssm is not None:
            self.rssm.check_length(td.shape[-1])
        true_reward, _ = self.reward_and_terminated(td)
        nxt = td.get("next")
        pixels = nxt.get(keys.pixels, None)
        if pixels is None:
            raise self._missing_entry(nxt, keys.pixels, "pixels", "the observed frames the model reconstructs",
                                      in_next=True)
        data = td.copy()
        data.set("next", nxt.exclude(keys.reward))
        data = self.world_model(data)
        out = data.get("next")
        b = self.burn_in

        def seq(x):  # the steps the losses count: after the burn-in
            return x[:, b:] if b else x

        post = [seq(out.get(getattr(keys, k))) for k in ("posterior_mean", "posterior_std")]
        prior = [seq(out.get(getattr(keys, k))) for k in ("prior_mean", "prior_std")]
        kl = gaussian_kl(*post, *prior)  # [B, T]
        if self.kl_balance is None:
            loss_kl = kl.mean().clamp_min(self.free_nats)
        else:
            a = self.kl_balance
            train_prior = gaussian_kl(*(x.detach() for x in post), *prior).mean().clamp_min(self.free_nats)
            train_post = gaussian_kl(*post, *(x.detach() for x in prior)).mean().clamp_min(self.free_nats)
            loss_kl = a * train_prior + (1 - a) * train_post
        reco = seq(out.get(keys.reco_pixels))
        loss_reco = 0.5 * (reco - seq(pixels)).pow(2).sum((-3, -2, -1)).mean()
        pred_reward = seq(out.get(keys.predicted_reward))
        loss_reward = 0.5 * (pred_reward - seq(true_reward)).pow(2).mean()
        losses = TensorDict(loss_model_kl=self.lambda_kl * loss_kl, loss_model_reco=self.lambda_reco * loss_reco,
                            loss_model_reward=self.lambda_reward * loss_reward, kl=kl.mean().detach())
        return (losses, data.detach()) if return_data else losses


class DreamerActorLoss(LossModule):
    """The actor's loss: maximise the lambda-returns of trajectories imagined in the world model.

    From every posterior state of the batch, the actor imagines ``imagination_horizon`` steps in
    ``model_env`` (a :class:`~rlbench.envs.WorldModelEnv` on the RSSM prior, e.g.
    :func:`~rlbench.modules.dreamer_imagination_env`), sampling its actions (reparameterised, so the
    gradient of the returns flows through the imagined dynamics into the actor). Then (Hafner et al.
    2020, eqs. 5-7)::

        G_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda G_{t+1}],  G_{H-1} = r_{H-1} + gamma V(s_H)
        loss_actor = -E_start[sum_t w_t G_t]

    with ``w_t = 1`` (v1) or ``gamma^t`` (``discount_loss=True``). The lambda-returns are the library's
    vectorized :func:`~rlbench.objectives.value.td_lambda_return_estimate`. The world model and the value
    network are held out (:func:`~rlbench.objectives.hold_out_params`): gradients pass through them, but
    only the actor's parameters (``loss.parameters()``) receive any. Diagnostic: ``imagined_return``
    (mean ``G_t``).

    Args:
        actor_network: the policy on the latent (``"state"``, ``"belief"`` -> ``"action"``), e.g.
            :func:`~rlbench.modules.dreamer_actor`; sampled under ``ExplorationType.RANDOM``.
        value_network: ``("state", "belief") -> "state_value"``; not a parameter of this loss.
        model_env: the imagination env; its observations must include ``"state"`` and ``"belief"``.
        imagination_horizon: imagined steps per start state (15).
        gamma, lmbda: discount and lambda of the returns (0.99, 0.95).
        discount_loss: weight step ``t`` by ``gamma^t``.

    Keys (``set_keys``): ``state``, ``belief`` (where the batch holds the start latents: under
    ``"next"`` -- the posterior of each observed frame -- when the batch has a ``"next"``, else at the
    root), ``reward`` (the imagined reward), ``value`` (``"state_value"``), ``lambda_target``.

    ``forward(td, return_imagination=True)`` also returns the imagined ``[N, H]`` trajectories
    (detached) with their ``"lambda_target"``: the value loss's input.

    With an env from :func:`~rlbench.modules.dreamer_imagination_env` (and the default keys), the
    trajectories come from :func:`~rlbench.modules.imagine_with_policy`: the same steps and random draws
    as ``model_env.rollout``, without the env's per-step TensorDict plumbing; any other env is rolled out.
    """

    default_keys = {"state": "state", "belief": "belief", "reward": "reward", "value": "state_value",
                    "lambda_target": "lambda_target"}

    def __init__(self, actor_network: nn.Module, value_network: nn.Module, model_env, *,
                 imagination_horizon: int = 15, gamma: float = 0.99, lmbda: float = 0.95,
                 discount_loss: bool = False):
        super().__init__(functional=False)
        if int(imagination_horizon) < 1:
            raise ValueError(f"DreamerActorLoss: imagination_horizon must be >= 1, got {imagination_horizon}")
        self.convert_to_functional(actor_network, "actor_network")
        # not submodules: their parameters belong to the value and world-model losses (and optimizers)
        self.__dict__["value_network"] = value_network
        self.__dict__["model_env"] = model_env
        self.imagination_horizon = int(imagination_horizon)
        self.gamma, self.lmbda, self.discount_loss = float(gamma), float(lmbda), bool(discount_loss)

    def start_states(self, td: TensorDictBase) -> TensorDictBase:
        """The latents imagination starts from, flattened to ``[N]`` and detached (the model is not trained here)."""
        self._check_nonempty(td)
        keys = self.tensor_keys
        src, in_next = (td.get("next"), True) if isinstance(td.get("next", None), TensorDictBase) else (td, False)
        out = {}
        for name, env_key in (("state", "state"), ("belief", "belief")):
            key = getattr(keys, name)
            value = src.get(key, None)
            if value is None:
                raise self._missing_entry(src, key, name, "the latent state imagination starts from (the world "
                                          "model's posterior: run DreamerModelLoss(..., return_data=True) first)",
                                          in_next=in_next)
            out[env_key] = value.detach().reshape(-1, value.shape[-1])
        return TensorDict(out, batch_size=[out["state"].shape[0]], device=td.device)

    def forward(self, td: TensorDictBase, *, return_imagination: bool = False):
        keys = self.tensor_keys
        start = self.start_states(td)
        env = self.model_env
        models = [m for m in (getattr(env, "world_model", None), getattr(env, "reward_model", None),
                              self.value_network) if isinstance(m, nn.Module)]
        with _held_out(models), set_interaction_type(InteractionType.RANDOM):
            dream = self._imagine(env, start)
            next_value = self.value_network(dream.get("next").select(*self.value_network.in_keys)).get(keys.value)
        reward = dream.get(("next", keys.reward))
        target = td_lambda_return_estimate(self.gamma, self.lmbda, next_value, reward)  # [N, H, 1]
        weight = self._discount(target) if self.discount_loss else None
        loss = -(target if weight is None else weight * target).sum((-2, -1)).mean()
        out = TensorDict(loss_actor=loss, imagined_return=target.mean().detach())
        if not return_imagination:
            return out
        dream = dream.detach()
        dream.set(keys.lambda_target, target.detach())
        return out, dream

    def _imagine(self, env, start: TensorDictBase) -> TensorDictBase:
        """The imagined trajectories from ``start``: ``env.rollout``, or the same by a plain loop.

        For :func:`~rlbench.modules.dreamer_imagination_env`'s env (it carries ``dreamer_latent``), the same
        trajectories come from :func:`~rlbench.modules.imagine_with_policy`, without the env's per-step
        TensorDict plumbing and checks (tests/objectives/test_dreamer_losses.py compares the two).
        """
        latent = getattr(env, "dreamer_latent", None)
        keys = self.tensor_keys
        if latent is not None and (keys.state, keys.belief, keys.reward) == ("state", "belief", "reward"):
            return imagine_with_policy(*latent, self.actor_network, start, self.imagination_horizon)
        return env.rollout(self.imagination_horizon, self.actor_network, tensordict=start, auto_reset=False)

    def _discount(self, like: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(like.shape[-2], dtype=like.dtype, device=like.device)
        return (self.gamma ** steps).unsqueeze(-1)


class _held_out:
    """Holds out the parameters of several networks at once (:func:`hold_out_params` on each)."""

    def __init__(self, networks):
        self.contexts = [hold_out_params(n) for n in networks]

    def __enter__(self):
        for c in self.contexts:
            c.__enter__()

    def __exit__(self, *exc):
        for c in reversed(self.contexts):
            c.__exit__(*exc)


class DreamerValueLoss(LossModule):
    """The value's loss: regress ``V(s_t)`` on the imagined lambda-returns (Hafner et al. 2020, eq. 8).

    ``loss_value = E_start[sum_t w_t 0.5 (V(s_t) - sg(G_t))^2]``, ``w_t = 1`` or ``gamma^t``
    (``discount_loss``), on the imagined trajectories that :class:`DreamerActorLoss` returns with
    ``return_imagination=True`` (their root latents ``s_t`` and ``"lambda_target"`` ``G_t``).

    Args:
        value_network: ``("state", "belief") -> "state_value"``.
        gamma: the discount of the weights.
        discount_loss: weight step ``t`` by ``gamma^t``.

    Keys (``set_keys``): ``value`` (``"state_value"``), ``lambda_target``.

    Example:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> value = TensorDictModule(torch.nn.Linear(3, 1), ["state"], ["state_value"])
        >>> dream = TensorDict(state=torch.randn(4, 5, 3), lambda_target=torch.randn(4, 5, 1), batch_size=[4, 5])
        >>> DreamerValueLoss(value)(dream)["loss_value"].shape
        torch.Size([])
    """

    default_keys = {"value": "state_value", "lambda_target": "lambda_target"}

    def __init__(self, value_network: nn.Module, *, gamma: float = 0.99, discount_loss: bool = False):
        super().__init__(functional=False)
        self.convert_to_functional(value_network, "value_network")
        self.gamma, self.discount_loss = float(gamma), bool(discount_loss)

    def forward(self, td: TensorDictBase) -> TensorDict:
        target = self.column(td, "lambda_target", "the imagined lambda-returns: DreamerActorLoss(..., "
                                                  "return_imagination=True) returns the trajectories with them")
        missing = [k for k in self.value_network.in_keys if k not in td.keys(True, True)]
        if missing:
            raise KeyError(f"DreamerValueLoss: the value network reads {missing}, missing from the batch (the "
                           f"imagined trajectories); found keys {sorted(map(str, td.keys()))}")
        value = self.value_network(td.select(*self.value_network.in_keys)).get(self.tensor_keys.value)
        err = 0.5 * (value - target.detach()).pow(2)
        if self.discount_loss and td.batch_dims >= 2:
            steps = torch.arange(err.shape[-2], dtype=err.dtype, device=err.device)
            err = err * (self.gamma ** steps).unsqueeze(-1)
        loss = err.sum((-2, -1)).mean() if td.batch_dims >= 2 else err.mean()
        return TensorDict(loss_value=loss)
