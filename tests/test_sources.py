"""Every source adapter on a tiny fixture written in that source's exact schema (issue 4, acceptance 1 and 5)."""

import fractions
import io
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


def jpeg_bytes(width: int, height: int, colour=(200, 30, 30)) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def write_image(path, width: int, height: int) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(jpeg_bytes(width, height))
    return str(path)


def coco_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.jpg"


def write_parquet_repo(root, splits: dict[str, dict], features: Features) -> str:
    """A local folder laid out like a Hub parquet repo: data/<split>-00000-of-00001.parquet."""
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    for split, columns in splits.items():
        Dataset.from_dict(columns, features=features).to_parquet(
            os.path.join(root, "data", f"{split}-00000-of-00001.parquet")
        )
    return str(root)


def as_tuples(dataset):
    return [(row["expression"], [round(v, 3) for v in row["bbox"]], row["image_id"], row["ref_id"]) for row in dataset]


# ----------------------------------------------------------------------------------------------- lmms-lab/RefCOCO*

LMMS_FEATURES = Features(
    {
        "question_id": Value("string"),
        "image": Image(),
        "question": Value("string"),
        "answer": List(Value("string")),
        "segmentation": List(Value("float32")),
        "bbox": List(Value("float32")),
        "iscrowd": Value("int8"),
        "file_name": Value("string"),
    }
)


def lmms_split(refs):
    """refs: (ann_id, image_id, (w, h), answers, xywh)."""
    return {
        "question_id": [str(ann) for ann, *_ in refs],
        "image": [{"bytes": jpeg_bytes(*size), "path": None} for _, _, size, _, _ in refs],
        "question": ["Please provide the bounding box coordinate of the region this sentence describes: "] * len(refs),
        "answer": [answers for *_, answers, _ in refs],
        "segmentation": [[0.0, 0.0, 1.0, 1.0, 2.0, 0.0]] * len(refs),
        "bbox": [box for *_, box in refs],
        "iscrowd": [0] * len(refs),
        "file_name": [f"COCO_train2014_{image:012d}_{ann}.jpg" for ann, image, *_ in refs],
    }


def test_lmms_lab_parquet_folder(tmp_path, caplog):
    root = write_parquet_repo(
        tmp_path / "RefCOCO",
        {
            "testA": lmms_split([(11, 1, (40, 30), ["man left", "guy on left"], [2.5, 3.0, 10.0, 20.0])]),
            "testB": lmms_split([(12, 2, (32, 32), ["red car"], [0.0, 0.0, 32.0, 16.0])]),
            "val": lmms_split([(13, 3, (20, 20), ["dog"], [1.0, 1.0, 5.0, 5.0])]),
            "test": lmms_split([(14, 3, (20, 20), ["cat"], [1.0, 1.0, 5.0, 5.0])]),
        },
        LMMS_FEATURES,
    )
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

SENTENCE = {
    "raw": Value("string"),
    "sent": Value("string"),
    "sent_id": Value("int64"),
    "tokens": List(Value("string")),
}
JXU124_FEATURES = Features(
    {
        "ref_id": Value("int64"),
        "ann_id": Value("int64"),
        "image_id": Value("int64"),
        "category_id": Value("int64"),
        "split": Value("string"),
        "file_name": Value("string"),
        "sent_ids": List(Value("int64")),
        "sentences": List(SENTENCE),
        "captions": List(Value("string")),
        "bbox": List(Value("float64")),
        "raw_anns": Value("string"),
        "raw_image_info": Value("string"),
        "raw_sentences": Value("string"),
        "image_path": Value("string"),
        "global_image_id": Value("string"),
    }
)


def jxu124_split(refs, split_value):
    """refs: (ref_id, ann_id, image_id, (w, h), [sentences], xyxy)."""
    columns = {name: [] for name in JXU124_FEATURES}
    for ref_id, ann_id, image_id, (w, h), sentences, box in refs:
        sents = [
            {"raw": s.upper(), "sent": s, "sent_id": 100 * ref_id + i, "tokens": s.split()}
            for i, s in enumerate(sentences)
        ]
        xywh = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
        values = {
            "ref_id": ref_id,
            "ann_id": ann_id,
            "image_id": image_id,
            "category_id": 1,
            "split": split_value,
            "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
            "sent_ids": [s["sent_id"] for s in sents],
            "sentences": sents,
            "captions": list(sentences),
            "bbox": box,
            "raw_anns": repr({"id": ann_id, "image_id": image_id, "bbox": xywh, "category_id": 1}),
            "raw_image_info": json.dumps({"file_name": coco_name(image_id), "height": h, "width": w, "id": image_id}),
            "raw_sentences": repr(sents),
            "image_path": f"coco/train2014/{coco_name(image_id)}",
            "global_image_id": f"coco.{image_id}",
        }
        for name, value in values.items():
            columns[name].append(value)
    return columns


