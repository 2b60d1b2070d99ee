"""TensorFlow and Keras training paths: GradientTape loops, TF1 graph code, and what counts as clipping there."""
from __future__ import annotations

from rule_fixtures import findings

TAPE = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.LSTM(32), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.Adam({options})
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
{clip}    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""


def tape(options: str = "", clip: str = "") -> str:
    return TAPE.format(options=options, clip=clip)


def test_a_tape_loop_without_clipping_is_flagged_with_keras_advice():
    [finding] = findings(tape(), "GL101")
    assert "clipnorm=1.0" in finding.help and "tf.clip_by_global_norm" in finding.help
    assert "torch" not in finding.help and finding.fix is None


def test_the_optimizers_own_clipping_clips_a_tape_loop():
    for key in ("clipnorm=1.0", "clipvalue=0.5", "global_clipnorm=5.0"):
        assert findings(tape(options=key), "GL101") == []
    # None asks for no clipping.
    assert len(findings(tape(options="clipnorm=None"), "GL101")) == 1


def test_clipping_the_gradients_clips_a_tape_loop():
    for clip in (
        "    grads, _ = tf.clip_by_global_norm(grads, 1.0)\n",
        "    grads = [tf.clip_by_norm(g, 1.0) for g in grads]\n",
        "    grads = [tf.clip_by_value(g, -1.0, 1.0) for g in grads]\n",
    ):
        assert findings(tape(clip=clip), "GL101") == [], clip


def test_clipping_something_else_than_gradients_is_not_clipping():
    clipped_target = "    y = tf.clip_by_value(y, 0.0, 1.0)\n"
    assert len(findings(tape(clip=clipped_target), "GL101")) == 1
    assert findings(tape(clip=clipped_target), "GL102") == []


def test_predictions_clipped_in_a_loss_are_neither_clipping_nor_misplaced_clipping():
    source = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.GRU(8), tf.keras.layers.Dense(3, activation="softmax")])
optimizer = tf.keras.optimizers.Adam()
def loss_fn(y_true, y_pred):
    y_pred = tf.clip_by_value(y_pred, 1e-9, 1.0)
    return -tf.reduce_mean(y_true * tf.math.log(y_pred))
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
def test_step(x, y):
    return loss_fn(y, model(x))
for x, y in dataset:
    train_step(x, y)
    test_step(x, y)
"""
    assert findings(source, "GL102") == []
    assert len(findings(source, "GL101")) == 1


def test_gradients_clipped_in_a_helper_count_through_its_callers():
    source = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.LSTM(8)])
optimizer = tf.keras.optimizers.SGD(0.1)
def limit(values, norm):
    out, _ = tf.clip_by_global_norm(values, norm)
    return out
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x))
    g = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(limit(g, 5.0), model.trainable_variables))
"""
    assert findings(source, "GL101") == []


def test_the_model_of_a_tape_loop_is_read_through_the_variables_it_updates():
    source = """
import tensorflow as tf
rnn = tf.keras.layers.SimpleRNN(16)
dense = tf.keras.layers.Dense(1)
optimizer = tf.keras.optimizers.SGD(0.01)
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(dense(rnn(x)) - y))
    variables = rnn.trainable_variables + dense.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
"""
    assert len(findings(source, "GL101")) == 1
    assert len(findings(source, "GL302")) == 1
    # A tape loop that trains only the dense head leaves the recurrent layer alone.
    head_only = source.replace("rnn.trainable_variables + dense.trainable_variables", "dense.trainable_variables")
    assert findings(head_only, "GL101") == [] and findings(head_only, "GL302") == []


TF1 = """
import tensorflow as tf
x = tf.placeholder(tf.float32, [None, 10, 4])
y = tf.placeholder(tf.float32, [None, 1])
cell = {cell}(32)
outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
loss = tf.reduce_mean(tf.square(tf.layers.dense(outputs[:, -1], 1) - y))
{train}
"""
MINIMIZE = "train_op = tf.train.AdamOptimizer(0.001).minimize(loss)"


