"""The config's schema (experiments/config/schema.py): every group option is typed, every key is checked (``+key``
included), errors are one line naming the key and the valid keys nearby, and the schema changed no config hash."""
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.config import check_config, config_error_line, schema
from experiments.errors import StarbenchError
from experiments.records import config_hash
from starnet.kernels.accelerate import SWITCHES
from tests.conftest import CONF, ROOT, compose_cfg

OPTIONS = {group: sorted(p.stem for p in (CONF / group).glob("*.yaml"))
           for group in ("model", "data", "trainer", "logger", "task", "paths")}
PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# Hashes of what a job computes: the schema (typed fields in place of plain YAML) changed none of them. They were
# re-pinned once, when the CPU fast-path switches joined NON_RESULT_KEYS; runs recorded before that still match through
# their saved config (entry.same_computation). A change here means relaunched sweeps refuse their runs.
PINNED_HASHES = {
    (): "841b33b3c86c",
    ("model=starnet",): "3a4b347a0e4a",
    ("data=cifar10",): "8d3ecc602e24",
    ("data=synthetic",): "85e48b5693ec",  # was 22a197371c95: synthetic data took data.val_from with the schema
    ("trainer=paper_demonet",): "efde57b60efc",
    ("trainer=paper_starnet", "model=starnet"): "0f02be8048f0",
    ("task=moons",): "cc71bb3f2671",
    ("task=detect",): "735afb2bf502",
    ("task=detect", "data=yolo", "data.yaml=/x.yaml"): "db10a8f24970",
    ("data=imagenet", "data.root=/x"): "05c24ecd4663",
    ("experiment=budget_curve", "trainer.epochs=1", "width=8", "op=star", "seed=0"): "400d9be0ee28",
    # Re-pinned at protocol part 3 (epochs 8 -> 16): no fig1_width run had been recorded under the old budget.
    ("experiment=fig1_width", "width=8", "op=star", "seed=0"): "e882e0417f37",
    ("experiment=moons", "op=star", "seed=0"): "1e1f70591477",
    ("experiment=starnet_op_paper", "op=star", "seed=0", "data.root=/x"): "495e8072eb08",
}


def compose_error(*overrides):
    with pytest.raises(Exception) as info:
        compose_cfg(*overrides)
    return config_error_line(info.value)


@pytest.mark.parametrize("group", OPTIONS)
def test_every_group_option_has_its_typed_schema(group):
    for option in OPTIONS[group]:
        if group == "trainer":  # paper_* start from default.yaml, and so from its schema
            cfg = compose_cfg(f"trainer={option}")
        else:
            extra = {"data": {"imagenet": ["data.root=/x"], "yolo": ["data.yaml=/x.yaml"]},
                     }.get(group, {}).get(option, [])
            cfg = compose_cfg(f"{group}={option}", *extra)
        node = cfg[group]
        kind = node._metadata.object_type
        assert kind in schema.SCHEMAS[group].values(), (group, option, kind)
        # exactly the YAML's keys: a field the YAML lacks would enter every config hash
        assert set(node.keys()) == {f for f in kind.__dataclass_fields__}, (group, option)
        check_config(cfg)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_under_the_schema(preset):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}"], return_hydra_config=True)
    check_config(cfg)
    assert cfg._metadata.object_type is schema.StarbenchConfig


def test_the_kernel_switches_are_kernel_options_fields_in_schema_and_default_yaml():
    """Each CPU kernel switch is declared once, as a field of KernelOptions: the trainer's schema takes its keys from
    there (after fast_paths, in KernelOptions' order, on by default), and conf/trainer/default.yaml, which documents
    them, must list each, true; a switch added in one place only fails here."""
    fields = list(schema.TrainerConfig.__dataclass_fields__)
    at = fields.index("fast_paths") + 1
    assert tuple(fields[at:at + len(SWITCHES)]) == SWITCHES
    assert all(schema.TrainerConfig.__dataclass_fields__[name].default is True for name in SWITCHES)
    yaml = OmegaConf.load(CONF / "trainer" / "default.yaml")
    listed = [key for key in yaml if key in SWITCHES or key in ("fast_paths", "reuse_freed_memory")]
    assert listed == ["fast_paths", *SWITCHES, "reuse_freed_memory"]
    assert all(yaml[name] is True for name in SWITCHES)