def make_jxu124(tmp_path):
    coco = tmp_path / "images"
    for image_id, size in [(1, (40, 30)), (2, (32, 32)), (3, (20, 20))]:
        write_image(coco / "coco" / "train2014" / coco_name(image_id), *size)
    root = write_parquet_repo(
        tmp_path / "refcoco",
        {
            "train": jxu124_split([(1, 11, 1, (40, 30), ["left man", "man"], [2.0, 3.0, 12.5, 23.0])], "train"),
            "validation": jxu124_split([(2, 12, 2, (32, 32), ["car"], [0.0, 0.0, 32.0, 16.0])], "val"),
            "test": jxu124_split(
                [
                    (3, 13, 3, (20, 20), ["a", "b", "c"], [1.0, 1.0, 6.0, 6.0]),
                    (4, 14, 1, (40, 30), ["d"], [0.0, 0.0, 4.0, 4.0]),
                ],
                "testA",
            ),
            "testB": jxu124_split([(5, 15, 2, (32, 32), ["e"], [4.0, 4.0, 8.0, 8.0])], "testB"),
        },
        JXU124_FEATURES,
    )
    return root, coco


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


def make_refer(tmp_path, refs_protocol=2, extra=None):
    folder = tmp_path / "refer" / "refcoco"
    folder.mkdir(parents=True)
    coco = tmp_path / "train2014"
    write_image(coco / coco_name(1), 40, 30)
    write_image(coco / coco_name(2), 32, 32)
    sentence = lambda i, s: {"tokens": s.split(), "raw": s.title(), "sent_id": i, "sent": s}  # noqa: E731
    refs = [
        {
            "ref_id": 1,
            "ann_id": 11,
            "image_id": 1,
            "category_id": 1,
            "split": "train",
            "file_name": "x_11.jpg",
            "sent_ids": [1, 2],
            "sentences": [sentence(1, "left man"), sentence(2, "man")],
        },
        {
            "ref_id": 2,
            "ann_id": 12,
            "image_id": 2,
            "category_id": 3,
            "split": "testA",
            "file_name": "x_12.jpg",
            "sent_ids": [3],
            "sentences": [sentence(3, "car")],
        },
        {
            "ref_id": 3,
            "ann_id": 13,
            "image_id": 2,
            "category_id": 3,
            "split": "testB",
            "file_name": "x_13.jpg",
            "sent_ids": [4],
            "sentences": [sentence(4, "bike")],
        },
    ]
    if extra is not None:
        refs[0]["extra"] = extra
    with open(folder / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=refs_protocol)
    instances = {
        "images": [
            {"id": 1, "file_name": coco_name(1), "width": 40, "height": 30},
            {"id": 2, "file_name": coco_name(2), "width": 32, "height": 32},
        ],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [2.5, 3.0, 10.0, 20.0], "area": 200.0, "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0.0, 0.0, 32.0, 16.0], "area": 512.0, "iscrowd": 0},
            {"id": 13, "image_id": 2, "category_id": 3, "bbox": [4.0, 4.0, 4.0, 4.0], "area": 16.0, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    return folder, coco


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
    folder = tmp_path / "data" / "unc"
    folder.mkdir(parents=True)
    coco = tmp_path / "other" / "images" / "mscoco" / "images" / "train2014"
    write_image(coco / coco_name(1), 40, 30)
    attri = [("r1", ["man"]), ("r2", ["none"]), ("r3", ["none"]), ("r4", ["left"])] + [
        (f"r{i}", ["none"]) for i in range(5, 9)
    ]
    torch.save(
        [
            (coco_name(1), "11.pth", [2.7, 3.2, 10.6, 20.9], "left man", attri),
            (coco_name(1), "11.pth", [2.7, 3.2, 10.6, 20.9], "man", attri),
        ],
        folder / "unc_train.pth",
    )
    torch.save([(coco_name(1), "12.pth", [0.0, 0.0, 8.0, 8.0], "thing", attri)], folder / "unc_val.pth")
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

FLICKR_XML = """<annotation>
  <filename>1000.jpg</filename>
  <size><width>50</width><height>40</height><depth>3</depth></size>
  <object><name>18</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
  <object><name>18</name><bndbox><xmin>21</xmin><ymin>5</ymin><xmax>30</xmax><ymax>25</ymax></bndbox></object>
  <object><name>19</name><name>20</name><bndbox><xmin>31</xmin><ymin>1</ymin><xmax>50</xmax><ymax>40</ymax></bndbox></object>
  <object><name>21</name><nobndbox>1</nobndbox><scene>1</scene></object>
</annotation>"""
FLICKR_SENTENCES = (
    "[/EN#18/people Two children] play near [/EN#19/other a wall] in [/EN#21/scene the park] .\n"
    "[/EN#18/people Kids] and [/EN#0/notvisual someone] by [/EN#20/other/bodyparts the brick wall] .\n"
)


def test_flickr30k_entities_raw_files(tmp_path):
    root = tmp_path / "flickr30k_entities"
    (root / "Annotations").mkdir(parents=True)
    (root / "Sentences").mkdir()
    (root / "Annotations" / "1000.xml").write_text(FLICKR_XML)
    (root / "Sentences" / "1000.txt").write_text(FLICKR_SENTENCES)
    (root / "test.txt").write_text("1000\n")
    images = tmp_path / "flickr30k_images"
    write_image(images / "1000.jpg", 50, 40)
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
