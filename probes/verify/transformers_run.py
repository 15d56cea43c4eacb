"""DiffusionGemma and Gemma 4 in transformers: load a checkpoint or build random weights, generate, time it.

Checkpoints load from a directory or the local Hugging Face cache only (``local_files_only``): nothing is
downloaded. Random weights build the released architectures (``dgprofile/data/diffusiongemma-26b-a4b.json``) at
the size ``dgprofile.probes.verify.plan`` chose. A measuring streamer records when each DiffusionGemma draft
(``put_draft``, after every denoise pass) and committed canvas, and each Gemma 4 token, reached the caller; it
only stores token ids and a timestamp, so decoding and edit distances happen after the request and cost it
nothing. On a scaled build, forward hooks mark each layer and the vocabulary-sized work (CUDA events on a GPU,
so no synchronisation is added) and ``dgprofile.probes.verify.timeline`` scales the marks to the whole model.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dgprofile.errors import UsageError
from dgprofile.probes.verify.plan import DeviceKind, SizePlan, sized_backbone
from dgprofile.probes.verify.timeline import scaled_times
from dgprofile.probes.verify.trace import GenerationTrace, Snapshot
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import ModelRole, ModelUnderTest, RequestFault
from dgprofile.specs.model_config import LayerType, ModelConfig

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
HF_LAYER_TYPES: dict[LayerType, str] = {"sliding": "sliding_attention", "global": "full_attention"}
DIFFUSION_EOS_IDS = (1, 106, 50)  # the released generation_config's eos_token_id
PAD_ID = 0
# Random prompts avoid the special ids at the bottom of Gemma's vocabulary (pad, eos, bos, turn markers).
FIRST_PLAIN_TOKEN_ID = 200
WARMUP_PROMPT_TOKENS = 16
WARMUP_AR_TOKENS = 4
NO_TOKENIZER = Unavailable("random weights: no tokenizer, so no text")
CPU_MEMORY = Unavailable("not measured on a CPU: there is no accelerator memory counter (see the process's RSS)")
MPS_MEMORY = Unavailable("not measured on MPS: it reports current allocations, not a peak")


class Recorder:
    """Where the hooks and the streamer put their marks; a new ``Marks`` per request."""

    def __init__(self) -> None:
        self.marks: Marks | None = None

    def mark(self, scale_after: float) -> None:
        if self.marks is not None:
            self.marks.mark(scale_after)


@dataclass
class LoadedModel:
    """One model ready to generate, with what the result file says about it."""

    role: ModelRole
    model: Any
    tokenizer: Any
    under_test: ModelUnderTest
    plan: SizePlan | None
    device: str
    eos_ids: tuple[int, ...]
    hooks: list[Any] = field(default_factory=list)
    recorder: Recorder = field(default_factory=Recorder)


@dataclass(frozen=True)
class PromptInput:
    """One request: chat text (checkpoints) or a length (random weights), the output budget and, for
    DiffusionGemma, fixed denoise passes per canvas (``None``: the checkpoint's adaptive stopping)."""

    text: str | None
    prompt_tokens: int
    max_new_tokens: int
    steps: int | None
    ignore_eos: bool
    seed: int


def device_kind(device: str) -> DeviceKind:
    """cuda, mps or cpu, from a torch device string."""
    return "cuda" if device.startswith("cuda") else ("mps" if device == "mps" else "cpu")


def free_memory_bytes(device: str) -> float:
    """Memory a model may take on ``device`` now: free device memory, Metal's working set less what is
    allocated, or available RAM."""
    kind = device_kind(device)
    if kind == "cuda":
        return float(torch.cuda.mem_get_info(torch.device(device))[0])
    if kind == "mps":
        return float(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    import psutil

    return float(psutil.virtual_memory().available)


def engine_version() -> str:
    """The versions that ran the models."""
    import transformers

    return f"transformers {transformers.__version__}, torch {torch.__version__}"


# --- loading ----------------------------------------------------------------------------------------------------


def _flag(role: ModelRole) -> str:
    return "--dg-model" if role == "diffusion" else "--ar-model"


def load_checkpoint(role: ModelRole, name: str, *, device: str, dtype: str) -> LoadedModel:
    """A checkpoint from a directory or the local Hugging Face cache (never downloaded); UsageError in one line
    when it is not there or is the other model."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, DiffusionGemmaForBlockDiffusion

    try:
        config = AutoConfig.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{_flag(role)} {name}: no checkpoint found (looked for a directory holding config.json, then for "
            f"that hub id in the local Hugging Face cache; dgprofile downloads nothing): download it first, e.g. "
            f"`hf download {name}`, or run with --random-weights ({type(exc).__name__})") from exc
    is_diffusion = config.model_type == "diffusion_gemma"
    if is_diffusion != (role == "diffusion"):
        expected = "DiffusionGemma" if role == "diffusion" else "an autoregressive Gemma 4"
        raise UsageError(f"{_flag(role)} {name}: a {config.model_type} checkpoint, not {expected}")
    model_class = DiffusionGemmaForBlockDiffusion if is_diffusion else AutoModelForCausalLM
    model = model_class.from_pretrained(name, local_files_only=True, dtype=DTYPES[dtype], device_map=device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    text_config = config.get_text_config()
    revision = getattr(config, "_commit_hash", None)
    under_test = ModelUnderTest(
        role=role, model_id=name,
        revision=revision if isinstance(revision, str) else Unavailable("a local directory: no hub revision"),
        source="checkpoint", architecture=type(model).__name__, dtype=dtype,
        layers_run=text_config.num_hidden_layers, layers_total=text_config.num_hidden_layers,
        vocab_run=text_config.vocab_size, vocab_total=text_config.vocab_size,
        scaling="none: the checkpoint as published")
    eos = model.generation_config.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if isinstance(eos, int) else ())
    return LoadedModel(role, model, tokenizer, under_test, None, device, eos_ids)


def _text_config_fields(config: ModelConfig, plan: SizePlan) -> dict[str, Any]:
    backbone = sized_backbone(plan)
    return dict(
        vocab_size=backbone.vocab_size, hidden_size=backbone.hidden_size,
        intermediate_size=backbone.intermediate_size, num_hidden_layers=backbone.num_layers,
        num_attention_heads=backbone.num_attention_heads,
        num_key_value_heads=backbone.sliding_attention.num_kv_heads,
        num_global_key_value_heads=backbone.global_attention.num_kv_heads,
        head_dim=backbone.sliding_attention.head_dim, global_head_dim=backbone.global_attention.head_dim,
        layer_types=[HF_LAYER_TYPES[t] for t in backbone.layer_types], sliding_window=backbone.sliding_window,
        num_experts=backbone.num_experts, top_k_experts=backbone.top_k_experts,
        moe_intermediate_size=backbone.moe_intermediate_size,
        final_logit_softcapping=backbone.final_logit_softcapping,
        max_position_embeddings=backbone.max_position_embeddings, tie_word_embeddings=backbone.tie_word_embeddings,
        pad_token_id=PAD_ID, eos_token_id=DIFFUSION_EOS_IDS[0], bos_token_id=2)


def _minimal_vision_config() -> Any:
    """Text requests never run the vision tower, yet DiffusionGemma always builds one: keep it tiny."""
    from transformers import Gemma4VisionConfig

    return Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              num_key_value_heads=2, head_dim=16, patch_size=8, pooling_kernel_size=2,
                              position_embedding_size=64)


def build_random(role: ModelRole, plan: SizePlan, *, device: str, dtype: str, seed: int) -> LoadedModel:
    """The released architecture (or the plan's miniature) with random weights, built on ``device``."""
    from transformers import (
        DiffusionGemmaConfig,
        DiffusionGemmaForBlockDiffusion,
        DiffusionGemmaGenerationConfig,
        DiffusionGemmaTextConfig,
        Gemma4ForCausalLM,
        Gemma4TextConfig,
    )
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    config = plan.config
    fields = _text_config_fields(config, plan)
    torch.manual_seed(seed)
    vocab = plan.vocab_run
    model: Any
    if role == "diffusion":
        settings = config.diffusion
        diffusion_config = DiffusionGemmaConfig(
            text_config=DiffusionGemmaTextConfig(**fields), vision_config=_minimal_vision_config(),
            canvas_length=settings.canvas_length, image_token_id=vocab - 1, boi_token_id=vocab - 2,
            eoi_token_id=vocab - 3)
        with torch.device(device):
            model = DiffusionGemmaForBlockDiffusion._from_config(diffusion_config, dtype=DTYPES[dtype])
        model.generation_config = DiffusionGemmaGenerationConfig(
            max_new_tokens=settings.canvas_length, max_denoising_steps=settings.max_denoising_steps,
            sampler_config=EntropyBoundSamplerConfig(entropy_bound=settings.entropy_bound), t_max=settings.t_max,
            t_min=settings.t_min, stability_threshold=settings.stability_threshold,
            confidence_threshold=settings.confidence_threshold, eos_token_id=list(DIFFUSION_EOS_IDS),
            pad_token_id=PAD_ID)
        architecture, model_id = "DiffusionGemmaForBlockDiffusion", config.hf_repo
    else:
        text_config = Gemma4TextConfig(**fields, enable_moe_block=True, attention_k_eq_v=True,
                                     hidden_size_per_layer_input=0, vocab_size_per_layer_input=vocab)
        with torch.device(device):
            model = Gemma4ForCausalLM._from_config(text_config, dtype=DTYPES[dtype])
        architecture, model_id = "Gemma4ForCausalLM", config.autoregressive_twin.hf_repo
    model.eval()
    backbone = config.backbone
    under_test = ModelUnderTest(
        role=role, model_id=f"{model_id} (random weights, {plan.size})",
        revision=Unavailable("random weights: no checkpoint"), source="random-weights", architecture=architecture,
        dtype=dtype, layers_run=len(plan.layer_types), layers_total=backbone.num_layers, vocab_run=vocab,
        vocab_total=backbone.vocab_size, scaling=plan.description)
    loaded = LoadedModel(role, model, None, under_test, plan, device, DIFFUSION_EOS_IDS)
    install_scaling_hooks(loaded)
    return loaded


def unload(loaded: LoadedModel) -> None:
    """Free the model's memory before the next one loads."""
    for hook in loaded.hooks:
        hook.remove()
    loaded.hooks.clear()
    loaded.model = None
    gc.collect()
    if device_kind(loaded.device) == "cuda":
        torch.cuda.empty_cache()


# --- timing -----------------------------------------------------------------------------------------------------


class Marks:
    """Moments of one request with the weight of the interval after each (see ``timeline``): wall-clock stamps,
    or CUDA events when hooks mark the GPU's work without waiting for it."""

    def __init__(self, device: str, use_events: bool) -> None:
        self.device = device
        self.use_events = use_events
        self.stamps: list[Any] = []
        self.scales: list[float] = []

    def mark(self, scale_after: float) -> int:
        """Record now; the interval until the next mark counts ``scale_after`` times."""
        if self.use_events:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.stamps.append(event)
        else:
            self.stamps.append(time.perf_counter())
        self.scales.append(scale_after)
        return len(self.stamps) - 1

    def scaled_seconds(self) -> list[float]:
        """Every mark's time since the first, on the whole model's clock."""
        if self.use_events:
            torch.cuda.synchronize(torch.device(self.device))
            first = self.stamps[0]
            raw = [first.elapsed_time(event) / 1000.0 for event in self.stamps]
        else:
            raw = [stamp - self.stamps[0] for stamp in self.stamps]
        return scaled_times(raw, self.scales)


def install_scaling_hooks(loaded: LoadedModel) -> None:
    """Forward hooks that mark each layer (counting as the layers it stands for) and the vocabulary-sized work
    (the self-conditioning product before the first layer, the LM head, softcap and sampler after the last)."""
    plan, recorder = loaded.plan, loaded.recorder
    if plan is None or not plan.scaled:
        return
    model = loaded.model
    layer_types = plan.layer_types

    def at(scale: float) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            recorder.mark(scale)

        return hook

    if loaded.role == "diffusion":
        stacks = [model.model.decoder.layers, model.model.encoder.language_model.layers]
        loaded.hooks.append(model.model.decoder.register_forward_pre_hook(at(plan.vocab_scale)))
        loaded.hooks.append(model.model.decoder.self_conditioning.register_forward_pre_hook(at(1.0)))
    else:
        stacks = [model.model.layers]
    for layers in stacks:
        for layer, layer_type in zip(layers, layer_types, strict=True):
            loaded.hooks.append(layer.register_forward_pre_hook(at(plan.layer_scale[layer_type])))
            loaded.hooks.append(layer.register_forward_hook(at(1.0)))
    loaded.hooks.append(model.lm_head.register_forward_pre_hook(at(plan.vocab_scale)))


class MeasuringStreamer:
    """A transformers streamer that keeps, for every draft, committed canvas or token, its mark and its ids.

    ``put`` gets the prompt first, then one committed canvas (DiffusionGemma) or token (Gemma 4) per call;
    ``put_draft`` gets DiffusionGemma's argmax canvas after every denoise pass. Works for batch size 1.
    """

    def __init__(self, role: ModelRole, marks: Marks) -> None:
        self.role = role
        self.marks = marks
        self.prompt_seen = False
        self.events: list[tuple[str, int, list[int]]] = []

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        kind = "commit" if self.role == "diffusion" else "token"
        self.events.append((kind, self.marks.mark(1.0), value.reshape(-1).tolist()))

    def put_draft(self, value: Any) -> None:
        self.events.append(("draft", self.marks.mark(1.0), value.reshape(-1).tolist()))

    def end(self) -> None:
        """Nothing to flush: the caller reads ``events``."""


# --- one request ------------------------------------------------------------------------------------------------


def _prompt_ids(loaded: LoadedModel, prompt: PromptInput) -> Any:
    if loaded.tokenizer is None or prompt.text is None:
        generator = torch.Generator().manual_seed(prompt.seed)
        vocab = loaded.under_test.vocab_run
        return torch.randint(FIRST_PLAIN_TOKEN_ID, vocab, (1, prompt.prompt_tokens), generator=generator)
    tokenizer = loaded.tokenizer
    if getattr(tokenizer, "chat_template", None):
        encoded = tokenizer.apply_chat_template([{"role": "user", "content": prompt.text}],
                                                add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return encoded["input_ids"]
    return tokenizer(prompt.text, return_tensors="pt")["input_ids"]


def _generate_kwargs(loaded: LoadedModel, prompt: PromptInput) -> dict[str, Any]:
    if loaded.role == "diffusion":
        kwargs: dict[str, Any] = {"max_new_tokens": prompt.max_new_tokens, "return_dict_in_generate": True}
        if prompt.steps is not None:
            # A stability window as long as the step budget can never be met (the history starts empty), so
            # exactly `steps` denoise passes run per canvas while the stopping rule still does its work.
            kwargs.update(max_denoising_steps=prompt.steps, stability_threshold=prompt.steps)
        if prompt.ignore_eos:
            kwargs["eos_token_id"] = None
        return kwargs
    kwargs = {"max_new_tokens": prompt.max_new_tokens, "do_sample": False}
    if prompt.ignore_eos:
        kwargs["min_new_tokens"] = prompt.max_new_tokens
    return kwargs


def _decode(loaded: LoadedModel, ids: list[int]) -> str | Unavailable:
    if loaded.tokenizer is None:
        return NO_TOKENIZER
    text: str = loaded.tokenizer.decode(ids, skip_special_tokens=True)
    return text


def _until_eos(ids: list[int], eos_ids: tuple[int, ...], limit: int) -> list[int]:
    """The tokens a user holds: up to the first end-of-sequence token (exclusive), pads dropped, at most
    ``limit`` (transformers returns whole canvases; an engine trims to the request's budget)."""
    held: list[int] = []
    for token in ids:
        if token in eos_ids:
            break
        if token != PAD_ID:
            held.append(token)
    return held[:limit]


def generate_one(loaded: LoadedModel, prompt: PromptInput) -> GenerationTrace:
    """Run one request and time it; an out-of-memory error becomes the request's fault."""
    recorder = loaded.recorder
    kind = device_kind(loaded.device)
    marks = Marks(loaded.device, use_events=kind == "cuda" and loaded.plan is not None and loaded.plan.scaled)
    recorder.marks = marks
    input_ids = _prompt_ids(loaded, prompt).to(loaded.device)
    eos_ids = () if prompt.ignore_eos else loaded.eos_ids
    streamer = MeasuringStreamer(loaded.role, marks)
    if kind == "cuda":
        torch.cuda.synchronize(torch.device(loaded.device))
        torch.cuda.reset_peak_memory_stats(torch.device(loaded.device))
    torch.manual_seed(prompt.seed)
    marks.mark(1.0)
    try:
        loaded.model.generate(input_ids, streamer=streamer, **_generate_kwargs(loaded, prompt))
        if kind == "cuda":
            torch.cuda.synchronize(torch.device(loaded.device))
        end = marks.mark(1.0)
    except torch.OutOfMemoryError as exc:
        if kind == "cuda":
            torch.cuda.empty_cache()
        return _failed(int(input_ids.shape[1]), RequestFault("out-of-memory", str(exc).splitlines()[0]))
    finally:
        recorder.marks = None
    seconds = marks.scaled_seconds()
    peak: float | Unavailable = (float(torch.cuda.max_memory_allocated(torch.device(loaded.device)))
                                 if kind == "cuda" else (MPS_MEMORY if kind == "mps" else CPU_MEMORY))
    trace = _diffusion_trace if loaded.role == "diffusion" else _autoregressive_trace
    return trace(loaded, streamer.events, seconds, prompt, eos_ids, int(input_ids.shape[1]), seconds[end], peak)


def _failed(prompt_tokens: int, fault: RequestFault) -> GenerationTrace:
    missing = Unavailable(f"the request failed: {fault.kind}")
    return GenerationTrace(prompt_tokens=prompt_tokens, output_tokens=missing, output_text=missing,
                           total_seconds=missing, snapshots=(), pass_seconds=(), denoise_passes=missing,
                           canvases=missing, tokens_per_forward=missing, peak_memory_bytes=missing, faults=(fault,))


def _diffusion_trace(loaded: LoadedModel, events: list[tuple[str, int, list[int]]], seconds: list[float],
                     prompt: PromptInput, eos_ids: tuple[int, ...], prompt_tokens: int, total: float,
                     peak: float | Unavailable) -> GenerationTrace:
    committed: list[int] = []
    snapshots: list[Snapshot] = []
    intervals: list[float] = []
    drafts = canvases = 0
    previous_draft: float | None = None
    for kind, mark, ids in events:
        if kind == "draft":
            drafts += 1
            if previous_draft is not None:
                intervals.append(seconds[mark] - previous_draft)
            previous_draft = seconds[mark]
            held = _until_eos(committed + ids, eos_ids, prompt.max_new_tokens)
        else:
            canvases += 1
            previous_draft = None
            committed += ids
            held = _until_eos(committed, eos_ids, prompt.max_new_tokens)
        snapshots.append(Snapshot(seconds[mark], "draft" if kind == "draft" else "commit", len(held),
                                  _decode(loaded, held)))
    final = _until_eos(committed, eos_ids, prompt.max_new_tokens)
    return GenerationTrace(
        prompt_tokens=prompt_tokens, output_tokens=len(final), output_text=_decode(loaded, final),
        total_seconds=total, snapshots=tuple(snapshots), pass_seconds=tuple(intervals), denoise_passes=drafts,
        canvases=canvases, tokens_per_forward=len(final) / drafts if drafts else Unavailable("no denoise pass ran"),
        peak_memory_bytes=peak)


def _autoregressive_trace(loaded: LoadedModel, events: list[tuple[str, int, list[int]]], seconds: list[float],
                          prompt: PromptInput, eos_ids: tuple[int, ...], prompt_tokens: int, total: float,
                          peak: float | Unavailable) -> GenerationTrace:
    tokens: list[int] = []
    snapshots: list[Snapshot] = []
    times: list[float] = []
    for _, mark, ids in events:
        tokens += ids
        held = _until_eos(tokens, eos_ids, prompt.max_new_tokens)
        times.append(seconds[mark])
        snapshots.append(Snapshot(seconds[mark], "token", len(held), _decode(loaded, held)))
    final = _until_eos(tokens, eos_ids, prompt.max_new_tokens)
    intervals = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    return GenerationTrace(
        prompt_tokens=prompt_tokens, output_tokens=len(final), output_text=_decode(loaded, final),
        total_seconds=total, snapshots=tuple(snapshots), pass_seconds=tuple(intervals),
        denoise_passes=Unavailable("autoregressive: no denoise passes"),
        canvases=Unavailable("autoregressive: no canvases"), tokens_per_forward=1.0, peak_memory_bytes=peak)


def warm_up(loaded: LoadedModel) -> None:
    """One short request first, so one-time costs (allocator, kernel selection, lazy initialisation) stay out of
    the measured ones."""
    canvas = loaded.model.config.canvas_length if loaded.role == "diffusion" else WARMUP_AR_TOKENS
    generate_one(loaded, PromptInput(text=None if loaded.tokenizer is None else "Hello", seed=0,
                                     prompt_tokens=WARMUP_PROMPT_TOKENS, max_new_tokens=canvas,
                                     steps=2 if loaded.role == "diffusion" else None, ignore_eos=True))
