"""SASRec generator: the exact-probability interface (two routes to one log-prob, normalization,
sampling law by a z-test, Monte-Carlo Q against the exact Q) on tiny V, T in float64."""

from __future__ import annotations

import pytest
import torch

from gan_equiv.exact.q_values import exact_q_values
from gan_equiv.models.builders import build_generator
from gan_equiv.models.energies import TabularEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.models.specs import EnergyConfig, GeneratorConfig
from gan_equiv.schema import ConfigError
from gan_equiv.train.checkpoint import CheckpointError
from gan_equiv.train.config import TrainConfig
from gan_equiv.train.rollouts import mc_q_values
from gan_equiv.train.trainer import Trainer
from maxent_il.space import SequenceSpace

V, T = 3, 3


@pytest.fixture
def policy() -> SASRecPolicy:
    torch.manual_seed(0)
    p = SASRecPolicy(V, T, embed_dim=8, n_layers=2, n_heads=2, inner_dim=16, dropout=0.0, dtype=torch.float64)
    with torch.no_grad():  # larger weights than the 0.02 init, so the conditionals differ visibly
        for param in p.parameters():
            param.mul_(20.0 if param.ndim > 1 else 1.0)
    return p.eval()


def test_teacher_forced_pass_equals_state_route(policy):
    seqs = torch.as_tensor(SequenceSpace(V, T).all_sequences())
    fast = policy.step_log_probs(seqs)
    states = policy.prefix_states(seqs)[:, :-1]  # (N, T, 1 + T)
    slow = torch.log_softmax(policy.logits(states.reshape(-1, 1 + T)), dim=-1).reshape(len(seqs), T, V)
    slow = slow.gather(2, seqs[..., None]).squeeze(-1)
    assert torch.allclose(fast, slow, atol=1e-12)
    assert torch.allclose(fast.sum(dim=1), policy.log_prob(seqs), atol=1e-12)
    assert fast.std() > 1e-3  # not the uniform policy


