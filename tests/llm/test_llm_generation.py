"""Generators on tiny models: grounded prompt, streaming, ttft, citation clean-up, load errors,
and the OpenAI-compatible client against a real local HTTP server."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kmed.errors import ModelLoadError
from kmed.llm.base import ContextPassage, GenerationRequest
from kmed.llm.prompts import (
    SYSTEM_PROMPT,
    AnswerFilter,
    build_prompt,
    cited_numbers,
    clean_citations,
)

TEXTS = [
    "가슴이 타는 듯한 쓰림과 신물이 올라오는 느낌이 대표적이에요.",
    "역류성 식도염일 수 있어요.",
    "소화기내과 진료를 받아 보세요.",
    "감기는 콧물과 기침이 나요.",
] * 4
CONTEXT = [
    ContextPassage(1, "역류성 식도염", "가슴이 타는 듯이 쓰려요. 신물이 올라와요. 기침이 나기도 해요.", "대한소화기학회"),
    ContextPassage(2, "위염", "명치가 아프고 속이 더부룩해요."),
    ContextPassage(3, "감기", "콧물과 기침이 나요."),
]


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory):
    from kmed.llm.tiny import SIMPLE_CHAT_TEMPLATE, save_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return {
        "gpt_neox": save_tiny_model(root / "neox", arch="gpt_neox", texts=TEXTS),
        "llama": save_tiny_model(root / "llama", arch="llama", texts=TEXTS, chat_template=SIMPLE_CHAT_TEMPLATE),
        "gemma3_text": save_tiny_model(root / "gemma", arch="gemma3_text", texts=TEXTS),  # a base model: no template
    }


def request(**kw) -> GenerationRequest:
    return GenerationRequest(question="가슴이 쓰리고 신물이 올라와요", context=list(CONTEXT), **kw)


# ---- prompt -----------------------------------------------------------------------------------


def test_plain_prompt_has_rules_numbered_context_and_question(tiny_paths):
    from transformers import AutoTokenizer

    prompt = build_prompt(request(profile={"age": 34}), AutoTokenizer.from_pretrained(tiny_paths["gpt_neox"]))
    assert not prompt.chat_template
    assert SYSTEM_PROMPT in prompt.text
    assert "[1] 역류성 식도염 (출처: 대한소화기학회)" in prompt.text and "[3] 감기" in prompt.text
    assert "나이: 34" in prompt.text
    assert prompt.text.rstrip().endswith("### 답변")
    assert prompt.numbers == {1, 2, 3} and prompt.stop_strings


def test_chat_template_is_used_when_present(tiny_paths):
    from transformers import AutoTokenizer

    prompt = build_prompt(request(), AutoTokenizer.from_pretrained(tiny_paths["llama"]))
    assert prompt.chat_template and prompt.text.startswith("<|system|>")
    assert prompt.text.endswith("<|assistant|>\n") and not prompt.stop_strings


def test_pruning_drops_lowest_ranked_then_truncates_keeping_numbers(tiny_paths):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_paths["gpt_neox"])
    full = build_prompt(request(), tok)
    only_first = build_prompt(request(context=None) if False else GenerationRequest("가슴이 쓰리고 신물이 올라와요", [CONTEXT[0]]), tok)
    pruned = build_prompt(request(), tok, max_prompt_tokens=only_first.prompt_tokens)
    assert pruned.numbers == {1} and pruned.dropped == [2, 3] and not pruned.truncated
    assert pruned.prompt_tokens <= only_first.prompt_tokens < full.prompt_tokens
    cut = build_prompt(request(), tok, max_prompt_tokens=only_first.prompt_tokens - 3)
    assert cut.truncated and cut.numbers == {1}
    assert cut.context[0].text == "가슴이 타는 듯이 쓰려요. 신물이 올라와요."
    # Numbers are never reassigned: a kept passage keeps the number the agent gave it.
    reordered = GenerationRequest("질문", [CONTEXT[2], CONTEXT[0]])
    assert build_prompt(reordered, tok, max_prompt_tokens=build_prompt(GenerationRequest("질문", [CONTEXT[2]]), tok).prompt_tokens).numbers == {3}


def test_clean_citations_and_streaming_filter_agree():
    text = "역류성 식도염일 수 있어요 [1]. 위염도 [2, 9] 가능해요 [7]. 소화기내과에 가 보세요 [1][8]."
    expected = "역류성 식도염일 수 있어요 [1]. 위염도 [2] 가능해요. 소화기내과에 가 보세요 [1]."
    assert clean_citations(text, {1, 2}) == expected
    assert cited_numbers(expected) == [1, 2]
    for size in (1, 2, 3, 5, 7):
        f = AnswerFilter({1, 2})
        pieces = [f.feed(text[i : i + size]) for i in range(0, len(text), size)]
        assert "".join(pieces) + f.flush() == expected, size
    f = AnswerFilter({1}, ["\n### "])
    streamed = "".join(f.feed(ch) for ch in "좋아요 [1].\n### 질문\n또") + f.flush()
    assert streamed == "좋아요 [1]." and f.stopped


# ---- HFGenerator ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gemma3_text"])
def test_hf_generator_streams_and_reports_timing(tiny_paths, arch):
    from kmed.llm.hf import HFGenerator

    gen = HFGenerator(tiny_paths[arch], repetition_penalty=1.0, min_new_tokens=12)
    result = gen.generate(request(max_new_tokens=12))
    assert result.new_tokens == 12 and result.prompt_tokens > 100
    assert 0 < result.ttft_s <= result.total_s
    pieces = list(gen.stream(request(max_new_tokens=12)))
    assert len(pieces) >= 1
    assert "".join(pieces) == result.text  # greedy: streaming and one-shot agree
    assert gen.last_result.ttft_s > 0 and gen.last_result.metadata["context_numbers"] == [1, 2, 3]


def test_gemma_answers_come_from_kmed_decoder_and_equal_generate(tiny_paths):
    """The same greedy answer, token for token, from kmed's Gemma decoder and from transformers' generate."""
    from kmed.llm.hf import HFGenerator

    fast = HFGenerator(tiny_paths["gemma3_text"], repetition_penalty=1.2)
    slow = HFGenerator(tiny_paths["gemma3_text"], repetition_penalty=1.2, decoder="transformers")
    a, b = fast.generate(request(max_new_tokens=16)), slow.generate(request(max_new_tokens=16))
    assert a.metadata["decoder"] == "kmed-gemma" and b.metadata["decoder"] == "transformers"
    assert type(fast.model).__name__ == "NativeGemma"  # read without transformers' model classes
    assert a.text == b.text and a.new_tokens == b.new_tokens and a.prompt_tokens == b.prompt_tokens
    assert "".join(fast.stream(request(max_new_tokens=16))) == a.text
    sampled = HFGenerator(tiny_paths["gemma3_text"], temperature=0.7)  # sampling stays with generate
    assert sampled.generate(request(max_new_tokens=4)).metadata["decoder"] == "transformers"
    with pytest.raises(ModelLoadError, match="디코더"):
        HFGenerator(tiny_paths["gemma3_text"], decoder="fast")


def test_kmed_decoder_stop_ids_leave_the_models_own_set_alone(tiny_paths):
    """The stop ids are read once into a new set; the native model's ``eos_token_ids`` is never added to."""
    from kmed.llm.hf import HFGenerator

    generator = HFGenerator(tiny_paths["gemma3_text"])
    generator.warm_up()
    generator.model.eos_token_ids = own = {987654}
    generator.generate(request(max_new_tokens=2))
    stop = generator._stop_ids()
    assert own == {987654} and stop is not own and stop == own | {generator.tokenizer.eos_token_id} - {None}
    generator.generate(request(max_new_tokens=2))
    assert generator._stop_ids() is stop


