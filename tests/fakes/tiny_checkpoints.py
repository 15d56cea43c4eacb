"""Tiny random DiffusionGemma and Gemma 4 checkpoints, saved the way real ones are, for `verify`'s tests.

Both load through the same transformers path as the released checkpoints (``from_pretrained`` with
``local_files_only``) and are served by `transformers serve`. What a servable tiny checkpoint needs: a small
per-layer vocabulary, ``enable_moe_block`` on the autoregressive config, special-token ids inside the tiny
vocabulary, ``global_head_dim`` and ``num_global_key_value_heads`` written back to config.json (transformers drops
them), DiffusionGemma's generation config with ``return_dict_in_generate=False`` (the server's default output
type), and a fast tokenizer declaring ``PreTrainedTokenizerFast`` as its processor class, with a chat template in
Gemma 4's turn format that decodes back to the exact prompt text.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

TURN_START, TURN_END = "<|turn>", "<turn|>"
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", TURN_START, TURN_END)
VOCAB_SIZE = 512
CANVAS = 32
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}" + TURN_START + "{{ message['role'] if message['role'] != "
    "'assistant' else 'model' }}\n{{ message['content'] }}" + TURN_END + "\n{% endfor %}"
    "{% if add_generation_prompt %}" + TURN_START + "model\n{% endif %}")


def _tokenizer(directory: Path) -> None:
    """A character-level WordLevel tokenizer: every printable ASCII character and the newline is a token, so
    any ASCII text (prompts, chat turns) decodes back exactly."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = [*SPECIAL_TOKENS, "▁", "\n", *(c for c in string.printable if c not in " \n\t\r\x0b\x0c")]
    pieces += [f"<unused{i}>" for i in range(VOCAB_SIZE - len(pieces))]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False),
        pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>",
                                   bos_token="<bos>", unk_token="<unk>",
                                   additional_special_tokens=[TURN_START, TURN_END])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["processor_class"] = "PreTrainedTokenizerFast"  # servers would build Gemma4Processor otherwise
    config_path.write_text(json.dumps(config, indent=2))


def _text_fields() -> dict[str, object]:
    return dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, num_global_key_value_heads=1, head_dim=32,
                global_head_dim=64, layer_types=["sliding_attention", "full_attention"], sliding_window=16,
                num_experts=8, top_k_experts=2, moe_intermediate_size=32, final_logit_softcapping=30.0,
                max_position_embeddings=4096, pad_token_id=0, eos_token_id=1, bos_token_id=2)


def _restore_global_attention_fields(directory: Path, text_key: str | None) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    section = config[text_key] if text_key else config
    section.setdefault("global_head_dim", 64)
    section.setdefault("num_global_key_value_heads", 1)
    path.write_text(json.dumps(config, indent=2))


def build_diffusion_checkpoint(directory: Path) -> Path:
    """DiffusionGemma: two layers (sliding + global), 8 experts top-2, vocabulary 512, a 32-token canvas."""
    import torch
    from transformers import (
        DiffusionGemmaConfig,
        DiffusionGemmaForBlockDiffusion,
        DiffusionGemmaGenerationConfig,
        DiffusionGemmaTextConfig,
        Gemma4VisionConfig,
    )
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    torch.manual_seed(0)
    vision = Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=16, patch_size=8, pooling_kernel_size=2,
                                position_embedding_size=64)
    config = DiffusionGemmaConfig(text_config=DiffusionGemmaTextConfig(**_text_fields()), vision_config=vision,
                                  canvas_length=CANVAS, image_token_id=VOCAB_SIZE - 1, boi_token_id=VOCAB_SIZE - 2,
                                  eoi_token_id=VOCAB_SIZE - 3)
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    model.generation_config = DiffusionGemmaGenerationConfig(
        max_new_tokens=CANVAS, max_denoising_steps=8, sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1),
        t_max=0.8, t_min=0.4, stability_threshold=1, confidence_threshold=0.005, eos_token_id=[1], pad_token_id=0,
        return_dict_in_generate=False)
    model.save_pretrained(directory)
    _restore_global_attention_fields(directory, "text_config")
    _tokenizer(directory)
    return directory


def build_autoregressive_checkpoint(directory: Path) -> Path:
    """Gemma 4 (text): the same backbone shapes, MoE block on, a small per-layer vocabulary."""
    import torch
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    torch.manual_seed(1)
    config = Gemma4TextConfig(**_text_fields(), enable_moe_block=True, attention_k_eq_v=True,
                              hidden_size_per_layer_input=0, vocab_size_per_layer_input=VOCAB_SIZE)
    model = Gemma4ForCausalLM(config).eval()
    model.generation_config.eos_token_id = 1
    model.generation_config.pad_token_id = 0
    model.save_pretrained(directory)
    _restore_global_attention_fields(directory, None)
    _tokenizer(directory)
    return directory
