"""scripts/protocol_pilot.py end to end on a hand-made pilot dir, and its one-line error for a dir without one."""
import json

import yaml

from tests.experiments.analysis.test_pilot import runs_of
from tests.scripts.test_scripts import run_script


def test_cli_on_a_pilot_dir(tmp_path):
    data = {"name": "synthetic", "image_size": 8, "in_chans": 1, "num_classes": 4, "train_size": 64,
            "val_size": 32, "noise": 0.5, "mean": [0.0], "std": [1.0], "augment": False}
    means = {(8, 1): 80.0, (8, 2): 99.0}
    for (w, e, op, s), top1 in runs_of(means, [0.5, 0.1, 0.3]).items():
        job = tmp_path / f"w{w}_e{e}_{op}_{s}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"data": data}))
        (job / "metrics.json").write_text(json.dumps({"status": "completed", "width": w, "epochs": e, "op": op,
                                                      "seed": s, "top1": top1}))
    out = run_script("protocol_pilot.py", tmp_path, "--json", tmp_path / "p.json").stdout
    assert "Chosen budget" in out
    assert json.loads((tmp_path / "p.json").read_text())["widths"] == [8]


def test_cli_says_in_one_line_what_is_missing(tmp_path):
    proc = run_script("protocol_pilot.py", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith("nowhere does not exist")
