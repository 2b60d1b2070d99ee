"""Values read from config files (JSON, YAML, TOML, Hydra's composed config) and TF1/absl flag definitions:
each source gives its value, anything unsupported or unreadable stays unknown (None), and a config file is a
dependency of the file that reads it (editing it re-checks that file)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from gradlint import lint_paths
from gradlint.config import Settings
from gradlint.facts.project import Project

PROJECTS = Path(__file__).resolve().parents[2] / "fixtures" / "static" / "projects"


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)


def resolve(folder: Path, source: str, name: str = "value", files: dict | None = None, script: str = "train.py"):
    """The Value of the last module-level assignment of `name` in `script` (or of a function's), with the
    project that read it."""
    write(folder, {script: source, **(files or {})})
    project = Project()
    facts = project.facts_for(folder / script)
    scopes = [facts.index.scope] + list(facts.index.functions)
    binding = next(s.bindings[name][-1] for s in reversed(scopes) if name in s.bindings)
    return facts.values.binding_value(binding), project


def value_of(folder: Path, source: str, name: str = "value", files: dict | None = None, script: str = "train.py"):
    v, _ = resolve(folder, source, name, files, script)
    return None if v is None else v.value


CONFIG = '{"model": {"rnn": "LSTM", "lr": 0.5}, "clip": 0}'

# -- JSON --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        'import json\ncfg = json.load(open("config.json"))\nvalue = cfg["model"]["lr"]\n',
        'import json\nwith open("config.json") as f:\n    cfg = json.load(f)\nvalue = cfg["model"]["lr"]\n',
        'import json\nf = open("config.json", encoding="utf-8")\nvalue = json.load(f)["model"]["lr"]\n',
        'import json\nvalue = json.loads(open("config.json").read())["model"]["lr"]\n',
        'import json\nfrom pathlib import Path\nvalue = json.loads(Path("config.json").read_text())["model"]["lr"]\n',
        'import json\nimport pathlib\nwith pathlib.Path("config.json").open() as f:\n    value = json.load(f)["model"]["lr"]\n',
        'import json, os\nHERE = os.path.dirname(os.path.abspath(__file__))\n'
        'with open(os.path.join(HERE, "config.json")) as f:\n    value = json.load(f)["model"].get("lr")\n',
        'import json\nfrom pathlib import Path\nvalue = json.loads((Path(__file__).parent / "config.json").read_text())["model"]["lr"]\n',
        'import json\nwith open("config.json") as f:\n    cfg = json.load(f)\nvalue = cfg.get("model")["lr"]\n',
    ],
)
def test_json_config_values(tmp_path, source):
    assert value_of(tmp_path, source, files={"config.json": CONFIG}) == 0.5


def test_json_path_from_an_argparse_default_and_the_origin_names_the_file_and_keys(tmp_path):
    source = (
        "import argparse, json\nparser = argparse.ArgumentParser()\n"
        'parser.add_argument("--config", default="configs/lstm.json")\nargs = parser.parse_args()\n'
        "def main():\n    with open(args.config) as f:\n        cfg = json.load(f)\n    value = cfg['model']['lr']\n"
    )
    v, _ = resolve(tmp_path, source, files={"configs/lstm.json": CONFIG})
    assert v.value == 0.5
    assert v.origin == "configs/lstm.json['model']['lr']"


def test_a_helper_that_loads_the_config_gives_its_mapping_when_its_callers_agree_on_the_path(tmp_path):
    helper = "import json\n\ndef load_config(path):\n    with open(path) as f:\n        return json.load(f)\n\n"
    files = {"config.json": CONFIG, "other.json": '{"clip": 1}'}
    assert value_of(tmp_path, helper + 'value = load_config("config.json")["clip"]\n', files=files) == 0
    two = helper + 'value = load_config("config.json")["clip"]\nother = load_config("other.json")\n'
    assert value_of(tmp_path, two, files=files) is None


def test_a_relative_path_is_tried_at_the_project_root_after_the_files_folder(tmp_path):
    source = 'import json\nvalue = json.load(open("configs/run.json"))["clip"]\n'
    files = {"pyproject.toml": "", "configs/run.json": CONFIG}
    assert value_of(tmp_path, source, files=files, script="scripts/train.py") == 0
    # The copy beside the script wins: Python would find it when run from the script's folder.
    files["scripts/configs/run.json"] = '{"clip": 5}'
    assert value_of(tmp_path, source, files=files, script="scripts/train.py") == 5


@pytest.mark.parametrize(
    "files",
    [
        {},  # missing
        {"config.json": '{"model": {"lr": 0.5}'},  # not valid JSON
        {"config.json": '[{"model": {"lr": 0.5}}]'},  # top level not a mapping
        {"config.json": b'{"model": {"lr": 0.5}, "x": "\xff\xfe"}'},  # not UTF-8
        {"config.json": '{"model": {"lr": 0.5}, "pad": "' + "x" * 1_000_001 + '"}'},  # too large
        {"config.json": "[" * 100_000 + "]" * 100_000},  # nested past the parser's recursion limit
        {"config.json/x": "{}"},  # a folder
    ],
)
def test_an_unreadable_json_config_is_unknown(tmp_path, files):
    source = 'import json\nwith open("config.json") as f:\n    value = json.load(f)["model"]["lr"]\n'
    assert value_of(tmp_path, source, files=files) is None


@pytest.mark.parametrize(
    "source",
    [
        # A path only known at run time.
        'import json, sys\nvalue = json.load(open(sys.argv[1]))["model"]["lr"]\n',
        'import json, os\nvalue = json.load(open(os.environ["CONFIG"]))["model"]["lr"]\n',
        # A key the file does not have.
        'import json\nvalue = json.load(open("config.json"))["model"]["momentum"]\n',
        # Written to before it is read: the handle is not one `open()` of a known path.
        'import json\nvalue = json.load(opener("config.json"))["model"]["lr"]\n',
        # `json` here is not the standard module.
        'json = Loader()\nvalue = json.load(open("config.json"))["model"]["lr"]\n',
    ],
)
def test_a_config_read_the_resolver_cannot_follow_is_unknown(tmp_path, source):
    assert value_of(tmp_path, source, files={"config.json": CONFIG}) is None


def test_source_given_as_a_string_reads_no_file(tmp_path, monkeypatch):
    import libcst as cst

    from gradlint.facts import FileFacts

    write(tmp_path, {"config.json": CONFIG})
    monkeypatch.chdir(tmp_path)
    facts = FileFacts("<string>", cst.parse_module('import json\nvalue = json.load(open("config.json"))\n'))
    assert facts.values.binding_value(facts.index.scope.bindings["value"][-1]) is None


def test_configs_are_read_lazily_and_once_per_project(tmp_path):
    source = (
        'import json\nlr = 0.1\na = json.load(open("config.json"))["clip"]\nb = json.load(open("config.json"))["clip"]\n'
    )
    write(tmp_path, {"train.py": source, "config.json": CONFIG})
    project = Project()
    facts = project.facts_for(tmp_path / "train.py")
    facts.values.binding_value(facts.index.scope.bindings["lr"][0])
    assert project.configs == {}  # nothing asked about the config yet
    for name in ("a", "b"):
        assert facts.values.binding_value(facts.index.scope.bindings[name][0]).value == 0
    assert list(project.configs) == [(str((tmp_path / "config.json").resolve()), "json")]


# -- YAML and OmegaConf ------------------------------------------------------------------------------------

YAML = "model:\n  rnn: GRU\n  lr: 0.05\n  hidden: ${width}\nwidth: 64\nseed: ???\n"


@pytest.mark.parametrize(
    "source",
    [
        'import yaml\nvalue = yaml.safe_load(open("config.yaml"))["model"]["lr"]\n',
        'import yaml\nwith open("config.yaml") as f:\n    value = yaml.load(f, Loader=yaml.FullLoader)["model"]["lr"]\n',
        'import yaml\nwith open("config.yaml") as f:\n    value = yaml.full_load(f.read())["model"]["lr"]\n',
        'from omegaconf import OmegaConf\ncfg = OmegaConf.load("config.yaml")\nvalue = cfg.model.lr\n',
        'from omegaconf import OmegaConf\nvalue = OmegaConf.to_container(OmegaConf.load("config.yaml"))["model"]["lr"]\n',
    ],
)
def test_yaml_config_values(tmp_path, source):
    assert value_of(tmp_path, source, files={"config.yaml": YAML}) == 0.05


def test_omegaconf_interpolations_and_missing_values_are_unknown_plain_yaml_reads_them_as_written(tmp_path):
    files = {"config.yaml": YAML}
    omega = 'from omegaconf import OmegaConf\ncfg = OmegaConf.load("config.yaml")\n'
    assert value_of(tmp_path, omega + "value = cfg.model.hidden\n", files=files) is None
    assert value_of(tmp_path, omega + "value = cfg.seed\n", files=files) is None
    assert value_of(tmp_path, omega + "value = cfg.width\n", files=files) == 64
    listed = {"config.yaml": "width: 8\nlayers:\n  - {size: '${width}'}\n"}
    assert value_of(tmp_path / "b", omega + "value = cfg.layers\n", files=listed) is None
    plain = 'import yaml\ncfg = yaml.safe_load(open("config.yaml"))\n'
    assert value_of(tmp_path, plain + "value = cfg['model']['hidden']\n", files=files) == "${width}"


@pytest.mark.parametrize(
    "files",
    [
        {"config.yaml": "model: [unclosed\n"},
        {"config.yaml": "- a\n- b\n"},
        {"config.yaml": "model: !!python/object/apply:os.system ['echo hi']\n"},  # never run: safe loader
        {"config.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
         + "model: {lr: 0.05}\n"},  # billion laughs
    ],
)
def test_an_unreadable_yaml_config_is_unknown(tmp_path, files):
    source = 'import yaml\nvalue = yaml.safe_load(open("config.yaml"))["model"]["lr"]\n'
    assert value_of(tmp_path, source, files=files) is None


def test_yaml_is_read_only_where_the_code_imports_it(tmp_path):
    assert value_of(tmp_path, 'value = yaml.safe_load(open("config.yaml"))["model"]["lr"]\n', files={"config.yaml": YAML}) is None


def test_yaml_without_pyyaml_installed_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    source = 'import yaml\nvalue = yaml.safe_load(open("config.yaml"))["model"]["lr"]\n'
    assert value_of(tmp_path, source, files={"config.yaml": YAML}) is None


# -- TOML --------------------------------------------------------------------------------------------------

TOML = '[model]\nrnn = "LSTM"\nlr = 0.25\n'


@pytest.mark.parametrize(
    "source",
    [
        'import tomllib\nwith open("config.toml", "rb") as f:\n    value = tomllib.load(f)["model"]["lr"]\n',
        'import tomli\nvalue = tomli.load(open("config.toml", "rb"))["model"]["lr"]\n',
        'import tomllib\nfrom pathlib import Path\nvalue = tomllib.loads(Path("config.toml").read_text())["model"]["lr"]\n',
        'import toml\nvalue = toml.load("config.toml")["model"]["lr"]\n',
    ],
)
def test_toml_config_values(tmp_path, source):
    assert value_of(tmp_path, source, files={"config.toml": TOML}) == 0.25


def test_invalid_toml_is_unknown(tmp_path):
    source = 'import toml\nvalue = toml.load("config.toml")["model"]["lr"]\n'
    assert value_of(tmp_path, source, files={"config.toml": "[model\nlr = 0.25\n"}) is None


# -- Hydra -------------------------------------------------------------------------------------------------

HYDRA = (
    "import hydra\n\n@hydra.main(version_base=None, config_path='conf', config_name='config')\n"
    "def main(cfg):\n    value = {read}\n\nif __name__ == '__main__':\n    main()\n"
)
HYDRA_FILES = {
    "conf/config.yaml": "defaults:\n  - model: lstm\n  - _self_\noptim:\n  lr: 0.1\n",
    "conf/model/lstm.yaml": "cell: LSTM\nhidden: 128\n",
}


@pytest.mark.parametrize(
    "read, expected",
    [
        ("cfg.model.cell", "LSTM"),
        ("cfg.model.hidden", 128),
        ("cfg.optim.lr", 0.1),
        ("cfg['optim']['lr']", 0.1),
        ("cfg.get('defaults', 'composed away')", "composed away"),
    ],
)
def test_hydra_composes_the_primary_config_with_its_defaults(tmp_path, read, expected):
    assert value_of(tmp_path, HYDRA.format(read=read), files=HYDRA_FILES) == expected


def test_hydra_primary_config_is_merged_after_the_defaults_unless_self_comes_first(tmp_path):
    files = {**HYDRA_FILES, "conf/config.yaml": "defaults:\n  - model: lstm\n  - _self_\nmodel:\n  hidden: 64\n"}
    assert value_of(tmp_path, HYDRA.format(read="cfg.model.hidden"), files=files) == 64
    files["conf/config.yaml"] = "defaults:\n  - _self_\n  - model: lstm\nmodel:\n  hidden: 64\n"
    assert value_of(tmp_path / "b", HYDRA.format(read="cfg.model.hidden"), files=files) == 128
    # With no `_self_`, which side wins depends on Hydra's version: unknown.
    files["conf/config.yaml"] = "defaults:\n  - model: lstm\nmodel:\n  hidden: 64\n"
    assert value_of(tmp_path / "c", HYDRA.format(read="cfg.model.hidden"), files=files) is None


@pytest.mark.parametrize(
    "config, read",
    [
        ("defaults:\n  - model: missing\n  - _self_\noptim:\n  lr: 0.1\n", "cfg.model.cell"),  # no such option
        ("defaults:\n  - model@encoder: lstm\n  - _self_\n", "cfg.encoder.cell"),  # a package: fancier
        ("defaults:\n  - override model: lstm\n", "cfg.model.cell"),
        ("defaults:\n  - base\n  - _self_\noptim:\n  lr: 0.1\n", "cfg.optim.lr"),  # a key we cannot tell
        ("defaults:\n  - model: ${oc.env:MODEL}\n", "cfg.model.cell"),
    ],
)
def test_a_hydra_defaults_entry_this_cannot_follow_leaves_its_key_unknown(tmp_path, config, read):
    files = {**HYDRA_FILES, "conf/config.yaml": config}
    assert value_of(tmp_path, HYDRA.format(read=read), files=files) is None


def test_other_keys_stay_known_beside_an_unfollowed_entry(tmp_path):
    files = {**HYDRA_FILES, "conf/config.yaml": "defaults:\n  - model: missing\n  - _self_\noptim:\n  lr: 0.1\n"}
    assert value_of(tmp_path, HYDRA.format(read="cfg.optim.lr"), files=files) == 0.1


def test_a_hydra_value_names_its_file_and_keys(tmp_path):
    v, _ = resolve(tmp_path, HYDRA.format(read="cfg.model.get('hidden')"), files=HYDRA_FILES)
    assert (v.value, v.origin) == (128, "conf/config.yaml['model']['hidden']")


@pytest.mark.parametrize(
    "decorator",
    [
        "@hydra.main(version_base=None)",  # no config directory
        "@hydra.main(config_path=CONF, config_name='config')",  # not resolvable
        "@hydra.main(config_path='elsewhere', config_name='config')",  # no such file
    ],
)
def test_a_hydra_config_that_cannot_be_read_is_unknown(tmp_path, decorator):
    source = HYDRA.format(read="cfg.optim.lr").replace(
        "@hydra.main(version_base=None, config_path='conf', config_name='config')", decorator
    )
    assert value_of(tmp_path, source, files=HYDRA_FILES) is None


def test_a_group_option_that_moves_its_package_is_unknown(tmp_path):
    files = {**HYDRA_FILES, "conf/model/lstm.yaml": "# @package _global_\ncell: LSTM\n"}
    assert value_of(tmp_path, HYDRA.format(read="cfg.model.cell"), files=files) is None


# -- TF1 / absl flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        (
            "import tensorflow as tf\ntf.app.flags.DEFINE_float('learning_rate', 0.1, 'lr')\n"
            "FLAGS = tf.app.flags.FLAGS\nvalue = FLAGS.learning_rate\n",
            0.1,
        ),
        (
            "import tensorflow as tf\nflags = tf.app.flags\nFLAGS = flags.FLAGS\n"
            "flags.DEFINE_integer('batch_size', 128, 'b')\ndef main(_):\n    value = FLAGS.batch_size\n",
            128,
        ),
        (
            "import tensorflow.compat.v1 as tf\ntf.flags.DEFINE_float(name='learning_rate', default=2, help='lr')\n"
            "value = tf.flags.FLAGS.learning_rate\n",
            2.0,
        ),
        (
            "from absl import app, flags\nFLAGS = flags.FLAGS\n"
            "flags.DEFINE_string('cell', default='lstm', help='cell')\nvalue = FLAGS.cell.upper()\n",
            "LSTM",
        ),
        (
            "from absl import flags\nfrom absl.flags import FLAGS\nflags.DEFINE_boolean('clip', False, 'clip')\n"
            "value = FLAGS.clip\n",
            False,
        ),
        (
            "import absl.flags\nabsl.flags.DEFINE_enum('rnn', 'gru', ['gru', 'lstm'], 'rnn')\n"
            "value = absl.flags.FLAGS.rnn\n",
            "gru",
        ),
        (
            "from absl import flags\nflags.DEFINE_float('lr', '0.5', 'a string default, parsed as absl does')\n"
            "value = flags.FLAGS.lr\n",
            0.5,
        ),
    ],
)
def test_flag_defaults(tmp_path, source, expected):
    assert value_of(tmp_path, source) == expected


def test_a_flag_default_names_its_flag(tmp_path):
    source = "from absl import flags\nflags.DEFINE_float('learning_rate', 20.0, 'lr')\nvalue = flags.FLAGS.learning_rate\n"
    v, _ = resolve(tmp_path, source)
    assert (v.value, v.origin) == (20.0, "--learning_rate default")


@pytest.mark.parametrize(
    "source",
    [
        # Not defined in this file.
        "from absl import flags\nvalue = flags.FLAGS.learning_rate\n",
        # Defined twice with different defaults.
        "from absl import flags\nflags.DEFINE_float('lr', 0.1, '')\nflags.DEFINE_float('lr', 0.2, '')\nvalue = flags.FLAGS.lr\n",
        # A default the file cannot tell.
        "import os\nfrom absl import flags\nflags.DEFINE_float('lr', os.environ['LR'], '')\nvalue = flags.FLAGS.lr\n",
        # The user must pass it: its default never runs.
        "from absl import flags\nflags.DEFINE_float('lr', 0.1, '')\nflags.mark_flag_as_required('lr')\nvalue = flags.FLAGS.lr\n",
        "from absl import flags\nflags.DEFINE_float('lr', 0.1, '')\nflags.mark_flags_as_required(['x', 'lr'])\n"
        "value = flags.FLAGS.lr\n",
        # A `flags` module of the project, not absl's or TensorFlow's.
        "import myflags as flags\nflags.DEFINE_float('lr', 0.1, '')\nvalue = flags.FLAGS.lr\n",
        # `flags` assigned twice: which module it is cannot be told.
        "import tensorflow as tf\nimport myflags\nflags = tf.app.flags\nflags = myflags\n"
        "flags.DEFINE_float('lr', 0.1, '')\nvalue = flags.FLAGS.lr\n",
    ],
)
def test_unknown_flags_stay_unknown(tmp_path, source):
    assert value_of(tmp_path, source) is None


# -- dependencies and the cache ----------------------------------------------------------------------------


def test_the_config_file_is_recorded_as_a_dependency_found_or_not(tmp_path):
    source = 'import json\nvalue = json.load(open("config.json"))["clip"]\n'
    _, project = resolve(tmp_path, source, files={"pyproject.toml": "", "config.json": CONFIG}, script="src/train.py")
    assert str((tmp_path / "src" / "config.json").resolve()) in project.depends(tmp_path / "src" / "train.py")
    assert str((tmp_path / "config.json").resolve()) in project.depends(tmp_path / "src" / "train.py")
    hydra, project = resolve(tmp_path / "h", HYDRA.format(read="cfg.model.cell"), files=HYDRA_FILES)
    used = project.depends(tmp_path / "h" / "train.py")
    assert {str((tmp_path / "h" / p).resolve()) for p in HYDRA_FILES} <= used


def test_editing_the_config_rechecks_the_file_that_reads_it(tmp_path):
    root = tmp_path / "p"
    shutil.copytree(PROJECTS / "json_config" / "flagged", root)
    settings = Settings(root=root)

    def found() -> list[tuple[str, str]]:
        return [(Path(f.path).name, f.code) for f in lint_paths([root / "train.py"], settings, use_cache=True).findings]

    assert found() == [("train.py", "GL101")]
    shutil.copy(PROJECTS / "json_config" / "clean" / "config.json", root / "config.json")
    assert found() == []  # the cached GL101 is not reused: config.json changed
    (root / "config.json").unlink()
    assert found() == []  # no config: its values are unknown, so the rules stay silent
    shutil.copy(PROJECTS / "json_config" / "flagged" / "config.json", root / "config.json")
    assert found() == [("train.py", "GL101")]  # created again: it was looked for, so it counts
