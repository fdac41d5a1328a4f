"""RecordingGenerator: the wrapped generator's text, untouched, and its attributes passed through."""

from __future__ import annotations

from kmed.llm.base import ContextPassage, GenerationRequest, GenerationResult, Generator, RecordingGenerator


class Pieces(Generator):
    name = "pieces"

    def __init__(self):
        self.last_result = None

    def generate(self, request):
        return GenerationResult(text="감기일 수 있어요 [1].")

    def stream(self, request):
        yield "감기일 "
        yield "수 있어요 [1]."
        self.last_result = GenerationResult(text="감기일 수 있어요 [1].", metadata={"dropped_context": [2]})


def test_records_the_streamed_text_and_passes_attributes_through():
    request = GenerationRequest("열이 나요", [ContextPassage(1, "감기", "감기일 수 있어요.")])
    recorder = RecordingGenerator(Pieces())
    assert recorder.name == "pieces" and recorder.last is None
    assert "".join(recorder.stream(request)) == "감기일 수 있어요 [1]."
    assert recorder.last == (request, "감기일 수 있어요 [1].")
    assert recorder.last_result.metadata["dropped_context"] == [2]  # the agent reads this through the wrapper
    recorder.generate(GenerationRequest("다른 질문"))
    assert recorder.last[0].question == "다른 질문"


def test_an_interrupted_stream_leaves_what_was_written_so_far_unrecorded():
    recorder = RecordingGenerator(Pieces())
    stream = recorder.stream(GenerationRequest("열이 나요"))
    next(stream)
    assert recorder.last[1] == ""  # only a finished answer is recorded
