"""The term dictionary's Kiwi set-up: without Kiwi's multi-word dictionary, the KB's own multi-word
names are registered, so they are analysed as they were with it."""

from __future__ import annotations

from kmed.kg.terms import TermDictionary, TermEntry, multiword_names


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
