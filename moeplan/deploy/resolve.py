"""Resolve a request into one :class:`Deployment`: every default moeplan has is decided here, and only here.

In order: the model (catalogue, file or Hub), its weight format (the checkpoint's own unless ``--quant``), the
GPU (catalogue entry with the user's figures), the engine (``--engine auto``: :func:`auto_engine`), a GGUF
file type for a checkpoint llama.cpp would convert, the KV dtype (the engine's default for ``auto``), the
checkpoint's real bytes per tensor class, the engine's speed factors with the GPU's calibration profile, the
GEMM dtype, the GPU-hour price, and the layout: the one asked for, else the engine's default for the fewest
GPUs of :data:`GPU_COUNTS` that hold the model.
"""

from __future__ import annotations

from dataclasses import replace

from moeplan.deploy.comm import GPUS_PER_NODE, Link, measured_collective_link
from moeplan.deploy.cost import price_for
from moeplan.deploy.deployment import (
    BATCH_OVERLAP_MIN_TOKENS,
    EPLB_REDUNDANT,
    GPU_COUNTS,
    Deployment,
    EstimateRequest,
    Layout,
    accepted_tokens,
    check_layout,
    default_layout,
    dp_launch_chunk,
    mtp_acceptance,
)
from moeplan.deploy.engines import ENGINES, Efficiency, Engine, auto_engine, engine, engines_with
from moeplan.deploy.kernels import KernelPath, backend_for, expert_format, float_gemm_scale, kernel_path, tensor_peak
from moeplan.deploy.kv_cache import check_kv_dtype
from moeplan.errors import InputError
from moeplan.formats.kv_formats import kv_dtype, state_dtype
from moeplan.formats.schemes import (
    Scheme,
    gguf_equivalent,
    model_scheme,
    parse_scheme,
    shipped_layout,
    stored_scheme,
    weights_bytes_by_kind,
)
from moeplan.hardware.gpus import GpuSpec
from moeplan.model.spec import ArchSpec, ModelSpec


