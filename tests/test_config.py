"""Trainer configuration: defaults, validation messages, TOML loading, overrides, presets, device."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from gan_equiv.train.config import (
    PRESETS,
    ConfigError,
    EnergyConfig,
    GeneratorConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    load_config,
    resolve_device,
    seqgan_full_preset,
    seqgan_oracle_preset,
    tiny_exact_preset,
)
from gan_equiv.train.presets import PRESET_CHANGES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid_and_follow_seqgan() -> None:
    c = TrainConfig()
    assert (c.n_train, c.batch_size, c.n_rollouts, c.entropy_weight) == (10000, 64, 16, 1.0)
    assert (c.g_optim.lr, c.g_optim.grad_clip, c.d_optim.lr) == (1e-2, 5.0, 1e-4)
    assert c.generator == GeneratorConfig() and c.energy == EnergyConfig()
    assert c.run_dir == Path("runs/run")
    assert dataclasses.replace(c, out_dir="elsewhere").run_dir == Path("elsewhere")


def test_configs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().margin = 3.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"margin": -1.0}, r"margin = -1\.0.*positive"),
        ({"margin": 0.0}, r"margin = 0\.0.*positive"),
        ({"margin": float("nan")}, r"margin"),
        ({"n_rollouts": 0}, r"n_rollouts = 0.*at least 1"),
        ({"entropy_weight": -0.5}, r"entropy_weight = -0\.5.*non-negative"),
        ({"batch_size": 0}, r"batch_size = 0.*positive"),
        ({"horizon": -3}, r"horizon = -3"),
        ({"n_items": 1}, r"n_items = 1.*at least 2"),
        ({"data": "imdb"}, r"data = 'imdb'.*one of 'oracle', 'markov', 'gibbs'; pick"),
        ({"data": "file"}, r"data = 'file'.*one of 'oracle', 'markov', 'gibbs'; pick"),
        ({"device": "gpu"}, r"device = 'gpu'.*one of 'auto', 'cpu', 'cuda'"),
        ({"bf16": True, "device": "cpu"}, r"bf16.*CUDA only"),
        ({"horizon": 20, "n_rollouts": 2.5}, r"n_rollouts = 2\.5.*an integer"),
        ({"progress": "yes"}, r"progress = 'yes'.*true or false"),
        ({"horizon": 3, "energy": {"filter_sizes": [5], "num_filters": [2]}}, r"wider than the horizon"),
        ({"objective": "wgan"}, r"objective = 'wgan'.*one of 'ebgan', 'seqgan', 'gan_gcl'"),
        ({"objective": "seqgn"}, r"did you mean 'seqgan'"),
        ({"generator_estimator": "reinforce"}, r"generator_estimator = 'reinforce'.*'rollout'"),
        ({"d_schedule": "gan"}, r"d_schedule = 'gan'.*one of 'steps', 'seqgan'"),
        ({"d_pool": 0}, r"d_pool = 0.*positive"),
        ({"d_repeats": -1}, r"d_repeats = -1.*positive"),
        ({"d_epochs": 0}, r"d_epochs = 0.*positive"),
        ({"d_epochs": 1.5}, r"d_epochs = 1\.5.*an integer"),
        ({"d_schedule": "seqgan", "batch_size": 63}, r"batch_size = 63.*even.*use batch_size = 64"),
        ({"objective": "seqgan", "energy": {"kind": "autoencoder"}}, r"energy\.kind.*caps D\(S\) at ½"),
        ({"name": "."}, r"name = '\.'.*plain name"),
        ({"name": ".."}, r"name = '\.\.'.*plain name"),
        ({"name": ""}, r"name = ''.*plain name"),
        ({"name": "a/b"}, r"name = 'a/b'.*plain name"),
        ({"name": "a\\b"}, r"plain name"),
        ({"name": "/abs"}, r"name = '/abs'.*plain name.*set out_dir"),
        ({"name": "C:run"}, r"name = 'C:run'.*plain name"),
    ],
)
def test_bad_train_values_name_key_and_value(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: OptimConfig(lr=0.0), r"lr = 0\.0.*positive"),
        (lambda: OptimConfig(lr=-1e-3), r"lr = -0\.001.*positive"),
        (lambda: OptimConfig(betas=(0.9, 1.0)), r"betas\[1\] = 1\.0"),
        (lambda: OptimConfig(grad_clip=-1.0), r"grad_clip = -1\.0.*non-negative"),
        (lambda: GeneratorConfig(cell="rnn"), r"cell = 'rnn'.*one of 'gru', 'lstm'"),
        (lambda: GeneratorConfig(hidden_dim=0), r"hidden_dim = 0.*positive"),
        (lambda: EnergyConfig(kind="cnnn"), r"kind = 'cnnn'.*did you mean 'cnn'"),
        (lambda: EnergyConfig(feature_state="prefix"), r"feature_state = 'prefix'.*'history'"),
        (lambda: EnergyConfig(dropout=1.0), r"dropout = 1\.0.*\[0, 1\)"),
        (lambda: EnergyConfig(filter_sizes=(1, 2), num_filters=(3,)), r"num_filters.*one filter count"),
    ],
)
def test_bad_table_values(build, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        build()


def test_nested_errors_carry_the_table_name() -> None:
    with pytest.raises(ConfigError, match=r"g_optim\.lr = -1\.0") as info:
        TrainConfig(g_optim={"lr": -1.0})
    assert info.value.key == "g_optim.lr"
    with pytest.raises(ConfigError, match=r"generator\.cell = 'transformer'"):
        config_from_dict({"generator": {"cell": "transformer"}})


def test_toml_unknown_key_names_key_table_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "n_items = 10\n[generator]\nhiden_dim = 16\n")
    with pytest.raises(ValueError) as info:
        load_config(path)
    msg = str(info.value)
    assert "'hiden_dim'" in msg and "[generator]" in msg and "did you mean 'hidden_dim'" in msg
    assert "embed_dim" in msg  # lists the valid keys
    assert str(path) in msg


def test_toml_unknown_top_level_key_and_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'marign'.*top level.*did you mean 'margin'"):
        load_config(write(tmp_path, "marign = 2.0\n"))
    with pytest.raises(ValueError, match=r"'genrator'.*did you mean 'generator'"):
        load_config(write(tmp_path, "[genrator]\ncell = 'gru'\n"))


def test_toml_bad_values_and_syntax(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"margin = -2\.0"):
        load_config(write(tmp_path, "margin = -2.0\n"))
    with pytest.raises(ValueError, match=r"n_rollouts = 0"):
        load_config(write(tmp_path, "n_rollouts = 0\n"))
    with pytest.raises(ValueError, match=r"d_optim\.lr = 0\.0"):
        load_config(write(tmp_path, "[d_optim]\nlr = 0.0\n"))
    with pytest.raises(ValueError, match=r"energy\.kind = 'gan'"):
        load_config(write(tmp_path, "[energy]\nkind = 'gan'\n"))
    with pytest.raises(ValueError, match=r"must be a table"):
        load_config(write(tmp_path, "generator = 3\n"))
    with pytest.raises(ValueError, match=r"not valid TOML"):
        load_config(write(tmp_path, "margin = = 2\n"))
    with pytest.raises(ValueError, match=r"does not exist; give a TOML file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match=r"is a folder; give a TOML file"):
        load_config(tmp_path)
    (tmp_path / "latin1.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(byte 11: invalid continuation byte\)"):
        load_config(tmp_path / "latin1.toml")


def test_toml_integer_for_float_is_accepted(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, "margin = 5\n[g_optim]\nbetas = [0, 0.5]\n"))
    assert c.margin == 5.0 and isinstance(c.margin, float)
    assert c.g_optim.betas == (0.0, 0.5)


def test_cli_overrides_convert_types() -> None:
    base = TrainConfig()
    c = apply_overrides(
        base,
        [
            "--margin",
            "5",
            "--generator.hidden_dim",
            "64",
            "--generator.cell=lstm",
            "--n-rollouts",
            "4",
            "--reward_to_go",
            "true",
            "--baseline",
            "1",
            "--no-progress",
            "--constant_reward",
            "--energy.filter_sizes",
            "1,2,3",
            "--energy.num_filters",
            "4, 5, 6",
            "--g_optim.betas",
            "0.5,0.9",
            "--d_optim.lr",
            "3e-4",
            "--entropy_weight",
            "0",
        ],
    )
    assert c.margin == 5.0 and c.generator.hidden_dim == 64 and c.generator.cell == "lstm"
    assert c.n_rollouts == 4 and c.reward_to_go and c.baseline and not c.progress and c.constant_reward
    assert c.energy.filter_sizes == (1, 2, 3) and c.energy.num_filters == (4, 5, 6)
    assert c.g_optim.betas == (0.5, 0.9) and c.d_optim.lr == 3e-4 and c.entropy_weight == 0.0
    assert base == TrainConfig()  # the original is unchanged
    assert apply_overrides(base, ["--bf16", "false", "--margin=2.5e1"]).margin == 25.0


def test_dict_overrides_and_their_errors() -> None:
    c = apply_overrides(TrainConfig(), {"generator.embed_dim": 16, "margin": "2.5", "name": "x"})
    assert c.generator.embed_dim == 16 and c.margin == 2.5 and c.name == "x"
    with pytest.raises(ValueError, match=r"'generator\.hiden_dim'.*did you mean 'hidden_dim'"):
        apply_overrides(TrainConfig(), {"generator.hiden_dim": 3})
    with pytest.raises(ValueError, match=r"'marginn'.*did you mean 'margin'"):
        apply_overrides(TrainConfig(), ["--marginn", "3"])
    with pytest.raises(ValueError, match=r"margin = -1\.0"):
        apply_overrides(TrainConfig(), ["--margin", "-1"])
    with pytest.raises(ValueError, match=r"n_rollouts = 'many'.*an integer"):
        apply_overrides(TrainConfig(), ["--n_rollouts", "many"])
    with pytest.raises(ValueError, match=r"baseline = 'maybe'.*true/false"):
        apply_overrides(TrainConfig(), ["--baseline", "maybe"])
    with pytest.raises(ValueError, match=r"needs a value"):
        apply_overrides(TrainConfig(), ["--margin"])
    with pytest.raises(ValueError, match=r"is a table"):
        apply_overrides(TrainConfig(), ["--generator", "3"])
    with pytest.raises(ValueError, match=r"expected a --key flag"):
        apply_overrides(TrainConfig(), ["margin", "3"])


def test_dict_round_trip_is_json_safe() -> None:
    for config in (TrainConfig(), seqgan_oracle_preset(), tiny_exact_preset()):
        data = config_to_dict(config)
        text = json.dumps(data)
        assert config_from_dict(json.loads(text)) == config
        assert isinstance(data["energy"]["filter_sizes"], list)


def test_toml_round_trip(tmp_path: Path) -> None:
    config = apply_overrides(seqgan_oracle_preset(), ["--out_dir", 'C:\\runs\\"q"', "--d_optim.lr", "1e-5"])
    text = config_to_toml(config)
    assert config_from_dict(tomllib.loads(text)) == config
    path = tmp_path / "round.toml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path) == config


def test_presets_equal_the_toml_files() -> None:
    assert load_config(CONFIGS / "seqgan_oracle.toml") == seqgan_oracle_preset()
    assert load_config(CONFIGS / "tiny_exact.toml") == tiny_exact_preset()


def test_plain_run_names_are_accepted() -> None:
    for name in ("run", "oracle_run1", "a.b", "..x", "x..", "seqgan-full 2"):
        assert TrainConfig(name=name).run_dir == Path("runs") / name


def test_seqgan_full_preset_is_seqgans_size_and_schedule() -> None:
    """Yu et al. 2017's synthetic experiment: V 5000, T 20, LSTM 32/32, 120 MLE epochs, 200 rounds of
    one generator step (batch 64, K 16, Adam 1e-2, clip 5) and 5 × (10,000 samples, 3 epochs) of D."""
    c = PRESETS["seqgan_full"]()
    assert c == seqgan_full_preset() and c.data == "oracle"
    assert (c.n_items, c.horizon, c.n_train, c.batch_size, c.n_rollouts) == (5000, 20, 10000, 64, 16)
    assert (c.generator.kind, c.generator.cell, c.generator.embed_dim, c.generator.hidden_dim) == (
        "rnn", "lstm", 32, 32,
    )  # fmt: skip
    assert (c.pretrain_g_epochs, c.adversarial_rounds, c.g_steps) == (120, 200, 1)
    assert (c.g_optim.lr, c.g_optim.grad_clip) == (1e-2, 5.0)
    assert (c.d_schedule, c.d_pool, c.d_repeats, c.d_epochs) == ("seqgan", 10000, 5, 3)
    assert TrainConfig().d_schedule == "steps"  # the default stays one step per unit


def test_seqgan_preset_values() -> None:
    c = seqgan_oracle_preset()
    assert (c.n_items, c.horizon, c.n_train, c.batch_size, c.n_rollouts) == (5000, 20, 10000, 64, 16)
    assert (c.g_optim.lr, c.g_optim.grad_clip, c.d_optim.lr) == (1e-2, 5.0, 1e-4)
    assert c.energy.kind == "cnn" and c.energy.filter_sizes[-1] == 20 and sum(c.energy.num_filters) == 1720
    t = tiny_exact_preset()
    assert (t.n_items, t.horizon) == (4, 4) and t.data in ("gibbs", "markov")
    assert t.energy.kind in ("linear", "tabular")


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert TrainConfig(device="auto").torch_device() == torch.device("cpu")
    with pytest.raises(
        ValueError, match=r"CUDA requested.*is_available\(\) is False; use --device cpu or auto"
    ):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA requested"):
        TrainConfig(device="cuda").torch_device()
    with pytest.raises(ValueError, match=r"unknown device 'cpux'.*did you mean 'cpu'"):
        resolve_device("cpux")


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_the_defaults_plus_the_listed_changes(name: str) -> None:
    """Each preset differs from TrainConfig() in exactly the keys PRESET_CHANGES lists (no default
    is restated, none is changed silently)."""
    default, preset = _flat(config_to_dict(TrainConfig())), _flat(config_to_dict(PRESETS[name]()))
    assert preset.keys() == default.keys()
    changed = {k for k in default if preset[k] != default[k]}
    assert changed == set(PRESET_CHANGES[name])


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_files_list_only_what_differs(name: str) -> None:
    """configs/<name>.toml sets no key to its default value (the defaults live in one place)."""
    path = CONFIGS / f"{name}.toml"
    if not path.exists():
        pytest.skip(f"{path.name} is not written yet (the preset's TOML twin: config_to_toml of its changes)")
    raw = _flat(tomllib.loads(path.read_text(encoding="utf-8")))
    assert load_config(path) == PRESETS[name]()
    default = _flat(config_to_dict(TrainConfig()))
    restated = sorted(k for k, v in raw.items() if default[k] == (list(v) if isinstance(v, tuple) else v))
    assert restated == []
    assert set(raw) == set(PRESET_CHANGES[name])


def test_missing_table_keys_take_the_runs_table_defaults(tmp_path: Path) -> None:
    """[d_optim] with only lr keeps the D optimizer's own default (no clipping), not Adam's 5."""
    c = load_config(write(tmp_path, "[d_optim]\nlr = 1e-3\n"))
    assert c.d_optim == dataclasses.replace(TrainConfig().d_optim, lr=1e-3)
    assert c.d_optim.grad_clip == 0.0 and c.g_optim.grad_clip == 5.0


def test_objective_and_generator_estimator_keys(tmp_path: Path) -> None:
    c = TrainConfig()
    assert (c.objective, c.generator_estimator) == ("ebgan", "rollout")
    loaded = load_config(write(tmp_path, 'objective = "gan_gcl"\ngenerator_estimator = "analytic_entropy"\n'))
    assert (loaded.objective, loaded.generator_estimator) == ("gan_gcl", "analytic_entropy")
    cli = apply_overrides(c, ["--objective", "seqgan", "--generator-estimator", "analytic_entropy"])
    assert (cli.objective, cli.generator_estimator) == ("seqgan", "analytic_entropy")
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cli)))) == cli
    assert 'objective = "seqgan"' in config_to_toml(cli)
    with pytest.raises(ConfigError, match=r"objective = 'ebgn'.*did you mean 'ebgan'"):
        apply_overrides(c, ["--objective", "ebgn"])
    with pytest.raises(ConfigError, match=r"generator_estimator = 'exact'"):
        load_config(write(tmp_path, 'generator_estimator = "exact"\n'))
    # a dict without the new keys (an older checkpoint's config) takes the defaults
    old = config_to_dict(c)
    del old["objective"], old["generator_estimator"]
    assert config_from_dict(old) == c


def test_discriminator_schedule_keys(tmp_path: Path) -> None:
    text = 'd_schedule = "seqgan"\nd_pool = 200\nd_repeats = 2\nd_epochs = 1\n'
    loaded = load_config(write(tmp_path, text))
    assert (loaded.d_schedule, loaded.d_pool, loaded.d_repeats, loaded.d_epochs) == ("seqgan", 200, 2, 1)
    cli = apply_overrides(TrainConfig(), ["--d-schedule", "seqgan", "--d_pool", "200", "--d_repeats", "2"])
    assert (cli.d_schedule, cli.d_pool, cli.d_repeats) == ("seqgan", 200, 2)
    assert load_config(write(tmp_path, config_to_toml(loaded))) == loaded
    with pytest.raises(ConfigError, match=r"d_schedule = 'seqgn'.*did you mean 'seqgan'"):
        apply_overrides(TrainConfig(), ["--d_schedule", "seqgn"])
    old = config_to_dict(TrainConfig())  # an older checkpoint's config, before the schedule keys
    for key in ("d_schedule", "d_pool", "d_repeats", "d_epochs"):
        del old[key]
    assert config_from_dict(old) == TrainConfig()
