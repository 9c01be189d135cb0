# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Grounding accuracy (Acc@0.5 and friends) for referring expression comprehension, as an `evaluate` metric.

Load it offline from its folder: `evaluate.load(processing.data.metrics.grounding_accuracy_path())`.
"""

import datasets
import evaluate
import numpy as np

from .grounding_functional import DEFAULT_THRESHOLDS, compute_grounding_metrics


_DESCRIPTION = """
Accuracy of visual grounding (referring expression comprehension): one predicted box per expression is correct when
its IoU with the ground-truth box is at least the threshold (0.5 for the standard Acc@0.5; IoU = 0.5 counts as
correct, as in TransVG's evaluation). Also reports accuracy at other thresholds and the mean IoU.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of 4 floats per example): predicted boxes (x1, y1, x2, y2).
    references (`list` of 4 floats per example): ground-truth boxes (x1, y1, x2, y2), same frame as the predictions.
    iou_thresholds (`list[float]`, *optional*, defaults to [0.25, 0.5, 0.75]): thresholds reported as
        `accuracy@<t>` (0.5 is always included).

Returns:
    accuracy (`float`): Acc@0.5.
    accuracy@<t> (`float`): accuracy at each threshold.
    mean_iou (`float`): mean IoU.
    num_examples (`int`): number of scored expressions.

Examples:
    >>> metric = evaluate.load("processing/data/metrics/grounding_accuracy")
    >>> metric.compute(predictions=[[0, 0, 10, 10]], references=[[0, 0, 10, 20]])["accuracy"]
    1.0
"""

_CITATION = """
@inproceedings{deng2021transvg,
  title={TransVG: End-to-End Visual Grounding with Transformers},
  author={Deng, Jiajun and Yang, Zhengyuan and Chen, Tianlang and Zhou, Wengang and Li, Houqiang},
  booktitle={ICCV},
  year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GroundingAccuracy(evaluate.Metric):
    """Acc@IoU and mean IoU of one box per referring expression."""

    def _info(self):
        box = datasets.Sequence(datasets.Value("float64"), length=4)
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": box, "references": box}),
        )

    def _compute(self, predictions, references, iou_thresholds=DEFAULT_THRESHOLDS):
        # np.asarray: older evaluate versions hand over datasets Column objects
        return compute_grounding_metrics(np.asarray(predictions), np.asarray(references), iou_thresholds)
