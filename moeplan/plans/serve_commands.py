"""Launch lines of planned deployments: each engine's serve command with its parallel, expert all-to-all, EPLB,
two-batch-overlap, chunk and disaggregation flags, and how it spans hosts (the command itself is one host's).

Data-parallel attention across hosts dispatches experts with DeepEP on NVIDIA and MoRI on AMD; SGLang's
``--chunked-prefill-size`` is scaled to its data-parallel workers (it divides it over them); EPLB carries the
redundant experts moeplan charges.  DeepSeek-V3 on 32 H100s with SGLang: ``--tp 32 --ep 32 --dp 32
--enable-dp-attention --moe-dense-tp-size 1 --chunked-prefill-size 262144 --moe-a2a-backend deepep
--enable-two-batch-overlap``.
"""

from __future__ import annotations

from typing import Any

from moeplan.deploy.comm import nvlink_domain
from moeplan.deploy.deployment import EPLB_REDUNDANT, Deployment, dp_launch_chunk
from moeplan.deploy.engines import engine
from moeplan.formats.schemes import shipped_layout
from moeplan.hardware.gpus import GpuSpec

HOST_GPUS, RACK_HOST_GPUS = 8, 4
"""GPUs of one host: 8 in HGX/MI300-class servers, 4 in a GB200/GB300 NVL72 compute tray."""
MULTI_HOST = {
    "sglang": "on each of the {nodes} hosts add --nnodes {nodes} --node-rank R --dist-init-addr HOST0:PORT",
    "vllm": "over {nodes} hosts: a Ray cluster spanning them first (--distributed-executor-backend ray)",
    "tensorrt-llm": "over {nodes} hosts: launch under mpirun or srun with {n} ranks (trtllm-llmapi-launch)",
    "atom": "over {nodes} hosts: ATOM's multi-node launch (one process group across them)",
}
"""How each engine's command spans several hosts (the command itself is one host's)."""
MULTI_HOST_DP = {
    "vllm": "over {nodes} hosts: --data-parallel-backend ray on a Ray cluster spanning them, or "
    "--data-parallel-size-local {local} --data-parallel-address HOST0 (with --data-parallel-start-rank and "
    "--headless on the others) per host",
}
"""The same under data-parallel attention, where an engine spreads its data-parallel ranks otherwise."""
_NIXL = """ --kv-transfer-config '{{"kv_connector":"NixlConnector","kv_role":"kv_both"}}'"""
DISAGG = {"sglang": " --disaggregation-mode {role}", "vllm": _NIXL}
"""The flag that makes an instance a prefill or decode server (TensorRT-LLM: cache_transceiver_config in its YAML).
ATOM's prefill/decode split runs over MORI-IO or Mooncake with flags moeplan has not confirmed: no split for it."""
SPLIT_ENGINES = ("sglang", "vllm", "tensorrt-llm")
"""Engines whose prefill/decode split moeplan plans and launches."""


A2A_FLAGS = {
    "sglang": (" --moe-a2a-backend deepep",) * 3,
    "vllm": (" --all2all-backend deepep_high_throughput", " --all2all-backend deepep_high_throughput",
             " --all2all-backend deepep_low_latency"),
}  # fmt: skip
"""The flag that makes an engine dispatch experts with an all-to-all across nodes, as the serving model prices a
data-parallel-attention group wider than one NVLink domain (:func:`moeplan.deploy.comm.expert_all_to_all_s`):
aggregated, prefill and decode instances (vLLM's DeepEP low-latency kernels for decode, its high-throughput ones
where prompts are batched).  TensorRT-LLM picks its all-to-all itself."""


def overlaps(eng_name: str, gpu: GpuSpec, n: int, dp_attention: bool) -> bool:
    """Whether a planned data-parallel-attention group of ``n`` GPUs runs two-batch overlap: where it spans hosts
    (its expert all-to-all crosses InfiniBand) on an NVIDIA GPU and an engine with the flag, as LMSYS's and
    DeepSeek's wide-EP deployments do (:meth:`~moeplan.deploy.speed.SpeedModel.exposed_comm_s`)."""
    deepep = gpu.vendor == "nvidia"  # the engines overlap over DeepEP only (vLLM asserts it; MoRI on AMD has none)
    return dp_attention and deepep and bool(engine(eng_name).batch_overlap_flag) and n > nvlink_domain(gpu)