def test_conditionals_normalize(policy):
    assert torch.isclose(policy.all_log_probs().exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    pre = torch.tensor([[0, 2], [1, 1]])
    total = policy.next_item_log_probs(pre).exp().sum(dim=1)
    assert torch.allclose(total, torch.ones(2, dtype=torch.float64))


def test_sampling_frequencies_match_probabilities(policy):
    n = 20_000
    draws = policy.sample(n, generator=torch.Generator().manual_seed(1))
    index = (draws * torch.tensor([V * V, V, 1])).sum(dim=1)
    freq = torch.bincount(index, minlength=V**T).double() / n
    p = policy.all_log_probs().exp()
    z = (freq - p) / torch.sqrt(p * (1 - p) / n)
    assert z.abs().max() < 4.5


def test_rollouts_run_unchanged_and_match_exact_q(policy):
    torch.manual_seed(3)
    energy = TabularEnergy(V, T, values=torch.randn(V**T, dtype=torch.float64))
    seqs = policy.sample(4, generator=torch.Generator().manual_seed(2))
    K = 4000
    mc = mc_q_values(policy, energy, seqs, n_rollouts=K, generator=torch.Generator().manual_seed(4))
    exact = exact_q_values(policy, energy, seqs)
    assert mc.shape == exact.shape == (4, T)
    # per-prefix spread of D + w log p_G under the policy, for the z-score
    # a conservative bound: twice the spread of the whole return under p_G
    all_seqs = torch.as_tensor(SequenceSpace(V, T).all_sequences())
    with torch.no_grad():
        ret = energy(all_seqs) + policy.log_prob(all_seqs)
    sd = float(torch.sqrt((policy.all_log_probs().detach().exp() * (ret - ret.mean()) ** 2).sum() * 4))
    z = (mc - exact) / (sd / K**0.5 + 1e-12)
    assert z.abs().max() < 5.0


def test_is_a_sequence_policy_and_checks_sizes():
    p = SASRecPolicy(5, 4, embed_dim=8, n_heads=2, inner_dim=8)
    assert isinstance(p, SequencePolicy)
    assert p.sample(3).shape == (3, 4)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SASRecPolicy(5, 4, embed_dim=7, n_heads=2)
    with pytest.raises(ValueError, match="dropout"):
        SASRecPolicy(5, 4, dropout=1.0)


# --- the [generator] table of kind "sasrec": builder, trainer, checkpoint ----------------------


def sasrec_config(tmp_path, **generator) -> TrainConfig:
    spec = {"kind": "sasrec", "embed_dim": 8, "n_layers": 1, "n_heads": 2, "inner_dim": 16, "dropout": 0.1}
    return TrainConfig(
        n_items=5,
        horizon=4,
        batch_size=8,
        pretrain_g_epochs=1,
        pretrain_d_steps=1,
        adversarial_rounds=1,
        n_rollouts=2,
        d_steps=1,
        generator=GeneratorConfig(**{**spec, **generator}),
        energy=EnergyConfig(kind="cnn", embed_dim=4, filter_sizes=(1, 2), num_filters=(3, 3)),
        out_dir=str(tmp_path / "run"),
        device="cpu",
        progress=False,
        log_every=1,
        eval_every=0,
        checkpoint_every=0,
    )


def test_generator_kind_sasrec_builds_trains_and_restores(tmp_path):
    """kind = "sasrec" builds SASRecPolicy with the table's sizes; a checkpoint after MLE and one
    adversarial round restores the same weights into a fresh trainer (same log-probs)."""
    config = sasrec_config(tmp_path)
    policy = build_generator(config.generator, n_items=5, horizon=4)
    assert isinstance(policy, SASRecPolicy)
    assert policy.settings == {"embed_dim": 8, "n_layers": 1, "n_heads": 2, "inner_dim": 16, "dropout": 0.1}
    assert len(policy.encoder.layers) == 1 and policy.encoder.layers[0].linear1.out_features == 16
    data = torch.randint(5, (32, 4), generator=torch.Generator().manual_seed(1))
    trainer = Trainer(config, data)
    trainer.fit()
    path = trainer.save(tmp_path / "ckpt.pt")
    fresh = Trainer(config, data)
    seqs = data[:6]
    before = fresh.policy.eval().step_log_probs(seqs)
    fresh.resume(path)
    after, trained = fresh.policy.eval().step_log_probs(seqs), trainer.policy.eval().step_log_probs(seqs)
    assert not torch.equal(before, trained)  # training moved the weights away from the initial ones
    torch.testing.assert_close(after, trained, rtol=0, atol=0)
    other = sasrec_config(tmp_path, n_layers=2)
    with pytest.raises(CheckpointError, match=r"generator\.n_layers"):
        Trainer(other, data).resume(path)


def test_sasrec_table_is_validated():
    with pytest.raises(ConfigError, match=r"n_heads = 3.*does not divide embed_dim=8"):
        GeneratorConfig(kind="sasrec", embed_dim=8, n_heads=3)
    with pytest.raises(ConfigError, match=r"dropout = 1\.0.*\[0, 1\)"):
        GeneratorConfig(kind="sasrec", dropout=1.0)
    with pytest.raises(ConfigError, match=r"inner_dim = 0.*positive"):
        GeneratorConfig(kind="sasrec", inner_dim=0)
    assert GeneratorConfig(kind="rnn", embed_dim=8, n_heads=3).n_heads == 3  # only sasrec reads heads


def test_evaluators_score_a_dropout_generator_in_eval_mode(tmp_path) -> None:
    """With dropout > 0, p_G is the eval-mode distribution: the exact evaluator's KL is finite and
    equals the KL of the same model scored by hand in eval mode; the train mode is put back."""
    import math

    from gan_equiv.train.config import apply_overrides, tiny_exact_preset
    from gan_equiv.train.experiment import prepare_run
    from gan_equiv.train.trainer import Trainer
    from maxent_il.divergences import exact_divergences

    config = apply_overrides(
        tiny_exact_preset(),
        {"generator.kind": "sasrec", "generator.dropout": 0.3, "out_dir": str(tmp_path), "progress": False},
    )
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    trainer.policy.train()
    kl = setup.evaluator(trainer)["kl_data_model"]
    assert trainer.policy.training
    trainer.policy.eval()
    with torch.no_grad():
        log_q = trainer.policy.all_log_probs().double().numpy()
    assert math.isfinite(kl)
    assert kl == exact_divergences(setup.problem.log_probs, log_q).kl_pq
