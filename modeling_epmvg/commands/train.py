# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""Train EpmVG with cross-modal distillation from a frozen CLIP teacher.

Runs as a plain process or under `accelerate launch` (DDP on GPUs or CPU processes, multi-node via accelerate config
files). Examples:

    python scripts/train.py --dataset_name jxu124/refcoco --image_root coco/train2014 \
        --backbone_model_name_or_path facebook/detr-resnet-50 --text_model_name_or_path bert-base-uncased \
        --teacher_model_name_or_path openai/clip-vit-base-patch16 --output_dir out --num_train_epochs 90 \
        --lr_drop_epoch 60 --per_device_train_batch_size 8

    accelerate launch --multi_gpu --num_processes 8 scripts/train.py ...same arguments...
"""

import dataclasses
import difflib
import json
import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import transformers
from transformers import AutoProcessor, AutoTokenizer, CLIPModel, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import sort_checkpoints

from modeling_epmvg import EpmVGConfig, EpmVGForVisualGrounding
from modeling_epmvg.efficiency_epmvg import use_fast_cpu_allocator
from modeling_epmvg.loss_epmvg import center_to_corners
from modeling_epmvg.model_card_epmvg import write_model_card
from modeling_epmvg.teacher_epmvg import cache_teacher_embeddings
from modeling_epmvg.text_cache_epmvg import EpmVGTextStateCache
from modeling_epmvg.trainer_epmvg import EpmVGDistillationTrainer, EpmVGNonFiniteLossError, EpmVGTrainingArguments
from processing import EpmVGProcessor
from processing.data.augmentation import EpmVGAugmentation, EpmVGAugmentedDataset
from processing.data.collator import EpmVGDataCollator
from processing.data.dense_labels import EpmVGDenseLabeler
from processing.data.metrics import compute_grounding_metrics
from processing.data.sources import (
    GroundingSourceArguments,
    encode_images,
    load_grounding_dataset,
)
from processing.data.synthetic import CONFIG_NAME as SYNTHETIC_CONFIG_NAME
from processing.data.synthetic import load_synthetic_config

from .checkpoints import load_grounding_config
from .cli import EpmVGArgumentParser, run_command


logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Where the student, its processor and the teacher come from."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "An EpmVG checkpoint to fine-tune."})
    config_name: str | None = field(
        default=None, metadata={"help": "A config.json (or folder) for a new model; default: TransVG R-50."}
    )
    backbone_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained visual branch: a DETR checkpoint (timm or no_timm layout, e.g. "
            "facebook/detr-resnet-50) or an AutoBackbone one (ResNet, Swin, ConvNeXt)."
        },
    )
    backbone_revision: str | None = field(
        default=None,
        metadata={"help": "Revision of --backbone_model_name_or_path alone (e.g. no_timm); the text model's is main."},
    )
    text_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Pretrained BERT-family text encoder (also provides the tokenizer)."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer, when neither the checkpoint nor the text model provides it."}
    )
    teacher_model_name_or_path: str | None = field(
        default=None, metadata={"help": "CLIPModel teacher (its processor is loaded from the same place)."}
    )
    distillation_image_coefficient: float | None = field(
        default=None,
        metadata={"help": "Weight alpha of the image distillation term; 0 switches it off (default: the config's)."},
    )
    distillation_text_coefficient: float | None = field(
        default=None,
        metadata={"help": "Weight beta of the text distillation term; 0 switches it off (default: the config's)."},
    )
    distillation_loss: str | None = field(
        default=None,
        metadata={"help": "Distillation distance (default: the config's, cosine).", "choices": ["cosine", "l1"]},
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "JSON of other EpmVGConfig fields, e.g. '{\"dropout\": 0.0}'."}
    )
    text_config_overrides: str | None = field(
        default=None,
        metadata={"help": "JSON of text-encoder config fields, e.g. '{\"num_hidden_layers\": 2}' (first 2 layers)."},
    )
    freeze_text_encoder: bool = field(default=False, metadata={"help": "Keep the BERT encoder frozen."})


@dataclass(kw_only=True)
class DataArguments(GroundingSourceArguments):
    """
    Which data to train and evaluate on (any source `processing.data.sources.load_grounding_dataset` reads), read
    with the data flags epmvg-evaluate has too ([`GroundingSourceArguments`]).
    """

    dataset_name: str = field(metadata={"help": "Hub id, local folder, saved DatasetDict or split files."})
    train_split: str = field(default="train")
    eval_split: str | None = field(default="val")
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    augment: bool = field(default=True, metadata={"help": "TransVG's training augmentation."})
    cache_teacher_embeddings: bool = field(
        default=False, metadata={"help": "Compute teacher embeddings once (unaugmented images) instead of live."}
    )
    cache_text_hidden_states: bool = field(
        default=False,
        metadata={
            "help": "Run the frozen text encoder once per distinct expression instead of at every step (needs "
            "--freeze_text_encoder true and --augment false)."
        },
    )


DISTILLATION_FLAGS = ("distillation_image_coefficient", "distillation_text_coefficient", "distillation_loss")
CONFIG_FIELDS = frozenset(entry.name for entry in dataclasses.fields(EpmVGConfig)) | set(EpmVGConfig.attribute_map)


def json_flag(flag: str, value: str | None, example: str) -> dict:
    """The JSON object a flag holds (`{}` when not given); malformed JSON is refused with an example of valid input."""
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{flag} is not valid JSON ({error.msg} at character {error.pos}): {value!r}. Give a JSON object with "
            f"double-quoted keys, e.g. {flag} '{example}'."
        ) from error
    if not isinstance(parsed, dict):
        raise ValueError(f"{flag} must be a JSON object of field names and values, e.g. {flag} '{example}'.")
    return parsed


def config_overrides(model_args: ModelArguments) -> dict:
    """The EpmVGConfig fields set on the command line: `--config_overrides`, then the distillation flags given."""
    overrides = json_flag("--config_overrides", model_args.config_overrides, '{"fusion_layers": 3}')
    unknown = sorted(set(overrides) - CONFIG_FIELDS)
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(name, CONFIG_FIELDS, 1))
            else repr(name)
            for name in unknown
        ]
        raise ValueError(
            f"--config_overrides sets unknown EpmVGConfig fields: {', '.join(hints)}. The fields are documented in "
            "EpmVGConfig's docstring (e.g. d_model, fusion_layers, dropout, giou_loss_coefficient)."
        )
    flags = {name: getattr(model_args, name) for name in DISTILLATION_FLAGS}
    return overrides | {name: value for name, value in flags.items() if value is not None}


def with_overrides(config: EpmVGConfig, overrides: dict) -> EpmVGConfig:
    """A new config with `overrides` set, built (so validated) as a whole rather than changed field by field."""
    return EpmVGConfig.from_dict(config.to_dict() | overrides) if overrides else config


def build_model(model_args: ModelArguments) -> EpmVGForVisualGrounding:
    """The student: a checkpoint, pretrained parts (over `config_name`), or a fresh config; overrides applied."""
    overrides = config_overrides(model_args)
    if model_args.backbone_revision and not model_args.backbone_model_name_or_path:
        raise ValueError("--backbone_revision needs --backbone_model_name_or_path (the repo it is a revision of).")
    if model_args.model_name_or_path:
        # load_grounding_config refuses a BERT or DETR folder by name
        config = with_overrides(load_grounding_config(model_args.model_name_or_path), overrides)
        return EpmVGForVisualGrounding.from_pretrained(model_args.model_name_or_path, config=config)
    config = EpmVGConfig.from_pretrained(model_args.config_name) if model_args.config_name else EpmVGConfig()
    config = with_overrides(config, overrides)
    if model_args.text_model_name_or_path:
        # the config file sets everything but the pretrained parts, whose configs come with their weights
        fields = {name: getattr(config, name) for name in EpmVGConfig.__annotations__ if name != "text_config"}
        if model_args.backbone_model_name_or_path:
            fields.pop("backbone_config", None)
        text_overrides = json_flag(
            "--text_config_overrides", model_args.text_config_overrides, '{"num_hidden_layers": 2}'
        )
        return EpmVGForVisualGrounding.from_backbone_text_pretrained(
            model_args.backbone_model_name_or_path,
            model_args.text_model_name_or_path,
            text_config_kwargs=text_overrides,
            backbone_pretrained_kwargs={"revision": model_args.backbone_revision},
            **fields,
        )
    if model_args.backbone_model_name_or_path:
        raise ValueError(
            "A pretrained backbone needs a text encoder too: pass --text_model_name_or_path (e.g. bert-base-uncased)."
        )
    return EpmVGForVisualGrounding(config)


def build_processor(model_args: ModelArguments, config: EpmVGConfig) -> EpmVGProcessor:
    """The checkpoint's processor, or one made of the image processor and the text encoder's tokenizer."""
    if model_args.model_name_or_path and os.path.isfile(
        os.path.join(model_args.model_name_or_path, "processor_config.json")
    ):
        return AutoProcessor.from_pretrained(model_args.model_name_or_path)
    tokenizer_source = model_args.tokenizer_name_or_path or model_args.text_model_name_or_path
    if tokenizer_source is None:
        raise ValueError("No tokenizer: pass --tokenizer_name_or_path (or --text_model_name_or_path).")
    return EpmVGProcessor.from_model_config(config, AutoTokenizer.from_pretrained(tokenizer_source))


def compute_metrics(evaluation) -> dict:
    """Acc@0.5 and mean IoU in the canvas frame (the letterbox is a uniform scale, so IoUs equal pixel IoUs)."""
    predictions = evaluation.predictions
    predictions = np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)
    corners = [center_to_corners(torch.as_tensor(boxes)).numpy() for boxes in (predictions, evaluation.label_ids)]
    return compute_grounding_metrics(corners[0], corners[1])


def load_splits(data_args: DataArguments, seed: int) -> tuple:
    splits = [data_args.train_split] + ([data_args.eval_split] if data_args.eval_split else [])
    source_options = GroundingSourceArguments.load_kwargs(data_args)
    data = load_grounding_dataset(data_args.dataset_name, split=splits, **source_options)
    # the collator and the augmentation decode each image, so an undecodable file names its row
    data = {name: encode_images(split) for name, split in data.items()}
    train, evaluation = data[data_args.train_split], data[data_args.eval_split] if data_args.eval_split else None
    if data_args.max_train_samples:
        train = train.shuffle(seed=seed).select(range(min(data_args.max_train_samples, len(train))))
    if evaluation is not None and data_args.max_eval_samples:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation


def is_complete_checkpoint(checkpoint: str, world_size: int = 1) -> bool:
    """Whether every process of a `world_size` run finished writing `checkpoint`."""
    # process 0 writes trainer_state.json last, in place: a kill can leave it missing, empty or cut
    try:
        with open(os.path.join(checkpoint, TRAINER_STATE_NAME)) as handle:
            json.load(handle)
    except (OSError, ValueError):
        return False
    if world_size == 1:
        return True
    # the other processes write only their RNG state, unsynchronized (none at all with save_only_model)
    rng_states = [os.path.isfile(os.path.join(checkpoint, f"rng_state_{rank}.pth")) for rank in range(world_size)]
    return all(rng_states) or not any(rng_states)


def last_complete_checkpoint(output_dir: str, world_size: int = 1) -> str | None:
    """
    The newest `checkpoint-N` in `output_dir` that every process of a `world_size` run wrote to the end, skipping
    one cut off by a kill.
    """
    if not os.path.isdir(output_dir):
        return None
    for checkpoint in reversed(sort_checkpoints(output_dir)):
        if is_complete_checkpoint(checkpoint, world_size):
            return checkpoint
        logger.warning("Skipping the incomplete checkpoint %s (the run stopped while saving it).", checkpoint)
    return None


def resume_checkpoint(training_args: EpmVGTrainingArguments) -> str | None:
    """The checkpoint `--resume_from_checkpoint` names (`last`: the newest complete one, if any), checked up front."""
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint == "last":
        checkpoint = last_complete_checkpoint(training_args.output_dir, training_args.world_size)
        if checkpoint is None:
            logger.info("No complete checkpoint in %s yet: training starts from step 0.", training_args.output_dir)
    elif checkpoint is not None and not os.path.isfile(os.path.join(checkpoint, TRAINER_STATE_NAME)):
        raise FileNotFoundError(
            f"--resume_from_checkpoint {checkpoint!r} is not a checkpoint folder (no {TRAINER_STATE_NAME} in it): "
            f"give a checkpoint-N folder written by a run, or `last` for the newest one in --output_dir."
        )
    return checkpoint


def dense_labeler(data_args: DataArguments, config: EpmVGConfig) -> EpmVGDenseLabeler | None:
    """The dense auxiliary term's labeler, with the attribute classes of the (synthetic) dataset's annotations."""
    if not config.auxiliary_dense_loss_coefficient:
        return None
    if not os.path.isfile(os.path.join(data_args.dataset_name, SYNTHETIC_CONFIG_NAME)):
        raise ValueError(
            f"auxiliary_dense_loss_coefficient is non-zero, but {data_args.dataset_name} is not a saved synthetic "
            "benchmark: the dense term needs every object of a scene annotated. Set the coefficient to 0 on real data."
        )
    labeler = EpmVGDenseLabeler(
        load_synthetic_config(data_args.dataset_name).object_attributes, config.visual_grid_size
    )
    if labeler.attribute_classes != config.dense_attribute_classes:
        raise ValueError(
            f"The model's dense_attribute_classes {config.dense_attribute_classes} do not match the dataset's "
            f"attributes {labeler.attributes}: pretrain the visual branch on the same benchmark."
        )
    return labeler


def check_text_cache_flags(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Cached text states stand in for the text encoder only when it is frozen and reads the stored expressions."""
    if not data_args.cache_text_hidden_states:
        return
    if not model_args.freeze_text_encoder:
        raise ValueError(
            "--cache_text_hidden_states true needs --freeze_text_encoder true: a trained text encoder's states change "
            "at every step."
        )
    if data_args.augment:
        raise ValueError(
            "--cache_text_hidden_states true needs --augment false: the augmentation's flip rewrites left/right in "
            "the expressions, which the cached states would not follow."
        )


