"""The ``--json`` contract: the envelope every command's JSON carries, and the JSON Schema that describes it.

Every ``--json`` output is one object that starts with ``moeplan_version`` (the package version),
``schema_version`` (:data:`SCHEMA_VERSION`, raised when a key is removed or changes meaning; new keys do not
raise it) and ``command``.  Commands whose result is a list carry it under one key (``compare``: ``columns``,
``recommend``: ``candidates``, ``gpus``, ``cpus``, ``models``).  The schema below is published as
``moeplan/data/output.schema.json`` (``python -m moeplan.output.json_schema`` prints it) and the tests check every
command's output against it.  Objects list the keys a consumer may rely on; they may hold more.
"""

from __future__ import annotations

import json
from typing import Any

from moeplan.version import __version__

SCHEMA_VERSION = 1
LIST_KEYS = {"compare": "columns", "recommend": "candidates", "gpus": "gpus", "cpus": "cpus", "models": "models"}
SCHEMA_ID = "https://moeplan.dev/schema/output-v1.json"


def envelope(command: str, data: Any) -> dict[str, Any]:
    """``data`` (a command's JSON-ready result) inside the envelope: version, schema version, command."""
    head: dict[str, Any] = {"moeplan_version": __version__, "schema_version": SCHEMA_VERSION, "command": command}
    if isinstance(data, dict):
        return {**head, **data}
    return {**head, LIST_KEYS[command]: data}


# -- schema builders ----------------------------------------------------------------------------------------------
NUM, INT, STR, BOOL = {"type": "number"}, {"type": "integer"}, {"type": "string"}, {"type": "boolean"}


def _maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(props),
        "properties": {**props, **(optional or {})},
        "additionalProperties": True,
    }


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _pair(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 2, "maxItems": 2}