@pytest.mark.parametrize("overrides,hash_", PINNED_HASHES.items())
def test_the_schema_changes_no_config_hash(overrides, hash_):
    assert config_hash(compose_cfg(*overrides)) == hash_


@pytest.mark.parametrize("override,message", [
    ("+trainer.epoch=3", "unknown config key trainer.epoch (did you mean trainer.epochs?); valid keys in trainer: "),
    ("+model.actt=none", "unknown config key model.actt (did you mean model.act?); valid keys in model: act, "),
    ("+widht=8", "unknown config key widht (did you mean width?); valid keys at the top level: data, depth, "),
    ("+data.train_sise=8", "unknown config key data.train_sise (did you mean data.train_size?)"),
])
def test_a_key_added_with_plus_is_refused(override, message):
    cfg = compose_cfg(override)  # Hydra lets +key into a typed node: check_config is what refuses it
    with pytest.raises(StarbenchError) as info:
        check_config(cfg)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override,message", [
    ("trainer.epoch=3", "unknown config key trainer.epoch (did you mean trainer.epochs?); valid keys in trainer: "),
    ("trainer.epochs=abc", "bad value for trainer.epochs: Value 'abc' of type 'str' could not be converted to Integer"),
    ("seed=abc", "bad value for seed: Value 'abc' of type 'str' could not be converted to Integer"),
    ("model.act=[1,2]", "bad value for model.act: "),
    ("model=foo", "unknown model 'foo'; valid: demonet, starnet"),
])
def test_hydras_own_refusals_are_one_line(override, message):
    line = compose_error(override)
    assert line and line.startswith(message) and "\n" not in line, line


def test_a_preset_with_a_misspelled_nested_key_is_refused(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\ntrainer:\n  epoch: 1\n")
    line = compose_error("experiment=mine", f"hydra.searchpath=[file://{tmp_path}]")
    assert line.startswith("unknown config key trainer.epoch (did you mean trainer.epochs?)"), line


def test_debug_fast_shortens_each_tasks_own_recipe():
    assert "epochs" not in compose_cfg("debug=fast").task  # classify trains trainer.epochs
    assert compose_cfg("debug=fast", "task=moons").task.epochs == 1
    assert compose_cfg("experiment=moons", "debug=fast").task.epochs == 1
    assert compose_cfg("debug=fast", "task=detect").task.epochs == 1
    assert compose_cfg("task=moons").task.epochs == 30


@pytest.mark.parametrize("args,message", [
    (["+trainer.epoch=3"], "unknown config key trainer.epoch (did you mean trainer.epochs?)"),
    (["trainer.epoch=3"], "unknown config key trainer.epoch (did you mean trainer.epochs?)"),
    (["-m", "op=star,sum", "+model.actt=none"], "unknown config key model.actt (did you mean model.act?)"),
    # Hydra's own parser: an override without '=', a value its grammar does not take bare
    (["op"], "cannot parse the override 'op': an override is key=value (op=star, trainer.epochs=2; in a multirun"),
    (["-m", "op"], "cannot parse the override 'op': an override is key=value"),
    (["data.root=/data/dätä"], "cannot parse the override 'data.root=/data/dätä' (it stops at 'ä', character 18); "
     "a value with spaces, non-ASCII letters, quotes or brackets goes in quotes, and the whole override in single "
     "quotes for the shell: 'data.root=\"/data/dätä\"'"),
    (["op=[star"], "cannot parse the override 'op=[star' (no viable alternative at input '[star'); a value with"),
])
def test_run_py_refuses_before_any_run_dir(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "run.py", *args, "data=synthetic", "logger=none",
                           f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"starbench: error: {message}"), proc.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no run dir, no sweep dir: nothing trained, nothing written
