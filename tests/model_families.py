"""Tiny random-weight rerankers of real architectures, each with a tokenizer of its own kind.

No weights of these families can be downloaded here, so each is built from a config with the real
model's layer count, heads and position settings at a small width, and a tokenizer trained with
``tokenizers`` on SciFact text: SentencePiece-style Unigram for XLM-R and DeBERTa-v3, WordPiece for
ELECTRA, byte-level BPE for ModernBERT and for the causal-LM (Qwen3) reranker with its chat template.
They are saved to a directory and loaded by path, as a user loads a hub model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from tests.paths import SCIFACT, require

VOCAB = 1200
INIT = 0.2
"""Weight scale: at the usual 0.02 a deep random encoder gives every pair nearly the same first token."""

QWEN3_RERANKER_TEMPLATE = (
    '{%- set ns = namespace(instruction="Given a web search query, retrieve relevant passages that answer the query",'
    ' query="", document="") -%}'
    "{%- for message in messages -%}"
    "{%- set text = message.content if message.content is string else message.content[0].text -%}"
    '{%- if message.role == "system" -%}{%- set ns.instruction = text -%}'
    '{%- elif message.role == "query" -%}{%- set ns.query = text -%}'
    '{%- elif message.role == "document" -%}{%- set ns.document = text -%}{%- endif -%}'
    "{%- endfor -%}"
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
    "<Instruct>: {{ ns.instruction }}\n<Query>: {{ ns.query }}\n<Document>: {{ ns.document }}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n"
)
"""The prompt layout of Qwen3-Reranker: an instruction (the system message when given), query and
document in the user turn, and an assistant turn whose next token is "yes" or "no"."""


def _texts(limit: int = 400) -> Iterator[str]:
    with open(require(SCIFACT / "corpus.jsonl"), encoding="utf-8") as lines:
        for line in itertools.islice(lines, limit):
            row = json.loads(line)
            yield f"{row['title']} {row['text']}"
    yield from ["yes", "no", "Yes", "No", "yes no", "no yes"] * 400


def _train(tokenizer: Tokenizer, trainer: Any) -> Tokenizer:
    tokenizer.train_from_iterator(_texts(), trainer=trainer)
    return tokenizer


def _unigram(specials: list[str]) -> Tokenizer:
    """A SentencePiece-style Unigram tokenizer (Metaspace), as XLM-R and DeBERTa-v3 ship."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return _train(tokenizer, trainers.UnigramTrainer(vocab_size=VOCAB, special_tokens=specials, unk_token="<unk>"))


def _wordpiece(specials: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return _train(tokenizer, trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=specials))


def _byte_bpe(specials: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    return _train(tokenizer, trainer)


def _pair_template(tokenizer: Tokenizer, single: str, pair: str, specials: list[str]) -> None:
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(name, tokenizer.token_to_id(name)) for name in specials]
    )


def _save_tokenizer(tokenizer: Tokenizer, target: Path, **config: Any) -> None:
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **config).save_pretrained(target)


BERT_SPECIALS = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]"}
"""The special tokens of the BERT-style templates (ELECTRA, DeBERTa-v3, ModernBERT)."""


def _save_model(
    config_class: Any,
    tokenizer: Tokenizer,
    target: Path,
    seed: int,
    shape: tuple[int, int, int],
    overrides: dict[str, Any],
    **fields: Any,
) -> Path:
    """Build ``config_class`` at ``shape`` (layers, heads, width) with ``fields`` then ``overrides``,
    and save a seeded random-weight model of it beside the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    layers, heads, width = shape
    sizes = {
        "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": width,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
    }
    config = config_class(**(sizes | fields | overrides))
    torch.manual_seed(seed)
    causal = config.architectures[0].endswith("ForCausalLM")
    factory = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    model = factory.from_config(config)
    with torch.no_grad():  # random heads score every pair alike; spread them so differences are visible
        for name, parameter in model.named_parameters():
            if any(part in name for part in ("classifier", "out_proj", "pooler", "head")):
                if parameter.dim() == 2:
                    parameter.normal_(0.0, 1.5 / parameter.shape[1] ** 0.5)
                elif name.endswith("bias"):
                    parameter.zero_()
    model.save_pretrained(target)
    return target


def xlm_roberta(target: Path, layers: int = 12, heads: int = 12, width: int = 48, **overrides: Any) -> Path:
    """``BAAI/bge-reranker-base``'s layout: XLM-R, ``<s> q </s></s> d </s>``, no token types."""
    from transformers import XLMRobertaConfig

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = _unigram(specials)
    _pair_template(tokenizer, "<s> $A </s>", "<s> $A </s> </s> $B </s>", ["<s>", "</s>"])
    _save_tokenizer(
        tokenizer,
        target,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=512,
    )
    return _save_model(
        XLMRobertaConfig,
        tokenizer,
        target,
        1,
        (layers, heads, width),
        overrides,
        intermediate_size=4 * width,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,
        architectures=["XLMRobertaForSequenceClassification"],
        initializer_range=INIT,
    )


