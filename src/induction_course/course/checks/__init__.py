"""Checks of the five chapters: :mod:`.core` (the framework), :mod:`.ch01` ... :mod:`.ch05`, and
:mod:`.catalogue` (the shape of the wrong-answer catalogues in ``graders/wrong_answers``)."""
