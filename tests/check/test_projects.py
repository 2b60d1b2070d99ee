"""Whole-project analysis: a training path that goes on into other files of the project (the loop in
trainer.py, a model that trains itself in its own method, models from `from model import *` or a module
import), linted as a whole tree, as the entry point alone (pre-commit) and as the helper alone."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gradlint import lint_paths
from gradlint.config import Settings
from gradlint.facts.file import FileFacts
from gradlint.facts.project import Project
from gradlint.jobs import lint_file
from gradlint.parse import parse_module

PROJECTS = Path(__file__).resolve().parents[2] / "fixtures" / "static" / "projects"
SHAPES = sorted(p.name for p in PROJECTS.iterdir() if p.is_dir())
# What each flagged entry point gives (GL101 unless said).
FLAGGED = {"gan_two_optimizers": ["GL101", "GL101"], "tf_flags": ["GL405"], "tf1_graph_class": ["GL201"]}


def codes(paths: list[Path], root: Path) -> list[tuple[str, int, str]]:
    found = lint_paths(paths, Settings(root=root)).findings
    return sorted((Path(f.path).name, f.line, f.code) for f in found)


def test_every_shape_has_a_flagged_and_a_clean_project():
    assert SHAPES
    for shape in SHAPES:
        assert (PROJECTS / shape / "flagged" / "train.py").is_file()
        assert (PROJECTS / shape / "clean" / "train.py").is_file()


@pytest.mark.parametrize("shape", SHAPES)
def test_clean_project_is_silent_whole_or_entry_alone(shape):
    root = PROJECTS / shape / "clean"
    assert codes([root], root) == []
    assert codes([root / "train.py"], root) == []


@pytest.mark.parametrize("shape", SHAPES)
def test_flagged_entry_point_is_reported_alone_as_in_the_tree(shape):
    root = PROJECTS / shape / "flagged"
    alone = codes([root / "train.py"], root)
    assert [c for _, _, c in alone] == FLAGGED.get(shape, ["GL101"])
    assert [c for c in codes([root], root) if c[0] == "train.py"] == alone


def test_the_update_in_another_file_is_reported_at_the_call_that_runs_it():
    root = PROJECTS / "loop_in_trainer" / "flagged"
    [finding] = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert (finding.line, finding.column) == (10, 5)  # train_epoch(model, optimizer, loader)
    assert "(built at model.py:8) in class Net" in finding.message
    assert "(at trainer.py:9, run by this call)" in finding.message
    assert finding.fix is None  # the fix would edit trainer.py


def test_the_helper_alone_cannot_know_its_model_and_stays_silent():
    root = PROJECTS / "loop_in_trainer" / "flagged"
    assert codes([root / "trainer.py"], root) == []


def test_a_module_that_trains_itself_is_reported_in_its_file_and_where_it_is_run():
    root = PROJECTS / "model_trains_itself" / "flagged"
    assert codes([root], root) == [("tagger.py", 21, "GL101"), ("train.py", 12, "GL101")]


def test_editing_the_helper_rechecks_the_entry_point(tmp_path):
    shutil.copytree(PROJECTS / "loop_in_trainer" / "flagged", tmp_path / "p")
    root = tmp_path / "p"
    settings = Settings(root=root)
    assert [f.code for f in lint_paths([root / "train.py"], settings, use_cache=True).findings] == ["GL101"]
    shutil.copy(PROJECTS / "loop_in_trainer" / "clean" / "trainer.py", root / "trainer.py")
    # utils.py does not exist yet: it was looked for, so creating it must count too.
    assert [f.code for f in lint_paths([root / "train.py"], settings, use_cache=True).findings] == ["GL101"]
    shutil.copy(PROJECTS / "loop_in_trainer" / "clean" / "utils.py", root / "utils.py")
    assert lint_paths([root / "train.py"], settings, use_cache=True).findings == []



def test_arguments_parsed_in_another_module_reach_the_trainer_and_are_placed_in_their_files(tmp_path):
    """`args, _ = config.get_args()` in train.py, the parser in config.py, the clip read in trainer.py."""
    root = tmp_path / "p"
    shutil.copytree(PROJECTS / "args_in_config_module" / "flagged", root)
    [finding] = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert finding.code == "GL101"
    assert finding.message.startswith("LSTM (built at trainer.py:8) is trained")
    assert "clipping at trainer.py:18 run by default" in finding.help
    config = (root / "config.py").read_text().replace("default=0.1)", "default=20.0)")
    (root / "config.py").write_text(config)
    found = {f.code: f for f in lint_paths([root / "train.py"], Settings(root=root)).findings}
    assert "from --lr default at config.py:7" in found["GL405"].message


def test_each_optimizer_of_a_gan_is_its_own_finding_and_one_optimizer_stepped_twice_is_one():
    root = PROJECTS / "gan_two_optimizers" / "flagged"
    # gen_optimizer steps at lines 13 and 21 (pretraining, then adversarial): one finding, at the first;
    # dis_optimizer at line 30: its own, naming the discriminator's GRU.
    found = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert [(f.line, f.code) for f in found] == [(13, "GL101"), (30, "GL101")]
    assert "class Generator" in found[0].message and "class Discriminator" in found[1].message
    assert all(f.fix is not None for f in found)


def test_each_optimizer_without_weight_decay_is_its_own_gl201(tmp_path):
    root = tmp_path / "p"
    shutil.copytree(PROJECTS / "gan_two_optimizers" / "clean", root)
    train = root / "train.py"
    train.write_text(train.read_text().replace(", weight_decay=1e-5", ""))
    assert codes([train], root) == [("train.py", 41, "GL201"), ("train.py", 43, "GL201")]
    # The discriminator as a small MLP is not at risk: only the generator's optimizer is reported.
    dis = root / "discriminator.py"
    dis.write_text(dis.read_text().replace(
        "nn.GRU(hidden, hidden, num_layers=2, bidirectional=True, batch_first=True)", "nn.Linear(hidden, 2 * hidden)"
    ).replace("self.gru(self.embed(x))[0][:, -1]", "self.gru(self.embed(x))[:, -1]"))
    assert codes([train], root) == [("train.py", 41, "GL201")]


def test_a_step_closure_returned_by_a_method_of_another_file_is_on_the_path(tmp_path):
    root = PROJECTS / "step_closure" / "flagged"
    [finding] = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert (finding.line, finding.code) == (13, "GL101")  # train_step(...), the closure vae.trainer returned
    assert "(at vae.py:25, run by this call)" in finding.message
    # The optimizer's parameters come from a method returning the model's own: the model is still known.
    shutil.copytree(root, tmp_path / "p")
    train = tmp_path / "p" / "train.py"
    train.write_text(train.read_text().replace(", weight_decay=1e-4", ""))
    assert codes([train], tmp_path / "p") == [("train.py", 10, "GL201"), ("train.py", 13, "GL101")]


REGISTRY_MODELS = '''import tensorflow as tf


class CharModel(object):
    def __init__(self, hidden=128):
        self.hidden = hidden

    def build(self, vocab_size, learning_rate):
        self.inputs = tf.placeholder(tf.int32, [None, None])
        self.targets = tf.placeholder(tf.int32, [None, None])
        embedding = tf.get_variable("embedding", [vocab_size, self.hidden])
        cell = tf.nn.rnn_cell.BasicLSTMCell(self.hidden)
        outputs, _ = tf.nn.dynamic_rnn(cell, tf.nn.embedding_lookup(embedding, self.inputs), dtype=tf.float32)
        logits = tf.layers.dense(outputs, vocab_size)
        cost = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.targets, logits=logits))
        tvars = tf.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(cost, tvars), 5.0)
        self.train_op = tf.train.AdamOptimizer(learning_rate).apply_gradients(zip(grads, tvars))


class BagModel(object):
    def __init__(self, hidden=128):
        self.hidden = hidden

    def build(self, vocab_size, learning_rate):
        self.inputs = tf.placeholder(tf.float32, [None, vocab_size])
        self.targets = tf.placeholder(tf.int32, [None])
        logits = tf.layers.dense(tf.layers.dense(self.inputs, self.hidden), vocab_size)
        cost = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.targets, logits=logits))
        self.train_op = tf.train.AdamOptimizer(learning_rate).minimize(cost)
'''

REGISTRY_TRAIN = '''import tensorflow as tf

from models import BagModel, CharModel

flags = tf.app.flags
FLAGS = flags.FLAGS
flags.DEFINE_string("model", "CharModel", "which model to build")
MODELS = {"CharModel": CharModel, "BagModel": BagModel}


def main(_):
    model = MODELS[FLAGS.model](hidden=256)
    model.build(65, 0.002)
    with tf.Session() as sess:
        for step in range(100):
            sess.run(model.train_op)


if __name__ == "__main__":
    tf.app.run()
'''


def test_a_tf1_class_picked_from_a_registry_builds_its_graph_in_the_method_the_entry_point_calls(tmp_path):
    (tmp_path / "models.py").write_text(REGISTRY_MODELS)
    train = tmp_path / "train.py"
    train.write_text(REGISTRY_TRAIN)
    # The flag's default picks the recurrent CharModel: its build() adds an Adam step with no weight penalty.
    assert codes([train], tmp_path) == [("train.py", 13, "GL201")]
    train.write_text(REGISTRY_TRAIN.replace('"model", "CharModel"', '"model", "BagModel"'))
    assert codes([train], tmp_path) == []


WRAPPER = '''import torch


class ClippedOptimizer(object):
    """Wraps a torch optimizer: clips the gradients, then steps it."""

    def __init__(self, optim, max_grad_norm=5.0):
        self.optimizer = optim
        self.max_grad_norm = max_grad_norm

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        self.optimizer.step()
'''

WRAPPED_TRAIN = '''import torch
import torch.nn.functional as F

from model import Net
from optim import ClippedOptimizer

model = Net()
optimizer = ClippedOptimizer(torch.optim.Adam(model.parameters(), lr=1e-3))
for x, y in loader:
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    optimizer.step()
'''


def test_the_step_of_an_optimizer_wrapper_of_the_project_is_the_torch_step_inside_it(tmp_path):
    shutil.copy(PROJECTS / "trainer_class" / "flagged" / "model.py", tmp_path / "model.py")
    (tmp_path / "optim.py").write_text(WRAPPER)
    train = tmp_path / "train.py"
    train.write_text(WRAPPED_TRAIN)
    # The wrapper clips (no GL101); the Adam it steps has no weight decay: read through the wrapper.
    assert codes([train], tmp_path) == [("train.py", 8, "GL201")]
    train.write_text(WRAPPED_TRAIN.replace("lr=1e-3)", "lr=1e-3, weight_decay=1e-4)"))
    assert codes([train], tmp_path) == []


RESUMING_TRAINER = '''import torch
import torch.nn.functional as F


def fit(model, loader, resume=False):
    if resume:
        checkpoint = torch.load("last.pt")
        model = checkpoint["model"]
        optimizer = checkpoint["optimizer"]
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
'''


def test_the_model_an_optimizer_takes_is_not_one_assigned_on_the_other_side_of_an_if(tmp_path):
    shutil.copy(PROJECTS / "trainer_class" / "flagged" / "model.py", tmp_path / "model.py")
    (tmp_path / "trainer.py").write_text(RESUMING_TRAINER)
    train = tmp_path / "train.py"
    train.write_text("from model import Net\nfrom trainer import fit\n\nfit(Net(), loader)\n")
    # `model.parameters()` on the else side reads the parameter, not `checkpoint["model"]`.
    assert codes([train], tmp_path) == [("train.py", 4, "GL101")]


PICKED_MODEL = '''import torch.nn as nn


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, hidden):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, hidden)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(hidden, hidden)
        else:
            self.rnn = nn.RNN(hidden, hidden, nonlinearity="tanh")
        self.decoder = nn.Linear(hidden, ntoken)

    def forward(self, x):
        return self.decoder(self.rnn(self.encoder(x))[0])
'''

PICKING_TRAIN = '''import argparse

import torch
import torch.nn.functional as F

from model import RNNModel

parser = argparse.ArgumentParser()
parser.add_argument("--model", type=str, default="LSTM")
args = parser.parse_args()
model = RNNModel(args.model, 100, 64)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-5)
for x, y in loader:
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    optimizer.step()
'''


def test_a_layer_on_a_branch_the_entry_points_arguments_rule_out_is_not_built(tmp_path):
    (tmp_path / "model.py").write_text(PICKED_MODEL)
    train = tmp_path / "train.py"
    train.write_text(PICKING_TRAIN)
    # --model defaults to LSTM: the plain nn.RNN of the else side is never built (no GL302).
    assert codes([train], tmp_path) == []
    train.write_text(PICKING_TRAIN.replace('default="LSTM"', 'default="RNN_TANH"'))
    assert codes([train], tmp_path) == [("train.py", 18, "GL302")]


def test_a_model_unpacked_from_what_a_builder_of_another_file_returns(tmp_path):
    shutil.copy(PROJECTS / "trainer_class" / "flagged" / "model.py", tmp_path / "model.py")
    (tmp_path / "builders.py").write_text(
        "import torch.nn as nn\n\nfrom model import Net\n\n\n"
        "def build(vocab):\n    return Net(vocab), nn.CrossEntropyLoss()\n"
    )
    train = tmp_path / "train.py"
    train.write_text(
        "import torch\n\nfrom builders import build\n\n"
        "model, criterion = build(100)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)\n"
        "for x, y in loader:\n"
        "    optimizer.zero_grad()\n"
        "    criterion(model(x).flatten(0, 1), y.flatten()).backward()\n"
        "    optimizer.step()\n"
    )
    assert codes([train], tmp_path) == [("train.py", 10, "GL101")]


def test_code_in_a_class_or_builder_of_another_file_is_reported_where_the_entry_point_runs_it():
    root = PROJECTS / "trainer_class" / "flagged"
    [finding] = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert (finding.line, finding.code) == (10, "GL101")  # trainer.train()
    assert "(at trainer.py:21, run by this call)" in finding.message
    root = PROJECTS / "tf1_graph_class" / "flagged"
    [finding] = lint_paths([root / "train.py"], Settings(root=root)).findings
    assert (finding.line, finding.code) == (8, "GL201")  # CharModel(...): its __init__ builds the training op
    # The helpers alone: the trainer and the builder cannot know their model; the TF1 class trains what it
    # builds itself, so it is reported in its own file too.
    assert codes([PROJECTS / "trainer_class" / "flagged" / "trainer.py"], PROJECTS / "trainer_class" / "flagged") == []
    builders = PROJECTS / "builder_in_helper" / "flagged"
    assert codes([builders / "lib" / "builders.py"], builders) == []
    assert codes([root / "models" / "char_model.py"], root) == [("char_model.py", 20, "GL201")]


OWN_OPTIMIZER_TRAINER = '''import torch
import torch.nn.functional as F


class Trainer:
    def __init__(self, model, loader, lr=1e-3):
        self.model = model
        self.loader = loader
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def train(self, epochs):
        for epoch in range(epochs):
            for x, y in self.loader:
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
'''


def test_an_optimizer_a_trainer_class_builds_is_reported_at_the_call_that_builds_the_trainer(tmp_path):
    shutil.copy(PROJECTS / "trainer_class" / "flagged" / "model.py", tmp_path / "model.py")
    (tmp_path / "trainer.py").write_text(OWN_OPTIMIZER_TRAINER)
    train = tmp_path / "train.py"
    train.write_text("from model import Net\nfrom trainer import Trainer\n\ntrainer = Trainer(Net(), loader)\ntrainer.train(10)\n")
    [finding] = lint_paths([train], Settings(root=tmp_path)).findings
    assert (finding.line, finding.code) == (4, "GL201")  # Trainer(...) runs the __init__ that builds Adam
    assert "(at trainer.py:9, run by this call)" in finding.message


def test_a_helper_called_with_two_models_trains_the_one_each_call_passes(tmp_path):
    shutil.copy(PROJECTS / "trainer_class" / "flagged" / "model.py", tmp_path / "model.py")
    (tmp_path / "trainer.py").write_text(
        "import torch\n\n\n"
        "def train_epoch(model, loader, optimizer):\n"
        "    for x, y in loader:\n"
        "        optimizer.zero_grad()\n"
        "        model(x).sum().backward()\n"
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "        optimizer.step()\n"
    )
    train = tmp_path / "train.py"
    train.write_text(
        "import torch\nimport torch.nn as nn\n\nfrom model import Net\nfrom trainer import train_epoch\n\n"
        "generator = Net()\n"
        "critic = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))\n"
        "gen_opt = torch.optim.Adam(generator.parameters(), lr=1e-3, weight_decay=1e-4)\n"
        "critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3)\n"
        "train_epoch(generator, loader, gen_opt)\n"
        "train_epoch(critic, loader, critic_opt)\n"
    )
    # critic_opt has no weight decay, but the model it trains (the critic's call) is a small MLP: silent.
    assert codes([train], tmp_path) == []
    train.write_text(train.read_text().replace(", weight_decay=1e-4", ""))
    assert codes([train], tmp_path) == [("train.py", 9, "GL201")]


def test_a_layer_class_a_base_class_of_another_file_picks_is_recurrent_whichever_it_is(tmp_path):
    (tmp_path / "base.py").write_text(
        "import torch.nn as nn\n\n\n"
        "class BaseRNN(nn.Module):\n"
        "    def __init__(self, hidden, rnn_cell):\n"
        "        super().__init__()\n"
        "        if rnn_cell.lower() == 'lstm':\n"
        "            self.rnn_cell = nn.LSTM\n"
        "        elif rnn_cell.lower() == 'gru':\n"
        "            self.rnn_cell = nn.GRU\n"
        "        else:\n"
        "            raise ValueError(rnn_cell)\n"
    )
    (tmp_path / "encoder.py").write_text(
        "import torch.nn as nn\n\nfrom base import BaseRNN\n\n\n"
        "class Encoder(BaseRNN):\n"
        "    def __init__(self, vocab, hidden, rnn_cell='gru'):\n"
        "        super().__init__(hidden, rnn_cell)\n"
        "        self.embedding = nn.Embedding(vocab, hidden)\n"
        "        self.rnn = self.rnn_cell(hidden, hidden, batch_first=True)\n\n"
        "    def forward(self, x):\n"
        "        return self.rnn(self.embedding(x))[0]\n"
    )
    train = tmp_path / "train.py"
    train.write_text(
        "import torch\n\nfrom encoder import Encoder\n\n"
        "model = Encoder(100, 64)\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)\n"
        "for x in loader:\n"
        "    optimizer.zero_grad()\n"
        "    model(x).sum().backward()\n"
        "    optimizer.step()\n"
    )
    assert codes([train], tmp_path) == [("train.py", 10, "GL101")]


def test_a_file_that_only_builds_a_model_reads_no_file_its_calls_lead_to(tmp_path):
    # It calls into its project (`describe(net)`) but hands no training on (as the gate reads it: nothing
    # named for training, no optimizer built): following each call would parse helpers.py for nothing.
    # Its own stack is still counted and reported.
    (tmp_path / "helpers.py").write_text("def describe(net):\n    return sum(p.numel() for p in net.parameters())\n")
    (tmp_path / "model.py").write_text(
        "import torch\nfrom torch import nn\nfrom helpers import describe\n"
        "net = nn.Sequential(*[nn.Linear(8, 8) for _ in range(12)])\nprint(describe(net))\n"
    )
    project = Project()
    found, *_ = lint_file(str(tmp_path / "model.py"), "model.py", Settings(root=tmp_path), project)
    assert [f.code for f in found] == ["GL301"]
    assert [Path(p).name for p in project.parsed()] == ["model.py"]


def test_the_calls_of_a_files_own_function_are_found_without_reading_its_imports(tmp_path):
    (tmp_path / "helpers.py").write_text("def util(x):\n    return x\n")
    (tmp_path / "train.py").write_text(
        "from helpers import util\ndef make(lr=0.1):\n    return util(lr)\nclass Box:\n    def __init__(self, n):\n"
        "        self.n = n\nmake(lr=5.0)\nBox(3)\n"
    )
    project = Project()
    text = (tmp_path / "train.py").read_text()
    facts = FileFacts(str(tmp_path / "train.py"), parse_module(text), project, text)
    project.remember(tmp_path / "train.py", facts)
    make = facts.function("make")
    init = facts.index.classes["Box"].methods["__init__"]
    assert [facts.code(s.node) for s in facts.calls_of(make)] == ["make(lr=5.0)"]
    assert [facts.code(s.node) for s in facts.calls_of(init)] == ["Box(3)"]
    assert [Path(p).name for p in project.parsed()] == ["train.py"]
    # A function of another file: its calls here are found by reading that file.
    helpers = project.facts_for(tmp_path / "helpers.py")
    assert [facts.code(s.node) for s in facts.calls_of(helpers.function("util"))] == ["util(lr)"]


def test_a_batch_leaves_no_syntax_tree_for_the_cycle_collector(tmp_path):
    # The collector's pass at the end of a batch walked every node of every tree the facts held in cycles
    # (a tenth of a run); released facts free them by reference counting, file by file.
    import gc

    import libcst as cst

    from gradlint.jobs import work

    files = sorted(PROJECTS.rglob("*.py")) + sorted(PROJECTS.parent.glob("GL*/*.py"))[:40]
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        work(Settings(), False, [(str(p), str(p)) for p in files], frozenset(), lambda message: None)
        gc.collect()
        trees = [o for o in gc.garbage if isinstance(o, cst.CSTNode)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert trees == []
