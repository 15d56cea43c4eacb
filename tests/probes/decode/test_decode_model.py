"""The torch layers on a tiny configuration: KV writes, masks, routing coverage, grouped vs padded experts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from dgprofile.probes.decode.model import (  # noqa: E402
    attention,
    build_layer,
    causal_mask,
    decoder_layer,
    layer_state,
    mixture_of_experts,
    random_tensor,
    rms_norm,
    uniform_routing,
)
from dgprofile.specs.pass_cost import expected_distinct_experts  # noqa: E402


def state(tiny, layer_type, kind, *, concurrency=2, new=16, context=40, seed=0):
    return layer_state(tiny, layer_type, kind=kind, concurrency=concurrency, new=new, context=context,
                       dtype=torch.float32, device="cpu", generator=torch.Generator().manual_seed(seed))


def layer(tiny, layer_type):
    torch.manual_seed(1)
    return build_layer(tiny, layer_type, dtype=torch.float32, fp8=False, device="cpu")


def test_random_weights_are_never_zero_and_have_the_requested_shape():
    weight = random_tensor((3, 1 << 21), torch.bfloat16, "cpu")  # larger than one tiled block
    assert weight.shape == (3, 1 << 21)
    assert bool((weight != 0).float().mean() > 0.99)


def test_uniform_routing_reproduces_the_expected_coverage():
    generator = torch.Generator().manual_seed(3)
    for tokens in (1, 2, 4, 16):
        seen = [uniform_routing(tokens, 8, 2, "cpu", generator).distinct_experts for _ in range(400)]
        assert sum(seen) / len(seen) == pytest.approx(expected_distinct_experts(8, 2, tokens), rel=0.05)


def test_uniform_routing_picks_distinct_experts_and_lays_out_every_assignment_once():
    routing = uniform_routing(64, 8, 2, "cpu", torch.Generator().manual_seed(0))
    assert all(len(set(row.tolist())) == 2 for row in routing.expert_ids)
    assert routing.touched is None  # 128 assignments over 8 experts: all busy
    assert routing.padded_slot.unique().numel() == 128
    assert int(routing.padded_slot.max()) < 8 * routing.capacity
    assert routing.block_position.unique().numel() == 128
    assert torch.equal(routing.block_token[routing.block_position], routing.token_of_assignment)
    flat = routing.expert_ids.view(-1)
    experts_of_rows = routing.block_expert.long().repeat_interleave(routing.block_rows)[routing.block_position]
    assert torch.equal(experts_of_rows, flat)
    assert torch.equal(flat[routing.sorted_position.argsort()], flat.sort(stable=True).values)


def test_routing_of_one_token_marks_the_idle_experts():
    routing = uniform_routing(1, 8, 2, "cpu", torch.Generator().manual_seed(0))
    assert routing.touched.numel() == 2 and routing.capacity == 1 and routing.block_rows == 32
    assert int((routing.block_token >= 0).sum()) == 2


@pytest.mark.parametrize("kind", ["dg-commit", "prefill", "ar-step"])
def test_causal_passes_write_their_kv_after_the_cached_positions(tiny, kind):
    new = 1 if kind == "ar-step" else 16
    weights, st = layer(tiny, "global"), state(tiny, "global", kind, new=new)
    before = st.k_cache.clone()
    attention(tiny, torch.randn(2 * new, 64), weights, st, 2)
    assert torch.equal(st.k_cache[:, :, : st.cached], before[:, :, : st.cached])
    assert not torch.equal(st.k_cache[:, :, st.cached:], before[:, :, st.cached:])


def test_sliding_layers_keep_only_the_window(tiny):
    st = state(tiny, "sliding", "dg-denoise", context=40)
    assert st.cached == tiny.backbone.sliding_window
    assert st.k_cache.shape == (2, 2, 16 + 16, 16)
    assert st.mask is None  # bidirectional over the canvas, everything cached is visible


def test_causal_mask_is_windowed_on_sliding_layers(tiny):
    mask = causal_mask(tiny, "sliding", cached=16, context=40, new=4, group=1, device="cpu")
    # query 0 sits at position 40: it sees cached positions 25..39 (window 16 including itself) and itself
    assert mask[0].tolist() == [False] + [True] * 15 + [True, False, False, False]
    assert mask.shape == (4, 20)
    global_mask = causal_mask(tiny, "global", cached=40, context=40, new=4, group=2, device="cpu")
    assert global_mask.shape == (8, 44) and bool(global_mask[:, :40].all())


@pytest.mark.parametrize(("kind", "layer_type"), [("dg-denoise", "global"), ("dg-commit", "sliding"),
                                                  ("dg-commit", "global"), ("ar-step", "sliding")])
def test_folded_gqa_attention_matches_per_head_attention(tiny, kind, layer_type):
    new = 1 if kind == "ar-step" else 16
    weights, st = layer(tiny, layer_type), state(tiny, layer_type, kind, new=new)
    h = torch.randn(2 * new, 64)
    out = attention(tiny, h, weights, st, 2)
    attn = tiny.backbone.attention(layer_type)
    heads, dim, group = 4, attn.head_dim, 4 // attn.num_kv_heads
    q = rms_norm(weights.qkv(h)[:, : heads * dim].view(2, new, heads, dim), weights.q_norm).transpose(1, 2)
    k = st.k_cache.repeat_interleave(group, dim=1)
    v = st.v_cache.repeat_interleave(group, dim=1)
    mask = None if st.mask is None else st.mask[:new]
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
    expected = weights.o(reference.transpose(1, 2).reshape(2 * new, heads * dim))
    assert torch.allclose(out, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("tokens", [1, 3, 32])
def test_grouped_and_padded_experts_compute_the_same_mixture(tiny, tokens):
    weights = layer(tiny, "sliding")
    routing = uniform_routing(tokens, 8, 2, "cpu", torch.Generator().manual_seed(5))
    r = torch.randn(tokens, 64)
    assert torch.allclose(mixture_of_experts(tiny, r, weights, routing, "grouped"),
                          mixture_of_experts(tiny, r, weights, routing, "padded"), atol=1e-5, rtol=1e-4)


def test_mixture_of_experts_matches_a_per_token_reference(tiny):
    weights = layer(tiny, "sliding")
    routing = uniform_routing(6, 8, 2, "cpu", torch.Generator().manual_seed(9))
    r = torch.randn(6, 64)
    out = mixture_of_experts(tiny, r, weights, routing, "grouped")
    probs = F.linear(rms_norm(r, weights.router_norm), weights.router).softmax(-1)
    top = probs.topk(2, dim=-1).values
    gates = top / top.sum(-1, keepdim=True)
    x = rms_norm(r, weights.pre_ff_norm_2)
    experts = weights.experts
    for token in range(6):
        expected = torch.zeros(64)
        for slot, expert in enumerate(routing.expert_ids[token].tolist()):
            gate, up = (experts.gate_up[expert] @ x[token]).chunk(2)
            y = experts.down[expert] @ (F.gelu(gate, approximate="tanh") * up)
            expected += y * gates[token, slot] * weights.per_expert_scale[expert]
        assert torch.allclose(out[token], expected, atol=1e-5, rtol=1e-4)


def test_a_decoder_layer_keeps_the_shape_and_stays_finite(tiny):
    for layer_type in ("sliding", "global"):
        out = decoder_layer(tiny, torch.randn(32, 64), layer(tiny, layer_type),
                            state(tiny, layer_type, "dg-denoise"), 2)
        assert out.shape == (32, 64) and bool(torch.isfinite(out).all())


def test_k_eq_v_layers_have_no_value_projection(tiny):
    global_layer = layer(tiny, "global")
    assert global_layer.qkv.weight.shape == (4 * 32 + 32, 64)
    assert layer(tiny, "sliding").qkv.weight.shape == (4 * 16 + 2 * 2 * 16, 64)


@pytest.mark.parametrize("kind", ["dg-denoise", "dg-commit", "prefill"])
@pytest.mark.parametrize("layer_type", ["sliding", "global"])
def test_matmul_attention_matches_sdpa(tiny, kind, layer_type):
    from dataclasses import replace

    weights = layer(tiny, layer_type)
    sdpa_state = state(tiny, layer_type, kind, context=0 if kind == "prefill" else 40)
    matmul_state = replace(sdpa_state, k_cache=sdpa_state.k_cache.clone(), v_cache=sdpa_state.v_cache.clone(),
                           attention_method="matmul")
    h = torch.randn(32, tiny.backbone.hidden_size)
    expected = attention(tiny, h, weights, sdpa_state, 2)
    got = attention(tiny, h, weights, matmul_state, 2)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(matmul_state.k_cache, sdpa_state.k_cache)


@pytest.mark.parametrize("method", ["grouped", "padded"])
def test_expert_rows_gathered_by_position_are_the_assignment_outputs(method):
    from dgprofile.probes.decode.model import Experts, run_expert_rows, run_experts

    torch.manual_seed(0)
    experts = Experts(8, 32, 16, dtype=torch.float32, fp8=False, device="cpu")
    routing = uniform_routing(5, 8, 2, "cpu", torch.Generator().manual_seed(2))  # some experts idle
    x = torch.randn(5, 32)
    rows, positions = run_expert_rows(method, experts, x, routing)
    assert torch.equal(rows[positions], run_experts(method, experts, x, routing))
    for assignment, expert in enumerate(routing.expert_ids.view(-1).tolist()):
        token = assignment // 2
        gate, up = (experts.gate_up[expert] @ x[token]).chunk(2)
        expected = experts.down[expert] @ (F.gelu(gate, approximate="tanh") * up)
        assert torch.allclose(rows[positions[assignment]], expected, atol=1e-5)


def test_check_attention_rejects_a_wrong_method(tiny, monkeypatch):
    from dgprofile.probes.decode import checks, model

    original = model.attention

    def off_by_a_bit(config, h, layer, state, concurrency):
        out = original(config, h, layer, state, concurrency)
        return out * 1.1 if state.attention_method == "matmul" else out

    monkeypatch.setattr(checks, "attention", off_by_a_bit)
    assert "off by" in checks.check_attention("cpu", torch.float32, "matmul", tiny)
    monkeypatch.setattr(checks, "attention", original)
    assert checks.check_attention("cpu", torch.float32, "matmul", tiny) == ""


def test_matmul_attention_over_thousands_of_bf16_keys_stays_as_close_to_float64_as_sdpa():
    # Unit-RMS q and k at head dim 512 give scores of tens, where bf16 rounding alone put the softmax 3.6% off.
    from dgprofile.probes.decode.model import matmul_attention

    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, rows, 512, generator=generator) for rows in (64, 2048, 2048))
    reference = torch.softmax(q.double() @ k.double().transpose(-2, -1), dim=-1) @ v.double()
    q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
    got = matmul_attention(q, k, v, None)
    sdpa = F.scaled_dot_product_attention(q, k, v, scale=1.0)

    def error(x):
        return float((x.double() - reference).norm() / reference.norm())

    assert got.dtype == torch.bfloat16
    assert error(got) < 1.5e-2 and error(got) < 1.1 * error(sdpa)


def test_matmul_attention_masks_in_float32():
    from dgprofile.probes.decode.model import attention_scores, matmul_attention

    q, k, v = (torch.randn(1, 1, 6, 8).bfloat16() for _ in range(3))
    assert attention_scores(q, k).dtype == torch.float32
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, scale=1.0)
    assert torch.allclose(matmul_attention(q, k, v, mask).float(), expected, atol=2e-2)


def test_an_fp8_linear_takes_rows_its_producer_quantised_as_it_quantises_them_itself():
    from dgprofile.probes.decode.model import Linear, QuantizedRows, quantize_rows, select_rows

    torch.manual_seed(0)
    fp8 = Linear(32, 64, dtype=torch.bfloat16, fp8=True, device="cpu")
    x = torch.randn(5, 64, dtype=torch.bfloat16) * torch.logspace(-2, 2, 5).view(-1, 1).to(torch.bfloat16)
    quantized = quantize_rows(x)
    assert torch.equal(fp8(quantized), fp8(x))
    rows = torch.tensor([4, 0])
    picked = select_rows(quantized, rows)
    assert isinstance(picked, QuantizedRows) and torch.equal(picked.scales, quantized.scales[rows])
    assert torch.equal(fp8(picked), fp8(x)[rows])
    with pytest.raises(TypeError, match="fp8-quantised"):
        Linear(32, 64, dtype=torch.bfloat16, fp8=False, device="cpu")(quantized)