def validate_request(request: EstimateRequest) -> None:
    """Options that make no sense on their own, refused with the option named."""
    if request.context < 1:
        raise InputError(f"--context must be at least 1 token, not {request.context}")
    if request.batch < 1:
        raise InputError(f"--batch must be at least 1, not {request.batch}")
    if request.prompt is not None and not 1 <= request.prompt <= request.context:
        raise InputError(f"--prompt must be between 1 and the context ({request.context:,}), not {request.prompt}")
    if not 0 <= request.routing_skew <= 4:
        raise InputError(f"--routing-skew must be between 0 (uniform) and 4, not {request.routing_skew}")
    for name in ("price_usd_per_hour", "energy_usd_per_kwh"):
        value = getattr(request, name)
        if value is not None and not value >= 0:
            raise InputError(f"--{name.split('_usd')[0].replace('_', '-')} must be zero or more, not {value}")
    for name in ("num_gpus", "tp", "ep", "pp"):
        value = getattr(request, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    if request.ubatch is not None and request.ubatch < 1:
        raise InputError(f"--ubatch must be at least 1, not {request.ubatch}")
    if request.recv_interval < 1:
        raise InputError(f"--recv-interval must be at least 1, not {request.recv_interval}")
    if request.kt_prefill_threshold is not None and request.kt_prefill_threshold < 1:
        raise InputError(f"--kt-prefill-threshold must be at least 1, not {request.kt_prefill_threshold}")
    if request.max_running is not None and request.max_running < 1:
        raise InputError(f"--max-running must be at least 1, not {request.max_running}")
    if request.traffic is not None:
        request.traffic.check()
    if request.mtp_accept is not None and not 0 <= request.mtp_accept < 1:
        raise InputError(f"--mtp-accept must be at least 0 and below 1, not {request.mtp_accept}")
    if request.mtp_drafts is not None and request.mtp_drafts < 1:
        raise InputError(f"--mtp-drafts must be at least 1, not {request.mtp_drafts}")
    if request.mtp_drafts is not None and not request.mtp:
        raise InputError("--mtp-drafts sets how many tokens the MTP layers draft: give --mtp too")
    if request.mtp_accept is not None and not request.mtp:
        raise InputError("--mtp-accept sets the acceptance of the MTP layers' drafts: give --mtp too")


def request_gpu(request: EstimateRequest) -> GpuSpec | None:
    """The requested accelerator (catalogue entry, with the user's figures), or None without one."""
    from moeplan.hardware.gpus import custom_gpu, resolve_gpu

    custom = (request.gpu_memory_gib, request.gpu_bandwidth_gb_s, request.gpu_tflops)
    if request.gpu is None and all(v is None for v in custom):
        return None
    base = resolve_gpu(request.gpu, request.gpu_file) if request.gpu is not None else None
    return custom_gpu(base, *custom) if any(v is not None for v in custom) else base


def checkpoint_scale(spec: ModelSpec, scheme: Scheme) -> tuple[tuple[tuple[str, float], ...], int] | None:
    """Per tensor class, a real checkpoint's bytes over what ``scheme`` predicts, and the bytes of its tensors
    outside the language model that engines load (a vision tower); None without a checkpoint, or when the
    weights would not be served as stored (``scheme`` is not the checkpoint's own format)."""
    info = spec.checkpoint
    if info is None:
        return None
    native = info.native_format or spec.native_quant or spec.weights_dtype
    if model_scheme(spec, native).name != scheme.name:
        return None
    scale = tuple(
        (kind, info.bytes_by_kind[kind] / want)
        for kind, want in sorted(weights_bytes_by_kind(spec.arch, scheme).items())
        if want and info.bytes_by_kind.get(kind)
    )
    return scale, info.bytes_by_kind.get("vision", 0) + info.bytes_by_kind.get("other", 0)


def _checkpoint_bytes(
    spec: ModelSpec, scheme: Scheme, mtp: bool
) -> tuple[tuple[tuple[str, float], ...], int, tuple[str, ...]]:
    """:func:`checkpoint_scale` for the memory model (MTP bytes too with ``--mtp``), and notes."""
    info = spec.checkpoint
    if info is None:
        return (), 0, ()
    from moeplan.model.params import count_params
    from moeplan.sources.checkpoint import compare_with_spec

    params = count_params(spec)
    notes = [f"checkpoint: {info.source}, {info.tensor_count:,} tensors, {info.total_bytes:,} bytes"]
    notes += compare_with_spec(info, params.breakdown, params.mtp, params.vision)
    stored = checkpoint_scale(spec, scheme)
    if stored is None:
        return (), 0, (*notes, f"weights as {scheme.name} would store them, not the checkpoint's bytes")
    scale, extra = stored
    if mtp:
        extra += info.bytes_by_kind.get("mtp", 0)
    notes.append("weights memory: the checkpoint's own bytes per tensor class")
    return scale, extra, tuple(notes)


def _mtp_bytes(spec: ModelSpec, scheme: Scheme) -> int:
    """Bytes of the MTP layers (served with ``--mtp``, never counted in the model's own weights): their
    parameters at the bytes per parameter of the rest of the model in ``scheme`` (DeepSeek-V3's one MTP layer:
    11.6B parameters, ~10.8 GiB in fp8 blocks)."""
    from moeplan.deploy.memory import model_weight_bytes
    from moeplan.model.params import count_params

    params = count_params(spec)  # its total leaves the MTP layers out, as model_weight_bytes does
    return round(params.mtp * model_weight_bytes(spec.arch, scheme) / max(1, params.total))


def efficiency_for(
    eng: Engine, gpu: GpuSpec | None, request: EstimateRequest, path: KernelPath | None = None
) -> tuple[Efficiency, str]:
    """The engine's speed factors on its kernel ``path`` for ``gpu``, replaced by the GPU's calibration profile
    where one applies, and a note."""
    base = path.apply(eng.speed) if path is not None else eng.speed
    if gpu is None:
        return base, ""
    default = f"efficiency: {base.source.split(';')[0]} (no calibration for {gpu.id})"
    if not request.use_calibration:
        return base, default
    from moeplan.cache import has_profile

    if request.calibration is None and not has_profile(gpu.id):
        return base, default  # no profile: the profile module (and its pydantic models) is not needed
    from moeplan.hardware.profiles import measured_for

    measured, refused = measured_for(gpu, request.calibration)
    if measured is None:
        return base, refused or default
    eff = base.calibrated_with(
        measured.bandwidth_efficiency, measured.compute_efficiency, measured.label, measured.layer_overhead_s
    )
    return eff, measured.note


def measured_link(gpu: GpuSpec | None, request: EstimateRequest) -> Link | None:
    """The GPU-to-GPU link measured by ``calibrate --collectives`` on this box, if its profile has one."""
    if gpu is None or not request.use_calibration:
        return None
    from moeplan.cache import has_profile

    if request.calibration is None and not has_profile(gpu.id):
        return None
    from moeplan.hardware.profiles import measured_for

    try:
        measured, _ = measured_for(gpu, request.calibration)
    except InputError:
        return None  # efficiency_for has already said why
    c = measured.collectives if measured is not None else None
    if c is None or c.all_reduce is None:
        return None
    a2a = c.all_to_all or c.all_reduce
    return measured_collective_link(c.world_size, c.all_reduce.alpha_s, c.all_reduce.bus_gb_s, a2a.alpha_s,
                                    f"measured ({c.backend}, {c.world_size} ranks)")  # fmt: skip


def state_dtypes(spec: ModelSpec, eng: Engine, requested: str) -> tuple[str, str]:
    """(convolution state, recurrent state) dtypes: llama.cpp keeps both in fp32; vLLM the convolution state in
    the model's dtype and the recurrent state in the checkpoint's declared ``mamba_ssm_dtype`` (Qwen3.5: fp32),
    else the model's (Qwen3-Next: bf16).  ``--state-dtype`` sets the recurrent state's, as vLLM's
    ``--mamba-ssm-cache-dtype`` does."""
    model = spec.weights_dtype if spec.weights_dtype in ("fp16", "fp32") else "bf16"
    conv = "fp32" if eng.state_default == "fp32" else model
    if requested.strip().lower() != "auto":
        return conv, state_dtype(requested)
    if eng.state_default == "fp32":
        return conv, "fp32"
    la, ssm = spec.arch.linear_attention, spec.arch.ssm
    declared = (la.state_dtype if la is not None else None) or (ssm.state_dtype if ssm is not None else None)
    return conv, declared or model


def layout_for(arch: ArchSpec, request: EstimateRequest, eng: Engine, num_gpus: int) -> Layout:
    """The asked layout, completed for ``num_gpus``, or the engine's default; checked.  ``--dp-attention`` takes
    every GPU into the group (TP = EP = the GPUs, across nodes beyond 8: wide EP)."""
    dp = request.dp_attention
    if dp and not eng.runs_dp_attention:
        raise InputError(f"{eng.name} does not run attention data-parallel",
                         f"use --engine {engines_with('runs_dp_attention')}, or drop --dp-attention")  # fmt: skip
    if request.tp is None and request.pp is None:
        par = default_layout(arch, num_gpus, eng)
        if dp:  # every GPU a data-parallel attention rank, the experts over all of them (across nodes beyond 8)
            par = Layout(num_gpus, 1, 1)
        elif request.ep and request.ep > par.tp and num_gpus % request.ep == 0:  # EP across the GPUs asked for
            par = Layout(request.ep, 1, num_gpus // request.ep)
        ep = request.ep or (par.tp if dp else 1)
        layout = Layout(par.tp, ep, par.pp, request.eplb, dp)
    else:
        if dp and request.pp is None and request.tp is not None and request.tp != num_gpus:
            raise InputError(f"--dp-attention takes all {num_gpus} GPUs into one group, not --tp {request.tp}",
                             f"give --tp {num_gpus}, or drop --tp")  # fmt: skip
        tp = request.tp or max(1, num_gpus // (request.pp or 1))
        pp = request.pp or max(1, num_gpus // tp)
        if tp * pp != num_gpus:
            if request.pp is None:  # the user gave --tp alone: say so, not a --pp they never gave
                raise InputError(f"--tp {tp} does not divide --num-gpus {num_gpus}",
                                 f"give a --tp that divides it (with --pp {num_gpus} / tp), or --num-gpus a multiple "
                                 f"of {tp}")  # fmt: skip
            if request.tp is None:
                raise InputError(f"--pp {pp} does not divide --num-gpus {num_gpus}",
                                 "give a --pp that divides it, or --num-gpus a multiple of it")  # fmt: skip
            raise InputError(f"--tp {tp} x --pp {pp} = {tp * pp} GPUs, but --num-gpus is {num_gpus}")
        layout = Layout(tp, request.ep or (tp if dp else 1), pp, request.eplb, dp)
    if eng.llama_cpp_kernels:  # --split-mode layer (a pipeline, its default) or tensor (TP); no EP, no mix
        if layout.ep > 1:
            raise InputError(f"{eng.name} has no expert parallelism",
                             "its split modes are by layer (--pp N, the default) and by tensor (--tp N)")  # fmt: skip
        if layout.tp > 1 and layout.pp > 1:
            raise InputError(f"{eng.name} splits a model by layer (--pp) or by tensor (--tp), not both",
                             f"give --tp {num_gpus} or --pp {num_gpus}")  # fmt: skip
    if eng.one_host and layout.num_gpus > GPUS_PER_NODE:
        raise InputError(f"{eng.name} runs an instance on one host's GPUs ({GPUS_PER_NODE}), not {layout.num_gpus}",
                         "fewer GPUs an instance (several behind a router), or --engine sglang or vllm")  # fmt: skip
    check_layout(arch, layout)
    moe = arch.moe
    if moe is not None and layout.ep > 1 and not eng.ep_uneven and not eng.llama_cpp_kernels:
        experts = moe.num_experts + (round(moe.num_experts * EPLB_REDUNDANT) if layout.eplb else 0)
        if experts % layout.ep:
            raise InputError(f"{eng.name} spreads the experts evenly: {experts:,} over EP {layout.ep} do not divide",
                             f"an --ep or GPU count that divides {experts:,}, or --engine vllm")  # fmt: skip
    return layout


def explicit_gpus(request: EstimateRequest) -> int | None:
    """The GPU count the request fixes (``--num-gpus``, or ``--tp`` x ``--pp``), or None to search."""
    if request.num_gpus:
        return request.num_gpus
    return (request.tp or 1) * (request.pp or 1) if (request.tp or request.pp) else None


def resolve(
    request: EstimateRequest, *, spec: ModelSpec | None = None, gpu: GpuSpec | None = None, fewest: bool = True
) -> Deployment:
    """The deployment ``request`` describes, every default decided.

    ``spec`` and ``gpu`` skip their lookup when a caller sweeping many deployments has them already; with
    ``fewest`` False and the GPU count given, the fewest GPUs that fit are not searched (``min_gpus`` None).
    """
    if spec is None:
        from moeplan.sources.catalog import resolve_model

        spec = resolve_model(request.model)
    validate_request(request)
    arch = spec.arch
    if spec.unread_quant and not request.quant:
        raise InputError(
            f"{spec.name}'s quantization_config ({spec.unread_quant}) is a format moeplan does not read",
            "give --quant with the weights' format (mxfp4, fp8, awq-int4, nvfp4, ...) to size them",
        )
    native = spec.native_quant or spec.weights_dtype
    scheme = model_scheme(spec, request.quant or native)
    gpu = gpu if gpu is not None else request_gpu(request)
    auto = request.engine.strip().lower() == "auto"
    gguf_file = spec.architecture.startswith("gguf:") and not request.quant  # a .gguf file runs where it is read
    chosen = ENGINES["llama.cpp"] if gguf_file else auto_engine(scheme, gpu, spec.architecture)
    eng = chosen if auto else engine(request.engine)
    if spec.architecture in eng.missing_architectures:
        raise InputError(
            f"{eng.name} has no implementation of {spec.name} ({spec.architecture})",
            "plan it on vLLM or SGLang with a checkpoint format (--engine vllm); llama.cpp's GGUF mixes and expert "
            "offload need llama.cpp",
        )
    notes: tuple[str, ...] = ()
    if eng.runs == "gguf" and request.quant is None and scheme.gguf is None:
        mix = gguf_equivalent(native)
        scheme = model_scheme(spec, mix)
        notes = (f"{eng.name} runs GGUF files: {native} weights are planned as the {mix} mix (--quant to choose)",)
    ship = shipped_layout(spec, scheme)
    if ship is not None:  # a publisher's checkpoint in this format leaves some projections in the float dtype
        every = f"--quant {scheme.name},attention={scheme.base} for every projection in {scheme.base}"
        notes += (f"{scheme.name} as {ship.hf_id} ships it: {', '.join(scheme.kept_roles)} kept in {scheme.rest} "
                  f"({every})",)  # fmt: skip
    if gpu is not None:  # after the conversion: llama.cpp converts a checkpoint given without --quant
        check_engine(eng, scheme, gpu)
    stored = stored_scheme(spec.native_quant, scheme, gguf_file=eng.runs == "gguf")
    if stored is not scheme:
        scheme = stored
        notes += (f"{spec.name}: GGUF files keep the routed experts in MXFP4 whatever the label "
                  f"({scheme.gguf or scheme.name} for the rest)",)  # fmt: skip
    if arch.max_context and request.context > arch.max_context:
        notes += (
            f"warning: {request.context:,} tokens exceed the model's trained context of {arch.max_context:,} "
            "(max_position_embeddings); figures assume it runs anyway (RoPE scaling)",
        )
    if request.traffic is not None:
        request.traffic.check_context(spec.name, arch.max_context)
    requested_kv = request.kv_dtype.strip().lower()
    kv = kv_dtype(eng.kv_default if requested_kv == "auto" else requested_kv)
    check_kv_dtype(kv, eng)
    conv_state, state = state_dtypes(spec, eng, request.state_dtype)
    if request.state_dtype.strip().lower() != "auto" and arch.linear_attention is None and arch.ssm is None:
        notes += (f"--state-dtype has no effect: {spec.name} has no linear-attention or state-space layers",)
    check_mtp_layers(spec, request.mtp)
    if request.mtp and not eng.runs_mtp:
        raise InputError(f"{eng.name} does not decode with MTP drafts",
                         f"use --engine {engines_with('runs_mtp')}, or drop --mtp")  # fmt: skip
    accept, decay, origin = mtp_acceptance(spec, request.mtp_accept)
    published = spec.mtp_acceptance
    if request.mtp and origin == "--mtp-accept":
        notes += (f"MTP drafts accepted at {accept:g} (--mtp-accept)",)
    elif request.mtp:
        said = published.source if published else (f"DeepSeek-V3's 85-90%, its technical report's 5.4.3: none is "
                                                    f"published for {spec.name}")  # fmt: skip
        notes += (f"MTP drafts accepted at {accept:g} ({said}); --mtp-accept sets your engine's measured "
                  "first-draft rate",)  # fmt: skip
    if request.mtp and request.mtp_drafts and request.mtp_drafts > arch.mtp_layers:
        a, k = accept, request.mtp_drafts
        layers = f"its {arch.mtp_layers} MTP layer{'s draft' if arch.mtp_layers > 1 else ' drafts'}"
        notes += (f"--mtp-drafts {k}: {layers} {k} tokens a step, the last reused; "
                  f"drafts at the trained depths accepted at {a:g} after the one before, each reuse at "
                  f"{decay:g}x that ({accepted_tokens(k, a, arch.mtp_layers, decay):.2f} tokens a step; "
                  + ("the model's published figures)" if published else
                     "TensorRT-LLM's DeepSeek-R1 measurements)"),)  # fmt: skip
    scale, extra, file_notes = _checkpoint_bytes(spec, scheme, request.mtp)
    if request.mtp and spec.checkpoint is None:
        mtp_bytes = _mtp_bytes(spec, scheme)
        extra += mtp_bytes
        add = "MTP layer adds" if arch.mtp_layers == 1 else f"{arch.mtp_layers} MTP layers add"
        notes += (f"--mtp: its {add} {mtp_bytes / 2**30:,.2f} GiB of weights at the model's mean bytes per "
                  "parameter",)  # fmt: skip
    if not scale and scheme.gguf and not spec.origin.endswith(".gguf"):
        scale = label_scale(spec.arch, scheme)
    if not eng.llama_cpp_kernels and request.backend.strip().lower() not in ("", "auto"):
        raise InputError(f"--backend chooses llama.cpp's GPU backend; {eng.name} has none", "drop --backend")
    backend = backend_for(gpu, request.backend) if eng.llama_cpp_kernels else None
    if request.recv_interval > 1:
        if not eng.recv_interval_flag:
            raise InputError(
                f"--recv-interval sets how often the scheduler polls for requests; {eng.name} polls every step and "
                "has no such setting",
                f"engines with one: {engines_with('recv_interval_flag')}",
            )
        notes += (f"{eng.name} takes new requests every {request.recv_interval} decode steps "
                  f"({eng.recv_interval_flag} {request.recv_interval}): under a load a request waits "
                  f"{(request.recv_interval - 1) / 2:g} steps more on average before its prefill",)  # fmt: skip
    if request.batch_overlap:
        if not eng.batch_overlap_flag:
            raise InputError(f"--batch-overlap is an engine's two micro-batch overlap; moeplan knows no such setting "
                             f"for {eng.name}", f"engines with one: {engines_with('batch_overlap_flag')}")  # fmt: skip
        if spec.arch.moe is None:
            raise InputError(f"--batch-overlap hides the experts' all-to-all under compute; {spec.name} has no experts",
                             "drop --batch-overlap")  # fmt: skip
        if not request.dp_attention:
            raise InputError("--batch-overlap hides the experts' all-to-all of data-parallel attention under compute",
                             "add --dp-attention, which spreads the experts over the ranks")  # fmt: skip
        if gpu is not None and gpu.vendor != "nvidia":
            raise InputError(f"{eng.name}'s micro-batch overlap runs over DeepEP, NVIDIA's all-to-all; {gpu.name} has "
                             "none (vLLM: 'Microbatching currently only supports the deepep ... backends')",
                             "drop --batch-overlap")  # fmt: skip
        least_decode, least_prefill = BATCH_OVERLAP_MIN_TOKENS
        notes += (f"{eng.name} runs each step whose ranks carry {least_decode} tokens or more ({least_prefill} with a "
                  "prompt) as two "
                  f"micro-batches ({eng.batch_overlap_flag}): the expert all-to-all of one under the other's "
                  "compute; smaller steps run whole",)  # fmt: skip
    if request.kt_prefill_threshold is not None and eng.offload_prefill != "layerwise":
        raise InputError(f"--kt-prefill-threshold is KTransformers' switch to layer-wise prefill; {eng.name} has none",
                         "add --engine ktransformers, or drop --kt-prefill-threshold")  # fmt: skip
    if request.cpu_repack is not None and not eng.run_time_repack:
        raise InputError(f"--rtr/--no-rtr is ik_llama.cpp's run-time repack; {eng.name} has none",
                         "add --engine ik_llama.cpp, or drop the option")  # fmt: skip
    if eng.offload_prefill == "layerwise":
        from moeplan.deploy.offload import kt_method, kt_native, layerwise_threshold

        method = kt_method(scheme)
        if not kt_native(scheme):
            if request.kt_prefill_threshold is not None:
                raise InputError(f"--kt-prefill-threshold switches kt-kernel's layer-wise prefill, which its {method} "
                                 f"method for {scheme.name} weights does not have",
                                 "it needs fp8, bf16 or the checkpoint's own int4 experts (--quant), or drop the "
                                 "option")  # fmt: skip
            notes += (f"{eng.name} runs {scheme.name} experts through kt-kernel's {method} method: prefill keeps "
                      "them on the CPU (layer-wise GPU prefill needs fp8, bf16 or the checkpoint's own int4 "
                      "experts)",)  # fmt: skip
        else:
            t = layerwise_threshold(request.kt_prefill_threshold)
            notes += (f"{eng.name} ({method}): prefill passes of {t:,} tokens or more run layer by layer on the GPU, "
                      f"streaming the RAM experts once a pass (--kt-gpu-prefill-token-threshold {t}; "
                      "--kt-prefill-threshold sets it), smaller ones with their experts on the CPU",)  # fmt: skip
    if request.max_running is not None and not eng.max_running_flag:
        raise InputError(f"--max-running caps the requests an engine runs at once; {eng.name} has no such setting",
                         f"engines with one: {engines_with('max_running_flag')}")  # fmt: skip
    default_cap = eng.default_max_running(gpu)
    if (
        request.max_running is None
        and default_cap is not None
        and (request.traffic is not None or request.batch > default_cap)
    ):
        rank = " a rank" if eng.max_running_per_rank else ""
        raise_it = f"; a batch of {request.batch:,} needs it raised" if request.batch > default_cap else ""
        notes += (f"{eng.name} runs at most {default_cap:,} requests at once{rank} by default "
                  f"({eng.max_running_flag}); under a load the others wait{raise_it}: "
                  "--max-running sets it",)  # fmt: skip
    if request.max_running is not None:
        n = request.max_running
        per_rank = (
            (
                f"; with data-parallel attention {eng.name} counts it per rank: {eng.max_running_flag} "
                "ceil(N / ranks), the instance then runs that times the ranks"
            )
            if eng.max_running_per_rank
            else ""
        )
        notes += (f"--max-running {n:,}: at most {n:,} request{'s' if n > 1 else ''} run at once in an instance "
                  f"({eng.max_running_flag} {n:,}{per_rank}); under a load the others wait for a running one to "
                  "finish",)  # fmt: skip
    if eng.state_pool is not None and (arch.linear_attention is not None or arch.ssm is not None):
        r = eng.state_pool[0]
        held = eng.states_held((request.mtp_drafts or arch.mtp_layers) if request.mtp else 0)
        notes += (f"{eng.name} splits the memory left after weights into recurrent states ({r:g}/{1 + r:g} of it) "
                  f"and the KV cache (the rest); a running request holds {held} states (its prefix cache's and, "
                  "under MTP, one per token a step verifies among them): a batch fits where both pools "
                  "hold it",)  # fmt: skip
    path = kernel_path(eng, scheme, gpu, backend, spec.architecture, moe=spec.arch.moe is not None)
    if gpu is not None:
        peak_note = tensor_peak(gpu, path.peak_dtype)[1]
        notes += (f"kernels: {path.name}; " + peak_note,) if peak_note else ()
    eff, cal_note = efficiency_for(eng, gpu, request, path)
    base = Deployment(
        request=request,
        spec=spec,
        scheme=scheme,
        engine=eng,
        gpu=gpu,
        layout=Layout(),
        kv_dtype=kv,
        state_dtype=state,
        conv_state_dtype=conv_state,
        compute_dtype=path.peak_dtype,
        float_gemm_scale=float_gemm_scale(path, gpu),
        kernel_path=path.name,
        backend=backend.name if backend else None,
        efficiency=eff,
        link=measured_link(gpu, request),
        context=request.context,
        batch=request.batch,
        prompt=request.prompt_tokens(),
        batched_tokens=batched_tokens(eng, request, gpu),
        recv_interval=request.recv_interval,
        batch_overlap=request.batch_overlap,
        max_running=request.max_running,
        kt_prefill_threshold=request.kt_prefill_threshold,
        cpu_repack=request.cpu_repack,
        flash_attention=request.flash_attention,
        mtp_layers=arch.mtp_layers if request.mtp else 0,
        draft_tokens=(request.mtp_drafts or arch.mtp_layers) if request.mtp else 0,
        accept_rate=accept if request.mtp else 0.0,
        reuse_decay=decay,
        routing_skew=request.routing_skew,
        weights_scale=scale,
        extra_weight_bytes=extra,
        price=price_for(gpu, request.price_usd_per_hour, request.energy_usd_per_kwh),
        notes=notes + file_notes,
        calibration_note=cal_note,
    )
    explicit = explicit_gpus(request)
    min_gpus = fewest_gpus(base) if gpu is not None and (fewest or explicit is None) else None
    layout = layout_for(arch, request, eng, explicit or min_gpus or 1)
    experts = expert_format(scheme)
    int4 = experts.startswith(("awq", "gptq"))  # weight-only int4 experts (Marlin kernels)
    if layout.ep > 1 and not eng.ep_int4_experts and int4:
        raise InputError(f"{eng.name} runs no expert parallelism with {experts} experts (sgl-project/sglang#6029)",
                         "drop --ep/--dp-attention, use --engine vllm, or an fp8/nvfp4 format")  # fmt: skip
    if layout.eplb and not eng.eplb_int4_experts and int4:
        raise InputError(f"{eng.name} balances no {experts} experts with EPLB ('EPLB is only supported for FP8 "
                         "quantization')", "drop --eplb, or an fp8 format")  # fmt: skip
    scaled = dp_launch_chunk(eng, gpu, layout.attention_ranks) if layout.dp_attention else None
    if scaled is not None and request.ubatch is not None and request.ubatch < layout.attention_ranks:
        raise InputError(f"{eng.name} divides --chunked-prefill-size (--ubatch {request.ubatch:,}) over its "
                         f"{layout.attention_ranks} data-parallel workers: less than a token each",
                         f"--ubatch {scaled} gives each {scaled // layout.attention_ranks:,}")  # fmt: skip
    if scaled is not None and request.ubatch is None:
        ranks, tokens = layout.attention_ranks, base.batched_tokens
        note = (f"{eng.name} divides --chunked-prefill-size ({tokens:,}) over its {ranks} data-parallel workers: "
                f"{tokens // ranks:,} tokens a rank a pass; serve launches it with --chunked-prefill-size "
                f"{scaled:,} (--ubatch here)")  # fmt: skip
        base = replace(base, notes=(*base.notes, note))
    return replace(base, layout=layout, min_gpus=min_gpus)


def label_scale(arch: ArchSpec, scheme: Scheme) -> tuple[tuple[str, float], ...]:
    """A GGUF label without its file is planned at its middle published file: every tensor class of the default
    mix times ``1 + median`` (:func:`moeplan.formats.gguf_labels.label_spread`); empty when that is 0."""
    from moeplan.formats.gguf_labels import label_spread, publisher_label

    assert scheme.gguf is not None
    pub = publisher_label(scheme.name.split(",")[0])
    spread = label_spread(scheme.gguf, pub[2] if pub else False)
    if spread.basis == "none" or not spread.median:
        return ()
    return tuple((kind, 1 + spread.median) for kind in sorted(weights_bytes_by_kind(arch, scheme)))


GGUF_FLOATS = frozenset({"bf16", "fp16", "f16", "fp32", "f32", "mxfp4"})
"""Lower-case formats a GGUF file holds as they are (gpt-oss's GGUF keeps its MXFP4 experts); llama.cpp's block
types (Q8_0, Q4_K, ...) are upper case."""


def check_mtp_layers(spec: ModelSpec, mtp: bool) -> None:
    """Refuse ``--mtp`` (``mtp``) for a model without multi-token-prediction layers, naming the catalogue's that do."""
    if mtp and spec.arch.mtp_layers == 0:
        from moeplan.sources.catalog import mtp_models

        raise InputError(f"{spec.name} has no multi-token-prediction layers for --mtp to serve",
                         f"drop --mtp; the catalogue's that carry them: {mtp_models()}")  # fmt: skip


def check_engine(eng: Engine, scheme: Scheme, gpu: GpuSpec) -> None:
    """Refuse an engine that does not run on ``gpu``, or not these weights there, with what would."""
    if not eng.can_run(gpu):  # llama.cpp where it stands in (ik_llama.cpp, KTransformers), else what runs there
        here = ", ".join(e.name for e in ENGINES.values() if e.can_run(gpu))
        hint = f"engines that run there: {here}" if here else "no engine moeplan plans runs there"
        if (eng.offload_prefill == "layerwise" or eng.run_time_repack) and ENGINES["llama.cpp"].can_run(gpu):
            hint = "llama.cpp runs there: --engine llama.cpp"
        raise InputError(f"{eng.name} does not run on {gpu.name} ({gpu.vendor} GPUs)", hint)
    if eng.llama_cpp_kernels:
        used = (scheme.base, scheme.rest, *scheme.overrides.values())
        foreign = sorted({f for f in used if f not in GGUF_FLOATS and not f.isupper()})  # GGUF types are upper case
        if scheme.gguf is None and foreign:
            other = ("--engine mlx" if gpu.vendor == "apple" else "Apple silicon with --engine mlx"
                     if foreign[0].startswith("mlx") else "--engine vllm/sglang (offload: ktransformers)")  # fmt: skip
            given = (
                ", or GGUF types for every class (--quant Q8_0,experts=Q4_K)" if any(f.isupper() for f in used) else ""
            )
            raise InputError(
                f"{eng.name} reads GGUF types, and {foreign[0]} weights are not one",
                f"use a GGUF mix (--quant Q8_0, Q4_K_M, ...) or bf16{given}, or {other} for these weights",
            )
    if eng.runs == "checkpoint" and scheme.is_gguf:
        raise InputError(f"{eng.name} runs checkpoints, not GGUF mixes like {scheme.name}", "use --engine llama.cpp")
    if eng.runs == "checkpoint" and not eng.serves(scheme, gpu):
        hint = "choose another --quant (bf16, or fp8 where the GPU has fp8 units)"
        if eng.name == "mlx":  # MLX's own affine formats
            hint = "MLX runs its own formats and 16-bit weights: --quant mlx-4bit, mlx-8bit or bf16"
        elif not eng.weight_only:
            hint = f"{eng.name} runs fp8 on fp8 tensor units and NVFP4 on fp4 ones; --engine vllm runs them weight-only"
        mix = gguf_equivalent(scheme.name)  # a GGUF of these weights, where llama.cpp runs it here
        if eng.name != "mlx" and ENGINES["llama.cpp"].runs_on(gpu) and parse_scheme(mix).is_gguf:
            hint += f"; or a GGUF of them: --engine llama.cpp --quant {mix}"
        raise InputError(f"{gpu.name} has no {eng.name} kernels for {scheme.name} weights", hint)


def batched_tokens(eng: Engine, request: EstimateRequest, gpu: GpuSpec | None = None) -> int:
    """Tokens in the largest forward pass: ``--ubatch`` or the engine's default on ``gpu`` (vLLM 8,192, 2,048 on
    GPUs under 70 GiB or an A100); llama.cpp caps its ubatch at the context (``n_ubatch <= n_batch <= n_ctx``)."""
    tokens = request.ubatch or eng.default_batched_tokens(gpu)
    return min(tokens, request.context) if eng.llama_cpp_kernels else tokens


def fewest_gpus(base: Deployment, counts: tuple[int, ...] = GPU_COUNTS) -> int | None:
    """The fewest of ``counts`` GPUs on which ``base`` (its layout completed for each count) fits; None if none."""
    from moeplan.deploy.evaluate import fits

    for n in counts:
        try:
            layout = layout_for(base.spec.arch, base.request, base.engine, n)
        except InputError:
            continue
        if fits(replace(base, layout=layout)):
            return n
    return None
