# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Every source adapter on a tiny fixture written in that source's exact schema (issue 4, acceptance 1 and 5)."""

import fractions
import json
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, Features, Image, List, Value

from processing.data.schema import GROUNDING_FEATURES
from processing.data.sources import GroundingDataError, load_grounding_dataset

from .grounding_layouts import (
    LMMS_FEATURES,
    SENTENCE,
    TRANSVG_COCO_FOLDER,
    coco_name,
    jpeg_bytes,
    lmms_split,
    make_jxu124,
    make_refer,
    write_flickr30k_entities,
    write_image,
    write_lmms_repo,
    write_parquet_repo,
    write_transvg_unc,
)


def as_tuples(dataset):
    return [(row["expression"], [round(v, 3) for v in row["bbox"]], row["image_id"], row["ref_id"]) for row in dataset]


# ----------------------------------------------------------------------------------------------- lmms-lab/RefCOCO*

def test_lmms_lab_parquet_folder(tmp_path, caplog):
    root = write_lmms_repo(tmp_path / "RefCOCO")
    test_a = load_grounding_dataset(root, split="testA", cache_dir=str(tmp_path / "cache"))
    assert test_a.features == GROUNDING_FEATURES
    # one row per expression, COCO xywh -> xyxy, image id parsed from the REFER file name, size from the image
    assert as_tuples(test_a) == [
        ("man left", [2.5, 3.0, 12.5, 23.0], "1", "11"),
        ("guy on left", [2.5, 3.0, 12.5, 23.0], "1", "11"),
    ]
    assert (test_a[0]["width"], test_a[0]["height"], test_a[0]["split"]) == (40, 30, "testA")
    assert test_a[0]["image"].size == (40, 30)
    with caplog.at_level(logging.WARNING):
        everything = load_grounding_dataset(root, cache_dir=str(tmp_path / "cache"))
    assert sorted(everything) == ["test", "testA", "testB", "val"]
    assert "not the standard UNC/UMD split" in caplog.text  # lmms-lab RefCOCO val / test merge the Google refs


# ------------------------------------------------------------------------------------------------ jxu124/refcoco*

def test_jxu124_expands_and_renames_splits(tmp_path):
    root, coco = make_jxu124(tmp_path)
    splits = load_grounding_dataset(root, image_root=coco, cache_dir=str(tmp_path / "cache"))
    # Hub "test" of refcoco / refcoco+ is testA, "validation" is val
    assert sorted(splits) == ["testA", "testB", "train", "val"]
    test_a = splits["testA"]
    assert len(test_a) == 4  # 3 + 1 sentences: one row per expression
    assert as_tuples(test_a)[:3] == [(s, [1.0, 1.0, 6.0, 6.0], "3", "3") for s in "abc"]  # xyxy kept as is
    assert set(test_a["split"]) == {"testA"}
    assert test_a[0]["image"].size == (20, 20)
    # asking for testA / val by their REFER names finds the Hub splits; the flat train2014 folder works too
    assert len(load_grounding_dataset(root, split="testA", image_root=coco, cache_dir=str(tmp_path / "c"))) == 4
    flat = load_grounding_dataset(
        root, split="val", image_root=coco / "coco" / "train2014", cache_dir=str(tmp_path / "c")
    )
    assert as_tuples(flat) == [("car", [0.0, 0.0, 32.0, 16.0], "2", "2")]