def wide_settings(eng_name: str, gpu: GpuSpec, n: int, dp_attention: bool) -> dict[str, Any]:
    """The request settings a planned layout of ``n`` GPUs launches with: two-batch overlap where it spans hosts
    (:func:`overlaps`), and under data-parallel attention the chunk an engine that divides it needs
    (:func:`~moeplan.deploy.deployment.dp_launch_chunk`)."""
    chunk = dp_launch_chunk(engine(eng_name), gpu, n) if dp_attention else None
    return {"batch_overlap": overlaps(eng_name, gpu, n, dp_attention), "ubatch": chunk}


A2A_FLAGS_AMD = {"sglang": (" --moe-a2a-backend mori",) * 3, "vllm": (" --all2all-backend mori",) * 3}
"""The same on AMD Instinct, whose wide-EP path is MoRI (DeepEP is NVIDIA's): InferenceX's MI355X recipes launch
SGLang with ``--moe-a2a-backend mori``; vLLM registers it as ``--all2all-backend mori``."""


def a2a_flag(d: Deployment, role: str | None = None) -> str:
    """The expert all-to-all flag ``d`` needs, or ``""`` where its group stays inside one NVLink domain."""
    lay = d.layout
    if d.gpu is None or not lay.dp_attention or lay.ep <= 1 or lay.tp <= nvlink_domain(d.gpu):
        return ""
    flags = (A2A_FLAGS_AMD if d.gpu.vendor == "amd" else A2A_FLAGS).get(d.engine.name)
    return flags[(None, "prefill", "decode").index(role)] if flags else ""


def eplb_flags(d: Deployment) -> str:
    """EPLB with the redundant experts moeplan charges (:data:`EPLB_REDUNDANT` more: 32 for DeepSeek-V3's 256, as
    InferenceX's SGLang recipes set them); the engines default to none."""
    if not d.layout.eplb or d.spec.arch.moe is None:
        return ""
    extra = round(d.spec.arch.moe.num_experts * EPLB_REDUNDANT)
    if d.engine.name == "sglang":
        return f" --enable-eplb --ep-num-redundant-experts {extra}"
    return f""" --enable-eplb --eplb-config '{{"num_redundant_experts": {extra}}}'"""


REMOTE_CODE = {
    "vllm": " --trust-remote-code",
    "sglang": " --trust-remote-code",
    "atom": " --trust-remote-code",
    "tensorrt-llm": " --trust_remote_code",
}
"""The flag that lets an engine load a Hub repository's own code (Kimi-K2's tokenizer and model classes)."""