def _map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _defs() -> dict[str, Any]:
    model = _obj({"id": STR, "name": STR, "architecture": STR, "moe": BOOL, "num_experts": _maybe(INT),
                  "top_k": _maybe(INT)})  # fmt: skip
    params = _obj({"total": INT, "active": INT, "active_share": NUM, "breakdown": _map(INT),
                   "active_breakdown": _map(INT)})  # fmt: skip
    request = _obj({"context": INT, "batch": INT, "engine": STR, "quant": STR, "kv_dtype": STR},
                   {"dp_attention": BOOL, "batch_overlap": BOOL, "mtp_drafts": INT, "mtp_accept": _maybe(NUM),
                    "max_running": _maybe(INT), "kt_prefill_threshold": _maybe(INT), "rtr": _maybe(BOOL),
                    "traffic": _maybe({"type": "object"})})  # fmt: skip
    memory = _obj({
        "scheme": STR, "engine": STR, "weights_bytes": INT, "weights_by_kind": _map(INT), "kv_bytes_per_token": NUM,
        "kv_cache_bytes": INT, "total_bytes": INT, "per_gpu_bytes": INT, "per_gpu_weights_bytes": INT,
        "per_gpu_weights_by_kind": _map(INT), "usable_bytes_per_gpu": _maybe(INT),
        "weights_range_bytes": _maybe(_pair(INT)),
    })  # fmt: skip
    fit = _obj({"gpu": _maybe(STR), "fits": _maybe(BOOL), "num_gpus": INT, "tp": INT, "ep": INT, "pp": INT,
                "dp_attention": BOOL},
               {"shortfall": _list(STR)})  # fmt: skip
    flops = _obj({"prefill_per_token": NUM, "decode_per_token": NUM})
    performance = _obj({"decode_tokens_per_s": NUM, "decode_tokens_per_s_range": _pair(NUM),
                        "throughput_tokens_per_s": NUM, "prefill_tokens_per_s": NUM,
                        "time_to_first_token_s": NUM})  # fmt: skip
    cost = _obj({"usd_per_hour": _maybe(NUM), "usd_per_million_output_tokens": _maybe(NUM),
                 "purchase_usd": _maybe(NUM), "price_source": _maybe(STR)})  # fmt: skip
    point = _obj({
        "concurrency": NUM, "decode_batch": NUM, "tpot_s": NUM, "ttft_s": _maybe(NUM), "ttft_p90_s": _maybe(NUM),
        "e2e_s": _maybe(NUM),
        "request_rate": NUM, "output_tokens_per_s": NUM, "output_tokens_per_s_per_gpu": NUM,
        "tokens_per_s_per_user": NUM, "stable": BOOL, "kv_limited": BOOL,
    })  # fmt: skip
    estimate = _obj(
        {"model": _ref("model"), "params": _ref("params"), "request": _ref("request"), "memory": _ref("memory"),
         "fit": _maybe(_ref("fit")), "flops": _maybe(_ref("flops")), "performance": _maybe(_ref("performance")),
         "cost": _maybe(_ref("cost")), "assumptions": _list(STR)},
        {"serving": _maybe(_ref("serving_point")), "wins": _list(STR)},
    )  # fmt: skip
    placement = _obj({"engine": STR, "quant": STR, "experts_on_cpu_layers": INT, "vram_bytes_per_gpu": INT,
                      "vram_capacity_bytes": INT, "ram_bytes": INT, "ram_capacity_bytes": INT,
                      "fits": BOOL})  # fmt: skip
    advice = _obj({"ram_gib": NUM, "quant": STR, "text": STR, "decode_tokens_per_s": _maybe(NUM)})
    offload = {
        "allOf": [
            _ref("estimate"),
            _obj({"placement": placement, "tradeoff": _list({"type": "object"}), "commands": _map(STR),
                  "advice": _list(advice)}),
        ]
    }  # fmt: skip
    candidate = _obj({"gpu": STR, "num_gpus": INT, "quant": STR, "engine": STR, "fit": {"type": "object"},
                      "performance": _maybe({"type": "object"}), "cost": _maybe({"type": "object"}),
                      "marks": _list(STR)})  # fmt: skip
    gpu = _obj({"id": STR, "name": STR, "vendor": STR, "memory_gib": NUM, "usable_memory_gib": NUM,
                "bandwidth_gb_s": NUM, "tflops": _map(NUM), "sources": _list(STR)})  # fmt: skip
    cpu = _obj({"id": STR, "name": STR, "bandwidth_gb_s": NUM, "memory_channels": _maybe(INT)})
    model_row = _obj({"id": STR, "name": STR, "architecture": STR, "total": INT, "active": INT})
    configuration = _obj({"gpu": STR, "num_gpus": INT, "tp": INT, "ep": INT, "pp": INT, "dp_attention": BOOL,
                          "eplb": BOOL, "batch_overlap": BOOL,
                          "disaggregated": _maybe(STR), "prefill_gpu": _maybe(STR), "prefill_gpus": _maybe(INT),
                          "prefill_dp_attention": _maybe(BOOL), "prefill_batch_overlap": _maybe(BOOL),
                          "quant": STR, "engine": STR,
                          "meets_targets": BOOL, "point": _ref("serving_point"),
                          "usd_per_million_output_tokens": _maybe(NUM), "command": STR,
                          "quality": _maybe(STR), "lower_quality": BOOL})  # fmt: skip
    lengths = {"isl": INT, "osl": INT, "isl_range": _maybe(_list(INT)), "osl_range": _maybe(_list(INT))}
    serve = _obj({"model": _obj({"id": STR, "name": STR}), "traffic": _obj(lengths),
                  "targets": {"type": "object"}, "max_running": _maybe(INT), "sort": STR,
                  "mtp": _maybe(_obj({"drafts": INT, "accept": NUM, "accept_from": STR})), "configurations_tried": INT,
                  "configurations": _list(configuration), "pareto": _list({"type": "object"})})  # fmt: skip
    quants = _obj({"formats": _list(_obj({"name": STR})), "gguf_mixes": _list(STR)})
    calibrate = _obj({"profile": _obj({"schema_version": INT, "device": STR, "backend": STR, "created": STR,
                                       "bandwidth_gb_s": NUM, "gemm_tflops": NUM}),
                      "saved_to": STR, "skipped": _list(STR)})  # fmt: skip
    return {
        "model": model, "params": params, "request": request, "memory": memory, "fit": fit, "flops": flops,
        "performance": performance, "cost": cost, "serving_point": point, "estimate": estimate, "offload": offload,
        "candidate": candidate, "gpu": gpu, "cpu": cpu, "model_row": model_row, "serve": serve, "quants": quants,
        "calibrate": calibrate,
    }  # fmt: skip


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every command's ``--json`` output."""
    head = _obj({"moeplan_version": STR, "schema_version": {"const": SCHEMA_VERSION}, "command": STR})
    per_command: dict[str, dict[str, Any]] = {
        "estimate": _ref("estimate"),
        "offload": _ref("offload"),
        "serve": _ref("serve"),
        "quants": _ref("quants"),
        "calibrate": _ref("calibrate"),
        "compare": _obj({"columns": _list(_ref("estimate"))}),
        "recommend": _obj({"candidates": _list(_ref("candidate"))}),
        "gpus": _obj({"gpus": _list(_ref("gpu"))}),
        "cpus": _obj({"cpus": _list(_ref("cpu"))}),
        "models": _obj({"models": _list(_ref("model_row"))}),
    }
    branches = [
        {"if": {"properties": {"command": {"const": c}}}, "then": body} for c, body in sorted(per_command.items())
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "moeplan --json output",
        "description": "Every moeplan command's --json output: the envelope, then the command's result.",
        "allOf": [head, {"properties": {"command": {"enum": sorted(per_command)}}}, *branches],
        "$defs": _defs(),
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover - prints the published file
    print(schema_text(), end="")
