"""Vowpal Wabbit's side of the bandit: its text examples, its model files, its weights read back.

Contexts go in the shared namespace ``S`` (feature ``j`` is column ``j``), action features in the
namespace ``A``; ``-q SA`` crosses them. A training example is the shared line plus the logged
action's line only: with ``--cb_type mtr`` only that line is regressed on (see
:func:`training_learning_rate` for the one thing the other lines would change).

VW's per-example Python path is slow, so examples are written as text built with Arrow's
vectorised string kernels and read by VW's native parser (``-d``); scoring never goes through
VW at all: :func:`linear_rewards` turns the learned weights into ``intercept + x @ coef``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from vowpalwabbit import Workspace

SHARED_NAMESPACE = "S"
"""Namespace of the context features (the shared line of every example)."""
ACTION_NAMESPACE = "A"
"""Namespace of the action features (one line per action)."""
FNV_PRIME = 16777619
"""VW's multiplier when hashing a quadratic feature: index ``(FNV_PRIME * h_first) ^ h_second``."""
CONSTANT_HASH = 11650396
"""VW's hash index of the constant (bias) feature, added once to every action line."""
CHUNK_ROWS = 100_000
"""Examples turned into text at a time: bounds memory on long logs, costs nothing on short."""


@dataclass(frozen=True)
class LinearRewards:
    """The regressor as a linear map: ``estimated_rewards = intercept + contexts @ coef``."""

    intercept: np.ndarray
    """(n_actions,) estimated reward of each action at the all-zero context."""
    coef: np.ndarray
    """(n_features, n_actions) change of each action's estimated reward per context unit."""


