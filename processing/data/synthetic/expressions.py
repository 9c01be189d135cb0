# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Generation of referring expressions (checked by the resolver) and of captions for the synthetic benchmark."""

import itertools

import numpy as np

from .grammar import (
    EXTREMES,
    ORDINALS,
    RELATIONS,
    AmbiguousReferenceError,
    Descriptor,
    ReferringExpression,
    direction_key,
    resolve_expression,
)
from .scene import SyntheticGroundingConfig, SyntheticObject


_ATTRIBUTES = ("size", "color", "shape")
_SUBSETS = [s for r in range(4) for s in itertools.combinations(_ATTRIBUTES, r)]
_RELATION_TRIES = 40


def _descriptors(obj: SyntheticObject, objects, unique: bool) -> list[Descriptor]:
    """Descriptors that fit `obj` and match exactly one object (`unique`) or several (otherwise)."""
    found = []
    for subset in _SUBSETS:
        descriptor = Descriptor(**{name: getattr(obj, name) for name in subset})
        if (sum(descriptor.matches(o) for o in objects) == 1) == unique:
            found.append(descriptor)
    return found


def _refers_to(expression: ReferringExpression, objects, target: int, config: SyntheticGroundingConfig) -> bool:
    try:
        return resolve_expression(expression, objects, margin=config.margin_pixels) == [target]
    except AmbiguousReferenceError:
        return False


def _attribute_candidates(objects, target, rng):
    options = [d for d in _descriptors(objects[target], objects, unique=True) if d != Descriptor()]
    for i in rng.permutation(len(options)):
        yield ReferringExpression(options[i])


def _relation_candidates(objects, target, rng):
    heads = _descriptors(objects[target], objects, unique=False)
    others = [i for i in range(len(objects)) if i != target]
    if not heads:
        return
    landmark_options = {}  # computed on first use: most tries succeed within a few draws
    words = list(RELATIONS)
    for _ in range(_RELATION_TRIES):
        landmark = others[int(rng.integers(len(others)))]
        if landmark not in landmark_options:
            landmark_options[landmark] = _descriptors(objects[landmark], objects, unique=True)
        options = landmark_options[landmark]
        if options:
            word = words[int(rng.integers(len(words)))]
            landmark_expression = ReferringExpression(options[int(rng.integers(len(options)))])
            yield ReferringExpression(heads[int(rng.integers(len(heads)))], relation=(word, landmark_expression))


def _extreme_candidates(objects, target, rng):
    options = [(d, e) for d in _descriptors(objects[target], objects, unique=False) for e in EXTREMES]
    for i in rng.permutation(len(options)):
        yield ReferringExpression(options[i][0], extreme=options[i][1])


def _ordinal_candidates(objects, target, rng):
    # rank 0 ("first") is what the extreme type says; ordinals start at "second"
    options = [
        (d, rank, direction)
        for d in _descriptors(objects[target], objects, unique=False)
        for rank in range(1, len(ORDINALS))
        for direction in EXTREMES.values()
    ]
    for i in rng.permutation(len(options)):
        descriptor, rank, direction = options[i]
        yield ReferringExpression(descriptor, ordinal=(rank, direction))


_CANDIDATES = {
    "attribute": _attribute_candidates,
    "relation": _relation_candidates,
    "extreme": _extreme_candidates,
    "ordinal": _ordinal_candidates,
}


def generate_expression(
    objects: list[SyntheticObject], target: int, rng: np.random.Generator, config: SyntheticGroundingConfig
) -> tuple[ReferringExpression, str] | None:
    r"""
    Picks an expression type by `config.expression_types` weights and finds an expression of that type that
    refers to `objects[target]` alone (falling back to the other types in weighted random order).

    Args:
        objects (`list[SyntheticObject]`): the scene.
        target (`int`): index of the object to describe.
        rng (`np.random.Generator`): random source.
        config (`SyntheticGroundingConfig`): the benchmark configuration.

    Returns:
        `(ReferringExpression, str)` (the expression and its type), or `None` when no type can single the target
        out without a close call.
    """
    names = [name for name, _ in config.expression_types]
    weights = np.array([weight for _, weight in config.expression_types], dtype=float)
    for k in rng.choice(len(names), size=len(names), replace=False, p=weights / weights.sum()):
        for expression in _CANDIDATES[names[k]](objects, target, rng):
            if _refers_to(expression, objects, target, config):
                return expression, names[k]
    return None


def object_caption(obj: SyntheticObject) -> str:
    """E.g. "a small green triangle"."""
    return f"a {obj.size} {obj.color} {obj.shape}"


def scene_caption(objects: list[SyntheticObject], rng: np.random.Generator, config: SyntheticGroundingConfig) -> str:
    """Either every object from left to right ("a large red square, a small blue circle and ...") or one clear
    spatial relation between two objects ("a small red square left of a large blue circle")."""
    pairs = [
        (a, word, b)
        for a, b in itertools.permutations(objects, 2)
        for word, direction in RELATIONS.items()
        if direction_key(b, direction) - direction_key(a, direction) >= config.margin_pixels
    ]
    if pairs and rng.random() < 0.5:
        a, word, b = pairs[int(rng.integers(len(pairs)))]
        return f"{object_caption(a)} {word} {object_caption(b)}"
    names = [object_caption(o) for o in sorted(objects, key=lambda o: o.center[0])]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


__all__ = ["generate_expression", "object_caption", "scene_caption"]
