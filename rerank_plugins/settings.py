"""Pydantic options shared by the framework adapters, from which each builds its ``Reranker``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_validator
from typing_extensions import Self

from rerank_plugins.backend import RerankBackend
from rerank_plugins.options import CORE_OPTIONS, DEFAULT_MODEL, CoreOption, MetadataMode, option
from rerank_plugins.reranker import Reranker
from rerank_plugins.results import RankedResult

__all__ = ["RerankSettings"]

CORE_NAMES = tuple(o.name for o in CORE_OPTIONS)
"""Every ``Reranker`` option: the adapters carry them all, so a serialised adapter rebuilds the same core."""
LOCAL_ONLY = tuple(name for name in CORE_NAMES if name != "metadata_mode")
"""Options of a local core, ``model`` included, refused beside ``url=`` (the service has its own model);
``metadata_mode`` (what the adapter scores) works with both."""


def _field(core: CoreOption) -> tuple[Any, Any]:
    """A settings field for a core option: its type, default and help from the table, its bounds as constraints."""
    bounds: dict[str, Any] = {"ge": core.minimum} if core.minimum is not None else {}
    if core.kind is str and core.name not in ("model", "device", "calibration"):
        bounds["min_length"] = 1
    return core.type, Field(default=core.default, description=core.help, **bounds)


if TYPE_CHECKING:

    class _CoreSettings(BaseModel):
        """The generated core-option fields as type checkers (and pydantic's mypy plugin) see them, so a user's
        ``RerankCompressor(model=..., precision="fp32")`` type-checks; ``tests/test_options.py`` keeps these
        names, types and defaults equal to ``CORE_OPTIONS``."""

        device: str | None = None
        precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
        runtime: Literal["auto", "torch", "openvino", "onnx"] = "auto"
        batch_size: int | None = None
        max_batch_tokens: int | None = None
        unpadded: bool | None = None
        max_length: int | None = None
        long_documents: Literal["truncate", "window"] = "truncate"
        window_aggregation: Literal["max", "mean"] = "max"
        window_overlap: int | None = None
        window_boundaries: Literal["tokens", "sentence"] = "tokens"
        cache_size: int = 0
        revision: str | None = None
        trust_remote_code: bool = False
        show_progress_bar: bool | None = None
        instruction: str | None = None
        calibration: str | None = "auto"
        abstain: bool = False
        metadata_mode: MetadataMode = "none"

else:
    _CoreSettings = create_model("CoreSettings", **{o.name: _field(o) for o in CORE_OPTIONS if o.name != "model"})


class RerankSettings(_CoreSettings):
    """What to rerank with and how many documents to keep; plain data, so adapters serialise."""

    model_config = ConfigDict(hide_input_in_errors=True)  # a validation error must not echo api_key or a url's password

    model: str = Field(default=DEFAULT_MODEL, description=option("model").help)
    top_n: int | None = Field(default=3, ge=1, description="Documents to keep after reranking; None keeps all.")
    score_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Drop documents whose 0-1 relevance_score is lower, before the top_n cut.",
    )
    fusion_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Order by this blend of min-max cross-encoder and retrieval scores; None ranks by the model alone.",
    )
    compress: Literal["document", "passage"] = Field(
        default="document",
        description="'passage' returns each result's evidence passage (the text that earned its score) instead "
        "of the whole document: fewer LLM input tokens; the span and the whole text's length go in metadata.",
    )
    passage_context: int = Field(
        default=0, ge=0, description="With compress='passage': model tokens of context added each side of the passage."
    )
    max_passage_tokens: int | None = Field(
        default=None,
        ge=1,
        description="With compress='passage': keep at most this many tokens of each passage (its start).",
    )
    url: str | None = Field(
        default=None, description="Base URL of a rerank service; when set the model runs there (RemoteReranker)."
    )
    api: Literal["rerank-plugins", "tei"] = Field(
        default="rerank-plugins", description="The service's API: 'rerank-plugins' (rerank-plugins serve) or 'tei'."
    )
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Key of the service at url, sent as 'Authorization: Bearer'; never serialised or shown. "
        "None reads $RERANK_PLUGINS_API_KEY, so a restored adapter finds its key there.",
    )

    @model_validator(mode="after")
    def _check_passage_options(self) -> Self:
        if self.compress == "document" and (self.passage_context or self.max_passage_tokens is not None):
            raise ValueError("passage_context and max_passage_tokens shape passages: set compress='passage' too")
        return self

    def resolve_reranker(self, reranker: RerankBackend | None) -> RerankBackend:
        """The given ``reranker`` (whose options these fields then mirror), or one built from these options:
        a ``RemoteReranker`` when ``url`` is set, else a local ``Reranker``.

        Passing a ``reranker`` together with explicit model options is ambiguous and refused.

        A built local one loads its model lazily, and shares it with every other ``Reranker`` of the same model.
        """
        if reranker is None:
            if self.url is not None:
                return self._remote()
            if self.api_key is not None:
                raise ValueError("api_key= is the key of a rerank service: pass its url= too")
            return Reranker(**{name: getattr(self, name) for name in CORE_NAMES})
        if not isinstance(reranker, RerankBackend):
            raise TypeError(
                f"reranker must be a rerank_plugins Reranker or RemoteReranker, got {type(reranker).__name__}"
            )
        conflicting = [name for name in (*CORE_NAMES, "url", "api", "api_key") if name in self.model_fields_set]
        if conflicting:
            raise ValueError(f"pass either reranker= or model options, not both (got {', '.join(conflicting)})")
        options = reranker.options()
        if isinstance(reranker, Reranker):  # so the serialised settings describe the core actually in use
            for name in CORE_NAMES:
                setattr(self, name, options[name])
        else:
            self.url, self.api = options["url"], options["api"]
        return reranker

    def _remote(self) -> RerankBackend:
        """A ``RemoteReranker`` for ``url``; ``url`` then loses any ``user:password@`` (used, never stored)."""
        defaults = type(self).model_fields
        local_options = [n for n in LOCAL_ONLY if getattr(self, n) != defaults[n].default]
        if local_options:
            raise ValueError(f"url= runs the model on the service; drop {', '.join(local_options)}")
        from rerank_plugins.remote import RemoteReranker

        key = self.api_key.get_secret_value() if self.api_key is not None else None
        remote = RemoteReranker(str(self.url), api=self.api, api_key=key)
        self.url = remote.url
        return remote

    def passages(self, ranking: Sequence[RankedResult]) -> list[tuple[int, int]] | None:
        """Each result's passage span when ``compress="passage"`` (``None`` when whole documents are kept)."""
        if self.compress == "document":
            return None
        return self.core.passage_spans(ranking, self.passage_context, self.max_passage_tokens)

    @property
    def core(self) -> RerankBackend:
        """The scoring core in use."""
        raise NotImplementedError

    def rank_arguments(
        self, top_n: int | None, retrieval_scores: Iterable[float | None], where: str, items: str
    ) -> dict[str, Any]:
        """Keyword arguments of ``Reranker.rank``; ``retrieval_scores`` (lazy) is read only when fusing.

        ``where`` says where each item's retrieval score comes from and ``items`` names the items, for
        the error raised when one has none.
        """
        arguments: dict[str, Any] = {"top_n": top_n, "score_threshold": self.score_threshold}
        if self.fusion_weight is not None:
            scores = list(retrieval_scores)
            missing = [position for position, score in enumerate(scores) if score is None]
            if missing:
                raise ValueError(f"fusion_weight needs {where}; {items} {missing[:5]} have none")
            arguments["retrieval_scores"] = scores
            arguments["fusion_weight"] = self.fusion_weight
        return arguments
