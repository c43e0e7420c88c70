"""Launch lines for an offload placement: llama.cpp's and ik_llama.cpp's ``--n-cpu-moe`` or ``-ot`` with their
prefill flags (``--no-op-offload``, ``-rtr``), KTransformers' kt-kernel through SGLang, and vLLM's and SGLang's
generic ``--cpu-offload-gb`` for comparison."""

from __future__ import annotations

import math
from pathlib import Path

from moeplan.deploy.deployment import Deployment
from moeplan.deploy.engines import ENGINES, LLAMA_CPP_UBATCH
from moeplan.deploy.offload import (
    LLAMA_CPP_BATCH,
    Host,
    Placement,
    kt_method,
    kt_native,
    layerwise_threshold,
)
from moeplan.formats.schemes import local_checkpoint
from moeplan.model.spec import ArchSpec


def n_cpu_moe(engine_name: str, arch: ArchSpec, cpu_layers: int) -> tuple[int, str] | None:
    """The ``--n-cpu-moe`` that puts the experts of layers 0..``cpu_layers``-1 in RAM, and what it counts: llama.cpp
    layers from the first, ik_llama.cpp MoE layers from the last (the same number of expert layers, so the same
    memory); None for engines that keep every MoE layer's experts in RAM (KTransformers).  DeepSeek-V3's first 60
    layers hold 57 MoE layers: (60, "layers") and (57, "MoE layers")."""
    engine = ENGINES.get(engine_name)
    if engine is None or engine.experts_in_ram != "choose":
        return None
    if not engine.n_cpu_moe_from_last:
        return cpu_layers, "layers"
    return sum(1 for i in range(cpu_layers) if arch.is_moe_layer(i)), "MoE layers"


def layer_regex(layers: list[int]) -> str:
    """``blk\\.(0|1|2)\\.ffn_.*_exps\\.=CPU`` for llama.cpp's ``-ot``."""
    body = "|".join(str(i) for i in layers)
    return f"blk\\.({body})\\.ffn_.*_exps\\.=CPU"


def kt_command(d: Deployment, quant: str, host: Host, context: int, kv_dtype: str) -> str:
    """kt-kernel's launch through SGLang (its README's parameters): every routed expert in RAM
    (``--kt-num-gpu-experts 0``), the CPU kernels on the physical cores, one thread pool per socket, the weights the
    method reads (the checkpoint itself for FP8/BF16/RAWINT4, a GGUF folder for LLAMAFILE, converted ones for AMX),
    the chunked-prefill size and, for the native methods, the layer-wise prefill threshold moeplan assumed."""
    spec = d.spec
    hf = spec.hf_id or f"./{spec.shown_id}"  # the Hugging Face checkpoint: config, tokenizer, the GPU's weights
    method = kt_method(d.scheme)
    native = kt_native(d.scheme)
    notes = [] if spec.hf_id else [f"{hf}: {spec.name}'s Hugging Face checkpoint (config, tokenizer, GPU weights)"]
    if method == "LLAMAFILE":  # the folder holding the GGUF file read, else one named for the mix
        gguf = Path(spec.origin) if spec.origin.endswith(".gguf") else None
        weights = f"{gguf.parent}/" if gguf else f"{spec.shown_id}-{quant}-gguf/"
    elif native and d.scheme.name == (spec.native_quant or spec.weights_dtype):
        weights = hf
    elif native:  # a format the repository is not stored in: a local checkpoint of it, GPU side and CPU side
        hf, said = local_checkpoint(spec.shown_id, spec.hf_id or spec.name, d.scheme.name)
        weights, notes = hf, [said]
    else:
        weights = f"{spec.shown_id}-{method.lower()}/"
        notes.append(f"kt-kernel's convert_cpu_weights.py writes {weights} from {hf}")
    note = f"  # {'; '.join(notes)}" if notes else ""
    opts = (f" --kt-method {method} --kt-weight-path {weights} --kt-cpuinfer {host.cpu.cores}"
            f" --kt-threadpool-count {host.cpu.sockets} --kt-num-gpu-experts 0"
            f" --chunked-prefill-size {d.batched_tokens}")  # fmt: skip
    if native:
        opts += f" --kt-gpu-prefill-token-threshold {layerwise_threshold(d.kt_prefill_threshold)}"
    if kv_dtype.startswith(("fp8", "q8")):
        opts += " --kv-cache-dtype fp8_e4m3"
    return d.engine.command(hf, context, opts) + note


