"""The term dictionary's Kiwi set-up: without Kiwi's multi-word and default dictionaries, the KB's own
multi-word names and the default dictionary's words found in the KB are registered, so they are
analysed as they were with those dictionaries."""

from __future__ import annotations

from kmed.kg.terms import TermDictionary, TermEntry, default_dict_words, multiword_names


def test_only_names_the_multi_word_dictionary_knows_are_registered():
    names = multiword_names({"과민성 장 증후군", "가슴 통증", "두통"})
    assert names == ["과민성 장 증후군"]  # "가슴 통증" is two words to Kiwi either way; "두통" has no space
    assert multiword_names({"두통", "열"}) == []


def test_a_registered_name_is_one_key_unit_in_a_sentence(monkeypatch):
    monkeypatch.setenv("KMED_KIWI_MULTI_DICT", "0")
    entries = [TermEntry("cond.ibs", "disease", "과민성 장 증후군", "과민성 장 증후군")]
    terms = TermDictionary(entries)
    assert "과민성 장 증후군" in terms.user_words
    assert terms.key_of("과민성 장 증후군이 있어요")[0] == ("과민성 장 증후군", "N")  # one noun unit
    assert terms.lookup(terms.key_of("과민성 장 증후군")) == entries


def test_default_dictionary_words_found_in_the_texts_are_registered_and_stored(monkeypatch):
    monkeypatch.setenv("KMED_KIWI_DEFAULT_DICT", "0")
    words = default_dict_words(["각결막염이 생겼어요", "눈이 빨개요"])
    assert [w[:2] for w in words] == [("각결막염", "NNP")]  # 눈 and 빨갛다 are Kiwi's own words
    entries = [TermEntry("sym.headache", "symptom", "두통", "두통")]
    terms = TermDictionary(entries, dict_words=words)
    assert ("각결막염", "N") in terms.key_of("각결막염이 생겼어요")  # without it: 각/MM + 결막염
    stored = TermDictionary.from_dict(terms.to_dict())
    assert stored.dict_words == terms.dict_words and ("각결막염", "N") in stored.key_of("각결막염이 생겼어요")