def launch(d: Deployment, n: int, role: str | None = None) -> str:
    """The engine's serve command with its parallel flags (``role``: ``prefill`` or ``decode`` in a split), and a
    comment on how it spans hosts where ``n`` GPUs exceed one."""
    lay, name = d.layout, d.engine.name
    model = d.spec.hf_id or d.spec.id
    extra: list[str] = []  # TensorRT-LLM's settings that live in its --extra_llm_api_options YAML
    if name == "sglang":
        opts = f" --tp {lay.tp}" + (f" --ep {lay.ep}" if lay.ep > 1 else "") + (f" --pp {lay.pp}" if lay.pp > 1 else "")
        opts += f" --dp {lay.tp} --enable-dp-attention{d.engine.dense_dp or ''}" if lay.dp_attention else ""
        if d.batched_tokens != d.engine.default_batched_tokens(d.gpu):
            opts += f" --chunked-prefill-size {d.batched_tokens}"
        opts += eplb_flags(d)
    elif name == "tensorrt-llm":
        opts = f" --tp_size {lay.tp}" + (f" --ep_size {lay.ep}" if lay.ep > 1 else "")
        opts += f" --pp_size {lay.pp}" if lay.pp > 1 else ""
        extra += ["enable_attention_dp: true"] if lay.dp_attention else []
        if lay.eplb and d.spec.arch.moe is not None:
            slots = round(d.spec.arch.moe.num_experts * (1 + EPLB_REDUNDANT))
            extra.append(f"moe_config: {{load_balancer: {{num_slots: {slots}}}}}")
    elif name == "vllm" and lay.dp_attention:
        opts = f" --data-parallel-size {lay.tp} --enable-expert-parallel"
        opts += eplb_flags(d)
    elif name == "atom" and lay.dp_attention:
        opts = f" -tp {lay.tp} --enable-dp-attention --enable-expert-parallel"
    else:
        opts = f" --tensor-parallel-size {lay.tp}" + (" --enable-expert-parallel" if lay.ep > 1 else "")
        opts += eplb_flags(d)
        opts += f" --pipeline-parallel-size {lay.pp}" if lay.pp > 1 else ""
    opts += a2a_flag(d, role)
    if d.batch_overlap:  # resolve refuses it for an engine without the flag
        opts += f" {d.engine.batch_overlap_flag}"
    if d.recv_interval > 1:  # resolve refuses an interval for an engine without the flag
        opts += f" {d.engine.recv_interval_flag} {d.recv_interval}"
    if d.cap_per_rank:  # resolve refuses a cap for an engine without the flag
        opts += f" {d.engine.max_running_flag} {d.cap_per_rank}"
    if d.draft_tokens:
        k = d.draft_tokens
        if name == "tensorrt-llm":
            extra.append(f"speculative_config: {{decoding_type: MTP, num_nextn_predict_layers: {k}}}")
        elif name == "sglang":
            opts += f" --speculative-algorithm EAGLE --speculative-num-steps {k} --speculative-num-draft-tokens {k + 1}"
        else:
            opts += f' --speculative-config \'{{"method": "mtp", "num_speculative_tokens": {k}}}\''
    if role is not None:
        if name == "tensorrt-llm":
            extra.append("cache_transceiver_config: {backend: DEFAULT}")
        else:
            opts += DISAGG.get(name, "").format(role=role)
    if d.spec.remote_code and "trust-remote-code" not in d.engine.launch and name in REMOTE_CODE:
        opts += REMOTE_CODE[name]
    yaml_file = f"{role or 'extra'}.yaml"  # a split's two servers take different options: one file each
    if extra:
        opts += f" --extra_llm_api_options {yaml_file}"
    cmd = d.engine.command(model, d.context, opts)
    comments = [f"{yaml_file}: {'; '.join(extra)}"] if extra else []
    per_host = RACK_HOST_GPUS if d.gpu is not None and (d.gpu.nvlink_domain or 0) > HOST_GPUS else HOST_GPUS
    if n > per_host and name in MULTI_HOST:
        how = MULTI_HOST_DP.get(name, MULTI_HOST[name]) if lay.dp_attention else MULTI_HOST[name]
        comments.append(how.format(nodes=-(-n // per_host), n=n, local=per_host))
    if d.request.quant and d.scheme.name != (d.spec.native_quant or d.spec.weights_dtype):
        ship = shipped_layout(d.spec, d.scheme)
        like = f" laid out as {ship.hf_id}" if ship else ""  # the publisher's checkpoint this plan sizes
        comments.append(f"with {_article(d.scheme.name)} {d.scheme.name} checkpoint of {model}{like}")
    return cmd + ("  # " + "; ".join(comments) if comments else "")


def commented(command: str, note: str) -> str:
    """``command`` with ``note`` first in its trailing comment."""
    body, _, comment = command.partition("  # ")
    return f"{body}  # {note}" + (f"; {comment}" if comment else "")


def _article(word: str) -> str:
    """``a`` or ``an`` before a format name read letter by letter: an nvfp4, an fp8, an mxfp4, an awq-int4, a bf16
    (a letter whose name starts with a vowel sound: a, e, f, h, i, l, m, n, o, r, s, x)."""
    return "an" if word[:1].lower() in "aefhilmnorsx" else "a"
