"""Weights between this package and Hugging Face's ``transformers`` BERT classes.

Our names follow the lab (``bert.embeddings.token_embedding``, ``bert.layers.0.self_attn.q_proj``,
``transform``, ``pooler``…); Hugging Face's follow the original TensorFlow code
(``bert.embeddings.word_embeddings``, ``bert.encoder.layer.0.attention.self.query``,
``cls.predictions.transform.dense``, ``bert.pooler.dense``…). The map is one-to-one, so a model
converts both ways without loss:

>>> to_hf_name("bert.layers.1.linear1.weight")
'bert.encoder.layer.1.intermediate.dense.weight'
>>> from_hf_name(to_hf_name("transform_norm.bias"))
'transform_norm.bias'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from labsupport.bert.config import BertConfig

_FIXED = {  # ours → Hugging Face's, outside the repeated layers
    "bert.embeddings.token_embedding": "bert.embeddings.word_embeddings",
    "bert.embeddings.position_embedding": "bert.embeddings.position_embeddings",
    "bert.embeddings.segment_embedding": "bert.embeddings.token_type_embeddings",
    "bert.embeddings.norm": "bert.embeddings.LayerNorm",
    "transform": "cls.predictions.transform.dense",
    "transform_norm": "cls.predictions.transform.LayerNorm",
    "decoder": "cls.predictions.decoder",
    "pooler": "bert.pooler.dense",
    "classifier": "classifier",
}
_LAYER = {  # ours → Hugging Face's, inside bert.layers.N / bert.encoder.layer.N
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "norm1": "attention.output.LayerNorm",
    "linear1": "intermediate.dense",
    "linear2": "output.dense",
    "norm2": "output.LayerNorm",
}


def hf_config(config: BertConfig, **extra):
    """The ``transformers.BertConfig`` of the same sizes (eager attention, exact GELU)."""
    from transformers import BertConfig as HFBertConfig

    hf = HFBertConfig(vocab_size=config.vocab_size, hidden_size=config.d_model, num_hidden_layers=config.n_layers,
                      num_attention_heads=config.n_heads, intermediate_size=config.d_ff,
                      max_position_embeddings=config.max_len, type_vocab_size=config.n_segments,
                      hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
                      layer_norm_eps=config.layer_norm_eps, pad_token_id=config.pad_id, hidden_act="gelu", **extra)
    hf._attn_implementation = "eager"
    return hf


def _rename(name: str, table: Mapping[str, str], layer_src: str, layer_dst: str, layers: Mapping[str, str]) -> str:
    stem, _, leaf = name.rpartition(".")
    m = re.fullmatch(rf"{re.escape(layer_src)}\.(\d+)\.(.+)", stem)
    if m:
        return f"{layer_dst}.{m[1]}.{layers[m[2]]}.{leaf}"
    if stem in table:
        return f"{table[stem]}.{leaf}"
    raise KeyError(f"no Hugging Face counterpart for {name!r}")


def to_hf_name(name: str) -> str:
    """Our parameter name → Hugging Face's (``prefix`` ``bert.`` included, as in ``BertFor…``)."""
    return _rename(name, _FIXED, "bert.layers", "bert.encoder.layer", _LAYER)


def from_hf_name(name: str) -> str:
    """Hugging Face's parameter name → ours (``cls.predictions.bias`` is our ``decoder.bias``)."""
    if name == "cls.predictions.bias":
        return "decoder.bias"
    return _rename(name, {v: k for k, v in _FIXED.items()}, "bert.encoder.layer", "bert.layers",
                   {v: k for k, v in _LAYER.items()})


def to_hf_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict → Hugging Face's names (the output bias also as ``cls.predictions.bias``)."""
    out = {to_hf_name(k): v for k, v in state.items()}
    if "decoder.bias" in state:
        out["cls.predictions.bias"] = state["decoder.bias"]
    return out


def load_into_hf(model: torch.nn.Module, state: Mapping[str, torch.Tensor], prefix: str = "") -> None:
    """Copy our ``state`` into a Hugging Face model in place; every parameter must be covered.

    ``prefix`` is prepended to our names first (``"bert."`` for a bare ``BertModel`` state whose keys
    start with ``embeddings.``/``layers.``); tied parameters are copied once per name, consistently.
    """
    hf_state = to_hf_state({prefix + k: v for k, v in state.items()})
    add = "bert." if not hasattr(model, "bert") else ""  # a bare BertModel has no "bert." in its names
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = [n for n in params if (add + n) not in hf_state]
    if missing:
        raise KeyError(f"no value for Hugging Face parameters {missing}")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(hf_state[add + name])
