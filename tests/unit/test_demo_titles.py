"""The demo's job titles are English (issue 24): "Review an API", never "Review a API"."""

from __future__ import annotations

import random

from connects.demo import JOB_OBJECTS, JOB_VERBS, _title

VOWEL_SOUND = ("a", "e", "i", "o", "u", "SEO", "API", "FAQ", "HTML", "MVP", "NFT", "SQL", "XML")


def test_each_object_has_the_article_its_first_sound_wants() -> None:
    for obj in JOB_OBJECTS:
        article, _, rest = obj.partition(" ")
        wants = "an" if rest.startswith(VOWEL_SOUND) else "a"
        assert article == wants, obj


def test_titles_are_a_verb_and_an_object() -> None:
    rng = random.Random(7)
    for _ in range(200):
        verb, _, obj = _title(rng).partition(" ")
        assert verb in JOB_VERBS and obj in JOB_OBJECTS
