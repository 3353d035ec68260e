"""A LightGBM booster's trees packed into flat arrays, walked by a compiled loop.

Scoring one decision walks ~3,000 trees of three models. LightGBM keeps each tree in a dozen
separately allocated vectors and builds a predictor per call: in the service, where the HTTP
layer evicts the models from the CPU caches between requests, a single-row ``predict`` cost
5-10 times what it costs in a tight loop (cache misses on every level of every tree). Here every
model is four contiguous arrays, nodes numbered depth-first so a path stays close in memory,
walked by a numba loop with no per-call setup.

The decisions are LightGBM's own (``include/LightGBM/tree.h``), so raw scores are bitwise equal
to ``Booster.predict(raw_score=True)`` (the tests compare them on random rows with missing,
zero, negative and unseen values):

- input values within 1e-35 of zero are zero (LightGBM drops them when it reads a dense row);
- numerical split: NaN is 0 unless the split's missing type is NaN; a missing value (NaN for
  type NaN, zero for type Zero) goes the default way; else left when ``value <= threshold``;
- categorical split: NaN, values below 0 (after truncation to an integer) and values past the
  bitset go right; left when the category's bit is set;
- a row's score is the sum of its leaves over the trees in order (the same additions).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import lightgbm as lgb
import numpy as np
from numba import njit

from paynudge.errors import DataError

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (a float constant, widened to double)."""
_CATEGORICAL, _DEFAULT_LEFT = 1, 2
_MISSING_SHIFT = 2
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass(frozen=True)
class PackedForest:
    """The trees of a binary or regression booster, up to an iteration, as flat arrays.

    Internal nodes are numbered depth-first over all trees; a child below 0 is leaf ``~child``.
    """

    roots: np.ndarray
    """int32 per tree: its root node, or ``~leaf`` for a tree that is a single leaf."""
    feature: np.ndarray
    """int32 per node: the column it splits on."""
    threshold: np.ndarray
    """float64 per node: the numerical threshold, or the index of a categorical bitset."""
    children: np.ndarray
    """int32 (nodes, 2): left and right child."""
    kind: np.ndarray
    """int8 per node: bit 0 categorical, bit 1 default left, bits 2-3 missing type."""
    leaf_value: np.ndarray
    bitsets: np.ndarray
    """uint32 words of every categorical split's set of left-going categories."""
    bitset_bounds: np.ndarray
    """int32: bitset ``k`` is ``bitsets[bitset_bounds[k]:bitset_bounds[k + 1]]``."""
    n_features: int

    @classmethod
    def from_booster(cls, booster: lgb.Booster, num_iteration: int | None = None) -> PackedForest:
        """Pack the first ``num_iteration`` iterations (all when None or 0) of ``booster``."""
        if booster.num_model_per_iteration() != 1:
            raise DataError("a packed forest holds one tree per iteration (binary or regression)")
        dump = booster.dump_model(num_iteration=num_iteration or -1)
        if dump.get("linear_tree") or dump.get("average_output"):
            raise DataError("linear trees and random-forest averaging are not packed")
        packer = _Packer()
        roots = [packer.add(tree["tree_structure"]) for tree in dump["tree_info"]]
        return cls(
            roots=np.array(roots, dtype=np.int32),
            feature=np.array(packer.feature, dtype=np.int32),
            threshold=np.array(packer.threshold, dtype=np.float64),
            children=np.array(packer.children, dtype=np.int32).reshape(-1, 2),
            kind=np.array(packer.kind, dtype=np.int8),
            leaf_value=np.array(packer.leaf_value, dtype=np.float64),
            bitsets=np.array(packer.bitsets, dtype=np.uint32),
            bitset_bounds=np.array(packer.bitset_bounds, dtype=np.int32),
            n_features=dump["max_feature_idx"] + 1,
        )

    def raw_scores(self, matrix: np.ndarray, threads: int = 1) -> np.ndarray:
        """The raw score (sum of leaves) of each row of a float64 ``(n, n_features)`` matrix,
        the rows split in ``threads`` parts walked at once (the loop releases the GIL)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise DataError(
                f"expected a matrix of {self.n_features} feature columns, got shape {matrix.shape}"
            )
        out = np.zeros(len(matrix))
        parts = _parts(len(matrix), threads)
        if len(parts) == 1:
            self._walk(matrix, out)
            return out
        list(_pool().map(lambda part: self._walk(matrix[part], out[part]), parts))
        return out

    def candidate_raw_scores(
        self,
        matrix: np.ndarray,
        column: int,
        values: np.ndarray,
        segments: np.ndarray,
        threads: int = 1,
    ) -> np.ndarray:
        """Raw scores of candidate rows that differ from a base row only in one column: the
        candidates ``segments[i]:segments[i + 1]`` are row ``i`` of ``matrix`` with ``column``
        set to each of ``values[segments[i]:segments[i + 1]]``. Bitwise equal to building every
        candidate row and calling :meth:`raw_scores`, at the cost of one walk per base row and
        tree, plus a pass over the row's candidates at each split on ``column`` (a send plan's
        candidate hours of one message, say). Rows are split in ``threads`` parts as in
        :meth:`raw_scores`."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        values = np.ascontiguousarray(values, dtype=np.float64)
        segments = np.ascontiguousarray(segments, dtype=np.int64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise DataError(
                f"expected a matrix of {self.n_features} feature columns, got shape {matrix.shape}"
            )
        if not 0 <= column < self.n_features:
            raise DataError(f"column {column} is not one of the {self.n_features} features")
        if (
            segments.shape != (len(matrix) + 1,)
            or segments[0] != 0
            or segments[-1] != len(values)
            or (segments[1:] < segments[:-1]).any()
        ):
            raise DataError(
                f"segments must rise from 0 to the {len(values)} values, one bound per row of "
                f"the matrix and one more ({len(matrix) + 1}), got {segments.shape[0]}"
            )
        out = np.zeros(len(values))

        def walk(part: slice) -> None:  # segments hold global candidate positions
            _walk_candidates(
                matrix[part], column, values, segments[part.start : part.stop + 1], self.roots,
                self.feature, self.threshold, self.children, self.kind, self.leaf_value,
                self.bitsets, self.bitset_bounds, out,
            )  # fmt: skip

        parts = _parts(len(matrix), threads)
        if len(parts) == 1:
            walk(parts[0])
        else:
            list(_pool().map(walk, parts))
        return out

    def _walk(self, matrix: np.ndarray, out: np.ndarray) -> None:
        _walk(
            matrix, self.roots, self.feature, self.threshold, self.children, self.kind,
            self.leaf_value, self.bitsets, self.bitset_bounds, out,
        )  # fmt: skip


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _parts(n: int, threads: int) -> list[slice]:
    """``n`` rows in up to ``threads`` consecutive parts of nearly equal size (at least one)."""
    count = max(1, min(threads, n))
    return [slice(a, b) for a, b in pairwise(n * i // count for i in range(count + 1))]


def _pool() -> ThreadPoolExecutor:
    """This process's walker threads (a fork does not inherit threads: a child makes its own)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(os.cpu_count() or 1, "packed-forest"))
    return _POOL[1]


class _Packer:
    """Appends the nodes of dumped trees depth-first (see :meth:`PackedForest.from_booster`)."""

    def __init__(self) -> None:
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.children: list[int] = []
        self.kind: list[int] = []
        self.leaf_value: list[float] = []
        self.bitsets: list[int] = []
        self.bitset_bounds: list[int] = [0]

    def add(self, node: dict) -> int:
        """The packed index of ``node`` (``~leaf`` for a leaf), its subtree appended."""
        if "leaf_value" in node:
            self.leaf_value.append(float(node["leaf_value"]))
            return ~(len(self.leaf_value) - 1)
        index = len(self.feature)
        self.feature.append(int(node["split_feature"]))
        kind = _MISSING[node["missing_type"]] << _MISSING_SHIFT
        kind |= _DEFAULT_LEFT if node["default_left"] else 0
        if node["decision_type"] == "==":
            kind |= _CATEGORICAL
            self.threshold.append(float(len(self.bitset_bounds) - 1))
            self._add_bitset([int(c) for c in str(node["threshold"]).split("||")])
        else:
            self.threshold.append(float(node["threshold"]))
        self.kind.append(kind)
        self.children.extend((0, 0))
        left = self.add(node["left_child"])
        right = self.add(node["right_child"])
        self.children[2 * index : 2 * index + 2] = (left, right)
        return index

    def _add_bitset(self, categories: list[int]) -> None:
        words = np.zeros(max(categories) // 32 + 1, dtype=np.uint64)
        for category in categories:
            words[category // 32] |= np.uint64(1) << np.uint64(category % 32)
        self.bitsets.extend(int(word) for word in words)
        self.bitset_bounds.append(len(self.bitsets))


@njit(cache=True, nogil=True, inline="always")  # type: ignore[untyped-decorator]
def _numerical_side(value, flags, threshold):  # type: ignore[no-untyped-def]
    """0 (left) or 1 (right) at a numerical split (the module docstring's rules). Helpers
    take scalars only: a compiled call with array arguments counts references on every node,
    several times slower than the walk itself."""
    missing = (flags >> _MISSING_SHIFT) & 3
    if np.isnan(value):
        if missing == 2:  # NaN is missing
            return 0 if flags & _DEFAULT_LEFT else 1
        value = 0.0
    elif -ZERO_THRESHOLD <= value <= ZERO_THRESHOLD:
        value = 0.0
    if missing == 1 and value == 0.0:  # zero is missing
        return 0 if flags & _DEFAULT_LEFT else 1
    return 0 if value <= threshold else 1


@njit(cache=True, nogil=True, inline="always")  # type: ignore[untyped-decorator]
def _category(value):  # type: ignore[no-untyped-def]
    """The category a value reads as at a categorical split, or -1 (always right)."""
    if not np.isnan(value) and -1.0 < value < 2147483648.0:
        return int(value)
    return -1


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _walk(  # type: ignore[no-untyped-def]
    matrix, roots, feature, threshold, children, kind, leaf_value, bitsets, bounds, out
):
    n = matrix.shape[0]
    for tree in range(roots.shape[0]):  # tree by tree: each tree's nodes stay hot for all rows
        for row in range(n):
            node = roots[tree]
            while node >= 0:
                value = matrix[row, feature[node]]
                flags = kind[node]
                # The categorical test is written out here and twice in _walk_candidates: as a
                # helper it would take the bitset arrays, 5-10x slower (see _numerical_side).
                if flags & _CATEGORICAL:  # left when the category's bit is set
                    category, k = _category(value), int(threshold[node])
                    word = bounds[k] + category // 32
                    left = category >= 0 and word < bounds[k + 1]
                    side = 0 if left and (bitsets[word] >> (category % 32)) & 1 else 1
                else:
                    side = _numerical_side(value, flags, threshold[node])
                node = children[node, side]
            out[row] += leaf_value[~node]


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _walk_candidates(  # type: ignore[no-untyped-def]
    matrix, column, values, segments, roots, feature, threshold, children, kind, leaf_value,
    bitsets, bounds, out,
):  # fmt: skip
    """Candidates ``segments[i]:segments[i + 1]`` are row ``i`` with ``column`` set to each of
    their ``values``. A tree is walked once per row; at a split on ``column`` the row's
    candidates part ways (a stack of node and candidate range), so each candidate still gets
    the leaf of every tree, added in tree order."""
    order = np.arange(values.shape[0])  # any order of a row's candidates will do: not reset
    stack = np.empty((feature.shape[0] + 1, 3), dtype=np.int64)
    for tree in range(roots.shape[0]):
        for row in range(matrix.shape[0]):
            first, last = segments[row], segments[row + 1]
            if first == last:
                continue
            stack[0, 0], stack[0, 1], stack[0, 2] = roots[tree], first, last
            depth = 1
            while depth > 0:
                depth -= 1
                node, a, b = stack[depth, 0], stack[depth, 1], stack[depth, 2]
                while node >= 0:
                    flags = kind[node]
                    if feature[node] != column:  # as in _walk
                        value = matrix[row, feature[node]]
                        if flags & _CATEGORICAL:
                            category, k = _category(value), int(threshold[node])
                            word = bounds[k] + category // 32
                            left = category >= 0 and word < bounds[k + 1]
                            side = 0 if left and (bitsets[word] >> (category % 32)) & 1 else 1
                        else:
                            side = _numerical_side(value, flags, threshold[node])
                        node = children[node, side]
                        continue
                    split = a  # order[a:split] go left, order[split:b] right
                    for j in range(a, b):
                        value = values[order[j]]
                        if flags & _CATEGORICAL:
                            category, k = _category(value), int(threshold[node])
                            word = bounds[k] + category // 32
                            left = category >= 0 and word < bounds[k + 1]
                            side = 0 if left and (bitsets[word] >> (category % 32)) & 1 else 1
                        else:
                            side = _numerical_side(value, flags, threshold[node])
                        if side == 0:
                            order[j], order[split] = order[split], order[j]
                            split += 1
                    if split == a:
                        node = children[node, 1]
                    elif split == b:
                        node = children[node, 0]
                    else:  # both ways: the right part waits on the stack
                        stack[depth, 0] = children[node, 1]
                        stack[depth, 1], stack[depth, 2] = split, b
                        depth += 1
                        node, b = children[node, 0], split
                leaf = leaf_value[~node]
                for j in range(a, b):
                    out[order[j]] += leaf