def text_state_cache(data_args: DataArguments, model, processor, *splits) -> EpmVGTextStateCache | None:
    """With --cache_text_hidden_states, the frozen text encoder's states of every expression of `splits`."""
    if not data_args.cache_text_hidden_states:
        return None
    texts = (text for split in splits if split is not None for text in split["expression"])
    cache = EpmVGTextStateCache.from_texts(texts, model, processor)
    logger.info(f"Cached the frozen text encoder's states of {len(cache)} distinct expressions.")
    return cache


def train(
    model_args: ModelArguments, data_args: DataArguments, training_args: EpmVGTrainingArguments
) -> EpmVGDistillationTrainer:
    """Builds everything, trains (resuming when asked), saves model + processor + model card; returns the trainer."""
    check_text_cache_flags(model_args, data_args)
    set_seed(training_args.seed)
    model = build_model(model_args)
    if model_args.freeze_text_encoder:
        model.freeze_text_encoder()
    processor = build_processor(model_args, model.config)
    processor.check_model_config(model.config)
    checkpoint = resume_checkpoint(training_args)
    train_dataset, eval_dataset = load_splits(data_args, training_args.seed)

    teacher = teacher_processor = None
    if model_args.teacher_model_name_or_path:
        teacher = CLIPModel.from_pretrained(model_args.teacher_model_name_or_path)
        teacher_processor = AutoProcessor.from_pretrained(model_args.teacher_model_name_or_path)
        if data_args.cache_teacher_embeddings:
            with training_args.main_process_first(desc="caching teacher embeddings"):
                train_dataset = cache_teacher_embeddings(train_dataset, teacher, teacher_processor)
                if eval_dataset is not None:
                    # the evaluation loss has the distillation terms too, and there are no live teacher inputs
                    eval_dataset = cache_teacher_embeddings(eval_dataset, teacher, teacher_processor)
            teacher_processor = None

    text_states = text_state_cache(data_args, model, processor, train_dataset, eval_dataset)
    if data_args.augment:
        # augmenting the training split only: the collator letterboxes the evaluation split centred
        augmentation = EpmVGAugmentation(size=model.config.image_size, seed=training_args.seed)
        train_dataset = EpmVGAugmentedDataset(train_dataset, augmentation)
    trainer = EpmVGDistillationTrainer(
        model=model,
        teacher_model=teacher,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=EpmVGDataCollator(
            processor,
            teacher_processor=teacher_processor,
            dense_labeler=dense_labeler(data_args, model.config),
            text_states=text_states,
        ),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(result.metrics)
    if eval_dataset is not None:
        metrics |= trainer.evaluate()
    if trainer.is_world_process_zero():
        # before save_model(), which pushes the folder with --push_to_hub: the Hub gets this card
        accuracies = {data_args.eval_split: metrics["eval_accuracy"]} if "eval_accuracy" in metrics else {}
        teacher_name = model_args.teacher_model_name_or_path
        write_model_card(
            training_args.output_dir,
            model,
            data_args.dataset_name,
            accuracies,
            teacher_name,
            repo_id=trainer.hub_model_id,
        )
    trainer.save_model()  # the processor too (processing_class)
    trainer.save_state()
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    return trainer


def parse_args(argv: list[str]) -> tuple[ModelArguments, DataArguments, EpmVGTrainingArguments]:
    parser = EpmVGArgumentParser((ModelArguments, DataArguments, EpmVGTrainingArguments), prog="epmvg-train")
    return parser.parse_args_into_dataclasses(args=argv)


def run(argv: list[str]) -> int:
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    # under gradient checkpointing memory comes first: glibc then returns freed memory as it does by default
    use_fast_cpu_allocator(training_args.device, memory_first=training_args.gradient_checkpointing)
    train(model_args, data_args, training_args)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point `epmvg-train`. Returns the exit status."""
    return run_command("epmvg-train", run, argv, expected=(EpmVGNonFiniteLossError,))


if __name__ == "__main__":
    sys.exit(main())