def _forcing(tokenizer, prompt_len_holder, answer: str):
    """A ``prefix_allowed_tokens_fn`` that makes any model write ``answer`` then stop."""
    target = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]

    def allowed(batch_id, input_ids):
        if prompt_len_holder.get("len") is None:
            prompt_len_holder["len"] = input_ids.shape[0]
        step = input_ids.shape[0] - prompt_len_holder["len"]
        return [target[min(step, len(target) - 1)]]

    return allowed


def test_hf_generator_strips_citations_not_in_context(tiny_paths):
    from transformers import AutoTokenizer

    from kmed.llm.hf import HFGenerator

    tok = AutoTokenizer.from_pretrained(tiny_paths["gpt_neox"])
    holder: dict = {}
    answer = "역류성 식도염일 수 있어요 [1]. 감기일 수도 있어요 [5]. 소화기내과 진료를 받아 보세요 [1, 4]."
    gen = HFGenerator(tiny_paths["gpt_neox"], prefix_allowed_tokens_fn=_forcing(tok, holder, answer))
    pieces = list(gen.stream(request(max_new_tokens=80)))
    text = "".join(pieces)
    assert text == "역류성 식도염일 수 있어요 [1]. 감기일 수도 있어요. 소화기내과 진료를 받아 보세요 [1]."
    assert gen.last_result.metadata["cited"] == [1]


