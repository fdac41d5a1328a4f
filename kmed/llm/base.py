"""The generator contract every answer path uses.

The agent retrieves and numbers its grounding passages, then asks a ``Generator`` to write the
answer from them. ``ExtractiveGenerator`` (no weights) is the default; ``HFGenerator`` and
``OpenAICompatibleGenerator`` implement the same contract for real models::

    result = generator.generate(GenerationRequest(question="…", context=[ContextPassage(1, "…", "…")]))
    for piece in generator.stream(request): print(piece, end="")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class ContextPassage:
    """One numbered grounding passage; the answer cites it as ``[number]``."""

    number: int
    title: str
    text: str
    source: str = ""
    passage_id: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class GenerationRequest:
    question: str
    context: list[ContextPassage] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)  # [{"role": "user"|"assistant", "content": str}]
    intent: str | None = None  # definition | symptoms | causes | treatment | self_care | when_to_see | drug | general
    profile: dict = field(default_factory=dict)  # what the person told us: age, pregnancy, medicines, …
    focus_entities: list[str] = field(default_factory=list)  # KB ids the answer should be about
    # The question's one-syllable nouns (술, 눈, 열, 피), which character bigrams cannot see; from the
    # turn's Kiwi analysis, so adverbs such as 좀 or 안 are not among them.
    keywords: list[str] = field(default_factory=list)
    max_new_tokens: int = 256


@dataclass
class GenerationResult:
    text: str
    ttft_s: float | None = None  # time to first token
    total_s: float | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    metadata: dict = field(default_factory=dict)


# Passages a local model reads by default. A/B on the 98 held-out questions (docs/benchmarks.md): with 3
# instead of 6, the tuned Gemma 3 270M was as accurate (fact recall +0.02, faithfulness +0.07) and
# answered 0.52 s sooner (first token p50 0.76 -> 0.24 s). SFT data is built with the same number.
MODEL_CONTEXT_PASSAGES = 3


class Generator(ABC):
    """Writes an answer from numbered context. Implementations must cite only given numbers."""

    name: str = "generator"
    # How many retrieved passages the agent numbers for this generator; None: the agent's default (6).
    # A model reads every passage before its first token (about 150 tokens each), the composer does not.
    context_passages: int | None = None

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def warm_up(self) -> None:
        """Read weights (or whatever the first answer would otherwise wait for) now. Nothing by default;
        ``Assistant.load`` calls it, so loading, not the first answer, pays for a model."""
        return None

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the answer in pieces. The default yields the whole answer at once."""
        yield self.generate(request).text


class StreamedGenerator(Generator):
    """A generator that streams by nature: ``_stream(request, stats)`` yields the answer's pieces and
    fills ``stats`` with a ``GenerationResult``'s fields; ``generate`` drains it, ``stream`` keeps the
    result of the last answer in ``last_result``."""

    last_result: GenerationResult | None = None

    @abstractmethod
    def _stream(self, request: GenerationRequest, stats: dict) -> Iterator[str]: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        stats: dict = {}
        yield from self._stream(request, stats)
        self.last_result = GenerationResult(**stats)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        stats: dict = {}
        for _ in self._stream(request, stats):
            pass
        return GenerationResult(**stats)


class RecordingGenerator(Generator):
    """Any generator, remembering the last request and the whole text it wrote, before any guard
    touched it. Data building (``kmed train make-sft``) and answer evaluation read ``last``; every
    other attribute (``name``, ``last_result``, …) is the wrapped generator's."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_passages = inner.context_passages  # a class attribute: __getattr__ never sees it
        self.last: tuple[GenerationRequest, str] | None = None

    def __getattr__(self, attribute: str):
        return getattr(self.__dict__["inner"], attribute)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        result = self.inner.generate(request)
        self.last = (request, result.text)
        return result

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        pieces: list[str] = []
        self.last = (request, "")
        for piece in self.inner.stream(request):
            pieces.append(piece)
            yield piece
        self.last = (request, "".join(pieces))
