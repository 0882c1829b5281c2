"""IMPALA's actor-critic loss with V-trace targets.

Espeholt et al., "IMPALA: Scalable Distributed Deep-RL with Importance Weighted Actor-Learner
Architectures", 2018, arXiv:1802.01561, sec. 4.2. Actors collect with a policy ``mu`` that lags the
learner's ``pi`` by a few updates; V-trace (:class:`~rlbench.objectives.value.VTrace`) corrects the
value targets and the policy gradient for that lag with truncated importance weights.
"""
from __future__ import annotations

from .a2c import A2CLoss
from .common import LossModule, ValueEstimators

__all__ = ["IMPALALoss"]

class IMPALALoss(A2CLoss):
    """IMPALA: policy gradient weighted by V-trace advantages, a critic regressed on V-trace targets, an entropy bonus.

    The terms are A2C's (:class:`~rlbench.objectives.A2CLoss`, whose ``forward`` it runs); what IMPALA changes
    is where the advantage and the target come from: V-trace, which corrects for the actors' lag.

    Terms (Espeholt et al. 2018, sec. 4.2; ``v_s`` the V-trace target, ``rho_s = min(rho_bar, pi/mu)``):

    * ``loss_objective = -E[log pi(a_s|x_s) A_s]`` with the advantage
      ``A_s = rho_s (r_s + gamma v_{s+1} - V(x_s))`` held constant;
    * ``loss_critic = critic_coef * E[d(V(x_s), v_s)]`` (the paper's baseline loss, ``d`` squared error);
    * ``loss_entropy = -entropy_coef * E[H(pi(.|x_s))]`` (if ``entropy_bonus``).

    Diagnostics: ``entropy``.

    Without ``"advantage"`` in the input, the loss's value estimator writes ``"advantage"`` and
    ``"value_target"`` first: by default :class:`~rlbench.objectives.value.VTrace` over the current
    actor and critic (``gamma``, ``rho_thresh``, ``c_thresh`` as given here), which needs the batch
    as trajectories ``[*B, T]`` (time last, as a collector yields it), the behaviour log-probability
    under ``"sample_log_prob"`` (rlbench's actors write it with ``return_log_prob=True``) and the
    rewards and flags under ``"next"``. ``make_value_estimator("vtrace", gamma=..., rho_thresh=...)``
    rebuilds it; the on-policy estimators (``"gae"``, ...) are accepted too.

    Args:
        actor_network: a probabilistic actor (``get_dist(td)``) reading the observation keys.
        critic_network: a ``TensorDictModule`` writing ``"state_value"``.
        gamma: discount of the default V-trace estimator (0.99).
        rho_thresh: ``rho_bar``, truncation of the importance weights (1.0, as in the paper).
        c_thresh: ``c_bar``, truncation of the trace coefficients (1.0).
        entropy_bonus: add ``loss_entropy``.
        entropy_coef: its weight (0.01, the paper's Atari value).
        critic_coef: weight of ``loss_critic`` (0.5, the paper's baseline cost).
        loss_critic_type: ``"l2"`` (default, as in the paper), ``"smooth_l1"`` or ``"l1"``.
        normalize_advantage: standardise the advantage over the batch first.
        entropy_coeff, critic_coeff: TorchRL's spellings of ``entropy_coef`` / ``critic_coef``.

    Keys (``set_keys``): ``action``, ``sample_log_prob``, ``advantage``, ``value_target``, ``value``
    (the critic's output, ``"state_value"``), ``reward``, ``done``, ``terminated``.

    Example:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential
        >>> from torch import nn
        >>> actor = ProbabilisticTensorDictSequential(
        ...     TensorDictModule(nn.Linear(3, 2), ["observation"], ["logits"]),
        ...     ProbabilisticTensorDictModule(["logits"], ["action"],
        ...                                   distribution_class=torch.distributions.Categorical,
        ...                                   return_log_prob=True, log_prob_key="sample_log_prob"))
        >>> critic = TensorDictModule(nn.Linear(3, 1), ["observation"], ["state_value"])
        >>> td = actor(TensorDict(observation=torch.randn(4, 10, 3), batch_size=[4, 10]))  # 4 unrolls of 10 steps
        >>> td["next"] = TensorDict(observation=torch.randn(4, 10, 3), reward=torch.ones(4, 10, 1),
        ...                         done=torch.zeros(4, 10, 1, dtype=torch.bool), batch_size=[4, 10])
        >>> out = IMPALALoss(actor, critic)(td)  # V-trace targets first, from the current actor and critic
        >>> sorted(out.keys()), td["value_target"].shape
        (['entropy', 'loss_critic', 'loss_entropy', 'loss_objective'], torch.Size([4, 10, 1]))
    """

    default_value_estimator = ValueEstimators.VTrace
    #: V-trace has no lambda (make_value_estimator gives GAE and TD(lambda) theirs)
    default_value_kwargs = {"gamma": 0.99}
    default_keys = {**A2CLoss.default_keys, "sample_log_prob": "sample_log_prob"}

    def __init__(self, actor_network, critic_network, *, gamma: float = 0.99, rho_thresh: float = 1.0,
                 c_thresh: float = 1.0, entropy_bonus: bool = True, entropy_coef: float | None = None,
                 critic_coef: float | None = None, loss_critic_type: str = "l2", normalize_advantage: bool = False,
                 entropy_coeff: float | None = None, critic_coeff: float | None = None):
        if critic_network is None:
            raise TypeError("IMPALALoss: critic_network is required (V-trace targets bootstrap from V(x))")
        super().__init__(actor_network, critic_network, entropy_bonus=entropy_bonus, entropy_coef=entropy_coef,
                         critic_coef=critic_coef, loss_critic_type=loss_critic_type,
                         normalize_advantage=normalize_advantage, entropy_coeff=entropy_coeff,
                         critic_coeff=critic_coeff)
        self.gamma, self.rho_thresh, self.c_thresh = float(gamma), float(rho_thresh), float(c_thresh)

    # forward: A2CLoss's. With V-trace, A_s = rho_s (r_s + gamma v_{s+1} - V(x_s)) and the policy gradient
    # E_mu[rho_s grad log pi(a_s|x_s) A_s] (sec. 4.2); the baseline regresses on the V-trace target v_s.

    # -------------------------------------------------------------- plumbing
    def make_value_estimator(self, value_type=None, **hyperparams):
        """Builds the loss's value estimator (:meth:`LossModule.make_value_estimator`); returns ``self``.

        Args:
            value_type: ``"vtrace"`` / ``ValueEstimators.VTrace`` (the default) or an on-policy one
                (``"gae"``, ...).
            **hyperparams: the estimator's (for V-trace ``gamma``, ``rho_thresh``, ``c_thresh``,
                ``average_adv``, ``differentiable``, ``time_dim``); ``gamma``, ``rho_thresh`` and
                ``c_thresh`` default to the loss's, GAE's and TD(lambda)'s ``lmbda`` to 0.95.
        """
        kind = ValueEstimators.parse(self.default_value_estimator if value_type is None else value_type)
        defaults = {"gamma": self.gamma}
        if kind is ValueEstimators.VTrace:  # the targets weigh each step by pi/mu: the estimator reads the actor
            defaults.update(actor_network=self.actor_network, rho_thresh=self.rho_thresh, c_thresh=self.c_thresh)
        elif kind in (ValueEstimators.GAE, ValueEstimators.TDLambda):
            defaults["lmbda"] = LossModule.default_value_kwargs["lmbda"]
        return super().make_value_estimator(kind, **{**defaults, **hyperparams})