def test_hf_generator_nf4_load_on_cpu(tiny_paths):
    pytest.importorskip("bitsandbytes")
    from kmed.llm.hf import HFGenerator

    gen = HFGenerator(tiny_paths["gpt_neox"], quantize="nf4")
    result = gen.generate(request(max_new_tokens=4))
    assert result.new_tokens == 4
    assert "Linear4bit" in type(gen.model.gpt_neox.layers[0].mlp.dense_h_to_4h).__name__


def test_kmed_quantized_checkpoint_uses_compression_loader(tiny_paths, tmp_path, monkeypatch):
    import shutil

    from transformers import AutoModelForCausalLM

    from kmed.llm.hf import HFGenerator

    folder = tmp_path / "int8"
    shutil.copytree(tiny_paths["gpt_neox"], folder)
    (folder / "config.json").unlink()  # a kmed checkpoint need not be a transformers folder
    (folder / "kmed_quantization.json").write_text(json.dumps({"scheme": "torch_int8_dynamic"}))
    calls = []

    def load_quantized(path):
        calls.append(path)
        return AutoModelForCausalLM.from_pretrained(tiny_paths["gpt_neox"])

    fake = types.ModuleType("kmed.llm.compression.quantize")
    fake.load_quantized = load_quantized
    monkeypatch.setitem(sys.modules, "kmed.llm.compression.quantize", fake)
    result = HFGenerator(folder).generate(request(max_new_tokens=3))
    assert calls == [folder] and result.new_tokens == 3
    with pytest.raises(ModelLoadError, match="--quantize"):
        HFGenerator(folder, quantize="int8").warm_up()


def test_a_compress_output_folder_is_read_through_its_model(tiny_paths, tmp_path):
    import shutil

    from kmed.llm.hf import check_model_source

    out = tmp_path / "compressed"
    shutil.copytree(tiny_paths["gemma3_text"], out / "model")
    (out / "manifest.json").write_text("{}")
    assert check_model_source(str(out)) == out / "model"


def test_load_errors_are_actionable(tiny_paths, tmp_path, monkeypatch):
    import shutil

    from transformers import DistilBertConfig, DistilBertModel

    from kmed.llm.hf import HFGenerator

    with pytest.raises(ModelLoadError, match="찾을 수 없어요") as info:
        HFGenerator(str(tmp_path / "nope"))
    assert info.value.fix
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="llama.cpp"):
        HFGenerator(str(tmp_path / "model.gguf"))
    adapter_only = tmp_path / "adapter"
    adapter_only.mkdir()
    (adapter_only / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="--adapter"):
        HFGenerator(str(adapter_only))
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        HFGenerator(tiny_paths["gpt_neox"], adapter=tmp_path)
    with pytest.raises(ModelLoadError, match="int4"):
        HFGenerator(tiny_paths["gpt_neox"], quantize="int4")
    no_tok = tmp_path / "no_tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_paths["gpt_neox"] / name, no_tok / name)
    with pytest.raises(ModelLoadError, match="토크나이저"):
        HFGenerator(no_tok).warm_up()
    bert = tmp_path / "distilbert"
    DistilBertModel(DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(bert)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_paths["gpt_neox"] / name, bert / name)
    with pytest.raises(ModelLoadError, match="causal LM"):
        HFGenerator(bert).warm_up()
    unknown = tmp_path / "unknown_arch"
    shutil.copytree(tiny_paths["gpt_neox"], unknown)
    (unknown / "config.json").write_text(json.dumps({"model_type": "neox9000"}))
    with pytest.raises(ModelLoadError, match="모르는 구조"):
        HFGenerator(unknown).warm_up()
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # simulate a machine without it
    with pytest.raises(ModelLoadError) as missing:
        HFGenerator(tiny_paths["gpt_neox"], quantize="int8").warm_up()
    assert missing.value.fix == "pip install 'kmed[quant]'"