def commands(d: Deployment, quant: str, p: Placement, host: Host, context: int, kv_dtype: str) -> dict[str, str]:
    """Command lines ready to paste for this placement, from the engines' launch templates."""
    spec = d.spec
    model_file = spec.origin if spec.origin.endswith(".gguf") else f"{spec.shown_id}-{quant}.gguf"
    kv = f" -ctk {kv_dtype} -ctv {kv_dtype}" if kv_dtype not in ("f16", "fp16", "bf16") else ""
    split = f" -ts {','.join(['1'] * host.num_gpus)}" if host.num_gpus > 1 else ""
    ub = d.batched_tokens
    if ub != LLAMA_CPP_UBATCH:  # llama.cpp needs the logical batch at least as large as the ubatch
        split += f" -ub {ub} -b {max(ub, LLAMA_CPP_BATCH)}"
    if d.engine.name == "ktransformers":
        return {"ktransformers": kt_command(d, quant, host, context, kv_dtype)}
    if d.batch > 1:  # llama-server's -c is the whole cache, over -np slots of `context` tokens each
        split += f" -np {d.batch}"
    base = d.engine.command(model_file, context * max(1, d.batch), kv + split)
    threads = f" -t {host.cpu.cores}" if p.cpu_moe_layers else ""
    route = p.prefill_path
    if route.where == "cpu" and route.repacked:  # ik_llama.cpp: repacked RAM weights, computed on the CPU
        threads += " -rtr"
    elif p.cpu_moe_layers and route.where == "cpu" and not d.engine.run_time_repack:
        # llama.cpp hands every op of 32 tokens or more to the GPU, streaming RAM weights over PCIe, unless told not to
        threads += " --no-op-offload"
    flag = n_cpu_moe(d.engine.name, spec.arch, p.cpu_layers)
    assert flag is not None, "the llama.cpp engines place experts by --n-cpu-moe"
    out = {d.engine.name: f"{base} --n-cpu-moe {flag[0]}{threads}" if p.cpu_layers else base}
    if p.cpu_moe_layers:
        out[f"{d.engine.name} (-ot)"] = f'{base} -ot "{layer_regex(p.cpu_moe_layers)}"{threads}'
    if p.cpu_moe_layers and spec.hf_id:  # vLLM and SGLang load a Hugging Face checkpoint, not a GGUF file
        hf = spec.hf_id
        native = spec.native_quant or spec.weights_dtype
        gb = checkpoint_offload_gib(d, p, host.num_gpus)
        n = host.num_gpus
        short = gb * n * 2**30 > p.ram_capacity_bytes  # the checkpoint's offloaded share, all GPUs' together
        ram = (f"; needs {gb * n:,} GiB of RAM, more than this box's {p.ram_capacity_bytes / 2**30:,.1f} GiB usable"
               if short else "")  # fmt: skip
        out["vllm"] = (
            ENGINES["vllm"].command(hf, context, f" --cpu-offload-gb {gb}")
            + (f" --tensor-parallel-size {n}" if n > 1 else "")
            + f"  # the {native} checkpoint; offloads weights in general (not expert-aware) and streams them every"
            f" step: much slower{ram}"
        )
        out["sglang"] = (
            ENGINES["sglang"].command(hf, context, f" --cpu-offload-gb {gb}" + (f" --tp {n}" if n > 1 else ""))
            + f"  # same caveat as vLLM{ram}"
        )
    return out


def checkpoint_offload_gib(d: Deployment, p: Placement, num_gpus: int) -> int:
    """GiB a GPU that vLLM's and SGLang's ``--cpu-offload-gb`` must move to RAM for the checkpoint they load (its own
    format, not the GGUF mix the placement sized): its weights a GPU less the room the placement leaves them
    (usable memory less its KV cache and buffers).  Mixtral-8x7B's bf16 checkpoint (87 GiB) on one RTX 3060
    (11.6 GiB usable, ~1 GiB of cache and buffers at 8K): ~77 GiB, where the Q4_K_M plan's RAM experts are 18."""
    from moeplan.formats.schemes import model_scheme, weights_bytes_by_kind

    spec = d.spec
    stored = sum(weights_bytes_by_kind(spec.arch, model_scheme(spec, spec.native_quant or spec.weights_dtype)).values())
    room = p.vram_capacity_bytes - (p.vram_bytes_per_gpu - p.gpu_weights_bytes / num_gpus)
    return max(0, math.ceil((stored / num_gpus - room) / 2**30))