def test_jxu124_needs_an_existing_image_root(tmp_path):
    root, _ = make_jxu124(tmp_path)
    with pytest.raises(ValueError, match="image_root="):
        load_grounding_dataset(root, split="train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_grounding_dataset(root, split="train", image_root=tmp_path / "nowhere", cache_dir=str(tmp_path / "cache"))


# ---------------------------------------------------------------------------- jxu124/ref*-benchmark (per image)

BENCHMARK_FEATURES = Features(
    {
        "ref_list": List(
            {
                "ann_info": {"bbox": List(Value("float64")), "id": Value("string"), "image_id": Value("int64")},
                "ref_info": {
                    "ref_id": Value("int64"),
                    "image_id": Value("int64"),
                    "sentences": List(SENTENCE),
                    "split": Value("string"),
                },
            }
        ),
        "image_info": {
            "file_name": Value("string"),
            "height": Value("int64"),
            "id": Value("int64"),
            "width": Value("int64"),
        },
        "image": Image(),
    }
)


def test_refclef_benchmark_per_image_rows(tmp_path):
    sentence = lambda s: {"raw": s, "sent": s, "sent_id": 0, "tokens": s.split()}  # noqa: E731
    refs = [
        {
            "ann_info": {"bbox": [1.0, 2.0, 3.0, 4.0], "id": "25_1", "image_id": 25},
            "ref_info": {
                "ref_id": 7,
                "image_id": 25,
                "sentences": [sentence("sky"), sentence("top")],
                "split": "test",
            },
        },
        {
            "ann_info": {"bbox": [0.0, 0.0, 10.0, 10.0], "id": "25_2", "image_id": 25},
            "ref_info": {"ref_id": 8, "image_id": 25, "sentences": [sentence("tree")], "split": "test"},
        },
    ]
    root = write_parquet_repo(
        tmp_path / "refclef-benchmark",
        {
            "refclef_berkeley_test": {
                "ref_list": [refs],
                "image_info": [{"file_name": "25.jpg", "height": 24, "id": 25, "width": 36}],
                "image": [{"bytes": jpeg_bytes(36, 24), "path": None}],
            }
        },
        BENCHMARK_FEATURES,
    )
    test = load_grounding_dataset(root, split="refclef_berkeley_test", cache_dir=str(tmp_path / "cache"))
    assert as_tuples(test) == [
        ("sky", [1.0, 2.0, 4.0, 6.0], "25", "7"),
        ("top", [1.0, 2.0, 4.0, 6.0], "25", "7"),
        ("tree", [0.0, 0.0, 10.0, 10.0], "25", "8"),
    ]


# --------------------------------------------------------------------------------------- REFER toolkit pickles + json


def test_refer_pickle_and_instances(tmp_path):
    folder, coco = make_refer(tmp_path)
    splits = load_grounding_dataset(folder, image_root=coco)
    assert sorted(splits) == ["testA", "testB", "train"]
    assert as_tuples(splits["train"]) == [
        ("left man", [2.5, 3.0, 12.5, 23.0], "1", "1"),  # instances.json xywh -> xyxy
        ("man", [2.5, 3.0, 12.5, 23.0], "1", "1"),
    ]
    assert splits["train"][0]["source"] == "refer:refcoco(unc)"
    assert as_tuples(load_grounding_dataset(folder, split="testB", image_root=coco)) == [
        ("bike", [4.0, 4.0, 8.0, 8.0], "2", "3")
    ]


def test_refer_pickle_with_code_needs_the_flag(tmp_path):
    folder, coco = make_refer(tmp_path, extra=fractions.Fraction(1, 3))  # a class reference: not plain data
    with pytest.raises(GroundingDataError, match="allow_pickle=True"):
        load_grounding_dataset(folder, split="train", image_root=coco)
    assert len(load_grounding_dataset(folder, split="train", image_root=coco, allow_pickle=True)) == 2


def test_refclef_referitgame_string_ids_and_combined_test_splits(tmp_path):
    folder = tmp_path / "refer" / "refclef"
    folder.mkdir(parents=True)
    images = tmp_path / "saiapr_tc-12"
    write_image(images / "25" / "images" / "25590.jpg", 48, 36)
    sentence = {"tokens": ["sky"], "raw": "Sky", "sent_id": 1, "sent": "sky"}
    refs = [
        {"ref_id": 1, "ann_id": "25590_1", "image_id": 25590, "split": "testAB", "sentences": [sentence]},
        {
            "ref_id": 2,
            "ann_id": "25590_2",
            "image_id": 25590,
            "split": "testB",
            "sentences": [dict(sentence, sent="tree")],
        },
    ]
    with open(folder / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    instances = {
        "images": [{"id": 25590, "file_name": "25/images/25590.jpg", "width": 48, "height": 36}],
        "annotations": [
            {"id": "25590_1", "image_id": 25590, "bbox": [0.0, 0.0, 48.0, 10.0]},
            {"id": "25590_2", "image_id": 25590, "bbox": [10.0, 12.0, 8.0, 20.0]},
        ],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    splits = load_grounding_dataset(folder, image_root=images)
    # REFER's rule: a testAB ref belongs to testA and to testB
    assert {name: split["expression"] for name, split in splits.items()} == {
        "testA": ["sky"],
        "testB": ["sky", "tree"],
    }
    assert as_tuples(splits["testB"])[1] == ("tree", [10.0, 12.0, 18.0, 32.0], "25590", "2")


# ---------------------------------------------------------------------------------------------- TransVG .pth files


def test_transvg_coco_family_truncates_like_transvg(tmp_path):
    folder = write_transvg_unc(tmp_path / "data" / "unc", data_root=tmp_path)
    coco = tmp_path / TRANSVG_COCO_FOLDER
    splits = load_grounding_dataset(folder, image_root=tmp_path)  # TransVG's data root: other/images/mscoco/...
    assert sorted(splits) == ["train", "trainval", "val"]
    # np.array(bbox, dtype=int) first (truncation), then x2 = x + w, y2 = y + h
    assert as_tuples(splits["train"]) == [
        ("left man", [2.0, 3.0, 12.0, 23.0], "COCO_train2014_000000000001", "11"),
        ("man", [2.0, 3.0, 12.0, 23.0], "COCO_train2014_000000000001", "11"),
    ]
    assert len(splits["trainval"]) == 3
    exact = load_grounding_dataset(folder / "unc_train.pth", split="train", image_root=coco, truncate_boxes=False)
    assert exact[0]["bbox"] == pytest.approx([2.7, 3.2, 13.3, 24.1], abs=1e-5)


def test_transvg_flickr_numpy_boxes_and_pickle_flag(tmp_path):
    folder = tmp_path / "flickr"
    folder.mkdir()
    images = tmp_path / "flickr30k_images"
    write_image(images / "1000.jpg", 50, 40)
    torch.save(
        [("1000.jpg", np.array([5, 6, 20, 30]), "a dog"), ("1000.jpg", np.array([0.0, 0.0, 10.9, 9.5]), "grass")],
        folder / "flickr_test.pth",
    )
    test = load_grounding_dataset(folder, split="test", image_root=images)  # numpy arrays load with weights_only=True
    assert as_tuples(test) == [
        ("a dog", [5.0, 6.0, 20.0, 30.0], "1000", ""),
        ("grass", [0.0, 0.0, 10.0, 9.0], "1000", ""),
    ]
    torch.save([("1000.jpg", [5, 6, 20, 30], "a dog", fractions.Fraction(1, 2))], folder / "flickr_val.pth")
    with pytest.raises(GroundingDataError, match="allow_pickle=True"):
        load_grounding_dataset(folder, split="val", image_root=images)
    assert len(load_grounding_dataset(folder, split="val", image_root=images, allow_pickle=True)) == 1


def test_transvg_referit_is_xyxy(tmp_path):
    folder = tmp_path / "referit"
    folder.mkdir()
    images = tmp_path / "images"
    write_image(images / "8756.jpg", 30, 30)
    torch.save([("8756.jpg", "8756_1.pth", [3, 4, 20, 25], "sky", [])], folder / "referit_test.pth")
    assert as_tuples(load_grounding_dataset(folder, split="test", image_root=images)) == [
        ("sky", [3.0, 4.0, 20.0, 25.0], "8756", "8756_1")
    ]


# ------------------------------------------------------------------------------------------- Flickr30k Entities raw

def test_flickr30k_entities_raw_files(tmp_path):
    images = tmp_path / "flickr30k_images"
    root = write_flickr30k_entities(tmp_path / "flickr30k_entities", images)
    test = load_grounding_dataset(root, split="test", image_root=images)
    # one row per phrase with a box; entity 18's two boxes merge into their union; 1-based inclusive -> [x-1, x2]
    assert as_tuples(test) == [
        ("Two children", [0.0, 1.0, 30.0, 25.0], "1000", "18"),
        ("a wall", [30.0, 0.0, 50.0, 40.0], "1000", "19"),
        ("Kids", [0.0, 1.0, 30.0, 25.0], "1000", "18"),
        ("the brick wall", [30.0, 0.0, 50.0, 40.0], "1000", "20"),
    ]


# ------------------------------------------------------------------------------------------------ unified + saved


def test_unified_dataset_saved_to_disk(tmp_path):
    image = write_image(tmp_path / "img" / "a.jpg", 16, 12)
    rows = {
        "image": [image],
        "width": [16],
        "height": [12],
        "bbox": [[1.0, 1.0, 5.0, 5.0]],
        "expression": ["x"],
        "image_id": ["a"],
        "ref_id": ["r"],
        "source": ["synthetic"],
        "split": ["train"],
        "expression_type": ["relation"],  # an extra column (the synthetic benchmark has some): kept
    }
    features = Features({**GROUNDING_FEATURES, "expression_type": Value("string")})
    DatasetDict(train=Dataset.from_dict(rows, features=features)).save_to_disk(tmp_path / "saved")
    loaded = load_grounding_dataset(tmp_path / "saved", split="train")
    assert as_tuples(loaded) == [("x", [1.0, 1.0, 5.0, 5.0], "a", "r")] and loaded[0]["source"] == "synthetic"
    assert loaded[0]["expression_type"] == "relation" and loaded[0]["image"].size == (16, 12)


# ------------------------------------------------------------------------------------ invalid rows (acceptance 5)


def refer_with_problems(tmp_path):
    folder, coco = make_refer(tmp_path)
    instances = json.loads((folder / "instances.json").read_text())
    instances["annotations"][2]["bbox"] = [4.0, 4.0, 0.0, 4.0]  # ref 3 (testB): zero-area box
    (folder / "instances.json").write_text(json.dumps(instances))
    return folder, coco


def test_zero_area_box_names_the_row(tmp_path):
    folder, coco = refer_with_problems(tmp_path)
    with pytest.raises(
        GroundingDataError, match=r"row 0: image_id='2', ref_id='3', expression='bike': .*zero or negative area"
    ):
        load_grounding_dataset(folder, split="testB", image_root=coco)


def test_missing_and_corrupt_images_name_the_row(tmp_path, caplog):
    folder, coco = make_refer(tmp_path)
    os.remove(coco / coco_name(2))  # refs 2 and 3
    with pytest.raises(
        GroundingDataError, match=r"ref_id='2', expression='car': image file not found: .*000000000002\.jpg"
    ):
        load_grounding_dataset(folder, split="testA", image_root=coco)
    (coco / coco_name(2)).write_bytes(b"this is not a jpeg")
    with pytest.raises(GroundingDataError, match=r"ref_id='3'.*cannot be read"):
        load_grounding_dataset(folder, split="testB", image_root=coco)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_grounding_dataset(folder, split="testB", image_root=tmp_path / "missing_folder")
    with caplog.at_level(logging.WARNING):
        splits = load_grounding_dataset(folder, image_root=coco, skip_invalid=True)
    assert {name: len(split) for name, split in splits.items()} == {"testA": 0, "testB": 0, "train": 2}
    assert "skipped 1 invalid row(s) of 1" in caplog.text


def test_box_outside_image_in_parquet_source(tmp_path, caplog):
    root = write_parquet_repo(
        tmp_path / "RefCOCOplus",
        {
            "testA": lmms_split(
                [
                    (11, 1, (40, 30), ["a"], [0.0, 0.0, 10.0, 10.0]),
                    (12, 1, (40, 30), ["b", "c"], [35.0, 0.0, 10.0, 10.0]),
                ]
            )
        },
        LMMS_FEATURES,
    )
    with pytest.raises(
        GroundingDataError,
        match=r"(?s)2 invalid row\(s\).*row 1: .*ref_id='12', expression='b'.*outside its 40x30 image",
    ):
        load_grounding_dataset(root, split="testA", cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        kept = load_grounding_dataset(root, split="testA", cache_dir=str(tmp_path / "cache"), skip_invalid=True)
    assert kept["expression"] == ["a"] and "skipped 2 invalid row(s) of 3" in caplog.text


def test_unknown_paths_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_grounding_dataset(tmp_path / "nothing_here", split="val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no supported grounding source"):
        load_grounding_dataset(tmp_path / "empty", split="val")