# ---- OpenAI-compatible server -----------------------------------------------------------------


class _StubHandler(BaseHTTPRequestHandler):
    """Speaks enough of /v1/chat/completions (SSE streaming) to test the client."""

    seen: list = []
    chunks = ["역류성 식도염일 수", " 있어요 [1", "]. 감기일 수도 [7]", " 있어요."]

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions" or body["model"] != "kmed-test":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in self.chunks:
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
            self.wfile.flush()
        usage = {"choices": [], "usage": {"prompt_tokens": 321, "completion_tokens": 9}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture()
def stub_server():
    _StubHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_openai_compatible_streams_from_a_real_server(stub_server):
    from kmed.llm.openai_compat import OpenAICompatibleGenerator

    gen = OpenAICompatibleGenerator(stub_server + "/v1", "kmed-test", api_key="secret")
    pieces = list(gen.stream(request()))
    assert "".join(pieces) == "역류성 식도염일 수 있어요 [1]. 감기일 수도 있어요."
    assert gen.last_result.ttft_s > 0 and gen.last_result.prompt_tokens == 321 and gen.last_result.new_tokens == 9
    sent = _StubHandler.seen[0]
    assert sent["auth"] == "Bearer secret" and sent["body"]["stream"] is True
    messages = sent["body"]["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "[1] 역류성 식도염" in messages[-1]["content"] and messages[-1]["content"].endswith("질문: 가슴이 쓰리고 신물이 올라와요")
    assert gen.generate(request()).text == "".join(pieces)


def test_openai_compatible_errors(stub_server):
    from kmed.llm.openai_compat import OpenAICompatibleGenerator

    with pytest.raises(ModelLoadError, match="404"):
        OpenAICompatibleGenerator(stub_server, "other-model").generate(request())
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelLoadError, match="연결 거부") as info:
        OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "m").generate(request())
    assert "vllm serve" in info.value.fix
    with pytest.raises(ModelLoadError):
        OpenAICompatibleGenerator("127.0.0.1:8000", "m")


# ---- factory and the assistant ----------------------------------------------------------------


def test_factory_picks_the_backend(tiny_paths, stub_server):
    from kmed.llm.factory import load_generator, parse_openai_spec
    from kmed.llm.hf import HFGenerator
    from kmed.llm.openai_compat import OpenAICompatibleGenerator

    assert parse_openai_spec("openai:http://h:8000/v1#org/model") == ("http://h:8000/v1", "org/model")
    assert parse_openai_spec("openai:http://h:8080") == ("http://h:8080", "default")
    gen = load_generator(f"openai:{stub_server}/v1#kmed-test")
    assert isinstance(gen, OpenAICompatibleGenerator) and gen.model == "kmed-test"
    hf = load_generator(str(tiny_paths["llama"]), quantize="nf4")
    assert isinstance(hf, HFGenerator) and hf.quantize == "nf4" and hf.model is None  # loads lazily
    with pytest.raises(ModelLoadError):
        load_generator(f"openai:{stub_server}#m", adapter="x")
    with pytest.raises(ModelLoadError):
        load_generator(None, quantize="int8")
    try:
        from kmed.llm.extractive import ExtractiveGenerator
    except ImportError:
        pytest.skip("kmed.llm.extractive (the lead's module) is not in the tree yet")
    assert isinstance(load_generator(None), ExtractiveGenerator)