def electra(target: Path, layers: int = 12, heads: int = 12, width: int = 48, **overrides: Any) -> Path:
    """``cross-encoder/ms-marco-electra-base``'s layout: ELECTRA, BERT's template with token types."""
    from transformers import ElectraConfig

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = _wordpiece(specials)
    _pair_template(tokenizer, "[CLS] $A [SEP]", "[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1", ["[CLS]", "[SEP]"])
    _save_tokenizer(
        tokenizer,
        target,
        **BERT_SPECIALS,
        unk_token="[UNK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=512,
    )
    return _save_model(
        ElectraConfig,
        tokenizer,
        target,
        2,
        (layers, heads, width),
        overrides,
        embedding_size=width // 2,
        intermediate_size=4 * width,
        max_position_embeddings=512,
        num_labels=1,
        architectures=["ElectraForSequenceClassification"],
        initializer_range=INIT,
    )


def deberta_v3(target: Path, layers: int = 12, heads: int = 12, width: int = 48, **overrides: Any) -> Path:
    """``mixedbread-ai/mxbai-rerank-base-v1``'s layout: DeBERTa-v3, relative positions, no token types."""
    from transformers import DebertaV2Config

    specials = ["[PAD]", "[CLS]", "[SEP]", "<unk>", "[MASK]"]
    tokenizer = _unigram(specials)
    _pair_template(tokenizer, "[CLS] $A [SEP]", "[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1", ["[CLS]", "[SEP]"])
    _save_tokenizer(
        tokenizer,
        target,
        **BERT_SPECIALS,
        unk_token="<unk>",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=512,
    )
    return _save_model(
        DebertaV2Config,
        tokenizer,
        target,
        3,
        (layers, heads, width),
        overrides,
        intermediate_size=4 * width,
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,
        position_buckets=256,
        max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"],
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        position_biased_input=False,
        pad_token_id=0,
        num_labels=1,
        architectures=["DebertaV2ForSequenceClassification"],
        initializer_range=INIT,
    )


def modernbert(target: Path, layers: int = 22, heads: int = 12, width: int = 48, **overrides: Any) -> Path:
    """``Alibaba-NLP/gte-reranker-modernbert-base``'s layout: ModernBERT, 8,192 positions, local attention."""
    from transformers import ModernBertConfig

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = _byte_bpe(specials)
    _pair_template(tokenizer, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B [SEP]", ["[CLS]", "[SEP]"])
    _save_tokenizer(
        tokenizer,
        target,
        **BERT_SPECIALS,
        unk_token="[UNK]",
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=8192,
    )
    ids = {name: tokenizer.token_to_id(name) for name in specials}
    return _save_model(
        ModernBertConfig,
        tokenizer,
        target,
        4,
        (layers, heads, width),
        overrides,
        intermediate_size=3 * width // 2,
        max_position_embeddings=8192,
        global_attn_every_n_layers=3,
        local_attention=128,
        pad_token_id=ids["[PAD]"],
        cls_token_id=ids["[CLS]"],
        sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"],
        eos_token_id=ids["[SEP]"],
        classifier_pooling="mean",
        num_labels=1,
        architectures=["ModernBertForSequenceClassification"],
    )


def qwen3_reranker(target: Path, layers: int = 28, heads: int = 16, width: int = 64, **overrides: Any) -> Path:
    """``Qwen/Qwen3-Reranker-0.6B``'s layout: a Qwen3 causal LM scored by logit("yes") - logit("no")."""
    from transformers import Qwen3Config

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    tokenizer = _byte_bpe(specials)
    _save_tokenizer(
        tokenizer,
        target,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=40960,
        chat_template=QWEN3_RERANKER_TEMPLATE,
    )
    assert tokenizer.token_to_id("yes") is not None and tokenizer.token_to_id("no") is not None
    return _save_model(
        Qwen3Config,
        tokenizer,
        target,
        5,
        (layers, heads, width),
        overrides,
        num_key_value_heads=heads // 2,
        head_dim=width // heads * 2,
        intermediate_size=3 * width,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.token_to_id("<|endoftext|>"),
        eos_token_id=tokenizer.token_to_id("<|im_end|>"),
        architectures=["Qwen3ForCausalLM"],
        initializer_range=INIT,
    )


FAMILIES: dict[str, Callable[..., Path]] = {
    "xlm-roberta": xlm_roberta,
    "electra": electra,
    "deberta-v2": deberta_v3,
    "modernbert": modernbert,
    "qwen3": qwen3_reranker,
}
"""Builders by family name; each takes a target directory, optional layers, heads and width, and config
overrides (the benchmark builds them at the real models' sizes)."""
