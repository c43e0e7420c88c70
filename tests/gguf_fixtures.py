"""Write small but real GGUF files (with the ``gguf`` package) for a spec, as llama.cpp names and types them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from moeplan.formats.gguf_mix import gguf_type_for
from moeplan.model.layers import model_tensors
from moeplan.model.spec import ArchSpec
from moeplan.model.tensors import Tensor
from moeplan.sources.gguf_file import FILE_TYPES

_NORMS = ["attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm"]


def gguf_names(arch: ArchSpec) -> list[tuple[str, Tensor, tuple[int, ...]]]:
    """(llama.cpp name, tensor, numpy shape) for every tensor of ``arch`` (plus DeepSeek's exp_probs_b)."""
    out: list[tuple[str, Tensor, tuple[int, ...]]] = []
    for t in model_tensors(arch):
        shape = (t.count, *t.shape) if t.count > 1 else t.shape
        if t.layer is None:
            name = t.role if t.role.endswith(".bias") else f"{t.role}.weight"
            out.append((name, t, shape))
            continue
        prefix = f"blk.{t.layer}."
        if t.role == "layer_norm":
            for i in range(t.count):
                out.append((prefix + _NORMS[i] + ".weight", Tensor(t.kind, _NORMS[i], t.shape, t.layer), t.shape))
            continue
        name = prefix + (t.role if t.role.endswith(".bias") else f"{t.role}.weight")
        out.append((name, t, shape))
        if t.role == "ffn_gate_inp" and arch.moe is not None and arch.moe.router_correction_bias:
            bias = Tensor("router", "exp_probs_b", (arch.moe.num_experts,), t.layer)
            out.append((prefix + "exp_probs_b.bias", bias, bias.shape))
    return out


def write_gguf(
    path: Path, arch_name: str, arch: ArchSpec, mix: str, extra_meta: dict[str, Any] | None = None, parts: int = 1
) -> list[Path]:
    """A GGUF of ``arch`` quantized as ``mix`` (tensor data zero), split into ``parts`` files."""
    import gguf

    ftype = next(k for k, v in FILE_TYPES.items() if v == mix)
    tensors = gguf_names(arch)
    chunks = [tensors[i::parts] for i in range(parts)] if parts > 1 else [tensors]
    paths = []
    for i, chunk in enumerate(chunks):
        p = path if parts == 1 else path.with_name(f"{path.stem}-{i + 1:05d}-of-{parts:05d}.gguf")
        w = gguf.GGUFWriter(str(p), arch_name)
        if i == 0:
            _metadata(w, arch_name, arch, ftype, extra_meta or {})
        if parts > 1:
            w.add_uint16("split.no", i)
            w.add_uint16("split.count", parts)
            w.add_int32("split.tensors.count", len(tensors))
        for name, t, shape in chunk:
            tname = gguf_type_for(mix, t, arch) if t.is_matrix else "F32"
            qtype = gguf.GGMLQuantizationType[tname]
            if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
                dtype = np.float32 if tname == "F32" else np.float16
                w.add_tensor(name, np.zeros(shape, dtype=dtype))
            else:
                block, size = gguf.GGML_QUANT_SIZES[qtype]
                raw = np.zeros((*shape[:-1], shape[-1] // block * size), dtype=np.uint8)
                w.add_tensor(name, raw, raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        paths.append(p)
    return paths


def _metadata(w: Any, a: str, arch: ArchSpec, ftype: int, extra: dict[str, Any]) -> None:
    att, moe = arch.attention, arch.moe
    w.add_name(f"tiny {a}")
    w.add_file_type(ftype)
    w.add_uint32(f"{a}.block_count", arch.num_layers + arch.mtp_layers)
    w.add_uint32(f"{a}.embedding_length", arch.hidden_size)
    w.add_uint32(f"{a}.context_length", arch.max_context or 4096)
    w.add_uint32(f"{a}.feed_forward_length", arch.mlp.intermediate_size if arch.mlp else 0)
    w.add_uint32(f"{a}.attention.head_count", att.num_heads)
    w.add_uint32(f"{a}.attention.head_count_kv", att.num_kv_heads if att.mla is None else 1)
    if att.mla is not None:
        m = att.mla
        w.add_uint32(f"{a}.attention.key_length", m.kv_lora_rank + m.qk_rope_head_dim)
        w.add_uint32(f"{a}.attention.value_length", m.kv_lora_rank)
        w.add_uint32(f"{a}.attention.key_length_mla", m.qk_nope_head_dim + m.qk_rope_head_dim)
        w.add_uint32(f"{a}.attention.value_length_mla", m.v_head_dim)
        w.add_uint32(f"{a}.attention.kv_lora_rank", m.kv_lora_rank)
        if m.q_lora_rank:
            w.add_uint32(f"{a}.attention.q_lora_rank", m.q_lora_rank)
        w.add_uint32(f"{a}.rope.dimension_count", m.qk_rope_head_dim)
        if att.indexer is not None:  # llama.cpp LLM_KV_ATTENTION_INDEXER_*
            w.add_uint32(f"{a}.attention.indexer.head_count", att.indexer.num_heads)
            w.add_uint32(f"{a}.attention.indexer.key_length", att.indexer.head_dim)
            w.add_uint32(f"{a}.attention.indexer.top_k", att.indexer.topk)
    else:
        w.add_uint32(f"{a}.attention.key_length", att.head_dim)
        w.add_uint32(f"{a}.attention.value_length", att.value_dim)
    if att.window_tokens:
        w.add_uint32(f"{a}.attention.sliding_window", att.window_tokens)
    if moe is not None:
        w.add_uint32(f"{a}.expert_count", moe.num_experts)
        w.add_uint32(f"{a}.expert_used_count", moe.top_k)
        w.add_uint32(f"{a}.expert_feed_forward_length", moe.expert_intermediate_size)
        if moe.num_shared_experts:
            w.add_uint32(f"{a}.expert_shared_count", moe.num_shared_experts)
        if moe.dense_layers:
            w.add_uint32(f"{a}.leading_dense_block_count", len(moe.dense_layers))
    if arch.mtp_layers:
        w.add_uint32(f"{a}.nextn_predict_layers", arch.mtp_layers)
    sm = arch.ssm
    if sm is not None:  # llama.cpp's converter (Mamba2Model / JambaModel / NemotronHModel set_gguf_parameters)
        w.add_uint32(f"{a}.ssm.conv_kernel", sm.d_conv)
        w.add_uint32(f"{a}.ssm.inner_size", sm.d_inner)
        w.add_uint32(f"{a}.ssm.state_size", sm.d_state)
        w.add_uint32(f"{a}.ssm.group_count", sm.n_groups)
        w.add_uint32(f"{a}.ssm.time_step_rank", sm.num_heads if sm.kind == "mamba2" else sm.dt_rank or 0)
    la = arch.linear_attention
    if la is not None and la.kind == "kda":  # llama.cpp's converter (conversion/kimi_linear.py)
        w.add_uint32(f"{a}.ssm.conv_kernel", la.conv_kernel)
        w.add_uint32(f"{a}.kda.head_dim", la.key_head_dim)
    elif la is not None:  # llama.cpp's converter (Qwen3NextModel.set_gguf_parameters)
        w.add_uint32(f"{a}.ssm.conv_kernel", la.conv_kernel)
        w.add_uint32(f"{a}.ssm.state_size", la.key_head_dim)
        w.add_uint32(f"{a}.ssm.group_count", la.num_key_heads)
        w.add_uint32(f"{a}.ssm.time_step_rank", la.num_value_heads)
        w.add_uint32(f"{a}.ssm.inner_size", la.num_value_heads * la.value_head_dim)
        pattern = att.layer_pattern
        if "F" in pattern:
            w.add_uint32(f"{a}.full_attention_interval", pattern.index("F") + 1)
    w.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(arch.vocab_size)])
    for key, value in extra.items():
        w.add_string(key, value) if isinstance(value, str) else w.add_uint32(key, value)