@pytest.mark.slow  # builds a retrieval index of the whole KB (~15-40 s on 2 shared cores)
def test_agent_answers_through_hf_generator(tiny_paths, tmp_path):
    """The lead's public API with a real model path: Assistant.load(generator=HFGenerator(...))."""
    try:
        from kmed import Assistant
    except ImportError:
        pytest.skip("kmed.Assistant is not importable yet (the lead's agent API)")
    from kmed.data.kb import KBValidationError, load_kb_or_fail
    from kmed.llm.hf import HFGenerator

    try:
        load_kb_or_fail()
    except KBValidationError:
        pytest.skip("the working-tree KB does not validate right now (see 'kmed kb validate')")

    calls = []

    class Spy(HFGenerator):
        def _stream(self, request, stats):
            calls.append(request)
            yield from super()._stream(request, stats)

    gen = Spy(tiny_paths["gpt_neox"], max_prompt_tokens=1024)
    assistant = Assistant.load(index_dir=tmp_path / "index", generator=gen, progress=False)
    reply = assistant.session().ask("가슴이 쓰리고 신물이 올라와요")
    data = reply.to_dict()
    assert calls, "the agent must answer through the given generator"
    assert calls[0].context and all(p.number >= 1 for p in calls[0].context)
    assert isinstance(data["answer"], str) and data["answer"]
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert cited <= set(range(1, len(data["citations"]) + 1))


def test_kmed_int8_checkpoint_round_trip(tiny_paths, tmp_path):
    """The compression engineer's real saver and loader, through HFGenerator."""
    try:
        from kmed.llm.compression.quantize import quantize_model, save_quantized
    except ImportError:
        pytest.skip("kmed.llm.compression.quantize is not in the tree")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kmed.llm.hf import HFGenerator

    model = AutoModelForCausalLM.from_pretrained(tiny_paths["gpt_neox"])
    quantize_model(model, "int8")
    out = save_quantized(model, tmp_path / "int8", AutoTokenizer.from_pretrained(tiny_paths["gpt_neox"]))
    gen = HFGenerator(out)
    assert gen.generate(request(max_new_tokens=3)).new_tokens <= 3
    assert any("int8" in type(m).__name__.lower() or "quant" in type(m).__name__.lower() for m in gen.model.modules())


def test_the_composer_never_quotes_a_sentence_that_needs_the_one_before():
    from kmed.llm.extractive import ExtractiveGenerator

    passage = ContextPassage(1, "열사병", "더운 곳에서 체온이 40도 넘게 올라요. 해열제는 이런 열에는 효과가 없어요. 시원한 곳으로 옮겨요.")
    answer = ExtractiveGenerator().generate(GenerationRequest(question="열이 나는데 해열제 먹어도 돼요?", context=[passage])).text
    assert "이런 열에는" not in answer and "시원한 곳으로 옮겨요" in answer


def test_a_local_model_reads_three_passages_unless_told(tiny_paths):
    from kmed.llm.base import MODEL_CONTEXT_PASSAGES
    from kmed.llm.hf import HFGenerator

    assert HFGenerator(str(tiny_paths["llama"])).context_passages == MODEL_CONTEXT_PASSAGES == 3
    assert HFGenerator(str(tiny_paths["llama"]), context_passages=6).context_passages == 6
    with pytest.raises(ModelLoadError, match="참고 문단"):
        HFGenerator(str(tiny_paths["llama"]), context_passages=0)


def test_the_composer_hears_one_syllable_nouns_of_the_question():
    # "술" has no character bigram, so without keywords the alcohol sentences score like any other.
    from kmed.llm.extractive import ExtractiveGenerator

    text = ("카르바마제핀과 중대한 상호작용이 있어요. 자몽주스는 약 농도를 올릴 수 있어요. 체중을 정기적으로 확인해요. "
            "잠이 안 온다고 스스로 먹지 않아요. 술과 함께하면 졸림과 어지럼이 심해져요.")
    passage = ContextPassage(1, "쿠에티아핀 · 주의", text, metadata={"section": "cautions", "entity_ids": ["drug.quetiapine"]})

    def answer(keywords):
        request = GenerationRequest(question="쎄로켈 먹는데 마셔도 돼요?", context=[passage], intent="drug",
                                    focus_entities=["drug.quetiapine"], keywords=keywords)
        return ExtractiveGenerator(max_sentences=2).generate(request).text

    assert "술과 함께하면" not in answer([]) and "술과 함께하면" in answer(["술"])
