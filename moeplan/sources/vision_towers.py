"""Vision towers outside the language model's total, by formula from a ``vision_config`` (so a multimodal
checkpoint's memory counts them while its parameter counts stay those of the language model).  Each formula
gets the vision config, the text model's width and the whole config (for keys beside ``vision_config``)."""

from __future__ import annotations

from moeplan.errors import SpecError
from moeplan.sources.config_fields import Config


def llama4_vision_params(v: Config, text_hidden: int, top: Config) -> int:
    """Elements of the Llama 4 vision tower, adapter and projector (outside the language model).

    ViT of L layers, width w, MLP I: ``L*(4*(w^2+w) + 2*w*I + I + w + 4w)`` + patch linear ``C*p^2*w`` +
    class and position embeddings ``(patches+2)*w`` + two LayerNorms ``4w`` + pixel-shuffle MLP
    ``I*d_in + d_out^2`` + projector ``d_vis*h_text``.  Scout: 871,932,416.
    """
    w, inter, layers = (
        v.integer("hidden_size", 768),
        v.integer("intermediate_size", 5632),
        v.integer("num_hidden_layers", 34),
    )
    patch, image, channels = v.integer("patch_size", 14), v.integer("image_size", 448), v.integer("num_channels", 3)
    patches = (image // patch) ** 2 + 1
    per_layer = 4 * (w * w + w) + (w * inter + inter) + (inter * w + w) + 2 * 2 * w
    tower = channels * patch * patch * w + w + patches * w + 2 * 2 * w + layers * per_layer
    adapter = inter * v.integer("projector_input_dim", 4096) + v.integer("projector_output_dim", 4096) ** 2
    projector = v.integer("vision_output_dim", 7680) * text_hidden
    return tower + adapter + projector


def qwen3_vl_vision_params(v: Config, text_hidden: int, top: Config) -> int:
    """Qwen3-VL's vision tower (transformers ``Qwen3VLMoeVisionModel``), outside the language model's total.

    ``w`` width, ``I`` MLP width, ``M = w x s^2`` (the 2x2 patch merge), ``out`` the text width: a Conv3d patch
    embedding ``c x t x p^2 x w + w``; ``n_pos x w`` position embeddings; per block q/k/v ``3w^2 + 3w``, output
    ``w^2 + w``, MLP ``2wI + I + w``, two LayerNorms ``4w``; the merger ``2w + M^2 + M + M x out + out``; each
    deepstack merger ``2M + M^2 + M + M x out + out``.  Qwen3-VL-30B-A3B: 538,631,408.
    """
    w, inter = v.integer("hidden_size", 1152), v.integer("intermediate_size", 4304)
    depth, s = v.integer("depth", 27), v.integer("spatial_merge_size", 2)
    p, t, ch = v.integer("patch_size", 16), v.integer("temporal_patch_size", 2), v.integer("in_channels", 3)
    out = v.integer("out_hidden_size", text_hidden)
    listed = v.int_list("deepstack_visual_indexes")
    deepstack = 3 if listed is None else len(listed)
    m = w * s * s
    patch = ch * t * p * p * w + w + v.integer("num_position_embeddings", 2304) * w
    block = 3 * w * w + 3 * w + w * w + w + 2 * w * inter + inter + w + 4 * w
    merger = m * m + m + m * out + out
    return patch + depth * block + (2 * w + merger) + deepstack * (2 * m + merger)


def kimi_k25_vision_params(v: Config, text_hidden: int, top: Config) -> int:
    """Kimi K2.5's MoonViT tower and patch-merger projector (transformers ``Kimi_K25VisionModel`` and
    ``Kimi_K25MultimodalProjection``), outside the language model's total.

    ``w`` width, ``I`` MLP width, ``M = w x k_h x k_w`` (the merge kernel), ``out`` the text width: a Conv2d patch
    embedding ``3 p^2 w + w`` and a learned ``H x W x w`` position grid; per block q/k/v and output
    ``4(w^2 + w)``, MLP ``2wI + I + w``, two LayerNorms ``4w``; a final LayerNorm ``2w``; the projector's
    LayerNorm ``2w``, ``M^2 + M`` and ``M x out + out``.  Moonshot's checkpoints spell the keys ``vt_*`` and
    ``init_pos_emb_*``; transformers' names are read too.  Kimi K2.5: 471,143,920.
    """

    def key(moonshot: str, hf: str, default: int) -> int:
        return v.integer(moonshot) if v.opt_int(moonshot) is not None else v.integer(hf, default)

    w = key("vt_hidden_size", "hidden_size", 1152)
    inter = key("vt_intermediate_size", "intermediate_size", 4304)
    depth = key("vt_num_hidden_layers", "num_hidden_layers", 27)
    height = key("init_pos_emb_height", "pos_emb_height", 64)
    width = key("init_pos_emb_width", "pos_emb_width", 64)
    p = v.integer("patch_size", 14)
    kernel = v.int_list("merge_kernel_size") or [2, 2]
    if len(kernel) != 2:
        raise SpecError(f"{v.where}: field 'merge_kernel_size' must hold two sizes, not {kernel}")
    m = w * kernel[0] * kernel[1]
    out = v.integer("text_hidden_size", text_hidden)
    patch = 3 * p * p * w + w + height * width * w
    block = 4 * (w * w + w) + 2 * w * inter + inter + w + 4 * w
    projector = 2 * key("mm_hidden_size", "projection_hidden_size", w) + m * m + m + m * out + out
    return patch + depth * block + 2 * w + projector


def step3_vision_params(v: Config, text_hidden: int, top: Config) -> int:
    """Step3's vision encoder and projector (vLLM ``Step3VisionTransformer``, ``vit_downsampler``,
    ``vit_downsampler2``, ``vit_large_projector``), outside the language model's total.

    ``w`` width, ``I`` MLP width, ``o`` the output width, ``N = (image / p)^2`` patches: a class embedding
    ``w``, a Conv2d patch embedding ``3 p^2 w + w``, ``(N + 1) x w`` position embeddings; per block q/k/v and
    output ``4(w^2 + w)``, MLP ``2wI + I + w``, two LayerNorms ``4w``; a 2x2 Conv2d ``4 w o + o``, a 3x3 Conv2d
    ``9 o 2o + 2o`` and the projector ``2o x out`` (+ ``out`` with ``projector_bias``).  With the configuration
    defaults (1792 wide, 63 blocks, MLP 3072, output 4096, 728-pixel images of 14-pixel patches): 1,900,068,352.
    """
    w, inter = v.integer("hidden_size", 1792), v.integer("intermediate_size", 3072)
    depth, o = v.integer("num_hidden_layers", 63), v.integer("output_hidden_size", 4096)
    p, image, ch = v.integer("patch_size", 14), v.integer("image_size", 728), v.integer("num_channels", 3)
    patches = (image // p) ** 2
    embeddings = w + ch * p * p * w + w + (patches + 1) * w
    block = 4 * (w * w + w) + 2 * w * inter + inter + w + 4 * w
    projector = 4 * w * o + o + 9 * o * 2 * o + 2 * o + 2 * o * text_hidden
    if top.flag("projector_bias", False):  # the projector's flag sits beside vision_config
        projector += text_hidden
    return embeddings + depth * block + projector
