"""Layer classes as values: the facts layer names the class a call builds the way a reader would."""
from __future__ import annotations

import libcst as cst
import pytest

from gradlint.facts import FileFacts


def built(source: str) -> list[str]:
    """The qualified names of the layers the file's classes, functions and module body build."""
    facts = FileFacts("t.py", cst.parse_module(source))
    names = [layer.qualname for info in facts.index.classes.values() for layer in facts.models.class_layers(info)]
    for scope in [facts.index.scope] + [f for f in facts.index.functions if f.cls is None]:
        names += [layer.qualname for layer in facts.models.scope_layers(scope)]
    return names


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from keras import layers\nRNN = layers.LSTM\nRNN(128)\n", "keras.layers.LSTM"),
        ("from keras.layers import recurrent\nRNN = recurrent.GRU\nRNN(128)\n", "keras.layers.GRU"),
        ("import torch.nn as nn\ndef make(cls=nn.GRU):\n    return cls(4, 4)\nmake()\n", "torch.nn.GRU"),
        (
            "import torch.nn as nn\nclass M(nn.Module):\n    def __init__(self, cell):\n        super().__init__()\n"
            "        self.cell = cell\n        self.rnn = self.cell(4, 4)\nM(nn.LSTM)\n",
            "torch.nn.LSTM",
        ),
        ("import torch.nn as nn\nkind = 'gru'\ncell = nn.LSTM if kind == 'lstm' else nn.GRU\ncell(4, 4)\n", "torch.nn.GRU"),
        ("import torch.nn as nn\nname = 'RNN'\ngetattr(nn, name)(4, 4)\n", "torch.nn.RNN"),
        ("import torch.nn as nn\nCELLS = {'a': nn.LSTM}\nCELLS.get('b', nn.GRU)(4, 4)\n", "torch.nn.GRU"),
        ("import torch.nn as nn\nCELLS = {'a': nn.LSTM, 'b': nn.GRU}\nCELLS['b'](4, 4)\n", "torch.nn.GRU"),
        (
            "import torch.nn as nn\nmode = 'lstm'\nif mode == 'gru':\n    cell = nn.GRU\nelif mode == 'lstm':\n"
            "    cell = nn.LSTM\ncell(4, 4)\n",
            "torch.nn.LSTM",
        ),
    ],
)
def test_the_class_a_value_names_is_built(source, expected):
    assert expected in built(source)


@pytest.mark.parametrize(
    "source",
    [
        # The branch depends on a value nobody can know here, and one side is not recurrent.
        "import sys\nimport torch.nn as nn\nif sys.argv[1] == 'gru':\n    cell = nn.GRU\nelse:\n    cell = nn.Linear\ncell(4, 4)\n",
        # A key that is not in the table, with no default.
        "import torch.nn as nn\nCELLS = {'a': nn.LSTM}\nCELLS['b'](4, 4)\n",
        # getattr on an object, not a module.
        "import torch.nn as nn\nclass M(nn.Module):\n    def build(self):\n        return getattr(self, 'rnn')(4)\n",
    ],
)
def test_classes_that_cannot_be_told_build_nothing(source):
    assert not [q for q in built(source) if q.endswith(("LSTM", "GRU", "RNN"))]


def test_a_class_picked_by_an_unknown_value_among_recurrent_ones_is_recurrent_whichever_it_is():
    source = (
        "import sys\nimport torch.nn as nn\nif sys.argv[1] == 'rnn':\n    cell = nn.RNN\nelif sys.argv[1] == 'gru':\n"
        "    cell = nn.GRU\nelse:\n    cell = nn.LSTM\ncell(4, 4)\n"
    )
    facts = FileFacts("t.py", cst.parse_module(source))
    [layer] = facts.models.scope_layers(facts.index.scope)
    assert layer.recurrent and layer.choices == ("torch.nn.RNN", "torch.nn.GRU", "torch.nn.LSTM")
    assert layer.short == "RNN/GRU/LSTM"
    assert layer.qualname == "torch.nn.GRU"  # a gated choice: not known to be a plain RNN (GL302)
