# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The referring-expression language of the synthetic benchmark: its structure, its text, a parser and a resolver.

The resolver interprets an expression's *text* against a scene, independently of how the expression was built,
so that "every expression identifies exactly one object" is checked rather than assumed.

Semantics (image coordinates, y down; positions are box centres):
- "the [size] [colour] <shape|object>": every object with these attributes.
- "... left of / right of / above / below the <landmark>": the candidates on that side of the (unique) landmark.
- "the leftmost / rightmost / topmost / bottommost ...": the extreme candidate along that axis.
- "the first / second / third ... from the left / right / top / bottom": the candidate with that rank.
"""

from dataclasses import dataclass

from .scene import SyntheticGroundingConfig, SyntheticObject


# (axis, sign): axis 0 = x, 1 = y; an object comes "first" along a direction when sign * coordinate is smallest
DIRECTIONS = {"left": (0, 1), "right": (0, -1), "top": (1, 1), "bottom": (1, -1)}
EXTREMES = {"leftmost": "left", "rightmost": "right", "topmost": "top", "bottommost": "bottom"}
# "A left of B": A comes first along "left" relative to B
RELATIONS = {"left of": "left", "right of": "right", "above": "top", "below": "bottom"}
ORDINALS = ("first", "second", "third")
GENERIC_NOUN = "object"


class AmbiguousReferenceError(ValueError):
    """An expression whose meaning depends on a spatial comparison closer than the margin, or on a landmark
    that is not unique."""


@dataclass(frozen=True)
class Descriptor:
    """Attributes named by a noun phrase; `None` means "any"."""

    size: str | None = None
    color: str | None = None
    shape: str | None = None

    def matches(self, obj: SyntheticObject) -> bool:
        return (
            (self.size is None or self.size == obj.size)
            and (self.color is None or self.color == obj.color)
            and (self.shape is None or self.shape == obj.shape)
        )

    def text(self) -> str:
        return " ".join(w for w in (self.size, self.color, self.shape or GENERIC_NOUN) if w)


@dataclass(frozen=True)
class ReferringExpression:
    r"""
    The structure of a synthetic referring expression.

    Args:
        descriptor (`Descriptor`): the head noun phrase's attributes.
        extreme (`str`, *optional*): "leftmost", "rightmost", "topmost" or "bottommost".
        ordinal (`tuple[int, str]`, *optional*): (0-based rank, direction), e.g. (1, "left") = "second ... from
            the left".
        relation (`tuple[str, ReferringExpression]`, *optional*): ("left of" | "right of" | "above" | "below",
            landmark).
    """

    descriptor: Descriptor
    extreme: str | None = None
    ordinal: tuple[int, str] | None = None
    relation: tuple[str, "ReferringExpression"] | None = None

    def text(self) -> str:
        words = ["the"]
        if self.extreme:
            words.append(self.extreme)
        if self.ordinal:
            words.append(ORDINALS[self.ordinal[0]])
        words.append(self.descriptor.text())
        if self.ordinal:
            words.append(f"from the {self.ordinal[1]}")
        if self.relation:
            words += [self.relation[0], self.relation[1].text()]
        return " ".join(words)


def _vocabulary(config: SyntheticGroundingConfig) -> dict[str, str]:
    """word -> attribute it names."""
    vocabulary = {name: "size" for name, _ in config.sizes}
    vocabulary.update({name: "color" for name, _ in config.colors})
    vocabulary.update({name: "shape" for name in config.shapes})
    return vocabulary


def _parse_noun_phrase(words: list[str], position: int, vocabulary: dict, text: str):
    """Parses "the ... <noun> [from the DIR] [RELATION the ...]" at `position`; returns (expression, next)."""

    def fail(reason):
        raise ValueError(f"Cannot parse {text!r}: {reason} at word {position} ({words[position : position + 3]}).")

    def peek(offset=0):
        return words[position + offset] if position + offset < len(words) else None

    if peek() != "the":
        fail("expected 'the'")
    position += 1
    extreme = ordinal = relation = None
    if peek() in EXTREMES:
        extreme, position = peek(), position + 1
    elif peek() in ORDINALS:
        ordinal, position = ORDINALS.index(peek()), position + 1
    attributes = {}
    while peek() in vocabulary and vocabulary[peek()] != "shape":
        if vocabulary[peek()] in attributes:
            fail(f"a second {vocabulary[peek()]} word")
        attributes[vocabulary[peek()]], position = peek(), position + 1
    if peek() in vocabulary:
        attributes["shape"] = peek()
    elif peek() != GENERIC_NOUN:
        fail(f"expected a shape or {GENERIC_NOUN!r}")
    position += 1
    if ordinal is not None:
        if words[position : position + 2] != ["from", "the"] or peek(2) not in DIRECTIONS:
            fail("expected 'from the left|right|top|bottom' after an ordinal")
        ordinal, position = (ordinal, peek(2)), position + 3
    two_words = " ".join(words[position : position + 2])
    word = two_words if two_words in RELATIONS else peek()
    if word in RELATIONS:
        landmark, position = _parse_noun_phrase(words, position + len(word.split()), vocabulary, text)
        relation = (word, landmark)
    return ReferringExpression(Descriptor(**attributes), extreme, ordinal, relation), position


def parse_expression(text: str, config: SyntheticGroundingConfig | None = None) -> ReferringExpression:
    r"""
    Parses the text of a synthetic referring expression.

    Args:
        text (`str`): e.g. "the second small square from the left" or "the circle left of the red square".
        config (`SyntheticGroundingConfig`, *optional*): gives the size/colour/shape words (default config).

    Returns:
        `ReferringExpression`.

    Raises:
        `ValueError` if the text is not in the benchmark's language.
    """
    words = text.lower().split()
    expression, position = _parse_noun_phrase(words, 0, _vocabulary(config or SyntheticGroundingConfig()), text)
    if position != len(words):
        raise ValueError(f"Cannot parse {text!r}: unexpected trailing words {words[position:]}.")
    return expression


def direction_key(obj: SyntheticObject, direction: str) -> float:
    """Sort key of `obj` along `direction`: smallest = first (the leftmost object for "left")."""
    axis, sign = DIRECTIONS[direction]
    return sign * obj.center[axis]


def _evaluate(expression: ReferringExpression, objects, margin: float) -> list[int]:
    candidates = [i for i, obj in enumerate(objects) if expression.descriptor.matches(obj)]
    if expression.relation:
        word, landmark_expression = expression.relation
        landmarks = _evaluate(landmark_expression, objects, margin)
        if len(landmarks) != 1:
            raise AmbiguousReferenceError(f"the landmark {landmark_expression.text()!r} is not unique")
        landmark = objects[landmarks[0]]
        kept = []
        for i in candidates:
            if i == landmarks[0]:
                continue
            gap = direction_key(landmark, RELATIONS[word]) - direction_key(objects[i], RELATIONS[word])
            if abs(gap) < margin:
                raise AmbiguousReferenceError(f"{word!r} is a close call for object {i}")
            if gap > 0:
                kept.append(i)
        candidates = kept
    rank, direction = (0, EXTREMES[expression.extreme]) if expression.extreme else expression.ordinal or (None, None)
    if direction is None:
        return candidates
    ordered = sorted(candidates, key=lambda i: direction_key(objects[i], direction))
    if rank >= len(ordered):
        return []
    keys = [direction_key(objects[i], direction) for i in ordered]
    neighbours = [keys[j] for j in (rank - 1, rank + 1) if 0 <= j < len(keys)]
    if any(abs(keys[rank] - k) < margin for k in neighbours):
        raise AmbiguousReferenceError(f"the rank along {direction!r} is a close call")
    return [ordered[rank]]


def resolve_expression(
    expression: str | ReferringExpression,
    objects: list[SyntheticObject],
    margin: float = 0.0,
    config: SyntheticGroundingConfig | None = None,
) -> list[int]:
    r"""
    Interprets a referring expression against a scene.

    Args:
        expression (`str` or `ReferringExpression`): the expression (text is parsed first).
        objects (`list[SyntheticObject]`): the scene.
        margin (`float`, *optional*, defaults to 0.0):
            Smallest centre-coordinate gap (pixels) a spatial comparison may rely on; a closer call raises.
        config (`SyntheticGroundingConfig`, *optional*): vocabulary for parsing text.

    Returns:
        `list[int]`: indices of the objects the expression refers to (exactly one for a valid expression).

    Raises:
        `AmbiguousReferenceError` when a comparison is closer than `margin` or a landmark is not unique.

    Examples:

    ```python
    >>> from processing.data.synthetic import SyntheticObject, resolve_expression
    >>> scene = [SyntheticObject("circle", "red", "small", (0, 0, 10, 10)),
    ...          SyntheticObject("circle", "blue", "small", (30, 0, 40, 10))]
    >>> resolve_expression("the circle left of the blue circle", scene)
    [0]
    ```"""
    if isinstance(expression, str):
        expression = parse_expression(expression, config)
    return _evaluate(expression, objects, margin)


__all__ = [
    "AmbiguousReferenceError",
    "DIRECTIONS",
    "Descriptor",
    "EXTREMES",
    "ORDINALS",
    "RELATIONS",
    "ReferringExpression",
    "direction_key",
    "parse_expression",
    "resolve_expression",
]