def _float_text(values: np.ndarray) -> pa.Array:
    """Shortest text that VW parses back to the same float32 (VW stores features as float32)."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.float32)), pa.string())


def shared_lines(contexts: np.ndarray) -> pa.Array:
    """``shared |S 0:x0 1:x1 ...`` for each row of ``contexts`` (zeros too: VW skips them)."""
    columns = [
        pc.utf8_replace_slice(_float_text(contexts[:, j]), 0, 0, f"{j}:")
        for j in range(contexts.shape[1])
    ]
    return pc.binary_join_element_wise(f"shared |{SHARED_NAMESPACE}", *columns, " ")


def action_lines(action_features: np.ndarray) -> np.ndarray:
    """``|A 0:f0 1:f1 ...`` for each action, zero features left out (VW would drop them)."""
    texts = []
    for row in np.asarray(action_features, dtype=np.float32):
        (nonzero,) = np.nonzero(row)
        features = " ".join(f"{i}:{float(row[i])!r}" for i in nonzero.tolist())
        texts.append(f"|{ACTION_NAMESPACE} {features}".rstrip())
    return np.array(texts, dtype=object)


def training_text(
    contexts: np.ndarray,
    action: np.ndarray,
    cost: np.ndarray,
    pscore: np.ndarray,
    action_text: np.ndarray,
) -> str:
    """VW ``cb_adf`` text: per row the shared line and the logged action's labelled line.

    ``cost`` is what VW minimises (the negated reward); ``action_text`` comes from
    :func:`action_lines`. The label's action id is ignored by VW's ADF reductions, so it is 0.
    """
    label = pc.binary_join_element_wise("0", _float_text(cost), _float_text(pscore), ":")
    chosen = pc.binary_join_element_wise(label, pa.array(action_text[action]), " ")
    rows = pc.binary_join_element_wise(shared_lines(contexts), chosen, "\n")
    # A blank line closes each multi-line example, the last one included.
    return "\n\n".join(rows.to_pylist()) + "\n\n"


def training_chunks(
    contexts: np.ndarray,
    action: np.ndarray,
    cost: np.ndarray,
    pscore: np.ndarray,
    action_text: np.ndarray,
    order: np.ndarray,
) -> Iterator[str]:
    """:func:`training_text` of the rows in ``order`` (repeats allowed), a chunk at a time."""
    for start in range(0, len(order), CHUNK_ROWS):
        rows = order[start : start + CHUNK_ROWS]
        yield training_text(contexts[rows], action[rows], cost[rows], pscore[rows], action_text)


def prediction_lines(context: np.ndarray, action_text: np.ndarray) -> list[str]:
    """One unlabelled multi-line example (shared line, then the given actions' lines)."""
    return [shared_lines(context[None, :])[0].as_py(), *action_text.tolist()]


def training_learning_rate(learning_rate: float, mean_allowed_actions: float) -> float:
    """VW's ``-l`` for shared-plus-logged-line examples, same update as with all allowed lines.

    ``mtr`` scales the importance weight by ``1 / mean number of action lines``; with
    adaptive, normalised, invariant updates, scaling every weight by ``c`` is the same as scaling
    the learning rate by ``sqrt(c)``. Dividing by ``sqrt(mean_allowed_actions)`` restores VW's
    own update exactly when every row allows as many actions, and closely otherwise.
    """
    return float(learning_rate / np.sqrt(mean_allowed_actions))


def trained_workspace(arguments: list[str], text: Iterator[str], model: bytes | None) -> Workspace:
    """VW after its native parser has learned from ``text``, continuing ``model`` if given.

    VW saves its full learning state (adaptive and normalisation sums included), so learning
    from A, saving, and going on with B gives the very weights of learning from A then B.
    """
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "train.vw"
        with data.open("w") as file:
            file.writelines(text)
        extra = ["-d", str(data)]
        if model is not None:
            start = Path(folder) / "start.vw"
            start.write_bytes(model)
            extra += ["-i", str(start)]
        return Workspace(arg_list=[*arguments, *extra])


def loaded_workspace(arguments: list[str], model: bytes) -> Workspace:
    """VW with the model saved in ``model`` (see :func:`model_bytes`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.vw"
        path.write_bytes(model)
        return Workspace(arg_list=[*arguments, "-i", str(path)])


def model_bytes(workspace: Workspace) -> bytes:
    """VW's own model file, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.vw"
        workspace.save(str(path))
        return path.read_bytes()


def _weights(workspace: Workspace, indices: np.ndarray) -> np.ndarray:
    """VW weights at (unstrided) hash indices, masked to the weight table as VW does."""
    mask = int(workspace.num_weights()) - 1  # the table has 2**bits entries
    flat = [workspace.get_weight(int(index) & mask) for index in np.ravel(indices)]
    return np.array(flat, dtype=np.float64).reshape(np.shape(indices))


def linear_rewards(
    workspace: Workspace,
    n_features: int,
    action_features: np.ndarray,
    interactions: bool,
) -> LinearRewards:
    """The model's estimated rewards as ``intercept + x @ coef``, read from VW's weights.

    VW's score of action ``a`` (a cost) is ``w_const + F[a] @ w_A + x @ w_S`` plus, with
    ``-q SA``, ``x @ W_SA @ F[a]``: affine in the context, so two arrays replay it exactly.
    """
    shared_space = workspace.hash_space(SHARED_NAMESPACE)
    action_space = workspace.hash_space(ACTION_NAMESPACE)
    shared_hash = np.array(
        [workspace.hash_feature(str(j), shared_space) for j in range(n_features)], dtype=np.uint64
    )
    action_hash = np.array(
        [workspace.hash_feature(str(i), action_space) for i in range(action_features.shape[1])],
        dtype=np.uint64,
    )
    w_shared = _weights(workspace, shared_hash)
    w_action = _weights(workspace, action_hash)
    cost_intercept = _weights(workspace, np.array([CONSTANT_HASH]))[0] + action_features @ w_action
    cost_coef = np.repeat(w_shared[:, None], action_features.shape[0], axis=1)
    if interactions:
        quadratic = (np.uint64(FNV_PRIME) * shared_hash[:, None]) ^ action_hash[None, :]
        cost_coef = cost_coef + _weights(workspace, quadratic) @ action_features.T
    return LinearRewards(intercept=-cost_intercept, coef=-cost_coef)