def test_tf1_cells_under_every_spelling_are_recurrent():
    for cell in (
        "tf.nn.rnn_cell.LSTMCell", "tf.contrib.rnn.BasicLSTMCell", "tf.compat.v1.nn.rnn_cell.GRUCell",
        "tf.nn.rnn_cell.BasicRNNCell",
    ):
        assert len(findings(TF1.format(cell=cell, train=MINIMIZE), "GL101")) == 1, cell
    assert len(findings(TF1.format(cell="tf.nn.rnn_cell.BasicRNNCell", train=MINIMIZE), "GL302")) == 1
    assert findings(TF1.format(cell="tf.nn.rnn_cell.GRUCell", train=MINIMIZE), "GL302") == []


def test_tf1_minimize_is_training_and_its_advice_is_tensorflow_advice():
    source = TF1.format(cell="tf.nn.rnn_cell.LSTMCell", train=MINIMIZE)
    [clip] = findings(source, "GL101")
    assert "compute_gradients" in clip.help and "torch" not in clip.help
    [penalty] = findings(source, "GL201")
    assert "tf.nn.l2_loss" in penalty.help and "weight_decay=1e-4" not in penalty.help


def test_tf1_clipping_between_compute_and_apply_gradients():
    train = """
opt = tf.train.GradientDescentOptimizer(2.0)
gvs = opt.compute_gradients(loss)
{line}
train_op = opt.apply_gradients(gvs)
"""
    clipped = train.format(line="gvs = [(tf.clip_by_value(g, -1.0, 1.0), v) for g, v in gvs]")
    source = TF1.format(cell="tf.nn.rnn_cell.LSTMCell", train=clipped)
    assert findings(source, "GL101") == [] and findings(source, "GL405") == []
    source = TF1.format(cell="tf.nn.rnn_cell.LSTMCell", train=train.format(line=""))
    assert len(findings(source, "GL101")) == 1
    [lr] = findings(source, "GL405")
    assert "tf.clip_by_global_norm" in lr.help and "torch" not in lr.help


def test_a_minimize_that_is_not_an_optimizers_is_not_training():
    source = TF1.format(cell="tf.nn.rnn_cell.LSTMCell", train="from scipy import optimize\nres = optimize.minimize(f, x0)")
    assert findings(source, "GL101") == []


def test_a_var_list_we_cannot_read_keeps_the_graph_model_unknown():
    source = TF1.format(
        cell="tf.nn.rnn_cell.LSTMCell", train="train_op = tf.train.AdamOptimizer(0.001).minimize(loss, var_list=head_vars)"
    )
    assert findings(source, "GL101") == []


def test_a_layer_only_built_is_not_trained_even_when_the_name_is_reused():
    source = """
from tensorflow import keras
from tensorflow.keras import layers
model = keras.Sequential()
model.add(layers.SimpleRNN(32))
model.summary()
inputs = keras.Input(shape=(None, 14))
outputs = layers.SimpleRNN(16)(inputs)
print(outputs.shape)
inputs = keras.Input(shape=(None, 14))
x = layers.GRU(16)(inputs)
outputs = layers.Dense(1)(x)
model = keras.Model(inputs, outputs)
model.add(layers.Dense(1))
model.compile(optimizer=keras.optimizers.Adam(clipnorm=1.0), loss="mse")
model.fit(data)
"""
    assert findings(source, "GL302") == []
    assert findings(source, "GL101") == []
    trained = source.replace("x = layers.GRU(16)(inputs)", "x = layers.SimpleRNN(16)(inputs)")
    assert len(findings(trained, "GL302")) == 1


def test_one_finding_per_line_when_a_step_is_reached_from_two_roots():
    source = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.LSTM(8)])
optimizer = tf.keras.optimizers.Adam()
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
def fit(data):
    for x, y in data:
        train_step(x, y)
def finetune(data):
    for x, y in data:
        train_step(x, y)
"""
    assert len(findings(source, "GL101")) == 1


def test_a_custom_train_step_uses_the_optimizer_given_to_compile():
    source = """
import tensorflow as tf
from tensorflow import keras
class Model(keras.Model):
    def __init__(self):
        super().__init__()
        self.rnn = keras.layers.GRU(8)
    def call(self, x):
        return self.rnn(x)
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compiled_loss(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}
model = Model()
model.compile(optimizer=keras.optimizers.Adam(CLIP), loss="mse")
model.fit(x, y)
"""
    assert findings(source.replace("CLIP", "clipnorm=1.0"), "GL101") == []
    # Without clipnorm, the one finding is at compile (line 18), not at the train_step's apply_gradients.
    [finding] = findings(source.replace("CLIP", ""), "GL101")
    assert finding.line == 18
